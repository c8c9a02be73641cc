//! The on-call classics' hints on the real software, with the real eBPF programs:
//! gunicorn's arbiter aborting a worker that missed --timeout, `nginx -s reload` and
//! `nginx -s quit` (with a worker's rewritten title), npm passing
//! a SIGTERM on to its script. (nginx's master retires workers through a channel, not
//! with signals, unless the channel fails: `nginx-worker-retired` has a unit test.) Needs root, and nginx, gunicorn and npm, which `cargo xtask test`'s
//! setup installs (Debian packages nginx, gunicorn, npm); loopback and unix sockets only.

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use sigwho_tests::{
    ProcId, Sigwho, Value, descendants, field_i64, field_str, hint_ids, is_signal, require_root,
    scaled, wait_until,
};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A directory of our own, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("sigwho-hints-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child we started, killed (by pid, with its descendants first) and reaped on drop.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let pid = i32::try_from(self.0.id()).unwrap();
        for p in descendants(pid) {
            let _ = p.signal(libc::SIGKILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn has_hint(ev: &Value, id: &str) -> bool {
    hint_ids(ev).iter().any(|h| h == id)
}

#[test]
fn gunicorn_worker_timeout() {
    require_root();
    let dir = Scratch::new("gunicorn");
    fs::write(
        dir.0.join("app.py"),
        "import time\n\ndef app(environ, start_response):\n    time.sleep(60)\n    start_response('200 OK', [])\n    return [b'late']\n",
    )
    .unwrap();
    let socket = dir.0.join("app.sock");
    let sigwho = Sigwho::start(&[
        "--target-comm",
        "gunicorn",
        "--signal",
        "ABRT,KILL",
        "--json",
    ]);
    let mut child = Command::new("/usr/bin/gunicorn")
        .args([
            "--workers",
            "1",
            "--timeout",
            "2",
            "--graceful-timeout",
            "1",
        ])
        .arg("--bind")
        .arg(format!("unix:{}", socket.display()))
        .arg("--chdir")
        .arg(&dir.0)
        .arg("app:app")
        .stderr(Stdio::piped())
        .spawn()
        .expect("gunicorn");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let arbiter = Started(child);
    // "Booting worker with pid: N" once the worker serves.
    let worker: i64 = loop {
        let line = rx
            .recv_timeout(scaled(EVENT_TIMEOUT))
            .expect("gunicorn boots a worker");
        if let Some(pid) = line.split("Booting worker with pid: ").nth(1) {
            break pid.trim().parse().unwrap();
        }
    };
    // A request that outlives --timeout.
    let mut stream = UnixStream::connect(&socket).expect("gunicorn's socket");
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let ev = sigwho.wait_for(
        |ev| is_signal("SIGABRT")(ev) && field_i64(ev, "target.pid") == Some(worker),
        EVENT_TIMEOUT,
    );
    assert_eq!(
        field_i64(&ev, "sender.pid"),
        Some(i64::from(arbiter.0.id())),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "relation"), Some("parent"), "{ev}");
    assert!(has_hint(&ev, "gunicorn-worker-timeout"), "{ev}");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    drop(arbiter);
}

/// nginx with a configuration of its own: loopback port from the kernel, files in `dir`.
fn nginx_conf(dir: &Path) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    fs::write(
        &conf,
        format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; \
             fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi; \
             server {{ listen 127.0.0.1:{port}; return 204; }} }}\n"
        ),
    )
    .unwrap();
    conf
}

/// nginx's worker processes (children of `master` with the worker title).
fn nginx_workers(master: i32) -> Vec<ProcId> {
    descendants(master)
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).starts_with("nginx: worker process"))
        })
        .collect()
}

fn nginx_signal(conf: &Path, verb: &str) {
    let status = Command::new("/usr/sbin/nginx")
        .arg("-c")
        .arg(conf)
        .args(["-s", verb])
        .status()
        .expect("nginx -s");
    assert!(status.success(), "nginx -s {verb}: {status}");
}

