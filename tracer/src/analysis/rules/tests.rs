use super::parse::is_kebab_case;
use super::*;
use crate::analysis::classify::{Origin, OriginClass, Relation, SignalResult};
use crate::model::signals::parse_signal;

// ---- building facts ----

fn process(comm: &str, exe: &str, argv: &[&str]) -> ProcFacts {
    ProcFacts {
        pid: 0,
        comm: comm.to_owned(),
        exe: (!exe.is_empty()).then(|| exe.to_owned()),
        argv: argv.iter().map(|&arg| arg.to_owned()).collect(),
    }
}

fn signo(name: &str) -> i32 {
    parse_signal(name).unwrap()
}

/// A signal sent by a process with kill(2).
fn sent(signal: &str, sender: ProcFacts, relation: Relation, target: ProcFacts) -> Facts {
    let own = relation == Relation::SelfSignal;
    Facts {
        signo: signo(signal),
        signal: signal.to_owned(),
        origin: Some(Origin::Kill),
        origin_class: Some(if own {
            OriginClass::SelfSent
        } else {
            OriginClass::Explicit
        }),
        code: "SI_USER".to_owned(),
        sender,
        target,
        relation,
        ..Facts::default()
    }
}

/// A signal the kernel made while `sender` was running.
fn by_kernel(
    signal: &str,
    class: OriginClass,
    sender: ProcFacts,
    relation: Relation,
    target: ProcFacts,
) -> Facts {
    Facts {
        origin: Some(Origin::Kernel),
        origin_class: Some(class),
        code: "SI_KERNEL".to_owned(),
        ..sent(signal, sender, relation, target)
    }
}

fn after(mut facts: Facts, previous: &[(&str, f64)]) -> Facts {
    facts.previous_from_sender = previous.iter().map(|&(s, t)| (signo(s), t)).collect();
    facts
}

fn caused(mut facts: Facts) -> Facts {
    facts.cause_depth = 1;
    facts
}

fn hint_ids(facts: &Facts) -> Vec<String> {
    Rules::builtin()
        .hints(facts)
        .into_iter()
        .map(|h| h.id)
        .collect()
}

#[track_caller]
fn fires(id: &str, facts: &Facts) {
    let ids = hint_ids(facts);
    assert!(
        ids.iter().any(|i| i == id),
        "{id} should fire, got {ids:?} for {facts:#?}"
    );
}

#[track_caller]
fn quiet(id: &str, facts: &Facts) {
    let ids = hint_ids(facts);
    assert!(
        !ids.iter().any(|i| i == id),
        "{id} should not fire, got {ids:?} for {facts:#?}"
    );
}

fn app() -> ProcFacts {
    process(
        "myapp",
        "/srv/app/bin/myapp",
        &["/srv/app/bin/myapp", "--port", "8080"],
    )
}

fn kworker() -> ProcFacts {
    process("kworker/u16:2", "", &[])
}

fn node() -> ProcFacts {
    process("node", "/usr/bin/node", &["node", "server.js"])
}

fn python() -> ProcFacts {
    process("python3", "/usr/bin/python3.12", &["python3", "build.py"])
}

fn timeout() -> ProcFacts {
    process(
        "timeout",
        "/usr/bin/timeout",
        &["timeout", "30", "./long-job"],
    )
}

fn systemd() -> ProcFacts {
    process(
        "systemd",
        "/usr/lib/systemd/systemd",
        &["/sbin/init", "splash"],
    )
}

fn runc(root: &str) -> ProcFacts {
    process(
        "runc",
        "/usr/bin/runc",
        &["runc", "--root", root, "kill", "4f2a9c", "15"],
    )
}

fn pm2_daemon() -> ProcFacts {
    process(
        "PM2 v5.3.1: God",
        "/usr/bin/node",
        &["node", "/usr/lib/node_modules/pm2/lib/Daemon.js"],
    )
}

fn supervisord() -> ProcFacts {
    process(
        "supervisord",
        "/usr/bin/python3.11",
        &[
            "/usr/bin/python3",
            "/usr/bin/supervisord",
            "-n",
            "-c",
            "/etc/supervisor/supervisord.conf",
        ],
    )
}

// ---- the shipped rules ----

#[test]
fn builtin_rules_parse() {
    let parsed = Rules::from_json(BUILTIN_RULES).unwrap();
    assert_eq!(Rules::builtin().len(), parsed.len());
    assert!(Rules::builtin().len() >= 30);
    assert!(!Rules::builtin().is_empty());
}

#[test]
fn docs_list_every_shipped_rule() {
    let docs = include_str!("../../../../docs/hints.md");
    for id in Rules::builtin().ids() {
        assert!(
            docs.contains(&format!("`{id}`")),
            "docs/hints.md does not list {id}"
        );
    }
}

#[test]
fn node_exec_maxbuffer_timeout() {
    let id = "node-exec-maxbuffer-timeout";
    let shell = process("sh", "/usr/bin/dash", &["/bin/sh", "-c", "git log --all"]);
    let exec = sent("SIGTERM", node(), Relation::Parent, shell.clone());
    fires(id, &exec);
    // node installed by nvm, and node renamed through process.title.
    let nvm = process(
        "node",
        "/home/u/.nvm/versions/node/v20.11.0/bin/node",
        &["node", "a.js"],
    );
    fires(id, &sent("SIGTERM", nvm, Relation::Parent, shell.clone()));
    let titled = process("my-api", "/usr/bin/node", &["my-api"]);
    fires(
        id,
        &sent("SIGTERM", titled, Relation::Parent, shell.clone()),
    );

    quiet(
        id,
        &sent("SIGKILL", node(), Relation::Parent, shell.clone()),
    );
    quiet(
        id,
        &sent("SIGTERM", node(), Relation::Ancestor, shell.clone()),
    );
    quiet(
        id,
        &sent("SIGTERM", python(), Relation::Parent, shell.clone()),
    );
    // npm passing on the SIGTERM it got, and process managers written in node.
    let npm = process("npm run start", "/usr/bin/node", &["npm", "run", "start"]);
    quiet(
        id,
        &caused(sent("SIGTERM", npm, Relation::Parent, shell.clone())),
    );
    quiet(id, &sent("SIGTERM", pm2_daemon(), Relation::Parent, node()));
    let nodemon = process(
        "node",
        "/usr/bin/node",
        &["node", "/usr/lib/node_modules/nodemon/bin/nodemon.js"],
    );
    quiet(id, &sent("SIGTERM", nodemon, Relation::Parent, node()));
}

