//! Harness for sigwho's integration tests: finds the binaries, runs `sigwho-testproc`
//! targets and senders, runs sigwho and collects its events.
//!
//! Every process the harness signals is one it started itself (and has not reaped yet, so
//! its pid cannot have been reused). Nothing here sleeps to synchronise where a readiness
//! signal exists: targets announce themselves with a `ready` line and answer `ping`,
//! sigwho announces itself with a `sigwho: tracing` line on stderr.
//!
//! The harness's timeouts (`TARGET_TIMEOUT`, `SIGWHO_START_TIMEOUT`), and those of the tests
//! that pass theirs through [`scaled`], are multiplied by `$SIGWHO_TEST_TIME_SCALE` on
//! machines slower than the one they were chosen for, such as the emulated kernels of
//! `cargo xtask vmtest`. (The few seconds of grace cleanup gives a process before
//! SIGKILL are not.)
//!
//! A helper that cannot do its job panics, failing the test that called it: that is how
//! every helper here reports, so their docs do not each repeat it under `# Panics`.
#![expect(
    clippy::missing_panics_doc,
    reason = "every helper fails its calling test by panicking; see the crate docs"
)]

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use serde_json::{self, Value};

/// How long a target gets to print its `ready` line, and a sender to finish (times
/// [`time_scale`]: the harness waits `scaled(TARGET_TIMEOUT)`).
pub const TARGET_TIMEOUT: Duration = Duration::from_secs(20);
/// How long sigwho gets to load its programs and print `sigwho: tracing` (times
/// [`time_scale`]).
pub const SIGWHO_START_TIMEOUT: Duration = Duration::from_mins(1);
/// The environment variable that slows every harness timeout down: see [`time_scale`].
pub const TIME_SCALE_VAR: &str = "SIGWHO_TEST_TIME_SCALE";
/// The prefix of the stderr line sigwho prints once it is tracing.
pub const SIGWHO_READY_PREFIX: &str = "sigwho: tracing";

const POLL: Duration = Duration::from_millis(10);

// ---------------------------------------------------------------------------------------
// Binaries and privileges

/// The sigwho binary: `$SIGWHO_BIN`, else `sigwho` in the cargo target directory that
/// holds the running test executable.
#[must_use]
pub fn sigwho_bin() -> PathBuf {
    find_bin("SIGWHO_BIN", "sigwho")
}

/// The `sigwho-testproc` binary: `$SIGWHO_TESTPROC`, else next to the other binaries in
/// the cargo target directory.
#[must_use]
pub fn testproc_bin() -> PathBuf {
    find_bin("SIGWHO_TESTPROC", "sigwho-testproc")
}

fn find_bin(env_var: &str, name: &str) -> PathBuf {
    let path = match std::env::var_os(env_var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().expect("current_exe");
            let mut dir = exe.parent().expect("test executable has a directory");
            // Test executables live in target/<profile>/deps/, binaries in target/<profile>/.
            if dir.file_name() == Some(OsStr::new("deps")) {
                dir = dir.parent().unwrap_or(dir);
            }
            dir.join(name)
        }
    };
    assert!(
        path.is_file(),
        "{name} not found at {} (set {env_var} to override); \
         build it first: cargo xtask test builds every binary",
        path.display()
    );
    path
}

/// Panics unless running as root (the tests load eBPF programs).
pub fn require_root() {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "these tests load eBPF programs and must run as root (cargo xtask test)"
    );
}

// ---------------------------------------------------------------------------------------
// Time scale

/// How many times slower than a native run this machine is: `$SIGWHO_TEST_TIME_SCALE`, a
/// positive integer or decimal number (`10`, `2.5`), 1 when unset or empty. `cargo xtask
/// vmtest` sets it under qemu's software emulation, where loading the eBPF programs and
/// every process start take many times longer. Panics on anything else, so that a typo
/// does not silently leave the timeouts native.
pub fn time_scale() -> f64 {
    static SCALE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *SCALE.get_or_init(|| match std::env::var(TIME_SCALE_VAR) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => scale,
            _ => panic!("{TIME_SCALE_VAR} must be a positive number, got {v:?}"),
        },
        _ => 1.0,
    })
}

