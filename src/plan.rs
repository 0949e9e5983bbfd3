//! The publish plan: a pure function of the local files, the remote manifest and the bucket
//! listing. No I/O, no clock, no AWS types: what it returns can be printed (dry run),
//! serialised (`--json`) and tested without a network.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::key;
use crate::object::RemoteObject;
use crate::scan::LocalFile;
use crate::state::Manifest;

/// CopyObject copies at most 5 GiB in one request; a header change on a larger object is a
/// re-upload.
pub const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// What happens to one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Send the bytes.
    Upload,
    /// Same bytes, new headers: CopyObject onto itself with `MetadataDirective=REPLACE`.
    UpdateMetadata,
    /// Atomic mode: the bytes are already in another deploy; server-side CopyObject into the
    /// new one.
    Copy,
    /// Remove the object.
    Delete,
}

/// Why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Not in the bucket yet.
    New,
    /// The bytes changed.
    Changed,
    /// The object in the bucket is missing or differs from what the manifest recorded.
    Drift,
    /// `--force`.
    Force,
    /// There is no manifest, so what is in the bucket is unknown (first publish).
    Untracked,
    /// Same bytes, different `Content-Type` or `Cache-Control`.
    Headers,
    /// Gone from the site.
    Gone,
    /// The same bytes are in an earlier deploy under the same key.
    Unchanged,
    /// The same bytes are in an earlier deploy under another key (renamed or duplicated).
    Moved,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// What to do.
    pub op: Op,
    /// The key, relative to the prefix.
    pub key: String,
    /// Why.
    pub reason: Reason,
    /// Bytes sent (uploads) or affected (others).
    pub bytes: u64,
    /// HTML goes after everything else it may reference.
    #[serde(skip)]
    pub html: bool,
    /// For `update-metadata`: the ETag the object was listed with; the copy only happens if
    /// it still has it (someone else's change in between is drift for the next run).
    #[serde(skip)]
    pub listed_etag: Option<String>,
    /// For `copy`: the key (from the bucket's root) to copy from.
    #[serde(skip_serializing_if = "Option::is_none", rename = "from")]
    pub source: Option<String>,
}

/// What is known about the bucket.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    /// The manifest, when there is one.
    pub manifest: Option<&'a Manifest>,
    /// Every object under the prefix (keys relative to it), skiff's state excluded.
    pub objects: &'a BTreeMap<String, RemoteObject>,
}

/// The knobs.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// Re-upload everything.
    pub force: bool,
    /// Keys the site excludes: never uploaded, and never deleted from the bucket either
    /// (excluding a file must not remove it from the live site).
    pub exclude: &'a crate::rules::Excludes,
}

/// The plan: ordered actions (assets, then HTML, then deletes) and what stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In the order they must run.
    pub actions: Vec<Action>,
    /// Keys that need nothing, sorted.
    pub unchanged: Vec<String>,
    /// Local files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Sub-prefixes where another skiff site keeps its manifest: nothing under them is deleted.
    pub nested_sites: Vec<String>,
    /// Objects whose files are gone, kept for `[deploy] delete_after`: key → since when.
    pub retired: BTreeMap<String, i64>,
}

impl Plan {
    /// `--no-delete`: no deletes at all; returns how many there were.
    pub fn drop_deletes(&mut self) -> usize {
        let before = self.actions.len();
        self.actions.retain(|action| action.op != Op::Delete);
        before - self.actions.len()
    }

    /// Skew protection: an object whose file left the site stays `keep` seconds (from
    /// when it left, as the old manifest records, else `now`) before it is deleted, so a
    /// browser holding old HTML still finds the old hashed assets. Returns how many deletes
    /// were put off.
    pub fn defer_deletes(&mut self, old: Option<&BTreeMap<String, i64>>, keep: i64, now: i64) -> usize {
        let mut deferred = 0;
        self.actions.retain(|action| {
            if action.op != Op::Delete {
                return true;
            }
            if keep <= 0 {
                return true;
            }
            let since = match old.and_then(|o| o.get(&action.key)) {
                Some(&since) if now.saturating_sub(since) >= keep => return true,
                Some(&since) => since,
                None => now,
            };
            self.retired.insert(action.key.clone(), since);
            deferred += 1;
            false
        });
        deferred
    }
}