#[test]
fn python_subprocess_timeout() {
    let id = "python-subprocess-timeout";
    let make = process("make", "/usr/bin/make", &["make", "-j8"]);
    fires(
        id,
        &sent("SIGKILL", python(), Relation::Parent, make.clone()),
    );
    let versioned = process(
        "python3.11",
        "/usr/bin/python3.11",
        &["/usr/bin/python3.11", "ci.py"],
    );
    fires(
        id,
        &sent("SIGKILL", versioned, Relation::Parent, make.clone()),
    );

    // Popen.terminate(), terminate() then kill(), and supervisord (a python program).
    quiet(
        id,
        &sent("SIGTERM", python(), Relation::Parent, make.clone()),
    );
    quiet(
        id,
        &after(
            sent("SIGKILL", python(), Relation::Parent, make.clone()),
            &[("SIGTERM", 5.0)],
        ),
    );
    quiet(id, &sent("SIGKILL", supervisord(), Relation::Parent, app()));
    quiet(
        id,
        &sent("SIGKILL", python(), Relation::Unrelated, make.clone()),
    );
}

#[test]
fn coreutils_timeout() {
    let job = process("long-job", "/home/u/long-job", &["./long-job"]);
    let first = sent("SIGTERM", timeout(), Relation::Parent, job.clone());
    fires("coreutils-timeout", &first);
    quiet("coreutils-timeout-kill-after", &first);
    // The same signal to the process group reaches grandchildren.
    fires(
        "coreutils-timeout",
        &sent("SIGTERM", timeout(), Relation::Ancestor, job.clone()),
    );
    // timeout -s INT.
    fires(
        "coreutils-timeout",
        &sent("SIGINT", timeout(), Relation::Parent, job.clone()),
    );
    // timeout -s KILL: the first SIGKILL is the timeout itself.
    fires(
        "coreutils-timeout",
        &sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
    );

    // The SIGCONT after the signal is not another timeout.
    let cont = after(
        sent("SIGCONT", timeout(), Relation::Parent, job.clone()),
        &[("SIGTERM", 0.0)],
    );
    quiet("coreutils-timeout", &cont);
    // Not somebody else's timeout, nor a signal timeout only passed on.
    quiet(
        "coreutils-timeout",
        &sent("SIGTERM", timeout(), Relation::Unrelated, job.clone()),
    );
    let forwarded = caused(sent("SIGTERM", timeout(), Relation::Parent, job.clone()));
    quiet("coreutils-timeout", &forwarded);
    fires("coreutils-timeout-forward", &forwarded);
    quiet("coreutils-timeout-forward", &first);
}

#[test]
fn coreutils_timeout_kill_after() {
    let id = "coreutils-timeout-kill-after";
    let job = process("long-job", "/home/u/long-job", &["./long-job"]);
    let history = [
        ("SIGTERM", 5.0),
        ("SIGTERM", 5.0),
        ("SIGCONT", 5.0),
        ("SIGCONT", 5.0),
    ];
    let kill = after(
        sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
        &history,
    );
    fires(id, &kill);
    quiet("coreutils-timeout", &kill);

    // A first SIGKILL (-s KILL) and its repeat to the process group.
    quiet(
        id,
        &sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
    );
    let repeat = after(
        sent("SIGKILL", timeout(), Relation::Parent, job.clone()),
        &[("SIGKILL", 0.0)],
    );
    quiet(id, &repeat);
    // SIGKILL after SIGTERM from something that is not timeout.
    quiet(
        id,
        &after(
            sent("SIGKILL", app(), Relation::Parent, job.clone()),
            &[("SIGTERM", 5.0)],
        ),
    );
}

#[test]
fn systemd_stop() {
    let id = "systemd-stop";
    let nginx = process(
        "nginx",
        "/usr/sbin/nginx",
        &["nginx: master process /usr/sbin/nginx"],
    );
    fires(
        id,
        &sent("SIGTERM", systemd(), Relation::Parent, nginx.clone()),
    );
    // A user manager, and a worker reached through KillMode=control-group.
    let user = process(
        "systemd",
        "/usr/lib/systemd/systemd",
        &["/usr/lib/systemd/systemd", "--user"],
    );
    fires(id, &sent("SIGTERM", user, Relation::Parent, app()));
    fires(
        id,
        &sent("SIGTERM", systemd(), Relation::Ancestor, nginx.clone()),
    );

    quiet(
        id,
        &sent("SIGHUP", systemd(), Relation::Parent, nginx.clone()),
    );
    let logind = process(
        "systemd-logind",
        "/usr/lib/systemd/systemd-logind",
        &["/usr/lib/systemd/systemd-logind"],
    );
    quiet(
        id,
        &sent("SIGTERM", logind, Relation::Unrelated, nginx.clone()),
    );
}

#[test]
fn systemd_stop_timeout() {
    let id = "systemd-stop-timeout";
    let kill = after(
        sent("SIGKILL", systemd(), Relation::Parent, app()),
        &[("SIGTERM", 90.0), ("SIGCONT", 90.0)],
    );
    fires(id, &kill);
    fires("escalation", &kill);
    // systemctl kill -s KILL: no SIGTERM first.
    quiet(id, &sent("SIGKILL", systemd(), Relation::Parent, app()));
}

#[test]
fn systemd_watchdog() {
    let id = "systemd-watchdog";
    fires(id, &sent("SIGABRT", systemd(), Relation::Parent, app()));
    quiet(id, &sent("SIGABRT", app(), Relation::SelfSignal, app()));
}

#[test]
fn systemd_shutdown() {
    let id = "systemd-shutdown";
    let shutdown = process(
        "systemd-shutdow",
        "/usr/lib/systemd/systemd-shutdown",
        &[
            "/usr/lib/systemd/systemd-shutdown",
            "reboot",
            "--timeout",
            "90000000us",
        ],
    );
    fires(id, &sent("SIGTERM", shutdown, Relation::Unrelated, app()));
    quiet(id, &sent("SIGTERM", systemd(), Relation::Parent, app()));
}

