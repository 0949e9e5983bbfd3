//! Command-line types (clap) and nothing else: [`crate::config`] turns them into a
//! validated configuration, so domain code never sees these structs. The doc comments
//! here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Publish static websites to AWS (S3 + CloudFront): fast, safe, only what changed.
#[derive(Debug, Parser)]
#[command(name = "skiff", version = env!("SKIFF_VERSION"), about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What other tools call skiff's commands: `skiff deploy` is answered with a pointer to
/// `skiff publish`, not only clap's nearest spelling (`deploys`).
const KNOWN_AS: &[(&str, &str)] = &[
    ("deploy", "publish"),
    ("push", "publish"),
    ("sync", "publish"),
    ("upload", "publish"),
    ("release", "publish"),
    ("ship", "publish"),
    ("setup", "provision"),
    ("create", "provision"),
    ("revert", "rollback"),
    ("undo", "rollback"),
    ("list", "deploys"),
    ("history", "deploys"),
    ("info", "status"),
    ("purge", "invalidate"),
    ("preview", "publish --preview BRANCH"),
];

/// skiff's command for what another tool calls `given`, if it is a well-known name.
pub fn known_as(given: &str) -> Option<&'static str> {
    KNOWN_AS.iter().find(|(other, _)| other.eq_ignore_ascii_case(given)).map(|(_, ours)| *ours)
}

/// Flags every command accepts; they override `skiff.toml`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Configuration file [default: the nearest skiff.toml, in the working directory or above]
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// AWS profile from ~/.aws/config (default: the standard credential chain)
    #[arg(long, value_name = "NAME", global = true)]
    pub profile: Option<String>,
    /// AWS region of the bucket (overrides `[site] region` and AWS_REGION)
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,
    /// Send every AWS request to this endpoint (an emulator or an S3-compatible store);
    /// AWS_ENDPOINT_URL works too. Uses path-style bucket addressing
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,
    /// More logs on stderr (-v: skiff's debug log, -vv: also the AWS SDK's); never credentials
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Colour on stderr: `auto` (a terminal without NO_COLOR or TERM=dumb), `always`, `never`
    #[arg(long, value_name = "WHEN", global = true, default_value = "auto")]
    pub color: Color,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// On a terminal, unless NO_COLOR is set or TERM is `dumb`.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented skiff.toml for the site in DIR: its framework's output directory and cache rules
    #[command(
        after_long_help = "Examples:\n  skiff init                 # in the project (where package.json or hugo.toml is)\n  skiff init ../blog --force # replace an existing skiff.toml"
    )]
    Init(InitArgs),
    /// Hash DIR, upload what changed and delete what is gone, so the bucket holds exactly the site
    #[command(
        after_long_help = "Examples:\n  skiff publish --dry-run                    # what would change, nothing written\n  skiff publish                              # [site] dir and bucket from skiff.toml\n  skiff publish public/ --bucket my-site     # no skiff.toml needed\n  skiff publish --preview \"$GITHUB_HEAD_REF\"  # a branch's preview URL (provisioned sites)\n  skiff publish --json | jq -r .url          # in CI"
    )]
    Publish(PublishArgs),
    /// Serve DIR on 127.0.0.1, routed as the edge routes it (redirects, clean URLs, SPA, headers)
    #[command(
        after_long_help = "Examples:\n  skiff serve                # [site] dir from skiff.toml, http://127.0.0.1:8080/\n  skiff serve public --port 3000"
    )]
    Serve(ServeArgs),
    /// Invalidate paths on the CloudFront distribution (e.g. `/*`, `/docs/*`, `/about/`)
    Invalidate(InvalidateArgs),
    /// Create or repair the bucket, certificate, DNS, router function and CDN for `[domain]`
    Provision(ProvisionArgs),
    /// Show what is live: domain, distribution, certificate, DNS, deploys, previews
    Status(StatusArgs),
    /// Print a shell completion script: `skiff completions bash > ~/.local/share/bash-completion/completions/skiff`
    Completions(CompletionsArgs),
    /// Print the man page (roff): `skiff man > ~/.local/share/man/man1/skiff.1`
    Man,
    /// Make the previous (or the named) deploy live again: no upload, seconds; with a canary
    /// running, end the canary
    Rollback(RollbackArgs),
    /// Make the canary deploy (`publish --canary`) production for every visitor
    Promote(PromoteArgs),
    /// List the deploys of production (or a preview), newest first, marking the live one
    Deploys(DeploysArgs),
    /// List, delete or prune branch previews
    Previews(PreviewsArgs),
    /// Print the least-privilege IAM policy (JSON) for a job: what its credentials need
    IamPolicy(IamPolicyArgs),
}

/// `skiff iam-policy`.
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// The job the credentials are for
    #[arg(value_enum, default_value = "all")]
    pub job: Job,
    /// Narrow the S3 statements to this bucket (default: `[site] bucket`, else every bucket)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Narrow the CloudFront statements to this distribution (default: `[site]
    /// distribution_id`, else every distribution)
    #[arg(long, value_name = "ID")]
    pub distribution_id: Option<String>,
}

/// `skiff provision`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Show the steps (and any drift) and change nothing (only read requests are sent)
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before applying the steps (implied when stdin is not a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// How long to wait for ACM to validate a new certificate, e.g. `30m` [default: 1h]
    #[arg(long, value_name = "DURATION")]
    pub certificate_timeout: Option<String>,
}

/// `skiff status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
}

