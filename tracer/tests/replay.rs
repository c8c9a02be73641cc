//! The replay test: a capture of real processes signalling each other
//! (tests/fixtures/replay/capture.jsonl, made by `sigwho record --raw` while
//! scenario.sh ran) goes through the analysis again, with no kernel and no /proc, and
//! must give the reports it gave when it was made (reports.jsonl, reports.txt), byte
//! for byte. No root needed.
//!
//! `capture_the_fixture` (ignored; root, a kernel, built binaries) makes all three
//! again: only when reports are meant to change, and the change is then reviewed in the
//! golden files' diff.

mod common;

use std::{
    collections::{BTreeSet, HashSet},
    path::{Path, PathBuf},
};

use serde_json::Value;
use tracer::{
    analysis::replay::{self, Capture, Lookup, RawPass},
    kernel::decode::Event,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replay")
        .join(name)
}

fn read(name: &str) -> String {
    let path = fixture(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The replayed reports as JSON lines and as text.
fn replayed(capture: &Capture) -> (String, String) {
    let reports = replay::replay(capture).expect("the capture replays");
    let json = reports
        .iter()
        .map(|r| tracer::render::json::report(r) + "\n")
        .collect();
    let text = reports.iter().map(tracer::render::text::report).collect();
    (json, text)
}

#[track_caller]
fn assert_same(name: &str, got: &str, want: &str) {
    if let Some((line, got, want)) = common::first_difference(got, want) {
        panic!("the replay differs from {name} at line {line}:\n got: {got}\nwant: {want}");
    }
}

#[test]
fn the_capture_replays_to_the_reports_it_made() {
    let capture = Capture::parse(&read("capture.jsonl")).expect("the capture parses");
    let (json, text) = replayed(&capture);
    assert_same("reports.jsonl", &json, &read("reports.jsonl"));
    assert_same("reports.txt", &text, &read("reports.txt"));
}

/// The fixture covers what the issue asks of it; a capture made again must too.
#[test]
fn the_capture_covers_every_kind_of_signal() {
    let reports: Vec<Value> = read("reports.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let signals: Vec<&Value> = reports.iter().filter(|r| r["event"] == "signal").collect();
    let any = |what: &str, test: &dyn Fn(&Value) -> bool| {
        assert!(
            signals.iter().any(|r| test(r)),
            "no {what} in reports.jsonl"
        );
    };
    any("kill", &|r| {
        r["origin"] == "kill" && r["scope"] == "process"
    });
    any("tgkill to a thread", &|r| {
        r["origin"] == "tgkill" && r["target"]["tid"] != r["target"]["pid"]
    });
    any("group kill", &|r| r["scope"] == "process_group");
    any("pidfd_send_signal", &|r| r["origin"] == "pidfd_send_signal");
    any("failed EPERM attempt", &|r| {
        r["result"] == "failed" && r["errno"] == "EPERM"
    });
    any("SIGSEGV", &|r| {
        r["signal"] == "SIGSEGV" && r["origin_class"] == "fault"
    });
    any("SIGPIPE", &|r| {
        r["signal"] == "SIGPIPE" && r["origin_class"] == "broken_pipe"
    });
    any("alarm", &|r| {
        r["signal"] == "SIGALRM" && r["origin_class"] == "timer"
    });
    any("SIGCHLD", &|r| {
        r["signal"] == "SIGCHLD" && r["origin_class"] == "child_state"
    });
    any("two-link cause chain", &|r| {
        r["cause"].as_array().is_some_and(|c| c.len() == 2)
    });
    any("exec after fork", &|r| {
        r["sender"]["execs"]
            .as_array()
            .is_some_and(|e| e.len() >= 2)
    });
    any("escalation", &|r| r["escalation"].is_object());
    any("storm of repeats", &|r| {
        r["repeats"]["count"].as_u64().is_some_and(|n| n >= 2)
    });
    assert!(
        reports
            .iter()
            .any(|r| r["event"] == "exit" && r["exit_code"] == 3),
        "no exit code in reports.jsonl"
    );
}

// ---------------------------------------------------------------------------------------
// Making the fixture

/// Runs scenario.sh under `sigwho record --raw`, keeps what concerns its processes and
/// writes capture.jsonl and, from its replay, reports.jsonl and reports.txt.
#[test]
#[ignore = "needs root and the eBPF programs; rewrites tests/fixtures/replay"]
fn capture_the_fixture() {
    let dir = std::env::temp_dir().join(format!("sigwho-replay-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for fifo in ["go", "done"] {
        let status = std::process::Command::new("mkfifo")
            .arg(dir.join(fifo))
            .status()
            .unwrap();
        assert!(status.success());
    }
    // Detached: its only ancestor is pid 1, not this test's runner.
    let status = std::process::Command::new("setsid")
        .arg("-f")
        .arg("bash")
        .arg(fixture("scenario.sh"))
        .arg(bin("SIGWHO_TESTPROC", "sigwho-testproc"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());

    let raw = dir.join("raw.jsonl");
    let exported = dir.join("exported.jsonl");
    let mut recorder = std::process::Command::new(bin("SIGWHO_BIN", "sigwho"))
        .arg("record")
        .arg("--journal")
        .arg(dir.join("journal"))
        .arg("--raw")
        .arg(&raw)
        .arg("--json-out")
        .arg(&exported)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(recorder.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("sigwho: recording") {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "the recorder ended before recording");
    }
    std::fs::write(dir.join("go"), "go\n").unwrap();
    let root: u32 = std::fs::read_to_string(dir.join("done"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &recorder.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "our own child, not reaped yet");
    assert!(recorder.wait().unwrap().success());

    let capture = Capture::parse(&std::fs::read_to_string(&raw).unwrap()).unwrap();
    let kept = keep_tree(&capture, root);
    let (json, text) = replayed(&kept);
    // What the recorder exported as it ran: the replay must have made each of these
    // reports, in the same order.
    let exported = std::fs::read_to_string(&exported).unwrap();
    let mut exported_lines = exported.lines();
    for line in json.lines() {
        assert!(
            exported_lines.any(|l| l == line),
            "the replay made a report the recorder did not:\n{line}"
        );
    }
    std::fs::write(fixture("capture.jsonl"), kept.to_text()).unwrap();
    std::fs::write(fixture("reports.jsonl"), json).unwrap();
    std::fs::write(fixture("reports.txt"), text).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn bin(env: &str, name: &str) -> PathBuf {
    let path = match std::env::var_os(env) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/debug")
            .join(name),
    };
    path.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e} (build the binaries first)", path.display()))
}

/// The part of `capture` about `root`'s process tree: its records (and the signals its
/// processes sent or got), the look-ups of the processes those name and their
/// ancestors, and the fold slots of its storms. The machine's other processes are left
/// out: they are noise, and none of this test's business.
fn keep_tree(capture: &Capture, root: u32) -> Capture {
    let events: Vec<Vec<Event>> = capture
        .passes
        .iter()
        .map(|pass| pass.pass().expect("the capture decodes").events)
        .collect();
    let mut tree = HashSet::from([root]);
    for event in events.iter().flatten() {
        if let Event::Fork(ev) = event
            && (tree.contains(&ev.child.ppid) || tree.contains(&ev.forker.pid))
        {
            tree.insert(ev.child.pid);
        }
    }
    let wanted = |event: &Event| match event {
        Event::Fork(ev) => tree.contains(&ev.child.pid),
        Event::Exec(ev) => tree.contains(&ev.task.pid),
        Event::Exit(ev) => tree.contains(&ev.task.pid),
        Event::Signal(ev) => tree.contains(&ev.sender.pid) || tree.contains(&ev.target.pid),
        Event::FailedSend(ev) => tree.contains(&ev.sender.pid),
        Event::OomVictim(ev) => tree.contains(&ev.pid),
        Event::Repeats(_) => false,
    };
    let rows: HashSet<u64> = events
        .iter()
        .flatten()
        .filter_map(|event| match event {
            Event::Signal(ev) if wanted(event) && ev.fold_id != 0 => Some(ev.fold_id),
            _ => None,
        })
        .collect();
    let keep = |event: &Event| match event {
        Event::Repeats(ev) => rows.contains(&ev.row),
        event => wanted(event),
    };

    // Every process the kept records name, then their parents as /proc showed them.
    let mut named = BTreeSet::from([root]);
    for event in events.iter().flatten().filter(|e| keep(e)) {
        named.extend(pids_named(event));
    }
    loop {
        let parents: Vec<u32> = capture
            .lookups
            .iter()
            .filter_map(|lookup| match lookup {
                Lookup::Process {
                    pid,
                    found: Some(snap),
                } if named.contains(pid) => Some(snap.stat.ppid),
                _ => None,
            })
            .filter(|ppid| *ppid != 0 && !named.contains(ppid))
            .collect();
        if parents.is_empty() {
            break;
        }
        named.extend(parents);
    }
    Capture {
        header: capture.header,
        lookups: keep_lookups(&capture.lookups, &named),
        passes: keep_passes(&capture.passes, &events, &keep, &rows),
    }
}

/// The look-ups of the processes in `named`.
fn keep_lookups(lookups: &[Lookup], named: &BTreeSet<u32>) -> Vec<Lookup> {
    lookups
        .iter()
        .filter_map(|lookup| match lookup {
            Lookup::Pids(pids) => Some(Lookup::Pids(
                pids.iter().copied().filter(|p| named.contains(p)).collect(),
            )),
            Lookup::Process { pid, .. }
            | Lookup::Stat { pid, .. }
            | Lookup::Exe { pid, .. }
            | Lookup::Cgroup { pid, .. }
            | Lookup::Tids { pid, .. } => named.contains(pid).then(|| lookup.clone()),
            Lookup::Pod { .. } => Some(lookup.clone()),
        })
        .collect()
}

/// The passes with their kept records, and the fold slots of the kept storms.
fn keep_passes(
    passes: &[RawPass],
    events: &[Vec<Event>],
    keep: &dyn Fn(&Event) -> bool,
    rows: &HashSet<u64>,
) -> Vec<RawPass> {
    let mut kept_passes = Vec::new();
    let mut previous_slots = false;
    for (pass, events) in passes.iter().zip(events) {
        let records = pass
            .records
            .iter()
            .zip(events)
            .filter(|(_, event)| keep(event))
            .map(|(record, _)| record.clone())
            .collect::<Vec<_>>();
        let mut kept = RawPass {
            records,
            ..pass.clone()
        };
        for slots in [&mut kept.slots_before, &mut kept.slots_after]
            .into_iter()
            .flatten()
        {
            slots.set.retain(|&(_, row, ..)| rows.contains(&row));
        }
        let has_slots = [&kept.slots_before, &kept.slots_after]
            .into_iter()
            .flatten()
            .any(|slots| !slots.set.is_empty());
        // A pass with nothing of the tree's changes nothing, unless the folds compare
        // its slot read with the one before.
        if kept.records.is_empty() && !has_slots && !previous_slots && !kept.last {
            continue;
        }
        previous_slots = has_slots;
        kept_passes.push(kept);
    }
    kept_passes
}

/// The pids a record names: its tasks, their parents, ancestors and cause senders.
fn pids_named(event: &Event) -> Vec<u32> {
    let mut pids = Vec::new();
    match event {
        Event::Signal(ev) => {
            pids.extend([ev.sender.pid, ev.sender.ppid, ev.target.pid, ev.target.ppid]);
            let len = (ev.ancestry_len as usize).min(ev.sender_ancestry.len());
            pids.extend(ev.sender_ancestry[..len].iter().map(|a| a.pid));
            let len = (ev.cause_len as usize).min(ev.causes.len());
            pids.extend(ev.causes[..len].iter().map(|c| c.sender_pid));
        }
        Event::FailedSend(ev) => {
            pids.extend([ev.sender.pid, ev.sender.ppid]);
            let len = (ev.ancestry_len as usize).min(ev.sender_ancestry.len());
            pids.extend(ev.sender_ancestry[..len].iter().map(|a| a.pid));
        }
        Event::Fork(ev) => pids.extend([ev.child.pid, ev.child.ppid, ev.forker.pid]),
        Event::Exec(ev) => pids.extend([ev.task.pid, ev.task.ppid]),
        Event::Exit(ev) => pids.extend([ev.task.pid, ev.task.ppid]),
        Event::OomVictim(ev) => pids.push(ev.pid),
        Event::Repeats(_) => {}
    }
    pids.retain(|&pid| pid != 0);
    pids
}
