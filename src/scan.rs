//! Walk the site directory and hash every file (streaming BLAKE3 on all cores), giving each
//! its key and headers. Reads the filesystem only: knows nothing of S3 or the remote state.
//! Symlinks are followed only while they stay inside the site directory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use crate::config::PublishSettings;
use crate::object::{Digest, HeaderValue, Headers};
use crate::rules::{Excludes, Rules};
use crate::{key, mime};

/// One file of the site, ready to be planned and uploaded.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// The key relative to the prefix, e.g. `docs/index.html`.
    pub key: String,
    /// The site directory, shared by every file.
    pub dir: std::sync::Arc<Path>,
    /// The file's path in `dir` when it is not the key (a name that NFC normalisation
    /// changed). Not stored otherwise: at 100k files, full paths came to ~11 MB.
    pub relative: Option<Box<Path>>,
    /// The gzip-compressed copy to upload instead of `source` (in a temporary directory),
    /// when a rule compresses the file.
    pub gzipped: Option<PathBuf>,
    /// Size of the bytes to upload.
    pub size: u64,
    /// BLAKE3 of the bytes to upload.
    pub blake3: Digest,
    /// The headers to store.
    pub headers: Headers,
}

impl LocalFile {
    /// The file in the site directory.
    pub fn source(&self) -> PathBuf {
        self.dir.join(self.relative.as_deref().unwrap_or_else(|| Path::new(&self.key)))
    }

    /// The bytes to upload: [`Self::source`], or its gzip-compressed copy.
    pub fn upload_path(&self) -> PathBuf {
        self.gzipped.clone().unwrap_or_else(|| self.source())
    }

    /// HTML pages go live after the assets they reference.
    pub fn is_html(&self) -> bool {
        mime::is_html(&self.headers.content_type)
    }
}

/// What to leave out and how to set headers.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions<'a> {
    /// Keys matching these are not published.
    pub exclude: &'a Excludes,
    /// Header and gzip rules.
    pub rules: &'a Rules,
    /// Length of the bucket prefix, for the key length limit.
    pub prefix_len: usize,
    /// Hashes of files unchanged since the last scan (`--hash-cache`); `None`: read every byte.
    pub cache: Option<&'a crate::hashcache::HashCache>,
    /// Set when nobody wants the result any more: the scan stops at the next file.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
    /// Counts the files hashed so far, for a phase line on a terminal.
    pub progress: Option<&'a ScanProgress>,
}

#[cfg(test)]
impl<'a> ScanOptions<'a> {
    /// A configuration's excludes and rules, at the root, no cache (for tests).
    pub fn of(config: &'a crate::config::Config) -> Self {
        Self { exclude: &config.exclude, rules: &config.rules, prefix_len: 0, cache: None, stop: None, progress: None }
    }
}

/// How far a scan has got: files and bytes hashed.
#[derive(Debug, Default)]
pub struct ScanProgress {
    files: std::sync::atomic::AtomicUsize,
    bytes: std::sync::atomic::AtomicU64,
}

impl ScanProgress {
    /// Files and bytes hashed so far.
    pub fn get(&self) -> (usize, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.files.load(Relaxed), self.bytes.load(Relaxed))
    }

    fn add(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.files.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

/// The scanned site.
#[derive(Debug)]
pub struct Scan {
    /// The files, sorted by key.
    pub files: Vec<LocalFile>,
    /// Their total size.
    pub bytes: u64,
    /// How many files the excludes left out (not counting pruned directories).
    pub excluded: usize,
    /// What the default guard left out (dotfiles, dot-directories, `node_modules`): keys,
    /// directories with a trailing `/` (not walked).
    pub left_out: Vec<String>,
    /// Things skipped that a person should know about.
    pub warnings: Vec<String>,
    /// Holds the gzip-compressed copies until the upload is done.
    _gzip_dir: Option<tempfile::TempDir>,
    /// With a hash cache: the files it did not vouch for, hashed, to remember next time.
    pub stamps: Vec<(PathBuf, crate::hashcache::Stamp, Digest)>,
}

/// Why a directory cannot be published; every problem names its path.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The directory does not exist.
    #[error("site directory `{0}` does not exist: build the site first, or give the right path")]
    Missing(PathBuf),
    /// The path is not a directory.
    #[error("`{0}` is not a directory: give the directory that holds the built site")]
    NotADirectory(PathBuf),
    /// Nothing to publish.
    #[error("site directory `{dir}` has no files to publish{}: refusing to publish an empty site (it would delete everything)", if *.excluded > 0 { format!(" ({excluded} excluded)") } else { String::new() })]
    Empty {
        /// The directory.
        dir: PathBuf,
        /// Files left out by excludes.
        excluded: usize,
    },
    /// Files that cannot be published.
    #[error("cannot publish `{dir}`: {}", format_problems(problems))]
    Problems {
        /// The directory.
        dir: PathBuf,
        /// Path and reason, one per problem.
        problems: Vec<(PathBuf, String)>,
    },
    /// The temporary directory for gzip copies.
    #[error(
        "cannot create a temporary directory for gzip-compressed files in `{}`: {source}\nhint: set TMPDIR to a writable directory",
        dir.display()
    )]
    TempDir {
        /// Where it was to be made.
        dir: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// [`ScanOptions::stop`] was set.
    #[error("the scan was stopped")]
    Stopped,
}

