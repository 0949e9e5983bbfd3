//! `skiff.toml` and command-line flags → one validated [`Config`], then per-command settings
//! such as [`PublishSettings`]. Flags override the file, the file overrides defaults.
//! Every problem is a [`ConfigError`] (exit code 2) that names the file, key or flag.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::time::Duration;

use crate::cli::{GlobalArgs, InvalidateArgs, ProvisionArgs, PublishArgs, StatusArgs, WaitArgs};
use crate::object::HeaderValue;
use crate::rules::compile_glob;
use crate::rules::{Excludes, Redirect, Rule, Rules};

/// The file read when `-c` is not given and it exists in the current directory.
pub const DEFAULT_FILE: &str = "skiff.toml";
/// Default for `[deploy] concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// Default for `[deploy] max_deletes`.
pub const DEFAULT_MAX_DELETES: u64 = 500;
/// Default for `[deploy] keep`.
pub const DEFAULT_KEEP: u32 = 10;
/// Default for `[deploy] keep_previews` (per preview).
pub const DEFAULT_KEEP_PREVIEWS: u32 = 3;
/// Default for `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_mins(5);
/// How long `--verify` retries by default.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_mins(2);
/// Default for `[deploy] multipart_threshold_mib`.
pub const DEFAULT_MULTIPART_THRESHOLD_MIB: u64 = 64;
/// Default for `[deploy] exclude`.
/// (Dotfiles, dot-directories and `node_modules/` are left out besides, by the guard in
/// `rules::Excludes`, unless `[deploy] include` names them.)
pub const DEFAULT_EXCLUDES: &[&str] = &["**/Thumbs.db", "**/desktop.ini"];

/// The nearest `skiff.toml`: `./skiff.toml`, else the first in a parent directory.
fn find_upwards() -> Option<PathBuf> {
    if Path::new(DEFAULT_FILE).is_file() {
        return Some(PathBuf::from(DEFAULT_FILE));
    }
    let here = std::env::current_dir().ok()?;
    here.ancestors().skip(1).map(|dir| dir.join(DEFAULT_FILE)).find(|path| path.is_file())
}

/// A configuration or usage error: nothing was attempted, the exit code is 2.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
}

impl ConfigError {
    /// An error with a message that names its subject.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Defaults,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "`{}`", path.display()),
            Source::Defaults => f.write_str("the defaults"),
        }
    }
}

