//! CloudFront invalidations as a step of `skiff publish` and as `skiff invalidate PATH...`:
//! map keys through the distribution's origins, compact, send, report what it costs, and
//! wait for completion when asked. The path logic itself is pure, in [`crate::invalidation`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::json;

use crate::aws;
use crate::cdn::{Cdn, CdnError, Distribution};
use crate::config::InvalidateSettings;
use crate::invalidation::{self, Batch, Mapping};
use crate::output::Output;
use crate::state::MANIFEST_KEY;
use crate::store::{S3Store, Store};

/// How often `--wait` polls.
const POLL: Duration = Duration::from_secs(5);

/// An invalidation that was created.
#[derive(Debug, Clone)]
pub struct Sent {
    /// CloudFront's id for it.
    pub id: String,
    /// The paths sent.
    pub batch: Batch,
    /// `InProgress`, or `Completed` after `--wait`.
    pub status: String,
    /// Paths of this batch beyond the 1,000 free this month, as far as this distribution
    /// shows (other distributions of the account share the allowance).
    pub billable: Option<u64>,
}

impl Sent {
    /// The `invalidation` member of the JSON documents.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "paths": self.batch.paths,
            "wildcards": self.batch.wildcards,
            "requested_paths": self.batch.requested,
            "status": self.status,
            "billable_paths": self.billable,
        })
    }
}

/// How a distribution reaches `bucket`: the origin paths of its origins on that bucket.
/// `None` when no origin points at the bucket.
pub fn mapping(distribution: &Distribution, bucket: &str, directory_rewrite: bool) -> Option<Mapping> {
    let origin_paths: Vec<String> = distribution
        .origins
        .iter()
        .filter(|(domain, _)| invalidation::origin_is_bucket(domain, bucket))
        .map(|(_, path)| path.clone())
        .collect();
    (!origin_paths.is_empty()).then_some(Mapping { origin_paths, directory_rewrite })
}

/// A distribution that can be invalidated, or why not.
pub fn usable(distribution: Distribution) -> Result<Distribution, CdnError> {
    if distribution.enabled { Ok(distribution) } else { Err(CdnError::Disabled { id: distribution.id }) }
}

/// Create the invalidation, say what it costs, and wait for it when `wait` is set.
pub async fn send(
    cdn: &Cdn,
    distribution_id: &str,
    batch: Batch,
    wait: Option<Duration>,
    out: &Output,
) -> Result<Sent, CdnError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let since = crate::time::month_start(i64::try_from(now.as_secs()).unwrap_or(0));
    let billable = match cdn.paths_since(distribution_id, since).await {
        Ok((used, _complete)) => Some(invalidation::billable(used, batch.paths.len() as u64)),
        Err(err) => {
            tracing::debug!("could not count this month's invalidation paths: {err}");
            None
        }
    };
    let reference = format!("skiff-{}-{}", now.as_millis(), std::process::id());
    let on_wait = |delay: Duration| {
        out.info(&format!(
            "CloudFront distribution `{distribution_id}` has too many invalidations in progress; trying again in {}",
            crate::time::duration(delay)
        ));
    };
    let id = cdn.invalidate(distribution_id, &batch.paths, &reference, &on_wait).await?;
    let mut line = format!(
        "invalidation `{id}` on `{distribution_id}`: {} paths ({} wildcards)",
        batch.paths.len(),
        batch.wildcards
    );
    if batch.requested > batch.paths.len() {
        line.push_str(&format!(", compacted from {}", batch.requested));
    }
    match billable {
        Some(0) => line.push_str(", within this month's free 1,000 as far as this distribution shows"),
        Some(n) => line.push_str(&format!(", {n} beyond this month's free 1,000 (about ${:.3})", n as f64 * 0.005)),
        None => {}
    }
    out.info(&line);
    let mut status = "InProgress".to_string();
    if let Some(timeout) = wait {
        status = wait_for(cdn, distribution_id, &id, timeout, out).await?;
    }
    Ok(Sent { id, batch, status, billable })
}