fn format_problems(problems: &[(PathBuf, String)]) -> String {
    const SHOWN: usize = 20;
    let mut out = String::new();
    if problems.len() > 1 {
        out.push_str(&format!("{} problems", problems.len()));
    }
    for (path, what) in problems.iter().take(SHOWN) {
        out.push_str(&format!("\n  `{}`: {what}", path.display()));
    }
    if problems.len() > SHOWN {
        out.push_str(&format!("\n  … and {} more", problems.len() - SHOWN));
    }
    out
}

/// One file scanned (with its path and cache stamp when the cache should learn it), or why it
/// cannot be published (`None`: the gzip directory could not be made, which the caller
/// reports once).
type Hashed = Result<(LocalFile, Option<(PathBuf, crate::hashcache::Stamp)>), Option<(PathBuf, String)>>;

/// Why a directory looks like a project's root rather than its built output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRoot {
    /// The file that gives it away (`package.json`, `hugo.toml`, …).
    pub marker: String,
    /// The build output that is probably meant, when one exists (`public`, `dist`, …).
    pub output: Option<String>,
}

impl ProjectRoot {
    /// The message that refuses to publish `dir`, naming the likely output directory.
    pub fn refusal(&self, dir: &Path) -> String {
        let shown = dir.display();
        let likely = match &self.output {
            Some(output) => {
                format!("\nhint: publish the build output instead: `skiff publish {}`", dir.join(output).display())
            }
            None => "\nhint: build the site and publish its output directory".to_string(),
        };
        format!(
            "`{shown}` looks like a project's root, not a built site (it has `{}`): publishing it would upload sources, configuration and perhaps secrets{likely}, or run `skiff init` to write a skiff.toml; to publish `{shown}` itself, name it in skiff.toml (`[site] dir`)",
            self.marker
        )
    }
}

/// Files that only a project's root has, never a built site.
const PROJECT_MARKERS: &[&str] = &[
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pyproject.toml",
    "Gemfile",
    "hugo.toml",
    "hugo.yaml",
    "hugo.json",
    "mkdocs.yml",
    "mkdocs.yaml",
    "_config.yml",
];

/// Prefixes of framework configuration files (`astro.config.mjs`, `next.config.ts`, …).
const PROJECT_CONFIG_PREFIXES: &[&str] = &[
    "astro.config.",
    "next.config.",
    "vite.config.",
    "svelte.config.",
    "nuxt.config.",
    "gatsby-config.",
    "docusaurus.config.",
    "eleventy.config.",
    ".eleventy.",
];

/// Where static site generators put their output, most common first.
const OUTPUT_DIRS: &[&str] = &["public", "dist", "out", "build", "_site", "site"];

