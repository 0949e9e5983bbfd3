//! Atomic deploys on a provisioned site: the targets recorded in `_skiff/state.json`, deploy
//! ids, preview slugs and retention (pure), and the two things that keep concurrent runs
//! apart: the deploy lock (`_skiff/lock/<target>`, If-None-Match / If-Match) and
//! read-modify-write updates of the state (If-Match, retried).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::host::{boot as namespace, hostname};
use crate::output::Output;
use crate::state::{SITE_STATE_KEY, SiteState, Target};
use crate::store::{Condition, S3Store, Store as _, StoreError};

/// The production target.
pub const PRODUCTION: &str = "production";
/// A lock lasts this long unless released; a run killed outright blocks no longer.
pub const LOCK_TTL: Duration = Duration::from_hours(1);

/// A deploy target resolved for this site.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `production` or `preview-<slug>`.
    pub name: String,
    /// The branch of a preview.
    pub branch: Option<String>,
    /// Where it is served.
    pub url: String,
}

/// Where a deploy's objects live.
pub fn deploy_prefix(target: &str, id: &str) -> String {
    format!("_deploys/{target}/{id}/")
}

/// Where a deploy's manifest lives: beside its prefix, not in it, so the router never
/// serves it.
pub fn manifest_key(target: &str, id: &str) -> String {
    format!("_deploys/{target}/{id}.json")
}

/// The KVS key and target name of a preview.
pub fn preview_target(slug: &str) -> String {
    format!("preview-{slug}")
}

/// A deploy id: UTC time to the second (so ids sort by time), then the short commit when
/// known, else a few hex digits of `nonce`: `20261122T083000Z-3f2a9c1`.
pub fn new_id(now: i64, commit: Option<&str>, nonce: u64) -> String {
    // 2026-11-22T08:30:00Z → 20261122T083000Z
    let time: String = crate::time::rfc3339(now).chars().filter(|c| !matches!(c, '-' | ':')).collect();
    let suffix = match commit.map(|c| c.chars().filter(char::is_ascii_alphanumeric).take(7).collect::<String>()) {
        Some(c) if !c.is_empty() => c.to_ascii_lowercase(),
        _ => format!("{:06x}", nonce & 0xff_ffff),
    };
    format!("{time}-{suffix}")
}

/// The longest slug (one DNS label).
const MAX_SLUG: usize = 63;

/// A branch name as one DNS label: lowercase `[a-z0-9-]`, no leading, trailing or doubled
/// `-`, at most 63 characters; shortened names end in a hash of the branch so two long
/// branches stay apart.
pub fn slug(branch: &str) -> String {
    let mut out = String::new();
    for c in branch.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let base = out.trim_matches('-');
    let base = if base.is_empty() { "branch" } else { base };
    if base.len() <= MAX_SLUG { base.to_string() } else { hashed(base, branch) }
}

/// `base` cut to leave room for `-<hash of branch>`.
fn hashed(base: &str, branch: &str) -> String {
    let hash = &crate::object::Digest::of(branch.as_bytes()).to_hex()[..6];
    let cut: String = base.chars().take(MAX_SLUG - 7).collect();
    format!("{}-{hash}", cut.trim_end_matches('-'))
}

/// The slug of a branch on this site: its own target if it has one, else [`slug`], with a
/// hash suffix when another branch already has that slug (`feat/x` and `feat-x`).
pub fn slug_for(branch: &str, state: &SiteState) -> String {
    let owner = |slug: &str| state.targets.get(&preview_target(slug)).and_then(|t| t.branch.clone());
    if let Some(slug) = state
        .targets
        .iter()
        .find(|(_, t)| t.branch.as_deref() == Some(branch))
        .and_then(|(name, _)| name.strip_prefix("preview-"))
    {
        return slug.to_string();
    }
    let plain = slug(branch);
    match owner(&plain) {
        Some(other) if other != branch => hashed(&plain, branch),
        _ => plain,
    }
}

/// The deploys to delete after a successful publish: beyond the newest `keep` complete
/// ones, never the live one nor those in `protect` (the one just replaced).
pub fn expired(target: &Target, keep: usize, protect: &[&str]) -> Vec<String> {
    let mut kept = 0;
    let mut out = Vec::new();
    for deploy in target.deploys.iter().rev() {
        let pinned = target.live.as_deref() == Some(deploy.id.as_str()) || protect.contains(&deploy.id.as_str());
        if deploy.complete && kept < keep {
            kept += 1;
            continue;
        }
        if !pinned {
            out.push(deploy.id.clone());
        }
    }
    out.reverse();
    out
}

