//! `sigwho query --format dot|svg` on a cascade recorded by the real eBPF programs:
//! A (a `kill` sender) -> B (relays SIGTERM) -> C. The DOT must have C's signal from B,
//! B's from A as its cause, and the parenthood of A (this test process is its parent).

#[path = "recording.rs"]
mod recording;

use std::process::Command;

use recording::{EVENT_TIMEOUT, Recording};
use sigwho_tests::{Target, field_i64, is_signal, run, sigwho_bin, testproc};

/// A parsed DOT statement of the form sigwho writes.
#[derive(Debug)]
enum Statement {
    Node {
        id: String,
        label: String,
    },
    Edge {
        from: String,
        to: String,
        label: String,
        class: String,
    },
}

/// The double-quoted strings of a line, unescaped, in order.
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some(other) => s.push(other),
                    None => {}
                },
                c => s.push(c),
            }
        }
        out.push(s);
    }
    out
}

fn parse(dot: &str) -> Vec<Statement> {
    let mut lines = dot.lines();
    assert_eq!(lines.next(), Some("digraph sigwho {"), "{dot}");
    assert_eq!(dot.lines().last(), Some("}"), "{dot}");
    lines
        .filter(|l| l.trim_start().starts_with('"'))
        .map(|line| {
            let q = quoted(line);
            if line.contains("\" -> \"") {
                // from, to, label, ..., class (last).
                Statement::Edge {
                    from: q[0].clone(),
                    to: q[1].clone(),
                    label: q[2].clone(),
                    class: q.last().cloned().unwrap_or_default(),
                }
            } else {
                Statement::Node {
                    id: q[0].clone(),
                    label: q[1].clone(),
                }
            }
        })
        .collect()
}

/// The id of the node whose label starts with "PID COMM".
fn node_of(graph: &[Statement], pid: i32) -> String {
    let prefix = format!("{pid} ");
    let found: Vec<&String> = graph
        .iter()
        .filter_map(|s| match s {
            Statement::Node { id, label } if label.starts_with(&prefix) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one node for pid {pid}: {graph:#?}");
    found[0].clone()
}

fn edges<'a>(graph: &'a [Statement], from: &str, to: &str) -> Vec<(&'a str, &'a str)> {
    graph
        .iter()
        .filter_map(|s| match s {
            Statement::Edge {
                from: f,
                to: t,
                label,
                class,
            } if f == from && t == to => Some((class.as_str(), label.as_str())),
            _ => None,
        })
        .collect()
}

#[test]
#[expect(
    clippy::similar_names,
    reason = "a_id, b_id, c_id are the graph nodes of the processes a, b, c"
)]
fn dot_and_svg_draw_a_recorded_cascade() {
    let recording = Recording::start("graph");
    let c = Target::spawn(&[]);
    let b = Target::spawn(&["--relay", &format!("TERM:{}", c.pid)]);
    let a = testproc(&["kill", &b.pid.to_string(), "TERM"]).assert_success();
    let c_pid = c.pid.to_string();
    let query = ["--target-pid", c_pid.as_str()];
    let ev = recording.wait_recorded(&query, |ev| {
        is_signal("SIGTERM")(ev) && field_i64(ev, "sender.pid") == Some(i64::from(b.pid))
    });
    assert_eq!(
        field_i64(&ev, "cause.0.sender.pid"),
        Some(i64::from(a.pid)),
        "{ev}"
    );

    let dot = recording
        .query(&["--target-pid", &c_pid, "--format", "dot"])
        .assert_success()
        .stdout;
    let graph = parse(&dot);
    let (a_id, b_id, c_id) = (
        node_of(&graph, a.pid),
        node_of(&graph, b.pid),
        node_of(&graph, c.pid),
    );
    let me = node_of(
        &graph,
        i32::try_from(std::process::id()).expect("a pid fits in i32"),
    );

    let b_to_c = edges(&graph, &b_id, &c_id);
    assert_eq!(b_to_c.len(), 1, "{dot}");
    assert_eq!(b_to_c[0].0, "signal", "{dot}");
    assert!(
        b_to_c[0].1.starts_with("SIGTERM\n") && b_to_c[0].1.contains(&format!("kill({}", c.pid)),
        "{dot}"
    );
    let a_to_b = edges(&graph, &a_id, &b_id);
    assert_eq!(a_to_b.len(), 1, "{dot}");
    assert_eq!(a_to_b[0].0, "cause", "{dot}");
    assert!(a_to_b[0].1.starts_with("SIGTERM\n"), "{dot}");
    // This process started A, B and C: one parent edge to each.
    for child in [&a_id, &b_id, &c_id] {
        let parent = edges(&graph, &me, child);
        assert_eq!(parent.len(), 1, "parent edge to {child}: {dot}");
        assert_eq!(parent[0].0, "parent", "{dot}");
    }
    // C is drawn as the target; its label names its command line.
    assert!(dot.contains(&format!("{c_id:?} [label=")), "{dot}");
    assert!(
        dot.lines()
            .any(|l| l.starts_with(&format!("  {c_id:?}")) && l.contains("peripheries=2")),
        "{dot}"
    );

    let svg = recording
        .query(&["--target-pid", &c_pid, "--format", "svg"])
        .assert_success()
        .stdout;
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert!(
        svg.contains(&format!("{} sigwho&#45;testpro", b.pid))
            || svg.contains(&format!("{} sigwho-testpro", b.pid)),
        "{svg}"
    );

    // Without Graphviz: one clear line, status 2.
    let empty = std::env::temp_dir().join(format!("sigwho-graph-nopath-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("create empty dir");
    let mut no_dot = recording.query_cmd(&["--target-pid", &c_pid, "--format", "svg"]);
    no_dot.env("PATH", &empty);
    let r = run(no_dot, EVENT_TIMEOUT);
    let _ = std::fs::remove_dir(&empty);
    assert_eq!(r.status.code(), Some(2), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert!(r.stderr.contains("graphviz") && r.stdout.is_empty(), "{r}");

    // --format and --json do not mix.
    let mut both = Command::new(sigwho_bin());
    both.args(["query", "--format", "dot", "--json"]);
    let r = run(both, EVENT_TIMEOUT);
    assert_eq!(r.status.code(), Some(2), "{r}");
}
