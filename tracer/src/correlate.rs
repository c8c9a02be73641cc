//! Turns kernel records into reports: keeps the process table current and describes the
//! sender, target and request of every signal. Free of eBPF so that it can be tested
//! offline and replayed from recorded events.

use tracer_ebpf::{FailedSendEvent, Request, SignalEvent, TaskRef, signal_flags, syscall};

use crate::{
    clock::{BootClock, rfc3339_nanos},
    decode::{Event, c_string},
    lineage::{ProcKey, ProcessTable, ProcessView},
    report::{AncestorReport, ExitReport, ProcessReport, Report, ReportKeys, SignalReport},
    signals::{errno_name, si_code_name, signal_label},
};

pub struct Correlator {
    pub table: ProcessTable,
    clock: BootClock,
    ticks_per_second: u64,
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

impl Correlator {
    pub fn new(table: ProcessTable, clock: BootClock, ticks_per_second: u64) -> Self {
        Self {
            table,
            clock,
            ticks_per_second,
        }
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

    /// Applies one record; returns the report it makes, if any (signals, failed sends
    /// and exits). Callers filter.
    pub fn apply(&mut self, event: &Event) -> Option<Report> {
        match event {
            Event::Fork(ev) => {
                self.table.apply_fork(ev);
                None
            }
            Event::Exec(ev) => {
                self.table.apply_exec(ev);
                None
            }
            Event::Exit(ev) => {
                self.table.apply_exit(ev);
                Some(Report::Exit(self.exit_report(
                    &ev.task,
                    ev.exit_code,
                    ev.header.time_ns,
                )))
            }
            Event::Signal(ev) => Some(Report::Signal(Box::new(self.signal_report(ev)))),
            Event::FailedSend(ev) => Some(Report::Signal(Box::new(self.failed_report(ev)))),
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
        let request = &ev.request;
        let from_syscall = request.syscall != syscall::NONE;
        SignalReport {
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
            sender: self.process_report(&sender, &ev.sender),
            target: Some(self.process_report(&target, &ev.target)),
            keys: ReportKeys {
                sender: Some(sender),
                target: Some(target),
                request: *request,
                time_ns: ev.header.time_ns,
            },
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
            sender: self.process_report(&sender, &ev.sender),
            target: None,
            keys: ReportKeys {
                sender: Some(sender),
                target: None,
                request: *request,
                time_ns: ev.header.time_ns,
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
        Some(report)
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
