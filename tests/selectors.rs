//! The live view's selectors (`--target-comm`, `--target-exe`, `--unit`, `--container`,
//! `--pod`, `--cgroup`, `--signal`) with the real eBPF programs, real processes and real
//! cgroups: each follows processes that start after sigwho did (a restart), leaves out
//! the others, and combines with the rest. Needs root and a cgroup v2 mount.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use sigwho_tests::{
    Sigwho, Target, Value, field_i64, field_str, is_exit, is_signal, require_root, testproc,
    testproc_bin, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn signal_to(sig: &'static str, pid: i32) -> impl Fn(&Value) -> bool {
    move |ev| is_signal(sig)(ev) && field_i64(ev, "target.pid") == Some(i64::from(pid))
}

/// Signals sigwho reported for `pid` so far.
fn reported_for(sigwho: &Sigwho, pid: i32) -> Vec<Value> {
    sigwho
        .all_events()
        .into_iter()
        .filter(|ev| field_str(ev, "event") == Some("signal"))
        .filter(|ev| field_i64(ev, "target.pid") == Some(i64::from(pid)))
        .collect()
}

/// A directory of our own holding sigwho-testproc under another name, so that its comm
/// (the name it was exec'd by) is unique to this test.
struct Renamed {
    dir: PathBuf,
    path: PathBuf,
}

impl Renamed {
    fn new(name: &str) -> Renamed {
        let dir =
            std::env::temp_dir().join(format!("sigwho-selectors-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        symlink(testproc_bin(), &path).unwrap();
        Renamed { dir, path }
    }

    fn spawn(&self, args: &[&str]) -> Target {
        let mut cmd = Command::new(&self.path);
        cmd.arg("target").args(args);
        Target::spawn_with(cmd)
    }
}

impl Drop for Renamed {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Sends `sig` to `pid` from a process of its own (sigwho-testproc kill).
fn kill(pid: i32, sig: &str) {
    testproc(&["kill", &pid.to_string(), sig]).assert_success();
}

#[test]
fn target_comm_follows_a_restarted_process_and_leaves_others_out() {
    require_root();
    let name = format!("oncall-c{}", std::process::id() % 100_000);
    let renamed = Renamed::new(&name);
    let sigwho = Sigwho::start(&["--target-comm", &name, "--json"]);

    // Started after sigwho: the kernel adds it at exec.
    let mut first = renamed.spawn(&["--no-stdin"]);
    let mut other = Target::spawn(&["--no-stdin"]);
    kill(other.pid, "TERM");
    kill(first.pid, "TERM");
    let ev = sigwho.wait_for(signal_to("SIGTERM", first.pid), EVENT_TIMEOUT);
    assert_eq!(field_str(&ev, "target.comm"), Some(name.as_str()), "{ev}");
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    sigwho.wait_for(
        |ev| is_exit(ev) && field_i64(ev, "pid") == Some(i64::from(first.pid)),
        EVENT_TIMEOUT,
    );
    first.wait(EVENT_TIMEOUT);
    other.wait(EVENT_TIMEOUT);

    // The restart: a new pid under the same name.
    let mut second = renamed.spawn(&["--no-stdin", "--handle", "USR1"]);
    assert_ne!(second.pid, first.pid);
    kill(second.pid, "USR1");
    sigwho.wait_for(signal_to("SIGUSR1", second.pid), EVENT_TIMEOUT);
    assert!(
        reported_for(&sigwho, other.pid).is_empty(),
        "a process of another name was reported\n{}",
        sigwho.report()
    );
    second.signal(libc::SIGKILL);
    second.wait(EVENT_TIMEOUT);
}

#[test]
fn signal_selector_is_applied_with_the_others() {
    require_root();
    let name = format!("oncall-s{}", std::process::id() % 100_000);
    let renamed = Renamed::new(&name);
    let sigwho = Sigwho::start(&["--target-comm", &name, "--signal", "USR1,TERM", "--json"]);
    let mut target = renamed.spawn(&["--no-stdin", "--handle", "USR1", "--handle", "USR2"]);
    kill(target.pid, "USR2");
    kill(target.pid, "USR1");
    sigwho.wait_for(signal_to("SIGUSR1", target.pid), EVENT_TIMEOUT);
    kill(target.pid, "TERM");
    sigwho.wait_for(signal_to("SIGTERM", target.pid), EVENT_TIMEOUT);
    let signals: Vec<String> = reported_for(&sigwho, target.pid)
        .iter()
        .filter_map(|ev| field_str(ev, "signal").map(str::to_owned))
        .collect();
    assert_eq!(signals, ["SIGUSR1", "SIGTERM"], "{}", sigwho.report());
    target.wait(EVENT_TIMEOUT);
}

#[test]
fn no_selector_but_signal_reports_that_signal_for_every_process() {
    require_root();
    let sigwho = Sigwho::start(&["--signal", "USR2", "--json"]);
    let mut a = Target::spawn(&["--no-stdin", "--handle", "USR1", "--handle", "USR2"]);
    let mut b = Target::spawn(&["--no-stdin", "--handle", "USR2"]);
    kill(a.pid, "USR1");
    kill(a.pid, "USR2");
    kill(b.pid, "USR2");
    sigwho.wait_for(signal_to("SIGUSR2", a.pid), EVENT_TIMEOUT);
    sigwho.wait_for(signal_to("SIGUSR2", b.pid), EVENT_TIMEOUT);
    assert!(
        sigwho
            .all_events()
            .iter()
            .all(|ev| field_str(ev, "signal") == Some("SIGUSR2")),
        "only SIGUSR2 is reported\n{}",
        sigwho.report()
    );
    for t in [&mut a, &mut b] {
        t.signal(libc::SIGKILL);
        t.wait(EVENT_TIMEOUT);
    }
}

/// The cgroup v2 mount (hybrid machines have it at /sys/fs/cgroup/unified).
fn cgroup2_root() -> PathBuf {
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount")
}

/// A cgroup tree of our own, removed (leaf first) on drop once its processes are gone.
struct Cgroups {
    dirs: Vec<PathBuf>,
}

impl Cgroups {
    fn create(root: &Path, relative: &str) -> (Cgroups, PathBuf) {
        let mut dirs = Vec::new();
        let mut at = root.to_path_buf();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            at = at.join(part);
            fs::create_dir_all(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display()));
            dirs.push(at.clone());
        }
        (Cgroups { dirs }, at)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            let gone = wait_until(|| fs::remove_dir(dir).is_ok(), Duration::from_secs(5));
            if !gone {
                eprintln!("could not remove cgroup {}", dir.display());
            }
        }
    }
}

