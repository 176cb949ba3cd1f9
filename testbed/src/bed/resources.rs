//! Everything a bed created, and removing it in reverse dependency order.

use std::{
    fs,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use crate::{cgroup, netns::NetNs, process::Tracker, sweep};

/// What a bed created, removed on drop in reverse dependency order. Built up step by
/// step so a half-built bed is removed too.
#[derive(Debug)]
pub(super) struct Resources {
    pub(super) run_dir: PathBuf,
    pub(super) mounts: Vec<PathBuf>,
    pub(super) cgroup_root: Option<PathBuf>,
    pub(super) namespaces: Mutex<Vec<String>>,
    pub(super) pins: Mutex<Vec<PathBuf>>,
    pub(super) tracker: Arc<Tracker>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.tracker.kill_all();
        if let Some(root) = &self.cgroup_root
            && let Err(error) = cgroup::remove_tree(root)
        {
            tracing::warn!(%error, "testbed cleanup: cgroups");
        }
        let namespaces =
            std::mem::take(&mut *self.namespaces.lock().unwrap_or_else(|p| p.into_inner()));
        let inodes: Vec<u64> = namespaces
            .iter()
            .filter_map(|name| fs::metadata(NetNs::from_name(name.as_str()).path()).ok())
            .map(|meta| std::os::unix::fs::MetadataExt::ino(&meta))
            .collect();
        sweep::kill_in_namespaces(&inodes);
        for name in namespaces.iter().rev() {
            if let Err(error) = NetNs::delete(name) {
                tracing::warn!(%error, "testbed cleanup: netns");
            }
        }
        for pin in self
            .pins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            if let Err(error) = fs::remove_dir_all(&pin)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(%error, pin = %pin.display(), "testbed cleanup: pin dir");
            }
        }
        for mount in self.mounts.iter().rev() {
            if let Err(error) = cgroup::unmount(mount) {
                tracing::warn!(%error, "testbed cleanup: mount");
            }
        }
        if let Err(error) = fs::remove_dir_all(&self.run_dir) {
            tracing::warn!(%error, "testbed cleanup: run dir");
        }
    }
}
