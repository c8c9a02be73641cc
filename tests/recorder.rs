//! `sigwho record` and `sigwho query` with the real eBPF programs: signals recorded
//! system-wide into a journal survive a SIGKILL of the recorder and a restart, are
//! visible to queries within a second while the recorder writes, age out, and bad
//! journal files fail cleanly. Also `sigwho --target-pid` for a process that is gone,
//! answered from the journal (`$SIGWHO_JOURNAL`).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use sigwho_tests::{
    Run, Sigwho, Storm, Target, TempDir, Value, count_repeated, field_i64, field_str, is_exit,
    is_signal, require_root, run, sigwho_bin, strings, testproc, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// A recorder killed outright loses at most this much: what it saw longer ago is in
/// the journal.
const FLUSH_LIMIT: Duration = Duration::from_secs(1);
const READY: &str = "sigwho: recording";

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn record(journal: &Path, extra: &[&str]) -> Sigwho {
    require_root();
    let mut cmd = Sigwho::command(&["record", "--journal", s(journal)]);
    cmd.args(extra);
    Sigwho::start_waiting_for(cmd, READY)
}

fn query(journal: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["query", "--journal", s(journal)]).args(args);
    run(cmd, EVENT_TIMEOUT)
}

/// `sigwho query --journal J ARGS --json`, parsed; panics unless it exits 0.
fn query_json(journal: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.push("--json");
    let r = query(journal, &all).assert_success();
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

fn for_pid(pid: i32) -> Vec<String> {
    vec!["--target-pid".to_owned(), pid.to_string()]
}

/// Queries (in a loop, no sleeping beyond the harness's poll) until the journal has an
/// event for `pid` that `pred` accepts; returns it and how long that took.
#[track_caller]
fn wait_recorded(journal: &Path, pid: i32, pred: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let start = Instant::now();
    let args = for_pid(pid);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut found = None;
    let mut last = Vec::new();
    // When the last query that did not find it began: the event was not visible then, and
    // was by the end of the next one. Timing the query that found it would add a process
    // start and a journal open (a second or more on a loaded machine) to the recorder's
    // flush delay, which is what FLUSH_LIMIT bounds.
    let mut unseen_at = Duration::ZERO;
    let ok = wait_until(
        || {
            let began = start.elapsed();
            last = query_json(journal, &args);
            found = last.iter().find(|e| pred(e)).cloned();
            if found.is_none() {
                unseen_at = began;
            }
            found.is_some()
        },
        EVENT_TIMEOUT,
    );
    assert!(
        ok,
        "no matching event for pid {pid} in the journal: {last:#?}"
    );
    (found.unwrap(), unseen_at)
}

fn sent_by(sig: &'static str, sender: i32) -> impl Fn(&Value) -> bool {
    move |ev| is_signal(sig)(ev) && field_i64(ev, "sender.pid") == Some(i64::from(sender))
}

fn assert_sender(ev: &Value, sender: &Run, args: &[&str]) {
    assert_eq!(
        field_i64(ev, "sender.pid"),
        Some(i64::from(sender.pid)),
        "{ev}"
    );
    assert_eq!(strings(ev, "sender.argv")[1..], *args, "{ev}");
    assert!(
        field_str(ev, "sender.exe").is_some_and(|e| e.ends_with("sigwho-testproc")),
        "{ev}"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one journal through a SIGKILL and a restart, checked before and after: the \
              steps build on one another"
)]
fn journal_survives_sigkill_and_restart() {
    let dir = TempDir::new("kill");
    let journal = dir.path("state/journal");
    let mut first = record(&journal, &[]);
    let mut latencies = Vec::new();

    // Three ways to send, to one target.
    let mut target = Target::spawn(&["--handle", "USR1", "--handle", "USR2", "--handle", "HUP"]);
    let pid = target.pid.to_string();
    let kill = testproc(&["kill", &pid, "USR1"]).assert_success();
    let (_, latency) = wait_recorded(&journal, target.pid, sent_by("SIGUSR1", kill.pid));
    latencies.push(latency);
    let tgkill = testproc(&["tgkill", &pid, &pid, "USR2"]).assert_success();
    let (_, latency) = wait_recorded(&journal, target.pid, sent_by("SIGUSR2", tgkill.pid));
    latencies.push(latency);
    let sigqueue = testproc(&["sigqueue", &pid, "HUP", "42"]).assert_success();
    let (_, latency) = wait_recorded(&journal, target.pid, sent_by("SIGHUP", sigqueue.pid));
    latencies.push(latency);

    // A relay: A kills B, B relays TERM to C, C dies of it.
    let mut c = Target::spawn(&[]);
    let mut b = Target::spawn(&["--relay", &format!("TERM:{}", c.pid)]);
    let a = testproc(&["kill", &b.pid.to_string(), "TERM"]).assert_success();
    let (_, latency) = wait_recorded(&journal, c.pid, is_signal("SIGTERM"));
    latencies.push(latency);
    assert!(b.wait(EVENT_TIMEOUT).success(), "B relays and exits 0");
    assert!(c.wait(EVENT_TIMEOUT).code().is_none(), "C dies of SIGTERM");
    wait_recorded(&journal, c.pid, is_exit);

    let slowest = latencies.iter().max().copied().unwrap_or_default();
    eprintln!("not yet in the journal after (latest miss): {latencies:?}");
    assert!(
        slowest <= FLUSH_LIMIT,
        "events must reach the journal within {FLUSH_LIMIT:?}: {latencies:?}"
    );

    // Killed outright: everything seen so far stays, and the journal opens.
    assert!(first.signal(libc::SIGKILL));
    let (status, _) = first.wait_exit(EVENT_TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let before = query_json(&journal, &["--target-pid", &pid]);
    assert_eq!(
        before.iter().filter(|e| is_signal_event(e)).count(),
        3,
        "{before:#?}"
    );

    // A new recorder on the same journal; queries run while it writes.
    let mut second = record(&journal, &[]);
    let again = testproc(&["kill", &pid, "USR1"]).assert_success();
    let (_, latency) = wait_recorded(&journal, target.pid, sent_by("SIGUSR1", again.pid));
    eprintln!("not yet in the journal after the restart: {latency:?}");
    assert!(latency <= FLUSH_LIMIT, "{latency:?}");

    assert!(second.signal(libc::SIGTERM));
    let (status, _) = second.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "SIGTERM: exit 0\n{}", second.report());
    let summary: Vec<String> = second
        .stderr()
        .into_iter()
        .filter(|l| l.starts_with("sigwho: recorded "))
        .collect();
    assert_eq!(summary.len(), 1, "one summary line: {:?}", second.stderr());
    assert!(
        summary[0].contains(" events (") && summary[0].contains("; dropped "),
        "{summary:?}"
    );

    // Every signal, with its sender, in time order, as one process.
    let events = query_json(&journal, &["--target-pid", &pid]);
    let signals: Vec<&Value> = events.iter().filter(|e| is_signal_event(e)).collect();
    assert_eq!(signals.len(), 4, "{events:#?}");
    assert_sender(signals[0], &kill, &["kill", &pid, "USR1"]);
    assert_eq!(field_str(signals[0], "origin"), Some("kill"));
    assert_sender(signals[1], &tgkill, &["tgkill", &pid, &pid, "USR2"]);
    assert_eq!(field_str(signals[1], "origin"), Some("tgkill"));
    assert_sender(signals[2], &sigqueue, &["sigqueue", &pid, "HUP", "42"]);
    assert_eq!(field_str(signals[2], "origin"), Some("rt_sigqueueinfo"));
    assert_eq!(field_i64(signals[2], "value"), Some(42));
    assert_sender(signals[3], &again, &["kill", &pid, "USR1"]);
    let times: Vec<&str> = signals
        .iter()
        .filter_map(|e| field_str(e, "time"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time order: {times:?}"
    );
    let start = field_str(signals[0], "target.start_time");
    assert!(start.is_some());
    assert!(
        signals
            .iter()
            .all(|e| field_str(e, "target.start_time") == start),
        "one incarnation: {events:#?}"
    );

    // Text: a header for the process, then the live view's text.
    // Whole lines: the header's call is last, and 100 columns may cut it.
    let text = query(&journal, &["--target-pid", &pid, "--wide"])
        .assert_success()
        .stdout;
    let header = format!("pid {pid} started {}: 4 signals", start.unwrap_or_default());
    assert_eq!(text.lines().next(), Some(header.as_str()), "{text}");
    assert!(text.contains(&format!("kill({pid}, SIGUSR1)")), "{text}");
    // Other filters.
    let by_sender = query_json(
        &journal,
        &[
            "--target-pid",
            &pid,
            "--sender-pid",
            &tgkill.pid.to_string(),
        ],
    );
    assert_eq!(by_sender.len(), 1, "{by_sender:#?}");
    let by_signal = query_json(&journal, &["--target-pid", &pid, "--signal", "HUP"]);
    assert_eq!(by_signal.len(), 1, "{by_signal:#?}");
    let future = query_json(
        &journal,
        &["--target-pid", &pid, "--since", "2999-01-01T00:00:00Z"],
    );
    assert!(future.is_empty(), "{future:#?}");
    let recent = query_json(&journal, &["--target-pid", &pid, "--since", "1h"]);
    assert_eq!(recent.iter().filter(|e| is_signal_event(e)).count(), 4);

    // The relay's cause chain, and how C ended.
    let c_events = query_json(&journal, &["--target-pid", &c.pid.to_string()]);
    let term = c_events
        .iter()
        .find(|e| is_signal("SIGTERM")(e))
        .unwrap_or_else(|| panic!("{c_events:#?}"));
    assert_eq!(
        field_i64(term, "sender.pid"),
        Some(i64::from(b.pid)),
        "{term}"
    );
    assert_eq!(
        field_i64(term, "cause.0.sender.pid"),
        Some(i64::from(a.pid)),
        "{term}"
    );
    assert_eq!(
        field_i64(term, "cause.0.target.pid"),
        Some(i64::from(b.pid)),
        "{term}"
    );
    assert_eq!(
        field_i64(term, "root_sender.pid"),
        Some(i64::from(a.pid)),
        "{term}"
    );
    let exit = c_events.last().unwrap();
    assert!(is_exit(exit), "the exit comes last: {c_events:#?}");
    assert_eq!(field_str(exit, "signal"), Some("SIGTERM"), "{exit}");

    // `sigwho --target-pid C`: gone, so answered from the (default) journal.
    let mut live = Command::new(sigwho_bin());
    live.args(["--target-pid", &c.pid.to_string(), "--json"])
        .env("SIGWHO_JOURNAL", &journal);
    let answer = run(live, EVENT_TIMEOUT).assert_success();
    assert_eq!(
        answer.stderr,
        format!(
            "sigwho: pid {} is not running; answering from the journal {}\n",
            c.pid,
            journal.display()
        )
    );
    let lines: Vec<Value> = answer
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, c_events, "the same answer as sigwho query");
    // An explicit --journal wins over $SIGWHO_JOURNAL.
    let mut live = Command::new(sigwho_bin());
    live.args([
        "--target-pid",
        &c.pid.to_string(),
        "--json",
        "--journal",
        s(&journal),
    ])
    .env("SIGWHO_JOURNAL", "/nonexistent/sigwho-journal");
    let explicit = run(live, EVENT_TIMEOUT).assert_success();
    assert_eq!(explicit.stdout, answer.stdout);
    let mut live = Command::new(sigwho_bin());
    live.args([
        "--target-pid",
        &c.pid.to_string(),
        "--journal",
        "/nonexistent/sigwho-journal",
    ])
    .env("SIGWHO_JOURNAL", &journal);
    let r = run(live, EVENT_TIMEOUT);
    assert_eq!(r.status.code(), Some(2), "{r}");
    assert!(r.stderr.contains("no process with pid"), "{r}");
    target.close_stdin();
    assert!(target.wait(EVENT_TIMEOUT).success());
}

fn is_signal_event(ev: &Value) -> bool {
    field_str(ev, "event") == Some("signal")
}

#[test]
fn old_events_age_out_while_recording() {
    let dir = TempDir::new("age");
    let journal = dir.path("journal");
    let _recorder = record(&journal, &["--max-age", "2s"]);
    let target = Target::spawn(&["--handle", "USR1"]);
    let sender = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    wait_recorded(&journal, target.pid, sent_by("SIGUSR1", sender.pid));
    let pid = target.pid.to_string();
    let gone = wait_until(
        || {
            query_json(&journal, &["--target-pid", &pid])
                .iter()
                .all(|e| !is_signal_event(e))
        },
        EVENT_TIMEOUT,
    );
    assert!(gone, "a signal older than --max-age 2s is deleted");
}

/// How many signals `events` stand for: a stored repeat counts as its `repeats.count`.
fn signals_in(events: &[Value], sig: &str) -> u64 {
    events
        .iter()
        .filter(|e| is_signal(sig)(e))
        .map(|e| {
            e.pointer("/repeats/count")
                .and_then(Value::as_u64)
                .unwrap_or(1)
        })
        .sum()
}

/// A storm of identical signals is folded into counts in the kernel instead of being
/// reported one by one, and every signal is still in the journal: exactly the number
/// the senders counted themselves, while the recorder runs (the end of the storm is
/// read from the kernel's fold slots, with no later signal to flush it) and after it
/// stopped; `--json-out` says the same with far fewer objects.
#[test]
fn storm_is_folded_in_the_kernel_and_every_signal_counted() {
    let dir = TempDir::new("storm");
    let journal = dir.path("journal");
    let json_out = dir.path("out.jsonl");
    let mut recorder = record(&journal, &["--json-out", s(&json_out)]);
    let mut storm = Command::new(env!("CARGO_BIN_EXE_sigwho-storm"));
    storm.args(["--senders", "2", "--duration", "1"]);
    let storm = run(storm, EVENT_TIMEOUT).assert_success();
    let field = |name: &str| -> u64 {
        storm
            .stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {:?}", storm.stdout))
    };
    let (calls, victim) = (field("calls="), field("victim="));
    assert!(calls > 10_000, "a storm: {}", storm.stdout);
    let victim = i32::try_from(victim).expect("a pid");

    let pid = victim.to_string();
    let mut stored = Vec::new();
    let complete = wait_until(
        || {
            stored = query_json(&journal, &["--target-pid", &pid]);
            signals_in(&stored, "SIGUSR1") == calls
        },
        EVENT_TIMEOUT,
    );
    assert!(
        complete,
        "the journal holds {} of the {calls} SIGUSR1 the storm sent, while recording",
        signals_in(&stored, "SIGUSR1")
    );
    let senders: std::collections::BTreeSet<i64> = stored
        .iter()
        .filter(|e| is_signal("SIGUSR1")(e))
        .filter_map(|e| field_i64(e, "sender.pid"))
        .collect();
    assert_eq!(senders.len(), 2, "two sender processes: {senders:?}");

    recorder.signal(libc::SIGTERM);
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "the recorder stops cleanly: {status:?}");
    let summary = recorder.stderr().join("\n");
    assert!(summary.contains("dropped 0"), "nothing dropped: {summary}");
    let stored = query_json(&journal, &["--target-pid", &pid]);
    assert_eq!(
        signals_in(&stored, "SIGUSR1"),
        calls,
        "after the recorder stopped"
    );

    let exported: Vec<Value> = std::fs::read_to_string(&json_out)
        .expect("--json-out file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .filter(|e: &Value| field_i64(e, "target.pid") == Some(i64::from(victim)))
        .collect();
    let exported_count: u64 = exported
        .iter()
        .filter(|e| is_signal("SIGUSR1")(e))
        .map(|e| field_i64(e, "repeats.count").map_or(1, |n| u64::try_from(n).unwrap()))
        .sum();
    assert_eq!(exported_count, calls, "--json-out counts every signal");
    assert!(
        (exported.len() as u64) < calls / 100,
        "folded in the kernel: {} objects for {calls} signals",
        exported.len()
    );
}

#[test]
fn bad_journals_fail_with_one_line_and_status_2() {
    let dir = TempDir::new("bad");
    // A real journal, cleanly closed, to truncate.
    let journal = dir.path("journal");
    let mut recorder = record(&journal, &[]);
    let target = Target::spawn(&["--handle", "USR1"]);
    let sender = testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    wait_recorded(&journal, target.pid, sent_by("SIGUSR1", sender.pid));
    assert!(recorder.signal(libc::SIGTERM));
    assert!(recorder.wait_exit(EVENT_TIMEOUT).0.success());
    let whole = std::fs::read(&journal).unwrap();
    assert!(whole.len() >= 2 * 4096, "{} bytes", whole.len());
    let truncated = dir.path("truncated");
    std::fs::write(&truncated, &whole[..whole.len() / 2 / 4096 * 4096]).unwrap();
    let random = dir.path("random");
    let noise: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11).to_le_bytes()[0])
        .collect();
    std::fs::write(&random, noise).unwrap();
    let directory = dir.path("a-directory");
    std::fs::create_dir(&directory).unwrap();

    for (path, says) in [
        (&truncated, "truncated"),
        (&random, "not an SQLite database"),
        (&directory, "is a directory"),
        (&dir.path("missing"), "no journal at"),
    ] {
        let r = query(path, &["--target-pid", &target.pid.to_string()]);
        assert_eq!(r.status.code(), Some(2), "{}: {r}", path.display());
        assert_eq!(r.stderr.lines().count(), 1, "one line: {r}");
        assert!(r.stderr.starts_with("sigwho: "), "{r}");
        assert!(
            r.stderr.contains(says),
            "{}: expected {says:?}: {r}",
            path.display()
        );
    }

    // The recorder refuses a symlink before loading anything.
    let link = dir.path("link");
    std::os::unix::fs::symlink(&journal, &link).unwrap();
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["record", "--journal", s(&link)]);
    let r = run(cmd, EVENT_TIMEOUT);
    assert_eq!(r.status.code(), Some(2), "{r}");
    assert!(r.stderr.contains("symbolic link"), "{r}");
}

