//! `skiff serve`: the site directory on 127.0.0.1, routed exactly as the edge routes a
//! deploy of it (`edge`, the router's Rust twin, over the KVS entries a publish would
//! write), with the headers a publish would store, the 404 page, and a reload when a file
//! changes. HTTP/1.1, one request per connection: a tool for trying a site, not a server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::config::ServeSettings;
use crate::edge::{self, Answer};
use crate::output::Output;
use crate::scan::{LocalFile, ScanOptions};

/// The deploy id the local site goes by.
const LOCAL: &str = "local";
/// The largest request head read.
const MAX_HEAD: usize = 64 * 1024;

/// The site as a deploy of it would be: its files by key and the router's entries.
struct Local {
    files: HashMap<String, LocalFile>,
    kvs: BTreeMap<String, String>,
}

fn load(settings: &ServeSettings) -> Result<(Local, Vec<String>), String> {
    let mut routing = settings.routing.clone();
    let mut rules = settings.rules.clone();
    crate::scan::read_routing_files(&settings.dir, &settings.exclude, &mut routing, &mut rules)?;
    let options = ScanOptions {
        exclude: &settings.exclude,
        rules: &rules,
        prefix_len: 0,
        cache: None,
        stop: None,
        progress: None,
    };
    let mut scanned = crate::scan::scan(&settings.dir, options).map_err(|e| e.to_string())?;
    if routing.clean_urls {
        crate::scan::add_clean_copies(&mut scanned)?;
    }
    let keys: Vec<&str> = scanned.files.iter().map(|f| f.key.as_str()).collect();
    let compiled = crate::routes::compile(&routing, LOCAL, &keys)?;
    let mut kvs = compiled.entries;
    kvs.insert(edge::PRODUCTION.to_string(), LOCAL.to_string());
    let mut warnings = scanned.warnings;
    warnings.extend(compiled.warnings);
    let files = scanned.files.into_iter().map(|f| (f.key.clone(), f)).collect();
    Ok((Local { files, kvs }, warnings))
}

