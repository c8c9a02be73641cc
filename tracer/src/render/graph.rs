//! `sigwho query --format dot|svg`: the signals a query matched, drawn as a graph for
//! incident write-ups. Nodes are processes (sender, its ancestors, target, the senders
//! of the cause chain); edges are signals (solid, labelled with the signal, time and
//! call; dashed when the attempt failed), cause links (the signals that led to it) and
//! parenthood (grey, parent to child). Built from the reports' JSON (docs/json-schema.md)
//! as stored in the journal; the DOT text is ours, the SVG is Graphviz's `dot -Tsvg`.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Deserialize as _;
use serde_json::Value;

use crate::analysis::classify::SignalResult;

/// One process as the graph knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    label: String,
    /// Received a signal the query matched.
    target: bool,
}

/// Builds the graph of `events` (report objects; exits and gaps are annotations) and
/// prints it as DOT.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    /// (from, to) -> attributes; a map so that an edge seen in several reports (the
    /// same ancestry) is drawn once.
    edges: BTreeMap<(String, String, String), String>,
    notes: Vec<String>,
}

impl Graph {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one report (a `signal`, `exit` or `gap` object); others are ignored.
    pub fn add(&mut self, event: &Value) {
        match event["event"].as_str() {
            Some("signal") => self.add_signal(event),
            Some("exit") => self.add_exit(event),
            Some("gap") => self.notes.push(format!(
                "{} event(s) not recorded at {} ({}): signals may be missing",
                event["count"].as_u64().unwrap_or_default(),
                str_of(&event["time"]),
                str_of(&event["reason"])
            )),
            _ => {}
        }
    }

    fn add_signal(&mut self, event: &Value) {
        let sender = self.process(&event["sender"]);
        let target = match event.get("target") {
            Some(target) if !target.is_null() => {
                let key = self.process(target);
                if let Some(node) = self.nodes.get_mut(&key) {
                    node.target = true;
                }
                key
            }
            // A failed attempt whose target could not be resolved: the request it made.
            _ => {
                let key = format!("request {}", event["requested"]);
                self.nodes.entry(key.clone()).or_insert(Node {
                    label: format!("{} (no such process)", event["requested"]),
                    target: true,
                });
                key
            }
        };
        let failed = SignalResult::deserialize(&event["result"]).ok() == Some(SignalResult::Failed);
        let mut label = format!(
            "{}\n{}\n{}",
            str_of(&event["signal"]),
            str_of(&event["time"]),
            event["call"].as_str().unwrap_or(str_of(&event["origin"]))
        );
        if failed {
            let _ = write!(label, "\nfailed: {}", str_of(&event["errno"]));
        }
        let style = if failed {
            "color=red, style=dashed"
        } else {
            "color=red, penwidth=2"
        };
        self.edge(
            &sender,
            &target,
            "signal",
            format!("label={}, {style}", quote(&label)),
        );

        // Cause links, nearest first: link i's target is the sender of link i-1 (the
        // report's sender for link 0), which identifies it better than its pid alone.
        let mut received_by = sender;
        for link in event["cause"].as_array().into_iter().flatten() {
            let from = self.process(&link["sender"]);
            let label = format!(
                "{}\n{}\ncause",
                str_of(&link["signal"]),
                str_of(&link["time"])
            );
            self.edge(
                &from,
                &received_by,
                "cause",
                format!("label={}, color=orange, penwidth=2", quote(&label)),
            );
            received_by = from;
        }
    }

    fn add_exit(&mut self, event: &Value) {
        let how = match (event["exit_code"].as_i64(), event["signal"].as_str()) {
            (Some(code), _) => format!("exited {code}"),
            (None, Some(signal)) => format!("killed by {signal}"),
            _ => "exited".to_owned(),
        };
        self.notes.push(format!(
            "pid {} ({}) {how} at {}",
            event["pid"],
            str_of(&event["comm"]),
            str_of(&event["time"])
        ));
    }

    /// A process report's node, and its ancestors' nodes with parent edges; returns
    /// its key. Processes are told apart by pid and start time.
    fn process(&mut self, p: &Value) -> String {
        let key = match p["start_time"].as_str() {
            Some(start) => format!("{} {start}", p["pid"]),
            None => format!("{} {}", p["pid"], str_of(&p["comm"])),
        };
        let mut label = format!("{} {}", p["pid"], str_of(&p["comm"]));
        if let Some(argv) = argv_of(p) {
            let _ = write!(label, "\n{argv}");
        }
        if let Some(start) = p["start_time"].as_str() {
            let _ = write!(label, "\nstarted {start}");
        }
        if let (Some(namespace), Some(name)) = (p["pod_namespace"].as_str(), p["pod_name"].as_str())
        {
            let _ = write!(label, "\npod {namespace}/{name}");
        }
        for id in ["container_id", "pod_uid", "systemd_unit"] {
            if let Some(value) = p[id].as_str() {
                let _ = write!(label, "\n{id} {}", short(value));
            }
        }
        self.nodes.entry(key.clone()).or_insert(Node {
            label,
            target: false,
        });
        // Ancestors carry no start time: within one report's chain a pid with the
        // same command line is the same process, which is what the key says.
        let mut child = key.clone();
        for ancestor in p["ancestry"].as_array().into_iter().flatten() {
            let argv = argv_of(ancestor).unwrap_or_default();
            let anc_key = format!("{} {} {argv}", ancestor["pid"], str_of(&ancestor["comm"]));
            let mut anc_label = format!("{} {}", ancestor["pid"], str_of(&ancestor["comm"]));
            if !argv.is_empty() {
                let _ = write!(anc_label, "\n{argv}");
            }
            self.nodes.entry(anc_key.clone()).or_insert(Node {
                label: anc_label,
                target: false,
            });
            self.edge(
                &anc_key,
                &child,
                "parent",
                "color=gray, style=dotted, arrowhead=none".to_owned(),
            );
            child = anc_key;
        }
        key
    }

