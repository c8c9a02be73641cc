//! The recorder's side of the journal: a writer thread fed through a bounded queue.
//!
//! The reading task never waits for the disk: when the queue is full the report is
//! counted as dropped, and the writer records the drop as a gap. The writer commits a
//! batch at most [`COMMIT_INTERVAL`] after its first report arrived, so a recorder
//! killed outright loses well under a second of events. A signal that repeats the
//! previous one between the same sender thread and target within a batch (the same
//! report but for its time) adds to that one's row instead of taking one of its own
//! (the reading task folds them within each pass first, [`fold_repeats`]; the writer
//! again within its batch, [`encode::Encoder::encode_batch`]). A storm takes a few rows a
//! second, and each signal is counted.

mod encode;
mod limits;
mod queue;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::Path,
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use encode::Encoder;
pub use limits::{Limits, parse_age, parse_size};
pub use queue::{Queued, fold_repeats};

use crate::{
    model::clock,
    store::journal::{Gap, Journal, JournalError, Kind, Row, SessionUpdate},
};
use queue::{Pop, Queue};

/// Longest a report waits in the writer before its batch is committed.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// Most reports committed in one transaction.
const BATCH_MAX: usize = 512;
/// Consecutive failed commits after which the recorder gives up (and, under systemd,
/// is restarted).
const MAX_FAILED_COMMITS: u32 = 20;
/// The recorder leaves at least this much of the file system free (or a twentieth of it,
/// if that is less): below, it records gaps instead of events.
const DISK_RESERVE: u64 = 64 * 1024 * 1024;

/// Sets the journal's size budget, starts this recorder's session in it and trims it.
///
/// # Errors
///
/// When SQLite fails.
pub fn start_session(
    journal: &mut Journal,
    limits: &Limits,
    boot_id: &str,
) -> Result<(), JournalError> {
    journal.set_budget(limits.max_bytes)?;
    journal.begin_session(
        std::process::id(),
        env!("CARGO_PKG_VERSION"),
        boot_id,
        unix_now(),
    )?;
    journal.enforce_limits(limits.max_bytes, limits.max_age, unix_now())?;
    Ok(())
}

/// Whether `path` still names the file `journal` has open.
fn same_file(journal: &Journal, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(open) = journal.file_metadata() else {
        return true;
    };
    std::fs::symlink_metadata(path)
        .is_ok_and(|now| now.dev() == open.dev() && now.ino() == open.ino())
}

/// After a rotation the old journal's log files may still be under the path's name
/// (SQLite names them after the path it opened). Checkpointed and closed, they hold
/// nothing of the new journal, which must not start from them.
fn remove_stale_log(path: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => eprintln!(
                "sigwho: warning: cannot remove {}: {error}",
                Path::new(&name).display()
            ),
        }
    }
}

/// What was recorded and what was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub signals: u64,
    pub exits: u64,
    /// Events not recorded, by gap reason.
    pub dropped: BTreeMap<&'static str, u64>,
}

impl Totals {
    #[must_use]
    pub fn recorded(&self) -> u64 {
        self.signals + self.exits
    }

    #[must_use]
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// One line: "recorded N events (S signals, E exits) into PATH; dropped D".
    #[must_use]
    pub fn summary(&self, path: &Path) -> String {
        let mut line = format!(
            "recorded {} events ({} signals, {} exits) into {}; dropped {}",
            self.recorded(),
            self.signals,
            self.exits,
            path.display(),
            self.dropped_total()
        );
        if self.dropped_total() > 0 {
            let parts: Vec<String> = self
                .dropped
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(reason, n)| format!("{} {n}", reason.replace('_', " ")))
                .collect();
            let _ = write!(line, " ({})", parts.join(", "));
        }
        line
    }
}

/// Marks the queue's output closed when the writer thread ends, however it ends.
struct OutputGuard(Arc<Queue>);

impl Drop for OutputGuard {
    fn drop(&mut self) {
        self.0.close_output();
    }
}

pub struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<Result<Totals, JournalError>>>,
}

