//! `sigwho-storm`: a signal storm at victims of its own, to measure what tracing signals
//! costs the processes that send them, and to count what a tracer records.
//!
//! ```text
//! sigwho-storm --senders N --duration SECS [--rate PER_SEC] [--signal SIG]
//!              [--victim ignore|handle] [--call kill|tgkill|group] [--fail eperm|esrch]
//!              [--churn PER_SEC] [--migrate] [--gap SECS] [--values N]
//!              [--victim-pid-file PATH]
//! ```
//!
//! The storm starts its victim (two, in a process group of their own, with `--call
//! group`), then N sender processes that call, in a loop until the deadline, flat out
//! or, with `--rate`, paced to that many calls per second each:
//!
//! - `kill`: `kill(victim, SIG)` (the default);
//! - `tgkill`: `tgkill(victim, victim, SIG)`, to the victim's main thread;
//! - `group`: `kill(-pgid, SIG)`, which signals both members of the victims' group;
//! - `sigqueue`: `sigqueue(victim, SIG, value)`, with `value` counting through 0 to
//!   `--values` - 1 and again (default 1 value): every value is a siginfo of its own,
//!   so a tracer that keys repeats by siginfo sees `--values` keys per sender.
//!
//! The senders start together, count their calls themselves and report them to the
//! parent, which prints one line on stdout and reaps its children:
//!
//! ```text
//! storm senders=N duration=SECONDS calls=OK rate=CALLS_PER_SEC victim=PID signals=SIGNALS failed=FAILED victims=PID,... sender_pids=PID,...
//! ```
//!
//! `calls` counts the calls that succeeded, `signals` the signals they generated (twice
//! `calls` with `--call group`), `failed` the calls refused with the errno `--fail`
//! asks for. `duration` is the time actually taken, from the start signal to the last
//! sender's last call, and `rate` is all calls over `duration`. If any call fails
//! otherwise the line is still printed, the error goes to stderr and the exit status is 1.
//!
//! The victim ignores SIG (`SIG_IGN`, the default) or, with `--victim handle`, runs an
//! empty handler for it, and sleeps in `pause()`. Ignored, each call takes the path a
//! real signal takes up to the point of queueing (pid lookup, permission check, the
//! victim's siglock, the `signal:signal_generate` tracepoint with result "ignored") and
//! is dropped there. Handled, the signal is queued, or merged with the pending one,
//! and the victim wakes for it: the results alternate between "delivered" and "already
//! pending", as for a worker with a SIGUSR1 or SIGTERM handler. All senders share the
//! victims and so contend on their siglock, as senders storming one process do.
//!
//! `--fail eperm`: the senders drop to uid/gid 65534 first (the storm must run as
//! root), so that every call is refused with EPERM; `--fail esrch`: they call
//! `kill(2147483647, SIG)`, a pid above any `pid_max`, refused with ESRCH. Nothing is
//! signalled then; `failed` counts the attempts.
//!
//! `--migrate`: each sender moves to the next CPU it may run on every 256 calls
//! (`sched_setaffinity`), so that one sender's storm runs on every CPU in turn.
//!
//! `--gap SECS`: each sender storms for `--duration`, stops for SECS, then storms for
//! `--duration` again (the same processes: the same keys before and after a pause).
//!
//! `--churn PER_SEC`: one more child forks and execs `/bin/true` that many times per
//! second during the storm (background exec and exit churn, as on a real machine).
//!
//! Readiness protocol, for starting a tracer on the victim first: with
//! `--victim-pid-file PATH` the storm sets everything up (the victims are ready, the
//! senders wait at the barrier), writes the victim's pid to PATH (atomically, by rename),
//! prints `ready victim=PID` on stdout, and starts when it reads a line on stdin. If stdin
//! closes instead, whoever was to start it went away: the storm cleans up and exits 1.

use std::ffi::c_int;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

const USAGE: &str = "\
usage: sigwho-storm --senders N --duration SECS [--rate PER_SEC_PER_SENDER] [--signal SIG]
                    [--victim ignore|handle] [--call kill|tgkill|group|sigqueue]
                    [--fail eperm|esrch] [--churn PER_SEC] [--migrate] [--gap SECS]
                    [--values N] [--victim-pid-file PATH]