#[test]
fn live_view_without_a_journal_keeps_its_error() {
    // A pid that ran and is gone (reaped).
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let mut live = Command::new(sigwho_bin());
    live.args(["--target-pid", &pid.to_string()])
        .env("SIGWHO_JOURNAL", "/nonexistent/sigwho-journal");
    let r = run(live, EVENT_TIMEOUT);
    assert_eq!(r.status.code(), Some(2), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert!(
        r.stderr
            .starts_with(&format!("sigwho: no process with pid {pid} is running")),
        "{r}"
    );
}

#[test]
fn sighup_reopens_the_journal_after_a_rotation() {
    let dir = TempDir::new("hup");
    let journal = dir.path("journal");
    let rotated = dir.path("journal.1");
    let mut recorder = record(&journal, &[]);
    let target = Target::spawn(&["--handle", "USR1", "--handle", "USR2"]);
    let pid = target.pid.to_string();
    let before = testproc(&["kill", &pid, "USR1"]).assert_success();
    wait_recorded(&journal, target.pid, sent_by("SIGUSR1", before.pid));

    // What logrotate does: rename, then HUP the recorder (by its pid).
    std::fs::rename(&journal, &rotated).unwrap();
    assert!(recorder.signal(libc::SIGHUP));
    let reopened = |r: &Sigwho| {
        r.stderr().iter().any(|l| {
            l.starts_with("sigwho: SIGHUP: reopened the journal") && l.contains("a new file")
        })
    };
    assert!(
        wait_until(|| reopened(&recorder), EVENT_TIMEOUT),
        "{:?}",
        recorder.stderr()
    );
    let after = testproc(&["kill", &pid, "USR2"]).assert_success();
    wait_recorded(&journal, target.pid, sent_by("SIGUSR2", after.pid));

    assert!(recorder.signal(libc::SIGTERM));
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", recorder.report());

    // The signal before the rotation is in the renamed file only, the one after in
    // the new file only, each with its sender; nothing was dropped.
    let old = query_json(&rotated, &["--target-pid", &pid]);
    let old: Vec<&Value> = old.iter().filter(|e| is_signal_event(e)).collect();
    assert_eq!(old.len(), 1, "{old:#?}");
    assert_sender(old[0], &before, &["kill", &pid, "USR1"]);
    let new = query_json(&journal, &["--target-pid", &pid]);
    let new: Vec<&Value> = new.iter().filter(|e| is_signal_event(e)).collect();
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_sender(new[0], &after, &["kill", &pid, "USR2"]);
    assert!(
        !dir.path("journal.1-wal").exists()
            || std::fs::metadata(dir.path("journal.1-wal")).unwrap().len() == 0,
        "the renamed journal is complete on its own"
    );
    let summary = recorder
        .stderr()
        .into_iter()
        .find(|l| l.starts_with("sigwho: recorded "))
        .unwrap_or_default();
    assert!(summary.ends_with("; dropped 0"), "{summary}");
}

/// sigwho-storm's arguments for a short storm of `shape` with exec churn beside it.
fn storm_args<'a>(shape: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--senders", "2", "--duration", "0.4", "--churn", "200"];
    args.extend_from_slice(shape);
    args
}

