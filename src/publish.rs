//! `skiff publish` in in-place mode: scan and read the remote state at the same time, plan,
//! show the plan, confirm deletes on a terminal, execute, report. Ctrl-C stops scheduling,
//! lets requests in flight finish, records what was done and exits 130.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use std::collections::HashSet;

use crate::cdn::{Cdn, Distribution};
use crate::config::{CdnSettings, PublishSettings};
use crate::execute::{self, ActionRows, Document, Place, Report};
use crate::interrupt::Interrupted;
use crate::invalidation::{self, Batch, Mapping};
use crate::object::RemoteObject;
use crate::output::{Output, count};
use crate::plan::{self, Action, Counts, Plan, Reason, Remote};
use crate::scan::{LocalFile, Scanning};
use crate::state::{MANIFEST_KEY, Manifest, ManifestError, SITE_STATE_KEY};

use crate::store::{Condition, S3Store, Store, StoreError};
use crate::{aws, invalidate, key};

/// The in-place manifest, when the mode check already read it.
enum Prefetch {
    /// Not read yet.
    Unread,
    /// Read: there is one, or there is none.
    Read(Option<crate::store::FetchedManifest>),
}

/// What the bucket holds.
struct RemoteState {
    manifest: Option<Manifest>,
    /// How to write the next manifest so a concurrent publish is not silently overwritten.
    manifest_condition: Condition,
    /// The manifest is from a newer skiff.
    too_new: Option<ManifestError>,
    objects: std::collections::BTreeMap<String, RemoteObject>,
}

/// Publish `settings.dir`: as a new deploy of a provisioned site (atomic mode), else in
/// place to `s3://bucket/prefix`.
pub async fn publish(settings: &PublishSettings, out: &Output) -> Result<()> {
    use crate::config::Mode;
    if !settings.dir_from_config
        && let Some(root) = crate::scan::project_root(&settings.dir)
    {
        return Err(crate::config::ConfigError::new(root.refusal(&settings.dir)).into());
    }
    let mut owned = settings.clone();
    crate::scan::read_routing_files(&owned.dir, &owned.exclude, &mut owned.routing, &mut owned.rules)
        .map_err(crate::config::ConfigError::new)?;
    let settings = &owned;
    let mut prefetched = Prefetch::Unread;
    let mut scanning = None;
    let provisioned = match settings.mode {
        Mode::InPlace => None,
        Mode::Auto if !settings.prefix.is_empty() => None,
        Mode::Atomic => crate::atomic::Site::open(&settings.site, settings.multipart_threshold).await?,
        Mode::Auto => {
            // Either way the site is scanned with keys from the root (the prefix is empty):
            // the scan starts now, while the bucket is read (a 25 MB manifest at 100k files).
            // Not for a preview, which is refused unless the site is provisioned.
            if settings.preview.is_none() {
                scanning = Some(crate::scan::start(settings, 0));
            }
            // An in-place site has its manifest at the root: then the state is not looked
            // for (a no-op publish stays at one GET and one LIST).
            let shared = aws::sdk_config(&settings.aws).await?;
            let root = S3Store::new(aws::s3_client(&shared), &settings.bucket, "", settings.multipart_threshold);
            match root.get_manifest(MANIFEST_KEY).await {
                Ok(Some(manifest)) => {
                    prefetched = Prefetch::Read(Some(manifest));
                    None
                }
                fetched => {
                    prefetched = fetched.map_or(Prefetch::Unread, Prefetch::Read);
                    // Whatever keeps the state from being read shows again, better worded, in place.
                    crate::atomic::Site::open(&settings.site, settings.multipart_threshold).await.unwrap_or_else(
                        |err| {
                            tracing::debug!("no provisioned state readable: {err:#}");
                            None
                        },
                    )
                }
            }
        }
    };
    match provisioned {
        Some(site) => {
            let scanning = scanning.unwrap_or_else(|| crate::scan::start(settings, 0));
            crate::atomic::publish(settings, site, scanning, out).await
        }
        None if settings.mode == Mode::Atomic || settings.preview.is_some() => bail!(
            "bucket `{}` is not a provisioned skiff site, so {} cannot publish atomically\nhint: run `skiff provision` first, or publish in place (`[site] mode = \"in-place\"`, no `--preview`)",
            settings.bucket,
            if settings.preview.is_some() { "`--preview`" } else { "`mode = \"atomic\"`" }
        ),
        None => {
            let scanning = scanning.unwrap_or_else(|| crate::scan::start(settings, settings.prefix.len()));
            match publish_in_place(settings, prefetched, scanning, out).await? {
                InPlace::Published => Ok(()),
                // The mode is decided here, once: the in-place flow only reports what it found.
                InPlace::Provisioned(site, scanned) => {
                    Box::pin(crate::atomic::publish(settings, *site, Scanning::done(scanned), out)).await
                }
            }
        }
    }
}

