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
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
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

/// The `[deploy] exclude` globs: matching keys are neither published nor deleted.
#[derive(Debug, Clone)]
pub struct Excludes {
    files: GlobSet,
    /// From patterns ending in `/**`: directories whose whole content is excluded, so the
    /// scan need not walk them (nor follow links inside them).
    dirs: GlobSet,
}

impl Excludes {
    /// Compile globs; the error names the bad one.
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
        Ok(Self { files: files.build().map_err(|e| e.to_string())?, dirs: dirs.build().map_err(|e| e.to_string())? })
    }

    /// Nothing excluded.
    pub fn none() -> Self {
        Self { files: GlobSet::empty(), dirs: GlobSet::empty() }
    }

    /// Whether a key (file or link) is excluded.
    pub fn matches(&self, key: &str) -> bool {
        self.files.is_match(key)
    }

    /// Whether everything under directory `key` is excluded.
    pub fn covers_dir(&self, key: &str) -> bool {
        self.dirs.is_match(key)
    }
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
