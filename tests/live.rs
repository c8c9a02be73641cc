//! `sigwho --target-pid PID` against real processes and real signals, with the real eBPF
//! programs loaded. Each test starts its own target, starts sigwho on it, waits for
//! `sigwho: tracing`, causes a signal and checks the parsed JSON.

use std::{
    io::{BufRead, BufReader, Read},
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    Sigwho, Storm, Target, TempDir, Value, count_repeated, field, field_i64, field_str, is_exit,
    is_signal, require_root, run, run_sigwho, storm_bin, strings, testproc, testproc_bin,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
const NOBODY: u32 = 65534;

fn watch(target: &Target) -> Sigwho {
    require_root();
    Sigwho::start(&["--target-pid", &target.pid.to_string(), "--json"])
}

fn ancestry_pids(ev: &Value, who: &str) -> Vec<i64> {
    field(ev, &format!("{who}.ancestry"))
        .as_array()
        .unwrap_or_else(|| panic!("{who}.ancestry missing in {ev}"))
        .iter()
        .map(|a| a["pid"].as_i64().unwrap_or_default())
        .collect()
}

/// Fields every signal report must carry, whatever its origin.
fn assert_common_fields(ev: &Value, target: &Target) {
    let time = field_str(ev, "time").expect("time");
    assert!(
        time.ends_with('Z') && time.len() == 30,
        "RFC 3339 with ns: {time}"
    );
    assert_eq!(
        field_i64(ev, "target.pid"),
        Some(i64::from(target.pid)),
        "{ev}"
    );
    // comm is the thread's name; the main thread keeps the program's.
    if field_i64(ev, "target.tid") == Some(i64::from(target.pid)) {
        assert_eq!(
            field_str(ev, "target.comm"),
            Some("sigwho-testproc"),
            "{ev}"
        );
    }
    assert_eq!(strings(ev, "target.argv")[1], "target", "{ev}");
    assert!(
        field_str(ev, "target.exe").is_some_and(|e| e.ends_with("sigwho-testproc")),
        "{ev}"
    );
    assert!(field_str(ev, "target.start_time").is_some(), "{ev}");
    for who in ["sender", "target"] {
        for key in [
            "pid",
            "tid",
            "comm",
            "exe",
            "argv",
            "uid",
            "start_time",
            "ancestry",
        ] {
            assert!(ev[who].get(key).is_some(), "{who}.{key} missing in {ev}");
        }
        // Ancestry goes up to pid 1.
        assert_eq!(
            ancestry_pids(ev, who).last(),
            Some(&1),
            "{who} ancestry: {ev}"
        );
    }
    // The test process started the target, so it is the target's parent.
    assert_eq!(
        ancestry_pids(ev, "target")[0],
        i64::from(std::process::id()),
        "{ev}"
    );
}

#[test]
fn sigterm_from_a_child_shells_kill_builtin() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(&target);
    let script = format!("kill -TERM {}", target.pid);
    let shell = Command::new("bash")
        .args(["-c", &script, "sigwho-test-shell"])
        .status()
        .expect("bash runs");
    assert!(shell.success());

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("kill"));
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"));
    assert_eq!(field_i64(&ev, "signo"), Some(15));
    assert_eq!(field_str(&ev, "result"), Some("delivered"));
    assert_eq!(field_i64(&ev, "requested"), Some(i64::from(target.pid)));
    assert_eq!(field_str(&ev, "scope"), Some("process"));
    assert_eq!(field_str(&ev, "sender.comm"), Some("bash"));
    assert_eq!(
        strings(&ev, "sender.argv"),
        ["bash", "-c", &script, "sigwho-test-shell"]
    );
    assert_eq!(field_i64(&ev, "sender.uid"), Some(0));
    assert_eq!(
        ancestry_pids(&ev, "sender")[0],
        i64::from(std::process::id())
    );

    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"));
    assert_eq!(field_i64(&exit, "pid"), Some(i64::from(target.pid)));
    assert_eq!(exit["core_dumped"], false);
    assert!(target.wait(EVENT_TIMEOUT).code().is_none());
}