// ---- the file format (serde); every table rejects unknown keys ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    site: SiteSection,
    domain: Option<DomainSection>,
    #[serde(default)]
    deploy: DeploySection,
    #[serde(default)]
    cdn: CdnSection,
    #[serde(default)]
    rules: Vec<RuleSection>,
    #[serde(default)]
    redirects: Vec<RedirectSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    dir: Option<PathBuf>,
    bucket: Option<String>,
    region: Option<String>,
    mode: Option<Mode>,
    prefix: Option<String>,
    distribution_id: Option<String>,
    checksums: Option<bool>,
    url: Option<String>,
    clean_urls: Option<bool>,
    spa: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainSection {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    previews: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploySection {
    concurrency: Option<usize>,
    max_deletes: Option<u64>,
    keep: Option<u32>,
    keep_previews: Option<u32>,
    hash_cache: Option<bool>,
    exclude: Option<Vec<String>>,
    include: Option<Vec<String>>,
    delete_after: Option<String>,
    multipart_threshold_mib: Option<u64>,
    verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CdnSection {
    max_paths: Option<usize>,
    directory_rewrite: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    #[serde(rename = "match")]
    pattern: String,
    cache_control: Option<String>,
    content_type: Option<String>,
    gzip: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectSection {
    from: String,
    to: String,
    #[serde(default = "default_redirect_status")]
    status: u16,
    #[serde(default)]
    force: bool,
}

fn default_redirect_status() -> u16 {
    301
}

// ---- the validated configuration ----

/// How a publish reaches the live site (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Atomic when the bucket holds skiff's provision state, else in-place.
    #[default]
    Auto,
    /// Immutable deploys switched by the router (needs `skiff provision`).
    Atomic,
    /// Objects overwritten where they are, in any bucket.
    InPlace,
}

/// The domain section, used by provision and previews.
#[derive(Debug, Clone)]
pub struct Domain {
    /// The apex or main host name, e.g. `example.com`.
    pub name: String,
    /// Other names served by the same site, e.g. `www.example.com`.
    pub aliases: Vec<String>,
    /// The parent of preview hosts, e.g. `preview.example.com`.
    pub previews: Option<String>,
}

/// Everything from `skiff.toml` and the global flags, validated.
#[derive(Debug, Clone)]
pub struct Config {
    source: Source,
    /// The directory relative paths in the file are resolved against.
    base_dir: PathBuf,
    /// `[site] dir`, resolved against the file's directory.
    pub site_dir: Option<PathBuf>,
    /// `[site] url`: where people see the site, when skiff cannot tell (in place).
    pub site_url: Option<String>,
    /// `[site] bucket` (or `--bucket` later).
    pub bucket: Option<String>,
    /// `--region`, else `[site] region`.
    pub region: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `[site] mode`.
    pub mode: Mode,
    /// `[site] prefix`, normalised (empty, or ends with `/`).
    pub prefix: String,
    /// `[site] distribution_id`.
    pub distribution_id: Option<String>,
    /// `[site] checksums`: uploads carry checksums (default); `false` for an S3-compatible
    /// store that refuses the headers.
    pub checksums: bool,
    /// `[domain]`.
    pub domain: Option<Domain>,
    /// `[deploy] concurrency`.
    pub concurrency: usize,
    /// `[deploy] max_deletes`.
    pub max_deletes: u64,
    /// `[deploy] keep`.
    pub keep: u32,
    /// `[deploy] keep_previews`.
    pub keep_previews: u32,
    /// `[deploy] hash_cache`.
    pub hash_cache: bool,
    /// `[deploy] exclude`, compiled.
    pub exclude: Excludes,
    /// `[deploy] delete_after`.
    pub delete_after: Option<Duration>,
    /// `[deploy] multipart_threshold_mib`, in bytes.
    pub multipart_threshold: u64,
    /// `[cdn] max_paths`: more changed paths than this are compacted into wildcards.
    pub max_paths: usize,
    /// `[cdn] directory_rewrite`: `/docs` (no slash) also serves `docs/index.html`.
    pub directory_rewrite: bool,
    /// `[[rules]]`.
    pub rules: Rules,
    /// `[[redirects]]`.
    pub redirects: Vec<Redirect>,
    /// `[deploy] verify`.
    pub verify: bool,
    /// `[site] clean_urls`.
    pub clean_urls: bool,
    /// `[site] spa`.
    pub spa: bool,
}

/// Where requests go and as whom.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// `--profile`; `None` uses the standard chain (`AWS_PROFILE`, then `default`).
    pub profile: Option<String>,
    /// `--region` or `[site] region`; `None` uses the standard chain, then us-east-1.
    pub region: Option<String>,
    /// `--endpoint-url`; `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_S3` are honoured by the SDK.
    pub endpoint_url: Option<String>,
    /// `[site] checksums = false`: uploads carry no checksum headers.
    pub no_checksums: bool,
}

/// What `skiff provision` works from (validated by `config`).
#[derive(Debug, Clone)]
pub struct ProvisionSettings {
    /// The bucket.
    pub bucket: String,
    /// Its region (`None`: the AWS configuration's).
    pub region: Option<String>,
    /// The site's domain name.
    pub domain: String,
    /// More names for the site.
    pub aliases: Vec<String>,
    /// The preview domain (`<slug>.<previews>`).
    pub previews: Option<String>,
    /// `[[redirects]]`.
    pub redirects: Vec<Redirect>,
    /// Where requests go.
    pub aws: AwsTarget,
    /// Print the steps only.
    pub dry_run: bool,
    /// No question before applying.
    pub yes: bool,
    /// How long to wait for the certificate.
    pub certificate_timeout: Duration,
}

impl ProvisionSettings {
    /// Every name the distribution serves: the domain, the aliases, `*.<previews>`.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = vec![self.domain.clone()];
        hosts.extend(self.aliases.iter().cloned());
        hosts.extend(self.previews.iter().map(|p| format!("*.{p}")));
        let mut seen = BTreeSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        hosts
    }
}

/// What `skiff status` works from.
#[derive(Debug, Clone)]
pub struct StatusSettings {
    /// The bucket.
    pub bucket: String,
    /// Where requests go.
    pub aws: AwsTarget,
}

/// Which resources a policy is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct IamSettings {
    /// `--bucket`; every bucket (`*`) when not given.
    pub bucket: Option<String>,
    /// `--distribution-id`; every distribution when not given.
    pub distribution_id: Option<String>,
}

/// What `skiff publish` needs, with flags applied.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// The directory to publish.
    pub dir: PathBuf,
    /// Whether `[site] dir` in the configuration names it (not only the command line): a
    /// project root is published only then.
    pub dir_from_config: bool,
    /// `[site] url`.
    pub url: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// Key prefix: empty, or ends with `/`.
    pub prefix: String,
    /// Region, profile and endpoint.
    pub aws: AwsTarget,
    /// Print the plan, write nothing.
    pub dry_run: bool,
    /// Never prompt.
    pub yes: bool,
    /// Re-upload everything.
    pub force: bool,
    /// `--no-delete`: leave objects whose files are gone.
    pub no_delete: bool,
    /// `[deploy] delete_after`: how long objects whose files are gone stay (in place).
    pub delete_after: Option<Duration>,
    /// Abort before writing when the plan deletes more.
    pub max_deletes: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Files at least this large go up as multipart uploads.
    pub multipart_threshold: u64,
    /// Excluded keys.
    pub exclude: Excludes,
    /// Header rules.
    pub rules: Rules,
    /// Clean URLs, SPA and `[[redirects]]` (`_redirects` is read with the site).
    pub routing: crate::routes::Routing,
    /// One JSON document on stdout.
    pub json: bool,
    /// The CloudFront invalidation after the upload, when a distribution is set and
    /// `--no-invalidate` is not given.
    pub cdn: Option<CdnSettings>,
    /// `[site] mode`.
    pub mode: Mode,
    /// `--preview BRANCH`.
    pub preview: Option<String>,
    /// What a provisioned site needs beyond the publish itself.
    pub site: SiteSettings,
    /// `--hash-cache` or `[deploy] hash_cache`: trust (size, mtime, inode) for unchanged files.
    pub hash_cache: bool,
    /// `--verify` or `[deploy] verify`: how long to retry the check through the site's URL.
    pub verify: Option<Duration>,
    /// `--canary PERCENT`.
    pub canary: Option<u8>,
}

