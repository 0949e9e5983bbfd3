//! skiff publishes static websites to AWS: S3 holds the files, CloudFront serves them.
//!
//! The pipeline is `scan` (walk and hash) → `plan` (pure diff against the remote manifest)
//! → `execute` (bounded, streaming uploads) → `output` (the only module that prints).
//! `main.rs` only calls [`run`] and maps its error to an exit code with [`exit_code`].

pub(crate) mod atomic;
pub(crate) mod aws;
pub(crate) mod bucket;
pub(crate) mod cdn;
pub(crate) mod cert;
pub(crate) mod ci;
pub mod cli;
pub mod config;
pub(crate) mod deploys;
pub(crate) mod distribution;
pub(crate) mod dns;
pub(crate) mod edge;
pub(crate) mod execute;
pub(crate) mod hashcache;
pub(crate) mod host;
pub mod iam;
pub(crate) mod init;
pub mod interrupt;
pub(crate) mod invalidate;
pub(crate) mod invalidation;
pub(crate) mod key;
pub(crate) mod mime;
pub(crate) mod object;
pub mod output;
pub(crate) mod plan;
pub(crate) mod previews;
pub(crate) mod provision;
pub(crate) mod publish;
pub(crate) mod rollback;
pub(crate) mod router;
pub(crate) mod routes;
pub(crate) mod rules;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod sorted_map;
pub(crate) mod state;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod time;
pub(crate) mod verify;

use anyhow::Result;

/// Exit code for a failure (something went wrong while doing the job).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration error (nothing was attempted).
pub const EXIT_USAGE: u8 = 2;
pub use interrupt::EXIT_INTERRUPTED;

/// Run one parsed command line.
pub async fn run(cli: cli::Cli) -> Result<()> {
    match cli.command {
        cli::Command::Completions(args) => {
            use clap::CommandFactory as _;
            let mut command = cli::Cli::command();
            clap_complete::generate(args.shell, &mut command, "skiff", &mut std::io::stdout());
            Ok(())
        }
        cli::Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(cli::Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|err| anyhow::anyhow!("could not write the man page: {err}"))
        }
        cli::Command::Init(args) => {
            if let Some(config) = &cli.global.config {
                return Err(config::ConfigError::new(format!(
                    "`skiff init` writes `skiff.toml` in the project directory, so `-c {}` has no place here\nhint: `skiff init DIR` writes DIR/skiff.toml; `-c` picks the file for the other commands",
                    config.display()
                ))
                .into());
            }
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            init::init(&init::Settings { dir: args.dir, force: args.force }, &out)
        }
        cli::Command::Publish(args) => {
            let config = config::Config::load(&cli.global)?;
            let settings = config.publish_settings(&args, &cli.global)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            Box::pin(publish::publish(&settings, &out)).await
        }
        cli::Command::Serve(args) => {
            let config = config::Config::load(&cli.global)?;
            let settings = config.serve_settings(&args)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            serve::serve(&settings, &out).await
        }
        cli::Command::Invalidate(args) => {
            let config = config::Config::load(&cli.global)?;
            let settings = config.invalidate_settings(&args)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            invalidate::invalidate(&settings, &out).await
        }
        cli::Command::Provision(args) => {
            let config = config::Config::load(&cli.global)?;
            let settings = config.provision_settings(&args)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            Box::pin(provision::provision(&settings, &out)).await
        }
        cli::Command::Rollback(args) => {
            let config = config::Config::load(&cli.global)?;
            let bucket = config.site_bucket(args.bucket.as_deref())?;
            let settings = config.site_settings(&bucket, args.lock_timeout.as_deref(), cli.global.json)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            rollback::rollback(&settings, args.deploy.as_deref(), args.preview.as_deref(), &out).await
        }
        cli::Command::Promote(args) => {
            let config = config::Config::load(&cli.global)?;
            let bucket = config.site_bucket(args.bucket.as_deref())?;
            let settings = config.site_settings(&bucket, args.lock_timeout.as_deref(), cli.global.json)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            rollback::promote(&settings, &out).await
        }
        cli::Command::Deploys(args) => {
            let config = config::Config::load(&cli.global)?;
            let bucket = config.site_bucket(args.bucket.as_deref())?;
            let settings = config.site_settings(&bucket, None, cli.global.json)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            rollback::list(&settings, args.preview.as_deref(), &out).await
        }
        cli::Command::Previews(args) => {
            let config = config::Config::load(&cli.global)?;
            let bucket = config.site_bucket(args.bucket.as_deref())?;
            let settings = config.site_settings(&bucket, None, cli.global.json)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            match args.command {
                cli::PreviewsCommand::List => previews::list(&settings, &out).await,
                cli::PreviewsCommand::Delete { branch, yes } => previews::delete(&settings, &branch, yes, &out).await,
                cli::PreviewsCommand::Prune { older_than, keep_branches, dry_run } => {
                    let older_than = match older_than {
                        None => None,
                        Some(text) => {
                            Some(config::parse_duration(&text).filter(|d| !d.is_zero()).ok_or_else(|| {
                                config::ConfigError::new(format!(
                                    "invalid `--older-than`: `{text}` is not a duration like `14d` or `36h`"
                                ))
                            })?)
                        }
                    };
                    previews::prune(&settings, older_than, keep_branches, dry_run, &out).await
                }
            }
        }
        cli::Command::IamPolicy(args) => {
            let config = config::Config::load(&cli.global)?;
            let resources = config.iam_resources(args.bucket.as_deref(), args.distribution_id.as_deref())?;
            output::Output::new(true, cli.global.quiet).json(&iam::policy(args.job, &resources));
            Ok(())
        }
        cli::Command::Status(args) => {
            let config = config::Config::load(&cli.global)?;
            let settings = config.status_settings(&args)?;
            let out = output::Output::new(cli.global.json, cli.global.quiet);
            status::status(&settings, &out).await
        }
    }
}

/// The process exit code for an error returned by [`run`].
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(<dyn std::error::Error>::is::<config::ConfigError>) {
        EXIT_USAGE
    } else if err.chain().any(<dyn std::error::Error>::is::<interrupt::Interrupted>) {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILURE
    }
}
