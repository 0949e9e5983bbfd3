//! Atomic mode on a provisioned site: every publish is an immutable deploy under
//! `_deploys/<target>/<id>/` that goes live in one step (a KVS write the router reads, then
//! the state), and can be undone in seconds. Unchanged files reach a new deploy by
//! server-side copy; only changed bytes are uploaded. One run per target at a time (the
//! deploy lock). The scan, plan, execute and manifest code is the in-place mode's.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::json;

use crate::config::{PublishSettings, SiteSettings};
use crate::deploys::{self, PRODUCTION, Resolved};
use crate::execute::{self, ActionRows, Document, Place, Report};
use crate::invalidation::Batch;
use crate::object::Headers;
use crate::output::Output;
use crate::plan::{self, Counts, Plan, Source};
use crate::scan::Scanning;
use crate::state::{Deploy, ERROR_PAGE_KEY};
use crate::state::{Manifest, NOT_FOUND_PAGE, SiteState};
use crate::store::{Condition, S3Store, Store as _, StoreError};
use crate::{aws, cdn, invalidate, router, routes};

/// A provisioned site: its bucket (at the root) and the clients the deploy commands use.
pub struct Site {
    /// The bucket at its root.
    pub root: S3Store,
    /// The state as last read.
    pub state: SiteState,
    /// The settings.
    pub settings: SiteSettings,
    cloudfront: aws::CloudFront,
    kvs: aws::KeyValueStore,
}

impl Site {
    /// Read the state of a provisioned site (`None` when the bucket has none).
    pub async fn open(settings: &SiteSettings, multipart_threshold: u64) -> Result<Option<Self>> {
        let shared = aws::sdk_config(&settings.aws).await?;
        let s3 = aws::s3_client(&shared);
        let mut root = S3Store::new(s3.clone(), &settings.bucket, "", multipart_threshold)
            .with_checksums(!settings.aws.no_checksums);
        let state = match deploys::read_state(&root).await {
            Err(err) => match err.downcast_ref::<StoreError>() {
                Some(StoreError::NoSuchBucket { .. }) => None,
                Some(StoreError::WrongRegion { region: Some(region), .. }) => {
                    root = root.in_region(region);
                    deploys::read_state(&root).await?
                }
                _ => return Err(err),
            },
            Ok(found) => found,
        };
        let Some((state, _)) = state else { return Ok(None) };
        if state.region != settings.aws.region.clone().unwrap_or_else(|| state.region.clone()) {
            root = root.in_region(&state.region);
        }
        Ok(Some(Self {
            root,
            state,
            settings: settings.clone(),
            cloudfront: aws::cloudfront_client(&shared),
            kvs: aws::kvs_client(&shared),
        }))
    }

    /// Like [`Site::open`], but a bucket without state is an error that says what to do.
    pub async fn require(settings: &SiteSettings, multipart_threshold: u64) -> Result<Self> {
        Self::open(settings, multipart_threshold).await?.ok_or_else(|| {
            anyhow!(
                "bucket `{}` is not a provisioned skiff site (no `{}`)\nhint: run `skiff provision` first",
                settings.bucket,
                crate::state::SITE_STATE_KEY
            )
        })
    }

    /// Read the state again (after taking a lock).
    pub async fn refresh(&mut self) -> Result<()> {
        let (state, _) = deploys::read_state(&self.root)
            .await?
            .ok_or_else(|| anyhow!("{}{} disappeared", self.root.location(), crate::state::SITE_STATE_KEY))?;
        self.state = state;
        Ok(())
    }

    /// Make the state agree with what the router serves for `target`: a run stopped between
    /// its two writes (the KVS, then state.json) leaves the KVS naming a deploy the state
    /// does not call live. The KVS is what visitors get, and it only ever names a complete
    /// deploy, so the state follows it, and the run says so. Call it holding the lock.
    pub async fn reconcile(&mut self, target: &str, out: &Output) -> Result<()> {
        let arn = self.kvs_arn()?;
        // One GetKey, whatever the number of redirects in the store.
        let served = router::read_key(&self.kvs, &arn, target).await?;
        let recorded = self.state.targets.get(target).and_then(|t| t.live.clone());
        let Some(served) = served.filter(|id| Some(id) != recorded.as_ref()) else { return Ok(()) };
        if self.state.targets.get(target).is_none_or(|t| t.deploy(&served).is_none()) {
            out.warn(&format!(
                "the router serves deploy {served} for {target}, which {} does not list: run `skiff rollback` to a listed deploy",
                crate::state::SITE_STATE_KEY
            ));
            return Ok(());
        }
        self.record_live(target, &served, false).await?;
        out.warn(&format!(
            "{} said {target} was at {}, but the router serves {served} (a run stopped between its two writes): {} now says {served}",
            crate::state::SITE_STATE_KEY,
            recorded.as_deref().unwrap_or("no deploy"),
            crate::state::SITE_STATE_KEY
        ));
        self.refresh().await
    }

