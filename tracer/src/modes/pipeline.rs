//! How every tracing mode starts: load the programs ([`load`]; a mode may then put pids
//! in the target filter), then [`Loaded::start`]: the correlator over a /proc snapshot
//! with the mode's options, the kernel's warnings and notes on stderr, and the event
//! stream that reads the ring buffer.

use std::{
    fs::OpenOptions,
    io::BufWriter,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use crate::{
    analysis::{
        correlate::Correlator,
        redact::Redaction,
        replay::{self, Header, RawLog, Recorded},
        rules::Rules,
    },
    kernel::{
        load::{LoadError, Options, Tracer},
        stream::{EventStream, StreamError},
    },
    model::{
        clock::{BootClock, ticks_per_second},
        lineage::ProcessTable,
        procfs::SystemProc,
    },
};

/// How reports explain a signal (cause chains, hints, masks); the same for every mode
/// that traces.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    /// How recent a signal the sender received must be to count as the cause of the one
    /// it sent.
    pub cause_window: Duration,
    pub rules: &'static Rules,
    /// --redact.
    pub redaction: Redaction,
}

impl ExplainOptions {
    #[must_use]
    pub fn cause_window_ns(&self) -> u64 {
        u64::try_from(self.cause_window.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What the kernel says about itself on stderr at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notices {
    /// Warnings (something is missing) and notes (a costlier way is used); notes in
    /// full with -v, else one line that sums them up.
    All,
    /// Warnings only (`sigwho run`, whose stderr is the command's too).
    Warnings,
    /// Nothing (`sigwho run --quiet`).
    Nothing,
}

/// How a mode wants its reports made.
pub struct StreamOptions<'a> {
    pub explain: &'a ExplainOptions,
    /// The clock that places kernel times on the wall clock; a fresh one when None (the
    /// recorder passes the one its journal keeps for this boot).
    pub clock: Option<BootClock>,
    pub notices: Notices,
    /// How often the ring buffer is read without a wakeup; the stream's default when
    /// None.
    pub tick: Option<Duration>,
    /// A capture for replays (`crate::analysis::replay`), written to this file.
    pub raw: Option<&'a Path>,
    /// With `fold_repeats`: how often a storm's count so far is reported while it goes
    /// on (zero: at every read of the counts); it is always reported when it ends.
    pub repeats_every: Duration,
}

/// What the live view and `sigwho run` use for [`StreamOptions::repeats_every`]: a storm
/// is one report, then an `xN` line at most this often and when it stops.
pub const VIEW_REPEATS_EVERY: Duration = Duration::from_secs(10);

impl<'a> StreamOptions<'a> {
    /// How the live view reads (by pid or by selectors): every notice, the stream's
    /// tick, no capture, a storm as one report and then `xN` lines.
    #[must_use]
    pub fn view(explain: &'a ExplainOptions) -> Self {
        Self {
            explain,
            clock: None,
            notices: Notices::All,
            tick: None,
            raw: None,
            repeats_every: VIEW_REPEATS_EVERY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("--raw {path}: {source}")]
    Raw {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The programs, loaded and attached; nothing read yet.
pub struct Loaded {
    pub tracer: Tracer,
    options: Options,
}

/// Loads and attaches the programs as `options` configure them.
///
/// # Errors
///
/// As [`Tracer::load`].
pub fn load(options: Options) -> Result<Loaded, LoadError> {
    Ok(Loaded {
        tracer: Tracer::load(&options)?,
        options,
    })
}

impl Loaded {
    /// The correlator, the notices, the event stream. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// When the capture file cannot be created or the event stream cannot be opened.
    pub fn start(self, options: &StreamOptions<'_>) -> Result<EventStream, PipelineError> {
        let tps = ticks_per_second();
        let clock = options.clock.unwrap_or_else(BootClock::now);
        let explain = options.explain;
        let capture = match options.raw {
            Some(path) => Some(raw_capture(path, &self.options, clock, tps, explain)?),
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
            .with_cause_window(explain.cause_window_ns())
            .with_rules(explain.rules)
            .with_redaction(explain.redaction.clone());
        let tracer = self.tracer;
        if options.notices != Notices::Nothing {
            for warning in &tracer.warnings {
                eprintln!("sigwho: warning: {warning}");
            }
        }
        if options.notices == Notices::All {
            if crate::kernel::load::verbose() {
                for note in &tracer.notes {
                    eprintln!("sigwho: note: {note}");
                }
            } else if let Some(line) = degraded_summary(&tracer.notes) {
                eprintln!("{line}");
            }
        }
        let mut stream = EventStream::new(tracer, correlator)?;
        if self.options.fold_repeats {
            stream = stream.with_folding(options.repeats_every);
        }
        if let Some(tick) = options.tick {
            stream = stream.with_tick(tick);
        }
        if let Some(log) = capture {
            stream = stream.with_capture(log);
        }
        Ok(stream)
    }
}

/// Notes say that a costlier or coarser way is used, and read like errors to someone
/// who only wants reports: without -v they shrink to one line that names each such
/// hook (each note up to its explanation) and where the rest is.
fn degraded_summary(notes: &[String]) -> Option<String> {
    if notes.is_empty() {
        return None;
    }
    let what: Vec<&str> = notes
        .iter()
        .map(|note| {
            let end = [", which", " ("]
                .iter()
                .filter_map(|cut| note.find(cut))
                .min()
                .unwrap_or(note.len());
            &note[..end]
        })
        .collect();
    Some(format!(
        "sigwho: degraded: {} (sigwho -v or sigwho doctor say more)",
        what.join("; ")
    ))
}

/// A capture file, created 0600 (it holds command lines), with its header.
fn raw_capture(
    path: &Path,
    kernel: &Options,
    clock: BootClock,
    ticks_per_second: u64,
    explain: &ExplainOptions,
) -> Result<Arc<RawLog>, PipelineError> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| PipelineError::Raw {
            path: path.to_owned(),
            source,
        })?;
    let header = Header {
        format: replay::FORMAT,
        clock_offset_ns: i64::try_from(clock.offset_ns()).unwrap_or(i64::MAX),
        ticks_per_second,
        cause_window_ns: explain.cause_window_ns(),
        fold_repeats: kernel.fold_repeats,
    };
    Ok(Arc::new(RawLog::new(
        Box::new(BufWriter::new(file)),
        header,
    )))
}

/// Resolves at `deadline` (a view's `--timeout`); never without one.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::degraded_summary;

    #[test]
    fn notes_shrink_to_one_line_without_verbose() {
        assert_eq!(degraded_summary(&[]), None);
        let notes = [
            "failed kill(), tkill() attempts are seen through syscalls:sys_exit_* tracepoints, which add a little to every syscall on the machine (the kernel refused fexit programs: EPERM)".to_owned(),
            "requests are kept per call (no bpf_task_pt_regs(), Linux 5.15)".to_owned(),
        ];
        let line = degraded_summary(&notes).unwrap();
        assert_eq!(
            line,
            "sigwho: degraded: failed kill(), tkill() attempts are seen through syscalls:sys_exit_* tracepoints; requests are kept per call (sigwho -v or sigwho doctor say more)"
        );
        assert!(!line.contains('\n'));
    }
}
