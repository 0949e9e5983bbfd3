//! Routing of one deploy (router/SPEC.md): clean URLs, single-page apps, redirects and
//! rewrites with splats and placeholders, and Netlify's `_redirects` / `_headers` files,
//! compiled into the KVS entries the router reads. Pure; the router's Rust twin is `edge`.

use std::collections::{BTreeMap, BTreeSet};

use crate::object::HeaderValue;
use crate::rules::{Redirect, Rule, compile_glob};

/// The files at the site root that configure routing; they are read, not published.
pub const REDIRECTS_FILE: &str = "_redirects";
/// See [`REDIRECTS_FILE`].
pub const HEADERS_FILE: &str = "_headers";

/// KVS limits (CloudFront KeyValueStore quotas).
pub const MAX_KEY_BYTES: usize = 512;
/// See [`MAX_KEY_BYTES`].
pub const MAX_VALUE_BYTES: usize = 1024;
/// See [`MAX_KEY_BYTES`].
pub const MAX_STORE_BYTES: u64 = 5 * 1024 * 1024;
/// Entries per page-index bucket: 113 × 9 characters fit in one value.
pub const BUCKET_ENTRIES: usize = 113;

/// The statuses a rule may have: a rewrite (200) or a redirect.
pub const STATUSES: &[u16] = &[200, 301, 302, 303, 307, 308];

/// How one deploy routes requests.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// `[site] clean_urls`.
    pub clean_urls: bool,
    /// `[site] spa`.
    pub spa: bool,
    /// `_redirects` first, then `[[redirects]]` (as Netlify orders its file and its TOML).
    pub rules: Vec<Redirect>,
}

impl Routing {
    /// Whether a deploy with these settings needs the router (in place, S3 cannot answer
    /// redirects).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }
}

/// One segment of a rule's `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder(String),
    Splat,
}

/// A rule's `from`, parsed.
#[derive(Debug, Clone)]
pub struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parse `from` (a path starting with `/`); the error says what is wrong.
    pub fn parse(from: &str) -> Result<Self, String> {
        if !from.starts_with('/') {
            return Err(format!("`{from}` must be a path starting with `/`"));
        }
        let normal = norm(from);
        let parts: Vec<&str> = normal.split('/').skip(1).collect();
        let mut segments = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            if *part == "*" {
                if index + 1 != parts.len() {
                    return Err(format!("`{from}`: `*` may only be the last segment"));
                }
                segments.push(Segment::Splat);
            } else if let Some(name) = part.strip_prefix(':') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name == "splat" {
                    return Err(format!("`{from}`: `{part}` is not a placeholder (`:name`, letters, digits, `_`)"));
                }
                segments.push(Segment::Placeholder(name.to_string()));
            } else if part.contains('*') {
                return Err(format!("`{from}`: `*` must be a whole segment, as in `/blog/*`"));
            } else {
                segments.push(Segment::Literal((*part).to_string()));
            }
        }
        if normal == "/" {
            segments.clear();
        }
        Ok(Self { segments })
    }

    /// Whether it is a plain path (no placeholder, no splat).
    pub fn is_exact(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The names it captures (`splat` for `*`).
    fn names(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Placeholder(n) => Some(n.as_str()),
                Segment::Splat => Some("splat"),
                Segment::Literal(_) => None,
            })
            .collect()
    }

    /// Match a normalised, decoded path: the captures, or `None`.
    pub fn captures(&self, path: &str) -> Option<Vec<(String, String)>> {
        let parts: Vec<&str> = if path == "/" { Vec::new() } else { path.split('/').skip(1).collect() };
        let mut out = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Splat => {
                    let rest = parts.get(index..).map(|p| p.join("/")).unwrap_or_default();
                    out.push(("splat".to_string(), rest));
                    return Some(out);
                }
                Segment::Literal(l) => {
                    if parts.get(index) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Placeholder(n) => match parts.get(index) {
                    Some(v) if !v.is_empty() => out.push((n.clone(), (*v).to_string())),
                    _ => return None,
                },
            }
        }
        (parts.len() == self.segments.len()).then_some(out)
    }
}