/// Whether `dir` looks like a project's root (sources and configuration) rather than a
/// built site, and which of its subdirectories is probably the output.
pub fn project_root(dir: &Path) -> Option<ProjectRoot> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    let marker = names
        .iter()
        .filter(|name| {
            PROJECT_MARKERS.contains(&name.as_str()) || PROJECT_CONFIG_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .min()?
        .clone();
    let output = OUTPUT_DIRS
        .iter()
        .find(|out| dir.join(out).join("index.html").is_file())
        .or_else(|| OUTPUT_DIRS.iter().find(|out| dir.join(out).is_dir()))
        .map(|out| (*out).to_string());
    Some(ProjectRoot { marker, output })
}

/// Walk `root`, apply excludes and rules, hash every file in parallel.
pub fn scan(root: &Path, options: ScanOptions<'_>) -> Result<Scan, ScanError> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ScanError::Missing(root.to_path_buf())),
        Err(e) => return Err(problem(root, root, format!("cannot read it: {e}"))),
        Ok(meta) if !meta.is_dir() => return Err(ScanError::NotADirectory(root.to_path_buf())),
        Ok(_) => {}
    }
    let canonical_root =
        std::fs::canonicalize(root).map_err(|e| problem(root, root, format!("cannot resolve it: {e}")))?;

    let mut problems: Vec<(PathBuf, String)> = Vec::new();
    let mut warnings = Vec::new();
    let mut excluded = 0;
    let mut left_out = Vec::new();
    let mut pruned = Vec::new();
    let mut escapes = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            if entry.depth() == 0 {
                return true;
            }
            // Excluded entries are left alone before anything else: an excluded link may
            // point anywhere, and an excluded directory is not walked at all.
            let relative_key = entry.path().strip_prefix(root).ok().and_then(|rel| key::from_relative_path(rel, 0).ok());
            if let Some(key) = &relative_key {
                let dir_excluded = entry.file_type().is_dir() && options.exclude.covers_dir(key);
                if dir_excluded && options.exclude.covers_dir_by_default(key) {
                    pruned.push(format!("{key}/"));
                }
                if dir_excluded || (entry.path_is_symlink() && options.exclude.matches(key)) {
                    return false;
                }
            }
            if !entry.path_is_symlink() {
                return true;
            }
            match std::fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(&canonical_root) => true,
                Ok(target) => {
                    escapes.push((
                        entry.path().to_path_buf(),
                        format!(
                            "symbolic link to `{}`, outside the site directory: skiff follows links only inside it (copy the target in, or exclude the link)",
                            target.display()
                        ),
                    ));
                    false
                }
                Err(e) => {
                    escapes.push((entry.path().to_path_buf(), format!("broken symbolic link: {e}")));
                    false
                }
            }
        });
    // Files are hashed as the walk finds them: on a warm cache the walk is a good part of a
    // no-op (thousands of directories), and the other cores need not wait for it.
    let now = crate::time::now_ns();
    let gzip_dir: std::sync::OnceLock<io::Result<tempfile::TempDir>> = std::sync::OnceLock::new();
    let files = std::sync::Mutex::new(Vec::new());
    let read_problems = std::sync::Mutex::new(Vec::new());
    let stamps = std::sync::Mutex::new(Vec::new());
    let mut found = 0usize;
    let dir: std::sync::Arc<Path> = std::sync::Arc::from(root);
    let stopped = || options.stop.is_some_and(|stop| stop.load(std::sync::atomic::Ordering::Relaxed));
    rayon::scope(|scope| {
        for entry in walker {
            if stopped() {
                break;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    problems.extend(walk_problem(&err, root, options));
                    continue;
                }
            };
            if entry.file_type().is_dir() {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(root) else {
                problems.push((entry.path().to_path_buf(), "is not inside the site directory".to_string()));
                continue;
            };
            let key = match key::from_relative_path(relative, options.prefix_len) {
                Ok(key) => key,
                Err(what) => {
                    problems.push((entry.path().to_path_buf(), what));
                    continue;
                }
            };
            if options.exclude.by_default(&key) {
                left_out.push(key);
                continue;
            }
            if options.exclude.matches(&key) {
                excluded += 1;
                continue;
            }
            // `_redirects` and `_headers` configure the routing (publish reads them); they
            // are not pages.
            if key == crate::routes::REDIRECTS_FILE || key == crate::routes::HEADERS_FILE {
                continue;
            }
            if !entry.file_type().is_file() {
                warnings.push(format!("skipped `{}`: not a regular file", entry.path().display()));
                continue;
            }
            if key::has_state_segment(&key) {
                problems.push((
                    entry.path().to_path_buf(),
                    format!("a `{}` directory is where skiff keeps its state: rename it or exclude it", key::STATE_DIR),
                ));
                continue;
            }
            let index = found;
            found += 1;
            let source = entry.into_path();
            let (files, read_problems, stamps, gzip_dir, dir) = (&files, &read_problems, &stamps, &gzip_dir, &dir);
            scope.spawn(move |_| {
                if stopped() {
                    return;
                }
                match hash_one(index, key, source, dir, options, now, gzip_dir) {
                    Ok((file, learned)) => {
                        if let Some(progress) = options.progress {
                            progress.add(file.size);
                        }
                        if let Some((path, stamp)) = learned {
                            stamps.lock().unwrap().push((path, stamp, file.blake3));
                        }
                        files.lock().unwrap().push(file);
                    }
                    Err(Some(problem)) => read_problems.lock().unwrap().push(problem),
                    Err(None) => {}
                }
            });
        }
    });
    if stopped() {
        return Err(ScanError::Stopped);
    }
    problems.extend(escapes);
    problems.extend(read_problems.into_inner().unwrap());
    let mut files: Vec<LocalFile> = files.into_inner().unwrap();
    files.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.source().cmp(&b.source())));
    for pair in files.windows(2) {
        if pair[0].key == pair[1].key {
            problems.push((
                pair[1].source(),
                format!(
                    "has the same key `{}` as `{}` once Unicode-normalised (NFC): rename one",
                    pair[1].key,
                    pair[0].source().display()
                ),
            ));
        }
    }
    let gzip_dir = match gzip_dir.into_inner() {
        Some(Err(source)) => return Err(ScanError::TempDir { dir: std::env::temp_dir(), source }),
        Some(Ok(dir)) => Some(dir),
        None => None,
    };
    if !problems.is_empty() {
        problems.sort();
        return Err(ScanError::Problems { dir: root.to_path_buf(), problems });
    }
    if files.is_empty() {
        return Err(ScanError::Empty { dir: root.to_path_buf(), excluded: excluded + left_out.len() + pruned.len() });
    }
    files.shrink_to_fit();
    let stamps = stamps.into_inner().unwrap();
    let bytes = files.iter().map(|f| f.size).sum();
    left_out.extend(pruned);
    left_out.sort();
    Ok(Scan { files, bytes, excluded, left_out, warnings, _gzip_dir: gzip_dir, stamps })
}

