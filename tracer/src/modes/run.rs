//! `sigwho run -- CMD`: runs a command with its stdio untouched and reports every signal
//! its process tree received (from inside or outside the tree, sent or kernel-made) until
//! it exits, then a summary (stderr), JSON lines (--report), JUnit XML (--junit) and, on
//! GitHub Actions, `::warning` annotations. Exits with the command's status.
//!
//! The tracer is loaded first and the command is held between fork and exec until its
//! pid is in the kernel's target filter; from then on the kernel adds every process a
//! target forks (before it runs) and drops each at exit, so the tree is followed without
//! any race against userspace.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    fmt::Write as _,
    fs::File,
    io::{self, BufWriter, Read, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::io::{Interest, unix::AsyncFd};
use tracer_ebpf::syscall;

use crate::{
    analysis::report::{AncestorReport, ExitReport, ProcessReport, Report, SignalReport},
    analysis::{
        attempts::{Watched, request_reaches},
        correlate::Correlator,
    },
    error::chain,
    kernel::load::{LoadError, Options, Tracer},
    kernel::stream::{EventStream, TICK, WAKEUP_BYTES},
    model::clock::{BootClock, boot_now_ns, ticks_per_second},
    model::lineage::{ProcKey, ProcessTable},
    model::procfs,
    model::signals::{DefaultAction, default_action, parse_signal, signal_label},
    modes::pipeline::ExplainOptions,
    render::{junit, text::shell_join},
};

/// Signals sigwho passes on to the command, as `timeout` and `tini` do.
const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
/// Expected unless --allow says otherwise.
pub const DEFAULT_ALLOW: [i32; 4] = [libc::SIGCHLD, libc::SIGWINCH, libc::SIGCONT, libc::SIGURG];
/// Unexpected signals (and deaths) kept in full for the summary and JUnit; beyond this
/// they are counted (the JSON report still has every one).
const KEEP_DETAILS: usize = 1000;
/// Unexpected signals the text summary details.
const SUMMARY_DETAILS: usize = 20;
/// `::warning` annotations at most (GitHub shows 10 per step).
const ANNOTATIONS: usize = 10;
/// si_code of signals the kernel made, such as those a terminal sends its foreground
/// process group (^C, hangup).
const SI_KERNEL: i32 = 0x80;

// ---------------------------------------------------------------------------------------
// What counts as expected

/// The expected signals (--allow), and the rule that signals a process sends itself are
/// expected too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub signals: BTreeSet<i32>,
}