/// `to` with `:splat` and each `:name` replaced by the captures, each through `encodeURI`,
/// in one pass: a placeholder is `:` and the longest run of `[A-Za-z0-9_]` after it, and it
/// is replaced only when that name was captured (so `:8080` stays).
pub fn substitute(to: &str, captures: &[(String, String)]) -> String {
    let mut out = String::with_capacity(to.len());
    let mut rest = to;
    while let Some(at) = rest.find(':') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        let name = &after[..len];
        if let Some((_, value)) = captures.iter().find(|(n, _)| n == name).filter(|_| len > 0) {
            out.push_str(&encode_uri(value));
        } else {
            out.push(':');
            out.push_str(name);
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// JavaScript's `encodeURI`: UTF-8 percent-encoding of all but `A-Z a-z 0-9 ;,/?:@&=+$-_.!~*'()#`.
pub fn encode_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || ";,/?:@&=+$-_.!~*'()#".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// One trailing `/` removed, unless the path is `/`.
pub fn norm(path: &str) -> &str {
    if path.len() > 1 { path.strip_suffix('/').unwrap_or(path) } else { path }
}

/// 32-bit FNV-1a over the UTF-16 code units of `s` (what the router computes in JS).
pub fn fnv1a(s: &str) -> u32 {
    let mut hash: u32 = 2_166_136_261;
    for unit in s.encode_utf16() {
        hash ^= u32::from(unit);
        hash = hash.wrapping_mul(16_777_619);
    }
    hash
}

/// A rule's validation: `from` and `to` and the status; the error names the rule.
pub fn check(rule: &Redirect) -> Result<Pattern, String> {
    let pattern = Pattern::parse(&rule.from).map_err(|e| format!("{}: {e}", rule.origin))?;
    if !STATUSES.contains(&rule.status) {
        return Err(format!(
            "{}: {} is not a status skiff can answer (200 for a rewrite; 301, 302, 303, 307 or 308 for a redirect)",
            rule.origin, rule.status
        ));
    }
    if rule.to.is_empty() || rule.to.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{}: `{}` is not a place to go (a path or a URL, without spaces)", rule.origin, rule.to));
    }
    if rule.status == 200 && !rule.to.starts_with('/') {
        return Err(format!(
            "{}: a 200 rule rewrites to a path of the site; `{}` is not one (proxying to another host is not supported)\nhint: use 301 or 302 to send visitors there",
            rule.origin, rule.to
        ));
    }
    let names = pattern.names();
    let mut rest = rule.to.as_str();
    while let Some(at) = rest.find(':') {
        rest = &rest[at + 1..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let after_scheme = rest.starts_with("//");
        if !name.is_empty() && !after_scheme && !names.contains(&name.as_str()) && name.parse::<u32>().is_err() {
            return Err(format!("{}: `:{name}` in `{}` is not captured by `{}`", rule.origin, rule.to, rule.from));
        }
    }
    Ok(pattern)
}

// ---- _redirects and _headers ----

/// Netlify's `_redirects`, the common subset: `FROM TO [STATUS[!]]`, `#` comments. What
/// skiff cannot do (query or condition matching, other hosts, proxying, custom statuses)
/// is an error naming the line.
pub fn parse_redirects(text: &str, file: &str) -> Result<Vec<Redirect>, String> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let origin = format!("{file}:{}", number + 1);
        let line = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            return Err(format!("{origin}: `{line}` needs a path and where it goes: `/old /new 301`"));
        }
        let from = fields[0];
        if !from.starts_with('/') {
            return Err(format!(
                "{origin}: `{from}` is not a path of the site (rules for other hosts are not supported)"
            ));
        }
        if fields[1].contains('=') && !fields[1].starts_with('/') && !fields[1].contains("://") {
            return Err(format!(
                "{origin}: `{}`: matching on query parameters is not supported\nhint: remove the line, or redirect the path without its query",
                fields[1]
            ));
        }
        let to = fields[1];
        let (status, force) = match fields.get(2) {
            None => (301, false),
            Some(field) => {
                let (digits, force) = field.strip_suffix('!').map_or((*field, false), |d| (d, true));
                let status = digits.parse::<u16>().map_err(|_| {
                    format!("{origin}: `{field}` is not a status (301, 302, 303, 307, 308, or 200 for a rewrite)")
                })?;
                (status, force)
            }
        };
        if let Some(extra) = fields.get(3) {
            return Err(format!(
                "{origin}: `{extra}`: conditions (country, language, role, cookie) are not supported\nhint: remove them, or the line"
            ));
        }
        out.push(Redirect { from: from.to_string(), to: to.to_string(), status, force, origin });
    }
    for rule in &out {
        check(rule)?;
    }
    Ok(out)
}

