//! Property tests over everything sigwho parses from outside: ring-buffer records,
//! hint rules, tracefs format files, /proc lines, times, signal names, cgroup paths.
//! Each must give a value or an error for any input, never a panic.
//!
//! CI runs the default number of cases; `cargo xtask fuzz` raises `PROPTEST_CASES` for a
//! longer run. Inputs that once failed belong in the `regressions` test below.

use proptest::prelude::*;
use tracer::{
    analysis::rules::Rules, kernel::decode, kernel::tracefs, model::cgroup, model::clock,
    model::procfs, model::signals,
};
use tracer_common::{EventHeader, kind};

/// A record header of a known kind followed by arbitrary bytes, so that the decoder's
/// per-kind length checks are exercised, not only the unknown-kind path.
fn record() -> impl Strategy<Value = Vec<u8>> {
    (0u32..8, proptest::collection::vec(any::<u8>(), 0..2048)).prop_map(|(record_kind, body)| {
        let header = EventHeader {
            kind: record_kind,
            cpu: 0,
            time_ns: 1,
        };
        // SAFETY: EventHeader is plain old data.
        let mut bytes = unsafe {
            std::slice::from_raw_parts((&raw const header).cast::<u8>(), size_of::<EventHeader>())
        }
        .to_vec();
        bytes.extend(body);
        bytes
    })
}

/// The plainest glob matcher there is (exponential, fine for short strings): what
/// `explain::glob_match` must agree with.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| reference_glob(rest, &text[skip..])),
        Some((&c, rest)) => text
            .split_first()
            .is_some_and(|(&t, tail)| (c == '?' || c == t) && reference_glob(rest, tail)),
    }
}

proptest! {
    #[test]
    fn glob_matches_like_the_reference(pattern in "[ab*?é]{0,8}", text in "[abé]{0,10}") {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(tracer::analysis::rules::glob_match(&pattern, &text), reference_glob(&p, &t));
    }

    #[test]
    fn decoder_never_panics(bytes in record()) {
        if let Ok(event) = decode::decode(&bytes) {
            prop_assert!(event.header().kind >= kind::SIGNAL);
        }
    }

    #[test]
    fn decoder_never_panics_on_raw_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode::decode(&bytes);
    }

    #[test]
    fn argv_split_round_trips(args in proptest::collection::vec("[^\u{0}]{1,12}", 1..6)) {
        let joined: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
        prop_assert_eq!(decode::split_args(&joined), args);
    }

    #[test]
    fn rules_parser_never_panics(text in ".{0,400}") {
        let _ = Rules::from_json(&text);
    }

    #[test]
    fn rules_parser_survives_json_shaped_input(
        id in "[a-z-]{0,12}",
        key in "(signals|origins|origin_class|relation|sender|cause|any|not|bogus)",
        value in "(\"SIGTERM\"|\\[\\]|\\{\\}|1|null|\"parent\"|\\{\"comm\":\"x\"\\})",
    ) {
        let text = format!(
            r#"{{"version":1,"rules":[{{"id":"{id}","text":"t","when":{{"{key}":{value}}}}}]}}"#
        );
        if let Err(error) = Rules::from_json(&text) {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }

    #[test]
    fn format_parser_never_panics(text in "(name: x\nID: 1\nformat:\n)?(\tfield:[a-z _\\[\\]0-9]{0,20};\toffset:[0-9a-z]{0,3};\tsize:[0-9]{0,2};\tsigned:[01]?;\n){0,6}.{0,40}") {
        let _ = tracefs::parse_format(&text);
    }

    #[test]
    fn stat_parser_never_panics(line in ".{0,200}") {
        let _ = procfs::parse_stat(&line);
    }

    #[test]
    fn stat_parser_reads_any_comm(comm in "[^\n]{0,16}", start in any::<u32>()) {
        let line = format!("42 ({comm}) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 1 \
                            1 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0");
        let stat = procfs::parse_stat(&line).expect("well-formed line");
        prop_assert_eq!(stat.comm, comm);
        prop_assert_eq!(stat.start_ticks, u64::from(start));
    }

    #[test]
    fn time_parser_never_panics(text in ".{0,40}") {
        let _ = clock::parse_time(&text, 1_800_000_000_000_000_000);
    }

    #[test]
    fn rfc3339_round_trips(secs in 0i64..4_000_000_000, nanos in 0i64..1_000_000_000) {
        let unix_ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        let text = clock::rfc3339_nanos(unix_ns);
        prop_assert_eq!(clock::parse_time(&text, 0).expect("own output parses"), unix_ns);
    }

    #[test]
    fn signal_parser_never_panics(text in ".{0,20}") {
        if let Ok(signo) = signals::parse_signal(&text) {
            prop_assert!((1..=64).contains(&signo));
        }
    }

    #[test]
    fn cgroup_parsers_never_panic(text in ".{0,300}") {
        if let Some(path) = cgroup::pick_path(&text) {
            let _ = cgroup::identity(&path);
        }
        let _ = cgroup::identity(&text);
    }
}

