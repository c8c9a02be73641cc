//! What kind of signal a record shows: the call that sent it, what it was aimed at, what
//! became of it, why the kernel made it (the origin class), and how sender and target
//! are related.

use tracer_common::{Cause, Request, SignalEvent, signal_flags, syscall, task_flags};

use serde::{Deserialize, Serialize};

use crate::model::{
    lineage::{ProcKey, ProcessTable},
    signals::signal_label,
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

/// Enums whose values reports print: each variant's name is written here once, used by
/// serde (reports, rules files) and by [`as_str`](Origin::as_str) (text).
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in the order docs/json-schema.md lists them.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The name reports print.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named! {
    /// How a signal was asked for: the kill-family call the sender made; `Kernel` when the
    /// kernel made the signal; `User` when the siginfo says a process sent it but no
    /// hooked syscall was running (a hook missing on this kernel, or a path sigwho does
    /// not know).
    pub enum Origin {
        Kill = "kill",
        Tkill = "tkill",
        Tgkill = "tgkill",
        PidfdSendSignal = "pidfd_send_signal",
        RtSigqueueinfo = "rt_sigqueueinfo",
        RtTgsigqueueinfo = "rt_tgsigqueueinfo",
        Kernel = "kernel",
        User = "user",
    }
}

named! {
    /// Why a signal was sent, beyond the syscall (docs/json-schema.md, `origin_class`).
    pub enum OriginClass {
        Explicit = "explicit",
        SelfSent = "self",
        Fault = "fault",
        BrokenPipe = "broken_pipe",
        Timer = "timer",
        Rlimit = "rlimit",
        OomKill = "oom_kill",
        ParentDeath = "parent_death",
        Terminal = "terminal",
        Seccomp = "seccomp",
        ChildState = "child_state",
        PidNamespace = "pid_namespace",
        KernelOther = "kernel_other",
    }
}

named! {
    /// The sender as the target sees it (from fork-time parents, so reparenting does not
    /// change it). Names are the ones reports print, so that a rule can be written from
    /// a report.
    #[derive(Default)]
    pub enum Relation {
        /// The process signalled itself (or one of its own threads).
        #[serde(alias = "self_signal")]
        SelfSignal = "self",
        /// The sender is the target's parent.
        Parent = "parent",
        /// The sender is the target's grandparent or further up.
        Ancestor = "ancestor",
        /// The sender is the target's child.
        Child = "child",
        /// The sender is the target's grandchild or further down.
        Descendant = "descendant",
        /// Same parent.
        Sibling = "sibling",
        #[default]
        Unrelated = "unrelated",
    }
}

named! {
    /// What became of a signal: `TRACE_SIGNAL_*` (include/trace/events/signal.h), or
    /// `Failed` for a call the kernel refused.
    pub enum SignalResult {
        Delivered = "delivered",
        /// The target's handler is `SIG_IGN`, or the signal's default is to be ignored
        /// (SIGCHLD, SIGWINCH, SIGURG, ...).
        Ignored = "ignored",
        /// Dropped: the target was already exiting (`TRACE_SIGNAL_IGNORED` with the
        /// process in group exit, kernel/signal.c `prepare_signal()`).
        DroppedExiting = "dropped_exiting",
        /// Dropped: the target is the init of a pid namespace (a container's PID 1) and
        /// has no handler for it (`SIGNAL_UNKILLABLE`, `sig_task_ignored()`).
        DroppedInit = "dropped_init",
        AlreadyPending = "already_pending",
        Overflow = "overflow",
        InfoLost = "info_lost",
        Failed = "failed",
        Unknown = "unknown",
    }
}

named! {
    /// What a request's target argument designates (kill(2), tgkill(2), ...).
    pub enum Scope {
        Process = "process",
        ProcessGroup = "process_group",
        OwnProcessGroup = "own_process_group",
        All = "all",
        Thread = "thread",
        Pidfd = "pidfd",
    }
}

impl Origin {
    /// The call `which` (a [`syscall`] number); `Kernel` for none.
    #[must_use]
    pub fn of_syscall(which: u32) -> Origin {
        match which {
            syscall::KILL => Origin::Kill,
            syscall::TKILL => Origin::Tkill,
            syscall::TGKILL => Origin::Tgkill,
            syscall::PIDFD_SEND_SIGNAL => Origin::PidfdSendSignal,
            syscall::RT_SIGQUEUEINFO => Origin::RtSigqueueinfo,
            syscall::RT_TGSIGQUEUEINFO => Origin::RtTgsigqueueinfo,
            _ => Origin::Kernel,
        }
    }
}

/// How the signal `ev` was asked for.
#[must_use]
pub fn signal_origin(ev: &SignalEvent) -> Origin {
    if ev.request.syscall != syscall::NONE {
        return Origin::of_syscall(ev.request.syscall);
    }
    let from_user = ev.flags & signal_flags::NO_SIGINFO == 0 && matches!(ev.code, 0 | -1 | -6);
    if from_user {
        Origin::User
    } else {
        Origin::Kernel
    }
}

/// A cause link's origin, as [`signal_origin`] tells a signal's: the kernel keeps no
/// siginfo flags for links, so only the `si_code` says whether a process sent it.
#[must_use]
pub fn cause_origin(cause: &Cause) -> Origin {
    if cause.syscall != syscall::NONE {
        Origin::of_syscall(cause.syscall)
    } else if matches!(cause.code, 0 | -1 | -6) {
        Origin::User
    } else {
        Origin::Kernel
    }
}

/// `TRACE_SIGNAL_*` (include/trace/events/signal.h).
#[must_use]
pub fn signal_result(result: i32) -> SignalResult {
    match result {
        0 => SignalResult::Delivered,
        1 => SignalResult::Ignored,
        2 => SignalResult::AlreadyPending,
        3 => SignalResult::Overflow,
        4 => SignalResult::InfoLost,
        _ => SignalResult::Unknown,
    }
}

/// What became of the signal `ev`: [`signal_result`], with an ignored signal told
/// apart by why the kernel dropped it (the target's state the eBPF program read, see
/// tracer-common's `task_flags`).
#[must_use]
pub fn signal_result_of(ev: &SignalEvent) -> SignalResult {
    let result = signal_result(ev.result);
    if result != SignalResult::Ignored {
        return result;
    }
    let flags = ev.target.flags;
    // prepare_signal() checks group exit first, then sig_task_ignored() the unkillable
    // init without a handler, then the
    // handler itself; a dying thread (PF_EXITING) is the last guess.
    if flags & task_flags::GROUP_EXITING != 0 {
        SignalResult::DroppedExiting
    } else if flags & task_flags::UNKILLABLE != 0 && flags & task_flags::HANDLER_DEFAULT != 0 {
        SignalResult::DroppedInit
    } else if flags & task_flags::HANDLER_IGNORE == 0 && flags & task_flags::EXITING != 0 {
        SignalResult::DroppedExiting
    } else {
        SignalResult::Ignored
    }
}

/// What the request's target argument designates (kill(2), tgkill(2), ...).
#[must_use]
pub fn request_scope(request: &Request) -> Option<Scope> {
    Some(match request.syscall {
        syscall::KILL | syscall::RT_SIGQUEUEINFO => match request.arg0 {
            0 => Scope::OwnProcessGroup,
            -1 => Scope::All,
            pid if pid < 0 => Scope::ProcessGroup,
            _ => Scope::Process,
        },
        syscall::TKILL | syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => Scope::Thread,
        syscall::PIDFD_SEND_SIGNAL => Scope::Pidfd,
        _ => return None,
    })
}

/// The call as the sender wrote it.
#[must_use]
pub fn request_call(request: &Request) -> Option<String> {
    let sig = signal_label(request.sig);
    Some(match request.syscall {
        syscall::KILL | syscall::TKILL | syscall::RT_SIGQUEUEINFO => {
            format!(
                "{}({}, {sig})",
                Origin::of_syscall(request.syscall),
                request.arg0
            )
        }
        syscall::TGKILL | syscall::RT_TGSIGQUEUEINFO => format!(
            "{}({}, {}, {sig})",
            Origin::of_syscall(request.syscall),
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

/// The `si_code` the kernel would have used had a failed request gone through.
#[must_use]
pub fn request_code(request: &Request) -> i32 {
    match request.syscall {
        syscall::TKILL | syscall::TGKILL => -6, // SI_TKILL
        syscall::RT_SIGQUEUEINFO | syscall::RT_TGSIGQUEUEINFO => -1, // SI_QUEUE
        _ => 0,                                 // SI_USER
    }
}

/// Signals whose `si_value` carries data (`SI_QUEUE`, `SI_TIMER`, `SI_MESGQ`).
#[must_use]
pub fn has_value(code: i32) -> bool {
    matches!(code, -3..=-1)
}

/// The sender as the target sees it.
#[must_use]
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

/// Classifies why the kernel generated a signal, from what the record shows (see
/// kernel/signal.c and the callers of `send_sig/force_sig` for each case).
#[must_use]
pub fn origin_class(ev: &SignalEvent) -> OriginClass {
    let (sig, code) = (ev.sig, ev.code);
    let by_process = ev.request.syscall != syscall::NONE || signal_origin(ev) == Origin::User;
    if by_process {
        return if ev.sender.pid == ev.target.pid {
            OriginClass::SelfSent
        } else {
            OriginClass::Explicit
        };
    }
    let no_siginfo = ev.flags & signal_flags::NO_SIGINFO != 0;
    let sender_exiting = ev.sender.flags & task_flags::EXITING != 0;
    let other = ev.sender.pid != ev.target.pid;
    match sig {
        SIGSYS if code == SYS_SECCOMP => OriginClass::Seccomp,
        4 | 5 | 7 | 8 | 11 if code > 0 => OriginClass::Fault,
        SIGCHLD => OriginClass::ChildState,
        SIGPIPE => OriginClass::BrokenPipe,
        SIGXCPU | SIGXFSZ => OriginClass::Rlimit,
        _ if code == SI_TIMER || matches!(sig, SIGALRM | SIGVTALRM | SIGPROF) => OriginClass::Timer,
        // zap_pid_ns_processes(): the namespace's init is exiting and kills the rest.
        SIGKILL if sender_exiting && other && ev.sender.ns_pid == 1 && code == SI_KERNEL => {
            OriginClass::PidNamespace
        }
        // pdeath_signal is sent with SEND_SIG_NOINFO by the exiting parent
        // (kernel/exit.c, reparent_leader/forget_original_parent).
        _ if sender_exiting && other && no_siginfo => OriginClass::ParentDeath,
        SIGHUP | SIGINT | SIGQUIT | SIGTSTP | SIGTTIN | SIGTTOU | SIGWINCH | SIGCONT
            if code == SI_KERNEL =>
        {
            OriginClass::Terminal
        }
        _ => OriginClass::KernelOther,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::report::fixtures::request;

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
            Some(Scope::ProcessGroup)
        );
        assert_eq!(
            request_scope(&request(syscall::KILL, -1, 0)),
            Some(Scope::All)
        );
        assert_eq!(
            request_scope(&request(syscall::KILL, 0, 0)),
            Some(Scope::OwnProcessGroup)
        );
    }

    /// Each value serializes to the name it prints, and reads back from it.
    #[test]
    fn names_are_the_serialized_values() {
        fn check<T>(all: &[T], name: impl Fn(&T) -> &'static str)
        where
            T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
        {
            for value in all {
                let json = serde_json::to_value(value).unwrap();
                assert_eq!(json, name(value), "{value:?}");
                assert_eq!(&serde_json::from_value::<T>(json).unwrap(), value);
            }
        }
        check(Origin::ALL, |v| v.as_str());
        check(OriginClass::ALL, |v| v.as_str());
        check(Relation::ALL, |v| v.as_str());
        check(SignalResult::ALL, |v| v.as_str());
        check(Scope::ALL, |v| v.as_str());
        assert_eq!(
            serde_json::from_str::<Relation>("\"self_signal\"").unwrap(),
            Relation::SelfSignal
        );
        assert_eq!(OriginClass::OomKill.to_string(), "oom_kill");
    }

    #[test]
    fn ignored_signals_say_why_they_were_dropped() {
        let ev = |result: i32, flags: u32| {
            let mut ev = SignalEvent {
                result,
                ..SignalEvent::default()
            };
            ev.target.flags = flags;
            signal_result_of(&ev)
        };
        assert_eq!(ev(0, task_flags::GROUP_EXITING), SignalResult::Delivered);
        assert_eq!(ev(1, task_flags::HANDLER_IGNORE), SignalResult::Ignored);
        assert_eq!(ev(1, task_flags::HANDLER_DEFAULT), SignalResult::Ignored);
        assert_eq!(
            ev(1, task_flags::GROUP_EXITING | task_flags::HANDLER_DEFAULT),
            SignalResult::DroppedExiting
        );
        assert_eq!(ev(1, task_flags::EXITING), SignalResult::DroppedExiting);
        assert_eq!(
            ev(1, task_flags::UNKILLABLE | task_flags::HANDLER_DEFAULT),
            SignalResult::DroppedInit
        );
        // An init that set SIG_IGN ignored it itself.
        assert_eq!(
            ev(1, task_flags::UNKILLABLE | task_flags::HANDLER_IGNORE),
            SignalResult::Ignored
        );
    }

    #[test]
    fn every_syscall_has_its_origin() {
        for which in 1..=u32::try_from(syscall::COUNT).unwrap() {
            assert_ne!(Origin::of_syscall(which), Origin::Kernel, "{which}");
        }
        assert_eq!(Origin::of_syscall(syscall::NONE), Origin::Kernel);
    }
}