    /// Record in the state that `id` (complete, since only complete deploys go live) is the
    /// live deploy of `target`.
    async fn record_live(&self, target: &str, id: &str, end_canary: bool) -> Result<()> {
        deploys::update_state(&self.root, |state| {
            let entry = state.targets.entry(target.to_string()).or_default();
            entry.live = Some(id.to_string());
            if end_canary {
                entry.canary = None;
            }
            if let Some(deploy) = entry.deploys.iter_mut().find(|d| d.id == id) {
                deploy.complete = true;
            }
            Ok(())
        })
        .await
        .map(drop)
    }

    /// The production target, or the preview of `branch`.
    pub fn target(&self, branch: Option<&str>) -> Result<Resolved> {
        let domain = self.state.domain.clone().or_else(|| self.settings.domain.as_ref().map(|d| d.name.clone()));
        match branch {
            None => Ok(Resolved {
                name: PRODUCTION.to_string(),
                branch: None,
                url: domain.map_or_else(|| format!("s3://{}/", self.settings.bucket), |d| format!("https://{d}/")),
            }),
            Some(branch) => {
                let previews =
                    self.settings.domain.as_ref().and_then(|d| d.previews.clone()).ok_or_else(|| {
                        anyhow!(
                            "previews need a preview domain: set `[domain] previews = \"preview.example.com\"` and run `skiff provision`"
                        )
                    })?;
                let slug = deploys::slug_for(branch, &self.state);
                Ok(Resolved {
                    name: deploys::preview_target(&slug),
                    branch: Some(branch.to_string()),
                    url: format!("https://{slug}.{}/", previews.to_ascii_lowercase()),
                })
            }
        }
    }

    fn kvs_arn(&self) -> Result<String> {
        self.state.resources.kvs_arn.clone().ok_or_else(|| {
            anyhow!("the site has no key value store in its state: run `skiff provision` to finish setting it up")
        })
    }

    /// A deploy's manifest.
    pub async fn manifest(&self, target: &str, id: &str) -> Result<Option<Manifest>> {
        let key = deploys::manifest_key(target, id);
        match self.root.get_manifest(&key).await? {
            None => Ok(None),
            Some(fetched) => Ok(Some(fetched.manifest.map_err(|e| anyhow!("{}{key}: {e}", self.root.location()))?)),
        }
    }

    /// Take a target's deploy lock.
    pub async fn lock(&self, target: &str, operation: &str, out: &Output) -> Result<deploys::Lock> {
        deploys::lock(&self.root, target, operation, self.settings.lock_timeout, out).await
    }

