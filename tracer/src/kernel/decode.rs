//! Turns ring-buffer records into typed events. Records come from the kernel, but a
//! version mismatch or a bug must give an error, never undefined behaviour, so every
//! record's kind and length are checked before it is read.

use std::mem::offset_of;

use crate::kernel::sys::{self, Record};

use tracer_common::{
    ANCESTRY_DEPTH, ARGS_LEN, Ancestor, CAUSE_DEPTH, CGROUP_LEVELS, CGROUP_NAME_LEN, Cause,
    EventHeader, ExecEvent, ExitEvent, FailedSendEvent, ForkEvent, OomVictimEvent, PATH_LEN,
    RepeatsEvent, SignalEvent, kind, signal_flags,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Signal(Box<SignalEvent>),
    FailedSend(Box<FailedSendEvent>),
    Exec(Box<ExecEvent>),
    Fork(ForkEvent),
    Exit(ExitEvent),
    OomVictim(OomVictimEvent),
    Repeats(RepeatsEvent),
}

impl Event {
    #[must_use]
    pub fn header(&self) -> &EventHeader {
        match self {
            Event::Signal(ev) => &ev.header,
            Event::FailedSend(ev) => &ev.header,
            Event::Exec(ev) => &ev.header,
            Event::Fork(ev) => &ev.header,
            Event::Exit(ev) => &ev.header,
            Event::OomVictim(ev) => &ev.header,
            Event::Repeats(ev) => &ev.header,
        }
    }

    /// Nanoseconds since boot when the kernel produced the record.
    #[must_use]
    pub fn time_ns(&self) -> u64 {
        self.header().time_ns
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("record of unknown kind {0}")]
    UnknownKind(u32),
    #[error("record of kind {kind} has {actual} bytes, expected {expected}")]
    Length {
        kind: u32,
        actual: usize,
        expected: usize,
    },
}

/// Reads a `T` from the start of `bytes` after checking the length.
fn read_exact<T: Record>(bytes: &[u8], record_kind: u32) -> Result<T, DecodeError> {
    let expected = size_of::<T>();
    // The ring buffer rounds records up to 8 bytes; accept that padding only.
    if bytes.len() < expected || bytes.len() > expected.next_multiple_of(8) {
        return Err(DecodeError::Length {
            kind: record_kind,
            actual: bytes.len(),
            expected,
        });
    }
    sys::read_record(bytes).ok_or(DecodeError::Length {
        kind: record_kind,
        actual: bytes.len(),
        expected,
    })
}

/// The record in `bytes`, its kind and length checked.
///
/// # Errors
///
/// When the record is shorter than a header, of an unknown kind, or of the wrong length
/// for its kind.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    if bytes.len() < size_of::<EventHeader>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    let header: EventHeader = read_exact(&bytes[..size_of::<EventHeader>()], 0)?;
    Ok(match header.kind {
        kind::SIGNAL => Event::Signal(Box::new(read_exact(bytes, header.kind)?)),
        kind::FAILED_SEND => Event::FailedSend(Box::new(read_failed_send(bytes)?)),
        kind::EXEC => Event::Exec(Box::new(read_exact(bytes, header.kind)?)),
        kind::FORK => Event::Fork(read_exact(bytes, header.kind)?),
        kind::EXIT => Event::Exit(read_exact(bytes, header.kind)?),
        kind::OOM_VICTIM => Event::OomVictim(read_exact(bytes, header.kind)?),
        kind::REPEATS => Event::Repeats(read_exact(bytes, header.kind)?),
        other => return Err(DecodeError::UnknownKind(other)),
    })
}

/// A failed attempt; one from before `fold_id` was added (raw captures of older
/// versions) is that much shorter and reads as not aggregated.
fn read_failed_send(bytes: &[u8]) -> Result<FailedSendEvent, DecodeError> {
    const OLD_LEN: usize = offset_of!(FailedSendEvent, fold_id);
    if bytes.len() == OLD_LEN {
        let mut padded = bytes.to_vec();
        padded.resize(size_of::<FailedSendEvent>(), 0);
        return read_exact(&padded, kind::FAILED_SEND);
    }
    read_exact(bytes, kind::FAILED_SEND)
}

