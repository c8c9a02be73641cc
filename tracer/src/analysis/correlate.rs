//! Turns kernel records into reports: keeps the process table current and describes the
//! sender, target and request of every signal. Free of eBPF so that it can be tested
//! offline and replayed from recorded events.

use std::collections::{HashMap, VecDeque};

use tracer_ebpf::{
    Cause, FailedSendEvent, Request, SignalEvent, TaskRef, signal_flags, syscall, task_flags,
};

use crate::{
    analysis::redact::Redaction,
    analysis::report::{
        AncestorReport, CauseReport, Escalation, ExecReport, ExitReport, ProcessReport, Report,
        ReportKeys, SignalReport,
    },
    analysis::rules::{Facts, ProcFacts, Relation, Rules},
    kernel::decode::{Event, c_string},
    model::cgroup,
    model::clock::{BootClock, rfc3339_nanos},
    model::lineage::{ProcKey, ProcessTable, ProcessView},
    model::signals::{errno_name, si_code_name, signal_label},
};

/// Default for how long a received signal counts as the cause of what its receiver
/// sends next.
pub const DEFAULT_CAUSE_WINDOW_NS: u64 = 10 * 1_000_000_000;
/// How long a kernel SIGKILL report waits for a possible `oom:mark_victim` record, which
/// the kernel emits just after the signal.
const OOM_GRACE_NS: u64 = 20_000_000;
/// Earlier signals between the same two processes kept for escalation detection.
const ESCALATION_WINDOW_NS: u64 = 300 * 1_000_000_000;
/// Distinct signal numbers remembered per (sender, target) pair.
const HISTORY_SIGNALS: usize = 16;

/// Earlier signals as (signo, seconds before now), oldest first.
type Previous = Vec<(i32, f64)>;
/// A signal number and when it was sent (boot ns).
type Sent = (i32, u64);

/// Updates one pair's history (latest time per signal number, oldest first) with
/// `signo` at `now_ns`. Returns what came before, oldest first, as (signo, seconds
/// before now), and for a SIGKILL the latest different signal (an escalation).
fn remember_signal(
    history: &mut Vec<(i32, u64)>,
    signo: i32,
    now_ns: u64,
) -> (Previous, Option<Sent>) {
    history.retain(|(_, at)| now_ns.saturating_sub(*at) <= ESCALATION_WINDOW_NS);
    let previous = history
        .iter()
        .map(|(sig, at)| (*sig, now_ns.saturating_sub(*at) as f64 / 1e9))
        .collect();
    let escalated = history
        .iter()
        .rev()
        .find(|(sig, _)| *sig != signo && signo == SIGKILL)
        .copied();
    history.retain(|(sig, _)| *sig != signo);
    if history.len() >= HISTORY_SIGNALS {
        history.remove(0);
    }
    history.push((signo, now_ns));
    (previous, escalated)
}

pub struct Correlator {
    pub table: ProcessTable,
    clock: BootClock,
    ticks_per_second: u64,
    cause_window_ns: u64,
    rules: &'static Rules,
    /// Reports not yet released: a kernel SIGKILL waits for its possible OOM record, and
    /// everything after it waits too so that order is kept.
    queue: VecDeque<(u64, Report)>,
    /// Signals between (sender, target) pairs: (signo, boot ns).
    history: HashMap<(ProcKey, ProcKey), Vec<(i32, u64)>>,
    /// The last report built for each (sender thread, target pid), reused for a signal
    /// that repeats it (a storm): see [`Memo`].
    memo: HashMap<(u32, u32), Memo>,
    /// [`Rules::time_limits`] of `rules`.
    time_limits: Vec<f64>,
    /// Reports served from `memo`.
    memo_hits: u64,
    redaction: Redaction,
}

/// A report and what it was built from. A signal whose record matches in everything
/// but time, seen while the process table has not changed, with the same earlier
/// signals as far as the rules can tell and no cause chain or escalation, gets the
/// same report with its own time.
struct Memo {
    shape: Shape,
    generation: u64,
    previous: Vec<(i32, u32)>,
    report: SignalReport,
}

/// A signal record without its time, CPU and what the kernel leaves out of repeats.
#[derive(PartialEq)]
struct Shape {
    sig: i32,
    code: i32,
    errno: i32,
    result: i32,
    group: i32,
    si_pid: i32,
    si_uid: u32,
    si_value: u64,
    si_addr: u64,
    sender: TaskRef,
    target: TaskRef,
    request: Request,
}

impl Shape {
    fn of(ev: &SignalEvent) -> Self {
        Self {
            sig: ev.sig,
            code: ev.code,
            errno: ev.errno,
            result: ev.result,
            group: ev.group,
            si_pid: ev.si_pid,
            si_uid: ev.si_uid,
            si_value: ev.si_value,
            si_addr: ev.si_addr,
            sender: ev.sender,
            target: ev.target,
            request: ev.request,
        }
    }
}

/// Most memoised reports kept (one per sender thread and target).
const MEMO_MAX: usize = 1024;

