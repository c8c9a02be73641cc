// CO-RE accessors for the kernel structures sigwho's eBPF programs read.
//
// rustc does not emit CO-RE relocations, so field reads of kernel structs live here:
// clang compiles this file with `preserve_access_index`, bpf-linker keeps the relocations
// in .BTF.ext, and aya rewrites every offset against the running kernel's BTF
// (/sys/kernel/btf/vmlinux) at load time. The struct declarations below list only the
// fields used; names must match the kernel's, layouts need not.
//
// Every function takes and returns plain integers (pointers travel as u64). bpf-linker
// keeps them as static subprograms, which the verifier checks in their caller's context
// (a BTF-typed pointer stays typed through the call).
//
// How each reads (the audit kernels keep reopening: 6.13 retyped signal_generate's
// siginfo argument as "maybe not a pointer", and a direct load through it was refused):
// - sw_task_*, sw_bprm_filename, sw_pidfd_pid, sw_task_cgroup_names, sw_task_ns_pid and
//   sw_siginfo_words read through bpf_probe_read_kernel() (BPF_CORE_READ), which any
//   verifier accepts whatever it makes of the pointer;
// - sw_btf_* and sw_current_syscall's `direct` branch load directly through BTF-typed
//   pointers; callers use them only under features::DIRECT_LOADS, which userspace clears
//   (loading again) when a verifier refuses them. They are proven on every kernel of
//   `cargo xtask vmtest` (Debian 5.10, 6.1, 6.12, 7.x and the host's 6.18), whose
//   conformance suite requires `direct_loads: used` and also runs the fallback.

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	unsigned int val;
} kuid_t;

// include/linux/cred.h
struct cred {
	kuid_t uid;
} __attribute__((preserve_access_index));

// include/linux/sched/signal.h: `live` counts the threads still running; do_exit()
// decrements it before trace_sched_process_exit, so 0 there means the process is gone.
// `flags` holds SIGNAL_GROUP_EXIT, SIGNAL_UNKILLABLE (see sw_task_signal_state).
struct signal_struct {
	atomic_t live;
	unsigned int flags;
} __attribute__((preserve_access_index));

// include/linux/signal_types.h: the handlers, one k_sigaction per signal (signal N at
// action[N - 1]).
struct sigaction {
	void *sa_handler;
} __attribute__((preserve_access_index));

struct k_sigaction {
	struct sigaction sa;
} __attribute__((preserve_access_index));

struct sighand_struct {
	struct k_sigaction action[64];
} __attribute__((preserve_access_index));

// include/linux/mm_types.h
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

// include/linux/pid.h
struct upid {
	int nr;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));

// include/linux/fs.h, include/linux/fdtable.h
struct inode {
	void *i_private;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

// include/linux/binfmts.h
struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

// include/linux/kernfs.h: a cgroup's directory. 6.15 renamed `parent` to `__parent`
// (RCU-protected); the flavours below let CO-RE pick whichever the kernel has.
struct kernfs_node {
	const char *name;
} __attribute__((preserve_access_index));

struct kernfs_node___parent {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

struct kernfs_node___rcu_parent {
	struct kernfs_node *__parent;
} __attribute__((preserve_access_index));

// include/linux/cgroup-defs.h: the task's cgroups, `dfl_cgrp` its unified (v2) one.
struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

// include/linux/sched.h
struct task_struct {
	unsigned int flags;
	struct pid *thread_pid;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	__u64 start_boottime;
	__u64 self_exec_id;
	char comm[16];
	const struct cred *real_cred;
	int exit_code;
	struct signal_struct *signal;
	struct sighand_struct *sighand;
	struct mm_struct *mm;
	struct files_struct *files;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

#define TASK(t) ((struct task_struct *)(unsigned long)(t))

// The registers a task entered the kernel with (arch/*/include/asm/ptrace.h). Syscall
// arguments are read from them by ABI position; the syscall wrappers
// (__<arch>_sys_<name>, arch/*/include/asm/syscall_wrapper.h) receive the same struct.
// Only the fields used are declared; CO-RE finds them in the running kernel.
#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));
#define SW_SYSCALL_REGS 1
#elif defined(__TARGET_ARCH_arm64)
// arm64 keeps the first argument in orig_x0 (x0 is overwritten by the return value).
struct pt_regs {
	__u64 regs[31];
	__u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));
#define SW_SYSCALL_REGS 1
#endif

#ifdef SW_SYSCALL_REGS
static __always_inline long sw_regs_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return (long)regs->orig_ax;
#else
	return regs->syscallno;
#endif
}

static __always_inline __s64 sw_regs_arg(struct pt_regs *regs, __u32 n)
{
#if defined(__TARGET_ARCH_x86)
	switch (n) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	default: return regs->r10;
	}
#else
	switch (n) {
	case 0: return regs->orig_x0;
	case 1: return regs->regs[1];
	case 2: return regs->regs[2];
	default: return regs->regs[3];
	}
#endif
}
#endif

