//! deploy/kubernetes/ for real: the image built from its Dockerfile (on a Debian base
//! made here with debootstrap: no registry is reachable) runs in a Docker engine that the
//! test starts, with the settings of deploy/kubernetes/daemonset.yaml translated from the
//! manifest itself (privileged, hostPID, its hostPath mounts, command, args, limits). It
//! must record a host signal with host pids and the sender's command line, name the
//! container and pod of a process signalled inside another container, and exit 0 with a
//! complete journal on `docker stop` within the pod's grace period. The manifest is also
//! read into the Kubernetes API's own models, offline.
//!
//! Needs root, dockerd, debootstrap and python3-kubernetes (cargo xtask test installs
//! them) and the Debian package in `$SIGWHO_DEB` (cargo xtask test builds it). The
//! base image's tarball is cached under the target directory, so only the first run
//! pays for debootstrap.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use sigwho_tests::{
    Run, Target, TempDir, Value, built_deb, child_pid, field, field_i64, field_str, is_signal,
    require_root, run, sigwho_bin, strings, testproc, wait_until,
};

const MANIFEST: &str = include_str!("../deploy/kubernetes/daemonset.yaml");
const DOCKERFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/kubernetes/Dockerfile"
);
/// See the file's docstring: only used where the host's bounding set is incomplete.
const RUNC_BOUNDED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/runc-bounded");
/// Reads a manifest into the Kubernetes API's models (see the script).
const K8S_API_FIELDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/k8s-api-fields");
/// `sigwho record` prints this once its programs are attached.
const READY: &str = "sigwho: recording every signal into ";
const DOCKER_TIMEOUT: Duration = Duration::from_mins(2);
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
const DEBOOTSTRAP_TIMEOUT: Duration = Duration::from_mins(15);

// ---------------------------------------------------------------------------------------
// The manifest, as `docker run` arguments

/// The recorder container of the `DaemonSet`, as `docker run` would run it.
#[derive(Debug, PartialEq)]
struct PodRun {
    /// Everything after `docker run` except `-d` and `--name`: flags, `--entrypoint`,
    /// the image, then the rest of `command` and `args`.
    args: Vec<String>,
    /// hostPath volumes as mounted here: (host path, hostPath `type`).
    host_paths: Vec<(PathBuf, String)>,
    /// (container path, host path) of every mount, to find files the container writes.
    mounts: Vec<(String, PathBuf)>,
    /// terminationGracePeriodSeconds (Kubernetes' default when absent: 30).
    grace_seconds: u64,
}

impl PodRun {
    /// The host path of `container_path`, through the mounts.
    fn host_path(&self, container_path: &str) -> PathBuf {
        self.mounts
            .iter()
            .filter_map(|(inside, host)| {
                let rest = Path::new(container_path).strip_prefix(inside).ok()?;
                Some((inside.len(), host.join(rest)))
            })
            .max_by_key(|(len, _)| *len)
            .map_or_else(
                || panic!("{container_path} is on no mounted volume"),
                |(_, path)| path,
            )
    }
}

/// The `DaemonSet` among the manifest's documents, as JSON.
fn daemonset(manifest: &str) -> Value {
    serde_yaml::Deserializer::from_str(manifest)
        .map(|doc| {
            let yaml = <serde_yaml::Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("bad YAML: {e}"));
            serde_json::to_value(yaml).expect("YAML as JSON")
        })
        .find(|doc| doc["kind"] == "DaemonSet")
        .expect("the manifest has a DaemonSet")
}

/// `docker run` arguments for a container's resource limits. Requests only weigh in
/// scheduling; limits are what the runtime enforces.
fn limit_args(limits: &Value) -> Vec<String> {
    let mut args = Vec::new();
    if !limits.is_null() {
        only_keys(limits, &["cpu", "memory"], "resources.limits");
    }
    if let Some(memory) = limits["memory"].as_str() {
        args.push(format!("--memory={}", memory_bytes(memory)));
    }
    match &limits["cpu"] {
        Value::Null => {}
        Value::String(cpu) => args.push(format!("--cpus={}", cpus(cpu))),
        Value::Number(cpu) => args.push(format!("--cpus={cpu}")),
        other => panic!("cpu limit {other} not understood"),
    }
    args
}

