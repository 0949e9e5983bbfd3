//! Carry out a [`Plan`]: assets, then HTML, then the manifest, then deletes, each phase with
//! bounded concurrency. A failed asset stops the HTML and the deletes (a page must never go
//! live before what it references); the manifest always records what did succeed, so the
//! next run finishes the job. Ctrl-C stops scheduling and lets requests in flight finish.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::interrupt::Cancel;
use crate::output::Reporter;
use crate::plan::{Action, Counts, Op, Plan, Reason};
use crate::scan::LocalFile;
use crate::state::{MANIFEST_KEY, Manifest, NextManifest};
use crate::store::{Condition, DELETE_BATCH, Store, StoreError, Upload};

/// What happened to the actions of a plan (borrowed from it: at 100k actions, copies
/// would be ~15 MB).
#[derive(Debug, Default)]
pub struct Report<'p> {
    /// Actions that succeeded.
    pub done: Vec<&'p Action>,
    /// Actions that failed, with why.
    pub failed: Vec<(&'p Action, StoreError)>,
    /// Actions not attempted (an earlier phase failed, or Ctrl-C).
    pub skipped: Vec<&'p Action>,
    /// Whether the manifest was written (it is not when nothing changed).
    pub manifest_written: bool,
    /// Why the manifest could not be written.
    pub manifest_error: Option<StoreError>,
    /// Ctrl-C was pressed.
    pub interrupted: bool,
    /// The ETag of every object written, by key.
    pub etags: HashMap<&'p str, String>,
}

impl Report<'_> {
    /// Whether everything planned was done.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.manifest_error.is_none() && !self.interrupted
    }
}

/// The `--json` document of a publish (DESIGN §2), serialised straight from the plan and
/// the report: at 100k actions, a `serde_json::Value` of it would be tens of MB.
#[derive(Debug, serde::Serialize)]
pub struct Document<'a> {
    /// `production` or `preview-<slug>`.
    pub target: &'a str,
    /// `in-place` or `atomic`.
    pub mode: &'static str,
    /// Nothing was written.
    pub dry_run: bool,
    /// The deploy (atomic mode).
    pub deploy_id: Option<&'a str>,
    /// Where the site is served.
    pub url: &'a str,
    /// Where it was published.
    #[serde(flatten)]
    pub place: Place<'a>,
    /// Every planned action succeeded.
    pub complete: bool,
    /// The counts.
    pub summary: Counts,
    /// One row per action.
    pub actions: ActionRows<'a>,
    /// What was sent to CloudFront.
    pub invalidation: Option<&'a serde_json::Value>,
}

/// Where a publish went, per mode.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Place<'a> {
    /// In place: a bucket and a prefix.
    InPlace {
        /// The bucket.
        bucket: &'a str,
        /// The prefix.
        prefix: &'a str,
    },
    /// A deploy of a provisioned site.
    Atomic {
        /// The branch of a preview (`null` for production).
        branch: Option<&'a str>,
        /// The bucket.
        bucket: &'a str,
    },
}

/// The `actions` of a [`Document`], written row by row: the plan's actions (`planned`),
/// or what the run did with each (`done`, `failed`, `skipped`).
#[derive(Debug)]
pub struct ActionRows<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The run, when there was one.
    pub report: Option<&'a Report<'a>>,
}

impl serde::Serialize for ActionRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Row<'b> {
            op: Op,
            key: &'b str,
            reason: Reason,
            bytes: u64,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            from: Option<&'b str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<String>,
        }
        fn row<'b>(a: &'b Action, status: &'static str, error: Option<String>) -> Row<'b> {
            Row { op: a.op, key: &a.key, reason: a.reason, bytes: a.bytes, status, from: a.source.as_deref(), error }
        }
        match self.report {
            None => serializer.collect_seq(self.plan.actions.iter().map(|a| row(a, "planned", None))),
            Some(report) => serializer.collect_seq(
                report
                    .done
                    .iter()
                    .map(|a| row(a, "done", None))
                    .chain(report.failed.iter().map(|(a, e)| row(a, "failed", Some(e.to_string()))))
                    .chain(report.skipped.iter().map(|a| row(a, "skipped", None))),
            ),
        }
    }
}

