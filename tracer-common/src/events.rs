//! The ring-buffer records: a header, then one of the structs below, by [`kind`].

/// Length of a kernel task name (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;
/// Generations of the sender's real-parent chain captured in the kernel at send time.
pub const ANCESTRY_DEPTH: usize = 8;
/// Bytes of a new program's argv captured at exec (longer command lines are truncated and
/// flagged).
pub const ARGS_LEN: usize = 1024;
/// Bytes of the path given to execve.
pub const PATH_LEN: usize = 256;
/// Components of a process's cgroup path captured at exec (the last ones), and bytes
/// per component (a systemd pod slice name is about 70).
pub const CGROUP_LEVELS: usize = 4;
pub const CGROUP_NAME_LEN: usize = 128;
/// Links of a cause chain captured in the kernel with a signal: the sender had received
/// a signal, whose sender had received one, ...
pub const CAUSE_DEPTH: usize = 4;

/// What follows the header of a ring-buffer record.
pub mod kind {
    /// [`super::SignalEvent`]: `signal:signal_generate` fired.
    pub const SIGNAL: u32 = 1;
    /// [`super::FailedSendEvent`]: a kill-family syscall returned an error.
    pub const FAILED_SEND: u32 = 2;
    /// [`super::ExecEvent`]: `sched:sched_process_exec`.
    pub const EXEC: u32 = 3;
    /// [`super::ForkEvent`]: `sched:sched_process_fork` for a new process (not a thread).
    pub const FORK: u32 = 4;
    /// [`super::ExitEvent`]: `sched:sched_process_exit` of a process's last thread.
    pub const EXIT: u32 = 5;
    /// [`super::OomVictimEvent`]: `oom:mark_victim`, the OOM killer chose a process.
    pub const OOM_VICTIM: u32 = 6;
    /// [`crate::RepeatsEvent`]: how many identical signals were folded into an earlier
    /// [`super::SignalEvent`] (sent by older versions only; counts are read from the
    /// `FOLDS` map now, see [`crate::FoldSlot`]).
    pub const REPEATS: u32 = 7;
}

/// Which kill-family syscall a [`Request`] comes from. Zero means none: the kernel itself
/// generated the signal (fault, pipe, timer, child exit, ...).
pub mod syscall {
    pub const NONE: u32 = 0;
    pub const KILL: u32 = 1;
    pub const TKILL: u32 = 2;
    pub const TGKILL: u32 = 3;
    pub const PIDFD_SEND_SIGNAL: u32 = 4;
    pub const RT_SIGQUEUEINFO: u32 = 5;
    pub const RT_TGSIGQUEUEINFO: u32 = 6;
    /// Number of syscalls above; the index of a syscall in [`crate::SyscallLayouts`] is its
    /// constant minus one.
    pub const COUNT: usize = 6;
}

/// Flags in [`SignalEvent::flags`].
pub mod signal_flags {
    /// `sender_ancestry` was not captured because this sender (same pid and start time)
    /// was seen before; userspace reuses the chain it got then.
    pub const ANCESTRY_CACHED: u32 = 1;
    /// The siginfo pointer was `SEND_SIG_NOINFO` or `SEND_SIG_PRIV`: `si_*` fields are empty.
    pub const NO_SIGINFO: u32 = 2;
}

/// Flags in [`ExecEvent::flags`].
pub mod exec_flags {
    /// argv was longer than [`super::ARGS_LEN`] and was cut.
    pub const ARGS_TRUNCATED: u32 = 1;
    /// argv could not be read from the new program's memory.
    pub const ARGS_UNREADABLE: u32 = 2;
    /// In [`super::ExecEvent::cgroup_levels`]: the cgroup path goes on above the
    /// captured components.
    pub const CGROUP_TRUNCATED: u32 = 0x100;
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    pub kind: u32,
    /// CPU that produced the record (helps explain reordering between CPUs).
    pub cpu: u32,
    /// `bpf_ktime_get_boot_ns()`: nanoseconds since boot, suspend included.
    pub time_ns: u64,
}

