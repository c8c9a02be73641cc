//! Storms as counts: the kernel aggregates repeated signals (and failed attempts) in
//! its FOLDS map (`FoldKey`, `FoldSlot` in tracer-common): the first of each key comes
//! as a full record with a fold id, later ones only add to the key's count. This turns
//! those counts back into reports that repeat the first one's, with the count
//! (`repeats`) and the time of the first and last of them.
//!
//! Counts are read from the map every so often ([`Folds::poll`]): each entry's count
//! only grows while it lives, so what is new since the last read of that row is
//! reported, and nothing twice. Raw captures of older versions also carry
//! [`RepeatsEvent`]s (per-CPU fold slots' final counts), still understood here.
//! Everything here is free of eBPF, so that it can be tested with made-up counts.

use std::collections::HashMap;

use tracer_common::{FoldSlot, RepeatsEvent};

use crate::analysis::report::{Repeated, SignalReport};

/// Repeats counted but not reported yet: their report has not been released (the
/// correlator holds some reports briefly) or not read from the ring yet, or the view
/// reports a storm's count only every so often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    row: u64,
    count: u64,
    first_ns: u64,
    last_ns: u64,
    /// When the row's count was last reported (or its report remembered).
    since_ns: u64,
    /// The read that last added to it: a view reports a count as soon as a read adds
    /// nothing more (the storm paused or stopped, or it was one more sporadic signal).
    poll: u64,
}

/// A report the kernel counts repeats of, kept while its row lives in the kernel.
struct Kept {
    report: Box<SignalReport>,
    /// The poll during which it was remembered: a row missing from a later read has
    /// been removed from the kernel's map (idle), so its report can go.
    poll: u64,
    /// Reads in a row that did not have it. It goes after two: a count that left the
    /// map in the meantime (older versions' final counts, in the ring) is read first.
    missing: u32,
}

#[derive(Default)]
pub struct Folds {
    reports: HashMap<u64, Kept>,
    /// Per row: repeats already counted (reported or waiting), and the time of the
    /// last of them.
    counted: HashMap<u64, (u64, u64)>,
    waiting: Vec<Waiting>,
    /// Reads of the counts so far.
    polls: u64,
    /// How often a row's count is reported while its storm goes on (0: every read).
    every_ns: u64,
    /// The latest time seen in a read (for `every_ns`).
    now_ns: u64,
    /// Repeats whose report was never seen (a bug or a lost record): counted, not
    /// silently dropped.
    pub unmatched: u64,
}

impl Folds {
    /// `every_ns`: how often a storm's count so far is reported while every read adds
    /// to it (0: at every read); a row's count is reported as soon as a read adds
    /// nothing to it, when its key leaves the kernel's map, and at the end.
    #[must_use]
    pub fn new(every_ns: u64) -> Self {
        Self {
            every_ns,
            ..Self::default()
        }
    }

    /// A report the kernel may count repeats of.
    pub fn remember(&mut self, report: &SignalReport) {
        let row = report.keys.fold_id;
        if row == 0 {
            return;
        }
        let mut kept = Box::new(report.clone());
        kept.repeats = None;
        self.reports.insert(
            row,
            Kept {
                report: kept,
                poll: self.polls,
                missing: 0,
            },
        );
    }

    /// The kernel's final count for a row (older versions' records).
    pub fn on_repeats(&mut self, event: &RepeatsEvent) {
        let (count, first_ns) = match self.counted.remove(&event.row) {
            Some((counted, last_ns)) => (event.count.saturating_sub(counted), last_ns),
            None => (event.count, event.first_ns),
        };
        self.wait(event.row, count, first_ns, event.last_ns, true);
    }

