//! The router's Rust twin: what `router/router.js` answers at the edge, for `skiff serve`
//! and `--verify`. Both follow router/SPEC.md, and `router/cases.json` holds them to it.
//! Pure: the KVS is a lookup function, the dice a number.

use crate::routes::{fnv1a, norm};

/// The canary cookie, and what it is set with.
pub const COHORT_COOKIE: &str = "skiff-canary";
/// See [`COHORT_COOKIE`].
pub const COHORT_ATTRIBUTES: &str = "Path=/; Max-Age=2592000; Secure; SameSite=Lax";
/// The request header that carries a new visitor's cohort to the response.
pub const COHORT_HEADER: &str = "x-skiff-cohort";
/// The target of the site's main host.
pub const PRODUCTION: &str = "production";

/// Header (or cookie) names and values.
pub type Headers = Vec<(String, String)>;

/// A viewer request, as far as routing goes.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The `Host` header, if any.
    pub host: Option<String>,
    /// The path as received (percent-encoded).
    pub uri: String,
    /// The query string without `?` (may be empty).
    pub query: String,
    /// Cookies by name.
    pub cookies: Vec<(String, String)>,
}

/// What the router does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It goes on to the bucket, at this URI, with these request headers added.
    Forward { uri: String, headers: Vec<(String, String)> },
    /// The edge answers by itself.
    Respond { status: u16, headers: Vec<(String, String)>, body: Option<String> },
}

#[cfg(test)]
impl Answer {
    /// A header of a generated answer.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (Self::Forward { headers, .. } | Self::Respond { headers, .. }) = self;
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn host_of(request: &Request) -> String {
    let Some(host) = &request.host else { return String::new() };
    let mut host = host.to_ascii_lowercase();
    if let Some(colon) = host.rfind(':')
        && host[colon + 1..].bytes().all(|b| b.is_ascii_digit())
    {
        host.truncate(colon);
    }
    host.strip_suffix('.').map(str::to_string).unwrap_or(host)
}

fn under_previews(host: &str, previews: &str) -> bool {
    !previews.is_empty() && host.ends_with(&format!(".{previews}"))
}

fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && ok(&bytes[0])
        && ok(&bytes[bytes.len() - 1])
        && bytes.iter().all(|b| ok(b) || *b == b'-')
}

/// `production`, `preview-<slug>`, or `None` (a preview host with an invalid slug).
fn target_of(host: &str, previews: &str) -> Option<String> {
    if !under_previews(host, previews) {
        return Some(PRODUCTION.to_string());
    }
    let slug = &host[..host.len() - previews.len() - 1];
    valid_slug(slug).then(|| format!("preview-{slug}"))
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 100
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
}

/// JavaScript's `decodeURIComponent`: `None` where it throws.
pub fn decode_uri_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn safe_path(uri: &str) -> bool {
    if !uri.starts_with('/') {
        return false;
    }
    uri.split('/').all(|segment| {
        decode_uri_component(segment).is_some_and(|s| {
            !s.contains('\\') && !s.contains('\0') && s.split('/').all(|part| part != "." && part != "..")
        })
    })
}

/// `?a=1&b` from the query, grouped by name as CloudFront's parsed query string is
/// (`''` when empty).
fn query_suffix(query: &str) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match groups.iter_mut().find(|(n, _)| n == name) {
            Some((_, values)) => values.push(value.to_string()),
            None => groups.push((name.to_string(), vec![value.to_string()])),
        }
    }
    let mut out = Vec::new();
    for (name, values) in groups {
        for value in values {
            out.push(if value.is_empty() { name.clone() } else { format!("{name}={value}") });
        }
    }
    if out.is_empty() { String::new() } else { format!("?{}", out.join("&")) }
}

fn respond(status: u16, mut headers: Vec<(String, String)>, noindex: bool, body: Option<&str>) -> Answer {
    if noindex {
        headers.push(("x-robots-tag".to_string(), "noindex".to_string()));
    }
    Answer::Respond { status, headers, body: body.map(str::to_string) }
}

