//! The process table: who is (or was) whose child, and what each process ran.
//!
//! Built from a /proc snapshot at start, then kept current by fork, exec and exit
//! records from the kernel, so a sender that exited a millisecond after sending is still
//! described by what it was. Processes are keyed by (pid, start time), never by pid
//! alone: pids are reused.

use std::collections::{HashMap, VecDeque};

use tracer_common::{Ancestor, ExecEvent, ExitEvent, ForkEvent, TaskRef, exec_flags};

use crate::{
    kernel::decode,
    model::procfs::{self, ProcInfo, SystemProc},
};

/// A process's identity. Start times are compared in clock ticks since boot because
/// that is all /proc offers; the kernel's nanoseconds are converted down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    pub start_ticks: u64,
}

/// One program a process ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    /// Boot-clock ns of the exec; `None` for what the /proc snapshot found.
    pub time_ns: Option<u64>,
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub argv_truncated: bool,
    /// Copied from the parent at fork: the child runs that program until it execs.
    pub inherited: bool,
    /// An inherited record /proc has been asked about enough ([`ProcessTable::settle`]).
    pub settled: bool,
    /// How often /proc was asked.
    pub settle_tries: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub key: ProcKey,
    /// Precise start (ns since boot) when the kernel told us.
    pub start_ns: Option<u64>,
    /// Parent at fork time (or as /proc showed it at start). Reparenting to a subreaper
    /// does not change it: the report should name who started the process.
    pub parent: Option<ProcKey>,
    pub comm: String,
    pub uid: Option<u32>,
    /// Process id in its own pid namespace, when the kernel told us.
    pub ns_pid: Option<u32>,
    /// Cgroup path (see [`crate::model::cgroup::pick_path`]), as of the last exec or /proc read.
    pub cgroup: Option<String>,
    /// Programs run, oldest first; the last one is current. Empty when the process was
    /// forked after sigwho started and has not exec'd (it runs its parent's program).
    pub execs: Vec<ExecRecord>,
    pub exited_ns: Option<u64>,
    pub exit_status: Option<u32>,
    /// The real-parent chain the kernel reported at this process's first signal.
    pub kernel_ancestry: Option<Vec<KernelAncestor>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelAncestor {
    pub key: ProcKey,
    pub comm: String,
}

impl Process {
    #[must_use]
    pub fn current_exec(&self) -> Option<&ExecRecord> {
        self.execs.last()
    }
}

/// How long an exited process stays in the table: long enough for late cause-chain and
/// ancestry look-ups, short enough to bound memory under fork storms.
const KEEP_EXITED_NS: u64 = 120 * 1_000_000_000;
/// Ancestry walks stop here even if the table has a cycle (it should not).
const MAX_ANCESTRY: usize = 64;
/// How often /proc is asked about a forked process that still shows its parent's
/// command line (see `ProcessTable::settle`).
const SETTLE_TRIES: u8 = 3;
/// Forked processes settled at the end of one pass, at most.
const SETTLE_PER_PASS: usize = 128;

pub struct ProcessTable {
    /// Where processes the kernel did not describe are looked up.
    info: Box<dyn ProcInfo>,
    procs: HashMap<ProcKey, Process>,
    /// The newest incarnation of each pid.
    latest: HashMap<u32, ProcKey>,
    exited: VecDeque<(u64, ProcKey)>,
    ns_per_tick: u64,
    /// Moves whenever what the table says about any process may have changed; reports
    /// built from it can be reused while it stands still.
    generation: u64,
    /// Processes forked since the last `settle_recent`, oldest first.
    recent: Vec<ProcKey>,
}

/// A process as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessView {
    pub key: ProcKey,
    pub start_ns: Option<u64>,
    pub comm: String,
    pub exe: Option<String>,
    pub argv: Vec<String>,
    pub uid: Option<u32>,
    pub parent: Option<ProcKey>,
    pub ns_pid: Option<u32>,
    pub cgroup: Option<String>,
}

impl ProcessTable {
    #[must_use]
    pub fn new(ticks_per_second: u64) -> Self {
        Self::with_info(Box::new(SystemProc), ticks_per_second)
    }