    /// One read of the kernel's counts. `last`: the programs are gone, the counts are
    /// final. A row missing from a read that is not the last has left the kernel's
    /// map (its final count was in an earlier read): its count is reported now and its
    /// report forgotten.
    pub fn poll(&mut self, counts: &[FoldSlot], last: bool) {
        self.polls += 1;
        let mut present = std::collections::HashSet::with_capacity(counts.len());
        for slot in counts {
            if slot.row == 0 {
                continue;
            }
            present.insert(slot.row);
            self.now_ns = self.now_ns.max(slot.last_ns);
            if slot.count == 0 {
                continue;
            }
            let (counted, last_ns) = self
                .counted
                .get(&slot.row)
                .copied()
                .unwrap_or((0, slot.first_ns));
            if slot.count > counted {
                // The first repeat's time for the first count, else the previous
                // count's last (the kernel keeps no more).
                let first_ns = if counted == 0 { slot.first_ns } else { last_ns };
                self.wait(
                    slot.row,
                    slot.count - counted,
                    first_ns,
                    slot.last_ns,
                    false,
                );
                self.counted.insert(slot.row, (slot.count, slot.last_ns));
            }
        }
        if last {
            return;
        }
        let polls = self.polls;
        let mut gone = Vec::new();
        for (row, kept) in &mut self.reports {
            if kept.poll >= polls || present.contains(row) {
                kept.missing = 0;
                continue;
            }
            kept.missing += 1;
            if kept.missing >= 2 {
                gone.push(*row);
            }
        }
        for row in gone {
            // Its count so far goes out with this pass; then the report can go.
            if let Some(waiting) = self.waiting.iter_mut().find(|w| w.row == row) {
                waiting.since_ns = 0;
                continue;
            }
            self.reports.remove(&row);
            self.counted.remove(&row);
        }
    }

    fn wait(&mut self, row: u64, count: u64, first_ns: u64, last_ns: u64, now: bool) {
        if count == 0 {
            return;
        }
        // A row counted twice before it is released (several reads) is one report.
        let poll = self.polls;
        if let Some(waiting) = self.waiting.iter_mut().find(|w| w.row == row) {
            waiting.count += count;
            waiting.last_ns = waiting.last_ns.max(last_ns);
            waiting.poll = poll;
            if now {
                waiting.since_ns = 0;
            }
            return;
        }
        self.waiting.push(Waiting {
            row,
            count,
            first_ns,
            last_ns,
            since_ns: if now || self.every_ns == 0 {
                0
            } else {
                first_ns
            },
            poll,
        });
    }

    /// Reports for the repeats whose report is known and whose time has come; `time`
    /// formats a boot time as reports show it. With `last`, everything goes, and
    /// repeats still without a report are counted in [`Folds::unmatched`].
    pub fn take(&mut self, time: impl Fn(u64) -> String, last: bool) -> Vec<SignalReport> {
        let mut out = Vec::new();
        let reports = &self.reports;
        let (every, now, polls) = (self.every_ns, self.now_ns, self.polls);
        self.waiting.retain(|waiting| {
            let Some(kept) = reports.get(&waiting.row) else {
                return true;
            };
            let storming = waiting.poll == polls;
            if !last
                && waiting.since_ns != 0
                && storming
                && now.saturating_sub(waiting.since_ns) < every
            {
                return true;
            }
            let mut repeat = (*kept.report).clone();
            repeat.time = time(waiting.first_ns);
            repeat.keys.time_ns = waiting.first_ns;
            repeat.repeats = Some(Repeated {
                count: waiting.count,
                first_time: time(waiting.first_ns),
                last_time: time(waiting.last_ns),
                last_ns: waiting.last_ns,
            });
            out.push(repeat);
            false
        });
        if last {
            self.unmatched += self.waiting.iter().map(|w| w.count).sum::<u64>();
            self.waiting.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(row: u64, count: u64, first_ns: u64, last_ns: u64) -> FoldSlot {
        FoldSlot {
            row,
            count,
            first_ns,
            last_ns,
        }
    }

    fn report(row: u64) -> SignalReport {
        let mut report = crate::analysis::report::fixtures::signal(
            15,
            10,
            20,
            crate::analysis::classify::OriginClass::Explicit,
        );
        report.keys.fold_id = row;
        report
    }

    fn counts(reports: &[SignalReport]) -> Vec<(u64, u64, u64, u64)> {
        reports
            .iter()
            .map(|r| {
                let repeated = r.repeats.as_ref().expect("a repeat report");
                (
                    r.keys.fold_id,
                    repeated.count,
                    r.keys.time_ns,
                    repeated.last_ns,
                )
            })
            .collect()
    }

    fn time(ns: u64) -> String {
        ns.to_string()
    }

    #[test]
    fn old_final_counts_become_one_repeat_report_of_the_row() {
        let mut folds = Folds::new(0);
        folds.remember(&report(7));
        folds.on_repeats(&RepeatsEvent {
            row: 7,
            count: 1000,
            first_ns: 10,
            last_ns: 90,
            ..RepeatsEvent::default()
        });
        let out = folds.take(time, false);
        assert_eq!(counts(&out), [(7, 1000, 10, 90)]);
        assert_eq!(out[0].time, "10");
        let repeats = out[0].repeats.as_ref().unwrap();
        assert_eq!(
            (repeats.first_time.as_str(), repeats.last_time.as_str()),
            ("10", "90")
        );
        assert!(folds.take(time, true).is_empty());
        assert_eq!(folds.unmatched, 0);
    }

    #[test]
    fn cumulative_counts_are_reported_once_however_often_read() {
        let mut folds = Folds::new(0);
        folds.remember(&report(7));
        folds.poll(&[slot(7, 40, 10, 50), slot(8, 0, 0, 5)], false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 40, 10, 50)]);
        // The same count read again adds nothing; duplicates in one read neither.
        folds.poll(&[slot(7, 40, 10, 50), slot(7, 40, 10, 50)], false);
        assert!(folds.take(time, false).is_empty());
        folds.poll(&[slot(7, 100, 10, 120)], true);
        assert_eq!(counts(&folds.take(time, true)), [(7, 60, 50, 120)]);
        assert_eq!(folds.unmatched, 0);
    }

