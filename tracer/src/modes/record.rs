//! `sigwho record`: every signal on the machine, and every exit, into the journal
//! (docs/recorder.md).
//!
//! The reading task (the same stream as the live view, unfiltered) hands reports to a
//! writer thread through a bounded queue and never waits for the disk: when the queue is
//! full the report is counted as dropped, and the writer records the drop as a gap. The
//! writer commits a batch at most [`COMMIT_INTERVAL`] after its first report arrived, so
//! a recorder killed outright loses well under a second of events. A signal that repeats
//! the previous one between the same sender thread and target within a batch (the same
//! report but for its time) adds to that one's row instead of taking one of its own: the
//! reading task folds repeats within each pass over the ring buffer ([`fold_repeats`]),
//! so that a storm sends the writer one report per pass, not per signal, and the writer
//! folds them again within its batch ([`Encoder::encode_batch`]). A storm takes a few
//! rows a second, and each signal is counted.

use std::{
    collections::BTreeMap,
    collections::HashMap,
    collections::VecDeque,
    path::Path,
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::signal::unix::SignalKind;

use crate::{
    analysis::correlate::Correlator,
    analysis::redact::Redaction,
    analysis::replay::{self, Header, RawLog, Recorded},
    analysis::report::{Report, SignalReport},
    analysis::rules::Rules,
    cli::RecordArgs,
    kernel::load::{Options, Tracer},
    kernel::stream::{EventStream, WAKEUP_BYTES, recv},
    model::clock::{self, BootClock, ticks_per_second},
    model::lineage::{ProcKey, ProcessTable},
    model::procfs::SystemProc,
    store::export::Exports,
    store::journal::{self, Gap, Journal, JournalError, Kind, ProcRef, Row, SessionUpdate},
};

/// How often the recorder reads the ring buffer without a wakeup from the kernel
/// (which comes once the ring holds 256 KiB): a lone event waits at most this long,
/// well within the second a killed recorder may lose, and an idle recorder wakes five
/// times a second instead of fifty.
const RECORD_TICK: Duration = Duration::from_millis(200);

/// Longest a report waits in the writer before its batch is committed.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(250);
/// Most reports committed in one transaction.
const BATCH_MAX: usize = 512;
/// Reports the queue between the reader and the writer holds (bounded memory).
const QUEUE_CAPACITY: usize = 4096;
/// Longest the reader waits for room in the queue per pass over the ring buffer, so that
/// a burst larger than the queue is written rather than dropped when the writer keeps
/// up on average (the kernel's ring buffer holds what arrives meanwhile).
const SEND_WAIT: Duration = Duration::from_millis(500);
/// Consecutive failed commits after which the recorder gives up (and, under systemd,
/// is restarted).
const MAX_FAILED_COMMITS: u32 = 20;
/// The recorder leaves at least this much of the file system free (or a twentieth of it,
/// if that is less): below, it records gaps instead of events.
const DISK_RESERVE: u64 = 64 * 1024 * 1024;
/// How long a new recorder waits for the previous one's lock on the journal.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// A change of the wall clock's offset from the boot clock larger than this is a step
/// of the wall clock (measurements themselves differ by nanoseconds).
const CLOCK_STEP_NS: i128 = 10_000_000;
/// Smallest --max-size: an empty journal already takes some pages.
const MIN_SIZE: u64 = 1024 * 1024;

/// How large and how old the journal may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Limits {
    /// How often old events are looked for.
    fn age_interval(&self) -> Duration {
        (self.max_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Bytes written between size checks: a small part of the budget, so that the
    /// journal never overshoots by much.
    fn size_interval(&self) -> u64 {
        (self.max_bytes / 32).max(64 * 1024)
    }
}

pub async fn run(args: RecordArgs, rules: &'static Rules) -> anyhow::Result<()> {
    let path = journal::resolve(args.journal.as_deref());
    let limits = Limits {
        max_bytes: parse_size(&args.max_size).map_err(|e| anyhow::anyhow!("--max-size: {e}"))?,
        max_age: parse_age(&args.max_age).map_err(|e| anyhow::anyhow!("--max-age: {e}"))?,
    };
    // Privileges, then the journal: either failing stops us before anything is loaded
    // into the kernel.
    crate::kernel::load::check_privileges()?;
    let mut exports = Exports::open(args.json_out.as_deref(), args.otlp_endpoint.as_deref())?;
    let boot_id = boot_id();
    let mut journal = open_journal(&path)?;
    let clock = session_clock(&journal, &boot_id)?;
    start_session(&mut journal, &limits, &boot_id)?;

    let tracer = Tracer::load(&Options {
        filter_targets: false,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: false,
        fold_repeats: true,
    })?;
    let tps = ticks_per_second();
    let cause_window_ns = u64::try_from(args.explain.cause_window.as_nanos()).unwrap_or(u64::MAX);
    let capture = match &args.raw {
        Some(path) => Some(raw_capture(path, clock, tps, cause_window_ns)?),
        None => None,
    };
    let table = match &capture {
        Some(log) => ProcessTable::snapshot(
            Box::new(Recorded::new(Box::new(SystemProc), Arc::clone(log))),
            tps,
        ),
        None => ProcessTable::from_proc(tps),
    };
    let correlator = Correlator::new(table, clock, tps)
        .with_cause_window(cause_window_ns)
        .with_rules(rules)
        .with_redaction(Redaction::new(&args.explain.redact)?);
    for warning in &tracer.warnings {
        eprintln!("sigwho: warning: {warning}");
    }
    for note in &tracer.notes {
        eprintln!("sigwho: note: {note}");
    }
    let mut stream = EventStream::new(tracer, correlator)?
        .with_tick(RECORD_TICK)
        .with_folding();
    if let Some(log) = capture {
        stream = stream.with_capture(log);
    }
    let encoder = Encoder {
        clock,
        ns_per_tick: 1_000_000_000 / tps.max(1),
        boot_id,
    };
    let mut writer = Writer::spawn(journal, encoder, limits)?;
    let mut interrupt = tokio::signal::unix::signal(SignalKind::interrupt()).ok();
    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate()).ok();
    let mut hangup = tokio::signal::unix::signal(SignalKind::hangup()).ok();
    eprintln!("sigwho: recording every signal into {}", path.display());

    let read: anyhow::Result<()> = async {
        loop {
            let mut done = false;
            let mut reopen = false;
            tokio::select! {
                ready = stream.wait() => ready?,
                _ = recv(&mut interrupt) => done = true,
                _ = recv(&mut terminate) => done = true,
                _ = recv(&mut hangup) => reopen = true,
            }
            // Everything already queued in the kernel is recorded, even when stopping.
            // A burst waits for the writer a little, then what does not fit is dropped.
            let deadline = Instant::now() + SEND_WAIT;
            let reports = stream.drain(done)?;
            exports.send(&reports);
            for item in fold_repeats(&clock, reports) {
                writer.send(item, deadline);
            }
            // After the drain, so that what the kernel held when SIGHUP came is queued
            // ahead of the reopen.
            if reopen {
                writer.reopen();
            }
            if done || writer.stopped() {
                return Ok(());
            }
        }
    }
    .await;
    // The writer commits what it holds whatever stopped the reading.
    let totals = writer.finish();
    read?;
    let totals = totals?;
    eprintln!("sigwho: {}", totals.summary(&path));
    if let Some(line) = exports.finish() {
        eprintln!("sigwho: {line}");
    }
    Ok(())
}

/// `--raw FILE`: a capture for replays (crate::analysis::replay), created 0600 (it holds command
/// lines).
fn raw_capture(
    path: &Path,
    clock: BootClock,
    ticks_per_second: u64,
    cause_window_ns: u64,
) -> anyhow::Result<Arc<RawLog>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("--raw {}", path.display()))?;
    let header = Header {
        format: replay::FORMAT,
        clock_offset_ns: saturate(clock.offset_ns()),
        ticks_per_second,
        cause_window_ns,
        fold_repeats: true,
    };
    Ok(Arc::new(RawLog::new(
        Box::new(std::io::BufWriter::new(file)),
        header,
    )))
}

