//! One pass over what the kernel produced, turned into reports: records through the
//! correlator, the recorder's storm counts through the folds, drop counters into `lost`
//! reports. No kernel here: the ring reader (`crate::kernel::stream`) hands over what it read, and
//! a replay (`crate::analysis::replay`) hands over what a capture recorded, so both give the same
//! reports.

use std::collections::BTreeMap;

use tracer_common::FoldSlot;

use crate::{
    analysis::correlate::Correlator,
    analysis::fold::Folds,
    analysis::report::{LostReport, Report},
    kernel::decode::{self, Event},
};

/// What one pass read from the kernel.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    /// The ring buffer's records, in its order.
    pub events: Vec<Event>,
    /// The kernel's storm counts as read before the ring (some passes that are not the
    /// last, folding on).
    pub slots_before: Option<Vec<FoldSlot>>,
    /// The kernel's storm counts as read after the ring once the programs were detached
    /// (the last pass, folding on).
    pub slots_after: Option<Vec<FoldSlot>>,
    /// The kernel's drop counters (totals since load) by record kind.
    pub dropped: [u64; 8],
    /// The boot clock when the pass ended: reports held until then are released.
    pub now_ns: u64,
    /// The last pass (shutdown): everything held is released.
    pub last: bool,
}

pub struct Analyzer {
    pub correlator: Correlator,
    /// The recorder's storms, counted in the kernel (see [`Analyzer::with_folding`]).
    folds: Option<Folds>,
    dropped_seen: [u64; 8],
}

impl Analyzer {
    #[must_use]
    pub fn new(correlator: Correlator) -> Self {
        Self {
            correlator,
            folds: None,
            dropped_seen: [0; 8],
        }
    }

    /// For a tracer loaded with `fold_repeats`: turns the kernel's counts of identical
    /// signals into reports (with `repeats`), a storm's count so far at most every
    /// `every` while it goes on (zero: at every read).
    #[must_use]
    pub fn with_folding(mut self, every: std::time::Duration) -> Self {
        self.folds = Some(Folds::new(
            u64::try_from(every.as_nanos()).unwrap_or(u64::MAX),
        ));
        self
    }

    #[must_use]
    pub fn folding(&self) -> bool {
        self.folds.is_some()
    }

    /// Records dropped so far, all kinds.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped_seen.iter().sum()
    }

    /// The reports `pass` makes ready, in the kernel's order.
    pub fn pass(&mut self, pass: &Pass) -> Vec<Report> {
        // Counts before the ring: the kernel creates a key's entry before it submits
        // the record the key's counts belong to, so this pass or a later one reads it.
        if let Some(slots) = &pass.slots_before {
            self.poll_folds(slots, false);
        }
        for event in &pass.events {
            match event {
                Event::Repeats(repeats) => {
                    if let Some(folds) = &mut self.folds {
                        folds.on_repeats(repeats);
                    }
                }
                event => self.correlator.apply(event),
            }
        }
        if let Some(slots) = &pass.slots_after {
            // The programs are gone: what the slots hold now is final.
            self.poll_folds(slots, true);
        }
        let last = pass.last;
        let mut reports = self
            .correlator
            .release(if last { u64::MAX } else { pass.now_ns });
        if let Some(folds) = &mut self.folds {
            for report in &reports {
                if let Report::Signal(signal) = report {
                    folds.remember(signal);
                }
            }
            let correlator = &self.correlator;
            let repeats = folds.take(|ns| correlator.time(ns), last);
            reports.extend(repeats.into_iter().map(|r| Report::Signal(Box::new(r))));
        }
        if let Some(lost) = self.lost_report(&pass.dropped, pass.now_ns) {
            reports.push(Report::Lost(lost));
        }
        reports
    }

    fn poll_folds(&mut self, slots: &[FoldSlot], last: bool) {
        if let Some(folds) = &mut self.folds {
            folds.poll(slots, last);
        }
    }

    /// A lost report when the kernel's drop counters moved since the last look.
    fn lost_report(&mut self, dropped: &[u64; 8], now_ns: u64) -> Option<LostReport> {
        let mut by_kind = BTreeMap::new();
        let mut count = 0;
        // Repeats whose report never came: counted where drops are.
        if let Some(folds) = &mut self.folds
            && folds.unmatched > 0
        {
            by_kind.insert("repeats", folds.unmatched);
            count += folds.unmatched;
            folds.unmatched = 0;
        }
        for (index, (seen, now)) in self.dropped_seen.iter_mut().zip(dropped).enumerate() {
            let delta = now.saturating_sub(*seen);
            *seen = *now;
            if delta > 0 {
                *by_kind.entry(decode::kind_name(index)).or_insert(0) += delta;
                count += delta;
            }
        }
        (count > 0).then(|| LostReport {
            event: "lost",
            time: self.correlator.time(now_ns),
            count,
            by_kind,
        })
    }
}
