//! Which CloudFront paths to invalidate, decided without I/O: keys → URL paths through the
//! distribution's origin path, URL-encoded the way CloudFront matches them, and compacted
//! into directory wildcards within CloudFront's limits when there are too many.
//! See ../shared/reference/aws.md §4: only non-ASCII and unsafe characters are encoded, and
//! `/dir/*` covers `/dir/` and everything below it.

use std::collections::{BTreeSet, HashMap};

/// Individual paths CloudFront allows in flight per distribution.
pub const MAX_PATHS_IN_FLIGHT: usize = 3000;
/// Wildcard paths CloudFront allows in flight per distribution.
pub const MAX_WILDCARDS_IN_FLIGHT: usize = 15;
/// Paths per month that cost nothing (per AWS account).
pub const FREE_PATHS_PER_MONTH: u64 = 1000;
/// Default for `[cdn] max_paths`.
pub const DEFAULT_MAX_PATHS: usize = 25;

/// How keys become URLs on a distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Origin paths (`""` or `/site`) of the distribution's origins that point at the bucket.
    pub origin_paths: Vec<String>,
    /// `/docs` (no slash) also serves `docs/index.html` (a function or the origin rewrites it).
    pub directory_rewrite: bool,
}

impl Mapping {
    /// The URL paths visitors may have cached for a bucket key (prefix included), encoded.
    /// Empty when no origin reaches the key.
    pub fn paths(&self, full_key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for origin_path in &self.origin_paths {
            let Some(rest) = strip_origin(full_key, origin_path) else { continue };
            if rest == "index.html" {
                out.extend(["/".to_string(), "/index.html".to_string()]);
            } else if let Some(dir) = rest.strip_suffix("/index.html") {
                let dir = encode(dir);
                out.push(format!("/{dir}/"));
                out.push(format!("/{dir}/index.html"));
                if self.directory_rewrite {
                    out.push(format!("/{dir}"));
                }
            } else {
                out.push(format!("/{}", encode(rest)));
            }
        }
        out
    }

    /// The one URL path of an object (its own key), for measuring what a wildcard covers.
    fn object_path(&self, full_key: &str) -> Option<String> {
        self.origin_paths
            .iter()
            .find_map(|origin| strip_origin(full_key, origin).map(|rest| format!("/{}", encode(rest))))
    }
}

fn strip_origin<'a>(full_key: &'a str, origin_path: &str) -> Option<&'a str> {
    let origin = origin_path.trim_matches('/');
    if origin.is_empty() {
        return Some(full_key);
    }
    full_key.strip_prefix(origin)?.strip_prefix('/')
}

/// Whether an S3 origin's domain name is this bucket's (REST, regional, dual-stack or
/// website endpoint).
pub fn origin_is_bucket(domain: &str, bucket: &str) -> bool {
    let domain = domain.to_ascii_lowercase();
    domain.strip_prefix(bucket).is_some_and(|rest| {
        (rest.starts_with(".s3.") || rest.starts_with(".s3-"))
            && (rest.ends_with(".amazonaws.com") || rest.ends_with(".amazonaws.com.cn"))
    })
}

/// What CloudFront wants encoded in a path made from a key (besides every byte outside
/// ASCII): controls, space and RFC 1738's unsafe characters (`"#%<>[\]^`{|}`), and `*`
/// (which would otherwise be a wildcard). Everything else stays as browsers send it.
const UNSAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'*');

/// Percent-encode a key for an invalidation path (see [`UNSAFE`]).
pub fn encode(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, UNSAFE).to_string()
}

/// A path given on the command line, checked and encoded: must start with `/`; `*` only at
/// the end (a wildcard); existing `%XX` escapes are kept.
pub fn user_path(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("`{raw}` must start with `/` (e.g. `/docs/*`)"));
    }
    if raw.len() > 4000 {
        return Err(format!("`{}…` is longer than CloudFront's 4,000 characters", &raw[..40]));
    }
    let (body, wildcard) = match raw.strip_suffix('*') {
        Some(body) => (body, true),
        None => (raw, false),
    };
    if body.contains('*') {
        return Err(format!("`{raw}`: `*` is allowed only at the end of a path"));
    }
    let bytes = body.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes[i] == b'%' && bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if escaped {
            out.push_str(&body[i..i + 3]);
            i += 3;
            continue;
        }
        let char_len = body[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&encode(&body[i..i + char_len]));
        i += char_len;
    }
    if wildcard {
        out.push('*');
    }
    Ok(out)
}

