//! `skiff provision`: observe what exists, compute the steps with a pure function
//! ([`steps`]), print them, apply them in order, and keep the ids in `_skiff/state.json`.
//! A second run finds everything and changes nothing; a run after someone edited a setting
//! skiff owns shows the difference and puts it back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;

use crate::aws::{self, resource_name};
use crate::bucket::{self, Bucket, bucket_settings};
use crate::cert::{self, Certificate};
use crate::config::ProvisionSettings as Settings;
use crate::deploys;
use crate::distribution::{self, Change};
use crate::dns::{self, Records, Zone};
use crate::output::Output;
use crate::router::{self, Function, Store as Kvs};
use crate::state::SiteState;
use crate::store::{S3Store, StoreError};

/// How long a new KeyValueStore may stay PROVISIONING (seconds, usually).
const KVS_READY_TIMEOUT: Duration = Duration::from_mins(3);

/// What to build.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// Names served (certificate names, aliases and DNS records).
    pub hosts: Vec<String>,
    /// The router's code.
    pub code: String,
    /// Whether previews are on (the router then also runs on viewer-response).
    pub previews: bool,
    /// The redirect entries of the KVS.
    pub redirects: BTreeMap<String, String>,
}

/// What exists, as far as provisioning is concerned.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The bucket.
    pub bucket: Bucket,
    /// The certificate in use or found.
    pub certificate: Option<Certificate>,
    /// Validation record names that hold the value ACM asks for.
    pub validation_present: BTreeSet<String>,
    /// The KeyValueStore.
    pub store: Option<Kvs>,
    /// Its `redirect:` entries.
    pub redirect_keys: BTreeMap<String, String>,
    /// The router function.
    pub function: Option<Function>,
    /// The OAC: id and whether its settings are right.
    pub oac: Option<(String, bool)>,
    /// The distribution.
    pub distribution: Option<distribution::Live>,
    /// What each host's records point at.
    pub records: BTreeMap<String, Records>,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// CreateBucket.
    CreateBucket,
    /// Block Public Access, BucketOwnerEnforced, default encryption, tag.
    SecureBucket,
    /// RequestCertificate (DNS validation).
    RequestCertificate,
    /// UPSERT the validation CNAMEs.
    AddValidationRecords,
    /// Wait until ACM has issued the certificate.
    WaitForCertificate,
    /// CreateKeyValueStore.
    CreateKeyValueStore,
    /// UpdateKeys for `[[redirects]]`.
    WriteRedirects,
    /// CreateFunction.
    CreateFunction,
    /// UpdateFunction.
    UpdateFunction,
    /// PublishFunction.
    PublishFunction,
    /// CreateOriginAccessControl.
    CreateOriginAccessControl,
    /// UpdateOriginAccessControl.
    RepairOriginAccessControl,
    /// CreateDistributionWithTags.
    CreateDistribution,
    /// UpdateDistribution.
    UpdateDistribution,
    /// PutBucketPolicy.
    PutBucketPolicy,
    /// UPSERT alias A and AAAA records.
    UpsertDnsRecords,
}

impl Action {
    /// How the step reads in a plan.
    fn verb(self) -> &'static str {
        match self {
            Self::CreateBucket => "create bucket",
            Self::SecureBucket => "secure bucket",
            Self::RequestCertificate => "request certificate",
            Self::AddValidationRecords => "add validation records",
            Self::WaitForCertificate => "wait for certificate",
            Self::CreateKeyValueStore => "create key value store",
            Self::WriteRedirects => "write redirects",
            Self::CreateFunction => "create function",
            Self::UpdateFunction => "update function",
            Self::PublishFunction => "publish function",
            Self::CreateOriginAccessControl => "create origin access control",
            Self::RepairOriginAccessControl => "repair origin access control",
            Self::CreateDistribution => "create distribution",
            Self::UpdateDistribution => "update distribution",
            Self::PutBucketPolicy => "set bucket policy",
            Self::UpsertDnsRecords => "point DNS",
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What it does.
    pub action: Action,
    /// On what.
    pub resource: String,
    /// The settings it changes (current → desired), when it changes existing things.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

fn step(action: Action, resource: impl Into<String>) -> Step {
    Step { action, resource: resource.into(), changes: Vec::new() }
}

/// The bucket policy: CloudFront may read objects and list the bucket (so a missing file is
/// 404, not 403), for this one distribution only.
pub fn bucket_policy(bucket: &str, distribution_arn: &str) -> serde_json::Value {
    let statement = |sid: &str, action: &str, resource: String| {
        serde_json::json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": action,
            "Resource": resource,
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution_arn}},
        })
    };
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            statement("SkiffCloudFrontRead", "s3:GetObject", format!("arn:aws:s3:::{bucket}/*")),
            statement("SkiffCloudFrontList", "s3:ListBucket", format!("arn:aws:s3:::{bucket}")),
        ],
    })
}

/// The `Sid`s skiff owns in a bucket policy start with this.
const POLICY_SID_PREFIX: &str = "SkiffCloudFront";

