//! `skiff rollback` (make an earlier deploy live again: one KVS write, no upload) and
//! `skiff deploys` (the deploys of a target, newest first).

use anyhow::{Result, bail};
use serde_json::json;

use crate::atomic::Site;
use crate::config::SiteSettings;
use crate::output::{Output, Render, bytes};

/// `skiff rollback [DEPLOY] [--preview BRANCH]`.
pub async fn rollback(
    settings: &SiteSettings,
    deploy: Option<&str>,
    preview: Option<&str>,
    out: &Output,
) -> Result<()> {
    let mut site = Site::require(settings, u64::MAX).await?;
    let resolved = site.target(preview)?;
    let target = resolved.name.clone();
    if !site.state.targets.contains_key(&target) {
        bail!("{target} has no deploys to roll back to\nhint: `skiff deploys` lists the deploys of a target");
    }
    let lock = site.lock(&target, "rollback", out).await?;
    let result = async {
        site.refresh().await?;
        site.reconcile(&target, out).await?;
        let entry = site.state.targets.get(&target).cloned().unwrap_or_default();
        if deploy.is_none()
            && let Some(canary) = &entry.canary
        {
            site.end_canary().await?;
            let live = entry.live.as_deref().unwrap_or("none");
            out.info(&format!(
                "the canary of deploy {} ({} %) ended: every visitor gets deploy {live}",
                canary.id, canary.weight
            ));
            return Ok(json!({"target": target, "deploy_id": entry.live, "previous": entry.live, "url": resolved.url, "changed": true, "canary_ended": canary.id, "invalidation": null}));
        }
        let chosen = match deploy {
            Some(id) => match entry.deploy(id) {
                Some(d) if d.complete => d.clone(),
                Some(_) => bail!("deploy {id} of {target} is incomplete (its publish failed part way): it cannot go live"),
                None => bail!("{target} has no deploy `{id}`\nhint: `skiff deploys{}` lists them", preview_flag(preview)),
            },
            None => match entry.previous() {
                Some(d) => d.clone(),
                None => bail!(
                    "{target} has no complete deploy older than the live one ({})\nhint: `skiff deploys{}` lists them; name one with `skiff rollback DEPLOY`",
                    entry.live.as_deref().unwrap_or("none"),
                    preview_flag(preview)
                ),
            },
        };
        if entry.live.as_deref() == Some(chosen.id.as_str()) {
            out.info(&format!("{target} already serves deploy {}: nothing to do", chosen.id));
            return Ok(json!({"target": target, "deploy_id": chosen.id, "previous": entry.live, "url": resolved.url, "changed": false, "invalidation": null}));
        }
        let Some(manifest) = site.manifest(&target, &chosen.id).await? else {
            bail!("the manifest of deploy {} is missing from the bucket: it cannot go live", chosen.id);
        };
        let invalidation = site.activate(&target, &chosen.id, chosen.base.as_deref(), manifest.not_found_page(), out).await?;
        out.info(&format!(
            "{target} now serves deploy {} again (was {})",
            chosen.id,
            entry.live.as_deref().unwrap_or("none")
        ));
        Ok(switched(&target, &chosen.id, entry.live.as_deref(), &resolved.url, invalidation.as_ref()))
    }
    .await;
    conclude(lock, &site, result, &resolved.url, out).await
}

/// `skiff promote`: the canary becomes production for every visitor.
pub async fn promote(settings: &SiteSettings, out: &Output) -> Result<()> {
    let mut site = Site::require(settings, u64::MAX).await?;
    let resolved = site.target(None)?;
    let target = resolved.name.clone();
    let lock = site.lock(&target, "promote", out).await?;
    let result = async {
        site.refresh().await?;
        site.reconcile(&target, out).await?;
        let entry = site.state.targets.get(&target).cloned().unwrap_or_default();
        let Some(canary) = entry.canary.clone() else {
            bail!("production has no canary to promote\nhint: `skiff publish --canary 10` starts one");
        };
        let Some(manifest) = site.manifest(&target, &canary.id).await? else {
            bail!("the manifest of deploy {} is missing from the bucket: it cannot go live", canary.id);
        };
        let base = entry.deploy(&canary.id).and_then(|d| d.base.clone());
        let invalidation = site.activate(&target, &canary.id, base.as_deref(), manifest.not_found_page(), out).await?;
        out.info(&format!(
            "{target} now serves deploy {} to everyone (was {})",
            canary.id,
            entry.live.as_deref().unwrap_or("none")
        ));
        Ok(switched(&target, &canary.id, entry.live.as_deref(), &resolved.url, invalidation.as_ref()))
    }
    .await;
    conclude(lock, &site, result, &resolved.url, out).await
}

