//! In-kernel aggregation of storms: the hash map the kernel counts repeated signals and
//! failed attempts in, keyed by everything their reports show, and what userspace reads
//! back from it.

use crate::{EventHeader, Request};

/// Entries of the `FOLDS` hash map: distinct (sender, target, signal, outcome) keys
/// counted at once. When it is full, new keys are sent as full records every time
/// (exact, only not aggregated) and counted in `FOLD_STATS`.
pub const FOLD_ENTRIES: u32 = 8192;
/// Userspace removes a key this long after its last signal (its count read first), so
/// that the map holds what is storming now; a later identical signal is sent in full
/// again and starts a new count.
pub const FOLD_IDLE_NS: u64 = 2_000_000_000;

/// What a [`FoldKey`] counts.
pub mod fold_kind {
    /// A generated signal (`signal:signal_generate`).
    pub const SIGNAL: u32 = 1;
    /// A kill-family call the kernel refused (see `crate::FailedSendEvent`).
    pub const FAILED: u32 = 2;
}

/// Slots of `FOLD_STATS` (per CPU).
pub mod fold_stats {
    /// Signals sent as full records because `FOLDS` was full.
    pub const FULL_SIGNALS: u32 = 0;
    /// Failed attempts sent as full records because `FOLDS` was full.
    pub const FULL_FAILED: u32 = 1;
    pub const COUNT: u32 = 2;
}

/// Everything in a signal's (or failed attempt's) report that can differ between two of
/// them from the same sender thread, but for the time: two signals with equal keys make
/// the same report. Identities are (thread id, process start time) and the exec count
/// of each thread (`task_struct.self_exec_id`), so that an exec of the sender or the
/// target starts a new key (its command line changed), while an exec or exit anywhere
/// else on the machine changes nothing. `cause_ns` is when the sender last received a
/// meaningful signal (its cause chain), 0 when not known.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldKey {
    /// [`fold_kind`].
    pub kind: u32,
    pub sender_tid: u32,
    pub target_tid: u32,
    pub sig: i32,
    pub sender_start_ns: u64,
    pub target_start_ns: u64,
    pub sender_exec_id: u64,
    pub target_exec_id: u64,
    /// `TRACE_SIGNAL_*`, or for a failed attempt the negative errno.
    pub result: i32,
    pub group: i32,
    /// The siginfo's first 32 bytes (code, errno, pid, uid, value or fault address), or
    /// a marker for `SEND_SIG_NOINFO`/`SEND_SIG_PRIV` and zeros.
    pub siginfo: [u64; 4],
    pub request: Request,
    pub cause_ns: u64,
}

/// A key's count in `FOLDS`. The first signal of a key goes to the ring in full, with
/// `row` as its `fold_id`; later ones only add to `count` (atomically: a sender thread
/// runs on one CPU at a time, but the map is shared). `count` only grows while the
/// entry lives, so a reader that remembers what it reported per row reports each
/// signal once however often it reads. `first_ns` is the first repeat's time (0 until
/// there is one), `last_ns` the latest's (the full record's until then).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldSlot {
    /// Repeats after the full record.
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Fold id of the full record (CPU in the top 16 bits, that CPU's sequence below).
    pub row: u64,
}

/// Per-CPU scratch of the aggregation: fold id sequence and a clock cache.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldCpu {
    /// Last fold id sequence handed out on this CPU.
    pub seq: u64,
    /// The boot clock as read at jiffy `clock_jiffies`: repeats in the same jiffy reuse
    /// it (so their times are early by up to a jiffy).
    pub clock_jiffies: u64,
    pub clock_ns: u64,
    /// Non-zero while a run on this CPU holds this CPU's fold state (this and the ways
    /// beside it in `FoldPerCpu`): changed only by atomic adds (tracer-ebpf/src/storm.rs,
    /// `fold_enter`).
    pub busy: u64,
    /// The way the next key cached on this CPU replaces, round robin: for a storm
    /// cycling through up to `FOLD_CACHE_WAYS` keys the choice least-recently-used
    /// makes, without comparing the ways' ages (a branch per way for the verifier).
    pub next_way: u64,
}

/// Entries (ways) of `FOLD_CACHE` per CPU: the keys of a handled signal's two outcomes
/// for a group of two (tracer-ebpf/src/storm.rs).
pub const FOLD_CACHE_WAYS: u32 = 4;

