//! skiff's remote state for in-place publishes: the manifest at `<prefix>.skiff/manifest.json`
//! that records, per key, what skiff stored (BLAKE3, size, headers, ETag). One GET of it
//! replaces a HEAD per object. Pure data and JSON here (but for [`adopt_format_1`], which
//! has `scan` read files); `store` moves the bytes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::object::{Digest, Headers};
use crate::scan::LocalFile;
use crate::sorted_map::SortedMap;

/// The manifest's key, relative to the prefix.
pub const MANIFEST_KEY: &str = ".skiff/manifest.json";
/// The manifest format this version writes. It reads format 1 too, whose entries name their
/// bytes by SHA-256 rather than BLAKE3 ([`Manifest::adopt`]).
pub const FORMAT: u32 = 2;

/// What skiff stored under a prefix, as of its last publish. Read with
/// [`Manifest::parse`] or [`Manifest::from_reader`], which check the format first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Format version; a newer one is refused rather than misread.
    pub format: u32,
    /// The skiff that wrote it.
    pub generator: String,
    /// Key (relative to the prefix) → what was stored.
    pub files: Files,
    /// Objects whose files are gone but which stay for `[deploy] delete_after` (skew
    /// protection): key → when they left the site (seconds since the epoch).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub retired: BTreeMap<String, i64>,
}

/// A manifest's `files`: key → entry, in key order. A sorted Vec rather than a map: read
/// straight into it, 100k entries take ~16 MB, where building a B-tree map from them held
/// both at once (~35 MB more at the peak of a no-op publish).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files(Vec<(String, Entry)>);

impl Files {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// The entry of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.position(key).ok().map(|i| &mut self.0[i].1)
    }

    /// Whether `key` has an entry.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Set the entry of `key`.
    pub fn insert(&mut self, key: String, entry: Entry) {
        match self.position(&key) {
            Ok(i) => self.0[i].1 = entry,
            Err(i) => self.0.insert(i, (key, entry)),
        }
    }

    /// Keep only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Entry) -> bool) {
        self.0.retain(|(k, e)| keep(k, e));
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Key and entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.0.iter().map(|(k, e)| (k, e))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Index<&str> for Files {
    type Output = Entry;
    fn index(&self, key: &str) -> &Entry {
        self.get(key).unwrap_or_else(|| panic!("no manifest entry for `{key}`"))
    }
}

impl<'a> IntoIterator for &'a Files {
    type Item = (&'a String, &'a Entry);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, Entry)>, fn(&'a (String, Entry)) -> Self::Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, e)| (k, e))
    }
}

impl Serialize for Files {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Files {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SortedMap::deserialize(deserializer).map(|map| Files(map.0))
    }
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// BLAKE3 of the stored bytes. `None` only in an entry of a format-1 manifest whose
    /// bytes no file of this publish has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<Digest>,
    /// SHA-256 of the stored bytes, as format 1 named them: kept only while the BLAKE3 is
    /// not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// Size of the stored bytes.
    pub size: u64,
    /// The headers it was stored with.
    #[serde(flatten)]
    pub headers: Headers,
    /// The ETag S3 gave it, as S3 quotes it; a different ETag in a listing means someone else
    /// changed the object (drift).
    pub etag: String,
}

/// Read field by field: the derived reader of a `flatten`ed struct first copies every
/// entry into an owned map of strings, which at 100k entries cost more CPU than the rest of
/// the parse. Unknown fields are skipped, as before.
impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IgnoredAny, MapAccess, Visitor};
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Field {
            Blake3,
            Sha256,
            Size,
            ContentType,
            CacheControl,
            ContentEncoding,
            Etag,
            #[serde(other)]
            Other,
        }
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a manifest entry")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                /// A field given twice is an error, as in a derived reader.
                fn once<T, E: Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
                    match slot.replace(value) {
                        Some(_) => Err(E::duplicate_field(name)),
                        None => Ok(()),
                    }
                }
                let (mut blake3, mut sha256, mut size, mut content_type, mut etag) = (None, None, None, None, None);
                let (mut cache_control, mut content_encoding) = (None, None);
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Blake3 => once(&mut blake3, "blake3", map.next_value()?)?,
                        Field::Sha256 => once(&mut sha256, "sha256", map.next_value()?)?,
                        Field::Size => once(&mut size, "size", map.next_value()?)?,
                        Field::ContentType => once(&mut content_type, "content_type", map.next_value()?)?,
                        Field::CacheControl => once(&mut cache_control, "cache_control", map.next_value()?)?,
                        Field::ContentEncoding => once(&mut content_encoding, "content_encoding", map.next_value()?)?,
                        Field::Etag => once(&mut etag, "etag", map.next_value()?)?,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                if blake3.is_none() && sha256.is_none() {
                    return Err(A::Error::missing_field("blake3"));
                }
                Ok(Entry {
                    sha256: sha256.filter(|_| blake3.is_none()),
                    blake3,
                    size: size.ok_or_else(|| A::Error::missing_field("size"))?,
                    headers: Headers {
                        content_type: content_type.ok_or_else(|| A::Error::missing_field("content_type"))?,
                        cache_control: cache_control.flatten(),
                        content_encoding: content_encoding.flatten(),
                    },
                    etag: etag.ok_or_else(|| A::Error::missing_field("etag"))?,
                })
            }
        }
        deserializer.deserialize_map(EntryVisitor)
    }
}

