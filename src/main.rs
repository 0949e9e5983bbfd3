//! The process edges: parse arguments, start logging and the runtime, run one command,
//! turn the result into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

fn main() -> ExitCode {
    let cli = match skiff::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    skiff::output::init_logging(cli.global.verbose, cli.global.quiet, cli.global.color);
    // A second Ctrl-C or SIGTERM quits at once, whatever is in flight.
    skiff::interrupt::on_second_signal(|| std::process::exit(i32::from(skiff::EXIT_INTERRUPTED)));
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            skiff::output::error(&anyhow::Error::new(err).context("cannot start the async runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(skiff::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            skiff::output::error(&err);
            let code = skiff::exit_code(&err);
            if json {
                let kind = match code {
                    skiff::EXIT_USAGE => "usage",
                    skiff::EXIT_INTERRUPTED => "interrupted",
                    _ => "failure",
                };
                skiff::output::error_json(&err, code, kind);
            }
            ExitCode::from(code)
        }
    }
}

/// A command line clap refused: its message, except that a subcommand another tool uses
/// for what skiff calls otherwise (`deploy`, `sync`, `push`, …) is pointed to skiff's.
fn usage_error(err: &clap::Error) -> ExitCode {
    if err.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(given)) = err.get(ContextKind::InvalidSubcommand)
        && let Some(ours) = skiff::cli::known_as(given)
    {
        skiff::output::notice(&format!(
            "error: skiff has no `{given}` command: did you mean `skiff {ours}`?\n\nSee `skiff --help` for the commands."
        ));
        return ExitCode::from(skiff::EXIT_USAGE);
    }
    // Help and version are not errors; everything else exits with the usage code.
    let _ = err.print();
    if err.use_stderr() { ExitCode::from(skiff::EXIT_USAGE) } else { ExitCode::SUCCESS }
}