/// `d` times [`time_scale`]: the harness's own timeouts go through this, and so should
/// a test's wait for a process or an event (at scale 1 it is `d` itself).
#[expect(
    clippy::float_cmp,
    reason = "exactly 1 means unscaled: mul_f64 would round d through f64 seconds"
)]
#[must_use]
pub fn scaled(d: Duration) -> Duration {
    let scale = time_scale();
    if scale == 1.0 { d } else { d.mul_f64(scale) }
}

// ---------------------------------------------------------------------------------------
// Small helpers

/// Polls `cond` every few milliseconds until it returns true (→ true) or `timeout`
/// passes (→ false). Only for external state that has no readiness signal.
#[must_use = "wait_until returns false on timeout; assert on it"]
pub fn wait_until(mut cond: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

static NULL: Value = Value::Null;

/// A field of an event by dotted path: `"sender.pid"`, `"sender.ancestry.0.pid"`.
/// Numeric segments index arrays. Missing fields give `&Value::Null`.
#[must_use]
pub fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let next = match cur {
            Value::Object(map) => map.get(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return &NULL,
        }
    }
    cur
}

/// `field(v, path)` as an integer, if it is one.
#[must_use]
pub fn field_i64(v: &Value, path: &str) -> Option<i64> {
    field(v, path).as_i64()
}

/// `field(v, path)` as a string, if it is one.
#[must_use]
pub fn field_str<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    field(v, path).as_str()
}

/// Pretty-prints events one per line, for panic messages.
#[must_use]
pub fn format_events(events: &[Value]) -> String {
    if events.is_empty() {
        return "  (none)\n".to_string();
    }
    indented(events)
}

fn format_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  (none)\n".to_string();
    }
    indented(lines)
}

/// Each item on a line of its own, indented.
fn indented(items: &[impl std::fmt::Display]) -> String {
    items.iter().fold(String::new(), |mut text, item| {
        let _ = writeln!(text, "  {item}");
        text
    })
}

/// Spawns a thread that reads `r` line by line (lossy UTF-8, without the newline) and
/// calls `f` for each line; the thread ends at EOF or read error.
fn spawn_line_reader<R: Read + Send + 'static>(
    name: &str,
    r: R,
    mut f: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        f(String::from_utf8_lossy(&buf).into_owned());
                    }
                }
            }
        })
        .expect("spawn reader thread")
}

