//! The compiled `[deploy] exclude` globs and `[[rules]]`, and the `[[redirects]]` entries:
//! what the scan, the plan and the router apply. Built by `config`; imports only the
//! object vocabulary.

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::object::HeaderValue;

/// One `[[redirects]]` entry.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The path that is redirected, e.g. `/old/`.
    pub from: String,
    /// Where it goes.
    pub to: String,
    /// 301, 302, 303, 307 or 308; 200 rewrites.
    pub status: u16,
    /// Applies even where the site has a file (Netlify's `!`).
    pub force: bool,
    /// Where it was written, for messages: `[[redirects]][2]`, `_redirects:7`.
    pub origin: String,
}

/// One `[[rules]]` entry, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) matcher: GlobMatcher,
    /// `Cache-Control` for matching keys.
    pub cache_control: Option<HeaderValue>,
    /// `Content-Type` for matching keys, instead of the one from the extension.
    pub content_type: Option<HeaderValue>,
    /// Store matching files gzip-compressed with `Content-Encoding: gzip`.
    pub gzip: Option<bool>,
}

/// The `[deploy] exclude` globs: matching keys are neither published nor deleted. Beside
/// them, the default guard against publishing secrets and tooling by accident: a key with
/// a segment that starts with `.` (`.env`, `.env.local`, `.git/`, `.DS_Store`; but
/// `.well-known/`) or that is `node_modules`, unless `[deploy] include` names it.
#[derive(Debug, Clone)]
pub struct Excludes {
    files: GlobSet,
    /// From patterns ending in `/**`: directories whose whole content is excluded, so the
    /// scan need not walk them (nor follow links inside them).
    dirs: GlobSet,
    /// Whether the default guard is on.
    guard: bool,
    /// `[deploy] include`: keys the guard lets through.
    include: GlobSet,
    /// Whether `include` has any pattern (then guarded directories are walked, file by file).
    includes_any: bool,
}

impl Excludes {
    /// Compile globs; the error names the bad one. The default guard is off.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut files = GlobSetBuilder::new();
        let mut dirs = GlobSetBuilder::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            files.add(compile_glob(pattern)?.glob().clone());
            if let Some(dir) = pattern.strip_suffix("/**").filter(|d| !d.is_empty()) {
                dirs.add(compile_glob(dir)?.glob().clone());
            }
        }
        Ok(Self {
            files: files.build().map_err(|e| e.to_string())?,
            dirs: dirs.build().map_err(|e| e.to_string())?,
            guard: false,
            include: GlobSet::empty(),
            includes_any: false,
        })
    }

    /// The default guard on, except for keys matching `include` (an error names a bad glob).
    pub fn guarded<S: AsRef<str>>(mut self, include: &[S]) -> Result<Self, (String, String)> {
        let mut set = GlobSetBuilder::new();
        for pattern in include {
            let pattern = pattern.as_ref();
            set.add(compile_glob(pattern).map_err(|e| (pattern.to_string(), e))?.glob().clone());
        }
        self.include = set.build().map_err(|e| (String::new(), e.to_string()))?;
        self.includes_any = !include.is_empty();
        self.guard = true;
        Ok(self)
    }

    /// Nothing excluded.
    pub fn none() -> Self {
        Self {
            files: GlobSet::empty(),
            dirs: GlobSet::empty(),
            guard: false,
            include: GlobSet::empty(),
            includes_any: false,
        }
    }

    /// Whether a key (file or link) is excluded, by the globs or by the default guard.
    pub fn matches(&self, key: &str) -> bool {
        self.files.is_match(key) || self.by_default(key)
    }

    /// Whether the default guard (and not `include`) leaves a key out.
    pub fn by_default(&self, key: &str) -> bool {
        self.guard && hidden_or_vendored(key) && !self.include.is_match(key)
    }

    /// Whether everything under directory `key` is excluded.
    pub fn covers_dir(&self, key: &str) -> bool {
        self.dirs.is_match(key) || self.covers_dir_by_default(key)
    }

    /// Whether the default guard leaves out all of directory `key` (without walking it).
    pub fn covers_dir_by_default(&self, key: &str) -> bool {
        self.guard && !self.includes_any && hidden_or_vendored(key) && !self.dirs.is_match(key)
    }
}

/// Whether a key has a segment the default guard leaves out: hidden (`.env`, `.git`), but
/// `.well-known` (RFC 8615: ACME, security.txt, app links), or `node_modules`.
pub fn hidden_or_vendored(key: &str) -> bool {
    key.split('/').any(|segment| (segment.starts_with('.') && segment != ".well-known") || segment == "node_modules")
}

/// The header settings that rules give one key; `None` where no rule says anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOutcome {
    /// From the first rule with `cache_control` that matches.
    pub cache_control: Option<HeaderValue>,
    /// From the first rule with `content_type` that matches.
    pub content_type: Option<HeaderValue>,
    /// From the first rule with `gzip` that matches.
    pub gzip: bool,
}

/// The ordered `[[rules]]`: for each attribute, the first matching rule that sets it wins.
#[derive(Debug, Clone, Default)]
pub struct Rules(pub(crate) Vec<Rule>);

impl Rules {
    /// What the rules say about `key` (relative to the site root, `/`-separated).
    pub fn apply(&self, key: &str) -> RuleOutcome {
        let mut out = RuleOutcome::default();
        let mut gzip = None;
        for rule in self.0.iter().filter(|rule| rule.matcher.is_match(key)) {
            if out.cache_control.is_none() {
                out.cache_control.clone_from(&rule.cache_control);
            }
            if out.content_type.is_none() {
                out.content_type.clone_from(&rule.content_type);
            }
            if gzip.is_none() {
                gzip = rule.gzip;
            }
        }
        out.gzip = gzip.unwrap_or(false);
        out
    }
}

/// A glob as skiff reads it: `/` is a separator `*` does not cross, `\\` escapes.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.is_empty() {
        return Err("the glob is empty".to_string());
    }
    let glob: Glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("bad glob `{pattern}`: {}", e.kind()))?;
    Ok(glob.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_leaves_out_hidden_and_vendored_keys_but_well_known() {
        for key in
            [".env", ".env.local", "a/.env", ".git/config", "a/b/.DS_Store", "node_modules/x.js", "a/node_modules/b"]
        {
            assert!(hidden_or_vendored(key), "{key}");
        }
        for key in ["index.html", ".well-known/security.txt", "a/.well-known/x", "env", "a.env", "node_modules2/x"] {
            assert!(!hidden_or_vendored(key), "{key}");
        }
        let guarded = Excludes::new(&["**/*.tmp"]).unwrap().guarded(&["assets/.keep"]).unwrap();
        assert!(guarded.matches(".env") && guarded.by_default(".env"));
        assert!(guarded.matches("a.tmp") && !guarded.by_default("a.tmp"));
        assert!(!guarded.matches("assets/.keep"), "`include` lets it through");
        assert!(!guarded.covers_dir_by_default(".git"), "with an include, guarded directories are walked");
        let plain = Excludes::new(&[] as &[&str]).unwrap().guarded(&[] as &[&str]).unwrap();
        assert!(plain.covers_dir(".git") && plain.covers_dir("node_modules") && !plain.covers_dir(".well-known"));
        assert!(!Excludes::new(&[] as &[&str]).unwrap().matches(".env"), "the guard is off until asked for");
    }
}
