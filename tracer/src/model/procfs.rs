//! Reads what /proc says about a process, through the procfs crate. Every reader here is
//! best-effort: a process can exit (and its pid be reused) between two reads, so callers
//! compare the start time before trusting anything (see [`read_process`]).
//!
//! One [`procfs::process::Process`] holds a descriptor of its /proc/PID directory, and
//! every file of one snapshot is read through it: a process that exits and whose pid is
//! reused meanwhile makes the reads fail (ESRCH) rather than describe the newcomer. The
//! start time is still compared before and after, as with plain paths.

use std::io::{self, Read as _};

use procfs::{
    FromRead as _,
    process::{Process, Stat as ProcStat},
};
use serde::{Deserialize, Serialize};

/// The fields of /proc/PID/stat that sigwho uses (see `proc_pid_stat(5)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub pid: u32,
    pub comm: String,
    pub ppid: u32,
    pub pgrp: i32,
    pub session: i32,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
    /// Field 48: where the current program's argv starts (`mm->arg_start`), which moves
    /// with every exec; shown to root (else 0). `None` in captures made before it was
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg_start: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed /proc stat line: {0}")]
pub struct StatError(String);

impl TryFrom<&ProcStat> for Stat {
    type Error = ();

    fn try_from(stat: &ProcStat) -> Result<Stat, ()> {
        Ok(Stat {
            pid: u32::try_from(stat.pid).map_err(|_| ())?,
            comm: stat.comm.clone(),
            ppid: u32::try_from(stat.ppid).map_err(|_| ())?,
            pgrp: stat.pgrp,
            session: stat.session,
            start_ticks: stat.starttime,
            arg_start: stat.arg_start,
        })
    }
}

/// Parses a stat line (procfs's parser). comm sits in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last ')'.
///
/// # Errors
///
/// When the line is malformed.
pub fn parse_stat(line: &str) -> Result<Stat, StatError> {
    let bad = || StatError(line.chars().take(80).collect());
    // procfs slices around the parentheses without checking them (the kernel writes
    // this line); a recording or a fuzzer may not.
    let line = line.trim();
    let open = line.find('(').ok_or_else(bad)?;
    let close = line.rfind(')').ok_or_else(bad)?;
    if open < 2
        || close < open
        || close + 2 > line.len()
        || !line.is_char_boundary(open - 1)
        || !line.is_char_boundary(close + 2)
    {
        return Err(bad());
    }
    let stat = ProcStat::from_read(line.as_bytes()).map_err(|_| bad())?;
    Stat::try_from(&stat).map_err(|()| bad())
}

fn process(pid: u32) -> io::Result<Process> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
    Process::new(pid).map_err(into_io)
}

