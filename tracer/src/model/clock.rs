//! Turning the kernel's boot-relative times into wall-clock times, and parsing the times
//! users give on the command line (RFC 3339 through jiff).
//!
//! eBPF records carry `bpf_ktime_get_boot_ns()` (`CLOCK_BOOTTIME`), tasks carry
//! `start_boottime`, and /proc/PID/stat counts start times in clock ticks since boot.

use thiserror::Error;

const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i128 = 86_400;
/// How many clock pairs [`BootClock::now`] reads to pick the tightest one.
const SAMPLES: usize = 5;

/// The offset between `CLOCK_REALTIME` and `CLOCK_BOOTTIME` at one moment, used to place
/// boot-relative kernel times on the wall clock.
///
/// The offset is fixed when measured: if the wall clock is stepped later (NTP, the
/// admin), times converted afterwards are off by the step until a new `BootClock` is
/// taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClock {
    /// Realtime minus boottime, in nanoseconds.
    offset_ns: i128,
}

impl BootClock {
    /// Measures the current offset.
    ///
    /// Reading two clocks is not atomic; the process can be preempted between the
    /// reads. Each sample brackets one realtime read between two boottime reads, and the
    /// sample with the narrowest bracket is the one least disturbed.
    #[must_use]
    pub fn now() -> BootClock {
        let best = (0..SAMPLES)
            .filter_map(|_| sample())
            .min_by_key(|s| s.bracket_ns);
        // clock_gettime cannot fail for these clocks on any kernel sigwho runs on
        // (CLOCK_BOOTTIME exists since 2.6.39); an offset of zero is the least
        // surprising answer if it somehow does.
        let offset_ns = best.map_or(0, |s| s.offset_ns);
        BootClock { offset_ns }
    }

    /// A clock with a known offset (realtime minus boottime, ns).
    #[must_use]
    pub fn from_offset_ns(offset_ns: i128) -> BootClock {
        BootClock { offset_ns }
    }

    /// Realtime minus boottime, in nanoseconds.
    #[must_use]
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// Nanoseconds since the Unix epoch for a `CLOCK_BOOTTIME` reading.
    #[must_use]
    pub fn unix_ns(&self, boot_ns: u64) -> i128 {
        // Saturating: only a nonsense offset from `from_offset_ns` can get near the limit.
        i128::from(boot_ns).saturating_add(self.offset_ns)
    }

    /// The `CLOCK_BOOTTIME` reading for a Unix time, or `None` if that is before boot
    /// (or too far in the future to represent).
    #[must_use]
    pub fn boot_ns(&self, unix_ns: i128) -> Option<u64> {
        u64::try_from(unix_ns.checked_sub(self.offset_ns)?).ok()
    }
}

struct Sample {
    offset_ns: i128,
    bracket_ns: i128,
}

fn sample() -> Option<Sample> {
    let before = clock_ns(libc::CLOCK_BOOTTIME)?;
    let real = clock_ns(libc::CLOCK_REALTIME)?;
    let after = clock_ns(libc::CLOCK_BOOTTIME)?;
    Some(Sample {
        offset_ns: real - i128::midpoint(before, after),
        bracket_ns: after - before,
    })
}

use crate::kernel::sys::clock_ns;

/// The current wall-clock time in nanoseconds since the Unix epoch.
#[must_use]
pub fn unix_now_ns() -> i128 {
    clock_ns(libc::CLOCK_REALTIME).unwrap_or(0)
}

/// The current `CLOCK_BOOTTIME` in nanoseconds: the clock eBPF records are stamped with
/// (`bpf_ktime_get_boot_ns`), for stamping userspace-made events comparably.
#[must_use]
pub fn boot_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(0)
}

