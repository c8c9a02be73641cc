//! What sigwho knows of the system: processes and their lineage, /proc, cgroups and
//! pods, clocks, signal names.

pub mod cgroup;
pub mod clock;
pub mod kubelet;
pub mod lineage;
pub mod procfs;
pub mod signals;
