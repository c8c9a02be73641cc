//! Names for signal numbers, `si_code` values and errnos, with Linux's generic numbering
//! (the one `x86_64` and aarch64 share), plus parsing of signal names typed by a user.

use serde::Serialize;
use thiserror::Error;

/// Highest signal number on Linux (`_NSIG`).
const MAX_SIGNAL: i32 = 64;
/// First real-time signal as glibc and `kill -l` count them: glibc keeps 32 and 33 for
/// itself (thread cancellation, setxid), so user programs see SIGRTMIN as 34.
const RTMIN: i32 = 34;
const RTMAX: i32 = MAX_SIGNAL;

/// Classic signals, indexed by number minus one.
const CLASSIC: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// Other names for classic signals that people type (and old programs print).
const ALIASES: [(&str, i32); 3] = [("IOT", 6), ("POLL", 29), ("CLD", 17)];

const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;
const SIGCHLD: i32 = 17;
const SIGIO: i32 = 29;
const SIGSYS: i32 = 31;

/// The conventional name of a signal ("SIGTERM", "SIGRTMIN+3"), or `None` if `signo` is
/// not a Linux signal number.
#[must_use]
pub fn signal_name(signo: i32) -> Option<String> {
    match signo {
        1..=31 => CLASSIC
            .get(usize::try_from(signo - 1).ok()?)
            .map(|name| (*name).to_owned()),
        32 | 33 => Some(format!("SIG{signo}")),
        RTMIN => Some("SIGRTMIN".to_owned()),
        RTMAX => Some("SIGRTMAX".to_owned()),
        // `kill -l` names each real-time signal from the nearer end of the range.
        35..=49 => Some(format!("SIGRTMIN+{}", signo - RTMIN)),
        50..=63 => Some(format!("SIGRTMAX-{}", RTMAX - signo)),
        _ => None,
    }
}

/// The signal's name, or "signal N" for numbers Linux does not use.
#[must_use]
pub fn signal_label(signo: i32) -> String {
    signal_name(signo).unwrap_or_else(|| format!("signal {signo}"))
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignalParseError {
    #[error("unknown signal {0:?} (expected a name like TERM or SIGTERM, or a number 1-64)")]
    Unknown(String),
    #[error("signal number {0} is out of range (expected 1-64)")]
    OutOfRange(String),
}

/// Parses a signal as users write it: a number ("15"), a name with or without the SIG
/// prefix in any case ("TERM", "sigterm"), a real-time offset ("RTMIN+3", "SIGRTMAX-1"),
/// or a traditional alias ("IOT", "POLL", "CLD").
///
/// # Errors
///
/// When the text names no signal.
pub fn parse_signal(text: &str) -> Result<i32, SignalParseError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return parse_number(trimmed).ok_or_else(|| SignalParseError::OutOfRange(trimmed.into()));
    }
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    parse_name(bare).ok_or_else(|| SignalParseError::Unknown(text.to_owned()))
}

fn parse_number(digits: &str) -> Option<i32> {
    // Overlong input fails to parse, which is out of range too.
    let n: i32 = digits.parse().ok()?;
    (1..=MAX_SIGNAL).contains(&n).then_some(n)
}

/// `bare` is upper-case with any SIG prefix removed.
fn parse_name(bare: &str) -> Option<i32> {
    if let Some(i) = CLASSIC.iter().position(|name| &name[3..] == bare) {
        return i32::try_from(i + 1).ok();
    }
    if let Some(&(_, n)) = ALIASES.iter().find(|(alias, _)| *alias == bare) {
        return Some(n);
    }
    // "SIG32".."SIG64" as glibc's strsignal and `signal_name` spell unnamed numbers.
    if !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_digit()) {
        return parse_number(bare);
    }
    parse_realtime(bare)
}

fn parse_realtime(bare: &str) -> Option<i32> {
    let (anchor, rest, sign) = if let Some(rest) = bare.strip_prefix("RTMIN") {
        (RTMIN, rest, 1)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        (RTMAX, rest, -1)
    } else {
        return None;
    };
    let offset = match (rest.chars().next(), sign) {
        (None, _) => 0,
        (Some('+'), 1) | (Some('-'), -1) => {
            let digits = &rest[1..];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse::<i32>().ok()?
        }
        _ => return None,
    };
    let signo = anchor.checked_add(sign * offset)?;
    (RTMIN..=RTMAX).contains(&signo).then_some(signo)
}