/// Earlier signals as the rules see them: each signal number with a bit per time
/// limit it is within.
fn previous_as_rules_see_it(previous: &[(i32, f64)], limits: &[f64]) -> Vec<(i32, u32)> {
    let mut seen: Vec<(i32, u32)> = previous
        .iter()
        .map(|&(signo, seconds)| {
            let within = limits
                .iter()
                .take(32)
                .enumerate()
                .filter(|&(_, &limit)| seconds <= limit)
                .fold(0u32, |bits, (i, _)| bits | 1 << i);
            (signo, within)
        })
        .collect();
    // The rules ask whether some earlier signal qualifies, never in which order.
    seen.sort_unstable();
    seen
}

/// The syscall's name as a report shows it.
pub fn syscall_name(which: u32) -> &'static str {
    match which {
        syscall::KILL => "kill",
        syscall::TKILL => "tkill",
        syscall::TGKILL => "tgkill",
        syscall::PIDFD_SEND_SIGNAL => "pidfd_send_signal",
        syscall::RT_SIGQUEUEINFO => "rt_sigqueueinfo",
        syscall::RT_TGSIGQUEUEINFO => "rt_tgsigqueueinfo",
        _ => "kernel",
    }
}

/// The syscall the sender was in; "kernel" when the kernel made the signal; "user" when
/// the siginfo says a process sent it (SI_USER, SI_QUEUE, SI_TKILL filled in by
/// kill-family syscalls) but no hooked syscall was running: a hook missing on this
/// kernel, or a path sigwho does not know.
pub fn signal_origin(ev: &SignalEvent) -> &'static str {
    if ev.request.syscall != syscall::NONE {
        return syscall_name(ev.request.syscall);
    }
    let from_user = ev.flags & signal_flags::NO_SIGINFO == 0 && matches!(ev.code, 0 | -1 | -6);
    if from_user { "user" } else { "kernel" }
}

/// TRACE_SIGNAL_* (include/trace/events/signal.h).
pub fn result_name(result: i32) -> &'static str {
    match result {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow",
        4 => "info_lost",
        _ => "unknown",
    }
}

/// What the request's target argument designates (kill(2), tgkill(2), ...).
pub fn request_scope(request: &Request) -> Option<&'static str> {
    Some(match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => match request.arg0 {
            0 => "own_process_group",
            -1 => "all",
            pid if pid < 0 => "process_group",
            _ => "process",
        },
        syscall::TKILL | syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => "thread",
        syscall::PIDFD_SEND_SIGNAL => "pidfd",
        _ => return None,
    })
}

/// The call as the sender wrote it.
pub fn request_call(request: &Request) -> Option<String> {
    let sig = signal_label(request.sig);
    Some(match request.syscall {
        syscall::KILL | syscall::TKILL | syscall::RT_SIGQUEUEINFO => {
            format!("{}({}, {sig})", syscall_name(request.syscall), request.arg0)
        }
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => format!(
            "{}({}, {}, {sig})",
            syscall_name(request.syscall),
            request.arg0,
            request.arg1
        ),
        syscall::PIDFD_SEND_SIGNAL if request.pidfd_pid > 0 => format!(
            "pidfd_send_signal({} -> pid {}, {sig})",
            request.arg0, request.pidfd_pid
        ),
        syscall::PIDFD_SEND_SIGNAL => format!("pidfd_send_signal({}, {sig})", request.arg0),
        _ => return None,
    })
}

/// A process a failed request may have been aimed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub pid: u32,
    pub pgrp: i32,
    pub tids: Vec<u32>,
}

/// Whether `request` (which failed, so the kernel generated nothing) was aimed at
/// `watched`. `sender_pgrp` is needed for kill(0, ...).
pub fn request_reaches(request: &Request, sender_pgrp: Option<i32>, watched: &Watched) -> bool {
    let pid = i64::from(watched.pid);
    match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => match request.arg0 {
            0 => sender_pgrp == Some(watched.pgrp),
            // kill(-1) reaches every process the sender may signal except init.
            -1 => watched.pid != 1,
            group if group < 0 => -group == i64::from(watched.pgrp),
            target => target == pid,
        },
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => request.arg0 == pid,
        syscall::TKILL => watched.tids.iter().any(|&t| i64::from(t) == request.arg0),
        syscall::PIDFD_SEND_SIGNAL => i64::from(request.pidfd_pid) == pid,
        _ => false,
    }
}

/// The si_code the kernel would have used had a failed request gone through.
fn request_code(request: &Request) -> i32 {
    match request.syscall {
        syscall::TKILL | syscall::TGKILL => -6, // SI_TKILL
        syscall::RT_SIGQUEUEINFO | syscall::RT_TGSIGQUEUEINFO => -1, // SI_QUEUE
        _ => 0,                                 // SI_USER
    }
}

/// Signals whose si_value carries data (SI_QUEUE, SI_TIMER, SI_MESGQ).
fn has_value(code: i32) -> bool {
    matches!(code, -3..=-1)
}