    fn edge(&mut self, from: &str, to: &str, kind: &str, attributes: String) {
        self.edges
            .entry((from.to_owned(), to.to_owned(), attributes))
            .or_insert_with(|| kind.to_owned());
    }

    /// The DOT text: deterministic (sorted) so that write-ups diff cleanly.
    #[must_use]
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph sigwho {\n");
        out.push_str("  rankdir=LR;\n");
        out.push_str("  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
        out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
        if !self.notes.is_empty() {
            let _ = writeln!(
                out,
                "  label={}; labelloc=b; labeljust=l;",
                quote(&self.notes.join("\n"))
            );
        }
        for (key, node) in &self.nodes {
            let extra = if node.target {
                ", peripheries=2, style=bold"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {} [label={}{extra}];",
                quote(key),
                quote(&node.label)
            );
        }
        for ((from, to, attributes), kind) in &self.edges {
            let _ = writeln!(
                out,
                "  {} -> {} [{attributes}, class={}];",
                quote(from),
                quote(to),
                quote(kind)
            );
        }
        out.push_str("}\n");
        out
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.notes.is_empty()
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn argv_of(p: &Value) -> Option<String> {
    let argv: Vec<String> = p["argv"]
        .as_array()?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    if argv.is_empty() {
        return None;
    }
    let line = crate::render::text::shell_join(&argv);
    // A label is no place for a 4 KiB command line.
    Some(match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    })
}

/// Container ids are 64 hex digits; 12 are what `docker ps` shows.
fn short(id: &str) -> &str {
    if id.len() == 64 { &id[..12] } else { id }
}

/// A DOT double-quoted string: quotes and backslashes escaped, newlines as `\n`, other
/// control characters dropped (they mean nothing to a label).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, comm: &str, start: &str, ancestry: &Value) -> Value {
        serde_json::json!({
            "pid": pid, "tid": pid, "comm": comm, "exe": format!("/bin/{comm}"),
            "argv": [comm, "--flag"], "uid": 0, "start_time": start, "ancestry": ancestry,
        })
    }

    /// A relays TERM to B; B's SIGTERM to C is the report, A -> B its cause.
    fn cascade() -> Value {
        let shell = serde_json::json!([{"pid": 1, "comm": "init", "exe": null, "argv": ["init"]}]);
        serde_json::json!({
            "event": "signal", "time": "T3", "signal": "SIGTERM", "signo": 15,
            "origin": "kill", "call": "kill(30, SIGTERM)", "result": "delivered",
            "sender": process(20, "b", "S20", &shell),
            "target": process(30, "c", "S30", &shell),
            "cause": [{
                "signal": "SIGTERM", "signo": 15, "time": "T2", "origin": "kill", "code": "SI_USER",
                "sender": process(10, "a", "S10", &shell),
                "target": {"pid": 20, "comm": "b", "exe": "/bin/b", "argv": ["b"]},
            }],
        })
    }

    #[test]
    fn cascade_has_signal_cause_and_parent_edges() {
        let mut graph = Graph::new();
        graph.add(&cascade());
        let dot = graph.to_dot();
        assert!(
            dot.starts_with("digraph sigwho {\n") && dot.ends_with("}\n"),
            "{dot}"
        );
        assert!(
            dot.contains(r#""20 S20" -> "30 S30" [label="SIGTERM\nT3\nkill(30, SIGTERM)""#),
            "{dot}"
        );
        assert!(
            dot.contains(r#""10 S10" -> "20 S20" [label="SIGTERM\nT2\ncause""#),
            "{dot}"
        );
        // One init node, parent of all three (one edge each, not one per report).
        assert_eq!(dot.matches(r#""1 init init" ["#).count(), 1, "{dot}");
        assert_eq!(dot.matches(r#""1 init init" -> "#).count(), 3, "{dot}");
        assert!(dot.contains(r#""30 S30" [label="30 c\nc --flag\nstarted S30", peripheries=2"#));
        // The same report twice draws nothing new.
        let once = dot.clone();
        graph.add(&cascade());
        assert_eq!(graph.to_dot(), once);
    }

    #[test]
    fn failed_attempts_exits_and_gaps_are_shown() {
        let mut graph = Graph::new();
        let mut failed = cascade();
        failed["result"] = "failed".into();
        failed["errno"] = "EPERM".into();
        graph.add(&failed);
        graph.add(&serde_json::json!({"event": "exit", "time": "T4", "pid": 30, "comm": "c", "signal": "SIGTERM", "signo": 15}));
        graph.add(
            &serde_json::json!({"event": "gap", "time": "T1", "count": 7, "reason": "ring_buffer"}),
        );
        let dot = graph.to_dot();
        assert!(dot.contains(r"failed: EPERM"), "{dot}");
        assert!(dot.contains("style=dashed"), "{dot}");
        assert!(dot.contains("pid 30 (c) killed by SIGTERM at T4"), "{dot}");
        assert!(dot.contains("7 event(s) not recorded at T1"), "{dot}");
    }

    #[test]
    fn labels_are_quoted() {
        assert_eq!(quote("a\"b\\c\nd\u{1b}e"), r#""a\"b\\c\nde""#);
        assert!(Graph::new().is_empty());
    }
}
