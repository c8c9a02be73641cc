//! How long each part of `cargo xtask test` took, printed at the end so that CI logs
//! (and the README's figures) say where the time goes.

use std::time::{Duration, Instant};

pub struct Phases {
    done: Vec<(&'static str, Duration)>,
    started: Instant,
}

impl Phases {
    pub fn new() -> Self {
        Self {
            done: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Runs one part and remembers how long it took, whether it succeeded or not.
    pub fn time<T>(&mut self, name: &'static str, part: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = part();
        self.done.push((name, start.elapsed()));
        out
    }

    /// One line such as `setup 2 s, build 95 s, ..., total 610 s`.
    pub fn summary(&self) -> String {
        let total = self.started.elapsed();
        let mut parts: Vec<String> = self
            .done
            .iter()
            .map(|(name, took)| format!("{name} {} s", took.as_secs()))
            .collect();
        parts.push(format!("total {} s", total.as_secs()));
        parts.join(", ")
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if !self.done.is_empty() {
            eprintln!("xtask: test took {}", self.summary());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Phases;

    #[test]
    fn summary_names_every_part_and_the_total() {
        let mut phases = Phases::new();
        let value = phases.time("build", || 7);
        assert_eq!(value, 7);
        phases.time("tests", || ());
        let summary = phases.summary();
        assert!(
            summary.starts_with("build 0 s, tests 0 s, total "),
            "{summary}"
        );
        // Nothing printed twice: the Drop line is the only output.
        phases.done.clear();
    }
}