/// The storm shapes of issue 15, each with 200 exec+exit per second beside it: a victim
/// that handles the signal (its results alternate between delivered and already
/// pending), tgkill, kill(-pgrp) to a group of two, and refused calls (EPERM from an
/// unprivileged sender, ESRCH). The journal holds exactly what each storm counted
/// itself, and `--json-out` says the same: a count, never a speed.
#[test]
fn storms_of_every_shape_with_churn_are_counted_exactly() {
    let dir = TempDir::new("shapes");
    let journal = dir.path("journal");
    let json_out = dir.path("out.jsonl");
    let mut recorder = record(&journal, &["--json-out", s(&json_out)]);
    let shapes: [&[&str]; 5] = [
        &["--victim", "handle"],
        &["--call", "tgkill", "--victim", "handle"],
        &["--call", "group", "--victim", "handle"],
        &["--fail", "eperm"],
        &["--fail", "esrch"],
    ];
    let storms: Vec<_> = shapes
        .iter()
        .map(|shape| {
            let counts = Storm::ready(&storm_args(shape)).run();
            assert!(
                counts.signals + counts.failed > 1000,
                "a storm {shape:?}: {}",
                counts.line
            );
            (shape, counts)
        })
        .collect();
    recorder.signal(libc::SIGTERM);
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "the recorder stops cleanly: {status:?}");
    let summary = recorder.stderr().join("\n");
    assert!(summary.contains("dropped 0"), "nothing dropped: {summary}");

    let exported: Vec<Value> = std::fs::read_to_string(&json_out)
        .expect("--json-out file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    for (shape, counts) in &storms {
        let mut stored = Vec::new();
        for sender in &counts.senders {
            stored.extend(query_json(&journal, &["--sender-pid", &sender.to_string()]));
        }
        let from_senders = |e: &Value| {
            field_i64(e, "sender.pid")
                .is_some_and(|p| counts.senders.iter().any(|&s| i64::from(s) == p))
        };
        if counts.failed > 0 {
            let errno = if shape.contains(&"eperm") {
                "EPERM"
            } else {
                "ESRCH"
            };
            let refused = |e: &Value| {
                is_signal("SIGUSR1")(e)
                    && field_str(e, "result") == Some("failed")
                    && field_str(e, "errno") == Some(errno)
            };
            assert_eq!(
                count_repeated(&stored, refused),
                counts.failed,
                "{shape:?} journal: {}",
                counts.line
            );
            assert_eq!(
                count_repeated(&exported, |e| from_senders(e) && refused(e)),
                counts.failed,
                "{shape:?} --json-out: {}",
                counts.line
            );
            continue;
        }
        for victim in &counts.victims {
            let at_victim = |e: &Value| {
                is_signal("SIGUSR1")(e) && field_i64(e, "target.pid") == Some(i64::from(*victim))
            };
            assert_eq!(
                count_repeated(&stored, at_victim),
                counts.calls,
                "{shape:?} journal, victim {victim}: {}",
                counts.line
            );
            assert_eq!(
                count_repeated(&exported, |e| from_senders(e) && at_victim(e)),
                counts.calls,
                "{shape:?} --json-out, victim {victim}: {}",
                counts.line
            );
        }
        assert_eq!(
            count_repeated(&stored, is_signal("SIGUSR1")),
            counts.signals,
            "{shape:?}: {}",
            counts.line
        );
    }
}