impl Entry {
    /// Whether it stores exactly these bytes. An entry known only by SHA-256 never does
    /// (until [`Manifest::adopt`] names it by BLAKE3): its object is sent again.
    pub fn holds(&self, blake3: &Digest, size: u64) -> bool {
        self.blake3.as_ref() == Some(blake3) && self.size == size
    }

    /// Whether both store the same bytes, by the same rule as [`Self::holds`].
    pub fn same_bytes(&self, other: &Entry) -> bool {
        other.blake3.as_ref().is_some_and(|blake3| self.holds(blake3, other.size))
    }
}

/// Name by BLAKE3 the entries of these manifests that a format-1 manifest named by SHA-256,
/// where a local file has their bytes: the files of a size such an entry has are read once
/// more (by [`crate::scan::sha256_to_blake3`], on all cores). Only the first publish after
/// an upgrade from format 1 pays it; without it, that publish would send every file again.
pub fn adopt_format_1<'m>(manifests: impl IntoIterator<Item = &'m mut Manifest>, local: &[LocalFile]) {
    let mut manifests: Vec<&mut Manifest> = manifests.into_iter().filter(|m| m.names_by_sha256()).collect();
    if manifests.is_empty() {
        return;
    }
    let sizes: std::collections::HashSet<u64> = manifests
        .iter()
        .flat_map(|m| m.files.iter().filter(|(_, e)| e.blake3.is_none()).map(|(_, e)| e.size))
        .collect();
    let candidates: Vec<&LocalFile> = local.iter().filter(|f| sizes.contains(&f.size)).collect();
    let table = crate::scan::sha256_to_blake3(&candidates);
    for manifest in &mut manifests {
        let adopted = manifest.adopt(&table);
        tracing::debug!(adopted, "named format-1 manifest entries by BLAKE3");
    }
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Written by a newer skiff.
    #[error("the manifest has format {0}, newer than this skiff understands ({FORMAT}): upgrade skiff")]
    TooNew(u32),
    /// Not a manifest.
    #[error("the manifest is not valid: {0}")]
    Invalid(String),
}

impl Manifest {
    /// An empty manifest of the current format.
    pub fn new() -> Self {
        Self { format: FORMAT, generator: generator(), files: Files::default(), retired: BTreeMap::new() }
    }