/// The deploys of `target` that a deploy staying stands on (`<target>/<id>`, from any
/// target's records), when `expiring` of `target` go.
pub fn bases_in_use(
    state: &crate::state::SiteState,
    target: &str,
    expiring: &[String],
) -> std::collections::HashSet<String> {
    state
        .targets
        .iter()
        .flat_map(|(name, t)| t.deploys.iter().map(move |d| (name, d)))
        .filter(|(name, d)| !(name.as_str() == target && expiring.contains(&d.id)))
        .filter_map(|(_, d)| d.base.clone())
        .collect()
}

/// The git commit being published: `SKIFF_COMMIT`, `GITHUB_SHA`, `CI_COMMIT_SHA`, else
/// `git rev-parse HEAD` in `dir` when it is a repository.
pub fn commit(dir: &std::path::Path) -> Option<String> {
    for name in ["SKIFF_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"] {
        if let Ok(value) = std::env::var(name)
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// Who holds a lock, for messages: `user@host pid N` (and the CI run when there is one).
fn owner() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "someone".into());
    let mut owner = format!("{user}@{} pid {}", hostname(), std::process::id());
    if let (Ok(repo), Ok(run)) = (std::env::var("GITHUB_REPOSITORY"), std::env::var("GITHUB_RUN_ID")) {
        owner.push_str(&format!(" (GitHub Actions {repo} run {run})"));
    }
    owner
}

/// What a lock object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Who holds it.
    pub owner: String,
    /// What they are doing (`publish`, `rollback`, `delete preview`).
    pub operation: String,
    /// Since when (seconds since the epoch).
    pub started: i64,
    /// Until when it holds if never released.
    pub expires: i64,
    /// The holder's machine and process: on the same machine, a lock whose process is gone
    /// (killed) is stale at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// See `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// A random token of the run that holds it: the only proof that a lock is ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The machine's boot and PID namespace: a pid means something only within the same ones
    /// (containers may share a host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// This run's lock token.
fn token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(crate::host::random_token)
}

impl LockInfo {
    /// Whether the lock no longer protects anything: past its expiry, or held by a process
    /// of this machine that no longer runs.
    pub fn is_stale(&self, now: i64) -> bool {
        if self.expires <= now {
            return true;
        }
        match (&self.host, self.pid, &self.namespace) {
            (Some(host), Some(pid), Some(ns))
                if *host == hostname() && Some(ns) == namespace().as_ref() && pid != std::process::id() =>
            {
                crate::host::process_alive(pid) == Some(false)
            }
            _ => false,
        }
    }
}

/// A held deploy lock; [`Lock::release`] it on every path.
#[derive(Debug)]
pub struct Lock {
    key: String,
    etag: String,
}

/// The lock object of a target.
pub fn lock_key(target: &str) -> String {
    format!("_skiff/lock/{target}")
}

