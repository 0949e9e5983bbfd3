//! `skiff previews list | delete BRANCH | prune`: the branch previews of a provisioned site.

use std::collections::BTreeSet;
use std::io::{BufRead as _, IsTerminal as _};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use crate::atomic::Site;
use crate::config::SiteSettings;
use crate::output::{Output, Render, bytes};
use crate::state::Target;
use crate::time::duration;

/// One preview, for listing and pruning.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    /// Its branch.
    pub branch: String,
    /// Its slug (`<slug>.<previews>`).
    pub slug: String,
    /// Its URL.
    pub url: String,
    /// Its live deploy.
    pub live: Option<String>,
    /// When it was last published (seconds since the epoch).
    pub last_deploy: Option<i64>,
    /// Bytes of its live deploy.
    pub bytes: u64,
}

fn previews(site: &Site) -> Vec<Preview> {
    let domain = site.settings.domain.as_ref().and_then(|d| d.previews.clone()).unwrap_or_default();
    site.state
        .targets
        .iter()
        .filter_map(|(name, target)| name.strip_prefix("preview-").map(|slug| (slug, target)))
        .map(|(slug, target): (&str, &Target)| Preview {
            branch: target.branch.clone().unwrap_or_else(|| slug.to_string()),
            slug: slug.to_string(),
            url: if domain.is_empty() { String::new() } else { format!("https://{slug}.{domain}/") },
            live: target.live.clone(),
            last_deploy: target.deploys.iter().map(|d| d.created).max(),
            bytes: target.live_deploy().map_or(0, |d| d.bytes),
        })
        .collect()
}

/// `skiff previews list`.
pub async fn list(settings: &SiteSettings, out: &Output) -> Result<()> {
    let site = Site::require(settings, u64::MAX).await?;
    let found = previews(&site);
    out.render(&PreviewList { previews: found, now: crate::time::now() });
    Ok(())
}

/// The previews of a site (`skiff previews list`, also as `--json`).
#[derive(Debug, serde::Serialize)]
struct PreviewList {
    previews: Vec<Preview>,
    #[serde(skip)]
    now: i64,
}

impl Render for PreviewList {
    fn lines(&self) -> Vec<String> {
        if self.previews.is_empty() {
            vec!["no previews: `skiff publish --preview BRANCH` makes one".to_string()]
        } else {
            Vec::new()
        }
    }

    fn data(&self) -> Vec<String> {
        if self.previews.is_empty() {
            return Vec::new();
        }
        let mut lines = vec![format!("{:<30} {:<45} {:>12} {:>10}", "BRANCH", "URL", "LAST DEPLOY", "SIZE")];
        for preview in &self.previews {
            let age = preview.last_deploy.map_or_else(
                || "-".to_string(),
                |t| format!("{} ago", duration(Duration::from_secs(u64::try_from(self.now - t).unwrap_or(0)))),
            );
            lines.push(format!("{:<30} {:<45} {:>12} {:>10}", preview.branch, preview.url, age, bytes(preview.bytes)));
        }
        lines
    }
}

/// `skiff previews delete BRANCH`.
pub async fn delete(settings: &SiteSettings, branch: &str, yes: bool, out: &Output) -> Result<()> {
    let site = Site::require(settings, u64::MAX).await?;
    // The branch itself first: another preview's slug may equal this branch's name.
    let all = previews(&site);
    let found = all.iter().find(|p| p.branch == branch).or_else(|| all.iter().find(|p| p.slug == branch)).cloned();
    let Some(preview) = found else {
        bail!("there is no preview of `{branch}`\nhint: `skiff previews list` shows the previews");
    };
    if !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let question = format!("delete the preview of `{}` ({}) and all its deploys?", preview.branch, preview.url);
        if !out.confirm(&question) {
            bail!("nothing was deleted (pass `--yes` to skip this question)");
        }
    }
    let removed = remove(&site, &preview, out).await?;
    if out.is_json() {
        out.json(&json!({"deleted": [preview], "objects": removed}));
    }
    Ok(())
}

async fn remove(site: &Site, preview: &Preview, out: &Output) -> Result<usize> {
    let target = crate::deploys::preview_target(&preview.slug);
    let lock = site.lock(&target, "delete preview", out).await?;
    let result = site.delete_target(&target).await;
    let released = lock.release(&site.root).await;
    let objects = result?;
    released?;
    out.info(&format!("deleted the preview of `{}` ({objects} objects)", preview.branch));
    Ok(objects)
}

/// Which previews a prune removes: last deployed before `cutoff`, or whose branch is not in
/// `keep` (pure).
pub fn prunable(all: &[Preview], cutoff: Option<i64>, keep: Option<&BTreeSet<String>>) -> Vec<Preview> {
    all.iter()
        .filter(|p| {
            let old = cutoff.is_some_and(|c| p.last_deploy.is_none_or(|t| t < c));
            let gone = keep.is_some_and(|k| !k.contains(&p.branch));
            old || gone
        })
        .cloned()
        .collect()
}

/// `skiff previews prune [--older-than D] [--keep-branches] [--dry-run]`.
pub async fn prune(
    settings: &SiteSettings,
    older_than: Option<Duration>,
    keep_branches: bool,
    dry_run: bool,
    out: &Output,
) -> Result<()> {
    let keep: Option<BTreeSet<String>> = if keep_branches {
        let mut set = BTreeSet::new();
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let name = line.trim();
            if !name.is_empty() {
                set.insert(name.trim_start_matches("refs/heads/").to_string());
            }
        }
        if set.is_empty() {
            bail!(
                "`--keep-branches` read no branch names on stdin: refusing to delete every preview\nhint: pipe the live branches in, e.g. `git ls-remote --heads origin | sed 's|.*refs/heads/||' | skiff previews prune --keep-branches`"
            );
        }
        Some(set)
    } else {
        None
    };
    let site = Site::require(settings, u64::MAX).await?;
    let cutoff = older_than.map(|d| crate::time::now() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let doomed = prunable(&previews(&site), cutoff, keep.as_ref());
    let mut objects = 0;
    for preview in &doomed {
        if dry_run {
            out.info(&format!("would delete the preview of `{}` ({})", preview.branch, preview.url));
        } else {
            objects += remove(&site, preview, out).await?;
        }
    }
    if doomed.is_empty() {
        out.info("no previews to prune");
    }
    if out.is_json() {
        out.json(&json!({"dry_run": dry_run, "deleted": doomed, "objects": objects}));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(branch: &str, last: Option<i64>) -> Preview {
        Preview {
            branch: branch.into(),
            slug: crate::deploys::slug(branch),
            url: String::new(),
            live: None,
            last_deploy: last,
            bytes: 0,
        }
    }

    #[test]
    fn prune_takes_old_previews_and_gone_branches() {
        let all = [preview("old", Some(10)), preview("new", Some(100)), preview("gone", Some(100))];
        let names = |p: Vec<Preview>| p.into_iter().map(|p| p.branch).collect::<Vec<_>>();
        assert_eq!(names(prunable(&all, Some(50), None)), ["old"]);
        let keep: BTreeSet<String> = ["old".to_string(), "new".to_string()].into();
        assert_eq!(names(prunable(&all, None, Some(&keep))), ["gone"]);
        assert_eq!(names(prunable(&all, Some(50), Some(&keep))), ["old", "gone"]);
        assert!(prunable(&all, None, None).is_empty());
    }
}
