//! Loading and attaching each hook, with the fallbacks of kernels that lack one.

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, FExit, TracePoint},
};
use tracer_common::{Config, FLOOR_ENTRIES, SyscallLayout, SyscallLayouts, program_mode};

use super::{BTF_HOOKS, DISABLE_HOOKS, EBPF_OBJECT, SYSCALL_PREFIX, errors::program_error};
use crate::error::chain;
use crate::kernel::probe::{self, Feature};
use crate::kernel::tracefs;

use super::LoadError;

pub(super) fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, LoadError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program>,
{
    let missing = || LoadError::Program {
        program: name.to_owned(),
        reason: "not in the embedded object (build mismatch)".to_owned(),
        log: None,
    };
    let program = ebpf.program_mut(name).ok_or_else(missing)?;
    program.try_into().map_err(|_| missing())
}

/// Loads (verifies) the BTF tracepoint programs; attaching is [`attach_btf_hooks`].
pub(super) fn load_btf_hooks(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), LoadError> {
    for (event, _) in BTF_HOOKS {
        let program: &mut BtfTracePoint = program(ebpf, event)?;
        program
            .load(event, btf)
            .map_err(|error| program_error(event, &error))?;
    }
    Ok(())
}

/// The tracepoint at which a watched process leaves the target filter: when its task is
/// freed (after it was reaped), rather than when it exits.
pub(super) const FREE_HOOK: &str = "sched_process_free";

fn free_hook_feature(config: &Config, refused: Option<LoadError>) -> Feature {
    const NAME: &str = "sched_process_free";
    const LOST: &str =
        "a signal sent to a watched process while it exits (after a SIGKILL) is not seen";
    if config.features & tracer_common::features::FREE_HOOK != 0 {
        return Feature::used(
            NAME,
            "sched:sched_process_free: a watched process stays watched until it is reaped",
        );
    }
    Feature::fallback(
        NAME,
        match refused {
            Some(error) => format!("refused ({error}): watching ends at sched_process_exit"),
            None => "no sched:sched_process_free tracepoint, or disabled: watching ends at \
                     sched_process_exit"
                .to_owned(),
        },
        LOST,
    )
}

pub(super) fn attach_btf_hooks(ebpf: &mut Ebpf, config: &Config) -> Result<(), LoadError> {
    if config.features & tracer_common::features::FREE_HOOK != 0 {
        let hook: &mut BtfTracePoint = program(ebpf, FREE_HOOK)?;
        hook.attach().map_err(|e| LoadError::Attach {
            program: FREE_HOOK.to_owned(),
            reason: chain(&e),
        })?;
    }
    for (event, _) in BTF_HOOKS {
        let program: &mut BtfTracePoint = program(ebpf, event)?;
        program.attach().map_err(|e| LoadError::Attach {
            program: event.to_owned(),
            reason: chain(&e),
        })?;
    }
    Ok(())
}

/// Where `bpf_task_pt_regs()` is missing (before 5.15): each kill-family call's
/// arguments from its `syscalls:sys_enter_*` tracepoint, kept until it returns.
pub(super) fn attach_syscall_entries(
    ebpf: &mut Ebpf,
    layouts: &SyscallLayouts,
    disabled: &[String],
    forced: bool,
) -> Feature {
    const NAME: &str = "task_pt_regs";
    let why = if forced {
        format!("disabled by {DISABLE_HOOKS}")
    } else {
        "no bpf_task_pt_regs() (Linux 5.15)".to_owned()
    };
    let mut failed = Vec::new();
    for (which, name) in tracefs::SYSCALLS {
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        let layout = &layouts.0[(which - 1) as usize];
        let event = format!("sys_enter_{name}");
        let result = if layout.arg0 == SyscallLayout::ABSENT || layout.sig == SyscallLayout::ABSENT
        {
            Err(format!("no usable syscalls:{event} format"))
        } else {
            match program::<TracePoint>(ebpf, &event) {
                Ok(program) => program.load().map_err(|e| chain(&e)).and_then(|()| {
                    program
                        .attach("syscalls", &event)
                        .map(drop)
                        .map_err(|e| chain(&e))
                }),
                Err(error) => Err(error.to_string()),
            }
        };
        if let Err(reason) = result {
            failed.push(format!("{name}(): {reason}"));
        }
    }
    if failed.is_empty() {
        Feature::fallback(
            NAME,
            format!("{why}: requests from syscalls:sys_enter_* tracepoints"),
            "every syscall on the machine takes the tracing slow path while sigwho runs",
        )
    } else {
        Feature::missing(
            NAME,
            format!("{why}, and {}", failed.join("; ")),
            "those calls' requests (syscall and arguments) are not named; their signals still are",
        )
    }
}

