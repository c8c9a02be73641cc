//! The on-call view with the real eBPF programs and real processes: what became of a
//! signal (ignored by a `SIG_IGN` handler, dropped at an exiting process, dropped at a
//! pid namespace's init without a handler), the text report of a real signal fitting
//! the width, a process forked after sigwho started shown with its own title, and the
//! live view and the journal agreeing on the same signal. Needs root; unshare, perl and
//! python3.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    Sigwho, Target, Value, descendants, field, field_i64, field_str, hint_ids, is_signal,
    require_root, run, sigwho_bin, strings, testproc, testproc_bin, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn signal_to(sig: &'static str, pid: i32) -> impl Fn(&Value) -> bool {
    move |ev| is_signal(sig)(ev) && field_i64(ev, "target.pid") == Some(i64::from(pid))
}

fn kill(pid: i32, sig: &str) {
    testproc(&["kill", &pid.to_string(), sig]).assert_success();
}

#[test]
fn a_sig_ign_handler_is_ignored() {
    require_root();
    let mut target = Target::spawn(&["--no-stdin", "--ignore", "TERM"]);
    let sigwho = Sigwho::start(&["--target-pid", &target.pid.to_string(), "--json"]);
    kill(target.pid, "TERM");
    let ev = sigwho.wait_for(signal_to("SIGTERM", target.pid), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "result"), Some("ignored"), "{ev}");
    assert!(
        hint_ids(&ev).contains(&"ignored-by-handler".to_owned()),
        "{ev}"
    );
    target.signal(libc::SIGKILL);
    target.wait(EVENT_TIMEOUT);
}