fn not_found(noindex: bool) -> Answer {
    respond(
        404,
        vec![
            ("content-type".to_string(), "text/plain; charset=utf-8".to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
        ],
        noindex,
        Some("Not Found"),
    )
}

/// A `"<status> <to>"` value as an answer: a redirect, or `Err(to)` for a 200 rewrite;
/// `None` when malformed.
fn rule_value(value: &str, query: &str, noindex: bool) -> Option<Result<Answer, String>> {
    let value = value.trim();
    let (code, to) = value.split_once(' ')?;
    let to = to.trim();
    if to.is_empty() || to.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    match code {
        "200" => Some(Err(to.to_string())),
        "301" | "302" | "303" | "307" | "308" => {
            let location = if to.contains('?') { to.to_string() } else { format!("{to}{query}") };
            Some(Ok(respond(
                code.parse().ok()?,
                vec![
                    ("location".to_string(), location),
                    ("cache-control".to_string(), "public, max-age=300".to_string()),
                ],
                noindex,
                None,
            )))
        }
        _ => None,
    }
}

/// The parsed `routes:<id>` table.
struct Table {
    clean: bool,
    spa: bool,
    buckets: u64,
    patterns: Vec<(crate::routes::Pattern, String, u16)>,
    /// A delta deploy: its base (`<target>/<id>`) and the bucket count of its delta index.
    delta: Option<(String, u64)>,
}

/// A delta deploy's base: `production/<id>` or `preview-<slug>/<id>`.
fn valid_base(base: &str) -> bool {
    base.split_once('/').is_some_and(|(target, id)| {
        (target == PRODUCTION || target.strip_prefix("preview-").is_some_and(valid_slug)) && valid_id(id)
    })
}

/// The letter of `path`'s entry in the index `<prefix><id>:<k>` of `buckets` buckets.
fn index_entry(kvs: &dyn Fn(&str) -> Option<String>, prefix: &str, id: &str, buckets: u64, path: &str) -> Option<char> {
    let hash = fnv1a(path);
    let bucket = kvs(&format!("{prefix}{id}:{}", u64::from(hash) % buckets))?;
    let hex = format!("{hash:08x}");
    bucket.as_bytes().chunks(9).find(|e| e.len() == 9 && e[1..] == *hex.as_bytes()).map(|e| char::from(e[0]))
}

fn table(value: &str) -> Table {
    let json: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
    let flag = |k: &str| json.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) == 1;
    let patterns = json
        .get("p")
        .and_then(serde_json::Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| {
                    let from = r.get(0)?.as_str()?;
                    let to = r.get(1)?.as_str()?;
                    let status = u16::try_from(r.get(2)?.as_u64()?).ok()?;
                    Some((crate::routes::Pattern::parse(from).ok()?, to.to_string(), status))
                })
                .collect()
        })
        .unwrap_or_default();
    let base = json.get("b").and_then(serde_json::Value::as_str).filter(|b| valid_base(b));
    let delta_buckets = json.get("m").and_then(serde_json::Value::as_u64).unwrap_or(0);
    Table {
        clean: flag("c"),
        spa: flag("s"),
        buckets: json.get("n").and_then(serde_json::Value::as_u64).unwrap_or(0),
        patterns,
        delta: base.filter(|_| delta_buckets > 0).map(|b| (b.to_string(), delta_buckets)),
    }
}