/// The sender as the target sees it.
pub fn relation(table: &ProcessTable, sender: &ProcKey, target: &ProcKey) -> Relation {
    if sender == target {
        return Relation::SelfSignal;
    }
    let parent_of = |key: &ProcKey| table.get(key).and_then(|p| p.parent);
    if parent_of(target) == Some(*sender) {
        return Relation::Parent;
    }
    if table.ancestry(target).iter().any(|a| a.key == *sender) {
        return Relation::Ancestor;
    }
    if parent_of(sender) == Some(*target) {
        return Relation::Child;
    }
    if table.ancestry(sender).iter().any(|a| a.key == *target) {
        return Relation::Descendant;
    }
    match (parent_of(sender), parent_of(target)) {
        (Some(a), Some(b)) if a == b => Relation::Sibling,
        _ => Relation::Unrelated,
    }
}

pub fn relation_name(relation: Relation) -> &'static str {
    match relation {
        Relation::SelfSignal => "self",
        Relation::Parent => "parent",
        Relation::Ancestor => "ancestor",
        Relation::Child => "child",
        Relation::Descendant => "descendant",
        Relation::Sibling => "sibling",
        Relation::Unrelated => "unrelated",
    }
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
const SIGKILL: i32 = 9;
const SIGPIPE: i32 = 13;
const SIGALRM: i32 = 14;
const SIGCHLD: i32 = 17;
const SIGCONT: i32 = 18;
const SIGTSTP: i32 = 20;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;
const SIGVTALRM: i32 = 26;
const SIGPROF: i32 = 27;
const SIGWINCH: i32 = 28;
const SIGSYS: i32 = 31;
const SI_KERNEL: i32 = 0x80;
const SI_TIMER: i32 = -2;
const SYS_SECCOMP: i32 = 1;

/// Classifies why the kernel generated a signal, from what the record shows (see
/// kernel/signal.c and the callers of send_sig/force_sig for each case).
pub fn origin_class(ev: &SignalEvent) -> &'static str {
    let (sig, code) = (ev.sig, ev.code);
    let by_process = ev.request.syscall != syscall::NONE || signal_origin(ev) == "user";
    if by_process {
        return if ev.sender.pid == ev.target.pid {
            "self"
        } else {
            "explicit"
        };
    }
    let no_siginfo = ev.flags & signal_flags::NO_SIGINFO != 0;
    let sender_exiting = ev.sender.flags & task_flags::EXITING != 0;
    let other = ev.sender.pid != ev.target.pid;
    match sig {
        SIGSYS if code == SYS_SECCOMP => "seccomp",
        4 | 5 | 7 | 8 | 11 if code > 0 => "fault",
        SIGCHLD => "child_state",
        SIGPIPE => "broken_pipe",
        SIGXCPU | SIGXFSZ => "rlimit",
        _ if code == SI_TIMER || matches!(sig, SIGALRM | SIGVTALRM | SIGPROF) => "timer",
        // zap_pid_ns_processes(): the namespace's init is exiting and kills the rest.
        SIGKILL if sender_exiting && other && ev.sender.ns_pid == 1 && code == SI_KERNEL => {
            "pid_namespace"
        }
        // pdeath_signal is sent with SEND_SIG_NOINFO by the exiting parent
        // (kernel/exit.c, reparent_leader/forget_original_parent).
        _ if sender_exiting && other && no_siginfo => "parent_death",
        SIGHUP | SIGINT | SIGQUIT | SIGTSTP | SIGTTIN | SIGTTOU | SIGWINCH | SIGCONT
            if code == SI_KERNEL =>
        {
            "terminal"
        }
        _ => "kernel_other",
    }
}

impl Correlator {
    pub fn new(table: ProcessTable, clock: BootClock, ticks_per_second: u64) -> Self {
        Self {
            table,
            clock,
            ticks_per_second,
            cause_window_ns: DEFAULT_CAUSE_WINDOW_NS,
            rules: Rules::builtin(),
            queue: VecDeque::new(),
            history: HashMap::new(),
            memo: HashMap::new(),
            time_limits: Rules::builtin().time_limits(),
            memo_hits: 0,
            redaction: Redaction::default(),
        }
    }

    pub fn with_cause_window(mut self, window_ns: u64) -> Self {
        self.cause_window_ns = window_ns;
        self
    }

    pub fn with_rules(mut self, rules: &'static Rules) -> Self {
        self.rules = rules;
        self.time_limits = rules.time_limits();
        self.memo.clear();
        self
    }

    /// Masks (--redact) applied to every report as it leaves the correlator: after the
    /// hints, which see the real command lines, and before anything prints or stores it.
    pub fn with_redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// The masks every report gets, for what callers take from the table themselves.
    pub fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    pub fn time(&self, boot_ns: u64) -> String {
        rfc3339_nanos(self.clock.unix_ns(boot_ns))
    }

    fn start_time(&self, view: &ProcessView) -> Option<String> {
        let boot_ns = view.start_ns.unwrap_or_else(|| {
            view.key.start_ticks * (1_000_000_000 / self.ticks_per_second.max(1))
        });
        (boot_ns > 0).then(|| self.time(boot_ns))
    }

