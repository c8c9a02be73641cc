//! The "why" fields of sigwho's signal reports (docs/json-schema.md): `origin_class`,
//! `relation`, `cause` chains, `root_sender`, `hints`, cgroups, against real processes
//! and real signals with the real eBPF programs loaded. Each test starts its own
//! processes, starts sigwho on the one to watch, waits for `sigwho: tracing`, makes the
//! signal happen and checks the parsed JSON.

use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    Parent, ProcId, Sigwho, Target, Value, child_pid, descendants, field, field_i64, field_str,
    hint_ids, is_exit, is_signal, require_root, run, strings, testproc, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn watch(pid: i32) -> Sigwho {
    require_root();
    Sigwho::start(&["--target-pid", &pid.to_string(), "--json"])
}

fn is_signal_from(sig: &'static str, sender: i32) -> impl Fn(&Value) -> bool {
    move |ev| is_signal(sig)(ev) && field_i64(ev, "sender.pid") == Some(i64::from(sender))
}

fn ancestry_pids(ev: &Value, path: &str) -> Vec<i64> {
    field(ev, path)
        .as_array()
        .unwrap_or_else(|| panic!("{path} is not an array in {ev}"))
        .iter()
        .map(|a| a["pid"].as_i64().unwrap_or_default())
        .collect()
}

fn cause(ev: &Value) -> &Vec<Value> {
    field(ev, "cause")
        .as_array()
        .unwrap_or_else(|| panic!("cause is not an array in {ev}"))
}

/// A pid as `field_i64` returns one, to compare with it.
#[expect(
    clippy::unnecessary_wraps,
    reason = "compared with field_i64's Option, which is None when the field is missing"
)]
fn pid_of(v: i32) -> Option<i64> {
    Some(i64::from(v))
}

/// The why-fields every signal report carries, well formed.
fn assert_why_fields(ev: &Value) {
    for key in ["origin_class", "relation"] {
        assert!(field_str(ev, key).is_some(), "{key} missing in {ev}");
    }
    for (i, link) in cause(ev).iter().enumerate() {
        for key in [
            "signal", "signo", "time", "origin", "code", "sender", "target",
        ] {
            assert!(link.get(key).is_some(), "cause.{i}.{key} missing in {ev}");
        }
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
            assert!(
                link["sender"].get(key).is_some(),
                "cause.{i}.sender.{key} missing in {ev}"
            );
        }
        for key in ["pid", "comm", "exe", "argv"] {
            assert!(
                link["target"].get(key).is_some(),
                "cause.{i}.target.{key} missing in {ev}"
            );
        }
    }
    for key in ["pid", "comm", "exe", "argv"] {
        assert!(
            field(ev, "root_sender").get(key).is_some(),
            "root_sender.{key} missing in {ev}"
        );
    }
    for (i, hint) in field(ev, "hints")
        .as_array()
        .unwrap_or_else(|| panic!("hints missing in {ev}"))
        .iter()
        .enumerate()
    {
        assert!(hint["id"].is_string(), "hints.{i}.id in {ev}");
        assert!(hint["text"].is_string(), "hints.{i}.text in {ev}");
    }
}

// ---------------------------------------------------------------------------------------
// Cause chains

#[test]
fn three_level_cascade() {
    // A (a `kill` sender) -> B (relays TERM) -> C (watched).
    let c = Target::spawn(&[]);
    let b = Target::spawn(&["--relay", &format!("TERM:{}", c.pid)]);
    let sigwho = watch(c.pid);
    let a = testproc(&["kill", &b.pid.to_string(), "TERM"]).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "target.pid"), pid_of(c.pid), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kill"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    // B and C were both started by the test process.
    assert_eq!(field_str(&ev, "relation"), Some("sibling"), "{ev}");
    assert_eq!(cause(&ev).len(), 1, "one link, B <- A: {ev}");
    assert_eq!(field_str(&ev, "cause.0.signal"), Some("SIGTERM"), "{ev}");
    assert_eq!(field_i64(&ev, "cause.0.signo"), Some(15), "{ev}");
    assert_eq!(field_str(&ev, "cause.0.origin"), Some("kill"), "{ev}");
    assert_eq!(field_i64(&ev, "cause.0.sender.pid"), pid_of(a.pid), "{ev}");
    assert_eq!(strings(&ev, "cause.0.sender.argv")[1], "kill", "{ev}");
    assert_eq!(
        ancestry_pids(&ev, "cause.0.sender.ancestry")[0],
        i64::from(std::process::id()),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "cause.0.target.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(field_i64(&ev, "root_sender.pid"), pid_of(a.pid), "{ev}");
    assert_eq!(strings(&ev, "root_sender.argv")[1], "kill", "{ev}");

    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
}

