//! `sigwho run -- CMD` with the real eBPF programs, real processes and real signals: the
//! command's output passes through untouched, its status is sigwho's, and every signal
//! its tree received ends up in the JSON report, the `JUnit` file and the summary.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver},
    thread::JoinHandle,
    time::Duration,
};

use sigwho_tests::{
    Value, child_pid, field, field_i64, field_str, hint_ids, require_root, sigwho_bin, strings,
    testproc_bin,
};

/// sigwho loads its programs (about a second), then runs the command.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const LINE_TIMEOUT: Duration = Duration::from_mins(1);

// ---------------------------------------------------------------------------------------
// Helpers

/// A scratch directory for report files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "sigwho-run-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A finished run: raw stdout bytes (to compare byte for byte), stderr as text.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

/// Runs `cmd` to completion with stdin null; SIGKILLs it and panics after `RUN_TIMEOUT`.
fn finish(mut cmd: Command) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child_pid(&child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(RUN_TIMEOUT) else {
        // Not reaped yet (the thread still waits), so the pid is still the child's.
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("{cmd:?} did not finish within {RUN_TIMEOUT:?}");
    };
    let output = output.expect("wait for the run");
    Finished {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `sigwho run ARGS` to completion.
fn sigwho_run(args: &[&str]) -> Finished {
    require_root();
    let mut cmd = Command::new(sigwho_bin());
    cmd.arg("run").args(args).env_remove("GITHUB_ACTIONS");
    finish(cmd)
}

/// A sigwho run in progress, whose passed-through stdout is read line by line.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        require_root();
        let mut cmd = Command::new(sigwho_bin());
        cmd.arg("run")
            .args(args)
            .env_remove("GITHUB_ACTIONS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout piped");
        let mut stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Running {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The command's pid from the `ready pid=...` line of `sigwho-testproc target`.
    fn ready_pid(&mut self) -> i32 {
        let Ok(line) = self.lines.recv_timeout(LINE_TIMEOUT) else {
            let _ = self.child.kill();
            let status = self.child.wait();
            let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
            panic!("no ready line from the command ({status:?}); stderr:\n{stderr:?}");
        };
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad ready line {line:?}"))
    }

    /// Closes the command's stdin (`sigwho-testproc target` exits 0 on EOF).
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for sigwho to exit (stdin stays open); returns its status and stderr.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("sigwho run still running after {RUN_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Every line of a --report file, parsed.
fn read_report(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
        })
        .collect()
}

fn summary(report: &[Value]) -> &Value {
    let last = report.last().expect("report has lines");
    assert_eq!(
        field_str(last, "event"),
        Some("summary"),
        "the summary comes last: {last}"
    );
    assert_eq!(
        report
            .iter()
            .filter(|e| field_str(e, "event") == Some("summary"))
            .count(),
        1
    );
    last
}

fn signals<'a>(report: &'a [Value], name: &str) -> Vec<&'a Value> {
    report
        .iter()
        .filter(|e| field_str(e, "event") == Some("signal") && field_str(e, "signal") == Some(name))
        .collect()
}

fn pretty(report: &[Value]) -> String {
    report.iter().fold(String::new(), |mut text, e| {
        let _ = writeln!(text, "  {e}");
        text
    })
}

/// Parses a `JUnit` file with a real XML parser (python3's) and returns its test cases as
/// `{name, classname, failure: {message, type, text} | null}`, plus the root's counts.
fn parse_junit(path: &str) -> Value {
    const SCRIPT: &str = r#"
import json, sys, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
cases = []
for case in root.iter("testcase"):
    failure = case.find("failure")
    cases.append({
        "name": case.get("name"),
        "classname": case.get("classname"),
        "failure": None if failure is None else {
            "message": failure.get("message"),
            "type": failure.get("type"),
            "text": failure.text or "",
        },
    })
print(json.dumps({"tests": int(root.get("tests")), "failures": int(root.get("failures")), "cases": cases}))
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT, path])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{path} is not well-formed JUnit XML: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&output.stdout).expect("python printed JSON")
}