// Stores `v` into out[0..n) a word at a time. Four or more adjacent stores of one value
// become a memset() call in clang's BPF output, and the memset linked in (aya-ebpf's)
// stores a byte at a time, five instructions per byte (tracer-ebpf/src/zero.rs);
// volatile stores stay stores.
static __always_inline void sw_fill_words(__s64 *out, int n, __s64 v)
{
	volatile __s64 *o = out;
	for (int i = 0; i < n; i++)
		o[i] = v;
}

#ifdef SW_SYSCALL_REGS
// The number and arguments 0-3 of the syscall in `regs` into out[0..5].
static __always_inline void sw_regs_direct(__s64 *out, struct pt_regs *regs)
{
	out[0] = sw_regs_nr(regs);
	out[1] = sw_regs_arg(regs, 0);
	out[2] = sw_regs_arg(regs, 1);
	out[3] = sw_regs_arg(regs, 2);
	out[4] = sw_regs_arg(regs, 3);
}
#endif

// What out[0..5] says when the current task is in no syscall: number -1, no arguments.
static __always_inline void sw_no_syscall(__s64 *out)
{
	sw_fill_words(out, 5, 0);
	out[0] = -1;
}

// The number and arguments 0-3 of the syscall the current task is in, with one
// bpf_task_pt_regs() call: out[0] = number (-1 when it is in none: an exception or
// interrupt made the signal, or this architecture is not supported), out[1..4] =
// arguments. bpf_task_pt_regs() needs Linux 5.15 (callers check features::TASK_PT_REGS).
// Every word of `out` is written once on every path.
//
// With `direct` (features::DIRECT_LOADS, a constant the verifier sees) the registers
// are read by plain loads through the pointer bpf_task_pt_regs() returns, which the
// verifier types as struct pt_regs and the JIT guards: signal_generate runs for every
// signal on the machine. Without it, by one bpf_probe_read_kernel() per register.
__attribute__((noinline)) void sw_current_syscall(__s64 *out, __u32 direct)
{
#ifdef SW_SYSCALL_REGS
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (regs) {
		if (direct) {
			sw_regs_direct(out, regs);
			return;
		}
#if defined(__TARGET_ARCH_x86)
		out[0] = (long)BPF_CORE_READ(regs, orig_ax);
		out[1] = BPF_CORE_READ(regs, di);
		out[2] = BPF_CORE_READ(regs, si);
		out[3] = BPF_CORE_READ(regs, dx);
		out[4] = BPF_CORE_READ(regs, r10);
#else
		out[0] = BPF_CORE_READ(regs, syscallno);
		out[1] = BPF_CORE_READ(regs, orig_x0);
		out[2] = BPF_CORE_READ(regs, regs[1]);
		out[3] = BPF_CORE_READ(regs, regs[2]);
		out[4] = BPF_CORE_READ(regs, regs[3]);
#endif
		return;
	}
#endif
	sw_no_syscall(out);
}

// sw_current_syscall() under features::DIRECT_LOADS for a caller that holds the current
// task as bpf_get_current_task_btf() returned it (`t`, BTF-typed): the same words, one
// helper call less on the path of every signal.
__attribute__((always_inline)) void sw_btf_current_syscall(__s64 *out, __u64 t)
{
#ifdef SW_SYSCALL_REGS
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(TASK(t));
	if (regs) {
		sw_regs_direct(out, regs);
		return;
	}
#endif
	sw_no_syscall(out);
}

