//! Command-line definitions. Doc comments are the help text.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments here are --help and the man pages: plain text, where backticks would show"
)]

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Who sent this signal to my process, through which chain, and why.
///
/// Traces every signal aimed at a process (kill-family syscalls, kernel-made signals
/// such as faults and SIGPIPE, failed attempts) with eBPF, and names the sender, its
/// command line, its ancestry, the chain of signals that led to it, and hints. Needs
/// root (or CAP_BPF and CAP_PERFMON).
#[derive(Debug, Parser)]
#[command(
    name = "sigwho",
    version = version(),
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true,
    after_help = MAIN_EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub live: LiveArgs,

    /// Colour text reports: auto (when stdout is a terminal and NO_COLOR is unset),
    /// always or never. JSON is never coloured.
    #[arg(long, value_name = "WHEN", value_enum, default_value_t, global = true)]
    pub color: ColorArg,

    /// Print text reports whole: every argument and every common ancestor, lines as
    /// long as they are. Without it a report fits the terminal (100 columns when
    /// stdout is not one), command lines cut with `…`.
    #[arg(long, global = true)]
    pub wide: bool,

    /// Say more: informational notes, and a refused eBPF program's whole verifier log
    /// (as SIGWHO_LOG=debug does).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Record every signal on this machine into the journal, as a daemon would
    /// (runs in the foreground; SIGTERM or ^C flushes and stops).
    #[command(verbatim_doc_comment, after_help = RECORD_EXAMPLES)]
    Record(RecordArgs),
    /// Answer from the journal: who signalled which process, when.
    #[command(verbatim_doc_comment, after_help = QUERY_EXAMPLES)]
    Query(QueryArgs),
    /// Run a command and report every signal its process tree received, and from whom.
    #[command(verbatim_doc_comment, after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Check what sigwho can trace on this kernel: each hook and kernel feature as used,
    /// replaced by a fallback, or missing, with why and what it costs the reports.
    /// Exits 0 when sigwho can trace here, 1 when it cannot.
    #[command(verbatim_doc_comment, after_help = DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),
}

/// Options of `sigwho doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object instead of text (schema: docs/json-schema.md).
    #[arg(long)]
    pub json: bool,
}

// The examples end each --help and each man page (clap_mangen renders after_help).

const MAIN_EXAMPLES: &str = "\
Examples:
  # Who is killing my worker? Follow it until it exits, then see how it ended:
  sigwho --target-pid \"$(pgrep -o -x gunicorn)\"

  # Every gunicorn process of the unit, restarted workers included, until ^C:
  sigwho --unit myapp --target-comm gunicorn

  # Every SIGTERM or SIGKILL on this machine, as sigsnoop would show them:
  sigwho --signal TERM,KILL --timeout 600

  # The same as JSON lines, for jq, for at most a minute:
  sigwho --target-pid 29904 --json --timeout 60 | jq 'select(.event == \"signal\") | .sender'

  # Own hint rules on top of the built-in ones (docs/hints.md):
  sigwho --target-pid 29904 --rules /etc/sigwho/hints.json

  # A process that is already gone: answered from the recorder's journal.
  sigwho --target-pid 29904

More: sigwho record --help, sigwho query --help, sigwho run --help; docs/ in the source.";

const RECORD_EXAMPLES: &str = "\
Examples:
  # Record into the default journal (/var/lib/sigwho/journal), in the foreground:
  sigwho record

  # Keep more history, in a journal of its own:
  sigwho record --journal /srv/sigwho/journal --max-size 1GiB --max-age 30d

  # As a service (the Debian package installs the unit, disabled):
  systemctl enable --now sigwho-record";