/// The bucket's policy with skiff's statements (by `Sid`) replaced by `ours`'s, and every
/// other statement the owner wrote (a TLS-only deny, other readers) kept as it was:
/// PutBucketPolicy replaces the whole document.
pub fn merged_policy(current: Option<&serde_json::Value>, ours: &serde_json::Value) -> serde_json::Value {
    let Some(serde_json::Value::Object(current)) = current else { return ours.clone() };
    let mut merged = current.clone();
    // `Statement` may be one object or a list of them.
    let theirs: Vec<serde_json::Value> = match current.get("Statement") {
        Some(serde_json::Value::Array(list)) => list.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let skiffs = |statement: &serde_json::Value| {
        statement.get("Sid").and_then(serde_json::Value::as_str).is_some_and(|sid| sid.starts_with(POLICY_SID_PREFIX))
    };
    let mut statements: Vec<serde_json::Value> = theirs.into_iter().filter(|s| !skiffs(s)).collect();
    statements.extend(ours["Statement"].as_array().cloned().unwrap_or_default());
    merged.insert("Statement".into(), serde_json::Value::Array(statements));
    merged.entry("Version").or_insert_with(|| ours["Version"].clone());
    serde_json::Value::Object(merged)
}

fn short_hash(text: &str) -> String {
    crate::object::Digest::of(text.as_bytes()).to_hex()[..12].to_string()
}

/// The plan: from what exists to what is wanted. Pure: no I/O, no clock beyond `now`.
pub fn steps(desired: &Desired, observed: &Observed, now: i64) -> Vec<Step> {
    let mut plan = Vec::new();
    let bucket = &desired.bucket;

    // The bucket, private from the start.
    let want_bucket = bucket_settings(bucket);
    match &observed.bucket {
        Bucket::Missing => {
            plan.push(step(Action::CreateBucket, format!("{bucket} ({})", desired.region)));
            plan.push(Step {
                changes: distribution::diff(&BTreeMap::new(), &want_bucket),
                ..step(Action::SecureBucket, bucket.clone())
            });
        }
        Bucket::Present { settings, .. } => {
            let changes = distribution::diff(settings, &want_bucket);
            if !changes.is_empty() {
                plan.push(Step { changes, ..step(Action::SecureBucket, bucket.clone()) });
            }
        }
    }

    // The certificate: reuse, finish validating, or request.
    let names = desired.hosts.join(", ");
    let certificate = observed.certificate.as_ref();
    let certificate_arn = match certificate {
        Some(c) if c.usable_for(&desired.hosts, now) => Some(c.arn.clone()),
        Some(c) if c.status == "PENDING_VALIDATION" && cert::covers_all(&c.names, &desired.hosts) => {
            if c.validation.is_empty()
                || c.validation_pending
                || c.validation.iter().any(|(name, _)| !observed.validation_present.contains(name))
            {
                plan.push(step(Action::AddValidationRecords, names.clone()));
            }
            plan.push(step(Action::WaitForCertificate, c.arn.clone()));
            Some(c.arn.clone())
        }
        _ => {
            plan.push(step(Action::RequestCertificate, names.clone()));
            plan.push(step(Action::AddValidationRecords, names.clone()));
            plan.push(step(Action::WaitForCertificate, names.clone()));
            None
        }
    };

    // The KVS and its redirect entries.
    let name = resource_name(bucket);
    if observed.store.is_none() {
        plan.push(step(Action::CreateKeyValueStore, name.clone()));
    }
    let (puts, deletes) = router::key_changes(&observed.redirect_keys, &desired.redirects);
    if !puts.is_empty() || !deletes.is_empty() {
        let mut changes: Vec<Change> = puts
            .iter()
            .map(|(k, v)| Change {
                setting: k.clone(),
                current: observed.redirect_keys.get(k).cloned().unwrap_or_default(),
                desired: v.clone(),
            })
            .collect();
        changes.extend(deletes.iter().map(|k| Change {
            setting: k.clone(),
            current: observed.redirect_keys[k].clone(),
            desired: String::new(),
        }));
        plan.push(Step { changes, ..step(Action::WriteRedirects, name.clone()) });
    }

    // The router function, published.
    let store_arn = observed.store.as_ref().map(|s| s.arn.clone());
    let function_arn = match &observed.function {
        None => {
            plan.push(step(Action::CreateFunction, name.clone()));
            plan.push(step(Action::PublishFunction, name.clone()));
            None
        }
        Some(function) => {
            let mut changes = Vec::new();
            if function.code != desired.code {
                changes.push(Change {
                    setting: "code".into(),
                    current: short_hash(&function.code),
                    desired: short_hash(&desired.code),
                });
            }
            let want_store = store_arn.clone().unwrap_or_else(|| "(created by this run)".into());
            if function.stores != [want_store.clone()] {
                changes.push(Change {
                    setting: "key value store".into(),
                    current: function.stores.join(", "),
                    desired: want_store,
                });
            }
            if function.runtime != "cloudfront-js-2.0" {
                changes.push(Change {
                    setting: "runtime".into(),
                    current: function.runtime.clone(),
                    desired: "cloudfront-js-2.0".into(),
                });
            }
            if !changes.is_empty() {
                plan.push(Step { changes, ..step(Action::UpdateFunction, name.clone()) });
                plan.push(step(Action::PublishFunction, name.clone()));
            } else if function.live_code.as_deref() != Some(desired.code.as_str()) {
                plan.push(step(Action::PublishFunction, name.clone()));
            }
            Some(function.arn.clone())
        }
    };

    // Origin Access Control.
    let oac_id = match &observed.oac {
        None => {
            plan.push(step(Action::CreateOriginAccessControl, name.clone()));
            None
        }
        Some((id, fine)) => {
            if !fine {
                plan.push(Step {
                    changes: vec![Change {
                        setting: "signing".into(),
                        current: "not sigv4/always/s3".into(),
                        desired: "sigv4 always s3".into(),
                    }],
                    ..step(Action::RepairOriginAccessControl, id.clone())
                });
            }
            Some(id.clone())
        }
    };

    // The distribution.
    let want = distribution::Desired {
        bucket: bucket.clone(),
        region: desired.region.clone(),
        aliases: desired.hosts.clone(),
        certificate_arn,
        function_arn,
        viewer_response: desired.previews,
        oac_id,
    };
    match (&observed.distribution, want.config("")) {
        (None, _) => plan.push(step(Action::CreateDistribution, desired.hosts.join(", "))),
        (Some(live), Ok(config)) => {
            let changes = distribution::diff(&distribution::settings(&live.config), &distribution::settings(&config));
            if !changes.is_empty() {
                plan.push(Step { changes, ..step(Action::UpdateDistribution, live.id.clone()) });
            }
        }
        (Some(live), Err(_)) => plan.push(step(Action::UpdateDistribution, live.id.clone())),
    }

    // The bucket policy for that distribution.
    let current_policy = match &observed.bucket {
        Bucket::Present { policy, .. } => policy.clone(),
        Bucket::Missing => None,
    };
    match &observed.distribution {
        Some(live)
            if current_policy.as_ref()
                == Some(&merged_policy(current_policy.as_ref(), &bucket_policy(bucket, &live.arn))) => {}
        Some(live) => plan.push(step(Action::PutBucketPolicy, format!("{bucket}: read by {} only", live.id))),
        None => plan.push(step(Action::PutBucketPolicy, format!("{bucket}: read by the new distribution only"))),
    }

    // DNS: alias A and AAAA for every host.
    let target = observed.distribution.as_ref().map(|d| dns::normalize(&d.domain));
    let mut changes = Vec::new();
    for host in &desired.hosts {
        let records = observed.records.get(host).cloned().unwrap_or_default();
        for (kind, current) in [("A", &records.a), ("AAAA", &records.aaaa)] {
            if target.is_none() || current.as_ref() != target.as_ref() {
                changes.push(Change {
                    setting: format!("{host} {kind}"),
                    current: current.clone().unwrap_or_default(),
                    desired: target.clone().unwrap_or_else(|| "the new distribution".into()),
                });
            }
        }
    }
    if !changes.is_empty() {
        plan.push(Step { changes, ..step(Action::UpsertDnsRecords, desired.hosts.join(", ")) });
    }
    plan
}

/// The clients provisioning uses.
struct Clients {
    s3: aws::S3,
    cloudfront: aws::CloudFront,
    kvs: aws::KeyValueStore,
    acm: aws::Acm,
    route53: aws::Route53,
}

/// The zone of every host; a host without one is an error that says what to create.
async fn zones(route53: &aws::Route53, hosts: &[String]) -> Result<BTreeMap<String, Zone>> {
    let mut out = BTreeMap::new();
    for host in hosts {
        let Some(zone) = dns::find_zone(route53, host).await? else {
            let apex = dns::suffixes(host).into_iter().rev().nth(1).unwrap_or_else(|| host.clone());
            bail!(
                "no public Route 53 hosted zone for `{host}` or a parent domain\nhint: create one, e.g. `aws route53 create-hosted-zone --name {apex} --caller-reference skiff-$(date +%s)`, point your registrar at its name servers, then re-run `skiff provision`"
            );
        };
        out.insert(host.clone(), zone);
    }
    Ok(out)
}

async fn observe(
    clients: &Clients,
    settings: &Settings,
    desired: &Desired,
    state: Option<&SiteState>,
    zones: &BTreeMap<String, Zone>,
) -> Result<Observed> {
    let resources = state.map(|s| s.resources.clone()).unwrap_or_default();
    let bucket = bucket::observe(&clients.s3, &settings.bucket).await?;

    let mut certificate = match &resources.certificate_arn {
        Some(arn) => cert::describe(&clients.acm, arn).await?.filter(|c| {
            cert::covers_all(&c.names, &desired.hosts) && matches!(c.status.as_str(), "ISSUED" | "PENDING_VALIDATION")
        }),
        None => None,
    };
    if certificate.as_ref().is_none_or(|c| c.status != "ISSUED")
        && let Some(found) = cert::find_issued(&clients.acm, &desired.hosts).await?
    {
        certificate = Some(found);
    }
    let mut validation_present = BTreeSet::new();
    if let Some(c) = certificate.as_ref().filter(|c| c.status == "PENDING_VALIDATION") {
        for (name, value) in &c.validation {
            if let Some(zone) = dns::find_zone(&clients.route53, name).await?
                && dns::cname(&clients.route53, &zone, name).await?.as_deref() == Some(value.as_str())
            {
                validation_present.insert(name.clone());
            }
        }
    }

    let name = resource_name(&settings.bucket);
    let mut store = router::find_store(&clients.cloudfront, &name).await?;
    // A store created moments ago (a provision stopped right after it) cannot be read yet.
    if let Some(found) = store.as_ref().filter(|s| s.status == "PROVISIONING") {
        store = Some(router::wait_until_ready(&clients.cloudfront, &found.name, KVS_READY_TIMEOUT).await?);
    }
    let redirect_keys = match &store {
        Some(store) => router::read_keys(&clients.kvs, &store.arn)
            .await?
            .into_iter()
            .filter(|(k, _)| k.starts_with(router::REDIRECT_PREFIX))
            .collect(),
        None => BTreeMap::new(),
    };
    let function = router::find_function(&clients.cloudfront, &name).await?;
    let oac = distribution::find_oac(&clients.cloudfront, resources.oac_id.as_deref(), &name).await?;

    let want = distribution::Desired {
        bucket: settings.bucket.clone(),
        region: desired.region.clone(),
        aliases: desired.hosts.clone(),
        certificate_arn: None,
        function_arn: None,
        viewer_response: desired.previews,
        oac_id: None,
    };
    let mut live = match &resources.distribution_id {
        Some(id) => distribution::get(&clients.cloudfront, id).await?,
        None => None,
    };
    if live.is_none() {
        live = distribution::find(&clients.cloudfront, &want).await?;
    }
    let mut records = BTreeMap::new();
    for host in &desired.hosts {
        records.insert(host.clone(), dns::records(&clients.route53, &zones[host], host).await?);
    }
    Ok(Observed {
        bucket,
        certificate,
        validation_present,
        store,
        redirect_keys,
        function,
        oac,
        distribution: live,
        records,
    })
}

/// What the apply loop knows as it goes.
struct Run<'a> {
    clients: &'a Clients,
    settings: &'a Settings,
    desired: &'a Desired,
    observed: Observed,
    zones: BTreeMap<String, Zone>,
    state: SiteState,
    etag: Option<String>,
    function_etag: Option<String>,
    out: &'a Output,
}