// The sw_btf_* functions below load directly through a pointer the verifier knows to be
// a task_struct (a BTF tracepoint's argument, or bpf_get_current_task_btf()): plain
// loads, checked against the kernel's BTF at load time and guarded by the JIT's
// exception table, instead of bpf_probe_read_kernel() calls. They are on the path
// every signal on the machine takes, so the difference counts. Callers use them only
// under features::DIRECT_LOADS, which userspace clears (and loads again) when a
// verifier refuses them; proven on every kernel of `cargo xtask vmtest`.
__attribute__((always_inline)) __u32 sw_btf_task_tgid(__u64 t)
{
	return TASK(t)->tgid;
}

// For BTF-typed (trusted) task pointers only: plain loads, no helper call, which
// matters on the path every signal of a storm takes (the recorder's fold key).
__attribute__((always_inline)) __u32 sw_btf_task_tid(__u64 t)
{
	return TASK(t)->pid;
}

__attribute__((always_inline)) __u64 sw_btf_task_process_start(__u64 t)
{
	return TASK(t)->group_leader->start_boottime;
}

// Counts the thread's execs (begin_new_exec(), fs/exec.c); u64 since Linux 5.7.
__attribute__((always_inline)) __u64 sw_btf_task_exec_id(__u64 t)
{
	return TASK(t)->self_exec_id;
}

// The first 32 bytes of signal_generate's siginfo, as four words. siginfo's layout is
// user ABI (include/uapi/asm-generic/siginfo.h: si_signo, si_errno, si_code, then the
// union at 16 on 64-bit), so the words are read as they lie.
//
// Read through bpf_probe_read_kernel(), never by a direct load: the tracepoint's
// `struct kernel_siginfo *info` may be SEND_SIG_NOINFO (0) or SEND_SIG_PRIV (1), and
// since 6.13 (kernel/bpf/btf.c, raw_tp_null_args: signal_generate arg1 "may encode an
// error") the verifier types it as a scalar and refuses any load through it; older
// verifiers accept the load but differ in what they allow across the union's members.
// Callers pass only real pointers (info > 1).
__attribute__((always_inline)) void sw_siginfo_words(__u64 info, __u64 *out)
{
	if (bpf_probe_read_kernel(out, 4 * sizeof(__u64), (const void *)(unsigned long)info))
		sw_fill_words((__s64 *)out, 4, 0);
}

// Adds `v` to the u64 at `p` (a map value) atomically: a thread's storm key can be
// counted from two CPUs at once (tracer-ebpf/src/storm.rs). The result is unused, so
// clang emits BPF_XADD (BPF_ATOMIC_OP ADD without BPF_FETCH), which every kernel of the
// matrix has (the fetching forms need 5.12).
__attribute__((always_inline)) void sw_atomic_add(__u64 *p, __u64 v)
{
	__sync_fetch_and_add(p, v);
}

// What signal_generate's `info` is: SEND_SIG_NOINFO (0) -> 10, SEND_SIG_PRIV (1) -> 11,
// a real siginfo -> 12. Until 6.13 the verifier types `info` as a pointer, and in code
// that compares it with 0 LLVM may reuse the register holding it wherever the constant
// 0 is wanted (the fold key's zeros): the verifier then sees a pointer where a number
// should be and refuses the shift that follows. Comparing here, in a function of its
// own, and answering with numbers that `info` can never equal, keeps what LLVM knows
// about `info` out of the caller.
__attribute__((always_inline)) __u32 sw_siginfo_kind(__u64 info)
{
	if (info == 0)
		return 10;
	if (info == 1)
		return 11;
	return 12;
}

static __always_inline struct kernfs_node *sw_kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(((struct kernfs_node___rcu_parent *)kn)->__parent))
		return BPF_CORE_READ((struct kernfs_node___rcu_parent *)kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___parent *)kn, parent);
}

#define SW_CGROUP_LEVELS 4
#define SW_CGROUP_NAME_LEN 128

