//! Escalation history: the signals each sender sent each target lately, for "preceded
//! by" hint rules and for escalations (TERM, then KILL).

use std::collections::HashMap;

use crate::{analysis::classify::SIGKILL, model::lineage::ProcKey};

/// Earlier signals between the same two processes kept for escalation detection.
pub(super) const ESCALATION_WINDOW_NS: u64 = 300 * 1_000_000_000;
/// Distinct signal numbers remembered per (sender, target) pair.
pub(super) const HISTORY_SIGNALS: usize = 16;
/// Pairs kept before those with nothing inside the window are dropped.
const MAX_PAIRS: usize = 65_536;

/// Processes killed (and so exiting) kept before those killed longer ago than
/// [`ESCALATION_WINDOW_NS`] are dropped.
const MAX_KILLED: usize = 65_536;

/// Earlier signals as (signo, seconds before now), oldest first.
pub type Previous = Vec<(i32, f64)>;
/// A signal number and when it was sent (boot ns).
pub type Sent = (i32, u64);

/// Signals between (sender, target) pairs.
///
/// Per pair only the latest time of each signal number is kept (at most
/// [`HISTORY_SIGNALS`] numbers): that is all "preceded by S within T" and "the latest
/// different signal before a SIGKILL" need, and it keeps a storm of one signal between
/// one pair at constant cost and memory.
#[derive(Default)]
pub struct Escalations {
    /// (signo, boot ns) per pair.
    pairs: HashMap<(ProcKey, ProcKey), Vec<(i32, u64)>>,
}

impl Escalations {
    /// Remembers `signo` from `sender` to `target` at `now_ns`; returns the signals that
    /// came before (oldest first) and, for a SIGKILL, the latest different one.
    pub fn record(
        &mut self,
        sender: ProcKey,
        target: ProcKey,
        signo: i32,
        now_ns: u64,
    ) -> (Previous, Option<Sent>) {
        let earlier = self.pairs.entry((sender, target)).or_default();
        let result = remember_signal(earlier, signo, now_ns);
        if self.pairs.len() > MAX_PAIRS {
            self.pairs.retain(|_, v| {
                v.iter()
                    .any(|(_, at)| now_ns.saturating_sub(*at) <= ESCALATION_WINDOW_NS)
            });
        }
        result
    }
}

/// Processes a SIGKILL was delivered to: from then on the process is exiting
/// (kernel/signal.c, `complete_signal()` sets `SIGNAL_GROUP_EXIT` at once), and whatever
/// is sent to it after is never acted on. Newer kernels drop those signals and say so
/// (`prepare_signal()` returns false: the tracepoint's result is "ignored", and the
/// eBPF program reads the group exit); older ones (5.10 of the kernel matrix) still
/// queue them and report them delivered, which only this memory can correct. Keys
/// carry the start time, so a new process under the same pid is not taken for it.
#[derive(Default)]
pub struct Killed {
    at: HashMap<ProcKey, u64>,
}

impl Killed {
    /// Notes a SIGKILL delivered to `target` at `now_ns`.
    pub fn note(&mut self, target: ProcKey, now_ns: u64) {
        self.at.entry(target).or_insert(now_ns);
        if self.at.len() > MAX_KILLED {
            self.at
                .retain(|_, at| now_ns.saturating_sub(*at) <= ESCALATION_WINDOW_NS);
        }
    }

    /// Whether a SIGKILL was delivered to `target` before.
    pub fn contains(&self, target: &ProcKey) -> bool {
        self.at.contains_key(target)
    }
}

/// Nanoseconds as the seconds reports show.
#[expect(
    clippy::cast_precision_loss,
    reason = "spans within the 300 s window are below 2^53 ns, exact in an f64"
)]
pub fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Updates one pair's history (latest time per signal number, oldest first) with
/// `signo` at `now_ns`. Returns what came before, oldest first, as (signo, seconds
/// before now), and for a SIGKILL the latest different signal (an escalation).
fn remember_signal(
    history: &mut Vec<(i32, u64)>,
    signo: i32,
    now_ns: u64,
) -> (Previous, Option<Sent>) {
    history.retain(|(_, at)| now_ns.saturating_sub(*at) <= ESCALATION_WINDOW_NS);
    let previous = history
        .iter()
        .map(|(sig, at)| (*sig, seconds(now_ns.saturating_sub(*at))))
        .collect();
    let escalated = history
        .iter()
        .rev()
        .find(|(sig, _)| *sig != signo && signo == SIGKILL)
        .copied();
    history.retain(|(sig, _)| *sig != signo);
    if history.len() >= HISTORY_SIGNALS {
        history.remove(0);
    }
    history.push((signo, now_ns));
    (previous, escalated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_latest_time_of_each_signal_and_stays_bounded() {
        let mut history = Vec::new();
        let s = 1_000_000_000u64;
        assert_eq!(remember_signal(&mut history, 15, 10 * s), (vec![], None));
        for i in 0..100_000u64 {
            remember_signal(&mut history, 10, 11 * s + i);
        }
        let (previous, escalated) = remember_signal(&mut history, 9, 13 * s);
        assert_eq!(escalated, Some((10, 11 * s + 99_999)));
        assert_eq!(previous.len(), 2, "{previous:?}");
        assert_eq!(previous[0], (15, 3.0));
        assert_eq!(previous[1].0, 10);
        // A SIGKILL after nothing else is no escalation.
        let mut lone = Vec::new();
        assert_eq!(remember_signal(&mut lone, 9, s).1, None);
        // Many different signals: bounded, the oldest go first.
        for sig in 1..=40 {
            remember_signal(&mut history, sig, 20 * s + u64::try_from(sig).unwrap());
        }
        assert_eq!(history.len(), HISTORY_SIGNALS);
        assert_eq!(history.last(), Some(&(40, 20 * s + 40)));
        // Outside the window, forgotten.
        let (previous, _) = remember_signal(&mut history, 2, 20 * s + ESCALATION_WINDOW_NS + 1_000);
        assert!(previous.is_empty(), "{previous:?}");
    }
}
