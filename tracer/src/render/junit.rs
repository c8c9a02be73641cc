//! JUnit XML, as CI systems (GitLab, Jenkins, GitHub test reporters, Azure, ...) read
//! it: written by hand, with every piece of text escaped so that whatever a command
//! line contains, the file stays well-formed XML 1.0.

use std::fmt::Write as _;

/// One `<testsuite>` inside a `<testsuites>` root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suite {
    pub name: String,
    /// `YYYY-MM-DDTHH:MM:SS` (UTC).
    pub timestamp: String,
    pub time_seconds: f64,
    pub properties: Vec<(String, String)>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Case {
    pub name: String,
    pub classname: String,
    pub time_seconds: f64,
    pub failure: Option<Failure>,
    pub system_out: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// One line: what CI systems show next to the test name.
    pub message: String,
    /// The failure's type attribute, e.g. the signal's name.
    pub kind: String,
    /// The details, shown when the test is opened.
    pub text: String,
}

impl Suite {
    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }

    pub fn to_xml(&self) -> String {
        let tests = self.cases.len();
        let failures = self.failures();
        let time = seconds(self.time_seconds);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"sigwho\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">"
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\" timestamp=\"{}\">",
            attr(&self.name),
            attr(&self.timestamp)
        );
        if !self.properties.is_empty() {
            out.push_str("    <properties>\n");
            for (name, value) in &self.properties {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    attr(name),
                    attr(value)
                );
            }
            out.push_str("    </properties>\n");
        }
        for case in &self.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                attr(&case.name),
                attr(&case.classname),
                seconds(case.time_seconds)
            );
            if case.failure.is_none() && case.system_out.is_none() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if let Some(failure) = &case.failure {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    attr(&failure.message),
                    attr(&failure.kind),
                    text(&failure.text)
                );
            }
            if let Some(system_out) = &case.system_out {
                let _ = writeln!(out, "      <system-out>{}</system-out>", text(system_out));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn seconds(value: f64) -> String {
    if value.is_finite() && value > 0.0 {
        format!("{value:.3}")
    } else {
        "0".to_owned()
    }
}

/// Characters XML 1.0 allows at all (its `Char` production); Rust strings cannot hold
/// surrogates, so what is left to exclude is most C0 controls, U+FFFE and U+FFFF.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

fn escape(value: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attribute => out.push_str("&quot;"),
            '\'' if in_attribute => out.push_str("&apos;"),
            // A parser turns raw whitespace in an attribute into spaces; references
            // survive. In text, \r alone would be normalised to \n.
            '\n' if in_attribute => out.push_str("&#10;"),
            '\t' if in_attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if allowed(c) => out.push(c),
            // Not representable in XML 1.0, not even as a reference: shown as an escape.
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out
}

/// `value` escaped for a double-quoted attribute.
pub fn attr(value: &str) -> String {
    escape(value, true)
}

/// `value` escaped for element content.
pub fn text(value: &str) -> String {
    escape(value, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            attr("a<b>&\"c\" 'd'\n\te\r"),
            "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;&#10;&#9;e&#13;"
        );
        assert_eq!(text("x]]>y\n'\""), "x]]&gt;y\n'\"");
        assert_eq!(
            text("esc\u{1b}[0m bell\u{7} nul\0"),
            "esc\\u{1b}[0m bell\\u{7} nul\\u{0}"
        );
        assert_eq!(
            text("\u{fffe}\u{ffff}\u{fffd}é😀"),
            "\\u{fffe}\\u{ffff}\u{fffd}é😀"
        );
    }

    #[test]
    fn counts_failures_and_closes_every_element() {
        let suite = Suite {
            name: "sigwho run: make <test>".into(),
            timestamp: "2026-01-02T03:04:05".into(),
            time_seconds: 1.5,
            properties: vec![("exit_status".into(), "143".into())],
            cases: vec![
                Case {
                    name: "make test".into(),
                    classname: "sigwho".into(),
                    ..Case::default()
                },
                Case {
                    name: "sleep 30 (pid 7)".into(),
                    classname: "sigwho".into(),
                    failure: Some(Failure {
                        message: "killed by SIGTERM".into(),
                        kind: "SIGTERM".into(),
                        text: "details & more".into(),
                    }),
                    system_out: Some("out".into()),
                    ..Case::default()
                },
            ],
        };
        let xml = suite.to_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("name=\"sigwho run: make &lt;test&gt;\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"make test\" classname=\"sigwho\" time=\"0\"/>"));
        assert!(xml.contains(
            "<failure message=\"killed by SIGTERM\" type=\"SIGTERM\">details &amp; more</failure>"
        ));
        assert!(xml.contains("time=\"1.500\""));
        assert!(xml.ends_with("  </testsuite>\n</testsuites>\n"));
        assert_eq!(xml.matches("<testcase").count(), 2);
        assert_eq!(xml.matches("</testcase>").count(), 1);
    }
}