#[test]
fn container_stop() {
    let id = "container-stop";
    // docker stop: runc kill from containerd's moby namespace; runc and the
    // container's init are both children of the shim.
    let docker = sent(
        "SIGTERM",
        runc("/var/run/docker/runtime-runc/moby"),
        Relation::Sibling,
        app(),
    );
    fires(id, &docker);
    quiet("kubernetes-pod-stop", &docker);
    let shim = process(
        "containerd-shim",
        "/usr/bin/containerd-shim-runc-v2",
        &[
            "/usr/bin/containerd-shim-runc-v2",
            "-namespace",
            "moby",
            "-id",
            "4f2a9c",
        ],
    );
    fires(id, &sent("SIGKILL", shim, Relation::Parent, app()));
    // docker run --init: docker-init passes the signal on.
    let init = process(
        "docker-init",
        "/sbin/docker-init",
        &["/sbin/docker-init", "--", "node", "app.js"],
    );
    fires(id, &caused(sent("SIGTERM", init, Relation::Parent, node())));
    fires(
        id,
        &sent(
            "SIGTERM",
            process("crun", "/usr/bin/crun", &["crun", "kill", "c1", "TERM"]),
            Relation::Unrelated,
            app(),
        ),
    );

    quiet(
        id,
        &sent(
            "SIGTERM",
            process(
                "runc-helper",
                "/usr/local/bin/runc-helper",
                &["runc-helper"],
            ),
            Relation::Parent,
            app(),
        ),
    );
    quiet(
        id,
        &sent(
            "SIGTERM",
            process("docker", "/usr/bin/docker", &["docker", "stop", "web"]),
            Relation::Unrelated,
            app(),
        ),
    );
}

#[test]
fn kubernetes_pod_stop() {
    let id = "kubernetes-pod-stop";
    // containerd's CRI plugin: runc's --root carries the k8s.io namespace.
    fires(
        id,
        &sent(
            "SIGTERM",
            runc("/run/containerd/runc/k8s.io"),
            Relation::Sibling,
            app(),
        ),
    );
    // CRI-O runs runc itself.
    let mut crio_runc = process(
        "runc",
        "/usr/bin/runc",
        &["/usr/bin/runc", "--root=/run/runc", "kill", "4f2a9c", "15"],
    );
    crio_runc.pid = 4242;
    let mut by_crio = sent("SIGTERM", crio_runc.clone(), Relation::Unrelated, app());
    by_crio.sender_ancestors = vec![
        process("crio", "/usr/bin/crio", &["/usr/bin/crio"]),
        process("systemd", "/usr/lib/systemd/systemd", &["/sbin/init"]),
    ];
    fires(id, &by_crio);
    fires(
        id,
        &sent(
            "SIGKILL",
            process(
                "kubelet",
                "/usr/bin/kubelet",
                &["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"],
            ),
            Relation::Unrelated,
            app(),
        ),
    );

    // runc under plain docker, and a non-runtime that mentions k8s.io.
    quiet(id, &sent("SIGTERM", crio_runc, Relation::Unrelated, app()));
    let kubectl = process(
        "kubectl",
        "/usr/bin/kubectl",
        &["kubectl", "run", "--image=registry.k8s.io/pause"],
    );
    quiet(id, &sent("SIGTERM", kubectl, Relation::Parent, app()));
}

#[test]
fn pm2() {
    let id = "pm2";
    let stop = sent("SIGINT", pm2_daemon(), Relation::Parent, node());
    fires(id, &stop);
    // kill_signal: 'SIGTERM' must not look like child_process.exec.
    let term = sent("SIGTERM", pm2_daemon(), Relation::Parent, node());
    fires(id, &term);
    quiet("node-exec-maxbuffer-timeout", &term);
    // A daemon older than sigwho: argv from /proc, rewritten by process.title.
    let old = process(
        "PM2 v5.3.1: God",
        "/usr/bin/node",
        &["PM2 v5.3.1: God Daemon (/root/.pm2)"],
    );
    fires(id, &sent("SIGKILL", old, Relation::Parent, node()));

    quiet(id, &sent("SIGINT", node(), Relation::Parent, app()));
}

#[test]
fn supervisord_rule() {
    let id = "supervisord";
    fires(id, &sent("SIGTERM", supervisord(), Relation::Parent, app()));
    let kill = after(
        sent("SIGKILL", supervisord(), Relation::Parent, app()),
        &[("SIGTERM", 10.0)],
    );
    fires(id, &kill);
    quiet("python-subprocess-timeout", &kill);

    quiet(id, &sent("SIGTERM", python(), Relation::Parent, app()));
}

#[test]
fn oom_killer() {
    let id = "oom-killer";
    fires(
        id,
        &by_kernel(
            "SIGKILL",
            OriginClass::OomKill,
            app(),
            Relation::SelfSignal,
            app(),
        ),
    );
    fires(
        id,
        &by_kernel(
            "SIGKILL",
            OriginClass::OomKill,
            python(),
            Relation::Unrelated,
            app(),
        ),
    );
    quiet(id, &sent("SIGKILL", app(), Relation::Unrelated, node()));
    quiet(
        "self-signal",
        &by_kernel(
            "SIGKILL",
            OriginClass::OomKill,
            app(),
            Relation::SelfSignal,
            app(),
        ),
    );
}

#[test]
fn userspace_oom_killer() {
    let id = "userspace-oom-killer";
    let oomd = process(
        "systemd-oomd",
        "/usr/lib/systemd/systemd-oomd",
        &["/usr/lib/systemd/systemd-oomd"],
    );
    fires(id, &sent("SIGKILL", oomd, Relation::Unrelated, app()));
    let earlyoom = process(
        "earlyoom",
        "/usr/bin/earlyoom",
        &["/usr/bin/earlyoom", "-r", "3600"],
    );
    fires(id, &sent("SIGTERM", earlyoom, Relation::Unrelated, app()));
    quiet(id, &sent("SIGKILL", systemd(), Relation::Parent, app()));
}