#[test]
#[expect(
    clippy::many_single_char_names,
    reason = "a, b, c, d are the chain's processes A -> B -> C -> D, as the comments call them"
)]
fn four_process_relay_chain() {
    // A -> B -> C -> D (watched): two links, nearest first.
    let d = Target::spawn(&[]);
    let c = Target::spawn(&["--relay", &format!("TERM:{}", d.pid)]);
    let b = Target::spawn(&["--relay", &format!("TERM:{}", c.pid)]);
    let sigwho = watch(d.pid);
    let a = testproc(&["kill", &b.pid.to_string(), "TERM"]).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(c.pid), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert_eq!(cause(&ev).len(), 2, "C <- B, B <- A: {ev}");
    // Link 0: what C had received (from B); its target is this report's sender.
    assert_eq!(field_i64(&ev, "cause.0.sender.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(field_i64(&ev, "cause.0.target.pid"), pid_of(c.pid), "{ev}");
    // Link 1: what B had received (from A).
    assert_eq!(field_i64(&ev, "cause.1.sender.pid"), pid_of(a.pid), "{ev}");
    assert_eq!(field_i64(&ev, "cause.1.target.pid"), pid_of(b.pid), "{ev}");
    assert_eq!(field_i64(&ev, "root_sender.pid"), pid_of(a.pid), "{ev}");
    let t0 = field_str(&ev, "cause.0.time").unwrap_or_default();
    let t1 = field_str(&ev, "cause.1.time").unwrap_or_default();
    let t = field_str(&ev, "time").unwrap_or_default();
    // Same-length RFC 3339 UTC strings compare like the times they name.
    assert!(t1 <= t0 && t0 <= t, "times go back along the chain: {ev}");
}

#[test]
fn shell_sender_under_a_wrapper_has_argv_and_ancestry() {
    let target = Target::spawn(&[]);
    let sigwho = watch(target.pid);
    let script = format!("kill -TERM {}; exit 0", target.pid);
    // The trailing `true` keeps sh from exec'ing bash in its place.
    let wrapper = format!("bash -c '{script}'; true");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &wrapper]);
    let sh = run(cmd, EVENT_TIMEOUT).assert_success();

    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_str(&ev, "sender.comm"), Some("bash"), "{ev}");
    assert_eq!(strings(&ev, "sender.argv"), ["bash", "-c", &script], "{ev}");
    let ancestry = ancestry_pids(&ev, "sender.ancestry");
    assert_eq!(ancestry[0], i64::from(sh.pid), "the sh wrapper: {ev}");
    assert_eq!(ancestry[1], i64::from(std::process::id()), "then us: {ev}");
    assert_eq!(
        strings(&ev, "sender.ancestry.0.argv"),
        ["sh", "-c", &wrapper],
        "{ev}"
    );
    assert_eq!(field_str(&ev, "origin_class"), Some("explicit"), "{ev}");
    assert!(cause(&ev).is_empty(), "bash had received nothing: {ev}");
    assert_eq!(
        field_i64(&ev, "root_sender.pid"),
        field_i64(&ev, "sender.pid"),
        "{ev}"
    );
}

// ---------------------------------------------------------------------------------------
// Parents