/// Poll until the invalidation completes (compared case-insensitively: the emulator says
/// `COMPLETED`) or `timeout` passes.
pub async fn wait_for(
    cdn: &Cdn,
    distribution_id: &str,
    id: &str,
    timeout: Duration,
    out: &Output,
) -> Result<String, CdnError> {
    let started = Instant::now();
    loop {
        let status = cdn.invalidation_status(distribution_id, id).await?;
        if status.eq_ignore_ascii_case("completed") {
            out.status_done();
            out.info(&format!("invalidation `{id}` completed in {}", crate::time::duration(started.elapsed())));
            return Ok(status);
        }
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            out.status_done();
            return Err(CdnError::WaitTimeout { id: distribution_id.into(), invalidation: id.into(), waited: elapsed });
        }
        out.status(&format!("waiting for invalidation `{id}`: {status} ({})", crate::time::duration(elapsed)));
        tokio::time::sleep(POLL.min(timeout.saturating_sub(elapsed))).await;
    }
}

/// `skiff invalidate PATH...`.
pub async fn invalidate(settings: &InvalidateSettings, out: &Output) -> Result<()> {
    let shared = aws::sdk_config(&settings.aws).await?;
    let cdn = Cdn::new(aws::cloudfront_client(&shared));
    let distribution = usable(cdn.distribution(&settings.distribution_id).await?)?;
    let batch = if settings.compact {
        let unchanged = match &settings.bucket {
            Some(bucket) => {
                site_paths(&shared, bucket, &settings.prefix, &distribution, settings.directory_rewrite, out).await
            }
            None => Vec::new(),
        };
        let covered: std::collections::HashSet<&String> = settings.paths.iter().collect();
        let unchanged: Vec<String> = unchanged.into_iter().filter(|p| !covered.contains(p)).collect();
        invalidation::compact(
            settings.paths.clone(),
            &unchanged,
            settings.max_paths,
            invalidation::MAX_WILDCARDS_IN_FLIGHT,
        )
    } else {
        Batch::exact(settings.paths.clone())
    };
    if settings.dry_run {
        for path in &batch.paths {
            out.info(&format!("would invalidate {path}"));
        }
        out.info(&format!(
            "dry run: {} paths ({} wildcards) on `{}`; nothing was sent",
            batch.paths.len(),
            batch.wildcards,
            distribution.id
        ));
        if out.is_json() {
            out.json(&json!({"distribution_id": distribution.id, "dry_run": true, "invalidation": {"id": null, "paths": batch.paths}}));
        }
        return Ok(());
    }
    let sent = send(&cdn, &distribution.id, batch, settings.wait, out).await?;
    if out.is_json() {
        out.json(&json!({"distribution_id": distribution.id, "dry_run": false, "invalidation": sent.to_json()}));
    } else {
        out.url(&sent.id);
    }
    Ok(())
}

/// The URL paths of the site's objects, from its manifest: what a wildcard would also cover.
async fn site_paths(
    shared: &aws::Shared,
    bucket: &str,
    prefix: &str,
    distribution: &Distribution,
    rewrite: bool,
    out: &Output,
) -> Vec<String> {
    let Some(mapping) = mapping(distribution, bucket, rewrite) else {
        return Vec::new();
    };
    let store = S3Store::new(aws::s3_client(shared), bucket, prefix, u64::MAX);
    match store.get_manifest(MANIFEST_KEY).await.map(|fetched| fetched.map(|f| f.manifest)) {
        Ok(Some(Ok(manifest))) => {
            manifest.files.keys().flat_map(|key| mapping.paths(&format!("{prefix}{key}"))).collect()
        }
        Ok(_) => Vec::new(),
        Err(err) => {
            out.warn(&format!("compacting without knowing the site's files: {err}"));
            Vec::new()
        }
    }
}
