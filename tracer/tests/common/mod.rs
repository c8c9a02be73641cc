//! What the golden and replay tests share: how a text that differs from its file is shown.

/// Where `got` first differs from `want`: the 1-based line number and both lines
/// (`(end)` past the shorter text). `None` when they are equal.
pub fn first_difference<'a>(got: &'a str, want: &'a str) -> Option<(usize, &'a str, &'a str)> {
    if got == want {
        return None;
    }
    let line = got
        .lines()
        .zip(want.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
    Some((
        line + 1,
        got.lines().nth(line).unwrap_or("(end)"),
        want.lines().nth(line).unwrap_or("(end)"),
    ))
}