impl Run<'_> {
    async fn save(&mut self) -> Result<()> {
        let root = S3Store::new(self.clients.s3.clone(), &self.state.bucket, "", u64::MAX);
        deploys::write_state(&root, &self.state, &mut self.etag).await
    }

    fn distribution_desired(&self) -> distribution::Desired {
        distribution::Desired {
            bucket: self.settings.bucket.clone(),
            region: self.desired.region.clone(),
            aliases: self.desired.hosts.clone(),
            certificate_arn: self.state.resources.certificate_arn.clone(),
            function_arn: self.observed.function.as_ref().map(|f| f.arn.clone()),
            viewer_response: self.desired.previews,
            oac_id: self.state.resources.oac_id.clone(),
        }
    }

    async fn apply(&mut self, step: &Step) -> Result<()> {
        let bucket = self.settings.bucket.clone();
        let s3 = &self.clients.s3;
        let cloudfront_client = self.clients.cloudfront.clone();
        let cloudfront = &cloudfront_client;
        let name = resource_name(&bucket);
        match step.action {
            Action::CreateBucket => {
                bucket::create(s3, &bucket, &self.desired.region).await?;
                self.save().await?;
            }
            Action::SecureBucket => {
                for change in &step.changes {
                    bucket::secure(s3, &bucket, &change.setting).await?;
                }
            }
            Action::RequestCertificate => {
                let arn = cert::request(&self.clients.acm, &bucket, &self.desired.hosts).await?;
                self.state.resources.certificate_arn = Some(arn);
                self.save().await?;
            }
            Action::AddValidationRecords => self.add_validation_records().await?,
            Action::WaitForCertificate => self.wait_for_certificate().await?,
            Action::CreateKeyValueStore => {
                let store = router::create_store(cloudfront, &name, &bucket).await?;
                self.state.resources.kvs_arn = Some(store.arn.clone());
                self.observed.store = Some(store);
                self.save().await?;
            }
            Action::WriteRedirects => {
                let arn = self.ready_kvs_arn().await?;
                let (puts, deletes) = router::key_changes(&self.observed.redirect_keys, &self.desired.redirects);
                router::write_keys(&self.clients.kvs, &arn, &puts, &deletes).await?;
            }
            Action::CreateFunction => {
                let arn = self.ready_kvs_arn().await?;
                let etag = router::create_function(cloudfront, &name, &bucket, &arn, &self.desired.code).await?;
                self.function_etag = Some(etag);
                self.state.resources.function_name = Some(name.clone());
                self.save().await?;
            }
            Action::UpdateFunction => {
                let arn = self.ready_kvs_arn().await?;
                let etag = self.observed.function.as_ref().map(|f| f.etag.clone()).unwrap_or_default();
                let etag = router::update_function(cloudfront, &name, &etag, &bucket, &arn, &self.desired.code).await?;
                self.function_etag = Some(etag);
            }
            Action::PublishFunction => {
                let etag = match self.function_etag.clone() {
                    Some(etag) => etag,
                    None => router::find_function(cloudfront, &name)
                        .await?
                        .map(|f| f.etag)
                        .ok_or_else(|| anyhow!("function `{name}` disappeared"))?,
                };
                let arn = router::publish_function(cloudfront, &name, &etag).await?;
                let function = router::find_function(cloudfront, &name).await?;
                self.observed.function =
                    function.map(|f| Function { arn: if arn.is_empty() { f.arn.clone() } else { arn }, ..f });
                self.state.resources.router = Some(router::VERSION);
                self.save().await?;
            }
            Action::CreateOriginAccessControl => {
                let id = distribution::create_oac(cloudfront, &distribution::oac_name(&bucket), &bucket).await?;
                self.state.resources.oac_id = Some(id);
                self.save().await?;
            }
            Action::RepairOriginAccessControl => {
                distribution::repair_oac(cloudfront, &step.resource, &distribution::oac_name(&bucket), &bucket).await?;
            }
            Action::CreateDistribution => self.create_distribution().await?,
            Action::UpdateDistribution => {
                let id = step.resource.clone();
                let live =
                    distribution::get(cloudfront, &id).await?.ok_or_else(|| anyhow!("distribution {id} is gone"))?;
                let desired = self.distribution_desired().config(&live.config.caller_reference)?;
                distribution::update(cloudfront, &live, &desired).await?;
                self.observed.distribution = distribution::get(cloudfront, &id).await?;
            }
            Action::PutBucketPolicy => {
                let live = self.observed.distribution.as_ref().ok_or_else(|| anyhow!("no distribution"))?;
                let current = match &self.observed.bucket {
                    Bucket::Present { policy, .. } => policy.as_ref(),
                    Bucket::Missing => None,
                };
                let policy = merged_policy(current, &bucket_policy(&bucket, &live.arn)).to_string();
                bucket::put_policy(s3, &bucket, &policy).await?;
            }
            Action::UpsertDnsRecords => {
                let live = self.observed.distribution.as_ref().ok_or_else(|| anyhow!("no distribution"))?;
                let mut by_zone: BTreeMap<String, (Zone, Vec<String>)> = BTreeMap::new();
                for host in &self.desired.hosts {
                    let zone = self.zones[host].clone();
                    by_zone.entry(zone.id.clone()).or_insert((zone, Vec::new())).1.push(host.clone());
                }
                for (zone, hosts) in by_zone.values() {
                    dns::upsert_aliases(&self.clients.route53, zone, hosts, &live.domain).await?;
                }
            }
        }
        Ok(())
    }

    /// Write the DNS validation records of the requested certificate, once ACM has given
    /// the record of every name.
    async fn add_validation_records(&mut self) -> Result<()> {
        let arn = self.state.resources.certificate_arn.clone().ok_or_else(|| anyhow!("no certificate"))?;
        // ACM fills in the record of each name a few seconds after the request, one
        // name at a time: write them only once every name has its record, or the
        // names still without one would hold the certificate back until it times out.
        let deadline = Instant::now() + Duration::from_mins(2);
        let records = loop {
            let described = cert::describe(&self.clients.acm, &arn).await?;
            match described {
                Some(c) if !c.validation.is_empty() && !c.validation_pending => break c.validation,
                described if Instant::now() > deadline => {
                    let given = described.map_or(0, |c| c.validation.len());
                    bail!(
                        "ACM gave {given} of the DNS validation records for certificate {arn} within 2 minutes (some names have none yet)\nhint: re-run `skiff provision`; it writes the records once ACM has given them all"
                    )
                }
                _ => tokio::time::sleep(crate::time::poll_interval(Duration::from_secs(2))).await,
            }
        };
        let mut by_zone: BTreeMap<String, (Zone, Vec<(String, String)>)> = BTreeMap::new();
        for (name, value) in records {
            let zone = dns::find_zone(&self.clients.route53, &name)
                .await?
                .ok_or_else(|| anyhow!("no public hosted zone for the validation record `{name}`"))?;
            by_zone.entry(zone.id.clone()).or_insert((zone, Vec::new())).1.push((name, value));
        }
        for (zone, records) in by_zone.values() {
            dns::upsert_cnames(&self.clients.route53, zone, records).await?;
        }
        Ok(())
    }

    /// Create the distribution (or find the one an interrupted run created with the same
    /// CallerReference) and record it.
    async fn create_distribution(&mut self) -> Result<()> {
        let bucket = self.settings.bucket.clone();
        let reference = if let Some(reference) = &self.state.resources.caller_reference {
            reference.clone()
        } else {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let reference = format!("skiff-{}-{nanos}", short_hash(&bucket));
            self.state.resources.caller_reference = Some(reference.clone());
            self.save().await?;
            reference
        };
        let config = self.distribution_desired().config(&reference)?;
        let live = match distribution::create(&self.clients.cloudfront, config, &bucket).await {
            Ok(live) => live,
            Err(e) if e.is::<distribution::AlreadyExists>() => {
                distribution::find(&self.clients.cloudfront, &self.distribution_desired())
                    .await?
                    .ok_or(e)
                    .context("a distribution with this site's CallerReference exists but skiff cannot find it")?
            }
            Err(e) => return Err(e),
        };
        self.state.resources.distribution_id = Some(live.id.clone());
        self.state.resources.distribution_domain = Some(live.domain.clone());
        self.observed.distribution = Some(live);
        self.save().await?;
        Ok(())
    }

    /// The store's ARN once it is READY (keys can be written, a function associated).
    async fn ready_kvs_arn(&mut self) -> Result<String> {
        let store = self.observed.store.clone().ok_or_else(|| anyhow!("no key value store"))?;
        if store.status != router::READY {
            self.out.status(&format!("waiting for key value store `{}` to be ready…", store.name));
            let ready = router::wait_until_ready(&self.clients.cloudfront, &store.name, KVS_READY_TIMEOUT).await;
            self.out.status_done();
            self.observed.store = Some(ready?);
        }
        Ok(store.arn)
    }

    async fn wait_for_certificate(&mut self) -> Result<()> {
        let arn = self.state.resources.certificate_arn.clone().ok_or_else(|| anyhow!("no certificate"))?;
        let started = Instant::now();
        loop {
            let certificate = cert::describe(&self.clients.acm, &arn)
                .await?
                .ok_or_else(|| anyhow!("certificate {arn} disappeared while skiff waited for it"))?;
            match certificate.status.as_str() {
                "ISSUED" => {
                    self.out.status_done();
                    return Ok(());
                }
                "PENDING_VALIDATION" => {}
                other => bail!(
                    "ACM did not issue certificate {arn}: {other}{}\nhint: check the names in `[domain]`, then re-run `skiff provision` (it requests a new one)",
                    certificate.failure.map(|f| format!(" ({f})")).unwrap_or_default()
                ),
            }
            if started.elapsed() >= self.settings.certificate_timeout {
                self.out.status_done();
                let mut missing = Vec::new();
                for (name, value) in &certificate.validation {
                    let zone = dns::find_zone(&self.clients.route53, name).await?;
                    let found = match &zone {
                        Some(zone) => dns::cname(&self.clients.route53, zone, name).await?,
                        None => None,
                    };
                    if found.as_deref() != Some(value.as_str()) {
                        missing.push((name.clone(), value.clone()));
                    }
                }
                bail!(
                    "certificate {arn} is still waiting for DNS validation after {}: {}",
                    crate::time::duration(started.elapsed()),
                    stuck_detail(&missing)
                );
            }
            self.out.status(&format!(
                "waiting for ACM to validate the certificate ({} so far)…",
                crate::time::duration(started.elapsed())
            ));
            tokio::time::sleep(poll_interval()).await;
        }
    }
}