/// How an in-place publish ended.
enum InPlace {
    /// The files are published (or the plan shown).
    Published,
    /// The bucket turned out to be a provisioned site (published in place, provisioned
    /// later): nothing was written, and the finished scan goes to the atomic publish.
    Provisioned(Box<crate::atomic::Site>, crate::scan::Scan),
}

/// Publish `settings.dir` to `s3://bucket/prefix`, overwriting objects where they are.
/// `prefetched`: the manifest, when it was already read.
async fn publish_in_place(
    settings: &PublishSettings,
    prefetched: Prefetch,
    scanning: Scanning,
    out: &Output,
) -> Result<InPlace> {
    let started = Instant::now();

    let shared = aws::sdk_config(&settings.aws).await?;
    let mut store =
        S3Store::new(aws::s3_client(&shared), &settings.bucket, &settings.prefix, settings.multipart_threshold)
            .with_checksums(!settings.aws.no_checksums);
    let cdn = settings.cdn.as_ref().map(|c| (c, Cdn::new(aws::cloudfront_client(&shared))));
    out.phase(&format!("scanning {} and reading {}…", settings.dir.display(), store.location()));
    let (remote, distribution) = tokio::join!(read_remote(&store, prefetched, settings.concurrency, out), async {
        match &cdn {
            Some((c, client)) => Some(client.distribution(&c.distribution_id).await.and_then(invalidate::usable)),
            None => None,
        }
    });
    let remote = match remote {
        Err(StoreError::WrongRegion { region: Some(region), .. }) => {
            tracing::debug!(region, "bucket is in another region; switching");
            store = store.in_region(&region);
            read_remote(&store, Prefetch::Unread, settings.concurrency, out).await
        }
        other => other,
    };
    let location = store.location();
    // Local problems first: they are the user's to fix whatever the bucket says.
    let mut scanned = out.scanned(scanning, &settings.dir).await.context("the scan stopped unexpectedly")??;
    out.left_out(&scanned.left_out);
    tracing::debug!(
        files = scanned.files.len(),
        bytes = scanned.bytes,
        excluded = scanned.excluded,
        elapsed_ms = started.elapsed().as_millis(),
        "scanned {}",
        settings.dir.display()
    );
    let mut remote = remote.with_context(|| format!("cannot read the current state of {location}"))?;
    if let Some(err) = &remote.too_new {
        bail!("{location}{MANIFEST_KEY}: {err}");
    }
    for warning in &scanned.warnings {
        out.warn(warning);
    }
    if remote.manifest.is_none() && !remote.objects.is_empty() {
        out.warn(&format!(
            "no skiff manifest at {location}{MANIFEST_KEY}: {} objects are already there; every file is uploaded once and objects not in the site are deleted",
            remote.objects.len()
        ));
    }

    if settings.prefix.is_empty() && remote.objects.contains_key(SITE_STATE_KEY) {
        // A bucket published in place and provisioned later still has its old manifest:
        // in auto mode, that is an atomic site now.
        if settings.mode == crate::config::Mode::Auto
            && let Some(site) = crate::atomic::Site::open(&settings.site, settings.multipart_threshold).await?
        {
            // The same scan: the keys are from the root in both modes. Its warnings are out.
            scanned.warnings.clear();
            return Ok(InPlace::Provisioned(Box::new(site), scanned));
        }
        bail!(
            "bucket `{}` holds a site that `skiff provision` set up for atomic deploys (`{SITE_STATE_KEY}`): publishing in place over it would break it\nhint: publish in atomic mode (`[site] mode = \"auto\"` or `\"atomic\"`), or use another bucket or `--prefix`",
            settings.bucket
        );
    }
    if settings.canary.is_some() {
        bail!(
            "--canary needs skiff's router, and {location} is published in place\nhint: set the site up with `skiff provision` for atomic deploys"
        );
    }
    if let Some(rule) = settings.routing.rules.first() {
        bail!(
            "{}: redirects need skiff's router, and {location} is published in place (S3 cannot answer a redirect)\nhint: set the site up with `skiff provision` for atomic deploys, or remove the rules ({} in all)",
            rule.origin,
            settings.routing.rules.len()
        );
    }
    if settings.routing.clean_urls {
        crate::scan::add_clean_copies(&mut scanned).map_err(|e| anyhow::anyhow!(e))?;
    }
    crate::state::adopt_format_1(remote.manifest.as_mut(), &scanned.files);
    let mut plan = plan::plan(
        &scanned.files,
        Remote { manifest: remote.manifest.as_ref(), objects: &remote.objects },
        plan::Options { force: settings.force, exclude: &settings.exclude },
    );
    if settings.no_delete {
        let kept = plan.drop_deletes();
        if kept > 0 {
            let whose = if kept == 1 { "whose file is gone" } else { "whose files are gone" };
            out.info(&format!("--no-delete: kept {} {whose}", count(kept, "object")));
        }
    }
    if let Some(keep) = settings.delete_after {
        let old = remote.manifest.as_ref().map(|m| &m.retired);
        let seconds = i64::try_from(keep.as_secs()).unwrap_or(i64::MAX);
        let deferred = plan.defer_deletes(old, seconds, crate::time::now());
        if deferred > 0 {
            let whose = if deferred == 1 { "whose file is gone" } else { "whose files are gone" };
            out.info(&format!(
                "delete_after: kept {} {whose} until {} after it left",
                count(deferred, "object"),
                crate::time::duration(keep)
            ));
        }
    }
    let guard = plan.check_deletes(settings.max_deletes).with_context(|| format!("refusing to publish to {location}"));
    let guard = match guard {
        Err(err) if !settings.dry_run => return Err(err),
        other => other,
    };
    for site in &plan.nested_sites {
        out.info(&format!("leaving {location}{site} alone: another skiff site publishes there"));
    }
    tracing::debug!(
        manifest_entries = remote.manifest.as_ref().map_or(0, |m| m.files.len()),
        listed = remote.objects.len(),
        actions = plan.actions.len(),
        unchanged = plan.unchanged.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "planned against {location}"
    );
    out.plan(&plan, &location, settings.dry_run);
    let target = cdn.as_ref().zip(distribution).and_then(|((c, client), distribution)| {
        match distribution.map(|d| invalidate::mapping(&d, &settings.bucket, c.directory_rewrite).map(|m| (d, m))) {
            Ok(Some((d, mapping))) => Some(Ok(CdnTarget { settings: c, client, distribution: d, mapping })),
            Ok(None) => {
                out.warn(&format!(
                    "no origin of CloudFront distribution `{}` points at bucket `{}`: invalidating it would do nothing, so skiff skips it",
                    c.distribution_id, settings.bucket
                ));
                None
            }
            Err(err) => Some(Err(err)),
        }
    });
    if settings.routing.spa {
        spa_in_place(settings, target.as_ref(), out);
    }
    // Where the site is: `[site] url`, else the distribution that serves the bucket (its
    // first alias or its own name, at the path its origin gives the prefix), else the bucket.
    let site_url = settings.url.clone().unwrap_or_else(|| match &target {
        Some(Ok(t)) => {
            let host = t.distribution.aliases.first().unwrap_or(&t.distribution.domain_name);
            let paths = t.mapping.paths(&format!("{}index.html", settings.prefix));
            let path = paths.iter().find(|p| p.ends_with('/')).map_or("/", String::as_str);
            format!("https://{host}{path}")
        }
        _ => location.clone(),
    });
    if settings.dry_run {
        let batch = match &target {
            Some(Ok(target)) => Some(target.batch(&settings.prefix, &scanned.files, plan.actions.iter())),
            _ => None,
        };
        if let Some(batch) = &batch {
            for path in &batch.paths {
                out.info(&format!("would invalidate {path}"));
            }
        }
        if let Some(Err(err)) = &target {
            out.warn(&format!("the invalidation would fail: {err}"));
        }
        if let Err(err) = &guard {
            out.warn(&format!("{err:#}"));
        }
        if out.is_json() {
            let invalidation = batch.map(|b| json!({"id": null, "paths": b.paths, "wildcards": b.wildcards}));
            out.json(&document(settings, &location, &plan, None, invalidation.as_ref()));
        }
        out.url(&site_url);
        return Ok(InPlace::Published);
    }

    let deletes = plan.deletes().count();
    if deletes > 0 && !settings.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let question = format!(
            "delete {} from {location} that are not in `{}`?",
            count(deletes, "object"),
            settings.dir.display()
        );
        if !out.confirm(&question) {
            bail!("nothing was changed: deletes not confirmed (pass `--yes` to skip this question)");
        }
    }

    let (cancel, ctrl_c) = crate::interrupt::interruptible(
        "stopping: finishing the requests in flight and recording them (Ctrl-C again to quit at once)",
    );
    let store = Arc::new(store);
    let report = execute::execute(
        &store,
        &plan,
        &scanned.files,
        execute::Basis {
            manifest: remote.manifest.as_ref(),
            condition: remote.manifest_condition.clone(),
            write_manifest: true,
        },
        settings.concurrency,
        &cancel,
        out,
    )
    .await;
    ctrl_c.abort();

    let counts = Counts::of(plan.files, plan.bytes, plan.unchanged.len(), report.done.iter().copied());
    out.summary(&counts, &location, started.elapsed(), report.is_complete());

    // Invalidate what was actually replaced or deleted, even after a partial failure: the
    // next run sees those keys as unchanged and would not invalidate them again.
    let invalidated = match &target {
        None => None,
        Some(Err(err)) => Some(Err(anyhow::anyhow!("{err}"))),
        Some(Ok(target)) => {
            let batch = target.batch(&settings.prefix, &scanned.files, report.done.iter().copied());
            if batch.paths.is_empty() {
                None
            } else {
                let hint = retry_hint(&target.distribution.id, &batch);
                let sent =
                    invalidate::send(target.client, &target.distribution.id, batch, target.settings.wait, out).await;
                Some(sent.map_err(|err| anyhow::anyhow!("{err}\nhint: {hint}")))
            }
        }
    };
    if out.is_json() {
        let invalidation = match &invalidated {
            Some(Ok(sent)) => Some(sent.to_json()),
            Some(Err(err)) => Some(json!({"id": null, "error": err.to_string()})),
            None => None,
        };
        out.json(&document(settings, &location, &plan, Some(&report), invalidation.as_ref()));
    }
    let published = finish(&report, plan.actions.len(), &location);
    match (published, invalidated) {
        (Err(err), Some(Err(cdn))) => Err(err.context(format!("and the CloudFront invalidation failed too: {cdn}"))),
        (Err(err), _) => Err(err),
        (Ok(()), Some(Err(cdn))) => Err(cdn.context(format!(
            "the files were published to {location}, but the CloudFront invalidation failed, so visitors may see cached old versions"
        ))),
        (Ok(()), _) => {
            crate::ci::write_in_place(&site_url, &counts, out);
            out.url(&site_url);
            if let Some(timeout) = settings.verify {
                if !site_url.starts_with("http") {
                    bail!(
                        "--verify needs the site's URL, and {site_url} is not one\nhint: set `[site] url` (or a distribution that serves the bucket)"
                    );
                }
                let keys: Vec<&str> = plan.actions.iter().map(|a| a.key.as_str()).collect();
                let checks = crate::verify::checks(&scanned.files, &keys, false, None);
                crate::verify::verify(&site_url, checks, timeout, out).await?;
            }
            Ok(InPlace::Published)
        }
    }
}

