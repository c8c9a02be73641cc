//! The comparison tools (perf, bpftrace, sigsnoop from libbpf-tools, auditd): found, or
//! installed with apt, or skipped with the reason.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use super::auditd;
use super::configs::{Config, Count, Program, Ready, Sink, Tracer};
use super::sys::{SIGINT, SIGTERM};
use crate::cargo::run_step;
use crate::setup;

const BPFTRACE_PROGRAM: &str =
    r#"tracepoint:signal:signal_generate { printf("%d %d %d\n", pid, args->pid, args->sig); }"#;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Tool {
    Perf,
    Bpftrace,
    Sigsnoop,
    Auditd,
}

impl Tool {
    pub(super) const ALL: [Tool; 4] = [Tool::Perf, Tool::Bpftrace, Tool::Sigsnoop, Tool::Auditd];

    pub(super) fn program(self) -> &'static str {
        match self {
            Tool::Perf => "perf",
            Tool::Bpftrace => "bpftrace",
            Tool::Sigsnoop => "sigsnoop",
            Tool::Auditd => "auditd",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Perf => "linux-perf",
            Tool::Bpftrace => "bpftrace",
            Tool::Sigsnoop => "libbpf-tools",
            Tool::Auditd => "auditd",
        }
    }

    /// The signal that stops it cleanly (auditd ignores SIGINT).
    pub(super) fn stop_signal(self) -> i32 {
        match self {
            Tool::Auditd => SIGTERM,
            _ => SIGINT,
        }
    }
}

/// The tool's row in the storm table: the tool as its users run it to see signals.
pub(super) fn config(tool: Tool) -> Config {
    match tool {
        Tool::Perf => Config {
            name: "perf record -a signal:signal_generate",
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Perf),
                args: |n| {
                    ["record", "-e", "signal:signal_generate", "-a", "-o", &n.out]
                        .into_iter()
                        .chain(["-D", "-1", "--control", &format!("fifo:{}", n.control)])
                        .map(String::from)
                        .collect()
                },
                env: &[],
                stdout: Sink::Null,
                ready: Ready::PerfControl,
                count: Count::PerfStats,
            }),
            target: None,
        },
        Tool::Bpftrace => Config {
            name: "bpftrace, one line per signal",
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Bpftrace),
                args: |_| vec!["-e".into(), BPFTRACE_PROGRAM.into()],
                env: &[],
                stdout: Sink::File,
                ready: Ready::ProbeSignal,
                count: Count::Lines,
            }),
            target: None,
        },
        Tool::Auditd => Config {
            name: "auditd, a kill/tkill/tgkill rule",
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Auditd),
                args: |n| vec!["-n".into(), "-c".into(), n.audit_dir.clone()],
                env: &[],
                stdout: Sink::Null,
                ready: Ready::AuditRule,
                count: Count::AuditLog,
            }),
            target: None,
        },
        Tool::Sigsnoop => Config {
            name: "sigsnoop (libbpf-tools)",
            tracer: Some(Tracer {
                program: Program::Tool(Tool::Sigsnoop),
                args: |_| Vec::new(),
                env: &[],
                stdout: Sink::File,
                ready: Ready::ProbeSignal,
                count: Count::Lines,
            }),
            target: None,
        },
    }
}

/// Each tool's path and version, or why it is skipped.
pub(super) struct Tools {
    pub(super) found: HashMap<Tool, Result<(PathBuf, String), String>>,
}

impl Tools {
    /// Installs what is missing with apt. A tool that cannot be had is skipped with the
    /// reason, not fatal: the sigwho rows are the point of the bench.
    pub(super) fn prepare() -> Self {
        let mut updated = false;
        let found = Tool::ALL
            .into_iter()
            .map(|tool| (tool, prepare_tool(tool, &mut updated)))
            .collect();
        Self { found }
    }

    pub(super) fn get(&self, tool: Tool) -> Result<&(PathBuf, String), &str> {
        match self.found.get(&tool) {
            Some(Ok(found)) => Ok(found),
            Some(Err(reason)) => Err(reason),
            None => Err("not looked for"),
        }
    }
}

pub(super) fn prepare_tool(
    tool: Tool,
    apt_updated: &mut bool,
) -> Result<(PathBuf, String), String> {
    let name = tool.program();
    if let Some(found) = working_tool(tool) {
        eprintln!("bench: {name}: present ({})", found.1);
        return Ok(found);
    }
    let package = tool.package();
    let candidate = setup::apt_candidate(package)?;
    eprintln!("bench: {name}: installing Debian package {package} {candidate}");
    let install = || {
        run_step(apt_get().args(["install", "-y", "--no-install-recommends", package]))
            .map_err(|e| format!("could not install {package}: {e:#}"))
    };
    if let Err(err) = install() {
        // Stale package lists make installs fail on mirrors that dropped old versions:
        // update once (for all tools) and try again.
        if *apt_updated {
            return Err(err);
        }
        *apt_updated = true;
        run_step(apt_get().arg("update")).map_err(|e| format!("apt-get update failed: {e:#}"))?;
        install()?;
    }
    let found = working_tool(tool).ok_or_else(|| {
        format!("{package} is installed but `{name} --version` does not work here")
    })?;
    eprintln!("bench: {name}: installed ({})", found.1);
    Ok(found)
}

/// apt-get with its chatter on stderr: stdout carries the report.
pub(super) fn apt_get() -> Command {
    let mut cmd = setup::apt_get();
    cmd.stdout(std::io::stderr());
    cmd
}

/// The tool's path and its `--version` line, if it runs.
pub(super) fn working_tool(tool: Tool) -> Option<(PathBuf, String)> {
    let path = find_program(tool.program())?;
    if tool == Tool::Auditd {
        return Some((path, auditd::version()?));
    }
    let out = Command::new(&path).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().next().unwrap_or_default().trim().to_owned();
    Some((path, version))
}

/// Searches PATH, and the sbin directories that a non-login root shell may lack
/// (libbpf-tools installs sigsnoop in /usr/sbin).
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
