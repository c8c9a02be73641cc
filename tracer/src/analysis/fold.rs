//! The recorder's storms as counts: the kernel folds identical signals into the record
//! of an earlier one (`FoldSlot` in tracer-common) and says how many in a
//! [`RepeatsEvent`]; this turns those counts back into reports that repeat the earlier
//! one's, with the count (`repeats`) and the time of the first and last of them.
//!
//! Counts a storm leaves behind when it stops stay in the kernel's per-CPU slots until
//! that CPU generates another signal, so the slots are also read from here
//! ([`Folds::poll`]); what a read finds is reported at once and subtracted from the
//! final count when the kernel sends it. Everything here is free of eBPF, so that it can
//! be tested with made-up slots and records.

use std::collections::{HashMap, VecDeque};

use tracer_common::{FoldSlot, RepeatsEvent};

use crate::analysis::report::{Repeated, SignalReport};

/// Reports kept for repeats that arrive after them. A row's repeats come within
/// [`tracer_common::FOLD_WINDOW_NS`] of it, and a busy machine makes a few thousand
/// reports in that time.
const REMEMBERED_REPORTS: usize = 8192;

/// Repeats counted but not reported yet: their report has not been released (the
/// correlator holds some reports briefly) or not read from the ring yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    row: u64,
    count: u64,
    first_ns: u64,
    last_ns: u64,
}

#[derive(Default)]
pub struct Folds {
    reports: HashMap<u64, Box<SignalReport>>,
    order: VecDeque<u64>,
    /// Per row still being folded: repeats already reported from slot reads, and the
    /// time of the last of them.
    reported: HashMap<u64, (u64, u64)>,
    waiting: Vec<Waiting>,
    /// The previous read of the slots (see [`Folds::poll`]).
    previous_read: Vec<FoldSlot>,
    /// Repeats whose report was never seen (a bug or a lost record): counted, not
    /// silently dropped.
    pub unmatched: u64,
}

impl Folds {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A report the kernel may fold later signals into.
    pub fn remember(&mut self, report: &SignalReport) {
        let row = report.keys.fold_id;
        if row == 0 {
            return;
        }
        if self.order.len() >= REMEMBERED_REPORTS
            && let Some(oldest) = self.order.pop_front()
        {
            self.reports.remove(&oldest);
        }
        let mut kept = Box::new(report.clone());
        kept.repeats = None;
        self.reports.insert(row, kept);
        self.order.push_back(row);
    }

    /// The kernel's final count for a row.
    pub fn on_repeats(&mut self, event: &RepeatsEvent) {
        let (count, first_ns) = match self.reported.remove(&event.row) {
            Some((reported, last_ns)) => (event.count.saturating_sub(reported), last_ns),
            None => (event.count, event.first_ns),
        };
        self.wait(event.row, count, first_ns, event.last_ns);
    }

    /// Counts in the kernel's slots, from two reads one after the other (the second
    /// is kept for the next call). A slot is used only when both reads show the same
    /// row: the kernel clears `row` before it changes the other fields and sets it
    /// last, so the second read's count then belongs to that row. `stable` says no
    /// program can change the slots any more (the final read).
    pub fn poll(&mut self, first_read: &[FoldSlot], second_read: &[FoldSlot], stable: bool) {
        for (index, slot) in second_read.iter().enumerate() {
            let same_row = first_read
                .get(index)
                .is_some_and(|first| first.row == slot.row);
            if slot.row == 0 || slot.count == 0 || !(same_row || stable) {
                continue;
            }
            let (reported, last_ns) = self
                .reported
                .get(&slot.row)
                .copied()
                .unwrap_or((0, slot.first_ns));
            if slot.count > reported {
                self.wait(slot.row, slot.count - reported, last_ns, slot.last_ns);
                self.reported.insert(slot.row, (slot.count, slot.last_ns));
            }
        }
        self.previous_read = second_read.to_vec();
    }

    /// The read [`Folds::poll`] compares the next one with.
    #[must_use]
    pub fn previous_read(&self) -> &[FoldSlot] {
        &self.previous_read
    }