/// What a walk error means for the user, unless it is under an excluded path.
fn walk_problem(err: &walkdir::Error, root: &Path, options: ScanOptions<'_>) -> Option<(PathBuf, String)> {
    let path = err.path().unwrap_or(root).to_path_buf();
    let relative = path.strip_prefix(root).ok().and_then(|rel| key::from_relative_path(rel, 0).ok());
    if relative.is_some_and(|key| options.exclude.matches(&key)) {
        return None;
    }
    let what = match (err.loop_ancestor(), std::fs::read_link(&path)) {
        (Some(ancestor), _) => {
            format!("symbolic link loop back to `{}`: remove or exclude the link", ancestor.display())
        }
        (None, Ok(target)) => format!("broken symbolic link to `{}`: fix it or exclude it", target.display()),
        (None, Err(_)) => {
            format!("cannot read it: {}", err.io_error().map_or_else(|| err.to_string(), ToString::to_string))
        }
    };
    Some((path, what))
}

/// Hash one file (or gzip it, then hash the copy), with its rules applied. `Err(None)`:
/// the gzip directory could not be made (reported once, by the caller).
fn hash_one(
    index: usize,
    key: String,
    source: PathBuf,
    dir: &std::sync::Arc<Path>,
    options: ScanOptions<'_>,
    now: i128,
    gzip_dir: &std::sync::OnceLock<io::Result<tempfile::TempDir>>,
) -> Hashed {
    let rules = options.rules.apply(&key);
    let gz_path = if rules.gzip {
        match gzip_dir.get_or_init(|| tempfile::Builder::new().prefix("skiff-gzip-").tempdir()) {
            Ok(dir) => Some(dir.path().join(format!("{index}.gz"))),
            Err(_) => return Err(None),
        }
    } else {
        None
    };
    // Only files stored as they are use the cache (a gzip copy must be made anyway).
    let stamp = options
        .cache
        .filter(|_| gz_path.is_none())
        .and_then(|_| std::fs::metadata(&source).ok())
        .and_then(|meta| crate::hashcache::Stamp::of(&meta, now));
    let cached = options
        .cache
        .zip(stamp)
        .and_then(|(cache, stamp)| cache.lookup(&source, stamp).map(|digest| (stamp.size, digest)));
    let hashed = match (&gz_path, cached) {
        (_, Some(hit)) => Ok(hit),
        (Some(gz_path), None) => gzip_and_hash(&source, gz_path),
        (None, None) => hash_file(&source),
    };
    let (size, blake3) = match hashed {
        Ok(hashed) => hashed,
        Err(e) => return Err(Some((source, format!("cannot read it: {e}")))),
    };
    // A file that changed size while it was read is not remembered; one the cache vouched
    // for is marked there as seen.
    let hit = cached.is_some();
    let stamp = stamp.filter(|s| !hit && s.size == size);
    let content_type = rules.content_type.unwrap_or_else(|| HeaderValue::new(&mime::content_type(&key)));
    let relative = match source.strip_prefix(dir) {
        Ok(relative) if relative == Path::new(&key) => None,
        Ok(relative) => Some(relative.into()),
        Err(_) => Some(source.as_path().into()),
    };
    let file = LocalFile {
        gzipped: gz_path,
        key,
        dir: std::sync::Arc::clone(dir),
        relative,
        size,
        blake3,
        headers: Headers {
            content_type,
            cache_control: rules.cache_control,
            content_encoding: rules.gzip.then(|| HeaderValue::new("gzip")),
        },
    };
    Ok((file, stamp.map(|stamp| (source, stamp))))
}

