//! `sigwho query`: answers from the journal, with the live view's text or JSON, and
//! `sigwho --target-pid PID` for a process that is no longer running.
//!
//! With `--target-pid`, each process that had the pid (pids are reused) is shown apart:
//! in text under a header line, in JSON one after the other (each object's
//! `target.start_time` tells them apart). Gaps (events the recorder could not record)
//! are shown where they overlap the query, in time order. A row of identical repeats
//! is shown once, with `count`, `first_time` and `last_time` (JSON) or an
//! "xN between T1 and T2" line (text).

use std::{
    io::{self, Write},
    path::Path,
};

use serde::Serialize;

use crate::{
    analysis::redact::Redaction,
    cli::QueryArgs,
    model::clock::{self, rfc3339_nanos},
    model::signals,
    modes::live::LiveError,
    render::graph::{self, Graph, GraphFormat},
    store::journal::{
        self, Entry, Filter, Gap, Incarnation, Journal, JournalError, QueryError, StoredEvent,
    },
};

pub fn run(args: QueryArgs, redaction: &Redaction, out: impl Write) -> anyhow::Result<()> {
    let path = journal::resolve(args.journal.as_deref());
    let filter = filter(&args)?;
    let journal = Journal::open_read_only(&path)?;
    if let Some(format) = args.format {
        return draw(&journal, &filter, format, redaction, out, &path);
    }
    if print(&journal, &filter, args.json, redaction, out)? == 0 {
        eprintln!("sigwho: nothing in the journal {} matches", path.display());
    }
    Ok(())
}

