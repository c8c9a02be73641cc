//! Command-line definitions. Doc comments are the help text.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

/// Who sent this signal to my process, through which chain, and why.
///
/// Traces every signal aimed at a process (kill-family syscalls, kernel-made signals
/// such as faults and SIGPIPE, failed attempts) with eBPF, and names the sender, its
/// command line, its ancestry, the chain of signals that led to it, and hints. Needs
/// root (or CAP_BPF and CAP_PERFMON).
///
/// Examples:
///   sigwho --target-pid 29904            follow pid 29904 until it exits
///   sigwho --target-pid 29904 --json     one JSON object per line
///   sigwho --target-pid 29904 --timeout 60
///   sigwho record                        record every signal on this machine
///   sigwho query --target-pid 29904      who signalled 29904, from the recording
///   sigwho run -- make test              run a command, report the signals it got
#[derive(Debug, Parser)]
#[command(
    name = "sigwho",
    version = version(),
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub live: LiveArgs,

    /// Colour text reports: auto (when stdout is a terminal and NO_COLOR is unset),
    /// always or never. JSON is never coloured.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t, global = true)]
    pub color: crate::color::ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record every signal on this machine into the journal, as a daemon would
    /// (runs in the foreground; SIGTERM or ^C flushes and stops).
    ///
    /// Examples:
    ///   sigwho record
    ///   sigwho record --journal /var/lib/sigwho/journal --max-size 512MiB --max-age 14d
    #[command(verbatim_doc_comment)]
    Record(RecordArgs),
    /// Answer from the journal: who signalled which process, when.
    ///
    /// Examples:
    ///   sigwho query --target-pid 29904
    ///   sigwho query --target-comm node --signal TERM --since 2h
    ///   sigwho query --sender-pid 4242 --since 2026-11-26T09:00:00Z --json
    #[command(verbatim_doc_comment)]
    Query(QueryArgs),
    /// Run a command and report every signal its process tree received, and from whom.
    ///
    /// Examples:
    ///   sigwho run -- npm test
    ///   sigwho run --fail-on-signal --junit signals.xml -- ./run-tests.sh
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
}

/// Options of the live view (`sigwho --target-pid PID`).
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Process to watch: every signal reaching any of its threads is reported until it
    /// exits, then how it ended.
    #[arg(long, value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pub target_pid: Option<u32>,

    /// Print one JSON object per line instead of text (schema: docs/json-schema.md).
    #[arg(long)]
    pub json: bool,

    /// Stop after this many seconds even if the process is still running.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    #[command(flatten)]
    pub explain: ExplainArgs,
}

/// How reports explain a signal; shared by every mode that traces.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// How recent a signal the sender itself received must be to count as the cause of
    /// the signal it sent (cause chains).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "10")]
    pub cause_window: Duration,

    /// Extra hint rules (JSON, same format as tracer/rules/hints.json; a rule with a
    /// built-in id replaces it). See docs/hints.md.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

/// Where the recorder keeps its journal unless told otherwise.
pub const DEFAULT_JOURNAL: &str = "/var/lib/sigwho/journal";

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The journal (an SQLite database). Its directory is created 0700 and the file
    /// 0600, root-owned; a symlink is refused.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
    pub journal: PathBuf,

    /// Largest the journal may grow; the oldest events go first (e.g. 256MiB, 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub max_size: String,

    /// Oldest events kept (e.g. 7d, 12h).
    #[arg(long, value_name = "AGE", default_value = "7d")]
    pub max_age: String,

    #[command(flatten)]
    pub explain: ExplainArgs,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The journal to read.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_JOURNAL)]
    pub journal: PathBuf,

    /// Signals aimed at this pid (each incarnation of a reused pid is shown apart).
    #[arg(long, value_name = "PID", value_parser = parse_pid)]
    pub target_pid: Option<u32>,

    /// Signals aimed at processes with this name (comm).
    #[arg(long, value_name = "NAME")]
    pub target_comm: Option<String>,

    /// Signals sent by this pid.
    #[arg(long, value_name = "PID", value_parser = parse_pid)]
    pub sender_pid: Option<u32>,

    /// Only this signal (TERM, SIGTERM or 15).
    #[arg(long, value_name = "SIG")]
    pub signal: Option<String>,

    /// Not before this time: RFC 3339 (2026-11-26T09:00:00Z) or a time ago (90s, 15m, 2h, 3d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Not after this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// One JSON object per line, as the live view prints them.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Also wait for descendants that outlive the command.
    #[arg(long)]
    pub wait_descendants: bool,

    /// No summary on stderr (reports still go to --report / --junit).
    #[arg(long)]
    pub quiet: bool,

    /// Exit 1 when an unexpected signal was seen although the command succeeded.
    #[arg(long)]
    pub fail_on_signal: bool,

    /// Expected signals, comma-separated (default: SIGCHLD,SIGWINCH,SIGCONT,SIGURG);
    /// signals a process sends itself are always expected. Allowed signals are still
    /// in the reports.
    #[arg(long, value_name = "LIST")]
    pub allow: Option<String>,

    /// Write every report as JSON lines, then a summary object, to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write JUnit XML to FILE: one test case per process that died of a signal or
    /// received an unexpected one.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    #[command(flatten)]
    pub explain: ExplainArgs,

    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        format!(
            "{} (eBPF object {} bytes, embedded at build)",
            env!("CARGO_PKG_VERSION"),
            crate::load::object_size()
        )
    })
}

fn parse_pid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(pid) if pid > 0 && pid <= i64::from(i32::MAX) => Ok(pid as u32),
        _ => Err(format!("PID must be a positive integer, got '{text}'")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("SECONDS must be a positive number, got '{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_must_be_positive_integers() {
        assert_eq!(parse_pid("42"), Ok(42));
        for bad in ["0", "-1", "abc", "", "4294967296", "1.5"] {
            assert!(parse_pid(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_must_be_positive() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "-3", "nan", "inf", "x"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
