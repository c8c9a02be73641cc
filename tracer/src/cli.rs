//! Command-line definitions. Doc comments are the help text.

use std::time::Duration;

use clap::Parser;

/// Who sent this signal to my process, through which chain, and why.
///
/// Traces every signal aimed at a process (kill-family syscalls, kernel-made signals
/// such as faults and SIGPIPE, failed attempts) with eBPF, and names the sender, its
/// command line and its ancestry. Needs root (or CAP_BPF and CAP_PERFMON).
///
/// Examples:
///   sigwho --target-pid 29904            follow pid 29904 until it exits
///   sigwho --target-pid 29904 --json     one JSON object per line
///   sigwho --target-pid 29904 --timeout 60
#[derive(Debug, Parser)]
#[command(name = "sigwho", version = version(), verbatim_doc_comment)]
pub struct Cli {
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

    /// How recent a signal the sender itself received must be to count as the cause of
    /// the signal it sent (cause chains).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "10")]
    pub cause_window: Duration,

    /// Extra hint rules (JSON, same format as tracer/rules/hints.json; a rule with a
    /// built-in id replaces it). See docs/hints.md.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<std::path::PathBuf>,
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