/// `--format dot|svg`: every matching report (and gap) in one graph.
fn draw(
    journal: &Journal,
    filter: &Filter,
    format: GraphFormat,
    redaction: &Redaction,
    mut out: impl Write,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut graph = Graph::new();
    let mut events = 0u64;
    let result = journal.for_each(filter, None, |entry| {
        match entry {
            Entry::Event(event) => {
                events += 1;
                let json = redaction.json(&event.json);
                let value = serde_json::from_str(&json).map_err(|e| {
                    anyhow::anyhow!("journal event {} is not valid JSON: {e}", event.id)
                })?;
                graph.add(&value);
            }
            Entry::Gap(gap) => {
                let value = serde_json::from_str(&gap_json(&gap)).unwrap_or_default();
                graph.add(&value);
            }
        }
        Ok::<(), anyhow::Error>(())
    });
    match result {
        Ok(()) => {}
        Err(QueryError::Journal(error)) => return Err(error.into()),
        Err(QueryError::Output(error)) => return Err(error),
    }
    if events == 0 {
        eprintln!("sigwho: nothing in the journal {} matches", path.display());
    }
    let dot = graph.to_dot();
    let bytes = match format {
        GraphFormat::Dot => dot.into_bytes(),
        GraphFormat::Svg => graph::to_svg(&dot)?,
    };
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// `sigwho --target-pid PID` found no such process: answer from the journal
/// when there is one (saying so on stderr), else fail as the live view does.
pub fn answer_not_running(
    pid: u32,
    journal: Option<&Path>,
    json: bool,
    redaction: &Redaction,
    out: impl Write,
) -> anyhow::Result<()> {
    let path = journal::resolve(journal);
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
    if print(&journal, &filter, json, redaction, out)? == 0 {
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
    redaction: &Redaction,
    out: impl Write,
) -> Result<u64, JournalError> {
    let mut output = Output {
        out,
        json,
        redaction,
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
            let header = header(process);
            output
                .write(&crate::render::color::for_stdout(&header))
                .map_err(QueryError::Output)?;
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

struct Output<'r, W: Write> {
    out: W,
    json: bool,
    redaction: &'r Redaction,
    events: u64,
}

impl<W: Write> Output<'_, W> {
    fn write(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())
    }

    fn entry(&mut self, entry: Entry) -> io::Result<()> {
        match entry {
            Entry::Event(event) => {
                self.events += 1;
                if self.json {
                    self.out
                        .write_all(self.redaction.json(&event_json(&event)).as_bytes())?;
                    self.out.write_all(b"\n")
                } else {
                    let text = event_text(&event);
                    let redacted = self.redaction.text(&text);
                    let text = crate::render::color::for_stdout(&redacted);
                    self.out.write_all(text.as_bytes())
                }
            }
            Entry::Gap(gap) => {
                if self.json {
                    let mut line = gap_json(&gap);
                    line.push('\n');
                    self.write(&line)
                } else {
                    let text = gap_text(&gap);
                    self.write(&crate::render::color::for_stdout(&text))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::{Kind, ProcRef, Row};

    /// A private directory (0700, as the journal requires) under the temp dir, removed
    /// on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            use std::os::unix::fs::DirBuilderExt;
            let dir = std::env::temp_dir()
                .join(format!("sigwho-query-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const SECOND: i64 = 1_000_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600 * SECOND;

    fn incarnation(pid: u32, ticks: u64, start: &str) -> ProcRef {
        ProcRef {
            pid,
            start_ticks: Some(ticks),
            start: Some(start.to_owned()),
        }
    }

    fn signal_row(time_ns: i64, signo: i32, target: &ProcRef) -> Row {
        let start = target.start.clone().unwrap_or_default();
        Row {
            time_ns,
            count: 1,
            last_ns: time_ns,
            kind: Kind::Signal,
            signo: Some(signo),
            target: Some(target.clone()),
            target_comm: Some("victim".to_owned()),
            sender: Some(incarnation(10, 5, "2026-01-01T00:00:00.000000000Z")),
            boot_id: "boot-a".to_owned(),
            json: serde_json::json!({
                "event": "signal",
                "signo": signo,
                "target": {"pid": target.pid, "start_time": start},
            })
            .to_string(),
            text: format!("signal {signo} to {} started {start}\n", target.pid),
        }
    }

    /// One pid, two processes (different start ticks): the query shows each apart, in
    /// text under its own header and in JSON each object with its own start time.
    #[test]
    fn a_reused_pid_prints_as_two_incarnations_in_text_and_json() {
        let dir = TempDir::new("reuse");
        let path = dir.0.join("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let first = incarnation(4242, 1000, "2026-01-01T00:00:10.000000000Z");
        let second = incarnation(4242, 9000, "2026-01-01T00:01:30.000000000Z");
        let other = incarnation(4343, 1000, "2026-01-01T00:00:10.000000000Z");
        journal
            .insert_batch(&[
                signal_row(T0 + 20 * SECOND, 15, &first),
                signal_row(T0 + 21 * SECOND, 10, &other),
                signal_row(T0 + 100 * SECOND, 1, &second),
                signal_row(T0 + 101 * SECOND, 9, &second),
            ])
            .unwrap();
        drop(journal);
        let journal = Journal::open_read_only(&path).unwrap();
        let filter = Filter {
            target_pid: Some(4242),
            ..Filter::default()
        };

        let mut text = Vec::new();
        assert_eq!(
            print(&journal, &filter, false, &Redaction::default(), &mut text).unwrap(),
            3
        );
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "pid 4242 started 2026-01-01T00:00:10.000000000Z: 1 signal\n\
             signal 15 to 4242 started 2026-01-01T00:00:10.000000000Z\n\
             \n\
             pid 4242 started 2026-01-01T00:01:30.000000000Z: 2 signals\n\
             signal 1 to 4242 started 2026-01-01T00:01:30.000000000Z\n\
             signal 9 to 4242 started 2026-01-01T00:01:30.000000000Z\n"
        );

        let mut json = Vec::new();
        assert_eq!(
            print(&journal, &filter, true, &Redaction::default(), &mut json).unwrap(),
            3
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(json)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(i64, &str)> = lines
            .iter()
            .map(|l| {
                (
                    l["signo"].as_i64().unwrap(),
                    l["target"]["start_time"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (15, "2026-01-01T00:00:10.000000000Z"),
                (1, "2026-01-01T00:01:30.000000000Z"),
                (9, "2026-01-01T00:01:30.000000000Z"),
            ]
        );
    }

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
