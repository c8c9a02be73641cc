//! sigwho's own rows in the storm table: the filtered live view (with and without its
//! failed-attempt hooks), its hooks doing nothing (the floor), the recorder's hooks
//! doing nothing but a count (the recorder's floor), the live view reporting every
//! signal, and the recorder.

use super::configs::{Config, Count, Program, Ready, Sink, Tracer};
use super::recorder;

/// The target for the in-kernel filter case, as a share of the untraced rate.
pub(super) const FILTER_TARGET: f64 = 0.85;
/// The target for the recorder in every storm (issue 15: handled victims,
/// tgkill, process groups, exec churn included).
pub(super) const RECORDER_TARGET: f64 = 0.70;

/// sigwho's switch (tracer/src/load.rs, `DISABLE_HOOKS`) that leaves out the hooks of
/// these syscalls: the filtered view with `signal_generate` alone, to tell what its
/// syscall-exit hooks cost from what `signal_generate` costs.
pub(super) const DISABLE_SYSCALL_HOOKS: &str =
    "kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo,rt_tgsigqueueinfo";

/// The live view's line on stderr once its programs are attached.
pub(super) const TRACING: &str = "sigwho: tracing";

/// The live view watching the idle process: every signal of the storm is for someone
/// else, so this is what the in-kernel filter costs.
pub(super) fn filtered() -> Config {
    Config {
        name: "sigwho watching an idle process (in-kernel filter)",
        tracer: Some(watching_idle(&[])),
        target: Some(FILTER_TARGET),
    }
}

pub(super) fn filtered_signal_generate_only() -> Config {
    Config {
        name: "sigwho watching an idle process, failed-attempt hooks off (SIGWHO_DISABLE_HOOKS=<the 6 syscalls>; not for use: splits the cost)",
        tracer: Some(watching_idle(&[(
            "SIGWHO_DISABLE_HOOKS",
            DISABLE_SYSCALL_HOOKS,
        )])),
        target: None,
    }
}

/// sigwho's switch that attaches every hook and empties every program (`programs` in
/// tracer/src/kernel/load/mod.rs, `DISABLE_HOOKS`).
pub(super) const EMPTY_PROGRAMS: &str = "programs";

/// The floor: the filtered view's hooks (the recorder's are the same), each program
/// returning as soon as it runs. What is left is what the kernel charges for calling
/// them: the tracepoints' dispatch and, where fexit is refused, every syscall's trip
/// through the tracing slow path.
pub(super) fn hooks_only() -> Config {
    Config {
        name: "floor: sigwho's hooks, every program returning at once (SIGWHO_DISABLE_HOOKS=programs; traces nothing)",
        tracer: Some(watching_idle(&[("SIGWHO_DISABLE_HOOKS", EMPTY_PROGRAMS)])),
        target: None,
    }
}

/// sigwho's switch that attaches every hook and empties every program but
/// `signal_generate`'s count (`count-only` in tracer/src/kernel/load/mod.rs,
/// `DISABLE_HOOKS`; tracer-ebpf/src/floor.rs).
pub(super) const COUNT_ONLY: &str = "count-only";

/// The recorder's floor: its hooks, every program returning at once except
/// `signal_generate`, which counts each signal in a per-CPU hash under the least key
/// issue 15 asks for (sender and target thread with their start times, signal, `si_code`,
/// result, request kind), with its first and last time, and does nothing else. What is
/// left is what counting in the kernel costs at the least; the recorder's key holds
/// more, and each key's first signal goes out in full.
pub(super) fn count_only() -> Config {
    Config {
        name: "floor under the recorder: sigwho record, signal_generate only counting each signal under the issue's key (SIGWHO_DISABLE_HOOKS=count-only; records nothing)",
        tracer: Some(Tracer {
            env: &[("SIGWHO_DISABLE_HOOKS", COUNT_ONLY)],
            count: Count::None,
            ..recorder::tracer()
        }),
        target: None,
    }
}

fn watching_idle(env: &'static [(&'static str, &'static str)]) -> Tracer {
    Tracer {
        program: Program::Sigwho,
        args: |n| vec!["--target-pid".into(), n.idle.clone()],
        env,
        stdout: Sink::Null,
        ready: Ready::Stderr(TRACING),
        count: Count::None,
    }
}

pub(super) fn json() -> Config {
    Config {
        name: "sigwho --json watching the victim (every signal reported)",
        tracer: Some(Tracer {
            program: Program::Sigwho,
            args: |n| vec!["--target-pid".into(), n.victim.clone(), "--json".into()],
            env: &[],
            stdout: Sink::File,
            ready: Ready::Stderr(TRACING),
            count: Count::SigwhoJson,
        }),
        target: None,
    }
}

pub(super) fn recorder() -> Config {
    Config {
        name: "sigwho record (every signal on the machine, into the journal)",
        tracer: Some(recorder::tracer()),
        target: Some(RECORDER_TARGET),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::references::KILL_FAMILY;

    #[test]
    fn the_disabled_hooks_are_the_kill_family() {
        assert_eq!(DISABLE_SYSCALL_HOOKS, KILL_FAMILY.join(","));
    }
}