/// A target that moves itself into `leaf` before it execs, so that sigwho sees its exec
/// in that cgroup (a process a supervisor starts there).
fn spawn_in(leaf: &Path, args: &[&str]) -> Target {
    let procs = leaf.join("cgroup.procs");
    let script = format!(
        "echo $$ > '{}' && exec '{}' target \"$@\"",
        procs.display(),
        testproc_bin().display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    Target::spawn_with(cmd)
}

#[test]
fn unit_container_pod_and_cgroup_selectors_follow_new_processes() {
    require_root();
    let n = std::process::id();
    let unit = format!("sigwho-oncall-{n}.service");
    let uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
    let container = format!("{:0>64x}", u64::from(n) * 0x1_0001);
    let relative = format!("{unit}/pod{uid}/docker-{container}.scope");
    let (cgroups, leaf) = Cgroups::create(&cgroup2_root(), &relative);

    let cases: [(&str, String); 4] = [
        ("--unit", unit.trim_end_matches(".service").to_owned()),
        ("--container", container[..12].to_owned()),
        ("--pod", uid.to_owned()),
        ("--cgroup", format!("/{unit}")),
    ];
    // Already in the cgroup when sigwho starts: found in /proc.
    let mut before = spawn_in(&leaf, &["--no-stdin", "--handle", "USR1"]);
    let watchers: Vec<Sigwho> = cases
        .iter()
        .map(|(flag, value)| Sigwho::start(&[flag, value, "--json"]))
        .collect();
    let mut outside = Target::spawn(&["--no-stdin", "--handle", "USR1"]);
    // Started in it after sigwho: followed from its exec.
    let mut after = spawn_in(&leaf, &["--no-stdin", "--handle", "USR1"]);
    // `after`'s exec is in the ring before this signal: once a watcher reports this
    // one, it has read that exec and put `after` in its filter.
    kill(before.pid, "USR1");
    for (sigwho, (flag, _)) in watchers.iter().zip(&cases) {
        let ev = sigwho.wait_for(signal_to("SIGUSR1", before.pid), EVENT_TIMEOUT);
        assert!(
            field_str(&ev, "target.cgroup").is_some_and(|c| c.ends_with(&relative)),
            "{flag}: {ev}"
        );
    }
    kill(outside.pid, "USR1");
    kill(after.pid, "USR1");
    for (sigwho, (flag, _)) in watchers.iter().zip(&cases) {
        let ev = sigwho.wait_for(signal_to("SIGUSR1", after.pid), EVENT_TIMEOUT);
        assert_eq!(
            field_str(&ev, "target.container_id"),
            Some(container.as_str()),
            "{flag}: {ev}"
        );
        assert_eq!(field_str(&ev, "target.pod_uid"), Some(uid), "{flag}: {ev}");
        assert!(
            reported_for(sigwho, outside.pid).is_empty(),
            "{flag}: a process outside the cgroup was reported\n{}",
            sigwho.report()
        );
    }
    for t in [&mut before, &mut outside, &mut after] {
        t.signal(libc::SIGKILL);
        t.wait(EVENT_TIMEOUT);
    }
    drop(watchers);
    drop(cgroups);
}

/// `sigwho query` takes the same selectors, and `--follow` prints what the recorder adds.
#[test]
fn query_selects_like_the_live_view_and_follows_the_journal() {
    require_root();
    let n = std::process::id();
    let container = format!("{:0>64x}", u64::from(n) * 0x2_0003);
    let relative = format!("sigwho-oncall-q{n}/docker-{container}.scope");
    let (cgroups, leaf) = Cgroups::create(&cgroup2_root(), &relative);
    let dir = std::env::temp_dir().join(format!("sigwho-selectors-q{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("journal");
    let mut record = Sigwho::command(&["record", "--journal"]);
    record.arg(&journal);
    let recorder = Sigwho::start_waiting_for(record, "sigwho: recording");
    let mut follow = Sigwho::command(&["query", "--journal"]);
    follow.arg(&journal).args([
        "--container",
        &container[..12],
        "--signal",
        "USR1,USR2",
        "--follow",
        "--json",
    ]);
    let follower = Sigwho::start_waiting_for(follow, "sigwho: following");
    let mut inside = spawn_in(
        &leaf,
        &["--no-stdin", "--handle", "USR1", "--handle", "HUP"],
    );
    let mut outside = Target::spawn(&["--no-stdin", "--handle", "USR1"]);
    kill(outside.pid, "USR1");
    kill(inside.pid, "HUP");
    kill(inside.pid, "USR1");
    let ev = follower.wait_for(signal_to("SIGUSR1", inside.pid), EVENT_TIMEOUT);
    assert_eq!(
        field_str(&ev, "target.container_id"),
        Some(container.as_str()),
        "{ev}"
    );
    let seen = follower.all_events();
    assert!(
        seen.iter().all(
            |ev| field_i64(ev, "target.pid") == Some(i64::from(inside.pid))
                && field_str(ev, "signal") == Some("SIGUSR1")
        ),
        "only the container's SIGUSR1: {seen:#?}"
    );
    drop(follower);
    drop(recorder);
    for t in [&mut inside, &mut outside] {
        t.signal(libc::SIGKILL);
        t.wait(EVENT_TIMEOUT);
    }
    drop(cgroups);
    let _ = fs::remove_dir_all(&dir);
}
