//! A journal recorded by `sigwho record` in a temp directory, and queries of it; shared by
//! the test files that need recorded signals (included with `#[path]`, not a test of its
//! own).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use sigwho_tests::{Run, Sigwho, Value, require_root, run, sigwho_bin, wait_until};

pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
const READY: &str = "sigwho: recording";

/// A recorder writing a journal in a fresh temp directory; both go on drop.
pub struct Recording {
    dir: PathBuf,
    pub journal: PathBuf,
    recorder: Option<Sigwho>,
}

impl Recording {
    pub fn start(name: &str) -> Recording {
        static N: AtomicU32 = AtomicU32::new(0);
        require_root();
        let dir = std::env::temp_dir().join(format!(
            "sigwho-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let journal = dir.join("journal");
        let cmd = Sigwho::command(&["record", "--journal", path_str(&journal)]);
        let recorder = Some(Sigwho::start_waiting_for(cmd, READY));
        Recording {
            dir,
            journal,
            recorder,
        }
    }

    /// `sigwho query --journal J ARGS` with extra environment.
    pub fn query_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(sigwho_bin());
        cmd.args(["query", "--journal", path_str(&self.journal)])
            .args(args);
        cmd
    }

    pub fn query(&self, args: &[&str]) -> Run {
        run(self.query_cmd(args), EVENT_TIMEOUT)
    }

    /// Queries until `--json` answers for ARGS contain an event `pred` accepts.
    #[track_caller]
    pub fn wait_recorded(&self, args: &[&str], pred: impl Fn(&Value) -> bool) -> Value {
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let mut last = Vec::new();
        let mut found = None;
        let ok = wait_until(
            || {
                let r = self.query(&json_args).assert_success();
                last = r
                    .stdout
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
                    .collect();
                found = last.iter().find(|e| pred(e)).cloned();
                found.is_some()
            },
            EVENT_TIMEOUT,
        );
        assert!(ok, "not recorded within {EVENT_TIMEOUT:?}: {last:#?}");
        found.expect("found")
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // The recorder flushes and stops on SIGTERM before its directory goes.
        drop(self.recorder.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}