pub(super) fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<aya::maps::Map>,
    <T as TryFrom<aya::maps::Map>>::Error: std::error::Error,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| LoadError::Map(name, "not in the embedded object".to_owned()))?;
    T::try_from(map).map_err(|e| LoadError::Map(name, chain(&e)))
}

/// Where the victim's pid sits in an `oom:mark_victim` record; `u32::MAX` (hook off)
/// with a warning when this kernel has no such tracepoint.
pub(super) fn oom_pid_offset(tracefs_root: &std::path::Path, warnings: &mut Vec<String>) -> u32 {
    match tracefs::read_format(tracefs_root, "oom", "mark_victim") {
        Ok(format) => match format.field("pid") {
            Some(field) if field.size == 4 => field.offset,
            _ => {
                warnings.push(
                    "cannot see oom:mark_victim (OOM kills show as plain kernel SIGKILLs): no 4-byte pid field in its format"
                        .to_owned(),
                );
                u32::MAX
            }
        },
        Err(error) => {
            warnings.push(format!(
                "cannot see oom:mark_victim (OOM kills show as plain kernel SIGKILLs): {error}"
            ));
            u32::MAX
        }
    }
}

/// Hooks what each kill-family syscall returns, to see the requests the kernel refused:
/// an fexit program on the syscall's function when the kernel allows it, else its
/// `syscalls:sys_{enter,exit}_*` tracepoints (which slow every syscall of every task
/// down a little). What succeeded needs neither: `signal_generate` reads the request
/// from the sender's registers. A syscall this kernel lacks (`pidfd_send_signal` before
/// 5.1) or that cannot be hooked is a warning, not an error.
pub(super) fn attach_syscalls(
    ebpf: &mut Ebpf,
    btf: &Btf,
    layouts: &SyscallLayouts,
    layout_problems: &[String],
    disabled: &[String],
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Feature, LoadError> {
    let fexit_allowed = !disabled.iter().any(|d| d == "syscall-fexit");
    let mut hooked = Hooked::default();
    for (which, name) in tracefs::SYSCALLS {
        if disabled.iter().any(|d| d == name) {
            warnings.push(format!(
                "{name}() disabled by {DISABLE_HOOKS}: its requests and failed attempts are not recognised"
            ));
            continue;
        }
        let fexit_error = match SYSCALL_PREFIX {
            Some(prefix) if fexit_allowed => match attach_fexit(ebpf, btf, prefix, name)? {
                Ok(()) => {
                    hooked.fexit.push(name);
                    continue;
                }
                Err(reason) => {
                    hooked.fexit_refused.clone_from(&reason);
                    format!("fexit/{prefix}{name}: {reason}")
                }
            },
            Some(_) => format!("fexit disabled by {DISABLE_HOOKS}"),
            None => "no fexit hook for this architecture's syscall functions".to_owned(),
        };
        let layout: &SyscallLayout = &layouts.0[(which - 1) as usize];
        match attach_sys_exit(ebpf, layout, layout_problems, name)? {
            Ok(()) => hooked.sys_exit.push(name),
            Err(reason) => {
                hooked.missing.push(name);
                warnings.push(format!(
                    "cannot see failed {name}() attempts ({fexit_error}; {reason})"
                ));
            }
        }
    }
    Ok(hooked.feature(notes))
}

/// How each kill-family syscall's return is hooked.
#[derive(Default)]
struct Hooked {
    fexit: Vec<&'static str>,
    sys_exit: Vec<&'static str>,
    missing: Vec<&'static str>,
    /// Why the kernel refused fexit programs (empty: it did not, or fexit is disabled).
    fexit_refused: String,
}

impl Hooked {
    /// The `fexit` feature, and the note a kernel that refuses trampolines gets.
    fn feature(&self, notes: &mut Vec<String>) -> Feature {
        const NAME: &str = "fexit";
        let why = if self.fexit_refused.is_empty() {
            format!("fexit disabled by {DISABLE_HOOKS}")
        } else {
            format!("the kernel refused fexit programs: {}", self.fexit_refused)
        };
        let calls = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("{n}()"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        // One line for all: this is the normal state of a kernel that refuses BPF
        // trampolines (lockdown "integrity" mode does).
        if !self.sys_exit.is_empty() {
            notes.push(format!(
                "failed {} attempts are seen through syscalls:sys_exit_* tracepoints, which add a little to every syscall on the machine ({why})",
                calls(&self.sys_exit)
            ));
        }
        let lockdown = probe::lockdown()
            .filter(|mode| mode != "none")
            .map(|mode| format!(", lockdown={mode}"))
            .unwrap_or_default();
        if !self.missing.is_empty() {
            Feature::missing(
                NAME,
                format!(
                    "{why}{lockdown}; no sys_exit tracepoint for {}",
                    calls(&self.missing)
                ),
                format!("failed {} attempts are not reported", calls(&self.missing)),
            )
        } else if !self.sys_exit.is_empty() {
            Feature::fallback(
                NAME,
                format!("{why}{lockdown}: failed attempts from syscalls:sys_exit_* tracepoints"),
                "every syscall on the machine takes the tracing slow path while sigwho runs",
            )
        } else if self.fexit.is_empty() {
            Feature::missing(
                NAME,
                "every kill-family syscall is disabled",
                "no failed attempt is reported",
            )
        } else {
            Feature::used(
                NAME,
                format!(
                    "failed attempts from fexit on the syscall functions ({})",
                    calls(&self.fexit)
                ),
            )
        }
    }
}

/// The fexit program on the syscall function `prefix` + `name`; the inner error says
/// why the kernel refused it.
fn attach_fexit(
    ebpf: &mut Ebpf,
    btf: &Btf,
    prefix: &str,
    name: &str,
) -> Result<Result<(), String>, LoadError> {
    let function = format!("{prefix}{name}");
    let program: &mut FExit = program(ebpf, &format!("{name}_return"))?;
    Ok(program
        .load(&function, btf)
        .map_err(|e| chain(&e))
        .and_then(|()| program.attach().map(drop).map_err(|e| chain(&e)))
        .map_err(|reason| {
            // aya appends the verifier's log, empty when the kernel refused the program
            // before verifying it.
            reason
                .trim_end()
                .trim_end_matches("Verifier output:")
                .trim_end()
                .trim_end_matches('.')
                .to_owned()
        }))
}

/// The `syscalls:sys_exit_<name>` fallback; the inner error says why it is missing.
fn attach_sys_exit(
    ebpf: &mut Ebpf,
    layout: &SyscallLayout,
    layout_problems: &[String],
    name: &str,
) -> Result<Result<(), String>, LoadError> {
    let event = format!("sys_exit_{name}");
    if layout.ret == SyscallLayout::ABSENT {
        let problem = layout_problems
            .iter()
            .find(|p| p.starts_with(&format!("{name}:")))
            .map_or_else(|| format!("no syscalls:{event} format"), Clone::clone);
        return Ok(Err(problem));
    }
    let program: &mut TracePoint = program(ebpf, &event)?;
    Ok(program
        .load()
        .map_err(|e| chain(&e))
        .and_then(|()| {
            program
                .attach("syscalls", &event)
                .map(drop)
                .map_err(|e| chain(&e))
        })
        .map_err(|reason| format!("syscalls:{event}: {reason}")))
}

/// The object loaded with `config`, its BTF tracepoint programs verified. Plain loads
/// through BTF task pointers first; if this kernel's verifier refuses them, everything
/// loads again with probe reads (the object's read-only CONFIG is fixed at load, so the
/// retry is a new object), and `config` says so.
pub(super) fn load_object(
    config: &mut Config,
    select: &tracer_common::Select,
    layouts: &SyscallLayouts,
    btf: &Btf,
    features: &mut Vec<Feature>,
) -> Result<Ebpf, LoadError> {
    let mut refused = None;
    let mut free_refused = None;
    let ebpf = loop {
        let mut ebpf = EbpfLoader::new()
            .btf(Some(btf))
            .override_global("CONFIG", &*config, true)
            .override_global("LAYOUTS", layouts, true)
            .override_global("SELECT", select, true)
            // Counted in only by the count-only floor (tracer-ebpf/src/floor.rs): one
            // entry otherwise, so that its per-CPU values take no memory worth naming.
            .map_max_entries(
                "COUNT_FLOOR",
                if config.program_mode == program_mode::COUNT_ONLY {
                    FLOOR_ENTRIES
                } else {
                    1
                },
            )
            .load(EBPF_OBJECT)
            .map_err(|e| LoadError::Object(chain(&e)))?;
        match load_btf_hooks(&mut ebpf, btf) {
            Ok(()) => {}
            Err(error)
                if config.features & tracer_common::features::DIRECT_LOADS != 0
                    && matches!(error, LoadError::Program { .. }) =>
            {
                refused = Some(error);
                config.features &= !tracer_common::features::DIRECT_LOADS;
                continue;
            }
            Err(error) => {
                features.push(Feature::missing(
                    "tp_btf",
                    error.to_string(),
                    "nothing can be traced",
                ));
                return Err(error);
            }
        }
        if config.features & tracer_common::features::FREE_HOOK != 0 {
            let hook: &mut BtfTracePoint = program(&mut ebpf, FREE_HOOK)?;
            if let Err(error) = hook.load(FREE_HOOK, btf) {
                // The exit program then removes targets itself, which only a new load
                // of the object (CONFIG is frozen) can tell it.
                free_refused = Some(program_error(FREE_HOOK, &error));
                config.features &= !tracer_common::features::FREE_HOOK;
                continue;
            }
        }
        break ebpf;
    };
    features.push(Feature::used(
        "tp_btf",
        "signal:signal_generate, sched:sched_process_{fork,exec,exit}",
    ));
    features.push(match refused {
        None if config.features & tracer_common::features::DIRECT_LOADS != 0 => {
            Feature::used("direct_loads", "plain loads through BTF task pointers")
        }
        None => Feature::fallback(
            "direct_loads",
            format!("disabled by {DISABLE_HOOKS}: bpf_probe_read_kernel() instead"),
            "a few nanoseconds more per signal",
        ),
        Some(error) => Feature::fallback(
            "direct_loads",
            format!("the verifier refused them ({error}): bpf_probe_read_kernel() instead"),
            "a few nanoseconds more per signal",
        ),
    });
    if config.follow_children != 0 {
        features.push(free_hook_feature(config, free_refused));
    }
    Ok(ebpf)
}

/// `oom:mark_victim`, optional: without it OOM kills show as plain kernel SIGKILLs.
pub(super) fn attach_oom(
    ebpf: &mut Ebpf,
    config: &Config,
    disabled: bool,
    warnings: &mut Vec<String>,
) -> Result<Feature, LoadError> {
    if disabled {
        warnings.push(format!(
            "cannot see oom:mark_victim (disabled by {DISABLE_HOOKS}): OOM kills show as plain kernel SIGKILLs"
        ));
    } else if config.oom_pid_offset != u32::MAX {
        let program: &mut TracePoint = program(ebpf, "mark_victim")?;
        let result = program
            .load()
            .map_err(|e| chain(&e))
            .and_then(|()| program.attach("oom", "mark_victim").map_err(|e| chain(&e)));
        if let Err(reason) = result {
            warnings.push(format!(
                "cannot see oom:mark_victim (OOM kills show as plain kernel SIGKILLs): {reason}"
            ));
        }
    }
    Ok(
        match warnings.iter().find(|w| w.contains("oom:mark_victim")) {
            None => Feature::used("oom_mark_victim", "oom:mark_victim names OOM kills"),
            Some(warning) => Feature::missing(
                "oom_mark_victim",
                warning
                    .trim_start_matches("cannot see oom:mark_victim ")
                    .to_owned(),
                "OOM kills show as plain kernel SIGKILLs",
            ),
        },
    )
}