    /// An empty table that looks processes up in `info`.
    #[must_use]
    pub fn with_info(info: Box<dyn ProcInfo>, ticks_per_second: u64) -> Self {
        Self {
            info,
            procs: HashMap::new(),
            latest: HashMap::new(),
            exited: VecDeque::new(),
            ns_per_tick: 1_000_000_000 / ticks_per_second.max(1),
            generation: 0,
            recent: Vec::new(),
        }
    }

    /// A table filled from every process /proc shows now.
    #[must_use]
    pub fn from_proc(ticks_per_second: u64) -> Self {
        Self::snapshot(Box::new(SystemProc), ticks_per_second)
    }

    /// A table filled from every process `info` lists now.
    #[must_use]
    pub fn snapshot(info: Box<dyn ProcInfo>, ticks_per_second: u64) -> Self {
        let mut table = Self::with_info(info, ticks_per_second);
        let snaps: Vec<_> = table
            .info
            .pids()
            .into_iter()
            .filter_map(|pid| table.info.process(pid))
            .collect();
        for snap in &snaps {
            table.insert_snapshot(snap);
        }
        // Parents are linked once everyone is in.
        for snap in &snaps {
            let key = ProcKey {
                pid: snap.stat.pid,
                start_ticks: snap.stat.start_ticks,
            };
            let parent = table.latest.get(&snap.stat.ppid).copied();
            if let Some(process) = table.procs.get_mut(&key) {
                process.parent = parent;
            }
        }
        table
    }

    /// Where the table looks processes up.
    #[must_use]
    pub fn info(&self) -> &dyn ProcInfo {
        &*self.info
    }

    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    #[must_use]
    pub fn key(&self, pid: u32, start_ns: u64) -> ProcKey {
        ProcKey {
            pid,
            start_ticks: start_ns / self.ns_per_tick,
        }
    }

    #[must_use]
    pub fn get(&self, key: &ProcKey) -> Option<&Process> {
        self.procs.get(key)
    }

    /// The newest known incarnation of `pid`.
    #[must_use]
    pub fn latest(&self, pid: u32) -> Option<&Process> {
        self.latest.get(&pid).and_then(|key| self.procs.get(key))
    }

    fn insert_snapshot(&mut self, snap: &procfs::ProcSnapshot) -> ProcKey {
        let key = ProcKey {
            pid: snap.stat.pid,
            start_ticks: snap.stat.start_ticks,
        };
        let parent = self.latest.get(&snap.stat.ppid).copied();
        let process = Process {
            key,
            start_ns: None,
            parent,
            comm: snap.stat.comm.clone(),
            uid: snap.uid,
            ns_pid: None,
            cgroup: snap.cgroup.clone(),
            execs: if snap.argv.is_empty() && snap.exe.is_none() {
                Vec::new()
            } else {
                vec![ExecRecord {
                    time_ns: None,
                    exe: snap.exe.clone(),
                    argv: snap.argv.clone(),
                    argv_truncated: false,
                    inherited: false,
                    settled: false,
                    settle_tries: 0,
                }]
            },
            exited_ns: None,
            exit_status: None,
            kernel_ancestry: None,
        };
        self.insert(process);
        key
    }

    fn insert(&mut self, process: Process) {
        self.generation += 1;
        let key = process.key;
        let newer = self
            .latest
            .get(&key.pid)
            .is_none_or(|old| old.start_ticks <= key.start_ticks);
        if newer {
            self.latest.insert(key.pid, key);
        }
        self.procs.insert(key, process);
    }

