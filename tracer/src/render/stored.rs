//! Stored reports as `sigwho query` prints them: the live view's text or JSON, with the
//! count of a row of repeats, the gaps among them, and a header per incarnation of a pid.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    model::clock::rfc3339_nanos,
    store::journal::{self, Gap, Incarnation, StoredEvent},
};

/// "pid 4242 started 2026-11-26T17:26:52.120000000Z: 3 signals".
#[must_use]
pub fn header(process: &Incarnation) -> String {
    let signals = match process.signals {
        1 => "1 signal".to_owned(),
        n => format!("{n} signals"),
    };
    match &process.start {
        Some(start) => format!("pid {} started {start}: {signals}\n", process.pid),
        None => format!("pid {} (start time unknown): {signals}\n", process.pid),
    }
}

/// A gap as JSON: `{"event":"gap","time":...,"count":N,"reason":...}`.
#[derive(Serialize)]
struct GapJson<'a> {
    event: &'static str,
    time: String,
    count: u64,
    reason: &'a str,
}

#[must_use]
pub fn gap_json(gap: &Gap) -> String {
    let object = GapJson {
        event: "gap",
        time: rfc3339_nanos(i128::from(gap.time_ns)),
        count: gap.count,
        reason: &gap.reason,
    };
    // A plain struct of strings and numbers always serializes.
    serde_json::to_string(&object).unwrap_or_default()
}

/// A stored event's JSON object; for repeats, with `repeats` added at the end: their
/// count and first and last time, the one shape for repeats everywhere
/// (docs/json-schema.md; the object's own `time` is the first's).
#[must_use]
pub fn event_json(event: &StoredEvent) -> String {
    match event.json.strip_suffix('}') {
        Some(open) if event.count > 1 => format!(
            "{open},\"repeats\":{{\"count\":{},\"first_time\":\"{}\",\"last_time\":\"{}\"}}}}",
            event.count,
            rfc3339_nanos(i128::from(event.time_ns)),
            rfc3339_nanos(i128::from(event.last_ns))
        ),
        _ => event.json.clone(),
    }
}

/// A stored event's text; for repeats, followed by how many and when.
#[must_use]
pub fn event_text(event: &StoredEvent) -> String {
    let mut text = event.text.clone();
    if event.count > 1 {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = writeln!(
            text,
            "  x{} between {} and {} (identical signals, stored once)",
            event.count,
            rfc3339_nanos(i128::from(event.time_ns)),
            rfc3339_nanos(i128::from(event.last_ns))
        );
    }
    text
}

#[must_use]
pub fn gap_text(gap: &Gap) -> String {
    format!(
        "{} GAP {} event(s) not recorded: {}; signals around this time may be missing\n",
        rfc3339_nanos(i128::from(gap.time_ns)),
        gap.count,
        journal::gap_reason_text(&gap.reason)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_pid_its_start_and_the_count() {
        let mut process = Incarnation {
            boot_id: "b".into(),
            pid: 4242,
            start_ticks: Some(1),
            start: Some("2026-11-26T17:26:52.120000000Z".into()),
            signals: 3,
            events: 4,
            first_ns: 0,
            last_ns: 0,
            exit_ns: None,
        };
        assert_eq!(
            header(&process),
            "pid 4242 started 2026-11-26T17:26:52.120000000Z: 3 signals\n"
        );
        process.signals = 1;
        process.start = None;
        assert_eq!(
            header(&process),
            "pid 4242 (start time unknown): 1 signal\n"
        );
    }

    #[test]
    fn repeats_show_their_count_and_times() {
        let mut event = StoredEvent {
            id: 1,
            time_ns: 1_700_000_000_000_000_000,
            count: 1,
            last_ns: 1_700_000_000_000_000_000,
            kind: journal::Kind::Signal,
            json: r#"{"event":"signal","time":"x"}"#.into(),
            text: "one signal\n".into(),
        };
        assert_eq!(event_json(&event), event.json);
        assert_eq!(event_text(&event), event.text);
        event.count = 3;
        event.last_ns += 2_000_000_000;
        let json: serde_json::Value = serde_json::from_str(&event_json(&event)).unwrap();
        assert_eq!(json["event"], "signal");
        assert_eq!(json["repeats"]["count"], 3);
        assert_eq!(
            json["repeats"]["first_time"],
            "2023-11-14T22:13:20.000000000Z"
        );
        assert_eq!(
            json["repeats"]["last_time"],
            "2023-11-14T22:13:22.000000000Z"
        );
        assert!(json.get("count").is_none());
        assert_eq!(
            event_text(&event),
            "one signal\n  x3 between 2023-11-14T22:13:20.000000000Z and 2023-11-14T22:13:22.000000000Z (identical signals, stored once)\n"
        );
    }

    #[test]
    fn gaps_as_json_and_text() {
        let gap = Gap {
            time_ns: 1_700_000_000_000_000_000,
            count: 12,
            reason: "ring_buffer".into(),
        };
        let json: serde_json::Value = serde_json::from_str(&gap_json(&gap)).unwrap();
        assert_eq!(json["event"], "gap");
        assert_eq!(json["time"], "2023-11-14T22:13:20.000000000Z");
        assert_eq!(json["count"], 12);
        assert_eq!(json["reason"], "ring_buffer");
        let text = gap_text(&gap);
        assert!(
            text.starts_with("2023-11-14T22:13:20.000000000Z GAP 12 event(s)"),
            "{text}"
        );
        assert!(text.contains("ring buffer was full"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }
}