    /// Parse a manifest's JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        Self::read(&mut serde_json::Deserializer::from_slice(bytes))
    }

    /// Parse a manifest as its bytes arrive, without holding them all (~25 MB at 100k files).
    pub fn from_reader(reader: impl std::io::Read) -> Result<Self, ManifestError> {
        Self::read(&mut serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(64 * 1024, reader)))
    }

    /// One pass: `format` (which skiff writes first) is checked as soon as it is read, so a
    /// newer manifest is refused rather than misread.
    fn read<'de, R: serde_json::de::Read<'de>>(de: &mut serde_json::Deserializer<R>) -> Result<Self, ManifestError> {
        use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
        struct Checked<'c>(&'c std::cell::Cell<Option<u32>>);
        impl<'de> DeserializeSeed<'de> for Checked<'_> {
            type Value = Manifest;
            fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Manifest, D::Error> {
                deserializer.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Checked<'_> {
            type Value = Manifest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a skiff manifest")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Manifest, A::Error> {
                let (mut format, mut generator, mut files, mut retired) = (None, None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "format" => {
                            let found: u32 = map.next_value()?;
                            self.0.set(Some(found));
                            if found > FORMAT {
                                return Err(A::Error::custom("newer format"));
                            }
                            format = Some(found);
                        }
                        "generator" => generator = Some(map.next_value()?),
                        "files" => files = Some(map.next_value::<Files>()?),
                        "retired" => retired = Some(map.next_value::<BTreeMap<String, i64>>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Manifest {
                    format: format.ok_or_else(|| A::Error::missing_field("format"))?,
                    generator: generator.ok_or_else(|| A::Error::missing_field("generator"))?,
                    files: files.ok_or_else(|| A::Error::missing_field("files"))?,
                    retired: retired.unwrap_or_default(),
                })
            }
        }
        let format = std::cell::Cell::new(None);
        let parsed = Checked(&format).deserialize(&mut *de).and_then(|manifest| de.end().map(|()| manifest));
        match (parsed, format.get()) {
            (Ok(manifest), _) => Ok(manifest),
            (Err(_), Some(newer)) if newer > FORMAT => Err(ManifestError::TooNew(newer)),
            (Err(err), _) => Err(ManifestError::Invalid(err.to_string())),
        }
    }

    /// The manifest after a publish: a file whose action succeeded (`done`: key → new ETag)
    /// or that was unchanged is recorded as it is now; a file whose action failed or did not
    /// run keeps its old entry (S3 writes are atomic, so the old object is still there);
    /// keys that are not local any more are dropped. It borrows from `local` and `old`
    /// rather than copying them: at 100k files a copy is tens of MB.
    pub fn next<'a>(
        local: &'a [LocalFile],
        old: Option<&'a Manifest>,
        unchanged: &'a [String],
        done: &'a HashMap<&'a str, String>,
    ) -> NextManifest<'a> {
        // The scan sorts by key; the manifest's map is in key order too.
        debug_assert!(local.windows(2).all(|w| w[0].key < w[1].key));
        NextManifest { local, old, unchanged, done, retired: None }
    }

    /// Whether some entry is known only by its SHA-256 (a manifest of format 1).
    pub fn names_by_sha256(&self) -> bool {
        self.files.iter().any(|(_, entry)| entry.blake3.is_none())
    }

    /// Name by BLAKE3 the entries known only by SHA-256 whose bytes a local file has
    /// (`sha256_to_blake3`: SHA-256 → BLAKE3 of the site's files). Returns how many; the rest
    /// stay as they are, and their objects are sent again.
    pub fn adopt(&mut self, sha256_to_blake3: &HashMap<Digest, Digest>) -> usize {
        let mut adopted = 0;
        for (_, entry) in &mut self.files.0 {
            if let (None, Some(blake3)) = (entry.blake3, entry.sha256.and_then(|s| sha256_to_blake3.get(&s))) {
                entry.blake3 = Some(*blake3);
                entry.sha256 = None;
                adopted += 1;
            }
        }
        adopted
    }

    /// The part of a delta deploy's manifest that its own prefix holds: the entries that
    /// differ from its base's (bytes or headers).
    #[must_use]
    pub fn own_part(mut self, base: &Manifest) -> Self {
        self.files.retain(|key, entry| {
            base.files.get(key).is_none_or(|b| !b.same_bytes(entry) || b.headers != entry.headers)
        });
        self
    }

    /// The headers of the site's `404.html`, when it has one.
    pub fn not_found_page(&self) -> Option<&Headers> {
        self.files.get(NOT_FOUND_PAGE).map(|entry| &entry.headers)
    }
}

/// A manifest about to be written, made by [`Manifest::next`]. Its entries are worked out
/// from the scan, the old manifest and the ETags each time they are walked, rather than
/// collected: at 100k files a Vec of them is ~6 MB.
#[derive(Debug, Clone, Copy)]
pub struct NextManifest<'a> {
    local: &'a [LocalFile],
    old: Option<&'a Manifest>,
    unchanged: &'a [String],
    done: &'a HashMap<&'a str, String>,
    retired: Option<&'a BTreeMap<String, i64>>,
}