fn problem(root: &Path, path: &Path, what: String) -> ScanError {
    ScanError::Problems { dir: root.to_path_buf(), problems: vec![(path.to_path_buf(), what)] }
}

/// A writer that hashes (BLAKE3, and SHA-256 when asked) and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    blake3: blake3::Hasher,
    sha256: Option<Sha256>,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner, blake3: blake3::Hasher::new(), sha256: None, bytes: 0 }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.blake3.update(&buf[..n]);
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

const BUFFER: usize = 256 * 1024;

/// Size and BLAKE3 of a file, read in fixed-size chunks (never whole in memory).
pub fn hash_file(path: &Path) -> io::Result<(u64, Digest)> {
    let mut file = File::open(path)?;
    let mut sink = HashingWriter::new(io::sink());
    copy_chunked(&mut file, &mut sink)?;
    Ok((sink.bytes, Digest(sink.blake3.finalize().into())))
}

/// Size, BLAKE3 and SHA-256 of a file, in one read: the SHA-256 is an upload's checksum,
/// the BLAKE3 tells whether the bytes are still the ones scanned.
pub fn hash_file_for_upload(path: &Path) -> io::Result<(u64, Digest, Digest)> {
    let mut file = File::open(path)?;
    let mut sink = HashingWriter { sha256: Some(Sha256::new()), ..HashingWriter::new(io::sink()) };
    copy_chunked(&mut file, &mut sink)?;
    let sha256 = Digest(sink.sha256.take().expect("asked for above").finalize().into());
    Ok((sink.bytes, Digest(sink.blake3.finalize().into()), sha256))
}

/// The SHA-256 → BLAKE3 of these files' bytes, read on all cores: what a format-1 manifest
/// (which names bytes by SHA-256) needs to be read in BLAKE3 ([`crate::state::Manifest::adopt`]).
/// A file that cannot be read is left out (its upload says why).
pub fn sha256_to_blake3(files: &[&LocalFile]) -> std::collections::HashMap<Digest, Digest> {
    use rayon::prelude::*;
    files
        .par_iter()
        .filter_map(|file| hash_file_for_upload(&file.upload_path()).ok())
        .map(|(_, blake3, sha256)| (sha256, blake3))
        .collect()
}

/// Gzip `source` into `target` (deterministically: no name, no time in the header) and return
/// the size and BLAKE3 of the compressed bytes.
fn gzip_and_hash(source: &Path, target: &Path) -> io::Result<(u64, Digest)> {
    let mut input = File::open(source)?;
    let output = io::BufWriter::with_capacity(BUFFER, File::create(target)?);
    let tee = HashingWriter::new(output);
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(tee, flate2::Compression::default());
    copy_chunked(&mut input, &mut encoder)?;
    let mut tee = encoder.finish()?;
    tee.flush()?;
    Ok((tee.bytes, Digest(tee.blake3.finalize().into())))
}

fn copy_chunked(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<()> {
    // One buffer per thread, not one per file: a fresh 256 KiB buffer is zeroed and
    // page-faulted in every time, about a tenth of the CPU of a no-op over 10k files.
    thread_local! {
        static BUFFER_OF_THREAD: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUFFER]);
    }
    // Only the scan's threads keep one: tokio's blocking pool, where uploads are re-hashed,
    // grows to dozens of threads, and a buffer left on each came to 15 MB at 100k files.
    if rayon::current_thread_index().is_some() {
        BUFFER_OF_THREAD.with_borrow_mut(|buffer| copy_with(reader, writer, buffer))
    } else {
        copy_with(reader, writer, &mut vec![0u8; BUFFER])
    }
}

