//! The storms: the workloads the table measures (what the senders call, what the victim
//! does, what else runs meanwhile) and `sigwho-storm` (tests/storm.rs) started, held at
//! its barrier until the tracer is ready, then run, and its result read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};

use super::Env;
use super::configs::{Config, Kind};
use super::load::{cpu_ticks, machine_busy_ticks};
use super::references::Floor;
use super::running::{STOP_TIMEOUT, stop_child};
use super::sys::SIGTERM;
use super::tools::Tool;
use crate::cargo::show;

/// The storm's signal.
pub(super) const STORM_SIGNAL: &str = "USR1";

/// The storms the table measures, each beside its own configurations and against its own
/// untraced row. A new storm shape is one more entry (with, when sigwho-storm needs a new
/// option for it, that option in tests/storm.rs).
pub(super) static WORKLOADS: &[Workload] = &[
    Workload {
        label: None,
        sends: "`kill(victim, SIGUSR1)`",
        victim: "the victim ignores the signal, so each call runs the kernel's send path \
                 (including the `signal:signal_generate` tracepoint) and is dropped there",
        storm_args: &[],
        background: None,
        configs: &Kind::ALL,
    },
    shape(
        "handled",
        "`kill(victim, SIGUSR1)`",
        HANDLED,
        &["--victim", "handle"],
    ),
    shape(
        "handled + churn",
        "`kill(victim, SIGUSR1)`",
        CHURN_HANDLED,
        &["--victim", "handle", "--churn", "200"],
    ),
    shape(
        "tgkill",
        "`tgkill(victim, victim, SIGUSR1)`",
        HANDLED,
        &["--victim", "handle", "--call", "tgkill"],
    ),
    shape(
        "tgkill + churn",
        "`tgkill(victim, victim, SIGUSR1)`",
        CHURN_HANDLED,
        &["--victim", "handle", "--call", "tgkill", "--churn", "200"],
    ),
    shape(
        "group",
        "`kill(-pgid, SIGUSR1)` (a group of two handling victims; counts are of the leader's)",
        HANDLED,
        &["--victim", "handle", "--call", "group"],
    ),
    shape(
        "group + churn",
        "`kill(-pgid, SIGUSR1)` (a group of two handling victims; counts are of the leader's)",
        CHURN_HANDLED,
        &["--victim", "handle", "--call", "group", "--churn", "200"],
    ),
];

/// What becomes of a handled signal, for the report.
const HANDLED: &str = "the victim runs an empty handler, so the signal is queued (or \
                       merged with the pending one) and the victim wakes for it: results \
                       alternate between delivered and already pending";
const CHURN_HANDLED: &str = "the victim runs an empty handler (delivered or already \
                             pending); meanwhile a child of the storm forks and execs \
                             `/bin/true` 200 times per second";

/// The configurations beside each storm shape of issue 15: the baseline, the filtered
/// and the full live view, the recorder, the tools it is held against in the same run
/// (perf record, sigsnoop), the floor: sigwho's hooks with every program returning at
/// once (what no program body can beat on this kernel), the recorder's floor (the same
/// with `signal_generate` counting each signal and nothing more), and bpftrace's empty
/// probes on the same hooks beside them.
const SHAPE_CONFIGS: [Kind; 10] = [
    Kind::Untraced,
    Kind::Filtered,
    Kind::HooksOnly,
    Kind::CountOnly,
    Kind::SigwhoJson,
    Kind::Recorder,
    Kind::Tool(Tool::Perf),
    Kind::Tool(Tool::Sigsnoop),
    Kind::Reference(Floor::SignalGenerate),
    Kind::Reference(Floor::WithSyscallExits),
];

const fn shape(
    label: &'static str,
    sends: &'static str,
    victim: &'static str,
    storm_args: &'static [&'static str],
) -> Workload {
    Workload {
        label: Some(label),
        sends,
        victim,
        storm_args,
        background: None,
        configs: &SHAPE_CONFIGS,
    }
}

/// A storm shape and the configurations measured beside it.
pub(super) struct Workload {
    /// Its rows are named `LABEL: CONFIGURATION`; None for the first, whose rows keep the
    /// plain names that docs/performance.md quotes.
    pub(super) label: Option<&'static str>,
    /// What each sender calls flat out, for the report.
    sends: &'static str,
    /// What becomes of the signal at the victim, for the report.
    victim: &'static str,
    /// sigwho-storm's options besides --senders, --duration, --signal and
    /// --victim-pid-file.
    storm_args: &'static [&'static str],
    /// A shell command run over and over beside each of its storms (`/bin/true`: exec
    /// and exit churn), from before the tracer starts until the storm ends; its CPU time
    /// is left out of "other load".
    pub(super) background: Option<&'static str>,
    /// The configurations measured beside it, in the order they run within a round; its
    /// [`Kind::Untraced`] row is the baseline of the others.
    configs: &'static [Kind],
}

