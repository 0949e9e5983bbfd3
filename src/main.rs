//! The process edges: parse arguments, start logging and the runtime, run one command,
//! turn the result into an exit code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = skiff::cli::Cli::parse();
    skiff::output::init_logging(cli.global.verbose, cli.global.quiet);
    // A second Ctrl-C or SIGTERM quits at once, whatever is in flight.
    skiff::interrupt::on_second_signal(|| std::process::exit(i32::from(skiff::EXIT_INTERRUPTED)));
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
            ExitCode::from(skiff::exit_code(&err))
        }
    }
}