#[test]
fn nginx_reload_and_quit() {
    require_root();
    let dir = Scratch::new("nginx");
    let conf = nginx_conf(&dir.0);
    let sigwho = Sigwho::start(&["--target-comm", "nginx", "--json"]);
    let master = Started(
        Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(&conf)
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx"),
    );
    let master_pid = i32::try_from(master.0.id()).unwrap();
    assert!(
        wait_until(
            || dir.0.join("nginx.pid").exists() && !nginx_workers(master_pid).is_empty(),
            scaled(EVENT_TIMEOUT)
        ),
        "nginx started: {}",
        fs::read_to_string(dir.0.join("error.log")).unwrap_or_default()
    );
    let old = nginx_workers(master_pid);

    nginx_signal(&conf, "reload");
    let hup = sigwho.wait_for(
        |ev| is_signal("SIGHUP")(ev) && field_i64(ev, "target.pid") == Some(i64::from(master_pid)),
        EVENT_TIMEOUT,
    );
    assert!(has_hint(&hup, "nginx-signal-command"), "{hup}");
    assert_eq!(
        sigwho_tests::strings(&hup, "sender.argv")[1..],
        ["-c", &conf.display().to_string(), "-s", "reload"],
        "{hup}"
    );
    // The master retires the old worker (through its channel, not a signal): its exit
    // reaches the master as SIGCHLD.
    let old_pids: Vec<i64> = old.iter().map(|w| i64::from(w.pid)).collect();
    let chld = sigwho.wait_for(
        |ev| {
            is_signal("SIGCHLD")(ev)
                && field_i64(ev, "sender.pid").is_some_and(|p| old_pids.contains(&p))
        },
        EVENT_TIMEOUT,
    );
    assert_eq!(
        sigwho_tests::strings(&chld, "sender.argv"),
        ["nginx: worker process"],
        "the worker's own title, not the master's: {chld}"
    );
    assert!(wait_until(
        || {
            let now = nginx_workers(master_pid);
            !now.is_empty() && now.iter().all(|w| !old.contains(w))
        },
        scaled(EVENT_TIMEOUT)
    ));

    nginx_signal(&conf, "quit");
    let quit = sigwho.wait_for(
        |ev| is_signal("SIGQUIT")(ev) && field_i64(ev, "target.pid") == Some(i64::from(master_pid)),
        EVENT_TIMEOUT,
    );
    assert!(has_hint(&quit, "nginx-signal-command"), "{quit}");
    assert_eq!(
        sigwho_tests::strings(&quit, "sender.argv")[1..],
        ["-c", &conf.display().to_string(), "-s", "quit"],
        "{quit}"
    );
    let mut master = master;
    let _ = master.0.wait();
}

#[test]
fn npm_forwards_sigterm_to_its_script() {
    require_root();
    let dir = Scratch::new("npm");
    fs::write(
        dir.0.join("package.json"),
        r#"{"name": "oncall-npm", "version": "1.0.0", "private": true, "scripts": {"start": "node server.js"}}"#,
    )
    .unwrap();
    fs::write(
        dir.0.join("server.js"),
        "process.on('SIGTERM', () => process.exit(0));\nconsole.log('listening');\nsetInterval(() => {}, 1000);\n",
    )
    .unwrap();
    let mut child = Command::new("npm")
        .arg("start")
        .current_dir(&dir.0)
        .env("npm_config_update_notifier", "false")
        .stdout(Stdio::piped())
        .spawn()
        .expect("npm");
    let stdout = child.stdout.take().unwrap();
    let npm = Started(child);
    let npm_pid = i32::try_from(npm.0.id()).unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.trim() == "listening")),
        "the script started"
    );
    let sigwho = Sigwho::start(&["--signal", "TERM", "--json"]);
    sigwho_tests::testproc(&["kill", &npm_pid.to_string(), "TERM"]).assert_success();
    let forwarded = sigwho.wait_for(
        |ev| is_signal("SIGTERM")(ev) && field_i64(ev, "sender.pid") == Some(i64::from(npm_pid)),
        EVENT_TIMEOUT,
    );
    assert_eq!(
        field_str(&forwarded, "relation"),
        Some("parent"),
        "{forwarded}"
    );
    assert!(
        field_i64(&forwarded, "cause.0.sender.pid").is_some(),
        "npm passes on the SIGTERM it got: {forwarded}"
    );
    assert!(has_hint(&forwarded, "npm-forward"), "{forwarded}");
    let mut npm = npm;
    let _ = npm.0.wait();
}