/// What to send: the paths, and how they were arrived at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The paths, sorted.
    pub paths: Vec<String>,
    /// How many are wildcards.
    pub wildcards: usize,
    /// Paths before compaction.
    pub requested: usize,
}

impl Batch {
    /// Paths as given, deduplicated (`--no-compact`).
    pub fn exact(paths: impl IntoIterator<Item = String>) -> Self {
        let paths: Vec<String> = paths.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
        Self { requested: paths.len(), paths, wildcards }
    }
}

/// The paths to invalidate for changed keys: their URL paths, compacted when there are more
/// than `max_paths`, choosing the directory wildcards that needlessly invalidate the fewest
/// unchanged objects (`unchanged` keys), falling back to `/*`.
pub fn for_keys(changed: &[String], unchanged: &[String], mapping: &Mapping, max_paths: usize) -> Batch {
    let paths: Vec<String> = changed.iter().flat_map(|key| mapping.paths(key)).collect();
    let others: Vec<String> = unchanged.iter().filter_map(|key| mapping.object_path(key)).collect();
    compact(paths, &others, max_paths, MAX_WILDCARDS_IN_FLIGHT)
}

/// Fold `paths` into at most `max_paths` paths with at most `max_wildcards` wildcards.
/// `unchanged` are URL paths of objects that need no invalidation: the cost of a fold.
pub fn compact(paths: Vec<String>, unchanged: &[String], max_paths: usize, max_wildcards: usize) -> Batch {
    let paths: Vec<String> = paths.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let requested = paths.len();
    let max_paths = max_paths.clamp(1, MAX_PATHS_IN_FLIGHT);
    let max_wildcards = max_wildcards.max(1);
    if paths.iter().any(|p| p == "/*") {
        return Batch { paths: vec!["/*".into()], wildcards: 1, requested };
    }
    let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
    if paths.len() <= max_paths && wildcards <= max_wildcards {
        return Batch { paths, wildcards, requested };
    }

    let mut tree = Tree::default();
    let homes: Vec<usize> = paths.iter().map(|p| tree.insert_dir(home(p))).collect();
    for (path, &node) in paths.iter().zip(&homes) {
        tree.add(node, 1, usize::from(path.ends_with('*')));
    }
    for path in unchanged {
        tree.add_waste(home(path));
    }
    while tree.nodes[0].items > max_paths || tree.nodes[0].wild > max_wildcards {
        let reduce_items = tree.nodes[0].items > max_paths;
        let best = (0..tree.nodes.len())
            .filter(|&n| !tree.nodes[n].folded && !tree.under_fold(n))
            .filter_map(|n| {
                let node = &tree.nodes[n];
                let saving = if reduce_items { node.items.saturating_sub(1) } else { node.wild.saturating_sub(1) };
                (saving > 0).then_some((n, node.waste as f64 / saving as f64, node.depth, saving))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)).then(b.3.cmp(&a.3)));
        match best {
            Some((n, ..)) => tree.fold(n),
            None => tree.fold(0),
        }
        if tree.nodes[0].folded {
            break;
        }
    }
    let mut out = BTreeSet::new();
    for (n, node) in tree.nodes.iter().enumerate() {
        if node.folded && !tree.under_fold(n) {
            out.insert(format!("{}*", node.dir));
        }
    }
    for (path, &node) in paths.iter().zip(&homes) {
        if !tree.nodes[node].folded && !tree.under_fold(node) {
            out.insert(path.clone());
        }
    }
    let paths: Vec<String> = out.into_iter().collect();
    let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
    Batch { paths, wildcards, requested }
}

/// The directory a path belongs to: itself when it ends with `/`, else its parent; a
/// wildcard belongs to the directory it starts in.
fn home(path: &str) -> &str {
    let path = path.trim_end_matches('*');
    match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    }
}

#[derive(Debug)]
struct Node {
    dir: String,
    parent: Option<usize>,
    depth: usize,
    items: usize,
    wild: usize,
    waste: usize,
    folded: bool,
}

#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
    index: HashMap<String, usize>,
}

impl Default for Tree {
    fn default() -> Self {
        let root = Node { dir: "/".into(), parent: None, depth: 0, items: 0, wild: 0, waste: 0, folded: false };
        Self { nodes: vec![root], index: HashMap::from([("/".to_string(), 0)]) }
    }
}

