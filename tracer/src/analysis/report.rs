//! What sigwho reports: one report per signal, exit or loss. The types here are the
//! domain model; `crate::render` turns them into JSON lines and text. The JSON schema is
//! documented in docs/json-schema.md; keep the two in step.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

use crate::{
    analysis::{
        classify::{Origin, OriginClass, Relation, Scope, SignalResult},
        rules::Hint,
    },
    model::{cgroup::Identity, lineage::ProcKey},
};

/// One ancestor in a sender's or target's chain.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AncestorReport {
    pub pid: u32,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
    /// RFC 3339, as `ProcessReport::start_time`; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
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
    pub origin: Origin,
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
    /// The syscall that sent it, or the kernel.
    pub origin: Origin,
    /// `si_code` by name.
    pub code: String,
    /// The syscall's target argument (pid, negative process group, tgid, tid or pidfd).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<i64>,
    /// What the requested target means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// `tgkill/rt_tgsigqueueinfo`: the thread asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_tid: Option<i64>,
    /// `pidfd_send_signal`: the process the pidfd referred to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_pid: Option<i64>,
    /// The call as it was made, e.g. `kill(-4242, SIGTERM)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    pub result: SignalResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    /// `si_value` (as an int) of a queued or timer signal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// Faulting address of SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_addr: Option<String>,
    /// Sent to the whole process (thread group) rather than one thread.
    pub group: bool,
    /// Why, beyond the syscall.
    pub origin_class: OriginClass,
    /// The sender seen from the target.
    pub relation: Relation,
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
    /// How many signals the report stands for.
    pub count: u64,
    /// When the first of them was sent (the report's `time`).
    pub first_time: String,
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
    pub request: tracer_common::Request,
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
    /// The same, by record kind ("signal", "`failed_send`", "exec", "fork", "exit").
    pub by_kind: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Signal(Box<SignalReport>),
    Exit(ExitReport),
    Lost(LostReport),
}

/// Reports for unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::model::signals::signal_label;

    /// A SIGTERM request of `syscall` with its first two arguments.
    pub fn request(syscall: u32, arg0: i64, arg1: i64) -> tracer_common::Request {
        tracer_common::Request {
            syscall,
            sig: 15,
            arg0,
            arg1,
            pidfd_pid: 0,
            _pad: 0,
        }
    }

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
            identity: Identity::default(),
            execs: Vec::new(),
        }
    }

    pub fn signal(signo: i32, sender: u32, target: u32, origin_class: OriginClass) -> SignalReport {
        SignalReport {
            event: "signal",
            time: "T".into(),
            signal: signal_label(signo),
            signo,
            origin: Origin::Kill,
            code: "SI_USER".into(),
            requested: None,
            scope: None,
            requested_tid: None,
            requested_pid: None,
            call: None,
            result: SignalResult::Delivered,
            errno: None,
            value: None,
            fault_addr: None,
            group: true,
            origin_class,
            relation: Relation::Unrelated,
            cause: Vec::new(),
            root_sender: AncestorReport {
                pid: sender,
                comm: "s".into(),
                exe: None,
                argv: Vec::new(),
                start_time: None,
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