/// Why a certificate is still pending, and what to do.
fn stuck_detail(missing: &[(String, String)]) -> String {
    let cause = if missing.is_empty() {
        "its validation records are in Route 53, so the domain's registrar is probably not delegating to the hosted zone's name servers".to_string()
    } else {
        let lines: Vec<String> = missing.iter().map(|(name, value)| format!("  {name}. CNAME {value}.")).collect();
        format!("these DNS validation records are missing:\n{}", lines.join("\n"))
    };
    format!("{cause}\nhint: fix that, then re-run `skiff provision` (it picks up where it stopped)")
}

/// How often to ask ACM (`SKIFF_POLL_INTERVAL_MS` shortens it for tests).
fn poll_interval() -> Duration {
    crate::time::poll_interval(Duration::from_secs(10))
}

/// Render a plan for people.
pub fn describe(steps: &[Step]) -> Vec<String> {
    let mut lines = Vec::new();
    for step in steps {
        lines.push(format!("  {} {}", step.action.verb(), step.resource));
        for change in &step.changes {
            let current = if change.current.is_empty() { "(none)" } else { &change.current };
            let desired = if change.desired.is_empty() { "(removed)" } else { &change.desired };
            lines.push(format!("      {}: {current} → {desired}", change.setting));
        }
    }
    lines
}

