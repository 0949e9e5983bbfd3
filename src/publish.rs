//! `skiff publish` in in-place mode: scan and read the remote state at the same time, plan,
//! show the plan, confirm deletes on a terminal, execute, report. Ctrl-C stops scheduling,
//! lets requests in flight finish, records what was done and exits 130.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::config::PublishSettings;
use crate::execute::{self, Report};
use crate::output::Output;
use crate::plan::{self, Counts, Plan, Remote, RemoteObject};
use crate::scan::{self, ScanOptions};
use crate::state::{MANIFEST_KEY, Manifest};
use crate::store::{S3Store, Store, StoreError};
use crate::{aws, key};

/// The publish was stopped by Ctrl-C (exit code 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {done} of {planned} actions done and recorded; run the same command again to finish")]
pub struct Interrupted {
    /// Actions that completed.
    pub done: usize,
    /// Actions planned.
    pub planned: usize,
}

/// What the bucket holds.
struct RemoteState {
    manifest: Option<Manifest>,
    objects: std::collections::BTreeMap<String, RemoteObject>,
}

/// Publish `settings.dir` to `s3://bucket/prefix`.
pub async fn publish(settings: &PublishSettings, out: &Output) -> Result<()> {
    let started = Instant::now();
    let scan_options = (settings.exclude.clone(), settings.rules.clone(), settings.prefix.len());
    let dir = settings.dir.clone();
    let scanning = tokio::task::spawn_blocking(move || {
        let (exclude, rules, prefix_len) = scan_options;
        scan::scan(&dir, ScanOptions { exclude: &exclude, rules: &rules, prefix_len })
    });

    let shared = aws::sdk_config(&settings.aws).await;
    let mut store =
        S3Store::new(aws::s3_client(&shared), &settings.bucket, &settings.prefix, settings.multipart_threshold);
    let remote = match read_remote(&store, out).await {
        Err(StoreError::WrongRegion { region: Some(region), .. }) => {
            tracing::debug!(region, "bucket is in another region; switching");
            store = store.in_region(&region);
            read_remote(&store, out).await
        }
        other => other,
    };
    let location = store.location();
    // Local problems first: they are the user's to fix whatever the bucket says.
    let scanned = scanning.await.context("the scan stopped unexpectedly")??;
    let remote = remote.with_context(|| format!("cannot read the current state of {location}"))?;
    for warning in &scanned.warnings {
        out.warn(warning);
    }
    if remote.manifest.is_none() && !remote.objects.is_empty() {
        out.warn(&format!(
            "no skiff manifest at {location}{MANIFEST_KEY}: {} objects are already there; every file is uploaded once and objects not in the site are deleted",
            remote.objects.len()
        ));
    }

    let plan = plan::plan(
        &scanned.files,
        Remote { manifest: remote.manifest.as_ref(), objects: &remote.objects },
        plan::Options { force: settings.force, max_deletes: settings.max_deletes },
    )?;
    for site in &plan.nested_sites {
        out.info(&format!("leaving {location}{site} alone: another skiff site publishes there"));
    }
    out.plan(&plan, &location, settings.dry_run);
    if settings.dry_run {
        if out.is_json() {
            out.json(&document(settings, &location, &plan, None));
        }
        out.url(&location);
        return Ok(());
    }

    let deletes = plan.deletes().count();
    if deletes > 0 && !settings.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let question =
            format!("delete {deletes} objects from {location} that are not in `{}`?", settings.dir.display());
        if !out.confirm(&question) {
            bail!("nothing was changed: deletes not confirmed (pass `--yes` to skip this question)");
        }
    }

    let (stop, cancel) = tokio::sync::watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop.send(true);
            crate::output::notice(
                "stopping: finishing the requests in flight and recording them (Ctrl-C again to quit at once)",
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(crate::EXIT_INTERRUPTED));
            }
        }
    });
    let store = Arc::new(store);
    let report =
        execute::execute(&store, &plan, &scanned.files, remote.manifest.as_ref(), settings.concurrency, &cancel, out)
            .await;
    ctrl_c.abort();

    let counts = Counts::of(plan.files, plan.bytes, plan.unchanged.len(), report.done.iter());
    out.summary(&counts, &location, started.elapsed(), report.is_complete());
    if out.is_json() {
        out.json(&document(settings, &location, &plan, Some(&report)));
    }
    finish(&report, plan.actions.len(), &location)?;
    out.url(&location);
    Ok(())
}

async fn read_remote(store: &S3Store, out: &Output) -> Result<RemoteState, StoreError> {
    let (manifest, objects) = tokio::join!(store.get(MANIFEST_KEY), store.list());
    let mut objects = objects?;
    objects.retain(|key, _| !key::is_state(key));
    let manifest = match manifest? {
        None => None,
        Some(bytes) => match Manifest::parse(&bytes) {
            Ok(manifest) => Some(manifest),
            Err(err @ crate::state::ManifestError::TooNew(_)) => {
                return Err(StoreError::Other {
                    bucket: String::new(),
                    key: Some(MANIFEST_KEY.to_string()),
                    code: "manifest".into(),
                    message: err.to_string(),
                });
            }
            Err(err) => {
                out.warn(&format!("ignoring {}{MANIFEST_KEY}: {err}; every file is uploaded once", store.location()));
                None
            }
        },
    };
    Ok(RemoteState { manifest, objects })
}

fn finish(report: &Report, planned: usize, location: &str) -> Result<()> {
    if report.interrupted {
        return Err(Interrupted { done: report.done.len(), planned }.into());
    }
    if let Some(err) = &report.manifest_error {
        bail!(
            "the files were published but skiff's manifest could not be written to {location}{MANIFEST_KEY}: {err}\nhint: run the same command again; it re-checks every object"
        );
    }
    if !report.failed.is_empty() {
        let mut message = format!("{} of {planned} actions failed", report.failed.len());
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
        bail!(message);
    }
    Ok(())
}

/// The `--json` document (DESIGN §2).
fn document(settings: &PublishSettings, location: &str, plan: &Plan, report: Option<&Report>) -> serde_json::Value {
    let actions: Vec<serde_json::Value> = match report {
        None => plan
            .actions
            .iter()
            .map(|a| json!({"op": a.op, "key": a.key, "reason": a.reason, "bytes": a.bytes, "status": "planned"}))
            .collect(),
        Some(report) => {
            let mut rows: Vec<serde_json::Value> = report
                .done
                .iter()
                .map(|a| json!({"op": a.op, "key": a.key, "reason": a.reason, "bytes": a.bytes, "status": "done"}))
                .collect();
            rows.extend(report.failed.iter().map(|(a, err)| {
                json!({"op": a.op, "key": a.key, "reason": a.reason, "bytes": a.bytes, "status": "failed", "error": err.to_string()})
            }));
            rows.extend(
                report.skipped.iter().map(
                    |a| json!({"op": a.op, "key": a.key, "reason": a.reason, "bytes": a.bytes, "status": "skipped"}),
                ),
            );
            rows
        }
    };
    let summary = match report {
        None => plan.counts(),
        Some(report) => Counts::of(plan.files, plan.bytes, plan.unchanged.len(), report.done.iter()),
    };
    json!({
        "target": "production",
        "mode": "in-place",
        "dry_run": settings.dry_run,
        "deploy_id": null,
        "url": location,
        "bucket": settings.bucket,
        "prefix": settings.prefix,
        "complete": report.is_none_or(Report::is_complete),
        "summary": summary,
        "actions": actions,
        "invalidation": null,
    })
}
