//! Reports held back briefly: a kernel SIGKILL may be the OOM killer's, which the
//! kernel says only in the `oom:mark_victim` record just after it.

use std::collections::VecDeque;

use crate::analysis::{
    classify::{OriginClass, SIGKILL},
    redact::Redaction,
    report::{Report, SignalReport},
};

/// How long a kernel SIGKILL report waits for a possible `oom:mark_victim` record, which
/// the kernel emits just after the signal.
const OOM_GRACE_NS: u64 = 20_000_000;

/// Reports not yet released, in the kernel's order: a kernel SIGKILL waits for its
/// possible OOM record, and everything after it waits too so that order is kept.
#[derive(Default)]
pub struct HoldQueue {
    queue: VecDeque<(u64, Report)>,
}

fn may_be_oom_kill(report: &SignalReport) -> bool {
    report.signo == SIGKILL && report.origin_class == OriginClass::KernelOther
}

impl HoldQueue {
    pub fn push(&mut self, report: Report) {
        let release_at = match &report {
            Report::Signal(r) if may_be_oom_kill(r) => r.keys.time_ns + OOM_GRACE_NS,
            _ => 0,
        };
        self.queue.push_back((release_at, report));
    }

    /// Reports whose hold time passed by `now_boot_ns` (all of them with `u64::MAX`),
    /// masked with `redaction`, in the order the kernel produced them.
    pub fn release(&mut self, now_boot_ns: u64, redaction: &Redaction) -> Vec<Report> {
        let mut out = Vec::new();
        while let Some((release_at, _)) = self.queue.front() {
            if *release_at > now_boot_ns {
                break;
            }
            if let Some((_, mut report)) = self.queue.pop_front() {
                redaction.report(&mut report);
                out.push(report);
            }
        }
        out
    }

    /// The held kernel SIGKILL aimed at `pid`, if there is one; it is released with the
    /// next pass.
    pub fn oom_victim(&mut self, pid: u32) -> Option<&mut SignalReport> {
        let (release_at, report) =
            self.queue
                .iter_mut()
                .rev()
                .find_map(|(release_at, report)| match report {
                    Report::Signal(r)
                        if may_be_oom_kill(r) && r.keys.target.is_some_and(|t| t.pid == pid) =>
                    {
                        Some((release_at, r))
                    }
                    _ => None,
                })?;
        *release_at = 0;
        Some(report)
    }
}