const QUERY_EXAMPLES: &str = "\
Examples:
  # Who signalled pid 29904 (each process that had the pid is shown apart):
  sigwho query --target-pid 29904

  # Every SIGTERM any node process got in the last two hours:
  sigwho query --target-comm node --signal TERM --since 2h

  # What pid 4242 sent during the incident window, as JSON lines:
  sigwho query --sender-pid 4242 --since 2026-11-26T09:00:00Z --until 2026-11-26T10:00:00Z --json

  # The cause chain and lineage of the signals that hit pid 29904, for a write-up:
  sigwho query --target-pid 29904 --format svg > incident.svg

  # A journal copied from another machine:
  sigwho query --journal ./node7-journal --target-comm postgres --since 1d";

const RUN_EXAMPLES: &str = "\
Examples:
  # Run the test suite; a summary of the signals it got goes to stderr:
  sigwho run -- npm test

  # In CI: fail the job on an unexpected signal, keep a JUnit file and JSON reports:
  sigwho run --fail-on-signal --junit signals.xml --report signals.jsonl -- ./run-tests.sh

  # SIGHUP and SIGUSR1 are part of the plan; also wait for daemons the script leaves:
  sigwho run --allow SIGHUP,SIGUSR1 --wait-descendants -- ./integration.sh";

const DOCTOR_EXAMPLES: &str = "\
Examples:
  # Can sigwho trace here, and what does this kernel make it do without?
  sigwho doctor

  # The same for a fleet inventory, one JSON object per machine:
  sigwho doctor --json | jq '{kernel, can_trace, fallbacks: [.features[] | select(.status != \"used\") | .name]}'

  # A program the verifier refused: its whole log on stderr.
  sigwho doctor -v";

/// Options of the live view (`sigwho --target-pid PID`).
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Process to watch: every signal reaching any of its threads is reported until it
    /// exits, then how it ended. Without it (and without the selectors below) every
    /// signal on the machine is reported, until ^C or --timeout.
    #[arg(long, value_name = "PID", value_parser = parse_pid, allow_hyphen_values = true)]
    pub target_pid: Option<u32>,

    #[command(flatten)]
    pub select: SelectArgs,

    /// Print one JSON object per line instead of text (schema: docs/json-schema.md).
    #[arg(long)]
    pub json: bool,

    /// Stop after this many seconds even if the process is still running.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// The journal to answer from when the pid is no longer running. This path wins
    /// over $SIGWHO_JOURNAL, which wins over the default /var/lib/sigwho/journal.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    #[command(flatten)]
    pub explain: ExplainArgs,
}

/// The live view's selectors: which processes and signals to follow, across restarts
/// (a process that matches later is followed from its exec). Each one given must hold.
#[derive(Debug, Clone, Default, Args)]
pub struct SelectArgs {
    /// Processes with this name (comm, as ps -o comm shows it; the kernel matches it at
    /// exec, so a restarted process is followed from its first instruction).
    #[arg(long, value_name = "NAME", conflicts_with = "target_pid")]
    pub target_comm: Option<String>,

    /// Processes whose executable matches GLOB: a full path (/usr/sbin/nginx,
    /// /opt/*/bin/java) or, without a slash, a file name (python3*).
    #[arg(long, value_name = "GLOB", conflicts_with = "target_pid")]
    pub target_exe: Option<String>,

    /// Processes of this systemd unit (nginx or nginx.service; any unit type).
    #[arg(long, value_name = "UNIT", conflicts_with = "target_pid")]
    pub unit: Option<String>,

    /// Processes of this container: its id, or a prefix as docker ps shows it.
    #[arg(long, value_name = "ID", conflicts_with = "target_pid")]
    pub container: Option<String>,

    /// Processes of this Kubernetes pod: its name, NAMESPACE/NAME, or uid.
    #[arg(long, value_name = "NAME", conflicts_with = "target_pid")]
    pub pod: Option<String>,

    /// Processes in this cgroup or below it (a path as /proc/PID/cgroup shows it,
    /// e.g. /system.slice/nginx.service).
    #[arg(long, value_name = "PATH", conflicts_with = "target_pid")]
    pub cgroup: Option<String>,