/// The JSON document of a switch: what went live, what it replaced.
fn switched(
    target: &str,
    id: &str,
    previous: Option<&str>,
    url: &str,
    invalidation: Option<&serde_json::Value>,
) -> serde_json::Value {
    json!({"target": target, "deploy_id": id, "previous": previous, "url": url, "changed": true, "invalidation": invalidation})
}

/// Release the lock whatever happened, then report: the command's error first, else a
/// failed release, else the document and the URL.
async fn conclude(
    lock: crate::deploys::Lock,
    site: &Site,
    result: Result<serde_json::Value>,
    url: &str,
    out: &Output,
) -> Result<()> {
    let released = lock.release(&site.root).await;
    let document = result?;
    released?;
    if out.is_json() {
        out.json(&document);
    }
    out.url(url);
    Ok(())
}

fn preview_flag(preview: Option<&str>) -> String {
    preview.map(|b| format!(" --preview {b}")).unwrap_or_default()
}

/// `skiff deploys [--preview BRANCH]`.
pub async fn list(settings: &SiteSettings, preview: Option<&str>, out: &Output) -> Result<()> {
    let site = Site::require(settings, u64::MAX).await?;
    let resolved = site.target(preview)?;
    let entry = site.state.targets.get(&resolved.name).cloned().unwrap_or_default();
    let deploys = entry
        .deploys
        .iter()
        .rev()
        .map(|d| Row {
            id: d.id.clone(),
            created: d.created,
            commit: d.commit.clone(),
            files: d.files,
            bytes: d.bytes,
            complete: d.complete,
            live: entry.live.as_deref() == Some(d.id.as_str()),
            canary: entry.canary.as_ref().filter(|c| c.id == d.id).map(|c| c.weight),
        })
        .collect();
    out.render(&DeployList { target: resolved.name, url: resolved.url, deploys });
    Ok(())
}

/// The deploys of one target, newest first (`skiff deploys`, also as `--json`).
#[derive(Debug, serde::Serialize)]
struct DeployList {
    target: String,
    url: String,
    deploys: Vec<Row>,
}

/// One deploy in the list.
#[derive(Debug, serde::Serialize)]
struct Row {
    id: String,
    created: i64,
    commit: Option<String>,
    files: usize,
    bytes: u64,
    complete: bool,
    live: bool,
    /// The share of visitors it gets as the canary.
    canary: Option<u8>,
}

impl Render for DeployList {
    fn lines(&self) -> Vec<String> {
        if self.deploys.is_empty() { vec![format!("{} has no deploys yet", self.target)] } else { Vec::new() }
    }

    /// A table, the live deploy marked `*`.
    fn data(&self) -> Vec<String> {
        if self.deploys.is_empty() {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "{:<2}{:<26} {:<17} {:<8} {:>7} {:>10}  {}",
            "", "DEPLOY", "CREATED (UTC)", "COMMIT", "FILES", "SIZE", self.target
        )];
        for deploy in &self.deploys {
            let mark = if deploy.live { "*" } else { " " };
            let commit: String = deploy.commit.as_deref().unwrap_or("-").chars().take(7).collect();
            let state = match deploy.canary {
                Some(weight) => format!("  canary: {weight} % of visitors"),
                None if deploy.complete => String::new(),
                None => "  incomplete".to_string(),
            };
            lines.push(format!(
                "{mark} {:<26} {:<17} {:<8} {:>7} {:>10}{state}",
                deploy.id,
                crate::time::utc(deploy.created),
                commit,
                deploy.files,
                bytes(deploy.bytes)
            ));
        }
        lines
    }
}