#[test]
fn short_lived_bin_kill_is_described_after_it_exited() {
    let target = Target::spawn(&[]);
    let mut sigwho = watch(&target);
    let kill = Command::new("/bin/kill")
        .args(["-s", "TERM", &target.pid.to_string()])
        .spawn()
        .expect("/bin/kill runs");
    let kill_pid = kill.id();
    assert!(
        kill.wait_with_output()
            .expect("kill exits")
            .status
            .success()
    );

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(kill_pid)));
    assert_eq!(field_str(&ev, "sender.comm"), Some("kill"));
    assert_eq!(
        strings(&ev, "sender.argv"),
        ["/bin/kill", "-s", "TERM", &target.pid.to_string()]
    );
    assert!(
        field_str(&ev, "sender.exe").is_some_and(|e| e.ends_with("/kill")),
        "{ev}"
    );
    assert_eq!(
        ancestry_pids(&ev, "sender")[0],
        i64::from(std::process::id())
    );

    let (status, rest) = sigwho.wait_exit(EVENT_TIMEOUT);
    assert!(
        status.success(),
        "sigwho exits 0 after the target: {}",
        sigwho.report()
    );
    assert!(rest.iter().any(is_exit), "exit record: {rest:?}");
}

#[test]
fn sender_that_forks_sends_and_exits_at_once() {
    let target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(&target);
    let run = testproc(&["fork-kill", &target.pid.to_string(), "USR1"]).assert_success();
    let child: i64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("child="))
        .and_then(|p| p.trim().parse().ok())
        .expect("fork-kill prints child=PID");

    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "sender.pid"), Some(child));
    // The forked child never exec'd: it runs its parent's program with its argv.
    assert_eq!(
        strings(&ev, "sender.argv")[1..],
        ["fork-kill", &target.pid.to_string(), "USR1"]
    );
    let ancestry = ancestry_pids(&ev, "sender");
    assert_eq!(
        ancestry[0],
        i64::from(run.pid),
        "parent is the fork-kill process: {ev}"
    );
    assert_eq!(ancestry[1], i64::from(std::process::id()), "{ev}");
    assert_eq!(strings(&ev, "sender.ancestry.0.argv")[1], "fork-kill");
}

#[test]
fn sigkill_and_the_exit_record() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(&target);
    assert!(target.signal(libc::SIGKILL));
    let ev = sigwho.wait_for(is_signal("SIGKILL"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(std::process::id()))
    );
    assert_eq!(field_i64(&ev, "signo"), Some(9));
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGKILL"));
    assert_eq!(field_i64(&exit, "signo"), Some(9));
    assert!(exit.get("exit_code").is_none(), "{exit}");
}

#[test]
fn ignored_signal_says_ignored() {
    let mut target = Target::spawn(&["--ignore", "TERM"]);
    let sigwho = watch(&target);
    testproc(&["kill", &target.pid.to_string(), "TERM"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "result"), Some("ignored"));
    target.ping();
}

#[test]
fn group_kill_names_the_group_asked_for() {
    let target = Target::spawn(&["--setpgid"]);
    assert_eq!(target.pgid, target.pid);
    let sigwho = watch(&target);
    let group = format!("-{}", target.pgid);
    testproc(&["kill", &group, "TERM"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_i64(&ev, "requested"), Some(-i64::from(target.pgid)));
    assert_eq!(field_str(&ev, "scope"), Some("process_group"));
    assert_eq!(
        field_str(&ev, "call"),
        Some(format!("kill({group}, SIGTERM)").as_str())
    );
    assert_eq!(ev["group"], true);
}

#[test]
fn tgkill_to_one_thread() {
    let target = Target::spawn(&["--threads", "2", "--handle", "USR2"]);
    let thread = target.tids[2];
    let sigwho = watch(&target);
    let run = testproc(&[
        "tgkill",
        &target.pid.to_string(),
        &thread.to_string(),
        "USR2",
    ])
    .assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR2"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("tgkill"));
    assert_eq!(field_str(&ev, "code"), Some("SI_TKILL"));
    assert_eq!(field_i64(&ev, "target.tid"), Some(i64::from(thread)));
    assert_eq!(field_i64(&ev, "requested"), Some(i64::from(target.pid)));
    assert_eq!(field_i64(&ev, "requested_tid"), Some(i64::from(thread)));
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(run.pid)));
    assert_eq!(ev["group"], false);
}

