//! The storm table's configurations: what runs beside a storm (a tracer, or nothing), how
//! the bench starts it, knows it is attached and counts what it saw. sigwho's are in
//! sigwho.rs, the comparison tools' in tools.rs, the references in references.rs.

use super::references::{self, Floor};
use super::sigwho;
use super::tools::{self, Tool};

/// The configurations by name: a workload lists those it is measured beside.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    /// No tracer: the baseline every ratio of a workload is taken against.
    Untraced,
    /// sigwho's live view filtered on an unrelated process: the row compared with the
    /// hook references.
    Filtered,
    /// The same without its failed-attempt hooks, to split its cost.
    FilteredSignalGenerateOnly,
    /// sigwho's hooks, every one attached as the views attach them, each program
    /// returning at once: the floor under every sigwho row of the workload.
    HooksOnly,
    /// The recorder's hooks, each program returning at once but `signal_generate`, which
    /// counts each signal under the least key and does nothing else: the floor
    /// under the recorder.
    CountOnly,
    /// A reference, not a tracer: programs that return at once on sigwho's hooks.
    Reference(Floor),
    /// sigwho's live view reporting every signal.
    SigwhoJson,
    /// `sigwho record`.
    Recorder,
    /// A comparison tool doing its usual job.
    Tool(Tool),
}

impl Kind {
    /// Every configuration, in the order they run within a round. The floors and the
    /// references come right after the filtered view, so that the rows compared run
    /// close together.
    pub(super) const ALL: [Kind; 13] = [
        Kind::Untraced,
        Kind::Filtered,
        Kind::HooksOnly,
        Kind::CountOnly,
        Kind::FilteredSignalGenerateOnly,
        Kind::Reference(Floor::SignalGenerate),
        Kind::Reference(Floor::WithSyscallExits),
        Kind::SigwhoJson,
        Kind::Recorder,
        Kind::Tool(Tool::Perf),
        Kind::Tool(Tool::Bpftrace),
        Kind::Tool(Tool::Auditd),
        Kind::Tool(Tool::Sigsnoop),
    ];

    pub(super) fn config(self) -> Config {
        match self {
            Kind::Untraced => Config {
                name: "untraced",
                tracer: None,
                target: None,
            },
            Kind::Filtered => sigwho::filtered(),
            Kind::FilteredSignalGenerateOnly => sigwho::filtered_signal_generate_only(),
            Kind::HooksOnly => sigwho::hooks_only(),
            Kind::CountOnly => sigwho::count_only(),
            Kind::Reference(floor) => references::config(floor),
            Kind::SigwhoJson => sigwho::json(),
            Kind::Recorder => sigwho::recorder(),
            Kind::Tool(tool) => tools::config(tool),
        }
    }
}

/// A tracer running during the storm, or none.
pub(super) struct Config {
    pub(super) name: &'static str,
    pub(super) tracer: Option<Tracer>,
    /// The target as a share of the untraced rate, reported (not asserted).
    pub(super) target: Option<f64>,
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
    /// its log (`$OUT`). See auditd.rs.
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
    /// `perf report --stats -i $OUT`: the `signal_generate` samples and lost samples.
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
