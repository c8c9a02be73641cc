//! The `sigwho` binary: parses the command line and turns every failure into one line on
//! stderr and exit status 2.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use tracer::{
    analysis::redact::Redaction,
    analysis::rules::Rules,
    cli::{Cli, Command, ExplainArgs},
    modes::live::{self, LiveOptions},
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
    tracer::render::color::init(cli.color);
    tracer::kernel::load::set_verbose(cli.verbose);
    if let Some(Command::Doctor(args)) = &cli.command {
        return doctor(args.json);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&tracer::error::chain(error.as_ref())),
    }
}

/// `sigwho doctor`: exit 0 when sigwho can trace on this kernel, 1 when it cannot
/// (2 only for a failure to report).
fn doctor(json: bool) -> ExitCode {
    let diagnosis = tracer::kernel::doctor::diagnose();
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer(&mut out, &diagnosis)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        let width = tracer::kernel::sys::stdout_columns().unwrap_or(100);
        tracer::kernel::doctor::write_text(&diagnosis, width, &mut out)
    };
    match written {
        Err(error) => fail(&format!("cannot write the diagnosis: {error}")),
        Ok(()) if diagnosis.can_trace => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    tracer::modes::signals::shrug_off();
    // Bad patterns fail before anything is loaded or opened.
    let redaction = Redaction::new(match &cli.command {
        Some(Command::Record(args)) => &args.explain.redact,
        Some(Command::Run(args)) => &args.explain.redact,
        Some(Command::Query(args)) => &args.redact,
        Some(Command::Doctor(_)) => unreachable!("doctor runs before"),
        None => &cli.live.explain.redact,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Record(args)) => {
            let rules = rules(&args.explain)?;
            runtime.block_on(tracer::modes::record::run(args, rules))?;
        }
        Some(Command::Query(args)) => {
            tracer::modes::query::run(args, &redaction, std::io::stdout().lock())?;
        }
        Some(Command::Run(args)) => {
            let rules = rules(&args.explain)?;
            let code = runtime.block_on(tracer::modes::run::run(args, rules))?;
            std::process::exit(code);
        }
        Some(Command::Doctor(_)) => unreachable!("doctor runs before"),
        None => {
            let Some(target_pid) = cli.live.target_pid else {
                anyhow::bail!(
                    "nothing to do: give --target-pid PID, or a subcommand (record, query, run); see sigwho --help"
                );
            };
            let options = LiveOptions {
                target_pid,
                json: cli.live.json,
                timeout: cli.live.timeout,
                cause_window: cli.live.explain.cause_window,
                rules: rules(&cli.live.explain)?,
                redaction: redaction.clone(),
            };
            match runtime.block_on(live::run(options, std::io::stdout().lock())) {
                // Gone: the recorder's journal may know (tracer::modes::query says which it used).
                Err(live::LiveError::NotRunning(pid)) => {
                    tracer::modes::query::answer_not_running(
                        pid,
                        cli.live.journal.as_deref(),
                        cli.live.json,
                        &redaction,
                        std::io::stdout().lock(),
                    )?;
                }
                result => result?,
            }
        }
    }
    Ok(())
}

/// The built-in hint rules, plus --rules FILE.
fn rules(args: &ExplainArgs) -> anyhow::Result<&'static Rules> {
    let Some(path) = &args.rules else {
        return Ok(Rules::builtin());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read rules file {}: {e}", path.display()))?;
    let extra = Rules::from_json(&text)
        .map_err(|e| anyhow::anyhow!("rules file {}: {e}", path.display()))?;
    let mut rules = Rules::builtin().clone();
    rules.extend(extra);
    // Lives as long as the process; leaked once at start-up.
    Ok(Box::leak(Box::new(rules)))
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