    /// Applies one record. Reports (signals, failed sends, exits) are queued; take them
    /// with [`Correlator::release`]. Callers filter.
    pub fn apply(&mut self, event: &Event) {
        let report = match event {
            Event::Fork(ev) => {
                self.table.apply_fork(ev);
                return;
            }
            Event::Exec(ev) => {
                self.table.apply_exec(ev);
                return;
            }
            Event::OomVictim(ev) => {
                self.mark_oom_victim(ev.pid);
                return;
            }
            // Counts for reports already made; the stream turns them into reports
            // (crate::analysis::fold).
            Event::Repeats(_) => return,
            Event::Exit(ev) => {
                // Described before the table marks it gone (the report needs its name).
                let report = self.exit_report(&ev.task, ev.exit_code, ev.header.time_ns);
                self.table.apply_exit(ev);
                Report::Exit(report)
            }
            Event::Signal(ev) => Report::Signal(Box::new(self.signal_report(ev))),
            Event::FailedSend(ev) => Report::Signal(Box::new(self.failed_report(ev))),
        };
        let release_at = match &report {
            Report::Signal(r) if r.signo == SIGKILL && r.origin_class == "kernel_other" => {
                r.keys.time_ns + OOM_GRACE_NS
            }
            _ => 0,
        };
        self.queue.push_back((release_at, report));
    }

    /// Reports whose hold time passed by `now_boot_ns` (all of them with `u64::MAX`),
    /// in the order the kernel produced them.
    pub fn release(&mut self, now_boot_ns: u64) -> Vec<Report> {
        let mut out = Vec::new();
        while let Some((release_at, _)) = self.queue.front() {
            if *release_at > now_boot_ns {
                break;
            }
            if let Some((_, mut report)) = self.queue.pop_front() {
                self.redaction.report(&mut report);
                out.push(report);
            }
        }
        out
    }

    /// `oom:mark_victim` follows the OOM killer's SIGKILL: reclassify that report.
    fn mark_oom_victim(&mut self, pid: u32) {
        let rules = self.rules;
        let held = self
            .queue
            .iter_mut()
            .rev()
            .find_map(|(release_at, report)| match report {
                Report::Signal(r)
                    if r.signo == SIGKILL
                        && r.origin_class == "kernel_other"
                        && r.keys.target.is_some_and(|t| t.pid == pid) =>
                {
                    Some((release_at, r))
                }
                _ => None,
            });
        if let Some((release_at, report)) = held {
            *release_at = 0;
            report.origin_class = "oom_kill";
            let mut hints = rules.hints(&facts_of(report));
            hints.retain(|h| report.hints.iter().all(|old| old.id != h.id));
            report.hints.splice(0..0, hints);
        }
    }

    fn exit_report(&self, task: &TaskRef, status: u32, time_ns: u64) -> ExitReport {
        let key = self.table.key(task.pid, task.start_ns);
        let signo = (status & 0x7f) as i32;
        let killed = signo != 0;
        ExitReport {
            event: "exit",
            time: self.time(time_ns),
            pid: task.pid,
            comm: self
                .table
                .get(&key)
                .map(|p| p.comm.clone())
                .unwrap_or_else(|| c_string(&task.comm)),
            exit_code: (!killed).then_some(((status >> 8) & 0xff) as i32),
            signal: killed.then(|| signal_label(signo)),
            signo: killed.then_some(signo),
            core_dumped: killed.then_some(status & 0x80 != 0),
            key: Some(key),
        }
    }

    fn process_report(&self, key: &ProcKey, task: &TaskRef) -> ProcessReport {
        let view = self.table.view(key);
        let ancestry = self
            .table
            .ancestry(key)
            .into_iter()
            .map(|a| AncestorReport {
                pid: a.key.pid,
                comm: a.comm,
                exe: a.exe,
                argv: a.argv,
            })
            .collect();
        ProcessReport {
            pid: task.pid,
            tid: task.tid,
            // The kernel's name at send time beats the table's, which may be older.
            comm: c_string(&task.comm),
            exe: view.as_ref().and_then(|v| v.exe.clone()),
            argv: view.as_ref().map(|v| v.argv.clone()).unwrap_or_default(),
            uid: Some(task.uid),
            start_time: view.as_ref().and_then(|v| self.start_time(v)),
            ancestry,
            ns_pid: view
                .as_ref()
                .and_then(|v| v.ns_pid)
                .or((task.ns_pid != 0).then_some(task.ns_pid))
                .filter(|&ns| ns != task.pid),
            identity: view
                .as_ref()
                .and_then(|v| v.cgroup.as_deref())
                .map(|path| cgroup::identity_with_pod(path, |uid| self.table.info().pod(uid)))
                .unwrap_or_default(),
            cgroup: view.and_then(|v| v.cgroup),
            execs: self.exec_history(key),
        }
    }

    fn exec_history(&self, key: &ProcKey) -> Vec<ExecReport> {
        let Some(process) = self.table.get(key) else {
            return Vec::new();
        };
        if process.execs.len() < 2 {
            return Vec::new();
        }
        process
            .execs
            .iter()
            .map(|exec| ExecReport {
                time: exec.time_ns.map(|ns| self.time(ns)),
                exe: exec.exe.clone(),
                argv: exec.argv.clone(),
            })
            .collect()
    }