/// A process as the kernel names it at one instant.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRef {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Start of the process (its thread-group leader), `start_boottime` in ns since boot.
    /// With `pid` this identifies a process across pid reuse.
    pub start_ns: u64,
    pub uid: u32,
    /// Parent process (`real_parent`'s tgid) at this instant.
    pub ppid: u32,
    /// The thread's name.
    pub comm: [u8; COMM_LEN],
    /// Process id as seen in the process's own pid namespace (equal to `pid` outside
    /// containers).
    pub ns_pid: u32,
    /// Bits from [`task_flags`].
    pub flags: u32,
}

/// Flags in [`TaskRef::flags`].
pub mod task_flags {
    /// The task was exiting (`PF_EXITING`): signals it "sends" then are the kernel's
    /// (parent-death signal, SIGCHLD, pid-namespace teardown).
    pub const EXITING: u32 = 1;
    /// The rest are set on a signal record's target only, and only when the kernel
    /// ignored the signal (`TRACE_SIGNAL_IGNORED`): why `prepare_signal()` dropped it
    /// (kernel/signal.c). The process was already dying (`SIGNAL_GROUP_EXIT`, or 5.10's
    /// `SIGNAL_GROUP_COREDUMP`, in `signal->flags`).
    pub const GROUP_EXITING: u32 = 2;
    /// The process is the init of a pid namespace (`SIGNAL_UNKILLABLE`): `sig_task_ignored()`
    /// drops a signal it has no handler for.
    pub const UNKILLABLE: u32 = 4;
    /// Its handler for the signal was `SIG_IGN`.
    pub const HANDLER_IGNORE: u32 = 8;
    /// Its handler for the signal was `SIG_DFL`.
    pub const HANDLER_DEFAULT: u32 = 16;
}

/// A signal a process received, kept in the kernel per receiving process so that the
/// next signal it sends can carry the chain of causes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cause {
    pub time_ns: u64,
    /// Start of the process that received it (to check the entry is not a previous
    /// process with the same pid).
    pub receiver_start_ns: u64,
    pub sender_pid: u32,
    pub sender_tid: u32,
    pub sender_start_ns: u64,
    pub sig: i32,
    pub code: i32,
    /// The kill-family syscall it came through ([`syscall`]), or 0.
    pub syscall: u32,
    pub sender_uid: u32,
    pub sender_comm: [u8; COMM_LEN],
}

/// One generation of an ancestry chain.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ancestor {
    pub pid: u32,
    pub _pad: u32,
    pub start_ns: u64,
    pub comm: [u8; COMM_LEN],
}

/// What a kill-family syscall asked for, as its arguments said.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// One of the [`syscall`] constants.
    pub syscall: u32,
    pub sig: i32,
    /// pid for kill/`rt_sigqueueinfo`, tgid for tgkill/`rt_tgsigqueueinfo`, tid for tkill,
    /// the fd for `pidfd_send_signal`.
    pub arg0: i64,
    /// tid for tgkill/`rt_tgsigqueueinfo`.
    pub arg1: i64,
    /// For `pidfd_send_signal`: the pid the fd referred to when the call was made (0 if the
    /// fd was not a pidfd or could not be read).
    pub pidfd_pid: i32,
    pub _pad: u32,
}