impl Allow {
    /// `--allow LIST` (comma-separated names or numbers) replaces the default list; an
    /// empty LIST expects nothing but self-sent signals.
    pub fn parse(list: Option<&str>) -> Result<Self, String> {
        let Some(list) = list else {
            return Ok(Self {
                signals: DEFAULT_ALLOW.into_iter().collect(),
            });
        };
        let signals = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_signal(s).map_err(|e| format!("--allow: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Self { signals })
    }

    /// Whether a signal report counts as unexpected. Failed attempts delivered nothing,
    /// so they never do (they are listed apart).
    pub fn is_unexpected(&self, report: &SignalReport) -> bool {
        report.result != "failed" && !self.signals.contains(&report.signo) && !self_sent(report)
    }

    pub fn names(&self) -> Vec<String> {
        self.signals.iter().map(|&s| signal_label(s)).collect()
    }
}

/// Sent by the process to itself: raise(), abort(), kill(getpid()), a runtime's own
/// tgkill (Go's SIGURG preemption), or a timer it armed (alarm, setitimer, POSIX
/// timers). Faults, SIGPIPE and rlimit signals are the kernel's verdict on what the
/// process did, not something it asked for, so they do not count.
pub fn self_sent(report: &SignalReport) -> bool {
    match report.origin_class {
        "self" => report
            .target
            .as_ref()
            .is_none_or(|t| t.pid == report.sender.pid),
        "timer" => true,
        _ => false,
    }
}

/// The status a shell would show: the exit code, or 128+N after signal N.
pub fn shell_status(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------
// Entry point

/// What `sigwho run` was asked.
pub struct RunOptions {
    /// The command and its arguments.
    pub command: Vec<String>,
    pub wait_descendants: bool,
    pub quiet: bool,
    pub fail_on_signal: bool,
    /// --allow, as given (comma-separated signals).
    pub allow: Option<String>,
    /// JSON lines, then a summary object.
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub explain: ExplainOptions,
}

pub async fn run(args: RunOptions) -> anyhow::Result<i32> {
    if args.command.is_empty() {
        anyhow::bail!("sigwho run needs a command: sigwho run [OPTIONS] -- CMD [ARGS...]");
    }
    let allow = Allow::parse(args.allow.as_deref()).map_err(anyhow::Error::msg)?;
    // Both files are created before the command runs, so that a bad path fails fast.
    let report = match &args.report {
        Some(path) => Some(JsonOut::create(path)?),
        None => None,
    };
    let junit_file = match &args.junit {
        Some(path) => Some((
            path.clone(),
            File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let tracer = Tracer::load(&Options {
        filter_targets: true,
        wakeup_bytes: WAKEUP_BYTES,
        follow_children: true,
        fold_repeats: false,
    })?;
    if !args.quiet {
        for warning in &tracer.warnings {
            eprintln!("sigwho: warning: {warning}");
        }
    }
    let tps = ticks_per_second();
    let clock = BootClock::now();
    let correlator = Correlator::new(ProcessTable::from_proc(tps), clock, tps)
        .with_cause_window(args.explain.cause_window_ns())
        .with_rules(args.explain.rules)
        .with_redaction(args.explain.redaction.clone());
    let mut stream = EventStream::new(tracer, correlator)?;
    let inbox = SignalInbox::new()
        .map_err(|e| anyhow::anyhow!("cannot take over SIGINT/SIGTERM/SIGHUP: {e}"))?;

    let started = Instant::now();
    let started_at = stream.correlator().time(boot_now_ns());
    // The summary shows the command line too, so it is masked like the reports.
    let shown = stream
        .correlator()
        .redaction()
        .argv_owned(args.command.clone());
    let mut session = Session::new(&allow, report, shown, started_at);
    let spawned = match spawn_watched(&args.command, &mut stream.tracer, inbox.original) {
        Ok(spawned) => spawned,
        Err(SpawnError::Setup(error)) => return Err(error),
        Err(SpawnError::Start(error)) => {
            let status = match error.kind() {
                io::ErrorKind::NotFound => 127,
                _ => 126,
            };
            let message = format!("cannot run {}: {error}", shell_join(&args.command[..1]));
            // An error: printed even with --quiet; the summary has nothing to add.
            eprintln!("sigwho: {message}");
            let outcome = Outcome {
                pid: None,
                status: None,
                exit_status: status,
                duration: started.elapsed(),
                error: Some(message),
                interrupted: Vec::new(),
                tracing_error: None,
            };
            return Ok(session.finish(&args, &outcome, junit_file));
        }
    };
    session.cmd = Some(spawned.key);
    session.tree.insert(spawned.key);

    let outcome = supervise(&args, &mut stream, &mut session, &inbox, spawned, started).await;
    Ok(session.finish(&args, &outcome, junit_file))
}

/// Follows the command until it (and with --wait-descendants its descendants) exited.
async fn supervise(
    args: &RunOptions,
    stream: &mut EventStream,
    session: &mut Session<'_>,
    inbox: &SignalInbox,
    spawned: Spawned,
    started: Instant,
) -> Outcome {
    let Spawned {
        mut child,
        pid,
        exited,
        ..
    } = spawned;
    let mut status: Option<ExitStatus> = None;
    let mut tracing = true;
    let mut tracing_error: Option<String> = None;
    let mut interrupted = Vec::new();
    let mut told_waiting = false;
    let mut inbox_ok = true;
    let mut warned_full = false;
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            ready = stream.wait(), if tracing => {
                if let Err(error) = ready {
                    stop_tracing(&mut tracing, &mut tracing_error, chain(&error));
                }
            }
            guard = exited.readable(), if status.is_none() => {
                match child.try_wait() {
                    Ok(Some(done)) => status = Some(done),
                    Ok(None) => {
                        if let Ok(mut guard) = guard {
                            guard.clear_ready();
                        }
                    }
                    Err(error) => {
                        // Cannot happen for our own unreaped child; do not spin.
                        eprintln!("sigwho: error: waiting for pid {pid}: {error}");
                        status = Some(ExitStatus::from_raw(2 << 8));
                    }
                }
            }
            received = inbox.recv(), if inbox_ok => match received {
                Ok(received) => {
                    if status.is_some() {
                        // Only descendants are left (--wait-descendants): stop waiting.
                        interrupted.push(Interrupt {
                            received,
                            forwarded: false,
                            action: "stopped waiting for the descendants",
                        });
                        break;
                    }
                    let forwarded = received.should_forward(pid);
                    if forwarded {
                        // Our child, not reaped yet: the pid is still its.
                        // SAFETY: plain syscall.
                        unsafe { libc::kill(pid as libc::pid_t, received.signo) };
                    }
                    interrupted.push(Interrupt {
                        received,
                        forwarded,
                        action: if forwarded {
                            "passed it on to the command"
                        } else {
                            "the terminal sent it to the command too"
                        },
                    });
                }
                Err(error) => {
                    eprintln!("sigwho: error: reading signals: {error}; they are no longer passed on");
                    inbox_ok = false;
                }
            },
            _ = tokio::time::sleep(TICK), if !tracing => {}
        }
        if tracing {
            match stream.drain(false) {
                Ok(reports) => session.take_all(reports, stream),
                Err(error) => stop_tracing(&mut tracing, &mut tracing_error, chain(&error)),
            }
        }
        ticks += 1;
        if !warned_full && ticks.is_multiple_of(50) {
            let len = stream.tracer.targets().len();
            if len >= tracer_ebpf::MAX_TARGETS as usize {
                warned_full = true;
                if !args.quiet {
                    eprintln!(
                        "sigwho: warning: the tree has {len} live processes, the most sigwho can follow; newer ones are not traced"
                    );
                }
            }
        }
        if status.is_some() {
            if !args.wait_descendants {
                break;
            }
            let left = descendants_left(&stream.tracer, pid);
            if left == 0 {
                break;
            }
            if !told_waiting && !args.quiet {
                told_waiting = true;
                eprintln!(
                    "sigwho: the command exited; waiting for {left} descendant process(es) (--wait-descendants)"
                );
            }
        }
    }
    if tracing {
        match stream.drain(true) {
            Ok(reports) => session.take_all(reports, stream),
            Err(error) => stop_tracing(&mut tracing, &mut tracing_error, chain(&error)),
        }
    }
    let exit_status = status.map_or(2, shell_status);
    Outcome {
        pid: Some(pid),
        status,
        exit_status,
        duration: started.elapsed(),
        error: None,
        interrupted,
        tracing_error,
    }
}

fn stop_tracing(tracing: &mut bool, error: &mut Option<String>, message: String) {
    eprintln!(
        "sigwho: error: {message}; signals from now on are not traced (waiting for the command)"
    );
    *tracing = false;
    *error = Some(message);
}

/// Live processes of the tree other than the command itself.
fn descendants_left(tracer: &Tracer, cmd_pid: u32) -> usize {
    tracer
        .targets()
        .into_iter()
        .filter(|&pid| pid != cmd_pid && Path::new(&format!("/proc/{pid}")).exists())
        .count()
}

// ---------------------------------------------------------------------------------------
// Starting the command

struct Spawned {
    child: Child,
    pid: u32,
    key: ProcKey,
    /// A pidfd: readable once the command exited (and is ours to reap).
    exited: AsyncFd<OwnedFd>,
}

enum SpawnError {
    /// The command could not be started (not found, not executable, ...).
    Start(io::Error),
    /// sigwho could not prepare tracing it.
    Setup(anyhow::Error),
}

impl From<LoadError> for SpawnError {
    fn from(error: LoadError) -> Self {
        SpawnError::Setup(error.into())
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid pointer to two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The descriptors the child uses to wait between fork and exec.
#[derive(Clone, Copy)]
struct Gate {
    pid_read: RawFd,
    pid_write: RawFd,
    go_read: RawFd,
    go_write: RawFd,
    /// The signal mask sigwho started with, restored for the command.
    mask: libc::sigset_t,
}

impl Gate {
    /// Runs in the forked child before exec: async-signal-safe calls only, no allocation.
    fn hold(&self) -> io::Result<()> {
        // SAFETY: raw syscalls on descriptors the child inherited and owns a copy of.
        unsafe {
            // Without these the parent's side could not see EOF on its failures.
            libc::close(self.pid_read);
            libc::close(self.go_write);
            if libc::sigprocmask(libc::SIG_SETMASK, &self.mask, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let pid = libc::getpid().to_ne_bytes();
            let mut written = 0;
            while written < pid.len() {
                let n = libc::write(
                    self.pid_write,
                    pid[written..].as_ptr().cast(),
                    pid.len() - written,
                );
                if n < 0 {
                    if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return Err(io::Error::last_os_error());
                }
                written += n as usize;
            }
            libc::close(self.pid_write);
            let mut byte = 0u8;
            loop {
                match libc::read(self.go_read, (&raw mut byte).cast(), 1) {
                    1 => break,
                    // sigwho gave up on this command: do not run it untraced.
                    0 => return Err(io::Error::from_raw_os_error(libc::ECANCELED)),
                    _ if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
                    _ => return Err(io::Error::last_os_error()),
                }
            }
            libc::close(self.go_read);
        }
        Ok(())
    }
}

/// Starts `command` with sigwho's stdin, stdout and stderr, its pid in the kernel's
/// target filter before it runs a single instruction of its own.
///
/// std's spawn returns only once the child has exec'd, so it runs on a helper thread
/// while this one learns the child's pid from a pipe, adds it to the filter and lets
/// the child go on to exec.
fn spawn_watched(
    command: &[String],
    tracer: &mut Tracer,
    mask: libc::sigset_t,
) -> Result<Spawned, SpawnError> {
    let setup = |what: &str, e: io::Error| SpawnError::Setup(anyhow::anyhow!("{what}: {e}"));
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| SpawnError::Setup(anyhow::anyhow!("no command")))?;
    let (pid_read, pid_write) = pipe().map_err(|e| setup("pipe", e))?;
    let (go_read, go_write) = pipe().map_err(|e| setup("pipe", e))?;
    let gate = Gate {
        pid_read: pid_read.as_raw_fd(),
        pid_write: pid_write.as_raw_fd(),
        go_read: go_read.as_raw_fd(),
        go_write: go_write.as_raw_fd(),
        mask,
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    // SAFETY: the closure only makes async-signal-safe calls (see Gate::hold).
    unsafe { cmd.pre_exec(move || gate.hold()) };

    std::thread::scope(|scope| {
        let spawner = scope.spawn(move || {
            let result = cmd.spawn();
            // The child has its own copies; closing ours lets the reader below see EOF
            // when the child never got that far.
            drop(pid_write);
            drop(go_read);
            result
        });
        let mut pid_bytes = [0u8; 4];
        let prepared = File::from(pid_read)
            .read_exact(&mut pid_bytes)
            .ok()
            .map(|()| prepare(u32::from_ne_bytes(pid_bytes), tracer));
        let mut go = File::from(go_write);
        if let Some(Ok(_)) = &prepared {
            // A child killed meanwhile makes this fail; spawn then reports it.
            let _ = go.write_all(&[1]);
        }
        drop(go);
        let spawned = spawner
            .join()
            .map_err(|_| SpawnError::Setup(anyhow::anyhow!("the spawning thread panicked")))?;
        match (spawned, prepared) {
            (Ok(child), Some(Ok((pid, key, exited)))) => Ok(Spawned {
                child,
                pid,
                key,
                exited,
            }),
            (Ok(mut child), prepared) => {
                // Unreachable in practice: the child execs only after the go byte.
                let _ = child.kill();
                let _ = child.wait();
                Err(match prepared {
                    Some(Err(error)) => error,
                    _ => SpawnError::Setup(anyhow::anyhow!("lost track of the command's pid")),
                })
            }
            (Err(_), Some(Err(error))) => Err(error),
            (Err(error), _) => Err(SpawnError::Start(error)),
        }
    })
}

/// Puts the held child into the target filter; a pidfd tells when it exits.
fn prepare(pid: u32, tracer: &mut Tracer) -> Result<(u32, ProcKey, AsyncFd<OwnedFd>), SpawnError> {
    tracer.watch(pid)?;
    let stat = procfs::read_stat(pid)
        .map_err(|e| SpawnError::Setup(anyhow::anyhow!("reading /proc/{pid}/stat: {e}")))?;
    // SAFETY: plain syscall; the pid is our unreaped child.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        let error = io::Error::last_os_error();
        return Err(SpawnError::Setup(anyhow::anyhow!(
            "pidfd_open({pid}): {error} (sigwho run needs Linux 5.3 or newer)"
        )));
    }
    // SAFETY: just opened, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    // SAFETY: the AsyncFd owns the descriptor and keeps it open until dropped.
    let exited = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| SpawnError::Setup(anyhow::anyhow!("registering the pidfd: {e}")))?;
    Ok((
        pid,
        ProcKey {
            pid,
            start_ticks: stat.start_ticks,
        },
        exited,
    ))
}

// ---------------------------------------------------------------------------------------
// Signals sigwho itself receives

/// SIGINT, SIGTERM and SIGHUP, blocked and read from a signalfd, which (unlike a
/// handler) tells who sent each one.
struct SignalInbox {
    fd: AsyncFd<OwnedFd>,
    /// The mask before sigwho blocked them, for the command.
    original: libc::sigset_t,
}

#[derive(Debug, Clone, Copy)]
struct Received {
    signo: i32,
    code: i32,
    sender_pid: u32,
}

struct Interrupt {
    received: Received,
    forwarded: bool,
    /// What sigwho did about it, for the summary.
    action: &'static str,
}

impl SignalInbox {
    fn new() -> io::Result<Self> {
        // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls get
        // valid pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signo in FORWARDED {
                libc::sigaddset(&mut set, signo);
            }
            let mut original: libc::sigset_t = std::mem::zeroed();
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut original);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                let error = io::Error::last_os_error();
                libc::pthread_sigmask(libc::SIG_SETMASK, &original, std::ptr::null_mut());
                return Err(error);
            }
            // The AsyncFd owns the descriptor and keeps it open until dropped.
            let fd = AsyncFd::register_with_interest(OwnedFd::from_raw_fd(fd), Interest::READABLE)
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(Self { fd, original })
        }
    }

    /// The next signal. Cancel-safe: reading happens only once one is there.
    async fn recv(&self) -> io::Result<Received> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| {
                // SAFETY: signalfd_siginfo is plain data; read fills at most its size.
                let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
                let size = std::mem::size_of::<libc::signalfd_siginfo>();
                let n = unsafe { libc::read(fd.as_raw_fd(), (&raw mut info).cast(), size) };
                if n < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(Received {
                    signo: info.ssi_signo as i32,
                    code: info.ssi_code,
                    sender_pid: info.ssi_pid,
                })
            });
            match result {
                Ok(received) => return received,
                Err(_would_block) => continue,
            }
        }
    }
}