/// Counts for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Local files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Uploads.
    pub uploaded: usize,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Server-side copies (atomic mode).
    pub copied: usize,
    /// Header-only updates.
    pub metadata_updated: usize,
    /// Deletes.
    pub deleted: usize,
    /// Unchanged.
    pub unchanged: usize,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The writes of the first phases (assets, then HTML) — everything but deletes.
    pub fn writes(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.op != Op::Delete)
    }

    /// The deletes (last).
    pub fn deletes(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.op == Op::Delete)
    }

    /// The `--max-deletes` guard, checked before anything is written.
    pub fn check_deletes(&self, max: u64) -> Result<(), PlanError> {
        let count = self.deletes().count() as u64;
        if count > max { Err(PlanError::TooManyDeletes { count, max }) } else { Ok(()) }
    }

    /// Counts of what the plan would do, if all of it succeeds.
    pub fn counts(&self) -> Counts {
        Counts::of(self.files, self.bytes, self.unchanged.len(), self.actions.iter())
    }
}

impl Counts {
    /// Counts over some actions.
    pub fn of<'a>(files: usize, bytes: u64, unchanged: usize, actions: impl Iterator<Item = &'a Action>) -> Self {
        let mut counts = Counts { files, bytes, unchanged, ..Counts::default() };
        for action in actions {
            match action.op {
                Op::Upload => {
                    counts.uploaded += 1;
                    counts.uploaded_bytes += action.bytes;
                }
                Op::UpdateMetadata => counts.metadata_updated += 1,
                Op::Copy => counts.copied += 1,
                Op::Delete => counts.deleted += 1,
            }
        }
        counts
    }
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Over `--max-deletes`.
    #[error(
        "the plan deletes {count} objects, more than the limit of {max}; nothing was written or deleted\n\
         hint: check the directory is the full built site, then re-run with `--max-deletes {count}` (or set `[deploy] max_deletes`)"
    )]
    TooManyDeletes {
        /// Deletes planned.
        count: u64,
        /// The limit.
        max: u64,
    },
}

/// Compare the local files with the bucket and decide, per key, what to do.
pub fn plan(local: &[LocalFile], remote: Remote<'_>, options: Options<'_>) -> Plan {
    let mut writes = Vec::new();
    let mut unchanged = Vec::with_capacity(local.len());
    for file in local {
        let listed = remote.objects.get(&file.key);
        let entry = remote.manifest.and_then(|m| m.files.get(&file.key));
        let (op, reason) = if options.force {
            (Op::Upload, Reason::Force)
        } else {
            match entry {
                None if remote.manifest.is_none() && listed.is_some() => (Op::Upload, Reason::Untracked),
                None => (Op::Upload, Reason::New),
                Some(entry) => {
                    let intact = listed.is_some_and(|o| o.size == entry.size && same_etag(&o.etag, &entry.etag));
                    if !intact {
                        (Op::Upload, Reason::Drift)
                    } else if !entry.holds(&file.blake3, file.size) {
                        (Op::Upload, Reason::Changed)
                    } else if entry.headers == file.headers {
                        unchanged.push(file.key.clone());
                        continue;
                    } else if file.size > MAX_COPY_BYTES {
                        (Op::Upload, Reason::Headers)
                    } else {
                        (Op::UpdateMetadata, Reason::Headers)
                    }
                }
            }
        };
        let listed_etag = listed.filter(|o| op == Op::UpdateMetadata && !o.etag.is_empty()).map(|o| o.etag.clone());
        writes.push(Action {
            op,
            key: file.key.clone(),
            reason,
            bytes: file.size,
            html: file.is_html(),
            listed_etag,
            source: None,
        });
    }
    // Assets first, then HTML: a page never goes live before what it references.
    writes.sort_by(|a, b| a.html.cmp(&b.html).then_with(|| a.key.cmp(&b.key)));

    let local_keys: std::collections::HashSet<&str> = local.iter().map(|f| f.key.as_str()).collect();
    let nested_sites = nested_sites(remote.objects);
    let deletes: Vec<Action> = remote
        .objects
        .iter()
        .filter(|(key, _)| !key::is_state(key) && !local_keys.contains(key.as_str()))
        .filter(|(key, _)| !nested_sites.iter().any(|site| key.starts_with(site.as_str())))
        .filter(|(key, _)| !options.exclude.matches(key))
        .map(|(key, object)| Action {
            op: Op::Delete,
            key: key.clone(),
            reason: Reason::Gone,
            bytes: object.size,
            html: false,
            listed_etag: None,
            source: None,
        })
        .collect();
    unchanged.sort();
    unchanged.shrink_to_fit();
    let mut actions = writes;
    actions.extend(deletes);
    Plan {
        actions,
        unchanged,
        files: local.len(),
        bytes: local.iter().map(|f| f.size).sum(),
        nested_sites,
        retired: BTreeMap::new(),
    }
}

