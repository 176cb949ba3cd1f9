//! The bed's private cgroup2 mount and the cgroups of its nodes and pods.
//!
//! `ip netns exec` remounts `/sys`, and the host's v2 hierarchy sits at
//! `/sys/fs/cgroup/unified` (hybrid layout), so the bed mounts cgroup2 itself under
//! its run directory. Cgroups are created below a per-bed child: the root cgroup is
//! never written to nor attached to.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::TestBedError;

/// Mounts a cgroup2 hierarchy at `target` (created if missing).
pub fn mount_cgroup2(target: &Path) -> Result<(), TestBedError> {
    fs::create_dir_all(target)
        .map_err(|source| TestBedError::io("creating mount point", target, source))?;
    mount(
        Some("none"),
        target,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|source| {
        TestBedError::sys(
            format!("mount -t cgroup2 none {}", target.display()),
            source,
        )
    })
}

/// Detaches a mount (lazily, so a busy mount still goes away).
pub fn unmount(target: &Path) -> Result<(), TestBedError> {
    umount2(target, MntFlags::MNT_DETACH)
        .map_err(|source| TestBedError::sys(format!("umount {}", target.display()), source))
}

/// Creates a cgroup directory.
pub fn create(path: &Path) -> Result<(), TestBedError> {
    fs::create_dir(path).map_err(|source| TestBedError::io("creating cgroup", path, source))
}

/// Kills every process in the cgroup tree at `path` and removes it, children first.
/// Uses `cgroup.kill` (Linux 5.14) and falls back to signalling `cgroup.procs` members.
pub fn remove_tree(path: &Path) -> Result<(), TestBedError> {
    if !path.exists() {
        return Ok(());
    }
    kill_all(path);
    wait_empty(path);
    remove_dirs(path)
}

fn remove_dirs(path: &Path) -> Result<(), TestBedError> {
    let entries =
        fs::read_dir(path).map_err(|source| TestBedError::io("listing cgroup", path, source))?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            remove_dirs(&entry.path())?;
        }
    }
    // A cgroup whose last process is still exiting refuses rmdir with EBUSY for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error)
                if Instant::now() < deadline && error.raw_os_error() == Some(libc::EBUSY) =>
            {
                kill_all(path);
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => return Err(TestBedError::io("removing cgroup", path, source)),
        }
    }
}

fn kill_all(path: &Path) {
    if fs::write(path.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    for pid in members_recursive(path) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    }
}

fn wait_empty(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let populated = fs::read_to_string(path.join("cgroup.events"))
            .map(|events| events.lines().any(|line| line == "populated 1"))
            .unwrap_or(false);
        if !populated {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::warn!(cgroup = %path.display(), "cgroup still populated after 5 s");
}

/// Pids in the cgroup at `path` and all its descendants.
pub fn members_recursive(path: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(path.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                pids.extend(members_recursive(&entry.path()));
            }
        }
    }
    pids
}

/// A mounted cgroup hierarchy: the machine's cgroup2 (and the bed's mounts of it), or
/// one of a hybrid host's v1 hierarchies.
pub struct Hierarchy {
    pub mount: PathBuf,
    pub v1: bool,
}

/// Every mounted cgroup hierarchy, from /proc/self/mountinfo.
pub fn hierarchies() -> Vec<Hierarchy> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let v1 = match right.split_whitespace().next()? {
                "cgroup" => true,
                "cgroup2" => false,
                _ => return None,
            };
            Some(Hierarchy {
                mount: PathBuf::from(left.split_whitespace().nth(4)?),
                v1,
            })
        })
        .collect()
}

/// The `cgroup.procs` file of a cgroup directory.
pub fn procs_file(cgroup: &Path) -> PathBuf {
    cgroup.join("cgroup.procs")
}
