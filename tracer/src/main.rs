//! The `sigwho` binary: parses the command line and turns every failure into one line on
//! stderr and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use tracer::{
    cli::Cli,
    live::{self, LiveOptions},
};

const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => return fail(&first_line(&error.to_string())),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&tracer::load::chain(error.as_ref())),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(target_pid) = cli.target_pid else {
        anyhow::bail!("nothing to watch: give --target-pid PID (see sigwho --help)");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = LiveOptions {
        target_pid,
        json: cli.json,
        timeout: cli.timeout,
    };
    runtime.block_on(live::run(options, std::io::stdout().lock()))?;
    Ok(())
}

/// clap's errors are several lines with a usage hint; sigwho's contract is one line.
fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

fn fail(message: &str) -> ExitCode {
    eprintln!("sigwho: {message}");
    ExitCode::from(USAGE_ERROR)
}
