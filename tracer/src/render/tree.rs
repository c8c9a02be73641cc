//! The sender's and the target's lineage as one tree, joined at their nearest common
//! ancestor, drawn as `ps axjf` draws processes: one line per process with its pid,
//! start time and command line, children indented under their parent.

use std::fmt::Write as _;

use crate::analysis::report::{AncestorReport, ProcessReport, SignalReport};

/// Common ancestors above this many are elided (one `…` line), keeping the top one
/// (usually pid 1) and the nearest ones: they say little, and the report must fit a
/// screen. `--wide` shows them all.
const MAX_COMMON: usize = 4;
/// The same below the common ancestor, for each of the sender's and target's branches.
const MAX_BRANCH: usize = 4;

/// What a line's process is to the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    None,
    Sender,
    Target,
    Both,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::None => "",
            Role::Sender => "sender",
            Role::Target => "target",
            Role::Both => "both",
        }
    }
}

/// One process of the tree.
#[derive(Debug, Clone)]
struct Node<'a> {
    pid: u32,
    start: Option<&'a str>,
    comm: &'a str,
    argv: &'a [String],
}

impl<'a> Node<'a> {
    fn of_ancestor(a: &'a AncestorReport) -> Self {
        Node {
            pid: a.pid,
            start: a.start_time.as_deref(),
            comm: &a.comm,
            argv: &a.argv,
        }
    }

    fn of_process(p: &'a ProcessReport) -> Self {
        Node {
            pid: p.pid,
            start: p.start_time.as_deref(),
            // A thread's name is the report's header; the tree names the process.
            comm: &p.comm,
            argv: &p.argv,
        }
    }

    /// Same process: same pid, and the same start when both are known.
    fn same(&self, other: &Node<'_>) -> bool {
        self.pid == other.pid
            && match (self.start, other.start) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// Root first, ending with the process itself.
fn chain(p: &ProcessReport) -> Vec<Node<'_>> {
    let mut nodes: Vec<Node<'_>> = p.ancestry.iter().rev().map(Node::of_ancestor).collect();
    nodes.push(Node::of_process(p));
    nodes
}

/// A command line as the process shows it: a rewritten title (one argument with
/// spaces, as nginx, npm or PM2 set theirs) as it reads, anything else shell-quoted.
#[must_use]
pub fn command_line(comm: &str, argv: &[String]) -> String {
    match argv {
        [] => format!("[{comm}]"),
        [title] if title.contains(' ') && !title.contains(['\'', '"', '\n']) => title.clone(),
        _ => super::text::shell_join(argv),
    }
}

/// `HH:MM:SS` of an RFC 3339 time when it is the same day as `at`, else its date.
fn short_start(start: Option<&str>, at: &str) -> String {
    let Some(start) = start else {
        return "-".to_owned();
    };
    match (start.get(..10), start.get(11..19)) {
        (Some(day), Some(clock)) if at.get(..10) == Some(day) => clock.to_owned(),
        (Some(day), Some(_)) => day.to_owned(),
        _ => start.to_owned(),
    }
}

/// The tree of `r`'s sender and target (the sender's alone when there is no target),
/// as lines without a trailing newline. `wide`: every common ancestor.
#[must_use]
pub fn lines(r: &SignalReport, wide: bool) -> Vec<String> {
    let sender = chain(&r.sender);
    let target = r.target.as_deref().map(chain).unwrap_or_default();
    let common = sender
        .iter()
        .zip(&target)
        .take_while(|(a, b)| a.same(b))
        .count();
    let last_sender = sender.len() - 1;
    let last_target = target.len().checked_sub(1);
    let role = |in_sender: Option<usize>, in_target: Option<usize>| match (
        in_sender == Some(last_sender),
        in_target.is_some() && in_target == last_target,
    ) {
        (true, true) => Role::Both,
        (true, false) => Role::Sender,
        (false, true) => Role::Target,
        (false, false) => Role::None,
    };

    // (depth, role, node); `None` for the elision line.
    let mut rows: Vec<(usize, Role, Option<&Node<'_>>)> = Vec::new();
    let shown: Vec<usize> = if wide || common <= MAX_COMMON {
        (0..common).collect()
    } else {
        let mut keep = vec![0];
        keep.extend(common + 1 - MAX_COMMON..common);
        keep
    };
    let mut depth = 0;
    for (n, &i) in shown.iter().enumerate() {
        if n > 0 && i != shown[n - 1] + 1 {
            rows.push((depth, Role::None, None));
            depth += 1;
        }
        rows.push((depth, role(Some(i), Some(i)), Some(&sender[i])));
        depth += 1;
    }
    let branch = depth;
    for (chain, in_sender) in [(&sender, true), (&target, false)] {
        let len = chain.len().saturating_sub(common);
        let mut depth = branch;
        for (n, node) in chain.iter().enumerate().skip(common) {
            let offset = n - common;
            // A long branch keeps its top and the two processes nearest the signal.
            if !wide && len > MAX_BRANCH && offset > 0 && offset < len - 2 {
                if offset == 1 {
                    rows.push((depth, Role::None, None));
                    depth += 1;
                }
                continue;
            }
            let role = if in_sender {
                role(Some(n), None)
            } else {
                role(None, Some(n))
            };
            rows.push((depth, role, Some(node)));
            depth += 1;
        }
    }

    let mut out = vec![format!("  {:<6} {:>7} {:<8}  COMMAND", "", "PID", "START")];
    for (depth, role, node) in rows {
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}\\_ ", "   ".repeat(depth - 1))
        };
        let mut line = String::new();
        match node {
            None => {
                let _ = write!(line, "  {:<6} {:>7} {:<8}  {indent}…", "", "", "");
            }
            Some(node) => {
                let _ = write!(
                    line,
                    "  {:<6} {:>7} {:<8}  {indent}{}",
                    role.label(),
                    node.pid,
                    short_start(node.start, &r.time),
                    command_line(node.comm, node.argv)
                );
            }
        }
        out.push(line);
    }
    out
}