/// The per-CPU key cache's hard cases (tracer-ebpf/src/storm.rs, `FoldCache`), each with
/// exec churn beside it and counted exactly: senders that move to the next CPU every 256
/// calls (one key cached on every CPU at once, its repeats pending on each); and a storm
/// that stops for longer than the recorder's idle time (2 s) and starts again with the
/// same keys (entries idle while a CPU's cache may hold repeats of them, the churn's
/// SIGCHLDs taking its ways meanwhile). A full map is not run here: it takes 8192 keys,
/// each a full record, which every recorder of the tests running beside this one
/// stores too.
#[test]
fn storm_keys_that_migrate_or_pause_are_counted_exactly() {
    let dir = TempDir::new("cachecases");
    let journal = dir.path("journal");
    let mut recorder = record(&journal, &[]);
    let shapes: [&[&str]; 2] = [
        &["--victim", "handle", "--migrate"],
        &["--victim", "handle", "--gap", "2.5"],
    ];
    let storms: Vec<_> = shapes
        .iter()
        .map(|shape| {
            let counts = Storm::ready(&storm_args(shape)).run();
            assert!(counts.signals > 1000, "a storm {shape:?}: {}", counts.line);
            (shape, counts)
        })
        .collect();
    recorder.signal(libc::SIGTERM);
    let (status, _) = recorder.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "the recorder stops cleanly: {status:?}");
    let summary = recorder.stderr().join("\n");
    assert!(summary.contains("dropped 0"), "nothing dropped: {summary}");
    for (shape, counts) in &storms {
        let mut stored = Vec::new();
        for sender in &counts.senders {
            stored.extend(query_json(&journal, &["--sender-pid", &sender.to_string()]));
        }
        let at_victim = |e: &Value| {
            is_signal("SIGUSR1")(e)
                && field_i64(e, "target.pid") == Some(i64::from(counts.victims[0]))
        };
        assert_eq!(
            count_repeated(&stored, at_victim),
            counts.signals,
            "{shape:?} journal: {}",
            counts.line
        );
    }
}