    /// A process by key, as an ancestor line shows it.
    fn brief(&self, key: &ProcKey, comm: &str) -> AncestorReport {
        match self.table.view(key) {
            Some(view) => AncestorReport {
                pid: key.pid,
                comm: view.comm,
                exe: view.exe,
                argv: view.argv,
            },
            None => AncestorReport {
                pid: key.pid,
                comm: comm.to_owned(),
                exe: None,
                argv: Vec::new(),
            },
        }
    }

    /// The kernel's cause links, cut where a link is older than the window before the
    /// signal it would explain.
    fn cause_chain(&mut self, ev: &SignalEvent) -> Vec<CauseReport> {
        let len = (ev.cause_len as usize).min(ev.causes.len());
        let mut effect_ns = ev.header.time_ns;
        let mut receiver = (ev.sender.pid, ev.sender.start_ns, c_string(&ev.sender.comm));
        let mut chain = Vec::new();
        for cause in &ev.causes[..len] {
            if effect_ns.saturating_sub(cause.time_ns) > self.cause_window_ns {
                break;
            }
            chain.push(self.cause_report(cause, &receiver));
            effect_ns = cause.time_ns;
            receiver = (
                cause.sender_pid,
                cause.sender_start_ns,
                c_string(&cause.sender_comm),
            );
        }
        chain
    }

    fn cause_report(&mut self, cause: &Cause, receiver: &(u32, u64, String)) -> CauseReport {
        let sender_task = TaskRef {
            pid: cause.sender_pid,
            tid: cause.sender_tid,
            start_ns: cause.sender_start_ns,
            uid: cause.sender_uid,
            ppid: 0,
            comm: cause.sender_comm,
            ns_pid: 0,
            flags: 0,
        };
        let sender_key = self.table.key(cause.sender_pid, cause.sender_start_ns);
        // Senders that exited before sigwho saw them are still named by the kernel.
        if self.table.get(&sender_key).is_none() {
            self.table.observe(&sender_task);
        }
        let receiver_key = self.table.key(receiver.0, receiver.1);
        let origin = if cause.syscall != syscall::NONE {
            syscall_name(cause.syscall)
        } else if matches!(cause.code, 0 | -1 | -6) {
            "user"
        } else {
            "kernel"
        };
        CauseReport {
            signal: signal_label(cause.sig),
            signo: cause.sig,
            time: self.time(cause.time_ns),
            origin,
            code: si_code_name(cause.sig, cause.code),
            sender: self.process_report(&sender_key, &sender_task),
            target: self.brief(&receiver_key, &receiver.2),
        }
    }

    /// Earlier signals from the same sender to the same target; remembers this one.
    ///
    /// Per pair only the latest time of each signal number is kept (at most
    /// [`HISTORY_SIGNALS`] numbers): that is all "preceded by S within T" and "the
    /// latest different signal before a SIGKILL" need, and it keeps a storm of one
    /// signal between one pair at constant cost and memory.
    fn escalation(
        &mut self,
        sender: ProcKey,
        target: ProcKey,
        signo: i32,
        now_ns: u64,
    ) -> (Option<Escalation>, Vec<(i32, f64)>) {
        let earlier = self.history.entry((sender, target)).or_default();
        let (previous, escalated) = remember_signal(earlier, signo, now_ns);
        if self.history.len() > 65_536 {
            self.history.retain(|_, v| {
                v.iter()
                    .any(|(_, at)| now_ns.saturating_sub(*at) <= ESCALATION_WINDOW_NS)
            });
        }
        let escalation = escalated.map(|(sig, at)| Escalation {
            previous_signal: signal_label(sig),
            previous_time: self.time(at),
            after_seconds: now_ns.saturating_sub(at) as f64 / 1e9,
        });
        (escalation, previous)
    }