    /// The entry for a task the kernel just described, created from the kernel's data
    /// (and /proc, if the process is still there) when it is new to us.
    pub fn observe(&mut self, task: &TaskRef) -> ProcKey {
        let key = self.key(task.pid, task.start_ns);
        let ns_pid = (task.ns_pid != 0).then_some(task.ns_pid);
        if let Some(process) = self.procs.get_mut(&key) {
            if process.start_ns.is_none() || (ns_pid.is_some() && process.ns_pid != ns_pid) {
                self.generation += 1;
            }
            process.start_ns.get_or_insert(task.start_ns);
            if ns_pid.is_some() {
                process.ns_pid = ns_pid;
            }
            return key;
        }
        self.generation += 1;
        if let Some(snap) = self.info.process_if(task.pid, key.start_ticks) {
            self.insert_snapshot(&snap);
            if let Some(process) = self.procs.get_mut(&key) {
                process.start_ns = Some(task.start_ns);
                process.ns_pid = ns_pid;
            }
            return key;
        }
        let parent = self.latest.get(&task.ppid).copied();
        self.insert(Process {
            key,
            start_ns: Some(task.start_ns),
            parent,
            comm: decode::c_string(&task.comm),
            uid: Some(task.uid),
            ns_pid,
            cgroup: None,
            execs: Vec::new(),
            exited_ns: None,
            exit_status: None,
            kernel_ancestry: None,
        });
        key
    }

    pub fn apply_fork(&mut self, ev: &ForkEvent) {
        self.generation += 1;
        let parent = self.key(ev.child.ppid, ev.parent_start_ns);
        if !self.procs.contains_key(&parent) {
            // The parent predates us and the snapshot missed it (or it is the forker).
            if ev.forker.pid == ev.child.ppid {
                self.observe(&ev.forker);
            }
        }
        let key = self.key(ev.child.pid, ev.child.start_ns);
        // The child runs its parent's program until it execs.
        let inherited = self
            .procs
            .get(&parent)
            .and_then(|p| p.current_exec().cloned());
        let cgroup = self.procs.get(&parent).and_then(|p| p.cgroup.clone());
        if inherited.is_some() && self.recent.len() < SETTLE_PER_PASS {
            self.recent.push(key);
        }
        self.insert(Process {
            key,
            start_ns: Some(ev.child.start_ns),
            parent: Some(parent),
            comm: decode::c_string(&ev.child.comm),
            uid: Some(ev.child.uid),
            ns_pid: (ev.child.ns_pid != 0).then_some(ev.child.ns_pid),
            cgroup,
            execs: inherited
                .map(|exec| {
                    vec![ExecRecord {
                        time_ns: None,
                        inherited: true,
                        settled: false,
                        settle_tries: 0,
                        ..exec
                    }]
                })
                .unwrap_or_default(),
            exited_ns: None,
            exit_status: None,
            kernel_ancestry: None,
        });
    }

    pub fn apply_exec(&mut self, ev: &ExecEvent) {
        self.generation += 1;
        let key = self.observe(&ev.task);
        let filename = decode::c_string(&ev.filename);
        let argv = decode::split_args(&ev.args[..(ev.args_len as usize).min(ev.args.len())]);
        // The path execve was given may be relative; /proc has the resolved one while the
        // process is alive (checked against its start time).
        let info = &self.info;
        let still_there = || {
            info.stat(ev.task.pid)
                .is_some_and(|s| s.start_ticks == key.start_ticks)
        };
        let exe = info
            .exe(ev.task.pid)
            .filter(|_| still_there())
            .or((!filename.is_empty()).then_some(filename));
        // /proc has the full path; a process already gone (a container's first process
        // killed at once) still has the last components the kernel read at exec.
        let cgroup = info
            .cgroup(ev.task.pid)
            .filter(|_| still_there())
            .or_else(|| kernel_cgroup_path(ev));
        let record = ExecRecord {
            time_ns: Some(ev.header.time_ns),
            exe,
            argv,
            argv_truncated: ev.flags & exec_flags::ARGS_TRUNCATED != 0,
            inherited: false,
            settled: false,
            settle_tries: 0,
        };
        if let Some(process) = self.procs.get_mut(&key) {
            process.comm = decode::c_string(&ev.task.comm);
            if cgroup.is_some() {
                process.cgroup = cgroup;
            }
            // A forked child's inherited record is replaced, not kept as history.
            if process.execs.last().is_some_and(|e| e.inherited) {
                process.execs.pop();
            }
            process.execs.push(record);
        }
    }

    pub fn apply_exit(&mut self, ev: &ExitEvent) {
        self.generation += 1;
        let key = self.observe(&ev.task);
        if let Some(process) = self.procs.get_mut(&key) {
            process.exited_ns = Some(ev.header.time_ns);
            process.exit_status = Some(ev.exit_code);
            self.exited.push_back((ev.header.time_ns, key));
        }
        self.prune(ev.header.time_ns);
    }