#[test]
fn terminal_keys() {
    let shell = process("bash", "/usr/bin/bash", &["-bash"]);
    let key = |signal| {
        by_kernel(
            signal,
            OriginClass::Terminal,
            kworker(),
            Relation::Unrelated,
            app(),
        )
    };
    fires("shell-ctrl-c", &key("SIGINT"));
    fires("shell-ctrl-backslash", &key("SIGQUIT"));
    fires("shell-ctrl-z", &key("SIGTSTP"));
    fires("terminal-hangup", &key("SIGHUP"));
    fires("terminal-background-io", &key("SIGTTIN"));
    fires("terminal-background-io", &key("SIGTTOU"));
    assert_eq!(hint_ids(&key("SIGINT")), ["shell-ctrl-c"]);

    // kill -INT from a shell is not ^C; SIGCONT and SIGWINCH from the tty say nothing.
    quiet(
        "shell-ctrl-c",
        &sent("SIGINT", shell, Relation::Parent, app()),
    );
    quiet("shell-ctrl-c", &key("SIGQUIT"));
    assert!(hint_ids(&key("SIGCONT")).is_empty());
    assert!(hint_ids(&key("SIGWINCH")).is_empty());
}

#[test]
fn shell_hangup_jobs() {
    let id = "shell-hangup-jobs";
    let shell = process("bash", "/usr/bin/bash", &["-bash"]);
    fires(
        id,
        &caused(sent("SIGHUP", shell.clone(), Relation::Parent, app())),
    );
    let zsh = process("zsh", "/usr/bin/zsh", &["-zsh"]);
    fires(id, &sent("SIGHUP", zsh, Relation::Parent, app()));
    quiet(id, &sent("SIGTERM", shell, Relation::Parent, app()));
    quiet(id, &sent("SIGHUP", systemd(), Relation::Parent, app()));
}

#[test]
fn parent_death() {
    let id = "parent-death";
    let child = by_kernel(
        "SIGKILL",
        OriginClass::ParentDeath,
        node(),
        Relation::Parent,
        app(),
    );
    fires(id, &child);
    quiet(id, &sent("SIGKILL", node(), Relation::Parent, app()));
}

#[test]
fn pid_namespace_init_exit() {
    let id = "pid-namespace-init-exit";
    let init = process(
        "entrypoint.sh",
        "/usr/bin/bash",
        &["/bin/bash", "/entrypoint.sh"],
    );
    fires(
        id,
        &by_kernel(
            "SIGKILL",
            OriginClass::PidNamespace,
            init,
            Relation::Parent,
            app(),
        ),
    );
    quiet(
        id,
        &by_kernel(
            "SIGKILL",
            OriginClass::OomKill,
            app(),
            Relation::SelfSignal,
            app(),
        ),
    );
}

#[test]
fn kernel_classes() {
    let own = |signal, class| by_kernel(signal, class, app(), Relation::SelfSignal, app());
    fires("broken-pipe", &own("SIGPIPE", OriginClass::BrokenPipe));
    fires("resource-limit", &own("SIGXCPU", OriginClass::Rlimit));
    fires("resource-limit", &own("SIGXFSZ", OriginClass::Rlimit));
    fires("seccomp", &own("SIGSYS", OriginClass::Seccomp));
    fires("timer", &own("SIGALRM", OriginClass::Timer));
    fires("cpu-fault", &own("SIGSEGV", OriginClass::Fault));
    fires("cpu-fault", &own("SIGBUS", OriginClass::Fault));
    // The kernel's own signals to the process are not "signalled itself".
    quiet("self-signal", &own("SIGSEGV", OriginClass::Fault));
    quiet("self-signal", &own("SIGPIPE", OriginClass::BrokenPipe));

    // The same signal numbers sent with kill(1) are not those situations.
    for (signal, id) in [
        ("SIGPIPE", "broken-pipe"),
        ("SIGXCPU", "resource-limit"),
        ("SIGSYS", "seccomp"),
        ("SIGALRM", "timer"),
        ("SIGSEGV", "cpu-fault"),
    ] {
        quiet(id, &sent(signal, python(), Relation::Parent, app()));
    }
    assert!(hint_ids(&own("SIGCHLD", OriginClass::ChildState)).is_empty());
}

#[test]
fn self_signal_and_abort() {
    let mut abort = sent("SIGABRT", app(), Relation::SelfSignal, app());
    abort.origin = Some(Origin::Tgkill);
    abort.code = "SI_TKILL".to_owned();
    fires("self-abort", &abort);
    quiet("self-signal", &abort);

    let raise = sent("SIGTERM", app(), Relation::SelfSignal, app());
    fires("self-signal", &raise);
    quiet("self-abort", &raise);
    // The origin is "user" when the syscall hook is missing: still the process.
    let mut unhooked = raise.clone();
    unhooked.origin = Some(Origin::User);
    fires("self-signal", &unhooked);

    quiet(
        "self-signal",
        &sent("SIGTERM", python(), Relation::Parent, app()),
    );
    quiet(
        "self-abort",
        &sent("SIGABRT", python(), Relation::Parent, app()),
    );
}

#[test]
fn escalation() {
    let id = "escalation";
    let shell = process("bash", "/usr/bin/bash", &["bash"]);
    fires(
        id,
        &after(
            sent("SIGKILL", shell.clone(), Relation::Parent, app()),
            &[("SIGTERM", 10.0)],
        ),
    );
    // Too long ago, the wrong first signal, or no first signal at all.
    quiet(
        id,
        &after(
            sent("SIGKILL", shell.clone(), Relation::Parent, app()),
            &[("SIGTERM", 400.0)],
        ),
    );
    quiet(
        id,
        &after(
            sent("SIGKILL", shell.clone(), Relation::Parent, app()),
            &[("SIGINT", 10.0)],
        ),
    );
    quiet(id, &sent("SIGKILL", shell.clone(), Relation::Parent, app()));
    quiet(
        id,
        &after(
            sent("SIGTERM", shell, Relation::Parent, app()),
            &[("SIGTERM", 10.0)],
        ),
    );
}

