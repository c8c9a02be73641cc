//! auditd as a comparison tracer: the audit daemon from Debian's `auditd` package, with
//! one rule for the kill-family syscalls, which is how many teams answer "who sent that
//! signal" today. The bench starts its own daemon with a configuration in the scratch
//! directory (its log is `$OUT`), adds the rule once the daemon has registered with the
//! kernel, and removes the rule and stops the daemon afterwards, leaving the kernel's
//! audit state as it found it. A machine whose own audit daemon is running is left alone
//! (the kernel takes one daemon): the row is skipped with that reason.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The rule's key: the records the bench counts carry it.
pub const KEY: &str = "sigwho-bench";

/// `auditctl` arguments for the rule, after `-a` (add) or `-d` (delete). kill, tkill and
/// tgkill are what audit guides name for signal senders; `arch=b64` is the native ABI on
/// `x86_64` and arm64.
const RULE: [&str; 7] = [
    "always,exit",
    "-F",
    "arch=b64",
    "-S",
    "kill,tkill,tgkill",
    "-k",
    KEY,
];

/// `auditctl -v`'s line (auditd itself has no version option).
pub fn version() -> Option<String> {
    let out = Command::new("auditctl").arg("-v").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What `auditctl -s` says about the kernel's audit state.
struct Status {
    enabled: u64,
    pid: u64,
    lost: u64,
}

fn status() -> Result<Status> {
    let out = auditctl(&["-s"])?;
    let value = |name: &str| -> Result<u64> {
        out.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("no `{name}` in `auditctl -s`:\n{out}"))
    };
    Ok(Status {
        enabled: value("enabled ")?,
        pid: value("pid ")?,
        lost: value("lost ")?,
    })
}

fn auditctl(args: &[&str]) -> Result<String> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .context("could not run auditctl")?;
    if !out.status.success() {
        bail!(
            "auditctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The daemon's configuration: its log at `log`, and every "disk is filling" action
/// IGNORE, so that a full scratch disk cannot make it suspend or halt the machine.
pub fn write_config(dir: &Path, log: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("plugins"))?;
    let conf = dir.join("auditd.conf");
    let text = format!(
        "local_events = yes\nwrite_logs = yes\nlog_file = {log}\nlog_group = root\n\
         log_format = ENRICHED\nflush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 0\n\
         num_logs = 1\npriority_boost = 4\nname_format = NONE\n\
         max_log_file_action = IGNORE\nspace_left = 2\nspace_left_action = IGNORE\n\
         admin_space_left = 1\nadmin_space_left_action = IGNORE\n\
         disk_full_action = IGNORE\ndisk_error_action = IGNORE\nuse_libwrap = no\n\
         tcp_listen_queue = 5\ntcp_max_per_addr = 1\ntcp_client_max_idle = 0\n\
         transport = TCP\nkrb5_principal = auditd\ndistribute_network = no\n\
         q_depth = 2000\noverflow_action = IGNORE\nmax_restarts = 10\n\
         plugin_dir = {plugins}\nend_of_event_timeout = 2\n",
        log = log.display(),
        plugins = dir.join("plugins").display(),
    );
    fs::write(&conf, text).with_context(|| format!("could not write {}", conf.display()))?;
    // auditd refuses a configuration others may write.
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o640))?;
    Ok(())
}

/// The kernel side of one auditd run: the rule, and the state to restore.
pub struct Session {
    enabled_before: u64,
    lost_before: u64,
    rule_added: bool,
}