/// `[site] spa` in place: S3 cannot fall back to the root page, but the distribution's
/// error responses can (403 and 404 → `/index.html`, status 200). skiff reads them and says
/// what to set; it does not change a distribution it does not own (and the publish job's
/// IAM policy has no `cloudfront:UpdateDistribution`).
fn spa_in_place(
    settings: &PublishSettings,
    target: Option<&Result<CdnTarget<'_>, crate::cdn::CdnError>>,
    out: &Output,
) {
    let Some(Ok(target)) = target else {
        out.warn(
            "`[site] spa` in place needs a CloudFront distribution (`[site] distribution_id`) whose error responses serve /index.html: without one, deep links answer 404",
        );
        return;
    };
    let page =
        target.mapping.paths(&format!("{}index.html", settings.prefix)).into_iter().find(|p| p.ends_with("index.html"));
    let Some(page) = page else { return };
    let set = |code: i32| {
        target
            .distribution
            .error_pages
            .iter()
            .any(|(c, path, response)| *c == code && *path == page && response == "200")
    };
    if !(set(403) && set(404)) {
        out.warn(&format!(
            "`[site] spa`: distribution {} does not answer missing paths with {page}, so deep links answer 404\nhint: in its error pages (CloudFront console, or `aws cloudfront update-distribution`), set the custom error responses for 403 and 404 to response page {page} with response code 200",
            target.distribution.id
        ));
    }
}

