//! Raw captures and their replay: `sigwho record --raw FILE` writes what each pass read
//! from the kernel (the ring buffer's records, the fold slots, the drop counters, the
//! time) and every /proc look-up the process table made, one JSON object per line;
//! [`replay`] runs such a file through the same analysis with no kernel and no /proc,
//! so that the reports a capture made can be made again, byte for byte, in a test.

use std::{
    cell::RefCell,
    collections::{HashMap, VecDeque},
    fmt::Write as _,
    io::Write,
    sync::Mutex,
};

use serde::{Deserialize, Serialize};
use tracer_common::FoldSlot;

use crate::{
    analysis::correlate::Correlator,
    analysis::pass::{Analyzer, Pass},
    analysis::report::Report,
    kernel::decode::{self, DecodeError},
    model::clock::BootClock,
    model::kubelet::PodName,
    model::lineage::ProcessTable,
    model::procfs::{ProcInfo, ProcSnapshot, Stat},
};

/// The capture format this sigwho writes and replays.
pub const FORMAT: u32 = 1;

/// One line of a capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Lookup(Lookup),
    Pass(RawPass),
}

/// How the analysis was set up when the capture was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The correlator's clock: realtime minus boottime, ns.
    pub clock_offset_ns: i64,
    pub ticks_per_second: u64,
    pub cause_window_ns: u64,
    /// The kernel folded storms (the recorder).
    pub fold_repeats: bool,
}

/// A question the process table asked about a process, and what /proc answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    Pids(Vec<u32>),
    Process {
        pid: u32,
        found: Option<ProcSnapshot>,
    },
    Stat {
        pid: u32,
        found: Option<Stat>,
    },
    Exe {
        pid: u32,
        found: Option<String>,
    },
    Cgroup {
        pid: u32,
        found: Option<String>,
    },
    Pod {
        uid: String,
        found: Option<PodName>,
    },
    Tids {
        pid: u32,
        found: Vec<u32>,
    },
}

/// What a look-up was about: answers are replayed per question, in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Question {
    Pids,
    Process(u32),
    Stat(u32),
    Exe(u32),
    Cgroup(u32),
    Pod(String),
    Tids(u32),
}

impl Lookup {
    fn question(&self) -> Question {
        match self {
            Lookup::Pids(_) => Question::Pids,
            Lookup::Process { pid, .. } => Question::Process(*pid),
            Lookup::Stat { pid, .. } => Question::Stat(*pid),
            Lookup::Exe { pid, .. } => Question::Exe(*pid),
            Lookup::Cgroup { pid, .. } => Question::Cgroup(*pid),
            Lookup::Pod { uid, .. } => Question::Pod(uid.clone()),
            Lookup::Tids { pid, .. } => Question::Tids(*pid),
        }
    }
}

/// One record of the ring buffer: its length and its non-zero stretches as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawRecord {
    pub len: usize,
    /// (offset, hex bytes); everything else is zero.
    pub at: Vec<(usize, String)>,
}

/// Zero bytes in a row that end a stretch of a [`RawRecord`].
const ZERO_RUN: usize = 8;

impl RawRecord {
    #[must_use]
    pub fn encode(bytes: &[u8]) -> Self {
        let mut at = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == 0 {
                index += 1;
                continue;
            }
            let start = index;
            let mut end = index;
            while index < bytes.len() && index - end < ZERO_RUN {
                if bytes[index] != 0 {
                    end = index + 1;
                }
                index += 1;
            }
            let mut hex = String::with_capacity(2 * (end - start));
            for byte in &bytes[start..end] {
                let _ = write!(hex, "{byte:02x}");
            }
            at.push((start, hex));
            index = end;
        }
        Self {
            len: bytes.len(),
            at,
        }
    }

    /// The record's bytes.
    ///
    /// # Errors
    ///
    /// When a stretch is not hex or lies outside the record.
    pub fn bytes(&self) -> Result<Vec<u8>, ReplayError> {
        let mut bytes = vec![0u8; self.len];
        for (offset, hex) in &self.at {
            let bad = || ReplayError::Record(format!("bad stretch at {offset}"));
            if hex.len() % 2 != 0 {
                return Err(bad());
            }
            for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
                let text = std::str::from_utf8(pair).map_err(|_| bad())?;
                let byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
                *bytes.get_mut(offset + i).ok_or_else(bad)? = byte;
            }
        }
        Ok(bytes)
    }
}