SIG is a number or a name such as USR1 (the default), SIGUSR2, RTMIN+1; not KILL or STOP,
which cannot be ignored or handled. With --victim-pid-file the storm prints
`ready victim=PID` and waits for a line on stdin before it starts.";

/// The barrier carries the deadline to each sender in one write; keeping every sender's
/// share within `PIPE_BUF` (4096) makes that write atomic.
const MAX_SENDERS: usize = 512;

/// Flat-out senders look at the clock once per this many calls: the vDSO clock is cheap,
/// but not free next to a ~1 µs `kill()`, and 64 calls overshoot the deadline by well under
/// a millisecond.
const CALLS_PER_CLOCK_CHECK: u64 = 64;

/// Paced senders wake about this often, sending `rate / WAKEUPS_PER_SEC` calls per wake-up,
/// so that high rates do not become a nanosleep per call.
const WAKEUPS_PER_SEC: u64 = 1000;

const NS_PER_SEC: u64 = 1_000_000_000;

struct Options {
    senders: usize,
    duration_ns: u64,
    rate: Option<u64>,
    signal: c_int,
    victim_pid_file: Option<PathBuf>,
    handle: bool,
    call: Call,
    fail: Option<Fail>,
    churn: Option<u64>,
    migrate: bool,
    gap_ns: u64,
    values: u64,
}

/// What each sender calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Kill,
    Tgkill,
    /// `kill(-pgid)` to the victims' group of two.
    Group,
    /// `sigqueue(victim)` with a value that counts through `--values`.
    Sigqueue,
}

/// How every call is made to fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fail {
    Eperm,
    Esrch,
}

impl Fail {
    fn errno(self) -> c_int {
        match self {
            Self::Eperm => libc::EPERM,
            Self::Esrch => libc::ESRCH,
        }
    }
}

/// A pid above any `pid_max` (at most 2^22): kill(2) on it fails with ESRCH.
const NO_SUCH_PID: libc::pid_t = libc::pid_t::MAX;

/// The uid and gid `--fail eperm` senders drop to.
const NOBODY: u32 = 65534;

/// What a sender reports to the parent: fixed-size, so that each report is one atomic
/// pipe write and reports from different senders cannot interleave.
#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    /// Calls refused with the errno `--fail` asked for.
    failed: u64,
    /// Calls that failed otherwise.
    unexpected: u64,
    /// errno of the first unexpected failure.
    errno: u64,
    /// `CLOCK_MONOTONIC` ns after the sender's last call.
    end_ns: u64,
}

impl Tally {
    const SIZE: usize = 40;

    fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        for (chunk, value) in out.chunks_exact_mut(8).zip([
            self.calls,
            self.failed,
            self.unexpected,
            self.errno,
            self.end_ns,
        ]) {
            chunk.copy_from_slice(&value.to_ne_bytes());
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        Self {
            calls: word(0),
            failed: word(1),
            unexpected: word(2),
            errno: word(3),
            end_ns: word(4),
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "one sequence: children, barrier, results; split, each part would need all the pipes"
)]
fn main() {
    let opts = parse_args();

    if opts.fail == Some(Fail::Eperm) {
        // SAFETY: geteuid(2) takes nothing and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            usage("--fail eperm needs root (the senders drop to uid 65534)");
        }
    }
    let victim = spawn_victim(opts.signal, opts.handle, 0);
    let mut victims = vec![victim];
    if opts.call == Call::Group {
        victims.push(spawn_victim(opts.signal, opts.handle, victim));
    }
    let (barrier_rx, mut barrier_tx) = pipe();
    let (mut report_rx, report_tx) = pipe();
    let mut senders = Vec::with_capacity(opts.senders + 1);
    if let Some(rate) = opts.churn {
        // SAFETY: as for the senders below; churn() never returns.
        match unsafe { libc::fork() } {
            -1 => {
                let e = errno();
                cleanup(&victims, &senders);
                fail("fork", e);
            }
            0 => {
                drop(barrier_tx);
                drop(report_rx);
                drop(report_tx);
                churn(barrier_rx, rate);
            }
            pid => senders.push(pid),
        }
    }
    let churners = senders.len();
    for _ in 0..opts.senders {
        // SAFETY: this process is single-threaded, so the child may run any code after
        // fork(2); it never returns from sender(), which ends in _exit.
        match unsafe { libc::fork() } {
            -1 => {
                let e = errno();
                cleanup(&victims, &senders);
                fail("fork", e);
            }
            0 => {
                drop(barrier_tx);
                drop(report_rx);
                sender(victim, &opts, barrier_rx, report_tx);
            }
            pid => senders.push(pid),
        }
    }
    // Only the senders may hold these ends: a sender that dies must end in EOF for us,
    // and closing barrier_tx must end in EOF for them.
    drop(barrier_rx);
    drop(report_tx);

