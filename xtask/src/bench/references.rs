//! The reference rows, not sigwho: bpftrace probes with empty bodies on sigwho's hooks,
//! beside sigwho's own floor (its hooks with every program returning at once, sigwho.rs):
//! what a common tool pays for the same attach points.

use super::configs::{Config, Count, Names, Program, Ready, Sink, Tracer};
use super::tools::Tool;

/// The hook-floor references: what the hooks sigwho's filtered live view needs cost on
/// this kernel before any program does anything.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Floor {
    /// `signal_generate` alone: every generated signal.
    SignalGenerate,
    /// `signal_generate` plus the kill-family syscalls' exits (failed attempts): what the
    /// filtered view attaches on a kernel that refuses fexit.
    WithSyscallExits,
}

impl Floor {
    pub(super) fn label(self) -> &'static str {
        match self {
            Floor::SignalGenerate => "(a)",
            Floor::WithSyscallExits => "(b)",
        }
    }
}

/// The kill-family syscalls whose `syscalls:sys_exit_*` tracepoints sigwho attaches when
/// the kernel refuses fexit (tracer/src/load.rs, `attach_syscalls`).
pub(super) const KILL_FAMILY: [&str; 6] = [
    "kill",
    "tkill",
    "tgkill",
    "pidfd_send_signal",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
];

/// bpftrace prints this on stderr once every probe is attached (its runtime tests wait
/// for it) when the variable is set; "Attaching N probes..." comes before attaching.
pub(super) const BPFTRACE_ATTACHED: &str = "__BPFTRACE_NOTIFY_PROBES_ATTACHED";

/// A bpftrace program whose probes have empty action blocks, one program per attach
/// point. Not quite "nothing": bpftrace 0.17 (Debian 12) compiles every tracepoint probe,
/// empty or filtered out, to `return 1`, which tells the kernel to go on and emit the
/// perf sample of the event bpftrace opened - work that a
/// program returning 0, as sigwho's do, spares. And it can hook `signal_generate` only as
/// a classic (perf) tracepoint, which fills a trace record first: it has no
/// `rawtracepoint` probes, and its `kfunc` probes are fentry, which this kernel refuses.
pub(super) fn floor_program(floor: Floor) -> String {
    let signal = ["tracepoint:signal:signal_generate".to_owned()];
    let exits = KILL_FAMILY.map(|name| format!("tracepoint:syscalls:sys_exit_{name}"));
    let points: Vec<String> = match floor {
        Floor::SignalGenerate => signal.to_vec(),
        Floor::WithSyscallExits => signal.into_iter().chain(exits).collect(),
    };
    format!("{} {{ }}", points.join(","))
}

pub(super) fn config(floor: Floor) -> Config {
    match floor {
        Floor::SignalGenerate => reference(
            "reference, not sigwho: (a) bpftrace, empty probe on signal_generate (classic tracepoint, `return 1`; sigwho's is tp_btf, `return 0`)",
            |_| vec!["-e".into(), floor_program(Floor::SignalGenerate)],
        ),
        Floor::WithSyscallExits => reference(
            "reference, not sigwho: (b) bpftrace, (a) + empty probes on the 6 kill-family syscalls:sys_exit_* (sigwho's hooks, but `return 1`)",
            |_| vec!["-e".into(), floor_program(Floor::WithSyscallExits)],
        ),
    }
}

fn reference(name: &'static str, args: fn(&Names) -> Vec<String>) -> Config {
    Config {
        name,
        tracer: Some(Tracer {
            program: Program::Tool(Tool::Bpftrace),
            args,
            env: &[(BPFTRACE_ATTACHED, "1")],
            stdout: Sink::Null,
            ready: Ready::Stderr(BPFTRACE_ATTACHED),
            count: Count::None,
        }),
        target: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_floor_programs_are_empty_and_hook_what_sigwho_hooks() {
        assert_eq!(
            floor_program(Floor::SignalGenerate),
            "tracepoint:signal:signal_generate { }"
        );
        let with_exits = floor_program(Floor::WithSyscallExits);
        let (points, body) = with_exits.split_once(' ').unwrap();
        assert_eq!(body, "{ }");
        let points: Vec<&str> = points.split(',').collect();
        assert_eq!(
            points,
            [
                "tracepoint:signal:signal_generate",
                "tracepoint:syscalls:sys_exit_kill",
                "tracepoint:syscalls:sys_exit_tkill",
                "tracepoint:syscalls:sys_exit_tgkill",
                "tracepoint:syscalls:sys_exit_pidfd_send_signal",
                "tracepoint:syscalls:sys_exit_rt_sigqueueinfo",
                "tracepoint:syscalls:sys_exit_rt_tgsigqueueinfo",
            ]
        );
    }
}