/// The fold slots as one read saw them: only what the folds look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSlots {
    pub len: usize,
    /// (index, row, count, `first_ns`, `last_ns`) of each slot that is not empty.
    pub set: Vec<(usize, u64, u64, u64, u64)>,
}

impl RawSlots {
    fn of(slots: &[FoldSlot]) -> Self {
        Self {
            len: slots.len(),
            set: slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.row != 0 || s.count != 0 || s.first_ns != 0 || s.last_ns != 0)
                .map(|(i, s)| (i, s.row, s.count, s.first_ns, s.last_ns))
                .collect(),
        }
    }

    fn slots(&self) -> Vec<FoldSlot> {
        let mut slots = vec![FoldSlot::default(); self.len];
        for &(index, row, count, first_ns, last_ns) in &self.set {
            if let Some(slot) = slots.get_mut(index) {
                *slot = FoldSlot {
                    row,
                    count,
                    first_ns,
                    last_ns,
                };
            }
        }
        slots
    }
}

/// One pass as a capture stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawPass {
    pub now_ns: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RawRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots_before: Option<RawSlots>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots_after: Option<RawSlots>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: [u64; 8],
}

fn is_zero(counts: &[u64; 8]) -> bool {
    counts.iter().all(|&n| n == 0)
}

impl RawPass {
    /// `pass` as stored, with the records as the ring buffer held them.
    pub fn of(pass: &Pass, records: Vec<RawRecord>) -> Self {
        Self {
            now_ns: pass.now_ns,
            last: pass.last,
            records,
            slots_before: pass.slots_before.as_deref().map(RawSlots::of),
            slots_after: pass.slots_after.as_deref().map(RawSlots::of),
            dropped: pass.dropped,
        }
    }

    /// The pass the analysis sees.
    ///
    /// # Errors
    ///
    /// When a record is malformed or does not decode.
    pub fn pass(&self) -> Result<Pass, ReplayError> {
        let events = self
            .records
            .iter()
            .map(|record| decode::decode(&record.bytes()?).map_err(ReplayError::Decode))
            .collect::<Result<_, _>>()?;
        Ok(Pass {
            events,
            slots_before: self.slots_before.as_ref().map(RawSlots::slots),
            slots_after: self.slots_after.as_ref().map(RawSlots::slots),
            dropped: self.dropped,
            now_ns: self.now_ns,
            last: self.last,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("line {line}: {error}")]
    Json {
        line: usize,
        error: serde_json::Error,
    },
    #[error("the capture has no header line")]
    NoHeader,
    #[error("the capture is in format {0}; this sigwho replays format {FORMAT}")]
    Format(u32),
    #[error("a record: {0}")]
    Record(String),
    #[error("a record: {0}")]
    Decode(DecodeError),
}

/// Where a capture is written: lines from the ring reader and from the process table,
/// flushed after each pass.
pub struct RawLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl RawLog {
    /// Starts a capture in `out` with its header.
    #[must_use]
    pub fn new(out: Box<dyn Write + Send>, header: Header) -> Self {
        let log = Self {
            out: Mutex::new(out),
        };
        log.write(&Line::Header(header));
        log
    }

    /// Appends a line. A capture is a diagnostic aid: a failed write is not worth
    /// stopping the recorder for, and the replay says where the file ends.
    pub fn write(&self, line: &Line) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
        }
    }

    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// A [`ProcInfo`] that writes every answer it gets from `inner` to a capture.
pub struct Recorded {
    inner: Box<dyn ProcInfo>,
    log: std::sync::Arc<RawLog>,
}

impl Recorded {
    pub fn new(inner: Box<dyn ProcInfo>, log: std::sync::Arc<RawLog>) -> Self {
        Self { inner, log }
    }