/// `skiff provision`.
pub async fn provision(settings: &Settings, out: &Output) -> Result<()> {
    let shared = aws::sdk_config(&settings.aws).await?;
    let region = settings
        .region
        .clone()
        .or_else(|| shared.region().map(ToString::to_string))
        .unwrap_or_else(|| aws::GLOBAL_REGION.to_string());
    let clients = Clients {
        s3: aws::s3_client(&shared),
        cloudfront: aws::cloudfront_client(&shared),
        kvs: aws::kvs_client(&shared),
        acm: aws::acm_client(&shared),
        route53: aws::route53_client(&shared),
    };
    let desired = Desired {
        bucket: settings.bucket.clone(),
        region: region.clone(),
        hosts: settings.hosts(),
        code: router::code(settings.previews.as_deref()),
        previews: settings.previews.is_some(),
        redirects: router::redirect_entries(&settings.redirects),
    };
    out.status("reading what exists…");
    let root = S3Store::new(clients.s3.clone(), &settings.bucket, "", u64::MAX);
    let stored = match deploys::read_state(&root).await {
        Err(err) if matches!(err.downcast_ref::<StoreError>(), Some(StoreError::NoSuchBucket { .. })) => None,
        read => read?,
    };
    if let Some((state, _)) = &stored
        && state.region != region
    {
        bail!(
            "bucket `{}` was provisioned in {}, not {region}\nhint: pass `--region {}` or set `[site] region = \"{}\"`",
            settings.bucket,
            state.region,
            state.region,
            state.region
        );
    }
    let zones = zones(&clients.route53, &desired.hosts).await?;
    let observed = observe(&clients, settings, &desired, stored.as_ref().map(|(s, _)| s), &zones).await?;
    out.status_done();
    let plan = steps(&desired, &observed, crate::time::now());

    let recorded_router = stored.as_ref().and_then(|(state, _)| state.resources.router);
    let (mut state, etag) = stored.unwrap_or_else(|| (SiteState::new(&settings.bucket, &region), String::new()));
    state.domain = Some(settings.domain.clone());
    let zone = &zones[&settings.domain];
    state.resources.zone_id = Some(zone.id.clone());
    if let Some(c) = &observed.certificate {
        state.resources.certificate_arn = Some(c.arn.clone());
    }
    state.resources.kvs_arn = observed.store.as_ref().map(|s| s.arn.clone());
    state.resources.function_name = observed.function.as_ref().map(|_| resource_name(&settings.bucket));
    // The router serving now: this skiff's when its code is live, else (a change to make)
    // whatever provision recorded.
    if observed.function.as_ref().is_some_and(|f| f.live_code.as_deref() == Some(desired.code.as_str())) {
        state.resources.router = Some(router::VERSION);
    } else if observed.function.is_none() {
        state.resources.router = None;
    }
    state.resources.oac_id = observed.oac.as_ref().map(|(id, _)| id.clone());
    if let Some(live) = &observed.distribution {
        state.resources.distribution_id = Some(live.id.clone());
        state.resources.distribution_domain = Some(live.domain.clone());
    }

    let url = format!("https://{}", settings.domain);
    if plan.is_empty() {
        out.info(&format!("{} is provisioned: nothing to change", settings.domain));
    } else {
        out.info(&format!(
            "{} {} for {} ({}):",
            if settings.dry_run { "would take" } else { "taking" },
            if plan.len() == 1 { "1 step".to_string() } else { format!("{} steps", plan.len()) },
            settings.domain,
            region
        ));
        for line in describe(&plan) {
            out.info(&line);
        }
    }
    if settings.dry_run || plan.is_empty() {
        if settings.dry_run && !plan.is_empty() {
            out.info("dry run: nothing was changed");
        }
        // Nothing to change, but the state did not say which router serves (a site
        // provisioned by an older skiff): record it.
        if !settings.dry_run && !etag.is_empty() && recorded_router != state.resources.router {
            deploys::write_state(&root, &state, &mut Some(etag.clone())).await?;
        }
        report(out, settings, &plan, &state, &url, plan.is_empty());
        return Ok(());
    }
    if !settings.yes
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
        && !out.confirm("apply these steps?")
    {
        bail!("nothing was changed: the steps were not confirmed (pass `--yes` to skip this question)");
    }

    let (cancel, ctrl_c) =
        crate::interrupt::interruptible("stopping after the current step (Ctrl-C again to quit at once)");
    let mut run = Run {
        clients: &clients,
        settings,
        desired: &desired,
        observed,
        zones,
        state,
        etag: Some(etag).filter(|e| !e.is_empty()),
        function_etag: None,
        out,
    };
    let started = Instant::now();
    let mut done = 0;
    let mut failure = None;
    for step in &plan {
        if *cancel.borrow() {
            break;
        }
        out.info(&format!("→ {} {}", step.action.verb(), step.resource));
        if let Err(err) = Box::pin(run.apply(step)).await {
            failure = Some(err.context(format!("could not {} {}", step.action.verb(), step.resource)));
            break;
        }
        done += 1;
    }
    ctrl_c.abort();
    // Whatever happened, keep the ids found so far (when the bucket is there to hold them).
    if !matches!(run.observed.bucket, Bucket::Missing) || done > 0 {
        let saved = run.save().await;
        if failure.is_none() {
            saved?;
        }
    }
    if let Some(err) = failure {
        return Err(err.context(format!("{done} of {} steps done; re-run `skiff provision` to finish", plan.len())));
    }
    if done < plan.len() {
        return Err(crate::interrupt::Interrupted { done, planned: plan.len(), unit: "steps" }.into());
    }
    out.info(&format!(
        "provisioned {} in {}; the distribution may take a few minutes to deploy (`skiff status` tells)",
        settings.domain,
        crate::time::duration(started.elapsed())
    ));
    report(out, settings, &plan, &run.state, &url, true);
    Ok(())
}