    /// Records the chain the kernel saw for a sender's first signal.
    pub fn set_kernel_ancestry(&mut self, key: ProcKey, chain: &[Ancestor]) {
        self.generation += 1;
        let chain: Vec<KernelAncestor> = chain
            .iter()
            .map(|a| KernelAncestor {
                key: self.key(a.pid, a.start_ns),
                comm: decode::c_string(&a.comm),
            })
            .collect();
        // Ancestors that were never seen (lost records) still get an entry with a name.
        for ancestor in &chain {
            if !self.procs.contains_key(&ancestor.key)
                && let Some(snap) = self
                    .info
                    .process_if(ancestor.key.pid, ancestor.key.start_ticks)
            {
                self.insert_snapshot(&snap);
            }
        }
        if let Some(process) = self.procs.get_mut(&key) {
            process.kernel_ancestry = Some(chain);
        }
    }

    /// Drops exited processes older than the retention window, unless a live process
    /// still names them as its parent.
    fn prune(&mut self, now_ns: u64) {
        while let Some(&(exited_at, key)) = self.exited.front() {
            if now_ns.saturating_sub(exited_at) < KEEP_EXITED_NS {
                break;
            }
            self.exited.pop_front();
            self.procs.remove(&key);
            if self.latest.get(&key.pid) == Some(&key) {
                self.latest.remove(&key.pid);
            }
        }
    }

    /// A process forked while sigwho watched runs its parent's program until it execs,
    /// but it may rewrite its title (nginx, gunicorn and PM2 workers do, right after
    /// fork): /proc is asked for its command line when the pass that saw the fork ends
    /// and the next ones (`settle_recent`) and when it is a report's target, a few
    /// times at most, until
    /// it shows a new title: something else than the command line it inherited and
    /// than what its parent shows. A process already gone keeps what it has.
    ///
    /// Only forks: the command line of an exec is the kernel's own record, and /proc may
    /// already show a later exec (a sender that sends, then execs at once), or another
    /// process at the same pid started within the same clock tick.
    pub fn settle(&mut self, key: &ProcKey) {
        let Some(process) = self.procs.get(key) else {
            return;
        };
        let Some(exec) = process.current_exec() else {
            return;
        };
        if process.exited_ns.is_some() || !exec.inherited || exec.settled {
            return;
        }
        let now = self
            .info
            .cmdline_if(key.pid, key.start_ticks)
            .map(|a| tidy_argv(&a));
        // A fork is retitled once it shows something else than its parent shows now.
        let parent_shows = match (exec.inherited, process.parent) {
            (true, Some(parent)) => self
                .info
                .cmdline_if(parent.pid, parent.start_ticks)
                .map(|a| tidy_argv(&a)),
            _ => None,
        };
        let recorded = tidy_argv(&exec.argv);
        let Some(exec) = self.procs.get_mut(key).and_then(|p| p.execs.last_mut()) else {
            return;
        };
        exec.settle_tries += 1;
        match now.filter(|a| !a.is_empty()) {
            Some(argv) if argv != recorded && parent_shows.as_ref() != Some(&argv) => {
                exec.argv = argv;
                exec.settled = true;
                self.generation += 1;
            }
            // Gone: nothing better will come.
            None => exec.settled = true,
            Some(_) => exec.settled = exec.settle_tries >= SETTLE_TRIES,
        }
    }

    /// [`settle`](Self::settle)s the processes forked since the last call (at most
    /// [`SETTLE_PER_PASS`]: a fork storm settles at its signals instead).
    pub fn settle_recent(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        for key in &recent {
            self.settle(key);
            // Not retitled yet (the pass may have ended right after the fork): again
            // when the next pass ends, until the tries run out.
            let pending = self.procs.get(key).is_some_and(|p| {
                p.exited_ns.is_none() && p.current_exec().is_some_and(|e| e.inherited && !e.settled)
            });
            if pending && self.recent.len() < SETTLE_PER_PASS {
                self.recent.push(*key);
            }
        }
    }