/// `si_code` values any signal can carry (include/uapi/asm-generic/siginfo.h).
fn generic_code(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "SI_USER",
        0x80 => "SI_KERNEL",
        -1 => "SI_QUEUE",
        -2 => "SI_TIMER",
        -3 => "SI_MESGQ",
        -4 => "SI_ASYNCIO",
        -5 => "SI_SIGIO",
        -6 => "SI_TKILL",
        -7 => "SI_DETHREAD",
        -60 => "SI_ASYNCNL",
        _ => return None,
    })
}

// Positive si_codes, indexed by code minus one; their meaning depends on the signal.
// ILL 10 and 11 (__ILL_BREAK, __ILL_BNDMOD) existed only on ia64, so they stay unnamed.
const ILL_CODES: &[&str] = &[
    "ILL_ILLOPC",
    "ILL_ILLOPN",
    "ILL_ILLADR",
    "ILL_ILLTRP",
    "ILL_PRVOPC",
    "ILL_PRVREG",
    "ILL_COPROC",
    "ILL_BADSTK",
    "ILL_BADIADDR",
];
const SEGV_CODES: &[&str] = &[
    "SEGV_MAPERR",
    "SEGV_ACCERR",
    "SEGV_BNDERR",
    "SEGV_PKUERR",
    "SEGV_ACCADI",
    "SEGV_ADIDERR",
    "SEGV_ADIPERR",
    "SEGV_MTEAERR",
    "SEGV_MTESERR",
    // Shadow-stack violation, added in Linux 6.6 (newer than some installed headers).
    "SEGV_CPERR",
];
const BUS_CODES: &[&str] = &[
    "BUS_ADRALN",
    "BUS_ADRERR",
    "BUS_OBJERR",
    "BUS_MCEERR_AR",
    "BUS_MCEERR_AO",
];
const TRAP_CODES: &[&str] = &[
    "TRAP_BRKPT",
    "TRAP_TRACE",
    "TRAP_BRANCH",
    "TRAP_HWBKPT",
    "TRAP_UNK",
    "TRAP_PERF",
];
const CLD_CODES: &[&str] = &[
    "CLD_EXITED",
    "CLD_KILLED",
    "CLD_DUMPED",
    "CLD_TRAPPED",
    "CLD_STOPPED",
    "CLD_CONTINUED",
];
const POLL_CODES: &[&str] = &[
    "POLL_IN", "POLL_OUT", "POLL_MSG", "POLL_ERR", "POLL_PRI", "POLL_HUP",
];
const SYS_CODES: &[&str] = &["SYS_SECCOMP", "SYS_USER_DISPATCH"];

fn fpe_code(code: i32) -> Option<&'static str> {
    const FPE_CODES: &[&str] = &[
        "FPE_INTDIV",
        "FPE_INTOVF",
        "FPE_FLTDIV",
        "FPE_FLTOVF",
        "FPE_FLTUND",
        "FPE_FLTRES",
        "FPE_FLTINV",
        "FPE_FLTSUB",
    ];
    match code {
        // 9-13 were arch-specific (__FPE_DECOVF & co.) and are gone upstream.
        14 => Some("FPE_FLTUNK"),
        15 => Some("FPE_CONDTRAP"),
        _ => indexed(FPE_CODES, code),
    }
}