/// Settings of `skiff serve`.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The site directory.
    pub dir: PathBuf,
    /// The port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// Excluded keys.
    pub exclude: Excludes,
    /// Header rules.
    pub rules: Rules,
    /// Clean URLs, SPA and `[[redirects]]`.
    pub routing: crate::routes::Routing,
}

/// Settings of the commands that work on a provisioned site (atomic publish, rollback,
/// deploys, previews).
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// The bucket.
    pub bucket: String,
    /// Where requests go.
    pub aws: AwsTarget,
    /// `[domain]`, for URLs.
    pub domain: Option<Domain>,
    /// How long to wait for the deploy lock.
    pub lock_timeout: Duration,
    /// Deploys kept for production.
    pub keep: usize,
    /// Deploys kept per preview.
    pub keep_previews: usize,
    /// `--json`.
    pub json: bool,
}

/// How a publish invalidates its distribution.
#[derive(Debug, Clone)]
pub struct CdnSettings {
    /// The distribution.
    pub distribution_id: String,
    /// Compaction threshold.
    pub max_paths: usize,
    /// Invalidate `/docs` too for `docs/index.html`.
    pub directory_rewrite: bool,
    /// Wait this long for completion (`--wait`).
    pub wait: Option<Duration>,
}

/// What `skiff invalidate` needs.
#[derive(Debug, Clone)]
pub struct InvalidateSettings {
    /// The distribution.
    pub distribution_id: String,
    /// Paths, checked and encoded.
    pub paths: Vec<String>,
    /// Compact when over `max_paths`.
    pub compact: bool,
    /// Compaction threshold.
    pub max_paths: usize,
    /// Invalidate `/docs` too for `docs/index.html` (for compaction costs).
    pub directory_rewrite: bool,
    /// Wait this long for completion.
    pub wait: Option<Duration>,
    /// Send nothing.
    pub dry_run: bool,
    /// The site's bucket, when known (its manifest prices wildcards).
    pub bucket: Option<String>,
    /// The site's prefix.
    pub prefix: String,
    /// Region, profile and endpoint.
    pub aws: AwsTarget,
}

impl Config {
    /// Read `-c FILE`, else the nearest `skiff.toml` in the working directory or above it
    /// (as cargo finds `Cargo.toml`), else use the defaults; apply the global flags.
    pub fn load(global: &GlobalArgs) -> Result<Self, ConfigError> {
        let (source, file) = match &global.config {
            Some(path) => (Source::File(path.clone()), Some(read_file(path)?)),
            None => match find_upwards() {
                Some(path) => (Source::File(path.clone()), Some(read_file(&path)?)),
                None => (Source::Defaults, None),
            },
        };
        let base_dir = match &source {
            Source::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
            Source::Defaults => PathBuf::new(),
        };
        let mut config = Self::from_file(file.unwrap_or_default(), source, base_dir)?;
        if let Some(region) = &global.region {
            config.region = Some(validate_region(region, "`--region`")?);
        }
        config.profile.clone_from(&global.profile);
        if let Some(url) = &global.endpoint_url {
            config.endpoint_url = Some(validate_endpoint(url)?);
        }
        Ok(config)
    }