fn into_io(error: procfs::ProcError) -> io::Error {
    match error {
        procfs::ProcError::NotFound(_) => io::ErrorKind::NotFound.into(),
        procfs::ProcError::PermissionDenied(_) => io::ErrorKind::PermissionDenied.into(),
        procfs::ProcError::Io(e, _) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

fn stat_of(process: &Process) -> io::Result<Stat> {
    let stat = process.stat().map_err(into_io)?;
    Stat::try_from(&stat).map_err(|()| io::Error::from(io::ErrorKind::InvalidData))
}

/// /proc/PID/stat.
///
/// # Errors
///
/// When the process is gone or its stat line is malformed.
pub fn read_stat(pid: u32) -> io::Result<Stat> {
    stat_of(&process(pid)?)
}

/// The raw NUL-separated command line, split as the kernel's records are
/// ([`crate::kernel::decode::split_args`]): procfs's own `cmdline()` drops empty
/// arguments and refuses bytes that are not UTF-8.
fn cmdline_of(process: &Process) -> io::Result<Vec<String>> {
    let mut bytes = Vec::new();
    process
        .open_relative("cmdline")
        .map_err(into_io)?
        .read_to_end(&mut bytes)?;
    Ok(crate::kernel::decode::split_args(&bytes))
}

/// /proc/PID/cmdline, split into arguments.
///
/// # Errors
///
/// When the process is gone.
pub fn read_cmdline(pid: u32) -> io::Result<Vec<String>> {
    cmdline_of(&process(pid)?)
}

fn exe_of(process: &Process) -> Option<String> {
    process
        .exe()
        .ok()
        .map(|path| path.to_string_lossy().into_owned())
}

#[must_use]
pub fn read_exe(pid: u32) -> Option<String> {
    exe_of(&process(pid).ok()?)
}

/// The real uid from the `Uid:` line of /proc/PID/status. procfs's `status()` parses
/// all of its fifty-odd lines into a map first, which made start-up with 1,000
/// processes measurably slower; only this line is read here.
fn ruid_of(process: &Process) -> Option<u32> {
    text_of(process, "status")?
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Real uid.
#[must_use]
pub fn read_uid(pid: u32) -> Option<u32> {
    ruid_of(&process(pid).ok()?)
}

/// The process a thread id belongs to (/proc/TID works for any thread, listed or not).
#[must_use]
pub fn read_tgid(tid: u32) -> Option<u32> {
    u32::try_from(process(tid).ok()?.status().ok()?.tgid).ok()
}

/// Thread ids of a process.
#[must_use]
pub fn read_tids(pid: u32) -> Vec<u32> {
    let Some(tasks) = process(pid).ok().and_then(|p| p.tasks().ok()) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = tasks
        .filter_map(|task| u32::try_from(task.ok()?.tid).ok())
        .collect();
    tids.sort_unstable();
    tids
}

#[must_use]
pub fn list_pids() -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| u32::try_from(p.ok()?.pid()).ok())
        .collect()
}

/// Everything sigwho wants about a live process, read consistently: the start time is
/// read before and after the other files, and a mismatch (the pid was reused meanwhile)
/// or a vanished process gives `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcSnapshot {
    pub stat: Stat,
    pub argv: Vec<String>,
    pub exe: Option<String>,
    pub uid: Option<u32>,
    /// The most telling cgroup path ([`crate::model::cgroup::pick_path`]).
    pub cgroup: Option<String>,
}

/// /proc/PID/cgroup as text for [`crate::model::cgroup::pick_path`], which also reads
/// recorded snapshots.
fn cgroup_of(process: &Process) -> Option<String> {
    crate::model::cgroup::pick_path(&text_of(process, "cgroup")?)
}