fn junit_cases(junit: &Value) -> Vec<Value> {
    junit["cases"].as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one run checked in each of its outputs (report, JUnit file, summary, exit \
              status), all about the same kill"
)]
fn a_child_killed_by_a_sibling_is_reported_with_its_sender() {
    let dir = Scratch::new("sibling");
    let (report_path, junit_path) = (dir.path("report.json"), dir.path("junit.xml"));
    // The kill waits until the background child has exec'd sleep (bash builtins only).
    let script = r#"sleep 30 & S=$!; until read -r c </proc/$S/comm && [ "$c" = sleep ]; do :; done; bash -c "kill -TERM $S"; wait $S; exit 0"#;
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--junit",
        &junit_path,
        "--",
        "bash",
        "-c",
        script,
    ]);
    assert_eq!(run.status.code(), Some(0), "the command's status: {run}");
    assert!(
        run.stdout.is_empty(),
        "sigwho writes nothing to stdout: {run}"
    );

    let report = read_report(&report_path);
    let context = pretty(&report);
    let term = signals(&report, "SIGTERM");
    let ev = term
        .iter()
        .find(|e| field_str(e, "target.comm") == Some("sleep"))
        .unwrap_or_else(|| panic!("no SIGTERM to sleep:\n{context}"));
    let sleep_pid = field_i64(ev, "target.pid").expect("target.pid");
    let sender_pid = field_i64(ev, "sender.pid").expect("sender.pid");
    assert_eq!(strings(ev, "target.argv"), ["sleep", "30"], "{ev}");
    assert_eq!(
        strings(ev, "sender.argv"),
        ["bash", "-c", &format!("kill -TERM {sleep_pid}")],
        "the inner bash sent it: {ev}"
    );
    assert_eq!(field_str(ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(ev, "relation"), Some("sibling"), "{ev}");
    assert_eq!(ev["unexpected"], true, "{ev}");
    // The command (outer bash) is the sender's parent.
    let cmd_pid = field_i64(ev, "sender.ancestry.0.pid").expect("sender's parent");
    assert_eq!(
        strings(ev, "sender.ancestry.0.argv"),
        ["bash", "-c", script]
    );

    let exit = report
        .iter()
        .find(|e| field_str(e, "event") == Some("exit") && field_i64(e, "pid") == Some(sleep_pid))
        .unwrap_or_else(|| panic!("no exit record for the sleep:\n{context}"));
    assert_eq!(field_str(exit, "signal"), Some("SIGTERM"));

    let summary = summary(&report);
    assert_eq!(field_i64(summary, "pid"), Some(cmd_pid), "{summary}");
    assert_eq!(field_i64(summary, "exit_status"), Some(0), "{summary}");
    assert_eq!(field_i64(summary, "exit_code"), Some(0), "{summary}");
    assert_eq!(strings(summary, "command"), ["bash", "-c", script]);
    assert!(
        field_i64(summary, "unexpected").unwrap_or(0) >= 1,
        "{summary}"
    );
    assert!(
        field_i64(summary, "signals_seen").unwrap_or(0) >= 1,
        "{summary}"
    );
    assert_eq!(field_i64(summary, "lost"), Some(0), "{summary}");
    let killed = summary["killed"].as_array().expect("killed list");
    let killed_sleep = killed
        .iter()
        .find(|k| field_i64(k, "pid") == Some(sleep_pid))
        .unwrap_or_else(|| panic!("sleep not among the killed: {summary}"));
    assert_eq!(field_str(killed_sleep, "signal"), Some("SIGTERM"));
    assert_eq!(field_i64(killed_sleep, "sender.pid"), Some(sender_pid));

    let junit = parse_junit(&junit_path);
    let cases = junit_cases(&junit);
    let case = cases
        .iter()
        .find(|c| field_str(c, "name").is_some_and(|n| n.contains(&format!("pid {sleep_pid}"))))
        .unwrap_or_else(|| panic!("no test case for the sleep: {junit}"));
    assert_eq!(
        field_str(case, "name"),
        Some(&*format!("sleep 30 (pid {sleep_pid})"))
    );
    let message = field_str(case, "failure.message").unwrap_or_else(|| panic!("{case}"));
    assert!(message.contains("killed by SIGTERM"), "{message}");
    assert!(
        message.contains(&format!(
            "from pid {sender_pid} (bash) bash -c 'kill -TERM {sleep_pid}'"
        )),
        "sender named: {message}"
    );
    assert!(
        message.contains(&format!("{cmd_pid} (bash)")),
        "chain named: {message}"
    );
    assert_eq!(field_str(case, "failure.type"), Some("SIGTERM"));
    // The command's own case passes: nothing happened to it.
    let command_case = cases
        .iter()
        .find(|c| field_str(c, "classname") == Some("sigwho.command"))
        .unwrap_or_else(|| panic!("no case for the command: {junit}"));
    assert!(command_case["failure"].is_null(), "{command_case}");
    assert_eq!(field_i64(&junit, "failures"), Some(1), "{junit}");

    // The summary on stderr names the signal, sender and the death.
    assert!(
        run.stderr
            .contains(&format!("unexpected SIGTERM to pid {sleep_pid} (sleep)")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!(
            "pid {sleep_pid} (sleep) sleep 30: SIGTERM from pid {sender_pid} (bash)"
        )),
        "{run}"
    );
}

