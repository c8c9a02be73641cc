//! The shipped rules, each on the facts of a real case.

use super::*;

#[test]
fn builtin_rules_parse() {
    let parsed = Rules::from_json(BUILTIN_RULES).unwrap();
    assert_eq!(Rules::builtin().len(), parsed.len());
    assert!(Rules::builtin().len() >= 30);
    assert!(!Rules::builtin().is_empty());
}

#[test]
fn docs_list_every_shipped_rule() {
    let docs = include_str!("../../../../../docs/hints.md");
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
