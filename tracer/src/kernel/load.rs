//! Loads the embedded eBPF object, attaches its hooks and hands out the ring buffer.

use std::{fmt::Write as _, fs, path::PathBuf};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, FExit, TracePoint},
};
use tracer_ebpf::{
    Config, FOLD_WAYS, FoldSlot, SyscallLayout, SyscallLayouts, TARGET_HINT_SLOTS, kind,
};

use crate::kernel::probe::{self, Feature};
use crate::kernel::tracefs;

/// The eBPF object built by build.rs (aya-build), embedded so that the binary is all a
/// server needs.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sigwho-ebpf"));

/// Size of the embedded object, for `--version`.
pub fn object_size() -> usize {
    EBPF_OBJECT.len()
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "missing {missing}: sigwho needs root, or CAP_BPF and CAP_PERFMON{memlock} (it loads eBPF programs and reads kernel tracepoints)"
    )]
    Privileges {
        /// "capability CAP_X" or "capabilities CAP_X and CAP_Y".
        missing: String,
        /// ", and CAP_SYS_RESOURCE on this kernel" when BPF memory counts against RLIMIT_MEMLOCK.
        memlock: &'static str,
    },
    #[error("{0}")]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(
        "this kernel has no {what} tracepoint ({path}); sigwho needs CONFIG_TRACEPOINTS with signal and sched events"
    )]
    MissingTracepoint { what: String, path: String },
    #[error(
        "this kernel exposes no BTF (/sys/kernel/btf/vmlinux: {0}); sigwho needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf(String),
    #[error("cannot load sigwho's eBPF object: {0}")]
    Object(String),
    #[error("cannot load eBPF program {program}: {reason}{}", log_note(.log.as_deref()))]
    Program {
        program: String,
        /// The verifier's reason in a few words (its last meaningful line).
        reason: String,
        /// Where the whole verifier log was saved.
        log: Option<PathBuf>,
    },
    #[error("this kernel lacks {0}, which sigwho needs")]
    Unsupported(&'static str),
    #[error("this kernel lacks the eBPF helpers {0} (Linux 5.8 has them all)")]
    MissingHelpers(String),
    #[error("cannot attach eBPF program {program}: {reason}")]
    Attach { program: String, reason: String },
    #[error("eBPF map {0}: {1}")]
    Map(&'static str, String),
}

fn log_note(log: Option<&std::path::Path>) -> String {
    log.map(|path| {
        format!(
            " (verifier log: {}; SIGWHO_LOG=debug prints it)",
            path.display()
        )
    })
    .unwrap_or_default()
}

/// An error and its causes on one line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            let _ = write!(text, ": {message}");
        }
        source = cause.source();
    }
    // Some causes quote several lines (SQLite quotes a damaged journal's schema).
    if text.contains('\n') {
        text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    text
}

// Capability bits (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Checks the effective capabilities before anything is attempted, so that the error
/// names what is missing instead of a raw EPERM from the kernel.
pub fn check_privileges() -> Result<(), LoadError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let memlock = memlock_counts() && !memlock_unlimited();
    let missing = missing_capabilities(effective, memlock);
    if missing.is_empty() {
        return Ok(());
    }
    let noun = if missing.len() == 1 {
        "capability"
    } else {
        "capabilities"
    };
    Err(LoadError::Privileges {
        missing: format!("{noun} {}", missing.join(" and ")),
        memlock: if memlock {
            ", and CAP_SYS_RESOURCE on this kernel"
        } else {
            ""
        },
    })
}

/// The capabilities missing from `effective` (a CapEff mask). CAP_SYS_ADMIN covers BPF
/// and perf events; CAP_SYS_RESOURCE matters only when `memlock` (BPF memory charged to
/// a limited RLIMIT_MEMLOCK, which only it may raise).
fn missing_capabilities(effective: u64, memlock: bool) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_SYS_ADMIN) {
        for (cap, name) in [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")] {
            if !has(cap) {
                missing.push(name);
            }
        }
    }
    if memlock && !has(CAP_SYS_RESOURCE) {
        missing.push("CAP_SYS_RESOURCE");
    }
    missing
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (later ones to the memory cgroup).
fn memlock_counts() -> bool {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    kernel_before_5_11(&release)
}