    fn note<T>(&self, found: T, lookup: impl FnOnce(T) -> Lookup) -> T
    where
        T: Clone,
    {
        self.log.write(&Line::Lookup(lookup(found.clone())));
        found
    }
}

impl ProcInfo for Recorded {
    fn pids(&self) -> Vec<u32> {
        self.note(self.inner.pids(), Lookup::Pids)
    }

    fn process(&self, pid: u32) -> Option<ProcSnapshot> {
        self.note(self.inner.process(pid), |found| Lookup::Process {
            pid,
            found,
        })
    }

    fn stat(&self, pid: u32) -> Option<Stat> {
        self.note(self.inner.stat(pid), |found| Lookup::Stat { pid, found })
    }

    fn exe(&self, pid: u32) -> Option<String> {
        self.note(self.inner.exe(pid), |found| Lookup::Exe { pid, found })
    }

    fn cgroup(&self, pid: u32) -> Option<String> {
        self.note(self.inner.cgroup(pid), |found| Lookup::Cgroup {
            pid,
            found,
        })
    }

    fn pod(&self, uid: &str) -> Option<PodName> {
        let uid = uid.to_owned();
        self.note(self.inner.pod(&uid), |found| Lookup::Pod { uid, found })
    }

    fn tids(&self, pid: u32) -> Vec<u32> {
        self.note(self.inner.tids(pid), |found| Lookup::Tids { pid, found })
    }
}

/// The answers a capture recorded, given again in the order they came, question by
/// question; a question asked more often than during the capture gets the last answer
/// again, one never asked gets "nothing there".
pub struct Replayed {
    answers: RefCell<HashMap<Question, VecDeque<Lookup>>>,
}

impl Replayed {
    pub fn new(lookups: impl IntoIterator<Item = Lookup>) -> Self {
        let mut answers: HashMap<Question, VecDeque<Lookup>> = HashMap::new();
        for lookup in lookups {
            answers
                .entry(lookup.question())
                .or_default()
                .push_back(lookup);
        }
        Self {
            answers: RefCell::new(answers),
        }
    }

    fn answer(&self, question: &Question) -> Option<Lookup> {
        let mut answers = self.answers.borrow_mut();
        let queue = answers.get_mut(question)?;
        if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        }
    }
}

impl ProcInfo for Replayed {
    fn pids(&self) -> Vec<u32> {
        match self.answer(&Question::Pids) {
            Some(Lookup::Pids(pids)) => pids,
            _ => Vec::new(),
        }
    }

    fn process(&self, pid: u32) -> Option<ProcSnapshot> {
        match self.answer(&Question::Process(pid))? {
            Lookup::Process { found, .. } => found,
            _ => None,
        }
    }

    fn stat(&self, pid: u32) -> Option<Stat> {
        match self.answer(&Question::Stat(pid))? {
            Lookup::Stat { found, .. } => found,
            _ => None,
        }
    }

    fn exe(&self, pid: u32) -> Option<String> {
        match self.answer(&Question::Exe(pid))? {
            Lookup::Exe { found, .. } => found,
            _ => None,
        }
    }

    fn cgroup(&self, pid: u32) -> Option<String> {
        match self.answer(&Question::Cgroup(pid))? {
            Lookup::Cgroup { found, .. } => found,
            _ => None,
        }
    }

    fn pod(&self, uid: &str) -> Option<PodName> {
        match self.answer(&Question::Pod(uid.to_owned()))? {
            Lookup::Pod { found, .. } => found,
            _ => None,
        }
    }

