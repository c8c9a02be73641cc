//! sigwho's own rows in the storm table: the filtered live view (with and without its
//! failed-attempt hooks), the live view reporting every signal, and the recorder.

/// The target for the in-kernel filter case, as a share of the untraced rate.
pub(super) const FILTER_TARGET: f64 = 0.85;
/// The target for the recorder in the flat-out storm.
pub(super) const RECORDER_TARGET: f64 = 0.60;

/// sigwho's switch (tracer/src/load.rs, `DISABLE_HOOKS`) that leaves out the hooks of
/// these syscalls: the filtered view with `signal_generate` alone, to tell what its
/// syscall-exit hooks cost from what `signal_generate` costs.
pub(super) const DISABLE_SYSCALL_HOOKS: &str =
    "kill,tkill,tgkill,pidfd_send_signal,rt_sigqueueinfo,rt_tgsigqueueinfo";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::references::KILL_FAMILY;

    #[test]
    fn the_disabled_hooks_are_the_kill_family() {
        assert_eq!(DISABLE_SYSCALL_HOOKS, KILL_FAMILY.join(","));
    }
}
