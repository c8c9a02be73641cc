//! The `sigwho` binary: parses the command line, hands each mode its options, and turns
//! every failure into one line on stderr and exit status 2.

use std::process::ExitCode;

use clap::Parser;
use tracer::{
    analysis::{redact::Redaction, rules::Rules, select::Selectors},
    cli::{
        Cli, ColorArg, Command, ExplainArgs, FormatArg, LiveArgs, QueryArgs, RecordArgs, RunArgs,
    },
    error::chain,
    modes::{
        self,
        live::{LiveError, LiveOptions},
        pipeline::ExplainOptions,
        query::{GraphFormat, QueryOptions},
        record::RecordOptions,
        run::RunOptions,
        signals::OwnSignals,
        watch::WatchOptions,
    },
    render::color::ColorChoice,
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
    tracer::render::color::init(match cli.color {
        ColorArg::Auto => ColorChoice::Auto,
        ColorArg::Always => ColorChoice::Always,
        ColorArg::Never => ColorChoice::Never,
    });
    tracer::kernel::load::set_verbose(cli.verbose);
    tracer::render::text::init_width((!cli.wide).then(|| {
        tracer::kernel::sys::stdout_columns().unwrap_or(tracer::render::text::DEFAULT_WIDTH)
    }));
    if let Some(Command::Doctor(args)) = &cli.command {
        return match modes::doctor::run(args.json) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => fail(&format!("cannot write the diagnosis: {error}")),
        };
    }
    match run(cli) {
        Ok(code) => code,
        Err(error) => fail(&chain(error.as_ref())),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // First, while sigwho has one thread: every thread started later inherits the mask.
    let mut signals = OwnSignals::take(match &cli.command {
        Some(Command::Record(_)) => modes::record::SIGNALS,
        Some(Command::Run(_)) => modes::run::SIGNALS,
        Some(Command::Query(_) | Command::Doctor(_)) => &[],
        None => modes::live::SIGNALS,
    })
    .map_err(|e| anyhow::anyhow!("cannot take over sigwho's own signals: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Record(args)) => {
            let options = record_options(args)?;
            runtime.block_on(modes::record::run(options, &mut signals))?;
        }
        Some(Command::Query(args)) => {
            // Bad patterns fail before the journal is opened.
            let redaction = Redaction::new(&args.redact)?;
            modes::query::run(&query_options(args), &redaction, std::io::stdout().lock())?;
        }
        Some(Command::Run(args)) => {
            let options = run_options(args)?;
            let code = runtime.block_on(modes::run::run(options, &mut signals))?;
            std::process::exit(code);
        }
        Some(Command::Doctor(_)) => unreachable!("doctor runs before"),
        None => live(&runtime, &mut signals, &cli.live)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `sigwho --target-pid PID`; a pid that is gone is answered from the journal.
fn live(
    runtime: &tokio::runtime::Runtime,
    signals: &mut OwnSignals,
    args: &LiveArgs,
) -> anyhow::Result<()> {
    // A bad pattern is the first thing to hear of, as in every mode.
    Redaction::new(&args.explain.redact)?;
    let select = &args.select;
    let selectors = Selectors {
        comm: select.target_comm.clone(),
        exe: select.target_exe.clone(),
        unit: select.unit.clone(),
        container: select.container.clone(),
        pod: select.pod.clone(),
        cgroup: select.cgroup.clone(),
        signals: Vec::new(),
    }
    .new(select.signal.as_deref())?;
    let explain = explain_options(&args.explain)?;
    let redaction = explain.redaction.clone();
    let Some(target_pid) = args.target_pid else {
        let options = WatchOptions {
            selectors,
            json: args.json,
            timeout: args.timeout,
            explain,
        };
        runtime.block_on(modes::watch::run(
            options,
            signals,
            std::io::stdout().lock(),
        ))?;
        return Ok(());
    };
    let options = LiveOptions {
        target_pid,
        json: args.json,
        timeout: args.timeout,
        explain,
        selectors,
    };
    match runtime.block_on(modes::live::run(options, signals, std::io::stdout().lock())) {
        Err(LiveError::NotRunning(pid)) => {
            let answered = modes::query::answer_not_running(
                pid,
                args.journal.as_deref(),
                args.json,
                &redaction,
                std::io::stdout().lock(),
            )?;
            if !answered {
                return Err(LiveError::NotRunning(pid).into());
            }
        }
        result => result?,
    }
    Ok(())
}

/// Bad patterns and rules files fail here, before anything is loaded or opened.
fn explain_options(args: &ExplainArgs) -> anyhow::Result<ExplainOptions> {
    Ok(ExplainOptions {
        cause_window: args.cause_window,
        redaction: Redaction::new(&args.redact)?,
        rules: rules(args)?,
    })
}

fn record_options(args: RecordArgs) -> anyhow::Result<RecordOptions> {
    Ok(RecordOptions {
        explain: explain_options(&args.explain)?,
        journal: args.journal,
        max_size: args.max_size,
        max_age: args.max_age,
        json_out: args.json_out,
        otlp_endpoint: args.otlp_endpoint,
        raw: args.raw,
    })
}

fn run_options(args: RunArgs) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        explain: explain_options(&args.explain)?,
        command: args.command,
        wait_descendants: args.wait_descendants,
        quiet: args.quiet,
        fail_on_signal: args.fail_on_signal,
        allow: args.allow,
        report: args.report,
        junit: args.junit,
    })
}

fn query_options(args: QueryArgs) -> QueryOptions {
    QueryOptions {
        journal: args.journal,
        target_pid: args.target_pid,
        target_comm: args.target_comm.clone(),
        sender_pid: args.sender_pid,
        signal: args.signal,
        selectors: Selectors {
            comm: args.target_comm,
            exe: args.target_exe,
            unit: args.unit,
            container: args.container,
            pod: args.pod,
            cgroup: args.cgroup,
            signals: Vec::new(),
        },
        follow: args.follow,
        since: args.since,
        until: args.until,
        json: args.json,
        format: args.format.map(|format| match format {
            FormatArg::Dot => GraphFormat::Dot,
            FormatArg::Svg => GraphFormat::Svg,
        }),
    }
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