    fn wait(&mut self, row: u64, count: u64, first_ns: u64, last_ns: u64) {
        if count == 0 {
            return;
        }
        // A row counted twice before it is released (several slot reads) is one
        // report.
        if let Some(waiting) = self.waiting.iter_mut().find(|w| w.row == row) {
            waiting.count += count;
            waiting.last_ns = waiting.last_ns.max(last_ns);
            return;
        }
        self.waiting.push(Waiting {
            row,
            count,
            first_ns,
            last_ns,
        });
    }

    /// Reports for the repeats whose report is known; `time` formats a boot time as
    /// reports show it. With `last`, repeats still without a report are counted in
    /// [`Folds::unmatched`].
    pub fn take(&mut self, time: impl Fn(u64) -> String, last: bool) -> Vec<SignalReport> {
        let mut out = Vec::new();
        let reports = &self.reports;
        self.waiting.retain(|waiting| {
            let Some(report) = reports.get(&waiting.row) else {
                return true;
            };
            let mut repeat = (**report).clone();
            repeat.time = time(waiting.first_ns);
            repeat.keys.time_ns = waiting.first_ns;
            repeat.repeats = Some(Repeated {
                count: waiting.count,
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
            ..FoldSlot::default()
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
    fn final_count_becomes_one_repeat_report_of_the_row() {
        let mut folds = Folds::new();
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
        assert_eq!(out[0].repeats.as_ref().unwrap().last_time, "90");
        assert!(folds.take(time, true).is_empty());
        assert_eq!(folds.unmatched, 0);
    }

    #[test]
    fn slot_reads_report_early_and_the_final_count_only_adds_the_rest() {
        let mut folds = Folds::new();
        folds.remember(&report(7));
        let first = [slot(7, 40, 10, 50), slot(0, 0, 0, 0)];
        let second = [slot(7, 60, 10, 70), slot(0, 0, 0, 0)];
        folds.poll(&first, &second, false);
        assert_eq!(counts(&folds.take(time, false)), [(7, 60, 10, 70)]);
        // The same count read again adds nothing.
        folds.poll(&second, &second, false);
        assert!(folds.take(time, false).is_empty());
        folds.on_repeats(&RepeatsEvent {
            row: 7,
            count: 100,
            first_ns: 10,
            last_ns: 120,
            ..RepeatsEvent::default()
        });
        assert_eq!(counts(&folds.take(time, false)), [(7, 40, 70, 120)]);
    }

    #[test]
    fn a_slot_that_changed_row_between_the_reads_is_left_for_later() {
        let mut folds = Folds::new();
        folds.remember(&report(7));
        folds.remember(&report(8));
        folds.poll(&[slot(7, 40, 10, 50)], &[slot(8, 3, 60, 61)], false);
        assert!(folds.take(time, false).is_empty());
        // Once both reads agree it counts.
        folds.poll(&[slot(8, 3, 60, 61)], &[slot(8, 5, 60, 63)], false);
        assert_eq!(counts(&folds.take(time, false)), [(8, 5, 60, 63)]);
        // The final read after the programs are gone needs no second look.
        folds.poll(&[], &[slot(8, 9, 60, 70)], true);
        assert_eq!(counts(&folds.take(time, false)), [(8, 4, 63, 70)]);
    }

    #[test]
    fn repeats_wait_for_their_report_and_unknown_ones_are_counted() {
        let mut folds = Folds::new();
        folds.on_repeats(&RepeatsEvent {
            row: 9,
            count: 5,
            first_ns: 1,
            last_ns: 2,
            ..RepeatsEvent::default()
        });
        folds.on_repeats(&RepeatsEvent {
            row: 11,
            count: 3,
            first_ns: 1,
            last_ns: 2,
            ..RepeatsEvent::default()
        });
        assert!(folds.take(time, false).is_empty());
        folds.remember(&report(9));
        assert_eq!(counts(&folds.take(time, false)), [(9, 5, 1, 2)]);
        assert!(folds.take(time, true).is_empty());
        assert_eq!(folds.unmatched, 3);
    }

    #[test]
    fn reports_without_a_fold_id_are_not_kept_and_memory_is_bounded() {
        let mut folds = Folds::new();
        folds.remember(&report(0));
        assert!(folds.reports.is_empty());
        for row in 1..=(REMEMBERED_REPORTS as u64 + 10) {
            folds.remember(&report(row));
        }
        assert_eq!(folds.reports.len(), REMEMBERED_REPORTS);
        assert!(!folds.reports.contains_key(&1));
    }
}