/// Per CPU, per way: a recent signal key counted on this CPU and the repeats of it
/// counted here but not yet added to its `FOLDS` entry (`pending`), so that a storm's
/// repeat on the same CPU costs a key comparison instead of a hash lookup of the
/// 128-byte key. The
/// kernel moves `pending` into the entry when the key changes and on the first repeat
/// of every jiffy (so an entry's `last_ns` never lags more than a jiffy behind a
/// storm that goes on); userspace adds `pending` to the entry of row `row` when it
/// reads the counts, after reading `FOLDS`: the kernel zeroes `pending` before it adds
/// it to the entry, so a read sees each repeat at most once, and a read that misses
/// one (moved in between) is made good by the next.
///
/// Why a read never counts a repeat twice (x86-64, where the cache is enabled): the
/// kernel stores `pending = 0` before the atomic add that moves those repeats into the
/// entry (a full barrier), and userspace reads every `FOLDS` entry before it reads the
/// ways (separate syscalls with a fence between), so a repeat it sees in an entry is
/// gone from the way it reads later. Under-reads (a move between the two) only delay a
/// count: readers keep the largest count seen per row.
///
/// `begun` and `ended` make a seqlock for a change of key (`row` with `pending`): the
/// kernel stores `begun = n`, moves the pending repeats, changes the key, then stores
/// `ended = n`. A map lookup copies the value in no specified order, so userspace takes
/// three copies of every CPU's ways (`FoldPerCpu`, one value per CPU), each its own
/// syscall, fenced: per way, `ended` from the first,
/// `row` and `pending` from the second, `begun` from the third; equal counters mean no
/// change of key overlapped the second copy. A torn way is skipped, counted by the next
/// read.
///
/// Removal of an idle entry (userspace, [`FOLD_IDLE_NS`]) keeps pending repeats: an entry
/// is removed only when no consistent way holds its row with pending repeats, no way is
/// torn, and a second read of the entry after the ways shows the same count. A way that
/// took the row again afterwards did so by counting a new repeat in the entry: the
/// documented window of a signal to a key idle for 2 s in the instant before its
/// removal, which no kernel of the matrix can close (a program adds through a pointer
/// it looked up).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldCache {
    /// Changes of key begun on this way.
    pub begun: u64,
    /// Fold id of the key's full record (its `FOLDS` entry's `row`); 0 when empty.
    pub row: u64,
    pub pending: u64,
    /// Jiffy of the last move into `FOLDS` (or of the key's arrival).
    pub jiffies: u64,
    pub key: FoldKey,
    /// Changes of key ended on this way.
    pub ended: u64,
}

/// A CPU's `FOLD_CACHE` value: its aggregation state and its cache ways side by side,
/// so that the path of every signal looks them up once (a map lookup per way, and one
/// for the state, were a fifth of a cached repeat's cost; a helper call each before
/// Linux 6.10 inlined per-CPU array lookups). `cpu` comes first: the programs reach
/// the ways from a pointer to it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FoldPerCpu {
    pub cpu: FoldCpu,
    pub ways: [FoldCache; FOLD_CACHE_WAYS as usize],
}

/// Identical signals folded into the record with fold id `row`. Sent by sigwho before
/// 0.2 (per-CPU fold slots); still decoded for raw captures made then.
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
// SAFETY: repr(C) and Copy, made only of integers (Request's included) whose padding
// is spelled out as fields: no byte is uninitialised and every bit pattern is valid.
unsafe impl aya::Pod for FoldKey {}
#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, four u64s: no padding, every bit pattern is valid.
unsafe impl aya::Pod for FoldSlot {}
#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, u64s and a FoldKey (itself Pod, 128 bytes, a multiple of
// 8): no padding, every bit pattern is valid.
unsafe impl aya::Pod for FoldCache {}
const _: () = assert!(size_of::<FoldCache>() == 5 * 8 + size_of::<FoldKey>());
#[cfg(feature = "user")]
// SAFETY: repr(C) and Copy, a FoldCpu (u64s) and an array of FoldCache (Pod, a multiple
// of 8 bytes): no padding, every bit pattern is valid.
unsafe impl aya::Pod for FoldPerCpu {}
const _: () = assert!(
    size_of::<FoldPerCpu>()
        == size_of::<FoldCpu>() + FOLD_CACHE_WAYS as usize * size_of::<FoldCache>()
);
const _: () = assert!(size_of::<FoldSlot>() == 4 * 8);
