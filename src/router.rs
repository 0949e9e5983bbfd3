//! The router: a CloudFront Function (`router/router.js`, runtime cloudfront-js-2.0) that
//! maps each request into the live deploy of its target, and the KeyValueStore it reads
//! (`production` / `preview-<slug>` → deploy id, `redirect:<path>` → `"<status> <to>"`).
//! Control-plane calls go to CloudFront; key writes go to the KVS data plane (SigV4a).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use aws_sdk_cloudfront::primitives::Blob;
use aws_sdk_cloudfront::types::{
    FunctionConfig, FunctionRuntime, FunctionStage, KeyValueStoreAssociation, KeyValueStoreAssociations,
};
use aws_sdk_cloudfrontkeyvaluestore::types::{DeleteKeyRequestListItem, PutKeyRequestListItem};

use crate::aws::call_error;
use crate::rules::Redirect;

/// The function's source, with `__SKIFF_PREVIEWS__` to fill in.
const SOURCE: &str = include_str!("../router/router.js");
/// The router's version, recorded in the state when provision publishes it. 2: delta
/// deploys (route table `b` and `m`).
pub const VERSION: u32 = 2;
/// The KVS key prefix of redirects.
pub const REDIRECT_PREFIX: &str = "redirect:";
/// CloudFront takes at most 50 keys per UpdateKeys request.
const KEYS_PER_UPDATE: usize = 50;
/// Retries of an UpdateKeys that lost a race with another writer.
const CONFLICT_RETRIES: u32 = 8;

/// The function code for a site (`previews`: the preview domain, if any): router.js without
/// its whole-line comments (CloudFront takes at most 10 KB; router.test.mjs runs the same
/// text).
pub fn code(previews: Option<&str>) -> String {
    let lines: Vec<&str> = SOURCE.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
    (lines.join("\n") + "\n").replace("__SKIFF_PREVIEWS__", previews.unwrap_or(""))
}

/// The site-wide (legacy) KVS entries for `[[redirects]]`: what the router applies to
/// deploys published before each deploy carried its own routing (`routes:<id>`). Only the
/// rules such a router understood: exact paths, redirect statuses.
pub fn redirect_entries(redirects: &[Redirect]) -> BTreeMap<String, String> {
    redirects
        .iter()
        .filter(|r| r.status != 200 && !r.from.contains('*') && !r.from.contains("/:"))
        .map(|r| (format!("{REDIRECT_PREFIX}{}", r.from), format!("{} {}", r.status, r.to)))
        .collect()
}

/// The puts and deletes that turn `current` redirect entries into `desired`.
pub fn key_changes(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let puts =
        desired.iter().filter(|(k, v)| current.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let deletes = current.keys().filter(|k| !desired.contains_key(*k)).cloned().collect();
    (puts, deletes)
}

/// A KeyValueStore's control-plane identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `READY`, or `PROVISIONING` for a while after it was created (`FAILED` when it failed).
    pub status: String,
    /// Its name.
    pub name: String,
    /// Its ARN (functions and the data plane use it).
    pub arn: String,
}

/// Find the site's KVS by name.
pub async fn find_store(client: &aws_sdk_cloudfront::Client, name: &str) -> Result<Option<Store>> {
    match client.describe_key_value_store().name(name).send().await {
        Ok(found) => Ok(found.key_value_store().map(|k| Store {
            status: k.status().unwrap_or(READY).to_string(),
            name: k.name().to_string(),
            arn: k.arn().to_string(),
        })),
        Err(e) if matches!(crate::aws::code(&e).as_deref(), Some("EntityNotFound" | "NoSuchResource")) => Ok(None),
        Err(e) if crate::aws::failure(&e).status() == Some(404) => Ok(None),
        Err(e) => Err(call_error("cloudfront:DescribeKeyValueStore", &format!("key value store `{name}`"), &e)),
    }
}

/// Create the site's KVS.
pub async fn create_store(client: &aws_sdk_cloudfront::Client, name: &str, bucket: &str) -> Result<Store> {
    let created = client
        .create_key_value_store()
        .name(name)
        .comment(format!("skiff: live deploys of {bucket}"))
        .send()
        .await
        .map_err(|e| call_error("cloudfront:CreateKeyValueStore", &format!("key value store `{name}`"), &e))?;
    let store = created.key_value_store().ok_or_else(|| anyhow!("CloudFront returned no key value store"))?;
    Ok(Store {
        status: store.status().unwrap_or("PROVISIONING").to_string(),
        name: store.name().to_string(),
        arn: store.arn().to_string(),
    })
}