/// Waits for `handle` to finish for at most `timeout` (a grandchild may hold a pipe open).
fn join_within(handle: &mut Option<JoinHandle<()>>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while let Some(h) = handle.as_ref() {
        if h.is_finished() {
            let _ = handle.take().unwrap().join();
            return;
        }
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `child` until it exits or `timeout` passes.
/// The lines of /proc/PID/status that say whether a process is stopped, and which
/// signals are pending, blocked, ignored or caught.
fn proc_signal_state(pid: i32) -> String {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return "no /proc entry".to_string();
    };
    status
        .lines()
        .filter(|line| {
            [
                "State:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:",
            ]
            .iter()
            .any(|key| line.starts_with(key))
        })
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A child's pid as the kernel's type: pids stay below 2^22 (`PID_MAX_LIMIT`), so it fits.
#[must_use]
pub fn child_pid(child: &Child) -> libc::pid_t {
    libc::pid_t::try_from(child.id()).expect("a pid fits in pid_t")
}

/// Sends `sig` to `child` if it has not exited yet (so its pid is still ours).
fn signal_child(child: &mut Child, sig: i32) -> bool {
    if matches!(child.try_wait(), Ok(None)) {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe { libc::kill(child_pid(child), sig) == 0 }
    } else {
        false
    }
}

// ---------------------------------------------------------------------------------------
// One-shot runs

/// The result of a finished one-shot process.
#[derive(Debug)]
pub struct Run {
    /// Its pid (it has been reaped; useful to match `sender.pid` in events).
    pub pid: i32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the process exited 0; returns self.
    #[track_caller]
    #[expect(
        clippy::must_use_candidate,
        clippy::return_self_not_must_use,
        reason = "called for its assertion; self comes back only for chaining"
    )]
    pub fn assert_success(self) -> Self {
        assert!(self.status.success(), "expected success: {self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.pid, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion with stdin null and stdout/stderr captured. Panics (after
/// killing it with SIGKILL) if it runs longer than `timeout`.
#[must_use]
pub fn run(mut cmd: Command, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child_pid(&child);
    let out = Arc::new(Mutex::new(String::new()));
    let err = Arc::new(Mutex::new(String::new()));
    let collect = |buf: &Arc<Mutex<String>>| {
        let buf = Arc::clone(buf);
        move |line: String| {
            let mut b = buf.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    };
    let mut t_out = Some(spawn_line_reader(
        "run-stdout",
        child.stdout.take().unwrap(),
        collect(&out),
    ));
    let mut t_err = Some(spawn_line_reader(
        "run-stderr",
        child.stderr.take().unwrap(),
        collect(&err),
    ));
    let status = wait_child(&mut child, timeout);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        join_within(&mut t_out, Duration::from_secs(2));
        join_within(&mut t_err, Duration::from_secs(2));
        panic!(
            "{cmd:?} did not finish within {timeout:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            out.lock().unwrap(),
            err.lock().unwrap()
        );
    };
    join_within(&mut t_out, Duration::from_secs(5));
    join_within(&mut t_err, Duration::from_secs(5));
    let stdout = out.lock().unwrap().clone();
    let stderr = err.lock().unwrap().clone();
    Run {
        pid,
        status,
        stdout,
        stderr,
    }
}

/// Runs sigwho once with `args` (for bad-input tests): (status, stdout, stderr).
#[must_use]
pub fn run_sigwho(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let cmd = Sigwho::command(args);
    let r = run(cmd, timeout);
    (r.status, r.stdout, r.stderr)
}

/// Runs a `sigwho-testproc` sender subcommand (`kill PID SIG`, `tgkill TGID TID SIG`,
/// `sigqueue PID SIG VALUE`, ...) to completion. Does not check the exit status: use
/// `.assert_success()`.
#[must_use]
pub fn testproc(args: &[&str]) -> Run {
    let mut cmd = Command::new(testproc_bin());
    cmd.args(args);
    run(cmd, scaled(TARGET_TIMEOUT))
}

// ---------------------------------------------------------------------------------------
// Targets

/// A running `sigwho-testproc target`. Dropping it SIGKILLs and reaps it if still running.
pub struct Target {
    pub child: Child,
    pub pid: i32,
    pub pgid: i32,
    /// Kernel thread ids, main thread first (`tids[0] == pid`).
    pub tids: Vec<i32>,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
}

impl Target {
    /// The command `sigwho-testproc target ARGS`, to adjust (uid, env, ...) before
    /// `spawn_with`.
    #[must_use]
    pub fn command(args: &[&str]) -> Command {
        let mut cmd = Command::new(testproc_bin());
        cmd.arg("target").args(args);
        cmd
    }

    /// Runs `sigwho-testproc target ARGS` and waits (up to 20 s, scaled) for its ready line.
    #[must_use]
    pub fn spawn(args: &[&str]) -> Target {
        Self::spawn_with(Self::command(args))
    }

    /// Like `spawn`, with a prepared command (see `Target::command`). stdin and stdout
    /// are replaced by pipes; stderr is inherited.
    #[must_use]
    pub fn spawn_with(mut cmd: Command) -> Target {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let pid = child_pid(&child);
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        spawn_line_reader("target-stdout", child.stdout.take().unwrap(), move |l| {
            let _ = tx.send(l);
        });
        let mut t = Target {
            child,
            pid,
            pgid: 0,
            tids: Vec::new(),
            stdin,
            stdout: rx,
        };
        // From here on a panic drops `t`, which kills the child.
        let timeout = scaled(TARGET_TIMEOUT);
        let line = match t.stdout.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{cmd:?} (pid {pid}) printed no ready line within {timeout:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = wait_child(&mut t.child, Duration::from_secs(5));
                panic!("{cmd:?} (pid {pid}) exited before its ready line: {status:?}")
            }
        };
        t.parse_ready(&line)
            .unwrap_or_else(|| panic!("bad ready line from {cmd:?}: {line:?}"));
        assert_eq!(t.pid, pid, "ready line pid vs spawned pid: {line:?}");
        t
    }

    fn parse_ready(&mut self, line: &str) -> Option<()> {
        let mut words = line.split_whitespace();
        (words.next()? == "ready").then_some(())?;
        for w in words {
            let (k, v) = w.split_once('=')?;
            match k {
                "pid" => self.pid = v.parse().ok()?,
                "pgid" => self.pgid = v.parse().ok()?,
                "tids" => {
                    self.tids = v
                        .split(',')
                        .map(|t| t.parse().ok())
                        .collect::<Option<_>>()?;
                }
                _ => {}
            }
        }
        (!self.tids.is_empty() && self.pgid != 0).then_some(())
    }

    /// Writes one command line (`segv`, `pipe`, `exit N`, `raise SIG`, `abort`, `ping`)
    /// to the target's stdin and flushes it.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        let pid = self.pid;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("target {pid}: stdin already closed"));
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            let status = self.child.try_wait().ok().flatten();
            panic!("target {pid}: cannot send {line:?}: {e} (exit status: {status:?})");
        }
    }

    /// Sends `ping` and waits (up to 20 s, scaled) for `pong`: the target is alive and has
    /// executed every command sent before.
    #[track_caller]
    pub fn ping(&mut self) {
        self.send("ping");
        let timeout = scaled(TARGET_TIMEOUT);
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(l) if l == "pong" => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("target {}: no pong within {timeout:?}", self.pid)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_child(&mut self.child, Duration::from_secs(5));
                    panic!(
                        "target {}: exited instead of answering ping: {status:?}",
                        self.pid
                    )
                }
            }
        }
    }

    /// The next line the target printed on stdout, waiting up to `timeout`; None on
    /// timeout or once its stdout is closed.
    pub fn read_line(&mut self, timeout: Duration) -> Option<String> {
        self.stdout.recv_timeout(timeout).ok()
    }

    /// Closes the target's stdin: it exits 0 once it reads EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Its exit status if it has exited (and been reaped by this call), else None.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for the target to exit. On timeout SIGKILLs and reaps it, then panics.
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let Some(status) = wait_child(&mut self.child, timeout) else {
            // What the kernel thinks of it (stopped? signal pending? blocked?) says
            // which side of the test went wrong.
            let state = proc_signal_state(self.pid);
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "target {} still running after {timeout:?} ({state})",
                self.pid
            )
        };
        status
    }

    /// Sends `sig` to the target with kill(2) from the test process itself, if it is
    /// still running (false otherwise). Prefer `testproc(&["kill", ...])` when the sender
    /// matters.
    pub fn signal(&mut self, sig: i32) -> bool {
        signal_child(&mut self.child, sig)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// sigwho

#[derive(Default)]
struct Events {
    /// Received from sigwho's stdout but not yet returned by `next_event`/`wait_for`.
    pending: VecDeque<Value>,
    /// Everything received so far, in order.
    all: Vec<Value>,
    /// sigwho's stdout has been closed.
    closed: bool,
}

/// A running sigwho. Dropping it sends SIGTERM, then SIGKILL after 5 s, and reaps it.
pub struct Sigwho {
    child: Child,
    pid: i32,
    rx: Mutex<Receiver<Value>>,
    events: Mutex<Events>,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout_thread: Option<JoinHandle<()>>,
    stderr_thread: Option<JoinHandle<()>>,
}

impl Sigwho {
    /// The command `sigwho ARGS`, to adjust before `start_with`.
    /// `sigwho ARGS`, with the default journal pointed at a path that does not exist:
    /// a machine that runs the recorder must not change what the tests see (a pid that
    /// is gone would be answered from its journal). Tests of that set their own.
    #[must_use]
    pub fn command(args: &[&str]) -> Command {
        let mut cmd = Command::new(sigwho_bin());
        cmd.args(args)
            .env("SIGWHO_JOURNAL", "/nonexistent/sigwho-tests/journal");
        cmd
    }

    /// Starts sigwho with `args` and waits (up to 60 s, scaled) until it prints
    /// `sigwho: tracing...` on stderr. Panics with its stderr if it doesn't, or exits.
    #[must_use]
    pub fn start(args: &[&str]) -> Sigwho {
        Self::start_with(Self::command(args))
    }

    /// Like `start`, with a prepared command. stdin is null, stdout/stderr are piped.
    #[must_use]
    pub fn start_with(cmd: Command) -> Sigwho {
        Sigwho::start_waiting_for(cmd, SIGWHO_READY_PREFIX)
    }

    /// sigwho's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// stderr lines so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Events received but skipped by `wait_for` and not returned by anything since.
    pub fn seen(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .pending
            .iter()
            .cloned()
            .collect()
    }

    /// Every event received so far (returned or not), in order.
    pub fn all_events(&self) -> Vec<Value> {
        self.events.lock().unwrap().all.clone()
    }

    /// Receives one event from the channel into `ev.all`; None on timeout / closed.
    fn recv(&self, ev: &mut Events, timeout: Duration) -> Option<Value> {
        if ev.closed {
            return None;
        }
        match self.rx.lock().unwrap().recv_timeout(timeout) {
            Ok(v) => {
                ev.all.push(v.clone());
                Some(v)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                ev.closed = true;
                None
            }
        }
    }

    /// The next stdout line (JSON, or a `Value::String` for non-JSON lines): first any
    /// skipped by `wait_for`, then new ones, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<Value> {
        let mut ev = self.events.lock().unwrap();
        if let Some(v) = ev.pending.pop_front() {
            return Some(v);
        }
        self.recv(&mut ev, timeout)
    }

    /// The first event matching `pred`, looking first at events skipped earlier, then at
    /// new ones for up to `timeout`. Non-matching events are kept (see `seen`). Panics
    /// with every event and stderr line on timeout, or if sigwho's stdout closes.
    #[track_caller]
    pub fn wait_for(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut ev = self.events.lock().unwrap();
        if let Some(i) = ev.pending.iter().position(&pred) {
            return ev.pending.remove(i).unwrap();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(&mut ev, left) {
                Some(v) if pred(&v) => return v,
                Some(v) => ev.pending.push_back(v),
                None => {
                    let why = if ev.closed {
                        "sigwho's stdout closed".to_string()
                    } else {
                        format!("timed out after {timeout:?}")
                    };
                    drop(ev);
                    panic!("no matching sigwho event: {why}\n{}", self.report());
                }
            }
        }
    }

    /// Sends `sig` to sigwho if it is still running (false otherwise).
    pub fn signal(&mut self, sig: i32) -> bool {
        signal_child(&mut self.child, sig)
    }

    /// Its exit status if it has exited (and been reaped by this call), else None.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits for sigwho to exit (send it a signal first, or use a count/duration option),
    /// then returns its status and every event not yet returned (skipped ones first).
    /// On timeout panics with its output (and Drop stops it).
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Vec<Value>) {
        let Some(status) = wait_child(&mut self.child, timeout) else {
            panic!(
                "sigwho (pid {}) still running after {timeout:?}\n{}",
                self.pid,
                self.report()
            );
        };
        join_within(&mut self.stdout_thread, Duration::from_secs(5));
        join_within(&mut self.stderr_thread, Duration::from_secs(5));
        let mut ev = self.events.lock().unwrap();
        let mut rest: Vec<Value> = ev.pending.drain(..).collect();
        while let Some(v) = self.recv(&mut ev, Duration::ZERO) {
            rest.push(v);
        }
        (status, rest)
    }

    /// All events and stderr lines so far, for panic messages.
    pub fn report(&self) -> String {
        let all = self
            .events
            .try_lock()
            .map(|e| e.all.clone())
            .unwrap_or_default();
        format!(
            "--- sigwho events ({}) ---\n{}--- sigwho stderr ---\n{}",
            all.len(),
            format_events(&all),
            format_lines(&self.stderr.lock().unwrap())
        )
    }
}

