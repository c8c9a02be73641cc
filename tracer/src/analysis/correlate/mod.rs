//! Turns kernel records into reports: keeps the process table current and describes the
//! sender, target and request of every signal. Free of eBPF so that it can be tested
//! offline and replayed from recorded events.
//!
//! Each concern has its type: the process table (`crate::model::lineage`) for lineage,
//! [`describe::Describer`] for the processes in a report, [`causes::CauseChains`],
//! [`history::Escalations`], [`memo::ReportMemo`] for storms, [`hints::Hinter`], and
//! [`hold::HoldQueue`] for the reports an OOM kill may still reclassify; the
//! classification of a record is `crate::analysis::classify`.

mod causes;
mod describe;
mod hints;
mod history;
mod hold;
mod memo;

use std::sync::Arc;

use tracer_common::{FailedSendEvent, SignalEvent, signal_flags, syscall};

pub use causes::DEFAULT_CAUSE_WINDOW_NS;
pub use hints::facts_of;

use crate::{
    analysis::{
        attempts::{AttemptTarget, attempt_target},
        classify::{
            Origin, OriginClass, Relation, SIGKILL, SignalResult, has_value, origin_class,
            relation, request_call, request_code, request_scope, signal_origin, signal_result_of,
        },
        redact::Redaction,
        report::{AncestorReport, Escalation, ProcessReport, Report, ReportKeys, SignalReport},
        rules::Rules,
        select::{Candidate, Selectors},
    },
    kernel::decode::{Event, c_string},
    model::{
        cgroup,
        clock::BootClock,
        lineage::{ProcKey, ProcessTable},
        signals::{errno_name, si_code_name, signal_label},
    },
};
use causes::CauseChains;
use describe::{Describer, brief_of};
use hints::Hinter;
use history::{Escalations, Killed};
use hold::HoldQueue;
use memo::ReportMemo;

pub struct Correlator {
    table: ProcessTable,
    describer: Describer,
    causes: CauseChains,
    escalations: Escalations,
    killed: Killed,
    memo: ReportMemo,
    hinter: Hinter,
    held: HoldQueue,
    redaction: Redaction,
    /// Processes that exec'd since [`Correlator::take_execs`], when the caller asked
    /// for them ([`Correlator::log_execs`]).
    exec_log: Option<Vec<ProcKey>>,
}

impl Correlator {
    #[must_use]
    pub fn new(table: ProcessTable, clock: BootClock, ticks_per_second: u64) -> Self {
        let rules = Rules::builtin();
        Self {
            table,
            describer: Describer::new(clock, ticks_per_second),
            causes: CauseChains {
                window_ns: DEFAULT_CAUSE_WINDOW_NS,
            },
            escalations: Escalations::default(),
            killed: Killed::default(),
            memo: ReportMemo::new(rules.time_limits()),
            hinter: Hinter { rules },
            held: HoldQueue::default(),
            redaction: Redaction::default(),
            exec_log: None,
        }
    }

    #[must_use]
    pub fn with_cause_window(mut self, window_ns: u64) -> Self {
        self.causes.window_ns = window_ns;
        self
    }

    #[must_use]
    pub fn with_rules(mut self, rules: &'static Rules) -> Self {
        self.hinter = Hinter { rules };
        self.memo = ReportMemo::new(rules.time_limits());
        self
    }

    /// Masks (--redact) applied to every report as it leaves the correlator: after the
    /// hints, which see the real command lines, and before anything prints or stores it.
    #[must_use]
    pub fn with_redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// The masks every report gets, for what callers show besides reports.
    #[must_use]
    pub fn redaction(&self) -> &Redaction {
        &self.redaction
    }

    /// Keeps the processes that exec from now on, for [`Correlator::take_execs`] (the
    /// live view's selectors look at each new program).
    pub fn log_execs(&mut self) {
        self.exec_log.get_or_insert_with(Vec::new);
    }

