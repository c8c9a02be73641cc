//! What counts as expected in a run (--allow, self-sent signals), and how the command's
//! end reads as an exit status.

use std::{collections::BTreeSet, os::unix::process::ExitStatusExt, process::ExitStatus};

use crate::{
    analysis::{
        classify::{OriginClass, SignalResult},
        report::SignalReport,
    },
    model::signals::{parse_signal, signal_label},
    render::summary::Status,
};

/// Expected unless --allow says otherwise.
pub const DEFAULT_ALLOW: [i32; 4] = [libc::SIGCHLD, libc::SIGWINCH, libc::SIGCONT, libc::SIGURG];

// ---------------------------------------------------------------------------------------
// What counts as expected

/// The expected signals (--allow), and the rule that signals a process sends itself are
/// expected too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub signals: BTreeSet<i32>,
}

impl Allow {
    /// `--allow LIST` (comma-separated names or numbers) replaces the default list; an
    /// empty LIST expects nothing but self-sent signals.
    ///
    /// # Errors
    ///
    /// When an entry names no signal.
    pub fn parse(list: Option<&str>) -> Result<Self, String> {
        let Some(list) = list else {
            return Ok(Self {
                signals: DEFAULT_ALLOW.into_iter().collect(),
            });
        };
        let signals = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_signal(s).map_err(|e| format!("--allow: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { signals })
    }

    /// Whether a signal report counts as unexpected. Failed attempts delivered nothing,
    /// so they never do (they are listed apart); nor does a signal the kernel dropped
    /// because its target was already exiting (a shutdown's TERM reaching a process
    /// that is on its way out anyway).
    #[must_use]
    pub fn is_unexpected(&self, report: &SignalReport) -> bool {
        !matches!(
            report.result,
            SignalResult::Failed | SignalResult::DroppedExiting
        ) && !self.signals.contains(&report.signo)
            && !self_sent(report)
    }

    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.signals.iter().map(|&s| signal_label(s)).collect()
    }
}

/// Sent by the process to itself: `raise()`, `abort()`, kill(getpid()), a runtime's own
/// tgkill (Go's SIGURG preemption), or a timer it armed (alarm, setitimer, POSIX
/// timers). Faults, SIGPIPE and rlimit signals are the kernel's verdict on what the
/// process did, not something it asked for, so they do not count.
#[must_use]
pub fn self_sent(report: &SignalReport) -> bool {
    match report.origin_class {
        OriginClass::SelfSent => report
            .target
            .as_ref()
            .is_none_or(|t| t.pid == report.sender.pid),
        OriginClass::Timer => true,
        _ => false,
    }
}

/// The status a shell would show: the exit code, or 128+N after signal N.
#[must_use]
pub fn shell_status(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A wait status in the terms the summary uses.
pub fn status_of(status: ExitStatus) -> Status {
    Status {
        exit_code: status.code(),
        signo: status.signal(),
        core: status.core_dumped(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::fixtures::signal;

    #[test]
    fn allow_list_defaults_and_parsing() {
        let default = Allow::parse(None).unwrap();
        assert_eq!(
            default.names(),
            ["SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"]
        );
        assert!(default.signals.contains(&libc::SIGURG));
        let custom = Allow::parse(Some("TERM, sigusr1,10,RTMIN+1")).unwrap();
        assert_eq!(
            custom.signals,
            [libc::SIGTERM, libc::SIGUSR1, 35].into_iter().collect()
        );
        assert!(Allow::parse(Some("")).unwrap().signals.is_empty());
        let error = Allow::parse(Some("TERM,NOPE")).unwrap_err();
        assert!(error.starts_with("--allow: "), "{error}");
    }

    #[test]
    fn unexpected_means_not_allowed_and_not_self_sent() {
        let allow = Allow::parse(None).unwrap();
        assert!(allow.is_unexpected(&signal(15, 10, 20, OriginClass::Explicit)));
        assert!(!allow.is_unexpected(&signal(17, 10, 20, OriginClass::ChildState)));
        // Go's runtime preempting its own threads.
        assert!(!allow.is_unexpected(&signal(23, 20, 20, OriginClass::SelfSent)));
        assert!(!allow.is_unexpected(&signal(15, 20, 20, OriginClass::SelfSent)));
        assert!(!allow.is_unexpected(&signal(14, 0, 20, OriginClass::Timer)));
        // The kernel's verdicts on the process's own doing are not "sent to itself".
        assert!(allow.is_unexpected(&signal(11, 20, 20, OriginClass::Fault)));
        assert!(allow.is_unexpected(&signal(13, 20, 20, OriginClass::BrokenPipe)));
        let mut failed = signal(15, 10, 20, OriginClass::Explicit);
        failed.result = SignalResult::Failed;
        assert!(!allow.is_unexpected(&failed));
        let mut exiting = signal(15, 10, 20, OriginClass::Explicit);
        exiting.result = SignalResult::DroppedExiting;
        assert!(!allow.is_unexpected(&exiting));
        // A container's PID 1 that drops a TERM for want of a handler is news.
        exiting.result = SignalResult::DroppedInit;
        assert!(allow.is_unexpected(&exiting));
    }

    #[test]
    fn statuses_read_like_a_shell() {
        assert_eq!(shell_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(shell_status(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(
            shell_status(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            139
        );
    }
}