/// Panics on a key that this translation does not handle, so that a manifest change the
/// test would silently not exercise fails here instead.
#[track_caller]
fn only_keys(obj: &Value, allowed: &[&str], what: &str) {
    let map = obj
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not a mapping: {obj}"));
    for key in map.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "{what}.{key}: not translated into docker run flags by tests/container.rs; teach it"
        );
    }
}

/// "512Mi", "1Gi", "64M", "1000" (bytes) to bytes.
fn memory_bytes(quantity: &str) -> u64 {
    const UNITS: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let (digits, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| quantity.strip_suffix(unit).map(|d| (d, *scale)))
        .unwrap_or((quantity, 1));
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("memory quantity {quantity:?} not understood"));
    n * scale
}

/// "1", "1.5", "500m" to docker's --cpus (a decimal number of CPUs).
fn cpus(quantity: &str) -> String {
    if let Some(milli) = quantity.strip_suffix('m') {
        let milli: u64 = milli
            .parse()
            .unwrap_or_else(|_| panic!("cpu quantity {quantity:?} not understood"));
        format!("{}.{:03}", milli / 1000, milli % 1000)
    } else {
        let _: f64 = quantity
            .parse()
            .unwrap_or_else(|_| panic!("cpu quantity {quantity:?} not understood"));
        quantity.to_owned()
    }
}

fn string_list(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .unwrap_or_else(|| panic!("{what}: {s} is not a string"))
                    .to_owned()
            })
            .collect(),
        other => panic!("{what} is not a list: {other}"),
    }
}

/// Translates the `DaemonSet` in `manifest` into `docker run` arguments for `image` (the
/// manifest's own image names a registry this machine cannot reach). `host_dirs` maps
/// hostPath paths to directories to use instead, for host state the test must not touch
/// (the node's journal, its pod logs).
fn translate(manifest: &str, image: &str, host_dirs: &[(&str, &Path)]) -> PodRun {
    let daemonset = daemonset(manifest);
    let pod = &daemonset["spec"]["template"]["spec"];
    // tolerations only decide where the pod is scheduled.
    only_keys(
        pod,
        &[
            "hostPID",
            "hostNetwork",
            "tolerations",
            "terminationGracePeriodSeconds",
            "containers",
            "volumes",
        ],
        "pod spec",
    );
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "one container (the recorder)");
    let container = &containers[0];
    // image and imagePullPolicy: replaced by the locally built image.
    only_keys(
        container,
        &[
            "name",
            "image",
            "imagePullPolicy",
            "command",
            "args",
            "securityContext",
            "resources",
            "volumeMounts",
        ],
        "container",
    );

    let mut args = Vec::new();
    if pod["hostPID"] == true {
        args.push("--pid=host".to_owned());
    }
    // A pod without hostNetwork has a network namespace of its own; the test's engine
    // has no bridge, so that is an empty one.
    args.push(
        if pod["hostNetwork"] == true {
            "--network=host"
        } else {
            "--network=none"
        }
        .to_owned(),
    );
    let security = &container["securityContext"];
    if !security.is_null() {
        only_keys(security, &["privileged"], "securityContext");
    }
    if security["privileged"] == true {
        args.push("--privileged".to_owned());
    }
    args.extend(limit_args(&container["resources"]["limits"]));

    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    let mut host_paths = Vec::new();
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        only_keys(&mount, &["name", "mountPath", "readOnly"], "volumeMount");
        let name = mount["name"].as_str().expect("volumeMount name");
        let inside = mount["mountPath"].as_str().expect("mountPath");
        let volume = volumes
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("volumeMount {name} has no volume"));
        only_keys(volume, &["name", "hostPath"], "volume");
        let host = volume["hostPath"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("volume {name} is not a hostPath"));
        let host = host_dirs
            .iter()
            .find(|(path, _)| *path == host)
            .map_or_else(|| PathBuf::from(host), |(_, dir)| dir.to_path_buf());
        let kind = volume["hostPath"]["type"].as_str().unwrap_or("").to_owned();
        let read_only = if mount["readOnly"] == true { ":ro" } else { "" };
        args.push(format!("--volume={}:{inside}{read_only}", host.display()));
        host_paths.push((host.clone(), kind));
        mounts.push((inside.to_owned(), host));
    }

    let mut command = string_list(&container["command"], "command");
    command.extend(string_list(&container["args"], "args"));
    assert!(!command.is_empty(), "the container has a command");
    args.push(format!("--entrypoint={}", command.remove(0)));
    args.push(image.to_owned());
    args.extend(command);

    let grace_seconds = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    PodRun {
        args,
        host_paths,
        mounts,
        grace_seconds,
    }
}