#[test]
fn pidfd_send_signal_names_the_pid_behind_the_fd() {
    let target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(&target);
    let run = testproc(&["pidfd-send", &target.pid.to_string(), "USR1"]).assert_success();
    let fd: i64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pidfd="))
        .and_then(|fd| fd.trim().parse().ok())
        .expect("pidfd-send prints pidfd=FD");
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("pidfd_send_signal"));
    assert_eq!(field_i64(&ev, "requested"), Some(fd));
    assert_eq!(field_i64(&ev, "requested_pid"), Some(i64::from(target.pid)));
    assert_eq!(field_str(&ev, "scope"), Some("pidfd"));
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(run.pid)));
}

#[test]
fn sigqueue_carries_its_value() {
    let target = Target::spawn(&["--handle", "USR1"]);
    let sigwho = watch(&target);
    testproc(&["sigqueue", &target.pid.to_string(), "USR1", "4242"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("rt_sigqueueinfo"));
    assert_eq!(field_str(&ev, "code"), Some("SI_QUEUE"));
    assert_eq!(field_i64(&ev, "value"), Some(4242));
}

#[test]
fn failed_attempt_from_nobody_is_reported_with_eperm() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(&target);
    let mut kill = Command::new(testproc_bin());
    kill.args(["kill", &target.pid.to_string(), "TERM"])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = kill.status().expect("sender runs");
    assert_eq!(status.code(), Some(1), "kill as nobody must fail");

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "result"), Some("failed"));
    assert_eq!(field_str(&ev, "errno"), Some("EPERM"));
    assert_eq!(field_str(&ev, "origin"), Some("kill"));
    assert_eq!(field_i64(&ev, "sender.uid"), Some(i64::from(NOBODY)));
    assert_eq!(field_i64(&ev, "requested"), Some(i64::from(target.pid)));
    target.ping();
}

#[test]
fn own_segfault_is_a_kernel_signal_with_its_code() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(&target);
    target.send("segv");
    let ev = sigwho.wait_for(is_signal("SIGSEGV"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("kernel"));
    assert_eq!(field_str(&ev, "code"), Some("SEGV_MAPERR"));
    assert_eq!(field_str(&ev, "fault_addr"), Some("0x10"));
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(target.pid)));
    assert!(ev.get("requested").is_none(), "{ev}");
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGSEGV"));
    assert_eq!(exit["core_dumped"], false, "the target disables core dumps");
    let _ = target.wait(EVENT_TIMEOUT);
}

#[test]
fn broken_pipe_is_a_kernel_sigpipe() {
    let mut target = Target::spawn(&[]);
    let sigwho = watch(&target);
    target.send("pipe");
    let ev = sigwho.wait_for(is_signal("SIGPIPE"), EVENT_TIMEOUT);
    assert_common_fields(&ev, &target);
    assert_eq!(field_str(&ev, "origin"), Some("kernel"));
    assert_eq!(field_i64(&ev, "sender.pid"), Some(i64::from(target.pid)));
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGPIPE"));
    let _ = target.wait(EVENT_TIMEOUT);
}

#[test]
fn exit_code_is_reported_and_sigwho_exits_zero() {
    let mut target = Target::spawn(&[]);
    let mut sigwho = watch(&target);
    target.send("exit 3");
    let (status, events) = sigwho.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", sigwho.report());
    let exit = events.iter().find(|ev| is_exit(ev)).expect("exit record");
    assert_eq!(field_i64(exit, "exit_code"), Some(3));
    assert_eq!(field_i64(exit, "pid"), Some(i64::from(target.pid)));
    assert!(exit.get("signal").is_none(), "{exit}");
    assert_eq!(target.wait(EVENT_TIMEOUT).code(), Some(3));
}

