//! `sigwho-storm`: a `kill()` storm at a victim of its own, to measure what tracing signals
//! costs the processes that send them.
//!
//! ```text
//! sigwho-storm --senders N --duration SECS [--rate PER_SEC] [--signal SIG] [--victim-pid-file PATH]
//! ```
//!
//! The storm starts one victim, then N sender processes that call `kill(victim, SIG)` in a
//! loop until the deadline, flat out or, with `--rate`, paced to that many calls per second
//! each. The senders start together, count their successful calls themselves and report
//! them to the parent, which prints one line on stdout and reaps its children:
//!
//! ```text
//! storm senders=N duration=SECONDS calls=TOTAL rate=CALLS_PER_SEC victim=PID
//! ```
//!
//! `duration` is the time actually taken, from the start signal to the last sender's last
//! call, and `rate` is `calls / duration`. If any call fails the line is still printed,
//! the error goes to stderr and the exit status is 1.
//!
//! The victim ignores SIG (`SIG_IGN`) and sleeps in `pause()`. Each `kill()` then takes the path
//! a real signal takes up to the point of queueing (pid lookup, permission check, the
//! victim's siglock, the `signal:signal_generate` tracepoint with result "ignored") and is
//! dropped there: the victim never wakes and no queue fills, so the storm measures the
//! sending side, which is where tracers hook. All senders share the one victim and so
//! contend on its siglock, as senders storming one process do in real life; a victim per
//! sender would measure a slightly cheaper, uncontended `kill()`.
//!
//! Readiness protocol, for starting a tracer on the victim first: with
//! `--victim-pid-file PATH` the storm sets everything up (the victim ignores SIG, the
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
                    [--victim-pid-file PATH]
SIG is a number or a name such as USR1 (the default), SIGUSR2, RTMIN+1; not KILL or STOP,
which cannot be ignored. With --victim-pid-file the storm prints `ready victim=PID` and
waits for a line on stdin before it starts.";

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
}

/// What a sender reports to the parent: fixed-size, so that each report is one atomic
/// pipe write and reports from different senders cannot interleave.
#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    failed: u64,
    /// errno of the first failed call.
    errno: u64,
    /// `CLOCK_MONOTONIC` ns after the sender's last call.
    end_ns: u64,
}

impl Tally {
    const SIZE: usize = 32;

    fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut out = [0; Self::SIZE];
        for (chunk, value) in
            out.chunks_exact_mut(8)
                .zip([self.calls, self.failed, self.errno, self.end_ns])
        {
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
            errno: word(2),
            end_ns: word(3),
        }
    }
}

fn main() {
    let opts = parse_args();

    let victim = spawn_victim(opts.signal);
    let (barrier_rx, mut barrier_tx) = pipe();
    let (mut report_rx, report_tx) = pipe();
    let mut senders = Vec::with_capacity(opts.senders);
    for _ in 0..opts.senders {
        // SAFETY: this process is single-threaded, so the child may run any code after
        // fork(2); it never returns from sender(), which ends in _exit.
        match unsafe { libc::fork() } {
            -1 => {
                let e = errno();
                cleanup(victim, &senders);
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
            cleanup(victim, &senders);
            eprintln!("sigwho-storm: cannot write {}: {err}", path.display());
            exit(1);
        }
        say(&format!("ready victim={victim}"));
        let mut line = String::new();
        let started = std::io::stdin().lock().read_line(&mut line);
        if !matches!(started, Ok(n) if n > 0) {
            // Closing the barrier unread tells the senders to exit without sending.
            drop(barrier_tx);
            cleanup(victim, &senders);
            eprintln!("sigwho-storm: stdin closed before the start line; not starting");
            exit(1);
        }
    }

    let start_ns = now_ns();
    let deadline = start_ns + opts.duration_ns;
    let share = deadline.to_ne_bytes();
    let barrier: Vec<u8> = (0..opts.senders).flat_map(|_| share).collect();
    let opened = barrier_tx.write_all(&barrier);
    drop(barrier_tx);

    let mut reports = vec![0; Tally::SIZE * opts.senders];
    let received = opened.and_then(|()| report_rx.read_exact(&mut reports));
    cleanup(victim, &senders);
    if let Err(err) = received {
        eprintln!("sigwho-storm: a sender did not report ({err})");
        exit(1);
    }

    let tallies: Vec<Tally> = reports
        .chunks_exact(Tally::SIZE)
        .map(Tally::from_bytes)
        .collect();
    let calls: u64 = tallies.iter().map(|t| t.calls).sum();
    let end_ns = tallies.iter().map(|t| t.end_ns).max().unwrap_or(deadline);
    let elapsed = Duration::from_nanos(end_ns.saturating_sub(start_ns).max(1)).as_secs_f64();
    #[expect(
        clippy::cast_precision_loss,
        reason = "a storm's calls stay far below 2^53, under which f64 holds every integer"
    )]
    say(&format!(
        "storm senders={} duration={elapsed:.3} calls={calls} rate={:.0} victim={victim}",
        opts.senders,
        calls as f64 / elapsed
    ));

    let failed: u64 = tallies.iter().map(|t| t.failed).sum();
    if let Some(first) = tallies.iter().find(|t| t.failed > 0) {
        let e = c_int::try_from(first.errno).unwrap_or(0);
        eprintln!(
            "sigwho-storm: {failed} kill() call(s) failed, first with {} ({})",
            errno_name(e),
            std::io::Error::from_raw_os_error(e)
        );
        exit(1);
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("sigwho-storm: {msg}\n{USAGE}");
    exit(2);
}