    /// Parse the text of a configuration file (for tests and `load`).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file = parse_toml(text, path)?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_file(file, Source::File(path.to_path_buf()), base_dir)
    }

    fn from_file(file: FileConfig, source: Source, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let err = |key: &str, what: String| ConfigError::new(format!("invalid `{key}` in {source}: {what}"));
        let site = file.site;
        if let Some(bucket) = &site.bucket {
            validate_bucket(bucket).map_err(|what| err("site.bucket", what))?;
        }
        let region = match &site.region {
            Some(region) => Some(validate_region(region, &format!("`site.region` in {source}"))?),
            None => None,
        };
        let prefix = normalize_prefix(site.prefix.as_deref().unwrap_or("")).map_err(|what| err("site.prefix", what))?;
        if let Some(id) = &site.distribution_id
            && !id.is_empty()
            && !id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(err(
                "site.distribution_id",
                format!("`{id}` is not a CloudFront distribution id (like `E2QWRUHAPOMQZL`)"),
            ));
        }
        let domain = match file.domain {
            Some(domain) => {
                for (key, name) in std::iter::once(("domain.name", &domain.name))
                    .chain(domain.aliases.iter().map(|a| ("domain.aliases", a)))
                    .chain(domain.previews.iter().map(|p| ("domain.previews", p)))
                {
                    validate_hostname(name).map_err(|what| err(key, what))?;
                }
                Some(Domain { name: domain.name, aliases: domain.aliases, previews: domain.previews })
            }
            None => None,
        };
        let deploy = file.deploy;
        let concurrency = deploy.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        validate_concurrency(concurrency).map_err(|what| err("deploy.concurrency", what))?;
        let threshold_mib = deploy.multipart_threshold_mib.unwrap_or(DEFAULT_MULTIPART_THRESHOLD_MIB);
        if !(5..=5 * 1024).contains(&threshold_mib) {
            return Err(err(
                "deploy.multipart_threshold_mib",
                format!("{threshold_mib} is out of range: S3 parts are 5 MiB to 5 GiB, so use 5 to 5120"),
            ));
        }
        let excludes = deploy.exclude.unwrap_or_else(|| DEFAULT_EXCLUDES.iter().map(ToString::to_string).collect());
        let exclude = Excludes::new(&excludes)
            .map_err(|what| err("deploy.exclude", what))?
            .guarded(&deploy.include.unwrap_or_default())
            .map_err(|(pattern, what)| err("deploy.include", format!("`{pattern}`: {what}")))?;
        let delete_after =
            match &deploy.delete_after {
                None => None,
                Some(text) => Some(parse_duration(text).ok_or_else(|| {
                    err("deploy.delete_after", format!("`{text}` is not a duration like `7d` or `36h`"))
                })?),
            };
        let max_paths = file.cdn.max_paths.unwrap_or(crate::invalidation::DEFAULT_MAX_PATHS);
        if !(1..=crate::invalidation::MAX_PATHS_IN_FLIGHT).contains(&max_paths) {
            return Err(err(
                "cdn.max_paths",
                format!("{max_paths} is out of range: CloudFront takes 1 to 3000 paths in flight"),
            ));
        }
        let mut rules = Vec::new();
        for (index, rule) in file.rules.into_iter().enumerate() {
            let key = format!("rules[{index}]");
            let matcher = compile_glob(&rule.pattern).map_err(|what| err(&format!("{key}.match"), what))?;
            if rule.cache_control.is_none() && rule.content_type.is_none() && rule.gzip.is_none() {
                return Err(err(
                    &key,
                    format!(
                        "the rule for `{}` sets nothing: give it `cache_control`, `content_type` or `gzip`",
                        rule.pattern
                    ),
                ));
            }
            if let Some(value) = &rule.cache_control {
                validate_header(value).map_err(|what| err(&format!("{key}.cache_control"), what))?;
            }
            if let Some(value) = &rule.content_type {
                validate_header(value).map_err(|what| err(&format!("{key}.content_type"), what))?;
                if !value.contains('/') {
                    return Err(err(
                        &format!("{key}.content_type"),
                        format!("`{value}` is not a media type like `text/html`"),
                    ));
                }
            }
            rules.push(Rule {
                matcher,
                cache_control: rule.cache_control.as_deref().map(HeaderValue::new),
                content_type: rule.content_type.as_deref().map(HeaderValue::new),
                gzip: rule.gzip,
            });
        }
        let mut redirects = Vec::new();
        for (index, redirect) in file.redirects.into_iter().enumerate() {
            let key = format!("redirects[{index}]");
            let rule = Redirect {
                from: redirect.from,
                to: redirect.to,
                status: redirect.status,
                force: redirect.force,
                origin: format!("[[redirects]] {}", index + 1),
            };
            if let Err(message) = crate::routes::check(&rule) {
                let field = if message.contains("is not a status") {
                    "status"
                } else if message.contains(&format!("`{}`", rule.from)) && !message.contains(" in `") {
                    "from"
                } else {
                    "to"
                };
                let message = message.strip_prefix(&format!("{}: ", rule.origin)).unwrap_or(&message).to_string();
                return Err(err(&format!("{key}.{field}"), message));
            }
            redirects.push(rule);
        }
        if let Some(url) = &site.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(err("site.url", format!("`{url}` is not an http(s) URL, e.g. `https://www.example.com/`")));
        }
        Ok(Self {
            site_url: site.url,
            site_dir: site.dir.map(|dir| base_dir.join(dir)),
            source,
            base_dir,
            bucket: site.bucket,
            region,
            profile: None,
            endpoint_url: None,
            mode: site.mode.unwrap_or_default(),
            prefix,
            distribution_id: site.distribution_id.filter(|id| !id.is_empty()),
            checksums: site.checksums.unwrap_or(true),
            domain,
            concurrency,
            max_deletes: deploy.max_deletes.unwrap_or(DEFAULT_MAX_DELETES),
            keep: deploy.keep.unwrap_or(DEFAULT_KEEP),
            keep_previews: deploy.keep_previews.unwrap_or(DEFAULT_KEEP_PREVIEWS),
            hash_cache: deploy.hash_cache.unwrap_or(false),
            verify: deploy.verify.unwrap_or(false),
            exclude,
            delete_after,
            multipart_threshold: threshold_mib * 1024 * 1024,
            max_paths,
            directory_rewrite: file.cdn.directory_rewrite.unwrap_or(false),
            rules: Rules(rules),
            redirects,
            clean_urls: site.clean_urls.unwrap_or(false),
            spa: site.spa.unwrap_or(false),
        })
    }

    /// Settings for `skiff serve`: no bucket needed.
    pub fn serve_settings(&self, args: &crate::cli::ServeArgs) -> Result<ServeSettings, ConfigError> {
        let dir = match (&args.dir, &self.site_dir) {
            (Some(dir), _) | (None, Some(dir)) => dir.clone(),
            (None, None) => {
                return Err(ConfigError::new(
                    "no site directory: pass one (`skiff serve public`) or set `[site] dir` in skiff.toml",
                ));
            }
        };
        Ok(ServeSettings {
            dir,
            port: args.port,
            exclude: self.exclude.clone(),
            rules: self.rules.clone(),
            routing: crate::routes::Routing {
                clean_urls: self.clean_urls,
                spa: self.spa,
                rules: self.redirects.clone(),
            },
        })
    }

    /// Settings for `skiff publish`: the file's values with the command's flags applied.
    pub fn publish_settings(&self, args: &PublishArgs, global: &GlobalArgs) -> Result<PublishSettings, ConfigError> {
        let dir = match (&args.dir, &self.site_dir) {
            (Some(dir), _) | (None, Some(dir)) => dir.clone(),
            (None, None) => {
                return Err(ConfigError::new(format!(
                    "no directory to publish: give one (`skiff publish public/`) or set `[site] dir` in {}",
                    self.file_hint()
                )));
            }
        };
        let Some(bucket) = self.bucket(args.bucket.as_deref())? else {
            return Err(ConfigError::new(format!(
                "no bucket to publish to: pass `--bucket NAME` or set `[site] bucket` in {}",
                self.file_hint()
            )));
        };
        let prefix = self.prefix(args.prefix.as_deref())?;
        if let Some(branch) = &args.preview {
            if branch.trim().is_empty() {
                return Err(ConfigError::new(
                    "`--preview` needs a branch name, e.g. `--preview \"$GITHUB_HEAD_REF\"` (it was empty)",
                ));
            }
            if self.mode == Mode::InPlace || !prefix.is_empty() {
                return Err(ConfigError::new(format!(
                    "`--preview` needs a provisioned site (atomic mode), but {} publishes in place{}",
                    self.file_hint(),
                    if prefix.is_empty() { "" } else { " under a prefix" }
                )));
            }
        }
        if self.mode == Mode::Atomic && !prefix.is_empty() {
            return Err(ConfigError::new(format!(
                "`[site] prefix` is for in-place publishing; `mode = \"atomic\"` in {} keeps each deploy under `_deploys/`",
                self.source
            )));
        }
        let concurrency = args.concurrency.unwrap_or(self.concurrency);
        validate_concurrency(concurrency)
            .map_err(|what| ConfigError::new(format!("invalid `--concurrency`: {what}")))?;
        let wait = wait_setting(&args.wait)?;
        let distribution_id = self.distribution(args.distribution_id.as_deref())?;
        if distribution_id.is_none() && wait.is_some() {
            return Err(ConfigError::new(format!(
                "`--wait` waits for a CloudFront invalidation, but no distribution is set: pass `--distribution-id ID` or set `[site] distribution_id` in {}",
                self.file_hint()
            )));
        }
        let cdn = distribution_id.filter(|_| !args.no_invalidate).map(|distribution_id| CdnSettings {
            distribution_id,
            max_paths: self.max_paths,
            directory_rewrite: self.directory_rewrite,
            wait,
        });
        Ok(PublishSettings {
            url: self.site_url.clone(),
            dir_from_config: self.site_dir.as_ref().is_some_and(|named| {
                named == &dir || named.canonicalize().ok().zip(dir.canonicalize().ok()).is_some_and(|(a, b)| a == b)
            }),
            dir,
            bucket: bucket.clone(),
            prefix,
            aws: self.aws_target(),
            dry_run: args.dry_run,
            yes: args.yes,
            force: args.force,
            no_delete: args.no_delete,
            delete_after: self.delete_after,
            max_deletes: args.max_deletes.unwrap_or(self.max_deletes),
            concurrency,
            multipart_threshold: self.multipart_threshold,
            exclude: self.exclude.clone(),
            rules: self.rules.clone(),
            routing: crate::routes::Routing {
                clean_urls: self.clean_urls,
                spa: self.spa,
                rules: self.redirects.clone(),
            },
            json: global.json,
            cdn,
            mode: self.mode,
            hash_cache: args.hash_cache || self.hash_cache,
            canary: args.canary,
            verify: match (&args.verify_timeout, args.verify || self.verify) {
                (Some(text), _) => Some(parse_duration(text).filter(|d| !d.is_zero()).ok_or_else(|| {
                    ConfigError::new(format!(
                        "invalid `--verify-timeout`: `{text}` is not a duration like `2m` or `90s`"
                    ))
                })?),
                (None, true) => Some(DEFAULT_VERIFY_TIMEOUT),
                (None, false) => None,
            },
            preview: args.preview.clone(),
            site: self.site_settings(&bucket, args.lock_timeout.as_deref(), global.json)?,
        })
    }

    /// Settings for the commands on a provisioned site.
    pub fn site_settings(
        &self,
        bucket: &str,
        lock_timeout: Option<&str>,
        json: bool,
    ) -> Result<SiteSettings, ConfigError> {
        let lock_timeout = match lock_timeout {
            None => DEFAULT_LOCK_TIMEOUT,
            Some(text) => parse_duration(text).ok_or_else(|| {
                ConfigError::new(format!(
                    "invalid `--lock-timeout`: `{text}` is not a duration like `0s`, `90s` or `10m`"
                ))
            })?,
        };
        Ok(SiteSettings {
            bucket: bucket.to_string(),
            aws: self.aws_target(),
            domain: self.domain.clone(),
            lock_timeout,
            keep: self.keep as usize,
            keep_previews: self.keep_previews as usize,
            json,
        })
    }

    /// The bucket of a provisioned site, from `--bucket` or `[site] bucket`.
    pub fn site_bucket(&self, flag: Option<&str>) -> Result<String, ConfigError> {
        self.bucket(flag)?.ok_or_else(|| {
            ConfigError::new(format!("no site: pass `--bucket NAME` or set `[site] bucket` in {}", self.file_hint()))
        })
    }

    /// Settings for `skiff invalidate`.
    pub fn invalidate_settings(&self, args: &InvalidateArgs) -> Result<InvalidateSettings, ConfigError> {
        let Some(distribution_id) = self.distribution(args.distribution_id.as_deref())? else {
            return Err(ConfigError::new(format!(
                "no distribution to invalidate: pass `--distribution-id ID` or set `[site] distribution_id` in {}",
                self.file_hint()
            )));
        };
        let mut paths = Vec::new();
        for raw in &args.paths {
            paths.push(
                crate::invalidation::user_path(raw).map_err(|what| ConfigError::new(format!("invalid path {what}")))?,
            );
        }
        let bucket = self.bucket(args.bucket.as_deref())?;
        let prefix = self.prefix(args.prefix.as_deref())?;
        Ok(InvalidateSettings {
            distribution_id,
            paths,
            compact: !args.no_compact,
            max_paths: self.max_paths,
            directory_rewrite: self.directory_rewrite,
            wait: wait_setting(&args.wait)?,
            dry_run: args.dry_run,
            bucket,
            prefix,
            aws: self.aws_target(),
        })
    }

    /// Settings for `skiff provision`.
    pub fn provision_settings(&self, args: &ProvisionArgs) -> Result<ProvisionSettings, ConfigError> {
        let Some(bucket) = self.bucket(args.bucket.as_deref())? else {
            return Err(ConfigError::new(format!(
                "no bucket to provision: pass `--bucket NAME` or set `[site] bucket` in {}",
                self.file_hint()
            )));
        };
        let Some(domain) = &self.domain else {
            return Err(ConfigError::new(format!(
                "no domain to provision: set `[domain] name = \"example.com\"` in {} (and `aliases`, `previews` if wanted)",
                self.file_hint()
            )));
        };
        let certificate_timeout = match &args.certificate_timeout {
            None => DEFAULT_CERTIFICATE_TIMEOUT,
            Some(text) => match parse_duration(text) {
                Some(d) if !d.is_zero() => d,
                _ => {
                    return Err(ConfigError::new(format!(
                        "invalid `--certificate-timeout`: `{text}` is not a duration like `90s`, `30m` or `1h`"
                    )));
                }
            },
        };
        Ok(ProvisionSettings {
            bucket,
            region: self.region.clone(),
            domain: domain.name.to_ascii_lowercase(),
            aliases: domain.aliases.iter().map(|a| a.to_ascii_lowercase()).collect(),
            previews: domain.previews.as_ref().map(|p| p.to_ascii_lowercase()),
            redirects: self.redirects.clone(),
            aws: self.aws_target(),
            dry_run: args.dry_run,
            yes: args.yes,
            certificate_timeout,
        })
    }

    /// Settings for `skiff status`.
    pub fn status_settings(&self, args: &StatusArgs) -> Result<StatusSettings, ConfigError> {
        let Some(bucket) = self.bucket(args.bucket.as_deref())? else {
            return Err(ConfigError::new(format!(
                "no site to show: pass `--bucket NAME` or set `[site] bucket` in {}",
                self.file_hint()
            )));
        };
        Ok(StatusSettings { bucket, aws: self.aws_target() })
    }

    fn aws_target(&self) -> AwsTarget {
        AwsTarget {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            no_checksums: !self.checksums,
        }
    }

    /// `--prefix`, else `[site] prefix`, normalised.
    fn prefix(&self, flag: Option<&str>) -> Result<String, ConfigError> {
        match flag {
            Some(prefix) => {
                normalize_prefix(prefix).map_err(|what| ConfigError::new(format!("invalid `--prefix`: {what}")))
            }
            None => Ok(self.prefix.clone()),
        }
    }

    /// `--bucket`, else `[site] bucket`, checked.
    fn bucket(&self, flag: Option<&str>) -> Result<Option<String>, ConfigError> {
        match flag {
            Some(bucket) => {
                validate_bucket(bucket).map_err(|what| ConfigError::new(format!("invalid `--bucket`: {what}")))?;
                Ok(Some(bucket.to_string()))
            }
            None => Ok(self.bucket.clone()),
        }
    }

    /// What `skiff iam-policy` narrows its statements to: the flags, else the file.
    pub fn iam_resources(
        &self,
        bucket: Option<&str>,
        distribution_id: Option<&str>,
    ) -> Result<IamSettings, ConfigError> {
        Ok(IamSettings { bucket: self.bucket(bucket)?, distribution_id: self.distribution(distribution_id)? })
    }

    /// `--distribution-id`, else `[site] distribution_id`, checked.
    fn distribution(&self, flag: Option<&str>) -> Result<Option<String>, ConfigError> {
        match flag {
            Some(id) => {
                validate_distribution_id(id)
                    .map_err(|what| ConfigError::new(format!("invalid `--distribution-id`: {what}")))?;
                Ok(Some(id.to_string()))
            }
            None => Ok(self.distribution_id.clone()),
        }
    }

    fn file_hint(&self) -> String {
        match &self.source {
            Source::File(path) => format!("`{}`", path.display()),
            Source::Defaults => {
                format!("`{}` (none found in `{}` or above)", DEFAULT_FILE, display_dir(&self.base_dir))
            }
        }
    }
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() { ".".to_string() } else { dir.display().to_string() }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(format!("cannot read config file `{}`: {e}", path.display())))?;
    parse_toml(&text, path)
}

