//! The on-call classics (issue 17).

use super::*;

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
