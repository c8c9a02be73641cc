use super::encode::{Encoded, report_time};
use super::queue::QUEUE_CAPACITY;
use super::*;
use crate::{
    analysis::report::{ExitReport, LostReport, Report},
    model::{clock::BootClock, lineage::ProcKey},
    store::journal,
};

#[test]
fn exits_and_losses_become_rows_and_gaps() {
    let encoder = Encoder::new(
        BootClock::from_offset_ns(1_000 * 1_000_000_000),
        100,
        "b".to_owned(),
    );
    let exit = Report::Exit(ExitReport {
        event: "exit",
        time: clock::rfc3339_nanos(1_700_000_000_123_456_789),
        pid: 42,
        comm: "victim".to_owned(),
        exit_code: None,
        signal: Some("SIGTERM".to_owned()),
        signo: Some(15),
        core_dumped: Some(false),
        key: Some(ProcKey {
            pid: 42,
            start_ticks: 500,
        }),
    });
    let Encoded::Row(row) = encoder.encode(&exit) else {
        panic!("an exit is a row")
    };
    assert_eq!(row.time_ns, 1_700_000_000_123_456_789);
    assert_eq!(row.kind, Kind::Exit);
    assert_eq!(row.signo, Some(15));
    let target = row.target.unwrap();
    assert_eq!((target.pid, target.start_ticks), (42, Some(500)));
    // 500 ticks of 10 ms after a boot at Unix time 1000 s.
    assert_eq!(
        target.start.as_deref(),
        Some("1970-01-01T00:16:45.000000000Z")
    );
    assert_eq!(row.text, crate::render::text::report(&exit));
    assert_eq!(row.json, crate::render::json::report(&exit));
    let lost = Report::Lost(LostReport {
        event: "lost",
        time: clock::rfc3339_nanos(1_700_000_000_000_000_000),
        count: 7,
        by_kind: BTreeMap::new(),
    });
    let Encoded::Gap(gap) = encoder.encode(&lost) else {
        panic!("a loss is a gap")
    };
    assert_eq!(
        gap,
        Gap {
            time_ns: 1_700_000_000_000_000_000,
            count: 7,
            reason: "ring_buffer".to_owned()
        }
    );
}

fn process(pid: u32) -> crate::analysis::report::ProcessReport {
    crate::analysis::report::ProcessReport {
        pid,
        tid: pid,
        comm: format!("p{pid}"),
        exe: None,
        argv: vec![format!("p{pid}")],
        uid: Some(0),
        start_time: Some("2026-01-01T00:00:00.000000000Z".into()),
        ancestry: Vec::new(),
        ns_pid: None,
        cgroup: None,
        identity: crate::model::cgroup::Identity::default(),
        execs: Vec::new(),
    }
}

/// kill(target, signo) from `sender`, `at_ns` after the encoder's boot.
fn signal(signo: i32, sender: u32, target: u32, at_ns: u64) -> Report {
    let mut report = crate::analysis::report::fixtures::signal(
        signo,
        sender,
        target,
        crate::analysis::classify::OriginClass::Explicit,
    );
    report.time = format!("t{at_ns}");
    report.requested = Some(i64::from(target));
    report.scope = Some(crate::analysis::classify::Scope::Process);
    report.result = crate::analysis::classify::SignalResult::Ignored;
    report.sender = Arc::new(process(sender));
    report.target = Some(Arc::new(process(target)));
    report.keys.time_ns = at_ns;
    Report::Signal(Box::new(report))
}

#[test]
fn kernel_counted_repeats_become_the_row_count_and_leave_the_stored_report() {
    let encoder = encoder();
    let Report::Signal(first) = signal(10, 10, 50, 1000) else {
        unreachable!()
    };
    let mut repeat = first.clone();
    repeat.keys.time_ns = 2000;
    repeat.time = "t2000".into();
    repeat.repeats = Some(crate::analysis::report::Repeated {
        count: 500,
        first_time: "t2000".into(),
        last_time: "t9000".into(),
        last_ns: 9000,
    });
    let exported = crate::render::json::report(&Report::Signal(repeat.clone()));
    assert!(
        exported.contains(r#""repeats":{"count":500,"first_time":"t2000","last_time":"t9000"}"#),
        "{exported}"
    );
    let queued = fold_repeats(
        &encoder.clock,
        vec![Report::Signal(first.clone()), Report::Signal(repeat)],
    );
    // One row: the report once, standing for 1 + 500 signals, the last at 9000.
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].count, 501);
    assert_eq!(queued[0].last_ns, saturate(encoder.clock.unix_ns(9000)));
    let rows = encoder.encode_batch(&queued, &mut Vec::new());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].count, 501);
    assert_eq!(
        rows[0].json,
        crate::render::json::report(&Report::Signal(first))
    );
    assert!(!rows[0].json.contains("repeats"));
}

