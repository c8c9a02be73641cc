//! Cause chains: the signal a sender had itself received shortly before it sent, and
//! what that one's sender had received, as the kernel recorded them at send time.

use tracer_common::{Cause, SignalEvent, TaskRef};

use super::describe::Describer;
use crate::{
    analysis::{classify::cause_origin, report::CauseReport},
    kernel::decode::c_string,
    model::{
        lineage::ProcessTable,
        signals::{si_code_name, signal_label},
    },
};

/// Default for how long a received signal counts as the cause of what its receiver
/// sends next.
pub const DEFAULT_CAUSE_WINDOW_NS: u64 = 10 * 1_000_000_000;

/// The kernel's cause links, cut where a link is older than the window before the
/// signal it would explain.
pub struct CauseChains {
    pub window_ns: u64,
}

/// A process that received a link's signal: pid, start (boot ns) and name.
type Receiver = (u32, u64, String);

impl CauseChains {
    pub fn chain(
        &self,
        table: &mut ProcessTable,
        describer: &Describer,
        ev: &SignalEvent,
    ) -> Vec<CauseReport> {
        let len = (ev.cause_len as usize).min(ev.causes.len());
        let mut effect_ns = ev.header.time_ns;
        let mut receiver = (ev.sender.pid, ev.sender.start_ns, c_string(&ev.sender.comm));
        let mut chain = Vec::new();
        for cause in &ev.causes[..len] {
            if effect_ns.saturating_sub(cause.time_ns) > self.window_ns {
                break;
            }
            chain.push(link(table, describer, cause, &receiver));
            effect_ns = cause.time_ns;
            receiver = (
                cause.sender_pid,
                cause.sender_start_ns,
                c_string(&cause.sender_comm),
            );
        }
        chain
    }
}

fn link(
    table: &mut ProcessTable,
    describer: &Describer,
    cause: &Cause,
    receiver: &Receiver,
) -> CauseReport {
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
    let sender_key = table.key(cause.sender_pid, cause.sender_start_ns);
    // Senders that exited before sigwho saw them are still named by the kernel.
    if table.get(&sender_key).is_none() {
        table.observe(&sender_task);
    }
    let receiver_key = table.key(receiver.0, receiver.1);
    CauseReport {
        signal: signal_label(cause.sig),
        signo: cause.sig,
        time: describer.time(cause.time_ns),
        origin: cause_origin(cause),
        code: si_code_name(cause.sig, cause.code),
        sender: describer.process(table, &sender_key, &sender_task),
        target: describer.brief(table, &receiver_key, &receiver.2),
    }
}
