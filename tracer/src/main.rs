//! The `sigwho` binary: parses the command line and turns every failure into one line on
//! stderr and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use tracer::{
    cli::Cli,
    explain::Rules,
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
    let rules = match &cli.rules {
        None => Rules::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read rules file {}: {e}", path.display()))?;
            let extra = Rules::from_json(&text)
                .map_err(|e| anyhow::anyhow!("rules file {}: {e}", path.display()))?;
            let mut rules = Rules::builtin().clone();
            rules.extend(extra);
            // Lives as long as the process; leaked once at start-up.
            &*Box::leak(Box::new(rules))
        }
    };
    let options = LiveOptions {
        target_pid,
        json: cli.json,
        timeout: cli.timeout,
        cause_window: cli.cause_window,
        rules,
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