/// What the kubelet does for each hostPath `type` before starting the pod.
fn prepare_host_paths(pod: &PodRun) {
    for (path, kind) in &pod.host_paths {
        match kind.as_str() {
            "DirectoryOrCreate" => std::fs::create_dir_all(path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display())),
            "Directory" => assert!(
                path.is_dir(),
                "hostPath {} (type Directory) does not exist on this machine",
                path.display()
            ),
            "" => {}
            other => panic!("hostPath type {other} not handled by tests/container.rs"),
        }
    }
}

#[test]
fn manifest_quantities_and_mounts_translate_to_docker_flags() {
    let manifest = r#"
kind: Namespace
metadata: {name: x}
---
kind: DaemonSet
spec:
  template:
    spec:
      hostPID: true
      terminationGracePeriodSeconds: 12
      containers:
        - name: c
          image: elsewhere/x:1
          command: ["prog", "sub"]
          args: ["--flag", "v"]
          securityContext: {privileged: true}
          resources: {limits: {cpu: 500m, memory: 1Gi}, requests: {cpu: 1m}}
          volumeMounts:
            - {name: state, mountPath: /var/lib/x}
            - {name: logs, mountPath: /logs, readOnly: true}
      volumes:
        - {name: state, hostPath: {path: /var/lib/x, type: DirectoryOrCreate}}
        - {name: logs, hostPath: {path: /var/log/x}}
"#;
    let pod = translate(
        manifest,
        "local/x",
        &[("/var/lib/x", Path::new("/tmp/t/x"))],
    );
    assert_eq!(
        pod.args,
        [
            "--pid=host",
            "--network=none",
            "--privileged",
            "--memory=1073741824",
            "--cpus=0.500",
            "--volume=/tmp/t/x:/var/lib/x",
            "--volume=/var/log/x:/logs:ro",
            "--entrypoint=prog",
            "local/x",
            "sub",
            "--flag",
            "v",
        ]
    );
    assert_eq!(pod.grace_seconds, 12);
    assert_eq!(pod.host_path("/var/lib/x/db/j"), Path::new("/tmp/t/x/db/j"));
    assert_eq!(
        pod.host_paths,
        [
            (PathBuf::from("/tmp/t/x"), "DirectoryOrCreate".to_owned()),
            (PathBuf::from("/var/log/x"), String::new())
        ]
    );
    assert_eq!(memory_bytes("64Mi"), 64 << 20);
    assert_eq!(cpus("1"), "1");
    assert_eq!(cpus("1500m"), "1.500");
    // The real manifest translates (every key it uses is understood).
    let real = translate(MANIFEST, "local/sigwho", &[]);
    assert!(real.args.contains(&"--privileged".to_owned()), "{real:?}");
    assert!(real.args.contains(&"--pid=host".to_owned()), "{real:?}");
}