    fn tids(&self, pid: u32) -> Vec<u32> {
        match self.answer(&Question::Tids(pid)) {
            Some(Lookup::Tids { found, .. }) => found,
            _ => Vec::new(),
        }
    }
}

/// A capture, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub header: Header,
    pub lookups: Vec<Lookup>,
    pub passes: Vec<RawPass>,
}

impl Capture {
    /// Reads a capture's lines.
    ///
    /// # Errors
    ///
    /// When a line is not a capture line, the header is missing, or the format is
    /// another.
    pub fn parse(text: &str) -> Result<Self, ReplayError> {
        let mut header = None;
        let mut lookups = Vec::new();
        let mut passes = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(line).map_err(|error| ReplayError::Json {
                line: index + 1,
                error,
            })?;
            match parsed {
                Line::Header(h) => header = Some(h),
                Line::Lookup(lookup) => lookups.push(lookup),
                Line::Pass(pass) => passes.push(pass),
            }
        }
        let header = header.ok_or(ReplayError::NoHeader)?;
        if header.format != FORMAT {
            return Err(ReplayError::Format(header.format));
        }
        Ok(Self {
            header,
            lookups,
            passes,
        })
    }

    /// The capture as it is written: header, look-ups, passes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let lines = std::iter::once(Line::Header(self.header))
            .chain(self.lookups.iter().cloned().map(Line::Lookup))
            .chain(self.passes.iter().cloned().map(Line::Pass));
        for line in lines {
            if let Ok(text) = serde_json::to_string(&line) {
                out.push_str(&text);
                out.push('\n');
            }
        }
        out
    }
}

/// The reports `capture` makes when run through the analysis again, in order.
///
/// # Errors
///
/// When a pass's records are malformed or do not decode.
pub fn replay(capture: &Capture) -> Result<Vec<Report>, ReplayError> {
    let header = &capture.header;
    let info = Replayed::new(capture.lookups.iter().cloned());
    let table = ProcessTable::snapshot(Box::new(info), header.ticks_per_second);
    let clock = BootClock::from_offset_ns(i128::from(header.clock_offset_ns));
    let correlator = Correlator::new(table, clock, header.ticks_per_second)
        .with_cause_window(header.cause_window_ns);
    let mut analyzer = Analyzer::new(correlator);
    if header.fold_repeats {
        analyzer = analyzer.with_folding(std::time::Duration::ZERO);
    }
    let mut reports = Vec::new();
    for pass in &capture.passes {
        reports.extend(analyzer.pass(&pass.pass()?));
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_bytes_and_drop_their_zeros() {
        let mut bytes = vec![0u8; 64];
        bytes[3] = 7;
        bytes[5] = 0xff;
        bytes[40] = 1;
        bytes[63] = 2;
        let record = RawRecord::encode(&bytes);
        assert_eq!(record.len, 64);
        assert_eq!(
            record.at,
            [
                (3, "0700ff".to_owned()),
                (40, "01".to_owned()),
                (63, "02".to_owned())
            ]
        );
        assert_eq!(record.bytes().unwrap(), bytes);
        assert_eq!(RawRecord::encode(&[0; 9]).at, []);
    }

    #[test]
    fn answers_come_back_in_order_then_the_last_one_stays() {
        let replayed = Replayed::new([
            Lookup::Exe {
                pid: 7,
                found: Some("/bin/a".into()),
            },
            Lookup::Exe {
                pid: 7,
                found: Some("/bin/b".into()),
            },
        ]);
        assert_eq!(replayed.exe(7).as_deref(), Some("/bin/a"));
        assert_eq!(replayed.exe(7).as_deref(), Some("/bin/b"));
        assert_eq!(replayed.exe(7).as_deref(), Some("/bin/b"));
        assert_eq!(replayed.exe(8), None);
        assert!(replayed.pids().is_empty());
    }
}