fn indexed(table: &[&'static str], code: i32) -> Option<&'static str> {
    let index = usize::try_from(code.checked_sub(1)?).ok()?;
    table.get(index).copied()
}

/// The symbolic name of a `si_code` ("`SI_USER`", "`SEGV_MAPERR`", ...), or "code N".
#[must_use]
pub fn si_code_name(signo: i32, code: i32) -> String {
    let name = generic_code(code).or_else(|| match signo {
        SIGILL => indexed(ILL_CODES, code),
        SIGFPE => fpe_code(code),
        SIGSEGV => indexed(SEGV_CODES, code),
        SIGBUS => indexed(BUS_CODES, code),
        SIGTRAP => indexed(TRAP_CODES, code),
        SIGCHLD => indexed(CLD_CODES, code),
        SIGIO => indexed(POLL_CODES, code),
        SIGSYS => indexed(SYS_CODES, code),
        _ => None,
    });
    match name {
        Some(name) => name.to_owned(),
        None => format!("code {code}"),
    }
}

/// The errno names of include/uapi/asm-generic/errno{-base,}.h (41 and 58 are unused
/// there: EWOULDBLOCK and EDEADLOCK are aliases), then kernel-internal ones from
/// include/linux/errno.h. A `sys_exit_*` tracepoint sees a syscall's return value before
/// signal handling turns those into EINTR or a restart, so they can show up in traced
/// returns even though userspace never gets them.
#[expect(
    clippy::too_many_lines,
    reason = "one table, every errno name in number order: splitting it would hide gaps"
)]
fn errno_symbol(errno: u32) -> Option<&'static str> {
    Some(match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        9 => "EBADF",
        10 => "ECHILD",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        15 => "ENOTBLK",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        25 => "ENOTTY",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        29 => "ESPIPE",
        30 => "EROFS",
        31 => "EMLINK",
        32 => "EPIPE",
        33 => "EDOM",
        34 => "ERANGE",
        35 => "EDEADLK",
        36 => "ENAMETOOLONG",
        37 => "ENOLCK",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        42 => "ENOMSG",
        43 => "EIDRM",
        44 => "ECHRNG",
        45 => "EL2NSYNC",
        46 => "EL3HLT",
        47 => "EL3RST",
        48 => "ELNRNG",
        49 => "EUNATCH",
        50 => "ENOCSI",
        51 => "EL2HLT",
        52 => "EBADE",
        53 => "EBADR",
        54 => "EXFULL",
        55 => "ENOANO",
        56 => "EBADRQC",
        57 => "EBADSLT",
        59 => "EBFONT",
        60 => "ENOSTR",
        61 => "ENODATA",
        62 => "ETIME",
        63 => "ENOSR",
        64 => "ENONET",
        65 => "ENOPKG",
        66 => "EREMOTE",
        67 => "ENOLINK",
        68 => "EADV",
        69 => "ESRMNT",
        70 => "ECOMM",
        71 => "EPROTO",
        72 => "EMULTIHOP",
        73 => "EDOTDOT",
        74 => "EBADMSG",
        75 => "EOVERFLOW",
        76 => "ENOTUNIQ",
        77 => "EBADFD",
        78 => "EREMCHG",
        79 => "ELIBACC",
        80 => "ELIBBAD",
        81 => "ELIBSCN",
        82 => "ELIBMAX",
        83 => "ELIBEXEC",
        84 => "EILSEQ",
        85 => "ERESTART",
        86 => "ESTRPIPE",
        87 => "EUSERS",
        88 => "ENOTSOCK",
        89 => "EDESTADDRREQ",
        90 => "EMSGSIZE",
        91 => "EPROTOTYPE",
        92 => "ENOPROTOOPT",
        93 => "EPROTONOSUPPORT",
        94 => "ESOCKTNOSUPPORT",
        95 => "EOPNOTSUPP",
        96 => "EPFNOSUPPORT",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        102 => "ENETRESET",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        106 => "EISCONN",
        107 => "ENOTCONN",
        108 => "ESHUTDOWN",
        109 => "ETOOMANYREFS",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        112 => "EHOSTDOWN",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        116 => "ESTALE",
        117 => "EUCLEAN",
        118 => "ENOTNAM",
        119 => "ENAVAIL",
        120 => "EISNAM",
        121 => "EREMOTEIO",
        122 => "EDQUOT",
        123 => "ENOMEDIUM",
        124 => "EMEDIUMTYPE",
        125 => "ECANCELED",
        126 => "ENOKEY",
        127 => "EKEYEXPIRED",
        128 => "EKEYREVOKED",
        129 => "EKEYREJECTED",
        130 => "EOWNERDEAD",
        131 => "ENOTRECOVERABLE",
        132 => "ERFKILL",
        133 => "EHWPOISON",
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        515 => "ENOIOCTLCMD",
        516 => "ERESTART_RESTARTBLOCK",
        _ => return None,
    })
}