/// An earlier deploy whose objects a new deploy may copy from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Where its objects are, from the bucket's root (`_deploys/production/<id>/`).
    pub prefix: &'a str,
    /// What it holds.
    pub manifest: &'a Manifest,
}

/// The plan of a new deploy (atomic mode) into an empty prefix: every file is either copied
/// server-side from an earlier deploy that holds the same bytes (the live one first, then
/// the others given), or uploaded. Nothing is deleted: the new deploy starts empty.
pub fn deploy(local: &[LocalFile], sources: &[Source<'_>], force: bool) -> Plan {
    use std::collections::HashMap;
    let mut by_bytes: HashMap<(crate::object::Digest, u64), String> = HashMap::new();
    for source in sources.iter().rev() {
        for (key, entry) in &source.manifest.files {
            if let Some(blake3) = entry.blake3 {
                by_bytes.insert((blake3, entry.size), format!("{}{key}", source.prefix));
            }
        }
    }
    let mut actions = Vec::new();
    for file in local {
        let same_key = sources.iter().find_map(|s| {
            s.manifest
                .files
                .get(&file.key)
                .filter(|e| e.holds(&file.blake3, file.size))
                .map(|_| format!("{}{}", s.prefix, file.key))
        });
        let known_key = sources.iter().any(|s| s.manifest.files.contains_key(&file.key));
        let (op, reason, source) = match (force, same_key, by_bytes.get(&(file.blake3, file.size))) {
            (true, _, _) => (Op::Upload, Reason::Force, None),
            (false, Some(source), _) if file.size <= MAX_COPY_BYTES => (Op::Copy, Reason::Unchanged, Some(source)),
            (false, None, Some(source)) if file.size <= MAX_COPY_BYTES => {
                (Op::Copy, Reason::Moved, Some(source.clone()))
            }
            _ if known_key => (Op::Upload, Reason::Changed, None),
            _ => (Op::Upload, Reason::New, None),
        };
        actions.push(Action {
            op,
            key: file.key.clone(),
            reason,
            bytes: file.size,
            html: file.is_html(),
            listed_etag: None,
            source,
        });
    }
    actions.sort_by(|a, b| a.html.cmp(&b.html).then_with(|| a.key.cmp(&b.key)));
    Plan {
        actions,
        unchanged: Vec::new(),
        files: local.len(),
        bytes: local.iter().map(|f| f.size).sum(),
        nested_sites: Vec::new(),
        retired: BTreeMap::new(),
    }
}

/// Whether a listed ETag matches the one skiff recorded. Stores differ in quoting and case;
/// some (s3s-fs) list no ETag at all, and then only the size can tell drift.
fn same_etag(listed: &str, recorded: &str) -> bool {
    let bare = |etag: &str| etag.trim().trim_matches('"').to_ascii_lowercase();
    listed.is_empty() || bare(listed) == bare(recorded)
}

/// Sub-prefixes that hold another skiff site's manifest (`blog/.skiff/manifest.json` →
/// `blog/`): publishing the parent must never delete that site.
fn nested_sites(objects: &BTreeMap<String, RemoteObject>) -> Vec<String> {
    let suffix = format!("/{}", crate::state::MANIFEST_KEY);
    objects.keys().filter_map(|key| key.strip_suffix(suffix.as_str()).map(|root| format!("{root}/"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Digest, Headers};
    use crate::state::Entry;
    use std::path::Path;

    fn file(key: &str, byte: u8, cache: Option<&str>) -> LocalFile {
        LocalFile {
            key: key.into(),
            dir: std::sync::Arc::from(Path::new("")),
            relative: None,
            gzipped: None,
            size: 10,
            blake3: Digest([byte; 32]),
            headers: Headers {
                content_type: crate::mime::content_type(key).into(),
                cache_control: cache.map(Into::into),
                content_encoding: None,
            },
        }
    }

    #[test]
    fn a_deploy_copies_known_bytes_and_uploads_the_rest() {
        let old = [file("index.html", 1, None), file("a.css", 2, None), file("old-name.js", 3, None)];
        let (mut live, _) = published(&old);
        // Known by SHA-256 only (format 1, no local file had its bytes): never copied.
        let mut legacy = live.files.get("a.css").unwrap().clone();
        (legacy.sha256, legacy.blake3) = (Some(Digest([5; 32])), None);
        live.files.insert("legacy.css".into(), legacy);
        let pending = {
            let (mut m, _) = published(&[file("b.css", 9, None)]);
            m.files.get_mut("b.css").unwrap().blake3 = Some(Digest([9; 32]));
            m
        };
        let local = [
            file("index.html", 7, None),  // changed
            file("a.css", 2, Some("x")),  // same bytes, new header: still a copy (headers are replaced)
            file("new-name.js", 3, None), // renamed
            file("b.css", 9, None),       // uploaded by an interrupted deploy
            file("c.css", 4, None),       // new
            file("legacy.css", 5, None),  // its entry names SHA-256 only
        ];
        let sources = [
            Source { prefix: "_deploys/production/d1/", manifest: &live },
            Source { prefix: "_deploys/production/d2/", manifest: &pending },
        ];
        let plan = deploy(&local, &sources, false);
        let row = |key: &str| plan.actions.iter().find(|a| a.key == key).unwrap();
        assert_eq!((row("index.html").op, row("index.html").reason), (Op::Upload, Reason::Changed));
        assert_eq!(row("a.css").source.as_deref(), Some("_deploys/production/d1/a.css"));
        assert_eq!((row("new-name.js").op, row("new-name.js").reason), (Op::Copy, Reason::Moved));
        assert_eq!(row("new-name.js").source.as_deref(), Some("_deploys/production/d1/old-name.js"));
        assert_eq!(row("b.css").source.as_deref(), Some("_deploys/production/d2/b.css"));
        assert_eq!((row("c.css").op, row("c.css").reason), (Op::Upload, Reason::New));
        assert_eq!((row("legacy.css").op, row("legacy.css").reason), (Op::Upload, Reason::Changed));
        assert_eq!(plan.actions.last().unwrap().key, "index.html", "HTML last");
        let counts = plan.counts();
        assert_eq!((counts.uploaded, counts.copied), (3, 3));
        let forced = deploy(&local, &sources, true);
        assert!(forced.actions.iter().all(|a| a.op == Op::Upload && a.reason == Reason::Force));
    }

    /// A bucket holding exactly `files`, with a manifest that says so.
    fn published(files: &[LocalFile]) -> (Manifest, BTreeMap<String, RemoteObject>) {
        let mut manifest = Manifest::new();
        let mut objects = BTreeMap::new();
        for f in files {
            let etag = format!("\"{}\"", f.blake3.to_hex());
            manifest.files.insert(
                f.key.clone(),
                Entry {
                    blake3: Some(f.blake3),
                    sha256: None,
                    size: f.size,
                    headers: f.headers.clone(),
                    etag: etag.clone(),
                },
            );
            objects.insert(f.key.clone(), RemoteObject { etag, size: f.size });
        }
        (manifest, objects)
    }

    fn options() -> Options<'static> {
        static NONE: std::sync::OnceLock<crate::rules::Excludes> = std::sync::OnceLock::new();
        Options { force: false, exclude: NONE.get_or_init(crate::rules::Excludes::none) }
    }

    fn summary(plan: &Plan) -> Vec<(Op, &str, Reason)> {
        plan.actions.iter().map(|a| (a.op, a.key.as_str(), a.reason)).collect()
    }

    #[test]
    fn unchanged_site_plans_nothing() {
        let site = [file("index.html", 1, None), file("a.css", 2, None)];
        let (manifest, objects) = published(&site);
        let plan = plan(&site, Remote { manifest: Some(&manifest), objects: &objects }, options());
        assert!(plan.is_empty());
        assert_eq!(plan.unchanged, ["a.css", "index.html"]);
    }

    #[test]
    fn every_kind_of_change_in_order() {
        let old = [
            file("index.html", 1, None),
            file("b.css", 2, None),
            file("c.js", 3, None),
            file("d.png", 4, None),
            file("gone.txt", 5, None),
            file("z/page.html", 6, None),
        ];
        let (manifest, mut objects) = published(&old);
        objects.get_mut("d.png").unwrap().etag = "\"someone-else\"".into();
        objects.remove("z/page.html");
        objects.insert("stray.txt".into(), RemoteObject { etag: "\"x\"".into(), size: 3 });
        objects.insert(".skiff/other".into(), RemoteObject { etag: "\"x\"".into(), size: 3 });
        let new = [
            file("index.html", 9, None),
            file("b.css", 2, Some("max-age=60")),
            file("c.js", 3, None),
            file("d.png", 4, None),
            file("new.svg", 7, None),
            file("z/page.html", 6, None),
        ];
        let plan = plan(&new, Remote { manifest: Some(&manifest), objects: &objects }, options());
        assert_eq!(
            summary(&plan),
            [
                (Op::UpdateMetadata, "b.css", Reason::Headers),
                (Op::Upload, "d.png", Reason::Drift),
                (Op::Upload, "new.svg", Reason::New),
                (Op::Upload, "index.html", Reason::Changed),
                (Op::Upload, "z/page.html", Reason::Drift),
                (Op::Delete, "gone.txt", Reason::Gone),
                (Op::Delete, "stray.txt", Reason::Gone),
            ]
        );
        assert_eq!(plan.unchanged, ["c.js"]);
        let counts = plan.counts();
        assert_eq!((counts.uploaded, counts.metadata_updated, counts.deleted, counts.unchanged), (4, 1, 2, 1));
    }

    #[test]
    fn no_manifest_uploads_everything_and_deletes_strays() {
        let site = [file("index.html", 1, None)];
        let mut objects = BTreeMap::new();
        objects.insert("index.html".into(), RemoteObject { etag: "\"a\"".into(), size: 10 });
        objects.insert("old.html".into(), RemoteObject { etag: "\"b\"".into(), size: 10 });
        let plan = plan(&site, Remote { manifest: None, objects: &objects }, options());
        assert_eq!(
            summary(&plan),
            [(Op::Upload, "index.html", Reason::Untracked), (Op::Delete, "old.html", Reason::Gone)]
        );
        let empty = BTreeMap::new();
        let first = super::plan(&site, Remote { manifest: None, objects: &empty }, options());
        assert_eq!(summary(&first), [(Op::Upload, "index.html", Reason::New)]);
    }

    #[test]
    fn another_skiff_site_under_a_sub_prefix_is_never_deleted() {
        let site = [file("index.html", 1, None)];
        let (manifest, mut objects) = published(&site);
        for key in ["blog/.skiff/manifest.json", "blog/index.html", "blog/post/index.html", "blogroll.html"] {
            objects.insert(key.into(), RemoteObject { etag: "\"x\"".into(), size: 1 });
        }
        let plan = plan(&site, Remote { manifest: Some(&manifest), objects: &objects }, options());
        assert_eq!(summary(&plan), [(Op::Delete, "blogroll.html", Reason::Gone)]);
        assert_eq!(plan.nested_sites, ["blog/"]);
    }

    #[test]
    fn etags_compare_without_quotes_or_case_and_a_missing_one_falls_back_to_size() {
        let site = [file("a.css", 1, None), file("b.css", 2, None), file("c.css", 3, None)];
        let (manifest, mut objects) = published(&site);
        let a = objects.get_mut("a.css").unwrap();
        a.etag = a.etag.trim_matches('"').to_ascii_uppercase();
        objects.get_mut("b.css").unwrap().etag = String::new();
        let c = objects.get_mut("c.css").unwrap();
        c.etag.clear();
        c.size += 1;
        let plan = plan(&site, Remote { manifest: Some(&manifest), objects: &objects }, options());
        assert_eq!(summary(&plan), [(Op::Upload, "c.css", Reason::Drift)]);
    }

    #[test]
    fn force_uploads_unchanged_files() {
        let site = [file("a.txt", 1, None)];
        let (manifest, objects) = published(&site);
        let plan =
            plan(&site, Remote { manifest: Some(&manifest), objects: &objects }, Options { force: true, ..options() });
        assert_eq!(summary(&plan), [(Op::Upload, "a.txt", Reason::Force)]);
    }

    #[test]
    fn too_many_deletes_is_refused() {
        let old: Vec<_> = (0..5).map(|i| file(&format!("f{i}.txt"), i, None)).collect();
        let (manifest, objects) = published(&old);
        let remote = Remote { manifest: Some(&manifest), objects: &objects };
        let plan = plan(&old[..1], remote, options());
        let err = plan.check_deletes(3).unwrap_err();
        assert_eq!(err, PlanError::TooManyDeletes { count: 4, max: 3 });
        assert!(err.to_string().contains("--max-deletes 4"));
        assert_eq!(plan.check_deletes(4), Ok(()));
    }

    #[test]
    fn deletes_are_put_off_for_delete_after_from_when_the_file_left() {
        let site = [file("kept.html", 1, None)];
        let (manifest, mut objects) = published(&site);
        for key in ["old.js", "older.js", "new.js"] {
            objects.insert(key.into(), RemoteObject { etag: "\"x\"".into(), size: 1 });
        }
        let mut plan = plan(&site, Remote { manifest: Some(&manifest), objects: &objects }, options());
        let old = BTreeMap::from([("old.js".to_string(), 1_000), ("older.js".to_string(), 100)]);
        let deferred = plan.defer_deletes(Some(&old), 500, 1_200);
        assert_eq!(deferred, 2, "old.js left 200 s ago, new.js just now");
        let deletes: Vec<&str> = plan.deletes().map(|a| a.key.as_str()).collect();
        assert_eq!(deletes, ["older.js"], "gone for 1,100 s, over the 500 s");
        assert_eq!(plan.retired, BTreeMap::from([("new.js".to_string(), 1_200), ("old.js".to_string(), 1_000)]));
        let mut now = plan.clone();
        assert_eq!(now.defer_deletes(None, 0, 1_200), 0, "no delay: deleted at once");
    }

    #[test]
    fn excluded_keys_are_never_deleted() {
        let old = [file("index.html", 1, None), file("downloads/big.zip", 2, None), file(".DS_Store", 3, None)];
        let (manifest, objects) = published(&old);
        let exclude = crate::rules::Excludes::new(&["downloads/**", "**/.DS_Store"]).unwrap();
        let plan = plan(
            &old[..1],
            Remote { manifest: Some(&manifest), objects: &objects },
            Options { force: false, exclude: &exclude },
        );
        assert!(plan.is_empty(), "{:?}", summary(&plan));
    }

    #[test]
    fn header_change_on_a_huge_object_is_a_reupload() {
        let mut big = file("video.mp4", 1, None);
        big.size = MAX_COPY_BYTES + 1;
        let (manifest, objects) = published(std::slice::from_ref(&big));
        big.headers.cache_control = Some("max-age=1".into());
        let plan = plan(&[big], Remote { manifest: Some(&manifest), objects: &objects }, options());
        assert_eq!(summary(&plan), [(Op::Upload, "video.mp4", Reason::Headers)]);
    }
}