    /// The processes that exec'd since the last call.
    pub fn take_execs(&mut self) -> Vec<ProcKey> {
        self.exec_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every process the table knows to be running.
    #[must_use]
    pub fn live_processes(&self) -> Vec<ProcKey> {
        self.table.live_keys()
    }

    /// Whether `selectors` select process `key` as the table knows it now.
    #[must_use]
    pub fn selects(&self, selectors: &Selectors, key: &ProcKey) -> bool {
        let Some(view) = self.table.view(key) else {
            return false;
        };
        let identity = view
            .cgroup
            .as_deref()
            .map(|path| cgroup::identity_with_pod(path, |uid| self.table.info().pod(uid)));
        selectors.selects(&Candidate {
            comm: &view.comm,
            exe: view.exe.as_deref(),
            argv0: view.argv.first().map(String::as_str),
            cgroup: view.cgroup.as_deref(),
            identity: identity.as_ref(),
        })
    }

    /// A boot-clock time as reports print it.
    #[must_use]
    pub fn time(&self, boot_ns: u64) -> String {
        self.describer.time(boot_ns)
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
                if let Some(log) = &mut self.exec_log {
                    log.push(self.table.key(ev.task.pid, ev.task.start_ns));
                }
                return;
            }
            Event::OomVictim(ev) => {
                self.mark_oom_victim(ev.pid);
                return;
            }
            // Counts for reports already made; the pass turns them into reports
            // (crate::analysis::fold).
            Event::Repeats(_) => return,
            Event::Exit(ev) => {
                // Described before the table marks it gone (the report needs its name).
                let report =
                    self.describer
                        .exit(&self.table, &ev.task, ev.exit_code, ev.header.time_ns);
                self.table.apply_exit(ev);
                Report::Exit(report)
            }
            Event::Signal(ev) => Report::Signal(Box::new(self.signal_report(ev))),
            Event::FailedSend(ev) => Report::Signal(Box::new(self.failed_report(ev))),
        };
        self.held.push(report);
    }

    /// Reports whose hold time passed by `now_boot_ns` (all of them with `u64::MAX`),
    /// in the order the kernel produced them.
    pub fn release(&mut self, now_boot_ns: u64) -> Vec<Report> {
        // Each pass ends here: workers forked in it have set their titles by now.
        self.table.settle_recent();
        self.held.release(now_boot_ns, &self.redaction)
    }

    /// `oom:mark_victim` follows the OOM killer's SIGKILL: reclassify that report.
    fn mark_oom_victim(&mut self, pid: u32) {
        if let Some(report) = self.held.oom_victim(pid) {
            report.origin_class = OriginClass::OomKill;
            self.hinter.reclassified(report);
        }
    }

    fn signal_report(&mut self, ev: &SignalEvent) -> SignalReport {
        let sender = self.table.observe(&ev.sender);
        let target = self.table.observe(&ev.target);
        if ev.flags & signal_flags::ANCESTRY_CACHED == 0 {
            let len = (ev.ancestry_len as usize).min(ev.sender_ancestry.len());
            self.table
                .set_kernel_ancestry(sender, &ev.sender_ancestry[..len]);
        }
        // The target only: a sender may exec right after sending, and /proc would then
        // show what it runs now (see ProcessTable::settle).
        self.table.settle_lineage(&target);
        let now_ns = ev.header.time_ns;
        let (previous, escalated) = self.escalations.record(sender, target, ev.sig, now_ns);
        let escalation = escalated.map(|(sig, at)| Escalation {
            previous_signal: signal_label(sig),
            previous_time: self.time(at),
            after_seconds: history::seconds(now_ns.saturating_sub(at)),
        });
        let mut result = signal_result_of(ev);
        // A delivered signal to a process already killed is queued to one that exits
        // before it could act on it (see history::Killed).
        let to_killed =
            result == SignalResult::Delivered && ev.sig != SIGKILL && self.killed.contains(&target);
        if to_killed {
            result = SignalResult::DroppedExiting;
        } else if result == SignalResult::Delivered && ev.sig == SIGKILL {
            self.killed.note(target, now_ns);
        }
        let reusable = ev.cause_len == 0 && escalation.is_none() && !to_killed;
        let seen = self.memo.seen_as(&previous);
        if reusable && let Some(mut report) = self.memo.get(ev, self.table.generation(), &seen) {
            report.time = self.time(now_ns);
            report.keys.time_ns = now_ns;
            report.keys.previous_from_sender = previous;
            report.keys.fold_id = ev.fold_id;
            return report;
        }
        let request = &ev.request;
        let from_syscall = request.syscall != syscall::NONE;
        let cause = self.causes.chain(&mut self.table, &self.describer, ev);
        let relation = relation(&self.table, &sender, &target);
        let sender_report = self.describer.process(&self.table, &sender, &ev.sender);
        let root_sender = cause
            .last()
            .map_or_else(|| brief_of(&sender_report), |c| brief_of(&c.sender));
        let mut report = SignalReport {
            event: "signal",
            time: self.time(now_ns),
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
            result,
            errno: None,
            // sival_int: the union's low 32 bits, signed.
            value: has_value(ev.code).then(|| {
                let int = u32::try_from(ev.si_value & u64::from(u32::MAX)).unwrap_or_default();
                i64::from(int.cast_signed())
            }),
            fault_addr: (ev.si_addr != 0 || matches!(ev.sig, 4 | 5 | 7 | 8 | 11))
                .then(|| format!("{:#x}", ev.si_addr))
                .filter(|_| ev.code > 0),
            group: ev.group != 0,
            origin_class: origin_class(ev),
            relation,
            cause,
            root_sender,
            hints: Vec::new(),
            escalation,
            repeats: None,
            sender: Arc::new(sender_report),
            target: Some(Arc::new(self.describer.process(
                &self.table,
                &target,
                &ev.target,
            ))),
            keys: ReportKeys {
                sender: Some(sender),
                target: Some(target),
                request: *request,
                time_ns: now_ns,
                previous_from_sender: previous,
                fold_id: ev.fold_id,
            },
        };
        report.hints = self.hinter.for_signal(&self.table, &report);
        if reusable && report.cause.is_empty() {
            self.memo.keep(ev, self.table.generation(), seen, &report);
        }
        report
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
            origin: Origin::of_syscall(request.syscall),
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
            result: SignalResult::Failed,
            errno: Some(errno_name(i32::try_from(-ev.ret).unwrap_or(i32::MAX))),
            value: None,
            fault_addr: None,
            group: false,
            origin_class: OriginClass::Explicit,
            relation: Relation::Unrelated,
            cause: Vec::new(),
            root_sender: AncestorReport {
                pid: ev.sender.pid,
                comm: c_string(&ev.sender.comm),
                exe: None,
                argv: Vec::new(),
                start_time: None,
            },
            hints: Vec::new(),
            escalation: None,
            repeats: None,
            sender: Arc::new(self.describer.process(&self.table, &sender, &ev.sender)),
            target: None,
            keys: ReportKeys {
                sender: Some(sender),
                target: None,
                request: *request,
                time_ns: ev.header.time_ns,
                previous_from_sender: Vec::new(),
                // Refused calls are aggregated in the kernel too.
                fold_id: ev.fold_id,
            },
        }
    }

    /// Describes a process for a report's target field (used for failed sends, whose
    /// target the kernel never resolved), masked like every report.
    fn describe(&mut self, key: &ProcKey, tid: u32) -> Option<ProcessReport> {
        let mut report = self.describer.known(&self.table, key, tid)?;
        self.redaction.process(&mut report);
        Some(report)
    }

    /// Where a failed attempt (a report without a target) was aimed: see
    /// [`attempt_target`]. None for any other report.
    #[must_use]
    pub fn attempt_target(
        &self,
        report: &SignalReport,
        candidates: &[u32],
    ) -> Option<AttemptTarget> {
        if report.target.is_some() {
            return None;
        }
        attempt_target(
            &report.keys.request,
            report.keys.sender,
            candidates,
            self.table.info(),
        )
    }

    /// Names `key` (thread `tid`) as the target of the failed attempt `report`.
    pub fn attribute(&mut self, report: &mut SignalReport, key: ProcKey, tid: u32) {
        report.target = self.describe(&key, tid).map(Arc::new);
        report.keys.target = Some(key);
    }

    /// The newest process known to have had `pid`.
    #[must_use]
    pub fn latest(&self, pid: u32) -> Option<ProcKey> {
        self.table.latest(pid).map(|p| p.key)
    }

    /// Who forked `key` (as /proc showed it for processes older than sigwho): the parent
    /// at birth, whatever reparenting came after.
    #[must_use]
    pub fn fork_parent(&self, key: &ProcKey) -> Option<ProcKey> {
        self.table.get(key).and_then(|p| p.parent)
    }

    /// `key`'s command line, masked as reports are.
    #[must_use]
    pub fn argv(&self, key: &ProcKey) -> Vec<String> {
        self.redaction
            .argv_owned(self.table.view(key).map(|v| v.argv).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