/// The remote manifest the plan was made against, and how to replace it.
#[derive(Debug, Clone)]
pub struct Basis<'a> {
    /// The manifest that was read, if any.
    pub manifest: Option<&'a Manifest>,
    /// `IfMatch` its ETag (or `IfAbsent`): a publish that ran meanwhile is detected.
    pub condition: Condition,
    /// Write the manifest under the store's prefix (in-place mode); atomic mode writes its
    /// deploy manifest itself, outside the deploy's prefix, where the router cannot serve it.
    pub write_manifest: bool,
}

/// Run `plan` against `store`.
pub async fn execute<'p, S: Store>(
    store: &Arc<S>,
    plan: &'p Plan,
    local: &[LocalFile],
    basis: Basis<'_>,
    concurrency: usize,
    cancel: &Cancel,
    reporter: &dyn Reporter,
) -> Report<'p> {
    let files: HashMap<&str, &LocalFile> = local.iter().map(|f| (f.key.as_str(), f)).collect();
    let mut report = Report::default();
    let mut etags: HashMap<&'p str, String> = HashMap::new();
    let write_manifest = basis.write_manifest;
    let upload_bytes = plan.actions.iter().filter(|a| a.op == Op::Upload).map(|a| a.bytes).sum();
    reporter.started(plan.actions.len(), upload_bytes);

    let (html, assets): (Vec<&Action>, Vec<&Action>) = plan.writes().partition(|a| a.html);
    for phase in [assets, html] {
        if !report.failed.is_empty() || is_cancelled(cancel) {
            report.skipped.extend(phase);
            continue;
        }
        let jobs = phase.iter().enumerate().filter_map(|(i, a)| files.get(a.key.as_str()).map(|f| (i, *a, *f)));
        // A task owns its data, so a job is copied out of the plan when it starts (and only
        // then): at most `concurrency` copies of files exist at once, not one per action. It
        // hands back its index in the phase.
        let work = |(i, action, file): (usize, &Action, &LocalFile)| {
            let (action, file, store) = (action.clone(), file.clone(), Arc::clone(store));
            async move { (i, write_one(&*store, &action, &file).await) }
        };
        let cost = |(_, action, file): &(usize, &Action, &LocalFile)| permits(action.op, file.size);
        let skipped = run_bounded(jobs, concurrency * UPLOAD_PERMITS, cost, cancel, work, |i, result| {
            let action = phase[i];
            reporter.finished(action, result.as_ref().err());
            match result {
                Ok(etag) => {
                    etags.insert(action.key.as_str(), etag);
                    report.done.push(action);
                }
                Err(err) => report.failed.push((action, err)),
            }
        })
        .await;
        report.skipped.extend(skipped.into_iter().map(|(_, action, _)| action));
    }

    // The manifest records what is in the bucket now, including partial progress.
    let manifest = Manifest::next(local, basis.manifest, &plan.unchanged, &etags).retiring(&plan.retired);
    if write_manifest && basis.manifest.is_none_or(|old| !manifest.same_files(old)) {
        tracing::debug!(entries = manifest.len(), condition = ?basis.condition, "writing the manifest");
        match put_manifest(&**store, MANIFEST_KEY, &manifest, basis.condition).await {
            Ok(_) => report.manifest_written = true,
            Err(err) => report.manifest_error = Some(err),
        }
    }
    report.etags = etags;

    let deletes: Vec<&Action> = plan.deletes().collect();
    if !report.failed.is_empty() || report.manifest_error.is_some() || is_cancelled(cancel) {
        report.skipped.extend(deletes);
    } else {
        let batches: Vec<&[&Action]> = deletes.chunks(DELETE_BATCH).collect();
        let work = |i: usize| {
            let store = Arc::clone(store);
            let keys: Vec<String> = batches[i].iter().map(|a| a.key.clone()).collect();
            async move { (i, store.delete(&keys).await) }
        };
        let skipped = run_bounded(
            0..batches.len(),
            concurrency.min(8),
            |_| 1,
            cancel,
            work,
            |i, result| match result {
                Ok(results) => {
                    let mut by_key: HashMap<String, Result<(), StoreError>> = results.into_iter().collect();
                    for &action in batches[i] {
                        match by_key.remove(&action.key).unwrap_or(Ok(())) {
                            Ok(()) => {
                                reporter.finished(action, None);
                                report.done.push(action);
                            }
                            Err(err) => {
                                reporter.finished(action, Some(&err));
                                report.failed.push((action, err));
                            }
                        }
                    }
                }
                Err(err) => {
                    let message = err.to_string();
                    for &action in batches[i] {
                        let err = StoreError::DeleteFailed { key: action.key.clone(), cause: message.clone() };
                        reporter.finished(action, Some(&err));
                        report.failed.push((action, err));
                    }
                }
            },
        )
        .await;
        report.skipped.extend(skipped.into_iter().flat_map(|i| batches[i].iter().copied()));
    }
    report.interrupted = is_cancelled(cancel);
    report
}

