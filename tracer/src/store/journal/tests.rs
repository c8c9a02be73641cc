use std::{
    fs::DirBuilder,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use super::files::{file_len, wal_path};
use super::*;

const SECOND: i64 = 1_000_000_000;
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600 * SECOND;

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sigwho-journal-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn proc_ref(pid: u32, ticks: u64) -> ProcRef {
    ProcRef {
        pid,
        start_ticks: Some(ticks),
        start: Some(crate::model::clock::rfc3339_nanos(i128::from(
            T0 - 1000 * SECOND + to_i64(ticks) * SECOND / 100,
        ))),
    }
}

fn signal(time_ns: i64, signo: i32, target: ProcRef, sender: u32) -> Row {
    let json = serde_json::json!({
        "event": "signal",
        "time": crate::model::clock::rfc3339_nanos(i128::from(time_ns)),
        "signo": signo,
        "sender": {"pid": sender},
        "target": {"pid": target.pid, "start_time": target.start},
    })
    .to_string();
    Row {
        time_ns,
        count: 1,
        last_ns: time_ns,
        kind: Kind::Signal,
        signo: Some(signo),
        target_comm: Some("victim".to_owned()),
        target: Some(target),
        sender: Some(proc_ref(sender, 5)),
        boot_id: "boot-a".to_owned(),
        text: format!("signal {signo} at {time_ns}\n"),
        json,
    }
}

fn exit(time_ns: i64, target: ProcRef, signo: Option<i32>) -> Row {
    Row {
        time_ns,
        count: 1,
        last_ns: time_ns,
        kind: Kind::Exit,
        signo,
        target_comm: Some("victim".to_owned()),
        target: Some(target),
        sender: None,
        boot_id: "boot-a".to_owned(),
        json: format!("{{\"event\":\"exit\",\"time_ns\":{time_ns}}}"),
        text: format!("exit at {time_ns}\n"),
    }
}

fn events(entries: &[Entry]) -> Vec<i64> {
    entries
        .iter()
        .filter_map(|e| match e {
            Entry::Event(ev) => Some(ev.time_ns),
            Entry::Gap(_) => None,
        })
        .collect()
}

#[test]
fn creates_a_private_wal_journal_with_its_ids() {
    let dir = TempDir::new();
    let path = dir.path("state/sub/journal");
    let journal = Journal::create_or_open(&path).unwrap();
    let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o7777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(
        journal.pragma_i64("application_id").unwrap(),
        i64::from(APPLICATION_ID)
    );
    assert_eq!(
        journal.pragma_i64("user_version").unwrap(),
        i64::from(SCHEMA_VERSION)
    );
    assert_eq!(journal.pragma_i64("auto_vacuum").unwrap(), 2, "incremental");
    let mode: String = journal
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(journal.clock_offset("boot-a").unwrap(), None);
    journal.set_clock_offset("boot-a", 42, T0).unwrap();
    journal.set_clock_offset("boot-a", 43, T0).unwrap();
    assert_eq!(journal.clock_offset("boot-a").unwrap(), Some(43));
    drop(journal);
    // Reopening for recording and for reading both work.
    Journal::create_or_open(&path).unwrap();
    Journal::open_read_only(&path).unwrap();
}

#[test]
fn a_second_recorder_is_refused() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let _first = Journal::create_or_open(&path).unwrap();
    let second = Journal::create_or_open(&path).err().unwrap();
    assert!(matches!(second, JournalError::Locked(_)), "{second}");
    // Readers are welcome.
    Journal::open_read_only(&path).unwrap();
}