/// Inputs found by longer runs; kept so they stay fixed.
#[test]
fn regressions() {
    assert!(procfs::parse_stat("1 (").is_err());
    assert!(procfs::parse_stat(") (").is_err());
    let _ = tracefs::parse_format("format:\n\tfield:;");
    assert!(Rules::from_json("{").is_err());
    assert!(decode::decode(&[]).is_err());
}

// ---------------------------------------------------------------------------------------
// The journal read path (`sigwho query`): damaged journal files give errors, never panics.

mod journal_files {
    use std::{
        path::{Path, PathBuf},
        sync::{
            OnceLock,
            atomic::{AtomicU64, Ordering},
        },
    };

    use proptest::prelude::*;
    use tracer::{
        analysis::redact::Redaction,
        modes::query,
        store::journal::{Filter, Journal, Kind, ProcRef, Row},
    };

    fn scratch(name: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!("sigwho-fuzz-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(format!("{name}-{}", N.fetch_add(1, Ordering::Relaxed)))
    }

    fn remove(path: &Path) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }

    fn row(i: u32) -> Row {
        let target = ProcRef {
            pid: 4000 + i % 3,
            start_ticks: Some(100 + u64::from(i % 3)),
            start: Some("2026-11-26T09:00:00.000000000Z".to_owned()),
        };
        let time_ns = 1_800_000_000_000_000_000 + i64::from(i) * 1_000_000;
        let json = format!(
            r#"{{"event":"signal","signo":15,"sender":{{"pid":{},"argv":["kill","{}"]}},"target":{{"pid":{}}}}}"#,
            5000 + i,
            target.pid,
            target.pid
        );
        Row {
            time_ns,
            // Some rows stand for repeats, as a storm leaves them.
            count: 1 + u64::from(i % 3),
            last_ns: time_ns + 1_000,
            kind: if i % 5 == 4 { Kind::Exit } else { Kind::Signal },
            signo: Some(15),
            target_comm: Some("victim".to_owned()),
            target: Some(target),
            sender: Some(ProcRef {
                pid: 5000 + i,
                start_ticks: Some(7),
                start: None,
            }),
            boot_id: "boot-fuzz".to_owned(),
            json,
            text: format!("signal {i}\n"),
        }
    }