/// The status of a store that can be read and written.
pub const READY: &str = "READY";

/// Wait until the store is `READY`. A new store is `PROVISIONING` for a few seconds, and
/// until then its keys cannot be written nor a function be associated with it.
/// <https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_KeyValueStore.html>
pub async fn wait_until_ready(client: &aws_sdk_cloudfront::Client, name: &str, timeout: Duration) -> Result<Store> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let store = find_store(client, name)
            .await?
            .ok_or_else(|| anyhow!("key value store `{name}` disappeared while skiff waited for it to be ready"))?;
        match store.status.as_str() {
            READY => return Ok(store),
            "FAILED" => bail!(
                "CloudFront could not create key value store `{name}` (status FAILED)\nhint: delete it in the CloudFront console (Functions → KeyValueStores), then re-run `skiff provision`"
            ),
            status if started.elapsed() >= timeout => bail!(
                "key value store `{name}` was still {status} after {}, waiting for READY\nhint: re-run `skiff provision` in a minute; it goes on from there",
                crate::time::duration(started.elapsed())
            ),
            _ => {}
        }
        let base = crate::time::poll_interval(Duration::from_millis(500));
        tokio::time::sleep(backoff(attempt, base, Duration::from_secs(5))).await;
        attempt += 1;
    }
}

/// How long to wait before retry `attempt` (0, 1, …): "full jitter", a random time up to
/// `base · 2^attempt`, capped, so that writers that collided do not collide again.
/// <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    use std::hash::BuildHasher as _;
    let ceiling = base.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(cap);
    // A random number without a crate for it: RandomState is seeded randomly per instance.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX).max(1);
    // At least half the ceiling, so a retry never comes at once.
    Duration::from_nanos(nanos / 2 + random % (nanos / 2 + 1))
}

/// One key's value; `None` when the store has no such key.
pub async fn read_key(
    client: &aws_sdk_cloudfrontkeyvaluestore::Client,
    arn: &str,
    key: &str,
) -> Result<Option<String>> {
    match client.get_key().kvs_arn(arn).key(key).send().await {
        Ok(got) => Ok(Some(got.value().to_string())),
        Err(e) if crate::aws::code(&e).as_deref() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => {
            Err(call_error("cloudfront-keyvaluestore:GetKey", &format!("key `{key}` of key value store {arn}"), &e))
        }
    }
}

/// Every key and value in the store.
pub async fn read_keys(
    client: &aws_sdk_cloudfrontkeyvaluestore::Client,
    arn: &str,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_keys()
            .kvs_arn(arn)
            .max_results(50)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| call_error("cloudfront-keyvaluestore:ListKeys", &format!("key value store {arn}"), &e))?;
        for item in page.items() {
            out.insert(item.key().to_string(), item.value().to_string());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// What the store holds, in bytes (keys and values), as its data plane counts it.
pub async fn store_size(client: &aws_sdk_cloudfrontkeyvaluestore::Client, arn: &str) -> Result<u64> {
    let described = client.describe_key_value_store().kvs_arn(arn).send().await.map_err(|e| {
        call_error("cloudfront-keyvaluestore:DescribeKeyValueStore", &format!("key value store {arn}"), &e)
    })?;
    remember_etag(arn, described.e_tag());
    Ok(u64::try_from(described.total_size_in_bytes()).unwrap_or(0))
}

/// The store's ETag as this process last saw it (from a describe or a write), so that the
/// next write need not describe the store first: a routing write and the switch after it
/// cost one `UpdateKeys` each. Stale when another writer came in between, and then the
/// write answers `ConflictException` and is retried after a describe.
static LAST_ETAG: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);

fn remember_etag(arn: &str, etag: &str) {
    *LAST_ETAG.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((arn.to_string(), etag.to_string()));
}

fn last_etag(arn: &str) -> Option<String> {
    let mut last = LAST_ETAG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    last.take().filter(|(of, _)| of == arn).map(|(_, etag)| etag)
}