/// A file of the process's /proc directory as text, through its directory handle.
fn text_of(process: &Process, file: &str) -> Option<String> {
    let mut text = String::new();
    process
        .open_relative(file)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[must_use]
pub fn read_cgroup(pid: u32) -> Option<String> {
    cgroup_of(&process(pid).ok()?)
}

#[must_use]
pub fn read_process(pid: u32) -> Option<ProcSnapshot> {
    let process = process(pid).ok()?;
    let stat = stat_of(&process).ok()?;
    let argv = cmdline_of(&process).unwrap_or_default();
    let exe = exe_of(&process);
    let uid = ruid_of(&process);
    let cgroup = cgroup_of(&process);
    let again = stat_of(&process).ok()?;
    (again.start_ticks == stat.start_ticks).then_some(ProcSnapshot {
        stat,
        argv,
        exe,
        uid,
        cgroup,
    })
}

/// [`read_process`], only if the process at `pid` is the one that started at
/// `start_ticks`.
#[must_use]
pub fn read_process_if(pid: u32, start_ticks: u64) -> Option<ProcSnapshot> {
    read_process(pid).filter(|snap| snap.stat.start_ticks == start_ticks)
}

/// What the process table and the failed-attempt attribution ask about processes the
/// kernel did not describe: /proc on a live system ([`SystemProc`]); a recording of
/// what /proc said, for a replay (`crate::analysis::replay`).
pub trait ProcInfo: Send {
    /// Every pid /proc lists now.
    fn pids(&self) -> Vec<u32>;
    /// [`read_process`].
    fn process(&self, pid: u32) -> Option<ProcSnapshot>;
    /// [`read_stat`].
    fn stat(&self, pid: u32) -> Option<Stat>;
    /// [`read_exe`].
    fn exe(&self, pid: u32) -> Option<String>;
    /// [`read_cgroup`].
    fn cgroup(&self, pid: u32) -> Option<String>;
    /// The pod of a pod uid, from the kubelet's directories (`crate::model::kubelet::lookup`).
    fn pod(&self, uid: &str) -> Option<crate::model::kubelet::PodName>;
    /// [`read_tids`].
    fn tids(&self, pid: u32) -> Vec<u32>;

    /// [`read_process_if`].
    fn process_if(&self, pid: u32, start_ticks: u64) -> Option<ProcSnapshot> {
        self.process(pid)
            .filter(|snap| snap.stat.start_ticks == start_ticks)
    }

    /// The command line of the process at `pid` if it is the one that started at
    /// `start_ticks` (what a process that rewrote its title shows now). A live system
    /// reads only cmdline and stat; the default asks [`ProcInfo::process_if`].
    fn cmdline_if(&self, pid: u32, start_ticks: u64) -> Option<Vec<String>> {
        self.process_if(pid, start_ticks).map(|snap| snap.argv)
    }

    /// The command line of the process at `pid` if it is the one that started at
    /// `start_ticks` and still runs the program whose exec put argv at an address whose
    /// low 32 bits are `arg_start_low` (see tracer-common's `ExecEvent::arg_start_low`):
    /// what it shows now, a title it set after exec included. The default asks
    /// [`ProcInfo::process_if`].
    fn cmdline_of_exec(
        &self,
        pid: u32,
        start_ticks: u64,
        arg_start_low: u32,
    ) -> Option<Vec<String>> {
        self.process_if(pid, start_ticks)
            .filter(|snap| same_exec(&snap.stat, arg_start_low))
            .map(|snap| snap.argv)
    }
}

/// Whether `stat` shows the exec whose `mm->arg_start` had `arg_start_low` as its low
/// bits (0: unknown, never the same).
#[must_use]
pub fn same_exec(stat: &Stat, arg_start_low: u32) -> bool {
    arg_start_low != 0
        && stat
            .arg_start
            .is_some_and(|a| a & u64::from(u32::MAX) == u64::from(arg_start_low))
}

/// /proc/PID/cmdline, if /proc/PID/stat read after it passes `check`: neither the pid
/// nor what `check` compares changed before the command line was read.
fn cmdline_then_check(pid: u32, check: impl Fn(&Stat) -> bool) -> Option<Vec<String>> {
    let argv = read_cmdline(pid).ok()?;
    check(&read_stat(pid).ok()?).then_some(argv)
}

/// The live system's /proc (and kubelet directories).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProc;

impl ProcInfo for SystemProc {
    fn cmdline_if(&self, pid: u32, start_ticks: u64) -> Option<Vec<String>> {
        cmdline_then_check(pid, |stat| stat.start_ticks == start_ticks)
    }

    fn cmdline_of_exec(
        &self,
        pid: u32,
        start_ticks: u64,
        arg_start_low: u32,
    ) -> Option<Vec<String>> {
        cmdline_then_check(pid, |stat| {
            stat.start_ticks == start_ticks && same_exec(stat, arg_start_low)
        })
    }

    fn pids(&self) -> Vec<u32> {
        list_pids()
    }

    fn process(&self, pid: u32) -> Option<ProcSnapshot> {
        read_process(pid)
    }

    fn stat(&self, pid: u32) -> Option<Stat> {
        read_stat(pid).ok()
    }

    fn exe(&self, pid: u32) -> Option<String> {
        read_exe(pid)
    }

    fn cgroup(&self, pid: u32) -> Option<String> {
        read_cgroup(pid)
    }

    fn pod(&self, uid: &str) -> Option<crate::model::kubelet::PodName> {
        crate::model::kubelet::lookup(uid)
    }

    fn tids(&self, pid: u32) -> Vec<u32> {
        read_tids(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 \
                    123456 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.pid, 4242);
        assert_eq!(stat.comm, "a) b (c)");
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.pgrp, 4242);
        assert_eq!(stat.start_ticks, 123_456);
    }

    #[test]
    fn rejects_truncated_stat() {
        assert!(parse_stat("12 (x) S 1 2").is_err());
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("12 )x( S").is_err());
    }

    #[test]
    fn reads_own_process_consistently() {
        let me = std::process::id();
        let snap = read_process(me).expect("own process is readable");
        assert_eq!(snap.stat.pid, me);
        assert!(!snap.argv.is_empty());
        assert!(read_tids(me).contains(&me));
        assert_eq!(read_tgid(me), Some(me));
        assert!(read_process_if(me, snap.stat.start_ticks + 1).is_none());
    }
}