/// Write a manifest through a temporary file, so that its JSON (~25 MB at 100k files) is
/// never held in memory; in memory only when no temporary file can be made.
pub async fn put_manifest<S: Store>(
    store: &S,
    key: &str,
    manifest: &NextManifest<'_>,
    condition: Condition,
) -> Result<String, StoreError> {
    let written = tempfile::NamedTempFile::new().and_then(|file| {
        let mut writer = std::io::BufWriter::new(file);
        manifest.write_json(&mut writer)?;
        writer.into_inner().map_err(std::io::IntoInnerError::into_error)
    });
    match written {
        Ok(file) => store.put_bytes_from(key, file.path(), "application/json", condition).await,
        Err(err) => {
            tracing::debug!("no temporary file for the manifest ({err}); sending it from memory");
            store.put_bytes(key, manifest.to_json(), "application/json", condition).await
        }
    }
}

/// One write of the plan: a header update, a server-side copy (falling back to an upload
/// when the source is gone), or an upload.
async fn write_one<S: Store>(store: &S, action: &Action, file: &LocalFile) -> Result<String, StoreError> {
    match action.op {
        Op::UpdateMetadata => {
            return store.update_headers(&file.key, &file.headers, action.listed_etag.as_deref()).await;
        }
        Op::Copy => {
            let source = action.source.as_deref().unwrap_or_default();
            match store.copy(source, &file.key, &file.headers).await {
                // The earlier deploy lost that object (someone deleted it): send the bytes.
                Err(StoreError::NotFound { .. }) => {
                    tracing::debug!(key = file.key, source, "copy source missing; uploading");
                }
                other => return other,
            }
        }
        Op::Upload | Op::Delete => {}
    }
    let (path, source) = (file.upload_path(), file.source());
    let upload = Upload {
        key: &file.key,
        path: &path,
        source: &source,
        size: file.size,
        blake3: file.blake3,
        headers: &file.headers,
    };
    store.put_file(upload).await
}

fn is_cancelled(cancel: &Cancel) -> bool {
    *cancel.borrow()
}

/// An upload's share of the executor's permits: `concurrency` uploads fill them.
const UPLOAD_PERMITS: usize = 4;

/// The permits a write holds while in flight. A server-side copy or a header update moves no
/// bytes through skiff and S3 answers it in one short request, so it holds one permit where
/// an upload holds [`UPLOAD_PERMITS`]: up to 4 × `concurrency` copies run at once. That is
/// what makes an atomic deploy, one copy per unchanged file, bounded by S3 rather than by
/// round trips (bench/ATOMIC.md); at 32 × 4 copies of ~50 ms each it stays under S3's 3,500
/// writes a second per prefix. An upload under [`SMALL_UPLOAD`] is one round trip more than
/// it is bytes, so it holds half an upload's permits: 2 × `concurrency` small files go up at
/// once (at 100 ms a round trip, 10k small files take half the time).
fn permits(op: Op, size: u64) -> usize {
    match op {
        Op::Copy | Op::UpdateMetadata => 1,
        Op::Upload if size < SMALL_UPLOAD => UPLOAD_PERMITS / 2,
        Op::Upload | Op::Delete => UPLOAD_PERMITS,
    }
}