impl Drop for Sigwho {
    fn drop(&mut self) {
        if signal_child(&mut self.child, libc::SIGTERM)
            && wait_child(&mut self.child, Duration::from_secs(5)).is_none()
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Processes that are not (or no longer) our children

/// A process identified by pid and start time (field 22 of /proc/PID/stat, in clock
/// ticks since boot), so that a reused pid is never mistaken for it. For processes the
/// tests started but cannot reap: reparented grandchildren, fixture process trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

/// (state, ppid, start time) from /proc/PID/stat.
fn proc_stat(pid: i32) -> Option<(char, i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let state = fields.first()?.chars().next()?;
    let parent_pid = fields.get(1)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, parent_pid, start_time))
}

impl ProcId {
    /// The process now running as `pid`, if any.
    #[must_use]
    pub fn of(pid: i32) -> Option<ProcId> {
        proc_stat(pid).map(|(_, _, start_time)| ProcId { pid, start_time })
    }

    /// Its state letter (`S`, `R`, `Z`, ...) if this very process still exists.
    fn state(&self) -> Option<char> {
        proc_stat(self.pid)
            .filter(|&(_, _, start)| start == self.start_time)
            .map(|(state, _, _)| state)
    }

    /// True while this process exists and has not exited (zombies count as exited).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.state().is_some_and(|s| s != 'Z' && s != 'X')
    }

    /// Its current parent pid, if this very process still exists.
    #[must_use]
    pub fn ppid(&self) -> Option<i32> {
        proc_stat(self.pid)
            .filter(|&(_, _, start)| start == self.start_time)
            .map(|(_, ppid, _)| ppid)
    }

    /// Sends `sig` if this very process (same start time) still exists; false otherwise.
    #[must_use]
    pub fn signal(&self, sig: i32) -> bool {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        self.state().is_some() && unsafe { libc::kill(self.pid, sig) } == 0
    }

    /// Polls until the process has exited (is gone or a zombie) or `timeout` passes; true
    /// if it has. Only for processes we cannot wait(2) for.
    #[must_use = "false on timeout"]
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        wait_until(|| !self.is_running(), timeout)
    }
}

