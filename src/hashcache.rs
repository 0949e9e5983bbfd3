//! An opt-in local cache of file hashes (`--hash-cache`, `[deploy] hash_cache = true`): a
//! file whose size, modification time and inode are as last seen is not read again. It
//! trusts what rsync's quick check trusts, so it is off by default: the default scan reads
//! every byte. Files touched in the last two seconds are never cached (their time stamp may
//! not change on the next write within the file system's resolution).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::object::Digest;
use crate::sorted_map::SortedMap;

/// The cache file format: 2 since the scan hashes with BLAKE3 (a format-1 file, of SHA-256
/// digests, is not read: every file is hashed once more).
const FORMAT: u32 = 2;
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    blake3: Digest,
}

/// The cached hashes of one site directory. A file the scan finds as cached is marked as
/// seen rather than copied: a no-op at 100k files keeps one list of entries, not two.
#[derive(Debug, Default)]
pub struct HashCache {
    /// Path → entry, sorted by path.
    entries: Vec<(PathBuf, Entry)>,
    /// Per entry: the scan found it unchanged.
    seen: Vec<AtomicBool>,
    file: PathBuf,
}

/// The cache file: `{"format": 2, "entries": {path: {"stamp": …, "blake3": …}}}`.
#[derive(Serialize, Deserialize)]
struct CacheFile<E> {
    format: u32,
    entries: E,
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
        Self::from_file(file)
    }

    /// The cache kept in `file`.
    fn from_file(file: PathBuf) -> Self {
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheFile<SortedMap<PathBuf, Entry>>>(&bytes).ok())
            .filter(|c| c.format == FORMAT)
            .map(|c| c.entries.0)
            .unwrap_or_default();
        let seen = entries.iter().map(|_| AtomicBool::new(false)).collect();
        Self { entries, seen, file }
    }

    /// The hash of `path` if its stamp is as cached; the entry is then kept by [`Self::save`].
    pub fn lookup(&self, path: &Path, stamp: Stamp) -> Option<Digest> {
        let i = self.entries.binary_search_by(|(p, _)| p.as_path().cmp(path)).ok()?;
        let entry = &self.entries[i].1;
        (entry.stamp == stamp).then(|| {
            self.seen[i].store(true, Ordering::Relaxed);
            entry.blake3
        })
    }

    /// Keep the entries the scan found unchanged, add `fresh` (the files it hashed), drop
    /// the rest, and write the cache; failing to write it only costs the next run some
    /// reading. Nothing is written when nothing changed.
    pub fn save(self, fresh: &mut [(PathBuf, Stamp, Digest)]) {
        /// Both lists, merged in path order, as the file's map.
        struct Merged<'a> {
            kept: &'a [(PathBuf, Entry)],
            seen: &'a [AtomicBool],
            fresh: &'a [(PathBuf, Stamp, Digest)],
        }
        impl Serialize for Merged<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let kept = self
                    .kept
                    .iter()
                    .zip(self.seen)
                    .filter(|(_, seen)| seen.load(Ordering::Relaxed))
                    .map(|((path, entry), _)| (path, *entry));
                let fresh =
                    self.fresh.iter().map(|(path, stamp, blake3)| (path, Entry { stamp: *stamp, blake3: *blake3 }));
                let (mut kept, mut fresh) = (kept.peekable(), fresh.peekable());
                let mut map = serializer.serialize_map(None)?;
                loop {
                    let next = match (kept.peek(), fresh.peek()) {
                        (Some(k), Some(f)) if f.0 <= k.0 => {
                            // A path both kept and fresh cannot happen (a hit is not hashed);
                            // if it did, the fresh one wins.
                            if f.0 == k.0 {
                                kept.next();
                            }
                            fresh.next()
                        }
                        (Some(_), _) => kept.next(),
                        (None, Some(_)) => fresh.next(),
                        (None, None) => break,
                    };
                    if let Some((path, entry)) = next {
                        serde::ser::SerializeMap::serialize_entry(&mut map, path, &entry)?;
                    }
                }
                serde::ser::SerializeMap::end(map)
            }
        }
        if self.file.as_os_str().is_empty() {
            return;
        }
        let kept = self.seen.iter().filter(|s| s.load(Ordering::Relaxed)).count();
        if fresh.is_empty() && kept == self.entries.len() {
            return;
        }
        fresh.sort_by(|a, b| a.0.cmp(&b.0));
        let merged = Merged { kept: &self.entries, seen: &self.seen, fresh: &*fresh };
        let written = (|| -> std::io::Result<()> {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let temp = tempfile::NamedTempFile::new_in(dir)?;
            let mut writer = std::io::BufWriter::new(temp.as_file());
            serde_json::to_writer(&mut writer, &CacheFile { format: FORMAT, entries: merged })?;
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
        assert_eq!(Stamp::of(&meta, crate::time::now_ns()), None, "too fresh to cache");
        let later = crate::time::now_ns() + 10 * SETTLE_NANOS;
        let stamp = Stamp::of(&meta, later).unwrap();
        let cache = HashCache {
            entries: vec![(file.clone(), Entry { stamp, blake3: Digest([7; 32]) })],
            seen: vec![AtomicBool::new(false)],
            file: PathBuf::new(),
        };
        assert_eq!(cache.lookup(&file, Stamp { size: 2, ..stamp }), None);
        assert_eq!(cache.lookup(&file, Stamp { mtime_ns: stamp.mtime_ns + 1, ..stamp }), None);
        assert_eq!(cache.lookup(&file, Stamp { inode: stamp.inode + 1, ..stamp }), None);
        assert!(!cache.seen[0].load(Ordering::Relaxed), "a miss is not kept");
        assert_eq!(cache.lookup(&file, stamp), Some(Digest([7; 32])));
        assert!(cache.seen[0].load(Ordering::Relaxed));
    }

    #[test]
    fn a_save_keeps_what_was_seen_adds_what_was_hashed_and_drops_the_rest() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join("hashes.json");
        let stamp = |n: u64| Stamp { size: n, mtime_ns: 1_700_000_000_000_000_000, inode: n };
        let (a, b, c) = (PathBuf::from("/site/a b/ü.css"), PathBuf::from("/site/b.js"), PathBuf::from("/site/c.png"));
        HashCache::from_file(file.clone())
            .save(&mut [(c.clone(), stamp(3), Digest([3; 32])), (a.clone(), stamp(1), Digest([1; 32]))]);
        let first = HashCache::from_file(file.clone());
        assert_eq!(first.entries.len(), 2);
        assert_eq!(first.lookup(&a, stamp(1)), Some(Digest([1; 32])), "a is seen; c is not");
        first.save(&mut [(b.clone(), stamp(2), Digest([2; 32]))]);
        let second = HashCache::from_file(file.clone());
        let paths: Vec<_> = second.entries.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, [a.clone(), b.clone()], "c was not in the scan: dropped");
        assert_eq!(second.lookup(&b, stamp(2)), Some(Digest([2; 32])));
        assert_eq!(second.lookup(&a, stamp(1)), Some(Digest([1; 32])));
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        second.save(&mut []);
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            written,
            "all seen, nothing new: not written"
        );
        assert_eq!(HashCache::from_file(file).entries.len(), 2);
    }
}