/// Below this size an upload is latency-bound rather than bandwidth-bound.
const SMALL_UPLOAD: u64 = 1024 * 1024;

/// Run `work` on every job while the jobs in flight hold at most `limit` permits (a job holds
/// `cost(job)`, at least 1 and at most `limit`), calling `finished` with what each task hands
/// back (on this task, in completion order). Stops scheduling when `cancel` flips and returns
/// the jobs that never started.
async fn run_bounded<I, J, T, F, Fut>(
    jobs: impl IntoIterator<Item = I>,
    limit: usize,
    cost: impl Fn(&I) -> usize,
    cancel: &Cancel,
    work: F,
    mut finished: impl FnMut(J, Result<T, StoreError>),
) -> Vec<I>
where
    J: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: Future<Output = (J, Result<T, StoreError>)> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(limit.max(1)));
    let mut cancel = cancel.clone();
    let mut running: JoinSet<(J, Result<T, StoreError>)> = JoinSet::new();
    let mut pending = jobs.into_iter();
    let mut skipped = Vec::new();
    while let Some(job) = pending.next() {
        let stop = async {
            // A closed channel (no Ctrl-C handler) is not a request to stop.
            if cancel.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let permit = tokio::select! {
            biased;
            () = stop => None,
            permit = Arc::clone(&semaphore).acquire_many_owned(permit_count(cost(&job), limit)) => permit.ok(),
        };
        let Some(permit) = permit else {
            skipped.push(job);
            skipped.extend(pending.by_ref());
            break;
        };
        let future = work(job);
        running.spawn(async move {
            let done = future.await;
            drop(permit);
            done
        });
        while let Some(done) = running.try_join_next() {
            collect(done, &mut finished);
        }
    }
    while let Some(done) = running.join_next().await {
        collect(done, &mut finished);
    }
    skipped
}

/// `cost` as a semaphore count: at least 1, at most `limit` (so a job can always start).
fn permit_count(cost: usize, limit: usize) -> u32 {
    u32::try_from(cost.clamp(1, limit.max(1))).unwrap_or(u32::MAX)
}