/// Counts what is written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An [`Entry`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRef<'a> {
    /// BLAKE3 of the stored bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<&'a Digest>,
    /// SHA-256 of the stored bytes, while the BLAKE3 is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<&'a Digest>,
    /// Size of the stored bytes.
    pub size: u64,
    /// The headers it was stored with.
    #[serde(flatten)]
    pub headers: &'a Headers,
    /// The ETag.
    pub etag: &'a str,
}

impl<'a> From<&'a Entry> for EntryRef<'a> {
    fn from(entry: &'a Entry) -> Self {
        Self {
            blake3: entry.blake3.as_ref(),
            sha256: entry.sha256.as_ref(),
            size: entry.size,
            headers: &entry.headers,
            etag: &entry.etag,
        }
    }
}

impl<'a> NextManifest<'a> {
    /// With the objects kept for `[deploy] delete_after` (see [`Manifest::retired`]).
    #[must_use]
    pub fn retiring(self, retired: &'a BTreeMap<String, i64>) -> Self {
        Self { retired: Some(retired), ..self }
    }

    /// What the manifest records for `file`: as it is now when its action succeeded or it
    /// was unchanged, else its old entry, if any.
    fn entry(&self, file: &'a LocalFile) -> Option<EntryRef<'a>> {
        let old_entry = || self.old.and_then(|m| m.files.get(&file.key));
        let etag = self.done.get(file.key.as_str()).map(String::as_str).or_else(|| {
            self.unchanged.binary_search(&file.key).ok().and_then(|_| old_entry()).map(|e| e.etag.as_str())
        });
        match etag {
            Some(etag) => Some(EntryRef {
                blake3: Some(&file.blake3),
                sha256: None,
                size: file.size,
                headers: &file.headers,
                etag,
            }),
            None => old_entry().map(EntryRef::from),
        }
    }

    /// Key → entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, EntryRef<'a>)> + 'a {
        let this = *self;
        self.local.iter().filter_map(move |file| Some((file.key.as_str(), this.entry(file)?)))
    }

    /// The JSON that is stored: the same bytes a [`Manifest`] with these entries serialises to.
    pub fn to_json(self) -> Vec<u8> {
        // Measured first, then written into a buffer of that size: grown by doubling, the
        // buffer of a 25 MB manifest (100k files) would reach 32 MB.
        let mut counter = Counter(0);
        self.write_json(&mut counter).expect("counting cannot fail");
        let mut bytes = Vec::with_capacity(counter.0);
        self.write_json(&mut bytes).expect("a Vec cannot fail to grow");
        bytes
    }

    /// Write [`NextManifest::to_json`]'s bytes to `writer`.
    pub fn write_json(&self, writer: impl std::io::Write) -> std::io::Result<()> {
        struct Files<'a>(NextManifest<'a>);
        impl Serialize for Files<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.entries())
            }
        }
        #[derive(Serialize)]
        struct Json<'b, 'a> {
            format: u32,
            generator: &'b str,
            files: Files<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retired: Option<&'a BTreeMap<String, i64>>,
        }
        let retired = self.retired.filter(|r| !r.is_empty());
        let json = Json { format: FORMAT, generator: &generator(), files: Files(*self), retired };
        // Plain strings, numbers and maps always serialise: an error is the writer's.
        serde_json::to_writer(writer, &json).map_err(std::io::Error::from)
    }

    /// Whether it records the same objects as `old` (the generator does not count).
    pub fn same_files(&self, old: &Manifest) -> bool {
        let retired = self.retired.map_or(0, BTreeMap::len) == old.retired.len()
            && self.retired.is_none_or(|r| r == &old.retired);
        retired && self.entries().eq(old.files.iter().map(|(key, entry)| (key.as_str(), EntryRef::from(entry))))
    }

    /// The headers of the site's `404.html`, when it has one.
    pub fn not_found_page(&self) -> Option<&'a Headers> {
        let i = self.local.binary_search_by(|file| file.key.as_str().cmp(NOT_FOUND_PAGE)).ok()?;
        Some(self.entry(&self.local[i])?.headers)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries().count()
    }
}

impl Default for Manifest {
    fn default() -> Self {
        Self::new()
    }
}

fn generator() -> String {
    format!("skiff {}", env!("CARGO_PKG_VERSION"))
}

/// The page a site shows for a missing path, relative to its root.
pub const NOT_FOUND_PAGE: &str = "404.html";