fn parse_toml(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let detail = e.to_string();
        ConfigError::new(format!("invalid config file `{}`: {}", path.display(), detail.trim_end()))
    })
}

/// Compile a glob the way rules and excludes use it: `*` stays within one path segment,
/// `**` crosses them, `{a,b}` alternates.
/// S3 bucket naming rules (general purpose buckets).
fn validate_bucket(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("`{name}` is not a valid S3 bucket name: {why}"));
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-') {
        return bad("use only lowercase letters, digits, `.` and `-`");
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(name.chars().next()) || !first_last_ok(name.chars().last()) {
        return bad("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it must not contain `..`");
    }
    if name.split('.').count() == 4 && name.split('.').all(|part| part.parse::<u8>().is_ok()) {
        return bad("it must not look like an IP address");
    }
    Ok(())
}

/// AWS regions look like `eu-west-1`; S3-compatible stores use others (`auto`, `garage`), so
/// only the characters are checked.
fn validate_region(region: &str, subject: &str) -> Result<String, ConfigError> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(region.to_string())
    } else {
        Err(ConfigError::new(format!("invalid {subject}: `{region}` is not a region name like `eu-west-1`")))
    }
}

fn validate_endpoint(url: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(url.trim_end_matches('/').to_string()),
        _ => Err(ConfigError::new(format!(
            "invalid `--endpoint-url`: `{url}` is not an http:// or https:// URL like `http://127.0.0.1:5000`"
        ))),
    }
}