fn kernel_before_5_11(release: &str) -> bool {
    let mut numbers = release
        .trim()
        .split(['.', '-', '+'])
        .map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (5, 11),
        // Unreadable: assume a new kernel; the load error would say more.
        _ => false,
    }
}

fn memlock_unlimited() -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall writing into a valid struct.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    ok && limit.rlim_max == libc::RLIM_INFINITY
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Report only signals aimed at processes added with [`Tracer::watch`].
    pub filter_targets: bool,
    /// See [`Config::wakeup_bytes`].
    pub wakeup_bytes: u64,
    /// See [`Config::follow_children`].
    pub follow_children: bool,
    /// See [`Config::fold_repeats`]: the recorder's storms become counts in the kernel.
    /// Views that print every signal leave it off.
    pub fold_repeats: bool,
}

pub struct Tracer {
    // Keeps programs and links alive.
    /// The programs and their links; `None` once [`Tracer::stop_producing`] detached them.
    ebpf: Option<Ebpf>,
    ring: Option<RingBuf<MapData>>,
    dropped: PerCpuArray<MapData, u64>,
    targets: HashMap<MapData, u32, u32>,
    target_hints: Array<MapData, u8>,
    fold: PerCpuArray<MapData, FoldSlot>,
    /// Hooks that could not be attached on this kernel, each with the reason.
    pub warnings: Vec<String>,
    /// How this kernel is traced where that is worth knowing but nothing is missing
    /// (a costlier fallback hook, say).
    pub notes: Vec<String>,
    /// How each hook and kernel feature is used on this kernel (`sigwho doctor`).
    pub features: Vec<Feature>,
}

/// Environment variable naming a directory to read tracepoint formats from instead of
/// the mounted tracefs (for tests of kernels with fewer hooks).
pub const TRACEFS_OVERRIDE: &str = "SIGWHO_TRACEFS";

/// Environment variable listing hooks (comma-separated) to treat as missing, to see
/// what sigwho does on a kernel without them: the name of a kill-family syscall
/// (`pidfd_send_signal`: neither its requests nor its failed attempts are recognised),
/// `syscall-fexit` (failed attempts come from the `syscalls:sys_exit_*` tracepoints
/// instead, as on kernels without BPF trampolines), `oom`, or a kernel feature:
/// `task-pt-regs` (requests from `syscalls:sys_enter_*`, as before 5.15),
/// `current-task-btf` (as before 5.11), `direct-loads` (as where a verifier refuses
/// them).
pub const DISABLE_HOOKS: &str = "SIGWHO_DISABLE_HOOKS";