impl Writer {
    /// Starts the writer thread on `journal`.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn spawn(journal: Journal, encoder: Encoder, limits: Limits) -> std::io::Result<Writer> {
        let queue = Arc::new(Queue::new());
        let state = WriterState {
            journal,
            encoder,
            limits,
            queue: Arc::clone(&queue),
            totals: Totals::default(),
            failed_commits: 0,
            deferred: Vec::new(),
            disk_low: false,
        };
        let thread = std::thread::Builder::new()
            .name("sigwho-journal".to_owned())
            .spawn(move || {
                let _guard = OutputGuard(Arc::clone(&state.queue));
                state.run()
            })?;
        Ok(Writer {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues a report, waiting for room at most until `deadline`; after that the
    /// report is counted as dropped (and becomes a gap).
    pub fn send(&mut self, item: Queued, deadline: Instant) {
        self.queue.push(item, deadline);
    }

    /// Asks the writer to commit what it holds, close the journal and open it again
    /// at its path (log rotation).
    pub fn reopen(&mut self) {
        self.queue.request_reopen();
    }

    /// True once the writer thread has ended (it only ends early on failure).
    #[must_use]
    pub fn stopped(&self) -> bool {
        self.queue.output_closed()
    }

    /// Closes the queue, waits for the writer to commit everything and close the
    /// journal, and returns what it did.
    ///
    /// # Errors
    ///
    /// When the journal could not be written long enough for the writer to give up, or
    /// could not be reopened.
    pub fn finish(&mut self) -> Result<Totals, JournalError> {
        self.queue.close_input();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(Totals::default()),
        }
    }
}

struct WriterState {
    journal: Journal,
    encoder: Encoder,
    limits: Limits,
    queue: Arc<Queue>,
    totals: Totals,
    failed_commits: u32,
    /// Gaps for events lost in failed commits, written with the next one that works.
    deferred: Vec<Gap>,
    disk_low: bool,
}

impl WriterState {
    fn run(mut self) -> Result<Totals, JournalError> {
        let mut next_age_check = Instant::now() + self.limits.age_interval();
        let mut written_since_check = 0u64;
        loop {
            let mut batch = Vec::new();
            let mut closed = false;
            match self.queue.pop(next_age_check) {
                Pop::Report(report) => {
                    batch.push(report);
                    let deadline = Instant::now() + COMMIT_INTERVAL;
                    while batch.len() < BATCH_MAX {
                        match self.queue.pop(deadline) {
                            Pop::Report(report) => batch.push(report),
                            Pop::Timeout => break,
                            Pop::Closed => {
                                closed = true;
                                break;
                            }
                        }
                    }
                }
                Pop::Timeout => {}
                Pop::Closed => closed = true,
            }
            written_since_check += self.commit(&batch)?;
            if self.queue.take_reopen() {
                self.reopen()?;
                written_since_check = 0;
            }
            let now = Instant::now();
            if now >= next_age_check || written_since_check >= self.limits.size_interval() {
                self.trim();
                next_age_check = now + self.limits.age_interval();
                written_since_check = 0;
            }
            if closed {
                break;
            }
        }
        // Drops counted after the last batch, then the session's end.
        self.commit(&[])?;
        self.trim();
        if let Err(error) = self.journal.end_session(unix_now()) {
            eprintln!("sigwho: warning: {error}");
        }
        // Closing the connection checkpoints the log into the database and removes it.
        Ok(self.totals)
    }

    /// Commits a batch with the gaps due; returns the bytes it added. Failures are
    /// counted as dropped events; only a long run of them is fatal.
    fn commit(&mut self, batch: &[Queued]) -> Result<u64, JournalError> {
        let mut gaps = std::mem::take(&mut self.deferred);
        let mut rows = self.encoder.encode_batch(batch, &mut gaps);
        for (reason, (time_ns, count)) in self.queue.take_dropped() {
            gaps.push(Gap {
                time_ns,
                count,
                reason: reason.to_owned(),
            });
        }
        if self.disk_is_low() && !rows.is_empty() {
            gaps.push(Gap {
                time_ns: rows[0].time_ns,
                count: rows.iter().map(|r| r.count).sum(),
                reason: "disk_full".to_owned(),
            });
            rows.clear();
        }
        if rows.is_empty() && gaps.is_empty() {
            return Ok(0);
        }
        let bytes: u64 = rows.iter().map(Row::approx_bytes).sum();
        let dropped: u64 = gaps.iter().map(|g| g.count).sum();
        let recorded: u64 = rows.iter().map(|r| r.count).sum();
        let update = SessionUpdate {
            now_ns: unix_now(),
            recorded,
            dropped,
        };
        match self.journal.write(&rows, &gaps, update) {
            Ok(()) => {
                self.failed_commits = 0;
                for row in &rows {
                    match row.kind {
                        Kind::Signal => self.totals.signals += row.count,
                        Kind::Exit => self.totals.exits += row.count,
                    }
                }
                for gap in &gaps {
                    *self
                        .totals
                        .dropped
                        .entry(reason_key(&gap.reason))
                        .or_insert(0) += gap.count;
                }
                Ok(bytes)
            }
            Err(error) => {
                self.failed_commits += 1;
                if self.failed_commits == 1 {
                    eprintln!("sigwho: error: writing the journal: {error}; retrying");
                }
                if self.failed_commits >= MAX_FAILED_COMMITS {
                    return Err(error);
                }
                // The gaps are retried; the events are lost, and say so.
                self.deferred = gaps;
                if let Some(first) = rows.first() {
                    self.deferred.push(Gap {
                        time_ns: first.time_ns,
                        count: recorded,
                        reason: "write_error".to_owned(),
                    });
                }
                Ok(0)
            }
        }
    }

