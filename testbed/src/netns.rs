//! A named network namespace (`/run/netns/NAME`) and ways to act inside it.

use std::{
    fs::File,
    os::{fd::AsRawFd, unix::process::CommandExt},
    path::{Path, PathBuf},
    process::Command,
};

use nix::sched::{CloneFlags, setns};

use crate::{TestBedError, cmd};

/// Where iproute2 keeps the handles of named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A handle on a named network namespace. Cloning it does not clone the namespace;
/// the [`crate::TestBed`] that created it deletes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace with `ip netns add` and brings its loopback up.
    pub(crate) fn create(name: &str) -> Result<Self, TestBedError> {
        cmd::ip(&["netns", "add", name])?;
        let netns = Self {
            name: name.to_owned(),
        };
        cmd::ip_in(name, &["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    /// Deletes the namespace handle; the kernel frees the namespace (and its veths)
    /// once no process or open fd holds it.
    pub(crate) fn delete(name: &str) -> Result<(), TestBedError> {
        cmd::ip(&["netns", "delete", name]).map(drop)
    }

    /// A handle on an existing namespace, by name (no check that it exists).
    pub fn from_name(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`: pass it to `setns`, or to `ip -n NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    fn open(&self) -> Result<File, TestBedError> {
        let path = self.path();
        File::open(&path).map_err(|source| TestBedError::io("opening netns", path, source))
    }

    /// Runs `f` on a fresh thread that has entered this namespace and returns its
    /// result. Sockets, netlink (tc/TCX attach, `if_nametoindex`) and
    /// `/proc/sys/net` opened by `f` all belong to this namespace.
    /// Panics if the namespace cannot be entered; see [`NetNs::try_run`].
    pub fn run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        match self.try_run(f) {
            Ok(value) => value,
            Err(error) => panic!("cannot enter network namespace {}: {error}", self.name),
        }
    }

    /// Like [`NetNs::run`], but returns an error when the namespace cannot be entered.
    /// A panic inside `f` is propagated to the caller.
    pub fn try_run<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> Result<R, TestBedError> {
        let file = self.open()?;
        let name = &self.name;
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|source| TestBedError::sys(format!("setns into {name}"), source))?;
                drop(file);
                Ok(f())
            });
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// A command whose child process enters this namespace before `exec`.
    /// Panics if the namespace handle cannot be opened (it was deleted).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        self.enter_on_exec(&mut command);
        command
    }

    /// Makes an existing command's child enter this namespace before `exec`.
    pub fn enter_on_exec(&self, command: &mut Command) {
        let file = self
            .open()
            .unwrap_or_else(|error| panic!("network namespace {} is gone: {error}", self.name));
        // SAFETY: the closure only calls setns(2), which is async-signal-safe, on an fd
        // opened before fork; it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }

    /// Writes a sysctl of this namespace, e.g. `net/ipv4/ip_forward`.
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<(), TestBedError> {
        let path = PathBuf::from("/proc/sys").join(key);
        self.try_run(|| {
            std::fs::write(&path, value)
                .map_err(|source| TestBedError::io("writing sysctl", path.clone(), source))
        })?
    }

    /// Reads a sysctl of this namespace.
    pub fn sysctl(&self, key: &str) -> Result<String, TestBedError> {
        let path = PathBuf::from("/proc/sys").join(key);
        self.try_run(|| {
            std::fs::read_to_string(&path)
                .map(|value| value.trim().to_owned())
                .map_err(|source| TestBedError::io("reading sysctl", path.clone(), source))
        })?
    }

    /// Runs `ip -n NAME ARGS...` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, TestBedError> {
        cmd::ip_in(&self.name, args)
    }
}