/// Formats a Unix time in nanoseconds as RFC 3339 in UTC with nine fractional digits,
/// e.g. "2026-11-26T17:26:52.123456789Z" (jiff).
///
/// A time outside what RFC 3339 and jiff can write (years before -9999 or after 9999)
/// is shown as a count of nanoseconds since the epoch instead of an error, since a
/// display of a nonsense time is more useful than no display.
#[must_use]
pub fn rfc3339_nanos(unix_ns: i128) -> String {
    static PRINTER: jiff::fmt::temporal::DateTimePrinter =
        jiff::fmt::temporal::DateTimePrinter::new().precision(Some(9));
    match jiff::Timestamp::from_nanosecond(unix_ns) {
        Ok(timestamp) => PRINTER.timestamp_to_string(&timestamp),
        Err(_) => format!("{unix_ns}ns after 1970-01-01T00:00:00Z"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeParseError {
    #[error(
        "invalid time {0:?} (expected an RFC 3339 time like 2026-11-26T17:26:52Z, or a \
         duration like 90s, 15m, 2h, 3d, 1w or 1h30m meaning that long ago)"
    )]
    Unrecognized(String),
    #[error("invalid time {text:?}: {reason}")]
    BadTime { text: String, reason: String },
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses a point in time as Unix nanoseconds: an RFC 3339 timestamp, or a duration
/// ("90s", "15m", "2h", "3d", "1w", "1h30m") meaning that long before `now_unix_ns`.
///
/// # Errors
///
/// When the text is neither RFC 3339 nor a duration, or out of range.
pub fn parse_time(text: &str, now_unix_ns: i128) -> Result<i128, TimeParseError> {
    let trimmed = text.trim();
    if let Some(duration) = parse_duration(trimmed) {
        let ns = duration.map_err(|Overflow| TimeParseError::TooLong(text.to_owned()))?;
        return now_unix_ns
            .checked_sub(ns)
            .ok_or_else(|| TimeParseError::TooLong(text.to_owned()));
    }
    parse_rfc3339(trimmed).map_err(|problem| match problem {
        Rfc3339Problem::NotATime => TimeParseError::Unrecognized(text.to_owned()),
        Rfc3339Problem::Field(reason) => TimeParseError::BadTime {
            text: text.to_owned(),
            reason,
        },
    })
}

/// A duration too long for nanoseconds in an i128.
struct Overflow;

/// `None` if `text` is not shaped like a duration; `Some(Err)` if it is but overflows.
fn parse_duration(text: &str) -> Option<Result<i128, Overflow>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_digit() {
        return None;
    }
    let mut total: Option<i128> = Some(0);
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return None;
        }
        let (digits, after) = rest.split_at(digits_end);
        let mut units = after.chars();
        let unit_secs: i128 = match units.next()? {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => SECS_PER_DAY,
            'w' => 7 * SECS_PER_DAY,
            _ => return None,
        };
        // Shape is settled by now; an unparsable count can only be a huge one.
        let part = digits
            .parse::<i128>()
            .ok()
            .and_then(|n| n.checked_mul(unit_secs))
            .and_then(|s| s.checked_mul(NANOS_PER_SEC));
        total = total.zip(part).and_then(|(t, p)| t.checked_add(p));
        rest = units.as_str();
    }
    Some(total.ok_or(Overflow))
}

enum Rfc3339Problem {
    /// Not shaped like a timestamp at all.
    NotATime,
    /// Shaped like one, but a field is out of range or malformed.
    Field(String),
}

/// RFC 3339 through jiff's parser (which also takes a space or a lower-case `t` for the
/// `T`, and `z` for `Z`). Input that does not start with a `YYYY-MM-DD` date is not a
/// timestamp at all; for what does, jiff's reason is given.
fn parse_rfc3339(text: &str) -> Result<i128, Rfc3339Problem> {
    let date = text.as_bytes().get(..10).ok_or(Rfc3339Problem::NotATime)?;
    let shaped = date.iter().enumerate().all(|(i, b)| match i {
        4 | 7 => *b == b'-',
        _ => b.is_ascii_digit(),
    });
    if !shaped {
        return Err(Rfc3339Problem::NotATime);
    }
    let timestamp: jiff::Timestamp = text.parse().map_err(|e: jiff::Error| {
        // One line whatever jiff's error chain says.
        Rfc3339Problem::Field(e.to_string().replace('\n', " "))
    })?;
    Ok(timestamp.as_nanosecond())
}

