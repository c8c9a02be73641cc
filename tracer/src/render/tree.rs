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
    // Join at the deepest process of the sender's chain that the target's chain has,
    // wherever it sits there: the two chains may describe a reparented process's
    // ancestors differently (the kernel's real parent at send time, the fork-time
    // parent), and the target's then stands for both.
    let join = sender
        .iter()
        .enumerate()
        .rev()
        .find_map(|(si, node)| target.iter().position(|t| t.same(node)).map(|ti| (si, ti)));
    let (common, sender_branch, target_branch): (&[Node<'_>], &[Node<'_>], &[Node<'_>]) = match join
    {
        Some((si, ti)) => (&target[..=ti], &sender[si + 1..], &target[ti + 1..]),
        None => (&[], &sender[..], &target[..]),
    };
    let sender_joined = sender_branch.is_empty();
    let target_joined = !target.is_empty() && target_branch.is_empty();
    let common_role = |i: usize| {
        let last = i + 1 == common.len();
        match (last && sender_joined, last && target_joined) {
            (true, true) => Role::Both,
            (true, false) => Role::Sender,
            (false, true) => Role::Target,
            (false, false) => Role::None,
        }
    };

    // (depth, role, node); `None` for an elision line.
    let mut rows: Vec<(usize, Role, Option<&Node<'_>>)> = Vec::new();
    let shown: Vec<usize> = if wide || common.len() <= MAX_COMMON {
        (0..common.len()).collect()
    } else {
        let mut keep = vec![0];
        keep.extend(common.len() + 1 - MAX_COMMON..common.len());
        keep
    };
    let mut depth = 0;
    for (n, &i) in shown.iter().enumerate() {
        if n > 0 && i != shown[n - 1] + 1 {
            rows.push((depth, Role::None, None));
            depth += 1;
        }
        rows.push((depth, common_role(i), Some(&common[i])));
        depth += 1;
    }
    let branch = depth;
    for (chain, role) in [(sender_branch, Role::Sender), (target_branch, Role::Target)] {
        let len = chain.len();
        let mut depth = branch;
        for (offset, node) in chain.iter().enumerate() {
            // A long branch keeps its top and the two processes nearest the signal.
            if !wide && len > MAX_BRANCH && offset > 0 && offset < len - 2 {
                if offset == 1 {
                    rows.push((depth, Role::None, None));
                    depth += 1;
                }
                continue;
            }
            let role = if offset + 1 == len { role } else { Role::None };
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::analysis::{classify::OriginClass, report::fixtures};

    fn ancestor(pid: u32, comm: &str) -> AncestorReport {
        AncestorReport {
            pid,
            comm: comm.into(),
            exe: None,
            argv: vec![comm.into()],
            start_time: Some(format!("2026-12-06T01:00:0{}.000Z", pid % 10)),
        }
    }

    fn with_start(mut p: ProcessReport) -> ProcessReport {
        p.start_time = Some(format!("2026-12-06T01:00:0{}.000Z", p.pid % 10));
        p
    }

    /// A gunicorn arbiter whose shell exited: the kernel names init as its parent at
    /// send time, the worker's fork-time chain names the shell. One tree, joined at the
    /// arbiter, the sender appearing once.
    #[test]
    fn a_reparented_sender_joins_the_targets_chain() {
        let mut r = fixtures::signal(6, 40, 41, OriginClass::Explicit);
        let mut sender = with_start(fixtures::process(40, "gunicorn"));
        sender.ancestry = vec![ancestor(1, "init")];
        let mut target = with_start(fixtures::process(41, "gunicorn"));
        target.ancestry = vec![
            ancestor(40, "gunicorn"),
            ancestor(30, "sh"),
            ancestor(1, "init"),
        ];
        r.sender = Arc::new(sender);
        r.target = Some(Arc::new(target));
        r.time = "2026-12-06T01:00:09.000Z".into();
        let lines = lines(&r, false);
        let rows: Vec<&str> = lines[1..].iter().map(|l| l.trim_end()).collect();
        assert_eq!(
            rows,
            [
                "               1 01:00:01  init",
                "              30 01:00:00  \\_ sh",
                "  sender      40 01:00:00     \\_ gunicorn",
                "  target      41 01:00:01        \\_ gunicorn",
            ],
            "{lines:#?}"
        );
    }

    #[test]
    fn siblings_branch_under_their_parent_and_self_is_both() {
        let mut r = fixtures::signal(15, 50, 51, OriginClass::Explicit);
        let mut sender = fixtures::process(50, "kill");
        sender.ancestry = vec![ancestor(20, "bash"), ancestor(1, "init")];
        let mut target = fixtures::process(51, "app");
        target.ancestry = vec![ancestor(20, "bash"), ancestor(1, "init")];
        r.sender = Arc::new(sender.clone());
        r.target = Some(Arc::new(target));
        let text = lines(&r, false).join("\n");
        assert!(
            text.contains("  sender      50 -            \\_ kill"),
            "{text}"
        );
        assert!(
            text.contains("  target      51 -            \\_ app"),
            "{text}"
        );
        r.target = Some(Arc::new(sender));
        let text = lines(&r, false).join("\n");
        assert!(text.contains("  both        50"), "{text}");
        assert_eq!(text.matches(" 50 ").count(), 1, "{text}");
    }
}