fn copy_with(reader: &mut impl Read, writer: &mut impl Write, buffer: &mut [u8]) -> io::Result<()> {
    loop {
        match reader.read(buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => writer.write_all(&buffer[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `[site] clean_urls`: each page `x.html` (not an `index.html`) is also published at key
/// `x`, as the same bytes with the same headers, so `/x` serves it even without the router.
pub fn add_clean_copies(scan: &mut Scan) -> Result<(), String> {
    let keys: Vec<&str> = scan.files.iter().map(|f| f.key.as_str()).collect();
    let copies = crate::routes::clean_copies(&keys)?;
    let index: std::collections::HashMap<&str, usize> =
        scan.files.iter().enumerate().map(|(i, f)| (f.key.as_str(), i)).collect();
    let mut extra = Vec::with_capacity(copies.len());
    for (page, key) in copies {
        let file = &scan.files[index[page.as_str()]];
        let mut copy = file.clone();
        copy.relative = Some(file.relative.clone().unwrap_or_else(|| PathBuf::from(&file.key).into_boxed_path()));
        copy.key = key;
        extra.push(copy);
    }
    scan.bytes += extra.iter().map(|f| f.size).sum::<u64>();
    scan.files.extend(extra);
    scan.files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(())
}

/// The routing files at the site root (`_redirects`, `_headers`), unless excluded: the
/// rules of `_redirects` go before `[[redirects]]`, those of `_headers` after `[[rules]]`.
/// A line skiff cannot follow is an error naming the file and the line.
pub fn read_routing_files(
    dir: &Path,
    exclude: &Excludes,
    routing: &mut crate::routes::Routing,
    rules: &mut Rules,
) -> Result<(), String> {
    for name in [crate::routes::REDIRECTS_FILE, crate::routes::HEADERS_FILE] {
        let path = dir.join(name);
        if exclude.matches(name) || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("could not read `{}`: {e}", path.display()))?;
        let label = path.display().to_string();
        if name == crate::routes::REDIRECTS_FILE {
            let mut parsed = crate::routes::parse_redirects(&text, &label)?;
            parsed.append(&mut routing.rules);
            routing.rules = parsed;
        } else {
            rules.0.extend(crate::routes::parse_headers(&text, &label)?);
        }
    }
    Ok(())
}

/// The scan, on the blocking pool while the remote state is read; with `--hash-cache`, it
/// reads and then updates the cache.
pub fn start(settings: &PublishSettings, prefix_len: usize) -> Scanning {
    let (exclude, rules, dir, use_cache) =
        (settings.exclude.clone(), settings.rules.clone(), settings.dir.clone(), settings.hash_cache);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let progress = Arc::new(ScanProgress::default());
    let counter = Arc::clone(&progress);
    let handle = tokio::task::spawn_blocking(move || {
        let cache = use_cache.then(|| crate::hashcache::HashCache::load(&dir));
        let options = ScanOptions {
            exclude: &exclude,
            rules: &rules,
            prefix_len,
            cache: cache.as_ref(),
            stop: Some(&flag),
            progress: Some(&counter),
        };
        let mut scanned = scan(&dir, options)?;
        if let Some(cache) = cache {
            cache.save(&mut std::mem::take(&mut scanned.stamps));
        }
        Ok(scanned)
    });
    Scanning(ScanState::Running { handle, stop, progress })
}

/// A scan under way (or done), to be awaited. Dropped unawaited (a publish refused before it
/// needed the files), it stops the scan: the runtime waits for blocking work at exit, so a
/// refusal would otherwise wait for the whole site to be hashed, and then update the cache.
pub struct Scanning(ScanState);

enum ScanState {
    Running {
        handle: tokio::task::JoinHandle<Result<Scan, ScanError>>,
        stop: Arc<AtomicBool>,
        progress: Arc<ScanProgress>,
    },
    Done(Option<Scan>),
}

impl Scanning {
    /// A scan that has finished.
    pub fn done(scanned: Scan) -> Self {
        Self(ScanState::Done(Some(scanned)))
    }

    /// How far it has got (`None` once done).
    pub fn progress(&self) -> Option<Arc<ScanProgress>> {
        match &self.0 {
            ScanState::Running { progress, .. } => Some(Arc::clone(progress)),
            ScanState::Done(_) => None,
        }
    }
}

impl std::future::Future for Scanning {
    type Output = Result<Result<Scan, ScanError>, tokio::task::JoinError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            ScanState::Running { handle, .. } => std::pin::Pin::new(handle).poll(cx),
            ScanState::Done(scanned) => std::task::Poll::Ready(Ok(Ok(scanned.take().expect("a scan is awaited once")))),
        }
    }
}

impl Drop for Scanning {
    fn drop(&mut self) {
        // Once the scan has finished, this changes nothing.
        if let ScanState::Running { stop, .. } = &self.0 {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn options_for(config: &Config) -> ScanOptions<'_> {
        ScanOptions::of(config)
    }

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("skiff.toml")).unwrap()
    }

    fn write(root: &Path, rel: &str, body: &[u8]) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    #[test]
    fn scans_keys_sizes_hashes_and_headers() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.html", b"<h1>hi</h1>");
        write(dir.path(), "a/b/app.js", b"x");
        write(dir.path(), ".git/config", b"secret");
        write(dir.path(), "a/.DS_Store", b"junk");
        let config = config("[[rules]]\nmatch = \"**/*.js\"\ncache_control = \"max-age=1\"\n");
        let scan = scan(dir.path(), options_for(&config)).unwrap();
        let keys: Vec<_> = scan.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a/b/app.js", "index.html"]);
        assert_eq!(scan.excluded, 0);
        assert_eq!(scan.left_out, [".git/", "a/.DS_Store"], "by the guard; .git/ is pruned without being walked");
        assert_eq!(scan.bytes, 12);
        let js = &scan.files[0];
        assert_eq!(
            js.blake3.to_hex(),
            "3ae7d805f6789a6402acb70ad4096a85a56bf6804eaf25c0493ac697548d30b5",
            "BLAKE3 of `x`"
        );
        assert_eq!(js.headers.cache_control.as_deref(), Some("max-age=1"));
        assert_eq!(js.headers.content_type, "text/javascript; charset=utf-8");
        assert!(scan.files[1].is_html());
    }

    #[test]
    fn a_project_root_is_told_from_a_built_site() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.html", b"x");
        assert_eq!(project_root(dir.path()), None, "a built site");
        write(dir.path(), "next.config.mjs", b"export default {}");
        write(dir.path(), "public/favicon.ico", b"x");
        write(dir.path(), "out/index.html", b"x");
        let root = project_root(dir.path()).unwrap();
        assert_eq!(
            root,
            ProjectRoot { marker: "next.config.mjs".into(), output: Some("out".into()) },
            "out has the pages"
        );
        assert!(root.refusal(dir.path()).contains("out"), "{}", root.refusal(dir.path()));
    }

    #[test]
    fn gzip_rule_hashes_the_compressed_bytes_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "style.css", &b"body { color: red }\n".repeat(100));
        let config = config("[[rules]]\nmatch = \"*.css\"\ngzip = true\n");
        let first = scan(dir.path(), options_for(&config)).unwrap();
        let second = scan(dir.path(), options_for(&config)).unwrap();
        let file = &first.files[0];
        assert_eq!(file.headers.content_encoding.as_deref(), Some("gzip"));
        assert!(file.size < 2000);
        assert_ne!(file.upload_path(), file.source());
        assert_eq!(file.blake3, second.files[0].blake3);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(File::open(file.upload_path()).unwrap()).read_to_string(&mut plain).unwrap();
        assert_eq!(plain.len(), 2000);
    }

    #[test]
    fn missing_empty_and_file_roots_are_refused() {
        let config = config("");
        let dir = tempfile::tempdir().unwrap();
        let missing = scan(&dir.path().join("nope"), options_for(&config)).unwrap_err();
        assert!(matches!(missing, ScanError::Missing(_)), "{missing}");
        let empty = scan(dir.path(), options_for(&config)).unwrap_err();
        assert!(empty.to_string().contains("no files to publish"), "{empty}");
        write(dir.path(), "f.txt", b"x");
        let file = scan(&dir.path().join("f.txt"), options_for(&config)).unwrap_err();
        assert!(matches!(file, ScanError::NotADirectory(_)), "{file}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_inside_are_followed_escapes_and_loops_are_errors() {
        use std::os::unix::fs::symlink;
        let config = config("");
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.txt", b"s");
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "real/a.txt", b"a");
        symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
        let scanned = scan(dir.path(), options_for(&config)).unwrap();
        let keys: Vec<_> = scanned.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["alias/a.txt", "real/a.txt"]);

        symlink(outside.path(), dir.path().join("escape")).unwrap();
        let err = scan(dir.path(), options_for(&config)).unwrap_err().to_string();
        assert!(err.contains("escape") && err.contains("outside the site directory"), "{err}");
        std::fs::remove_file(dir.path().join("escape")).unwrap();

        symlink(dir.path(), dir.path().join("real/loop")).unwrap();
        let err = scan(dir.path(), options_for(&config)).unwrap_err().to_string();
        assert!(err.contains("loop"), "{err}");
    }

    #[test]
    fn state_directory_is_reserved_at_any_depth() {
        for path in [".skiff/manifest.json", "docs/.skiff/manifest.json"] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), path, b"{}");
            let included = config("[deploy]\ninclude = [\"**/.skiff/**\"]\n");
            let err = scan(dir.path(), options_for(&included)).unwrap_err().to_string();
            assert!(err.contains(".skiff/") && err.contains(path), "{err}");
            // Without `include`, the guard leaves the dot-directory out like any other.
            let err = scan(dir.path(), options_for(&config(""))).unwrap_err().to_string();
            assert!(err.contains("no files to publish (1 excluded)"), "{err}");
        }
    }

    #[test]
    fn a_file_keeps_its_path_only_where_the_key_differs() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a/plain.html", b"p");
        write(dir.path(), "cafe\u{301}.html", b"decomposed");
        let scanned = scan(dir.path(), options_for(&config(""))).unwrap();
        let keys: Vec<_> = scanned.files.iter().map(|f| (f.key.as_str(), f.relative.is_some())).collect();
        assert_eq!(keys, [("a/plain.html", false), ("caf\u{e9}.html", true)]);
        for file in &scanned.files {
            assert!(file.source().is_file(), "{}", file.source().display());
            assert!(file.source().starts_with(dir.path()));
        }
    }

    #[test]
    fn names_that_collide_once_normalised_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "caf\u{e9}.html", b"composed");
        write(dir.path(), "cafe\u{301}.html", b"decomposed");
        let err = scan(dir.path(), options_for(&config(""))).unwrap_err().to_string();
        assert!(err.contains("same key") && err.contains("NFC"), "{err}");
    }

    #[test]
    fn a_stopped_scan_gives_no_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.html", b"x");
        let config = config("");
        let stop = std::sync::atomic::AtomicBool::new(true);
        let err = scan(dir.path(), ScanOptions { stop: Some(&stop), ..options_for(&config) }).unwrap_err();
        assert!(matches!(err, ScanError::Stopped), "{err}");
        stop.store(false, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(scan(dir.path(), ScanOptions { stop: Some(&stop), ..options_for(&config) }).unwrap().files.len(), 1);
    }

    #[test]
    fn files_with_the_same_headers_share_one_copy_of_each_value() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.js", b"1");
        write(dir.path(), "b/c.js", b"2");
        let config = config("[[rules]]\nmatch = \"**\"\ncache_control = \"max-age=7\"\ngzip = true\n");
        let scan = scan(dir.path(), options_for(&config)).unwrap();
        let [a, c] = &scan.files[..] else { panic!("two files: {:?}", scan.files) };
        let shared =
            |x: &Option<HeaderValue>, y: &Option<HeaderValue>| x.as_ref().unwrap().is_shared_with(y.as_ref().unwrap());
        assert!(a.headers.content_type.is_shared_with(&c.headers.content_type));
        assert!(shared(&a.headers.cache_control, &c.headers.cache_control));
        assert!(shared(&a.headers.content_encoding, &c.headers.content_encoding));
        assert_eq!(HeaderValue::new("max-age=7"), "max-age=7");
        assert!(HeaderValue::new("max-age=7").is_shared_with(a.headers.cache_control.as_ref().unwrap()));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.html", b"x");
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let scanned = scan(dir.path(), options_for(&config(""))).unwrap();
        assert_eq!(scanned.files.len(), 1, "a FIFO is never opened (reading it would hang)");
        assert!(
            scanned.warnings.iter().any(|w| w.contains("pipe") && w.contains("not a regular file")),
            "{:?}",
            scanned.warnings
        );
    }

    #[cfg(unix)]
    #[test]
    fn excluded_links_and_directories_are_not_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.html", b"x");
        write(dir.path(), "node_modules/pkg/a.js", b"x");
        symlink("/", dir.path().join("node_modules/pkg/root")).unwrap();
        symlink(dir.path().join("nowhere"), dir.path().join("broken.tmp")).unwrap();
        let config = config("[deploy]\nexclude = [\"node_modules/**\", \"*.tmp\"]\n");
        let scanned = scan(dir.path(), options_for(&config)).unwrap();
        let keys: Vec<_> = scanned.files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["index.html"]);
    }

    #[test]
    fn digest_hex_round_trip() {
        let (_, digest) = hash_file(Path::new("Cargo.toml")).unwrap();
        assert_eq!(Digest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(Digest::from_hex("zz"), None);
    }
}
