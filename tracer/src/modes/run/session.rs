//! What a run keeps of the reports: the tree's processes, the unexpected signals, the
//! failed attempts, who died of what; and at the end, every output.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use super::{RunOptions, policy::Allow};
use crate::{
    analysis::{
        classify::SignalResult,
        correlate::Correlator,
        report::{ExitReport, Report, SignalReport},
    },
    kernel::{load::Tracer, stream::EventStream},
    model::{
        lineage::ProcKey,
        signals::{DefaultAction, default_action},
    },
    render::{
        self,
        summary::{Killed, Outcome, RunView},
    },
};

/// Unexpected signals (and deaths) kept in full for the summary and JUnit; beyond this
/// they are counted (the JSON report still has every one).
const KEEP_DETAILS: usize = 1000;

// ---------------------------------------------------------------------------------------
// Collecting

pub(super) struct JsonOut {
    path: PathBuf,
    out: BufWriter<File>,
    error: Option<io::Error>,
}

impl JsonOut {
    pub(super) fn create(path: &Path) -> anyhow::Result<Self> {
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

pub(super) struct Session<'a> {
    allow: &'a Allow,
    command: Vec<String>,
    started_at: String,
    pub(super) cmd: Option<ProcKey>,
    /// Processes known to be in the command's tree (the command, signal targets and
    /// every tree process seen exiting); others are found through fork-time parents.
    pub(super) tree: HashSet<ProcKey>,
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
    pub(super) fn new(
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

    pub(super) fn take_all(&mut self, reports: Vec<Report>, stream: &mut EventStream) {
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
        self.line(&render::json::with_unexpected(&signal, unexpected));
        // A storm's repeats count as many as they stand for; their details are the
        // first report's, already kept.
        let (count, repeat) = signal
            .repeats
            .as_ref()
            .map_or((1, false), |repeats| (repeats.count, true));
        if signal.result == SignalResult::Failed {
            self.failed += count;
            if !repeat && self.failed_reports.len() < KEEP_DETAILS {
                self.failed_reports.push(*signal);
            }
            return;
        }
        self.signals_seen += count;
        let Some(target) = signal.keys.target else {
            return;
        };
        // The kernel only reports signals aimed at the tree.
        self.tree.insert(target);
        let can_kill = matches!(
            signal.result,
            SignalResult::Delivered | SignalResult::AlreadyPending
        ) && matches!(
            default_action(signal.signo),
            DefaultAction::Terminate | DefaultAction::CoreDump
        );
        if unexpected {
            self.unexpected += count;
            if !repeat && self.unexpected_reports.len() < KEEP_DETAILS {
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
    /// out from the request (`crate::analysis::attempts`) among the tree's live processes,
    /// the command first; None when it was not aimed at the tree.
    fn resolve_failed(
        &mut self,
        mut signal: Box<SignalReport>,
        correlator: &mut Correlator,
        tracer: &Tracer,
    ) -> Option<Box<SignalReport>> {
        let mut candidates = tracer.targets();
        candidates.sort_unstable();
        let cmd = self.cmd.map(|k| k.pid);
        candidates.sort_by_key(|&pid| Some(pid) != cmd);
        let aimed = correlator.attempt_target(&signal, &candidates)?;
        let key = correlator.latest(aimed.pid)?;
        if !self.in_tree(correlator, key) {
            return None;
        }
        correlator.attribute(&mut signal, key, aimed.tid);
        Some(signal)
    }

    /// Writes the reports and the summary; returns sigwho's exit status.
    pub(super) fn finish(
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

        let summary = render::summary::summary_json(&self.view(), outcome, code);
        self.line(&summary);
        if let Some(report) = &mut self.report {
            report.flush();
            if let Some(error) = &report.error {
                errors.push(format!("cannot write {}: {error}", report.path.display()));
            }
        }
        if let Some((path, mut file)) = junit_file {
            let xml = render::junit::suite(&self.view(), outcome).to_xml();
            if let Err(error) = file.write_all(xml.as_bytes()).and_then(|()| file.flush()) {
                errors.push(format!("cannot write {}: {error}", path.display()));
            }
        }
        if !args.quiet {
            eprint!(
                "{}",
                render::summary::summary_text(&self.view(), outcome, fail_on_signal)
            );
        }
        if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            eprint!("{}", render::summary::annotations(&self.view()));
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

    /// What the outputs show of this run.
    fn view(&self) -> RunView<'_> {
        RunView {
            command: &self.command,
            started_at: &self.started_at,
            cmd: self.cmd,
            allowed: self.allow.names(),
            signals_seen: self.signals_seen,
            unexpected: self.unexpected,
            failed: self.failed,
            lost: self.lost,
            unexpected_reports: &self.unexpected_reports,
            failed_reports: &self.failed_reports,
            killed: &self.killed,
            killed_count: self.killed_count,
            cmd_killer: self.cmd_killer.as_ref(),
            sigwho_pid: std::process::id(),
        }
    }
}
