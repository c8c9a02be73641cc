//! The last report built for each sender thread and target, reused for a signal that
//! repeats it (a storm): building a report costs a process-table walk and the hint
//! rules; a repeat costs a comparison and a clone.

use std::collections::HashMap;

use tracer_common::{Request, SignalEvent, TaskRef};

use crate::analysis::report::SignalReport;

/// Most memoised reports kept (one per sender thread and target).
const MEMO_MAX: usize = 1024;

/// A report and what it was built from. A signal whose record matches in everything
/// but time, seen while the process table has not changed, with the same earlier
/// signals as far as the rules can tell and no cause chain or escalation, gets the
/// same report with its own time.
struct Memo {
    shape: Shape,
    generation: u64,
    previous: Vec<(i32, u32)>,
    report: SignalReport,
}

/// A signal record without its time, CPU and what the kernel leaves out of repeats.
#[derive(PartialEq)]
struct Shape {
    sig: i32,
    code: i32,
    errno: i32,
    result: i32,
    group: i32,
    si_pid: i32,
    si_uid: u32,
    si_value: u64,
    si_addr: u64,
    sender: TaskRef,
    target: TaskRef,
    request: Request,
}

impl Shape {
    fn of(ev: &SignalEvent) -> Self {
        Self {
            sig: ev.sig,
            code: ev.code,
            errno: ev.errno,
            result: ev.result,
            group: ev.group,
            si_pid: ev.si_pid,
            si_uid: ev.si_uid,
            si_value: ev.si_value,
            si_addr: ev.si_addr,
            sender: ev.sender,
            target: ev.target,
            request: ev.request,
        }
    }
}

/// Reports kept by (sender thread, target pid).
pub struct ReportMemo {
    entries: HashMap<(u32, u32), Memo>,
    /// The `within_seconds` limits of the hint rules ([`crate::analysis::rules::Rules::time_limits`]).
    limits: Vec<f64>,
    /// Reports served from the memo.
    pub(super) hits: u64,
}

/// Earlier signals as the memo compares them (see [`ReportMemo::seen_as`]).
pub struct Seen(Vec<(i32, u32)>);

impl ReportMemo {
    pub fn new(limits: Vec<f64>) -> Self {
        Self {
            entries: HashMap::new(),
            limits,
            hits: 0,
        }
    }

    /// Forgets every report (a test's correlator that never reuses one).
    #[cfg(test)]
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Earlier signals as the rules see them: each signal number with a bit per time
    /// limit it is within.
    pub fn seen_as(&self, previous: &[(i32, f64)]) -> Seen {
        let mut seen: Vec<(i32, u32)> = previous
            .iter()
            .map(|&(signo, seconds)| {
                let within = self
                    .limits
                    .iter()
                    .take(32)
                    .enumerate()
                    .filter(|&(_, &limit)| seconds <= limit)
                    .fold(0u32, |bits, (i, _)| bits | 1 << i);
                (signo, within)
            })
            .collect();
        // The rules ask whether some earlier signal qualifies, never in which order.
        seen.sort_unstable();
        Seen(seen)
    }

    /// The report kept for a signal like `ev`, if the table and the earlier signals
    /// are as they were when it was built.
    pub fn get(&mut self, ev: &SignalEvent, generation: u64, seen: &Seen) -> Option<SignalReport> {
        let memo = self.entries.get(&(ev.sender.tid, ev.target.pid))?;
        let same =
            memo.generation == generation && memo.previous == seen.0 && memo.shape == Shape::of(ev);
        if !same {
            return None;
        }
        self.hits += 1;
        Some(memo.report.clone())
    }

    /// Keeps `report`, built for `ev`, for the signals that repeat it.
    pub fn keep(&mut self, ev: &SignalEvent, generation: u64, seen: Seen, report: &SignalReport) {
        if self.entries.len() >= MEMO_MAX {
            self.entries.clear();
        }
        self.entries.insert(
            (ev.sender.tid, ev.target.pid),
            Memo {
                shape: Shape::of(ev),
                generation,
                previous: seen.0,
                report: report.clone(),
            },
        );
    }
}