/// Take the target's lock, waiting up to `timeout` for another run to finish; a lock past
/// its expiry is taken over (If-Match, so two runs cannot both take it over).
pub async fn lock(root: &S3Store, target: &str, operation: &str, timeout: Duration, out: &Output) -> Result<Lock> {
    let key = lock_key(target);
    let started = Instant::now();
    loop {
        let now = crate::time::now();
        let ttl = i64::try_from(LOCK_TTL.as_secs()).unwrap_or(3600);
        let info = LockInfo {
            owner: owner(),
            operation: operation.into(),
            started: now,
            expires: now + ttl,
            host: Some(hostname()),
            pid: Some(std::process::id()),
            token: Some(token().to_string()),
            namespace: namespace(),
        };
        let body = serde_json::to_vec(&info).expect("a lock always serialises");
        match root.put_bytes(&key, body.clone(), "application/json", Condition::IfAbsent).await {
            Ok(etag) => return Ok(Lock { key, etag }),
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(err) => return Err(err).with_context(|| format!("could not take the deploy lock `{key}`")),
        }
        let Some(held) = root.get(&key).await? else { continue };
        let holder: Option<LockInfo> = serde_json::from_slice(&held.bytes).ok();
        // Ours already: a retried request whose first attempt did take it.
        let ours = holder
            .as_ref()
            .is_some_and(|h| h.host.as_deref() == Some(hostname().as_str()) && h.pid == Some(std::process::id()));
        if ours {
            match root.put_bytes(&key, body, "application/json", Condition::IfMatch(held.etag)).await {
                Ok(etag) => return Ok(Lock { key, etag }),
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(err) => return Err(err).with_context(|| format!("could not take the deploy lock `{key}`")),
            }
        }
        let stale = holder.as_ref().is_none_or(|h| h.is_stale(now));
        if stale {
            match root.put_bytes(&key, body, "application/json", Condition::IfMatch(held.etag)).await {
                Ok(etag) => {
                    out.warn(&format!(
                        "took over the stale deploy lock of {} (expired, or its process is gone)",
                        holder.map_or_else(
                            || "an unreadable lock".to_string(),
                            |h| format!("{} ({})", h.owner, h.operation)
                        )
                    ));
                    return Ok(Lock { key, etag });
                }
                Err(StoreError::PreconditionFailed { .. }) => continue,
                Err(err) => return Err(err).with_context(|| format!("could not take over the deploy lock `{key}`")),
            }
        }
        let holder = holder.expect("a live lock was parsed");
        let since = crate::time::duration(Duration::from_secs(u64::try_from(now - holder.started).unwrap_or(0)));
        if started.elapsed() >= timeout {
            out.status_done();
            bail!(
                "`{target}` is locked by {} ({}, started {since} ago; the lock expires in {})\nhint: wait for it to finish, or pass `--lock-timeout 10m` to wait longer; a lock left by a killed run expires by itself",
                holder.owner,
                holder.operation,
                crate::time::duration(Duration::from_secs(u64::try_from(holder.expires - now).unwrap_or(0)))
            );
        }
        out.status(&format!(
            "waiting for {} ({}, started {since} ago) to release `{target}`…",
            holder.owner, holder.operation
        ));
        tokio::time::sleep(Duration::from_millis(500).min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

impl Lock {
    /// Release the lock, unless someone took it over meanwhile.
    pub async fn release(self, root: &S3Store) -> Result<()> {
        root.delete_if_match(&self.key, &self.etag).await.with_context(|| format!("could not release `{}`", self.key))
    }
}

/// Read the site's state and its ETag.
pub async fn read_state(root: &S3Store) -> Result<Option<(SiteState, String)>> {
    match root.get(SITE_STATE_KEY).await? {
        None => Ok(None),
        Some(fetched) => {
            let state =
                SiteState::parse(&fetched.bytes).map_err(|e| anyhow!("{}{SITE_STATE_KEY}: {e}", root.location()))?;
            Ok(Some((state, fetched.etag)))
        }
    }
}

/// Write the whole state: created when `etag` is `None`, else compare-and-swap on it
/// (`skiff provision`, which owns the resources part). `etag` becomes the new one.
pub async fn write_state(root: &S3Store, state: &SiteState, etag: &mut Option<String>) -> Result<()> {
    let condition = etag.clone().map_or(Condition::IfAbsent, Condition::IfMatch);
    match root.put_bytes(SITE_STATE_KEY, state.to_json(), "application/json", condition).await {
        Ok(new) => {
            *etag = Some(new);
            Ok(())
        }
        Err(StoreError::PreconditionFailed { .. }) => bail!(
            "{}{SITE_STATE_KEY} was changed by another skiff while this one was provisioning\nhint: wait for the other run to finish, then run `skiff provision` again",
            root.location()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Change the state with `change`, compare-and-swap, re-reading and re-applying when another
/// run (another target) wrote it in between.
pub async fn update_state(root: &S3Store, mut change: impl FnMut(&mut SiteState) -> Result<()>) -> Result<SiteState> {
    for _ in 0..10 {
        let (mut state, etag) =
            read_state(root).await?.ok_or_else(|| anyhow!("{}{SITE_STATE_KEY} disappeared", root.location()))?;
        change(&mut state)?;
        match root.put_bytes(SITE_STATE_KEY, state.to_json(), "application/json", Condition::IfMatch(etag)).await {
            Ok(_) => return Ok(state),
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(err) => return Err(err).context("could not update the site's state"),
        }
    }
    bail!("{}{SITE_STATE_KEY} kept changing under skiff (10 tries): re-run the command", root.location())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Deploy;

    fn deploy(id: &str, complete: bool) -> Deploy {
        Deploy { id: id.into(), created: 0, commit: None, files: 1, bytes: 1, complete, base: None }
    }

    #[test]
    fn ids_sort_by_time_and_carry_the_commit() {
        assert_eq!(new_id(1_795_336_200, Some("3F2A9C1D00"), 0), "20261122T083000Z-3f2a9c1");
        assert_eq!(new_id(0, None, 0xabc), "19700101T000000Z-000abc");
        assert!(new_id(100, None, 1) < new_id(101, None, 0));
        let id = new_id(1_795_336_200, Some("../x"), 0);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{id}");
    }

    #[test]
    fn slugs_are_one_dns_label() {
        assert_eq!(slug("feature/Login-Page"), "feature-login-page");
        assert_eq!(slug("fix_bug#42"), "fix-bug-42");
        assert_eq!(slug("--weird//name--"), "weird-name");
        assert_eq!(slug("Ünïcödé/ブランチ"), "n-c-d");
        assert_eq!(slug("ブランチ"), "branch");
        let long = slug(&"a".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, slug(&format!("{}b", "a".repeat(199))), "long names differ by their hash");
        let label = regex_like(&long);
        assert!(label, "{long}");
        for name in ["feature/Login-Page", "x", &"é".repeat(100), &"a-".repeat(80)] {
            assert!(regex_like(&slug(name)), "{name} -> {}", slug(name));
        }
    }

    /// `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`, as the router checks.
    fn regex_like(label: &str) -> bool {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    }

    #[test]
    fn two_branches_never_share_a_slug() {
        let mut state = SiteState::new("b", "r");
        state.targets.insert(preview_target("feat-x"), Target { branch: Some("feat/x".into()), ..Target::default() });
        assert_eq!(slug_for("feat/x", &state), "feat-x");
        let other = slug_for("feat-x", &state);
        assert!(other.starts_with("feat-x-") && other.len() == "feat-x-".len() + 6, "{other}");
        // A branch keeps the slug it was given.
        state.targets.insert(preview_target(&other), Target { branch: Some("feat-x".into()), ..Target::default() });
        assert_eq!(slug_for("feat-x", &state), other);
    }

    #[test]
    fn retention_keeps_the_newest_the_live_and_the_replaced() {
        let target = Target {
            canary: None,
            branch: None,
            live: Some("d2".into()),
            deploys: vec![
                deploy("d1", true),
                deploy("d2", true),
                deploy("d3", false),
                deploy("d4", true),
                deploy("d5", true),
                deploy("d6", true),
            ],
        };
        assert_eq!(expired(&target, 2, &["d4"]), ["d1", "d3"]);
        assert_eq!(expired(&target, 10, &[]), ["d3"]);
        assert_eq!(expired(&target, 0, &[]), ["d1", "d3", "d4", "d5", "d6"]);
    }

    #[test]
    fn a_lock_is_stale_when_expired_or_its_process_is_gone() {
        let lock = |host: &str, pid: u32, expires: i64| LockInfo {
            owner: "x".into(),
            operation: "publish".into(),
            started: 0,
            expires,
            host: Some(host.into()),
            pid: Some(pid),
            token: None,
            namespace: namespace(),
        };
        let here = hostname();
        assert!(lock(&here, u32::MAX - 1, 100).is_stale(10), "no such process here");
        assert!(!lock(&here, std::process::id(), 100).is_stale(10), "our own process");
        assert!(!lock("elsewhere", u32::MAX - 1, 100).is_stale(10), "another machine: only expiry tells");
        assert!(lock("elsewhere", 1, 100).is_stale(100));
    }

    #[test]
    fn previous_and_interrupted_deploys() {
        let target = Target {
            canary: None,
            branch: None,
            live: Some("d3".into()),
            deploys: vec![deploy("d1", true), deploy("d2", false), deploy("d3", true), deploy("d4", false)],
        };
        assert_eq!(target.previous().map(|d| d.id.as_str()), Some("d1"));
        assert_eq!(target.interrupted().map(|d| d.id.as_str()), Some("d4"));
        assert_eq!(Target::default().previous(), None);
    }
}
