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
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::{
    analysis::redact::Redaction,
    analysis::select::{Candidate, Selectors},
    model::{clock, signals},
    render::{
        color,
        graph::Graph,
        stored::{event_json, event_text, gap_json, gap_text, header},
    },
    store::journal::{self, Entry, Filter, Journal, JournalError, QueryError},
};

/// What `sigwho query` was asked.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The journal; else `$SIGWHO_JOURNAL`, else the default.
    pub journal: Option<PathBuf>,
    pub target_pid: Option<u32>,
    pub target_comm: Option<String>,
    pub sender_pid: Option<u32>,
    /// TERM, SIGTERM or 15.
    pub signal: Option<String>,
    /// RFC 3339 or a time ago (`2h`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub json: bool,
    /// A graph instead of a list.
    pub format: Option<GraphFormat>,
    /// The live view's process selectors (checked on each stored report's target).
    pub selectors: Selectors,
    /// Keep printing new matches (`--follow`).
    pub follow: bool,
}

/// How often `--follow` looks for what the recorder added (it commits about once a
/// second, docs/recorder.md).
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Prints (or draws) what the journal holds that `options` ask for.
///
/// # Errors
///
/// When the filter is malformed, the journal cannot be opened or read, or the output
/// cannot be written.
pub fn run(options: &QueryOptions, redaction: &Redaction, out: impl Write) -> anyhow::Result<()> {
    let path = journal::resolve(options.journal.as_deref());
    let mut filter = filter(options)?;
    let selectors = options
        .selectors
        .clone()
        .new(options.signal.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let journal = Journal::open_read_only(&path)?;
    if let Some(format) = options.format {
        return draw(&journal, &filter, format, redaction, out, &path);
    }
    let mut out = out;
    let (printed, mut last_ns) = print_selected(
        &journal,
        &filter,
        Layout {
            json: options.json,
            per_process: true,
        },
        redaction,
        &selectors,
        &mut out,
    )?;
    if printed == 0 && !options.follow {
        eprintln!("sigwho: nothing in the journal {} matches", path.display());
    }
    if !options.follow {
        return Ok(());
    }
    eprintln!(
        "sigwho: following the journal {}; new matches go to stdout until ^C",
        path.display()
    );
    loop {
        std::thread::sleep(FOLLOW_POLL);
        if let Some(last) = last_ns {
            filter.since_ns = Some(last.saturating_add(1));
        }
        // A plain list: per-process headers would repeat on every poll.
        let (_, newest) = print_selected(
            &journal,
            &filter,
            Layout {
                json: options.json,
                per_process: false,
            },
            redaction,
            &selectors,
            &mut out,
        )?;
        last_ns = newest.or(last_ns);
    }
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
        GraphFormat::Svg => to_svg(&dot)?,
    };
    match out.write_all(&bytes).and_then(|()| out.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// `sigwho --target-pid PID` found no such process: answers from the journal when
/// there is one (saying so on stderr). False when there is none: the live view's own
/// error then stands.
///
/// # Errors
///
/// When the journal exists but cannot be opened or read.
pub fn answer_not_running(
    pid: u32,
    journal: Option<&Path>,
    json: bool,
    redaction: &Redaction,
    out: impl Write,
) -> anyhow::Result<bool> {
    let path = journal::resolve(journal);
    if let Err(error) = std::fs::symlink_metadata(&path)
        && error.kind() == io::ErrorKind::NotFound
    {
        return Ok(false);
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
    Ok(true)
}

/// The journal filter the options ask for.
///
/// # Errors
///
/// When `--since`, `--until` or `--signal` is malformed.
pub fn filter(args: &QueryOptions) -> anyhow::Result<Filter> {
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
    let signo = match args.signal.as_deref() {
        // Several: checked on each event (`Selectors`).
        Some(list) if list.contains(',') => None,
        other => other
            .map(signals::parse_signal)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--signal: {e}"))?,
    };
    Ok(Filter {
        target_pid: args.target_pid,
        target_comm: args.target_comm.clone(),
        sender_pid: args.sender_pid,
        signo,
        since_ns: time("--since", &args.since)?,
        until_ns: time("--until", &args.until)?,
    })
}

/// [`print`] with the process selectors and a signal list checked on each event, and
/// `--target-pid` left to [`print`]'s per-process layout; returns how many events were
/// printed and the time of the newest one seen (for `--follow`).
/// How `print_selected` lays events out.
#[derive(Clone, Copy)]
struct Layout {
    json: bool,
    /// `--target-pid` without other selectors: each process under its header.
    per_process: bool,
}

fn print_selected(
    journal: &Journal,
    filter: &Filter,
    layout: Layout,
    redaction: &Redaction,
    selectors: &Selectors,
    out: &mut impl Write,
) -> anyhow::Result<(u64, Option<i64>)> {
    let mut newest = None;
    let mut last_seen = |event: &journal::StoredEvent| {
        newest = Some(newest.map_or(event.time_ns, |n: i64| n.max(event.time_ns)));
    };
    let json = layout.json;
    if layout.per_process
        && !selectors.selects_processes()
        && selectors.signals.len() <= 1
        && filter.target_pid.is_some()
    {
        let printed = print(journal, filter, json, redaction, &mut *out)?;
        journal
            .for_each(filter, None, |entry| {
                if let Entry::Event(event) = &entry {
                    last_seen(event);
                }
                Ok::<(), io::Error>(())
            })
            .map_err(|e| match e {
                QueryError::Journal(error) => anyhow::Error::from(error),
                QueryError::Output(error) => error.into(),
            })?;
        return Ok((printed, newest));
    }
    let mut output = Output {
        out: &mut *out,
        json,
        redaction,
        events: 0,
    };
    let result = journal.for_each(filter, None, |entry| {
        if let Entry::Event(event) = &entry {
            last_seen(event);
            if !selected(selectors, &event.json) {
                return Ok(());
            }
        }
        output.entry(entry)
    });
    match result.and_then(|()| output.out.flush().map_err(QueryError::Output)) {
        Ok(()) => Ok((output.events, newest)),
        Err(QueryError::Journal(error)) => Err(error.into()),
        Err(QueryError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            Ok((output.events, newest))
        }
        Err(QueryError::Output(error)) => Err(error.into()),
    }
}

/// Whether a stored report (its JSON) is one `selectors` select: a signal by its
/// number and target; an exit only by the name of its process, and only when no other
/// selector is given (exits name nothing else, and are no signal).
fn selected(selectors: &Selectors, json: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return false;
    };
    let text =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(|s| s.as_str()).map(str::to_owned);
    match value.get("event").and_then(|e| e.as_str()) {
        Some("signal") => {
            let signo = value
                .get("signo")
                .and_then(serde_json::Value::as_i64)
                .unwrap_or_default();
            if !selectors.signal_selected(i32::try_from(signo).unwrap_or_default()) {
                return false;
            }
            let Some(target) = value.get("target") else {
                return !selectors.selects_processes();
            };
            let identity = crate::model::cgroup::Identity {
                container_id: text(target, "container_id"),
                systemd_unit: text(target, "systemd_unit"),
                pod_uid: text(target, "pod_uid"),
                pod_name: text(target, "pod_name"),
                pod_namespace: text(target, "pod_namespace"),
            };
            let comm = text(target, "comm").unwrap_or_default();
            let exe = text(target, "exe");
            let argv0 = target
                .get("argv")
                .and_then(|a| a.get(0))
                .and_then(|a| a.as_str())
                .map(str::to_owned);
            let cgroup = text(target, "cgroup");
            selectors.selects(&Candidate {
                comm: &comm,
                exe: exe.as_deref(),
                argv0: argv0.as_deref(),
                cgroup: cgroup.as_deref(),
                identity: Some(&identity),
            })
        }
        Some("exit") => {
            let beyond_comm = Selectors {
                comm: None,
                signals: Vec::new(),
                ..selectors.clone()
            };
            let comm = text(&value, "comm").unwrap_or_default();
            !beyond_comm.selects_processes()
                && selectors.signals.is_empty()
                && selectors.selects(&Candidate {
                    comm: &comm,
                    ..Candidate::default()
                })
        }
        _ => true,
    }
}

/// Prints what matches; returns how many events were printed. A closed output (`|
/// head`) ends the printing quietly.
///
/// # Errors
///
/// When the journal cannot be read or the output cannot be written (a reader that went
/// away is not an error).
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
                .write(&color::for_stdout(&header))
                .map_err(QueryError::Output)?;
        }
        journal.for_each(filter, Some(process), |entry| output.entry(entry))?;
    }
    Ok(())
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
                    let redacted =
                        crate::render::text::fit(&redacted, crate::render::text::width());
                    let text = color::for_stdout(&redacted);
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
                    self.write(&color::for_stdout(&text))
                }
            }
        }
    }
}

/// `--format` of `sigwho query`: draw the matching signals instead of listing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz DOT text.
    Dot,
    /// SVG drawn by Graphviz's `dot -Tsvg`.
    Svg,
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(
        "--format svg needs Graphviz's `dot` program, which is not on PATH (Debian/Ubuntu: apt-get install graphviz; or use --format dot)"
    )]
    NoGraphviz,
    #[error("Graphviz's dot failed: {0}")]
    Dot(String),
    #[error("running Graphviz's dot: {0}")]
    Io(#[from] std::io::Error),
}

/// `dot -Tsvg` of `dot_text`.
///
/// # Errors
///
/// When Graphviz is missing or fails.
pub fn to_svg(dot_text: &str) -> Result<Vec<u8>, GraphError> {
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(GraphError::NoGraphviz);
        }
        Err(error) => return Err(error.into()),
    };
    // dot reads all its input before writing, so writing first cannot deadlock.
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot_text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("no message").trim();
        return Err(GraphError::Dot(format!("{first} ({})", out.status)));
    }
    Ok(out.stdout)
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
}
