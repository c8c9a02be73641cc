//! The storms themselves: `sigwho-storm` (tests/storm.rs) started, held at its barrier
//! until the tracer is ready, then run, and its result read.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};

use super::Env;
use super::load::{cpu_ticks, machine_busy_ticks};
use crate::cargo::show;

/// The storm's signal; its victim ignores it.
pub(super) const STORM_SIGNAL: &str = "USR1";

pub(super) struct StormResult {
    pub(super) calls: u64,
    pub(super) rate: f64,
    /// Seconds, as the storm measured them.
    pub(super) elapsed: f64,
    /// CPU ticks of the storm's processes (its senders and victim, reaped by then).
    pub(super) storm_ticks: Option<u64>,
    /// Busy CPU ticks of the whole machine over the storm.
    pub(super) machine_ticks: Option<u64>,
}

/// `sigwho-storm` set up and waiting for its start line (see tests/storm.rs).
pub(super) struct Storm {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) stdout: BufReader<ChildStdout>,
    pub(super) victim: u32,
}

impl Storm {
    pub(super) fn storm_args(env: &Env, pid_file: &str) -> Vec<String> {
        Self::paced_args(env.senders, env.duration, None, pid_file)
    }

    /// `rate`: calls per second per sender, or flat out.
    pub(super) fn paced_args(
        senders: u32,
        duration: f64,
        rate: Option<u64>,
        pid_file: &str,
    ) -> Vec<String> {
        let duration = duration.to_string();
        let senders = senders.to_string();
        let mut args: Vec<String> = ["--senders", &senders, "--duration", &duration]
            .into_iter()
            .chain(["--signal", STORM_SIGNAL, "--victim-pid-file", pid_file])
            .map(String::from)
            .collect();
        if let Some(rate) = rate {
            args.extend(["--rate".to_owned(), rate.to_string()]);
        }
        args
    }

    pub(super) fn start(env: &Env) -> Result<Self> {
        Self::start_with(env, Self::storm_args)
    }

    /// Starts the storm with the arguments `args` makes from the victim's pid file.
    pub(super) fn start_with(
        env: &Env,
        args: impl FnOnce(&Env, &str) -> Vec<String>,
    ) -> Result<Self> {
        let pid_file = env.scratch.join("victim.pid");
        let _ = fs::remove_file(&pid_file);
        let mut cmd = Command::new(&env.bins.storm);
        cmd.args(args(env, &pid_file.display().to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("storm stdout")?);
        let mut storm = Self {
            child,
            stdin,
            stdout,
            victim: 0,
        };
        let ready = storm.line()?;
        if !ready.starts_with("ready victim=") {
            bail!("sigwho-storm said {ready:?} instead of `ready victim=PID`");
        }
        // The pid file is the storm's interface for shells; its `ready` line says it is
        // written.
        let text = fs::read_to_string(&pid_file)
            .with_context(|| format!("could not read {}", pid_file.display()))?;
        storm.victim = text
            .trim()
            .parse()
            .with_context(|| format!("{} holds {text:?}, not a pid", pid_file.display()))?;
        Ok(storm)
    }

    pub(super) fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("sigwho-storm exited early ({})", self.child.wait()?);
        }
        Ok(line.trim_end().to_owned())
    }

    pub(super) fn run(mut self) -> Result<StormResult> {
        let mut stdin = self.stdin.take().context("storm already started")?;
        let busy_before = machine_busy_ticks();
        stdin.write_all(b"start\n")?;
        drop(stdin);
        let line = self.line()?;
        let busy_after = machine_busy_ticks();
        // The storm prints its line after reaping its children, whose times are then in
        // its cutime/cstime; not reaped by us yet, so its /proc entry is still there.
        let storm_ticks = cpu_ticks(self.child.id());
        let status = self.child.wait()?;
        if !status.success() {
            bail!("sigwho-storm failed ({status}) after printing {line:?}");
        }
        let fields: HashMap<&str, &str> = line
            .strip_prefix("storm ")
            .with_context(|| format!("unexpected sigwho-storm output {line:?}"))?
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .collect();
        let field = |name: &str| {
            fields
                .get(name)
                .with_context(|| format!("no {name}= in {line:?}"))
        };
        Ok(StormResult {
            calls: field("calls")?.parse()?,
            rate: field("rate")?.parse()?,
            elapsed: field("duration")?.parse()?,
            storm_ticks,
            machine_ticks: busy_before
                .zip(busy_after)
                .map(|(b, a)| a.saturating_sub(b)),
        })
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        // Not started yet (a tracer failed): stdin closing unread makes the storm clean up
        // its children and exit. Started: it ends at its deadline.
        self.stdin.take();
        let _ = self.child.wait();
    }
}