/// The hooks named in [`DISABLE_HOOKS`].
fn disabled_hooks() -> Vec<String> {
    std::env::var(DISABLE_HOOKS)
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// This architecture's syscall numbers (its ABI, fixed for all kernels), in the order
/// of [`tracefs::SYSCALLS`].
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYSCALL_NRS: [i64; 6] = [
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    libc::SYS_pidfd_send_signal,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_tgsigqueueinfo,
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALL_NRS: [i64; 6] = [-1; 6];

/// Prefix of the syscall functions' names (arch/*/include/asm/syscall_wrapper.h); they
/// take the caller's struct pt_regs, which the fexit programs expect.
#[cfg(target_arch = "x86_64")]
const SYSCALL_PREFIX: Option<&str> = Some("__x64_sys_");
#[cfg(target_arch = "aarch64")]
const SYSCALL_PREFIX: Option<&str> = Some("__arm64_sys_");
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYSCALL_PREFIX: Option<&str> = None;

/// Environment variable naming the kernel BTF file to use instead of
/// /sys/kernel/btf/vmlinux.
pub const BTF_OVERRIDE: &str = "SIGWHO_BTF";

/// BTF tracepoints the tracer cannot work without.
const BTF_HOOKS: [(&str, &str); 4] = [
    ("signal_generate", "signal"),
    ("sched_process_fork", "sched"),
    ("sched_process_exec", "sched"),
    ("sched_process_exit", "sched"),
];

impl Tracer {
    pub fn load(options: &Options) -> Result<Self, LoadError> {
        Self::load_noting(options, &mut Vec::new())
    }

    /// [`Tracer::load`], noting in `features` how each hook and kernel feature is used,
    /// also those decided before a failure (`sigwho doctor` shows them either way).
    pub fn load_noting(options: &Options, features: &mut Vec<Feature>) -> Result<Self, LoadError> {
        check_privileges()?;
        raise_memlock_limit();
        let mounted = tracefs::ensure_mounted().inspect_err(|error| {
            features.push(Feature::missing(
                "tracefs",
                error.to_string(),
                "nothing can be traced",
            ));
        })?;
        features.push(Feature::used(
            "tracefs",
            format!("mounted at {}", mounted.display()),
        ));
        // Where sigwho looks for tracepoints and their formats. Tests point this at a
        // trimmed copy to play a kernel that lacks some hooks; attaching still goes
        // through the real tracefs.
        let tracefs_root = std::env::var_os(TRACEFS_OVERRIDE)
            .map(PathBuf::from)
            .unwrap_or(mounted);
        for (event, group) in BTF_HOOKS {
            let path: PathBuf = tracefs_root.join("events").join(group).join(event);
            if !path.exists() {
                features.push(Feature::missing(
                    "tp_btf",
                    format!("no {group}:{event} tracepoint"),
                    "nothing can be traced",
                ));
                return Err(LoadError::MissingTracepoint {
                    what: format!("{group}:{event}"),
                    path: path.display().to_string(),
                });
            }
        }
        // The kernel's type information, which the BTF tracepoints and CO-RE need. A
        // test (or a kernel that keeps it elsewhere) may name another file.
        let btf = match std::env::var_os(BTF_OVERRIDE) {
            Some(path) => Btf::parse_file(&path, aya::Endianness::default()),
            None => Btf::from_sys_fs(),
        }
        .map_err(|e| LoadError::NoBtf(chain(&e)))
        .inspect_err(|error| {
            features.push(Feature::missing(
                "btf",
                error.to_string(),
                "nothing can be traced",
            ));
        })?;
        features.push(Feature::used(
            "btf",
            std::env::var(BTF_OVERRIDE).unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".to_owned()),
        ));

        let disabled = disabled_hooks();
        let is_disabled = |name: &str| disabled.iter().any(|d| d == name);
        let probed = probe::probe();
        if !probed.ring_buffer {
            features.push(Feature::missing(
                "ring_buffer",
                "BPF ring buffer maps need Linux 5.8",
                "nothing can be traced",
            ));
            return Err(LoadError::Unsupported("the BPF ring buffer (Linux 5.8)"));
        }
        features.push(Feature::used("ring_buffer", "BPF_MAP_TYPE_RINGBUF"));
        if !probed.missing_helpers.is_empty() {
            let missing = probed.missing_helpers.join(", ");
            features.push(Feature::missing(
                "helpers",
                format!("this kernel lacks {missing}"),
                "nothing can be traced",
            ));
            return Err(LoadError::MissingHelpers(missing));
        }
        features.push(Feature::used(
            "helpers",
            "every helper the programs call (Linux 5.8)",
        ));
        let mut kernel_features = 0;
        if probed.current_task_btf && !is_disabled("current-task-btf") {
            kernel_features |= tracer_ebpf::features::CURRENT_TASK_BTF;
            features.push(Feature::used(
                "current_task_btf",
                "bpf_get_current_task_btf(): the sender read by plain loads",
            ));
        } else {
            let why = if is_disabled("current-task-btf") {
                format!("disabled by {DISABLE_HOOKS}")
            } else {
                "no bpf_get_current_task_btf() (Linux 5.11)".to_owned()
            };
            features.push(Feature::fallback(
                "current_task_btf",
                format!("{why}: the sender read with bpf_probe_read_kernel()"),
                "a few nanoseconds more per signal",
            ));
        }
        let task_pt_regs = probed.task_pt_regs && !is_disabled("task-pt-regs");
        if task_pt_regs {
            kernel_features |= tracer_ebpf::features::TASK_PT_REGS;
        }
        // Format problems matter only if the fallback hooks are needed; then the
        // warning about them says so.
        let (layouts, layout_problems) = tracefs::syscall_layouts(&tracefs_root);
        let mut warnings = Vec::new();
        let mut syscall_nrs = [-1i32; 6];
        for (slot, ((_, name), nr)) in syscall_nrs
            .iter_mut()
            .zip(tracefs::SYSCALLS.iter().zip(SYSCALL_NRS))
        {
            if !is_disabled(name) {
                *slot = i32::try_from(nr).unwrap_or(-1);
            }
        }
        let mut config = Config {
            filter_targets: u32::from(options.filter_targets),
            self_pid: std::process::id(),
            wakeup_bytes: options.wakeup_bytes,
            oom_pid_offset: oom_pid_offset(&tracefs_root, &mut warnings),
            follow_children: u32::from(options.follow_children),
            syscall_nrs,
            fold_repeats: u32::from(options.fold_repeats),
            features: kernel_features,
        };
        if !is_disabled("direct-loads") {
            config.features |= tracer_ebpf::features::DIRECT_LOADS;
        }
        // Plain loads through BTF task pointers first; if this kernel's verifier refuses
        // them, everything loads again with probe reads (the object's read-only CONFIG
        // is fixed at load, so the retry is a new object).
        let mut refused = None;
        let mut ebpf = loop {
            let mut ebpf = EbpfLoader::new()
                .btf(Some(&btf))
                .override_global("CONFIG", &config, true)
                .override_global("LAYOUTS", &layouts, true)
                .load(EBPF_OBJECT)
                .map_err(|e| LoadError::Object(chain(&e)))?;
            match load_btf_hooks(&mut ebpf, &btf) {
                Ok(()) => break ebpf,
                Err(error)
                    if config.features & tracer_ebpf::features::DIRECT_LOADS != 0
                        && matches!(error, LoadError::Program { .. }) =>
                {
                    refused = Some(error);
                    config.features &= !tracer_ebpf::features::DIRECT_LOADS;
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
        };
        features.push(Feature::used(
            "tp_btf",
            "signal:signal_generate, sched:sched_process_{fork,exec,exit}",
        ));
        features.push(match refused {
            None if config.features & tracer_ebpf::features::DIRECT_LOADS != 0 => {
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
        attach_btf_hooks(&mut ebpf)?;

        features.push(if task_pt_regs {
            Feature::used(
                "task_pt_regs",
                "bpf_task_pt_regs(): requests from the sender's saved registers",
            )
        } else {
            attach_syscall_entries(&mut ebpf, &layouts, &disabled, is_disabled("task-pt-regs"))
        });
        let mut notes = Vec::new();
        features.push(attach_syscalls(
            &mut ebpf,
            &btf,
            &layouts,
            &layout_problems,
            &disabled,
            &mut warnings,
            &mut notes,
        )?);
        if is_disabled("oom") {
            warnings.push(format!(
                "cannot see oom:mark_victim (disabled by {DISABLE_HOOKS}): OOM kills show as plain kernel SIGKILLs"
            ));
        } else if config.oom_pid_offset != u32::MAX {
            let program: &mut TracePoint = program(&mut ebpf, "mark_victim")?;
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
        features.push(
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
        );
        features.push(probe::pidfd_backing());
        features.push(probe::cgroup_v2());

        let ring = take_map(&mut ebpf, "EVENTS")?;
        let dropped = take_map(&mut ebpf, "DROPPED")?;
        let targets = take_map(&mut ebpf, "TARGETS")?;
        let target_hints = take_map(&mut ebpf, "TARGET_HINTS")?;
        let fold = take_map(&mut ebpf, "FOLD")?;
        Ok(Self {
            ebpf: Some(ebpf),
            ring: Some(ring),
            dropped,
            targets,
            target_hints,
            fold,
            warnings,
            notes,
            features: features.clone(),
        })
    }

    /// Detaches every program, so that nothing more enters the ring buffer: the final
    /// drain then ends even while a storm goes on. The maps taken out of the object
    /// (ring buffer, drop counters, targets) stay readable.
    pub fn stop_producing(&mut self) {
        self.ebpf = None;
    }

    /// The ring buffer records arrive in; the reader owns it (once).
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Adds a process to the in-kernel target filter.
    pub fn watch(&mut self, pid: u32) -> Result<(), LoadError> {
        // The hint first: the kernel looks in TARGETS only where one is set.
        self.target_hints
            .set(pid % TARGET_HINT_SLOTS, 1, 0)
            .map_err(|e| LoadError::Map("TARGET_HINTS", chain(&e)))?;
        self.targets
            .insert(pid, 1, 0)
            .map_err(|e| LoadError::Map("TARGETS", chain(&e)))
    }

    /// Pids in the in-kernel target filter. With `follow_children` the kernel adds every
    /// process a target forks and removes each at exit, so these are the traced tree's
    /// live processes.
    pub fn targets(&self) -> Vec<u32> {
        self.targets.keys().filter_map(Result::ok).collect()
    }

    /// Every fold slot as it is now, each CPU's of the first way, then of the next,
    /// always in the same order (see [`FoldSlot`] for how to read them safely while
    /// programs run).
    pub fn fold_slots(&self) -> Result<Vec<FoldSlot>, LoadError> {
        let mut slots = Vec::new();
        for way in 0..FOLD_WAYS {
            let values = self
                .fold
                .get(&way, 0)
                .map_err(|e| LoadError::Map("FOLD", chain(&e)))?;
            slots.extend(values.iter().copied());
        }
        Ok(slots)
    }

    /// Records dropped so far, summed over CPUs, indexed by record kind.
    pub fn dropped(&self) -> Result<[u64; 8], LoadError> {
        let mut totals = [0u64; 8];
        for (index, total) in totals.iter_mut().enumerate() {
            let values = self
                .dropped
                .get(&(index as u32), 0)
                .map_err(|e| LoadError::Map("DROPPED", chain(&e)))?;
            *total = values.iter().sum();
        }
        Ok(totals)
    }
}

/// Record kind names, as lost reports show them.
pub fn kind_name(record_kind: usize) -> &'static str {
    match record_kind as u32 {
        kind::SIGNAL => "signal",
        kind::FAILED_SEND => "failed_send",
        kind::EXEC => "exec",
        kind::FORK => "fork",
        kind::EXIT => "exit",
        kind::OOM_VICTIM => "oom_victim",
        kind::REPEATS => "repeats",
        _ => "other",
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, LoadError>
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
fn load_btf_hooks(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), LoadError> {
    for (event, _) in BTF_HOOKS {
        let program: &mut BtfTracePoint = program(ebpf, event)?;
        program
            .load(event, btf)
            .map_err(|error| program_error(event, &error))?;
    }
    Ok(())
}

fn attach_btf_hooks(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    for (event, _) in BTF_HOOKS {
        let program: &mut BtfTracePoint = program(ebpf, event)?;
        program.attach().map_err(|e| LoadError::Attach {
            program: event.to_owned(),
            reason: chain(&e),
        })?;
    }
    Ok(())
}

/// The one-line error for a program that will not load: the verifier's reason in a
/// few words, and where its whole log was saved (under [`runtime_dir`]).
fn program_error(program: &str, error: &aya::programs::ProgramError) -> LoadError {
    program_error_in(&runtime_dir(), program, error)
}

fn program_error_in(
    dir: &std::path::Path,
    program: &str,
    error: &aya::programs::ProgramError,
) -> LoadError {
    let aya::programs::ProgramError::LoadError {
        io_error,
        verifier_log,
    } = error
    else {
        return LoadError::Program {
            program: program.to_owned(),
            reason: chain(error),
            log: None,
        };
    };
    let log = verifier_log.to_string();
    if verbose() {
        eprintln!("sigwho: verifier log of {program}:");
        eprintln!("{}", log.trim_end());
    }
    let reason = match probe::verifier_reason(&log) {
        Some(reason) => format!("{reason} ({io_error})"),
        None => io_error.to_string(),
    };
    LoadError::Program {
        program: program.to_owned(),
        reason,
        log: save_verifier_log(dir, program, &log),
    }
}

/// Where sigwho keeps files of the running instance: $RUNTIME_DIRECTORY under systemd,
/// else $XDG_RUNTIME_DIR/sigwho, else /run/sigwho.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("RUNTIME_DIRECTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("sigwho")))
        .unwrap_or_else(|| PathBuf::from("/run/sigwho"))
}

/// Writes a verifier log as `dir`/verifier-PROGRAM.log; None when it cannot.
fn save_verifier_log(dir: &std::path::Path, program: &str, log: &str) -> Option<PathBuf> {
    if log.trim().is_empty() {
        return None;
    }
    fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("verifier-{program}.log"));
    fs::write(&path, log).ok()?;
    Some(path)
}

/// Whether diagnostics are wanted in full (`-v`, or SIGWHO_LOG=debug).
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
        || std::env::var("SIGWHO_LOG").is_ok_and(|level| level.eq_ignore_ascii_case("debug"))
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns full diagnostics on (`-v`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Where `bpf_task_pt_regs()` is missing (before 5.15): each kill-family call's
/// arguments from its `syscalls:sys_enter_*` tracepoint, kept until it returns.
fn attach_syscall_entries(
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

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, LoadError>
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
fn oom_pid_offset(tracefs_root: &std::path::Path, warnings: &mut Vec<String>) -> u32 {
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
/// from the sender's registers. A syscall this kernel lacks (pidfd_send_signal before
/// 5.1) or that cannot be hooked is a warning, not an error.
fn attach_syscalls(
    ebpf: &mut Ebpf,
    btf: &Btf,
    layouts: &SyscallLayouts,
    layout_problems: &[String],
    disabled: &[String],
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Feature, LoadError> {
    const NAME: &str = "fexit";
    let fexit_allowed = !disabled.iter().any(|d| d == "syscall-fexit");
    let mut fallbacks = Vec::new();
    let mut used = Vec::new();
    let mut missing = Vec::new();
    let mut fexit_refused = String::new();
    for (which, name) in tracefs::SYSCALLS {
        if disabled.iter().any(|d| d == name) {
            warnings.push(format!(
                "{name}() disabled by {DISABLE_HOOKS}: its requests and failed attempts are not recognised"
            ));
            continue;
        }
        let fexit_error = match SYSCALL_PREFIX {
            Some(prefix) if fexit_allowed => {
                let function = format!("{prefix}{name}");
                let program: &mut FExit = program(ebpf, &format!("{name}_return"))?;
                match program
                    .load(&function, btf)
                    .map_err(|e| chain(&e))
                    .and_then(|()| program.attach().map(drop).map_err(|e| chain(&e)))
                {
                    Ok(()) => {
                        used.push(name);
                        continue;
                    }
                    Err(reason) => {
                        // aya appends the verifier's log, empty when the kernel refused
                        // the program before verifying it.
                        let reason = reason
                            .trim_end()
                            .trim_end_matches("Verifier output:")
                            .trim_end()
                            .trim_end_matches('.')
                            .to_owned();
                        fexit_refused = reason.clone();
                        format!("fexit/{function}: {reason}")
                    }
                }
            }
            Some(_) => format!("fexit disabled by {DISABLE_HOOKS}"),
            None => "no fexit hook for this architecture's syscall functions".to_owned(),
        };
        let layout: &SyscallLayout = &layouts.0[(which - 1) as usize];
        let event = format!("sys_exit_{name}");
        let fallback = if layout.ret == SyscallLayout::ABSENT {
            let problem = layout_problems
                .iter()
                .find(|p| p.starts_with(&format!("{name}:")))
                .map_or_else(|| format!("no syscalls:{event} format"), Clone::clone);
            Err(problem)
        } else {
            let program: &mut TracePoint = program(ebpf, &event)?;
            program
                .load()
                .map_err(|e| chain(&e))
                .and_then(|()| {
                    program
                        .attach("syscalls", &event)
                        .map(drop)
                        .map_err(|e| chain(&e))
                })
                .map_err(|reason| format!("syscalls:{event}: {reason}"))
        };
        match fallback {
            Ok(()) => fallbacks.push(name),
            Err(reason) => {
                missing.push(name);
                warnings.push(format!(
                    "cannot see failed {name}() attempts ({fexit_error}; {reason})"
                ));
            }
        }
    }
    let why = if fexit_refused.is_empty() {
        format!("fexit disabled by {DISABLE_HOOKS}")
    } else {
        format!("the kernel refused fexit programs: {fexit_refused}")
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
    if !fallbacks.is_empty() {
        notes.push(format!(
            "failed {} attempts are seen through syscalls:sys_exit_* tracepoints, which add a little to every syscall on the machine ({why})",
            calls(&fallbacks)
        ));
    }
    let lockdown = probe::lockdown()
        .filter(|mode| mode != "none")
        .map(|mode| format!(", lockdown={mode}"))
        .unwrap_or_default();
    Ok(if !missing.is_empty() {
        Feature::missing(
            NAME,
            format!(
                "{why}{lockdown}; no sys_exit tracepoint for {}",
                calls(&missing)
            ),
            format!("failed {} attempts are not reported", calls(&missing)),
        )
    } else if !fallbacks.is_empty() {
        Feature::fallback(
            NAME,
            format!("{why}{lockdown}: failed attempts from syscalls:sys_exit_* tracepoints"),
            "every syscall on the machine takes the tracing slow path while sigwho runs",
        )
    } else if used.is_empty() {
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
                calls(&used)
            ),
        )
    })
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer; failure only matters on old kernels,
    // where the load error that follows says so.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn caps(list: &[u32]) -> u64 {
        let mut mask = 0;
        let mut i = 0;
        while i < list.len() {
            mask |= 1 << list[i];
            i += 1;
        }
        mask
    }

    #[test]
    fn missing_capabilities_are_named_exactly() {
        assert!(missing_capabilities(caps(&[CAP_SYS_ADMIN]), false).is_empty());
        assert!(missing_capabilities(caps(&[CAP_BPF, CAP_PERFMON]), false).is_empty());
        assert_eq!(
            missing_capabilities(caps(&[CAP_PERFMON]), false),
            ["CAP_BPF"]
        );
        assert_eq!(
            missing_capabilities(caps(&[CAP_BPF]), false),
            ["CAP_PERFMON"]
        );
        assert_eq!(missing_capabilities(0, false), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(
            missing_capabilities(caps(&[CAP_SYS_ADMIN]), true),
            ["CAP_SYS_RESOURCE"]
        );
        assert!(
            missing_capabilities(caps(&[CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE]), true).is_empty()
        );
    }

    #[test]
    fn a_refused_program_is_one_line_with_its_log_saved() {
        let dir = std::env::temp_dir().join(format!("sigwho-load-test-{}", std::process::id()));
        let log = "0: R1=ctx() R10=fp0\n\
                   2: (79) r2 = *(u64 *)(r1 +8)\n\
                   func 'signal_generate' arg1 has btf_id 446 type STRUCT 'kernel_siginfo'\n\
                   R1 invalid mem access 'scalar'\n\
                   processed 40 insns (limit 1000000) max_states_per_insn 0\n"
            .repeat(1)
            + &"; filler line of a long log\n".repeat(500);
        let log = log + "R1 invalid mem access 'scalar'\nprocessed 40 insns (limit 1000000)\n";
        let error = aya::programs::ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(libc::EACCES),
            verifier_log: aya_obj::VerifierLog::new(log.clone()),
        };
        let message = program_error_in(&dir, "signal_generate", &error).to_string();
        let saved = dir.join("verifier-signal_generate.log");
        assert_eq!(
            message,
            format!(
                "cannot load eBPF program signal_generate: R1 invalid mem access 'scalar' (Permission denied (os error 13)) (verifier log: {}; SIGWHO_LOG=debug prints it)",
                saved.display()
            )
        );
        assert!(!message.contains('\n'));
        assert_eq!(std::fs::read_to_string(&saved).unwrap(), log);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn kernel_release_parsing() {
        assert!(kernel_before_5_11("5.10.0-28-amd64\n"));
        assert!(kernel_before_5_11("4.19.0"));
        assert!(!kernel_before_5_11("5.11.0"));
        assert!(!kernel_before_5_11("6.12.48+deb13-amd64"));
        assert!(!kernel_before_5_11(""));
        assert!(!kernel_before_5_11("garbage"));
    }
}
