//! Processes started in a bed: tracked so that the bed kills them when it goes away.

use std::{
    process::{Child, Command, ExitStatus},
    sync::{Arc, Mutex},
};

use nix::{sys::signal, unistd::Pid};

use crate::TestBedError;

/// Pids of live processes a bed started.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pids: Mutex<Vec<u32>>,
}

impl Tracker {
    fn add(&self, pid: u32) {
        self.pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pid);
    }

    fn forget(&self, pid: u32) {
        self.pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&other| other != pid);
    }

    /// SIGKILLs every process still tracked.
    pub(crate) fn kill_all(&self) {
        for pid in self
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = signal::kill(Pid::from_raw(pid as i32), signal::SIGKILL);
        }
    }
}

/// A child process started by [`crate::TestBed::spawn`]. Dropping it kills and reaps
/// the child; the bed kills whatever is left when it is dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Option<Child>,
    tracker: Arc<Tracker>,
}

impl Spawned {
    pub(crate) fn start(mut command: Command, tracker: Arc<Tracker>) -> Result<Self, TestBedError> {
        let child = command.spawn().map_err(|source| TestBedError::Spawn {
            command: format!("{:?}", command),
            source,
        })?;
        tracker.add(child.id());
        Ok(Self {
            child: Some(child),
            tracker,
        })
    }

    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// The underlying child (for its piped stdin/stdout/stderr).
    pub fn child(&self) -> &Child {
        self.child.as_ref().expect("child is present until drop")
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child is present until drop")
    }

    /// Sends SIGKILL (if still running) and reaps the child.
    pub fn kill(&mut self) -> Result<ExitStatus, TestBedError> {
        let child = self.child_mut();
        let _ = child.kill();
        let status = child.wait().map_err(|source| TestBedError::Spawn {
            command: format!("wait for pid {}", child.id()),
            source,
        })?;
        self.tracker.forget(self.id());
        Ok(status)
    }

    /// Waits for the child to exit on its own.
    pub fn wait(&mut self) -> Result<ExitStatus, TestBedError> {
        let child = self.child_mut();
        let status = child.wait().map_err(|source| TestBedError::Spawn {
            command: format!("wait for pid {}", child.id()),
            source,
        })?;
        self.tracker.forget(self.id());
        Ok(status)
    }

    /// Returns `Some(status)` if the child has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, TestBedError> {
        let child = self.child_mut();
        let status = child.try_wait().map_err(|source| TestBedError::Spawn {
            command: format!("poll pid {}", child.id()),
            source,
        })?;
        if status.is_some() {
            self.tracker.forget(self.id());
        }
        Ok(status)
    }

    /// Gives up ownership of the child: it is no longer killed on drop by this handle
    /// nor tracked by the bed.
    pub fn into_child(mut self) -> Child {
        let child = self.child.take().expect("child is present until drop");
        self.tracker.forget(child.id());
        child
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.tracker.forget(child.id());
        }
    }
}