    if let Some(path) = &opts.victim_pid_file {
        if let Err(err) = write_pid_file(path, victim) {
            drop(barrier_tx);
            cleanup(&victims, &senders);
            eprintln!("sigwho-storm: cannot write {}: {err}", path.display());
            exit(1);
        }
        say(&format!("ready victim={victim}"));
        let mut line = String::new();
        let started = std::io::stdin().lock().read_line(&mut line);
        if !matches!(started, Ok(n) if n > 0) {
            // Closing the barrier unread tells the senders to exit without sending.
            drop(barrier_tx);
            cleanup(&victims, &senders);
            eprintln!("sigwho-storm: stdin closed before the start line; not starting");
            exit(1);
        }
    }

    let start_ns = now_ns();
    let deadline = start_ns + opts.duration_ns * if opts.gap_ns > 0 { 2 } else { 1 } + opts.gap_ns;
    let share = deadline.to_ne_bytes();
    let barrier: Vec<u8> = (0..opts.senders + churners).flat_map(|_| share).collect();
    let opened = barrier_tx.write_all(&barrier);
    drop(barrier_tx);

    let mut reports = vec![0; Tally::SIZE * opts.senders];
    let received = opened.and_then(|()| report_rx.read_exact(&mut reports));
    cleanup(&victims, &senders);
    if let Err(err) = received {
        eprintln!("sigwho-storm: a sender did not report ({err})");
        exit(1);
    }

    let tallies: Vec<Tally> = reports
        .chunks_exact(Tally::SIZE)
        .map(Tally::from_bytes)
        .collect();
    let calls: u64 = tallies.iter().map(|t| t.calls).sum();
    let failed: u64 = tallies.iter().map(|t| t.failed).sum();
    let unexpected: u64 = tallies.iter().map(|t| t.unexpected).sum();
    let end_ns = tallies.iter().map(|t| t.end_ns).max().unwrap_or(deadline);
    let elapsed = Duration::from_nanos(end_ns.saturating_sub(start_ns).max(1)).as_secs_f64();
    let signals = calls * if opts.call == Call::Group { 2 } else { 1 };
    #[expect(
        clippy::cast_precision_loss,
        reason = "a storm's calls stay far below 2^53, under which f64 holds every integer"
    )]
    say(&format!(
        "storm senders={} duration={elapsed:.3} calls={calls} rate={:.0} victim={victim} \
         signals={signals} failed={failed} victims={} sender_pids={}",
        opts.senders,
        (calls + failed + unexpected) as f64 / elapsed,
        list(&victims),
        list(&senders[churners..]),
    ));

    if let Some(first) = tallies.iter().find(|t| t.unexpected > 0) {
        let e = c_int::try_from(first.errno).unwrap_or(0);
        eprintln!(
            "sigwho-storm: {unexpected} call(s) failed, first with {} ({})",
            errno_name(e),
            std::io::Error::from_raw_os_error(e)
        );
        exit(1);
    }
}

