//! What /proc says about the machine around a storm: CPU time used by a process and by
//! the whole machine, the processes running, and tracers the bench did not start.

use std::fs;

/// Programs that hook signals (or may), by the name the kernel shows for them.
pub(super) const TRACER_COMMS: &[&str] = &["sigwho", "bpftrace", "perf", "sigsnoop", "bpftool"];

/// Tracers running on the machine other than ours (`comm[pid]`), read from /proc; on a
/// shared machine someone's test run may load sigwho's programs during a storm.
pub(super) fn foreign_tracers(ours: Option<u32>) -> Vec<String> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| Some(pid) != ours)
        .filter_map(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let comm = comm.trim();
            TRACER_COMMS
                .contains(&comm)
                .then(|| format!("{comm}[{pid}]"))
        })
        .collect()
}

/// `sigwho[12] sigwho[13] perf[14]` -> `sigwho ×2, perf`.
pub(super) fn tally_comms(tracers: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for tracer in tracers {
        let comm = tracer.split('[').next().unwrap_or(tracer);
        match counts.iter_mut().find(|(c, _)| *c == comm) {
            Some((_, n)) => *n += 1,
            None => counts.push((comm, 1)),
        }
    }
    counts
        .iter()
        .map(|&(comm, n)| match n {
            1 => comm.to_owned(),
            n => format!("{comm} ×{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `USER_HZ`, the unit of /proc's CPU times: 100 on every architecture Linux builds for
/// with a stable ABI (`sysconf(_SC_CLK_TCK)` would say so, but xtask has no libc).
pub(super) const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// utime + stime + cutime + cstime of a process (itself and its reaped children).
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself contain spaces and parentheses:
    // state is field 3, utime 14 .. cstime 17.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum()
}

/// Ticks the machine's CPUs spent on anything but idle and I/O wait since boot.
pub(super) fn machine_busy_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // already in user, and steal is time the hypervisor gave to other machines.
    Some(ticks.iter().take(7).sum::<u64>() - ticks.get(3)? - ticks.get(4)?)
}

pub(super) fn count_processes() -> usize {
    fs::read_dir("/proc").map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_tracers_are_tallied() {
        let seen = ["sigwho[12]", "sigwho[13]", "perf[14]"].map(String::from);
        assert_eq!(tally_comms(&seen), "sigwho ×2, perf");
    }
}
