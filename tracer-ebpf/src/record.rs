//! Ring-buffer records: room for one, its header, and when its submit wakes the reader.
//! Wake the reader only when enough has piled up; a lone record waits for the reader's
//! next timer tick instead of costing a wakeup (and a context switch) per signal.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::{bpf_get_smp_processor_id, bpf_ktime_get_boot_ns},
    maps::ring_buf::RingBufEntry,
};
use tracer_common::{EventHeader, RING_BYTES};

use crate::maps::{DROPPED, EVENTS, config, logging};

pub(crate) fn count_drop(record_kind: u32) {
    if logging() {
        crate::log::record_dropped(record_kind);
    }
    if let Some(counter) = DROPPED.get_ptr_mut(record_kind) {
        // SAFETY: this CPU's counter, valid and aligned for the program's run, and only
        // programs on this CPU write it. Where a kernel lets a program be preempted
        // (trampolines only disable migration) another one's increment may interleave
        // and be lost: a count off by one, never an access outside the counter.
        unsafe { *counter += 1 };
    }
}

/// Room for a record of `T`, or None with the drop counted. A full ring is noticed
/// from its positions, without the ring's lock: in a flood most records are drops, and
/// taking a lock that every CPU wants only to learn that would cost the senders more.
#[inline(always)]
pub(crate) fn reserve<T>(record_kind: u32) -> Option<RingBufEntry<T>> {
    let entry = reserve_or_none::<T>();
    if entry.is_none() {
        count_drop(record_kind);
    }
    entry
}

/// [`reserve`] for a record whose contents are kept elsewhere when it does not fit.
#[inline(always)]
pub(crate) fn reserve_or_none<T>() -> Option<RingBufEntry<T>> {
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    if unread + record_bytes::<T>() > u64::from(RING_BYTES) {
        return None;
    }
    EVENTS.reserve::<T>(0)
}

/// Wake the reader only when the unread data crosses the fill level (or half the
/// ring), not on every record above it: a wakeup costs the sender far more than the
/// record itself, and during a flood every record is above the level while the reader
/// is already busy. A crossing two CPUs jump over together is caught by the reader's
/// own timer tick.
#[inline(always)]
pub(crate) fn submit_flags<T>() -> u64 {
    let wakeup_bytes: u64 = config!(wakeup_bytes);
    if wakeup_bytes == 0 {
        return 0;
    }
    let unread = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    // This record is already counted in `unread` (it is reserved).
    let band = 2 * record_bytes::<T>();
    let crossed = |level: u64| unread >= level && unread < level + band;
    if crossed(wakeup_bytes) || crossed(u64::from(RING_BYTES) / 2) {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}

/// Ring space a record of `T` takes: an 8-byte header, rounded up to 8.
#[inline(always)]
fn record_bytes<T>() -> u64 {
    (size_of::<T>() as u64 + 8 + 7) & !7
}

/// Safety: `header` is valid and aligned for writing an EventHeader (a reserved
/// record's).
#[inline(always)]
pub(crate) unsafe fn write_header(header: *mut EventHeader, record_kind: u32) {
    // SAFETY: `header` is writable (this function's contract); the helpers take no
    // arguments.
    unsafe {
        header.write(EventHeader {
            kind: record_kind,
            cpu: bpf_get_smp_processor_id(),
            time_ns: bpf_ktime_get_boot_ns(),
        });
    }
}