#[test]
fn filters_select_by_target_sender_signal_and_time() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let a = proc_ref(100, 1000);
    let b = proc_ref(200, 2000);
    let mut b_row = signal(T0 + 2 * SECOND, 9, b.clone(), 11);
    b_row.target_comm = Some("other".to_owned());
    journal
        .insert_batch(&[
            signal(T0 + SECOND, 15, a.clone(), 10),
            b_row,
            signal(T0 + 3 * SECOND, 10, a.clone(), 11),
            exit(T0 + 4 * SECOND, a.clone(), None),
        ])
        .unwrap();
    let reader = Journal::open_read_only(&path).unwrap();
    let q = |filter: Filter| events(&reader.query(&filter).unwrap());
    // No target named: signals only.
    assert_eq!(
        q(Filter::default()),
        [T0 + SECOND, T0 + 2 * SECOND, T0 + 3 * SECOND]
    );
    let by_pid = Filter {
        target_pid: Some(100),
        ..Filter::default()
    };
    assert_eq!(q(by_pid), [T0 + SECOND, T0 + 3 * SECOND, T0 + 4 * SECOND]);
    let by_comm = Filter {
        target_comm: Some("other".into()),
        ..Filter::default()
    };
    assert_eq!(q(by_comm), [T0 + 2 * SECOND]);
    let by_sender = Filter {
        sender_pid: Some(11),
        ..Filter::default()
    };
    assert_eq!(q(by_sender), [T0 + 2 * SECOND, T0 + 3 * SECOND]);
    let by_signal = Filter {
        signo: Some(15),
        ..Filter::default()
    };
    assert_eq!(q(by_signal), [T0 + SECOND]);
    let window = Filter {
        since_ns: Some(T0 + 2 * SECOND),
        until_ns: Some(T0 + 3 * SECOND),
        ..Filter::default()
    };
    assert_eq!(q(window), [T0 + 2 * SECOND, T0 + 3 * SECOND]);
    let nothing = Filter {
        target_pid: Some(100),
        sender_pid: Some(99),
        ..Filter::default()
    };
    assert!(q(nothing).is_empty());
    // The stored JSON and text come back as they went in.
    let all = reader.query(&Filter::default()).unwrap();
    let Entry::Event(first) = &all[0] else {
        panic!("{all:?}")
    };
    assert_eq!(first.kind, Kind::Signal);
    assert_eq!(first.text, format!("signal 15 at {}\n", T0 + SECOND));
    let json: serde_json::Value = serde_json::from_str(&first.json).unwrap();
    assert_eq!(json["signo"], 15);
}

#[test]
fn a_reused_pid_is_two_incarnations() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let first = proc_ref(4242, 1000);
    let second = proc_ref(4242, 9000);
    journal
        .insert_batch(&[
            signal(T0 + SECOND, 15, first.clone(), 10),
            exit(T0 + 2 * SECOND, first.clone(), Some(15)),
            signal(T0 + 10 * SECOND, 1, second.clone(), 10),
            signal(T0 + 11 * SECOND, 9, second.clone(), 10),
        ])
        .unwrap();
    let filter = Filter {
        target_pid: Some(4242),
        ..Filter::default()
    };
    let found = journal.incarnations(&filter).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].start_ticks, Some(1000));
    assert_eq!(found[0].start, first.start);
    assert_eq!((found[0].signals, found[0].events), (1, 2));
    assert_eq!(found[0].exit_ns, Some(T0 + 2 * SECOND));
    assert_eq!(found[1].start_ticks, Some(9000));
    assert_eq!((found[1].signals, found[1].events), (2, 2));
    assert_eq!(found[1].exit_ns, None);
    let mut times = Vec::new();
    journal
        .for_each(&filter, Some(&found[1]), |entry| {
            if let Entry::Event(ev) = entry {
                times.push(ev.time_ns);
            }
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(times, [T0 + 10 * SECOND, T0 + 11 * SECOND]);
    // The same pid and ticks in another boot is another process.
    let mut other_boot = signal(T0 + 20 * SECOND, 2, first.clone(), 10);
    other_boot.boot_id = "boot-b".to_owned();
    journal.insert_batch(&[other_boot]).unwrap();
    assert_eq!(journal.incarnations(&filter).unwrap().len(), 3);
}

#[test]
fn a_row_of_repeats_counts_as_all_of_them() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let target = proc_ref(4242, 1000);
    let mut repeats = signal(T0 + SECOND, 10, target.clone(), 10);
    repeats.count = 5000;
    repeats.last_ns = T0 + 2 * SECOND;
    journal
        .insert_batch(&[repeats, signal(T0 + 3 * SECOND, 15, target, 10)])
        .unwrap();
    let filter = Filter {
        target_pid: Some(4242),
        ..Filter::default()
    };
    let found = journal.incarnations(&filter).unwrap();
    assert_eq!((found[0].signals, found[0].events), (5001, 5001));
    assert_eq!(
        (found[0].first_ns, found[0].last_ns),
        (T0 + SECOND, T0 + 3 * SECOND)
    );
    let stored: Vec<(u64, i64, i64)> = journal
        .query(&filter)
        .unwrap()
        .into_iter()
        .filter_map(|entry| match entry {
            Entry::Event(ev) => Some((ev.count, ev.time_ns, ev.last_ns)),
            Entry::Gap(_) => None,
        })
        .collect();
    assert_eq!(
        stored,
        [
            (5000, T0 + SECOND, T0 + 2 * SECOND),
            (1, T0 + 3 * SECOND, T0 + 3 * SECOND)
        ]
    );
}