#[test]
fn plain_kill_from_an_unknown_program_has_no_hint() {
    let shell = process("bash", "/usr/bin/bash", &["bash"]);
    assert!(hint_ids(&sent("SIGTERM", shell, Relation::Parent, app())).is_empty());
}

// ---- matching ----

#[test]
fn glob_basics() {
    assert!(glob_match("node", "node"));
    assert!(!glob_match("node", "nodejs"));
    assert!(!glob_match("node", "Node"));
    assert!(glob_match("*", ""));
    assert!(glob_match("*", "anything/at all"));
    assert!(glob_match("*/node", "/usr/bin/node"));
    assert!(!glob_match("*/node", "/usr/bin/node.old"));
    assert!(glob_match(
        "*node*",
        "/home/u/.nvm/versions/node/v20/bin/node"
    ));
    assert!(glob_match("PM2*", "PM2 v5.3.1: God"));
    assert!(glob_match("python3.??", "python3.12"));
    assert!(!glob_match("python3.??", "python3.9"));
    assert!(glob_match("?", "é"));
    assert!(glob_match("a*b*c", "aXbYbZc"));
    assert!(!glob_match("a*b*c", "aXbYbZ"));
    assert!(glob_match("*a*b", "xaxb"));
    assert!(glob_match("**x", "x"));
    assert!(!glob_match("", "x"));
    assert!(glob_match("", ""));
    assert!(!glob_match("x", ""));
    assert!(!glob_match("?", ""));
}

#[test]
fn glob_does_not_blow_up() {
    let text = "a".repeat(10_000);
    assert!(!glob_match("*a*a*a*a*a*a*b", &text));
    assert!(glob_match("*a*a*a*a*a*a", &text));
}