/// Where CloudFront fetches the error page from: a copy of the live production 404 page
/// (error pages bypass the router function, so they need a fixed key).
pub const ERROR_PAGE_KEY: &str = "_skiff/404.html";

/// The key of a provisioned site's state, at the bucket's root.
pub const SITE_STATE_KEY: &str = "_skiff/state.json";

/// One target's deploys, oldest first, and the live one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The branch of a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The live deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
    /// Every deploy kept, oldest first.
    #[serde(default)]
    pub deploys: Vec<Deploy>,
    /// Production only: a newer deploy served to a share of visitors (`publish --canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
}

/// A canary deploy and the share of visitors it gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// The deploy.
    pub id: String,
    /// Percent of visitors, 1 to 99.
    pub weight: u8,
}

/// One deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// Its id (sorts by time).
    pub id: String,
    /// When it was started (seconds since the epoch).
    pub created: i64,
    /// The git commit, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Files in it.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Whether every file is in it (only complete deploys go live).
    pub complete: bool,
    /// A delta deploy's base, `<target>/<id>`: the deploy holds only the keys that differ
    /// from the base's, and the router serves the rest from the base (router/SPEC.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

impl Target {
    /// A deploy by id.
    pub fn deploy(&self, id: &str) -> Option<&Deploy> {
        self.deploys.iter().find(|d| d.id == id)
    }

    /// The newest complete deploy older than the live one: what `skiff rollback` goes back to.
    pub fn previous(&self) -> Option<&Deploy> {
        let live = self.live.as_deref()?;
        let position = self.deploys.iter().position(|d| d.id == live)?;
        self.deploys[..position].iter().rev().find(|d| d.complete)
    }

    /// The newest incomplete deploy after the live one: an interrupted publish whose
    /// uploads the next publish copies instead of sending again.
    pub fn interrupted(&self) -> Option<&Deploy> {
        let after_live = match self.live.as_deref().and_then(|live| self.deploys.iter().position(|d| d.id == live)) {
            Some(position) => &self.deploys[position + 1..],
            None => &self.deploys[..],
        };
        after_live.iter().rev().find(|d| !d.complete)
    }

    /// The live deploy's record.
    pub fn live_deploy(&self) -> Option<&Deploy> {
        self.live.as_deref().and_then(|id| self.deploy(id))
    }
}

/// A provisioned site's state (`_skiff/state.json`): the ids of what `skiff provision`
/// created, so the next run finds them. Fields this version does not know (written by a
/// newer skiff, or by the deploy commands) are kept as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteState {
    /// Format version.
    pub format: u32,
    /// The skiff that wrote it last.
    pub generator: String,
    /// The bucket.
    pub bucket: String,
    /// The bucket's region.
    pub region: String,
    /// The site's domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Ids of the AWS resources.
    #[serde(default)]
    pub resources: Resources,
    /// Deploy targets (`production`, `preview-<slug>`): their deploys and the live one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, Target>,
    /// Everything else, kept.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The ids `skiff provision` keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Route 53 hosted zone of the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_id: Option<String>,
    /// ACM certificate (us-east-1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// CloudFront KeyValueStore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kvs_arn: Option<String>,
    /// CloudFront Function (the router).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
    /// The version of the router provision published last ([`crate::router::VERSION`]):
    /// publish makes delta deploys only for a router that serves them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<u32>,
    /// Origin Access Control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oac_id: Option<String>,
    /// The distribution's CallerReference, chosen before it is created so a retry after an
    /// interruption cannot create a second one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_reference: Option<String>,
    /// The distribution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution_id: Option<String>,
    /// Its `dxxxx.cloudfront.net` name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution_domain: Option<String>,
}

impl SiteState {
    /// A new state for a bucket.
    pub fn new(bucket: &str, region: &str) -> Self {
        Self { format: FORMAT, generator: generator(), bucket: bucket.into(), region: region.into(), ..Self::default() }
    }