#[test]
fn text_output_names_sender_and_call() {
    require_root();
    let target = Target::spawn(&["--handle", "HUP"]);
    let sigwho = Sigwho::start(&["--target-pid", &target.pid.to_string()]);
    let run = testproc(&["kill", &target.pid.to_string(), "HUP"]).assert_success();
    let line = sigwho.wait_for(
        |ev| ev.as_str().is_some_and(|l| l.contains("SIGHUP")),
        EVENT_TIMEOUT,
    );
    let line = line.as_str().unwrap_or_default();
    assert!(
        line.contains(&format!("kill({}, SIGHUP)", target.pid)),
        "{line}"
    );
    assert!(line.contains("delivered"), "{line}");
    // The sender's row of the lineage tree.
    let sender = sigwho.wait_for(
        |ev| {
            ev.as_str()
                .is_some_and(|l| l.trim_start().starts_with("sender "))
        },
        EVENT_TIMEOUT,
    );
    assert!(
        sender
            .as_str()
            .unwrap_or_default()
            .contains(&format!(" {} ", run.pid)),
        "{sender}"
    );
}

#[test]
fn timeout_stops_a_session_on_a_live_process() {
    require_root();
    let mut target = Target::spawn(&[]);
    let mut sigwho = Sigwho::start(&["--target-pid", &target.pid.to_string(), "--timeout", "1"]);
    let (status, _) = sigwho.wait_exit(EVENT_TIMEOUT);
    assert!(status.success(), "{}", sigwho.report());
    assert!(
        sigwho.stderr().iter().any(|l| l.contains("--timeout")),
        "{}",
        sigwho.report()
    );
    target.ping();
}