/// Pids as `A,B,C`.
fn list(pids: &[libc::pid_t]) -> String {
    pids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn usage(msg: &str) -> ! {
    eprintln!("sigwho-storm: {msg}\n{USAGE}");
    exit(2);
}

#[expect(
    clippy::too_many_lines,
    reason = "one match arm per option, each with its own check and message"
)]
fn parse_args() -> Options {
    let mut senders = None;
    let mut duration_ns = None;
    let mut rate = None;
    let mut signal = libc::SIGUSR1;
    let mut victim_pid_file = None;
    let mut handle = false;
    let mut call = Call::Kill;
    let mut fail = None;
    let mut churn = None;
    let mut migrate = false;
    let mut gap_ns = 0;
    let mut values = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            exit(0);
        }
        if arg == "--migrate" {
            migrate = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--senders" => {
                senders = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_SENDERS).contains(n))
                        .unwrap_or_else(|| usage(&format!("--senders must be 1 to {MAX_SENDERS}"))),
                );
            }
            "--duration" => {
                let secs = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
                    .unwrap_or_else(|| usage("--duration must be a positive number of seconds"));
                let ns = Duration::from_secs_f64(secs).as_nanos();
                duration_ns = Some(u64::try_from(ns).expect("under 10^6 s, so under 2^64 ns"));
            }
            "--rate" => {
                rate = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|r| *r > 0)
                        .unwrap_or_else(|| usage("--rate must be a positive integer")),
                );
            }
            "--signal" => {
                signal = signal_number(&value)
                    .unwrap_or_else(|| usage(&format!("unknown signal {value:?}")));
                if signal == 0 || signal == libc::SIGKILL || signal == libc::SIGSTOP {
                    usage("the victim must be able to ignore the signal: not 0, KILL or STOP");
                }
            }
            "--victim-pid-file" => victim_pid_file = Some(PathBuf::from(value)),
            "--victim" => {
                handle = match value.as_str() {
                    "ignore" => false,
                    "handle" => true,
                    _ => usage("--victim must be ignore or handle"),
                };
            }
            "--call" => {
                call = match value.as_str() {
                    "kill" => Call::Kill,
                    "tgkill" => Call::Tgkill,
                    "group" => Call::Group,
                    "sigqueue" => Call::Sigqueue,
                    _ => usage("--call must be kill, tgkill, group or sigqueue"),
                };
            }
            "--fail" => {
                fail = Some(match value.as_str() {
                    "eperm" => Fail::Eperm,
                    "esrch" => Fail::Esrch,
                    _ => usage("--fail must be eperm or esrch"),
                });
            }
            "--churn" => {
                churn = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|r| (1..=100_000).contains(r))
                        .unwrap_or_else(|| usage("--churn must be 1 to 100000 per second")),
                );
            }
            "--gap" => {
                let secs = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
                    .unwrap_or_else(|| usage("--gap must be a positive number of seconds"));
                let ns = Duration::from_secs_f64(secs).as_nanos();
                gap_ns = u64::try_from(ns).expect("under 10^6 s, so under 2^64 ns");
            }
            "--values" => {
                values = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .unwrap_or_else(|| usage("--values must be 1 to 1000000"));
            }
            other => usage(&format!("unknown option {other:?}")),
        }
    }
    Options {
        senders: senders.unwrap_or_else(|| usage("--senders is required")),
        duration_ns: duration_ns.unwrap_or_else(|| usage("--duration is required")),
        rate,
        signal,
        victim_pid_file,
        handle,
        call,
        fail,
        churn,
        migrate,
        gap_ns,
        values,
    }
}