    /// A well-formed journal written through the recorder's own API, checkpointed into
    /// one file: the seed every damaged input starts from.
    fn seed() -> &'static [u8] {
        static SEED: OnceLock<Vec<u8>> = OnceLock::new();
        SEED.get_or_init(|| {
            let path = scratch("seed");
            {
                let mut journal = Journal::create_or_open(&path).expect("create journal");
                journal
                    .begin_session(1, "fuzz", "boot-fuzz", 1_800_000_000_000_000_000)
                    .expect("session");
                let rows: Vec<Row> = (0..40).map(row).collect();
                journal.insert_batch(&rows).expect("rows");
                journal
                    .add_gap(1_800_000_000_500_000_000, 3, "ring_buffer")
                    .expect("gap");
                journal.end_session(1_800_000_001_000_000_000).expect("end");
                journal.checkpoint().expect("checkpoint");
            }
            let bytes = std::fs::read(&path).expect("seed bytes");
            remove(&path);
            bytes
        })
    }

    /// Everything `sigwho query` does with a journal; true if it opened.
    fn read_all(bytes: &[u8]) -> bool {
        let path = scratch("case");
        std::fs::write(&path, bytes).expect("write case");
        let opened = match Journal::open_read_only(&path) {
            Ok(journal) => {
                let all = Filter::default();
                let by_pid = Filter {
                    target_pid: Some(4001),
                    ..Filter::default()
                };
                let _ = journal.query(&all);
                let _ = journal.incarnations(&by_pid);
                let _ = journal.gaps(None, None);
                let redaction = Redaction::new(&["kill".to_owned()]).expect("pattern");
                for json in [false, true] {
                    let _ = query::print(&journal, &all, json, &redaction, Vec::new());
                    let _ = query::print(&journal, &by_pid, json, &redaction, Vec::new());
                }
                true
            }
            Err(error) => {
                // As the binary prints it: one line (a damaged schema is quoted in full
                // by SQLite, over several lines; found by this test).
                let message = tracer::error::chain(&error);
                assert!(!message.is_empty() && !message.contains('\n'), "{message}");
                false
            }
        };
        remove(&path);
        opened
    }

    #[test]
    fn the_seed_reads_back() {
        let path = scratch("check");
        std::fs::write(&path, seed()).expect("write");
        let journal = Journal::open_read_only(&path).expect("seed opens");
        let entries = journal.query(&Filter::default()).expect("seed queries");
        // Every signal row is there (exits without a signal row may be folded in).
        assert!(entries.len() >= 32, "{} entries", entries.len());
        drop(journal);
        remove(&path);
        assert!(read_all(seed()));
    }

    /// Damage found by longer runs; kept so it stays handled.
    #[test]
    fn damaged_journal_regressions() {
        let seed = seed();
        // Empty, one byte, the bare SQLite magic, a header only, half a file.
        for len in [0, 1, 16, 100, seed.len() / 2] {
            let _ = read_all(&seed[..len.min(seed.len())]);
        }
        // The page size field (offset 16) zeroed, the whole second page zeroed.
        let mut bad = seed.to_vec();
        bad[16] = 0;
        bad[17] = 0;
        let _ = read_all(&bad);
        let mut bad = seed.to_vec();
        let page = 4096.min(bad.len());
        bad[page..(2 * page).min(seed.len())].fill(0);
        let _ = read_all(&bad);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

        #[test]
        fn truncated_journal_never_panics(cut in any::<prop::sample::Index>()) {
            let seed = seed();
            let _ = read_all(&seed[..cut.index(seed.len() + 1)]);
        }

        #[test]
        fn bit_flipped_journal_never_panics(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..24)
        ) {
            let mut bytes = seed().to_vec();
            let len = bytes.len();
            for (at, bit) in flips {
                bytes[at.index(len)] ^= 1 << bit;
            }
            let _ = read_all(&bytes);
        }

        #[test]
        fn overwritten_journal_never_panics(
            at in any::<prop::sample::Index>(),
            junk in proptest::collection::vec(any::<u8>(), 1..512),
        ) {
            let mut bytes = seed().to_vec();
            let start = at.index(bytes.len());
            let end = (start + junk.len()).min(bytes.len());
            bytes[start..end].copy_from_slice(&junk[..end - start]);
            let _ = read_all(&bytes);
        }

        #[test]
        fn random_bytes_never_panic(
            head in proptest::bool::ANY,
            junk in proptest::collection::vec(any::<u8>(), 0..8192),
        ) {
            let mut bytes = if head { seed()[..100].to_vec() } else { Vec::new() };
            bytes.extend(junk);
            let _ = read_all(&bytes);
        }
    }
}