#[test]
fn reparented_target_keeps_original_parent() {
    let mut p = Parent::spawn(&["--no-stdin"]);
    let sigwho = watch(p.pid);
    let status = p.exit_parent();
    assert!(status.success(), "parent: {status}");
    let new_parent = p.child.ppid().expect("the child is still running");
    assert_ne!(new_parent, p.parent_pid, "the child was reparented");

    testproc(&["kill", &p.pid.to_string(), "TERM"]).assert_success();
    let ev = sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "target.pid"), pid_of(p.pid), "{ev}");
    assert_eq!(
        ancestry_pids(&ev, "target.ancestry")[0],
        i64::from(p.parent_pid),
        "the parent it was forked by, not {new_parent}: {ev}"
    );
    assert_eq!(strings(&ev, "target.ancestry.0.argv")[1], "parent", "{ev}");
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
    assert!(p.child.wait_gone(EVENT_TIMEOUT));
}

#[test]
fn parent_death_signal() {
    let mut p = Parent::spawn(&["--no-stdin", "--pdeathsig", "USR1"]);
    let sigwho = watch(p.pid);
    let status = p.exit_parent();
    assert!(status.success(), "parent: {status}");

    let ev = sigwho.wait_for(is_signal("SIGUSR1"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "target.pid"), pid_of(p.pid), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("parent_death"), "{ev}");
    assert_eq!(field_i64(&ev, "sender.pid"), pid_of(p.parent_pid), "{ev}");
    assert_eq!(field_str(&ev, "relation"), Some("parent"), "{ev}");
    assert!(
        hint_ids(&ev).iter().any(|h| h == "parent-death"),
        "parent-death hint: {ev}"
    );
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGUSR1"), "{exit}");
    assert!(p.child.wait_gone(EVENT_TIMEOUT));
}

// ---------------------------------------------------------------------------------------
// OOM kill

const OOM_LIMIT: &str = "50331648"; // 48 MiB

/// A memory cgroup of our own with a 48 MiB limit; removed on drop.
struct MemCgroup {
    dir: PathBuf,
}

impl MemCgroup {
    /// cgroup v1's memory hierarchy if mounted, else cgroup v2's. None (after saying why)
    /// if neither can be set up here.
    fn create() -> Option<MemCgroup> {
        let name = format!("sigwho-test-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        if v1.join("memory.limit_in_bytes").is_file() {
            let dir = v1.join(name);
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            let cg = MemCgroup { dir };
            cg.write("memory.limit_in_bytes", OOM_LIMIT)
                .unwrap_or_else(|e| panic!("memory.limit_in_bytes: {e}"));
            // Memory+swap too (memsw must not be below the memory limit: set it second),
            // and no swapping: the limit must end in the OOM killer.
            let _ = cg.write("memory.memsw.limit_in_bytes", OOM_LIMIT);
            let _ = cg.write("memory.swappiness", "0");
            return Some(cg);
        }
        let v2 = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.controllers").is_file());
        let Some(v2) = v2 else {
            eprintln!("skipping: no cgroup v1 memory hierarchy and no cgroup v2 mount");
            return None;
        };
        let controllers = fs::read_to_string(v2.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory")
            || fs::write(v2.join("cgroup.subtree_control"), "+memory").is_err()
        {
            eprintln!(
                "skipping: cannot enable the memory controller in {}",
                v2.display()
            );
            return None;
        }
        let dir = v2.join(name);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let cg = MemCgroup { dir };
        cg.write("memory.max", OOM_LIMIT)
            .unwrap_or_else(|e| panic!("memory.max: {e}"));
        let _ = cg.write("memory.swap.max", "0");
        Some(cg)
    }

    fn write(&self, file: &str, value: &str) -> std::io::Result<()> {
        fs::write(self.dir.join(file), value)
    }

    fn procs(&self) -> String {
        self.dir.join("cgroup.procs").display().to_string()
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // The last process may take a moment to leave the cgroup after it died.
        let removed = wait_until(|| fs::remove_dir(&self.dir).is_ok(), EVENT_TIMEOUT);
        if !removed {
            eprintln!("could not remove cgroup {}", self.dir.display());
        }
    }
}

#[test]
fn oom_kill_in_memory_cgroup() {
    require_root();
    let Some(cgroup) = MemCgroup::create() else {
        return;
    };
    let procs = cgroup.procs();
    let mut target = Target::spawn(&["--cgroup-procs", &procs]);
    let sigwho = watch(target.pid);
    target.send("alloc 512");

    let ev = sigwho.wait_for(is_signal("SIGKILL"), EVENT_TIMEOUT);
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "target.pid"), pid_of(target.pid), "{ev}");
    assert_eq!(field_str(&ev, "origin"), Some("kernel"), "{ev}");
    assert_eq!(field_str(&ev, "origin_class"), Some("oom_kill"), "{ev}");
    assert!(
        field_str(&ev, "target.cgroup").is_some_and(|c| c.contains("sigwho-test-")),
        "target.cgroup: {ev}"
    );
    assert!(
        hint_ids(&ev).iter().any(|h| h == "oom-killer"),
        "oom-killer hint: {ev}"
    );
    let exit = sigwho.wait_for(is_exit, EVENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGKILL"), "{exit}");
    let status = target.wait(EVENT_TIMEOUT);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    drop(target);
    drop(cgroup);
}