impl Tree {
    fn insert_dir(&mut self, dir: &str) -> usize {
        if let Some(&n) = self.index.get(dir) {
            return n;
        }
        let parent_dir = home(&dir[..dir.len() - 1]);
        let parent = self.insert_dir(parent_dir);
        let n = self.nodes.len();
        let depth = self.nodes[parent].depth + 1;
        self.nodes.push(Node {
            dir: dir.to_string(),
            parent: Some(parent),
            depth,
            items: 0,
            wild: 0,
            waste: 0,
            folded: false,
        });
        self.index.insert(dir.to_string(), n);
        n
    }

    fn ancestors_and_self(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(n), |&m| self.nodes[m].parent)
    }

    fn add(&mut self, n: usize, items: usize, wild: usize) {
        for m in self.ancestors_and_self(n).collect::<Vec<_>>() {
            self.nodes[m].items += items;
            self.nodes[m].wild += wild;
        }
    }

    /// One unchanged object lives at `dir`: every known directory above it would waste an
    /// invalidation on it when folded.
    fn add_waste(&mut self, dir: &str) {
        let mut dir = dir;
        loop {
            if let Some(&n) = self.index.get(dir) {
                for m in self.ancestors_and_self(n).collect::<Vec<_>>() {
                    self.nodes[m].waste += 1;
                }
                return;
            }
            if dir == "/" {
                return;
            }
            dir = home(&dir[..dir.len() - 1]);
        }
    }

    fn under_fold(&self, n: usize) -> bool {
        self.ancestors_and_self(n).skip(1).any(|m| self.nodes[m].folded)
    }

    fn fold(&mut self, n: usize) {
        let (items, wild) = (self.nodes[n].items, self.nodes[n].wild);
        for m in self.ancestors_and_self(n).collect::<Vec<_>>() {
            self.nodes[m].items = self.nodes[m].items + 1 - items;
            self.nodes[m].wild = self.nodes[m].wild + 1 - wild;
        }
        self.nodes[n].folded = true;
    }
}