/// Flags for waiting on CloudFront.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until CloudFront has finished the invalidation
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long, e.g. `90s`, `10m`, `1h` [default: 10m]
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub wait_timeout: Option<String>,
}

/// `skiff invalidate`.
#[derive(Debug, Args)]
pub struct InvalidateArgs {
    /// Paths to invalidate, each starting with `/`; `*` only at the end (`/docs/*`, `/*`)
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,
    /// The distribution (overrides `[site] distribution_id`)
    #[arg(long, value_name = "ID")]
    pub distribution_id: Option<String>,
    /// Send the paths exactly as given, even more than `[cdn] max_paths`
    #[arg(long)]
    pub no_compact: bool,
    /// Show the paths that would be sent; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Bucket whose manifest tells what a wildcard would also cover (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Key prefix of the site in the bucket (overrides `[site] prefix`)
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// `skiff publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Directory to publish [default: `[site] dir` from skiff.toml]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Bucket to publish to (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. `blog/`; objects outside it are never touched
    /// (overrides `[site] prefix`)
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Print the plan and change nothing (only read requests are sent)
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before deleting (implied when stdin is not a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Re-upload every file, even unchanged ones
    #[arg(long)]
    pub force: bool,
    /// Upload and update only: leave objects whose files are gone in the bucket (in place;
    /// the next publish without it deletes them)
    #[arg(long)]
    pub no_delete: bool,
    /// Refuse to publish, before writing anything, when the plan deletes more than N objects
    /// [default: `[deploy] max_deletes`, else 500]
    #[arg(long, value_name = "N")]
    pub max_deletes: Option<u64>,
    /// Requests in flight at once [default: `[deploy] concurrency`, else 32]
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// CloudFront distribution to invalidate after the upload (overrides `[site] distribution_id`)
    #[arg(long, value_name = "ID")]
    pub distribution_id: Option<String>,
    /// Do not invalidate the CloudFront distribution
    #[arg(long, conflicts_with = "wait")]
    pub no_invalidate: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Publish as the preview of BRANCH, at `https://<slug>.<previews>/` (provisioned sites;
    /// `[domain] previews` in skiff.toml)
    #[arg(long, value_name = "BRANCH")]
    pub preview: Option<String>,
    /// How long to wait for another publish or rollback of the same target, e.g. `0s`, `10m`
    /// [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
    /// Skip reading files whose size, modification time and inode are as at the last publish
    /// from this directory (like rsync's quick check; off by default: every byte is read)
    #[arg(long)]
    pub hash_cache: bool,
    /// Make the new deploy live for PERCENT of production's visitors only (1-99, sticky per
    /// visitor); `skiff promote` makes it production, `skiff rollback` ends it
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99), conflicts_with = "preview")]
    pub canary: Option<u8>,
    /// After going live, fetch every changed and deleted URL through the site's URL and
    /// check it serves what was published; exit 1 if any still does not after the time limit
    #[arg(long)]
    pub verify: bool,
    /// How long `--verify` retries while the change reaches the edges [default: 2m]
    #[arg(long, value_name = "DURATION")]
    pub verify_timeout: Option<String>,
}

/// `skiff rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deploy to make live [default: the one before the live one]
    #[arg(value_name = "DEPLOY")]
    pub deploy: Option<String>,
    /// Roll back the preview of BRANCH instead of production
    #[arg(long, value_name = "BRANCH")]
    pub preview: Option<String>,
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// How long to wait for another publish or rollback of the same target [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
}

/// `skiff promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// How long to wait for another publish or rollback of production [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
}

/// `skiff deploys`.
#[derive(Debug, Args)]
pub struct DeploysArgs {
    /// List the deploys of the preview of BRANCH instead of production
    #[arg(long, value_name = "BRANCH")]
    pub preview: Option<String>,
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
}

/// `skiff completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `skiff serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The built site [default: `[site] dir`]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The port on 127.0.0.1 (0: any free one)
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

/// `skiff init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The site's project directory, where its `package.json` or `hugo.toml` is [default: the
    /// current directory]
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Replace an existing skiff.toml
    #[arg(long)]
    pub force: bool,
}

/// `skiff previews`.
#[derive(Debug, Args)]
pub struct PreviewsArgs {
    #[command(subcommand)]
    pub command: PreviewsCommand,
    /// Bucket of the site (overrides `[site] bucket`)
    #[arg(long, value_name = "NAME", global = true)]
    pub bucket: Option<String>,
}

/// What to do with previews.
#[derive(Debug, Subcommand)]
pub enum PreviewsCommand {
    /// Branch, URL, last deploy and size of every preview
    List,
    /// Remove a branch's preview: its router entry and every object
    Delete {
        /// The branch (as given to `skiff publish --preview`)
        #[arg(value_name = "BRANCH")]
        branch: String,
        /// Do not ask first (implied when stdin is not a terminal)
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Remove previews whose last deploy is older than a duration, or whose branch is gone
    Prune {
        /// Remove previews last deployed longer ago than this, e.g. `14d`, `36h`
        #[arg(long, value_name = "DURATION", required_unless_present = "keep_branches")]
        older_than: Option<String>,
        /// Read the branches that still exist from stdin, one per line; remove the others' previews
        #[arg(long)]
        keep_branches: bool,
        /// Show what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// What a set of credentials is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Job {
    /// `publish` (both modes, previews too), `rollback`, `deploys`, `previews`, `invalidate`:
    /// what a CI role needs.
    Publish,
    /// `provision`: bucket, certificate, DNS, router function and distribution.
    Provision,
    /// `status`: reads only.
    Status,
    /// Every job.
    All,
}