#[test]
fn closed_stdout_ends_quietly() {
    require_root();
    let mut target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    // What `sigwho ... | head -1` does: read one line, then close the pipe.
    let mut sigwho = Command::new(sigwho_tests::sigwho_bin())
        .args(["--target-pid", &pid, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sigwho starts");
    let mut stderr = BufReader::new(sigwho.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.starts_with("sigwho: tracing") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("stderr") > 0,
            "sigwho ended early"
        );
    }
    let mut stdout = BufReader::new(sigwho.stdout.take().expect("stdout"));
    testproc(&["kill", &pid, "USR1"]).assert_success();
    let mut first = String::new();
    stdout.read_line(&mut first).expect("one line");
    assert!(first.contains("SIGUSR1"), "{first}");
    drop(stdout);
    // The next report hits the closed pipe; sigwho must end, quietly and successfully.
    testproc(&["kill", &pid, "USR1"]).assert_success();
    target.ping();
    let status = sigwho.wait().expect("sigwho exits");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("stderr");
    assert!(status.success(), "status {status:?}, stderr {rest}");
    assert!(rest.is_empty(), "nothing more on stderr: {rest}");
}

/// Where no journal is: a pid that is not running must give the live view's error
/// whether or not this machine has a recorder's journal.
const NO_JOURNAL: &str = "/nonexistent/sigwho-journal";

fn assert_one_line_error(args: &[&str], expected: &str) {
    let mut command = Command::new(sigwho_tests::sigwho_bin());
    command.args(args).env("SIGWHO_JOURNAL", NO_JOURNAL);
    let run = sigwho_tests::run(command, EVENT_TIMEOUT);
    let (status, stdout, stderr) = (run.status, run.stdout, run.stderr);
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line for {args:?}: {stderr}");
    assert!(lines[0].starts_with("sigwho: "), "{stderr}");
    assert!(lines[0].contains(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn bad_input_gives_one_line_and_status_2() {
    require_root();
    assert_one_line_error(&["--target-pid", "abc"], "positive integer");
    assert_one_line_error(&["--target-pid", "0"], "positive integer");
    assert_one_line_error(&["--target-pid", "-5"], "positive integer");
    assert_one_line_error(&["--target-pid", "1", "--timeout", "soon"], "SECONDS");
    // No selector traces every signal on the machine (issue 17); a bad one is an error.
    assert_one_line_error(&["--signal", "NOPE"], "--signal");
    assert_one_line_error(&["--no-such-flag"], "--no-such-flag");

    // A pid that is not running: the largest pid the kernel can hand out plus one.
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4_194_304);
    assert_one_line_error(&["--target-pid", &pid_max.to_string()], "no process");

    // A thread id is not a process id.
    let target = Target::spawn(&["--threads", "1"]);
    let tid = target.tids[1].to_string();
    assert_one_line_error(
        &["--target-pid", &tid],
        &format!("use --target-pid {}", target.pid),
    );
}

#[test]
fn unprivileged_user_is_told_what_is_missing() {
    require_root();
    let target = Target::spawn(&[]);
    let mut command = Command::new(sigwho_tests::sigwho_bin());
    command
        .args(["--target-pid", &target.pid.to_string()])
        .uid(NOBODY)
        .gid(NOBODY);
    let run = sigwho_tests::run(command, EVENT_TIMEOUT);
    assert_eq!(run.status.code(), Some(2), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(
        run.stderr.contains("CAP_BPF") && run.stderr.contains("CAP_PERFMON"),
        "{run}"
    );
}

#[test]
fn help_and_version() {
    let (status, stdout, _) = run_sigwho(&["--help"], EVENT_TIMEOUT);
    assert!(status.success());
    assert!(
        stdout.contains("--target-pid") && stdout.contains("Examples"),
        "{stdout}"
    );
    let (status, stdout, _) = run_sigwho(&["--version"], EVENT_TIMEOUT);
    assert!(status.success());
    assert!(stdout.contains("eBPF object"), "{stdout}");
}

/// A copy of this kernel's tracefs event directories, without `missing`.
fn trimmed_tracefs(name: &str, missing: &[&str]) -> std::path::PathBuf {
    let real = std::path::Path::new("/sys/kernel/tracing/events");
    let root = std::env::temp_dir().join(format!("sigwho-tracefs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut events: Vec<String> = ["signal/signal_generate", "sched/sched_process_fork"]
        .into_iter()
        .chain(["sched/sched_process_exec", "sched/sched_process_exit"])
        .map(String::from)
        .collect();
    for call in [
        "kill",
        "tkill",
        "tgkill",
        "pidfd_send_signal",
        "rt_sigqueueinfo",
    ] {
        events.push(format!("syscalls/sys_enter_{call}"));
        events.push(format!("syscalls/sys_exit_{call}"));
    }
    events.push("syscalls/sys_enter_rt_tgsigqueueinfo".into());
    events.push("syscalls/sys_exit_rt_tgsigqueueinfo".into());
    for event in events.iter().filter(|e| !missing.contains(&e.as_str())) {
        let dir = root.join("events").join(event);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::copy(real.join(event).join("format"), dir.join("format")).expect("format copy");
    }
    root
}

#[test]
fn kernel_without_signal_generate_is_a_clear_error() {
    require_root();
    let target = Target::spawn(&[]);
    let root = trimmed_tracefs("nosignal", &["signal/signal_generate"]);
    let mut command = Command::new(sigwho_tests::sigwho_bin());
    command
        .args(["--target-pid", &target.pid.to_string()])
        .env("SIGWHO_TRACEFS", &root);
    let run = sigwho_tests::run(command, EVENT_TIMEOUT);
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(run.status.code(), Some(2), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.contains("signal:signal_generate"), "{run}");
}

#[test]
fn missing_optional_syscall_hook_is_a_warning() {
    require_root();
    let mut target = Target::spawn(&["--handle", "USR1"]);
    // As on a kernel before 5.1, which has no pidfd_send_signal.
    let mut command = Sigwho::command(&["--target-pid", &target.pid.to_string(), "--json"]);
    command.env("SIGWHO_DISABLE_HOOKS", "pidfd_send_signal");
    let sigwho = Sigwho::start_with(command);
    assert!(
        sigwho
            .stderr()
            .iter()
            .any(|l| l.contains("warning") && l.contains("pidfd_send_signal")),
        "{}",
        sigwho.report()
    );
    // The signal is still seen, from signal_generate; only "what was asked" is missing.
    testproc(&["pidfd-send", &target.pid.to_string(), "USR1"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "origin"), Some("user"), "{ev}");
    assert_eq!(field_str(&ev, "code"), Some("SI_USER"), "{ev}");
    // The rest still works (once the first signal was handled, so this one is new).
    target.ping();
    testproc(&["kill", &target.pid.to_string(), "USR1"]).assert_success();
    let ev = sigwho.wait_for(
        |ev| is_signal("SIGUSR1")(ev) && field_str(ev, "origin") == Some("kill"),
        EVENT_TIMEOUT,
    );
    assert_eq!(field_str(&ev, "result"), Some("delivered"));
}

/// The live view of a storm's victim, with 200 exec+exit per second beside the storm:
/// one report per distinct signal (`xN` in `repeats`), and together exactly what the
/// storm counted itself, for each shape of issue 15: a victim that handles the signal,
/// tgkill, kill(-pgrp) to its group of two, and calls refused with EPERM. A count,
/// never a speed.
#[test]
fn storms_at_the_watched_process_lose_nothing() {
    require_root();
    let shapes: [&[&str]; 4] = [
        &["--victim", "handle"],
        &["--call", "tgkill", "--victim", "handle"],
        &["--call", "group", "--victim", "handle"],
        &["--fail", "eperm"],
    ];
    for shape in shapes {
        let mut args = vec!["--senders", "2", "--duration", "0.4", "--churn", "200"];
        args.extend_from_slice(shape);
        let storm = Storm::ready(&args);
        let victim = storm.victim;
        let mut sigwho = Sigwho::start(&["--target-pid", &victim.to_string(), "--json"]);
        let counts = storm.run();
        // The storm killed its victims at the end: the view ends with the target.
        let (status, _) = sigwho.wait_exit(EVENT_TIMEOUT);
        assert!(
            status.success(),
            "{shape:?}: {status:?}\n{}",
            sigwho.report()
        );
        let events = sigwho.all_events();
        let at_victim = |e: &Value| {
            is_signal("SIGUSR1")(e) && field_i64(e, "target.pid") == Some(i64::from(victim))
        };
        let lost: u64 = events
            .iter()
            .filter(|e| field_str(e, "event") == Some("lost"))
            .filter_map(|e| e.get("count").and_then(Value::as_u64))
            .sum();
        assert_eq!(
            lost,
            0,
            "{shape:?}: nothing lost; stderr: {:?}",
            sigwho.stderr()
        );
        let (expected, result) = if counts.failed > 0 {
            (counts.failed, Some("failed"))
        } else {
            (counts.calls, None)
        };
        let matching =
            |e: &Value| at_victim(e) && result.is_none_or(|r| field_str(e, "result") == Some(r));
        assert_eq!(
            count_repeated(&events, matching),
            expected,
            "{shape:?}: {}; {} events; stderr: {:?}",
            counts.line,
            events.len(),
            sigwho.stderr()
        );
        // Aggregated: a handful of reports for a storm.
        let reports = events.iter().filter(|e| matching(e)).count();
        assert!(
            reports < 50,
            "{shape:?}: {reports} reports for {expected} signals"
        );
    }
}

/// `sigwho run` aggregates too: a storm at a handling victim in the command's own tree,
/// with exec churn beside it, is a few objects in `--report` whose `repeats` add up to
/// what the storm counted, and the summary counts every signal.
#[test]
fn a_storm_under_sigwho_run_is_counted_exactly() {
    require_root();
    let dir = TempDir::new("runstorm");
    let report = dir.path("report.json");
    let storm = storm_bin();
    let mut cmd = Sigwho::command(&[
        "run",
        "--report",
        report.to_str().expect("UTF-8 path"),
        "--",
        storm.to_str().expect("UTF-8 path"),
    ]);
    cmd.args([
        "--senders",
        "2",
        "--duration",
        "0.4",
        "--victim",
        "handle",
        "--churn",
        "200",
    ]);
    let r = run(cmd, EVENT_TIMEOUT);
    assert!(r.status.success(), "{r}");
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("storm "))
        .unwrap_or_else(|| panic!("{r}"));
    let field = |name: &str| -> i64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
    };
    let (calls, victim) = (field("calls"), field("victim"));
    let objects: Vec<Value> = std::fs::read_to_string(&report)
        .expect("the report")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    let at_victim =
        |e: &Value| is_signal("SIGUSR1")(e) && field_i64(e, "target.pid") == Some(victim);
    assert_eq!(
        count_repeated(&objects, at_victim),
        u64::try_from(calls).expect("a count"),
        "{line}"
    );
    assert!(
        objects.iter().filter(|e| at_victim(e)).count() < 50,
        "aggregated"
    );
    let summary = objects.last().expect("a summary");
    assert!(
        field_i64(summary, "signals_seen").is_some_and(|n| n >= calls),
        "the summary counts every signal: {summary}"
    );
    assert_eq!(field_i64(summary, "lost"), Some(0), "{summary}");
}