    /// SIGHUP: ends the session in the journal open now (everything before is already
    /// committed), checkpoints and closes it, and opens the journal at its path again,
    /// a new one when it was renamed or removed (log rotation). Reports that arrive
    /// meanwhile wait in the queue; any that do not fit are counted as a gap in the new
    /// journal. Failing to open the new journal is fatal, like a long run of failed
    /// commits: the recorder stops with the error.
    pub fn reopen(&mut self) -> Result<(), JournalError> {
        self.commit(&[])?;
        let path = self.journal.path().to_owned();
        if let Err(error) = self.journal.end_session(unix_now()) {
            eprintln!("sigwho: warning: {error}");
        }
        // Empties the log into the (possibly renamed) file, so that nothing of it is
        // left under the path's name for the new journal to pick up.
        if let Err(error) = self.journal.checkpoint() {
            eprintln!("sigwho: warning: {error}");
        }
        let renamed = !same_file(&self.journal, &path);
        // The old journal's lock must go first when the file was not renamed.
        let old = std::mem::replace(&mut self.journal, Journal::placeholder()?);
        drop(old);
        if renamed {
            remove_stale_log(&path);
        }
        let mut journal = Journal::create_or_open(&path)?;
        if journal.clock_offset(&self.encoder.boot_id)?.is_none() {
            let offset = saturate(self.encoder.clock.offset_ns());
            journal.set_clock_offset(&self.encoder.boot_id, offset, unix_now())?;
        }
        start_session(&mut journal, &self.limits, &self.encoder.boot_id)?;
        self.journal = journal;
        eprintln!(
            "sigwho: SIGHUP: reopened the journal {}{}",
            path.display(),
            if renamed { " (a new file)" } else { "" }
        );
        Ok(())
    }

    /// Applies --max-age and --max-size; a failure is reported, not fatal.
    fn trim(&mut self) {
        let result =
            self.journal
                .enforce_limits(self.limits.max_bytes, self.limits.max_age, unix_now());
        if let Err(error) = result {
            eprintln!("sigwho: warning: trimming the journal: {error}");
        }
    }

    /// Whether the journal's file system is nearly full (reported once per episode).
    fn disk_is_low(&mut self) -> bool {
        let low = free_space(self.journal.path())
            .is_some_and(|(free, total)| free < DISK_RESERVE.min(total / 20));
        if low && !self.disk_low {
            eprintln!(
                "sigwho: warning: the file system of {} is nearly full; events are counted as dropped until space is freed",
                self.journal.path().display()
            );
        }
        self.disk_low = low;
        low
    }
}

/// A gap reason as a static key for [`Totals::dropped`].
fn reason_key(reason: &str) -> &'static str {
    match reason {
        "ring_buffer" => "ring_buffer",
        "queue" => "queue",
        "disk_full" => "disk_full",
        _ => "write_error",
    }
}

/// (bytes available to unprivileged users, bytes in all) of the file system holding
/// `path`.
fn free_space(path: &Path) -> Option<(u64, u64)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::kernel::sys::free_space(dir)
}

#[must_use]
pub fn saturate(ns: i128) -> i64 {
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

#[must_use]
pub fn unix_now() -> i64 {
    saturate(clock::unix_now_ns())
}

#[cfg(test)]
mod tests;