#[test]
fn a_test_runner_timing_out_is_explained_and_its_status_kept() {
    let dir = Scratch::new("timeout");
    let report_path = dir.path("report.json");
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--",
        "bash",
        "-c",
        "timeout 1 sleep 30; echo rc=$?",
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "bash's status after echo: {run}"
    );
    assert_eq!(run.stdout, b"rc=124\n", "{run}");

    let report = read_report(&report_path);
    let context = pretty(&report);
    let ev = signals(&report, "SIGTERM")
        .into_iter()
        .find(|e| {
            field_str(e, "target.comm") == Some("sleep") && field_str(e, "scope") == Some("process")
        })
        .unwrap_or_else(|| panic!("no SIGTERM to sleep:\n{context}"));
    assert_eq!(field_str(ev, "sender.comm"), Some("timeout"), "{ev}");
    assert_eq!(
        strings(ev, "sender.argv"),
        ["timeout", "1", "sleep", "30"],
        "{ev}"
    );
    assert_eq!(field_str(ev, "relation"), Some("parent"), "{ev}");
    let hints = hint_ids(ev);
    assert!(
        hints.iter().any(|h| h == "coreutils-timeout"),
        "expected hint coreutils-timeout, got {hints:?}: {ev}"
    );
    // timeout's own SIGALRM is its own doing, not a cause.
    assert!(
        field(ev, "cause").as_array().is_some_and(Vec::is_empty),
        "{ev}"
    );
    let summary = summary(&report);
    assert_eq!(field_i64(summary, "exit_status"), Some(0), "{summary}");
    assert!(
        summary["killed"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| field_str(k, "comm") == Some("sleep")
                && field_str(k, "signal") == Some("SIGTERM"))),
        "{summary}"
    );
    // timeout's SIGTERM to its own process group reaches timeout itself: self-sent,
    // so expected; SIGCHLD and SIGCONT are on the default allow list.
    for ev in report
        .iter()
        .filter(|e| field_str(e, "event") == Some("signal"))
    {
        let to_itself = field_i64(ev, "sender.pid") == field_i64(ev, "target.pid");
        let allowed = matches!(field_str(ev, "signal"), Some("SIGCHLD" | "SIGCONT"));
        if to_itself || allowed {
            assert_eq!(ev["unexpected"], false, "{ev}");
        }
    }
}