impl Session {
    /// Before the storm's processes fork (and so before the daemon starts); refuses when
    /// another audit daemon is registered. Switches auditing on when it is off.
    ///
    /// Why before the fork: the kernel gives a task its audit context, without which its
    /// system calls are never audited, in `copy_process()` only once auditing has ever been
    /// on since boot (kernel/auditsc.c, `audit_alloc()`: `if (likely(!audit_ever_enabled))
    /// return 0;`). On a machine where nothing had switched it on, the daemon's own start
    /// came after the storm's senders and the bench had forked, the rule matched none of
    /// their `kill()` calls, and the row was skipped ("no line for the probe signal"); every
    /// later run on that boot worked. The Drop puts back what was there.
    pub fn before_start() -> Result<Session> {
        let status = status()?;
        if status.pid != 0 {
            bail!(
                "an audit daemon (pid {}) is already running here; the bench leaves it alone",
                status.pid
            );
        }
        let session = Session {
            enabled_before: status.enabled,
            lost_before: status.lost,
            rule_added: false,
        };
        if status.enabled == 0 {
            auditctl(&["-e", "1"])?;
        }
        Ok(session)
    }

    /// Waits until the daemon `pid` has registered with the kernel, then adds the rule.
    pub fn attach(&mut self, pid: u32, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while status()?.pid != u64::from(pid) {
            if Instant::now() > deadline {
                bail!("auditd (pid {pid}) did not register with the kernel");
            }
            // Polled: registration is a netlink exchange the bench cannot wait on.
            thread::sleep(Duration::from_millis(20));
        }
        let mut args = vec!["-a"];
        args.extend(RULE);
        auditctl(&args)?;
        self.rule_added = true;
        self.lost_before = status()?.lost;
        Ok(())
    }

    /// Removes the rule (before the daemon stops); the records the kernel lost
    /// meanwhile (its backlog was full).
    pub fn detach(&mut self) -> Result<u64> {
        self.remove_rule()?;
        Ok(status()?.lost.saturating_sub(self.lost_before))
    }

    fn remove_rule(&mut self) -> Result<()> {
        if self.rule_added {
            let mut args = vec!["-d"];
            args.extend(RULE);
            auditctl(&args)?;
            self.rule_added = false;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(err) = self.remove_rule() {
            eprintln!("bench: warning: {err:#}");
        }
        // The daemon switches auditing on when it starts; put back what was there.
        if let Err(err) = auditctl(&["-e", &self.enabled_before.to_string()]) {
            eprintln!("bench: warning: {err:#}");
        }
    }
}

/// Sends the readiness probe (`SIGWINCH` to `pid`) from a process forked now, which has
/// an audit context whatever the bench's own process lacks (see
/// [`Session::before_start`]): `sh`'s built-in kill, a `kill()` system call of its own.
pub fn probe(pid: u32, signal: i32) -> Result<()> {
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh"])
        .arg(signal.to_string())
        .arg(pid.to_string())
        .status()
        .context("could not run sh for auditd's probe signal")?;
    if !status.success() {
        bail!("sh -c 'kill -s {signal} {pid}' failed ({status})");
    }
    Ok(())
}

/// Whether `line` is the rule's record of a kill-family call aimed at `pid`: a SYSCALL
/// record with the key and the pid as first argument (in hex, as audit logs it).
pub fn names_target(line: &str, pid: u32) -> bool {
    let first_arg = format!("a0={pid:x} ");
    line.starts_with("type=SYSCALL")
        && line.contains(&format!("key=\"{KEY}\""))
        && line.contains(&first_arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_syscall_records_of_the_rule_for_the_pid() {
        let line = "type=SYSCALL msg=audit(1795739675.318:88537): arch=c000003e syscall=62 \
                    success=yes exit=0 a0=7b a1=a a2=0 a3=0 items=0 ppid=1 pid=5 \
                    comm=\"sigwho-storm\" key=\"sigwho-bench\"ARCH=x86_64";
        assert!(names_target(line, 123));
        assert!(!names_target(line, 124));
        assert!(!names_target(&line.replace("sigwho-bench", "other"), 123));
        assert!(!names_target(
            "type=OBJ_PID msg=audit(1:2): opid=123 a0=7b key=\"sigwho-bench\"",
            123
        ));
    }
}
