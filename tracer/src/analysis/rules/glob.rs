//! Shell-style globs for the rules' process conditions.

/// Shell-style glob: `*` matches any run of characters (`/` included), `?` any one
/// character, everything else itself, case-sensitively. There is no escaping: names of
/// programs and arguments practically never contain `*` or `?`.
#[must_use]
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Rules are matched against every reported signal, so the common cases must not
    // allocate: a literal, and ASCII (where a byte is a character).
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return glob_match_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob_match_units(&pattern, &text, '*', '?')
}

fn glob_match_units<T: Copy + PartialEq>(
    pattern: &[T],
    text: &[T],
    any_run: T,
    any_one: T,
) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern resumes, and the text position that `*` ends at.
    // Retrying only from the latest `*` is enough (a later `*` can absorb whatever an
    // earlier one would have), which keeps this O(pattern * text) with no recursion.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&c) if c == any_run => {
                p += 1;
                star = Some((p, t));
            }
            Some(&c) if c == any_one || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((resume, end)) => {
                    p = resume;
                    t = end + 1;
                    star = Some((resume, end + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == any_run))
}
