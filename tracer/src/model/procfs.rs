//! Reads what /proc says about a process. Every reader here is best-effort: a process can
//! exit (and its pid be reused) between two reads, so callers compare the start time
//! before trusting anything (see [`read_process`]).

use std::{fs, io, path::PathBuf};

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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed /proc stat line: {0}")]
pub struct StatError(String);

/// Parses a stat line. comm sits in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the last ')'.
///
/// # Errors
///
/// When the line is malformed.
pub fn parse_stat(line: &str) -> Result<Stat, StatError> {
    let bad = || StatError(line.chars().take(80).collect());
    let open = line.find('(').ok_or_else(bad)?;
    let close = line.rfind(')').ok_or_else(bad)?;
    if close < open {
        return Err(bad());
    }
    let pid = line[..open].trim().parse().map_err(|_| bad())?;
    let comm = line[open + 1..close].to_owned();
    // After ')' come field 3 (state) onwards.
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied().ok_or_else(bad);
    Ok(Stat {
        pid,
        comm,
        ppid: field(4)?.parse().map_err(|_| bad())?,
        pgrp: field(5)?.parse().map_err(|_| bad())?,
        session: field(6)?.parse().map_err(|_| bad())?,
        start_ticks: field(22)?.parse().map_err(|_| bad())?,
    })
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{file}"))
}

/// /proc/PID/stat.
///
/// # Errors
///
/// When the process is gone or its stat line is malformed.
pub fn read_stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(proc_path(pid, "stat"))?;
    parse_stat(text.trim_end()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// /proc/PID/cmdline, split into arguments.
///
/// # Errors
///
/// When the process is gone.
pub fn read_cmdline(pid: u32) -> io::Result<Vec<String>> {
    let bytes = fs::read(proc_path(pid, "cmdline"))?;
    Ok(crate::kernel::decode::split_args(&bytes))
}

#[must_use]
pub fn read_exe(pid: u32) -> Option<String> {
    fs::read_link(proc_path(pid, "exe"))
        .ok()
        .map(|path| path.to_string_lossy().into_owned())
}

/// A `Name:\tvalue...` line of /proc/PID/status, first value only.
fn status_field(pid: u32, name: &str) -> Option<u32> {
    let text = fs::read_to_string(proc_path(pid, "status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// Real uid.
#[must_use]
pub fn read_uid(pid: u32) -> Option<u32> {
    status_field(pid, "Uid")
}

/// The process a thread id belongs to (/proc/TID works for any thread, listed or not).
#[must_use]
pub fn read_tgid(tid: u32) -> Option<u32> {
    status_field(tid, "Tgid")
}

/// Thread ids of a process.
#[must_use]
pub fn read_tids(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(proc_path(pid, "task")) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = dir
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    tids
}

#[must_use]
pub fn list_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
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

#[must_use]
pub fn read_cgroup(pid: u32) -> Option<String> {
    let text = fs::read_to_string(proc_path(pid, "cgroup")).ok()?;
    crate::model::cgroup::pick_path(&text)
}

#[must_use]
pub fn read_process(pid: u32) -> Option<ProcSnapshot> {
    let stat = read_stat(pid).ok()?;
    let argv = read_cmdline(pid).unwrap_or_default();
    let exe = read_exe(pid);
    let uid = read_uid(pid);
    let cgroup = read_cgroup(pid);
    let again = read_stat(pid).ok()?;
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
}

/// The live system's /proc (and kubelet directories).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProc;

impl ProcInfo for SystemProc {
    fn cmdline_if(&self, pid: u32, start_ticks: u64) -> Option<Vec<String>> {
        let argv = read_cmdline(pid).ok()?;
        // Checked after the read: the pid was not reused in between.
        (read_stat(pid).ok()?.start_ticks == start_ticks).then_some(argv)
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
                    123456 1000 10 18446744073709551615";
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
