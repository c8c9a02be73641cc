//! Finding (or mounting) tracefs and reading tracepoint format files, which tell where a
//! tracepoint's fields sit in its records on the running kernel.

use std::ffi::CStr;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use tracer_common::{SyscallLayout, SyscallLayouts, syscall};

/// Where tracefs lives on current systems, and where sigwho mounts it if it is missing.
pub const TRACEFS_ROOT: &str = "/sys/kernel/tracing";
/// Where older systems only have it: inside debugfs, which auto-mounts it there.
pub const DEBUGFS_TRACING_ROOT: &str = "/sys/kernel/debug/tracing";

/// The kill-family syscalls sigwho traces, by [`tracer_common::syscall`] constant; their
/// tracepoints are `syscalls/sys_enter_<name>` and `syscalls/sys_exit_<name>`.
pub const SYSCALLS: [(u32, &str); 6] = [
    (syscall::KILL, "kill"),
    (syscall::TKILL, "tkill"),
    (syscall::TGKILL, "tgkill"),
    (syscall::PIDFD_SEND_SIGNAL, "pidfd_send_signal"),
    (syscall::RT_SIGQUEUEINFO, "rt_sigqueueinfo"),
    (syscall::RT_TGSIGQUEUEINFO, "rt_tgsigqueueinfo"),
];

/// Record fields the eBPF side reads for each syscall in [`SYSCALLS`], in the same order:
/// (arg0, arg1, sig). The names are the syscalls' parameter names in the kernel's
/// `SYSCALL_DEFINE`, which is what the format files use.
const ARG_FIELDS: [(&str, Option<&str>, &str); 6] = [
    ("pid", None, "sig"),
    ("pid", None, "sig"),
    ("tgid", Some("pid"), "sig"),
    ("pidfd", None, "sig"),
    ("pid", None, "sig"),
    ("tgid", Some("pid"), "sig"),
];
/// The return value's field in every `sys_exit_*` record.
const RET_FIELD: &str = "ret";
/// The eBPF programs read every syscall argument and the return value as a 64-bit
/// long, which is how syscall tracepoints store them on 64-bit kernels; a field of
/// another size would make those reads pick up a neighbour's bytes.
const SYSCALL_FIELD_SIZE: u32 = 8;

const NO_LAYOUT: SyscallLayout = SyscallLayout {
    arg0: SyscallLayout::ABSENT,
    arg1: SyscallLayout::ABSENT,
    sig: SyscallLayout::ABSENT,
    ret: SyscallLayout::ABSENT,
};

#[derive(Debug, Error)]
pub enum TracefsError {
    #[error("cannot mount tracefs at {}: {}{}", .path.display(), os_text(.source), mount_hint(.source))]
    Mount { path: PathBuf, source: io::Error },
    #[error(
        "tracefs at {} has no events directory (kernel built without event tracing?)",
        .0.display()
    )]
    NoEvents(PathBuf),
    #[error("{group}/{event} not found")]
    Missing { group: String, event: String },
    #[error("cannot read {}: {}", .path.display(), os_text(.source))]
    Read { path: PathBuf, source: io::Error },
    #[error("malformed format line {line} ({reason}): {text:?}")]
    Malformed {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("not a tracepoint format (no \"format:\" line)")]
    NotAFormat,
    /// A parse error in a file; `error` is the parse error itself.
    #[error("{}: {error}", .path.display())]
    BadFile {
        path: PathBuf,
        error: Box<TracefsError>,
    },
}

/// The message of an OS error without std's "(os error N)" suffix, which says nothing to
/// a user that the message does not.
fn os_text(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(cut) if error.raw_os_error().is_some() => text[..cut].to_owned(),
        _ => text,
    }
}

fn mount_hint(error: &io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => " (sigwho needs root)",
        Some(libc::ENODEV) => " (kernel built without tracefs)",
        // The mount point is created by the kernel only when tracing is built in.
        Some(libc::ENOENT) => " (kernel built without tracing support?)",
        _ => "",
    }
}