    /// The newest incarnation of every pid that has not exited.
    #[must_use]
    pub fn live_keys(&self) -> Vec<ProcKey> {
        self.latest
            .values()
            .filter(|key| self.procs.get(key).is_some_and(|p| p.exited_ns.is_none()))
            .copied()
            .collect()
    }

    /// [`settle`](Self::settle) for `key` and its fork-time ancestors.
    pub fn settle_lineage(&mut self, key: &ProcKey) {
        let mut next = Some(*key);
        let mut steps = 0;
        while let Some(key) = next {
            if steps >= MAX_ANCESTRY {
                break;
            }
            self.settle(&key);
            next = if key.pid <= 1 {
                None
            } else {
                self.procs.get(&key).and_then(|p| p.parent)
            };
            steps += 1;
        }
    }

    #[must_use]
    pub fn view(&self, key: &ProcKey) -> Option<ProcessView> {
        let process = self.procs.get(key)?;
        let exec = process.current_exec();
        Some(ProcessView {
            key: *key,
            start_ns: process.start_ns,
            comm: process.comm.clone(),
            exe: exec.and_then(|e| e.exe.clone()),
            argv: exec.map(|e| tidy_argv(&e.argv)).unwrap_or_default(),
            uid: process.uid,
            parent: process.parent,
            ns_pid: process.ns_pid,
            cgroup: process.cgroup.clone(),
        })
    }

    /// Ancestors of `key`, parent first, up to pid 1: the kernel's chain at send time
    /// where there is one, continued from fork-time parents.
    #[must_use]
    pub fn ancestry(&self, key: &ProcKey) -> Vec<ProcessView> {
        let mut out = Vec::new();
        let Some(process) = self.procs.get(key) else {
            return out;
        };
        let mut next = process.parent;
        if let Some(chain) = &process.kernel_ancestry {
            for ancestor in chain {
                out.push(self.view(&ancestor.key).unwrap_or_else(|| ProcessView {
                    key: ancestor.key,
                    start_ns: None,
                    comm: ancestor.comm.clone(),
                    exe: None,
                    argv: Vec::new(),
                    uid: None,
                    parent: None,
                    ns_pid: None,
                    cgroup: None,
                }));
            }
            next = match chain.last() {
                Some(last) if last.key.pid <= 1 => None,
                Some(last) => self.procs.get(&last.key).and_then(|p| p.parent),
                None => process.parent,
            };
        }
        while let Some(key) = next {
            if out.len() >= MAX_ANCESTRY || out.iter().any(|v| v.key == key) {
                break;
            }
            let Some(view) = self.view(&key) else { break };
            next = if key.pid <= 1 { None } else { view.parent };
            out.push(view);
        }
        out
    }
}

/// An argv as the process shows it: without the empty strings that title rewriting
/// leaves at the end (`setproctitle()` in nginx, npm, PM2, Node's `process.title` pad
/// the old argument area with NULs, which /proc and the kernel's copy split into `""`s).
#[must_use]
pub fn tidy_argv(argv: &[String]) -> Vec<String> {
    let keep = argv
        .iter()
        .rposition(|a| !a.is_empty())
        .map_or(0, |i| i + 1);
    argv[..keep].to_vec()
}

