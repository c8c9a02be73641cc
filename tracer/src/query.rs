//! `sigwho query`: answers from the journal, with the live view's text or JSON, and
//! `sigwho --target-pid PID` for a process that is no longer running.
//!
//! With `--target-pid`, each process that had the pid (pids are reused) is shown apart:
//! in text under a header line, in JSON one after the other (each object's
//! `target.start_time` tells them apart). Gaps (events the recorder could not record)
//! are shown where they overlap the query, in time order. A row of identical repeats
//! is shown once, with `count`, `first_time` and `last_time` (JSON) or an
//! "xN between T1 and T2" line (text).

use std::io::{self, Write};

use serde::Serialize;

use crate::{
    cli::QueryArgs,
    clock::{self, rfc3339_nanos},
    journal::{
        self, Entry, Filter, Gap, Incarnation, Journal, JournalError, QueryError, StoredEvent,
    },
    live::LiveError,
    signals,
};

pub fn run(args: QueryArgs, out: impl Write) -> anyhow::Result<()> {
    let path = journal::resolve(&args.journal);
    let filter = filter(&args)?;
    let journal = Journal::open_read_only(&path)?;
    if print(&journal, &filter, args.json, out)? == 0 {
        eprintln!("sigwho: nothing in the journal {} matches", path.display());
    }
    Ok(())
}

/// `sigwho --target-pid PID` found no such process: answer from the default journal
/// when there is one (saying so on stderr), else fail as the live view does.
pub fn answer_not_running(pid: u32, json: bool, out: impl Write) -> anyhow::Result<()> {
    let path = journal::default_path();
    if let Err(error) = std::fs::symlink_metadata(&path)
        && error.kind() == io::ErrorKind::NotFound
    {
        return Err(LiveError::NotRunning(pid).into());
    }
    eprintln!(
        "sigwho: pid {pid} is not running; answering from the journal {}",
        path.display()
    );
    let journal = Journal::open_read_only(&path)?;
    let filter = Filter {
        target_pid: Some(pid),
        ..Filter::default()
    };
    if print(&journal, &filter, json, out)? == 0 {
        eprintln!("sigwho: the journal has nothing about pid {pid}");
    }
    Ok(())
}

/// The journal filter the options ask for.
pub fn filter(args: &QueryArgs) -> anyhow::Result<Filter> {
    let now = clock::unix_now_ns();
    let time = |option: &str, text: &Option<String>| -> anyhow::Result<Option<i64>> {
        text.as_deref()
            .map(|text| {
                let ns =
                    clock::parse_time(text, now).map_err(|e| anyhow::anyhow!("{option}: {e}"))?;
                Ok(i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX }))
            })
            .transpose()
    };
    let signo = args
        .signal
        .as_deref()
        .map(signals::parse_signal)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--signal: {e}"))?;
    Ok(Filter {
        target_pid: args.target_pid,
        target_comm: args.target_comm.clone(),
        sender_pid: args.sender_pid,
        signo,
        since_ns: time("--since", &args.since)?,
        until_ns: time("--until", &args.until)?,
    })
}

/// Prints what matches; returns how many events were printed. A closed output (`|
/// head`) ends the printing quietly.
pub fn print(
    journal: &Journal,
    filter: &Filter,
    json: bool,
    out: impl Write,
) -> Result<u64, JournalError> {
    let mut output = Output {
        out,
        json,
        events: 0,
    };
    let result = match filter.target_pid {
        Some(_) => print_by_process(journal, filter, &mut output),
        None => journal.for_each(filter, None, |entry| output.entry(entry)),
    };
    match result.and_then(|()| output.out.flush().map_err(QueryError::Output)) {
        Ok(()) => Ok(output.events),
        Err(QueryError::Journal(error)) => Err(error),
        Err(QueryError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            Ok(output.events)
        }
        Err(QueryError::Output(error)) => Err(JournalError::Open {
            path: "standard output".into(),
            source: error,
        }),
    }
}

fn print_by_process<W: Write>(
    journal: &Journal,
    filter: &Filter,
    output: &mut Output<W>,
) -> Result<(), QueryError<io::Error>> {
    let processes = journal.incarnations(filter).map_err(QueryError::Journal)?;
    if processes.is_empty() {
        // Nothing recorded; a gap in the window may be why.
        let gaps = journal
            .gaps(filter.since_ns, filter.until_ns)
            .map_err(QueryError::Journal)?;
        for gap in gaps {
            output.entry(Entry::Gap(gap)).map_err(QueryError::Output)?;
        }
        return Ok(());
    }
    for (index, process) in processes.iter().enumerate() {
        if !output.json {
            if index > 0 {
                output.write("\n").map_err(QueryError::Output)?;
            }
            output.write(&header(process)).map_err(QueryError::Output)?;
        }
        journal.for_each(filter, Some(process), |entry| output.entry(entry))?;
    }
    Ok(())
}

/// "pid 4242 started 2026-11-26T17:26:52.120000000Z: 3 signals".
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

/// A stored event's JSON object; for repeats, with their count and first and last time
/// added at the end (the object's own `time` is the first's).
pub fn event_json(event: &StoredEvent) -> String {
    match event.json.strip_suffix('}') {
        Some(open) if event.count > 1 => format!(
            "{open},\"count\":{},\"first_time\":\"{}\",\"last_time\":\"{}\"}}",
            event.count,
            rfc3339_nanos(i128::from(event.time_ns)),
            rfc3339_nanos(i128::from(event.last_ns))
        ),
        _ => event.json.clone(),
    }
}

/// A stored event's text; for repeats, followed by how many and when.
pub fn event_text(event: &StoredEvent) -> String {
    let mut text = event.text.clone();
    if event.count > 1 {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "  x{} between {} and {} (identical signals, stored once)\n",
            event.count,
            rfc3339_nanos(i128::from(event.time_ns)),
            rfc3339_nanos(i128::from(event.last_ns))
        ));
    }
    text
}

pub fn gap_text(gap: &Gap) -> String {
    format!(
        "{} GAP {} event(s) not recorded: {}; signals around this time may be missing\n",
        rfc3339_nanos(i128::from(gap.time_ns)),
        gap.count,
        journal::gap_reason_text(&gap.reason)
    )
}

struct Output<W: Write> {
    out: W,
    json: bool,
    events: u64,
}

impl<W: Write> Output<W> {
    fn write(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    fn entry(&mut self, entry: Entry) -> io::Result<()> {
        match entry {
            Entry::Event(event) => {
                self.events += 1;
                if self.json {
                    self.out.write_all(event_json(&event).as_bytes())?;
                    self.out.write_all(b"\n")
                } else {
                    self.out.write_all(event_text(&event).as_bytes())
                }
            }
            Entry::Gap(gap) => {
                if self.json {
                    let mut line = gap_json(&gap);
                    line.push('\n');
                    self.write(&line)
                } else {
                    self.write(&gap_text(&gap))
                }
            }
        }
    }
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
        assert_eq!(json["count"], 3);
        assert_eq!(json["first_time"], "2023-11-14T22:13:20.000000000Z");
        assert_eq!(json["last_time"], "2023-11-14T22:13:22.000000000Z");
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