/// A `_headers` path block: its globs, where it starts, Cache-Control, Content-Type.
type Block = (Vec<String>, String, Option<String>, Option<String>);

/// The headers `_headers` may set: what S3 stores on an object and serves back.
const HEADERS: &[&str] = &["cache-control", "content-type"];

/// Netlify's `_headers`, the common subset: a path (with `*` and `:name`) at the start of a
/// line, then indented `Name: value` lines. Only `Cache-Control` and `Content-Type`: they
/// become `[[rules]]` after those of skiff.toml. Any other header is an error naming the line.
pub fn parse_headers(text: &str, file: &str) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let flush = |current: &mut Option<Block>, out: &mut Vec<Rule>| -> Result<(), String> {
        if let Some((globs, origin, cache_control, content_type)) = current.take() {
            if cache_control.is_none() && content_type.is_none() {
                return Err(format!("{origin}: the path has no header under it"));
            }
            for glob in globs {
                let matcher = compile_glob(&glob).map_err(|e| format!("{origin}: {e}"))?;
                out.push(Rule {
                    matcher,
                    cache_control: cache_control.as_deref().map(HeaderValue::new),
                    content_type: content_type.as_deref().map(HeaderValue::new),
                    gzip: None,
                });
            }
        }
        Ok(())
    };
    for (number, raw) in text.lines().enumerate() {
        let origin = format!("{file}:{}", number + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if !indented {
            flush(&mut current, &mut out)?;
            if !line.starts_with('/') {
                return Err(format!("{origin}: `{line}` is not a path (paths start with `/`, headers are indented)"));
            }
            current = Some((header_globs(line), origin, None, None));
            continue;
        }
        let Some((_, _, cache_control, content_type)) = current.as_mut() else {
            return Err(format!("{origin}: a header before any path"));
        };
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("{origin}: `{line}` is not `Name: value`"));
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        match name.as_str() {
            "cache-control" => *cache_control = Some(value),
            "content-type" => *content_type = Some(value),
            _ => {
                return Err(format!(
                    "{origin}: `{}` is not supported: skiff stores headers on the S3 objects, and of the headers S3 serves back, skiff sets {}\nhint: set other headers with a CloudFront response headers policy, and remove the line",
                    line.split_once(':').map_or(line, |(n, _)| n).trim(),
                    HEADERS.join(" and ")
                ));
            }
        }
    }
    flush(&mut current, &mut out)?;
    Ok(out)
}