impl Received {
    /// A terminal sends ^C and hangups to its whole foreground process group: the
    /// command already got it, unless it moved to a group of its own.
    fn should_forward(&self, cmd_pid: u32) -> bool {
        if self.code != SI_KERNEL {
            return true;
        }
        // SAFETY: plain syscall.
        let ours = unsafe { libc::getpgrp() };
        procfs::read_stat(cmd_pid).is_ok_and(|stat| stat.pgrp != ours)
    }

    fn describe(&self) -> String {
        let name = signal_label(self.signo);
        match self.code {
            SI_KERNEL => format!("{name} from the kernel (terminal)"),
            _ if self.sender_pid == 0 => name,
            _ => {
                let comm = procfs::read_stat(self.sender_pid)
                    .map(|s| format!(" ({})", s.comm))
                    .unwrap_or_default();
                format!("{name} from pid {}{comm}", self.sender_pid)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Collecting

struct JsonOut {
    path: PathBuf,
    out: BufWriter<File>,
    error: Option<io::Error>,
}

impl JsonOut {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
            error: None,
        })
    }

    fn line(&mut self, text: &str) {
        if self.error.is_none()
            && let Err(error) = self
                .out
                .write_all(text.as_bytes())
                .and_then(|()| self.out.write_all(b"\n"))
        {
            self.error = Some(error);
        }
    }

    fn flush(&mut self) {
        if self.error.is_none()
            && let Err(error) = self.out.flush()
        {
            self.error = Some(error);
        }
    }
}

/// A process of the tree that a signal killed.
struct Killed {
    exit: ExitReport,
    argv: Vec<String>,
    /// The last signal of that number it received, when sigwho saw it.
    by: Option<SignalReport>,
    /// The fatal signal is in the allow list.
    expected: bool,
}

struct Outcome {
    pid: Option<u32>,
    status: Option<ExitStatus>,
    exit_status: i32,
    duration: Duration,
    /// Why the command did not start.
    error: Option<String>,
    interrupted: Vec<Interrupt>,
    tracing_error: Option<String>,
}

struct Session<'a> {
    allow: &'a Allow,
    command: Vec<String>,
    started_at: String,
    cmd: Option<ProcKey>,
    /// Processes known to be in the command's tree (the command, signal targets and
    /// every tree process seen exiting); others are found through fork-time parents.
    tree: HashSet<ProcKey>,
    report: Option<JsonOut>,
    signals_seen: u64,
    unexpected: u64,
    failed: u64,
    lost: u64,
    unexpected_reports: Vec<SignalReport>,
    failed_reports: Vec<SignalReport>,
    /// Signals that could have killed a live tree process, last one per number, to name
    /// the killer when it dies.
    fatal: HashMap<ProcKey, Vec<SignalReport>>,
    killed: Vec<Killed>,
    killed_count: u64,
    /// The command's killer, when a signal killed it.
    cmd_killer: Option<SignalReport>,
}

