//! Reports as journal rows (the writer thread's work), and what makes one signal a
//! repeat of another.

use std::collections::HashMap;

use super::{queue::Queued, saturate};
use crate::{
    analysis::report::{Report, SignalReport},
    model::{clock, clock::BootClock, lineage::ProcKey},
    store::journal::{Gap, Kind, ProcRef, Row},
};

/// Turns reports into journal rows; runs on the writer thread.
pub struct Encoder {
    /// The correlator's clock, so that stored times match the reports' text.
    pub(super) clock: BootClock,
    ns_per_tick: u64,
    /// The boot the reports are from.
    pub(super) boot_id: String,
}

pub(super) enum Encoded {
    Row(Row),
    Gap(Gap),
}

/// Which signals may repeat one another: from one sender thread to one target thread.
pub(super) type RepeatKey = (u32, u32, Option<u32>);

pub(super) fn repeat_key(report: &Report) -> Option<RepeatKey> {
    match report {
        Report::Signal(r) => Some((r.sender.pid, r.sender.tid, r.target.as_ref().map(|t| t.tid))),
        _ => None,
    }
}

impl Encoder {
    #[must_use]
    pub fn new(clock: BootClock, ticks_per_second: u64, boot_id: String) -> Self {
        Self {
            clock,
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
            boot_id,
        }
    }

    /// Rows for a batch, repeats folded into the row of the signal they repeat; the
    /// batch's gaps are added to `gaps`.
    pub(super) fn encode_batch(&self, batch: &[Queued], gaps: &mut Vec<Gap>) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        // Per sender thread and target: the last signal's row and report.
        let mut last: HashMap<RepeatKey, (usize, &SignalReport)> = HashMap::new();
        for item in batch {
            let signal = match (&item.report, repeat_key(&item.report)) {
                (Report::Signal(r), Some(key)) => Some((key, &**r)),
                _ => None,
            };
            if let Some((key, r)) = signal
                && let Some(&(index, previous)) = last.get(&key)
                && repeats(previous, r)
            {
                let row = &mut rows[index];
                row.count += item.count;
                row.last_ns = item.last_ns;
                continue;
            }
            match self.encode(&item.report) {
                Encoded::Row(mut row) => {
                    if let Some((key, r)) = signal {
                        last.insert(key, (rows.len(), r));
                    }
                    row.count = item.count;
                    row.last_ns = item.last_ns;
                    rows.push(row);
                }
                Encoded::Gap(gap) => gaps.push(gap),
            }
        }
        rows
    }

    pub(super) fn encode(&self, report: &Report) -> Encoded {
        let time_ns = report_time(&self.clock, report);
        match report {
            Report::Signal(r) => {
                let target = match (&r.target, r.keys.target) {
                    (Some(t), key) => Some(ProcRef {
                        pid: t.pid,
                        start_ticks: key.map(|k| k.start_ticks),
                        start: t
                            .start_time
                            .clone()
                            .or_else(|| key.map(|k| self.start_of(k))),
                    }),
                    (None, Some(key)) => Some(self.proc_ref(key)),
                    (None, None) => None,
                };
                let sender = Some(ProcRef {
                    pid: r.sender.pid,
                    start_ticks: r.keys.sender.map(|k| k.start_ticks),
                    start: r.sender.start_time.clone(),
                });
                Encoded::Row(Row {
                    time_ns,
                    count: 1,
                    last_ns: time_ns,
                    kind: Kind::Signal,
                    signo: Some(r.signo),
                    target,
                    target_comm: r.target.as_ref().map(|t| t.comm.clone()),
                    sender,
                    boot_id: self.boot_id.clone(),
                    json: crate::render::json::report(report),
                    text: crate::render::text::report(report),
                })
            }
            Report::Exit(r) => Encoded::Row(Row {
                time_ns,
                count: 1,
                last_ns: time_ns,
                kind: Kind::Exit,
                signo: r.signo,
                target: Some(r.key.map_or_else(
                    || ProcRef {
                        pid: r.pid,
                        ..ProcRef::default()
                    },
                    |key| self.proc_ref(key),
                )),
                target_comm: Some(r.comm.clone()),
                sender: None,
                boot_id: self.boot_id.clone(),
                json: crate::render::json::report(report),
                text: crate::render::text::report(report),
            }),
            Report::Lost(r) => Encoded::Gap(Gap {
                time_ns,
                count: r.count,
                reason: "ring_buffer".to_owned(),
            }),
        }
    }

    fn proc_ref(&self, key: ProcKey) -> ProcRef {
        ProcRef {
            pid: key.pid,
            start_ticks: Some(key.start_ticks),
            start: Some(self.start_of(key)),
        }
    }

    /// A start time from /proc's clock ticks, as the correlator shows one.
    fn start_of(&self, key: ProcKey) -> String {
        let boot_ns = key.start_ticks.saturating_mul(self.ns_per_tick);
        clock::rfc3339_nanos(self.clock.unix_ns(boot_ns))
    }
}

/// Whether `next` would print as `previous` does but for its time: then it is stored as
/// a repeat. Every field is named, so that a field added to reports must be decided on
/// here.
pub(super) fn repeats(previous: &SignalReport, next: &SignalReport) -> bool {
    let SignalReport {
        event,
        time: _,
        signal,
        signo,
        origin,
        code,
        requested,
        scope,
        requested_tid,
        requested_pid,
        call,
        result,
        errno,
        value,
        fault_addr,
        group,
        origin_class,
        relation,
        cause,
        root_sender,
        hints,
        escalation,
        sender,
        target,
        // Not printed; the time of the signal and the identities the rest shows.
        keys: _,
        // Like the time: how many identical signals it stands for.
        repeats: _,
    } = previous;
    // The cheap and most often different fields first.
    *signo == next.signo
        && *result == next.result
        && *requested == next.requested
        && *code == next.code
        && *origin == next.origin
        && *event == next.event
        && *signal == next.signal
        && *scope == next.scope
        && *requested_tid == next.requested_tid
        && *requested_pid == next.requested_pid
        && *call == next.call
        && *errno == next.errno
        && *value == next.value
        && *fault_addr == next.fault_addr
        && *group == next.group
        && *origin_class == next.origin_class
        && *relation == next.relation
        && *escalation == next.escalation
        && *cause == next.cause
        && *hints == next.hints
        && *root_sender == next.root_sender
        && *sender == next.sender
        && *target == next.target
}

/// When a report's event happened, in Unix ns.
pub(super) fn report_time(clock: &BootClock, report: &Report) -> i64 {
    let ns = match report {
        Report::Signal(r) => clock.unix_ns(r.keys.time_ns),
        // Exit and lost reports carry only their printed time (exact to the ns).
        Report::Exit(r) => clock::parse_time(&r.time, 0).unwrap_or_else(|_| clock::unix_now_ns()),
        Report::Lost(r) => clock::parse_time(&r.time, 0).unwrap_or_else(|_| clock::unix_now_ns()),
    };
    saturate(ns)
}