fn validate_distribution_id(id: &str) -> Result<(), String> {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("`{id}` is not a CloudFront distribution id (like `E2QWRUHAPOMQZL`)"))
    }
}

/// Default for `--wait-timeout`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_mins(10);
/// How long `skiff provision` waits for ACM by default (its own waiter gives up after 40 min).
pub const DEFAULT_CERTIFICATE_TIMEOUT: Duration = Duration::from_hours(1);

fn wait_setting(args: &WaitArgs) -> Result<Option<Duration>, ConfigError> {
    if !args.wait {
        return Ok(None);
    }
    match &args.wait_timeout {
        None => Ok(Some(DEFAULT_WAIT_TIMEOUT)),
        Some(text) => match parse_duration(text) {
            Some(d) if !d.is_zero() => Ok(Some(d)),
            _ => Err(ConfigError::new(format!(
                "invalid `--wait-timeout`: `{text}` is not a duration like `90s`, `10m` or `1h30m`"
            ))),
        },
    }
}

/// Parse `90`, `90s`, `10m`, `1h30m`, `2d` (a number alone is seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // `14d`, `36h`, `10m`, `1h30m`, `2 weeks`: humantime's units.
    humantime::parse_duration(text).ok()
}

fn validate_concurrency(n: usize) -> Result<(), String> {
    if (1..=1024).contains(&n) { Ok(()) } else { Err(format!("{n} is out of range: use 1 to 1024")) }
}