    #[test]
    fn counts_wait_for_their_report_and_unknown_ones_are_counted_at_the_end() {
        let mut folds = Folds::new(0);
        folds.poll(&[slot(9, 5, 1, 2), slot(11, 3, 1, 2)], false);
        assert!(folds.take(time, false).is_empty());
        folds.remember(&report(9));
        assert_eq!(counts(&folds.take(time, false)), [(9, 5, 1, 2)]);
        assert!(folds.take(time, true).is_empty());
        assert_eq!(folds.unmatched, 3);
    }

    #[test]
    fn a_view_reports_a_storm_every_so_often_and_as_soon_as_it_pauses() {
        let mut folds = Folds::new(1000);
        folds.remember(&report(7));
        folds.poll(&[slot(7, 10, 100, 200)], false);
        assert!(folds.take(time, false).is_empty());
        folds.poll(&[slot(7, 30, 100, 900)], false);
        assert!(folds.take(time, false).is_empty());
        // A second after the first repeat, still storming: the count so far.
        folds.poll(&[slot(7, 50, 100, 1200)], false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 50, 100, 1200)]);
        folds.poll(&[slot(7, 55, 100, 1300)], false);
        assert!(folds.take(time, false).is_empty());
        // A read that adds nothing: the storm paused, what it had goes out.
        folds.poll(&[slot(7, 55, 100, 1300)], false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 5, 1200, 1300)]);
        // One more sporadic repeat, long after: out at once.
        folds.poll(&[slot(7, 56, 100, 5000)], false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 1, 1300, 5000)]);
        // Another one soon after: out as soon as a read adds nothing.
        folds.poll(&[slot(7, 57, 100, 5100)], false);
        assert!(folds.take(time, false).is_empty());
        folds.poll(&[slot(7, 57, 100, 5100)], false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 1, 5000, 5100)]);
        // Pruned by the reader (idle): gone from the reads, then forgotten.
        folds.poll(&[], false);
        folds.poll(&[], false);
        folds.poll(&[], false);
        assert!(folds.reports.is_empty());
        assert!(folds.take(time, true).is_empty());
        assert_eq!(folds.unmatched, 0);
    }

    #[test]
    fn reports_without_a_fold_id_are_not_kept_and_gone_rows_are_forgotten() {
        let mut folds = Folds::new(0);
        folds.remember(&report(0));
        assert!(folds.reports.is_empty());
        for row in 1..=100 {
            folds.remember(&report(row));
        }
        let live = [slot(5, 0, 0, 1)];
        folds.poll(&live, false);
        folds.poll(&live, false);
        folds.poll(&live, false);
        assert_eq!(folds.reports.keys().copied().collect::<Vec<_>>(), [5]);
    }
}