/// The key globs a `_headers` path stands for: `*` is any text (also across `/`), `:name`
/// one segment; `/x/` is `x/index.html`; `/x` is `x`, `x.html` and `x/index.html`.
fn header_globs(path: &str) -> Vec<String> {
    let mut glob = String::new();
    for (index, segment) in path.trim_start_matches('/').split('/').enumerate() {
        if index > 0 {
            glob.push('/');
        }
        if segment.starts_with(':') {
            glob.push('*');
        } else {
            for c in segment.chars() {
                match c {
                    '*' => glob.push_str("**"),
                    '?' | '[' | ']' | '{' | '}' | '\\' => {
                        glob.push('\\');
                        glob.push(c);
                    }
                    _ => glob.push(c),
                }
            }
        }
    }
    let glob = glob.replace("****", "**");
    if glob.is_empty() {
        return vec!["index.html".to_string()];
    }
    if glob.ends_with("**") {
        let base = glob.trim_end_matches("**").trim_end_matches('/');
        return if base.is_empty() { vec!["**".to_string()] } else { vec![format!("{base}/**"), base.to_string()] };
    }
    if let Some(dir) = glob.strip_suffix('/') {
        return vec![format!("{dir}/index.html")];
    }
    vec![glob.clone(), format!("{glob}.html"), format!("{glob}/index.html")]
}

// ---- compiling a deploy's routing ----

/// The KVS entries of one deploy, and what the author should hear about.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Key → value, to write before the deploy goes live.
    pub entries: BTreeMap<String, String>,
    /// Rules that never apply, and why.
    pub warnings: Vec<String>,
}

impl Compiled {
    /// What the entries take in the store (keys and values, bytes).
    pub fn bytes(&self) -> u64 {
        self.entries.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }

    /// Make deploy `id` a delta deploy over `base` (`<target>/<id>`): it holds `keys` (those
    /// that differ from the base, deleted ones included) and the router serves every other
    /// key from the base (router/SPEC.md, "Delta deploys").
    pub fn delta(&mut self, id: &str, base: &str, keys: &[&str]) -> Result<(), String> {
        let paths: BTreeMap<String, char> = keys.iter().map(|k| (format!("/{k}"), 'o')).collect();
        let (buckets, filled) = spread(&paths);
        for (bucket, value) in filled {
            self.entries.insert(format!("d:{id}:{bucket}"), value);
        }
        let key = format!("routes:{id}");
        let mut table: serde_json::Value =
            self.entries.get(&key).and_then(|t| serde_json::from_str(t).ok()).unwrap_or_else(|| serde_json::json!({}));
        table["b"] = serde_json::Value::from(base);
        table["m"] = serde_json::Value::from(buckets);
        let text = table.to_string();
        if text.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "the route table of this deploy takes {} bytes with its base, over the router's limit of {MAX_VALUE_BYTES}\nhint: write fewer rules with `*` or `:name`",
                text.len()
            ));
        }
        self.entries.insert(key, text);
        if self.bytes() > MAX_STORE_BYTES {
            return Err(format!(
                "the routing of this deploy takes {} bytes in the router's store, over its limit of {MAX_STORE_BYTES}",
                self.bytes()
            ));
        }
        Ok(())
    }
}

/// An index (page or delta) in as few buckets as keep each under [`BUCKET_ENTRIES`]
/// entries: the bucket count and bucket number → value.
fn spread(paths: &BTreeMap<String, char>) -> (usize, BTreeMap<usize, String>) {
    let mut buckets = paths.len().div_ceil(BUCKET_ENTRIES - 13).max(1);
    loop {
        let filled = index_buckets(paths, buckets);
        if filled.values().all(|v| v.len() <= BUCKET_ENTRIES * 9) {
            return (buckets, filled);
        }
        buckets += buckets / 8 + 1;
    }
}

/// The page types of the page index.
fn pages(keys: &[&str], clean_urls: bool) -> BTreeMap<String, char> {
    let mut out = BTreeMap::new();
    for key in keys {
        let last = key.rsplit('/').next().unwrap_or(key);
        if last == "index.html" {
            let dir = &key[..key.len() - "index.html".len()];
            out.insert(format!("/{dir}"), 'd');
        } else if clean_urls && let Some(stem) = key.strip_suffix(".html") {
            out.insert(format!("/{stem}"), 'c');
        } else if !last.contains('.') {
            out.entry(format!("/{key}")).or_insert('f');
        }
    }
    out
}