/// The cgroup path from the components the kernel read at exec: `/a/b/c` when they
/// reach the root, `.../b/c/d` when the path goes on above them; None for the root
/// cgroup.
#[must_use]
pub fn kernel_cgroup_path(ev: &ExecEvent) -> Option<String> {
    let levels = (ev.cgroup_levels & 0xff) as usize;
    let names: Vec<String> = ev.cgroup_names[..levels.min(ev.cgroup_names.len())]
        .iter()
        .rev()
        .map(|name| decode::c_string(name))
        .collect();
    if names.is_empty() {
        return None;
    }
    let prefix = if ev.cgroup_levels & exec_flags::CGROUP_TRUNCATED != 0 {
        "..."
    } else {
        ""
    };
    Some(format!("{prefix}/{}", names.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::{COMM_LEN, EventHeader};

    const TPS: u64 = 100;
    const SEC: u64 = 1_000_000_000;

    fn comm(name: &str) -> [u8; COMM_LEN] {
        let mut out = [0; COMM_LEN];
        out[..name.len()].copy_from_slice(name.as_bytes());
        out
    }

    // Pids far above any real pid_max so /proc fallbacks never find a real process.
    fn task(pid: u32, born_s: u64, parent: u32, name: &str) -> TaskRef {
        TaskRef {
            pid,
            tid: pid,
            start_ns: born_s * SEC,
            uid: 0,
            ppid: parent,
            comm: comm(name),
            ns_pid: pid,
            flags: 0,
        }
    }

    fn fork(child: TaskRef, parent: TaskRef) -> ForkEvent {
        ForkEvent {
            header: EventHeader::default(),
            child,
            forker: parent,
            parent_start_ns: parent.start_ns,
        }
    }

    fn exec(task: TaskRef, at_s: u64, path: &str, args: &[&str]) -> ExecEvent {
        let mut ev = ExecEvent {
            header: EventHeader {
                kind: tracer_common::kind::EXEC,
                cpu: 0,
                time_ns: at_s * SEC,
            },
            task,
            flags: 0,
            args_len: 0,
            filename: [0; tracer_common::PATH_LEN],
            args: [0; tracer_common::ARGS_LEN],
            cgroup_levels: 0,
            _pad: 0,
            cgroup_names: [[0; tracer_common::CGROUP_NAME_LEN]; tracer_common::CGROUP_LEVELS],
        };
        ev.filename[..path.len()].copy_from_slice(path.as_bytes());
        let joined: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
        ev.args[..joined.len()].copy_from_slice(&joined);
        ev.args_len = u32::try_from(joined.len()).unwrap();
        ev
    }

    fn with_cgroup(mut ev: ExecEvent, leaf_first: &[&str], truncated: bool) -> ExecEvent {
        for (slot, name) in ev.cgroup_names.iter_mut().zip(leaf_first) {
            *slot = [0; tracer_common::CGROUP_NAME_LEN];
            slot[..name.len()].copy_from_slice(name.as_bytes());
        }
        ev.cgroup_levels = u32::try_from(leaf_first.len()).unwrap();
        if truncated {
            ev.cgroup_levels |= exec_flags::CGROUP_TRUNCATED;
        }
        ev
    }

    #[test]
    fn cgroup_of_a_process_gone_before_its_exec_is_handled_comes_from_the_kernel() {
        let id = "0123456789abcdef".repeat(4);
        let uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
        let systemd_pod = format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_"));
        let container = format!("cri-containerd-{id}.scope");
        let ev = with_cgroup(
            exec(
                task(4_000_001, 10, 1, "sleep"),
                11,
                "/bin/sleep",
                &["sleep", "9"],
            ),
            &[
                &container,
                &systemd_pod,
                "kubepods-besteffort.slice",
                "kubepods.slice",
            ],
            false,
        );
        let path = kernel_cgroup_path(&ev).expect("a path");
        assert_eq!(
            path,
            format!("/kubepods.slice/kubepods-besteffort.slice/{systemd_pod}/{container}")
        );
        let found = crate::model::cgroup::identity(&path);
        assert_eq!(found.container_id.as_deref(), Some(id.as_str()));
        assert_eq!(found.pod_uid.as_deref(), Some(uid));

        // The pid is far above pid_max: no /proc entry, as for a process already gone.
        let mut table = ProcessTable::new(100);
        table.apply_exec(&ev);
        let key = table.key(4_000_001, 10 * SEC);
        assert_eq!(table.get(&key).and_then(|p| p.cgroup.clone()), Some(path));

        let deep = with_cgroup(ev, &["d", "c", "b", "a"], true);
        assert_eq!(kernel_cgroup_path(&deep).as_deref(), Some(".../a/b/c/d"));
        let root = with_cgroup(deep, &[], false);
        assert_eq!(kernel_cgroup_path(&root), None);
    }

    fn exit(task: TaskRef, at_s: u64, status: u32) -> ExitEvent {
        ExitEvent {
            header: EventHeader {
                kind: tracer_common::kind::EXIT,
                cpu: 0,
                time_ns: at_s * SEC,
            },
            task,
            exit_code: status,
            _pad: 0,
        }
    }

    #[test]
    fn short_lived_sender_keeps_its_argv_and_parent_after_exit() {
        let mut table = ProcessTable::new(TPS);
        let shell = task(9_000_001, 10, 1, "bash");
        table.observe(&shell);
        let kill = task(9_000_002, 20, shell.pid, "bash");
        table.apply_fork(&fork(kill, shell));
        let mut killed = kill;
        killed.comm = comm("kill");
        table.apply_exec(&exec(killed, 20, "/bin/kill", &["kill", "-TERM", "-4242"]));
        table.apply_exit(&exit(killed, 21, 0));

        let key = table.key(kill.pid, kill.start_ns);
        let view = table.view(&key).unwrap();
        assert_eq!(view.comm, "kill");
        assert_eq!(view.argv, ["kill", "-TERM", "-4242"]);
        assert_eq!(view.exe.as_deref(), Some("/bin/kill"));
        let ancestry = table.ancestry(&key);
        assert_eq!(ancestry[0].key.pid, shell.pid);
        assert_eq!(table.get(&key).unwrap().exit_status, Some(0));
    }

    #[test]
    fn pid_reuse_keeps_incarnations_apart() {
        let mut table = ProcessTable::new(TPS);
        let parent = task(9_000_010, 1, 1, "init");
        table.observe(&parent);
        let first = task(9_000_011, 5, parent.pid, "first");
        table.apply_fork(&fork(first, parent));
        table.apply_exec(&exec(first, 5, "/bin/first", &["first"]));
        table.apply_exit(&exit(first, 6, 0));
        let second = task(9_000_011, 7, parent.pid, "second");
        table.apply_fork(&fork(second, parent));
        table.apply_exec(&exec(second, 7, "/bin/second", &["second", "x"]));

        let first_key = table.key(first.pid, first.start_ns);
        let second_key = table.key(second.pid, second.start_ns);
        assert_ne!(first_key, second_key);
        assert_eq!(table.view(&first_key).unwrap().argv, ["first"]);
        assert_eq!(table.view(&second_key).unwrap().argv, ["second", "x"]);
        assert_eq!(table.latest(first.pid).unwrap().key, second_key);
    }

    #[test]
    fn forked_child_runs_parents_program_until_exec() {
        let mut table = ProcessTable::new(TPS);
        let parent = task(9_000_020, 1, 1, "node");
        table.observe(&parent);
        table.apply_exec(&exec(parent, 2, "/usr/bin/node", &["node", "index.js"]));
        let child = task(9_000_021, 3, parent.pid, "node");
        table.apply_fork(&fork(child, parent));
        let key = table.key(child.pid, child.start_ns);
        assert_eq!(table.view(&key).unwrap().argv, ["node", "index.js"]);
        table.apply_exec(&exec(child, 4, "/bin/sh", &["/bin/sh", "-c", "server"]));
        let process = table.get(&key).unwrap();
        assert_eq!(process.execs.len(), 1, "inherited record replaced");
        assert_eq!(table.view(&key).unwrap().argv, ["/bin/sh", "-c", "server"]);
    }

    #[test]
    fn kernel_chain_wins_over_reparenting() {
        let mut table = ProcessTable::new(TPS);
        let grand = task(9_000_030, 1, 1, "supervisor");
        let parent = task(9_000_031, 2, grand.pid, "index.js");
        let child = task(9_000_032, 3, parent.pid, "cli");
        table.observe(&grand);
        table.apply_fork(&fork(parent, grand));
        table.apply_fork(&fork(child, parent));
        let key = table.key(child.pid, child.start_ns);
        let chain = [
            Ancestor {
                pid: parent.pid,
                _pad: 0,
                start_ns: parent.start_ns,
                comm: comm("index.js"),
            },
            Ancestor {
                pid: grand.pid,
                _pad: 0,
                start_ns: grand.start_ns,
                comm: comm("supervisor"),
            },
        ];
        table.set_kernel_ancestry(key, &chain);
        let pids: Vec<u32> = table.ancestry(&key).iter().map(|v| v.key.pid).collect();
        assert_eq!(pids[..2], [parent.pid, grand.pid]);
    }

    #[test]
    fn exited_processes_are_pruned_after_the_window() {
        let mut table = ProcessTable::new(TPS);
        let parent = task(9_000_040, 1, 1, "p");
        table.observe(&parent);
        let child = task(9_000_041, 2, parent.pid, "c");
        table.apply_fork(&fork(child, parent));
        table.apply_exit(&exit(child, 3, 0));
        let key = table.key(child.pid, child.start_ns);
        assert!(table.get(&key).is_some());
        table.apply_exit(&exit(parent, 3 + KEEP_EXITED_NS / SEC + 1, 0));
        assert!(table.get(&key).is_none());
    }

    /// A /proc that shows fixed command lines, by pid.
    struct Titles(std::sync::Arc<std::sync::Mutex<HashMap<u32, Vec<String>>>>);

    impl ProcInfo for Titles {
        fn pids(&self) -> Vec<u32> {
            Vec::new()
        }
        fn process(&self, _: u32) -> Option<procfs::ProcSnapshot> {
            None
        }
        fn stat(&self, _: u32) -> Option<procfs::Stat> {
            None
        }
        fn exe(&self, _: u32) -> Option<String> {
            None
        }
        fn cgroup(&self, _: u32) -> Option<String> {
            None
        }
        fn pod(&self, _: &str) -> Option<crate::model::kubelet::PodName> {
            None
        }
        fn tids(&self, _: u32) -> Vec<u32> {
            Vec::new()
        }
        fn cmdline_if(&self, pid: u32, _: u64) -> Option<Vec<String>> {
            self.0.lock().unwrap().get(&pid).cloned()
        }
    }

    #[test]
    fn trailing_empty_arguments_of_a_rewritten_title_are_dropped() {
        let padded: Vec<String> = ["npm start", "", "", ""].map(String::from).to_vec();
        assert_eq!(tidy_argv(&padded), ["npm start"]);
        let inner: Vec<String> = ["printf", "", "x"].map(String::from).to_vec();
        assert_eq!(tidy_argv(&inner), inner);
        assert!(tidy_argv(&[String::new()]).is_empty());
    }

    #[test]
    fn a_forked_worker_gets_its_own_title_once_it_differs_from_its_parents() {
        let shown = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
        let mut table = ProcessTable::with_info(Box::new(Titles(shown.clone())), TPS);
        let master = task(9_000_050, 1, 1, "nginx");
        table.observe(&master);
        table.apply_exec(&exec(
            master,
            1,
            "/usr/sbin/nginx",
            &["/usr/sbin/nginx", "-c", "x"],
        ));
        let title = |s: &str| vec![s.to_owned(), String::new(), String::new()];
        shown
            .lock()
            .unwrap()
            .insert(master.pid, title("nginx: master process /usr/sbin/nginx"));
        table.settle_recent();
        // An exec's command line is the kernel's record; /proc is not asked.
        let master_key = table.key(master.pid, master.start_ns);
        assert_eq!(
            table.view(&master_key).unwrap().argv,
            ["/usr/sbin/nginx", "-c", "x"]
        );
        let worker = task(9_000_051, 2, master.pid, "nginx");
        table.apply_fork(&fork(worker, master));
        let key = table.key(worker.pid, worker.start_ns);
        // Right after fork the worker still shows its parent's title: not taken.
        shown
            .lock()
            .unwrap()
            .insert(worker.pid, title("nginx: master process /usr/sbin/nginx"));
        table.settle_recent();
        assert_eq!(
            table.view(&key).unwrap().argv,
            ["/usr/sbin/nginx", "-c", "x"]
        );
        shown
            .lock()
            .unwrap()
            .insert(worker.pid, title("nginx: worker process"));
        table.settle(&key);
        assert_eq!(table.view(&key).unwrap().argv, ["nginx: worker process"]);
        // Gone before anyone looked: what it had stays.
        let late = task(9_000_052, 3, master.pid, "nginx");
        table.apply_fork(&fork(late, master));
        table.apply_exit(&exit(late, 4, 0));
        let late_key = table.key(late.pid, late.start_ns);
        table.settle(&late_key);
        assert_eq!(
            table.view(&late_key).unwrap().argv,
            ["/usr/sbin/nginx", "-c", "x"]
        );
    }
}