impl<'a> Session<'a> {
    fn new(
        allow: &'a Allow,
        report: Option<JsonOut>,
        command: Vec<String>,
        started_at: String,
    ) -> Self {
        Self {
            allow,
            command,
            started_at,
            cmd: None,
            tree: HashSet::new(),
            report,
            signals_seen: 0,
            unexpected: 0,
            failed: 0,
            lost: 0,
            unexpected_reports: Vec::new(),
            failed_reports: Vec::new(),
            fatal: HashMap::new(),
            killed: Vec::new(),
            killed_count: 0,
            cmd_killer: None,
        }
    }

    fn line(&mut self, text: &str) {
        if let Some(report) = &mut self.report {
            report.line(text);
        }
    }

    fn take_all(&mut self, reports: Vec<Report>, stream: &mut EventStream) {
        for report in reports {
            let (correlator, tracer) = stream.parts();
            self.take(report, correlator, tracer);
        }
        if let Some(report) = &mut self.report {
            report.flush();
        }
    }

    fn take(&mut self, report: Report, correlator: &mut Correlator, tracer: &Tracer) {
        match report {
            Report::Lost(lost) => {
                self.lost += lost.count;
                self.line(&crate::render::json::report(&Report::Lost(lost)));
            }
            Report::Exit(exit) => self.exit(exit, correlator),
            Report::Signal(signal) if signal.target.is_none() => {
                if let Some(signal) = self.resolve_failed(signal, correlator, tracer) {
                    self.signal(signal);
                }
            }
            Report::Signal(signal) => self.signal(signal),
        }
    }

    fn signal(&mut self, signal: Box<SignalReport>) {
        let unexpected = self.allow.is_unexpected(&signal);
        self.line(&with_unexpected(&signal, unexpected));
        if signal.result == "failed" {
            self.failed += 1;
            if self.failed_reports.len() < KEEP_DETAILS {
                self.failed_reports.push(*signal);
            }
            return;
        }
        self.signals_seen += 1;
        let Some(target) = signal.keys.target else {
            return;
        };
        // The kernel only reports signals aimed at the tree.
        self.tree.insert(target);
        let can_kill = matches!(signal.result, "delivered" | "already_pending")
            && matches!(
                default_action(signal.signo),
                DefaultAction::Terminate | DefaultAction::CoreDump
            );
        if unexpected {
            self.unexpected += 1;
            if self.unexpected_reports.len() < KEEP_DETAILS {
                self.unexpected_reports.push((*signal).clone());
            }
        }
        if can_kill {
            let list = self.fatal.entry(target).or_default();
            list.retain(|r| r.signo != signal.signo);
            list.push(*signal);
        }
    }

    fn exit(&mut self, exit: ExitReport, correlator: &Correlator) {
        let Some(key) = exit.key else { return };
        let is_cmd = self.cmd == Some(key);
        if !is_cmd && !self.in_tree(correlator, key) {
            return;
        }
        let fatal = self.fatal.remove(&key).unwrap_or_default();
        if let Some(signo) = exit.signo {
            let by = fatal.into_iter().rev().find(|r| r.signo == signo);
            if is_cmd {
                self.cmd_killer.clone_from(&by);
            }
            self.line(&crate::render::json::report(&Report::Exit(exit.clone())));
            self.killed_count += 1;
            if self.killed.len() < KEEP_DETAILS {
                self.killed.push(Killed {
                    argv: correlator.argv(&key),
                    exit,
                    by,
                    expected: self.allow.signals.contains(&signo),
                });
            }
        } else if is_cmd {
            self.line(&crate::render::json::report(&Report::Exit(exit)));
        }
    }

