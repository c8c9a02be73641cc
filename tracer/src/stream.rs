//! The loop every mode shares: wait for the ring buffer (or the next tick), decode what
//! is there, feed the correlator, hand back the reports that are ready, and turn the
//! kernel's drop counters into `lost` reports.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use tokio::io::{Interest, unix::AsyncFd};

use crate::{
    clock::boot_now_ns,
    correlate::Correlator,
    decode::{self, Event},
    fold::Folds,
    load::{self, LoadError, Tracer},
    report::{LostReport, Report},
};

/// How often the ring buffer is drained even without a wakeup: records below the
/// wakeup threshold wait at most this long.
pub const TICK: Duration = Duration::from_millis(20);
/// Records read per [`EventStream::drain`]; the rest wait for the next pass.
const MAX_RECORDS_PER_DRAIN: usize = 1024;
/// Fill level that wakes the reader at once (storms).
pub const WAKEUP_BYTES: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("reading the ring buffer: {0}")]
    Ring(io::Error),
    #[error("{0}")]
    Load(#[from] LoadError),
}

pub struct EventStream {
    pub tracer: Tracer,
    ring: AsyncFd<RingBuf<MapData>>,
    pub correlator: Correlator,
    ticker: tokio::time::Interval,
    dropped_seen: [u64; 8],
    /// Records that failed to decode (a version mismatch or a bug); counted, not fatal.
    pub bad_records: u64,
    /// The last pass stopped at its limit with records left: the next wait returns at
    /// once. The kernel wakes the reader only when the ring's fill level crosses a
    /// threshold, so without this a flood would be read one pass per tick.
    more_pending: bool,
    /// The recorder's storms, counted in the kernel (see [`EventStream::with_folding`]).
    folds: Option<Folds>,
}

