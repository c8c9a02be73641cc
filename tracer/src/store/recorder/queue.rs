//! The bounded queue between the reading task and the writer thread, and the folding of
//! repeats the reading task does before it queues a pass's reports.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Condvar, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use super::encode::{RepeatKey, repeat_key, repeats, report_time};
use super::saturate;
use crate::{analysis::report::Report, model::clock::BootClock};

/// Reports the queue between the reader and the writer holds (bounded memory).
pub(super) const QUEUE_CAPACITY: usize = 4096;

/// Reports the reader could not queue, by gap reason: (time of the first, count).
type Pending = BTreeMap<&'static str, (i64, u64)>;

/// The bounded queue between the reading task and the writer thread.
///
/// The reader waits for room only until a deadline (a short, fixed budget per pass over
/// the ring buffer, which meanwhile keeps filling in the kernel); past it, reports are
/// counted as dropped and become a gap. The writer waits for reports with a timeout.
pub(super) struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a report arrives or the input closes.
    readable: Condvar,
    /// Signalled when the writer takes reports or goes away.
    writable: Condvar,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Queued>,
    /// The reader is done: the writer empties the queue and stops.
    input_closed: bool,
    /// The writer is gone (it failed): reports are dropped at once.
    output_closed: bool,
    /// SIGHUP asked for the journal to be closed and opened again at its path.
    reopen: bool,
    dropped: Pending,
}

/// A report with the identical repeats the reading task folded into it.
pub struct Queued {
    pub(super) report: Report,
    /// When it happened, Unix ns.
    pub(super) time_ns: i64,
    /// The events it stands for: 1 and its repeats.
    pub(super) count: u64,
    /// When the last of them happened.
    pub(super) last_ns: i64,
}

impl Queued {
    /// A report as the journal stores it: the identical signals the kernel counted
    /// with it (`repeats`) become the row's count, and leave the stored report.
    pub(super) fn new(clock: &BootClock, mut report: Report) -> Queued {
        let time_ns = report_time(clock, &report);
        let repeated = match &mut report {
            Report::Signal(signal) => signal.repeats.take(),
            _ => None,
        };
        let (count, last_ns) = repeated.map_or((1, time_ns), |r| {
            (r.count, saturate(clock.unix_ns(r.last_ns)))
        });
        Queued {
            report,
            time_ns,
            count,
            last_ns,
        }
    }

    #[cfg(test)]
    pub(super) fn one(report: Report, time_ns: i64) -> Queued {
        Queued {
            report,
            time_ns,
            count: 1,
            last_ns: time_ns,
        }
    }
}

/// Folds each signal of one pass over the ring buffer that repeats the previous one
/// between the same sender thread and target (see [`repeats`]) into that one. The
/// reports folded away are freed here, on the reading thread, which is much cheaper
/// than handing each to the writer thread.
#[must_use]
pub fn fold_repeats(clock: &BootClock, reports: Vec<Report>) -> Vec<Queued> {
    let mut out: Vec<Queued> = Vec::with_capacity(reports.len().min(64));
    let mut last: HashMap<RepeatKey, usize> = HashMap::new();
    for report in reports {
        let item = Queued::new(clock, report);
        let key = repeat_key(&item.report);
        if let Some(key) = key
            && let Some(&index) = last.get(&key)
            && let (Report::Signal(previous), Report::Signal(next)) =
                (&out[index].report, &item.report)
            && repeats(previous, next)
        {
            out[index].count += item.count;
            out[index].last_ns = out[index].last_ns.max(item.last_ns);
            continue;
        }
        if let Some(key) = key {
            last.insert(key, out.len());
        }
        out.push(item);
    }
    out
}

pub(super) enum Pop {
    Report(Queued),
    Timeout,
    Closed,
}

impl Queue {
    pub(super) fn new() -> Queue {
        Queue {
            state: Mutex::new(QueueState::default()),
            readable: Condvar::new(),
            writable: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, waiting for room until `deadline`; counts what it stands for as
    /// dropped when there is none by then.
    pub(super) fn push(&self, item: Queued, deadline: Instant) {
        let mut state = self.lock();
        while state.items.len() >= QUEUE_CAPACITY && !state.output_closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .writable
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.items.len() < QUEUE_CAPACITY && !state.output_closed {
            state.items.push_back(item);
            self.readable.notify_one();
            return;
        }
        let count = match &item.report {
            Report::Lost(lost) => lost.count,
            _ => item.count,
        };
        let entry = state.dropped.entry("queue").or_insert((item.time_ns, 0));
        entry.1 += count;
    }

    /// The next report, waiting until `deadline`.
    pub(super) fn pop(&self, deadline: Instant) -> Pop {
        let mut state = self.lock();
        loop {
            if let Some(report) = state.items.pop_front() {
                self.writable.notify_one();
                return Pop::Report(report);
            }
            if state.input_closed {
                return Pop::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // A reopen ends the batch early: the writer commits it and reopens.
            if left.is_zero() || state.reopen {
                return Pop::Timeout;
            }
            state = self
                .readable
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(super) fn request_reopen(&self) {
        self.lock().reopen = true;
        self.readable.notify_all();
    }

    pub(super) fn take_reopen(&self) -> bool {
        std::mem::take(&mut self.lock().reopen)
    }

    pub(super) fn take_dropped(&self) -> Pending {
        std::mem::take(&mut self.lock().dropped)
    }

    pub(super) fn close_input(&self) {
        self.lock().input_closed = true;
        self.readable.notify_all();
    }

    pub(super) fn close_output(&self) {
        self.lock().output_closed = true;
        self.writable.notify_all();
    }

    pub(super) fn output_closed(&self) -> bool {
        self.lock().output_closed
    }
}
