//! Event types shared by sigwho's eBPF programs and its userspace.
//!
//! Every record the kernel side puts into the `EVENTS` ring buffer starts with an
//! [`EventHeader`]; its `kind` says which of the `#[repr(C)]` structs below follows.
//! Layouts are fixed-size and padding is explicit, so userspace can check a record's
//! length before it reads one (see `tracer::decode`).
#![no_std]

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
/// Ring buffer size; a power of two and a multiple of the page size.
pub const RING_BYTES: u32 = 8 << 20;
/// Links of a cause chain captured in the kernel with a signal: the sender had received
/// a signal, whose sender had received one, ...
pub const CAUSE_DEPTH: usize = 4;
/// Capacity of the target filter map.
pub const MAX_TARGETS: u32 = 4096;
/// Slots of the target filter's hint array (`TARGET_HINTS`, indexed by pid modulo this).
pub const TARGET_HINT_SLOTS: u32 = 65536;

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
    /// [`super::RepeatsEvent`]: how many identical signals were folded into an earlier
    /// [`super::SignalEvent`] (recorder only, see [`super::FoldSlot`]).
    pub const REPEATS: u32 = 7;
}

/// How long the kernel folds identical signals into one record before it sends a fresh
/// pair of full records (so that lineage, hints and escalation are never older than
/// this in a storm), in nanoseconds.
pub const FOLD_WINDOW_NS: u64 = 100_000_000;
/// Fold slots per CPU ([`FoldSlot`]); a power of two, at most 4 (fold ids keep 2 bits
/// for the slot).
pub const FOLD_WAYS: u32 = 4;

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
    /// Number of syscalls above; the index of a syscall in [`super::SyscallLayouts`] is its
    /// constant minus one.
    pub const COUNT: usize = 6;
}

/// Flags in [`SignalEvent::flags`].
pub mod signal_flags {
    /// `sender_ancestry` was not captured because this sender (same pid and start time)
    /// was seen before; userspace reuses the chain it got then.
    pub const ANCESTRY_CACHED: u32 = 1;
    /// The siginfo pointer was SEND_SIG_NOINFO or SEND_SIG_PRIV: `si_*` fields are empty.
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
    /// Parent process (real_parent's tgid) at this instant.
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
    /// The task was exiting (PF_EXITING): signals it "sends" then are the kernel's
    /// (parent-death signal, SIGCHLD, pid-namespace teardown).
    pub const EXITING: u32 = 1;
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

/// Everything in a signal's record that can differ between two signals from the same
/// sender thread to the same target thread, but for the time: two signals with equal
/// keys make the same report. `generation` changes with every exec and process exit on
/// the machine (the reports show command lines and ancestry), `cause_ns` with every
/// signal the sender (or a process whose pid shares its low bits) receives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldKey {
    pub sender_tid: u32,
    pub target_tid: u32,
    pub sender_start_ns: u64,
    pub target_start_ns: u64,
    pub sig: i32,
    pub result: i32,
    pub group: i32,
    pub _pad: u32,
    /// The siginfo's first 32 bytes (code, errno, pid, uid, value or fault address), or
    /// a marker for SEND_SIG_NOINFO/SEND_SIG_PRIV and zeros.
    pub siginfo: [u64; 4],
    pub request: Request,
    pub cause_ns: u64,
    pub generation: u64,
}

/// The recorder's in-kernel folding of identical signals: [`FOLD_WAYS`] slots per CPU,
/// each signal going to one by its sender and target thread. After two identical
/// signals in a row in one slot (within [`FOLD_WINDOW_NS`]), further ones only count
/// here, against the second's record (`row`, its [`SignalEvent::fold_id`]), until a
/// different signal takes the slot or the window ends; then a [`RepeatsEvent`] carries
/// the count.
/// Userspace reads the slots too, for counts a storm left behind when it stopped.
///
/// Field order matters to that reader: `row` is set to 0 before the other fields
/// change and to its new value last, and the reader takes a value only when two
/// successive reads show the same non-zero `row` (so `count` and the times, which come
/// before `row`, belong to it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldSlot {
    /// Signals folded into `row` so far.
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Fold id of the record the count belongs to; 0 while not folding.
    pub row: u64,
    /// When folding into `row` began (the window's start).
    pub window_start_ns: u64,
    /// When the signal in `key` was last sent as a full record.
    pub seen_ns: u64,
    /// Last fold id handed out on this CPU.
    pub seq: u64,
    /// The last signal sent as a full record on this CPU (`seen_ns` 0: none).
    pub key: FoldKey,
    /// The boot clock as read at jiffy `clock_jiffies`: signals in the same jiffy reuse
    /// it (so repeats' times are early by up to a jiffy).
    pub clock_jiffies: u64,
    pub clock_ns: u64,
}