impl Workload {
    /// sigwho-storm's arguments, `pid_file` being where it is to write the victim's pid.
    pub(super) fn storm_args(&self, senders: u32, duration: f64, pid_file: &str) -> Vec<String> {
        let mut args = Storm::paced_args(senders, duration, None, pid_file);
        args.extend(self.storm_args.iter().map(|arg| (*arg).to_owned()));
        args
    }

    /// The report's sentence on it.
    pub(super) fn describe(&self, senders: u32, duration: f64) -> String {
        let mut text = format!(
            "{senders} senders call {} flat out for {duration} s; {}",
            self.sends, self.victim
        );
        if let Some(command) = self.background {
            let _ = write!(text, "; meanwhile `{command}` runs over and over");
        }
        text.push('.');
        text
    }
}

/// One row of the table: a configuration beside a workload's storm.
pub(super) struct Row {
    pub(super) workload: &'static Workload,
    pub(super) kind: Kind,
    pub(super) config: Config,
}

impl Row {
    pub(super) fn name(&self) -> String {
        match self.workload.label {
            Some(label) => format!("{label}: {}", self.config.name),
            None => self.config.name.to_owned(),
        }
    }
}

/// Every workload's rows, in the order they run within a round.
pub(super) fn rows() -> Vec<Row> {
    WORKLOADS
        .iter()
        .flat_map(|workload| {
            workload.configs.iter().map(move |&kind| Row {
                workload,
                kind,
                config: kind.config(),
            })
        })
        .collect()
}

/// A workload's background command, run over and over until dropped.
pub(super) struct Background(Child);

impl Background {
    pub(super) fn start(command: &str) -> Result<Self> {
        // The loop also ends once xtask is gone (its $PPID), should it die before it can
        // stop the loop: nothing would be left to stop it.
        let script = format!("while kill -0 $PPID 2>/dev/null; do {command}; done");
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start sh -c {script:?}"))?;
        Ok(Self(child))
    }

    pub(super) fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // sh dies at once; the command it was running finishes on its own.
        if let Err(err) = stop_child(&mut self.0, STOP_TIMEOUT, SIGTERM) {
            eprintln!("bench: warning: background command: {err:#}");
        }
    }
}

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
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub(super) victim: u32,
}

impl Storm {
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

    pub(super) fn start(env: &Env, workload: &Workload) -> Result<Self> {
        Self::start_with(env, |env, pid_file| {
            workload.storm_args(env.senders, env.duration, pid_file)
        })
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

    fn line(&mut self) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_workload_has_one_baseline_and_a_label_of_its_own() {
        for workload in WORKLOADS {
            let untraced = workload.configs.iter().filter(|&&k| k == Kind::Untraced);
            assert_eq!(untraced.count(), 1, "{:?}", workload.label);
        }
        let mut labels: Vec<_> = WORKLOADS.iter().map(|w| w.label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), WORKLOADS.len());
    }

    #[test]
    fn the_kill_storm_runs_as_docs_performance_md_describes_it() {
        let kill = &WORKLOADS[0];
        assert_eq!(
            kill.storm_args(2, 2.0, "$PIDFILE"),
            ["--senders", "--duration", "--signal", "--victim-pid-file"]
                .iter()
                .zip(["2", "2", STORM_SIGNAL, "$PIDFILE"])
                .flat_map(|(option, value)| [(*option).to_owned(), value.to_owned()])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            kill.describe(2, 2.0),
            "2 senders call `kill(victim, SIGUSR1)` flat out for 2 s; the victim ignores the \
             signal, so each call runs the kernel's send path (including the \
             `signal:signal_generate` tracepoint) and is dropped there."
        );
        let names: Vec<String> = rows().iter().take(2).map(Row::name).collect();
        assert_eq!(
            names,
            [
                "untraced",
                "sigwho watching an idle process (in-kernel filter)"
            ]
        );
    }

    #[test]
    fn a_background_command_ends_with_its_storm() {
        let background = Background::start("sleep 0.01").unwrap();
        let proc_dir = format!("/proc/{}", background.pid());
        assert!(Path::new(&proc_dir).exists());
        drop(background);
        // Reaped: its pid is free (and, this soon, not yet reused).
        assert!(!Path::new(&proc_dir).exists());
    }
}