/// Zeroes the bytes of a record that no reader looks at: the unused ends of its
/// strings and arrays and the ring's padding, which hold whatever the ring buffer held
/// before (parts of earlier records, of other processes). Raw captures store records so.
pub fn sanitize(bytes: &mut [u8]) {
    let Ok(event) = decode(bytes) else {
        return;
    };
    let zero = |bytes: &mut [u8], from: usize, to: usize| {
        if let Some(range) = bytes.get_mut(from..to) {
            range.fill(0);
        }
    };
    // Up to and with the NUL; all of it when there is none.
    let used = |text: &[u8]| {
        text.iter()
            .position(|&b| b == 0)
            .map_or(text.len(), |n| n + 1)
    };
    let size = match &event {
        Event::Exec(ev) => {
            let args = offset_of!(ExecEvent, args);
            let len = (ev.args_len as usize).min(ARGS_LEN);
            zero(bytes, args + len, args + ARGS_LEN);
            let filename = offset_of!(ExecEvent, filename);
            zero(bytes, filename + used(&ev.filename), filename + PATH_LEN);
            let names = offset_of!(ExecEvent, cgroup_names);
            let levels = (ev.cgroup_levels & 0xff) as usize;
            for (level, name) in ev.cgroup_names.iter().enumerate().take(CGROUP_LEVELS) {
                let start = names + level * CGROUP_NAME_LEN;
                let keep = if level < levels { used(name) } else { 0 };
                zero(bytes, start + keep, start + CGROUP_NAME_LEN);
            }
            size_of::<ExecEvent>()
        }
        Event::Signal(ev) => {
            // A sender described before is not described again: its array is stale.
            let ancestors = if ev.flags & signal_flags::ANCESTRY_CACHED != 0 {
                0
            } else {
                (ev.ancestry_len as usize).min(ANCESTRY_DEPTH)
            };
            let at = offset_of!(SignalEvent, sender_ancestry);
            let each = size_of::<Ancestor>();
            zero(bytes, at + ancestors * each, at + ANCESTRY_DEPTH * each);
            let causes = (ev.cause_len as usize).min(CAUSE_DEPTH);
            let at = offset_of!(SignalEvent, causes);
            let each = size_of::<Cause>();
            zero(bytes, at + causes * each, at + CAUSE_DEPTH * each);
            size_of::<SignalEvent>()
        }
        Event::FailedSend(ev) => {
            let ancestors = (ev.ancestry_len as usize).min(ANCESTRY_DEPTH);
            let at = offset_of!(FailedSendEvent, sender_ancestry);
            let each = size_of::<Ancestor>();
            zero(bytes, at + ancestors * each, at + ANCESTRY_DEPTH * each);
            size_of::<FailedSendEvent>()
        }
        Event::Fork(_) => size_of::<ForkEvent>(),
        Event::Exit(_) => size_of::<ExitEvent>(),
        Event::OomVictim(_) => size_of::<OomVictimEvent>(),
        Event::Repeats(_) => size_of::<RepeatsEvent>(),
    };
    let end = bytes.len();
    zero(bytes, size, end);
}

/// A NUL-terminated kernel string (comm, path) as text.
#[must_use]
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// argv as the kernel stores it: NUL-separated, usually NUL-terminated.
#[must_use]
pub fn split_args(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Record kind names, as lost reports show them.
#[must_use]
pub fn kind_name(record_kind: usize) -> &'static str {
    match u32::try_from(record_kind).unwrap_or(u32::MAX) {
        kind::SIGNAL => "signal",
        kind::FAILED_SEND => "failed_send",
        kind::EXEC => "exec",
        kind::FORK => "fork",
        kind::EXIT => "exit",
        kind::OOM_VICTIM => "oom_victim",
        kind::REPEATS => "repeats",
        _ => "other",
    }
}

