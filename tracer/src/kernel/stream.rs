//! The loop every mode shares: wait for the ring buffer (or the next tick), decode what
//! is there, feed the correlator, hand back the reports that are ready, and turn the
//! kernel's drop counters into `lost` reports.

use std::{io, sync::Arc, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use crate::{
    analysis::correlate::Correlator,
    analysis::pass::{Analyzer, Pass},
    analysis::replay::{Line, RawLog, RawPass, RawRecord},
    analysis::report::Report,
    kernel::load::{LoadError, Tracer},
    kernel::{decode, sys},
    model::clock::boot_now_ns,
};

/// How often the ring buffer is drained even without a wakeup: records below the
/// wakeup threshold wait at most this long.
pub const TICK: Duration = Duration::from_millis(20);
/// Records read per [`EventStream::drain`]; the rest wait for the next pass.
const MAX_RECORDS_PER_DRAIN: usize = 1024;
/// How often the recorder reads the kernel's storm counts (FOLDS): each read walks the
/// map with two system calls per key (the views read theirs every pass).
const FOLD_READ_EVERY_NS: u64 = 100_000_000;
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
    analyzer: Analyzer,
    ticker: tokio::time::Interval,
    /// Records that failed to decode (a version mismatch or a bug); counted, not fatal.
    pub bad_records: u64,
    /// The last pass stopped at its limit with records left: the next wait returns at
    /// once. The kernel wakes the reader only when the ring's fill level crosses a
    /// threshold, so without this a flood would be read one pass per tick.
    more_pending: bool,
    /// `sigwho record --raw`: every pass is also written here, for replays.
    capture: Option<Arc<RawLog>>,
    /// When FOLDS was last read (boot clock), and how often it is.
    folds_read_ns: u64,
    folds_read_every_ns: u64,
    /// Signals and failed attempts sent in full because FOLDS was full, as read at
    /// the last pass (`tracer_common::fold_stats`).
    pub fold_full: [u64; tracer_common::fold_stats::COUNT as usize],
}

impl EventStream {
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// When the ring buffer was taken already or cannot be registered with the runtime.
    pub fn new(mut tracer: Tracer, correlator: Correlator) -> Result<Self, StreamError> {
        let ring = tracer
            .take_ring()
            .ok_or_else(|| StreamError::Ring(io::Error::other("ring buffer already taken")))?;
        let ring = sys::async_ring(ring).map_err(StreamError::Ring)?;
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Self {
            tracer,
            ring,
            analyzer: Analyzer::new(correlator),
            ticker,
            bad_records: 0,
            more_pending: false,
            capture: None,
            folds_read_ns: 0,
            folds_read_every_ns: FOLD_READ_EVERY_NS,
            fold_full: [0; tracer_common::fold_stats::COUNT as usize],
        })
    }

    /// For a tracer loaded with `fold_repeats`: turns the kernel's counts of identical
    /// signals into reports (with `repeats`), each row's at most every `every` (0:
    /// every read) and when it ends.
    #[must_use]
    pub fn with_folding(mut self, every: Duration) -> Self {
        self.analyzer = self.analyzer.with_folding(every);
        // A view's map holds only the watched processes' keys: cheap to read every
        // pass, so that a repeated signal shows within a tick or two.
        if !every.is_zero() {
            self.folds_read_every_ns = 0;
        }
        self
    }

    /// Reads at least every `tick` instead of [`TICK`]: the recorder, which nobody
    /// watches line by line, wakes less often when idle.
    #[must_use]
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.ticker = tokio::time::interval(tick);
        self.ticker
            .set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self
    }

    /// Writes every pass to `log` as well (`sigwho record --raw`).
    #[must_use]
    pub fn with_capture(mut self, log: Arc<RawLog>) -> Self {
        self.capture = Some(log);
        self
    }

    #[must_use]
    pub fn correlator(&self) -> &Correlator {
        &self.analyzer.correlator
    }

    pub fn correlator_mut(&mut self) -> &mut Correlator {
        &mut self.analyzer.correlator
    }

    /// The correlator and the tracer at once, the tracer to change its target filter
    /// (the live view's selectors follow new processes).
    pub fn parts_mut(&mut self) -> (&mut Correlator, &mut Tracer) {
        (&mut self.analyzer.correlator, &mut self.tracer)
    }

    /// The correlator and the tracer at once (for what needs both).
    pub fn parts(&mut self) -> (&mut Correlator, &Tracer) {
        (&mut self.analyzer.correlator, &self.tracer)
    }

    /// Waits until the kernel wakes us or the tick comes. Cancel-safe: nothing is read
    /// here, so callers can `select!` it against their own stop conditions.
    ///
    /// # Errors
    ///
    /// When polling the ring buffer fails.
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
    ///
    /// # Errors
    ///
    /// When the storm counts or the drop counters cannot be read.
    pub fn drain(&mut self, last: bool) -> Result<Vec<Report>, StreamError> {
        // Bounded per pass so that a sustained flood still hands reports over (and
        // lets writers commit) every pass instead of only once the ring runs dry; the
        // last pass reads everything.
        if last {
            // Everything the kernel produced until now, and nothing after: a storm
            // elsewhere on the machine would otherwise keep the last pass going.
            self.tracer.stop_producing();
        }
        let folding = self.analyzer.folding();
        let mut pass = Pass {
            last,
            ..Pass::default()
        };
        if folding && !last {
            // Counts before the ring: the kernel creates a key's entry before it
            // submits the record its counts belong to, so this pass or a later one
            // reads that record.
            let now = boot_now_ns();
            if now.saturating_sub(self.folds_read_ns) >= self.folds_read_every_ns {
                self.folds_read_ns = now;
                pass.slots_before = Some(self.tracer.fold_counts(now, true)?);
            }
        }
        let mut raw = Vec::new();
        let mut read = 0;
        self.more_pending = false;
        while let Some(item) = self.ring.get_mut().next() {
            read += 1;
            if self.capture.is_some() {
                let mut bytes = item.to_vec();
                decode::sanitize(&mut bytes);
                raw.push(RawRecord::encode(&bytes));
            }
            match decode::decode(&item) {
                Ok(event) => pass.events.push(event),
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
        if folding && last {
            // The programs are gone: these counts are final.
            pass.slots_after = Some(self.tracer.fold_counts(boot_now_ns(), false)?);
            self.fold_full = self.tracer.fold_full()?;
        }
        pass.dropped = self.tracer.dropped()?;
        pass.now_ns = boot_now_ns();
        if let Some(log) = &self.capture {
            log.write(&Line::Pass(RawPass::of(&pass, raw)));
            log.flush();
        }
        Ok(self.analyzer.pass(&pass))
    }

    /// Records dropped so far, all kinds.
    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.analyzer.dropped_total()
    }
}
