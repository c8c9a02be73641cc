//! What sigwho prints: one report per signal, exit or loss, as JSON lines or text.
//! The JSON schema is documented in docs/json-schema.md; keep the two in step.

use std::{collections::BTreeMap, fmt::Write as _, sync::Arc};

use serde::Serialize;

use crate::{analysis::rules::Hint, model::cgroup::Identity, model::lineage::ProcKey};

/// One ancestor in a sender's or target's chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AncestorReport {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProcessReport {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub uid: Option<u32>,
    /// RFC 3339; with the kernel's nanoseconds when known, else /proc's clock ticks.
    pub start_time: Option<String>,
    pub ancestry: Vec<AncestorReport>,
    /// Pid inside its own pid namespace, when that differs from `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(flatten)]
    pub identity: Identity,
    /// Programs it ran, oldest first, when it ran more than one while sigwho watched
    /// (exec history: `{time, exe, argv}`; `time` is null for what /proc showed at start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<ExecReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExecReport {
    pub time: Option<String>,
    pub exe: Option<String>,
    pub argv: Vec<String>,
}

/// One link of a cause chain: a signal the previous link's sender had received.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CauseReport {
    pub signal: String,
    pub signo: i32,
    pub time: String,
    pub origin: &'static str,
    pub code: String,
    pub sender: ProcessReport,
    pub target: AncestorReport,
}

/// The same sender sent this target another signal before (TERM, then KILL).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Escalation {
    pub previous_signal: String,
    pub previous_time: String,
    pub after_seconds: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalReport {
    pub event: &'static str,
    pub time: String,
    pub signal: String,
    pub signo: i32,
    /// The syscall that sent it, or "kernel".
    pub origin: &'static str,
    /// si_code by name.
    pub code: String,
    /// The syscall's target argument (pid, negative process group, tgid, tid or pidfd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<i64>,
    /// What the requested target means: "process", "process_group", "own_process_group",
    /// "all", "thread" or "pidfd".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    /// tgkill/rt_tgsigqueueinfo: the thread asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_tid: Option<i64>,
    /// pidfd_send_signal: the process the pidfd referred to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_pid: Option<i64>,
    /// The call as it was made, e.g. `kill(-4242, SIGTERM)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// "delivered", "ignored", "already_pending", "overflow", "info_lost" or "failed".
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// si_value (as an int) of a queued or timer signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// Faulting address of SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_addr: Option<String>,
    /// Sent to the whole process (thread group) rather than one thread.
    pub group: bool,
    /// Why, beyond the syscall: "explicit", "self", "fault", "broken_pipe", "timer",
    /// "rlimit", "oom_kill", "parent_death", "terminal", "seccomp", "child_state",
    /// "pid_namespace", "kernel_other".
    pub origin_class: &'static str,
    /// The sender seen from the target: "self", "parent", "ancestor", "child",
    /// "descendant", "sibling", "unrelated".
    pub relation: &'static str,
    /// Signals that led to this one, nearest first (see docs/json-schema.md).
    pub cause: Vec<CauseReport>,
    /// Who started it all: the last cause's sender, or the sender itself.
    pub root_sender: AncestorReport,
    pub hints: Vec<Hint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// The recorder only: this report stands for `count` identical signals, the first
    /// at `time` (see docs/json-schema.md, "Repeats").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Repeated>,
    /// Shared: a signal that repeats another (a storm) gets the same process reports,
    /// and comparing them is then a pointer check.
    pub sender: Arc<ProcessReport>,
    /// Absent only for a failed attempt whose target could not be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<ProcessReport>>,
    #[serde(skip)]
    pub keys: ReportKeys,
}

/// Identical signals a report stands for (the kernel counted them, see `fold`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Repeated {
    pub count: u64,
    /// When the last of them was sent.
    pub last_time: String,
    /// The same, in nanoseconds since boot.
    #[serde(skip)]
    pub last_ns: u64,
}