/// What changes when a file is added, removed or rewritten: paths, sizes and times.
fn fingerprint(dir: &std::path::Path) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name().into_iter().flatten() {
        entry.path().hash(&mut hasher);
        if let Ok(meta) = entry.metadata() {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Serve until Ctrl-C.
pub async fn serve(settings: &ServeSettings, out: &Output) -> Result<()> {
    if !settings.dir.is_dir() {
        return Err(crate::config::ConfigError::new(format!(
            "`{}` is not a directory: build the site first, or pass its output directory (`skiff serve public`)",
            settings.dir.display()
        ))
        .into());
    }
    let (local, warnings) = load(settings).map_err(|e| anyhow!(e))?;
    for warning in &warnings {
        out.warn(warning);
    }
    let site = Arc::new(RwLock::new(Arc::new(local)));
    let listener = TcpListener::bind(("127.0.0.1", settings.port)).await.with_context(|| {
        format!("could not listen on 127.0.0.1:{}\nhint: pick another port with `--port`", settings.port)
    })?;
    let address = listener.local_addr()?;
    out.info(&format!(
        "serving {} at http://{address}/ as the edge routes it; it reloads when a file changes (Ctrl-C to stop)",
        settings.dir.display()
    ));
    if out.is_json() {
        out.json(&serde_json::json!({ "url": format!("http://{address}/"), "dir": settings.dir }));
    }

    // Reload: a rebuild when the tree's fingerprint changes; a broken `_redirects` keeps the
    // last good routing and says why.
    let (reloads, mut reloaded) = tokio::sync::mpsc::channel(1);
    let watch = settings.clone();
    tokio::spawn(async move {
        let dir = watch.dir.clone();
        let mut last = tokio::task::spawn_blocking(move || fingerprint(&dir)).await.unwrap_or(0);
        loop {
            tokio::time::sleep(crate::time::poll_interval(Duration::from_millis(500))).await;
            let dir = watch.dir.clone();
            let now = tokio::task::spawn_blocking(move || fingerprint(&dir)).await.unwrap_or(0);
            if now == last {
                continue;
            }
            last = now;
            let again = watch.clone();
            let Ok(result) = tokio::task::spawn_blocking(move || load(&again)).await else { continue };
            if reloads.send(result).await.is_err() {
                return;
            }
        }
    });

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            Some(result) = reloaded.recv() => {
                match result {
                    Ok((local, warnings)) => {
                        for warning in &warnings {
                            out.warn(warning);
                        }
                        *site.write().expect("the site lock") = Arc::new(local);
                        out.info("reloaded: a file changed");
                    }
                    Err(err) => out.warn(&format!("not reloaded: {err}")),
                }
                continue;
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let current = Arc::clone(&site.read().expect("the site lock"));
        tokio::spawn(async move {
            let _ = handle(stream, &current).await;
        });
    }
}

/// One request, one answer, then the connection closes.
async fn handle(mut stream: TcpStream, site: &Local) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or("/"));
    let mut request = edge::Request::default();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "host" => request.host = Some(value.to_string()),
            "cookie" => {
                for pair in value.split(';') {
                    if let Some((n, v)) = pair.trim().split_once('=') {
                        request.cookies.push((n.to_string(), v.to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    let (uri, query) = target.split_once('?').unwrap_or((target, ""));
    request.uri = uri.to_string();
    request.query = query.to_string();
    let (status, headers, body) = if matches!(method, "GET" | "HEAD") {
        answer(site, &request).await
    } else {
        (405, vec![("allow".to_string(), "GET, HEAD".to_string())], b"Method Not Allowed".to_vec())
    };
    let mut response = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in &headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    stream.write_all(response.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&body).await?;
    }
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "",
    }
}

type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// What the edge would answer, then what the bucket would.
async fn answer(site: &Local, request: &edge::Request) -> Response {
    let lookup = |key: &str| site.kvs.get(key).cloned();
    let mut dice = || 0.5;
    let routed = edge::viewer_request("", request, &lookup, &mut dice);
    let mut routed_headers = None;
    let (mut status, mut headers, mut body) = match routed {
        Answer::Respond { status, headers, body } => (status, headers, body.unwrap_or_default().into_bytes()),
        Answer::Forward { uri, headers: sent } => {
            routed_headers = Some(sent);
            let prefix = format!("/_deploys/{}/{LOCAL}/", edge::PRODUCTION);
            let key = uri.strip_prefix(&prefix).and_then(edge::decode_uri_component).unwrap_or_default();
            match read(site, &key).await {
                Some((headers, bytes)) => (200, headers, bytes),
                None => match read(site, crate::state::NOT_FOUND_PAGE).await {
                    Some((headers, bytes)) => (404, headers, bytes),
                    None => (
                        404,
                        vec![("content-type".to_string(), "text/plain; charset=utf-8".to_string())],
                        b"Not Found".to_vec(),
                    ),
                },
            }
        }
    };
    let sent = match &routed_headers {
        Some(h) => h.as_slice(),
        None => &[],
    };
    let (extra, cookies) = edge::viewer_response("", request, sent);
    headers.extend(extra);
    for (name, value) in cookies {
        headers.push(("set-cookie".to_string(), format!("{name}={value}; {}", edge::COHORT_ATTRIBUTES)));
    }
    if status == 0 {
        status = 500;
        body.clear();
    }
    (status, headers, body)
}

/// An object of the would-be deploy: the headers S3 would serve, and its bytes.
async fn read(site: &Local, key: &str) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    let file = site.files.get(key)?;
    let bytes = tokio::fs::read(file.upload_path()).await.ok()?;
    let mut headers = vec![("content-type".to_string(), file.headers.content_type.as_str().to_string())];
    if let Some(value) = &file.headers.cache_control {
        headers.push(("cache-control".to_string(), value.as_str().to_string()));
    }
    if let Some(value) = &file.headers.content_encoding {
        headers.push(("content-encoding".to_string(), value.as_str().to_string()));
    }
    Some((headers, bytes))
}