/// Signal numbers for names, with or without the SIG prefix, any case, and RTMIN+N.
fn signal_number(s: &str) -> Option<c_int> {
    if let Ok(n) = s.parse::<c_int>() {
        return (0..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(off) = name.strip_prefix("RTMIN") {
        let off: c_int = match off {
            "" => 0,
            _ => off.strip_prefix('+')?.parse().ok()?,
        };
        let n = libc::SIGRTMIN() + off;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "URG" => libc::SIGURG,
        "WINCH" => libc::SIGWINCH,
        _ => return None,
    })
}

/// The victim's handler: nothing to do, the signal's arrival is the point.
extern "C" fn on_signal(_: c_int) {}

/// A victim that ignores or handles `signal`, in process group `group` (0: a group of
/// its own, led by it).
fn spawn_victim(signal: c_int, handle: bool, group: libc::pid_t) -> libc::pid_t {
    let (mut ready_rx, mut ready_tx) = pipe();
    // SAFETY: single-threaded, as in main; the child ends in _exit or pauses for good.
    match unsafe { libc::fork() } {
        -1 => fail("fork", errno()),
        0 => {
            drop(ready_rx);
            become_child(c"storm-victim");
            // SAFETY: setpgid(2) takes integers. All zeroes is a valid sigaction (no
            // handler, no flags), filled in before use; sigemptyset and sigaction get
            // pointers to it while it lives, and sigaction takes a null pointer for the
            // old action it need not return. The handler does nothing, which is
            // async-signal-safe.
            unsafe {
                if libc::setpgid(0, group) != 0 {
                    fail("setpgid", errno());
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = if handle {
                    on_signal as extern "C" fn(c_int) as libc::sighandler_t
                } else {
                    libc::SIG_IGN
                };
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&raw mut sa.sa_mask);
                if libc::sigaction(signal, &raw const sa, std::ptr::null_mut()) != 0 {
                    fail("sigaction", errno());
                }
            }
            // Only now may the senders start: before this, the first signal would kill us.
            if ready_tx.write_all(b"r").is_err() {
                // SAFETY: _exit(2) takes an integer and does not return; a forked child
                // must not run the parent's exit handlers.
                unsafe { libc::_exit(1) };
            }
            drop(ready_tx);
            loop {
                // SAFETY: pause(2) takes nothing.
                unsafe { libc::pause() };
            }
        }
        pid => {
            drop(ready_tx);
            let mut byte = [0];
            if ready_rx.read_exact(&mut byte).is_err() {
                cleanup(&[pid], &[]);
                eprintln!("sigwho-storm: the victim died while setting up");
                exit(1);
            }
            pid
        }
    }
}

/// What every child does first: a name that says what it is in traces and `ps`, death
/// with the parent (so an interrupted storm leaves nothing behind), and no hold on the
/// parent's stdin and stdout (whoever reads our stdout must see EOF when we exit).
fn become_child(name: &std::ffi::CStr) {
    // SAFETY: getppid(2) takes nothing and cannot fail.
    let parent = unsafe { libc::getppid() };
    // SAFETY: PR_SET_NAME reads the NUL-terminated `name`, alive for the call, and open(2)
    // a NUL-terminated literal; every other call takes integers only.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail("prctl", errno());
        }
        // The parent may have died before PR_SET_PDEATHSIG took effect.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null < 0 {
            fail("open /dev/null", errno());
        }
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        libc::close(null);
    }
}

fn sender(victim: libc::pid_t, opts: &Options, mut barrier: File, mut report: File) -> ! {
    become_child(c"storm-sender");
    if opts.fail == Some(Fail::Eperm) {
        drop_privileges();
    }
    let mut share = [0; 8];
    // EOF: the parent closed the barrier without starting (or died). Nothing to send.
    if barrier.read_exact(&mut share).is_err() {
        // SAFETY: _exit(2) takes an integer and does not return.
        unsafe { libc::_exit(0) };
    }
    let deadline = u64::from_ne_bytes(share);
    let mut target = Target {
        victim,
        signal: opts.signal,
        call: opts.call,
        fail: opts.fail,
        values: opts.values,
        value: 0,
        cpus: if opts.migrate {
            allowed_cpus()
        } else {
            Vec::new()
        },
        cpu: 0,
    };
    let burst = |target: &mut Target, deadline| match opts.rate {
        None => flat_out(target, deadline),
        Some(rate) => paced(target, deadline, rate),
    };
    let tally = if opts.gap_ns > 0 {
        // Two bursts of --duration with --gap between them, ending at the deadline.
        let first = burst(&mut target, deadline - opts.duration_ns - opts.gap_ns);
        sleep_until(deadline - opts.duration_ns);
        let mut tally = burst(&mut target, deadline);
        tally.calls += first.calls;
        tally.failed += first.failed;
        if tally.unexpected == 0 {
            tally.errno = first.errno;
        }
        tally.unexpected += first.unexpected;
        tally
    } else {
        burst(&mut target, deadline)
    };
    let code = i32::from(report.write_all(&tally.to_bytes()).is_err());
    // SAFETY: _exit(2) takes an integer and does not return; a forked child must not run
    // the parent's exit handlers.
    unsafe { libc::_exit(code) };
}

/// `--fail eperm`: to uid and gid 65534, so that signalling the (root) victim is refused.
fn drop_privileges() {
    // SAFETY: setgroups(2) with an empty list reads nothing; the others take integers.
    // Changing credentials clears the parent-death signal, hence setting it again.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(NOBODY, NOBODY, NOBODY) != 0
            || libc::setresuid(NOBODY, NOBODY, NOBODY) != 0
        {
            fail("dropping privileges", errno());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail("prctl", errno());
        }
    }
}

