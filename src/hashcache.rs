//! An opt-in local cache of file hashes (`--hash-cache`, `[deploy] hash_cache = true`): a
//! file whose size, modification time and inode are as last seen is not read again. It
//! trusts what rsync's quick check trusts, so it is off by default: the default scan reads
//! every byte. Files touched in the last two seconds are never cached (their time stamp may
//! not change on the next write within the file system's resolution).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::scan::Digest;

/// The cache file format.
const FORMAT: u32 = 1;
/// Files modified this recently are hashed and not cached.
const SETTLE_NANOS: i128 = 2_000_000_000;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode (0 where there is none).
    pub inode: u64,
}

impl Stamp {
    /// The stamp of a file's metadata; `None` when the time is unknown or too recent.
    pub fn of(meta: &std::fs::Metadata, now_ns: i128) -> Option<Self> {
        let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let mtime_ns = i128::try_from(mtime.as_nanos()).ok()?;
        if now_ns - mtime_ns < SETTLE_NANOS {
            return None;
        }
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self { size: meta.len(), mtime_ns, inode })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    sha256: Digest,
}

/// The cached hashes of one site directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HashCache {
    format: u32,
    entries: HashMap<PathBuf, Entry>,
    #[serde(skip)]
    file: PathBuf,
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0))
}

/// Where the caches live: `SKIFF_CACHE_DIR`, else `$XDG_CACHE_HOME/skiff`, else
/// `~/.cache/skiff`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SKIFF_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("skiff"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|home| PathBuf::from(home).join(".cache").join("skiff"))
}

impl HashCache {
    /// The cache of `site_dir` (empty when there is none yet or it cannot be read).
    pub fn load(site_dir: &Path) -> Self {
        let canonical = site_dir.canonicalize().unwrap_or_else(|_| site_dir.to_path_buf());
        let name = format!("hashes-{}.json", &Digest::of(canonical.as_os_str().as_encoded_bytes()).to_hex()[..16]);
        let Some(file) = cache_dir().map(|dir| dir.join(name)) else { return Self::default() };
        let mut cache: Self = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|c: &Self| c.format == FORMAT)
            .unwrap_or_default();
        cache.format = FORMAT;
        cache.file = file;
        cache
    }

    /// The hash of `path` if its stamp is as cached.
    pub fn lookup(&self, path: &Path, stamp: Stamp) -> Option<Digest> {
        self.entries.get(path).filter(|e| e.stamp == stamp).map(|e| e.sha256)
    }

    /// Replace the entries with these (the files of this scan) and write the cache; failing
    /// to write it only costs the next run some reading. The file is written from `seen`
    /// itself: a second map of 100k paths would be ~25 MB more.
    pub fn save(mut self, seen: &[(PathBuf, Stamp, Digest)]) {
        /// The file's JSON: the same shape as [`HashCache`] serialises to.
        struct Fresh<'a>(&'a [(PathBuf, Stamp, Digest)]);
        impl Serialize for Fresh<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                #[derive(Serialize)]
                struct EntryRef<'b> {
                    stamp: &'b Stamp,
                    sha256: &'b Digest,
                }
                serializer.collect_map(self.0.iter().map(|(path, stamp, sha256)| (path, EntryRef { stamp, sha256 })))
            }
        }
        #[derive(Serialize)]
        struct File<'a> {
            format: u32,
            entries: Fresh<'a>,
        }
        if self.file.as_os_str().is_empty() {
            return;
        }
        let unchanged = seen.len() == self.entries.len()
            && seen.iter().all(|(p, stamp, sha256)| {
                self.entries.get(p).is_some_and(|o| o.stamp == *stamp && o.sha256 == *sha256)
            });
        if unchanged {
            return;
        }
        self.entries = HashMap::new();
        let written = (|| -> std::io::Result<()> {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let temp = tempfile::NamedTempFile::new_in(dir)?;
            let mut writer = std::io::BufWriter::new(temp.as_file());
            serde_json::to_writer(&mut writer, &File { format: FORMAT, entries: Fresh(seen) })?;
            writer.flush()?;
            drop(writer);
            temp.persist(&self.file).map_err(|e| e.error)?;
            Ok(())
        })();
        if let Err(err) = written {
            tracing::debug!("could not write the hash cache {}: {err}", self.file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_trusted_only_while_its_stamp_holds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.css");
        std::fs::write(&file, b"a").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(Stamp::of(&meta, now_ns()), None, "too fresh to cache");
        let later = now_ns() + 10 * SETTLE_NANOS;
        let stamp = Stamp::of(&meta, later).unwrap();
        let mut cache = HashCache::default();
        cache.entries.insert(file.clone(), Entry { stamp, sha256: Digest([7; 32]) });
        assert_eq!(cache.lookup(&file, stamp), Some(Digest([7; 32])));
        assert_eq!(cache.lookup(&file, Stamp { size: 2, ..stamp }), None);
        assert_eq!(cache.lookup(&file, Stamp { mtime_ns: stamp.mtime_ns + 1, ..stamp }), None);
        assert_eq!(cache.lookup(&file, Stamp { inode: stamp.inode + 1, ..stamp }), None);
    }

    #[test]
    fn what_is_saved_is_what_is_loaded() {
        let site = tempfile::tempdir().unwrap();
        let mut cache = HashCache::load(site.path());
        let home = tempfile::tempdir().unwrap();
        cache.file = home.path().join("hashes.json");
        let stamp = Stamp { size: 3, mtime_ns: 1_700_000_000_000_000_000, inode: 42 };
        let path = site.path().join("a b/ü.css");
        cache.save(&[(path.clone(), stamp, Digest([5; 32]))]);
        let bytes = std::fs::read(home.path().join("hashes.json")).unwrap();
        let loaded: HashCache = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(loaded.format, FORMAT);
        assert_eq!(loaded.lookup(&path, stamp), Some(Digest([5; 32])));
        assert_eq!(loaded.entries.len(), 1);
    }
}
