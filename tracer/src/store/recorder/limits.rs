//! How large and how old the journal may grow: --max-size and --max-age.

use std::time::Duration;

/// Smallest --max-size: an empty journal already takes some pages.
const MIN_SIZE: u64 = 1024 * 1024;

/// How large and how old the journal may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_age: Duration,
}

impl Limits {
    /// How often old events are looked for.
    pub(super) fn age_interval(&self) -> Duration {
        (self.max_age / 4).clamp(Duration::from_secs(1), Duration::from_mins(1))
    }

    /// Bytes written between size checks: a small part of the budget, so that the
    /// journal never overshoots by much.
    pub(super) fn size_interval(&self) -> u64 {
        (self.max_bytes / 32).max(64 * 1024)
    }
}

/// Parses a size: a whole number of bytes, optionally with a unit: K, M, G, T or KiB,
/// MiB, GiB, TiB (powers of 1024), KB, MB, GB, TB (powers of 1000), B.
///
/// # Errors
///
/// When the text is not a size of at least 1MiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let bad = || {
        format!("invalid size {text:?} (expected e.g. 256MiB, 1GiB, 500MB or a number of bytes)")
    };
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))?;
    if bytes < MIN_SIZE {
        return Err(format!("size {text:?} is too small (at least 1MiB)"));
    }
    Ok(bytes)
}

/// Parses an age: a number of seconds, or amounts with units s, m, h, d, w ("7d",
/// "12h", "1h30m").
///
/// # Errors
///
/// When the text is not a positive age.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || {
        format!("invalid age {text:?} (expected e.g. 7d, 12h, 90m, 1h30m or a number of seconds)")
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = trimmed.parse().map_err(|_| bad())?;
        return (secs > 0)
            .then(|| Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(end);
        let mut chars = after.chars();
        let unit: u64 = match chars.next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            Some('w') => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("age {text:?} is too long"))?;
        rest = chars.as_str();
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2gb"), Ok(2_000_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "-5M",
            "1.5G",
            "100K",
            "99999999999999T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_hours(168)));
        assert_eq!(parse_age("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_age("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_hours(336)));
        for bad in ["", "0", "0s", "d", "5x", "1.5h", "-1d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_check_often_enough() {
        let defaults = Limits {
            max_bytes: 256 << 20,
            max_age: Duration::from_hours(168),
        };
        assert_eq!(defaults.age_interval(), Duration::from_mins(1));
        assert_eq!(defaults.size_interval(), 8 << 20);
        let tiny = Limits {
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(2),
        };
        assert_eq!(tiny.age_interval(), Duration::from_secs(1));
        assert_eq!(tiny.size_interval(), 64 * 1024);
    }
}