    /// Whether `key` descends from the command, by fork-time parents (so daemons that
    /// were reparented still count).
    fn in_tree(&mut self, correlator: &Correlator, key: ProcKey) -> bool {
        let mut path = Vec::new();
        let mut next = Some(key);
        while let Some(key) = next {
            if self.tree.contains(&key) {
                self.tree.extend(path);
                return true;
            }
            if key.pid <= 1 || path.len() >= 64 {
                break;
            }
            path.push(key);
            next = correlator.fork_parent(&key);
        }
        false
    }

    /// A failed kill-family call: the kernel generated nothing, so the target is worked
    /// out from the request (as the live view does); None when it was not aimed at the
    /// tree.
    fn resolve_failed(
        &mut self,
        mut signal: Box<SignalReport>,
        correlator: &mut Correlator,
        tracer: &Tracer,
    ) -> Option<Box<SignalReport>> {
        let request = signal.keys.request;
        let direct = match request.syscall {
            syscall::KILL | syscall::RT_SIGQUEUEINFO if request.arg0 > 0 => Some(request.arg0),
            syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => Some(request.arg0),
            syscall::PIDFD_SEND_SIGNAL if request.pidfd_pid > 0 => {
                Some(i64::from(request.pidfd_pid))
            }
            _ => None,
        };
        let pid = match direct {
            Some(pid) => u32::try_from(pid).ok()?,
            None => {
                let sender_pgrp = signal
                    .keys
                    .sender
                    .and_then(|key| procfs::read_process_if(key.pid, key.start_ticks))
                    .map(|snap| snap.stat.pgrp);
                let mut candidates = tracer.targets();
                candidates.sort_unstable();
                let cmd = self.cmd.map(|k| k.pid);
                candidates.sort_by_key(|&pid| Some(pid) != cmd);
                candidates.into_iter().find(|&pid| {
                    let watched = Watched {
                        pid,
                        pgrp: procfs::read_stat(pid).map(|s| s.pgrp).unwrap_or(0),
                        tids: if request.syscall == syscall::TKILL {
                            procfs::read_tids(pid)
                        } else {
                            Vec::new()
                        },
                    };
                    request_reaches(&request, sender_pgrp, &watched)
                })?
            }
        };
        let key = correlator.latest(pid)?;
        if !self.in_tree(correlator, key) {
            return None;
        }
        let tid = match request.syscall {
            syscall::TKILL => request.arg0 as u32,
            syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => request.arg1 as u32,
            _ => pid,
        };
        signal.target = correlator.describe(&key, tid).map(std::sync::Arc::new);
        signal.keys.target = Some(key);
        Some(signal)
    }

    // -----------------------------------------------------------------------------------
    // The end