#[test]
fn repeated_signals_share_a_row_and_keep_their_count() {
    let encoder = encoder();
    let base = encoder.clock.unix_ns(0);
    // Two senders storming one target, interleaved; then sender 10 changes signal,
    // then goes back: a repeat only continues the pair's last signal.
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.push(signal(10, 10, 50, 1000 + i));
        batch.push(signal(10, 11, 50, 1000 + i));
    }
    batch.push(signal(12, 10, 50, 5000));
    batch.push(signal(10, 10, 50, 6000));
    batch.push(signal(10, 10, 50, 7000));
    let mut gaps = Vec::new();
    let one_by_one: Vec<Queued> = batch
        .iter()
        .map(|r| Queued::one(r.clone(), report_time(&encoder.clock, r)))
        .collect();
    let rows = encoder.encode_batch(&one_by_one, &mut gaps);
    assert!(gaps.is_empty());
    // Folded on the reading side first (in two passes), the same rows.
    let (first, second) = batch.split_at(77);
    let mut folded = fold_repeats(&encoder.clock, first.to_vec());
    assert_eq!(folded.len(), 2);
    folded.extend(fold_repeats(&encoder.clock, second.to_vec()));
    assert_eq!(encoder.encode_batch(&folded, &mut gaps), rows);
    let summary: Vec<(Option<i32>, u32, u64, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.signo,
                r.sender.as_ref().unwrap().pid,
                r.count,
                i64::try_from(i128::from(r.time_ns) - base).unwrap(),
                i64::try_from(i128::from(r.last_ns) - base).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some(10), 10, 100, 1000, 1099),
            (Some(10), 11, 100, 1000, 1099),
            (Some(12), 10, 1, 5000, 5000),
            (Some(10), 10, 2, 6000, 7000),
        ]
    );
    assert_eq!(
        rows.iter().map(|r| r.count).sum::<u64>(),
        batch.len() as u64
    );
    // The stored report is the first one's, as the live view printed it.
    assert_eq!(rows[0].json, crate::render::json::report(&batch[0]));
    // A report that differs in anything printed is not a repeat.
    let mut other = signal(10, 10, 50, 8000);
    if let Report::Signal(r) = &mut other {
        r.result = crate::analysis::classify::SignalResult::Delivered;
    }
    let pair = [signal(10, 10, 50, 7000), other];
    assert_eq!(fold_repeats(&encoder.clock, pair.to_vec()).len(), 2);
    let pair: Vec<Queued> = pair.into_iter().map(|r| Queued::one(r, 0)).collect();
    let rows = encoder.encode_batch(&pair, &mut gaps);
    assert_eq!(rows.iter().map(|r| r.count).collect::<Vec<_>>(), [1, 1]);
}

/// A fresh journal path in a private directory under the temp dir; the directory is
/// removed on drop.
struct TempJournal(std::path::PathBuf);