/// Returns the tracefs root, mounting tracefs at [`TRACEFS_ROOT`] if neither it nor the
/// debugfs location has tracepoints.
///
/// # Errors
///
/// When tracefs is neither mounted nor mountable, or has no events.
pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    let candidates = [Path::new(TRACEFS_ROOT), Path::new(DEBUGFS_TRACING_ROOT)];
    if let Some(root) = find_root(&candidates) {
        return Ok(root);
    }
    mount_tracefs()?;
    let root = Path::new(TRACEFS_ROOT);
    find_root(&[root]).ok_or_else(|| TracefsError::NoEvents(root.to_owned()))
}

/// The first candidate that has an `events` directory.
fn find_root(candidates: &[&Path]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|root| root.join("events").is_dir())
        .map(|root| root.to_path_buf())
}

/// Mounts tracefs at [`TRACEFS_ROOT`].
fn mount_tracefs() -> Result<(), TracefsError> {
    const TARGET: &CStr = c"/sys/kernel/tracing";
    let Err(error) = crate::kernel::sys::mount_tracefs(TARGET) else {
        return Ok(());
    };
    // Someone mounted it between our check and our mount; the caller checks again.
    if error.raw_os_error() == Some(libc::EBUSY) {
        return Ok(());
    }
    Err(TracefsError::Mount {
        path: PathBuf::from(TRACEFS_ROOT),
        source: error,
    })
}

/// One field of a tracepoint record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub signed: bool,
}

/// A tracepoint's format file: its id and record layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Format {
    pub id: Option<u32>,
    pub fields: Vec<Field>,
}

impl Format {
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// Parses the text of a tracefs `events/<group>/<event>/format` file.
///
/// # Errors
///
/// When a line of the format is malformed.
pub fn parse_format(text: &str) -> Result<Format, TracefsError> {
    let mut format = Format::default();
    let mut saw_format = false;
    for (index, line) in text.lines().enumerate() {
        let malformed = |reason| TracefsError::Malformed {
            line: index + 1,
            text: line.to_owned(),
            reason,
        };
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("field:") {
            format.fields.push(parse_field(rest).map_err(malformed)?);
        } else if let Some(rest) = trimmed.strip_prefix("ID:") {
            let id = rest
                .trim()
                .parse()
                .map_err(|_| malformed("ID is not a number"))?;
            format.id = Some(id);
        } else if trimmed == "format:" {
            saw_format = true;
        } else if trimmed.starts_with("print fmt:") {
            // The rest is the printk format, which may hold anything; nothing after it
            // describes the record.
            break;
        }
        // Other lines ("name: ...", blank separators, keys newer kernels may add) say
        // nothing about the layout.
    }
    if !saw_format {
        return Err(TracefsError::NotAFormat);
    }
    Ok(format)
}

/// Parses what follows "field:" on a line, e.g.
/// `pid_t pid;\toffset:16;\tsize:8;\tsigned:0;`.
fn parse_field(rest: &str) -> Result<Field, &'static str> {
    let mut parts = rest.split(';');
    let declaration = parts.next().unwrap_or_default();
    let name = field_name(declaration).ok_or("no field name in the declaration")?;
    let (mut offset, mut size, mut signed) = (None, None, false);
    for part in parts.map(str::trim).filter(|part| !part.is_empty()) {
        let (key, value) = part
            .split_once(':')
            .ok_or("expected key:value after the declaration")?;
        let value = value.trim();
        match key.trim() {
            "offset" => offset = Some(value.parse().map_err(|_| "offset is not a number")?),
            "size" => size = Some(value.parse().map_err(|_| "size is not a number")?),
            "signed" => {
                signed = match value {
                    "0" => false,
                    "1" => true,
                    _ => return Err("signed is neither 0 nor 1"),
                }
            }
            // Kernels may add keys; those do not change what offset and size mean.
            _ => {}
        }
    }
    Ok(Field {
        name: name.to_owned(),
        offset: offset.ok_or("missing offset")?,
        size: size.ok_or("missing size")?,
        signed,
    })
}