    /// Only these signals (TERM, SIGTERM or 15; comma-separated). Filtered in the kernel.
    #[arg(long, value_name = "SIG[,SIG]")]
    pub signal: Option<String>,
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

    /// Mask the parts of command lines, program paths and process names that match
    /// REGEX (each argument on its own) before anything is printed or recorded.
    /// Repeatable. See docs/security.md.
    #[arg(long, value_name = "REGEX")]
    pub redact: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The journal (an SQLite database). Its directory is created 0700 and the file
    /// 0600, root-owned; a symlink is refused. This path wins over $SIGWHO_JOURNAL,
    /// which wins over the default /var/lib/sigwho/journal.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Largest the journal may grow; the oldest events go first (e.g. 256MiB, 1GiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub max_size: String,

    /// Oldest events kept (e.g. 7d, 12h).
    #[arg(long, value_name = "AGE", default_value = "7d")]
    pub max_age: String,

    /// Also write every recorded object as a JSON line, as --json prints it, to FILE
    /// (appended to; created 0600) or to stdout with `-`: for the log shipper a
    /// cluster already runs.
    #[arg(long, value_name = "FILE|-")]
    pub json_out: Option<PathBuf>,

    /// Also export every recorded event as an OpenTelemetry log record (OTLP/HTTP,
    /// protobuf) to a collector, e.g. http://localhost:4318 or https://collector:4318;
    /// OTEL_EXPORTER_OTLP_ENDPOINT does the same, and the other OTEL_EXPORTER_OTLP_*
    /// variables (headers, gzip, certificate, timeout) apply (docs/recorder.md).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Also write what is read from the kernel, and what /proc said, to FILE (created
    /// 0600), for replaying through the analysis in tests (tracer/tests/replay.rs).
    #[arg(long, value_name = "FILE", hide = true)]
    pub raw: Option<PathBuf>,

    #[command(flatten)]
    pub explain: ExplainArgs,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The journal to read. This path wins over $SIGWHO_JOURNAL, which wins over the
    /// default /var/lib/sigwho/journal.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Signals aimed at this pid (each incarnation of a reused pid is shown apart).
    #[arg(long, value_name = "PID", value_parser = parse_pid)]
    pub target_pid: Option<u32>,

    /// Signals aimed at processes with this name (comm).
    #[arg(long, value_name = "NAME")]
    pub target_comm: Option<String>,

    /// Signals sent by this pid.
    #[arg(long, value_name = "PID", value_parser = parse_pid)]
    pub sender_pid: Option<u32>,

    /// Only these signals (TERM, SIGTERM or 15; comma-separated).
    #[arg(long, value_name = "SIG[,SIG]")]
    pub signal: Option<String>,

    /// Signals aimed at processes whose executable matches GLOB (a path, or a file name
    /// without a slash), as the live view's --target-exe.
    #[arg(long, value_name = "GLOB")]
    pub target_exe: Option<String>,

    /// Signals aimed at processes of this systemd unit.
    #[arg(long, value_name = "UNIT")]
    pub unit: Option<String>,

    /// Signals aimed at processes of this container (id or prefix).
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,

    /// Signals aimed at processes of this Kubernetes pod (name, NAMESPACE/NAME or uid).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,

    /// Signals aimed at processes in this cgroup or below it.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// Keep printing what the recorder adds that matches, as tail -f does (until ^C).
    #[arg(long, conflicts_with = "format")]
    pub follow: bool,

    /// Not before this time: RFC 3339 (2026-11-26T09:00:00Z) or a time ago (90s, 15m, 2h, 3d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Not after this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// One JSON object per line, as the live view prints them.
    #[arg(long)]
    pub json: bool,

