//! Property tests over everything sigwho parses from outside: ring-buffer records,
//! hint rules, tracefs format files, /proc lines, times, signal names, cgroup paths.
//! Each must give a value or an error for any input, never a panic.
//!
//! CI runs the default number of cases; `cargo xtask fuzz` raises PROPTEST_CASES for a
//! longer run. Inputs that once failed belong in the `regressions` test below.

use proptest::prelude::*;
use tracer::{cgroup, clock, decode, explain::Rules, procfs, signals, tracefs};
use tracer_ebpf::{EventHeader, kind};

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
        prop_assert_eq!(tracer::explain::glob_match(&pattern, &text), reference_glob(&p, &t));
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
        let line = format!("42 ({comm}) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 1");
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