    /// Writes the reports and the summary; returns sigwho's exit status.
    fn finish(
        &mut self,
        args: &RunOptions,
        outcome: &Outcome,
        junit_file: Option<(PathBuf, File)>,
    ) -> i32 {
        let fail_on_signal = args.fail_on_signal && outcome.exit_status == 0 && self.unexpected > 0;
        let mut code = if fail_on_signal {
            1
        } else {
            outcome.exit_status
        };
        let mut errors = Vec::new();
        if let Some(message) = &outcome.tracing_error {
            errors.push(format!("tracing stopped early: {message}"));
        }

        let summary = self.summary_json(outcome, code);
        self.line(&summary);
        if let Some(report) = &mut self.report {
            report.flush();
            if let Some(error) = &report.error {
                errors.push(format!("cannot write {}: {error}", report.path.display()));
            }
        }
        if let Some((path, mut file)) = junit_file {
            let xml = self.junit(outcome).to_xml();
            if let Err(error) = file.write_all(xml.as_bytes()).and_then(|()| file.flush()) {
                errors.push(format!("cannot write {}: {error}", path.display()));
            }
        }
        if !args.quiet {
            eprint!("{}", self.summary_text(outcome, fail_on_signal));
        }
        if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            eprint!("{}", self.annotations());
        }
        for error in &errors {
            eprintln!("sigwho: error: {error}");
        }
        // sigwho's own failures never hide the command's, nor pass for success.
        if !errors.is_empty() && code == 0 {
            code = 2;
        }
        code
    }

    fn summary_json(&self, outcome: &Outcome, code: i32) -> String {
        let status = outcome.status;
        let summary = SummaryJson {
            event: "summary",
            time: self.time_now(),
            started: &self.started_at,
            command: &self.command,
            pid: outcome.pid,
            exit_status: outcome.exit_status,
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()).map(signal_label),
            signo: status.and_then(|s| s.signal()),
            core_dumped: status
                .filter(|s| s.signal().is_some())
                .map(|s| s.core_dumped()),
            killed_by: self.cmd_killer.as_ref().map(|r| brief_process(&r.sender)),
            sigwho_exit_status: code,
            duration_seconds: outcome.duration.as_secs_f64(),
            signals_seen: self.signals_seen,
            unexpected: self.unexpected,
            failed_attempts: self.failed,
            killed_count: self.killed_count,
            killed: self
                .killed
                .iter()
                .map(|k| KilledJson {
                    pid: k.exit.pid,
                    comm: &k.exit.comm,
                    argv: &k.argv,
                    time: &k.exit.time,
                    signal: k.exit.signal.clone().unwrap_or_default(),
                    signo: k.exit.signo.unwrap_or_default(),
                    core_dumped: k.exit.core_dumped.unwrap_or_default(),
                    expected: k.expected,
                    sender: k.by.as_ref().map(|r| brief_process(&r.sender)),
                })
                .collect(),
            lost: self.lost,
            allowed: self.allow.names(),
            interrupted: outcome
                .interrupted
                .iter()
                .map(|i| InterruptJson {
                    signal: signal_label(i.received.signo),
                    sender_pid: i.received.sender_pid,
                    forwarded: i.forwarded,
                })
                .collect(),
            error: outcome
                .error
                .as_deref()
                .or(outcome.tracing_error.as_deref()),
        };
        serde_json::to_string(&summary).unwrap_or_default()
    }

    fn time_now(&self) -> String {
        crate::model::clock::rfc3339_nanos(crate::model::clock::unix_now_ns())
    }

    fn command_text(&self) -> String {
        shell_join(&self.command)
    }

    fn summary_text(&self, outcome: &Outcome, fail_on_signal: bool) -> String {
        let mut out = String::new();
        if outcome.error.is_some() {
            // The command never ran; the error was printed already.
            return out;
        }
        let secs = outcome.duration.as_secs_f64();
        let ended = match (outcome.status, &outcome.error) {
            (_, Some(error)) => error.clone(),
            (Some(status), _) => match status.code() {
                Some(code) => format!("exited with code {code}"),
                None => {
                    let signo = status.signal().unwrap_or_default();
                    let by = self.cmd_killer.as_ref().map_or_else(String::new, |r| {
                        format!(" from {}", process_brief(&r.sender))
                    });
                    let core = if status.core_dumped() {
                        ", core dumped"
                    } else {
                        ""
                    };
                    format!(
                        "was killed by {}{by}{core} (status {})",
                        signal_label(signo),
                        outcome.exit_status
                    )
                }
            },
            (None, None) => "ended in an unknown way".to_owned(),
        };
        let pid = outcome
            .pid
            .map_or_else(String::new, |p| format!(" (pid {p})"));
        let _ = writeln!(
            out,
            "sigwho: `{}`{pid} {ended} (traced for {secs:.2} s)",
            self.command_text()
        );
        for interrupt in &outcome.interrupted {
            let _ = writeln!(
                out,
                "sigwho: received {}; {}",
                interrupt.received.describe(),
                interrupt.action
            );
        }
        let allowed = self.allow.names();
        let allowed = if allowed.is_empty() {
            "self-sent".to_owned()
        } else {
            format!("{} and self-sent", allowed.join(", "))
        };
        let _ = writeln!(
            out,
            "sigwho: {} signal(s) to its processes, {} unexpected (expected: {allowed})",
            self.signals_seen, self.unexpected
        );
        for report in self.unexpected_reports.iter().take(SUMMARY_DETAILS) {
            self.describe_signal(&mut out, report);
        }
        if self.unexpected > SUMMARY_DETAILS as u64 {
            let _ = writeln!(
                out,
                "sigwho: ... and {} more unexpected signal(s) (all are in --report)",
                self.unexpected - SUMMARY_DETAILS as u64
            );
        }
        if self.failed > 0 {
            let _ = writeln!(
                out,
                "sigwho: {} failed attempt(s) to signal its processes:",
                self.failed
            );
            for report in self.failed_reports.iter().take(SUMMARY_DETAILS) {
                let _ = writeln!(
                    out,
                    "  {} by {}: {}",
                    report.call.as_deref().unwrap_or(&report.signal),
                    process_brief(&report.sender),
                    report.errno.as_deref().unwrap_or("failed")
                );
            }
        }
        if self.killed_count > 0 {
            let _ = writeln!(
                out,
                "sigwho: {} process(es) died of a signal:",
                self.killed_count
            );
            for killed in self.killed.iter().take(SUMMARY_DETAILS) {
                let _ = writeln!(out, "  {}", killed_line(killed));
            }
            if self.killed_count > SUMMARY_DETAILS as u64 {
                let _ = writeln!(
                    out,
                    "  ... and {} more",
                    self.killed_count - SUMMARY_DETAILS as u64
                );
            }
        }
        if self.lost > 0 {
            let _ = writeln!(
                out,
                "sigwho: warning: {} record(s) lost (the ring buffer was full): some signals may be missing",
                self.lost
            );
        }
        if fail_on_signal {
            let _ = writeln!(
                out,
                "sigwho: exit status 1: unexpected signal(s) although the command succeeded (--fail-on-signal)"
            );
        }
        out
    }

    /// One unexpected signal for the text summary: who to whom, the sender's chain,
    /// the cause chain and hints.
    fn describe_signal(&self, out: &mut String, r: &SignalReport) {
        let target = r
            .target
            .as_deref()
            .map_or_else(|| "an unknown process".to_owned(), process_brief_with_argv);
        let _ = writeln!(out, "sigwho: unexpected {} to {target}", r.signal);
        let how = r.call.clone().unwrap_or_else(|| r.origin.to_owned());
        let relation = match r.relation {
            "unrelated" => "unrelated sender".to_owned(),
            "self" => "sent to itself".to_owned(),
            relation => format!("sender is its {relation}"),
        };
        let _ = writeln!(
            out,
            "  from {} [{how}, {}, {}, {relation}]",
            process_brief_with_argv(&r.sender),
            r.origin_class,
            r.result,
        );
        let chain = self.sender_chain(r);
        if !chain.is_empty() {
            let _ = writeln!(out, "  sender's parents: {chain}");
        }
        if !r.cause.is_empty() {
            let _ = writeln!(out, "  cause chain: {}", cause_chain(r));
        }
        for hint in &r.hints {
            let _ = writeln!(out, "  hint [{}]: {}", hint.id, hint.text);
        }
    }

    /// The sender's ancestry up to the command (or sigwho) when it is in the tree, else
    /// a few generations.
    fn sender_chain(&self, r: &SignalReport) -> String {
        let stop = [self.cmd.map(|k| k.pid), Some(std::process::id())];
        let mut parts = Vec::new();
        for ancestor in &r.sender.ancestry {
            parts.push(ancestor_brief(ancestor));
            if stop.contains(&Some(ancestor.pid)) || parts.len() >= 5 {
                break;
            }
        }
        parts.join(" <- ")
    }

    fn annotations(&self) -> String {
        let mut out = String::new();
        for r in self.unexpected_reports.iter().take(ANNOTATIONS) {
            let target = r
                .target
                .as_deref()
                .map_or_else(|| "?".to_owned(), process_brief);
            let mut message = format!(
                "{} to {target} from {}",
                r.signal,
                process_brief_with_argv(&r.sender)
            );
            let chain = self.sender_chain(r);
            if !chain.is_empty() {
                let _ = write!(message, "\nsender's parents: {chain}");
            }
            if !r.cause.is_empty() {
                let _ = write!(message, "\ncause chain: {}", cause_chain(r));
            }
            for hint in &r.hints {
                let _ = write!(message, "\nhint [{}]: {}", hint.id, hint.text);
            }
            let _ = writeln!(out, "::warning title=sigwho::{}", annotation_data(&message));
        }
        if self.unexpected > ANNOTATIONS as u64 {
            let _ = writeln!(
                out,
                "::warning title=sigwho::{}",
                annotation_data(&format!(
                    "{} more unexpected signal(s); see the job log or the --report file",
                    self.unexpected - ANNOTATIONS as u64
                ))
            );
        }
        out
    }

    /// One test case per process that died of a signal or received an unexpected one,
    /// plus the command's own (passing when neither happened to it).
    fn junit(&self, outcome: &Outcome) -> junit::Suite {
        struct Entry<'r> {
            pid: u32,
            name: String,
            killed: Option<&'r Killed>,
            unexpected: Vec<&'r SignalReport>,
        }
        let mut order: Vec<ProcKey> = Vec::new();
        let mut entries: HashMap<ProcKey, Entry> = HashMap::new();
        let cmd_key = self.cmd.unwrap_or(ProcKey {
            pid: 0,
            start_ticks: 0,
        });
        order.push(cmd_key);
        entries.insert(
            cmd_key,
            Entry {
                pid: cmd_key.pid,
                name: self.command_text(),
                killed: None,
                unexpected: Vec::new(),
            },
        );
        for r in &self.unexpected_reports {
            let (Some(key), Some(target)) = (r.keys.target, r.target.as_ref()) else {
                continue;
            };
            entries
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    Entry {
                        pid: target.pid,
                        name: name_of(&target.argv, &target.comm),
                        killed: None,
                        unexpected: Vec::new(),
                    }
                })
                .unexpected
                .push(r);
        }
        for killed in &self.killed {
            let Some(key) = killed.exit.key else { continue };
            entries
                .entry(key)
                .or_insert_with(|| {
                    order.push(key);
                    Entry {
                        pid: killed.exit.pid,
                        name: name_of(&killed.argv, &killed.exit.comm),
                        killed: None,
                        unexpected: Vec::new(),
                    }
                })
                .killed = Some(killed);
        }

        let mut cases = Vec::new();
        for key in order {
            let Some(entry) = entries.remove(&key) else {
                continue;
            };
            let is_cmd = key == cmd_key;
            let name = if entry.pid == 0 {
                entry.name.clone()
            } else {
                format!("{} (pid {})", entry.name, entry.pid)
            };
            let mut message = Vec::new();
            let mut kind = String::new();
            let mut text = String::new();
            let mut failed = !entry.unexpected.is_empty();
            if let Some(killed) = entry.killed {
                failed |= !killed.expected;
                let signal = killed.exit.signal.clone().unwrap_or_default();
                let mut part = format!("killed by {signal}");
                if let Some(by) = &killed.by {
                    let _ = write!(part, " from {}", process_brief_with_argv(&by.sender));
                    let chain = self.sender_chain(by);
                    if !chain.is_empty() {
                        let _ = write!(part, "; sender's parents: {chain}");
                    }
                    if !by.cause.is_empty() {
                        let _ = write!(part, "; cause chain: {}", cause_chain(by));
                    }
                }
                if killed.expected {
                    part.push_str(" (an allowed signal)");
                }
                message.push(part);
                kind = signal;
                text.push_str(&crate::render::text::report(&Report::Exit(
                    killed.exit.clone(),
                )));
                if let Some(by) = &killed.by {
                    text.push_str(&junit_text(by));
                }
            }
            let killer_time = entry
                .killed
                .and_then(|k| k.by.as_ref())
                .map(|r| r.keys.time_ns);
            let others: Vec<&&SignalReport> = entry
                .unexpected
                .iter()
                .filter(|r| Some(r.keys.time_ns) != killer_time)
                .collect();
            if let Some(first) = others.first() {
                let mut part = format!(
                    "unexpected {} from {}",
                    first.signal,
                    process_brief_with_argv(&first.sender)
                );
                let chain = self.sender_chain(first);
                if !chain.is_empty() {
                    let _ = write!(part, "; sender's parents: {chain}");
                }
                if !first.cause.is_empty() {
                    let _ = write!(part, "; cause chain: {}", cause_chain(first));
                }
                if others.len() > 1 {
                    let _ = write!(part, " (+{} more unexpected)", others.len() - 1);
                }
                message.push(part);
                if kind.is_empty() {
                    kind.clone_from(&first.signal);
                }
                for r in others.iter().take(SUMMARY_DETAILS) {
                    text.push_str(&junit_text(r));
                }
            }
            let mut system_out = None;
            if is_cmd {
                let status = match (outcome.status, &outcome.error) {
                    (_, Some(error)) => error.clone(),
                    (Some(status), _) => match status.code() {
                        Some(code) => format!("exited with code {code}"),
                        None => format!(
                            "killed by {}",
                            signal_label(status.signal().unwrap_or_default())
                        ),
                    },
                    (None, None) => "ended in an unknown way".to_owned(),
                };
                system_out = Some(format!(
                    "{status}; {} signal(s) to its processes, {} unexpected",
                    self.signals_seen, self.unexpected
                ));
            }
            let failure = failed.then(|| junit::Failure {
                message: message.join("; "),
                kind: kind.clone(),
                text: text.clone(),
            });
            if !failed && !text.is_empty() {
                let note = format!("{}\n{text}", message.join("; "));
                system_out = Some(match system_out {
                    Some(before) => format!("{before}\n{note}"),
                    None => note,
                });
            }
            cases.push(junit::Case {
                name,
                classname: if is_cmd {
                    "sigwho.command".to_owned()
                } else {
                    "sigwho.process".to_owned()
                },
                time_seconds: 0.0,
                failure,
                system_out,
            });
        }
        junit::Suite {
            name: format!("sigwho run: {}", self.command_text()),
            timestamp: self.started_at.chars().take(19).collect(),
            time_seconds: outcome.duration.as_secs_f64(),
            properties: vec![
                ("command".to_owned(), self.command_text()),
                ("exit_status".to_owned(), outcome.exit_status.to_string()),
                ("signals_seen".to_owned(), self.signals_seen.to_string()),
                ("unexpected".to_owned(), self.unexpected.to_string()),
                ("lost".to_owned(), self.lost.to_string()),
            ],
            cases,
        }
    }
}