#[test]
fn gaps_come_in_time_order_where_they_overlap() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let a = proc_ref(100, 1000);
    journal
        .insert_batch(&[
            signal(T0 + SECOND, 15, a.clone(), 10),
            signal(T0 + 3 * SECOND, 15, a.clone(), 10),
            exit(T0 + 5 * SECOND, a.clone(), Some(15)),
        ])
        .unwrap();
    journal.add_gap(T0 + 2 * SECOND, 7, "ring_buffer").unwrap();
    journal.add_gap(T0 + 9 * SECOND, 3, "queue").unwrap();
    let kinds = |entries: &[Entry]| {
        entries
            .iter()
            .map(|e| match e {
                Entry::Event(ev) => {
                    format!("{}@{}", ev.kind.as_str(), (ev.time_ns - T0) / SECOND)
                }
                Entry::Gap(g) => format!("gap{}@{}", g.count, (g.time_ns - T0) / SECOND),
            })
            .collect::<Vec<_>>()
    };
    let all = journal.query(&Filter::default()).unwrap();
    assert_eq!(kinds(&all), ["signal@1", "gap7@2", "signal@3", "gap3@9"]);
    let late = Filter {
        since_ns: Some(T0 + 4 * SECOND),
        ..Filter::default()
    };
    assert_eq!(kinds(&journal.query(&late).unwrap()), ["gap3@9"]);
    let early = Filter {
        until_ns: Some(T0 + 1500 * SECOND / 1000),
        ..Filter::default()
    };
    assert_eq!(kinds(&journal.query(&early).unwrap()), ["signal@1"]);
    // For one process: only the gaps during its life (the second one came after its exit).
    let filter = Filter {
        target_pid: Some(100),
        ..Filter::default()
    };
    let process = journal.incarnations(&filter).unwrap().remove(0);
    let mut seen = Vec::new();
    journal
        .for_each(&filter, Some(&process), |entry| {
            seen.push(entry);
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(kinds(&seen), ["signal@1", "gap7@2", "signal@3", "exit@5"]);
}

fn big_row(i: i64) -> Row {
    let mut row = signal(
        T0 + i * SECOND,
        15,
        proc_ref(1000 + u32::try_from(i % 50).unwrap(), 7),
        10,
    );
    row.json = format!(
        "{{\"event\":\"signal\",\"n\":{i},\"pad\":\"{}\"}}",
        "x".repeat(2000)
    );
    row.text = format!("{i}\n{}\n", "y".repeat(1000));
    row
}

#[test]
fn retention_by_age_deletes_the_oldest() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let rows: Vec<Row> = (0..100).map(big_row).collect();
    journal.insert_batch(&rows).unwrap();
    journal.add_gap(T0 + 10 * SECOND, 1, "queue").unwrap();
    journal.add_gap(T0 + 90 * SECOND, 1, "queue").unwrap();
    // At T0 + 100 s, keep 30 s: events at 70..=99 s stay.
    let trim = journal
        .enforce_limits(u64::MAX, Duration::from_secs(30), T0 + 100 * SECOND)
        .unwrap();
    assert_eq!(trim.deleted_events, 70);
    assert_eq!(trim.deleted_gaps, 1);
    let left = events(&journal.query(&Filter::default()).unwrap());
    assert_eq!(left.first(), Some(&(T0 + 70 * SECOND)));
    assert_eq!(left.len(), 30);
}