#[test]
fn a_clean_run_is_byte_identical_to_running_the_command_alone() {
    let dir = Scratch::new("clean");
    let (report_path, junit_path) = (dir.path("report.json"), dir.path("junit.xml"));
    let script = "echo hi; echo err >&2; exit 3";
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--junit",
        &junit_path,
        "--",
        "bash",
        "-c",
        script,
    ]);
    let mut alone = Command::new("bash");
    alone.args(["-c", script]);
    let alone = finish(alone);
    assert_eq!(run.status.code(), Some(3), "{run}");
    assert_eq!(run.stdout, b"hi\n", "{run}");
    assert_eq!(run.stdout, alone.stdout);
    assert_eq!(run.status.code(), alone.status.code());
    assert!(run.stderr.starts_with("err\n"), "{run}");
    assert!(run.stderr.contains(" 0 unexpected"), "{run}");
    assert!(!run.stderr.contains("sigwho: unexpected"), "{run}");

    let report = read_report(&report_path);
    assert!(
        report.iter().all(|e| e["unexpected"] != true),
        "nothing unexpected:\n{}",
        pretty(&report)
    );
    let summary = summary(&report);
    assert_eq!(field_i64(summary, "unexpected"), Some(0), "{summary}");
    assert_eq!(field_i64(summary, "exit_status"), Some(3), "{summary}");
    assert_eq!(field_i64(summary, "exit_code"), Some(3), "{summary}");
    assert_eq!(summary["killed"].as_array().map(Vec::len), Some(0));

    let junit = parse_junit(&junit_path);
    assert_eq!(
        field_i64(&junit, "tests"),
        Some(1),
        "only the command: {junit}"
    );
    assert_eq!(field_i64(&junit, "failures"), Some(0), "{junit}");

    // Binary data, too, and --quiet leaves stderr to the command.
    let blob = dir.path("blob");
    let mut data = vec![0u8; 100_000];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("random bytes");
    std::fs::File::create(&blob)
        .and_then(|mut f| f.write_all(&data))
        .expect("write blob");
    let run = sigwho_run(&["--quiet", "--", "cat", &blob]);
    assert!(run.status.success(), "{run}");
    assert!(
        run.stdout == data,
        "cat's output differs ({} bytes)",
        run.stdout.len()
    );
    assert_eq!(run.stderr, "", "--quiet prints nothing but errors");
}

#[test]
fn a_command_killed_by_a_signal_gives_128_plus_n() {
    let dir = Scratch::new("killed");
    let report_path = dir.path("report.json");
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--",
        "bash",
        "-c",
        "kill -TERM $$",
    ]);
    assert_eq!(run.status.code(), Some(143), "{run}");
    let report = read_report(&report_path);
    let summary = summary(&report);
    assert_eq!(field_i64(summary, "exit_status"), Some(143), "{summary}");
    assert_eq!(field_str(summary, "signal"), Some("SIGTERM"), "{summary}");
    assert_eq!(field_i64(summary, "sigwho_exit_status"), Some(143));
    // Sent to itself: expected, but its death is still reported.
    assert_eq!(field_i64(summary, "unexpected"), Some(0), "{summary}");
    let pid = field_i64(summary, "pid").expect("pid");
    assert_eq!(field_i64(summary, "killed_by.pid"), Some(pid), "{summary}");
    assert!(run.stderr.contains("was killed by SIGTERM"), "{run}");
}

#[test]
fn signals_from_outside_the_tree_name_the_outside_sender() {
    let dir = Scratch::new("outside");
    let report_path = dir.path("report.json");
    let testproc = testproc_bin();
    let testproc = testproc.to_str().expect("utf-8 path");
    let mut sigwho = Running::start(&[
        "--report",
        &report_path,
        "--",
        testproc,
        "target",
        "--handle",
        "USR1",
    ]);
    let pid = sigwho.ready_pid();
    let mut kill = Command::new(testproc);
    kill.args(["kill", &pid.to_string(), "USR1"]);
    let kill_child = kill.spawn().expect("testproc kill runs");
    let kill_pid = i64::from(kill_child.id());
    let kill_status = kill_child.wait_with_output().expect("kill exits").status;
    assert!(kill_status.success());
    // EOF on its stdin ends the target (exit 0), and so sigwho.
    sigwho.close_stdin();
    let (status, stderr) = sigwho.wait();
    assert_eq!(status.code(), Some(0), "{stderr}");

    let report = read_report(&report_path);
    let context = pretty(&report);
    let ev = signals(&report, "SIGUSR1")
        .into_iter()
        .find(|e| field_i64(e, "target.pid") == Some(i64::from(pid)))
        .unwrap_or_else(|| panic!("no SIGUSR1 to {pid}:\n{context}"));
    assert_eq!(field_i64(ev, "sender.pid"), Some(kill_pid), "{ev}");
    assert_eq!(
        strings(ev, "sender.argv")[1..],
        ["kill", &pid.to_string(), "USR1"]
    );
    assert_eq!(field_str(ev, "relation"), Some("unrelated"), "{ev}");
    assert_eq!(ev["unexpected"], true, "{ev}");
    // The sender's parent is this test, not anything in the tree.
    assert_eq!(
        field_i64(ev, "sender.ancestry.0.pid"),
        Some(i64::from(std::process::id()))
    );
    assert!(stderr.contains(&format!("from pid {kill_pid}")), "{stderr}");
}