/// Runs tests/fixtures/k8s-api-fields on `manifest` (python3-kubernetes, which cargo
/// xtask test installs).
fn k8s_api_fields(manifest: &Path) -> Run {
    let mut cmd = Command::new(K8S_API_FIELDS);
    cmd.arg(manifest);
    run(cmd, DOCKER_TIMEOUT)
}

/// Without an API server kubectl validates nothing; the API's own models (Debian's
/// python3-kubernetes) still know every field, its type and which are required.
#[test]
fn daemonset_manifest_has_only_kubernetes_api_fields() {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/daemonset.yaml");
    let r = k8s_api_fields(&manifest).assert_success();
    assert!(
        r.stdout.contains("DaemonSet/sigwho: valid V1DaemonSet"),
        "{r}"
    );
    assert!(
        r.stdout.contains("Namespace/sigwho: valid V1Namespace"),
        "{r}"
    );

    // The check checks: a misspelt field, a missing required one, a wrong type.
    let dir = TempDir::new("manifests");
    for (from, to, problem) in [
        (
            "hostPID: true",
            "hostPId: true",
            "spec.template.spec.hostPId: not a field",
        ),
        (
            "- name: recorder",
            "- nam: recorder",
            "not a valid V1DaemonSet",
        ),
        (
            "privileged: true",
            "privileged: [true]",
            "securityContext.privileged: [True] reads as True",
        ),
    ] {
        assert!(MANIFEST.contains(from), "{from}");
        let bad = dir.path("bad.yaml");
        std::fs::write(&bad, MANIFEST.replacen(from, to, 1)).expect("write manifest");
        let r = k8s_api_fields(&bad);
        assert_eq!(r.status.code(), Some(1), "{to}: {r}");
        assert!(r.stdout.contains(problem), "{to}: {r}");
    }
}

// ---------------------------------------------------------------------------------------
// A Docker engine of the test's own

/// dockerd with its data, state and socket in a temp dir, no bridge and no iptables
/// rules (nothing here needs a network); stopped, with the containers it ran, on drop.
struct Docker {
    daemon: Child,
    socket: PathBuf,
    log: PathBuf,
    containers: Vec<String>,
    _dir: TempDir,
}

/// Whether this host's bounding set lacks capabilities that the kernel has: then runc
/// cannot give a privileged container all of them (see tests/fixtures/runc-bounded).
fn bounding_set_incomplete() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("CapBnd");
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .expect("cap_last_cap")
        .trim()
        .parse()
        .expect("cap_last_cap number");
    let all = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    bnd & all != all
}