fn validate_header(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("the value is empty".to_string());
    }
    if !value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(format!("`{}` has characters an HTTP header cannot carry", value.escape_debug()));
    }
    Ok(())
}

fn validate_hostname(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').count() >= 2
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok { Ok(()) } else { Err(format!("`{name}` is not a lowercase DNS name like `www.example.com`")) }
}

/// Normalise a key prefix: no leading `/`, a trailing `/` when not empty, no `.` or `..`
/// segments, no empty segments.
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    let trimmed = prefix.trim_start_matches('/').trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("`{prefix}` has an empty, `.` or `..` segment"));
        }
        if segment.chars().any(char::is_control) {
            return Err(format!("`{}` has control characters", prefix.escape_debug()));
        }
    }
    Ok(format!("{trimmed}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("site/skiff.toml"))
    }

    #[test]
    fn design_example_parses() {
        let config = parse(
            r#"
[site]
dir = "public"
bucket = "example-com-site"
region = "eu-west-1"
mode = "auto"
prefix = ""
distribution_id = ""

[domain]
name = "example.com"
aliases = ["www.example.com"]
previews = "preview.example.com"

[deploy]
concurrency = 32
max_deletes = 500
keep = 10
exclude = ["**/.DS_Store", "**/.git/**"]

[[rules]]
match = "**/*.html"
cache_control = "public, max-age=0, must-revalidate"
[[rules]]
match = "assets/**"
cache_control = "public, max-age=31536000, immutable"
[[rules]]
match = "**/*.{css,js,svg,json,xml,txt,html}"
gzip = true

[[redirects]]
from = "/old/"
to = "/new/"
status = 301
"#,
        )
        .unwrap();
        assert_eq!(config.site_dir, Some(PathBuf::from("site/public")));
        assert_eq!(config.bucket.as_deref(), Some("example-com-site"));
        assert_eq!(config.distribution_id, None);
        assert_eq!(config.redirects.len(), 1);
        let html = config.rules.apply("docs/index.html");
        assert_eq!(html.cache_control.as_deref(), Some("public, max-age=0, must-revalidate"));
        assert!(html.gzip);
        let asset = config.rules.apply("assets/app.js");
        assert_eq!(asset.cache_control.as_deref(), Some("public, max-age=31536000, immutable"));
        assert!(asset.gzip);
        let png = config.rules.apply("assets/logo.png");
        assert!(!png.gzip);
        let root = config.rules.apply("index.html");
        assert!(root.cache_control.is_some(), "`**/` matches the root too");
        assert!(config.exclude.matches("a/.git/config"));
        assert!(config.exclude.matches(".DS_Store"));
        assert!(config.exclude.covers_dir(".git") && config.exclude.covers_dir("a/b/.git"));
        assert!(!config.exclude.covers_dir("a"));
    }

    #[test]
    fn first_matching_rule_wins_per_attribute() {
        let config = parse(
            r#"
[[rules]]
match = "*.html"
content_type = "text/html; charset=iso-8859-1"
[[rules]]
match = "**"
cache_control = "max-age=60"
content_type = "application/octet-stream"
"#,
        )
        .unwrap();
        let top = config.rules.apply("index.html");
        assert_eq!(top.content_type.as_deref(), Some("text/html; charset=iso-8859-1"));
        assert_eq!(top.cache_control.as_deref(), Some("max-age=60"));
        let nested = config.rules.apply("a/index.html");
        assert_eq!(nested.content_type.as_deref(), Some("application/octet-stream"), "`*` stays in one segment");
    }

    #[test]
    fn bad_files_name_the_key_and_the_file() {
        let cases: &[(&str, &[&str])] = &[
            ("[site]\nbuckt = \"x\"\n", &["unknown field `buckt`", "site/skiff.toml"]),
            ("[sight]\n", &["unknown field `sight`"]),
            ("[site]\nbucket = \"Bad_Name\"\n", &["site.bucket", "Bad_Name", "site/skiff.toml"]),
            ("[site]\nbucket = 3\n", &["invalid type", "site/skiff.toml"]),
            ("[site\n", &["site/skiff.toml"]),
            ("[[rules]]\nmatch = \"a/[b\"\ncache_control = \"x\"\n", &["rules[0].match", "a/[b"]),
            ("[[rules]]\nmatch = \"**\"\n", &["rules[0]", "sets nothing"]),
            ("[[rules]]\nmatch = \"**\"\ncache_control = \"a\\nb\"\n", &["rules[0].cache_control"]),
            ("[[rules]]\nmatch = \"**\"\ncontent_type = \"html\"\n", &["rules[0].content_type", "media type"]),
            ("[[rules]]\nmatch = \"**\"\ngzip = \"yes\"\n", &["invalid type"]),
            ("[deploy]\nconcurrency = 0\n", &["deploy.concurrency", "0"]),
            ("[deploy]\nmax_deletes = -1\n", &["max_deletes"]),
            ("[deploy]\nexclude = [\"{a\"]\n", &["deploy.exclude", "{a"]),
            ("[deploy]\nmultipart_threshold_mib = 1\n", &["multipart_threshold_mib"]),
            ("[site]\nmode = \"fast\"\n", &["unknown variant `fast`"]),
            ("[site]\nprefix = \"a/../b\"\n", &["site.prefix", ".."]),
            ("[site]\nregion = \"Europe\"\n", &["site.region", "Europe"]),
            ("[site]\ndistribution_id = \"E12/3\"\n", &["site.distribution_id"]),
            ("[cdn]\nmax_paths = 0\n", &["cdn.max_paths"]),
            ("[cdn]\nmax_paths = 5000\n", &["cdn.max_paths"]),
            ("[cdn]\ninvalidate = true\n", &["unknown field `invalidate`"]),
            ("[domain]\nname = \"Example.COM\"\n", &["domain.name", "Example.COM"]),
            ("[[redirects]]\nfrom = \"old\"\nto = \"/new/\"\n", &["redirects[0].from"]),
            ("[[redirects]]\nfrom = \"/old\"\nto = \"/new/\"\nstatus = 404\n", &["redirects[0].status"]),
            ("[[redirects]]\nfrom = \"/a/*/b\"\nto = \"/new/\"\n", &["redirects[0].from", "last segment"]),
            ("[[redirects]]\nfrom = \"/a/*\"\nto = \"/new/:slug\"\n", &["redirects[0].to", "`:slug`"]),
            ("[[redirects]]\nfrom = \"/a\"\nto = \"https://e.org/\"\nstatus = 200\n", &["redirects[0].to", "proxying"]),
        ];
        for (text, needles) in cases {
            let err = parse(text).expect_err(text).to_string();
            for needle in *needles {
                assert!(err.contains(needle), "{text:?}: `{err}` should mention `{needle}`");
            }
        }
    }

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-site.example.com", "a1-b2"] {
            assert!(validate_bucket(good).is_ok(), "{good}");
        }
        for bad in ["ab", "Abc", "a_b", "-abc", "abc-", "a..b", "192.168.1.1", &"a".repeat(64)] {
            assert!(validate_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_mins(10)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_mins(90)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)), "humantime takes fractions");
        assert_eq!(parse_duration("2 weeks"), Some(Duration::from_hours(24 * 14)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_hours(24 * 7)));
        for bad in ["", "m", "10x", "-3s", "3 fortnights"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("blog").unwrap(), "blog/");
        assert_eq!(normalize_prefix("/a/b/").unwrap(), "a/b/");
        assert!(normalize_prefix("a//b").is_err());
        assert!(normalize_prefix("a/./b").is_err());
        assert!(normalize_prefix("../x").is_err());
    }
}