/// The viewer-request function: where `request` goes.
#[allow(clippy::case_sensitive_file_extension_comparisons)] // keys are case-sensitive
pub fn viewer_request(
    previews: &str,
    request: &Request,
    kvs: &dyn Fn(&str) -> Option<String>,
    random: &mut dyn FnMut() -> f64,
) -> Answer {
    let host = host_of(request);
    let noindex = under_previews(&host, previews);
    let Some(target) = target_of(&host, previews) else { return not_found(noindex) };
    let raw = request.uri.as_str();
    if !safe_path(raw) {
        return not_found(noindex);
    }
    let query = query_suffix(&request.query);

    let mut headers = Vec::new();
    let mut id = kvs(&target).filter(|id| valid_id(id));
    if target == PRODUCTION
        && let Some(canary) = kvs("canary")
        && let Some((cid, weight)) = canary.trim().split_once(' ')
        && valid_id(cid)
        && let Some(weight) = cohort_of(weight.trim_start())
        && weight >= 1
    {
        let cookie = request.cookies.iter().find(|(n, _)| n == COHORT_COOKIE).map(|(_, v)| v.as_str());
        let cohort = if let Some(cohort) = cookie.and_then(cohort_of) {
            cohort
        } else {
            let rolled = (random() * 100.0).floor().clamp(0.0, 99.0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let cohort = rolled as u32;
            headers.push((COHORT_HEADER.to_string(), cohort.to_string()));
            cohort
        };
        if cohort < weight {
            id = Some(cid.to_string());
        }
    }

    let routes = id.as_ref().and_then(|id| kvs(&format!("routes:{id}")));
    let Some(routes) = routes else {
        // Legacy: a site-wide redirect, then the folder paths.
        if let Some(value) = kvs(&format!("redirect:{raw}"))
            && let Some(Ok(answer)) = rule_value(&value, &query, noindex).filter(Result::is_ok)
        {
            return answer;
        }
        let Some(id) = id else { return not_found(noindex) };
        let place = |key: &str| format!("/_deploys/{target}/{id}{key}");
        return legacy(&place, raw, &query, noindex, headers);
    };
    let id = id.expect("a table belongs to a deploy");
    let table = table(&routes);
    let Some(mut path) = decode_uri_component(raw) else { return not_found(noindex) };
    let mut raw = raw.to_string();

    let normal = norm(&path).to_string();
    let rule = match kvs(&format!("r:{id}:{normal}")) {
        Some(value) if value == "-" => None,
        Some(value) => Some(value),
        None => table.patterns.iter().find_map(|(pattern, to, status)| {
            pattern.captures(&normal).map(|c| format!("{status} {}", crate::routes::substitute(to, &c)))
        }),
    };
    if let Some(value) = rule {
        match rule_value(&value, &query, noindex) {
            Some(Ok(answer)) => return answer,
            Some(Err(to)) => {
                if !safe_path(&to) {
                    return not_found(noindex);
                }
                let Some(decoded) = decode_uri_component(&to) else { return not_found(noindex) };
                path = decoded;
                raw = to;
            }
            None => {}
        }
    }
    // Where a key is: in the deploy, or (a delta deploy's key not in its delta index) in
    // its base.
    let place = |key: &str| match &table.delta {
        Some((base, buckets))
            if decode_uri_component(key).is_some_and(|k| index_entry(kvs, "d:", &id, *buckets, &k).is_none()) =>
        {
            format!("/_deploys/{base}{key}")
        }
        _ => format!("/_deploys/{target}/{id}{key}"),
    };
    if table.buckets == 0 {
        return legacy(&place, &raw, &query, noindex, headers);
    }

    let kind = |p: &str| index_entry(kvs, "i:", &id, table.buckets, p);
    let serve = |key: &str, headers: Vec<(String, String)>| Answer::Forward { uri: place(key), headers };
    let redirect = |location: String| respond(301, vec![("location".to_string(), location)], noindex, None);
    let last = path.rsplit('/').next().unwrap_or("");
    if path.ends_with('/') {
        if kind(&path) == Some('d') {
            return serve(&format!("{raw}index.html"), headers);
        }
        if table.clean && kind(norm(&path)) == Some('c') {
            return redirect(format!("{}{query}", norm(&raw)));
        }
        if table.spa {
            return serve("/index.html", headers);
        }
        return serve(&format!("{raw}index.html"), headers);
    }
    if !last.contains('.') {
        if matches!(kind(&path), Some('c' | 'f')) {
            return serve(&raw, headers);
        }
        if kind(&format!("{path}/")) == Some('d') {
            return redirect(format!("{raw}/{query}"));
        }
        if table.spa {
            return serve("/index.html", headers);
        }
        return serve(&raw, headers);
    }
    if table.clean
        && let Some(stem) = path.strip_suffix(".html")
        && last != "index.html"
        && raw.ends_with(".html") // as the spec says: case-sensitive, like S3 keys
        && kind(stem) == Some('c')
    {
        return redirect(format!("{}{query}", raw.strip_suffix(".html").unwrap_or(&raw)));
    }
    serve(&raw, headers)
}

fn cohort_of(value: &str) -> Option<u32> {
    (!value.is_empty() && value.len() <= 2 && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// The paths of a deploy without an index: folders get their `index.html`, and a last
/// segment without a dot is a folder (301 to it with a slash).
fn legacy(
    place: &dyn Fn(&str) -> String,
    raw: &str,
    query: &str,
    noindex: bool,
    headers: Vec<(String, String)>,
) -> Answer {
    let last = raw.rsplit('/').next().unwrap_or("");
    let key = if raw.ends_with('/') {
        format!("{raw}index.html")
    } else if !last.contains('.') {
        let location = format!("/{}/{query}", raw.trim_start_matches('/'));
        return respond(301, vec![("location".to_string(), location)], noindex, None);
    } else {
        raw.to_string()
    };
    Answer::Forward { uri: place(&key), headers }
}

/// The viewer-response function: the headers and cookies it adds.
pub fn viewer_response(previews: &str, request: &Request, request_headers: &[(String, String)]) -> (Headers, Headers) {
    let host = host_of(request);
    let mut headers = Vec::new();
    if under_previews(&host, previews) {
        headers.push(("x-robots-tag".to_string(), "noindex".to_string()));
    }
    let cookies = request_headers
        .iter()
        .filter(|(n, v)| n == COHORT_HEADER && cohort_of(v).is_some())
        .map(|(_, v)| (COHORT_COOKIE.to_string(), v.clone()))
        .collect();
    (headers, cookies)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;

    /// Every case of router/cases.json, against this router.
    #[test]
    fn the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/router/cases.json");
        let table: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() > 50, "{} cases", cases.len());
        let mut failures = Vec::new();
        for case in cases {
            if let Err(why) = run(case) {
                failures.push(format!("{}: {why}", case["name"].as_str().unwrap_or("?")));
            }
        }
        assert!(failures.is_empty(), "{} of {} cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
    }

    fn run(case: &Value) -> Result<(), String> {
        let previews = case.get("previews").and_then(Value::as_str).unwrap_or("preview.example.com");
        let mut kvs: BTreeMap<String, String> = case["kvs"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
            .unwrap_or_default();
        if let Some(pages) = case.get("pages").and_then(Value::as_object) {
            for (id, index) in pages {
                let n = usize::try_from(index["n"].as_u64().unwrap()).unwrap();
                let paths: BTreeMap<String, char> = index["paths"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(p, t)| (p.clone(), t.as_str().unwrap().chars().next().unwrap()))
                    .collect();
                for (bucket, value) in crate::routes::index_buckets(&paths, n) {
                    kvs.insert(format!("i:{id}:{bucket}"), value);
                }
            }
        }
        let r = &case["request"];
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let request = Request {
            host: text(r, "host"),
            uri: text(r, "uri").unwrap_or_else(|| "/".to_string()),
            query: text(r, "query").unwrap_or_default(),
            cookies: r
                .get("cookies")
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
                .unwrap_or_default(),
        };
        let random = r.get("random").and_then(Value::as_f64);
        let expect = &case["expect"];
        let want = |k: &str| expect.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        if text(r, "event").as_deref() == Some("viewer-response") {
            let sent: Vec<(String, String)> = r
                .get("headers")
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect())
                .unwrap_or_default();
            let (headers, cookies) = viewer_response(previews, &request, &sent);
            for (name, value) in want("headers") {
                let got = headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                if got != value.as_str() {
                    return Err(format!("header {name}: {got:?}"));
                }
            }
            for name in expect.get("no_headers").and_then(Value::as_array).into_iter().flatten() {
                if headers.iter().any(|(n, _)| n == name.as_str().unwrap()) {
                    return Err(format!("header {name} present"));
                }
            }
            let want_cookies = want("cookies");
            if cookies.len() != want_cookies.len()
                || cookies.iter().any(|(n, v)| want_cookies.get(n).and_then(Value::as_str) != Some(v.as_str()))
            {
                return Err(format!("cookies {cookies:?}"));
            }
            return Ok(());
        }
        let lookup = |k: &str| kvs.get(k).cloned();
        let mut dice = || random.expect("the case rolls the dice without `random`");
        let answer = viewer_request(previews, &request, &lookup, &mut dice);
        match (&answer, expect.get("uri").and_then(Value::as_str)) {
            (Answer::Forward { uri, headers }, Some(want_uri)) => {
                if uri != want_uri {
                    return Err(format!("uri {uri}, expected {want_uri}"));
                }
                for (name, value) in want("request_headers") {
                    let got = headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                    if got != value.as_str() {
                        return Err(format!("request header {name}: {got:?}"));
                    }
                }
                if want("request_headers").is_empty() && !headers.is_empty() {
                    return Err(format!("request headers {headers:?}"));
                }
                Ok(())
            }
            (Answer::Respond { status, headers, body }, None) => {
                let want_status = expect["status"].as_u64().unwrap();
                if u64::from(*status) != want_status {
                    return Err(format!("status {status}, expected {want_status} ({headers:?})"));
                }
                if let Some(location) = expect.get("location").and_then(Value::as_str)
                    && answer.header("location") != Some(location)
                {
                    return Err(format!("location {:?}, expected {location}", answer.header("location")));
                }
                for (name, value) in want("headers") {
                    if answer.header(&name) != value.as_str() {
                        return Err(format!("header {name}: {:?}", answer.header(&name)));
                    }
                }
                for name in expect.get("no_headers").and_then(Value::as_array).into_iter().flatten() {
                    if answer.header(name.as_str().unwrap()).is_some() {
                        return Err(format!("header {name} present"));
                    }
                }
                if *status == 404 && body.as_deref() != Some("Not Found") {
                    return Err(format!("404 body {body:?}"));
                }
                Ok(())
            }
            (answer, _) => Err(format!("got {answer:?}")),
        }
    }

    #[test]
    fn decoding_fails_where_javascript_throws() {
        assert_eq!(decode_uri_component("a%20b").as_deref(), Some("a b"));
        assert_eq!(decode_uri_component("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_uri_component("%"), None);
        assert_eq!(decode_uri_component("%zz"), None);
        assert_eq!(decode_uri_component("%C3"), None);
        assert_eq!(decode_uri_component("%+1"), None);
    }

    #[test]
    fn queries_group_like_cloudfront() {
        assert_eq!(query_suffix(""), "");
        assert_eq!(query_suffix("a=1&b&c=x&a=2&d="), "?a=1&a=2&b&c=x&d");
    }
}