/// Every live descendant of `pid` (children first, then theirs, ...), from the ppid
/// fields of /proc/*/stat at the time of the call.
#[must_use]
pub fn descendants(pid: i32) -> Vec<ProcId> {
    let mut procs: Vec<(i32, i32, u64)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((_, ppid, start)) = proc_stat(p) {
                procs.push((p, ppid, start));
            }
        }
    }
    let mut found: Vec<ProcId> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for &(p, ppid, start_time) in &procs {
            if ppid == parent && !found.iter().any(|f| f.pid == p) {
                found.push(ProcId { pid: p, start_time });
                frontier.push(p);
            }
        }
    }
    found
}

/// `sigwho-testproc parent -- TARGET_ARGS...`: a parent process (our child) with a target
/// child (our grandchild, on its own once the parent exits). Dropping it ends both: the
/// parent by closing its stdin (it then SIGKILLs its child) and reaping it, the child by
/// SIGKILL if it still runs (checked by start time, so never a reused pid).
pub struct Parent {
    process: Child,
    /// The parent process's pid.
    pub parent_pid: i32,
    /// The target child, by pid and start time.
    pub child: ProcId,
    /// The child's pid (`child.pid`), pgid and thread ids as in its ready line.
    pub pid: i32,
    pub pgid: i32,
    pub tids: Vec<i32>,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
}