    /// Make `id` the live deploy of `target`: one KVS write (what the router reads), then
    /// the state. For production, the deploy's 404 page becomes `/_skiff/404.html` (error
    /// pages bypass the router) and that one path is invalidated.
    pub async fn activate(
        &self,
        target: &str,
        id: &str,
        base: Option<&str>,
        error_page: Option<&Headers>,
        out: &Output,
    ) -> Result<Option<serde_json::Value>> {
        let arn = self.kvs_arn()?;
        // A new production deploy ends a canary, in the same write.
        let canary =
            if target == PRODUCTION { self.state.targets.get(target).and_then(|t| t.canary.clone()) } else { None };
        let deletes: Vec<String> = canary.iter().map(|_| CANARY_KEY.to_string()).collect();
        router::write_keys(&self.kvs, &arn, &[(target.to_string(), id.to_string())], &deletes).await.with_context(
            || {
                let live = self.state.targets.get(target).and_then(|t| t.live.as_deref());
                let live = live.map_or_else(|| "nothing".to_string(), |l| format!("deploy {l}"));
                format!("could not make deploy {id} live: {target} still serves {live}")
            },
        )?;
        if let Some(canary) = &canary {
            let how = if canary.id == id { "is production now" } else { "ended" };
            out.info(&format!("the canary of deploy {} ({} %) {how}", canary.id, canary.weight));
        }
        self.record_live(target, id, canary.is_some()).await.with_context(|| {
            format!(
                "deploy {id} is live ({target} serves it), but {} does not say so yet\nhint: the next `skiff publish` or `skiff rollback` brings it up to date",
                crate::state::SITE_STATE_KEY
            )
        })?;
        if target != PRODUCTION {
            return Ok(None);
        }
        let Some(headers) = error_page else {
            out.warn(&format!(
                "the site has no {NOT_FOUND_PAGE}: CloudFront shows its own error page for missing paths"
            ));
            return Ok(None);
        };
        let source = format!("{}{NOT_FOUND_PAGE}", deploys::deploy_prefix(target, id));
        let mut copied = self.root.copy(&source, ERROR_PAGE_KEY, headers).await;
        // A delta deploy that did not change its 404 page leaves it in its base.
        if let (Err(StoreError::NotFound { .. }), Some(base)) = (&copied, base) {
            copied = self.root.copy(&format!("_deploys/{base}/{NOT_FOUND_PAGE}"), ERROR_PAGE_KEY, headers).await;
        }
        // The deploy is live already: a failed copy is a stale error page, not a failed publish.
        if let Err(err) = copied {
            out.warn(&format!(
                "deploy {id} is live, but /{ERROR_PAGE_KEY} could not be updated ({err}): the next publish or rollback retries"
            ));
            return Ok(None);
        }
        let Some(distribution) = self.state.resources.distribution_id.clone() else { return Ok(None) };
        let client = cdn::Cdn::new(self.cloudfront.clone());
        let batch = Batch::exact([format!("/{ERROR_PAGE_KEY}")]);
        match invalidate::send(&client, &distribution, batch, None, out).await {
            Ok(sent) => Ok(Some(sent.to_json())),
            Err(err) => {
                out.warn(&format!(
                    "the deploy is live, but the invalidation of /{ERROR_PAGE_KEY} failed ({err}): the old 404 page may show for up to a day"
                ));
                Ok(Some(json!({"id": null, "error": err.to_string()})))
            }
        }
    }

    /// Write a deploy's routing (router/SPEC.md) before it goes live: first the list of its
    /// keys beside its manifest (so that removing the deploy removes them), then the keys.
    /// The store's 5 MiB is checked before any write.
    pub async fn write_routing(&self, target: &str, id: &str, compiled: &routes::Compiled) -> Result<()> {
        let arn = self.kvs_arn()?;
        let held = router::store_size(&self.kvs, &arn).await?;
        let adding = compiled.bytes();
        if held + adding > routes::MAX_STORE_BYTES {
            bail!(
                "the router's store holds {held} bytes, and the routing of this deploy adds {adding}: over its limit of {} bytes\nhint: keep fewer deploys (`[deploy] keep`, `keep_previews`), delete previews you no longer need (`skiff previews delete`), or write fewer rules",
                routes::MAX_STORE_BYTES
            );
        }
        let keys: Vec<&String> = compiled.entries.keys().collect();
        let body = serde_json::to_vec(&json!({ "keys": keys })).expect("keys serialise");
        let list = routing_key(target, id);
        self.root
            .put_bytes(&list, body, "application/json", Condition::Always)
            .await
            .with_context(|| format!("could not write `{list}`"))?;
        let puts: Vec<(String, String)> = compiled.entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        router::write_keys(&self.kvs, &arn, &puts, &[]).await
    }

    /// Remove a deploy's routing keys (those its list names), then the list.
    async fn delete_routing(&self, target: &str, id: &str) -> Result<()> {
        let list = routing_key(target, id);
        let Some(fetched) = self.root.get(&list).await? else { return Ok(()) };
        let parsed: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap_or_default();
        let keys: Vec<String> = parsed["keys"]
            .as_array()
            .map(|k| k.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        // Never a target's own key: only what a deploy's routing wrote.
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| {
                *k == format!("routes:{id}")
                    || ["r", "i", "d"].iter().any(|index| k.starts_with(&format!("{index}:{id}:")))
            })
            .collect();
        router::write_keys(&self.kvs, &self.kvs_arn()?, &[], &keys).await?;
        for (key, result) in self.root.delete(&[list]).await? {
            result.with_context(|| format!("could not delete `{key}`"))?;
        }
        Ok(())
    }