/// A signal report as a JSON line with `"unexpected"` added (after the live view's
/// fields, which keep their order).
fn with_unexpected(report: &SignalReport, unexpected: bool) -> String {
    let mut line = serde_json::to_string(report).unwrap_or_default();
    if line.ends_with('}') {
        line.pop();
        let _ = write!(line, ",\"unexpected\":{unexpected}}}");
    }
    line
}

/// A report as the live view prints it, for a JUnit failure's details: ancestries end
/// at sigwho (what is above it is the CI runner's business), or after a few generations
/// for processes outside the tree.
fn junit_text(report: &SignalReport) -> String {
    let mut report = report.clone();
    let me = std::process::id();
    for process in std::iter::once(&mut report.sender).chain(report.target.as_mut()) {
        let keep = process
            .ancestry
            .iter()
            .position(|a| a.pid == me)
            .map_or(5, |i| i + 1);
        std::sync::Arc::make_mut(process).ancestry.truncate(keep);
    }
    crate::render::text::report(&Report::Signal(Box::new(report)))
}

/// A workflow command's message: `%`, CR and LF encoded as the runner expects.
pub fn annotation_data(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A test case's name: the command line, shortened, else the process name.
fn name_of(argv: &[String], comm: &str) -> String {
    let name = if argv.is_empty() {
        comm.to_owned()
    } else {
        shell_join(argv)
    };
    shorten(&name, 200)
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars - 3).collect();
    short.push_str("...");
    short
}