fn one_rule(when: &str) -> Rules {
    let json = format!(r#"{{"rules": [{{"id": "r", "text": "t", "when": {when}}}]}}"#);
    Rules::from_json(&json).unwrap_or_else(|e| panic!("{when}: {e}"))
}

fn matches(when: &str, facts: &Facts) -> bool {
    !one_rule(when).hints(facts).is_empty()
}

#[test]
fn program_is_comm_or_exe_or_argv0_file_name() {
    let when = r#"{"sender": {"program": "python3.12"}}"#;
    let by_exe = process("python3", "/usr/bin/python3.12", &["python3"]);
    let by_argv0 = process("build.py", "", &["/opt/py/bin/python3.12", "build.py"]);
    let by_comm = process("python3.12", "", &[]);
    let upgraded = process("python3", "/usr/bin/python3.12 (deleted)", &["python3"]);
    let none = process("python3", "/usr/bin/python3.11", &["python3", "python3.12"]);
    for (who, expected) in [
        (by_exe, true),
        (by_argv0, true),
        (by_comm, true),
        (upgraded, true),
        (none, false),
    ] {
        let facts = Facts {
            sender: who.clone(),
            ..Facts::default()
        };
        assert_eq!(matches(when, &facts), expected, "{who:?}");
    }
}

#[test]
fn process_keys_all_hold_and_ancestors_match_as_one() {
    let facts = Facts {
        sender: process("sh", "/usr/bin/dash", &["sh", "-c", "make"]),
        sender_ancestors: vec![
            process("make", "/usr/bin/make", &["make", "-j8"]),
            process("bash", "/usr/bin/bash", &["bash", "ci.sh"]),
        ],
        target: process("cc1", "/usr/lib/gcc/cc1", &["cc1", "x.c"]),
        target_ancestors: vec![process("gcc", "/usr/bin/gcc", &["gcc", "x.c"])],
        ..Facts::default()
    };
    assert!(matches(
        r#"{"sender": {"comm": "sh", "argv": "-c"}}"#,
        &facts
    ));
    assert!(!matches(
        r#"{"sender": {"comm": "sh", "argv": "-j8"}}"#,
        &facts
    ));
    assert!(matches(
        r#"{"sender_ancestor": {"comm": "make", "argv": "-j*"}}"#,
        &facts
    ));
    // Each key met by a different ancestor is not one ancestor meeting both.
    assert!(!matches(
        r#"{"sender_ancestor": {"comm": "make", "argv": "ci.sh"}}"#,
        &facts
    ));
    assert!(matches(
        r#"{"target": {"exe": "*/cc1"}, "target_ancestor": {"program": "gcc"}}"#,
        &facts
    ));
    assert!(!matches(
        r#"{"target_ancestor": {"program": "make"}}"#,
        &facts
    ));
    // A process whose exe is unknown matches no exe pattern, not even "*".
    let no_exe = Facts {
        sender: process("x", "", &[]),
        ..Facts::default()
    };
    assert!(!matches(r#"{"sender": {"exe": "*"}}"#, &no_exe));
}

#[test]
fn lists_are_any_of_and_strings_are_lists_of_one() {
    let facts = Facts {
        signo: 15,
        origin: Some(Origin::Tgkill),
        ..Facts::default()
    };
    assert!(matches(r#"{"signals": "sigterm"}"#, &facts));
    assert!(matches(r#"{"signals": ["SIGINT", "TERM"]}"#, &facts));
    assert!(!matches(r#"{"signals": ["SIGINT", "SIGKILL"]}"#, &facts));
    assert!(matches(r#"{"origins": ["kill", "tgkill"]}"#, &facts));
    assert!(!matches(r#"{"origins": "kill"}"#, &facts));
}

#[test]
fn codes_relation_and_cause() {
    let facts = Facts {
        code: "SI_TKILL".into(),
        relation: Relation::SelfSignal,
        cause_depth: 2,
        ..Facts::default()
    };
    assert!(matches(r#"{"codes": ["SI_QUEUE", "SI_TKILL"]}"#, &facts));
    assert!(!matches(r#"{"codes": "SI_USER"}"#, &facts));
    assert!(matches(r#"{"relation": "self"}"#, &facts));
    assert!(matches(r#"{"relation": "self_signal"}"#, &facts));
    assert!(!matches(r#"{"relation": ["parent", "ancestor"]}"#, &facts));
    assert!(matches(r#"{"cause": "some"}"#, &facts));
    assert!(!matches(r#"{"cause": "none"}"#, &facts));
}

#[test]
fn preceded_by_signals_and_window() {
    let facts = Facts {
        signo: 9,
        previous_from_sender: vec![(15, 120.0), (18, 119.5)],
        ..Facts::default()
    };
    assert!(matches(r#"{"preceded_by": {}}"#, &facts));
    assert!(matches(
        r#"{"preceded_by": {"signals": "SIGTERM"}}"#,
        &facts
    ));
    assert!(matches(
        r#"{"preceded_by": {"signals": "SIGTERM", "within_seconds": 120}}"#,
        &facts
    ));
    assert!(!matches(
        r#"{"preceded_by": {"signals": "SIGTERM", "within_seconds": 60}}"#,
        &facts
    ));
    assert!(matches(
        r#"{"preceded_by": {"within_seconds": 119.5}}"#,
        &facts
    ));
    assert!(!matches(
        r#"{"preceded_by": {"signals": "SIGINT"}}"#,
        &facts
    ));
    assert!(!matches(r#"{"preceded_by": {}}"#, &Facts::default()));
}

#[test]
fn any_and_not() {
    let facts = Facts {
        signo: 15,
        cause_depth: 0,
        ..Facts::default()
    };
    assert!(matches(
        r#"{"any": [{"signals": "SIGINT"}, {"signals": "SIGTERM"}]}"#,
        &facts
    ));
    assert!(!matches(
        r#"{"any": [{"signals": "SIGINT"}, {"cause": "some"}]}"#,
        &facts
    ));
    assert!(matches(r#"{"not": {"signals": "SIGINT"}}"#, &facts));
    assert!(!matches(
        r#"{"not": [{"signals": "SIGINT"}, {"signals": "SIGTERM"}]}"#,
        &facts
    ));
    // Inside a block, conditions still all have to hold.
    assert!(matches(
        r#"{"not": {"signals": "SIGTERM", "cause": "some"}}"#,
        &facts
    ));
}

#[test]
fn hints_come_in_file_order() {
    let json = r#"{"rules": [
        {"id": "b", "text": "second", "when": {"signals": "SIGTERM"}},
        {"id": "a", "text": "first", "when": {"relation": "parent"}},
        {"id": "c", "text": "never", "when": {"signals": "SIGINT"}}
    ]}"#;
    let rules = Rules::from_json(json).unwrap();
    let facts = Facts {
        signo: 15,
        relation: Relation::Parent,
        ..Facts::default()
    };
    let hints = rules.hints(&facts);
    assert_eq!(
        hints,
        [
            Hint {
                id: "b".into(),
                text: "second".into()
            },
            Hint {
                id: "a".into(),
                text: "first".into()
            },
        ]
    );
    assert_eq!(rules.ids().collect::<Vec<_>>(), ["b", "a", "c"]);
    assert_eq!(rules.len(), 3);
}

#[test]
fn extend_replaces_same_ids_in_place() {
    let mut rules = Rules::from_json(
        r#"{"rules": [{"id": "a", "text": "old", "when": {"signals": "SIGTERM"}},
                      {"id": "b", "text": "b", "when": {"signals": "SIGTERM"}}]}"#,
    )
    .unwrap();
    let user = Rules::from_json(
        r#"{"rules": [{"id": "c", "text": "c", "when": {"signals": "SIGTERM"}},
                      {"id": "a", "text": "new", "when": {"signals": "SIGTERM"}}]}"#,
    )
    .unwrap();
    rules.extend(user);
    let facts = Facts {
        signo: 15,
        ..Facts::default()
    };
    let texts: Vec<String> = rules.hints(&facts).into_iter().map(|h| h.text).collect();
    assert_eq!(texts, ["new", "b", "c"]);
}

#[test]
fn hints_and_facts_serialize() {
    let hint = Hint {
        id: "x".into(),
        text: "y".into(),
    };
    assert_eq!(
        serde_json::to_string(&hint).unwrap(),
        r#"{"id":"x","text":"y"}"#
    );
    assert_eq!(serde_json::to_value(Relation::SelfSignal).unwrap(), "self");
    assert_eq!(serde_json::to_value(Relation::Parent).unwrap(), "parent");
    // Facts read back with defaults, e.g. from a file to try rules against.
    let facts: Facts = serde_json::from_str(
        r#"{"signo": 9, "relation": "parent", "sender": {"comm": "node"}, "previous_from_sender": [[15, 3.5]]}"#,
    )
    .unwrap();
    assert_eq!(facts.relation, Relation::Parent);
    assert_eq!(facts.sender.comm, "node");
    assert_eq!(facts.previous_from_sender, [(15, 3.5)]);
    assert_eq!(facts.target, ProcFacts::default());
}

// ---- errors ----

#[track_caller]
fn load_error(json: &str) -> String {
    let message = match Rules::from_json(json) {
        Ok(_) => panic!("loaded: {json}"),
        Err(e) => e.to_string(),
    };
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

#[track_caller]
fn rule_error(when: &str) -> String {
    load_error(&format!(
        r#"{{"rules": [{{"id": "my-rule", "text": "t", "when": {when}}}]}}"#
    ))
}

#[test]
fn file_structure_errors() {
    assert!(load_error("{").starts_with("hint rules are not valid JSON: "));
    assert!(load_error("[]").contains("expected an object"));
    assert!(load_error("{}").contains("missing \"rules\""));
    assert!(load_error(r#"{"rules": {}}"#).contains("must be a list"));
    assert!(load_error(r#"{"rule": []}"#).contains(r#"unknown key "rule""#));
    assert!(load_error(r#"{"version": 2, "rules": []}"#).contains("unsupported version 2"));
    assert_eq!(
        Rules::from_json(r#"{"version": 1, "rules": []}"#)
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn rule_errors_name_the_rule_and_key() {
    assert_eq!(
        rule_error(r#"{"sigals": "SIGTERM"}"#),
        "hint rule #1 `my-rule`: when.sigals: unknown key (expected signals, origins, \
         origin_class, codes, results, relation, sender, sender_ancestor, target, target_ancestor, \
         preceded_by, cause, any, not)"
    );
    let e = rule_error(r#"{"signals": ["SIGTERM", "SIGTREM"]}"#);
    assert!(
        e.starts_with("hint rule #1 `my-rule`: when.signals[1]: unknown signal"),
        "{e}"
    );
    let e = rule_error(r#"{"signals": "15"}"#);
    assert!(
        e.contains("when.signals: \"15\": write signals by name"),
        "{e}"
    );
    let e = rule_error(r#"{"origin_class": "oom"}"#);
    assert!(
        e.contains("when.origin_class: unknown value \"oom\""),
        "{e}"
    );
    let e = rule_error(r#"{"origins": "kil"}"#);
    assert!(e.contains("when.origins: unknown value \"kil\""), "{e}");
    let e = rule_error(r#"{"codes": "SI_USR"}"#);
    assert!(e.contains("when.codes: unknown si_code \"SI_USR\""), "{e}");
    let e = rule_error(r#"{"relation": "parnet"}"#);
    assert!(e.contains("when.relation: unknown variant `parnet`"), "{e}");
    let e = rule_error(r#"{"cause": "yes"}"#);
    assert!(e.contains("when.cause: \"yes\" is neither"), "{e}");
    let e = rule_error(r#"{"any": [{"signals": "SIGINT"}, {"sender": {"com": "x"}}]}"#);
    assert!(
        e.contains("when.any[1].sender.com: unknown key (expected comm, exe, argv, program)"),
        "{e}"
    );
    let e = rule_error(r#"{"preceded_by": {"signal": "SIGTERM"}}"#);
    assert!(e.contains("when.preceded_by.signal: unknown key"), "{e}");
    let e = rule_error(r#"{"preceded_by": {"within_seconds": -1}}"#);
    assert!(
        e.contains("when.preceded_by.within_seconds: expected a number of seconds"),
        "{e}"
    );
    let e = rule_error(r#"{"signals": []}"#);
    assert!(e.contains("when.signals: empty list"), "{e}");
    let e = rule_error(r#"{"signals": 15}"#);
    assert!(
        e.contains("when.signals: expected a string or a list of strings, found a number"),
        "{e}"
    );
    let e = rule_error(r#"{"sender": {"argv": ["x", 1]}}"#);
    assert!(
        e.contains("when.sender.argv[1]: expected a string, found a number"),
        "{e}"
    );
    let e = rule_error(r#"{"sender": {"comm": ""}}"#);
    assert!(e.contains("when.sender.comm: empty pattern"), "{e}");
    let e = rule_error("{}");
    assert!(e.contains("when: no conditions"), "{e}");
    let e = rule_error(r#"{"not": []}"#);
    assert!(e.contains("when.not: empty list"), "{e}");
    let e = rule_error(r#"{"sender": {}}"#);
    assert!(e.contains("when.sender: no conditions"), "{e}");
    let e = rule_error(r#"["signals"]"#);
    assert!(e.contains("when: expected an object, found a list"), "{e}");
}

#[test]
fn rule_field_errors() {
    let e = load_error(r#"{"rules": [{"text": "t", "when": {"signals": "SIGTERM"}}]}"#);
    assert_eq!(e, "hint rule #1: id: missing");
    let e =
        load_error(r#"{"rules": [{"id": "Bad_Id", "text": "t", "when": {"signals": "SIGTERM"}}]}"#);
    assert!(
        e.starts_with("hint rule #1: id: \"Bad_Id\" is not kebab-case"),
        "{e}"
    );
    let e =
        load_error(r#"{"rules": [{"id": "a", "text": "t\nu", "when": {"signals": "SIGTERM"}}]}"#);
    assert_eq!(
        e,
        "hint rule #1 `a`: text: must be one line (no control characters)"
    );
    let e = load_error(r#"{"rules": [{"id": "a", "text": " ", "when": {"signals": "SIGTERM"}}]}"#);
    assert_eq!(e, "hint rule #1 `a`: text: empty");
    let e = load_error(r#"{"rules": [{"id": "a", "text": "t"}]}"#);
    assert_eq!(e, "hint rule #1 `a`: when: missing");
    let e = load_error(r#"{"rules": [{"id": "a", "text": "t", "wen": {}}]}"#);
    assert_eq!(
        e,
        "hint rule #1 `a`: wen: unknown key (expected id, text, when, note)"
    );
    let e = load_error(
        r#"{"rules": [{"id": "a", "text": "t", "note": 3, "when": {"signals": "SIGTERM"}}]}"#,
    );
    assert_eq!(
        e,
        "hint rule #1 `a`: note: expected a string, found a number"
    );
    let e = load_error(r#"{"rules": [7]}"#);
    assert_eq!(e, "hint rule #1: rule: expected an object, found a number");
    let e = load_error(
        r#"{"rules": [{"id": "a", "text": "t", "when": {"signals": "SIGTERM"}},
                      {"id": "a", "text": "u", "when": {"signals": "SIGINT"}}]}"#,
    );
    assert_eq!(e, "hint rule #2 `a`: id: another rule already has this id");
}

#[test]
fn kebab_case() {
    for good in ["a", "node-exec", "oom-killer-2", "x1"] {
        assert!(is_kebab_case(good), "{good}");
    }
    for bad in ["", "-a", "a-", "a--b", "A", "a_b", "1a", "a b", "é"] {
        assert!(!is_kebab_case(bad), "{bad}");
    }
}

// ---- the on-call classics (issue 17) ----

fn with_result(mut facts: Facts, result: SignalResult) -> Facts {
    facts.result = Some(result);
    facts
}

#[test]
fn container_init_without_handler() {
    let docker = process(
        "containerd-shim",
        "/usr/bin/containerd-shim-runc-v2",
        &["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby"],
    );
    let stop = sent("SIGTERM", docker, Relation::Parent, node());
    fires(
        "container-init-no-handler",
        &with_result(stop.clone(), SignalResult::DroppedInit),
    );
    fires(
        "container-stop",
        &with_result(stop.clone(), SignalResult::DroppedInit),
    );
    quiet(
        "container-init-no-handler",
        &with_result(stop.clone(), SignalResult::Delivered),
    );
    quiet(
        "container-init-no-handler",
        &with_result(stop, SignalResult::Ignored),
    );
}

#[test]
fn target_exiting_and_ignored() {
    let term = sent("SIGTERM", app(), Relation::Unrelated, node());
    fires(
        "target-exiting",
        &with_result(term.clone(), SignalResult::DroppedExiting),
    );
    quiet(
        "ignored-by-handler",
        &with_result(term.clone(), SignalResult::DroppedExiting),
    );
    fires(
        "ignored-by-handler",
        &with_result(term.clone(), SignalResult::Ignored),
    );
    quiet("target-exiting", &with_result(term, SignalResult::Ignored));
    // SIGCHLD and friends are ignored by default: no handler to blame.
    let chld = by_kernel(
        "SIGCHLD",
        OriginClass::ChildState,
        node(),
        Relation::Child,
        app(),
    );
    quiet(
        "ignored-by-handler",
        &with_result(chld, SignalResult::Ignored),
    );
}

fn gunicorn_arbiter() -> ProcFacts {
    process(
        "gunicorn",
        "/usr/bin/python3.11",
        &[
            "/usr/bin/python3",
            "/usr/bin/gunicorn",
            "--workers",
            "2",
            "app:app",
        ],
    )
}

fn gunicorn_worker() -> ProcFacts {
    process(
        "gunicorn",
        "/usr/bin/python3.11",
        &[
            "/usr/bin/python3",
            "/usr/bin/gunicorn",
            "--workers",
            "2",
            "app:app",
        ],
    )
}

#[test]
fn gunicorn_worker_timeout_and_stop() {
    let abort = sent(
        "SIGABRT",
        gunicorn_arbiter(),
        Relation::Parent,
        gunicorn_worker(),
    );
    fires("gunicorn-worker-timeout", &abort);
    quiet("gunicorn-worker-stop", &abort);
    // A worker's own abort() is not the arbiter's timeout.
    quiet(
        "gunicorn-worker-timeout",
        &sent(
            "SIGABRT",
            gunicorn_worker(),
            Relation::SelfSignal,
            gunicorn_worker(),
        ),
    );
    // With setproctitle the arbiter is "gunicorn: master [app]".
    let titled = process(
        "gunicorn",
        "/usr/bin/python3.11",
        &["gunicorn: master [app]"],
    );
    fires(
        "gunicorn-worker-timeout",
        &sent("SIGABRT", titled, Relation::Parent, gunicorn_worker()),
    );
    let stop = sent(
        "SIGTERM",
        gunicorn_arbiter(),
        Relation::Parent,
        gunicorn_worker(),
    );
    fires("gunicorn-worker-stop", &stop);
    quiet("gunicorn-worker-timeout", &stop);
    quiet(
        "gunicorn-worker-stop",
        &sent("SIGTERM", gunicorn_arbiter(), Relation::Unrelated, app()),
    );
}

fn nginx_master() -> ProcFacts {
    process(
        "nginx",
        "/usr/sbin/nginx",
        &["nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf"],
    )
}

#[test]
fn nginx_signal_commands_and_retired_workers() {
    let cli = |verb: &str| process("nginx", "/usr/sbin/nginx", &["nginx", "-s", verb]);
    for (verb, signal) in [
        ("reload", "SIGHUP"),
        ("quit", "SIGQUIT"),
        ("stop", "SIGTERM"),
        ("reopen", "SIGUSR1"),
    ] {
        fires(
            "nginx-signal-command",
            &sent(signal, cli(verb), Relation::Unrelated, nginx_master()),
        );
    }
    // The master's own title has no "-s" argument.
    quiet(
        "nginx-signal-command",
        &sent(
            "SIGHUP",
            nginx_master(),
            Relation::Unrelated,
            nginx_master(),
        ),
    );
    let worker = process("nginx", "/usr/sbin/nginx", &["nginx: worker process"]);
    fires(
        "nginx-worker-retired",
        &caused(sent(
            "SIGQUIT",
            nginx_master(),
            Relation::Parent,
            worker.clone(),
        )),
    );
    quiet(
        "nginx-worker-retired",
        &sent("SIGHUP", nginx_master(), Relation::Parent, worker),
    );
    quiet(
        "nginx-worker-retired",
        &sent("SIGQUIT", nginx_master(), Relation::Parent, app()),
    );
}

#[test]
fn npm_and_yarn_forward_signals() {
    let npm = process("npm start", "/usr/bin/node", &["npm start"]);
    let sh = process("sh", "/usr/bin/dash", &["sh", "-c", "node server.js"]);
    fires(
        "npm-forward",
        &caused(sent("SIGTERM", npm.clone(), Relation::Parent, sh.clone())),
    );
    // npm's own decision (no signal received before) is not forwarding.
    quiet(
        "npm-forward",
        &sent("SIGTERM", npm, Relation::Parent, sh.clone()),
    );
    let yarn = process(
        "node",
        "/usr/bin/node",
        &["node", "/usr/share/yarn/bin/yarn.js", "start"],
    );
    fires(
        "npm-forward",
        &caused(sent("SIGINT", yarn, Relation::Parent, sh.clone())),
    );
    quiet(
        "npm-forward",
        &caused(sent("SIGTERM", node(), Relation::Parent, sh)),
    );
}

#[test]
fn process_managers_point_to_their_logs() {
    let text = |id: &str| {
        Rules::builtin()
            .hints(&sent("SIGINT", pm2_daemon(), Relation::Parent, node()))
            .into_iter()
            .chain(Rules::builtin().hints(&sent("SIGTERM", supervisord(), Relation::Parent, app())))
            .find(|h| h.id == id)
            .map(|h| h.text)
            .unwrap_or_default()
    };
    assert!(text("pm2").contains("~/.pm2/pm2.log"), "{}", text("pm2"));
    assert!(text("supervisord").contains("supervisorctl tail"));
}

#[test]
fn systemd_and_kubernetes_name_their_settings() {
    let hint = |id: &str| {
        let rules = Rules::from_json(BUILTIN_RULES).unwrap();
        rules
            .rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.text.clone())
            .unwrap()
    };
    for word in ["KillMode", "TimeoutStopSec"] {
        assert!(hint("systemd-stop").contains(word), "{word}");
    }
    for word in ["preStop", "terminationGracePeriodSeconds"] {
        assert!(hint("kubernetes-pod-stop").contains(word), "{word}");
    }
}