/// Identities behind a report, for filtering; not printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportKeys {
    pub sender: Option<ProcKey>,
    pub target: Option<ProcKey>,
    pub request: tracer_ebpf::Request,
    pub time_ns: u64,
    /// Earlier signals from this sender to this target: (signo, seconds before).
    pub previous_from_sender: Vec<(i32, f64)>,
    /// The kernel's id for the record, which later repeats name (0: not folded).
    pub fold_id: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExitReport {
    pub event: &'static str,
    pub time: String,
    pub pid: u32,
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signo: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_dumped: Option<bool>,
    #[serde(skip)]
    pub key: Option<ProcKey>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LostReport {
    pub event: &'static str,
    pub time: String,
    /// Records the kernel could not queue since the previous lost report.
    pub count: u64,
    /// The same, by record kind ("signal", "failed_send", "exec", "fork", "exit").
    pub by_kind: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Signal(Box<SignalReport>),
    Exit(ExitReport),
    Lost(LostReport),
}

impl Report {
    pub fn to_json(&self) -> String {
        let json = match self {
            Report::Signal(r) => serde_json::to_string(r),
            Report::Exit(r) => serde_json::to_string(r),
            Report::Lost(r) => serde_json::to_string(r),
        };
        // Serializing these plain structs cannot fail.
        json.unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        match self {
            Report::Signal(r) => signal_text(r),
            Report::Exit(r) => exit_text(r),
            Report::Lost(r) => format!(
                "{} LOST {} record(s): the ring buffer was full ({})\n",
                r.time,
                r.count,
                r.by_kind
                    .iter()
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Shell-like quoting so that an argv reads unambiguously on one line.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn process_line(p: &ProcessReport) -> String {
    let mut line = format!("pid {} ({})", p.pid, p.comm);
    if p.tid != p.pid {
        let _ = write!(line, " thread {}", p.tid);
    }
    if let Some(uid) = p.uid {
        let _ = write!(line, " uid {uid}");
    }
    if let Some(exe) = &p.exe {
        let _ = write!(line, " exe {exe}");
    }
    line
}

fn ancestry_lines(out: &mut String, ancestry: &[AncestorReport]) {
    for (depth, a) in ancestry.iter().enumerate() {
        let indent = "  ".repeat(depth);
        let argv = if a.argv.is_empty() {
            String::new()
        } else {
            format!(": {}", shell_join(&a.argv))
        };
        let _ = writeln!(out, "      {indent}<- {} ({}){argv}", a.pid, a.comm);
    }
}

fn signal_text(r: &SignalReport) -> String {
    let mut out = String::new();
    let how = match (&r.call, r.origin) {
        (Some(call), _) => call.clone(),
        (None, origin) => origin.to_owned(),
    };
    let result = match &r.errno {
        Some(errno) => format!("{} ({errno})", r.result),
        None => r.result.to_owned(),
    };
    let _ = writeln!(
        out,
        "{} {} ({}) {} [{}] {}",
        r.time, r.signal, r.signo, how, r.code, result
    );
    if let Some(value) = r.value {
        let _ = writeln!(out, "  value:  {value}");
    }
    if let Some(addr) = &r.fault_addr {
        let _ = writeln!(out, "  fault address: {addr}");
    }
    let _ = writeln!(out, "  sender: {}", process_line(&r.sender));
    if !r.sender.argv.is_empty() {
        let _ = writeln!(out, "    argv: {}", shell_join(&r.sender.argv));
    }
    ancestry_lines(&mut out, &r.sender.ancestry);
    if let Some(target) = &r.target {
        let _ = writeln!(out, "  target: {}", process_line(target));
        if !target.argv.is_empty() {
            let _ = writeln!(out, "    argv: {}", shell_join(&target.argv));
        }
        ancestry_lines(&mut out, &target.ancestry);
    }
    let _ = writeln!(
        out,
        "  why:    {} (sender is the target's {})",
        r.origin_class, r.relation
    );
    if !r.cause.is_empty() {
        let _ = writeln!(out, "  cause chain (nearest first):");
        let _ = writeln!(
            out,
            "    {} ({}) <- {} from {} ({})",
            r.target.as_ref().map_or(0, |t| t.pid),
            r.target.as_ref().map_or("", |t| t.comm.as_str()),
            r.signal,
            r.sender.pid,
            r.sender.comm
        );
        for (depth, cause) in r.cause.iter().enumerate() {
            let argv = if cause.sender.argv.is_empty() {
                String::new()
            } else {
                format!(": {}", shell_join(&cause.sender.argv))
            };
            let _ = writeln!(
                out,
                "    {}  <- {} at {} from {} ({}){argv}",
                "  ".repeat(depth + 1),
                cause.signal,
                cause.time,
                cause.sender.pid,
                cause.sender.comm,
            );
        }
        let root = &r.root_sender;
        let _ = writeln!(
            out,
            "  root sender: {} ({}) {}",
            root.pid,
            root.comm,
            shell_join(&root.argv)
        );
    }
    if let Some(e) = &r.escalation {
        let _ = writeln!(
            out,
            "  escalation: {} from the same sender {:.1}s earlier",
            e.previous_signal, e.after_seconds
        );
    }
    for hint in &r.hints {
        let _ = writeln!(out, "  hint [{}]: {}", hint.id, hint.text);
    }
    out
}

fn exit_text(r: &ExitReport) -> String {
    match (r.exit_code, &r.signal) {
        (Some(code), _) => format!(
            "{} EXIT pid {} ({}) exited with code {code}\n",
            r.time, r.pid, r.comm
        ),
        (None, Some(signal)) => format!(
            "{} EXIT pid {} ({}) was killed by {signal} ({}){}\n",
            r.time,
            r.pid,
            r.comm,
            r.signo.unwrap_or_default(),
            if r.core_dumped == Some(true) {
                ", core dumped"
            } else {
                ""
            }
        ),
        (None, None) => format!("{} EXIT pid {} ({})\n", r.time, r.pid, r.comm),
    }
}

/// Reports for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::model::signals::signal_label;

    pub fn process(pid: u32, comm: &str) -> ProcessReport {
        ProcessReport {
            pid,
            tid: pid,
            comm: comm.into(),
            exe: None,
            argv: vec![comm.into()],
            uid: Some(0),
            start_time: None,
            ancestry: Vec::new(),
            ns_pid: None,
            cgroup: None,
            identity: Default::default(),
            execs: Vec::new(),
        }
    }

    pub fn signal(
        signo: i32,
        sender: u32,
        target: u32,
        origin_class: &'static str,
    ) -> SignalReport {
        SignalReport {
            event: "signal",
            time: "T".into(),
            signal: signal_label(signo),
            signo,
            origin: "kill",
            code: "SI_USER".into(),
            requested: None,
            scope: None,
            requested_tid: None,
            requested_pid: None,
            call: None,
            result: "delivered",
            errno: None,
            value: None,
            fault_addr: None,
            group: true,
            origin_class,
            relation: "unrelated",
            cause: Vec::new(),
            root_sender: AncestorReport {
                pid: sender,
                comm: "s".into(),
                exe: None,
                argv: Vec::new(),
            },
            hints: Vec::new(),
            escalation: None,
            sender: std::sync::Arc::new(process(sender, "sender")),
            target: Some(std::sync::Arc::new(process(target, "target"))),
            repeats: None,
            keys: ReportKeys::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let argv: Vec<String> = ["kill", "-TERM", "-4242", "a b", "it's", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(shell_join(&argv), r"kill -TERM -4242 'a b' 'it'\''s' ''");
    }

    #[test]
    fn exit_text_names_signal_and_core() {
        let report = ExitReport {
            event: "exit",
            time: "T".into(),
            pid: 7,
            comm: "x".into(),
            exit_code: None,
            signal: Some("SIGSEGV".into()),
            signo: Some(11),
            core_dumped: Some(true),
            key: None,
        };
        assert_eq!(
            Report::Exit(report.clone()).to_text(),
            "T EXIT pid 7 (x) was killed by SIGSEGV (11), core dumped\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&Report::Exit(report).to_json()).unwrap();
        assert_eq!(json["event"], "exit");
        assert_eq!(json["signal"], "SIGSEGV");
        assert_eq!(json["core_dumped"], true);
        assert!(json.get("exit_code").is_none());
    }
}
