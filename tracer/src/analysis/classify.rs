//! What kind of signal a record shows: the call that sent it, what it was aimed at, what
//! became of it, why the kernel made it (the origin class), and how sender and target
//! are related.

use tracer_ebpf::{Cause, Request, SignalEvent, signal_flags, syscall, task_flags};

use crate::{
    analysis::rules::Relation,
    model::{
        lineage::{ProcKey, ProcessTable},
        signals::signal_label,
    },
};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGQUIT: i32 = 3;
pub const SIGKILL: i32 = 9;
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

/// A cause link's origin, as [`signal_origin`] tells a signal's: the kernel keeps no
/// siginfo flags for links, so only the si_code says whether a process sent it.
pub fn cause_origin(cause: &Cause) -> &'static str {
    if cause.syscall != syscall::NONE {
        syscall_name(cause.syscall)
    } else if matches!(cause.code, 0 | -1 | -6) {
        "user"
    } else {
        "kernel"
    }
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

/// The si_code the kernel would have used had a failed request gone through.
pub fn request_code(request: &Request) -> i32 {
    match request.syscall {
        syscall::TKILL | syscall::TGKILL => -6, // SI_TKILL
        syscall::RT_SIGQUEUEINFO | syscall::RT_TGSIGQUEUEINFO => -1, // SI_QUEUE
        _ => 0,                                 // SI_USER
    }
}

/// Signals whose si_value carries data (SI_QUEUE, SI_TIMER, SI_MESGQ).
pub fn has_value(code: i32) -> bool {
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
}