/// A distribution that reaches the bucket, ready to invalidate.
struct CdnTarget<'a> {
    settings: &'a CdnSettings,
    client: &'a Cdn,
    distribution: Distribution,
    mapping: Mapping,
}

impl CdnTarget<'_> {
    /// The paths for these actions: everything replaced or deleted (a new key cannot be
    /// cached yet), compacted against the keys that stay as they are.
    fn batch<'a>(&self, prefix: &str, local: &[LocalFile], actions: impl Iterator<Item = &'a Action>) -> Batch {
        let changed: Vec<String> =
            actions.filter(|a| a.reason != Reason::New).map(|a| format!("{prefix}{}", a.key)).collect();
        let touched: HashSet<&str> = changed.iter().map(String::as_str).collect();
        let unchanged: Vec<String> =
            local.iter().map(|f| format!("{prefix}{}", f.key)).filter(|k| !touched.contains(k.as_str())).collect();
        invalidation::for_keys(&changed, &unchanged, &self.mapping, self.settings.max_paths)
    }
}

/// The command that sends the same invalidation again, each path quoted for the shell (a
/// pasted `/posts/*` must reach skiff, not be expanded).
fn retry_hint(distribution_id: &str, batch: &Batch) -> String {
    let quote = |path: &str| format!("'{}'", path.replace('\'', r"'\''"));
    let paths = if batch.paths.len() <= 10 {
        batch.paths.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ")
    } else {
        quote("/*")
    };
    format!("once the problem is fixed, run `skiff invalidate --distribution-id {distribution_id} {paths}`")
}

