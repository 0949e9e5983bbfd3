//! `publish --verify`: after going live, fetch every changed and deleted URL through the
//! site's URL and compare the status and the body's BLAKE3 with what was published,
//! retrying while the change reaches the edges (KVS updates and invalidations take seconds).
//! What a URL should answer comes from the router's Rust twin (`edge`) over the deploy's
//! routing, so a redirect or an SPA fallback is checked as such.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use http_body_util::BodyExt as _;

use crate::edge::{self, Answer};
use crate::object::Digest;
use crate::output::Output;
use crate::scan::LocalFile;

/// What one URL must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The path, from the site's root, percent-encoded.
    pub path: String,
    /// What must come back.
    pub want: Want,
}

/// An expected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// 200 with these bytes.
    Body(Digest),
    /// A redirect with this status and `location`.
    Redirect(u16, String),
    /// Nothing there: 403, 404 or 410 (S3 behind CloudFront says 403 for a missing key).
    Missing,
}

/// What stays as is in a URL path: unreserved characters and `/`.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

/// The URL path a visitor uses for a key: `x/index.html` is `/x/`, a clean page `x.html`
/// is `/x`, anything else `/key`; each segment percent-encoded.
pub fn url_path(key: &str, clean_urls: bool) -> String {
    let visible = if key == "index.html" {
        ""
    } else if let Some(dir) = key.strip_suffix("/index.html") {
        &key[..=dir.len()]
    } else if clean_urls && let Some(stem) = key.strip_suffix(".html") {
        stem
    } else {
        key
    };
    format!("/{}", percent_encoding::utf8_percent_encode(visible, SEGMENT))
}

/// The checks for `keys` (changed or deleted) of a publish whose files are `files`. With
/// `routing` (the deploy's KVS entries and id), what a path answers is what the router
/// makes of it; without (in place), the path is the key.
pub fn checks(
    files: &[LocalFile],
    keys: &[&str],
    clean_urls: bool,
    routing: Option<(&BTreeMap<String, String>, &str)>,
) -> Vec<Check> {
    let by_key: HashMap<&str, &LocalFile> = files.iter().map(|f| (f.key.as_str(), f)).collect();
    let body = |key: &str| by_key.get(key).map_or(Want::Missing, |f| Want::Body(f.blake3));
    let mut out: Vec<Check> = Vec::new();
    for key in keys {
        // Clean-URL copies are checked at their page's URL.
        if clean_urls && !key.contains('.') && by_key.contains_key(format!("{key}.html").as_str()) {
            continue;
        }
        let path = if routing.is_some() { url_path(key, clean_urls) } else { url_path(key, false) };
        let path = if routing.is_none() && key.ends_with("index.html") { format!("/{key}") } else { path };
        let want = match routing {
            None => body(key),
            Some((entries, id)) => {
                let (query, path_only) = (String::new(), path.clone());
                let request = edge::Request { host: None, uri: path_only, query, cookies: Vec::new() };
                let lookup =
                    |k: &str| if k == edge::PRODUCTION { Some(id.to_string()) } else { entries.get(k).cloned() };
                match edge::viewer_request("", &request, &lookup, &mut || 0.99) {
                    Answer::Forward { uri, .. } => {
                        // `/_deploys/<target>/<id>/<key>`: the deploy's own, or (a delta
                        // deploy) its base's, which holds the same bytes.
                        let key = uri
                            .strip_prefix("/_deploys/")
                            .and_then(|rest| rest.splitn(3, '/').nth(2))
                            .and_then(edge::decode_uri_component)
                            .unwrap_or_default();
                        body(&key)
                    }
                    Answer::Respond { status, headers, .. } if (300..400).contains(&status) => {
                        let location = headers.iter().find(|(n, _)| n == "location").map(|(_, v)| v.clone());
                        Want::Redirect(status, location.unwrap_or_default())
                    }
                    Answer::Respond { .. } => Want::Missing,
                }
            }
        };
        if out.iter().all(|c| c.path != path) {
            out.push(Check { path, want });
        }
    }
    out
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

fn client() -> Result<Client> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| anyhow::anyhow!("could not load the system's TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// What a URL answered, in words, when it is not what was wanted; `None` when it is.
async fn fetch(client: &Client, url: &str, want: &Want) -> Option<String> {
    let request = match hyper::Request::get(url)
        .header("user-agent", concat!("skiff/", env!("CARGO_PKG_VERSION"), " (verify)"))
        .header("cache-control", "no-cache")
        .body(http_body_util::Empty::new())
    {
        Ok(request) => request,
        Err(e) => return Some(format!("not a URL ({e})")),
    };
    let response = match tokio::time::timeout(Duration::from_secs(30), client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return Some(format!("could not be fetched: {}", crate::aws::last_cause(&e))),
        Err(_) => return Some("did not answer within 30 s".to_string()),
    };
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Some(format!("answered {status}, then the body broke off ({e})")),
    };
    match want {
        Want::Body(digest) if status == 200 && Digest::blake3_of(&body) == *digest => None,
        Want::Body(_) if status == 200 => Some("answers 200 with other bytes (an old version?)".to_string()),
        Want::Body(_) => Some(format!("answers {status}, not 200 with the new bytes")),
        Want::Redirect(code, to) if status == *code && location.as_deref() == Some(to) => None,
        Want::Redirect(code, to) => Some(format!(
            "answers {status}{}, not {code} to `{to}`",
            location.map(|l| format!(" to `{l}`")).unwrap_or_default()
        )),
        Want::Missing if matches!(status, 403 | 404 | 410) => None,
        Want::Missing => Some(format!("answers {status}; it was deleted, so 404 (or 403) was expected")),
    }
}

/// Check every URL through `base` (the site's URL) until each answers as published or
/// `timeout` has passed; the error lists what still does not.
pub async fn verify(base: &str, checks: Vec<Check>, timeout: Duration, out: &Output) -> Result<()> {
    if checks.is_empty() {
        out.info("verify: nothing changed, nothing to check");
        return Ok(());
    }
    let base = base.trim_end_matches('/').to_string();
    let client = client()?;
    let started = Instant::now();
    let total = checks.len();
    out.info(&format!("verify: fetching {} through {base}/", crate::output::count(total, "URL")));
    let mut pending = checks;
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let limit = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for check in pending.drain(..) {
            let (client, limit, url) = (client.clone(), Arc::clone(&limit), format!("{base}{}", check.path));
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                let problem = fetch(&client, &url, &check.want).await;
                (check, problem)
            });
        }
        failures.clear();
        while let Some(done) = tasks.join_next().await {
            let Ok((check, problem)) = done else { continue };
            if let Some(problem) = problem {
                failures.insert(check.path.clone(), problem);
                pending.push(check);
            }
        }
        if pending.is_empty() {
            out.info(&format!(
                "verify: all {} serve what was published ({})",
                crate::output::count(total, "URL"),
                crate::time::duration(started.elapsed())
            ));
            return Ok(());
        }
        if started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(crate::time::poll_interval(Duration::from_secs(2)).min(timeout)).await;
    }
    let shown: Vec<String> = failures.iter().take(20).map(|(path, why)| format!("  {base}{path}: {why}")).collect();
    let more = failures.len().saturating_sub(shown.len());
    bail!(
        "verify: {} of {total} still not serving what was published after {}:\n{}{}\nhint: the publish itself succeeded; if a CDN cache is in the way, `skiff invalidate` the paths, or re-run with a longer `--verify-timeout`",
        failures.len(),
        crate::time::duration(started.elapsed()),
        shown.join("\n"),
        if more > 0 { format!("\n  … and {more} more") } else { String::new() }
    )
}