fn process_brief(p: &ProcessReport) -> String {
    format!("pid {} ({})", p.pid, p.comm)
}

fn process_brief_with_argv(p: &ProcessReport) -> String {
    if p.argv.is_empty() {
        process_brief(p)
    } else {
        format!(
            "pid {} ({}) {}",
            p.pid,
            p.comm,
            shorten(&shell_join(&p.argv), 160)
        )
    }
}

fn ancestor_brief(a: &AncestorReport) -> String {
    format!("{} ({})", a.pid, a.comm)
}

fn cause_chain(r: &SignalReport) -> String {
    r.cause
        .iter()
        .map(|c| {
            let argv = if c.sender.argv.is_empty() {
                String::new()
            } else {
                format!(" {}", shorten(&shell_join(&c.sender.argv), 80))
            };
            format!(
                "it got {} from pid {} ({}){argv}",
                c.signal, c.sender.pid, c.sender.comm
            )
        })
        .collect::<Vec<_>>()
        .join(" <- ")
}

fn killed_line(killed: &Killed) -> String {
    let exit = &killed.exit;
    let mut line = format!("pid {} ({})", exit.pid, exit.comm);
    if !killed.argv.is_empty() {
        let _ = write!(line, " {}", shorten(&shell_join(&killed.argv), 120));
    }
    let _ = write!(line, ": {}", exit.signal.as_deref().unwrap_or("a signal"));
    if exit.core_dumped == Some(true) {
        line.push_str(" (core dumped)");
    }
    match &killed.by {
        Some(by) => {
            let _ = write!(line, " from {}", process_brief(&by.sender));
        }
        None => line.push_str(" (sender not seen)"),
    }
    if killed.expected {
        line.push_str(" [allowed]");
    }
    line
}

fn brief_process(p: &ProcessReport) -> BriefJson {
    BriefJson {
        pid: p.pid,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        argv: p.argv.clone(),
    }
}

#[derive(Serialize)]
struct BriefJson {
    pid: u32,
    comm: String,
    exe: Option<String>,
    argv: Vec<String>,
}

#[derive(Serialize)]
struct KilledJson<'a> {
    pid: u32,
    comm: &'a str,
    argv: &'a [String],
    time: &'a str,
    signal: String,
    signo: i32,
    core_dumped: bool,
    /// The fatal signal is in the allow list.
    expected: bool,
    sender: Option<BriefJson>,
}

#[derive(Serialize)]
struct InterruptJson {
    signal: String,
    sender_pid: u32,
    forwarded: bool,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    event: &'static str,
    time: String,
    started: &'a str,
    command: &'a [String],
    pid: Option<u32>,
    exit_status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signo: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    core_dumped: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    killed_by: Option<BriefJson>,
    sigwho_exit_status: i32,
    duration_seconds: f64,
    signals_seen: u64,
    unexpected: u64,
    failed_attempts: u64,
    killed_count: u64,
    killed: Vec<KilledJson<'a>>,
    lost: u64,
    allowed: Vec<String>,
    interrupted: Vec<InterruptJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::fixtures::signal;

    #[test]
    fn allow_list_defaults_and_parsing() {
        let default = Allow::parse(None).unwrap();
        assert_eq!(
            default.names(),
            ["SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH"]
        );
        assert!(default.signals.contains(&libc::SIGURG));
        let custom = Allow::parse(Some("TERM, sigusr1,10,RTMIN+1")).unwrap();
        assert_eq!(
            custom.signals,
            [libc::SIGTERM, libc::SIGUSR1, 35].into_iter().collect()
        );
        assert!(Allow::parse(Some("")).unwrap().signals.is_empty());
        let error = Allow::parse(Some("TERM,NOPE")).unwrap_err();
        assert!(error.starts_with("--allow: "), "{error}");
    }

    #[test]
    fn unexpected_means_not_allowed_and_not_self_sent() {
        let allow = Allow::parse(None).unwrap();
        assert!(allow.is_unexpected(&signal(15, 10, 20, "explicit")));
        assert!(!allow.is_unexpected(&signal(17, 10, 20, "child_state")));
        // Go's runtime preempting its own threads.
        assert!(!allow.is_unexpected(&signal(23, 20, 20, "self")));
        assert!(!allow.is_unexpected(&signal(15, 20, 20, "self")));
        assert!(!allow.is_unexpected(&signal(14, 0, 20, "timer")));
        // The kernel's verdicts on the process's own doing are not "sent to itself".
        assert!(allow.is_unexpected(&signal(11, 20, 20, "fault")));
        assert!(allow.is_unexpected(&signal(13, 20, 20, "broken_pipe")));
        let mut failed = signal(15, 10, 20, "explicit");
        failed.result = "failed";
        assert!(!allow.is_unexpected(&failed));
    }

    #[test]
    fn statuses_read_like_a_shell() {
        assert_eq!(shell_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(shell_status(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(
            shell_status(ExitStatus::from_raw(libc::SIGSEGV | 0x80)),
            139
        );
    }

    #[test]
    fn annotations_encode_what_the_runner_would_read_as_syntax() {
        assert_eq!(annotation_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
    }

    #[test]
    fn unexpected_flag_is_appended_to_the_live_schema() {
        let line = with_unexpected(&signal(15, 10, 20, "explicit"), true);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["unexpected"], true);
        assert_eq!(value["signal"], "SIGTERM");
        assert!(line.starts_with("{\"event\":\"signal\""), "{line}");
    }
}