    fn signal_report(&mut self, ev: &SignalEvent) -> SignalReport {
        let sender = self.table.observe(&ev.sender);
        let target = self.table.observe(&ev.target);
        if ev.flags & signal_flags::ANCESTRY_CACHED == 0 {
            let len = (ev.ancestry_len as usize).min(ev.sender_ancestry.len());
            self.table
                .set_kernel_ancestry(sender, &ev.sender_ancestry[..len]);
        }
        let (escalation, previous) = self.escalation(sender, target, ev.sig, ev.header.time_ns);
        let memo_key = (ev.sender.tid, ev.target.pid);
        let reusable = ev.cause_len == 0 && escalation.is_none();
        let seen_as = previous_as_rules_see_it(&previous, &self.time_limits);
        if reusable
            && let Some(memo) = self.memo.get(&memo_key)
            && memo.generation == self.table.generation()
            && memo.previous == seen_as
            && memo.shape == Shape::of(ev)
        {
            let mut report = memo.report.clone();
            self.memo_hits += 1;
            report.time = self.time(ev.header.time_ns);
            report.keys.time_ns = ev.header.time_ns;
            report.keys.previous_from_sender = previous;
            report.keys.fold_id = ev.fold_id;
            return report;
        }
        let request = &ev.request;
        let from_syscall = request.syscall != syscall::NONE;
        let cause = self.cause_chain(ev);
        let relation = relation(&self.table, &sender, &target);
        let sender_report = self.process_report(&sender, &ev.sender);
        let root_sender = cause
            .last()
            .map_or_else(|| brief_of(&sender_report), |c| brief_of(&c.sender));
        let mut report = SignalReport {
            event: "signal",
            time: self.time(ev.header.time_ns),
            signal: signal_label(ev.sig),
            signo: ev.sig,
            origin: signal_origin(ev),
            code: si_code_name(ev.sig, ev.code),
            requested: from_syscall.then_some(request.arg0),
            scope: request_scope(request),
            requested_tid: matches!(
                request.syscall,
                syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO
            )
            .then_some(request.arg1),
            requested_pid: (request.syscall == syscall::PIDFD_SEND_SIGNAL)
                .then_some(i64::from(request.pidfd_pid)),
            call: request_call(request),
            result: result_name(ev.result),
            errno: None,
            value: has_value(ev.code).then_some(i64::from(ev.si_value as u32 as i32)),
            fault_addr: (ev.si_addr != 0 || matches!(ev.sig, 4 | 5 | 7 | 8 | 11))
                .then(|| format!("{:#x}", ev.si_addr))
                .filter(|_| ev.code > 0),
            group: ev.group != 0,
            origin_class: origin_class(ev),
            relation: relation_name(relation),
            cause,
            root_sender,
            hints: Vec::new(),
            escalation,
            repeats: None,
            sender: std::sync::Arc::new(sender_report),
            target: Some(std::sync::Arc::new(
                self.process_report(&target, &ev.target),
            )),
            keys: ReportKeys {
                sender: Some(sender),
                target: Some(target),
                request: *request,
                time_ns: ev.header.time_ns,
                previous_from_sender: previous,
                fold_id: ev.fold_id,
            },
        };
        report.hints = self.hints_with_causes(&report);
        if reusable && report.cause.is_empty() {
            if self.memo.len() >= MEMO_MAX {
                self.memo.clear();
            }
            self.memo.insert(
                memo_key,
                Memo {
                    shape: Shape::of(ev),
                    generation: self.table.generation(),
                    previous: seen_as,
                    report: report.clone(),
                },
            );
        }
        report
    }

    /// Hints for the signal itself, then for each link of its cause chain: the reason a
    /// worker died is often why its master was told to stop.
    fn hints_with_causes(&self, report: &SignalReport) -> Vec<crate::analysis::rules::Hint> {
        let mut hints = self.rules.hints(&facts_of(report));
        for (link, cause) in report.cause.iter().enumerate() {
            let facts = self.cause_facts(cause, report.cause.len() - link - 1);
            for hint in self.rules.hints(&facts) {
                if hints.iter().all(|h| h.id != hint.id) {
                    hints.push(hint);
                }
            }
        }
        hints
    }

    fn cause_facts(&self, cause: &CauseReport, cause_depth: usize) -> Facts {
        let sender_key = self.table.latest(cause.sender.pid).map(|p| p.key);
        let target_key = self.table.latest(cause.target.pid).map(|p| p.key);
        let relation = match (sender_key, target_key) {
            (Some(s), Some(t)) => relation(&self.table, &s, &t),
            _ => Relation::Unrelated,
        };
        let by_process = cause.origin != "kernel";
        let views = |key: Option<ProcKey>| -> Vec<ProcFacts> {
            key.map(|k| self.table.ancestry(&k))
                .unwrap_or_default()
                .iter()
                .map(|a| proc_facts(a.key.pid, &a.comm, &a.exe, &a.argv))
                .collect()
        };
        Facts {
            signo: cause.signo,
            signal: cause.signal.clone(),
            origin: cause.origin.to_owned(),
            origin_class: match (by_process, relation) {
                (true, Relation::SelfSignal) => "self",
                (true, _) => "explicit",
                (false, _) => "kernel_other",
            }
            .to_owned(),
            code: cause.code.clone(),
            sender: proc_facts(
                cause.sender.pid,
                &cause.sender.comm,
                &cause.sender.exe,
                &cause.sender.argv,
            ),
            sender_ancestors: views(sender_key),
            target: proc_facts(
                cause.target.pid,
                &cause.target.comm,
                &cause.target.exe,
                &cause.target.argv,
            ),
            target_ancestors: views(target_key),
            relation,
            previous_from_sender: Vec::new(),
            cause_depth,
        }
    }