// The last SW_CGROUP_LEVELS components of the task's unified-hierarchy cgroup path,
// leaf first, SW_CGROUP_NAME_LEN bytes each, into `dst_addr`. Read at exec, where
// /proc/PID/cgroup may be gone by the time userspace looks (a container's process
// killed at once). Returns how many components were written, plus 0x100 when the path
// goes on above them. 0 for the root cgroup (and on cgroup v1-only machines).
__attribute__((noinline)) __u32 sw_task_cgroup_names(__u64 t, __u64 dst_addr)
{
	char *dst = (char *)(unsigned long)dst_addr;
	struct kernfs_node *kn = BPF_CORE_READ(TASK(t), cgroups, dfl_cgrp, kn);
	__u32 written = 0;
#pragma unroll
	for (int level = 0; level < SW_CGROUP_LEVELS; level++) {
		if (!kn)
			return written;
		struct kernfs_node *parent = sw_kn_parent(kn);
		// The root's name is not a path component.
		if (!parent)
			return written;
		const char *name = BPF_CORE_READ(kn, name);
		char *slot = dst + level * SW_CGROUP_NAME_LEN;
		if (bpf_probe_read_kernel_str(slot, SW_CGROUP_NAME_LEN, name) < 0)
			slot[0] = 0;
		written++;
		kn = parent;
	}
	if (kn && sw_kn_parent(kn))
		written |= 0x100;
	return written;
}

__attribute__((noinline)) __u32 sw_task_tgid(__u64 t)
{
	return BPF_CORE_READ(TASK(t), tgid);
}

__attribute__((noinline)) __u32 sw_task_tid(__u64 t)
{
	return BPF_CORE_READ(TASK(t), pid);
}

__attribute__((noinline)) __u64 sw_task_real_parent(__u64 t)
{
	return (__u64)(unsigned long)BPF_CORE_READ(TASK(t), real_parent);
}

// A process's identity is its leader's start: the same for all its threads.
__attribute__((noinline)) __u64 sw_task_process_start(__u64 t)
{
	return BPF_CORE_READ(TASK(t), group_leader, start_boottime);
}

__attribute__((noinline)) __u64 sw_task_exec_id(__u64 t)
{
	return BPF_CORE_READ(TASK(t), self_exec_id);
}

__attribute__((noinline)) __u32 sw_task_uid(__u64 t)
{
	return BPF_CORE_READ(TASK(t), real_cred, uid.val);
}

__attribute__((noinline)) __u32 sw_task_comm_offset(void)
{
	return bpf_core_field_offset(struct task_struct, comm);
}

__attribute__((noinline)) __u32 sw_task_exit_code(__u64 t)
{
	return BPF_CORE_READ(TASK(t), exit_code);
}

__attribute__((noinline)) __s32 sw_task_live_threads(__u64 t)
{
	return BPF_CORE_READ(TASK(t), signal, live.counter);
}

__attribute__((noinline)) __u64 sw_task_arg_start(__u64 t)
{
	return BPF_CORE_READ(TASK(t), mm, arg_start);
}

__attribute__((noinline)) __u64 sw_task_arg_end(__u64 t)
{
	return BPF_CORE_READ(TASK(t), mm, arg_end);
}

__attribute__((noinline)) __u64 sw_bprm_filename(__u64 bprm)
{
	return (__u64)(unsigned long)BPF_CORE_READ((struct linux_binprm *)(unsigned long)bprm, filename);
}

// The pid (in the initial pid namespace) that file descriptor `fd` of task `t` refers
// to, if it is a pidfd. Since 6.9 pidfds live on pidfs, which keeps the struct pid in
// the inode's i_private (fs/pidfs.c, pidfd_pid()); before that the file's private_data
// held it (kernel/pid.c) and the shared anonymous inode's i_private is NULL. Callers
// only trust the answer when pidfd_send_signal accepted the fd.
__attribute__((noinline)) __s32 sw_pidfd_pid(__u64 t, __s32 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(TASK(t), files, fdt);
	struct file **fds;
	struct file *file = 0;
	struct pid *pid;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	pid = BPF_CORE_READ(file, f_inode, i_private);
	if (!pid)
		pid = BPF_CORE_READ(file, private_data);
	if (!pid)
		return 0;
	return BPF_CORE_READ(pid, numbers[0].nr);
}

// PF_EXITING (include/linux/sched.h) has been 0x4 since 2.6; the flags word is read
// through CO-RE.
#define SW_PF_EXITING 0x00000004

// tracer-common's TaskRef (tracer-common/src/events.rs), field for field.
struct sw_task_ref {
	__u32 pid;
	__u32 tid;
	__u64 start_ns;
	__u32 uid;
	__u32 ppid;
	char comm[16];
	__u32 ns_pid;
	__u32 flags;
};

__u32 sw_task_ns_pid(__u64 t);