/// `signal:signal_generate`: the kernel decided what to do with a signal aimed at a task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalEvent {
    pub header: EventHeader,
    pub sig: i32,
    /// `si_code` (`SI_USER`, `SI_QUEUE`, `SEGV_MAPERR`, ...).
    pub code: i32,
    pub errno: i32,
    /// `TRACE_SIGNAL_*` from include/trace/events/signal.h: 0 delivered, 1 ignored,
    /// 2 already pending, 3 overflow, 4 info lost.
    pub result: i32,
    /// Non-zero when the signal was sent to the whole thread group.
    pub group: i32,
    /// Bits from [`signal_flags`].
    pub flags: u32,
    /// siginfo's `si_pid`/`si_uid` as the kernel filled them (meaningful for `SI_USER`,
    /// `SI_QUEUE`, SIGCHLD, ...).
    pub si_pid: i32,
    pub si_uid: u32,
    /// `si_value` for `SI_QUEUE` and timers; `si_addr` for faults.
    pub si_value: u64,
    pub si_addr: u64,
    /// The task running when the signal was generated (the sender, or the task the kernel
    /// was working for).
    pub sender: TaskRef,
    /// The task the signal was aimed at.
    pub target: TaskRef,
    /// The kill-family syscall the sender was in, if any.
    pub request: Request,
    /// Valid entries in `sender_ancestry`, parent first.
    pub ancestry_len: u32,
    pub _pad: u32,
    pub sender_ancestry: [Ancestor; ANCESTRY_DEPTH],
    /// Valid entries in `causes`, nearest first: the signal the sender had received
    /// most recently (if it still was the same process), then what its sender had
    /// received, and so on. Userspace applies the time window.
    pub cause_len: u32,
    pub _pad2: u32,
    pub causes: [Cause; CAUSE_DEPTH],
    /// Recorder only: this record's id for [`RepeatsEvent::row`] (CPU in the top 16
    /// bits, a per-CPU sequence below); 0 when the kernel does not fold.
    pub fold_id: u64,
}

/// `oom:mark_victim`: the OOM killer picked a process (just after it sent SIGKILL).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomVictimEvent {
    pub header: EventHeader,
    pub pid: u32,
    pub _pad: u32,
}

/// A kill-family syscall that failed (EPERM, ESRCH, EINVAL, ...), so no signal was
/// generated.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailedSendEvent {
    pub header: EventHeader,
    pub request: Request,
    /// Negative errno the syscall returned.
    pub ret: i64,
    pub sender: TaskRef,
    pub ancestry_len: u32,
    pub _pad: u32,
    pub sender_ancestry: [Ancestor; ANCESTRY_DEPTH],
    /// Recorder only: this record's id, which a later count in `FOLDS` names
    /// ([`crate::FoldSlot::row`]); 0 when the kernel does not aggregate. Records from
    /// before it was added are this much shorter (userspace reads them as 0).
    pub fold_id: u64,
}

/// `sched:sched_process_exec`: a process started a new program.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    pub header: EventHeader,
    pub task: TaskRef,
    /// Bits from [`exec_flags`].
    pub flags: u32,
    /// Valid bytes in `args` (NUL-separated argv).
    pub args_len: u32,
    /// The path given to execve, NUL-terminated.
    pub filename: [u8; PATH_LEN],
    pub args: [u8; ARGS_LEN],
    /// Valid entries in `cgroup_names`, plus [`exec_flags::CGROUP_TRUNCATED`]'s bit
    /// position 8 when the path has more components above them.
    pub cgroup_levels: u32,
    pub _pad: u32,
    /// The new program's cgroup (unified hierarchy) path, last components first
    /// (NUL-terminated names): what userspace uses when /proc no longer has the process.
    pub cgroup_names: [[u8; CGROUP_NAME_LEN]; CGROUP_LEVELS],
}

/// `sched:sched_process_fork` for a new process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkEvent {
    pub header: EventHeader,
    /// The new process; its `ppid` is its real parent (which differs from `forker` with
    /// `CLONE_PARENT`).
    pub child: TaskRef,
    /// The task that called fork/clone.
    pub forker: TaskRef,
    /// Start time of the real parent process.
    pub parent_start_ns: u64,
}

/// `sched:sched_process_exit` of a process's last thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: EventHeader,
    pub task: TaskRef,
    /// Wait status as `waitpid` reports it: `(code << 8)` for exit, the signal number
    /// plus 0x80 when a core was dumped for a fatal signal.
    pub exit_code: u32,
    pub _pad: u32,
}