fn collect<J, T>(
    done: Result<(J, Result<T, StoreError>), tokio::task::JoinError>,
    finished: &mut impl FnMut(J, Result<T, StoreError>),
) {
    match done {
        Ok((job, result)) => finished(job, result),
        // A panic in a request task is a bug; surface it rather than lose the job silently.
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::output::Silent;
    use crate::plan::{self, Remote};
    use crate::scan::{ScanOptions, scan};
    use crate::store::MemoryStore;
    use std::path::Path;
    use tokio::sync::watch;

    fn site(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (key, body) in files {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        dir
    }

    async fn publish(store: &Arc<MemoryStore>, dir: &Path) -> Outcome {
        let (tx, cancel) = watch::channel(false);
        let report = publish_with(store, dir, &cancel).await;
        drop(tx);
        report
    }

    /// What a test publish did, by key: a [`Report`] borrows the plan, which is gone.
    #[derive(Debug)]
    struct Outcome {
        done: Vec<String>,
        failed: Vec<String>,
        skipped: Vec<String>,
        interrupted: bool,
        complete: bool,
    }

    impl Outcome {
        fn is_complete(&self) -> bool {
            self.complete
        }
    }

    async fn publish_with(store: &Arc<MemoryStore>, dir: &Path, cancel: &Cancel) -> Outcome {
        let config = Config::parse("", Path::new("skiff.toml")).unwrap();
        let scanned = scan(dir, ScanOptions::of(&config)).unwrap();
        let fetched = store.get(MANIFEST_KEY).await.unwrap();
        let condition = fetched.as_ref().map_or(Condition::IfAbsent, |f| Condition::IfMatch(f.etag.clone()));
        let manifest = fetched.map(|f| Manifest::parse(&f.bytes).unwrap());
        let mut objects = store.list().await.unwrap();
        objects.retain(|k, _| !crate::key::is_state(k));
        let plan = plan::plan(
            &scanned.files,
            Remote { manifest: manifest.as_ref(), objects: &objects },
            plan::Options { force: false, exclude: &config.exclude },
        );
        let report = execute(
            store,
            &plan,
            &scanned.files,
            Basis { manifest: manifest.as_ref(), condition, write_manifest: true },
            4,
            cancel,
            &Silent,
        )
        .await;
        let keys = |actions: &[&Action]| actions.iter().map(|a| a.key.clone()).collect();
        Outcome {
            done: keys(&report.done),
            failed: report.failed.iter().map(|(a, _)| a.key.clone()).collect(),
            skipped: keys(&report.skipped),
            interrupted: report.interrupted,
            complete: report.is_complete(),
        }
    }

    #[tokio::test]
    async fn assets_then_html_then_manifest_then_deletes() {
        let store = Arc::new(MemoryStore::new());
        let first = site(&[("index.html", "1"), ("old.css", "o")]);
        assert!(publish(&store, first.path()).await.is_complete());
        let second = site(&[("index.html", "2"), ("a/b.js", "b"), ("c.png", "c")]);
        let before = store.writes().len();
        let report = publish(&store, second.path()).await;
        assert!(report.is_complete());
        let writes = &store.writes()[before..];
        let position = |w: &str| writes.iter().position(|x| x == w).unwrap();
        assert!(position("upload a/b.js") < position("upload index.html"));
        assert!(position("upload c.png") < position("upload index.html"));
        assert!(position("upload index.html") < position("put .skiff/manifest.json"));
        assert!(position("put .skiff/manifest.json") < position("delete old.css"));
        let keys: Vec<_> = store.objects().into_keys().collect();
        assert_eq!(keys, [".skiff/manifest.json", "a/b.js", "c.png", "index.html"]);
        let again = store.writes().len();
        assert!(publish(&store, second.path()).await.done.is_empty());
        assert_eq!(store.writes().len(), again, "an unchanged site writes nothing, not even the manifest");
    }

    #[tokio::test]
    async fn a_closed_cancel_channel_is_not_a_stop() {
        let store = Arc::new(MemoryStore::new());
        let site = site(&[("index.html", "1"), ("a.css", "a")]);
        let (tx, cancel) = watch::channel(false);
        drop(tx);
        let report = publish_with(&store, site.path(), &cancel).await;
        assert!(report.is_complete(), "{report:?}");
        assert_eq!(report.done.len(), 2);
    }

    #[tokio::test]
    async fn a_stop_before_the_start_writes_nothing_but_is_reported() {
        let store = Arc::new(MemoryStore::new());
        let site = site(&[("index.html", "1"), ("a.css", "a")]);
        let (tx, cancel) = watch::channel(true);
        let report = publish_with(&store, site.path(), &cancel).await;
        drop(tx);
        assert!(report.interrupted && report.done.is_empty() && report.skipped.len() == 2, "{report:?}");
        assert!(!store.objects().contains_key("index.html"));
    }

    #[tokio::test]
    async fn a_concurrent_manifest_write_is_detected() {
        let store = Arc::new(MemoryStore::new());
        let site = site(&[("index.html", "1")]);
        publish(&store, site.path()).await;
        // Someone else rewrites the manifest between our read and our write.
        let fetched = store.get(MANIFEST_KEY).await.unwrap().unwrap();
        let manifest = Manifest::parse(&fetched.bytes).unwrap();
        std::fs::write(site.path().join("index.html"), "2").unwrap();
        let config = Config::parse("", Path::new("skiff.toml")).unwrap();
        let scanned = scan(site.path(), ScanOptions::of(&config)).unwrap();
        let objects = store.list().await.unwrap();
        let plan = plan::plan(
            &scanned.files,
            Remote { manifest: Some(&manifest), objects: &objects },
            plan::Options { force: false, exclude: &config.exclude },
        );
        store
            .put_bytes(
                MANIFEST_KEY,
                b"{\"format\":1,\"generator\":\"other\",\"files\":{}}".to_vec(),
                "application/json",
                Condition::Always,
            )
            .await
            .unwrap();
        let (_tx, cancel) = watch::channel(false);
        let report = execute(
            &store,
            &plan,
            &scanned.files,
            Basis { manifest: Some(&manifest), condition: Condition::IfMatch(fetched.etag), write_manifest: true },
            2,
            &cancel,
            &Silent,
        )
        .await;
        assert!(matches!(report.manifest_error, Some(StoreError::PreconditionFailed { .. })), "{report:?}");
    }

    #[tokio::test]
    async fn a_failed_asset_holds_back_html_and_deletes_and_the_next_run_finishes() {
        let store = Arc::new(MemoryStore::new());
        let first = site(&[("index.html", "1"), ("old.css", "o")]);
        publish(&store, first.path()).await;
        let second = site(&[("index.html", "2"), ("ok.js", "k"), ("bad.js", "b")]);
        store.fail("bad.js");
        let report = publish(&store, second.path()).await;
        assert_eq!(report.failed.len(), 1);
        let skipped: Vec<_> = report.skipped.iter().map(String::as_str).collect();
        assert_eq!(skipped, ["index.html", "old.css"]);
        assert_eq!(store.objects()["index.html"].bytes, b"1", "the old page is still live");
        let manifest = Manifest::parse(&store.objects()[MANIFEST_KEY].bytes).unwrap();
        assert!(manifest.files.contains_key("ok.js"), "what succeeded is recorded");
        assert!(!manifest.files.contains_key("bad.js"));

        store.heal("bad.js");
        let report = publish(&store, second.path()).await;
        assert!(report.is_complete());
        let redone: Vec<_> = report.done.iter().map(String::as_str).collect();
        assert_eq!(redone, ["bad.js", "index.html", "old.css"], "ok.js is not uploaded again");
    }

    /// Copies hold one permit and uploads four: with `concurrency` 4, up to 16 copies run at
    /// once but never more than 4 uploads, and the two together never exceed the 16 permits.
    #[tokio::test]
    async fn copies_run_four_times_as_wide_as_uploads() {
        use std::sync::Mutex;
        use std::time::Duration;
        #[derive(Default)]
        struct Flight {
            now: [usize; 2],
            peak: [usize; 2],
            permits_peak: usize,
        }
        let flight = Arc::new(Mutex::new(Flight::default()));
        let (tx, cancel) = watch::channel(false);
        // Jobs in the order a plan gives them: uploads and copies interleaved.
        let jobs: Vec<Op> = (0..96).map(|i| if i % 3 == 0 { Op::Upload } else { Op::Copy }).collect();
        let work = |op: Op| {
            let flight = Arc::clone(&flight);
            async move {
                let kind = usize::from(op == Op::Copy);
                {
                    let mut f = flight.lock().unwrap();
                    f.now[kind] += 1;
                    f.peak[kind] = f.peak[kind].max(f.now[kind]);
                    let held = f.now[0] * UPLOAD_PERMITS + f.now[1];
                    f.permits_peak = f.permits_peak.max(held);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                flight.lock().unwrap().now[kind] -= 1;
                (op, Ok::<(), StoreError>(()))
            }
        };
        let mut finished = 0;
        let skipped =
            run_bounded(jobs, 4 * UPLOAD_PERMITS, |op| permits(*op, SMALL_UPLOAD), &cancel, work, |_, _| finished += 1)
                .await;
        drop(tx);
        assert!(skipped.is_empty());
        assert_eq!(finished, 96);
        let f = flight.lock().unwrap();
        assert!(f.peak[0] <= 4, "uploads in flight: {}", f.peak[0]);
        assert!(f.peak[1] > 4, "copies must run wider than uploads: {}", f.peak[1]);
        assert!(f.peak[1] <= 16 && f.permits_peak <= 16, "permits held: {}", f.permits_peak);
        assert_eq!(permits(Op::UpdateMetadata, SMALL_UPLOAD), 1);
        assert_eq!(
            (permits(Op::Upload, SMALL_UPLOAD - 1), permits(Op::Upload, SMALL_UPLOAD)),
            (UPLOAD_PERMITS / 2, UPLOAD_PERMITS),
            "a small upload holds half the permits of a large one"
        );
        assert_eq!(permit_count(100, 16), 16, "a job costlier than the limit still starts");
    }
}