// Fills `dst` (a TaskRef) for a task the verifier knows as a task_struct: a BTF
// tracepoint's argument or bpf_get_current_task_btf(). Plain loads, each checked
// against the kernel's BTF at load time and guarded by the JIT's exception table (a
// NULL real_parent reads as 0), instead of one bpf_probe_read_kernel() per field:
// this runs twice for every reported signal.
__attribute__((noinline)) void sw_btf_fill_task(__u64 dst_addr, __u64 t)
{
	struct sw_task_ref *dst = (struct sw_task_ref *)(unsigned long)dst_addr;
	struct task_struct *task = TASK(t);

	dst->pid = task->tgid;
	dst->tid = task->pid;
	dst->start_ns = task->group_leader->start_boottime;
	dst->uid = task->real_cred->uid.val;
	dst->ppid = task->real_parent->tgid;
	__builtin_memcpy(dst->comm, task->comm, sizeof(dst->comm));
	dst->comm[sizeof(dst->comm) - 1] = 0;
	dst->ns_pid = sw_task_ns_pid(t);
	dst->flags = (task->flags & SW_PF_EXITING) ? 1 : 0;
}

__attribute__((noinline)) __u32 sw_task_exiting(__u64 t)
{
	return (BPF_CORE_READ(TASK(t), flags) & SW_PF_EXITING) ? 1 : 0;
}

// include/linux/sched/signal.h: SIGNAL_GROUP_EXIT has been 0x4 since 3.x; 0x8 was
// SIGNAL_GROUP_COREDUMP until 5.18 (prepare_signal() dropped signals on either) and is
// unused since. SIGNAL_UNKILLABLE is 0x40 throughout.
#define SW_SIGNAL_GROUP_EXIT 0x0000000c
#define SW_SIGNAL_UNKILLABLE 0x00000040

// Why the kernel ignored signal `sig` aimed at task `t` (signal_generate's result
// TRACE_SIGNAL_IGNORED): tracer-common's task_flags GROUP_EXITING (2), UNKILLABLE (4),
// HANDLER_IGNORE (8), HANDLER_DEFAULT (16). kernel/signal.c, prepare_signal(): a
// process in group exit drops everything; else sig_ignored() -> sig_task_ignored():
// an unkillable (pid-namespace init) process drops signals whose handler is SIG_DFL,
// and sig_handler_ignored() drops SIG_IGN and default-ignored signals. Probe reads: the
// handler sits at an offset computed from the running kernel's BTF.
__attribute__((noinline)) __u32 sw_task_signal_state(__u64 t, __s32 sig)
{
	unsigned int flags = BPF_CORE_READ(TASK(t), signal, flags);
	struct sighand_struct *sighand = BPF_CORE_READ(TASK(t), sighand);
	__u32 out = 0;
	void *handler = (void *)2;
	char *slot;

	if (flags & SW_SIGNAL_GROUP_EXIT)
		out |= 2;
	if (flags & SW_SIGNAL_UNKILLABLE)
		out |= 4;
	if (!sighand || sig < 1 || sig > 64)
		return out;
	slot = (char *)sighand + bpf_core_field_offset(struct sighand_struct, action) +
	       (sig - 1) * bpf_core_type_size(struct k_sigaction) +
	       bpf_core_field_offset(struct k_sigaction, sa) +
	       bpf_core_field_offset(struct sigaction, sa_handler);
	if (bpf_probe_read_kernel(&handler, sizeof(handler), slot))
		return out;
	if (handler == (void *)1)
		out |= 8;
	else if (handler == 0)
		out |= 16;
	return out;
}

// The process's id in its own pid namespace: numbers[level] of the leader's struct pid
// (include/linux/pid.h; level 0 is the initial namespace).
__attribute__((noinline)) __u32 sw_task_ns_pid(__u64 t)
{
	struct pid *pid = BPF_CORE_READ(TASK(t), group_leader, thread_pid);
	unsigned int level;
	int nr = 0;
	char *slot;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	if (level > 32)
		return 0;
	slot = (char *)pid + bpf_core_field_offset(struct pid, numbers) +
	       level * bpf_core_type_size(struct upid) + bpf_core_field_offset(struct upid, nr);
	if (bpf_probe_read_kernel(&nr, sizeof(nr), slot))
		return 0;
	return nr;
}