impl EventStream {
    /// Must be called inside a tokio runtime.
    pub fn new(mut tracer: Tracer, correlator: Correlator) -> Result<Self, StreamError> {
        let ring = tracer
            .take_ring()
            .ok_or_else(|| StreamError::Ring(io::Error::other("ring buffer already taken")))?;
        // SAFETY: RingBuf owns its map fd and keeps it open, unchanged, until dropped, and
        // the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| StreamError::Ring(io::Error::other(e.to_string())))?;
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            tracer,
            ring,
            correlator,
            ticker,
            dropped_seen: [0; 8],
            bad_records: 0,
            more_pending: false,
            folds: None,
        })
    }

    /// For a tracer loaded with `fold_repeats`: turns the kernel's counts of identical
    /// signals into reports (with `repeats`).
    pub fn with_folding(mut self) -> Self {
        self.folds = Some(Folds::new());
        self
    }

    /// Reads at least every `tick` instead of [`TICK`]: the recorder, which nobody
    /// watches line by line, wakes less often when idle.
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.ticker = tokio::time::interval(tick);
        self.ticker
            .set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self
    }

    /// Waits until the kernel wakes us or the tick comes. Cancel-safe: nothing is read
    /// here, so callers can `select!` it against their own stop conditions.
    pub async fn wait(&mut self) -> Result<(), StreamError> {
        if self.more_pending {
            // Let the caller's other branches (signals, writers) run between passes.
            tokio::task::yield_now().await;
            return Ok(());
        }
        tokio::select! {
            guard = self.ring.readable_mut() => {
                guard.map_err(StreamError::Ring)?.clear_ready();
            }
            _ = self.ticker.tick() => {}
        }
        Ok(())
    }

    /// Reads everything queued and returns the reports that are ready, in the kernel's
    /// order; `last` releases held reports too (shutdown).
    pub fn drain(&mut self, last: bool) -> Result<Vec<Report>, StreamError> {
        // Bounded per pass so that a sustained flood still hands reports over (and
        // lets writers commit) every pass instead of only once the ring runs dry; the
        // last pass reads everything.
        if last {
            // Everything the kernel produced until now, and nothing after: a storm
            // elsewhere on the machine would otherwise keep the last pass going.
            self.tracer.stop_producing();
        }
        // Slots before the ring: the kernel arms a slot only after the record it
        // counts against is in the ring, so this pass or a later one reads that record.
        if !last {
            self.poll_folds(false)?;
        }
        let mut read = 0;
        self.more_pending = false;
        while let Some(item) = self.ring.get_mut().next() {
            read += 1;
            match decode::decode(&item) {
                Ok(Event::Repeats(repeats)) => {
                    if let Some(folds) = &mut self.folds {
                        folds.on_repeats(&repeats);
                    }
                }
                Ok(event) => self.correlator.apply(&event),
                Err(error) => {
                    self.bad_records += 1;
                    if self.bad_records == 1 {
                        eprintln!("sigwho: skipping a bad record: {error}");
                    }
                }
            }
            if !last && read >= MAX_RECORDS_PER_DRAIN {
                self.more_pending = true;
                break;
            }
        }
        if last {
            // The programs are gone: what the slots hold now is final.
            self.poll_folds(true)?;
        }
        let mut reports = self
            .correlator
            .release(if last { u64::MAX } else { boot_now_ns() });
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
        if let Some(lost) = self.lost_report()? {
            reports.push(Report::Lost(lost));
        }
        Ok(reports)
    }

    /// Records dropped so far, all kinds.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_seen.iter().sum()
    }

    fn poll_folds(&mut self, stable: bool) -> Result<(), StreamError> {
        let Some(folds) = &mut self.folds else {
            return Ok(());
        };
        let slots = self.tracer.fold_slots()?;
        let previous = folds.previous_read().to_vec();
        folds.poll(&previous, &slots, stable);
        Ok(())
    }

    /// A lost report when the kernel's drop counters moved since the last look.
    fn lost_report(&mut self) -> Result<Option<LostReport>, StreamError> {
        let now = self.tracer.dropped()?;
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
        for (index, (seen, now)) in self.dropped_seen.iter_mut().zip(now).enumerate() {
            let delta = now.saturating_sub(*seen);
            *seen = now;
            if delta > 0 {
                *by_kind.entry(load::kind_name(index)).or_insert(0) += delta;
                count += delta;
            }
        }
        Ok((count > 0).then(|| LostReport {
            event: "lost",
            time: self.correlator.time(boot_now_ns()),
            count,
            by_kind,
        }))
    }
}

/// Report output that ends quietly when the reader goes away (`sigwho ... | head -1`).
pub struct ReportWriter<W: Write> {
    out: W,
    json: bool,
    /// Reports of the current pass, written out together by [`ReportWriter::flush`]:
    /// one write per pass instead of one per report.
    pending: Vec<u8>,
    pub closed: bool,
}

impl<W: Write> ReportWriter<W> {
    pub fn new(out: W, json: bool) -> Self {
        Self {
            out,
            json,
            pending: Vec::new(),
            closed: false,
        }
    }

    /// Queues a report; call [`ReportWriter::flush`] at the end of the pass.
    pub fn emit(&mut self, report: &Report) {
        if self.closed {
            return;
        }
        if self.json {
            self.pending.extend_from_slice(report.to_json().as_bytes());
            self.pending.push(b'\n');
        } else {
            self.pending
                .extend_from_slice(crate::color::for_stdout(&report.to_text()).as_bytes());
        }
        // Bounded: a huge pass goes out in pieces.
        if self.pending.len() >= 1 << 20 {
            self.flush();
        }
    }

    /// Writes what the pass queued. A closed output (a reader that went away) marks
    /// the writer closed; the caller ends quietly.
    pub fn flush(&mut self) {
        if self.closed || self.pending.is_empty() {
            self.pending.clear();
            return;
        }
        if self
            .out
            .write_all(&self.pending)
            .and_then(|()| self.out.flush())
            .is_err()
        {
            self.closed = true;
        }
        self.pending.clear();
    }
}

/// Resolves when `signal` arrives; never, when it could not be registered.
pub async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves at `deadline`; never without one.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
