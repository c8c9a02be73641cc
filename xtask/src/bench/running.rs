//! Processes the bench runs beside a storm: a tracer started and waited for until it is
//! attached, then stopped, its stderr read as it comes; and the helpers every
//! measurement uses to run and stop children.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::Env;
use super::auditd;
use super::configs::{Names, Program, Ready, Sink, Tracer};
use super::count::names_both;
use super::sys::{self, SIGINT, SIGWINCH};
use crate::cargo::show;

/// Long enough for bpftrace to compile its program and for perf to write a large
/// perf.data on exit; only reached when something is wrong.
pub(super) const READY_TIMEOUT: Duration = Duration::from_mins(1);
pub(super) const STOP_TIMEOUT: Duration = Duration::from_mins(2);

/// A tracer started by the bench and not yet reaped.
pub(super) struct Running {
    pub(super) child: Child,
    stderr: LineReader,
    /// perf's control fifo, kept open while perf runs.
    control: Option<File>,
    stopped: bool,
    stop_signal: i32,
    /// auditd's rule and the kernel state to restore.
    audit: Option<auditd::Session>,
}

impl Running {
    /// Starts `tracer` and waits until it is attached. `audit` is auditd's session for
    /// its row (begun before the storm forked), None for every other tracer.
    pub(super) fn start(
        env: &Env,
        tracer: &Tracer,
        names: &Names,
        out: &Path,
        control: &Path,
        audit: Option<auditd::Session>,
    ) -> Result<Self> {
        let program = match tracer.program {
            Program::Sigwho => env.bins.sigwho.clone(),
            Program::Tool(tool) => env
                .tools
                .get(tool)
                .map_err(|reason| anyhow!("{}: {reason}", tool.program()))?
                .0
                .clone(),
        };
        let mut control_fifo = None;
        if let Ready::PerfControl = tracer.ready {
            control_fifo = Some(make_fifo(control)?);
        }
        // auditd's session is the caller's, begun before the storm forked
        // (auditd::Session::before_start).
        if let Ready::AuditRule = tracer.ready {
            if audit.is_none() {
                bail!("auditd's session must begin before the storm forks");
            }
            auditd::write_config(Path::new(&names.audit_dir), out)?;
        }
        let stdout = match tracer.stdout {
            Sink::Null => Stdio::null(),
            Sink::File => File::create(out)
                .with_context(|| format!("could not create {}", out.display()))?
                .into(),
        };
        let mut cmd = Command::new(&program);
        cmd.args((tracer.args)(names))
            .envs(tracer.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        let stderr = LineReader::start(child.stderr.take().context("tracer stderr")?);
        let mut running = Self {
            child,
            stderr,
            control: control_fifo,
            stopped: false,
            stop_signal: match tracer.program {
                Program::Tool(tool) => tool.stop_signal(),
                Program::Sigwho => SIGINT,
            },
            audit,
        };
        let what = show(&cmd);
        match tracer.ready {
            Ready::Stderr(prefix) => running.wait_for_stderr(prefix, &what)?,
            Ready::PerfControl => {
                running.wait_for_stderr("Events disabled", &what)?;
                let fifo = running.control.as_mut().context("perf control fifo")?;
                fifo.write_all(b"enable\n")?;
                running.wait_for_stderr("Events enabled", &what)?;
            }
            Ready::ProbeSignal => running.wait_for_probe(env, out, &what)?,
            Ready::AuditRule => {
                let pid = running.child.id();
                if let Some(audit) = &mut running.audit
                    && let Err(err) = audit.attach(pid, READY_TIMEOUT)
                {
                    return Err(running.not_ready(&what, &format!("{err:#}")));
                }
                running.wait_for_probe(env, out, &what)?;
            }
        }
        Ok(running)
    }

    fn wait_for_stderr(&mut self, prefix: &str, what: &str) -> Result<()> {
        self.stderr
            .wait_for(prefix, READY_TIMEOUT)
            .map(|_| ())
            .map_err(|why| self.not_ready(what, &why))
    }

    fn wait_for_probe(&mut self, env: &Env, out: &Path, what: &str) -> Result<()> {
        let idle = env.idle.to_string();
        let signo = SIGWINCH.to_string();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.child.try_wait()?.is_some() {
                return Err(self.not_ready(what, "it exited"));
            }
            if Instant::now() > deadline {
                return Err(self.not_ready(what, "no line for the probe signal"));
            }
            if self.audit.is_some() {
                auditd::probe(env.idle, SIGWINCH)?;
            } else {
                sys::signal_pid(env.idle, SIGWINCH)?;
            }
            // Polled: the line lands in a file, and std has no inotify. Each round sends
            // one more probe, so a probe sent before the attach completed does not matter.
            thread::sleep(Duration::from_millis(20));
            let text = fs::read_to_string(out).unwrap_or_default();
            let probed = |line: &str| match self.audit {
                Some(_) => auditd::names_target(line, env.idle),
                None => names_both(line, &idle, &signo),
            };
            if text.lines().any(probed) {
                return Ok(());
            }
        }
    }