async fn read_remote(
    store: &S3Store,
    prefetched: Prefetch,
    concurrency: usize,
    out: &Output,
) -> Result<RemoteState, StoreError> {
    let manifest = async {
        match prefetched {
            Prefetch::Read(fetched) => Ok(fetched),
            Prefetch::Unread => store.get_manifest(MANIFEST_KEY).await,
        }
    };
    let (manifest, objects) = Box::pin(store.list_with_manifest(manifest, concurrency)).await;
    let mut objects = objects?;
    objects.retain(|key, _| !key::is_state(key));
    let fetched = manifest?;
    let manifest_condition = fetched.as_ref().map_or(Condition::IfAbsent, |f| Condition::IfMatch(f.etag.clone()));
    let (manifest, too_new) = match fetched.map(|f| f.manifest) {
        None => (None, None),
        Some(Ok(manifest)) => (Some(manifest), None),
        Some(Err(err @ ManifestError::TooNew(_))) => (None, Some(err)),
        Some(Err(err)) => {
            out.warn(&format!("ignoring {}{MANIFEST_KEY}: {err}; every file is uploaded once", store.location()));
            (None, None)
        }
    };
    Ok(RemoteState { manifest, manifest_condition, too_new, objects })
}

fn finish(report: &Report, planned: usize, location: &str) -> Result<()> {
    if report.interrupted {
        return Err(Interrupted { done: report.done.len(), planned, unit: "actions" }.into());
    }
    if let Some(err) = &report.manifest_error {
        if matches!(err, StoreError::PreconditionFailed { .. }) {
            bail!(
                "another publish to {location} wrote skiff's manifest while this one ran; the files of both are in the bucket, but the manifest may not list this publish's changes\nhint: run the same command again: it re-checks every object against the listing"
            );
        }
        bail!(
            "the files were published but skiff's manifest could not be written to {location}{MANIFEST_KEY}: {err}\nhint: run the same command again; it re-checks every object"
        );
    }
    if report.failed.is_empty() && report.skipped.is_empty() {
        return Ok(());
    }
    let mut message = if report.failed.is_empty() {
        format!("{} of {planned} actions were not attempted", report.skipped.len())
    } else {
        format!("{} of {planned} actions failed", report.failed.len())
    };
    for (action, err) in report.failed.iter().take(10) {
        message.push_str(&format!("\n  `{}`: {err}", action.key));
    }
    if report.failed.len() > 10 {
        message.push_str(&format!("\n  … and {} more", report.failed.len() - 10));
    }
    if !report.skipped.is_empty() {
        message.push_str(&format!(
            "\n{} actions were held back (HTML and deletes wait until every asset is up); what succeeded is recorded: run the same command again to finish",
            report.skipped.len()
        ));
    }
    bail!(message)
}

/// The `--json` document (DESIGN §2).
fn document<'a>(
    settings: &'a PublishSettings,
    location: &'a str,
    plan: &'a Plan,
    report: Option<&'a Report>,
    invalidation: Option<&'a serde_json::Value>,
) -> Document<'a> {
    let summary = match report {
        None => plan.counts(),
        Some(report) => Counts::of(plan.files, plan.bytes, plan.unchanged.len(), report.done.iter().copied()),
    };
    Document {
        target: "production",
        mode: "in-place",
        dry_run: settings.dry_run,
        deploy_id: None,
        url: location,
        place: Place::InPlace { bucket: &settings.bucket, prefix: &settings.prefix },
        complete: report.is_none_or(Report::is_complete),
        summary,
        actions: ActionRows { plan, report },
        invalidation,
    }
}
