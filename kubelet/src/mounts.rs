//! The node's mount table as the kubelet needs it: memory-backed (`tmpfs`) volumes
//! are mounted once per pod and unmounted, deepest first, before the pod's directory
//! is removed.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The mount points at or below `dir`, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|escaped| PathBuf::from(unescape(escaped)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    points.dedup();
    points
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4).and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Mounts a tmpfs on `path` (world-writable, as an emptyDir is), limited to
/// `size_bytes` when given; a tmpfs already there is kept, contents and all.
pub fn mount_tmpfs(path: &Path, size_bytes: Option<u64>) -> std::io::Result<()> {
    if mounts_below(path).iter().any(|point| point == path) {
        return Ok(());
    }
    let mut options = "mode=0777".to_owned();
    if let Some(size) = size_bytes {
        options.push_str(&format!(",size={size}"));
    }
    nix::mount::mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(std::io::Error::from)
}

/// Unmounts everything at or below `dir` (detached, so a busy mount goes as soon as
/// its last user does).
pub fn unmount_below(dir: &Path) {
    for point in mounts_below(dir) {
        if let Err(e) = nix::mount::umount2(&point, MntFlags::MNT_DETACH) {
            tracing::warn!(error = %e, path = %point.display(), "unmounting a pod volume");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/var/lib/kubelet/a\040b\134c"), r"/var/lib/kubelet/a b\c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/odd\x"), r"/odd\x");
    }
}
