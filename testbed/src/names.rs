//! Object names: every object of a bed starts with `wgtb-<pid>-<n>` so that test
//! binaries running at the same time never touch each other's objects, and leftovers
//! of a crashed run can be told apart by their (dead) owner pid.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The prefix shared by every test bed object.
pub const PREFIX: &str = "wgtb-";

static NEXT_BED: AtomicUsize = AtomicUsize::new(0);

/// A fresh prefix `wgtb-<pid>-<n>` for a new bed in this process.
pub fn new_bed_prefix() -> String {
    let n = NEXT_BED.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}", std::process::id())
}

/// The owner pid encoded in a name made from a bed prefix, if it is one.
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, after) = rest.split_once('-')?;
    if after.is_empty() || !pid.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (EPERM counts as alive).
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Makes a pod name safe for netns names and cgroup directories.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_bed_names() {
        assert_eq!(owner_pid("wgtb-123-0-node0"), Some(123));
        assert_eq!(owner_pid("wgtb-123-0"), Some(123));
        assert_eq!(owner_pid("wgtb-x1-0"), None);
        assert_eq!(owner_pid("wgtb-123"), None);
        assert_eq!(owner_pid("other-123-0"), None);
    }

    #[test]
    fn prefixes_are_unique_and_owned_by_us() {
        let a = new_bed_prefix();
        let b = new_bed_prefix();
        assert_ne!(a, b);
        assert_eq!(owner_pid(&a), Some(std::process::id() as i32));
        assert!(pid_alive(std::process::id() as i32));
    }

    #[test]
    fn sanitize_keeps_names_path_safe() {
        assert_eq!(sanitize("web-0"), "web-0");
        assert_eq!(sanitize("a/b c"), "a_b_c");
    }
}