/// The declared name: the last identifier of a C declaration such as `char comm[16]`,
/// `siginfo_t * info` or `__data_loc char[] filename`.
fn field_name(declaration: &str) -> Option<&str> {
    let mut rest = declaration.trim_end();
    while let Some(open) = rest.strip_suffix(']').and_then(|inner| inner.rfind('[')) {
        rest = rest[..open].trim_end();
    }
    let start = rest
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let name = &rest[start..];
    let first = name.chars().next()?;
    (!first.is_ascii_digit()).then_some(name)
}

/// Reads and parses `root/events/<group>/<event>/format`.
///
/// # Errors
///
/// When the format file is missing, unreadable or malformed.
pub fn read_format(root: &Path, group: &str, event: &str) -> Result<Format, TracefsError> {
    let path = root.join("events").join(group).join(event).join("format");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(TracefsError::Missing {
                group: group.to_owned(),
                event: event.to_owned(),
            });
        }
        Err(source) => return Err(TracefsError::Read { path, source }),
    };
    parse_format(&text).map_err(|error| TracefsError::BadFile {
        path,
        error: Box::new(error),
    })
}

/// Where each kill-family syscall's arguments and return value sit in its tracepoint
/// records, plus one line per syscall that cannot be traced and why. Those syscalls get
/// all offsets [`SyscallLayout::ABSENT`]; the caller should not attach them.
#[must_use]
pub fn syscall_layouts(root: &Path) -> (SyscallLayouts, Vec<String>) {
    let mut layouts = [NO_LAYOUT; syscall::COUNT];
    let mut problems = Vec::new();
    for (&(which, name), &fields) in SYSCALLS.iter().zip(ARG_FIELDS.iter()) {
        let Some(slot) = usize::try_from(which)
            .ok()
            .and_then(|which| which.checked_sub(1))
            .and_then(|index| layouts.get_mut(index))
        else {
            continue;
        };
        match syscall_layout(root, name, fields) {
            Ok(layout) => *slot = layout,
            Err(problem) => problems.push(format!("{name}: {problem}")),
        }
    }
    (SyscallLayouts(layouts), problems)
}