#[cfg(test)]
pub(crate) fn as_bytes<T: Record>(value: &T) -> Vec<u8> {
    sys::record_bytes(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_kind_and_rejects_bad_lengths() {
        let mut exit = ExitEvent::default();
        exit.header.kind = kind::EXIT;
        exit.task.pid = 42;
        exit.exit_code = 3 << 8;
        let bytes = as_bytes(&exit);
        assert_eq!(decode(&bytes), Ok(Event::Exit(exit)));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Length { .. })
        ));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 16]);
        assert!(matches!(decode(&longer), Err(DecodeError::Length { .. })));

        let mut signal = SignalEvent::default();
        signal.header.kind = kind::SIGNAL;
        signal.sig = 15;
        assert_eq!(
            decode(&as_bytes(&signal)),
            Ok(Event::Signal(Box::new(signal)))
        );
    }

    #[test]
    fn rejects_unknown_and_short_records() {
        assert_eq!(decode(&[1, 2, 3]), Err(DecodeError::Short(3)));
        let header = EventHeader {
            kind: 99,
            ..EventHeader::default()
        };
        assert_eq!(
            decode(&as_bytes(&header)),
            Err(DecodeError::UnknownKind(99))
        );
    }

    #[test]
    fn sanitizing_keeps_what_readers_see_and_zeroes_the_rest() {
        let mut exec = ExecEvent {
            header: EventHeader {
                kind: kind::EXEC,
                ..EventHeader::default()
            },
            task: tracer_common::TaskRef::default(),
            flags: 0,
            args_len: 5,
            filename: [0xaa; PATH_LEN],
            args: [0xbb; ARGS_LEN],
            cgroup_levels: 1,
            arg_start_low: 0,
            cgroup_names: [[0xcc; CGROUP_NAME_LEN]; CGROUP_LEVELS],
        };
        exec.filename[..4].copy_from_slice(b"/sh\0");
        exec.args[..5].copy_from_slice(b"sh\0-c");
        exec.cgroup_names[0][..3].copy_from_slice(b"a\0b");
        let mut bytes = as_bytes(&exec);
        let before = decode(&bytes).unwrap();
        sanitize(&mut bytes);
        let Ok(Event::Exec(after)) = decode(&bytes) else {
            panic!("still an exec record")
        };
        let Event::Exec(before) = before else {
            unreachable!()
        };
        assert_eq!(c_string(&after.filename), c_string(&before.filename));
        assert_eq!(split_args(&after.args[..5]), split_args(&before.args[..5]));
        assert_eq!(c_string(&after.cgroup_names[0]), "a");
        assert!(after.args[5..].iter().all(|&b| b == 0));
        assert!(after.filename[4..].iter().all(|&b| b == 0));
        assert!(after.cgroup_names[0][2..].iter().all(|&b| b == 0));
        assert!(after.cgroup_names[1].iter().all(|&b| b == 0));

        let mut signal = SignalEvent::default();
        signal.header.kind = kind::SIGNAL;
        signal.ancestry_len = 1;
        signal.sender_ancestry = [Ancestor {
            pid: 7,
            ..Ancestor::default()
        }; ANCESTRY_DEPTH];
        signal.cause_len = 0;
        signal.causes[2].sender_pid = 9;
        let mut bytes = as_bytes(&signal);
        sanitize(&mut bytes);
        let Ok(Event::Signal(after)) = decode(&bytes) else {
            panic!("still a signal record")
        };
        assert_eq!(after.sender_ancestry[0].pid, 7);
        assert_eq!(after.sender_ancestry[1].pid, 0);
        assert_eq!(after.causes[2].sender_pid, 0);
    }

    #[test]
    fn splits_argv_and_comm() {
        assert_eq!(
            split_args(b"kill\0-TERM\0-4242\0"),
            ["kill", "-TERM", "-4242"]
        );
        assert_eq!(split_args(b"a\0\0b"), ["a", "", "b"]);
        assert!(split_args(b"").is_empty());
        assert_eq!(c_string(b"sleep\0\0\0garbage"), "sleep");
        assert_eq!(c_string(b"0123456789abcdef"), "0123456789abcdef");
    }
}
