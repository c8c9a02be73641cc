//! Which cgroup a process lives in, and what that path says about it: a container id,
//! a systemd unit, a Kubernetes pod.

use serde::Serialize;

/// The most telling path in a /proc/PID/cgroup file: the unified (v2) path when it is
/// not the root, else the memory controller's (where OOM limits live on v1), else the
/// first non-root path.
pub fn pick_path(proc_cgroup: &str) -> Option<String> {
    let mut v2 = None;
    let mut memory = None;
    let mut other = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if path == "/" || path.is_empty() {
            continue;
        }
        if controllers.is_empty() {
            v2.get_or_insert(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            memory.get_or_insert(path);
        } else {
            other.get_or_insert(path);
        }
    }
    v2.or(memory).or(other).map(str::to_owned)
}

/// What a cgroup path reveals; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// From the kubelet's pod log directory, when readable (see kubelet.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_namespace: Option<String>,
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A 64-hex-digit container id inside a path component: `docker-<id>.scope`,
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`, or a bare
/// `<id>` (cgroupfs driver: /docker/<id>, /kubepods/.../<id>).
fn container_id(component: &str) -> Option<&str> {
    let stem = component.strip_suffix(".scope").unwrap_or(component);
    let id = stem.rsplit('-').next().unwrap_or(stem);
    is_hex_id(id).then_some(id)
}

/// `pod<uid>` (cgroupfs) or `kubepods-...-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(component: &str) -> Option<String> {
    let uid = match component.strip_suffix(".slice") {
        // systemd driver: dashes separate the slice hierarchy, the uid uses underscores.
        Some(stem) => stem
            .rsplit('-')
            .next()
            .unwrap_or(stem)
            .strip_prefix("pod")?,
        None => component.strip_prefix("pod")?,
    };
    let uid = uid.replace('_', "-");
    let valid = uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    valid.then_some(uid)
}

#[must_use]
pub fn identity(path: &str) -> Identity {
    let mut found = Identity::default();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if let Some(id) = container_id(component) {
            found.container_id = Some(id.to_owned());
        }
        if let Some(uid) = pod_uid(component) {
            found.pod_uid = Some(uid);
        }
        if component.ends_with(".service") {
            found.systemd_unit = Some(component.to_owned());
        }
    }
    found
}

/// `identity`, plus the pod's name and namespace when `pod` (the node's kubelet
/// directories) names its pod uid.
pub fn identity_with_pod(
    path: &str,
    pod: impl FnOnce(&str) -> Option<crate::model::kubelet::PodName>,
) -> Identity {
    let mut found = identity(path);
    if let Some(pod) = found.pod_uid.as_deref().and_then(pod) {
        found.pod_name = Some(pod.name);
        found.pod_namespace = Some(pod.namespace);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2b8c3a1d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef";

    #[test]
    fn prefers_unified_then_memory() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/73e6\n3:cpuset:/\n0::/\n";
        assert_eq!(pick_path(hybrid).as_deref(), Some("/process_api/73e6"));
        let v2 = "0::/system.slice/nginx.service\n";
        assert_eq!(
            pick_path(v2).as_deref(),
            Some("/system.slice/nginx.service")
        );
        assert_eq!(pick_path("0::/\n"), None);
        assert_eq!(pick_path("garbage"), None);
    }

    #[test]
    fn finds_systemd_unit() {
        let id = identity("/system.slice/nginx.service");
        assert_eq!(id.systemd_unit.as_deref(), Some("nginx.service"));
        assert_eq!(id.container_id, None);
    }

    #[test]
    fn finds_docker_and_kubernetes_ids() {
        let docker = identity(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(docker.container_id.as_deref(), Some(ID));
        let cgroupfs = identity(&format!("/docker/{ID}"));
        assert_eq!(cgroupfs.container_id.as_deref(), Some(ID));
        let pod = "1f2e3d4c-5b6a-4789-9abc-def012345678";
        let systemd_pod = identity(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{ID}.scope",
            pod.replace('-', "_")
        ));
        assert_eq!(systemd_pod.pod_uid.as_deref(), Some(pod));
        assert_eq!(systemd_pod.container_id.as_deref(), Some(ID));
        let cgroupfs_pod = identity(&format!("/kubepods/besteffort/pod{pod}/{ID}"));
        assert_eq!(cgroupfs_pod.pod_uid.as_deref(), Some(pod));
    }

    #[test]
    fn ordinary_paths_reveal_nothing() {
        assert_eq!(
            identity("/user.slice/user-0.slice/session-1.scope"),
            Identity::default()
        );
        assert_eq!(identity(""), Identity::default());
    }
}