impl Docker {
    /// `cgroups`: the cgroup under which every container goes unless it says otherwise.
    fn start(cgroups: &CgroupTree) -> Docker {
        let dir = TempDir::new("docker");
        let socket = dir.path("docker.sock");
        let log = dir.path("dockerd.log");
        let mut cmd = Command::new("dockerd");
        cmd.arg(format!("--data-root={}", dir.path("data").display()))
            .arg(format!("--exec-root={}", dir.path("exec").display()))
            .arg(format!("--pidfile={}", dir.path("dockerd.pid").display()))
            .arg(format!("--host=unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            // cgroupfs whatever the host's init, so that --cgroup-parent takes the
            // kubelet's cgroupfs layout (/kubepods/<qos>/pod<uid>).
            .arg("--exec-opt=native.cgroupdriver=cgroupfs")
            .arg(format!("--cgroup-parent={}/docker", cgroups.0));
        if bounding_set_incomplete() {
            eprintln!(
                "container test: this host's capability bounding set is incomplete; \
                 privileged containers run through tests/fixtures/runc-bounded"
            );
            cmd.arg(format!("--add-runtime=runc-bounded={RUNC_BOUNDED}"))
                .arg("--default-runtime=runc-bounded");
        }
        let out = File::create(&log).expect("dockerd log");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out);
        let daemon = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start dockerd ({e}): cargo xtask test installs docker.io")
        });
        let mut docker = Docker {
            daemon,
            socket,
            log,
            containers: Vec::new(),
            _dir: dir,
        };
        let mut exited = false;
        let ready = wait_until(
            || {
                exited = docker.daemon.try_wait().ok().flatten().is_some();
                exited
                    || docker
                        .cmd(&["version"])
                        .output()
                        .is_ok_and(|o| o.status.success())
            },
            DOCKER_TIMEOUT,
        );
        assert!(
            ready && !exited,
            "dockerd did not come up:\n{}",
            docker.log_text()
        );
        docker
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `docker ARGS` against this engine.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            // The classic builder is in every dockerd and needs no buildx plugin.
            .env("DOCKER_BUILDKIT", "0")
            .args(args);
        cmd
    }

    /// Runs `docker ARGS`; panics unless it exits 0.
    #[track_caller]
    fn run(&self, args: &[&str]) -> Run {
        let r = run(self.cmd(args), DOCKER_TIMEOUT);
        assert!(
            r.status.success(),
            "docker {args:?} failed: {r}\n--- dockerd ---\n{}",
            self.log_text()
        );
        r
    }

    /// `docker run -d --name NAME ARGS`; returns the container's id.
    fn run_detached(&mut self, name: &str, args: &[String]) -> String {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend(args.iter().map(String::as_str));
        self.containers.push(name.to_owned());
        self.run(&all).stdout.trim().to_owned()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.run(&["inspect", "--format", format, name])
            .stdout
            .trim()
            .to_owned()
    }

    /// The container's stdout and stderr so far.
    fn logs(&self, name: &str) -> String {
        let r = self.run(&["logs", name]);
        r.stdout + &r.stderr
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.containers) {
            let _ = run(self.cmd(&["rm", "--force", &name]), DOCKER_TIMEOUT);
        }
        // dockerd stops its containerd and unmounts its layers on SIGTERM.
        // SAFETY: kill(2) takes two integers and touches no memory of ours; the daemon is
        // our child, not reaped yet, so the pid is still its own.
        unsafe { libc::kill(child_pid(&self.daemon), libc::SIGTERM) };
        if !wait_until(
            || self.daemon.try_wait().ok().flatten().is_some(),
            DOCKER_TIMEOUT,
        ) {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
    }
}

/// A cgroup subtree (`/NAME`) that the test's containers create in every hierarchy;
/// its empty directories are removed on drop, deepest first.
struct CgroupTree(String);