    fn failed_report(&mut self, ev: &FailedSendEvent) -> SignalReport {
        let sender = self.table.observe(&ev.sender);
        let len = (ev.ancestry_len as usize).min(ev.sender_ancestry.len());
        self.table
            .set_kernel_ancestry(sender, &ev.sender_ancestry[..len]);
        let request = &ev.request;
        SignalReport {
            event: "signal",
            time: self.time(ev.header.time_ns),
            signal: signal_label(request.sig),
            signo: request.sig,
            origin: syscall_name(request.syscall),
            code: si_code_name(request.sig, request_code(request)),
            requested: Some(request.arg0),
            scope: request_scope(request),
            requested_tid: matches!(
                request.syscall,
                syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO
            )
            .then_some(request.arg1),
            requested_pid: (request.syscall == syscall::PIDFD_SEND_SIGNAL && request.pidfd_pid > 0)
                .then_some(i64::from(request.pidfd_pid)),
            call: request_call(request),
            result: "failed",
            errno: Some(errno_name((-ev.ret) as i32)),
            value: None,
            fault_addr: None,
            group: false,
            origin_class: "explicit",
            relation: "unrelated",
            cause: Vec::new(),
            root_sender: AncestorReport {
                pid: ev.sender.pid,
                comm: c_string(&ev.sender.comm),
                exe: None,
                argv: Vec::new(),
            },
            hints: Vec::new(),
            escalation: None,
            repeats: None,
            sender: std::sync::Arc::new(self.process_report(&sender, &ev.sender)),
            target: None,
            keys: ReportKeys {
                sender: Some(sender),
                target: None,
                request: *request,
                time_ns: ev.header.time_ns,
                previous_from_sender: Vec::new(),
                fold_id: 0,
            },
        }
    }

    /// Describes a process for a report's target field (used for failed sends, whose
    /// target the kernel never resolved).
    pub fn describe(&mut self, key: &ProcKey, tid: u32) -> Option<ProcessReport> {
        let process = self.table.get(key)?;
        let task = TaskRef {
            pid: key.pid,
            tid,
            start_ns: process.start_ns.unwrap_or_default(),
            uid: process.uid.unwrap_or_default(),
            ppid: process.parent.map(|p| p.pid).unwrap_or_default(),
            ns_pid: process.ns_pid.unwrap_or_default(),
            flags: 0,
            comm: {
                let mut comm = [0u8; tracer_ebpf::COMM_LEN];
                let bytes = process.comm.as_bytes();
                let n = bytes.len().min(comm.len());
                comm[..n].copy_from_slice(&bytes[..n]);
                comm
            },
        };
        let mut report = self.process_report(key, &task);
        report.uid = process.uid;
        self.redaction.process(&mut report);
        Some(report)
    }
}

fn brief_of(p: &ProcessReport) -> AncestorReport {
    AncestorReport {
        pid: p.pid,
        comm: p.comm.clone(),
        exe: p.exe.clone(),
        argv: p.argv.clone(),
    }
}

fn proc_facts(pid: u32, comm: &str, exe: &Option<String>, argv: &[String]) -> ProcFacts {
    ProcFacts {
        pid,
        comm: comm.to_owned(),
        exe: exe.clone(),
        argv: argv.to_vec(),
    }
}

