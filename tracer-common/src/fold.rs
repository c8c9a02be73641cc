//! The recorder's folding of identical signals: the per-CPU slots the kernel counts
//! repeats in and userspace reads, and the record that carries a count.

use crate::{EventHeader, Request};

/// How long the kernel folds identical signals into one record before it sends a fresh
/// pair of full records (so that lineage, hints and escalation are never older than
/// this in a storm), in nanoseconds.
pub const FOLD_WINDOW_NS: u64 = 100_000_000;
/// Fold slots per CPU ([`FoldSlot`]); a power of two, at most 4 (fold ids keep 2 bits
/// for the slot).
pub const FOLD_WAYS: u32 = 4;

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
    /// a marker for `SEND_SIG_NOINFO`/`SEND_SIG_PRIV` and zeros.
    pub siginfo: [u64; 4],
    pub request: Request,
    pub cause_ns: u64,
    pub generation: u64,
}

/// The recorder's in-kernel folding of identical signals: [`FOLD_WAYS`] slots per CPU,
/// each signal going to one by its sender and target thread. After two identical
/// signals in a row in one slot (within [`FOLD_WINDOW_NS`]), further ones only count
/// here, against the second's record (`row`, its [`crate::SignalEvent::fold_id`]), until a
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

#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, made only of integers (FoldKey's and Request's included)
// whose padding is spelled out as fields: no byte is uninitialised and every bit
// pattern is a valid FoldSlot. The size assertion below fails if padding appears.
unsafe impl aya::Pod for FoldSlot {}
const _: () = assert!(size_of::<FoldSlot>() == 7 * 8 + size_of::<FoldKey>() + 2 * 8);