impl Drop for CgroupTree {
    fn drop(&mut self) {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER`
        let roots = mountinfo.lines().filter_map(|line| {
            let (mount, fs) = line.split_once(" - ")?;
            let fstype = fs.split_whitespace().next()?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| mount.split_whitespace().nth(4))?
        });
        for root in roots {
            remove_empty_dirs(&Path::new(root).join(self.0.trim_start_matches('/')));
        }
    }
}

fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&entry.path());
            }
        }
        // cgroupfs: rmdir removes a cgroup without tasks, whatever files it shows.
        let _ = std::fs::remove_dir(dir);
    }
}

// ---------------------------------------------------------------------------------------
// Images

/// The host's Debian release: the package was built against its glibc.
fn host_codename() -> String {
    let release = std::fs::read_to_string("/etc/os-release").expect("/etc/os-release");
    release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim_matches('"').to_owned())
        .filter(|c| !c.is_empty())
        .expect("VERSION_CODENAME in /etc/os-release (a Debian host)")
}

/// A minimal Debian root filesystem as a tarball, made once with debootstrap from the
/// Debian mirror and cached under the target directory.
fn base_tarball(codename: &str) -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("container");
    let tarball = cache.join(format!("debian-{codename}-minbase.tar"));
    if tarball.is_file() {
        return tarball;
    }
    std::fs::create_dir_all(&cache).expect("cache dir");
    let rootfs = TempDir::new("rootfs");
    let root = rootfs.path("root");
    let mut debootstrap = Command::new("debootstrap");
    debootstrap.args(["--variant=minbase", codename]).arg(&root);
    let r = run(debootstrap, DEBOOTSTRAP_TIMEOUT);
    assert!(
        r.status.success(),
        "debootstrap (cargo xtask test installs it) failed: {r}"
    );
    let partial = tarball.with_extension("tar.partial");
    let mut tar = Command::new("tar");
    tar.arg("-C").arg(&root).arg("-cf").arg(&partial).arg(".");
    run(tar, DOCKER_TIMEOUT).assert_success();
    std::fs::rename(&partial, &tarball).expect("rename the tarball into place");
    tarball
}

/// Imports the base image and builds deploy/kubernetes/Dockerfile on it from a context
/// that holds only `deb`. Returns (base image, sigwho image).
fn build_images(docker: &Docker, deb: &Path) -> (String, String) {
    let codename = host_codename();
    let base = format!("sigwho-test/debian:{codename}-minbase");
    let tarball = base_tarball(&codename);
    docker.run(&["import", tarball.to_str().expect("UTF-8 path"), &base]);

    let context = TempDir::new("context");
    let name = deb.file_name().expect("package file name");
    std::fs::copy(deb, context.dir().join(name)).expect("copy the package into the context");
    let image = "sigwho-test/sigwho:test".to_owned();
    docker.run(&[
        "build",
        // RUN steps need no network, and the engine has no bridge to give them one.
        "--network=none",
        "--build-arg",
        &format!("BASE_IMAGE={base}"),
        "--file",
        DOCKERFILE,
        "--tag",
        &image,
        context.dir().to_str().expect("UTF-8 path"),
    ]);
    (base, image)
}

// ---------------------------------------------------------------------------------------
// The recorder in its container

fn query_json(journal: &Path, pid: i32) -> Vec<Value> {
    let mut cmd = Command::new(sigwho_bin());
    cmd.arg("query").arg("--journal").arg(journal).args([
        "--target-pid",
        &pid.to_string(),
        "--json",
    ]);
    let r = run(cmd, EVENT_TIMEOUT).assert_success();
    parse_lines(&r.stdout)
}

fn parse_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// Queries the journal from the host (as `sigwho query` on the node would) until it
/// has the signal `sig` that `sender` sent to `pid`.
#[track_caller]
fn wait_recorded(journal: &Path, pid: i32, sig: &str, sender: i32) -> Value {
    let mut last = Vec::new();
    let mut found = None;
    let ok = wait_until(
        || {
            last = query_json(journal, pid);
            found = last
                .iter()
                .find(|e| is_signal(sig)(e) && field_i64(e, "sender.pid") == Some(sender.into()))
                .cloned();
            found.is_some()
        },
        EVENT_TIMEOUT,
    );
    // The recorder records the whole machine: a storm elsewhere (a benchmark) can overflow
    // its ring buffer, which the journal shows as gaps.
    let gaps = last.iter().filter(|e| e["event"] == "gap").count();
    assert!(
        ok,
        "no {sig} from {sender} to {pid} in the journal ({gaps} gaps): {last:#?}"
    );
    found.unwrap()
}

/// A pod uid that no earlier run used: the test's pid, `n`, the time.
fn pod_uid(n: u16) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let micros = u64::try_from(now.as_micros()).unwrap_or_default() & 0xffff_ffff_ffff;
    format!("{:08x}-{n:04x}-4e2d-9c3b-{micros:012x}", std::process::id())
}

#[track_caller]
fn assert_sent_by(ev: &Value, sender: &Run, args: &[&str]) {
    assert_eq!(field_i64(ev, "sender.pid"), Some(sender.pid.into()), "{ev}");
    assert_eq!(strings(ev, "sender.argv")[1..], *args, "{ev}");
    assert!(
        field_str(ev, "sender.exe").is_some_and(|e| e.ends_with("/sigwho-testproc")),
        "{ev}"
    );
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario on one image, daemon and journal, step after step; its steps \
              share all of that and say nothing alone"
)]
fn daemonset_recorder_attributes_host_and_container_signals() {
    require_root();
    let deb = built_deb();

    // Declared before the engine, so removed after it has removed its containers.
    let cgroups = CgroupTree(format!("/sigwho-test-{}", std::process::id()));
    let mut docker = Docker::start(&cgroups);
    let (base, image) = build_images(&docker, &deb);

    // The node's journal and pod logs are the machine's own: the hostPaths point at
    // directories of the test instead. /sys/kernel/tracing and /sys/kernel/btf are the
    // real ones, as on a node.
    let state = TempDir::new("node");
    let journal_dir = state.path("var-lib-sigwho");
    let pod_logs = state.path("var-log-pods");
    std::fs::create_dir_all(&pod_logs).expect("pod log dir");
    let pod = translate(
        MANIFEST,
        &image,
        &[
            ("/var/lib/sigwho", &journal_dir),
            ("/var/log/pods", &pod_logs),
        ],
    );
    prepare_host_paths(&pod);
    let journal_arg = pod
        .args
        .windows(2)
        .find(|w| w[0] == "--journal")
        .map(|w| w[1].clone())
        .expect("the manifest's command names the journal");
    let journal = pod.host_path(&journal_arg);
    eprintln!("container test: docker run {}", pod.args.join(" "));

    let recorder = format!("sigwho-recorder-{}", std::process::id());
    // Where a kubelet would put it (a Burstable pod: requests below limits), under the
    // test's own cgroup tree.
    let mut recorder_args = vec![format!(
        "--cgroup-parent={}/kubepods/burstable/pod{}",
        cgroups.0,
        pod_uid(1)
    )];
    recorder_args.extend(pod.args.iter().cloned());
    docker.run_detached(&recorder, &recorder_args);
    let mut logs = String::new();
    let ready = wait_until(
        || {
            logs = docker.logs(&recorder);
            logs.contains(READY) || docker.inspect(&recorder, "{{.State.Running}}") != "true"
        },
        DOCKER_TIMEOUT,
    );
    assert!(
        ready && logs.contains(&format!("{READY}{journal_arg}")),
        "the recorder did not start:\n{logs}"
    );

    // a) A host process signals a host process: host pids, the sender's command line.
    let target = Target::spawn(&["--handle", "USR1"]);
    let pid = target.pid.to_string();
    let kill = testproc(&["kill", &pid, "USR1"]).assert_success();
    let ev = wait_recorded(&journal, target.pid, "SIGUSR1", kill.pid);
    assert_sent_by(&ev, &kill, &["kill", &pid, "USR1"]);
    assert_eq!(
        field_i64(&ev, "target.pid"),
        Some(target.pid.into()),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    // The recorder sees the node's process tree: the sender's parent is this test.
    assert_eq!(
        field_i64(&ev, "sender.ancestry.0.pid"),
        Some(std::process::id().into()),
        "{ev}"
    );
    assert_eq!(
        field_str(&ev, "call"),
        Some(&*format!("kill({pid}, SIGUSR1)")),
        "{ev}"
    );
    // The same answer from inside the pod, as `kubectl exec POD -- sigwho query` gives.
    let inside = docker.run(&[
        "exec",
        &recorder,
        "sigwho",
        "query",
        "--journal",
        &journal_arg,
        "--target-pid",
        &pid,
        "--json",
    ]);
    let inside = parse_lines(&inside.stdout);
    assert!(
        inside
            .iter()
            .any(|e| is_signal("SIGUSR1")(e) && field_i64(e, "sender.pid") == Some(kill.pid.into())),
        "docker exec ... sigwho query: {inside:#?}"
    );

    // b) A host process signals the main process of another container, placed in the
    // cgroup a kubelet gives a pod's container, with the pod's log directory as the
    // kubelet makes it: the report names the container and, through the pod's read-only
    // /var/log/pods mount, the pod.
    let sleeper = format!("sigwho-sleeper-{}", std::process::id());
    let sleeper_pod_uid = pod_uid(2);
    let pod_name = format!("sleeper-{}", std::process::id());
    std::fs::create_dir(pod_logs.join(format!("sigwho-test_{pod_name}_{sleeper_pod_uid}")))
        .expect("pod log directory");
    let sleeper_args: Vec<String> = [
        "--network=none",
        &format!(
            "--cgroup-parent={}/kubepods/besteffort/pod{sleeper_pod_uid}",
            cgroups.0
        ),
        &base,
        "sleep",
        "300",
    ]
    .map(str::to_owned)
    .to_vec();
    let sleeper_container = docker.run_detached(&sleeper, &sleeper_args);
    let sleeper_pid: i32 = docker
        .inspect(&sleeper, "{{.State.Pid}}")
        .parse()
        .expect("container pid");
    assert!(sleeper_pid > 0, "{sleeper} is not running");
    let sleeper_pid_arg = sleeper_pid.to_string();
    // SIGKILL at once: the recorder may handle the sleeper's exec only after the process
    // is gone from /proc, and must still name its container (the cgroup path's last
    // components are read in the kernel at exec).
    let kill_sleeper = testproc(&["kill", &sleeper_pid_arg, "KILL"]).assert_success();
    let ev = wait_recorded(&journal, sleeper_pid, "SIGKILL", kill_sleeper.pid);
    assert_sent_by(&ev, &kill_sleeper, &["kill", &sleeper_pid_arg, "KILL"]);
    assert_eq!(
        field_i64(&ev, "target.pid"),
        Some(sleeper_pid.into()),
        "{ev}"
    );
    assert_eq!(field_i64(&ev, "target.ns_pid"), Some(1), "{ev}");
    assert_eq!(strings(&ev, "target.argv"), ["sleep", "300"], "{ev}");
    assert_eq!(
        field_str(&ev, "target.container_id"),
        Some(&*sleeper_container),
        "{ev}"
    );
    assert_eq!(
        field_str(&ev, "target.pod_uid"),
        Some(&*sleeper_pod_uid),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "target.pod_name"), Some(&*pod_name), "{ev}");
    assert_eq!(
        field_str(&ev, "target.pod_namespace"),
        Some("sigwho-test"),
        "{ev}"
    );
    assert_eq!(field_str(&ev, "result"), Some("delivered"), "{ev}");
    assert!(field(&ev, "sender.container_id").is_null(), "{ev}");
    // The container's end is the signal's doing.
    let mut state = String::new();
    let died = wait_until(
        || {
            state = docker.inspect(&sleeper, "{{.State.Running}} {{.State.ExitCode}}");
            state == "false 137"
        },
        DOCKER_TIMEOUT,
    );
    assert!(
        died,
        "{sleeper} did not die of SIGKILL: running, exit code: {state}"
    );

    // c) A last signal, then the kubelet's SIGTERM (docker stop, with the pod's grace
    // period): exit 0 in time, and the last signal is in the journal.
    let last = testproc(&["kill", &pid, "USR1"]).assert_success();
    docker.run(&["stop", "--time", &pod.grace_seconds.to_string(), &recorder]);
    let exit = docker.inspect(&recorder, "{{.State.ExitCode}} {{.State.OOMKilled}}");
    let logs = docker.logs(&recorder);
    assert_eq!(
        exit, "0 false",
        "SIGTERM: exit 0 within the grace period\n{logs}"
    );
    let summary: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("sigwho: recorded "))
        .collect();
    assert_eq!(summary.len(), 1, "one summary line:\n{logs}");
    eprintln!("container test: {}", summary[0]);
    let events = query_json(&journal, target.pid);
    let from = |run: &Run| {
        events
            .iter()
            .filter(|e| {
                is_signal("SIGUSR1")(e) && field_i64(e, "sender.pid") == Some(run.pid.into())
            })
            .count()
    };
    assert_eq!((from(&kill), from(&last)), (1, 1), "{events:#?}");
    drop(target);
}