/// What the hint rules look at.
pub fn facts_of(r: &SignalReport) -> Facts {
    let ancestors = |list: &[AncestorReport]| {
        list.iter()
            .map(|a| proc_facts(a.pid, &a.comm, &a.exe, &a.argv))
            .collect()
    };
    let target = r.target.as_ref();
    Facts {
        signo: r.signo,
        signal: r.signal.clone(),
        origin: r.origin.to_owned(),
        origin_class: r.origin_class.to_owned(),
        code: r.code.clone(),
        sender: proc_facts(r.sender.pid, &r.sender.comm, &r.sender.exe, &r.sender.argv),
        sender_ancestors: ancestors(&r.sender.ancestry),
        target: target
            .map(|t| proc_facts(t.pid, &t.comm, &t.exe, &t.argv))
            .unwrap_or_default(),
        target_ancestors: target.map(|t| ancestors(&t.ancestry)).unwrap_or_default(),
        relation: match r.relation {
            "self" => Relation::SelfSignal,
            "parent" => Relation::Parent,
            "ancestor" => Relation::Ancestor,
            "child" => Relation::Child,
            "descendant" => Relation::Descendant,
            "sibling" => Relation::Sibling,
            _ => Relation::Unrelated,
        },
        previous_from_sender: r.keys.previous_from_sender.clone(),
        cause_depth: r.cause.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(syscall: u32, arg0: i64, arg1: i64) -> Request {
        Request {
            syscall,
            sig: 15,
            arg0,
            arg1,
            pidfd_pid: 0,
            _pad: 0,
        }
    }

    fn storm_event(time_ns: u64, sig: i32) -> Event {
        let task = |pid: u32, ppid: u32, name: &[u8]| {
            let mut comm = [0u8; tracer_ebpf::COMM_LEN];
            comm[..name.len()].copy_from_slice(name);
            TaskRef {
                pid,
                tid: pid,
                start_ns: 7_000_000_000,
                uid: 0,
                ppid,
                comm,
                ns_pid: pid,
                flags: 0,
            }
        };
        let mut ev = SignalEvent {
            sig,
            result: 1,
            sender: task(4_100_001, 4_100_000, b"sender"),
            target: task(4_100_002, 4_100_000, b"victim"),
            request: Request {
                syscall: syscall::KILL,
                sig,
                arg0: 4_100_002,
                ..Request::default()
            },
            ..SignalEvent::default()
        };
        ev.header.kind = tracer_ebpf::kind::SIGNAL;
        // As the kernel sends repeats from a sender it has described before.
        ev.flags = signal_flags::ANCESTRY_CACHED;
        ev.header.time_ns = time_ns;
        Event::Signal(Box::new(ev))
    }

    fn json_of(correlator: &mut Correlator) -> Vec<String> {
        correlator
            .release(u64::MAX)
            .iter()
            .map(Report::to_json)
            .collect()
    }

    #[test]
    fn a_repeated_signal_gets_the_report_it_would_get_without_the_memo() {
        let clock = crate::model::clock::BootClock::from_offset_ns(0);
        let mut with_memo = Correlator::new(ProcessTable::new(100), clock, 100);
        let mut without = Correlator::new(ProcessTable::new(100), clock, 100);
        let s = 1_000_000_000;
        // USR1 three times (the last two can reuse), then TERM and KILL (an escalation,
        // never reused), then USR1 again with TERM and KILL now earlier.
        let times_and_signals = [
            (10 * s, 10),
            (10 * s + 5, 10),
            (11 * s, 10),
            (12 * s, 15),
            (13 * s, 9),
            (14 * s, 10),
            (14 * s + 1, 10),
        ];
        for (time, sig) in times_and_signals {
            with_memo.apply(&storm_event(time, sig));
            without.memo.clear();
            without.apply(&storm_event(time, sig));
        }
        let (a, b) = (json_of(&mut with_memo), json_of(&mut without));
        assert_eq!(a.len(), times_and_signals.len());
        assert_eq!(a, b);
        // The third USR1 (the second had one earlier USR1 less) and the last one.
        assert_eq!(with_memo.memo_hits, 2);
    }

    #[test]
    fn history_keeps_the_latest_time_of_each_signal_and_stays_bounded() {
        let mut history = Vec::new();
        let s = 1_000_000_000u64;
        assert_eq!(remember_signal(&mut history, 15, 10 * s), (vec![], None));
        for i in 0..100_000u64 {
            remember_signal(&mut history, 10, 11 * s + i);
        }
        let (previous, escalated) = remember_signal(&mut history, 9, 13 * s);
        assert_eq!(escalated, Some((10, 11 * s + 99_999)));
        assert_eq!(previous.len(), 2, "{previous:?}");
        assert_eq!(previous[0], (15, 3.0));
        assert_eq!(previous[1].0, 10);
        // A SIGKILL after nothing else is no escalation.
        let mut lone = Vec::new();
        assert_eq!(remember_signal(&mut lone, 9, s).1, None);
        // Many different signals: bounded, the oldest go first.
        for sig in 1..=40 {
            remember_signal(&mut history, sig, 20 * s + sig as u64);
        }
        assert_eq!(history.len(), HISTORY_SIGNALS);
        assert_eq!(history.last(), Some(&(40, 20 * s + 40)));
        // Outside the window, forgotten.
        let (previous, _) = remember_signal(&mut history, 2, 20 * s + ESCALATION_WINDOW_NS + 1_000);
        assert!(previous.is_empty(), "{previous:?}");
    }

    #[test]
    fn calls_read_as_written() {
        assert_eq!(
            request_call(&request(syscall::KILL, -4242, 0)).as_deref(),
            Some("kill(-4242, SIGTERM)")
        );
        assert_eq!(
            request_call(&request(syscall::TGKILL, 10, 12)).as_deref(),
            Some("tgkill(10, 12, SIGTERM)")
        );
        let mut pidfd = request(syscall::PIDFD_SEND_SIGNAL, 3, 0);
        pidfd.pidfd_pid = 77;
        assert_eq!(
            request_call(&pidfd).as_deref(),
            Some("pidfd_send_signal(3 -> pid 77, SIGTERM)")
        );
        assert_eq!(request_call(&Request::default()), None);
        assert_eq!(
            request_scope(&request(syscall::KILL, -4242, 0)),
            Some("process_group")
        );
        assert_eq!(request_scope(&request(syscall::KILL, -1, 0)), Some("all"));
        assert_eq!(
            request_scope(&request(syscall::KILL, 0, 0)),
            Some("own_process_group")
        );
    }

    #[test]
    fn failed_requests_are_matched_to_the_watched_process() {
        let watched = Watched {
            pid: 100,
            pgrp: 90,
            tids: vec![100, 101],
        };
        assert!(request_reaches(
            &request(syscall::KILL, 100, 0),
            None,
            &watched
        ));
        assert!(!request_reaches(
            &request(syscall::KILL, 101, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, -90, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, -1, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::KILL, 0, 0),
            Some(90),
            &watched
        ));
        assert!(!request_reaches(
            &request(syscall::KILL, 0, 0),
            Some(91),
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::TKILL, 101, 0),
            None,
            &watched
        ));
        assert!(request_reaches(
            &request(syscall::TGKILL, 100, 101),
            None,
            &watched
        ));
        let mut pidfd = request(syscall::PIDFD_SEND_SIGNAL, 3, 0);
        pidfd.pidfd_pid = 100;
        assert!(request_reaches(&pidfd, None, &watched));
    }
}