fn parse_args() -> Options {
    let mut senders = None;
    let mut duration_ns = None;
    let mut rate = None;
    let mut signal = libc::SIGUSR1;
    let mut victim_pid_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            exit(0);
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
            other => usage(&format!("unknown option {other:?}")),
        }
    }
    Options {
        senders: senders.unwrap_or_else(|| usage("--senders is required")),
        duration_ns: duration_ns.unwrap_or_else(|| usage("--duration is required")),
        rate,
        signal,
        victim_pid_file,
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

fn spawn_victim(signal: c_int) -> libc::pid_t {
    let (mut ready_rx, mut ready_tx) = pipe();
    // SAFETY: single-threaded, as in main; the child ends in _exit or pauses for good.
    match unsafe { libc::fork() } {
        -1 => fail("fork", errno()),
        0 => {
            drop(ready_rx);
            become_child(c"storm-victim");
            // SAFETY: all zeroes is a valid sigaction (no handler, no flags), filled in
            // before use; sigemptyset and sigaction get pointers to it while it lives, and
            // sigaction takes a null pointer for the old action it need not return.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = libc::SIG_IGN;
                libc::sigemptyset(&raw mut sa.sa_mask);
                if libc::sigaction(signal, &raw const sa, std::ptr::null_mut()) != 0 {
                    fail("sigaction", errno());
                }
            }
            // Only now may the senders start: before SIG_IGN, the first signal would kill us.
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
                cleanup(pid, &[]);
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
    let mut share = [0; 8];
    // EOF: the parent closed the barrier without starting (or died). Nothing to send.
    if barrier.read_exact(&mut share).is_err() {
        // SAFETY: _exit(2) takes an integer and does not return.
        unsafe { libc::_exit(0) };
    }
    let deadline = u64::from_ne_bytes(share);
    let tally = match opts.rate {
        None => flat_out(victim, opts.signal, deadline),
        Some(rate) => paced(victim, opts.signal, deadline, rate),
    };
    let code = i32::from(report.write_all(&tally.to_bytes()).is_err());
    // SAFETY: _exit(2) takes an integer and does not return; a forked child must not run
    // the parent's exit handlers.
    unsafe { libc::_exit(code) };
}

/// Sends one signal; false (with the tally updated) when the call failed.
fn send(victim: libc::pid_t, signal: c_int, tally: &mut Tally) -> bool {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(victim, signal) } == 0 {
        tally.calls += 1;
        return true;
    }
    if tally.failed == 0 {
        tally.errno = u64::try_from(errno()).unwrap_or(0);
    }
    tally.failed += 1;
    false
}

fn flat_out(victim: libc::pid_t, signal: c_int, deadline: u64) -> Tally {
    let mut tally = Tally::default();
    'storm: loop {
        for _ in 0..CALLS_PER_CLOCK_CHECK {
            // A failure (the victim is gone, EPERM) would repeat on every call: stop.
            if !send(victim, signal, &mut tally) {
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
fn paced(victim: libc::pid_t, signal: c_int, deadline: u64, rate: u64) -> Tally {
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
        if !(0..batch).all(|_| send(victim, signal, &mut tally)) {
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

/// Kills the victim and reaps every child: they are all ours and not yet reaped, so their
/// pids cannot have been reused. Senders end by themselves (their deadline passed, or the
/// barrier closed unread).
fn cleanup(victim: libc::pid_t, senders: &[libc::pid_t]) {
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    for &pid in std::iter::once(&victim).chain(senders) {
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