/// What a sender's calls aim at, and where it is in its rounds of values and CPUs.
struct Target {
    victim: libc::pid_t,
    signal: c_int,
    call: Call,
    fail: Option<Fail>,
    /// `--values`: how many sigqueue values to count through.
    values: u64,
    value: u64,
    /// `--migrate`: the CPUs to move through (empty: stay).
    cpus: Vec<usize>,
    cpu: usize,
}

impl Target {
    /// `--migrate`: on to the next CPU this process may run on.
    fn migrate(&mut self) {
        if self.cpus.is_empty() {
            return;
        }
        self.cpu = (self.cpu + 1) % self.cpus.len();
        // SAFETY: all zeroes is an empty cpu_set_t; CPU_SET writes a bit inside it;
        // sched_setaffinity(2) reads it while it lives.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(self.cpus[self.cpu], &mut set);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) != 0 {
                fail("sched_setaffinity", errno());
            }
        }
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: all zeroes is an empty cpu_set_t, which sched_getaffinity(2) fills in while
    // it lives; CPU_ISSET reads a bit inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) != 0 {
            fail("sched_getaffinity", errno());
        }
        (0..usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024))
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Makes one call; false (with the tally updated) when it failed unexpectedly.
fn send(target: &mut Target, tally: &mut Tally) -> bool {
    let (victim, signal) = (target.victim, target.signal);
    // SAFETY: kill(2) and tgkill(2) take integers and touch no memory of ours.
    let ret = unsafe {
        match (target.fail, target.call) {
            (Some(Fail::Esrch), _) => libc::kill(NO_SUCH_PID, signal),
            (_, Call::Kill) => libc::kill(victim, signal),
            (_, Call::Group) => libc::kill(-victim, signal),
            (_, Call::Tgkill) => {
                let ret = libc::syscall(libc::SYS_tgkill, victim, victim, signal);
                c_int::try_from(ret).unwrap_or(-1)
            }
            (_, Call::Sigqueue) => {
                let value = target.value;
                target.value = (target.value + 1) % target.values;
                libc::sigqueue(
                    victim,
                    signal,
                    libc::sigval {
                        sival_ptr: std::ptr::without_provenance_mut(
                            usize::try_from(value).unwrap_or(0),
                        ),
                    },
                )
            }
        }
    };
    if ret == 0 {
        tally.calls += 1;
        return true;
    }
    let e = errno();
    if target.fail.is_some_and(|f| f.errno() == e) {
        tally.failed += 1;
        return true;
    }
    if tally.unexpected == 0 {
        tally.errno = u64::try_from(e).unwrap_or(0);
    }
    tally.unexpected += 1;
    false
}

/// `--churn`: fork and exec `/bin/true` `rate` times per second until the deadline.
fn churn(mut barrier: File, rate: u64) -> ! {
    become_child(c"storm-churn");
    let mut share = [0; 8];
    if barrier.read_exact(&mut share).is_err() {
        // SAFETY: _exit(2) takes an integer and does not return.
        unsafe { libc::_exit(0) };
    }
    let deadline = u64::from_ne_bytes(share);
    let start = now_ns();
    let mut runs: u64 = 0;
    loop {
        let due = start + runs * NS_PER_SEC / rate;
        if due >= deadline {
            break;
        }
        sleep_until(due);
        // SAFETY: this process is single-threaded, so the child may run any code; it
        // execs or exits at once.
        match unsafe { libc::fork() } {
            -1 => break,
            0 => {
                let argv = [c"true".as_ptr(), std::ptr::null()];
                // SAFETY: execv(2) reads the NUL-terminated path and the null-terminated
                // argv, both alive for the call; _exit(2) takes an integer.
                unsafe {
                    libc::execv(c"/bin/true".as_ptr(), argv.as_ptr());
                    libc::_exit(127);
                }
            }
            pid => {
                let mut status = 0;
                // SAFETY: waitpid(2) writes the status into `status`, which outlives it.
                while unsafe { libc::waitpid(pid, &raw mut status, 0) } == -1
                    && errno() == libc::EINTR
                {}
            }
        }
        runs += 1;
    }
    // SAFETY: _exit(2) takes an integer and does not return.
    unsafe { libc::_exit(0) };
}