/// Sets the journal's size budget, starts this recorder's session in it and trims it.
fn start_session(
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

/// Opens the journal for recording. A recorder that was just killed may still hold it
/// while the kernel tears down its programs: wait for that a little.
fn open_journal(path: &Path) -> Result<Journal, JournalError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Journal::create_or_open(path) {
            Err(JournalError::Locked(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

/// The clock that places kernel times on the wall clock. Every recorder in one boot uses
/// the offset the first one measured, so that a process's start time (its identity in
/// the JSON, with its pid) reads the same before and after a restart of the recorder;
/// a new offset is taken when the wall clock was stepped since.
fn session_clock(journal: &Journal, boot_id: &str) -> Result<BootClock, JournalError> {
    let fresh = BootClock::now();
    if let Some(stored) = journal.clock_offset(boot_id)?
        && (i128::from(stored) - fresh.offset_ns()).abs() <= CLOCK_STEP_NS
    {
        return Ok(BootClock::from_offset_ns(i128::from(stored)));
    }
    journal.set_clock_offset(boot_id, saturate(fresh.offset_ns()), unix_now())?;
    Ok(fresh)
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
    pub fn recorded(&self) -> u64 {
        self.signals + self.exits
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// One line: "recorded N events (S signals, E exits) into PATH; dropped D".
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
            line.push_str(&format!(" ({})", parts.join(", ")));
        }
        line
    }
}

/// Reports the reader could not queue, by gap reason: (time of the first, count).
type Pending = BTreeMap<&'static str, (i64, u64)>;

/// The bounded queue between the reading task and the writer thread.
///
/// The reader waits for room only until a deadline (a short, fixed budget per pass over
/// the ring buffer, which meanwhile keeps filling in the kernel); past it, reports are
/// counted as dropped and become a gap. The writer waits for reports with a timeout.
struct Queue {
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
struct Queued {
    report: Report,
    /// When it happened, Unix ns.
    time_ns: i64,
    /// The events it stands for: 1 and its repeats.
    count: u64,
    /// When the last of them happened.
    last_ns: i64,
}

impl Queued {
    /// A report as the journal stores it: the identical signals the kernel counted
    /// with it (`repeats`) become the row's count, and leave the stored report.
    fn new(clock: &BootClock, mut report: Report) -> Queued {
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
    fn one(report: Report, time_ns: i64) -> Queued {
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
fn fold_repeats(clock: &BootClock, reports: Vec<Report>) -> Vec<Queued> {
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

enum Pop {
    Report(Queued),
    Timeout,
    Closed,
}

impl Queue {
    fn new() -> Queue {
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
    fn push(&self, item: Queued, deadline: Instant) {
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
    fn pop(&self, deadline: Instant) -> Pop {
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

    fn request_reopen(&self) {
        self.lock().reopen = true;
        self.readable.notify_all();
    }

    fn take_reopen(&self) -> bool {
        std::mem::take(&mut self.lock().reopen)
    }

    fn take_dropped(&self) -> Pending {
        std::mem::take(&mut self.lock().dropped)
    }

    fn close_input(&self) {
        self.lock().input_closed = true;
        self.readable.notify_all();
    }

    fn close_output(&self) {
        self.lock().output_closed = true;
        self.writable.notify_all();
    }

    fn output_closed(&self) -> bool {
        self.lock().output_closed
    }
}

/// Marks the queue's output closed when the writer thread ends, however it ends.
struct OutputGuard(Arc<Queue>);

impl Drop for OutputGuard {
    fn drop(&mut self) {
        self.0.close_output();
    }
}

struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<Result<Totals, JournalError>>>,
}

impl Writer {
    fn spawn(journal: Journal, encoder: Encoder, limits: Limits) -> anyhow::Result<Writer> {
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
            })
            .context("cannot start the journal writer thread")?;
        Ok(Writer {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues a report, waiting for room at most until `deadline`; after that the
    /// report is counted as dropped (and becomes a gap).
    fn send(&mut self, item: Queued, deadline: Instant) {
        self.queue.push(item, deadline);
    }

    /// Asks the writer to commit what it holds, close the journal and open it again
    /// at its path (log rotation).
    fn reopen(&mut self) {
        self.queue.request_reopen();
    }

    /// True once the writer thread has ended (it only ends early on failure).
    fn stopped(&self) -> bool {
        self.queue.output_closed()
    }

    /// Closes the queue, waits for the writer to commit everything and close the
    /// journal, and returns what it did.
    fn finish(&mut self) -> Result<Totals, JournalError> {
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
    fn reopen(&mut self) -> Result<(), JournalError> {
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
    use std::os::unix::ffi::OsStrExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all zeroes is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is NUL-terminated and `stat` is writable, both for the whole call.
    if unsafe { libc::statvfs(dir.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize;
    Some((
        stat.f_bavail.saturating_mul(block),
        stat.f_blocks.saturating_mul(block),
    ))
}

/// Turns reports into journal rows; runs on the writer thread.
struct Encoder {
    /// The correlator's clock, so that stored times match the reports' text.
    clock: BootClock,
    ns_per_tick: u64,
    boot_id: String,
}

enum Encoded {
    Row(Row),
    Gap(Gap),
}

/// Which signals may repeat one another: from one sender thread to one target thread.
type RepeatKey = (u32, u32, Option<u32>);

fn repeat_key(report: &Report) -> Option<RepeatKey> {
    match report {
        Report::Signal(r) => Some((r.sender.pid, r.sender.tid, r.target.as_ref().map(|t| t.tid))),
        _ => None,
    }
}

impl Encoder {
    /// Rows for a batch, repeats folded into the row of the signal they repeat; the
    /// batch's gaps are added to `gaps`.
    fn encode_batch(&self, batch: &[Queued], gaps: &mut Vec<Gap>) -> Vec<Row> {
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

    fn encode(&self, report: &Report) -> Encoded {
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
                    json: report.to_json(),
                    text: report.to_text(),
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
                json: report.to_json(),
                text: report.to_text(),
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
fn repeats(previous: &SignalReport, next: &SignalReport) -> bool {
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
fn report_time(clock: &BootClock, report: &Report) -> i64 {
    let ns = match report {
        Report::Signal(r) => clock.unix_ns(r.keys.time_ns),
        // Exit and lost reports carry only their printed time (exact to the ns).
        Report::Exit(r) => clock::parse_time(&r.time, 0).unwrap_or_else(|_| clock::unix_now_ns()),
        Report::Lost(r) => clock::parse_time(&r.time, 0).unwrap_or_else(|_| clock::unix_now_ns()),
    };
    saturate(ns)
}

fn saturate(ns: i128) -> i64 {
    i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
}

fn unix_now() -> i64 {
    saturate(clock::unix_now_ns())
}

/// This boot's id: with a pid and start time, it names one process for good.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Parses a size: a whole number of bytes, optionally with a unit: K, M, G, T or KiB,
/// MiB, GiB, TiB (powers of 1024), KB, MB, GB, TB (powers of 1000), B.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let bad = || {
        format!("invalid size {text:?} (expected e.g. 256MiB, 1GiB, 500MB or a number of bytes)")
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))?;
    if bytes < MIN_SIZE {
        return Err(format!("size {text:?} is too small (at least 1MiB)"));
    }
    Ok(bytes)
}

/// Parses an age: a number of seconds, or amounts with units s, m, h, d, w ("7d",
/// "12h", "1h30m").
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || {
        format!("invalid age {text:?} (expected e.g. 7d, 12h, 90m, 1h30m or a number of seconds)")
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = trimmed.parse().map_err(|_| bad())?;
        return (secs > 0)
            .then(|| Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(end);
        let mut chars = after.chars();
        let unit: u64 = match chars.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            Some('w') => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("age {text:?} is too long"))?;
        rest = chars.as_str();
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::{ExitReport, LostReport};

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2gb"), Ok(2_000_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "-5M",
            "1.5G",
            "100K",
            "99999999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_age("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in ["", "0", "0s", "d", "5x", "1.5h", "-1d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_check_often_enough() {
        let defaults = Limits {
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(7 * 86_400),
        };
        assert_eq!(defaults.age_interval(), Duration::from_secs(60));
        assert_eq!(defaults.size_interval(), 8 << 20);
        let tiny = Limits {
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(2),
        };
        assert_eq!(tiny.age_interval(), Duration::from_secs(1));
        assert_eq!(tiny.size_interval(), 64 * 1024);
    }

    #[test]
    fn exits_and_losses_become_rows_and_gaps() {
        let encoder = Encoder {
            clock: BootClock::from_offset_ns(1_000 * 1_000_000_000),
            ns_per_tick: 10_000_000,
            boot_id: "b".to_owned(),
        };
        let exit = Report::Exit(ExitReport {
            event: "exit",
            time: clock::rfc3339_nanos(1_700_000_000_123_456_789),
            pid: 42,
            comm: "victim".to_owned(),
            exit_code: None,
            signal: Some("SIGTERM".to_owned()),
            signo: Some(15),
            core_dumped: Some(false),
            key: Some(ProcKey {
                pid: 42,
                start_ticks: 500,
            }),
        });
        let Encoded::Row(row) = encoder.encode(&exit) else {
            panic!("an exit is a row")
        };
        assert_eq!(row.time_ns, 1_700_000_000_123_456_789);
        assert_eq!(row.kind, Kind::Exit);
        assert_eq!(row.signo, Some(15));
        let target = row.target.unwrap();
        assert_eq!((target.pid, target.start_ticks), (42, Some(500)));
        // 500 ticks of 10 ms after a boot at Unix time 1000 s.
        assert_eq!(
            target.start.as_deref(),
            Some("1970-01-01T00:16:45.000000000Z")
        );
        assert_eq!(row.text, exit.to_text());
        assert_eq!(row.json, exit.to_json());
        let lost = Report::Lost(LostReport {
            event: "lost",
            time: clock::rfc3339_nanos(1_700_000_000_000_000_000),
            count: 7,
            by_kind: BTreeMap::new(),
        });
        let Encoded::Gap(gap) = encoder.encode(&lost) else {
            panic!("a loss is a gap")
        };
        assert_eq!(
            gap,
            Gap {
                time_ns: 1_700_000_000_000_000_000,
                count: 7,
                reason: "ring_buffer".to_owned()
            }
        );
    }

    fn process(pid: u32) -> crate::analysis::report::ProcessReport {
        crate::analysis::report::ProcessReport {
            pid,
            tid: pid,
            comm: format!("p{pid}"),
            exe: None,
            argv: vec![format!("p{pid}")],
            uid: Some(0),
            start_time: Some("2026-01-01T00:00:00.000000000Z".into()),
            ancestry: Vec::new(),
            ns_pid: None,
            cgroup: None,
            identity: Default::default(),
            execs: Vec::new(),
        }
    }

    /// kill(target, signo) from `sender`, `at_ns` after the encoder's boot.
    fn signal(signo: i32, sender: u32, target: u32, at_ns: u64) -> Report {
        let mut report =
            crate::analysis::report::fixtures::signal(signo, sender, target, "explicit");
        report.time = format!("t{at_ns}");
        report.requested = Some(i64::from(target));
        report.scope = Some("process");
        report.result = "ignored";
        report.sender = Arc::new(process(sender));
        report.target = Some(Arc::new(process(target)));
        report.keys.time_ns = at_ns;
        Report::Signal(Box::new(report))
    }

    #[test]
    fn kernel_counted_repeats_become_the_row_count_and_leave_the_stored_report() {
        let encoder = encoder();
        let Report::Signal(first) = signal(10, 10, 50, 1000) else {
            unreachable!()
        };
        let mut repeat = first.clone();
        repeat.keys.time_ns = 2000;
        repeat.time = "t2000".into();
        repeat.repeats = Some(crate::analysis::report::Repeated {
            count: 500,
            last_time: "t9000".into(),
            last_ns: 9000,
        });
        let exported = Report::Signal(repeat.clone()).to_json();
        assert!(
            exported.contains(r#""repeats":{"count":500,"last_time":"t9000"}"#),
            "{exported}"
        );
        let queued = fold_repeats(
            &encoder.clock,
            vec![Report::Signal(first.clone()), Report::Signal(repeat)],
        );
        // One row: the report once, standing for 1 + 500 signals, the last at 9000.
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].count, 501);
        assert_eq!(queued[0].last_ns, saturate(encoder.clock.unix_ns(9000)));
        let rows = encoder.encode_batch(&queued, &mut Vec::new());
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].count, 501);
        assert_eq!(rows[0].json, Report::Signal(first).to_json());
        assert!(!rows[0].json.contains("repeats"));
    }

    #[test]
    fn repeated_signals_share_a_row_and_keep_their_count() {
        let encoder = encoder();
        let base = encoder.clock.unix_ns(0);
        // Two senders storming one target, interleaved; then sender 10 changes signal,
        // then goes back: a repeat only continues the pair's last signal.
        let mut batch = Vec::new();
        for i in 0..100 {
            batch.push(signal(10, 10, 50, 1000 + i));
            batch.push(signal(10, 11, 50, 1000 + i));
        }
        batch.push(signal(12, 10, 50, 5000));
        batch.push(signal(10, 10, 50, 6000));
        batch.push(signal(10, 10, 50, 7000));
        let mut gaps = Vec::new();
        let one_by_one: Vec<Queued> = batch
            .iter()
            .map(|r| Queued::one(r.clone(), report_time(&encoder.clock, r)))
            .collect();
        let rows = encoder.encode_batch(&one_by_one, &mut gaps);
        assert!(gaps.is_empty());
        // Folded on the reading side first (in two passes), the same rows.
        let (first, second) = batch.split_at(77);
        let mut folded = fold_repeats(&encoder.clock, first.to_vec());
        assert_eq!(folded.len(), 2);
        folded.extend(fold_repeats(&encoder.clock, second.to_vec()));
        assert_eq!(encoder.encode_batch(&folded, &mut gaps), rows);
        let summary: Vec<(Option<i32>, u32, u64, i64, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r.signo,
                    r.sender.as_ref().unwrap().pid,
                    r.count,
                    (i128::from(r.time_ns) - base) as i64,
                    (i128::from(r.last_ns) - base) as i64,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some(10), 10, 100, 1000, 1099),
                (Some(10), 11, 100, 1000, 1099),
                (Some(12), 10, 1, 5000, 5000),
                (Some(10), 10, 2, 6000, 7000),
            ]
        );
        assert_eq!(
            rows.iter().map(|r| r.count).sum::<u64>(),
            batch.len() as u64
        );
        // The stored report is the first one's, as the live view printed it.
        assert_eq!(rows[0].json, batch[0].to_json());
        // A report that differs in anything printed is not a repeat.
        let mut other = signal(10, 10, 50, 8000);
        if let Report::Signal(r) = &mut other {
            r.result = "delivered";
        }
        let pair = [signal(10, 10, 50, 7000), other];
        assert_eq!(fold_repeats(&encoder.clock, pair.to_vec()).len(), 2);
        let pair: Vec<Queued> = pair.into_iter().map(|r| Queued::one(r, 0)).collect();
        let rows = encoder.encode_batch(&pair, &mut gaps);
        assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [1, 1]);
    }

    /// A fresh journal path in a private directory under the temp dir; the directory is
    /// removed on drop.
    struct TempJournal(std::path::PathBuf);

    impl TempJournal {
        fn new(name: &str) -> TempJournal {
            let dir = std::env::temp_dir()
                .join(format!("sigwho-record-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempJournal(dir)
        }

        fn path(&self) -> std::path::PathBuf {
            self.0.join("journal")
        }
    }

    impl Drop for TempJournal {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn encoder() -> Encoder {
        Encoder {
            clock: BootClock::from_offset_ns(1_700_000_000 * 1_000_000_000),
            ns_per_tick: 10_000_000,
            boot_id: "b".to_owned(),
        }
    }

    fn exit_report(pid: u32) -> Report {
        Report::Exit(ExitReport {
            event: "exit",
            time: clock::rfc3339_nanos(1_700_000_000_000_000_000 + i128::from(pid)),
            pid,
            comm: "x".to_owned(),
            exit_code: Some(0),
            signal: None,
            signo: None,
            core_dumped: None,
            key: Some(ProcKey {
                pid,
                start_ticks: 7,
            }),
        })
    }

    const LIMITS: Limits = Limits {
        max_bytes: 64 << 20,
        max_age: Duration::from_secs(1 << 40),
    };

    fn exits_in(path: &Path) -> usize {
        let filter = journal::Filter {
            target_comm: Some("x".to_owned()),
            ..journal::Filter::default()
        };
        Journal::open_read_only(path)
            .and_then(|j| j.query(&filter))
            .map_or(0, |entries| entries.len())
    }

    #[test]
    fn the_writer_commits_within_the_commit_interval() {
        let dir = TempJournal::new("flush");
        let path = dir.path();
        let journal = Journal::create_or_open(&path).unwrap();
        let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
        let start = Instant::now();
        writer.send(Queued::one(exit_report(1), 1), start);
        while exits_in(&path) == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never committed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let latency = start.elapsed();
        // Committed while the writer still runs (it was not told to stop).
        assert!(!writer.stopped());
        assert!(
            latency <= COMMIT_INTERVAL + Duration::from_millis(500),
            "committed after {latency:?}"
        );
        writer.send(Queued::one(exit_report(2), 2), Instant::now());
        let totals = writer.finish().unwrap();
        assert_eq!(
            (totals.exits, totals.signals, totals.dropped_total()),
            (2, 0, 0)
        );
        assert_eq!(exits_in(&path), 2, "finishing commits the rest");
    }

    /// Polls (the writer runs on its own thread) until `done`, for at most 5 s.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_reopen_after_a_rename_starts_a_new_journal_at_the_path() {
        let dir = TempJournal::new("reopen");
        let path = dir.path();
        let rotated = path.with_file_name("journal.1");
        let journal = Journal::create_or_open(&path).unwrap();
        let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
        writer.send(Queued::one(exit_report(1), 1), Instant::now());
        eventually("the first report committed", || exits_in(&path) == 1);
        std::fs::rename(&path, &rotated).unwrap();
        writer.reopen();
        eventually("a new journal at the path", || {
            Journal::open_read_only(&path).is_ok()
        });
        writer.send(Queued::one(exit_report(2), 2), Instant::now());
        let totals = writer.finish().unwrap();
        assert_eq!((totals.exits, totals.dropped_total()), (2, 0));
        // The renamed file is whole on its own: its log was checkpointed and removed.
        let mut wal = rotated.as_os_str().to_owned();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists());
        assert_eq!(exits_in(&rotated), 1, "the renamed journal keeps the first");
        assert_eq!(exits_in(&path), 1, "the new journal has the second");
    }

    #[test]
    fn a_reopen_without_a_rename_goes_on_in_the_same_file() {
        let dir = TempJournal::new("reopen-same");
        let path = dir.path();
        let journal = Journal::create_or_open(&path).unwrap();
        let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
        writer.send(Queued::one(exit_report(1), 1), Instant::now());
        eventually("the first report committed", || exits_in(&path) == 1);
        writer.reopen();
        writer.send(Queued::one(exit_report(2), 2), Instant::now());
        let totals = writer.finish().unwrap();
        assert_eq!((totals.exits, totals.dropped_total()), (2, 0));
        assert_eq!(exits_in(&path), 2);
    }

    #[test]
    fn a_full_queue_drops_into_a_gap_and_never_blocks_past_its_deadline() {
        let dir = TempJournal::new("full");
        let path = dir.path();
        let journal = Journal::create_or_open(&path).unwrap();
        // No writer thread yet: the queue fills, and the reader waits only until its
        // deadline.
        let queue = Arc::new(Queue::new());
        let clock = encoder().clock;
        let extra = 10;
        let start = Instant::now();
        for pid in 0..(QUEUE_CAPACITY + extra) as u32 {
            let report = exit_report(pid + 1);
            let time_ns = report_time(&clock, &report);
            queue.push(Queued::one(report, time_ns), start);
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "no waiting past the deadline"
        );
        let waited = Instant::now();
        let report = exit_report(99_999);
        queue.push(Queued::one(report, 5), waited + Duration::from_millis(50));
        assert!(
            waited.elapsed() >= Duration::from_millis(50),
            "waits until the deadline"
        );
        queue.close_input();
        let state = WriterState {
            journal,
            encoder: encoder(),
            limits: LIMITS,
            queue: Arc::clone(&queue),
            totals: Totals::default(),
            failed_commits: 0,
            deferred: Vec::new(),
            disk_low: false,
        };
        let totals = state.run().unwrap();
        assert_eq!(totals.exits, QUEUE_CAPACITY as u64);
        assert_eq!(totals.dropped.get("queue"), Some(&(extra as u64 + 1)));
        let reader = Journal::open_read_only(&path).unwrap();
        let gaps = reader.gaps(None, None).unwrap();
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(
            (gaps[0].count, gaps[0].reason.as_str()),
            (extra as u64 + 1, "queue")
        );
        // The gap is placed at the first dropped report's time.
        assert_eq!(
            gaps[0].time_ns,
            report_time(&clock, &exit_report(QUEUE_CAPACITY as u32 + 1))
        );
    }

    #[test]
    fn summary_is_one_line() {
        let mut totals = Totals {
            signals: 5,
            exits: 2,
            ..Totals::default()
        };
        let path = Path::new("/j");
        assert_eq!(
            totals.summary(path),
            "recorded 7 events (5 signals, 2 exits) into /j; dropped 0"
        );
        totals.dropped.insert("ring_buffer", 3);
        totals.dropped.insert("queue", 1);
        assert_eq!(
            totals.summary(path),
            "recorded 7 events (5 signals, 2 exits) into /j; dropped 4 (queue 1, ring buffer 3)"
        );
    }
}