/// The page index in `buckets` buckets: bucket number → its value (router/SPEC.md).
pub fn index_buckets(pages: &BTreeMap<String, char>, buckets: usize) -> BTreeMap<usize, String> {
    let mut filled: BTreeMap<usize, String> = BTreeMap::new();
    for (path, kind) in pages {
        let hash = fnv1a(path);
        filled.entry(hash as usize % buckets).or_default().push_str(&format!("{kind}{hash:08x}"));
    }
    filled
}

/// The copies clean URLs add: `x.html` is also stored at `x` (not for `index.html`). An
/// `x` that exists as a file of its own is an error naming both.
pub fn clean_copies(keys: &[&str]) -> Result<Vec<(String, String)>, String> {
    let all: BTreeSet<&str> = keys.iter().copied().collect();
    let mut out = Vec::new();
    for key in keys {
        let last = key.rsplit('/').next().unwrap_or(key);
        if last == "index.html" || last == ".html" {
            continue;
        }
        if let Some(stem) = key.strip_suffix(".html") {
            if all.contains(stem) {
                return Err(format!(
                    "`{key}` and `{stem}` are both files of the site: with `[site] clean_urls`, the page `{key}` is also stored at `{stem}`\nhint: rename one of them, or turn clean_urls off"
                ));
            }
            out.push(((*key).to_string(), stem.to_string()));
        }
    }
    Ok(out)
}

/// The request paths (normalised) that a file of the deploy serves.
fn served(keys: &[&str], clean_urls: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for key in keys {
        out.insert(norm(&format!("/{key}")).to_string());
        if key.rsplit('/').next() == Some("index.html") {
            out.insert(norm(&format!("/{}", &key[..key.len() - "index.html".len()])).to_string());
        } else if clean_urls && let Some(stem) = key.strip_suffix(".html") {
            out.insert(format!("/{stem}"));
        }
    }
    out
}

/// The value of an exact entry for `rule` at `path` (captures substituted).
fn value(rule: &Redirect, pattern: &Pattern, path: &str) -> String {
    let captures = pattern.captures(path).unwrap_or_default();
    format!("{} {}", rule.status, substitute(&rule.to, &captures))
}