    /// Mask what matches REGEX in the command lines shown (as --redact of the tracing
    /// modes; the journal keeps what the recorder stored). Repeatable.
    #[arg(long, value_name = "REGEX")]
    pub redact: Vec<String>,
    /// Draw the matching signals instead: senders, their ancestors, targets and cause
    /// chains as a graph, in Graphviz DOT or as SVG (needs Graphviz's `dot`).
    #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
    pub format: Option<FormatArg>,
}

/// `--color WHEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorArg {
    /// When stdout is a terminal and NO_COLOR is unset or empty.
    #[default]
    Auto,
    /// Always, even into a pipe or with NO_COLOR set.
    Always,
    /// Never.
    Never,
}

/// `sigwho query --format FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Graphviz DOT text.
    Dot,
    /// SVG drawn by Graphviz's `dot -Tsvg`.
    Svg,
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
            "{} (eBPF object sha256:{}, {} bytes, embedded at build; git {})",
            env!("CARGO_PKG_VERSION"),
            &env!("SIGWHO_EBPF_SHA256")[..16],
            crate::kernel::load::object_size(),
            env!("SIGWHO_GIT_COMMIT"),
        )
    })
}

fn parse_pid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(pid) if pid > 0 && pid <= i64::from(i32::MAX) => {
            u32::try_from(pid).map_err(|_| format!("PID must be a positive integer, got '{text}'"))
        }
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
    use crate::store::journal::DEFAULT_JOURNAL;

    /// `--journal` is absent unless given, so that tracer::journal::resolve can let
    /// $SIGWHO_JOURNAL stand in; a given path is kept as is, even the default one.
    #[test]
    fn journal_options_are_unset_unless_given() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        match parse(&["sigwho", "query"]).command {
            Some(Command::Query(args)) => assert_eq!(args.journal, None),
            other => panic!("{other:?}"),
        }
        match parse(&["sigwho", "record", "--journal", DEFAULT_JOURNAL]).command {
            Some(Command::Record(args)) => {
                assert_eq!(
                    args.journal.as_deref(),
                    Some(std::path::Path::new(DEFAULT_JOURNAL))
                );
            }
            other => panic!("{other:?}"),
        }
        let live = parse(&["sigwho", "--target-pid", "7"]).live;
        assert_eq!(live.journal, None);
        let live = parse(&["sigwho", "--target-pid", "7", "--journal", "/j"]).live;
        assert_eq!(live.journal.as_deref(), Some(std::path::Path::new("/j")));
    }

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
    fn every_command_has_examples() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let mut commands = vec![&cli];
        commands.extend(cli.get_subcommands());
        for cmd in commands {
            let help = cmd.get_after_help().map(ToString::to_string);
            let help = help.unwrap_or_default();
            assert!(help.starts_with("Examples:"), "{}: {help}", cmd.get_name());
            // Each example is a command line that starts with the program itself (or
            // the service manager that runs it).
            let lines: Vec<&str> = help.lines().map(str::trim).collect();
            assert!(
                lines.iter().filter(|l| l.starts_with("sigwho ")).count() >= 2,
                "{}: {help}",
                cmd.get_name()
            );
        }
    }

    #[test]
    fn version_names_the_embedded_object_and_commit() {
        use sha2::{Digest, Sha256};
        let object = std::fs::read(concat!(env!("OUT_DIR"), "/sigwho-ebpf")).unwrap();
        let digest: String = Sha256::digest(&object)
            .iter()
            .fold(String::new(), |mut hex, b| {
                use std::fmt::Write as _;
                let _ = write!(hex, "{b:02x}");
                hex
            });
        assert_eq!(digest, env!("SIGWHO_EBPF_SHA256"));
        assert_eq!(object.len(), crate::kernel::load::object_size());
        let version = version();
        assert!(
            version.contains(&format!("sha256:{}", &digest[..16])),
            "{version}"
        );
        assert!(
            version.contains(&format!("{} bytes", object.len())),
            "{version}"
        );
        assert!(version.ends_with(&format!("git {})", env!("SIGWHO_GIT_COMMIT"))));
    }

    #[test]
    fn definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