impl TempJournal {
    fn new(name: &str) -> TempJournal {
        let dir =
            std::env::temp_dir().join(format!("sigwho-record-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempJournal(dir)
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.join("journal")
    }
}

impl Drop for TempJournal {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn encoder() -> Encoder {
    Encoder::new(
        BootClock::from_offset_ns(1_700_000_000 * 1_000_000_000),
        100,
        "b".to_owned(),
    )
}

fn exit_report(pid: u32) -> Report {
    Report::Exit(ExitReport {
        event: "exit",
        time: clock::rfc3339_nanos(1_700_000_000_000_000_000 + i128::from(pid)),
        pid,
        comm: "x".to_owned(),
        exit_code: Some(0),
        signal: None,
        signo: None,
        core_dumped: None,
        key: Some(ProcKey {
            pid,
            start_ticks: 7,
        }),
    })
}

const LIMITS: Limits = Limits {
    max_bytes: 64 << 20,
    max_age: Duration::from_secs(1 << 40),
};

fn exits_in(path: &Path) -> usize {
    let filter = journal::Filter {
        target_comm: Some("x".to_owned()),
        ..journal::Filter::default()
    };
    Journal::open_read_only(path)
        .and_then(|j| j.query(&filter))
        .map_or(0, |entries| entries.len())
}

#[test]
fn the_writer_commits_within_the_commit_interval() {
    let dir = TempJournal::new("flush");
    let path = dir.path();
    let journal = Journal::create_or_open(&path).unwrap();
    let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
    let start = Instant::now();
    writer.send(Queued::one(exit_report(1), 1), start);
    while exits_in(&path) == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "never committed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let latency = start.elapsed();
    // Committed while the writer still runs (it was not told to stop).
    assert!(!writer.stopped());
    assert!(
        latency <= COMMIT_INTERVAL + Duration::from_millis(500),
        "committed after {latency:?}"
    );
    writer.send(Queued::one(exit_report(2), 2), Instant::now());
    let totals = writer.finish().unwrap();
    assert_eq!(
        (totals.exits, totals.signals, totals.dropped_total()),
        (2, 0, 0)
    );
    assert_eq!(exits_in(&path), 2, "finishing commits the rest");
}

/// Polls (the writer runs on its own thread) until `done`, for at most 5 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_reopen_after_a_rename_starts_a_new_journal_at_the_path() {
    let dir = TempJournal::new("reopen");
    let path = dir.path();
    let rotated = path.with_file_name("journal.1");
    let journal = Journal::create_or_open(&path).unwrap();
    let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
    writer.send(Queued::one(exit_report(1), 1), Instant::now());
    eventually("the first report committed", || exits_in(&path) == 1);
    std::fs::rename(&path, &rotated).unwrap();
    writer.reopen();
    eventually("a new journal at the path", || {
        Journal::open_read_only(&path).is_ok()
    });
    writer.send(Queued::one(exit_report(2), 2), Instant::now());
    let totals = writer.finish().unwrap();
    assert_eq!((totals.exits, totals.dropped_total()), (2, 0));
    // The renamed file is whole on its own: its log was checkpointed and removed.
    let mut wal = rotated.as_os_str().to_owned();
    wal.push("-wal");
    assert!(!Path::new(&wal).exists());
    assert_eq!(exits_in(&rotated), 1, "the renamed journal keeps the first");
    assert_eq!(exits_in(&path), 1, "the new journal has the second");
}

#[test]
fn a_reopen_without_a_rename_goes_on_in_the_same_file() {
    let dir = TempJournal::new("reopen-same");
    let path = dir.path();
    let journal = Journal::create_or_open(&path).unwrap();
    let mut writer = Writer::spawn(journal, encoder(), LIMITS).unwrap();
    writer.send(Queued::one(exit_report(1), 1), Instant::now());
    eventually("the first report committed", || exits_in(&path) == 1);
    writer.reopen();
    writer.send(Queued::one(exit_report(2), 2), Instant::now());
    let totals = writer.finish().unwrap();
    assert_eq!((totals.exits, totals.dropped_total()), (2, 0));
    assert_eq!(exits_in(&path), 2);
}

#[test]
fn a_full_queue_drops_into_a_gap_and_never_blocks_past_its_deadline() {
    let dir = TempJournal::new("full");
    let path = dir.path();
    let journal = Journal::create_or_open(&path).unwrap();
    // No writer thread yet: the queue fills, and the reader waits only until its
    // deadline.
    let queue = Arc::new(Queue::new());
    let clock = encoder().clock;
    let extra = 10;
    let start = Instant::now();
    for pid in 0..u32::try_from(QUEUE_CAPACITY + extra).unwrap() {
        let report = exit_report(pid + 1);
        let time_ns = report_time(&clock, &report);
        queue.push(Queued::one(report, time_ns), start);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no waiting past the deadline"
    );
    let waited = Instant::now();
    let report = exit_report(99_999);
    queue.push(Queued::one(report, 5), waited + Duration::from_millis(50));
    assert!(
        waited.elapsed() >= Duration::from_millis(50),
        "waits until the deadline"
    );
    queue.close_input();
    let state = WriterState {
        journal,
        encoder: encoder(),
        limits: LIMITS,
        queue: Arc::clone(&queue),
        totals: Totals::default(),
        failed_commits: 0,
        deferred: Vec::new(),
        disk_low: false,
    };
    let totals = state.run().unwrap();
    assert_eq!(totals.exits, QUEUE_CAPACITY as u64);
    assert_eq!(totals.dropped.get("queue"), Some(&(extra as u64 + 1)));
    let reader = Journal::open_read_only(&path).unwrap();
    let gaps = reader.gaps(None, None).unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(
        (gaps[0].count, gaps[0].reason.as_str()),
        (extra as u64 + 1, "queue")
    );
    // The gap is placed at the first dropped report's time.
    assert_eq!(
        gaps[0].time_ns,
        report_time(
            &clock,
            &exit_report(u32::try_from(QUEUE_CAPACITY).unwrap() + 1)
        )
    );
}

#[test]
fn summary_is_one_line() {
    let mut totals = Totals {
        signals: 5,
        exits: 2,
        ..Totals::default()
    };
    let path = Path::new("/j");
    assert_eq!(
        totals.summary(path),
        "recorded 7 events (5 signals, 2 exits) into /j; dropped 0"
    );
    totals.dropped.insert("ring_buffer", 3);
    totals.dropped.insert("queue", 1);
    assert_eq!(
        totals.summary(path),
        "recorded 7 events (5 signals, 2 exits) into /j; dropped 4 (queue 1, ring buffer 3)"
    );
}