fn syscall_layout(
    root: &Path,
    name: &str,
    (arg0, arg1, sig): (&str, Option<&str>, &str),
) -> Result<SyscallLayout, String> {
    let enter_event = format!("sys_enter_{name}");
    let exit_event = format!("sys_exit_{name}");
    let enter = read_format(root, "syscalls", &enter_event).map_err(|e| e.to_string())?;
    let exit = read_format(root, "syscalls", &exit_event).map_err(|e| e.to_string())?;
    let offset = |format: &Format, event: &str, field: &str| {
        let found = format
            .field(field)
            .ok_or_else(|| format!("syscalls/{event} has no field {field:?}"))?;
        if found.size != SYSCALL_FIELD_SIZE {
            return Err(format!(
                "syscalls/{event} field {field:?} is {} bytes, expected {SYSCALL_FIELD_SIZE}",
                found.size
            ));
        }
        Ok(found.offset)
    };
    Ok(SyscallLayout {
        arg0: offset(&enter, &enter_event, arg0)?,
        arg1: match arg1 {
            Some(field) => offset(&enter, &enter_event, field)?,
            None => SyscallLayout::ABSENT,
        },
        sig: offset(&enter, &enter_event, sig)?,
        ret: offset(&exit, &exit_event, RET_FIELD)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Copied from /sys/kernel/tracing/events/syscalls/*/format on Linux 6.18 x86_64.
    const ENTER_KILL: &str = "name: sys_enter_kill
ID: 251
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:pid_t pid;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int sig;\toffset:24;\tsize:8;\tsigned:0;

print fmt: \"pid: 0x%08lx, sig: 0x%08lx\", ((unsigned long)(REC->pid)), ((unsigned long)(REC->sig))
";

    const EXIT_KILL: &str = "name: sys_exit_kill
ID: 250
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;

print fmt: \"0x%lx\", REC->ret
";

    const ENTER_TGKILL: &str = "name: sys_enter_tgkill
ID: 247
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:pid_t tgid;\toffset:16;\tsize:8;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int sig;\toffset:32;\tsize:8;\tsigned:0;

print fmt: \"tgid: 0x%08lx, pid: 0x%08lx, sig: 0x%08lx\", ((unsigned long)(REC->tgid)), ((unsigned long)(REC->pid)), ((unsigned long)(REC->sig))
";

    const ENTER_PIDFD_SEND_SIGNAL: &str = "name: sys_enter_pidfd_send_signal
ID: 249
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int pidfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int sig;\toffset:24;\tsize:8;\tsigned:0;
\tfield:siginfo_t * info;\toffset:32;\tsize:8;\tsigned:0;
\tfield:unsigned int flags;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"pidfd: 0x%08lx, sig: 0x%08lx, info: 0x%08lx, flags: 0x%08lx\", ((unsigned long)(REC->pidfd)), ((unsigned long)(REC->sig)), ((unsigned long)(REC->info)), ((unsigned long)(REC->flags))
";

    const SIGNAL_GENERATE: &str = "name: signal_generate
ID: 261
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int sig;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int errno;\toffset:12;\tsize:4;\tsigned:1;
\tfield:int code;\toffset:16;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:36;\tsize:4;\tsigned:1;
\tfield:int group;\toffset:40;\tsize:4;\tsigned:1;
\tfield:int result;\toffset:44;\tsize:4;\tsigned:1;

print fmt: \"sig=%d errno=%d code=%d comm=%s pid=%d grp=%d res=%d\", REC->sig, REC->errno, REC->code, REC->comm, REC->pid, REC->group, REC->result
";

    const SCHED_PROCESS_EXEC: &str = "name: sched_process_exec
ID: 365
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
\tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

print fmt: \"filename=%s pid=%d old_pid=%d\", __get_str(filename), REC->pid, REC->old_pid
";

    fn field(name: &str, offset: u32, size: u32, signed: bool) -> Field {
        Field {
            name: name.to_owned(),
            offset,
            size,
            signed,
        }
    }

    /// A scratch directory laid out like a tracefs root, removed when dropped.
    struct FakeRoot(PathBuf);

    impl FakeRoot {
        fn new() -> FakeRoot {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sigwho-tracefs-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(dir.join("events")).expect("create scratch dir");
            FakeRoot(dir)
        }

        fn add(&self, group: &str, event: &str, text: &str) {
            let dir = self.0.join("events").join(group).join(event);
            std::fs::create_dir_all(&dir).expect("create event dir");
            std::fs::write(dir.join("format"), text).expect("write format");
        }

        /// All kill-family tracepoints, made from the real kill and tgkill formats.
        fn with_all_syscalls() -> FakeRoot {
            let root = FakeRoot::new();
            for (_, name) in SYSCALLS {
                let enter = match name {
                    "tgkill" | "rt_tgsigqueueinfo" => ENTER_TGKILL,
                    "pidfd_send_signal" => ENTER_PIDFD_SEND_SIGNAL,
                    _ => ENTER_KILL,
                };
                root.add("syscalls", &format!("sys_enter_{name}"), enter);
                root.add("syscalls", &format!("sys_exit_{name}"), EXIT_KILL);
            }
            root
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn syscalls_table_matches_the_constants() {
        let mut indexes: Vec<u32> = SYSCALLS.iter().map(|(which, _)| *which).collect();
        indexes.sort_unstable();
        let expected: Vec<u32> = (1..=u32::try_from(syscall::COUNT).unwrap()).collect();
        assert_eq!(indexes, expected);
        assert_eq!(
            SYSCALLS[3],
            (syscall::PIDFD_SEND_SIGNAL, "pidfd_send_signal")
        );
        assert_eq!(
            SYSCALLS[5],
            (syscall::RT_TGSIGQUEUEINFO, "rt_tgsigqueueinfo")
        );
    }

    #[test]
    fn parses_a_syscall_enter_format() {
        let format = parse_format(ENTER_KILL).expect("valid format");
        assert_eq!(format.id, Some(251));
        assert_eq!(format.fields.len(), 7);
        assert_eq!(format.fields[0], field("common_type", 0, 2, false));
        assert_eq!(format.fields[3], field("common_pid", 4, 4, true));
        assert_eq!(
            format.field("__syscall_nr"),
            Some(&field("__syscall_nr", 8, 4, true))
        );
        assert_eq!(format.field("pid"), Some(&field("pid", 16, 8, false)));
        assert_eq!(format.field("sig"), Some(&field("sig", 24, 8, false)));
        assert_eq!(format.field("nope"), None);
    }

    #[test]
    fn parses_the_example_from_the_docs() {
        // Older kernels lack common_flags and common_preempt_count.
        let text = "name: sys_enter_kill\nID: 187\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:pid_t pid;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:int sig;\toffset:24;\tsize:8;\tsigned:0;\n\n\
            print fmt: \"pid: 0x%08lx, sig: 0x%08lx\", ((unsigned long)(REC->pid)), ((unsigned long)(REC->sig))\n";
        let format = parse_format(text).expect("valid format");
        assert_eq!(format.id, Some(187));
        assert_eq!(format.fields.len(), 5);
        assert_eq!(format.field("sig").map(|f| f.offset), Some(24));
    }

    #[test]
    fn parses_pointer_array_and_data_loc_declarations() {
        let pidfd = parse_format(ENTER_PIDFD_SEND_SIGNAL).expect("valid format");
        assert_eq!(pidfd.field("info"), Some(&field("info", 32, 8, false)));
        assert_eq!(pidfd.field("flags"), Some(&field("flags", 40, 8, false)));

        let generate = parse_format(SIGNAL_GENERATE).expect("valid format");
        assert_eq!(generate.id, Some(261));
        assert_eq!(generate.field("comm"), Some(&field("comm", 20, 16, false)));
        assert_eq!(
            generate.field("result"),
            Some(&field("result", 44, 4, true))
        );

        let exec = parse_format(SCHED_PROCESS_EXEC).expect("valid format");
        assert_eq!(
            exec.field("filename"),
            Some(&field("filename", 8, 4, false))
        );
        assert_eq!(exec.field("old_pid"), Some(&field("old_pid", 16, 4, true)));
    }

    #[test]
    fn field_names_are_the_last_identifier() {
        assert_eq!(field_name("int sig"), Some("sig"));
        assert_eq!(field_name("unsigned long long  ts "), Some("ts"));
        assert_eq!(field_name("char comm[16]"), Some("comm"));
        assert_eq!(field_name("char comm [TASK_COMM_LEN]"), Some("comm"));
        assert_eq!(field_name("u8 grid[4][8]"), Some("grid"));
        assert_eq!(field_name("__data_loc char[] name"), Some("name"));
        assert_eq!(field_name("__rel_loc u8[] buf"), Some("buf"));
        assert_eq!(field_name("siginfo_t * info"), Some("info"));
        assert_eq!(field_name("const char *filename"), Some("filename"));
        assert_eq!(field_name("pid"), Some("pid"));
        assert_eq!(field_name(""), None);
        assert_eq!(field_name("int *"), None);
        assert_eq!(field_name("char x[16"), None);
        assert_eq!(field_name("int 3d"), None);
        assert_eq!(field_name("]]]"), None);
        assert_eq!(field_name("[[]]"), None);
        assert_eq!(field_name("é"), None);
    }

    #[test]
    fn ignores_unknown_keys_and_lines() {
        let text = "name: x\nID: 7\nnew_key: whatever\nformat:\n\
            \tfield:int a;\toffset:8;\tsize:4;\tsigned:1;\tfuture:abc;\n\
            \tfield:int b;\toffset:12;\tsize:4;\n\
            \tfield:int c; offset: 16 ; size: 4 ; signed: 0 \n\
            print fmt: \"field:garbage\"\n\
            \tfield:not parsed after print fmt\n";
        let format = parse_format(text).expect("valid format");
        assert_eq!(format.id, Some(7));
        assert_eq!(
            format.fields,
            vec![
                field("a", 8, 4, true),
                field("b", 12, 4, false),
                field("c", 16, 4, false),
            ]
        );
    }

    #[test]
    fn format_without_id_or_fields() {
        let format = parse_format("name: x\nformat:\n\nprint fmt: \"\"\n").expect("valid");
        assert_eq!(format, Format::default());
    }

    #[test]
    fn malformed_field_lines_name_the_line() {
        let cases = [
            (
                "\tfield:int a;\toffset:x;\tsize:4;\tsigned:1;",
                "offset is not a number",
            ),
            (
                "\tfield:int a;\toffset:8;\tsize:-4;\tsigned:1;",
                "size is not a number",
            ),
            ("\tfield:int a;\tsize:4;\tsigned:1;", "missing offset"),
            ("\tfield:int a;\toffset:8;\tsigned:1;", "missing size"),
            (
                "\tfield:int a;\toffset:8;\tsize:4;\tsigned:2;",
                "signed is neither 0 nor 1",
            ),
            (
                "\tfield:int a;\toffset:8;\tsize:4;\tgarbage;",
                "expected key:value",
            ),
            ("\tfield:int a", "missing offset"),
            ("\tfield:;\toffset:8;\tsize:4;", "no field name"),
            ("\tfield:int *;\toffset:8;\tsize:4;", "no field name"),
            (
                "\tfield:int a;\toffset:99999999999;\tsize:4;",
                "offset is not a number",
            ),
        ];
        for (line, reason) in cases {
            let text = format!("name: x\nID: 1\nformat:\n{line}\n");
            match parse_format(&text) {
                Err(TracefsError::Malformed {
                    line: 4,
                    text,
                    reason: r,
                }) => {
                    assert_eq!(text, line);
                    assert!(r.contains(reason), "{line}: {r}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_id() {
        let err = parse_format("name: x\nID: abc\nformat:\n").unwrap_err();
        assert!(
            matches!(err, TracefsError::Malformed { line: 2, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            r#"malformed format line 2 (ID is not a number): "ID: abc""#
        );
    }

    #[test]
    fn text_without_a_format_section_is_rejected() {
        for text in ["", "hello", "name: x\nID: 3\n", "\u{0}\u{1}"] {
            assert!(
                matches!(parse_format(text), Err(TracefsError::NotAFormat)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_are_one_line() {
        let err = parse_format("format:\n\tfield:int a;\toffset:8;\tsize:x;\n").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(
            text,
            r#"malformed format line 2 (size is not a number): "\tfield:int a;\toffset:8;\tsize:x;""#
        );
    }

    #[test]
    fn mount_target_is_the_tracefs_root() {
        // mount_tracefs spells the path as a C string; keep the two in step.
        assert_eq!(c"/sys/kernel/tracing".to_str(), Ok(TRACEFS_ROOT));
    }

    #[test]
    fn mount_errors_explain_themselves() {
        let mount = |errno| TracefsError::Mount {
            path: PathBuf::from(TRACEFS_ROOT),
            source: io::Error::from_raw_os_error(errno),
        };
        assert_eq!(
            mount(libc::EPERM).to_string(),
            "cannot mount tracefs at /sys/kernel/tracing: Operation not permitted (sigwho needs root)"
        );
        assert_eq!(
            mount(libc::ENODEV).to_string(),
            "cannot mount tracefs at /sys/kernel/tracing: No such device (kernel built without tracefs)"
        );
        assert_eq!(
            mount(libc::EIO).to_string(),
            "cannot mount tracefs at /sys/kernel/tracing: Input/output error"
        );
        assert_eq!(
            TracefsError::NoEvents(PathBuf::from(TRACEFS_ROOT)).to_string(),
            "tracefs at /sys/kernel/tracing has no events directory (kernel built without event tracing?)"
        );
    }

    #[test]
    fn os_text_keeps_non_os_messages() {
        let custom = io::Error::other("custom (os error 5)");
        assert_eq!(os_text(&custom), "custom (os error 5)");
        assert_eq!(
            os_text(&io::Error::from_raw_os_error(libc::ENOENT)),
            "No such file or directory"
        );
    }

    #[test]
    fn finds_the_first_root_with_events() {
        let without = FakeRoot::new();
        std::fs::remove_dir(without.0.join("events")).expect("remove events");
        let with = FakeRoot::new();
        let also = FakeRoot::new();
        let missing = with.0.join("does-not-exist");
        assert_eq!(
            find_root(&[&without.0, &with.0, &also.0]),
            Some(with.0.clone())
        );
        assert_eq!(find_root(&[&missing, &also.0]), Some(also.0.clone()));
        assert_eq!(find_root(&[&without.0, &missing]), None);
        assert_eq!(find_root(&[]), None);
    }

    #[test]
    fn events_must_be_a_directory() {
        let root = FakeRoot::new();
        std::fs::remove_dir(root.0.join("events")).expect("remove events");
        std::fs::write(root.0.join("events"), "").expect("write file");
        assert_eq!(find_root(&[&root.0]), None);
    }

    #[test]
    fn reads_formats_from_a_root() {
        let root = FakeRoot::new();
        root.add("syscalls", "sys_enter_kill", ENTER_KILL);
        let format = read_format(&root.0, "syscalls", "sys_enter_kill").expect("readable");
        assert_eq!(format.id, Some(251));
    }

    #[test]
    fn missing_format_is_its_own_error() {
        let root = FakeRoot::new();
        let err = read_format(&root.0, "syscalls", "sys_enter_nope").unwrap_err();
        assert!(
            matches!(&err, TracefsError::Missing { group, event }
                if group == "syscalls" && event == "sys_enter_nope"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "syscalls/sys_enter_nope not found");
    }

    #[test]
    fn unreadable_format_is_a_read_error() {
        let root = FakeRoot::new();
        // A directory where the file should be: reading fails with EISDIR.
        std::fs::create_dir_all(root.0.join("events/g/e/format")).expect("mkdir");
        let err = read_format(&root.0, "g", "e").unwrap_err();
        assert!(matches!(err, TracefsError::Read { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("cannot read "), "{text}");
        assert!(
            text.ends_with("/events/g/e/format: Is a directory"),
            "{text}"
        );
    }

    #[test]
    fn malformed_file_names_the_path() {
        let root = FakeRoot::new();
        root.add("g", "e", "format:\n\tfield:int a;\n");
        let err = read_format(&root.0, "g", "e").unwrap_err();
        let text = err.to_string();
        let path = root.0.join("events/g/e/format");
        assert_eq!(
            text,
            format!(
                "{}: malformed format line 2 (missing offset): \"\\tfield:int a;\"",
                path.display()
            )
        );
        assert!(matches!(err, TracefsError::BadFile { .. }));
    }

    #[test]
    fn layouts_from_complete_formats() {
        let root = FakeRoot::with_all_syscalls();
        let (layouts, problems) = syscall_layouts(&root.0);
        assert_eq!(problems, Vec::<String>::new());
        let absent = SyscallLayout::ABSENT;
        let kill_like = SyscallLayout {
            arg0: 16,
            arg1: absent,
            sig: 24,
            ret: 16,
        };
        let tgkill_like = SyscallLayout {
            arg0: 16,
            arg1: 24,
            sig: 32,
            ret: 16,
        };
        let at = |which: u32| layouts.0[usize::try_from(which - 1).unwrap()];
        assert_eq!(at(syscall::KILL), kill_like);
        assert_eq!(at(syscall::TKILL), kill_like);
        assert_eq!(at(syscall::TGKILL), tgkill_like);
        assert_eq!(at(syscall::PIDFD_SEND_SIGNAL), kill_like);
        assert_eq!(at(syscall::RT_SIGQUEUEINFO), kill_like);
        assert_eq!(at(syscall::RT_TGSIGQUEUEINFO), tgkill_like);
    }

    #[test]
    fn missing_tracepoints_are_reported_and_left_absent() {
        let root = FakeRoot::with_all_syscalls();
        std::fs::remove_dir_all(root.0.join("events/syscalls/sys_enter_pidfd_send_signal"))
            .expect("remove");
        std::fs::remove_dir_all(root.0.join("events/syscalls/sys_exit_tkill")).expect("remove");
        let (layouts, problems) = syscall_layouts(&root.0);
        assert_eq!(
            problems,
            vec![
                "tkill: syscalls/sys_exit_tkill not found".to_owned(),
                "pidfd_send_signal: syscalls/sys_enter_pidfd_send_signal not found".to_owned(),
            ]
        );
        assert_eq!(
            layouts.0[usize::try_from(syscall::TKILL - 1).unwrap()],
            NO_LAYOUT
        );
        assert_eq!(
            layouts.0[usize::try_from(syscall::PIDFD_SEND_SIGNAL - 1).unwrap()],
            NO_LAYOUT
        );
        assert_eq!(
            layouts.0[usize::try_from(syscall::KILL - 1).unwrap()].sig,
            24
        );
    }

    #[test]
    fn missing_or_odd_fields_are_reported() {
        let root = FakeRoot::with_all_syscalls();
        // tgkill without its second argument.
        root.add("syscalls", "sys_enter_tgkill", ENTER_KILL);
        // kill's sig declared 4 bytes wide.
        root.add(
            "syscalls",
            "sys_enter_kill",
            &ENTER_KILL.replace("sig;\toffset:24;\tsize:8", "sig;\toffset:24;\tsize:4"),
        );
        // rt_sigqueueinfo's exit record without ret.
        root.add(
            "syscalls",
            "sys_exit_rt_sigqueueinfo",
            &EXIT_KILL.replace("long ret;", "long retval;"),
        );
        // A garbled file.
        root.add("syscalls", "sys_exit_rt_tgsigqueueinfo", "garbage");
        let (layouts, problems) = syscall_layouts(&root.0);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert_eq!(
            problems[0],
            r#"kill: syscalls/sys_enter_kill field "sig" is 4 bytes, expected 8"#
        );
        assert_eq!(
            problems[1],
            r#"tgkill: syscalls/sys_enter_tgkill has no field "tgid""#
        );
        assert_eq!(
            problems[2],
            r#"rt_sigqueueinfo: syscalls/sys_exit_rt_sigqueueinfo has no field "ret""#
        );
        assert!(
            problems[3].starts_with("rt_tgsigqueueinfo: ")
                && problems[3].ends_with(r#"not a tracepoint format (no "format:" line)"#),
            "{}",
            problems[3]
        );
        for which in [
            syscall::KILL,
            syscall::TGKILL,
            syscall::RT_SIGQUEUEINFO,
            syscall::RT_TGSIGQUEUEINFO,
        ] {
            assert_eq!(layouts.0[usize::try_from(which - 1).unwrap()], NO_LAYOUT);
        }
        assert_eq!(
            layouts.0[usize::try_from(syscall::TKILL - 1).unwrap()].sig,
            24
        );
    }

    #[test]
    fn empty_root_reports_every_syscall() {
        let root = FakeRoot::new();
        let (layouts, problems) = syscall_layouts(&root.0);
        assert_eq!(problems.len(), SYSCALLS.len());
        assert_eq!(problems[0], "kill: syscalls/sys_enter_kill not found");
        assert!(layouts.0.iter().all(|layout| *layout == NO_LAYOUT));
    }

    /// On a machine with tracefs readable (root, as sigwho runs), the real format files
    /// must describe every kill-family syscall.
    #[test]
    fn real_tracefs_if_available() {
        let root = Path::new(TRACEFS_ROOT);
        if std::fs::read_to_string(root.join("events/syscalls/sys_enter_kill/format")).is_err() {
            eprintln!("skipped: {TRACEFS_ROOT} not readable here");
            return;
        }
        assert_eq!(ensure_mounted().ok().as_deref(), Some(root));
        let (layouts, problems) = syscall_layouts(root);
        assert_eq!(problems, Vec::<String>::new());
        for layout in layouts.0 {
            assert_ne!(layout.sig, SyscallLayout::ABSENT);
            assert_ne!(layout.arg0, SyscallLayout::ABSENT);
            assert_ne!(layout.ret, SyscallLayout::ABSENT);
        }
    }
}