fn flat_out(target: &mut Target, deadline: u64) -> Tally {
    let mut tally = Tally::default();
    let mut checks: u64 = 0;
    'storm: loop {
        checks += 1;
        if checks.is_multiple_of(4) {
            target.migrate();
        }
        for _ in 0..CALLS_PER_CLOCK_CHECK {
            // An unexpected failure (the victim is gone, EPERM) would repeat on every
            // call: stop.
            if !send(target, &mut tally) {
                break 'storm;
            }
        }
        if now_ns() >= deadline {
            break;
        }
    }
    tally.end_ns = now_ns();
    tally
}

/// Batches of `rate / WAKEUPS_PER_SEC` calls at absolute deadlines computed from the start,
/// so that oversleeping does not accumulate: a sender that falls behind sends the missed
/// batches without sleeping until it has caught up.
fn paced(target: &mut Target, deadline: u64, rate: u64) -> Tally {
    let mut tally = Tally::default();
    let start = now_ns();
    let batch = (rate / WAKEUPS_PER_SEC).max(1);
    let mut batches: u64 = 0;
    loop {
        let due = start
            + u64::try_from(
                u128::from(batches * batch) * u128::from(NS_PER_SEC) / u128::from(rate),
            )
            .unwrap_or(u64::MAX);
        if due >= deadline {
            break;
        }
        sleep_until(due);
        if !(0..batch).all(|_| send(target, &mut tally)) {
            break;
        }
        batches += 1;
    }
    // The window is the whole duration, even when the last batch was due well before it.
    tally.end_ns = now_ns().max(deadline);
    tally
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes a timespec into `ts`, which lives across the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    // The monotonic clock counts from boot: never negative.
    let (secs, nanos) = (ts.tv_sec.unsigned_abs(), ts.tv_nsec.unsigned_abs());
    secs * NS_PER_SEC + nanos
}

fn sleep_until(ns: u64) {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(ns / NS_PER_SEC).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(ns % NS_PER_SEC).expect("under 10^9"),
    };
    // Returns the error number directly; EINTR (no handlers here, but cheap to honour)
    // just means sleeping again until the same absolute time.
    // SAFETY: clock_nanosleep(2) reads `ts`, which lives across the call; with
    // TIMER_ABSTIME it takes a null pointer for the remainder it then has no use for.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &raw const ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

/// Kills the victims and reaps every child: they are all ours and not yet reaped, so
/// their pids cannot have been reused. Senders end by themselves (their deadline passed,
/// or the barrier closed unread).
fn cleanup(victims: &[libc::pid_t], senders: &[libc::pid_t]) {
    for &victim in victims {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe { libc::kill(victim, libc::SIGKILL) };
    }
    for &pid in victims.iter().chain(senders) {
        let mut status = 0;
        // SAFETY: waitpid(2) writes the status into `status`, which outlives the call.
        while unsafe { libc::waitpid(pid, &raw mut status, 0) } == -1 && errno() == libc::EINTR {}
    }
}

fn write_pid_file(path: &std::path::Path, pid: libc::pid_t) -> std::io::Result<()> {
    // Written aside and renamed, so that a reader never sees a partial pid.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) writes two descriptors into `fds`, an array of two.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        fail("pipe2", errno());
    }
    // SAFETY: pipe2 just returned these two descriptors, owned by nobody else.
    let [rx, tx] = fds.map(|fd| File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    (rx, tx)
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_name(e: c_int) -> String {
    match e {
        libc::EPERM => "EPERM".into(),
        libc::ESRCH => "ESRCH".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EAGAIN => "EAGAIN".into(),
        _ => format!("errno {e}"),
    }
}

fn fail(what: &str, e: c_int) -> ! {
    eprintln!(
        "sigwho-storm: {what}: {} ({})",
        errno_name(e),
        std::io::Error::from_raw_os_error(e)
    );
    exit(1);
}

/// Prints one line to stdout and flushes it: the reader waits for it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A reader that went away will notice by itself; nothing to do about it here.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
