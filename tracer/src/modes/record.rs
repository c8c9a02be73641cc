//! `sigwho record`: every signal on the machine, and every exit, into the journal
//! (docs/recorder.md).
//!
//! The reading task (the same stream as the live view, unfiltered) hands reports to the
//! journal's writer thread (`crate::store::recorder`) through a bounded queue and never
//! waits for the disk. It folds repeats within each pass over the ring buffer first
//! (`crate::store::recorder::fold_repeats`), so that a storm sends the writer one report
//! per pass, not per signal.

use std::{
    ffi::c_int,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    kernel::{load::Options, stream::WAKEUP_BYTES},
    model::clock::{BootClock, ticks_per_second},
    modes::{
        pipeline::{self, ExplainOptions, Notices, StreamOptions},
        signals::OwnSignals,
    },
    store::{
        export::Exports,
        journal::{self, Journal, JournalError},
        recorder::{
            Encoder, Limits, Writer, fold_repeats, parse_age, parse_size, saturate, start_session,
            unix_now,
        },
    },
};

/// SIGINT and SIGTERM stop the recorder (after a last drain and commit); SIGHUP reopens
/// the journal at its path (log rotation).
pub const SIGNALS: &[c_int] = &[libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// How often the recorder reads the ring buffer without a wakeup from the kernel
/// (which comes once the ring holds 256 KiB): a lone event waits at most this long,
/// well within the second a killed recorder may lose, and an idle recorder wakes five
/// times a second instead of fifty.
const RECORD_TICK: Duration = Duration::from_millis(200);
/// Longest the reader waits for room in the queue per pass over the ring buffer, so that
/// a burst larger than the queue is written rather than dropped when the writer keeps
/// up on average (the kernel's ring buffer holds what arrives meanwhile).
const SEND_WAIT: Duration = Duration::from_millis(500);
/// How long a new recorder waits for the previous one's lock on the journal.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// A change of the wall clock's offset from the boot clock larger than this is a step
/// of the wall clock (measurements themselves differ by nanoseconds).
const CLOCK_STEP_NS: i128 = 10_000_000;

/// What `sigwho record` was asked.
pub struct RecordOptions {
    /// The journal; else `$SIGWHO_JOURNAL`, else the default.
    pub journal: Option<PathBuf>,
    /// --max-size, as given (e.g. `256MiB`).
    pub max_size: String,
    /// --max-age, as given (e.g. `7d`).
    pub max_age: String,
    pub json_out: Option<PathBuf>,
    pub otlp_endpoint: Option<String>,
    /// A capture for replays (`crate::analysis::replay`).
    pub raw: Option<PathBuf>,
    pub explain: ExplainOptions,
}

/// Records until SIGINT or SIGTERM (`signals`), reopening the journal on SIGHUP.
///
/// # Errors
///
/// When an option is malformed, privileges are missing, the journal or an export cannot
/// be opened, the tracer cannot be loaded, or the journal cannot be written (long
/// enough to give up).
pub async fn run(args: RecordOptions, signals: &mut OwnSignals) -> anyhow::Result<()> {
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

    let loaded = pipeline::load(Options {
        filter_targets: false,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: false,
        fold_repeats: true,
        select: tracer_common::Select::default(),
    })?;
    let mut stream = loaded.start(&StreamOptions {
        explain: &args.explain,
        clock: Some(clock),
        notices: Notices::All,
        tick: Some(RECORD_TICK),
        raw: args.raw.as_deref(),
        repeats_every: Duration::ZERO,
    })?;
    let tps = ticks_per_second();
    let encoder = Encoder::new(clock, tps, boot_id);
    let mut writer = Writer::spawn(journal, encoder, limits)
        .map_err(|e| anyhow::anyhow!("cannot start the journal writer thread: {e}"))?;
    eprintln!("sigwho: recording every signal into {}", path.display());
    // Programs attached, journal open: from here on every signal is recorded.
    let mut watchdog = Watchdog::ready();

    let read: anyhow::Result<()> = async {
        loop {
            let mut done = false;
            let mut reopen = false;
            tokio::select! {
                ready = stream.wait() => ready?,
                () = watchdog.due() => {}
                received = signals.recv() => {
                    if received?.signo == libc::SIGHUP {
                        reopen = true;
                    } else {
                        done = true;
                    }
                }
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
            // Pinged from the reading loop itself, so that a recorder stuck anywhere in
            // it (kernel reads, the journal's queue) is restarted by systemd.
            watchdog.pet();
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

/// systemd's readiness and watchdog protocol (`sd_notify(3)`), for the Type=notify unit.
/// Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
struct Watchdog {
    /// Half of `$WATCHDOG_USEC`, as `sd_watchdog_enabled(3)` advises; `None` when systemd
    /// did not ask for pings.
    every: Option<Duration>,
    next: Instant,
}

impl Watchdog {
    /// READY=1, and the watchdog's interval. A failure to notify is only a warning: the
    /// recorder records all the same (systemd then times the start out and says so).
    fn ready() -> Watchdog {
        let status = format!("recording (pid {})", std::process::id());
        if let Err(e) = sd_notify::notify(
            false,
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ],
        ) {
            eprintln!("sigwho: warning: could not tell systemd that the recorder is ready: {e}");
        }
        let mut usec = 0;
        let every = sd_notify::watchdog_enabled(true, &mut usec)
            .then(|| Duration::from_micros(usec / 2))
            .filter(|d| !d.is_zero());
        Watchdog {
            every,
            next: Instant::now(),
        }
    }

    /// Sends WATCHDOG=1 when due.
    fn pet(&mut self) {
        let Some(every) = self.every else { return };
        let now = Instant::now();
        if now >= self.next {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            self.next = now + every;
        }
    }

    /// Wakes the reading loop when a ping is due (never when there is no watchdog).
    async fn due(&self) {
        match self.every {
            Some(_) => tokio::time::sleep_until(self.next.into()).await,
            None => std::future::pending().await,
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

/// This boot's id: with a pid and start time, it names one process for good.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map_or_else(|_| "unknown".to_owned(), |id| id.trim().to_owned())
}