// ---------------------------------------------------------------------------------------
// The Node.js incident (tests/fixtures/incident/)

const INCIDENT_TIMEOUT: Duration = Duration::from_mins(1);

/// The fixture's process tree: the supervisor (our child) and every process below it,
/// by pid and start time as seen while they were verifiably its descendants. Dropping it
/// SIGKILLs those still running (never a reused pid), then the supervisor.
struct Incident {
    dir: PathBuf,
    supervisor: Child,
    tree: Vec<ProcId>,
}

impl Incident {
    fn pid_file(&self, name: &str) -> Option<i32> {
        fs::read_to_string(self.dir.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("incident.log")).unwrap_or_default()
    }
}

impl Drop for Incident {
    fn drop(&mut self) {
        // Closing stdin makes the supervisor kill index.js and exit.
        drop(self.supervisor.stdin.take());
        for p in self.tree.iter().rev() {
            // Gone already is as good.
            let _ = p.signal(libc::SIGKILL);
        }
        if matches!(self.supervisor.try_wait(), Ok(None)) {
            let _ = self.supervisor.kill();
        }
        let _ = self.supervisor.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find_node() -> Option<PathBuf> {
    ["/usr/bin/node", "/usr/local/bin/node"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one reproduction of the incident, its process tree watched from start to \
              end; the checks all read the same events"
)]
fn node_incident() {
    require_root();
    let Some(node) = find_node() else {
        eprintln!("skipping: no node binary (/usr/bin/node)");
        return;
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incident");
    let dir = std::env::temp_dir().join(format!("sigwho-incident-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("incident dir");
    let supervisor = Command::new(&node)
        .arg("supervisor.js")
        .current_dir(&fixtures)
        .env("INCIDENT_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("node supervisor.js runs");
    let supervisor_pid = child_pid(&supervisor);
    let mut incident = Incident {
        dir,
        supervisor,
        tree: Vec::new(),
    };

    // The worker writes its pid file once it is up, then waits for the go file.
    assert!(
        wait_until(|| incident.pid_file("worker").is_some(), INCIDENT_TIMEOUT),
        "no worker.pid within {INCIDENT_TIMEOUT:?}; log:\n{}",
        incident.log()
    );
    let pids: Vec<(&str, i32)> = ["index", "cli", "master", "worker"]
        .into_iter()
        .map(|name| {
            let pid = incident
                .pid_file(name)
                .unwrap_or_else(|| panic!("{name}.pid missing; log:\n{}", incident.log()));
            (name, pid)
        })
        .collect();
    incident.tree = descendants(supervisor_pid);
    for (name, pid) in &pids {
        assert!(
            incident.tree.iter().any(|p| p.pid == *pid),
            "{name} ({pid}) is not below the supervisor ({supervisor_pid}): {:?}",
            incident.tree
        );
    }
    let [index, cli, master, worker] = [pids[0].1, pids[1].1, pids[2].1, pids[3].1];

    let sigwho = watch(worker);
    fs::write(incident.dir.join("go"), "").expect("go file");

    // Node re-raises a fatal SIGTERM itself after resetting the terminal: the report that
    // matters is the master's.
    let ev = sigwho.wait_for(is_signal_from("SIGTERM", master), INCIDENT_TIMEOUT);
    let context = format!("{ev}\nlog:\n{}", incident.log());
    assert_why_fields(&ev);
    assert_eq!(field_i64(&ev, "target.pid"), pid_of(worker), "{context}");
    assert!(
        strings(&ev, "sender.argv")
            .iter()
            .any(|a| a.ends_with("master.js")),
        "sender is the cluster master: {context}"
    );
    assert_eq!(field_str(&ev, "relation"), Some("parent"), "{context}");

    // master <- cli <- index.js
    let links = cause(&ev);
    assert_eq!(links.len(), 2, "master <- cli, cli <- index.js: {context}");
    assert_eq!(
        field_i64(&ev, "cause.0.sender.pid"),
        pid_of(cli),
        "{context}"
    );
    assert_eq!(
        field_i64(&ev, "cause.0.target.pid"),
        pid_of(master),
        "{context}"
    );
    assert_eq!(
        field_str(&ev, "cause.1.signal"),
        Some("SIGTERM"),
        "{context}"
    );
    assert_eq!(
        field_i64(&ev, "cause.1.sender.pid"),
        pid_of(index),
        "{context}"
    );
    assert_eq!(
        field_i64(&ev, "cause.1.target.pid"),
        pid_of(cli),
        "{context}"
    );
    assert!(
        strings(&ev, "cause.1.target.argv")
            .iter()
            .any(|a| a.ends_with("cli.js")),
        "{context}"
    );

    assert_eq!(
        field_i64(&ev, "root_sender.pid"),
        pid_of(index),
        "{context}"
    );
    assert!(
        strings(&ev, "root_sender.argv")
            .iter()
            .any(|a| a.ends_with("index.js")),
        "root sender is index.js: {context}"
    );
    let last = links.len() - 1;
    let root_ancestry = format!("cause.{last}.sender.ancestry");
    let up = field(&ev, &root_ancestry)
        .as_array()
        .unwrap_or_else(|| panic!("{root_ancestry} missing: {context}"));
    assert!(
        up.iter()
            .any(|a| a["pid"].as_i64() == pid_of(supervisor_pid)
                && strings(a, "argv")
                    .iter()
                    .any(|s| s.ends_with("supervisor.js"))),
        "the supervisor is among index.js's ancestors: {context}"
    );

    assert!(
        hint_ids(&ev)
            .iter()
            .any(|h| h == "node-exec-maxbuffer-timeout"),
        "node-exec-maxbuffer-timeout hint: {context}"
    );

    let exit = sigwho.wait_for(is_exit, INCIDENT_TIMEOUT);
    assert_eq!(field_str(&exit, "signal"), Some("SIGTERM"), "{exit}");
}

#[test]
fn term_then_kill_from_the_same_sender_is_an_escalation() {
    let mut target = Target::spawn(&["--ignore", "TERM"]);
    let sigwho = watch(target.pid);
    assert!(target.signal(libc::SIGTERM));
    sigwho.wait_for(is_signal("SIGTERM"), EVENT_TIMEOUT);
    target.ping();
    assert!(target.signal(libc::SIGKILL));
    let ev = sigwho.wait_for(is_signal("SIGKILL"), EVENT_TIMEOUT);
    assert_eq!(
        field_str(&ev, "escalation.previous_signal"),
        Some("SIGTERM"),
        "{ev}"
    );
    assert!(
        field(&ev, "escalation.after_seconds")
            .as_f64()
            .is_some_and(|s| s >= 0.0)
    );
    assert!(hint_ids(&ev).contains(&"escalation".to_owned()), "{ev}");
}