#[test]
fn kernel_made_signals_in_the_tree_are_reported() {
    let dir = Scratch::new("kernel");
    let report_path = dir.path("report.json");
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--",
        "bash",
        "-c",
        "yes | head -n 1 >/dev/null",
    ]);
    assert_eq!(run.status.code(), Some(0), "{run}");
    let report = read_report(&report_path);
    let context = pretty(&report);
    let ev = signals(&report, "SIGPIPE")
        .into_iter()
        .find(|e| field_str(e, "target.comm") == Some("yes"))
        .unwrap_or_else(|| panic!("no SIGPIPE to yes:\n{context}"));
    assert_eq!(field_str(ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(ev, "origin_class"), Some("broken_pipe"), "{ev}");
    assert_eq!(ev["unexpected"], true, "{ev}");
    let summary = summary(&report);
    assert!(
        summary["killed"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| field_str(k, "comm") == Some("yes")
                && field_str(k, "signal") == Some("SIGPIPE"))),
        "{summary}"
    );
}

#[test]
fn fail_on_signal_and_allow() {
    let script = "sleep 30 & kill -USR1 $!; wait; exit 0";
    let run = sigwho_run(&["--", "bash", "-c", script]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "wrapping changes nothing: {run}"
    );
    assert!(run.stderr.contains("sigwho: unexpected SIGUSR1"), "{run}");

    let run = sigwho_run(&["--fail-on-signal", "--", "bash", "-c", script]);
    assert_eq!(run.status.code(), Some(1), "{run}");
    assert!(run.stderr.contains("--fail-on-signal"), "{run}");

    let run = sigwho_run(&[
        "--fail-on-signal",
        "--allow",
        "USR1,SIGCHLD",
        "--",
        "bash",
        "-c",
        script,
    ]);
    assert_eq!(run.status.code(), Some(0), "SIGUSR1 allowed: {run}");

    // A failing command keeps its own status.
    let run = sigwho_run(&[
        "--fail-on-signal",
        "--",
        "bash",
        "-c",
        "sleep 30 & kill -USR1 $!; wait; exit 5",
    ]);
    assert_eq!(run.status.code(), Some(5), "{run}");

    let run = sigwho_run(&["--allow", "NOPE", "--", "true"]);
    assert_eq!(run.status.code(), Some(2), "{run}");
    assert!(run.stderr.contains("--allow"), "{run}");
}