/// The symbolic name of an errno ("EPERM"), or "errno N". Negative values (as syscalls
/// return them) are accepted.
#[must_use]
pub fn errno_name(errno: i32) -> String {
    let n = errno.unsigned_abs();
    match errno_symbol(n) {
        Some(name) => name.to_owned(),
        None => format!("errno {n}"),
    }
}

/// What happens when a signal arrives and the process neither handles nor ignores it
/// (signal(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

impl DefaultAction {
    /// Short lowercase wording for display.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultAction::Terminate => "terminate",
            DefaultAction::CoreDump => "core dump",
            DefaultAction::Ignore => "ignore",
            DefaultAction::Stop => "stop",
            DefaultAction::Continue => "continue",
        }
    }
}

impl std::fmt::Display for DefaultAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default disposition of `signo`. Numbers that are not signals get `Terminate`,
/// which is what the kernel does for any signal outside its special sets (real-time
/// signals included).
#[must_use]
pub fn default_action(signo: i32) -> DefaultAction {
    match signo {
        // SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGSEGV SIGXCPU SIGXFSZ SIGSYS
        3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31 => DefaultAction::CoreDump,
        // SIGCHLD SIGURG SIGWINCH
        17 | 23 | 28 => DefaultAction::Ignore,
        // SIGSTOP SIGTSTP SIGTTIN SIGTTOU
        19..=22 => DefaultAction::Stop,
        // SIGCONT
        18 => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_names_match_libc() {
        let expected = [
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGQUIT, "SIGQUIT"),
            (libc::SIGILL, "SIGILL"),
            (libc::SIGTRAP, "SIGTRAP"),
            (libc::SIGABRT, "SIGABRT"),
            (libc::SIGBUS, "SIGBUS"),
            (libc::SIGFPE, "SIGFPE"),
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGUSR1, "SIGUSR1"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGALRM, "SIGALRM"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGCONT, "SIGCONT"),
            (libc::SIGSTOP, "SIGSTOP"),
            (libc::SIGTSTP, "SIGTSTP"),
            (libc::SIGTTIN, "SIGTTIN"),
            (libc::SIGTTOU, "SIGTTOU"),
            (libc::SIGURG, "SIGURG"),
            (libc::SIGXCPU, "SIGXCPU"),
            (libc::SIGXFSZ, "SIGXFSZ"),
            (libc::SIGVTALRM, "SIGVTALRM"),
            (libc::SIGPROF, "SIGPROF"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGIO, "SIGIO"),
            (libc::SIGPWR, "SIGPWR"),
            (libc::SIGSYS, "SIGSYS"),
        ];
        assert_eq!(expected.len(), 31);
        for (signo, name) in expected {
            assert_eq!(signal_name(signo).as_deref(), Some(name), "signal {signo}");
        }
        assert_eq!(libc::SIGPOLL, 29);
        assert_eq!(libc::SIGIOT, 6);
    }

    #[test]
    fn module_constants_match_libc() {
        assert_eq!(SIGILL, libc::SIGILL);
        assert_eq!(SIGTRAP, libc::SIGTRAP);
        assert_eq!(SIGBUS, libc::SIGBUS);
        assert_eq!(SIGFPE, libc::SIGFPE);
        assert_eq!(SIGSEGV, libc::SIGSEGV);
        assert_eq!(SIGCHLD, libc::SIGCHLD);
        assert_eq!(SIGIO, libc::SIGIO);
        assert_eq!(SIGSYS, libc::SIGSYS);
    }

    #[test]
    fn realtime_names_follow_kill_l() {
        assert_eq!(signal_name(32).as_deref(), Some("SIG32"));
        assert_eq!(signal_name(33).as_deref(), Some("SIG33"));
        assert_eq!(signal_name(34).as_deref(), Some("SIGRTMIN"));
        assert_eq!(signal_name(35).as_deref(), Some("SIGRTMIN+1"));
        assert_eq!(signal_name(49).as_deref(), Some("SIGRTMIN+15"));
        assert_eq!(signal_name(50).as_deref(), Some("SIGRTMAX-14"));
        assert_eq!(signal_name(63).as_deref(), Some("SIGRTMAX-1"));
        assert_eq!(signal_name(64).as_deref(), Some("SIGRTMAX"));
    }

    #[test]
    fn out_of_range_signals_have_no_name() {
        for signo in [0, -1, 65, 100, i32::MIN, i32::MAX] {
            assert_eq!(signal_name(signo), None, "signal {signo}");
        }
    }

    #[test]
    fn labels_fall_back_to_numbers() {
        assert_eq!(signal_label(9), "SIGKILL");
        assert_eq!(signal_label(0), "signal 0");
        assert_eq!(signal_label(-3), "signal -3");
        assert_eq!(signal_label(65), "signal 65");
    }

    #[test]
    fn every_name_parses_back_to_its_number() {
        for signo in 1..=64 {
            let name = signal_name(signo).expect("all of 1..=64 are named");
            assert_eq!(parse_signal(&name), Ok(signo), "{name}");
            let bare = name.strip_prefix("SIG").expect("names start with SIG");
            assert_eq!(parse_signal(bare), Ok(signo), "{bare}");
            assert_eq!(parse_signal(&name.to_lowercase()), Ok(signo), "{name}");
            assert_eq!(parse_signal(&signo.to_string()), Ok(signo));
        }
    }

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("sigterm"), Ok(15));
        assert_eq!(parse_signal("Term"), Ok(15));
        assert_eq!(parse_signal("15"), Ok(15));
        assert_eq!(parse_signal(" 9 "), Ok(9));
        assert_eq!(parse_signal("RTMIN+3"), Ok(37));
        assert_eq!(parse_signal("SIGRTMAX-1"), Ok(63));
        assert_eq!(parse_signal("rtmin"), Ok(34));
        assert_eq!(parse_signal("RTMAX"), Ok(64));
        assert_eq!(parse_signal("RTMIN+0"), Ok(34));
        assert_eq!(parse_signal("RTMIN+30"), Ok(64));
        assert_eq!(parse_signal("RTMAX-30"), Ok(34));
        assert_eq!(parse_signal("SIG33"), Ok(33));
    }

    #[test]
    fn parses_aliases() {
        assert_eq!(parse_signal("IOT"), Ok(6));
        assert_eq!(parse_signal("SIGIOT"), Ok(6));
        assert_eq!(parse_signal("POLL"), Ok(29));
        assert_eq!(parse_signal("SIGPOLL"), Ok(29));
        assert_eq!(parse_signal("CLD"), Ok(17));
        assert_eq!(parse_signal("sigcld"), Ok(17));
    }

    #[test]
    fn rejects_bad_numbers() {
        for text in ["0", "65", "100", "99999999999999999999"] {
            assert_eq!(
                parse_signal(text),
                Err(SignalParseError::OutOfRange(text.into())),
                "{text}"
            );
        }
        // A sign is not part of a signal number; "-9" is kill(1) option syntax.
        assert!(matches!(
            parse_signal("-9"),
            Err(SignalParseError::Unknown(_))
        ));
        assert!(matches!(
            parse_signal("+9"),
            Err(SignalParseError::Unknown(_))
        ));
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            " ",
            "FOO",
            "SIG",
            "SIGSIGTERM",
            "TERM15",
            "RTMIN+",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+x",
            "RTMIN++1",
            "RTMIN+-1",
            "SIG0",
            "SIG65",
            "RTMIN+99999999999999",
            "ТЕРМ",
            "\u{0}",
        ] {
            assert!(
                matches!(parse_signal(text), Err(SignalParseError::Unknown(_))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_are_one_clear_line() {
        let err = parse_signal("FOO").unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unknown signal "FOO" (expected a name like TERM or SIGTERM, or a number 1-64)"#
        );
        let err = parse_signal("0").unwrap_err().to_string();
        assert_eq!(err, "signal number 0 is out of range (expected 1-64)");
        let err = parse_signal("a\nb").unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn generic_codes_win_over_signal_specific_ones() {
        assert_eq!(si_code_name(libc::SIGTERM, 0), "SI_USER");
        assert_eq!(si_code_name(libc::SIGSEGV, 0x80), "SI_KERNEL");
        assert_eq!(si_code_name(libc::SIGUSR1, -1), "SI_QUEUE");
        assert_eq!(si_code_name(libc::SIGALRM, -2), "SI_TIMER");
        assert_eq!(si_code_name(libc::SIGUSR1, -3), "SI_MESGQ");
        assert_eq!(si_code_name(libc::SIGUSR1, -4), "SI_ASYNCIO");
        assert_eq!(si_code_name(libc::SIGIO, -5), "SI_SIGIO");
        assert_eq!(si_code_name(libc::SIGKILL, -6), "SI_TKILL");
        assert_eq!(si_code_name(libc::SIGKILL, -7), "SI_DETHREAD");
        assert_eq!(si_code_name(libc::SIGUSR1, -60), "SI_ASYNCNL");
        assert_eq!(si_code_name(libc::SIGCHLD, 0), "SI_USER");
    }

    #[test]
    fn generic_codes_match_libc() {
        assert_eq!(si_code_name(1, libc::SI_USER), "SI_USER");
        assert_eq!(si_code_name(1, libc::SI_KERNEL), "SI_KERNEL");
        assert_eq!(si_code_name(1, libc::SI_QUEUE), "SI_QUEUE");
        assert_eq!(si_code_name(1, libc::SI_TIMER), "SI_TIMER");
        assert_eq!(si_code_name(1, libc::SI_MESGQ), "SI_MESGQ");
        assert_eq!(si_code_name(1, libc::SI_ASYNCIO), "SI_ASYNCIO");
        assert_eq!(si_code_name(1, libc::SI_SIGIO), "SI_SIGIO");
        assert_eq!(si_code_name(1, libc::SI_TKILL), "SI_TKILL");
        assert_eq!(si_code_name(1, libc::SI_ASYNCNL), "SI_ASYNCNL");
    }

    #[test]
    fn fault_codes() {
        assert_eq!(si_code_name(SIGILL, 1), "ILL_ILLOPC");
        assert_eq!(si_code_name(SIGILL, 8), "ILL_BADSTK");
        assert_eq!(si_code_name(SIGILL, 9), "ILL_BADIADDR");
        assert_eq!(si_code_name(SIGILL, 10), "code 10");
        assert_eq!(si_code_name(SIGFPE, 1), "FPE_INTDIV");
        assert_eq!(si_code_name(SIGFPE, 8), "FPE_FLTSUB");
        assert_eq!(si_code_name(SIGFPE, 9), "code 9");
        assert_eq!(si_code_name(SIGFPE, 14), "FPE_FLTUNK");
        assert_eq!(si_code_name(SIGFPE, 15), "FPE_CONDTRAP");
        assert_eq!(si_code_name(SIGFPE, 16), "code 16");
        assert_eq!(si_code_name(SIGSEGV, 1), "SEGV_MAPERR");
        assert_eq!(si_code_name(SIGSEGV, 2), "SEGV_ACCERR");
        assert_eq!(si_code_name(SIGSEGV, 3), "SEGV_BNDERR");
        assert_eq!(si_code_name(SIGSEGV, 4), "SEGV_PKUERR");
        assert_eq!(si_code_name(SIGSEGV, 5), "SEGV_ACCADI");
        assert_eq!(si_code_name(SIGSEGV, 9), "SEGV_MTESERR");
        assert_eq!(si_code_name(SIGSEGV, 10), "SEGV_CPERR");
        assert_eq!(si_code_name(SIGSEGV, 11), "code 11");
        assert_eq!(si_code_name(SIGBUS, 1), "BUS_ADRALN");
        assert_eq!(si_code_name(SIGBUS, 4), "BUS_MCEERR_AR");
        assert_eq!(si_code_name(SIGBUS, 5), "BUS_MCEERR_AO");
        assert_eq!(si_code_name(SIGBUS, 6), "code 6");
        assert_eq!(si_code_name(SIGTRAP, 1), "TRAP_BRKPT");
        assert_eq!(si_code_name(SIGTRAP, 4), "TRAP_HWBKPT");
        assert_eq!(si_code_name(SIGTRAP, 6), "TRAP_PERF");
    }

    #[test]
    fn fault_codes_match_libc() {
        // The libc crate only exports the BUS_* and TRAP_* fault codes.
        assert_eq!(si_code_name(SIGBUS, libc::BUS_OBJERR), "BUS_OBJERR");
        assert_eq!(si_code_name(SIGTRAP, libc::TRAP_TRACE), "TRAP_TRACE");
    }

    #[test]
    fn child_poll_and_sys_codes() {
        assert_eq!(si_code_name(SIGCHLD, 1), "CLD_EXITED");
        assert_eq!(si_code_name(SIGCHLD, libc::CLD_KILLED), "CLD_KILLED");
        assert_eq!(si_code_name(SIGCHLD, libc::CLD_DUMPED), "CLD_DUMPED");
        assert_eq!(si_code_name(SIGCHLD, libc::CLD_TRAPPED), "CLD_TRAPPED");
        assert_eq!(si_code_name(SIGCHLD, libc::CLD_STOPPED), "CLD_STOPPED");
        assert_eq!(si_code_name(SIGCHLD, libc::CLD_CONTINUED), "CLD_CONTINUED");
        assert_eq!(si_code_name(SIGCHLD, 7), "code 7");
        assert_eq!(si_code_name(SIGIO, 1), "POLL_IN");
        assert_eq!(si_code_name(libc::SIGPOLL, 6), "POLL_HUP");
        assert_eq!(si_code_name(SIGIO, 7), "code 7");
        assert_eq!(si_code_name(SIGSYS, 1), "SYS_SECCOMP");
        assert_eq!(si_code_name(SIGSYS, 2), "SYS_USER_DISPATCH");
        assert_eq!(si_code_name(SIGSYS, 3), "code 3");
    }

    #[test]
    fn positive_codes_of_other_signals_are_numbers() {
        assert_eq!(si_code_name(libc::SIGTERM, 1), "code 1");
        assert_eq!(si_code_name(libc::SIGUSR1, 3), "code 3");
        assert_eq!(si_code_name(0, 1), "code 1");
        assert_eq!(si_code_name(SIGSEGV, -8), "code -8");
        assert_eq!(
            si_code_name(SIGSEGV, i32::MIN),
            format!("code {}", i32::MIN)
        );
        assert_eq!(
            si_code_name(SIGSEGV, i32::MAX),
            format!("code {}", i32::MAX)
        );
    }

    #[test]
    fn errno_names_match_libc() {
        let expected = [
            (libc::EPERM, "EPERM"),
            (libc::ENOENT, "ENOENT"),
            (libc::ESRCH, "ESRCH"),
            (libc::EINTR, "EINTR"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::EACCES, "EACCES"),
            (libc::EFAULT, "EFAULT"),
            (libc::EINVAL, "EINVAL"),
            (libc::EDEADLK, "EDEADLK"),
            (libc::ENOSYS, "ENOSYS"),
            (libc::ELOOP, "ELOOP"),
            (libc::ENOMSG, "ENOMSG"),
            (libc::EBADSLT, "EBADSLT"),
            (libc::EBFONT, "EBFONT"),
            (libc::EOVERFLOW, "EOVERFLOW"),
            (libc::EOPNOTSUPP, "EOPNOTSUPP"),
            (libc::ETIMEDOUT, "ETIMEDOUT"),
            (libc::ECANCELED, "ECANCELED"),
            (libc::EOWNERDEAD, "EOWNERDEAD"),
            (libc::ENOTRECOVERABLE, "ENOTRECOVERABLE"),
            (libc::ERFKILL, "ERFKILL"),
            (libc::EHWPOISON, "EHWPOISON"),
        ];
        for (errno, name) in expected {
            assert_eq!(errno_name(errno), name, "errno {errno}");
        }
    }

    #[test]
    fn every_errno_in_range_is_named_except_the_alias_gaps() {
        for errno in 1..=133 {
            let name = errno_name(errno);
            if errno == 41 || errno == 58 {
                assert_eq!(name, format!("errno {errno}"));
            } else {
                assert!(name.starts_with('E'), "{errno}: {name}");
            }
        }
        // Spot checks across the range, around the gaps especially.
        assert_eq!(errno_name(10), "ECHILD");
        assert_eq!(errno_name(40), "ELOOP");
        assert_eq!(errno_name(42), "ENOMSG");
        assert_eq!(errno_name(59), "EBFONT");
        assert_eq!(errno_name(70), "ECOMM");
        assert_eq!(errno_name(90), "EMSGSIZE");
        assert_eq!(errno_name(100), "ENETDOWN");
        assert_eq!(errno_name(120), "EISNAM");
    }

    #[test]
    fn negative_errnos_are_accepted() {
        assert_eq!(errno_name(-1), "EPERM");
        assert_eq!(errno_name(-3), "ESRCH");
        assert_eq!(errno_name(-512), "ERESTARTSYS");
        assert_eq!(errno_name(i32::MIN), "errno 2147483648");
    }

    #[test]
    fn unknown_errnos_are_numbers() {
        assert_eq!(errno_name(0), "errno 0");
        assert_eq!(errno_name(134), "errno 134");
        assert_eq!(errno_name(-134), "errno 134");
        assert_eq!(errno_name(517), "errno 517");
        assert_eq!(errno_name(i32::MAX), format!("errno {}", i32::MAX));
    }

    #[test]
    fn kernel_internal_errnos() {
        assert_eq!(errno_name(513), "ERESTARTNOINTR");
        assert_eq!(errno_name(514), "ERESTARTNOHAND");
        assert_eq!(errno_name(516), "ERESTART_RESTARTBLOCK");
    }

    #[test]
    fn default_actions_follow_signal_7() {
        use DefaultAction::*;
        let expected = [
            (libc::SIGHUP, Terminate),
            (libc::SIGINT, Terminate),
            (libc::SIGQUIT, CoreDump),
            (libc::SIGILL, CoreDump),
            (libc::SIGTRAP, CoreDump),
            (libc::SIGABRT, CoreDump),
            (libc::SIGBUS, CoreDump),
            (libc::SIGFPE, CoreDump),
            (libc::SIGKILL, Terminate),
            (libc::SIGUSR1, Terminate),
            (libc::SIGSEGV, CoreDump),
            (libc::SIGUSR2, Terminate),
            (libc::SIGPIPE, Terminate),
            (libc::SIGALRM, Terminate),
            (libc::SIGTERM, Terminate),
            (libc::SIGSTKFLT, Terminate),
            (libc::SIGCHLD, Ignore),
            (libc::SIGCONT, Continue),
            (libc::SIGSTOP, Stop),
            (libc::SIGTSTP, Stop),
            (libc::SIGTTIN, Stop),
            (libc::SIGTTOU, Stop),
            (libc::SIGURG, Ignore),
            (libc::SIGXCPU, CoreDump),
            (libc::SIGXFSZ, CoreDump),
            (libc::SIGVTALRM, Terminate),
            (libc::SIGPROF, Terminate),
            (libc::SIGWINCH, Ignore),
            (libc::SIGIO, Terminate),
            (libc::SIGPWR, Terminate),
            (libc::SIGSYS, CoreDump),
        ];
        for (signo, action) in expected {
            assert_eq!(default_action(signo), action, "{}", signal_label(signo));
        }
        for signo in 32..=64 {
            assert_eq!(default_action(signo), Terminate, "signal {signo}");
        }
        assert_eq!(default_action(0), Terminate);
        assert_eq!(default_action(-5), Terminate);
    }

    #[test]
    fn default_action_wording() {
        assert_eq!(DefaultAction::CoreDump.to_string(), "core dump");
        assert_eq!(DefaultAction::Stop.as_str(), "stop");
        assert_eq!(
            serde_json::to_string(&DefaultAction::CoreDump).unwrap(),
            r#""core_dump""#
        );
    }
}