/// Write keys (all-or-nothing per batch of 50), retrying when another writer moved the
/// store's version in between.
pub async fn write_keys(
    client: &aws_sdk_cloudfrontkeyvaluestore::Client,
    arn: &str,
    puts: &[(String, String)],
    deletes: &[String],
) -> Result<()> {
    let mut items: Vec<(String, Option<String>)> = puts.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    items.extend(deletes.iter().map(|k| (k.clone(), None)));
    for batch in items.chunks(KEYS_PER_UPDATE) {
        let mut attempt = 0;
        loop {
            let remembered = last_etag(arn);
            let etag = match &remembered {
                Some(etag) => etag.clone(),
                None => client
                    .describe_key_value_store()
                    .kvs_arn(arn)
                    .send()
                    .await
                    .map_err(|e| {
                        call_error(
                            "cloudfront-keyvaluestore:DescribeKeyValueStore",
                            &format!("key value store {arn}"),
                            &e,
                        )
                    })?
                    .e_tag()
                    .to_string(),
            };
            let mut request = client.update_keys().kvs_arn(arn).if_match(etag);
            for (key, value) in batch {
                request = match value {
                    Some(value) => request.puts(PutKeyRequestListItem::builder().key(key).value(value).build()?),
                    None => request.deletes(DeleteKeyRequestListItem::builder().key(key).build()?),
                };
            }
            match request.send().await {
                Ok(written) => {
                    remember_etag(arn, written.e_tag());
                    break;
                }
                // The remembered ETag was stale: describe the store, at once.
                Err(e) if crate::aws::code(&e).as_deref() == Some("ConflictException") && remembered.is_some() => {}
                // Another writer moved the version between our read and write: read again,
                // after a growing, jittered pause.
                Err(e)
                    if crate::aws::code(&e).as_deref() == Some("ConflictException") && attempt < CONFLICT_RETRIES =>
                {
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(5))).await;
                    attempt += 1;
                }
                Err(e) => {
                    return Err(call_error(
                        "cloudfront-keyvaluestore:UpdateKeys",
                        &format!("key value store {arn}"),
                        &e,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The router function as CloudFront holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its ARN.
    pub arn: String,
    /// The DEVELOPMENT code.
    pub code: String,
    /// The ETag of the DEVELOPMENT stage (update and publish send it).
    pub etag: String,
    /// The associated KVS ARNs.
    pub stores: Vec<String>,
    /// The runtime.
    pub runtime: String,
    /// The LIVE code, once published.
    pub live_code: Option<String>,
}

/// Read the function (both stages); `None` when it does not exist.
pub async fn find_function(client: &aws_sdk_cloudfront::Client, name: &str) -> Result<Option<Function>> {
    let described = match client.describe_function().name(name).stage(FunctionStage::Development).send().await {
        Ok(d) => d,
        Err(e) if crate::aws::code(&e).as_deref() == Some("NoSuchFunctionExists") => return Ok(None),
        Err(e) => return Err(call_error("cloudfront:DescribeFunction", &format!("function `{name}`"), &e)),
    };
    let summary = described.function_summary().ok_or_else(|| anyhow!("CloudFront described no function `{name}`"))?;
    let config = summary.function_config();
    let stores = config
        .and_then(|c| c.key_value_store_associations())
        .and_then(|a| a.items.as_ref())
        .map(|items| items.iter().map(|a| a.key_value_store_arn().to_string()).collect())
        .unwrap_or_default();
    let runtime = config.map(|c| c.runtime().as_str().to_string()).unwrap_or_default();
    let arn = summary.function_metadata().map(|m| m.function_arn().to_string()).unwrap_or_default();
    let code = function_code(client, name, FunctionStage::Development).await?.unwrap_or_default();
    let live_code = function_code(client, name, FunctionStage::Live).await?;
    Ok(Some(Function {
        arn,
        code,
        etag: described.e_tag().unwrap_or_default().to_string(),
        stores,
        runtime,
        live_code,
    }))
}

async fn function_code(
    client: &aws_sdk_cloudfront::Client,
    name: &str,
    stage: FunctionStage,
) -> Result<Option<String>> {
    match client.get_function().name(name).stage(stage).send().await {
        Ok(got) => Ok(got.function_code().map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())),
        Err(e) if crate::aws::code(&e).as_deref() == Some("NoSuchFunctionExists") => Ok(None),
        Err(e) => Err(call_error("cloudfront:GetFunction", &format!("function `{name}`"), &e)),
    }
}

fn function_config(bucket: &str, store_arn: &str) -> Result<FunctionConfig> {
    Ok(FunctionConfig::builder()
        .comment(format!("skiff router for {bucket}"))
        .runtime(FunctionRuntime::CloudfrontJs20)
        .key_value_store_associations(
            KeyValueStoreAssociations::builder()
                .quantity(1)
                .items(KeyValueStoreAssociation::builder().key_value_store_arn(store_arn).build()?)
                .build()?,
        )
        .build()?)
}

/// Create the function (DEVELOPMENT); returns its ETag.
pub async fn create_function(
    client: &aws_sdk_cloudfront::Client,
    name: &str,
    bucket: &str,
    store_arn: &str,
    code: &str,
) -> Result<String> {
    let created = client
        .create_function()
        .name(name)
        .function_config(function_config(bucket, store_arn)?)
        .function_code(Blob::new(code.as_bytes()))
        .send()
        .await
        .map_err(|e| call_error("cloudfront:CreateFunction", &format!("function `{name}`"), &e))?;
    Ok(created.e_tag().unwrap_or_default().to_string())
}

/// Replace the function's code and configuration; returns the new ETag.
pub async fn update_function(
    client: &aws_sdk_cloudfront::Client,
    name: &str,
    etag: &str,
    bucket: &str,
    store_arn: &str,
    code: &str,
) -> Result<String> {
    let updated = client
        .update_function()
        .name(name)
        .if_match(etag)
        .function_config(function_config(bucket, store_arn)?)
        .function_code(Blob::new(code.as_bytes()))
        .send()
        .await
        .map_err(|e| call_error("cloudfront:UpdateFunction", &format!("function `{name}`"), &e))?;
    match updated.e_tag().filter(|e| !e.is_empty()) {
        Some(etag) => Ok(etag.to_string()),
        // The SDK's model reads this ETag from a misspelt header (`ETtag`); ask again.
        None => find_function(client, name)
            .await?
            .map(|f| f.etag)
            .ok_or_else(|| anyhow!("function `{name}` disappeared after its update")),
    }
}

/// Publish DEVELOPMENT to LIVE; returns the function's ARN.
pub async fn publish_function(client: &aws_sdk_cloudfront::Client, name: &str, etag: &str) -> Result<String> {
    let published = client
        .publish_function()
        .name(name)
        .if_match(etag)
        .send()
        .await
        .map_err(|e| call_error("cloudfront:PublishFunction", &format!("function `{name}`"), &e))?;
    Ok(published
        .function_summary()
        .and_then(|s| s.function_metadata())
        .map(|m| m.function_arn().to_string())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_filled_in_and_small() {
        let code = code(Some("preview.example.com"));
        assert!(code.contains("'preview.example.com'"));
        assert!(!code.contains("__SKIFF_"));
        assert!(code.len() < 10 * 1024, "CloudFront Functions are at most 10 KB");
        assert!(!code.contains("\n//") && !code.contains("  // "), "whole-line comments are removed");
        let longest = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61));
        assert!(super::code(Some(&longest)).len() < 10 * 1024);
        assert!(super::code(None).contains("const PREVIEWS = '';"));
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        for attempt in 0..20 {
            let ceiling = (base * 2u32.pow(attempt.min(16))).min(cap);
            let pause = backoff(attempt, base, cap);
            assert!(pause >= ceiling / 2 && pause <= ceiling, "{attempt}: {pause:?} of {ceiling:?}");
        }
        let pauses: std::collections::BTreeSet<Duration> = (0..20).map(|_| backoff(3, base, cap)).collect();
        assert!(pauses.len() > 1, "no jitter: {pauses:?}");
    }

    #[test]
    fn redirects_become_keys_and_changes() {
        let redirects = vec![
            Redirect { from: "/old/".into(), to: "/new/".into(), status: 301, force: false, origin: String::new() },
            Redirect {
                from: "/x".into(),
                to: "https://example.org/".into(),
                status: 302,
                force: false,
                origin: String::new(),
            },
            Redirect {
                from: "/blog/*".into(),
                to: "/p/:splat".into(),
                status: 301,
                force: false,
                origin: String::new(),
            },
            Redirect {
                from: "/app".into(),
                to: "/index.html".into(),
                status: 200,
                force: false,
                origin: String::new(),
            },
        ];
        let desired = redirect_entries(&redirects);
        assert_eq!(desired["redirect:/old/"], "301 /new/");
        assert_eq!(desired.len(), 2, "patterns and rewrites are for the routing of each deploy: {desired:?}");
        let current: BTreeMap<String, String> = [
            ("redirect:/old/".to_string(), "302 /new/".to_string()),
            ("redirect:/gone".to_string(), "301 /".to_string()),
        ]
        .into();
        let (puts, deletes) = key_changes(&current, &desired);
        assert_eq!(puts.len(), 2);
        assert_eq!(deletes, ["redirect:/gone"]);
        assert_eq!(key_changes(&desired, &desired), (vec![], vec![]));
    }
}
