//! The report's machine line: what was measured where, and what could skew it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;

use super::running::run_quiet;

/// Kernel, CPUs, and the commit measured.
pub(super) fn machine(processes: usize) -> String {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or_else(
            || "unknown CPU".into(),
            |(_, model)| model.trim().to_owned(),
        );
    let cpus = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        run_quiet(Command::new("git").arg("-C").arg(&root).args(args))
            .map(|out| out.trim().to_owned())
            .ok()
    };
    let commit = match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["status", "--porcelain"]),
    ) {
        (Some(head), Some(status)) if !status.is_empty() => format!("{head} + uncommitted changes"),
        (Some(head), _) => head,
        _ => "unknown".into(),
    };
    let date = run_quiet(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    // When on, every eBPF program run is also timed (two clock reads and a per-CPU
    // update), which makes every traced row slower than it would be otherwise.
    let stats = match fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|v| v.trim().to_owned())
        .as_deref()
    {
        Ok("0") => "off".to_owned(),
        Ok(value) => format!("ON ({value}): every eBPF program run is also timed"),
        Err(_) => "unknown".to_owned(),
    };
    format!(
        "Machine: Linux {}, {cpus} CPUs ({model}), {processes} processes; \
         kernel.bpf_stats_enabled {stats}; sigwho at {commit}; {date}.",
        kernel.trim()
    )
}
