//! Running cargo on the workspace and other child processes.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{Context, Result, bail};

pub struct Workspace {
    root: PathBuf,
    cargo: OsString,
}

impl Workspace {
    /// The workspace is found from xtask's own manifest, not the cwd, so `cargo xtask`
    /// behaves the same from any directory of the tree.
    pub fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        // The cargo that runs us (set by `cargo run`) keeps the toolchain the user chose,
        // e.g. with `cargo +debian xtask`.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Ok(Self { root, cargo })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A cargo command run from the workspace root, so that its .cargo/config.toml
    /// applies.
    pub fn cargo<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(args).current_dir(&self.root);
        cmd
    }

    /// Asked of cargo rather than assumed to be ./target: `CARGO_TARGET_DIR` or a
    /// `build.target-dir` setting move it.
    pub fn target_dir(&self) -> Result<PathBuf> {
        let mut cmd = self.cargo(["metadata", "--format-version", "1", "--no-deps"]);
        let out = cmd
            .output()
            .with_context(|| format!("could not start {}", show(&cmd)))?;
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}",
                show(&cmd),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("cargo metadata printed invalid JSON")?;
        let dir = meta["target_directory"]
            .as_str()
            .context("cargo metadata has no target_directory")?;
        Ok(PathBuf::from(dir))
    }
}

/// Runs a step that must succeed before the next one starts.
pub fn run_step(cmd: &mut Command) -> Result<()> {
    let status = spawn_wait(cmd)?;
    if !status.success() {
        bail!("{} failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs the last command of a task and hands its exit status on as ours, the way a
/// shell would, so callers (CI, scripts) see the child's own code.
pub fn run_final(cmd: &mut Command) -> Result<ExitCode> {
    let status = spawn_wait(cmd)?;
    Ok(ExitCode::from(shell_code(status)))
}

pub fn shell_code(status: ExitStatus) -> u8 {
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    // Exit codes are a byte on Linux; anything outside it still has to read as failure.
    u8::try_from(code).unwrap_or(1)
}

fn spawn_wait(cmd: &mut Command) -> Result<ExitStatus> {
    eprintln!("xtask: running {}", show(cmd));
    cmd.status()
        .with_context(|| format!("could not start {}", show(cmd)))
}

/// The command line as a person would type it: Command's Debug form quotes every word,
/// and cargo's full toolchain path would drown the arguments.
pub fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    std::iter::once(program.file_name().unwrap_or(program.as_os_str()))
        .chain(cmd.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ExitStatus {
        Command::new("sh").args(["-c", script]).status().unwrap()
    }

    #[test]
    fn exit_code_is_passed_on() {
        assert_eq!(shell_code(sh("exit 0")), 0);
        assert_eq!(shell_code(sh("exit 7")), 7);
    }

    #[test]
    fn death_by_signal_reads_as_128_plus_signal() {
        assert_eq!(shell_code(sh("kill -TERM $$")), 128 + 15);
    }
}