    /// Parse the stored JSON.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let state: Self = serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if state.format > FORMAT {
            return Err(ManifestError::TooNew(state.format));
        }
        Ok(state)
    }

    /// The JSON that is stored (indented: people read it).
    pub fn to_json(&self) -> Vec<u8> {
        let mut state = self.clone();
        state.generator = generator();
        serde_json::to_vec_pretty(&state).expect("a state always serialises")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn site_state_keeps_what_it_does_not_know() {
        let text = br#"{"format":1,"generator":"skiff 9","bucket":"b","region":"eu-west-1","resources":{"oac_id":"O1"},"targets":{"production":{"live":"d1"}},"later":{"x":1}}"#;
        let state = super::SiteState::parse(text).unwrap();
        assert_eq!(state.resources.oac_id.as_deref(), Some("O1"));
        assert_eq!(state.other["later"]["x"], 1);
        let again = super::SiteState::parse(&state.to_json()).unwrap();
        assert_eq!(again.targets["production"].live.as_deref(), Some("d1"));
        assert!(super::SiteState::parse(br#"{"format":99,"generator":"","bucket":"b","region":"r"}"#).is_err());
    }

    use super::*;
    use std::path::Path;

    fn file(key: &str, byte: u8) -> LocalFile {
        LocalFile {
            key: key.to_string(),
            dir: std::sync::Arc::from(Path::new("")),
            relative: None,
            gzipped: None,
            size: 1,
            blake3: Digest([byte; 32]),
            headers: Headers { content_type: "text/plain".into(), cache_control: None, content_encoding: None },
        }
    }

    #[test]
    fn round_trip_and_format_check() {
        let mut done = HashMap::new();
        done.insert("a.txt", "\"e1\"".to_string());
        let local = [file("a.txt", 1), file("b.txt", 2)];
        done.insert("b.txt", "\"e2\"".to_string());
        let manifest = Manifest::next(&local, None, &[], &done);
        let parsed = Manifest::parse(&manifest.to_json()).unwrap();
        assert!(manifest.same_files(&parsed));
        assert_eq!(parsed.files["a.txt"].etag, "\"e1\"");
        assert_eq!(parsed.files["b.txt"].blake3, Some(Digest([2; 32])));
        assert!(String::from_utf8(manifest.to_json()).unwrap().starts_with(r#"{"format":2,"#));
        assert_eq!(
            serde_json::to_vec(&parsed).unwrap(),
            manifest.to_json(),
            "the borrowed and the owned manifest write the same bytes"
        );
        let mut streamed = Vec::new();
        manifest.write_json(&mut streamed).unwrap();
        assert_eq!(streamed, manifest.to_json(), "written to a file, the manifest has the same bytes");
        assert!(!Manifest::next(&local[..1], None, &[], &done).same_files(&parsed));
        let text = String::from_utf8(manifest.to_json()).unwrap();
        assert!(text.contains("\"content_type\":\"text/plain\""), "{text}");
        assert!(matches!(Manifest::parse(br#"{"format": 9}"#), Err(ManifestError::TooNew(9))));
        assert!(matches!(Manifest::parse(b"nope"), Err(ManifestError::Invalid(_))));
        let streamed = Manifest::from_reader(&manifest.to_json()[..]).unwrap();
        assert_eq!(streamed, parsed, "read as a stream, the same manifest");
        let newer = br#"{"format": 9, "files": "a shape this skiff does not know"}"#;
        assert!(matches!(Manifest::from_reader(&newer[..]), Err(ManifestError::TooNew(9))));
        assert!(matches!(Manifest::from_reader(&manifest.to_json()[..10]), Err(ManifestError::Invalid(_))));
        assert!(
            matches!(Manifest::parse(br#"{"format": 1, "generator": "x"}"#), Err(ManifestError::Invalid(m)) if m.contains("files"))
        );
    }

    #[test]
    fn files_read_out_of_order_are_put_in_order_and_the_last_of_a_key_counts() {
        let entry = |etag: &str| {
            format!(r#"{{"sha256":"{}","size":1,"content_type":"text/plain","etag":"{etag}"}}"#, "ab".repeat(32))
        };
        let text = format!(
            r#"{{"format":1,"generator":"x","files":{{"b":{},"a":{},"b":{},"c":{}}}}}"#,
            entry("b1"),
            entry("a"),
            entry("b2"),
            entry("c")
        );
        let manifest = Manifest::parse(text.as_bytes()).unwrap();
        let etags: Vec<_> = manifest.files.iter().map(|(k, e)| (k.as_str(), e.etag.as_str())).collect();
        assert_eq!(etags, [("a", "a"), ("b", "b2"), ("c", "c")]);
        assert_eq!(manifest.files.get("b").unwrap().etag, "b2");
        assert!(manifest.files.get("d").is_none() && !manifest.files.contains_key("bb"));
    }

    #[test]
    fn failed_actions_keep_the_old_entry_and_gone_keys_drop() {
        let mut old = Manifest::new();
        for (key, byte) in [("a", 1), ("b", 2), ("gone", 3)] {
            let f = file(key, byte);
            old.files.insert(
                key.into(),
                Entry { blake3: Some(f.blake3), sha256: None, size: 1, headers: f.headers, etag: format!("old-{key}") },
            );
        }
        let local = [file("a", 1), file("b", 9), file("c", 4), file("new-failed", 5)];
        let mut done = HashMap::new();
        done.insert("c", "new-c".to_string());
        let unchanged = ["a".to_string()];
        let next = Manifest::next(&local, Some(&old), &unchanged, &done);
        let entries: Vec<_> = next.entries().collect();
        let etags: Vec<_> = entries.iter().map(|(k, e)| (*k, e.etag)).collect();
        assert_eq!(etags, [("a", "old-a"), ("b", "old-b"), ("c", "new-c")]);
        assert_eq!(entries[1].1.blake3, Some(&Digest([2; 32])), "b's upload failed: its old bytes are still there");
        assert_eq!(next.len(), 3);
        assert!(next.not_found_page().is_none());
    }

    #[test]
    fn entries_are_read_field_by_field() {
        let sha = "ab".repeat(32);
        let read = |fields: &str| {
            Manifest::parse(format!(r#"{{"format":1,"generator":"x","files":{{"k":{{{fields}}}}}}}"#).as_bytes())
        };
        let manifest = read(&format!(
            r#""etag":"e","later":{{"x":[1]}},"size":3,"cache_control":null,"content_encoding":"gzip","sha256":"{sha}","content_type":"a/b""#
        ))
        .unwrap();
        let entry = &manifest.files["k"];
        assert_eq!((entry.size, entry.etag.as_str(), entry.sha256.unwrap().to_hex()), (3, "e", sha.clone()));
        assert_eq!(entry.blake3, None, "a format-1 entry is known by its SHA-256 only");
        assert_eq!(entry.headers.content_type, "a/b");
        assert_eq!(
            (entry.headers.cache_control.as_deref(), entry.headers.content_encoding.as_deref()),
            (None, Some("gzip"))
        );
        let missing = read(&format!(r#""sha256":"{sha}","size":3,"content_type":"a/b""#)).unwrap_err().to_string();
        assert!(missing.contains("etag"), "{missing}");
        let bad = read(r#""sha256":"zz","size":3,"content_type":"a/b","etag":"e""#).unwrap_err().to_string();
        assert!(bad.contains("`zz` is not a 256-bit digest"), "{bad}");
        let neither = read(r#""size":3,"content_type":"a/b","etag":"e""#).unwrap_err().to_string();
        assert!(neither.contains("missing field `blake3`"), "{neither}");
        let twice = read(&format!(r#""sha256":"{sha}","size":3,"content_type":"a/b","etag":"e","etag":"f""#));
        assert!(twice.unwrap_err().to_string().contains("duplicate field `etag`"));
        let twice = read(&format!(
            r#""sha256":"{sha}","size":3,"content_type":"a/b","cache_control":null,"cache_control":"x","etag":"e""#
        ));
        assert!(twice.unwrap_err().to_string().contains("duplicate field `cache_control`"));
        // JSON escapes are read as the characters they stand for.
        let escaped =
            read(&format!(r#""sha256":"{}\u0061b","size":3,"content_type":"a\/b","etag":"\"e\"""#, &sha[..62]));
        let entry = &escaped.unwrap().files["k"];
        assert_eq!((entry.headers.content_type.as_str(), entry.etag.as_str()), ("a/b", "\"e\""));
        assert_eq!(entry.sha256.unwrap().to_hex(), sha);
    }

    #[test]
    fn a_format_1_manifest_is_named_by_blake3_where_a_local_file_has_its_bytes() {
        let (x, other) = (b"x".as_slice(), b"other".as_slice());
        let entry = |key: &str, bytes: &[u8]| {
            let sha = Digest::of(bytes).to_hex();
            format!(r#""{key}":{{"sha256":"{sha}","size":{},"content_type":"text/plain","etag":"e"}}"#, bytes.len())
        };
        let text = format!(r#"{{"format":1,"generator":"old","files":{{{},{}}}}}"#, entry("a", x), entry("b", other));
        let mut manifest = Manifest::parse(text.as_bytes()).unwrap();
        assert!(manifest.names_by_sha256());
        let blake3_x = Digest::blake3_of(x);
        assert!(!manifest.files["a"].holds(&blake3_x, 1), "known by SHA-256 only: never the same bytes");
        let table: HashMap<Digest, Digest> = [(Digest::of(x), blake3_x)].into();
        assert_eq!(manifest.adopt(&table), 1);
        let (a, b) = (&manifest.files["a"], &manifest.files["b"]);
        assert!(a.holds(&blake3_x, 1) && a.sha256.is_none(), "{a:?}");
        assert!(!a.holds(&blake3_x, 2), "the size counts too");
        assert!(b.blake3.is_none() && b.sha256 == Some(Digest::of(other)), "no local file has b's bytes: {b:?}");
        assert!(!b.same_bytes(b), "an entry known by SHA-256 only is the same bytes as nothing");
        assert!(a.same_bytes(a) && manifest.names_by_sha256());
        // Written again, each entry says what it knows, in format 2.
        let mut written = Manifest { generator: "new".into(), ..manifest.clone() };
        written.format = FORMAT;
        let json = String::from_utf8(serde_json::to_vec(&written).unwrap()).unwrap();
        assert!(json.contains(&format!(r#""a":{{"blake3":"{}""#, blake3_x.to_hex())), "{json}");
        assert!(json.contains(&format!(r#""b":{{"sha256":"{}""#, Digest::of(other).to_hex())), "{json}");
        assert_eq!(Manifest::parse(json.as_bytes()).unwrap().files, manifest.files);
        // An entry with both names keeps the BLAKE3 only.
        let both = format!(
            r#"{{"format":2,"generator":"x","files":{{"k":{{"blake3":"{}","sha256":"{}","size":1,"content_type":"a/b","etag":"e"}}}}}}"#,
            blake3_x.to_hex(),
            Digest::of(x).to_hex()
        );
        let k = &Manifest::parse(both.as_bytes()).unwrap().files["k"];
        assert_eq!((k.blake3, k.sha256), (Some(blake3_x), None));
    }

    #[test]
    fn the_404_page_is_the_one_recorded() {
        let mut done = HashMap::new();
        let local = [file("404.html", 1), file("a", 2)];
        assert!(Manifest::next(&local, None, &[], &done).not_found_page().is_none(), "its upload did not run");
        done.insert("404.html", "\"e\"".to_string());
        let next = Manifest::next(&local, None, &[], &done);
        assert_eq!(next.not_found_page().map(|h| h.content_type.as_str()), Some("text/plain"));
        assert_eq!(next.len(), 1);
        // Its new upload failed: the page that is still stored is the old one.
        let mut old = Manifest::new();
        let mut headers = local[0].headers.clone();
        headers.content_type = "text/old".into();
        old.files.insert(
            "404.html".into(),
            Entry { blake3: Some(Digest([7; 32])), sha256: None, size: 1, headers, etag: "o".into() },
        );
        let none = HashMap::new();
        let failed = Manifest::next(&local, Some(&old), &[], &none);
        assert_eq!(failed.not_found_page().map(|h| h.content_type.as_str()), Some("text/old"));
        let unchanged = ["404.html".to_string()];
        let kept = Manifest::next(&local, Some(&old), &unchanged, &none);
        assert_eq!(kept.not_found_page().map(|h| h.content_type.as_str()), Some("text/plain"), "unchanged: as scanned");
    }

    #[test]
    fn header_values_read_from_a_manifest_are_shared() {
        let entry = |key: &str| {
            format!(r#""{key}":{{"sha256":"{}","size":1,"content_type":"text/x-shared","etag":"e"}}"#, "ab".repeat(32))
        };
        let text = format!(r#"{{"format":1,"generator":"x","files":{{{},{}}}}}"#, entry("a"), entry("b"));
        let manifest = Manifest::from_reader(text.as_bytes()).unwrap();
        let (a, b) = (&manifest.files["a"].headers.content_type, &manifest.files["b"].headers.content_type);
        assert_eq!(a, "text/x-shared");
        assert!(a.is_shared_with(b), "one copy of a value that every entry has");
    }
}
