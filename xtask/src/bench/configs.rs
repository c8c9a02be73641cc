//! The storm table's configurations: what runs beside a storm (a tracer, or nothing), how
//! the bench starts it, knows it is attached and counts what it saw.

use super::recorder;
use super::references::{Floor, floor_config, floor_program};
use super::sigwho::{DISABLE_SYSCALL_HOOKS, FILTER_TARGET, RECORDER_TARGET};
use super::tools::{BPFTRACE_PROGRAM, Tool};

/// One row of the table: a tracer running during the storm, or none.
pub(super) struct Config {
    pub(super) name: &'static str,
    pub(super) role: Role,
    pub(super) tracer: Option<Tracer>,
    /// The target as a share of the untraced rate, reported (not asserted).
    pub(super) target: Option<f64>,
}

/// What a row is for in the summary.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Role {
    /// The baseline every ratio is taken against (the first row).
    Untraced,
    /// sigwho's live view filtered on an unrelated process: the row compared with the
    /// hook floor.
    FilteredView,
    /// Any other tracer, sigwho or not.
    Tracer,
    /// A reference, not a tracer: programs that return at once on sigwho's hooks.
    Floor(Floor),
}

pub(super) struct Tracer {
    pub(super) program: Program,
    pub(super) args: fn(&Names) -> Vec<String>,
    /// Environment variables set for it.
    pub(super) env: &'static [(&'static str, &'static str)],
    pub(super) stdout: Sink,
    pub(super) ready: Ready,
    pub(super) count: Count,
}

#[derive(Clone, Copy)]
pub(super) enum Program {
    Sigwho,
    Tool(Tool),
}

/// Where a tracer's stdout goes.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Sink {
    Null,
    /// `$OUT`, a scratch file deleted once counted.
    File,
}

/// How the bench knows a tracer is attached, so that the storm starts only then.
#[derive(Clone, Copy)]
pub(super) enum Ready {
    /// A line on stderr starting with this, printed once attached.
    Stderr(&'static str),
    /// `perf record -D -1 --control fifo:$CONTROL` opens its events disabled and prints
    /// "Events disabled"; the bench then writes `enable` to the fifo, and perf prints
    /// "Events enabled" once the enabling ioctls are done.
    PerfControl,
    /// The tool prints one line per signal but nothing once attached (bpftrace's
    /// "Attaching 1 probe..." comes before it attaches; sigsnoop's header after, but in
    /// the same stream as the events). The bench sends the idle process SIGWINCH
    /// (harmless: ignored by default) until a line for it shows up in `$OUT`.
    ProbeSignal,
    /// auditd: once it has registered with the kernel the bench adds the rule, then
    /// probes as for [`Ready::ProbeSignal`] until the rule's record of the probe is in
    /// its log (`$OUT`). See bench/auditd.rs.
    AuditRule,
}

/// How the events a tracer saw are counted afterwards.
#[derive(Clone, Copy)]
pub(super) enum Count {
    None,
    /// sigwho --json in `$OUT`: `signal` objects, plus the counts of `lost` objects.
    SigwhoJson,
    /// One line per signal in `$OUT`: lines naming both the victim and the storm's signal;
    /// `Lost N ...` lines (bpftrace, libbpf-tools) on stdout or stderr are losses.
    Lines,
    /// `perf report --stats -i $OUT`: the signal_generate samples and lost samples.
    PerfStats,
    /// `sigwho record --journal $OUT`: signal rows to the victim in the journal, and the
    /// events its gaps say were dropped.
    Journal,
    /// auditd's log in `$OUT`: the rule's SYSCALL records of calls aimed at the victim;
    /// losses from the kernel's `lost` counter (`auditctl -s`).
    AuditLog,
}

/// The words command lines are built from: real values when run, placeholders when shown.
pub(super) struct Names {
    pub(super) victim: String,
    pub(super) idle: String,
    pub(super) out: String,
    pub(super) control: String,
    /// auditd's configuration directory.
    pub(super) audit_dir: String,
}

/// The table of configurations, in the order they run within a round.
pub(super) fn configs() -> Vec<Config> {
    vec![
        Config {
            name: "untraced",
            role: Role::Untraced,
            tracer: None,
            target: None,
        },
        Config {
            name: "sigwho watching an idle process (in-kernel filter)",
            role: Role::FilteredView,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.idle.clone()],
                env: &[],
                stdout: Sink::Null,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::None,
            }),
            target: Some(FILTER_TARGET),
        },
        Config {
            name: "sigwho watching an idle process, failed-attempt hooks off (SIGWHO_DISABLE_HOOKS=<the 6 syscalls>; not for use: splits the cost)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.idle.clone()],
                env: &[("SIGWHO_DISABLE_HOOKS", DISABLE_SYSCALL_HOOKS)],
                stdout: Sink::Null,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::None,
            }),
            target: None,
        },
        // Right after the filtered view, so that the rows compared run close together.
        floor_config(
            "reference, not sigwho: (a) bpftrace, empty probe on signal_generate (classic tracepoint, `return 1`; sigwho's is tp_btf, `return 0`)",
            Floor::SignalGenerate,
            |_| vec!["-e".into(), floor_program(Floor::SignalGenerate)],
        ),
        floor_config(
            "reference, not sigwho: (b) bpftrace, (a) + empty probes on the 6 kill-family syscalls:sys_exit_* (sigwho's hooks, but `return 1`)",
            Floor::WithSyscallExits,
            |_| vec!["-e".into(), floor_program(Floor::WithSyscallExits)],
        ),
        floor_config(
            "reference, not sigwho: (c) bpftrace, empty probes on the 6 kill-family syscalls:sys_exit_* only (`return 1`)",
            Floor::SyscallExits,
            |_| vec!["-e".into(), floor_program(Floor::SyscallExits)],
        ),
        Config {
            name: "sigwho --json watching the victim (every signal reported)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| vec!["--target-pid".into(), n.victim.clone(), "--json".into()],
                env: &[],
                stdout: Sink::File,
                ready: Ready::Stderr("sigwho: tracing"),
                count: Count::SigwhoJson,
            }),
            target: None,
        },
        Config {
            name: "sigwho record (every signal on the machine, into the journal)",
            role: Role::Tracer,
            tracer: Some(Tracer {
                program: Program::Sigwho,
                args: |n| recorder::record_args(&n.out),
                env: &[],
                stdout: Sink::Null,
                ready: Ready::Stderr(recorder::READY),
                count: Count::Journal,
            }),
            target: Some(RECORDER_TARGET),
        },
        Config {
            name: "perf record -a signal:signal_generate",
            role: Role::Tracer,
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
        Config {
            name: "bpftrace, one line per signal",
            role: Role::Tracer,
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
        Config {
            name: "auditd, a kill/tkill/tgkill rule",
            role: Role::Tracer,
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
        Config {
            name: "sigsnoop (libbpf-tools)",
            role: Role::Tracer,
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
    ]
}