    /// Serve deploy `id` (complete, routing written) to `weight` % of production's visitors:
    /// one KVS write, then the state.
    pub async fn start_canary(&self, id: &str, weight: u8) -> Result<()> {
        let arn = self.kvs_arn()?;
        router::write_keys(&self.kvs, &arn, &[(CANARY_KEY.to_string(), format!("{id} {weight}"))], &[]).await?;
        deploys::update_state(&self.root, |state| {
            let entry = state.targets.entry(PRODUCTION.to_string()).or_default();
            entry.canary = Some(crate::state::Canary { id: id.to_string(), weight });
            if let Some(deploy) = entry.deploys.iter_mut().find(|d| d.id == id) {
                deploy.complete = true;
            }
            Ok(())
        })
        .await
        .map(drop)
        .with_context(|| {
            format!("the canary of deploy {id} is running, but {} does not say so yet", crate::state::SITE_STATE_KEY)
        })
    }

    /// End the canary: every visitor gets production's live deploy again.
    pub async fn end_canary(&self) -> Result<()> {
        let arn = self.kvs_arn()?;
        router::write_keys(&self.kvs, &arn, &[], &[CANARY_KEY.to_string()]).await?;
        deploys::update_state(&self.root, |state| {
            if let Some(entry) = state.targets.get_mut(PRODUCTION) {
                entry.canary = None;
            }
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Delete whole deploys (objects and manifest) of a target, and forget them.
    pub async fn delete_deploys(&self, target: &str, ids: &[String]) -> Result<usize> {
        let mut deleted = 0;
        for id in ids {
            self.delete_routing(target, id).await?;
            let prefix = deploys::deploy_prefix(target, id);
            let store = self.root.with_prefix(&prefix);
            let keys: Vec<String> = store.list().await?.into_keys().collect();
            for batch in keys.chunks(crate::store::DELETE_BATCH) {
                for (key, result) in store.delete(batch).await? {
                    result.with_context(|| format!("could not delete `{prefix}{key}`"))?;
                    deleted += 1;
                }
            }
            for (key, result) in self.root.delete(&[deploys::manifest_key(target, id)]).await? {
                result.with_context(|| format!("could not delete `{key}`"))?;
            }
        }
        deploys::update_state(&self.root, |state| {
            if let Some(entry) = state.targets.get_mut(target) {
                entry.deploys.retain(|d| !ids.contains(&d.id));
            }
            Ok(())
        })
        .await?;
        Ok(deleted)
    }

    /// Remove a target entirely: its router entry, every deploy, its state.
    pub async fn delete_target(&self, target: &str) -> Result<usize> {
        let arn = self.kvs_arn()?;
        router::write_keys(&self.kvs, &arn, &[], &[target.to_string()]).await?;
        let ids: Vec<String> = self
            .state
            .targets
            .get(target)
            .map(|t| t.deploys.iter().map(|d| d.id.clone()).collect())
            .unwrap_or_default();
        // Objects of deploys the state lost track of (a run killed before recording) too.
        let store = self.root.with_prefix(&format!("_deploys/{target}/"));
        let mut deleted = self.delete_deploys(target, &ids).await?;
        let leftovers: Vec<String> = store.list().await?.into_keys().collect();
        for batch in leftovers.chunks(crate::store::DELETE_BATCH) {
            for (key, result) in store.delete(batch).await? {
                result.with_context(|| format!("could not delete `_deploys/{target}/{key}`"))?;
                deleted += 1;
            }
        }
        deploys::update_state(&self.root, |state| {
            state.targets.remove(target);
            Ok(())
        })
        .await?;
        Ok(deleted)
    }
}

/// The KVS key of the canary: `<deploy id> <weight>` (router/SPEC.md).
pub const CANARY_KEY: &str = "canary";

/// Where the list of a deploy's routing keys lives: beside its manifest.
pub fn routing_key(target: &str, id: &str) -> String {
    format!("_deploys/{target}/{id}.routes.json")
}

/// Publish `settings.dir` as a new deploy of production or of a preview, and make it live.
/// `scanning`: the scan of `settings.dir` with keys from the root, under way.
pub(crate) async fn publish(settings: &PublishSettings, site: Site, scanning: Scanning, out: &Output) -> Result<()> {
    let started = Instant::now();
    let mut site = site;
    let resolved = site.target(settings.preview.as_deref())?;
    let target = resolved.name.clone();
    // A dry run takes no lock and writes nothing.
    let lock = if settings.dry_run { None } else { Some(site.lock(&target, "publish", out).await?) };
    let result = async {
        if lock.is_some() {
            site.refresh().await?;
            site.reconcile(&target, out).await?;
        }
        run(settings, &site, &resolved, scanning, started, out).await
    }
    .await;
    if let Some(lock) = lock {
        let released = lock.release(&site.root).await;
        if result.is_ok() {
            released?;
        } else if let Err(err) = released {
            out.warn(&format!("{err:#}"));
        }
    }
    result
}

async fn run(
    settings: &PublishSettings,
    site: &Site,
    resolved: &Resolved,
    scanning: Scanning,
    started: Instant,
    out: &Output,
) -> Result<()> {
    let target = resolved.name.as_str();
    let entry = site.state.targets.get(target).cloned().unwrap_or_default();
    // What the new deploy can copy from: the live deploy, an interrupted one, and for a new
    // preview, production's live deploy.
    let mut sources: Vec<(String, Manifest)> = Vec::new();
    let mut wanted: Vec<(String, String)> = Vec::new();
    if let Some(live) = &entry.live {
        wanted.push((target.to_string(), live.clone()));
    }
    if let Some(interrupted) = entry.interrupted() {
        wanted.push((target.to_string(), interrupted.id.clone()));
    }
    if entry.live.is_none()
        && target != PRODUCTION
        && let Some(live) = site.state.targets.get(PRODUCTION).and_then(|t| t.live.clone())
    {
        wanted.push((PRODUCTION.to_string(), live));
    }
    let mut source_bases: Vec<Option<String>> = Vec::new();
    for (from, id) in wanted {
        if let Some(manifest) = site.manifest(&from, &id).await? {
            sources.push((deploys::deploy_prefix(&from, &id), manifest));
            source_bases.push(site.state.targets.get(&from).and_then(|t| t.deploy(&id)).and_then(|d| d.base.clone()));
        }
    }
    // A delta deploy stands on the base of the deploy it follows (or on that deploy, when it
    // is full): a router that serves delta deploys, and no `--force`.
    let old_router = site.state.resources.router.is_none_or(|v| v < router::VERSION);
    let base = if settings.force || old_router {
        if old_router && !settings.force && entry.live.is_some() {
            out.info("a full deploy: the site's router predates delta deploys (which hold only what changed)\nhint: `skiff provision` updates it");
        }
        None
    } else {
        delta_base(site, target, &entry)
    };
    // The base is often the live deploy, whose manifest is read already.
    let base_at = base.as_deref().and_then(|b| b.split_once('/'));
    let base_prefix = base_at.map(|(t, id)| deploys::deploy_prefix(t, id));
    let mut base_read = match (base_at, &base_prefix) {
        (Some((t, id)), Some(prefix)) if !sources.iter().any(|(p, _)| p == prefix) => site.manifest(t, id).await?,
        _ => None,
    };
    let mut scanned = out.scanned(scanning, &settings.dir).await.context("the scan stopped unexpectedly")??;
    out.left_out(&scanned.left_out);
    if settings.routing.clean_urls {
        crate::scan::add_clean_copies(&mut scanned).map_err(|e| anyhow!(e))?;
    }
    crate::state::adopt_format_1(sources.iter_mut().map(|(_, m)| m).chain(base_read.as_mut()), &scanned.files);
    let base_manifest: Option<&Manifest> = base_prefix
        .as_ref()
        .and_then(|prefix| sources.iter().find(|(p, _)| p == prefix).map(|(_, m)| m))
        .or(base_read.as_ref());
    let keys: Vec<&str> = scanned.files.iter().map(|f| f.key.as_str()).collect();
    // Checked before anything is written, also on a dry run (the id is not known yet: the
    // limits hold for any id up to that length).
    let probe = routes::compile(&settings.routing, &"0".repeat(31), &keys).map_err(|e| anyhow!(e))?;
    for warning in &probe.warnings {
        out.warn(warning);
    }
    if settings.no_delete {
        out.warn("`--no-delete` does nothing in atomic mode: a deploy holds exactly the site, and the deploy before it stays for rollback");
    }
    for warning in &scanned.warnings {
        out.warn(warning);
    }
    if let (Some(base), None) = (&base, &base_manifest) {
        out.warn(&format!("a full deploy: the manifest of deploy {base}, the base, is missing from the bucket"));
    }
    let delta = match (&base, &base_manifest) {
        (Some(base), Some(manifest)) => delta_keys(&scanned.files, manifest).map(|keys| (base.clone(), keys)),
        _ => None,
    };
    if let (Some(base), Some(_), None) = (&base, &base_manifest, &delta) {
        out.info(&format!("a full deploy (a new base): more than a fifth of the site differs from deploy {base}"));
    }
    // What each source's prefix holds: a delta deploy only its own part.
    // Borrowed where a prefix holds its whole manifest: at 100k files a copy is ~16 MB.
    let mut held: Vec<(String, std::borrow::Cow<'_, Manifest>)> = Vec::new();
    for ((prefix, manifest), source_base) in sources.iter().zip(&source_bases) {
        match (source_base, &base, &base_manifest) {
            (None, _, _) => held.push((prefix.clone(), std::borrow::Cow::Borrowed(manifest))),
            (Some(of), Some(base), Some(base_manifest)) if of == base => {
                held.push((prefix.clone(), std::borrow::Cow::Owned(manifest.clone().own_part(base_manifest))));
            }
            _ => {}
        }
    }
    if let (Some(prefix), Some(manifest)) = (&base_prefix, base_manifest)
        && !held.iter().any(|(held, _)| held == prefix)
    {
        held.push((prefix.clone(), std::borrow::Cow::Borrowed(manifest)));
    }
    let refs: Vec<Source<'_>> = held.iter().map(|(prefix, manifest)| Source { prefix, manifest }).collect();
    let plan = match &delta {
        Some((_, keys)) => {
            let own: Vec<crate::scan::LocalFile> =
                scanned.files.iter().filter(|f| keys.binary_search(&f.key).is_ok()).cloned().collect();
            let mut plan = plan::deploy(&own, &refs, false);
            plan.files = scanned.files.len();
            plan.bytes = scanned.files.iter().map(|f| f.size).sum();
            plan
        }
        None => plan::deploy(&scanned.files, &refs, settings.force),
    };
    drop(held);
    let location = format!("{} ({target})", resolved.url);
    out.plan(&plan, &location, settings.dry_run);
    if settings.dry_run {
        if out.is_json() {
            out.json(&document(settings, resolved, None, &plan, None, None));
        }
        out.url(&resolved.url);
        return Ok(());
    }
    if scanned.files.is_empty() {
        bail!(
            "`{}` holds no files to publish: a deploy without files would take the site down",
            settings.dir.display()
        );
    }

    let commit = deploys::commit(&settings.dir);
    let now = crate::time::now();
    let nonce = u64::from(std::process::id()) ^ u64::try_from(started.elapsed().as_nanos()).unwrap_or(0);
    let mut id = deploys::new_id(now, commit.as_deref(), nonce);
    if entry.deploys.iter().any(|d| d.id == id) {
        // The same commit again within the second (a tree with uncommitted changes).
        id = format!("{id}-{:06x}", nonce & 0xff_ffff);
    }
    let record = Deploy {
        id: id.clone(),
        created: now,
        commit: commit.clone(),
        files: plan.files,
        bytes: plan.bytes,
        complete: false,
        base: delta.as_ref().map(|(base, _)| base.clone()),
    };
    let branch = resolved.branch.clone();
    deploys::update_state(&site.root, |state| {
        let entry = state.targets.entry(target.to_string()).or_default();
        if let (Some(mine), Some(theirs)) = (&branch, &entry.branch)
            && mine != theirs
        {
            bail!(
                "`{target}` was just taken by the preview of `{theirs}` (a branch with the same slug published at the same time)\nhint: run the same command again: `{mine}` then gets a slug of its own"
            );
        }
        if branch.is_some() {
            entry.branch.clone_from(&branch);
        }
        if entry.deploys.iter().all(|d| d.id != record.id) {
            entry.deploys.push(record.clone());
        }
        Ok(())
    })
    .await?;

    let (cancel, ctrl_c) = crate::interrupt::interruptible(
        "stopping: finishing the requests in flight; the live deploy stays as it was (Ctrl-C again to quit at once)",
    );
    let prefix = deploys::deploy_prefix(target, &id);
    let store = Arc::new(site.root.with_prefix(&prefix));
    let report = execute::execute(
        &store,
        &plan,
        &scanned.files,
        execute::Basis { manifest: None, condition: Condition::Always, write_manifest: false },
        settings.concurrency,
        &cancel,
        out,
    )
    .await;
    ctrl_c.abort();

    // The deploy's manifest records what is in it, even part way: the next publish copies
    // from it instead of uploading again.
    // A delta deploy's manifest is the whole tree: the keys it does not hold as its base has
    // them.
    let unchanged: Vec<String> = match &delta {
        Some((_, keys)) => {
            scanned.files.iter().filter(|f| keys.binary_search(&f.key).is_err()).map(|f| f.key.clone()).collect()
        }
        None => Vec::new(),
    };
    let old = if delta.is_some() { base_manifest } else { None };
    let manifest = Manifest::next(&scanned.files, old, &unchanged, &report.etags);
    let manifest_key = deploys::manifest_key(target, &id);
    execute::put_manifest(&site.root, &manifest_key, &manifest, Condition::Always)
        .await
        .with_context(|| format!("could not write the deploy manifest `{manifest_key}`"))?;
    let counts = Counts::of(plan.files, plan.bytes, 0, report.done.iter().copied());
    out.summary(&counts, &format!("deploy {id} of {target}"), started.elapsed(), report.is_complete());
    if !report.is_complete() {
        let live = entry.live.as_deref().map_or_else(|| "nothing".to_string(), |l| format!("deploy {l}"));
        if report.interrupted {
            out.warn(&format!("{target} still serves {live}"));
            return Err(crate::interrupt::Interrupted {
                done: report.done.len(),
                planned: plan.actions.len(),
                unit: "actions",
            }
            .into());
        }
        return Err(incomplete(&report, plan.actions.len())
            .context(format!("deploy {id} is incomplete and did not go live: {target} still serves {live}")));
    }

    let mut compiled = routes::compile(&settings.routing, &id, &keys).map_err(|e| anyhow!(e))?;
    if let Some((base, held)) = &delta {
        let held: Vec<&str> = held.iter().map(String::as_str).collect();
        compiled.delta(&id, base, &held).map_err(|e| anyhow!(e))?;
    }
    site.write_routing(target, &id, &compiled).await.with_context(|| {
        let live = entry.live.as_deref().map_or_else(|| "nothing".to_string(), |l| format!("deploy {l}"));
        format!("could not write the routing of deploy {id}: {target} still serves {live}")
    })?;
    let invalidation = if let Some(weight) = settings.canary {
        site.start_canary(&id, weight).await.with_context(|| {
            format!("could not start the canary of deploy {id}: production still serves it to nobody")
        })?;
        let live = entry.live.as_deref().unwrap_or("nothing");
        out.info(&format!(
            "deploy {id} serves {weight} % of production's visitors (each keeps their share, by cookie); the rest get deploy {live}\nhint: `skiff promote` makes it production, `skiff rollback` ends the canary"
        ));
        None
    } else {
        let base = delta.as_ref().map(|(base, _)| base.as_str());
        let invalidation = site.activate(target, &id, base, manifest.not_found_page(), out).await?;
        out.info(&format!("{target} now serves deploy {id}"));
        invalidation
    };

    // Retention: never the live deploy, nor the one it replaced (instant rollback).
    let keep = if target == PRODUCTION { site.settings.keep } else { site.settings.keep_previews };
    let mut fresh = site.state.clone();
    if let Some((state, _)) = deploys::read_state(&site.root).await? {
        fresh = state;
    }
    if let Some(current) = fresh.targets.get(target) {
        let mut protect: Vec<&str> = entry.live.iter().map(String::as_str).collect();
        protect.extend(current.canary.as_ref().map(|c| c.id.as_str()));
        let mut expired = deploys::expired(current, keep.max(1), &protect);
        // Never a base that a deploy staying (of any target) stands on.
        let in_use = deploys::bases_in_use(&fresh, target, &expired);
        expired.retain(|id| !in_use.contains(&format!("{target}/{id}")));
        if !expired.is_empty() {
            match site.delete_deploys(target, &expired).await {
                Ok(objects) => out.info(&format!(
                    "removed {} of {target} ({}; keeping {keep})",
                    crate::output::count(expired.len(), "old deploy"),
                    crate::output::count(objects, "object")
                )),
                Err(err) => out.warn(&format!("could not remove old deploys: {err:#}")),
            }
        }
    }

    if out.is_json() {
        out.json(&document(settings, resolved, Some(&id), &plan, Some(&report), invalidation.as_ref()));
    }
    crate::ci::write(resolved, &id, &counts, out);
    out.url(&resolved.url);
    if settings.verify.is_some() && settings.canary.is_some() {
        out.warn(
            "--verify skipped: a canary reaches only a share of visitors, so the site's URL may answer either deploy",
        );
    } else if let Some(timeout) = settings.verify {
        // What changed for visitors: the new deploy against the one it replaced.
        let before: std::collections::BTreeMap<&str, crate::object::Digest> = sources
            .first()
            .filter(|(prefix, _)| entry.live.as_deref().is_some_and(|live| prefix.ends_with(&format!("{live}/"))))
            .map(|(_, manifest)| manifest.files.iter().filter_map(|(k, f)| Some((k.as_str(), f.blake3?))).collect())
            .unwrap_or_default();
        let now: std::collections::BTreeMap<&str, crate::object::Digest> =
            scanned.files.iter().map(|f| (f.key.as_str(), f.blake3)).collect();
        let mut changed: Vec<&str> = now.iter().filter(|(k, d)| before.get(*k) != Some(*d)).map(|(k, _)| *k).collect();
        changed.extend(before.keys().filter(|k| !now.contains_key(*k)));
        let checks = crate::verify::checks(
            &scanned.files,
            &changed,
            settings.routing.clean_urls,
            Some((&compiled.entries, id.as_str())),
        );
        crate::verify::verify(&resolved.url, checks, timeout, out).await?;
    }
    Ok(())
}

/// At most this many keys in a delta deploy (~45 KB of delta index in the router's store).
const MAX_DELTA_KEYS: usize = 5_000;

/// The base a new delta deploy of `target` would stand on: the live deploy's base, or the
/// live deploy itself when it is full; for a preview without a live deploy, production's.
fn delta_base(site: &Site, target: &str, entry: &crate::state::Target) -> Option<String> {
    let (from, live) = match &entry.live {
        Some(live) => (target, live.clone()),
        None if target != PRODUCTION => (PRODUCTION, site.state.targets.get(PRODUCTION)?.live.clone()?),
        None => return None,
    };
    let record = site.state.targets.get(from)?.deploy(&live)?;
    Some(record.base.clone().unwrap_or_else(|| format!("{from}/{live}")))
}

/// The keys a delta deploy over `base` holds (sorted): the files whose bytes or headers
/// differ from the base's, and the base's keys the site no longer has. `None` when they are
/// more than a fifth of the site (at least 100) or [`MAX_DELTA_KEYS`]: then the deploy is a
/// full one, a new base.
fn delta_keys(local: &[crate::scan::LocalFile], base: &Manifest) -> Option<Vec<String>> {
    let limit = (local.len() / 5).clamp(100, MAX_DELTA_KEYS);
    let mut keys: Vec<String> = local
        .iter()
        .filter(|f| base.files.get(&f.key).is_none_or(|e| !e.holds(&f.blake3, f.size) || e.headers != f.headers))
        .map(|f| f.key.clone())
        .collect();
    let here: std::collections::HashSet<&str> = local.iter().map(|f| f.key.as_str()).collect();
    keys.extend(base.files.keys().filter(|k| !here.contains(k)).map(str::to_string));
    keys.sort();
    (keys.len() <= limit).then_some(keys)
}

fn incomplete(report: &Report, planned: usize) -> anyhow::Error {
    let mut message = format!("{} of {planned} actions failed", report.failed.len());
    for (action, err) in report.failed.iter().take(10) {
        message.push_str(&format!("\n  `{}`: {err}", action.key));
    }
    if report.failed.len() > 10 {
        message.push_str(&format!("\n  … and {} more", report.failed.len() - 10));
    }
    message.push_str("\nhint: run the same command again: what was uploaded is reused");
    anyhow!(message)
}

/// The `--json` document of an atomic publish (DESIGN §2).
fn document<'a>(
    settings: &'a PublishSettings,
    resolved: &'a Resolved,
    id: Option<&'a str>,
    plan: &'a Plan,
    report: Option<&'a Report>,
    invalidation: Option<&'a serde_json::Value>,
) -> Document<'a> {
    let summary = match report {
        None => plan.counts(),
        Some(report) => Counts::of(plan.files, plan.bytes, 0, report.done.iter().copied()),
    };
    Document {
        target: &resolved.name,
        mode: "atomic",
        dry_run: settings.dry_run,
        deploy_id: id,
        url: &resolved.url,
        place: Place::Atomic { branch: resolved.branch.as_deref(), bucket: &settings.bucket },
        complete: report.is_none_or(Report::is_complete),
        summary,
        actions: ActionRows { plan, report },
        invalidation,
    }
}