impl Parent {
    /// Runs `sigwho-testproc parent -- TARGET_ARGS...` and waits (up to 20 s each, scaled) for
    /// the parent's `parent pid=` line and the child's `ready` line. The child's stdin is
    /// /dev/null: pass `--no-stdin` among `target_args`.
    #[must_use]
    pub fn spawn(target_args: &[&str]) -> Parent {
        let mut cmd = Command::new(testproc_bin());
        cmd.arg("parent").arg("--").args(target_args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let parent_pid = child_pid(&child);
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        spawn_line_reader("parent-stdout", child.stdout.take().unwrap(), move |l| {
            let _ = tx.send(l);
        });
        let mut p = Parent {
            process: child,
            parent_pid,
            child: ProcId {
                pid: 0,
                start_time: 0,
            },
            pid: 0,
            pgid: 0,
            tids: Vec::new(),
            stdin,
            stdout: rx,
        };
        // From here on a panic drops `p`, which ends the parent (and so its child).
        let first = p.line(&cmd);
        assert_eq!(
            first,
            format!("parent pid={parent_pid}"),
            "first line of {cmd:?}"
        );
        let ready = p.line(&cmd);
        let mut words = ready.split_whitespace();
        assert_eq!(
            words.next(),
            Some("ready"),
            "ready line of {cmd:?}: {ready:?}"
        );
        for w in words {
            match w.split_once('=') {
                Some(("pid", v)) => p.pid = v.parse().unwrap_or_default(),
                Some(("pgid", v)) => p.pgid = v.parse().unwrap_or_default(),
                Some(("tids", v)) => p.tids = v.split(',').filter_map(|t| t.parse().ok()).collect(),
                _ => {}
            }
        }
        assert!(p.pid > 0 && !p.tids.is_empty(), "bad ready line {ready:?}");
        // Still the parent's child at this point (the parent only leaves on `exit`), so
        // the pid is the one it forked.
        p.child =
            ProcId::of(p.pid).unwrap_or_else(|| panic!("child {} of {cmd:?} not in /proc", p.pid));
        assert_eq!(
            p.child.ppid(),
            Some(parent_pid),
            "child {} is not the parent's",
            p.pid
        );
        p
    }

    fn line(&mut self, cmd: &Command) -> String {
        let timeout = scaled(TARGET_TIMEOUT);
        match self.stdout.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{cmd:?} (pid {}) printed too few lines within {timeout:?}",
                self.parent_pid
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = wait_child(&mut self.process, Duration::from_secs(5));
                panic!("{cmd:?} closed stdout early: {status:?}")
            }
        }
    }

    /// Tells the parent to exit without waiting for its child, and reaps it (up to 20 s, scaled).
    /// The child is then reparented to the nearest subreaper or init.
    #[track_caller]
    pub fn exit_parent(&mut self) -> ExitStatus {
        let pid = self.parent_pid;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("parent {pid}: stdin already closed"));
        writeln!(stdin, "exit")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("parent {pid}: cannot send exit: {e}"));
        self.stdin = None;
        let timeout = scaled(TARGET_TIMEOUT);
        match wait_child(&mut self.process, timeout) {
            Some(status) => status,
            None => panic!("parent {pid} still running {timeout:?} after exit"),
        }
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        // EOF makes a still-running parent SIGKILL and reap its child.
        self.stdin = None;
        if wait_child(&mut self.process, Duration::from_secs(5)).is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
        if self.child.pid > 0 && self.child.is_running() {
            // Gone already is as good.
            let _ = self.child.signal(libc::SIGKILL);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading sigwho's JSON events

/// Matches `"event":"signal"` objects for the signal named `sig` ("SIGTERM").
pub fn is_signal(sig: &str) -> impl Fn(&Value) -> bool + '_ {
    move |ev| field_str(ev, "event") == Some("signal") && field_str(ev, "signal") == Some(sig)
}

