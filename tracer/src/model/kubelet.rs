//! Pod name and namespace for a pod uid (which the cgroup path gives), from the kubelet's
//! pod log directories: /var/log/pods/<namespace>_<name>_<uid>. The kubelet creates one
//! per pod before its containers start, whatever the container runtime, and neither
//! namespaces nor pod names may contain `_` (DNS labels), so the name splits cleanly.
//! Other sources were weighed and left: /var/lib/kubelet/pods/<uid>/etc-hosts names the
//! pod's hostname (not its name when spec.hostname is set) and never the namespace; the
//! API server is a network dependency sigwho does not take.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Mutex, OnceLock},
};

/// Where the kubelet keeps pod log directories.
pub const POD_LOG_ROOT: &str = "/var/log/pods";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PodName {
    pub namespace: String,
    pub name: String,
}

/// `<namespace>_<name>_<uid>` for this uid, else None.
#[must_use]
pub fn parse_dir_name(dir_name: &str, uid: &str) -> Option<PodName> {
    let rest = dir_name.strip_suffix(uid)?.strip_suffix('_')?;
    let (namespace, name) = rest.split_once('_')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    (valid(namespace) && valid(name)).then(|| PodName {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// Scans `root` for the pod's directory. None when it is unreadable (not a Kubernetes
/// node, or /var/log/pods not mounted into sigwho's container) or has no such pod.
#[must_use]
pub fn find(root: &Path, uid: &str) -> Option<PodName> {
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|entry| parse_dir_name(entry.file_name().to_str()?, uid))
}

/// Bounds the cache: a node runs at most a few hundred pods at a time.
const CACHE_LIMIT: usize = 4096;

/// `find` under `POD_LOG_ROOT`, remembered per uid (reports of one pod's processes come
/// in bursts; a pod's directory exists before any of its processes does).
pub fn lookup(uid: &str) -> Option<PodName> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<PodName>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(cache) = cache.lock()
        && let Some(found) = cache.get(uid)
    {
        return found.clone();
    }
    let found = find(Path::new(POD_LOG_ROOT), uid);
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(uid.to_owned(), found.clone());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "1f2e3d4c-5b6a-4789-9abc-def012345678";

    #[test]
    fn daemonset_mounts_what_sigwho_reads() {
        let manifest = include_str!("../../../deploy/kubernetes/daemonset.yaml");
        let journal_dir = Path::new(crate::store::journal::DEFAULT_JOURNAL)
            .parent()
            .unwrap();
        for path in [
            POD_LOG_ROOT,
            "/sys/kernel/tracing",
            "/sys/kernel/btf",
            journal_dir.to_str().unwrap(),
        ] {
            assert!(
                manifest.contains(&format!("mountPath: {path}\n")),
                "deploy/kubernetes/daemonset.yaml does not mount {path}"
            );
        }
        assert!(manifest.contains("hostPID: true") && manifest.contains("privileged: true"));
    }

    #[test]
    fn splits_namespace_and_name() {
        assert_eq!(
            parse_dir_name(&format!("kube-system_coredns-5d78c9869d-x2x7q_{UID}"), UID),
            Some(PodName {
                namespace: "kube-system".into(),
                name: "coredns-5d78c9869d-x2x7q".into()
            })
        );
        for bad in [
            format!("kube-system_coredns_{}", "0".repeat(36)),
            format!("onlyname_{UID}"),
            format!("_name_{UID}"),
            format!("Upper_name_{UID}"),
            format!("ns_na_me_{UID}"),
            UID.to_owned(),
        ] {
            assert_eq!(parse_dir_name(&bad, UID), None, "{bad}");
        }
    }

    #[test]
    fn finds_the_pod_in_a_fake_kubelet_log_dir() {
        let root = std::env::temp_dir().join(format!("sigwho-kubelet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join(format!("default_web-7c9d_{UID}/nginx"))).unwrap();
        std::fs::create_dir_all(
            root.join("monitoring_agent-x_aaaaaaaa-5b6a-4789-9abc-def012345678"),
        )
        .unwrap();
        // A file of the right name is not a pod directory.
        std::fs::write(root.join(format!("stray_file_{UID}x")), "").unwrap();
        let found = find(&root, UID);
        let missing = find(&root, "00000000-0000-0000-0000-000000000000");
        let unreadable = find(&root.join("absent"), UID);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            found,
            Some(PodName {
                namespace: "default".into(),
                name: "web-7c9d".into()
            })
        );
        assert_eq!(missing, None);
        assert_eq!(unreadable, None);
    }
}