/// The docker PID 1 case without docker: `unshare --pid --fork` makes sigwho-testproc the
/// init of a new pid namespace, with no handler for SIGTERM.
#[test]
fn sigterm_to_a_pid_namespace_init_without_handler_is_dropped() {
    require_root();
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork"])
        .arg(testproc_bin())
        .args(["target", "--no-stdin"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare");
    let mut ready = String::new();
    BufReader::new(unshare.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("ready pid=1 "), "{ready}");
    let unshare_pid = i32::try_from(unshare.id()).unwrap();
    let init = descendants(unshare_pid)
        .into_iter()
        .next()
        .expect("the namespace's init");
    let sigwho = Sigwho::start(&["--target-pid", &init.pid.to_string(), "--json"]);
    kill(init.pid, "TERM");
    let ev = sigwho.wait_for(signal_to("SIGTERM", init.pid), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "result"), Some("dropped_init"), "{ev}");
    assert_eq!(field_i64(&ev, "target.ns_pid"), Some(1), "{ev}");
    assert!(
        hint_ids(&ev).contains(&"container-init-no-handler".to_owned()),
        "{ev}"
    );
    assert!(init.is_running(), "the init survived SIGTERM");
    // SIGKILL from outside the namespace is never dropped.
    kill(init.pid, "KILL");
    let ev = sigwho.wait_for(signal_to("SIGKILL", init.pid), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert!(init.wait_gone(EVENT_TIMEOUT));
    let _ = unshare.wait();
}

/// The text view of a real signal, stdout a pipe: 100 columns, one tree, at most 15
/// lines; `--wide` keeps the whole command line.
#[test]
fn a_text_report_fits_100_columns_and_wide_keeps_everything() {
    require_root();
    let mut args: Vec<&str> = vec!["--no-stdin"];
    for _ in 0..15 {
        args.extend(["--handle", "USR1"]);
    }
    let mut target = Target::spawn(&args);
    let pid = target.pid.to_string();
    let narrow = Sigwho::start(&["--target-pid", &pid]);
    let wide = Sigwho::start(&["--target-pid", &pid, "--wide"]);
    let sender = testproc(&["kill", &pid, "USR1"]).assert_success();
    drop(sender);
    let header = |sigwho: &Sigwho| {
        sigwho.wait_for(
            |ev| {
                ev.as_str()
                    .is_some_and(|l| l.contains("SIGUSR1 delivered:"))
            },
            EVENT_TIMEOUT,
        )
    };
    header(&narrow);
    header(&wide);
    target.signal(libc::SIGKILL);
    target.wait(EVENT_TIMEOUT);
    let text = |sigwho: Sigwho| -> Vec<String> {
        let mut sigwho = sigwho;
        let _ = sigwho.wait_exit(EVENT_TIMEOUT);
        sigwho
            .all_events()
            .iter()
            .filter_map(|ev| ev.as_str().map(str::to_owned))
            .collect()
    };
    let narrow = text(narrow);
    let wide = text(wide);
    let start = narrow
        .iter()
        .position(|l| l.contains("SIGUSR1 delivered:"))
        .unwrap();
    // The report: its header, then its indented lines.
    let report: Vec<&String> = std::iter::once(&narrow[start])
        .chain(
            narrow[start + 1..]
                .iter()
                .take_while(|l| l.starts_with(' ')),
        )
        .collect();
    assert!(
        (3..=15).contains(&report.len()),
        "{} lines: {report:#?}",
        report.len()
    );
    assert!(
        narrow.iter().all(|l| l.chars().count() <= 100),
        "{narrow:#?}"
    );
    let header = report[0];
    assert!(
        header.contains(&format!("→ sigwho-testproc {pid}")),
        "{header}"
    );
    assert!(
        report.iter().any(|l| l.contains(" PID START")),
        "{report:#?}"
    );
    let row = |role: &str| {
        report
            .iter()
            .find(|l| l.trim_start().starts_with(role))
            .unwrap_or_else(|| panic!("no {role} row: {report:#?}"))
    };
    assert!(row("target").contains(&pid), "{report:#?}");
    assert!(row("target").ends_with('…'), "{report:#?}");
    assert!(row("sender").contains("kill"), "{report:#?}");
    assert!(report.iter().any(|l| l.trim_start().starts_with("why:")));
    let whole = "--handle USR1 ".repeat(14) + "--handle USR1";
    assert!(wide.iter().any(|l| l.contains(&whole)), "{wide:#?}");
    assert!(wide.iter().any(|l| l.chars().count() > 100));
}

/// A process forked after sigwho started that rewrites its title (as nginx and gunicorn
/// workers do) is shown with that title, not its parent's command line, and without the
/// empty arguments the rewrite leaves.
#[test]
fn a_forked_worker_shows_its_own_title() {
    require_root();
    let sigwho = Sigwho::start(&["--signal", "USR2", "--json"]);
    // The worker dies of the signal at once, as a worker usually does: sigwho must have
    // read its title before, at the end of the pass that saw it forked. The parent
    // survives USR2: its report says that pass is over.
    let script = r#"
$| = 1;
$SIG{USR2} = sub {};
my $pid = fork();
if ($pid == 0) {
    $0 = "oncall worker title";
    print "$$\n";
    sleep 100;
    exit 1;
}
while (waitpid($pid, 0) != $pid) {}
"#;
    let mut perl = Command::new("perl")
        .args(["-e", script, "padding-arg-one", "padding-arg-two"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("perl");
    let mut line = String::new();
    BufReader::new(perl.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let worker: i32 = line.trim().parse().expect("the worker's pid");
    let parent = i32::try_from(perl.id()).unwrap();
    kill(parent, "USR2");
    sigwho.wait_for(signal_to("SIGUSR2", parent), EVENT_TIMEOUT);
    kill(worker, "USR2");
    let ev = sigwho.wait_for(signal_to("SIGUSR2", worker), EVENT_TIMEOUT);
    assert_eq!(strings(&ev, "target.argv"), ["oncall worker title"], "{ev}");
    // Its parent still shows its own command line.
    let parent = &field(&ev, "target.ancestry")[0];
    assert_eq!(parent["argv"][0], "perl", "{ev}");
    let _ = perl.wait();
}

/// `sigwho record` and the live view, watching at once, describe the same signal alike:
/// every field but the times (each process places the kernel's clock on the wall clock
/// on its own, a few microseconds apart).
#[test]
fn the_live_view_and_the_journal_agree() {
    require_root();
    let dir = std::env::temp_dir().join(format!("sigwho-oncall-j{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal");
    let mut record = Command::new(sigwho_bin());
    record.args(["record", "--journal"]).arg(&journal);
    let recorder = Sigwho::start_waiting_for(record, "sigwho: recording");
    // The target and its sender are siblings (both children of this test).
    let mut target = Target::spawn(&["--no-stdin", "--handle", "USR1"]);
    let live = Sigwho::start(&["--target-pid", &target.pid.to_string(), "--json"]);
    kill(target.pid, "USR1");
    let seen = live.wait_for(signal_to("SIGUSR1", target.pid), EVENT_TIMEOUT);
    let mut stored = None;
    assert!(
        wait_until(
            || {
                let mut cmd = Command::new(sigwho_bin());
                cmd.args(["query", "--journal"]).arg(&journal).args([
                    "--target-pid",
                    &target.pid.to_string(),
                    "--json",
                ]);
                let out = run(cmd, EVENT_TIMEOUT);
                stored = out
                    .stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .find(|ev| signal_to("SIGUSR1", target.pid)(ev));
                stored.is_some()
            },
            EVENT_TIMEOUT
        ),
        "the journal has the signal"
    );
    let stored = stored.unwrap();
    let (seen, stored) = (without_times(seen), without_times(stored));
    assert_eq!(seen, stored, "live:\n{seen:#}\njournal:\n{stored:#}");
    assert_eq!(field_str(&seen, "relation"), Some("sibling"), "{seen}");
    drop(live);
    drop(recorder);
    target.signal(libc::SIGKILL);
    target.wait(EVENT_TIMEOUT);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `v` without its time fields (`time`, `start_time` anywhere).
fn without_times(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("time");
                map.remove("start_time");
                map.remove("previous_time");
                for value in map.values_mut() {
                    strip(value);
                }
            }
            Value::Array(list) => list.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}
