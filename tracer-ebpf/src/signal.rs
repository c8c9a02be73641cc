//! signal:signal_generate: every signal, with its sender, target, request and causes.
//!
//! include/trace/events/signal.h, TRACE_EVENT(signal_generate,
//!   TP_PROTO(int sig, struct kernel_siginfo *info, struct task_struct *task,
//!            int group, int result))
//! Called from __send_signal_locked() (kernel/signal.c) for every signal the kernel
//! generates: kill-family syscalls, faults, SIGPIPE, timers, SIGCHLD, OOM kills,
//! pdeath_signal, tty signals.

use core::ptr::addr_of_mut;

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{FoldKey, SignalEvent, kind, signal_flags};

use crate::{
    cause::{is_meaningful, remember_received, write_causes},
    floor,
    maps::{config, count_only, hollow, is_target, logging},
    record::{reserve, submit_flags, write_header},
    request::current_request,
    select::{in_exec_grace, signal_selected},
    siginfo::{
        SI_ADDR, SI_CODE, SI_ERRNO, SI_KERNEL, SI_PID, SI_UID, SI_USER, SI_VALUE, SIGINFO_NONE,
        SIGINFO_PRIV, is_fault, siginfo_field, siginfo_kind, siginfo_words,
    },
    storm::{count_signal_repeat, fill_signal_key, new_signal_row},
    task::{
        btf_task_tgid, current_pid_tgid, current_task, current_task_btf, sw_btf_fill_task,
        sw_task_signal_state, write_btf_task, write_sender_ancestry, write_task,
    },
};