/// Clock ticks per second as /proc reports times (`sysconf(_SC_CLK_TCK)`, `USER_HZ`).
#[must_use]
pub fn ticks_per_second() -> u64 {
    let ticks = crate::kernel::sys::clock_ticks();
    // USER_HZ has been 100 on every Linux architecture that sigwho supports.
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Converts nanoseconds since boot to clock ticks the way the kernel does for
/// /proc/PID/stat (`nsec_to_clock_t`), so a task's `start_boottime` can be compared with
/// the start time field there. A rate of zero is treated as the default 100.
#[must_use]
pub fn boot_ns_to_ticks(ns: u64, ticks_per_sec: u64) -> u64 {
    let rate = if ticks_per_sec == 0 {
        100
    } else {
        ticks_per_sec
    };
    // Truncating, like the kernel: a tick counts only once it is complete.
    let ticks = u128::from(ns) * u128::from(rate) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i128 = NANOS_PER_SEC;
    /// 2026-11-26T17:26:52Z
    const SAMPLE_UNIX_SECS: i128 = 1_795_714_012;

    #[test]
    fn boot_clock_adds_the_offset() {
        let clock = BootClock::from_offset_ns(1_000 * SEC);
        assert_eq!(clock.unix_ns(0), 1_000 * SEC);
        assert_eq!(clock.unix_ns(5), 1_000 * SEC + 5);
        assert_eq!(clock.offset_ns(), 1_000 * SEC);
        let max = clock.unix_ns(u64::MAX);
        assert_eq!(max, i128::from(u64::MAX) + 1_000 * SEC);
        assert_eq!(BootClock::from_offset_ns(i128::MAX).unix_ns(1), i128::MAX);
    }

    #[test]
    fn boot_clock_inverse() {
        let clock = BootClock::from_offset_ns(1_000 * SEC);
        assert_eq!(clock.boot_ns(1_000 * SEC + 42), Some(42));
        assert_eq!(clock.boot_ns(999 * SEC), None);
        assert_eq!(clock.boot_ns(i128::MAX), None);
        assert_eq!(BootClock::from_offset_ns(1).boot_ns(i128::MIN), None);
    }

    #[test]
    fn measured_offset_matches_the_clocks() {
        let clock = BootClock::now();
        let boot = clock_ns(libc::CLOCK_BOOTTIME).expect("CLOCK_BOOTTIME readable");
        let real = clock_ns(libc::CLOCK_REALTIME).expect("CLOCK_REALTIME readable");
        let boot = u64::try_from(boot).expect("boottime is positive");
        let error = (clock.unix_ns(boot) - real).abs();
        // Generous: only a badly preempted test run gets near this.
        assert!(error < 50_000_000, "offset off by {error} ns");
        // Boot happened in the past, after 2000-01-01.
        assert!(clock.offset_ns() > 946_684_800 * SEC);
        assert!(clock.offset_ns() <= real);
    }

    #[test]
    fn boot_now_advances_and_is_after_boot() {
        let first = boot_now_ns();
        let second = boot_now_ns();
        assert!(first > 0);
        assert!(second >= first);
        // The uptime in /proc/uptime (seconds, two decimals) is the same clock.
        let uptime = std::fs::read_to_string("/proc/uptime").expect("procfs mounted");
        let secs: f64 = uptime
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("uptime");
        let diff = (std::time::Duration::from_nanos(second).as_secs_f64() - secs).abs();
        assert!(diff < 1.0, "boottime {second} ns vs uptime {secs} s");
    }

    #[test]
    fn unix_now_is_recent() {
        assert!(unix_now_ns() > SAMPLE_UNIX_SECS * SEC - 365 * SECS_PER_DAY * SEC);
    }

    #[test]
    fn formats_rfc3339_with_nanos() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(SAMPLE_UNIX_SECS * SEC + 123_456_789),
            "2026-11-26T17:26:52.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(SAMPLE_UNIX_SECS * SEC + 5),
            "2026-11-26T17:26:52.000000005Z"
        );
        // Leap days and century rules.
        assert_eq!(
            rfc3339_nanos(951_782_400 * SEC),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(1_709_164_800 * SEC),
            "2024-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(4_107_542_400 * SEC),
            "2100-03-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(253_402_128_000 * SEC),
            "9999-12-30T00:00:00.000000000Z"
        );
    }

    #[test]
    fn formats_times_before_1970() {
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339_nanos(-SEC), "1969-12-31T23:59:59.000000000Z");
        assert_eq!(
            rfc3339_nanos(-86_400 * SEC),
            "1969-12-31T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(-62_167_219_200 * SEC),
            "0000-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nanos(-62_167_219_201 * SEC),
            "-000001-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn formats_extremes_without_panicking() {
        assert_eq!(
            rfc3339_nanos(253_402_300_800 * SEC),
            "253402300800000000000ns after 1970-01-01T00:00:00Z"
        );
        for ns in [
            i128::MIN,
            i128::MAX,
            i128::from(i64::MIN),
            i128::from(u64::MAX),
        ] {
            let text = rfc3339_nanos(ns);
            assert!(text.ends_with('Z'), "{text}");
        }
    }

    #[test]
    fn parses_rfc3339() {
        let now = 0;
        let base = SAMPLE_UNIX_SECS * SEC;
        assert_eq!(parse_time("2026-11-26T17:26:52Z", now), Ok(base));
        assert_eq!(parse_time("2026-11-26t17:26:52z", now), Ok(base));
        assert_eq!(parse_time("2026-11-26 17:26:52Z", now), Ok(base));
        assert_eq!(parse_time("  2026-11-26T17:26:52Z\n", now), Ok(base));
        assert_eq!(
            parse_time("2026-11-26T17:26:52.5Z", now),
            Ok(base + SEC / 2)
        );
        assert_eq!(
            parse_time("2026-11-26T17:26:52.123456789Z", now),
            Ok(base + 123_456_789)
        );
        assert_eq!(
            parse_time("2026-11-26T17:26:52.000001Z", now),
            Ok(base + 1_000)
        );
        assert_eq!(parse_time("2026-11-26T18:26:52+01:00", now), Ok(base));
        assert_eq!(parse_time("2026-11-26T12:56:52-04:30", now), Ok(base));
        assert_eq!(parse_time("2026-11-27T03:26:52+10:00", now), Ok(base));
        assert_eq!(parse_time("2026-11-26T17:26:52-00:00", now), Ok(base));
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now), Ok(0));
        assert_eq!(parse_time("1969-12-31T23:59:59Z", now), Ok(-SEC));
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z", now),
            Ok(1_709_164_800 * SEC)
        );
    }

    #[test]
    fn leap_second_is_read_as_the_last_second_of_its_minute() {
        // jiff clamps :60 to :59 (Unix time has no leap seconds).
        assert_eq!(
            parse_time("2016-12-31T23:59:60Z", 0),
            parse_time("2016-12-31T23:59:59Z", 0)
        );
    }

    #[test]
    fn parsing_inverts_formatting() {
        for ns in [
            0,
            1,
            SAMPLE_UNIX_SECS * SEC + 123_456_789,
            -SEC + 7,
            4_107_542_400 * SEC,
        ] {
            assert_eq!(parse_time(&rfc3339_nanos(ns), 0), Ok(ns));
        }
    }

    #[test]
    fn parses_durations_as_time_ago() {
        let now = SAMPLE_UNIX_SECS * SEC;
        assert_eq!(parse_time("90s", now), Ok(now - 90 * SEC));
        assert_eq!(parse_time("15m", now), Ok(now - 15 * 60 * SEC));
        assert_eq!(parse_time("2h", now), Ok(now - 2 * 3600 * SEC));
        assert_eq!(parse_time("3d", now), Ok(now - 3 * 86_400 * SEC));
        assert_eq!(parse_time("1w", now), Ok(now - 7 * 86_400 * SEC));
        assert_eq!(parse_time("1h30m", now), Ok(now - 5400 * SEC));
        assert_eq!(parse_time("1d2h3m4s", now), Ok(now - 93_784 * SEC));
        assert_eq!(parse_time("0s", now), Ok(now));
        assert_eq!(parse_time(" 10m ", now), Ok(now - 600 * SEC));
        assert_eq!(parse_time("1m1m", now), Ok(now - 120 * SEC));
    }

    #[test]
    fn rejects_bad_durations() {
        for text in [
            "", " ", "90", "s", "1x", "1h30", "1H", "1.5h", "-5m", "1h 30m", "h1", "1hh",
        ] {
            assert_eq!(
                parse_time(text, 0),
                Err(TimeParseError::Unrecognized(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn rejects_overlong_durations() {
        for text in [
            "99999999999999999999999999999999999999999w",
            "1000000000000000000000000000000s",
        ] {
            assert_eq!(
                parse_time(text, 0),
                Err(TimeParseError::TooLong(text.to_owned())),
                "{text}"
            );
        }
        assert!(matches!(
            parse_time("1s", i128::MIN),
            Err(TimeParseError::TooLong(_))
        ));
    }

    #[test]
    fn rejects_bad_timestamps_with_a_reason() {
        // jiff's reasons.
        let cases = [
            (
                "2026-13-01T00:00:00Z",
                "'month' is not in the required range of 1..=12",
            ),
            (
                "2026-00-01T00:00:00Z",
                "'month' is not in the required range of 1..=12",
            ),
            ("2026-02-29T00:00:00Z", "'day' for `2026-02` is invalid"),
            ("2026-04-31T00:00:00Z", "'day' for `2026-04` is invalid"),
            ("2026-01-00T00:00:00Z", "'day' is not in the required range"),
            (
                "2026-01-01T24:00:00Z",
                "'hour' is not in the required range of 0..=23",
            ),
            (
                "2026-01-01T00:60:00Z",
                "'minute' is not in the required range of 0..=59",
            ),
            (
                "2026-01-01T00:00:61Z",
                "'second' is not in the required range of 0..=60",
            ),
            ("2026-01-01T00:00:00", "failed to find offset component"),
            (
                "2026-01-01T00:00:00.Z",
                "did not find any digits after decimal",
            ),
            (
                "2026-01-01T00:00:00.1234567890Z",
                "unparsed input \"0Z\" remains",
            ),
            ("2026-01-01", "failed to find time component"),
            (
                "2026-01-01T0:00:00Z",
                "failed to parse two digit integer as hour",
            ),
            (
                "2026-01-01T00:00:00Zjunk",
                "unparsed input \"junk\" remains",
            ),
        ];
        for (text, reason) in cases {
            match parse_time(text, 0) {
                Err(TimeParseError::BadTime { text: t, reason: r }) => {
                    assert_eq!(t, text);
                    assert!(r.contains(reason), "{text}: {r}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_non_timestamps() {
        for text in [
            "yesterday",
            "2026/01/01",
            "26-01-01T00:00:00Z",
            "２０２６-01-01",
            "\u{0}",
        ] {
            assert_eq!(
                parse_time(text, 0),
                Err(TimeParseError::Unrecognized(text.to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_are_one_line() {
        let errors = [
            parse_time("yesterday", 0),
            parse_time("2026-13-01T00:00:00Z", 0),
            parse_time("99999999999999999999999999999999999999999w", 0),
            parse_time("a\nb", 0),
        ];
        for err in errors {
            let text = err.expect_err("all invalid").to_string();
            assert!(!text.contains('\n'), "{text}");
        }
        assert_eq!(
            parse_time("2026-13-01T00:00:00Z", 0)
                .unwrap_err()
                .to_string(),
            r#"invalid time "2026-13-01T00:00:00Z": failed to parse two digit integer as month: parameter 'month' is not in the required range of 1..=12"#
        );
    }

    #[test]
    fn ticks_per_second_is_user_hz() {
        let expected = crate::kernel::sys::clock_ticks();
        assert_eq!(i64::try_from(ticks_per_second()).ok(), Some(expected));
    }

    #[test]
    fn converts_boot_ns_to_ticks_like_the_kernel() {
        assert_eq!(boot_ns_to_ticks(0, 100), 0);
        assert_eq!(boot_ns_to_ticks(9_999_999, 100), 0);
        assert_eq!(boot_ns_to_ticks(10_000_000, 100), 1);
        assert_eq!(boot_ns_to_ticks(12_345_678_901, 100), 1234);
        assert_eq!(boot_ns_to_ticks(12_345_678_901, 1000), 12_345);
        assert_eq!(boot_ns_to_ticks(1_000_000_000, 300), 300);
        assert_eq!(boot_ns_to_ticks(1_000_000_000, 0), 100);
        assert_eq!(boot_ns_to_ticks(u64::MAX, 100), u64::MAX / 10_000_000);
        assert_eq!(boot_ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn own_start_time_matches_proc() {
        // Field 22 of /proc/self/stat, after the parenthesised comm (which may hold
        // spaces), is our start time in ticks since boot; converting our boottime now
        // must give a later tick count.
        let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs mounted");
        let after_comm = &stat[stat.rfind(')').expect("comm closes") + 2..];
        let start_ticks: u64 = after_comm
            .split(' ')
            .nth(19)
            .and_then(|f| f.parse().ok())
            .expect("field 22");
        let now = clock_ns(libc::CLOCK_BOOTTIME).expect("boottime");
        let now_ticks = boot_ns_to_ticks(u64::try_from(now).unwrap(), ticks_per_second());
        assert!(
            start_ticks <= now_ticks,
            "start {start_ticks} > now {now_ticks}"
        );
    }
}