#[test]
fn sigwho_forwards_sigterm_and_still_writes_its_reports() {
    let dir = Scratch::new("interrupted");
    let (report_path, junit_path) = (dir.path("report.json"), dir.path("junit.xml"));
    let testproc = testproc_bin();
    let testproc = testproc.to_str().expect("utf-8 path");
    let mut sigwho = Running::start(&[
        "--report",
        &report_path,
        "--junit",
        &junit_path,
        "--",
        testproc,
        "target",
    ]);
    let pid = sigwho.ready_pid();
    let sigwho_pid = child_pid(&sigwho.child);
    // Our child, running: its pid is its own. The target's stdin stays open, so only
    // the forwarded SIGTERM can end it.
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    assert_eq!(unsafe { libc::kill(sigwho_pid, libc::SIGTERM) }, 0);
    let (status, stderr) = sigwho.wait();
    assert_eq!(
        status.code(),
        Some(143),
        "the command died of SIGTERM: {stderr}"
    );

    let report = read_report(&report_path);
    let context = pretty(&report);
    let ev = signals(&report, "SIGTERM")
        .into_iter()
        .find(|e| field_i64(e, "target.pid") == Some(i64::from(pid)))
        .unwrap_or_else(|| panic!("no SIGTERM to {pid}:\n{context}"));
    assert_eq!(
        field_i64(ev, "sender.pid"),
        Some(i64::from(sigwho_pid)),
        "{ev}"
    );
    let summary = summary(&report);
    assert_eq!(field_i64(summary, "exit_status"), Some(143), "{summary}");
    let interrupted = summary["interrupted"].as_array().expect("interrupted");
    assert_eq!(interrupted.len(), 1, "{summary}");
    assert_eq!(field_str(&interrupted[0], "signal"), Some("SIGTERM"));
    assert_eq!(interrupted[0]["forwarded"], true);
    assert_eq!(
        field_i64(&interrupted[0], "sender_pid"),
        Some(i64::from(std::process::id()))
    );
    assert!(stderr.contains("received SIGTERM"), "{stderr}");

    let junit = parse_junit(&junit_path);
    let command_case = junit_cases(&junit)
        .into_iter()
        .find(|c| field_str(c, "classname") == Some("sigwho.command"))
        .unwrap_or_else(|| panic!("{junit}"));
    assert_eq!(field_str(&command_case, "failure.type"), Some("SIGTERM"));
}

#[test]
fn github_actions_gets_warning_annotations() {
    require_root();
    let script = "sleep 30 & kill -USR1 $!; wait; exit 0";
    let mut cmd = Command::new(sigwho_bin());
    cmd.args(["run", "--quiet", "--", "bash", "-c", script])
        .env("GITHUB_ACTIONS", "true");
    let run = finish(cmd);
    assert_eq!(run.status.code(), Some(0), "{run}");
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("::warning title=sigwho::SIGUSR1 to pid "))
        .unwrap_or_else(|| panic!("no annotation: {run}"));
    assert!(warning.contains(" from pid "), "{warning}");
    assert!(!warning.contains('\r'), "{warning}");
    assert!(run.stdout.is_empty(), "annotations go to stderr: {run}");

    // Not outside GitHub Actions.
    let run = sigwho_run(&["--", "bash", "-c", script]);
    assert!(!run.stderr.contains("::warning"), "{run}");
}

#[test]
fn wait_descendants_follows_processes_that_outlive_the_command() {
    let dir = Scratch::new("descendants");
    let report_path = dir.path("report.json");
    // The command exits at once; a background sleep is killed half a second later by
    // another background process.
    let script =
        "sleep 30 >/dev/null 2>&1 & S=$!; (sleep 0.5; kill -USR1 $S) >/dev/null 2>&1 & exit 0";
    let run = sigwho_run(&[
        "--wait-descendants",
        "--report",
        &report_path,
        "--",
        "bash",
        "-c",
        script,
    ]);
    assert_eq!(run.status.code(), Some(0), "{run}");
    let report = read_report(&report_path);
    let context = pretty(&report);
    let ev = signals(&report, "SIGUSR1")
        .into_iter()
        .find(|e| field_str(e, "target.comm") == Some("sleep"))
        .unwrap_or_else(|| panic!("no SIGUSR1 to the sleep after the command exited:\n{context}"));
    let sleep_pid = field_i64(ev, "target.pid");
    assert!(
        report.iter().any(|e| field_str(e, "event") == Some("exit")
            && field_i64(e, "pid") == sleep_pid
            && field_str(e, "signal") == Some("SIGUSR1")),
        "the sleep's death:\n{context}"
    );
}

#[test]
fn a_missing_command_exits_127() {
    let dir = Scratch::new("missing");
    let report_path = dir.path("report.json");
    let run = sigwho_run(&[
        "--report",
        &report_path,
        "--",
        "/nonexistent/sigwho-test-cmd",
    ]);
    assert_eq!(run.status.code(), Some(127), "{run}");
    assert!(
        run.stderr
            .contains("cannot run /nonexistent/sigwho-test-cmd"),
        "{run}"
    );
    let report = read_report(&report_path);
    let summary = summary(&report);
    assert_eq!(field_i64(summary, "exit_status"), Some(127), "{summary}");
    assert!(Path::new(&report_path).exists());
}