#[test]
fn retention_by_size_deletes_the_oldest_and_shrinks_the_file() {
    let dir = TempDir::new();
    let path = dir.path("journal");
    let mut journal = Journal::create_or_open(&path).unwrap();
    let max = 1024 * 1024;
    journal.set_budget(max).unwrap();
    for batch in 0..10 {
        let rows: Vec<Row> = (0..200).map(|i| big_row(batch * 200 + i)).collect();
        journal.insert_batch(&rows).unwrap();
    }
    journal.checkpoint().unwrap();
    let before = journal.size_on_disk();
    assert!(before > 4 * max, "{before} bytes written");
    let trim = journal
        .enforce_limits(max, Duration::from_secs(u64::MAX / 4), T0 + 3000 * SECOND)
        .unwrap();
    assert!(trim.deleted_events > 1500, "{trim:?}");
    assert_eq!(trim.bytes_before, before);
    assert!(trim.bytes_after <= max, "{trim:?}");
    assert_eq!(trim.bytes_after, journal.size_on_disk());
    assert!(file_len(&path) <= max, "the database file itself shrank");
    let left = events(&journal.query(&Filter::default()).unwrap());
    assert!(!left.is_empty());
    // The newest survive, contiguous up to the last one.
    assert_eq!(left.last(), Some(&(T0 + 1999 * SECOND)));
    let first = (left[0] - T0) / SECOND;
    assert_eq!(
        i64::try_from(left.len()).unwrap(),
        2000 - first,
        "only the oldest went"
    );
    // Within budget: nothing more to do.
    let again = journal
        .enforce_limits(max, Duration::from_secs(u64::MAX / 4), T0 + 3000 * SECOND)
        .unwrap();
    assert_eq!(again.deleted_events, 0);
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = TempDir::new();
    // Missing.
    let missing = Journal::open_read_only(&dir.path("nothing")).err().unwrap();
    assert!(matches!(missing, JournalError::Missing(_)), "{missing}");
    // A directory.
    let err = Journal::open_read_only(&dir.0).err().unwrap();
    assert!(err.to_string().contains("is a directory"), "{err}");
    // Random bytes.
    let random = dir.path("random");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    fs::write(&random, &bytes).unwrap();
    let err = Journal::open_read_only(&random).err().unwrap();
    assert!(
        err.to_string().contains("is not an SQLite database"),
        "{err}"
    );
    // An empty file.
    let empty = dir.path("empty");
    fs::write(&empty, b"").unwrap();
    let err = Journal::open_read_only(&empty).err().unwrap();
    assert!(matches!(err, JournalError::Empty(_)), "{err}");
    // Another program's SQLite database, for reading and for recording.
    let foreign = dir.path("foreign.db");
    let conn = Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    fs::set_permissions(&foreign, fs::Permissions::from_mode(0o600)).unwrap();
    let err = Journal::open_read_only(&foreign).err().unwrap();
    assert!(err.to_string().contains("another program"), "{err}");
    let err = Journal::create_or_open(&foreign).err().unwrap();
    assert!(err.to_string().contains("another program"), "{err}");
    // A journal from a newer and an older sigwho.
    for (version, word) in [(SCHEMA_VERSION + 1, "newer"), (0, "older")] {
        let path = dir.path(&format!("v{version}"));
        Journal::create_or_open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {version}"))
            .unwrap();
        drop(conn);
        let err = Journal::open_read_only(&path).err().unwrap();
        assert!(err.to_string().contains(word), "{err}");
        let err = Journal::create_or_open(&path).err().unwrap();
        assert!(err.to_string().contains(word), "{err}");
    }
    // A truncated journal.
    let whole = dir.path("whole");
    let mut journal = Journal::create_or_open(&whole).unwrap();
    journal
        .insert_batch(&(0..50).map(big_row).collect::<Vec<_>>())
        .unwrap();
    drop(journal);
    assert_eq!(
        file_len(&wal_path(&whole)),
        0,
        "closing checkpointed the log"
    );
    let data = fs::read(&whole).unwrap();
    for cut in [50, 4096 + 100, data.len() / 2 / 4096 * 4096] {
        let truncated = dir.path(&format!("truncated-{cut}"));
        fs::write(&truncated, &data[..cut]).unwrap();
        let err = Journal::open_read_only(&truncated).err().unwrap();
        assert!(err.to_string().contains("truncated"), "{cut}: {err}");
    }
    // Every message is one line.
    for err in [missing, err] {
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn symlinks_are_refused() {
    let dir = TempDir::new();
    let real = dir.path("real");
    Journal::create_or_open(&real).unwrap();
    let link = dir.path("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = Journal::create_or_open(&link).err().unwrap();
    assert!(matches!(err, JournalError::Symlink(_)), "{err}");
    // A link to a directory where the journal would go.
    let real_dir = dir.path("real-dir");
    DirBuilder::new().mode(0o700).create(&real_dir).unwrap();
    let dir_link = dir.path("dir-link");
    std::os::unix::fs::symlink(&real_dir, &dir_link).unwrap();
    let err = Journal::create_or_open(&dir_link.join("journal"))
        .err()
        .unwrap();
    assert!(matches!(err, JournalError::Symlink(_)), "{err}");
    assert!(!real_dir.join("journal").exists());
    // A directory others can write.
    let open_dir = dir.path("open");
    DirBuilder::new().mode(0o777).create(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let err = Journal::create_or_open(&open_dir.join("journal"))
        .err()
        .unwrap();
    assert!(matches!(err, JournalError::UnsafeDirectory { .. }), "{err}");
}

#[test]
fn an_explicit_path_beats_the_environment_which_beats_the_default() {
    let env = || Some(std::ffi::OsString::from("/e/j"));
    assert_eq!(
        resolve_with(Some(Path::new("/x/y")), env()),
        Path::new("/x/y")
    );
    // Even an explicit path equal to the built-in default wins over the environment.
    assert_eq!(
        resolve_with(Some(Path::new(DEFAULT_JOURNAL)), env()),
        Path::new(DEFAULT_JOURNAL)
    );
    assert_eq!(resolve_with(None, env()), Path::new("/e/j"));
    assert_eq!(
        resolve_with(None, Some("".into())),
        Path::new(DEFAULT_JOURNAL)
    );
    assert_eq!(resolve_with(None, None), Path::new(DEFAULT_JOURNAL));
}