/// Matches `"event":"exit"` objects.
#[must_use]
pub fn is_exit(ev: &Value) -> bool {
    field_str(ev, "event") == Some("exit")
}

/// An array of strings at `path` (an argv); panics with the event if it is not one.
#[must_use]
pub fn strings(ev: &Value, path: &str) -> Vec<String> {
    field(ev, path)
        .as_array()
        .unwrap_or_else(|| panic!("{path} is not an array in {ev}"))
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The ids of an event's hints (empty when it has none).
#[must_use]
pub fn hint_ids(ev: &Value) -> Vec<String> {
    field(ev, "hints")
        .as_array()
        .map(|hints| {
            hints
                .iter()
                .filter_map(|h| h["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// sigwho modes that announce themselves with another line (`sigwho record`)

impl Sigwho {
    /// Like `start_with`, but waits (up to 60 s, scaled) for a stderr line starting with `prefix`
    /// instead of `sigwho: tracing`: `sigwho record` says `sigwho: recording ...`.
    #[must_use]
    pub fn start_waiting_for(mut cmd: Command, prefix: &str) -> Sigwho {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let pid = child_pid(&child);

        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let stderr_thread = {
            let stderr = Arc::clone(&stderr);
            let prefix = prefix.to_owned();
            let mut ready_tx: Option<Sender<()>> = Some(ready_tx);
            spawn_line_reader("sigwho-stderr", child.stderr.take().unwrap(), move |l| {
                let ready = l.starts_with(&prefix);
                stderr.lock().unwrap().push(l);
                if ready && let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            })
        };
        let (ev_tx, ev_rx) = mpsc::channel();
        let stdout_thread =
            spawn_line_reader("sigwho-stdout", child.stdout.take().unwrap(), move |l| {
                let v = serde_json::from_str::<Value>(&l).unwrap_or(Value::String(l));
                let _ = ev_tx.send(v);
            });

        let mut s = Sigwho {
            child,
            pid,
            rx: Mutex::new(ev_rx),
            events: Mutex::new(Events::default()),
            stderr,
            stdout_thread: Some(stdout_thread),
            stderr_thread: Some(stderr_thread),
        };
        // From here on a panic drops `s`, which stops sigwho.
        let start_timeout = scaled(SIGWHO_START_TIMEOUT);
        let deadline = Instant::now() + start_timeout;
        loop {
            match ready_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => return s,
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_child(&mut s.child, Duration::from_secs(5));
                    panic!(
                        "sigwho exited before printing {prefix:?} ({status:?}): {cmd:?}\n{}",
                        s.report()
                    );
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if let Some(status) = s.child.try_wait().expect("try_wait") {
                join_within(&mut s.stderr_thread, Duration::from_secs(2));
                panic!(
                    "sigwho exited before printing {prefix:?} ({status}): {cmd:?}\n{}",
                    s.report()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sigwho did not print {prefix:?} within {start_timeout:?}: {cmd:?}\n{}",
                s.report()
            );
        }
    }
}

/// A fresh directory under the temp dir (`sigwho-PREFIX-PID-N`), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sigwho-{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    #[must_use]
    pub fn dir(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Debian package `cargo xtask test` builds for the tests that install it
/// (`$SIGWHO_DEB`).
pub fn built_deb() -> PathBuf {
    let deb = std::env::var_os("SIGWHO_DEB")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .expect("SIGWHO_DEB is not set: run through cargo xtask test, which builds the package");
    assert!(deb.is_file(), "no package at {}", deb.display());
    deb
}

/// The `sigwho-storm` binary (tests/storm.rs); `$SIGWHO_STORM` overrides.
#[must_use]
pub fn storm_bin() -> PathBuf {
    find_bin("SIGWHO_STORM", "sigwho-storm")
}

/// `sigwho-storm` (tests/storm.rs) set up and held at its barrier until [`Storm::run`],
/// so that a tracer can be started on its victim first.
pub struct Storm {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The victim's pid (the group's leader with `--call group`).
    pub victim: i32,
    _dir: TempDir,
}

/// What a storm counted itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormCounts {
    /// Calls that succeeded.
    pub calls: u64,
    /// Signals those generated (twice `calls` for `--call group`).
    pub signals: u64,
    /// Calls refused with the errno `--fail` asked for.
    pub failed: u64,
    pub victims: Vec<i32>,
    pub senders: Vec<i32>,
    pub line: String,
}

impl Storm {
    /// Starts `sigwho-storm ARGS --victim-pid-file ...` and waits for its `ready` line.
    #[must_use]
    pub fn ready(args: &[&str]) -> Storm {
        use std::io::BufRead as _;
        let dir = TempDir::new("stormpid");
        let pid_file = dir.path("victim.pid");
        let mut child = Command::new(storm_bin())
            .args(args)
            .arg("--victim-pid-file")
            .arg(&pid_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sigwho-storm");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read sigwho-storm");
        let victim = line
            .trim()
            .strip_prefix("ready victim=")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("sigwho-storm said {line:?}, not `ready victim=PID`"));
        Storm {
            child,
            stdout,
            victim,
            _dir: dir,
        }
    }

    /// Starts the storm and waits for its result (it ends at its deadline and reaps
    /// its victims); panics unless it succeeded.
    #[must_use]
    pub fn run(mut self) -> StormCounts {
        use std::io::{BufRead as _, Write as _};
        let mut stdin = self.child.stdin.take().expect("stdin");
        stdin.write_all(b"start\n").expect("start the storm");
        drop(stdin);
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read sigwho-storm");
        let status = self.child.wait().expect("wait for sigwho-storm");
        assert!(status.success(), "sigwho-storm failed ({status}): {line}");
        let field = |name: &str| -> &str {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        };
        let number = |name: &str| -> u64 { field(name).parse().expect("a count") };
        let pids = |name: &str| -> Vec<i32> {
            field(name)
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("a pid"))
                .collect()
        };
        StormCounts {
            calls: number("calls"),
            signals: number("signals"),
            failed: number("failed"),
            victims: pids("victims"),
            senders: pids("sender_pids"),
            line: line.trim().to_owned(),
        }
    }
}

/// How many signals (or failed attempts) `events` that `pred` accepts stand for: an
/// object with `repeats` stands for `repeats.count`, any other for one.
pub fn count_repeated(events: &[Value], pred: impl Fn(&Value) -> bool) -> u64 {
    events
        .iter()
        .filter(|e| pred(e))
        .map(|e| {
            e.pointer("/repeats/count")
                .and_then(Value::as_u64)
                .unwrap_or(1)
        })
        .sum()
}