/// `TRACE_SIGNAL_IGNORED` (include/trace/events/signal.h).
const TRACE_SIGNAL_IGNORED: i32 = 1;

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> u32 {
    // SAFETY: `ctx` is signal_generate's own, as try_signal_generate() needs.
    match unsafe { try_signal_generate(&ctx) } {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

/// Safety: `ctx` is signal_generate's, so that its argument 2 is the BTF-typed target
/// task (the verifier types it from the tracepoint's prototype).
unsafe fn try_signal_generate(ctx: &BtfTracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow); or
    // count-only: counting, nothing more (floor.rs).
    if hollow() {
        if count_only() {
            // SAFETY: argument 2 is the tracepoint's BTF-typed task (as below).
            unsafe { floor::count(ctx.arg(0), ctx.arg(1), ctx.arg(2), ctx.arg(4)) };
        }
        return Ok(0);
    }
    let sig: i32 = ctx.arg(0);
    let info: u64 = ctx.arg(1);
    let target_task: u64 = ctx.arg(2);
    let group: i32 = ctx.arg(3);
    let result: i32 = ctx.arg(4);
    let filter_targets: u32 = config!(filter_targets);

    // SAFETY: `target_task` is the tracepoint's `struct task_struct *task`, BTF-typed
    // (this function's contract).
    let target_pid = unsafe { btf_task_tgid(target_task) };
    // A process that exec'd a moment ago may be one userspace is about to add (select.rs).
    let wanted =
        (filter_targets == 0 || is_target(target_pid) || in_exec_grace(target_pid, target_task))
            && signal_selected(sig);
    let meaningful = is_meaningful(sig, result);
    // Storms of signals that are ignored, or aimed elsewhere, stop here.
    if !wanted && !meaningful {
        return Ok(0);
    }
    // The sender BTF-typed where the kernel allows it: one helper call for what the
    // rest needs of the current task (its ids, identity and saved registers); the
    // untyped address is fetched only where there is none, or for a full record.
    let sender_btf = current_task_btf();
    // SAFETY: `sender_btf` came from current_task_btf().
    let pid_tgid = unsafe { current_pid_tgid(sender_btf) };
    let sender_pid = (pid_tgid >> 32) as u32;
    if meaningful && sender_pid != target_pid {
        remember_received(sig, info, target_task, target_pid, pid_tgid);
    }
    if !wanted {
        return Ok(0);
    }
    let self_pid = config!(self_pid);
    if filter_targets == 0 && (target_pid == self_pid || sender_pid == self_pid) {
        if logging() {
            crate::log::own_signal(sig, target_pid);
        }
        return Ok(0);
    }

    // SAFETY: `sender_btf` came from current_task_btf().
    let request = unsafe { current_request(sig, sender_btf, target_task, target_pid) };
    // The recorder and the views aggregate storms in the kernel (storm.rs).
    let aggregate = config!(fold_repeats) != 0;
    // Written whole by fill_signal_key() where it is used: not zeroed first (sixteen
    // stores more on the path of every signal).
    let mut slot = core::mem::MaybeUninit::<FoldKey>::uninit();
    let key: Option<&FoldKey> = if aggregate {
        // SAFETY: `slot` is a live local, valid for writing a FoldKey, which
        // fill_signal_key() writes whole; `target_task` is BTF-typed (as above),
        // `sender_btf` came from current_task_btf().
        let key = unsafe {
            fill_signal_key(
                slot.as_mut_ptr(),
                (sig, info, group, result),
                target_task,
                (sender_btf, pid_tgid),
                &request,
            );
            slot.assume_init_ref()
        };
        if count_signal_repeat(key) {
            return Ok(0);
        }
        Some(key)
    } else {
        None
    };

    let Some(mut entry) = reserve::<SignalEvent>(kind::SIGNAL) else {
        return Ok(0);
    };
    // The key's entry before the record: a record in the ring is sure to be submitted,
    // and its repeats name it.
    let fold_id = key.map_or(0, new_signal_row);
    let info_kind = siginfo_kind(info);
    let sender_task = current_task();
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole
    // SignalEvent, and this program's alone until it is submitted. Fields are written
    // through addr_of_mut!; the one read, `sender.start_ns`, after both ways of filling
    // `sender` wrote it. The helpers get fields of it to fill: sw_btf_fill_task() a
    // TaskRef and `sender_btf`, non-zero only as current_task_btf() returned it (BTF-typed,
    // under DIRECT_LOADS); write_btf_task() the tracepoint's BTF-typed task; the rest
    // read tasks through probe reads.
    unsafe {
        addr_of_mut!((*ev).fold_id).write(fold_id);
        write_header(addr_of_mut!((*ev).header), kind::SIGNAL);
        addr_of_mut!((*ev).sig).write(sig);
        addr_of_mut!((*ev).group).write(group);
        addr_of_mut!((*ev).result).write(result);
        addr_of_mut!((*ev)._pad).write(0);

        let mut flags = 0u32;
        if info_kind == SIGINFO_NONE || info_kind == SIGINFO_PRIV {
            flags |= signal_flags::NO_SIGINFO;
            addr_of_mut!((*ev).code).write(if info_kind == SIGINFO_NONE {
                SI_USER
            } else {
                SI_KERNEL
            });
            addr_of_mut!((*ev).errno).write(0);
            addr_of_mut!((*ev).si_pid).write(0);
            addr_of_mut!((*ev).si_uid).write(0);
            addr_of_mut!((*ev).si_value).write(0);
            addr_of_mut!((*ev).si_addr).write(0);
        } else {
            let words = match key {
                Some(key) => key.siginfo,
                None => siginfo_words(info),
            };
            let at = |offset: u64| siginfo_field(&words, offset);
            addr_of_mut!((*ev).code).write(at(SI_CODE) as i32);
            addr_of_mut!((*ev).errno).write(at(SI_ERRNO) as i32);
            addr_of_mut!((*ev).si_pid).write(at(SI_PID) as i32);
            addr_of_mut!((*ev).si_uid).write(at(SI_UID));
            addr_of_mut!((*ev).si_value).write(words[(SI_VALUE / 8) as usize]);
            let addr = if is_fault(sig) {
                words[(SI_ADDR / 8) as usize]
            } else {
                0
            };
            addr_of_mut!((*ev).si_addr).write(addr);
        }

        if sender_btf != 0 {
            sw_btf_fill_task(addr_of_mut!((*ev).sender) as u64, sender_btf);
        } else {
            write_task(addr_of_mut!((*ev).sender), sender_task);
        }
        write_btf_task(addr_of_mut!((*ev).target), target_task);
        // An ignored signal says why it was dropped (tracer-common's task_flags):
        // kernel/signal.c, prepare_signal() and sig_task_ignored().
        if result == TRACE_SIGNAL_IGNORED {
            let flags = (*ev).target.flags | sw_task_signal_state(target_task, sig);
            addr_of_mut!((*ev).target.flags).write(flags);
        }

        addr_of_mut!((*ev).request).write(request);

        let sender_start = (*ev).sender.start_ns;
        let (len, cached) = write_sender_ancestry(
            addr_of_mut!((*ev).sender_ancestry),
            sender_task,
            sender_pid,
            sender_start,
        );
        if cached {
            flags |= signal_flags::ANCESTRY_CACHED;
        }
        addr_of_mut!((*ev).ancestry_len).write(len);
        addr_of_mut!((*ev).flags).write(flags);
        addr_of_mut!((*ev)._pad2).write(0);
        let causes = write_causes(
            addr_of_mut!((*ev).causes),
            sender_pid,
            sender_start,
            target_pid,
        );
        addr_of_mut!((*ev).cause_len).write(causes);
    }
    entry.submit(submit_flags::<SignalEvent>());
    Ok(0)
}
