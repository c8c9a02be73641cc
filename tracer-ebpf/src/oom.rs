//! oom:mark_victim: names the OOM killer's SIGKILL.
//!
//! include/trace/events/oom.h, TRACE_EVENT(mark_victim): fired by mark_oom_victim()
//! right after __oom_kill_process() sent SIGKILL to the victim. The classic tracepoint
//! is used because its prototype changed in 6.8 while the record's `pid` field did not;
//! its offset comes from the format file (CONFIG.oom_pid_offset).

use core::ptr::addr_of_mut;

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use tracer_common::{OomVictimEvent, kind};

use crate::{
    maps::{config, hollow, is_target},
    record::{reserve, submit_flags, write_header},
    select::in_exec_grace,
};

#[tracepoint]
pub fn mark_victim(ctx: TracePointContext) -> u32 {
    match try_mark_victim(&ctx) {
        Ok(ret) => ret,
        Err(ret) => ret,
    }
}

fn try_mark_victim(ctx: &TracePointContext) -> Result<u32, u32> {
    // SIGWHO_DISABLE_HOOKS=programs: attached, doing nothing (maps::hollow).
    if hollow() {
        return Ok(0);
    }
    let pid_offset: u32 = config!(oom_pid_offset);
    if pid_offset == u32::MAX {
        return Ok(0);
    }
    // SAFETY: read_at() is a probe read, sound at any offset, into an i32, which any 4
    // bytes are.
    let pid: i32 = unsafe { ctx.read_at(pid_offset as usize) }.map_err(|_| 0u32)?;
    let pid = pid as u32;
    if config!(filter_targets) != 0 && !is_target(pid) && !in_exec_grace(pid, 0) {
        return Ok(0);
    }
    let Some(mut entry) = reserve::<OomVictimEvent>(kind::OOM_VICTIM) else {
        return Ok(0);
    };
    let ev = entry.as_mut_ptr();
    // SAFETY: `ev` is the record just reserved: valid and aligned for a whole
    // OomVictimEvent, and this program's alone until it is submitted; fields are written
    // through addr_of_mut!.
    unsafe {
        write_header(addr_of_mut!((*ev).header), kind::OOM_VICTIM);
        addr_of_mut!((*ev).pid).write(pid);
        addr_of_mut!((*ev)._pad).write(0);
    }
    entry.submit(submit_flags::<OomVictimEvent>());
    Ok(0)
}