/// Paths of this batch beyond the monthly free allowance, given the paths already used.
pub fn billable(used_this_month: u64, paths: u64) -> u64 {
    (used_this_month + paths).saturating_sub(FREE_PATHS_PER_MONTH).min(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> Mapping {
        Mapping { origin_paths: vec![String::new()], directory_rewrite: false }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn keys_to_paths() {
        let cases: &[(&str, bool, &[&str])] = &[
            ("index.html", false, &["/", "/index.html"]),
            ("docs/index.html", false, &["/docs/", "/docs/index.html"]),
            ("docs/index.html", true, &["/docs/", "/docs/index.html", "/docs"]),
            ("docs/guide.html", true, &["/docs/guide.html"]),
            ("assets/app.js", false, &["/assets/app.js"]),
            ("dir with space/é.html", false, &["/dir%20with%20space/%C3%A9.html"]),
            ("a+b/100%.txt", false, &["/a+b/100%25.txt"]),
            ("x/star*.txt", false, &["/x/star%2A.txt"]),
            ("odd/index.html.bak", false, &["/odd/index.html.bak"]),
        ];
        for (key, rewrite, expected) in cases {
            let mapping = Mapping { directory_rewrite: *rewrite, ..mapping() };
            assert_eq!(mapping.paths(key), strings(expected), "{key}");
        }
    }

    #[test]
    fn origin_path_maps_the_prefix_away() {
        let mapping = Mapping { origin_paths: vec!["/site".into()], directory_rewrite: false };
        assert_eq!(mapping.paths("site/index.html"), strings(&["/", "/index.html"]));
        assert_eq!(mapping.paths("site/docs/a.css"), strings(&["/docs/a.css"]));
        assert_eq!(mapping.paths("other/a.css"), Vec::<String>::new(), "not reachable through this origin");
        assert_eq!(mapping.paths("sitemap.xml"), Vec::<String>::new());
    }

    #[test]
    fn s3_origin_domains() {
        for domain in [
            "my.site.s3.amazonaws.com",
            "my.site.s3.eu-west-1.amazonaws.com",
            "my.site.s3-website-eu-west-1.amazonaws.com",
            "my.site.s3-website.eu-west-1.amazonaws.com",
            "my.site.s3.dualstack.eu-west-1.amazonaws.com",
        ] {
            assert!(origin_is_bucket(domain, "my.site"), "{domain}");
        }
        for domain in ["other.s3.amazonaws.com", "my.site.example.com", "my.sitex.s3.amazonaws.com"] {
            assert!(!origin_is_bucket(domain, "my.site"), "{domain}");
        }
    }

    #[test]
    fn user_paths_are_checked_and_encoded_once() {
        assert_eq!(user_path("/*").unwrap(), "/*");
        assert_eq!(user_path("/docs/*").unwrap(), "/docs/*");
        assert_eq!(user_path("/a b/é").unwrap(), "/a%20b/%C3%A9");
        assert_eq!(user_path("/already%20encoded").unwrap(), "/already%20encoded");
        assert_eq!(user_path("/100%").unwrap(), "/100%25");
        assert!(user_path("docs/").unwrap_err().contains("start with `/`"));
        assert!(user_path("/a*/b").unwrap_err().contains("only at the end"));
    }

    #[test]
    fn one_changed_file_is_one_path() {
        let batch = for_keys(&strings(&["assets/app.js"]), &strings(&["index.html"]), &mapping(), 25);
        assert_eq!(batch.paths, ["/assets/app.js"]);
        assert_eq!((batch.wildcards, batch.requested), (0, 1));
    }

    #[test]
    fn two_hundred_changes_in_one_directory_fold_into_its_wildcard() {
        let changed: Vec<String> = (0..200).map(|i| format!("blog/posts/p{i}.html")).collect();
        let unchanged = strings(&["index.html", "blog/index.html", "assets/app.css"]);
        let batch = for_keys(&changed, &unchanged, &mapping(), 25);
        assert_eq!(batch.paths, ["/blog/posts/*"]);
        assert_eq!((batch.wildcards, batch.requested), (1, 200));
    }

    #[test]
    fn spread_changes_fold_where_the_fewest_unchanged_objects_are() {
        // 30 changes in /a/ (which has 1000 unchanged files), 30 in /b/ (nothing unchanged),
        // 2 at the root: with room for 35 paths, fold /b/ and keep /a/'s paths exact.
        let mut changed: Vec<String> = (0..30).map(|i| format!("a/{i}.html")).collect();
        changed.extend((0..30).map(|i| format!("b/{i}.html")));
        changed.extend(strings(&["x.css", "y.css"]));
        let unchanged: Vec<String> = (0..1000).map(|i| format!("a/old{i}.html")).collect();
        let batch = for_keys(&changed, &unchanged, &mapping(), 35);
        assert!(batch.paths.contains(&"/b/*".to_string()), "{:?}", batch.paths);
        assert!(!batch.paths.iter().any(|p| p.starts_with("/a/*")), "{:?}", batch.paths);
        assert_eq!(batch.paths.len(), 33);
    }

    #[test]
    fn changes_everywhere_fall_back_to_everything() {
        let changed: Vec<String> = (0..40).map(|i| format!("d{i}/x.html")).collect();
        let batch = for_keys(&changed, &[], &mapping(), 10);
        assert_eq!(batch.paths, ["/*"], "40 directories cannot fit 10 paths with 15 wildcards");
    }

    #[test]
    fn wildcards_stay_within_fifteen() {
        let changed: Vec<String> = (0..20).flat_map(|d| (0..5).map(move |f| format!("s/d{d}/f{f}.css"))).collect();
        let batch = for_keys(&changed, &strings(&["index.html"]), &mapping(), 25);
        assert!(batch.wildcards <= MAX_WILDCARDS_IN_FLIGHT && batch.paths.len() <= 25, "{:?}", batch.paths);
        assert_eq!(batch.paths, ["/s/*"]);
    }

    #[test]
    fn deletes_and_directory_indexes_fold_with_their_directory() {
        let changed = strings(&["docs/index.html", "docs/a.html", "docs/b.html"]);
        let batch = for_keys(&changed, &strings(&["index.html"]), &mapping(), 2);
        assert_eq!(batch.paths, ["/docs/*"], "`/docs/*` covers `/docs/` itself");
    }

    #[test]
    fn root_index_and_unicode_in_a_compacted_batch() {
        let changed = strings(&["index.html", "ü/1.html", "ü/2.html", "ü/3.html"]);
        let batch = for_keys(&changed, &[], &mapping(), 3);
        assert_eq!(batch.paths, ["/", "/%C3%BC/*", "/index.html"]);
    }

    #[test]
    fn exact_keeps_paths_as_given() {
        let batch = Batch::exact(strings(&["/b", "/a/*", "/b"]));
        assert_eq!(batch.paths, ["/a/*", "/b"]);
        assert_eq!(batch.wildcards, 1);
    }

    #[test]
    fn billing() {
        assert_eq!(billable(0, 30), 0);
        assert_eq!(billable(990, 30), 20);
        assert_eq!(billable(5000, 30), 30);
    }
}