/// A journal written by sigwho before issue 15 (8371a59, release build), where a row of
/// repeats stored its count in the `count` column and its times in `time_ns` and
/// `last_ns`, and `query` printed them as top-level `count`, `first_time` and
/// `last_time`: today's query reads it and prints every row of repeats in the one shape,
/// `repeats {count, first_time, last_time}`, with the counts as written. The fixture
/// holds one shell's 500 `kill -USR1` at a process ignoring SIGUSR1 (the old kernel fold
/// stored them as rows of 498 and 2), then its `kill -USR2`, which killed it, and two
/// SIGCHLDs; made with `sigwho record` of 8371a59, everything else on the machine then
/// deleted from it, and ancestries cut at the generating script (the machine's own
/// processes above it are not the project's), with Python's sqlite3.
#[test]
fn an_old_journal_reads_in_the_one_repeats_shape() {
    let dir = TempDir::new("oldjournal");
    let journal = dir.path("journal");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/journal-8371a59.sqlite"
        ),
        &journal,
    )
    .expect("copy the fixture");
    let rows = query_json(&journal, &[]);
    let summary: Vec<(&str, Option<u64>)> = rows
        .iter()
        .map(|e| {
            (
                field_str(e, "signal").unwrap_or("?"),
                e.pointer("/repeats/count").and_then(Value::as_u64),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("SIGUSR1", Some(498)),
            ("SIGUSR1", Some(2)),
            ("SIGUSR2", None),
            ("SIGCHLD", None),
            ("SIGCHLD", None),
        ],
        "{rows:#?}"
    );
    let usr1 = |e: &Value| is_signal("SIGUSR1")(e) && field_i64(e, "target.pid") == Some(14702);
    assert_eq!(
        count_repeated(&rows, usr1),
        500,
        "every kill -USR1 of the loop"
    );
    for row in rows.iter().filter(|e| e.get("repeats").is_some()) {
        for old in ["count", "first_time", "last_time"] {
            assert!(row.get(old).is_none(), "no top-level {old}: {row}");
        }
        let repeats = row["repeats"].as_object().expect("repeats is an object");
        let mut keys: Vec<&str> = repeats.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["count", "first_time", "last_time"], "{row}");
        assert_eq!(
            repeats["first_time"], row["time"],
            "the first is the row's time: {row}"
        );
    }
    assert_eq!(
        rows[1]["repeats"]["last_time"], "2026-12-06T04:22:28.311563656Z",
        "the last time as written"
    );
    let text = query(&journal, &["--sender-pid", "14707"])
        .assert_success()
        .stdout;
    assert!(text.contains("  x498 between "), "{text}");
    assert!(
        text.contains(
            "  x2 between 2026-12-06T04:22:28.311552511Z and 2026-12-06T04:22:28.311563656Z"
        ),
        "{text}"
    );
}