/// Identical signals folded into the record with fold id `row`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepeatsEvent {
    pub header: EventHeader,
    pub row: u64,
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
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
    /// pid for kill/rt_sigqueueinfo, tgid for tgkill/rt_tgsigqueueinfo, tid for tkill,
    /// the fd for pidfd_send_signal.
    pub arg0: i64,
    /// tid for tgkill/rt_tgsigqueueinfo.
    pub arg1: i64,
    /// For pidfd_send_signal: the pid the fd referred to when the call was made (0 if the
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
    /// `si_code` (SI_USER, SI_QUEUE, SEGV_MAPERR, ...).
    pub code: i32,
    pub errno: i32,
    /// TRACE_SIGNAL_* from include/trace/events/signal.h: 0 delivered, 1 ignored,
    /// 2 already pending, 3 overflow, 4 info lost.
    pub result: i32,
    /// Non-zero when the signal was sent to the whole thread group.
    pub group: i32,
    /// Bits from [`signal_flags`].
    pub flags: u32,
    /// siginfo's si_pid/si_uid as the kernel filled them (meaningful for SI_USER,
    /// SI_QUEUE, SIGCHLD, ...).
    pub si_pid: i32,
    pub si_uid: u32,
    /// si_value for SI_QUEUE and timers; si_addr for faults.
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
    /// CLONE_PARENT).
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

/// Where one kill-family syscall keeps its arguments in its `syscalls:sys_enter_*`
/// record, read from tracefs format files at load time. `u32::MAX` marks an argument the
/// syscall does not have.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallLayout {
    pub arg0: u32,
    pub arg1: u32,
    pub sig: u32,
    /// Offset of `ret` in the matching `sys_exit_*` record.
    pub ret: u32,
}

impl SyscallLayout {
    pub const ABSENT: u32 = u32::MAX;
}

/// All syscall layouts, indexed by `syscall::X - 1`; set as a global before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallLayouts(pub [SyscallLayout; syscall::COUNT]);

/// Settings userspace writes into the program's read-only data before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Non-zero: only signals and failed sends aimed at a process in `TARGETS` are
    /// reported. Zero: everything.
    pub filter_targets: u32,
    /// sigwho's own pid: signals it sends or receives are not reported in
    /// unfiltered mode (its own shutdown would otherwise flood the view).
    pub self_pid: u32,
    /// Ring-buffer fill level (bytes) above which a submit wakes the reader; below it,
    /// records wait for the reader's next timer tick. Zero wakes the reader on every
    /// record.
    pub wakeup_bytes: u64,
    /// Offset of `pid` in the `oom:mark_victim` record (from its tracefs format file).
    pub oom_pid_offset: u32,
    /// Non-zero: a process forked by a target becomes a target too, and leaves the
    /// filter when it exits (`sigwho run` follows a whole process tree this way).
    pub follow_children: u32,
    /// This architecture's number of each kill-family syscall, indexed by
    /// `syscall::X - 1`; -1 disables recognising that syscall. `signal_generate` compares
    /// the number the sender entered the kernel with against these to learn what was
    /// asked (the arguments are read from the same saved registers).
    pub syscall_nrs: [i32; syscall::COUNT],
    /// Non-zero: identical signals are folded into counts in the kernel ([`FoldSlot`]).
    pub fold_repeats: u32,
    /// Bits from [`features`]: what this kernel allows, as userspace probed it.
    pub features: u32,
}

/// Bits of [`Config::features`]. The programs test them against read-only data that is
/// frozen before load, so the verifier knows each bit and never walks the branch this
/// kernel cannot take (a helper it lacks, a load it refuses).
pub mod features {
    /// `bpf_get_current_task_btf()` exists (Linux 5.11).
    pub const CURRENT_TASK_BTF: u32 = 1;
    /// `bpf_task_pt_regs()` exists (5.15): requests come from the sender's saved
    /// registers. Without it the `syscalls:sys_enter_*` programs keep each kill-family
    /// call's arguments in `INFLIGHT` while it runs.
    pub const TASK_PT_REGS: u32 = 2;
    /// Plain loads through BTF-typed task pointers (tracepoint arguments, the current
    /// task) instead of `bpf_probe_read_kernel()`: cheaper on the path every signal
    /// takes, but a verifier may refuse them; userspace then loads again without.
    pub const DIRECT_LOADS: u32 = 4;
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all these are repr(C), Copy, contain only integers and byte arrays, and have
    // explicit padding, so every bit pattern is valid.
    unsafe impl aya::Pod for SyscallLayouts {}
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for FoldSlot {}
}

// Sizes are part of the kernel/userspace contract; a change must be deliberate.
const _: () = assert!(core::mem::size_of::<TaskRef>() == 48);
const _: () = assert!(core::mem::size_of::<Cause>() == 64);
const _: () = assert!(core::mem::size_of::<Ancestor>() == 32);
const _: () = assert!(core::mem::size_of::<Request>() == 32);
const _: () =
    assert!(core::mem::size_of::<SignalEvent>() == 16 + 48 + 96 + 32 + 8 + 256 + 8 + 4 * 64 + 8);
const _: () = assert!(core::mem::size_of::<FoldKey>() == 120);
const _: () = assert!(core::mem::size_of::<RepeatsEvent>() == 48);
const _: () = assert!(core::mem::size_of::<ExitEvent>() == 72);