/// Compile the routing of deploy `id` whose files are `keys` (site-relative, without the
/// clean-URL copies). Every KVS limit is checked here, before any write; the error names
/// the rule.
pub fn compile(routing: &Routing, id: &str, keys: &[&str]) -> Result<Compiled, String> {
    let mut compiled = Compiled::default();
    let mut rules: Vec<(&Redirect, Pattern)> = Vec::new();
    let mut spa = routing.spa;
    for rule in &routing.rules {
        let pattern = check(rule)?;
        // Netlify's idiom for a single-page app: every path without a file gets the root page.
        if rule.from == "/*" && rule.to == "/index.html" && rule.status == 200 && !rule.force {
            spa = true;
            continue;
        }
        rules.push((rule, pattern));
    }

    // Exact rules, unless an earlier rule (a pattern, or the same path) takes the path first.
    let mut exact: BTreeMap<String, usize> = BTreeMap::new();
    for (index, (rule, pattern)) in rules.iter().enumerate() {
        if !pattern.is_exact() {
            continue;
        }
        let from = norm(&rule.from).to_string();
        if let Some(earlier) = rules[..index].iter().find(|(_, p)| p.captures(&from).is_some()) {
            compiled.warnings.push(format!(
                "{}: `{}` never applies: {} (`{}`) comes first and matches it",
                rule.origin, rule.from, earlier.0.origin, earlier.0.from
            ));
            continue;
        }
        exact.insert(from, index);
    }
    let patterns: Vec<usize> = (0..rules.len()).filter(|i| !rules[*i].1.is_exact()).collect();

    let prefix = format!("r:{id}:");
    for (path, index) in &exact {
        let (rule, pattern) = &rules[*index];
        compiled.entries.insert(format!("{prefix}{path}"), value(rule, pattern, path));
    }
    // Where a file is served, only a forced rule applies (Netlify's shadowing): pin what
    // the router would otherwise get wrong.
    for path in served(keys, routing.clean_urls) {
        let wanted = rules.iter().find(|(r, p)| r.force && p.captures(&path).is_some());
        let router = exact
            .get(&path)
            .map(|i| &rules[*i])
            .or_else(|| patterns.iter().map(|i| &rules[*i]).find(|(_, p)| p.captures(&path).is_some()));
        let same = match (wanted, router) {
            (None, None) => true,
            (Some(a), Some(b)) => std::ptr::eq(a.0, b.0),
            _ => false,
        };
        if same {
            continue;
        }
        let entry = wanted.map_or_else(|| "-".to_string(), |(r, p)| value(r, p, &path));
        if let Some(index) = exact.get(&path)
            && wanted.is_none()
        {
            let rule = rules[*index].0;
            compiled.warnings.push(format!(
                "{}: `{}` never applies: the site has a file there (add `!` to the status, or `force = true`, to redirect anyway)",
                rule.origin, rule.from
            ));
        }
        compiled.entries.insert(format!("{prefix}{path}"), entry);
    }
    for (key, value) in &compiled.entries {
        if key.len() > MAX_KEY_BYTES {
            let path = &key[prefix.len()..];
            let by = exact.get(path).map_or_else(|| format!("a file at `{path}`"), |i| rules[*i].0.origin.clone());
            return Err(format!(
                "{by}: the path `{path}` is too long for the router's store ({} bytes with `{prefix}`; at most {MAX_KEY_BYTES})",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "`{}` leads somewhere too long for the router's store (at most {MAX_VALUE_BYTES} bytes)",
                &key[prefix.len()..]
            ));
        }
    }

    // The page index, when the router must know which pages exist.
    let mut buckets = 0;
    if routing.clean_urls || spa {
        let filled;
        (buckets, filled) = spread(&pages(keys, routing.clean_urls));
        for (bucket, value) in filled {
            compiled.entries.insert(format!("i:{id}:{bucket}"), value);
        }
    }

    let mut table = serde_json::json!({
        "c": u8::from(routing.clean_urls),
        "s": u8::from(spa),
        "n": buckets,
        "p": [],
    });
    for index in &patterns {
        let (rule, _) = &rules[*index];
        table["p"].as_array_mut().expect("p is an array").push(serde_json::json!([
            norm(&rule.from),
            rule.to,
            rule.status
        ]));
        let text = table.to_string();
        if text.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "{}: the rules with `*` or `:name` do not fit in the router's store from this one on ({} bytes; at most {MAX_VALUE_BYTES} for all of them)\nhint: write fewer pattern rules (plain paths have no such limit)",
                rule.origin,
                text.len()
            ));
        }
    }
    compiled.entries.insert(format!("routes:{id}"), table.to_string());
    if compiled.bytes() > MAX_STORE_BYTES {
        return Err(format!(
            "the routing of this deploy takes {} bytes in the router's store, over its limit of {MAX_STORE_BYTES}",
            compiled.bytes()
        ));
    }
    Ok(compiled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, to: &str, status: u16, force: bool) -> Redirect {
        Redirect { from: from.into(), to: to.into(), status, force, origin: format!("test {from}") }
    }

    #[test]
    fn patterns_capture_splats_and_placeholders() {
        let blog = Pattern::parse("/blog/*").unwrap();
        assert_eq!(blog.captures("/blog"), Some(vec![("splat".into(), String::new())]));
        assert_eq!(blog.captures("/blog/a/b"), Some(vec![("splat".into(), "a/b".into())]));
        assert_eq!(blog.captures("/blogs"), None);
        let dated = Pattern::parse("/:year/:slug").unwrap();
        assert_eq!(dated.captures("/2024/x"), Some(vec![("year".into(), "2024".into()), ("slug".into(), "x".into())]));
        assert_eq!(dated.captures("/2024"), None);
        assert_eq!(dated.captures("/2024/x/y"), None);
        assert!(Pattern::parse("/a*/b").is_err());
        assert!(Pattern::parse("/*/b").is_err());
        assert!(Pattern::parse("/:").is_err());
        assert_eq!(substitute("/posts/:splat", &blog.captures("/blog/café x").unwrap()), "/posts/caf%C3%A9%20x");
    }

    #[test]
    fn fnv_matches_the_published_vectors() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn redirects_file_lines() {
        let rules = parse_redirects("# c\n/old /new\n/a/* /b/:splat 302!\n\n/x https://e.org/ 308 # t\n", "_redirects")
            .unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!((rules[0].status, rules[0].force), (301, false));
        assert_eq!((rules[1].status, rules[1].force, rules[1].origin.as_str()), (302, true, "_redirects:3"));
        for (text, needle) in [
            ("/a /b 404\n", "_redirects:1: 404"),
            ("/a id=:id /b 301\n", "query parameters"),
            ("/a /b 302 Country=us\n", "conditions"),
            ("https://old.example.com/* /b\n", "other hosts"),
            ("/api/* https://api.example.com/:splat 200\n", "proxying"),
            ("/a/* /b/:nope\n", "`:nope`"),
            ("/a\n", "needs a path"),
        ] {
            let err = parse_redirects(text, "_redirects").unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn headers_file_blocks() {
        let rules = parse_headers(
            "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n/\n  Content-Type: text/html\n",
            "_headers",
        )
        .unwrap();
        let set = crate::rules::Rules(rules);
        assert!(set.apply("assets/a/b.css").cache_control.is_some());
        assert!(set.apply("index.html").content_type.is_some());
        assert!(set.apply("other.css").cache_control.is_none());
        let err = parse_headers("/*\n  X-Frame-Options: DENY\n", "_headers").unwrap_err();
        assert!(err.starts_with("_headers:2: `X-Frame-Options` is not supported"), "{err}");
        assert!(parse_headers("  Cache-Control: x\n", "_headers").unwrap_err().contains("before any path"));
    }

    #[test]
    fn shadowing_pins_files_and_forced_rules() {
        let routing = Routing {
            clean_urls: false,
            spa: false,
            rules: vec![
                rule("/blog/*", "/posts/:splat", 301, false),
                rule("/blog/keep", "/elsewhere", 301, false),
                rule("/old", "/new", 301, false),
                rule("/forced", "/there", 302, true),
            ],
        };
        let compiled = compile(&routing, "d1", &["blog/a.css", "old/index.html", "forced", "x.html"]).unwrap();
        let e = &compiled.entries;
        assert_eq!(e["r:d1:/blog/a.css"], "-", "a file under an unforced splat is served");
        assert_eq!(e["r:d1:/old"], "-", "an unforced exact rule on a page does not apply");
        assert_eq!(e["r:d1:/forced"], "302 /there");
        assert!(!e.contains_key("r:d1:/blog/keep"), "shadowed by the splat before it");
        assert_eq!(e["routes:d1"], r#"{"c":0,"n":0,"p":[["/blog/*","/posts/:splat",301]],"s":0}"#);
        assert_eq!(compiled.warnings.len(), 2, "{:?}", compiled.warnings);
    }

    #[test]
    fn the_spa_idiom_and_the_index() {
        let routing = Routing { clean_urls: true, spa: false, rules: vec![rule("/*", "/index.html", 200, false)] };
        let keys: Vec<String> = (0..500).map(|i| format!("p{i}.html")).chain(["index.html".into()]).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let compiled = compile(&routing, "d1", &refs).unwrap();
        let table: serde_json::Value = serde_json::from_str(&compiled.entries["routes:d1"]).unwrap();
        assert_eq!(table["s"], 1);
        let n = table["n"].as_u64().unwrap();
        assert!(n >= 5, "{n}");
        let hash = fnv1a("/p7");
        let bucket = &compiled.entries[&format!("i:d1:{}", u64::from(hash) % n)];
        assert!(bucket.contains(&format!("c{hash:08x}")));
        assert!(compiled.entries.iter().filter(|(k, _)| k.starts_with("i:")).all(|(_, v)| v.len() <= MAX_VALUE_BYTES));
    }

    /// A delta deploy's entries, read by the edge: the keys it holds from itself, the rest
    /// from its base, with enough buckets for 2,000 keys.
    #[test]
    fn a_delta_routes_its_keys_to_itself_and_the_rest_to_the_base() {
        let routing = Routing { clean_urls: true, ..Routing::default() };
        let mut held: Vec<String> = (0..2000).map(|i| format!("a/{i}.js")).collect();
        // A clean URL's copy (`about` for `about.html`) is a key of its own.
        held.extend(["about.html", "about", "café.txt"].map(String::from));
        let refs: Vec<&str> = held.iter().map(String::as_str).collect();
        let all: Vec<&str> =
            [&refs[..], &["index.html", "b.css"]].concat().into_iter().filter(|k| *k != "about").collect();
        let mut compiled = compile(&routing, "d2", &all).unwrap();
        compiled.delta("d2", "production/d1", &refs).unwrap();
        let table: serde_json::Value = serde_json::from_str(&compiled.entries["routes:d2"]).unwrap();
        assert_eq!((table["b"].as_str(), table["c"].as_u64()), (Some("production/d1"), Some(1)));
        assert!(table["m"].as_u64().unwrap() >= 20, "{table}");
        assert!(compiled.entries.values().all(|v| v.len() <= MAX_VALUE_BYTES));
        let kvs = |k: &str| compiled.entries.get(k).cloned().or_else(|| (k == "production").then(|| "d2".into()));
        let at = |uri: &str| {
            let request =
                crate::edge::Request { host: Some("example.com".into()), uri: uri.into(), ..Default::default() };
            match crate::edge::viewer_request("", &request, &kvs, &mut || 0.5) {
                crate::edge::Answer::Forward { uri, .. } => uri,
                other @ crate::edge::Answer::Respond { .. } => panic!("{other:?}"),
            }
        };
        assert_eq!(at("/a/1999.js"), "/_deploys/production/d2/a/1999.js");
        assert_eq!(at("/about"), "/_deploys/production/d2/about");
        assert_eq!(at("/caf%C3%A9.txt"), "/_deploys/production/d2/caf%C3%A9.txt");
        assert_eq!(at("/b.css"), "/_deploys/production/d1/b.css");
        assert_eq!(at("/"), "/_deploys/production/d1/index.html");
        // No key held (a no-op deploy): everything from the base.
        let mut none = compile(&Routing::default(), "d3", &["index.html"]).unwrap();
        none.delta("d3", "production/d1", &[]).unwrap();
        assert!(!none.entries.keys().any(|k| k.starts_with("d:")));
    }

    #[test]
    fn limits_name_the_rule() {
        let long = format!("/{}", "a".repeat(600));
        let routing = Routing { rules: vec![rule(&long, "/b", 301, false)], ..Routing::default() };
        let err = compile(&routing, "d1", &[]).unwrap_err();
        assert!(err.starts_with(&format!("test {long}")), "{err}");
        let many: Vec<Redirect> = (0..40).map(|i| rule(&format!("/section-{i}/*"), "/new/:splat", 301, true)).collect();
        let err = compile(&Routing { rules: many, ..Routing::default() }, "d1", &[]).unwrap_err();
        assert!(err.contains("do not fit") && err.starts_with("test /section-"), "{err}");
    }

    #[test]
    fn clean_copies_refuse_a_clash() {
        assert_eq!(clean_copies(&["a.html", "index.html", "d/b.html"]).unwrap().len(), 2);
        assert!(clean_copies(&["a.html", "a"]).unwrap_err().contains("`a.html` and `a`"));
    }
}
