//! Pod cgroups: the runtime creates each container's cgroup below the pod's
//! (`<cgroup root>/pod<uid>`); the kubelet removes the pod's once its sandbox is gone,
//! in every mounted hierarchy (cgroup v2, or each v1 controller of a hybrid host).

use std::path::PathBuf;

/// Where cgroup hierarchies are mounted, from /proc/self/mountinfo.
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fs_type = right.split_whitespace().next()?;
            (fs_type == "cgroup" || fs_type == "cgroup2").then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .collect()
}

/// Removes the cgroup `path` (and what is left below it) from every hierarchy;
/// a cgroup still holding processes stays, and is logged.
pub fn remove(path: &str) {
    let relative = path.trim_start_matches('/');
    if relative.is_empty() {
        return;
    }
    for mount in mount_points() {
        remove_tree(&mount.join(relative));
    }
}

fn remove_tree(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path());
        }
    }
    if let Err(e) = std::fs::remove_dir(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, cgroup = %dir.display(), "removing a pod cgroup");
    }
}