    fn not_ready(&mut self, what: &str, why: &str) -> anyhow::Error {
        let status = self.finish().ok();
        // Complete: the tracer has exited and its stderr reached EOF.
        let stderr = self.stderr.finish().join("\n");
        anyhow!(
            "{what} did not get ready ({why}; {}):\n{stderr}",
            status.map_or("still running".to_owned(), |s| s.to_string())
        )
    }

    /// Interrupts it (as ^C would) and waits; what it printed on stderr. For auditd, the
    /// rule goes first, and a `Lost N events` line carries the kernel's losses.
    pub(super) fn stop(mut self) -> Result<Vec<String>> {
        let audit_lost = match &mut self.audit {
            Some(audit) => Some(audit.detach()?),
            None => None,
        };
        let status = self.finish()?;
        let mut lines = self.stderr.finish();
        // Tools either exit 0 on SIGINT or re-raise it.
        if !status.success() && status.signal() != Some(self.stop_signal) {
            bail!("tracer failed ({status}):\n{}", lines.join("\n"));
        }
        if let Some(lost) = audit_lost {
            lines.push(format!("Lost {lost} events (the kernel's audit backlog)"));
        }
        // The kernel's audit state as it was (after the daemon is gone).
        self.audit = None;
        Ok(lines)
    }

    fn finish(&mut self) -> Result<ExitStatus> {
        self.stopped = true;
        stop_child(&mut self.child, STOP_TIMEOUT, self.stop_signal)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = stop_child(&mut self.child, STOP_TIMEOUT, self.stop_signal);
        }
    }
}

/// `signal` (SIGINT: as ^C would), then SIGKILL if it is still there after `timeout`;
/// reaps it either way.
pub(super) fn stop_child(child: &mut Child, timeout: Duration, signal: i32) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    // Not reaped (try_wait just said so), so the pid is still this child's.
    sys::signal_pid(child.id(), signal)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!(
                "pid {} ignored SIGINT for {timeout:?}; killed it",
                child.id()
            );
        }
        // std offers no wait with a timeout; a tracer flushing its output takes seconds.
        thread::sleep(Duration::from_millis(10));
    }
}

/// Creates a fifo and opens it read-write: on Linux that does not wait for a reader,
/// and perf (which opens it read-write too) finds what we write whenever it looks.
pub(super) fn make_fifo(path: &Path) -> Result<File> {
    let _ = fs::remove_file(path);
    run_quiet(Command::new("mkfifo").arg("-m").arg("600").arg(path))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("could not open {}", path.display()))
}

pub(super) fn run_quiet(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {}", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads a child's output line by line on a thread, so that the child never blocks on a
/// full pipe, and timestamps each line as it arrives.
pub(super) struct LineReader {
    rx: Receiver<(Instant, String)>,
    lines: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl LineReader {
    pub(super) fn start(stream: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        let thread = thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let at = Instant::now();
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line.clone());
                }
                // The receiver may be gone (nobody waits any more); keep draining.
                let _ = tx.send((at, line));
            }
        });
        Self {
            rx,
            lines,
            thread: Some(thread),
        }
    }

    /// When a line starting with `prefix` arrived; Err says why none did.
    pub(super) fn wait_for(&self, prefix: &str, timeout: Duration) -> Result<Instant, String> {
        self.wait_for_line(|line| line.starts_with(prefix), timeout)
            .map(|(at, _)| at)
    }

    pub(super) fn wait_for_line(
        &self,
        want: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<(Instant, String), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, line)) if want(&line) => return Ok((at, line)),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Err(format!("nothing after {timeout:?}")),
                Err(RecvTimeoutError::Disconnected) => return Err("it closed its output".into()),
            }
        }
    }

    pub(super) fn text(&self) -> String {
        self.lines.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Every line, once the stream has ended (the child exited).
    fn finish(&mut self) -> Vec<String> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