fn report(out: &Output, settings: &Settings, plan: &[Step], state: &SiteState, url: &str, complete: bool) {
    if out.is_json() {
        out.json(&serde_json::json!({
            "dry_run": settings.dry_run,
            "complete": complete,
            "domain": settings.domain,
            "url": url,
            "steps": plan,
            "resources": state.resources,
        }));
    } else if complete {
        out.url(url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            bucket: "site".into(),
            region: "eu-west-1".into(),
            hosts: vec!["example.com".into(), "www.example.com".into(), "*.preview.example.com".into()],
            code: "code v1".into(),
            previews: true,
            redirects: BTreeMap::from([("redirect:/old/".to_string(), "301 /new/".to_string())]),
        }
    }

    fn nothing() -> Observed {
        Observed {
            bucket: Bucket::Missing,
            certificate: None,
            validation_present: BTreeSet::new(),
            store: None,
            redirect_keys: BTreeMap::new(),
            function: None,
            oac: None,
            distribution: None,
            records: BTreeMap::new(),
        }
    }

    fn actions(plan: &[Step]) -> Vec<Action> {
        plan.iter().map(|s| s.action).collect()
    }

    /// Everything as it should be.
    fn everything() -> Observed {
        let want = desired();
        let certificate = Certificate {
            arn: "arn:cert".into(),
            status: "ISSUED".into(),
            names: want.hosts.clone(),
            not_after: Some(2_000),
            validation: vec![("_x.example.com".into(), "_y.acm-validations.aws".into())],
            validation_pending: false,
            key_algorithm: None,
            failure: None,
        };
        let config = distribution::Desired {
            bucket: "site".into(),
            region: "eu-west-1".into(),
            aliases: want.hosts.clone(),
            certificate_arn: Some("arn:cert".into()),
            function_arn: Some("arn:function".into()),
            viewer_response: true,
            oac_id: Some("OAC".into()),
        }
        .config("ref")
        .unwrap();
        let live = distribution::Live {
            id: "E1".into(),
            arn: "arn:aws:cloudfront::1:distribution/E1".into(),
            domain: "d1.cloudfront.net".into(),
            status: "Deployed".into(),
            config,
            etag: "E".into(),
        };
        let records = want
            .hosts
            .iter()
            .map(|h| {
                (
                    h.clone(),
                    Records {
                        a: Some("d1.cloudfront.net".into()),
                        aaaa: Some("d1.cloudfront.net".into()),
                        cname: None,
                    },
                )
            })
            .collect();
        Observed {
            bucket: Bucket::Present {
                settings: bucket_settings("site"),
                policy: Some(bucket_policy("site", "arn:aws:cloudfront::1:distribution/E1")),
            },
            certificate: Some(certificate),
            validation_present: BTreeSet::new(),
            store: Some(Kvs { status: router::READY.into(), name: "skiff-site".into(), arn: "arn:kvs".into() }),
            redirect_keys: want.redirects.clone(),
            function: Some(Function {
                arn: "arn:function".into(),
                code: want.code.clone(),
                etag: "F1".into(),
                stores: vec!["arn:kvs".into()],
                runtime: "cloudfront-js-2.0".into(),
                live_code: Some(want.code.clone()),
            }),
            oac: Some(("OAC".into(), true)),
            distribution: Some(live),
            records,
        }
    }

    #[test]
    fn a_new_site_gets_every_step_in_order() {
        let plan = steps(&desired(), &nothing(), 1_000);
        assert_eq!(
            actions(&plan),
            [
                Action::CreateBucket,
                Action::SecureBucket,
                Action::RequestCertificate,
                Action::AddValidationRecords,
                Action::WaitForCertificate,
                Action::CreateKeyValueStore,
                Action::WriteRedirects,
                Action::CreateFunction,
                Action::PublishFunction,
                Action::CreateOriginAccessControl,
                Action::CreateDistribution,
                Action::PutBucketPolicy,
                Action::UpsertDnsRecords,
            ]
        );
        assert_eq!(plan[1].changes.len(), 5);
        assert_eq!(plan.last().unwrap().changes.len(), 6, "A and AAAA for three names");
    }

    #[test]
    fn a_provisioned_site_needs_nothing() {
        assert_eq!(steps(&desired(), &everything(), 1_000), []);
    }

    #[test]
    fn drift_is_shown_and_only_that_is_repaired() {
        let mut observed = everything();
        let live = observed.distribution.as_mut().unwrap();
        live.config.aliases =
            Some(aws_sdk_cloudfront::types::Aliases::builder().quantity(1).items("example.com").build().unwrap());
        if let Bucket::Present { settings, .. } = &mut observed.bucket {
            settings.insert("block public access", "not all on".into());
        }
        observed.records.get_mut("www.example.com").unwrap().aaaa = Some("elsewhere.example.net".into());
        let plan = steps(&desired(), &observed, 1_000);
        assert_eq!(actions(&plan), [Action::SecureBucket, Action::UpdateDistribution, Action::UpsertDnsRecords]);
        assert_eq!(plan[0].changes[0].setting, "block public access");
        assert_eq!(plan[1].changes[0].setting, "aliases");
        assert_eq!(plan[1].changes[0].current, "example.com");
        assert_eq!(plan[2].changes.len(), 1);
        assert_eq!(plan[2].changes[0].setting, "www.example.com AAAA");
    }

    #[test]
    fn certificates_are_reused_finished_or_requested() {
        // Expired: a new one, and the distribution switches to it.
        let mut observed = everything();
        observed.certificate.as_mut().unwrap().not_after = Some(500);
        let plan = steps(&desired(), &observed, 1_000);
        assert_eq!(
            actions(&plan),
            [
                Action::RequestCertificate,
                Action::AddValidationRecords,
                Action::WaitForCertificate,
                Action::UpdateDistribution
            ]
        );
        // Pending with its records in place: only wait.
        let mut observed = everything();
        let certificate = observed.certificate.as_mut().unwrap();
        certificate.status = "PENDING_VALIDATION".into();
        observed.validation_present.insert("_x.example.com".into());
        assert_eq!(actions(&steps(&desired(), &observed, 1_000)), [Action::WaitForCertificate]);
        observed.validation_present.clear();
        assert_eq!(
            actions(&steps(&desired(), &observed, 1_000)),
            [Action::AddValidationRecords, Action::WaitForCertificate]
        );
        // One that misses a name (a new alias) is not used.
        let mut want = desired();
        want.hosts.push("blog.example.com".into());
        let plan = steps(&want, &everything(), 1_000);
        assert_eq!(plan[0].action, Action::RequestCertificate);
    }

    #[test]
    fn router_changes_update_and_publish() {
        let mut want = desired();
        want.code = "code v2".into();
        assert_eq!(actions(&steps(&want, &everything(), 1_000)), [Action::UpdateFunction, Action::PublishFunction]);
        let mut observed = everything();
        observed.function.as_mut().unwrap().live_code = None;
        assert_eq!(actions(&steps(&desired(), &observed, 1_000)), [Action::PublishFunction]);
        let mut observed = everything();
        observed.redirect_keys.insert("redirect:/gone".into(), "302 /".into());
        let plan = steps(&desired(), &observed, 1_000);
        assert_eq!(actions(&plan), [Action::WriteRedirects]);
        assert_eq!(plan[0].changes[0].desired, "");
    }

    #[test]
    fn the_policy_names_only_the_distribution() {
        let policy = bucket_policy("site", "arn:aws:cloudfront::1:distribution/E1");
        let text = policy.to_string();
        assert!(!text.contains("\"*\""), "no wildcard principal: {text}");
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 2);
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(
                statement["Condition"]["StringEquals"]["AWS:SourceArn"],
                "arn:aws:cloudfront::1:distribution/E1"
            );
            assert_eq!(statement["Principal"]["Service"], "cloudfront.amazonaws.com");
        }
        let mut observed = everything();
        observed.bucket = Bucket::Present { settings: bucket_settings("site"), policy: None };
        assert_eq!(actions(&steps(&desired(), &observed, 1_000)), [Action::PutBucketPolicy]);
    }

    #[test]
    fn the_policy_keeps_the_owners_statements() {
        let ours = bucket_policy("site", "arn:aws:cloudfront::1:distribution/E1");
        let deny = serde_json::json!({
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": "arn:aws:s3:::site/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        });
        let mut current = bucket_policy("site", "arn:aws:cloudfront::1:distribution/E0");
        current["Statement"].as_array_mut().unwrap().insert(0, deny.clone());
        current["Id"] = "owner".into();
        let merged = merged_policy(Some(&current), &ours);
        let statements = merged["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 3, "{merged}");
        assert_eq!(statements[0], deny);
        assert_eq!(&statements[1..], ours["Statement"].as_array().unwrap().as_slice());
        assert_eq!(merged["Id"], "owner");
        // Merging again changes nothing: no drift is shown for the owner's statements.
        assert_eq!(merged_policy(Some(&merged), &ours), merged);
        // One statement given as an object, not a list.
        let single = serde_json::json!({"Version": "2012-10-17", "Statement": deny});
        assert_eq!(merged_policy(Some(&single), &ours)["Statement"].as_array().unwrap().len(), 3);
        assert_eq!(merged_policy(None, &ours), ours);
        let mut observed = everything();
        observed.bucket = Bucket::Present { settings: bucket_settings("site"), policy: Some(merged) };
        assert!(actions(&steps(&desired(), &observed, 1_000)).is_empty());
    }

    #[test]
    fn a_stuck_certificate_names_the_missing_records() {
        let detail = stuck_detail(&[("_a.example.com".into(), "_b.acm-validations.aws".into())]);
        assert!(detail.contains("missing:\n  _a.example.com. CNAME _b.acm-validations.aws."), "{detail}");
        assert!(stuck_detail(&[]).contains("registrar"));
    }

    #[test]
    fn resource_names_fit_cloudfront() {
        assert_eq!(resource_name("example.com-site"), "skiff-example-com-site");
        let long = resource_name(&"a".repeat(63));
        assert!(long.len() <= 64);
        assert_ne!(long, resource_name(&format!("{}b", "a".repeat(62))));
    }
}
