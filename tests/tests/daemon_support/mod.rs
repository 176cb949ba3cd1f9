//! Running Waggle's real binaries in a test bed: the `waggle` binary's location, a
//! daemon process with its log file (printed when it dies or the test panics), and
//! the `/healthz` probe a proxy is waited on with.
//!
//! Used by `cluster_e2e.rs` and `proxy_daemon.rs`.

#![allow(dead_code)] // each test binary uses its own part

use std::{
    fs::File,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use waggle_testbed::{NetNs, Spawned, TestBed};

/// The `waggle` binary: `$WAGGLE_BIN`, else beside the test's profile directory
/// (`target/<profile>/waggle`, the test runs from `target/<profile>/deps`). Cargo
/// does not build another package's binaries for a test, so it must exist already.
pub fn waggle_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let binary = match std::env::var_os("WAGGLE_BIN") {
        Some(path) => PathBuf::from(path),
        None => exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from target/<profile>/deps")
            .join("waggle"),
    };
    assert!(
        binary.is_file(),
        "{} is missing: this test runs the real `waggle` binary. Build it first with \
         `cargo build -p waggle --bin waggle` (same CARGO_TARGET_DIR, profile and \
         WAGGLE_BPF_OBJECT as the tests; `cargo xtask test` does this), or point WAGGLE_BIN at it",
        binary.display()
    );
    binary
}

/// A process of the bed and its log file.
pub struct Daemon {
    pub name: String,
    process: Spawned,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `command` with stdout and stderr appended to `dir/<name>.log`.
    pub fn start(bed: &TestBed, dir: &Path, name: &str, mut command: Command) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).expect("creating a log file");
        command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file);
        let process = bed
            .spawn(command)
            .unwrap_or_else(|error| panic!("starting {name}: {error}"));
        Self {
            name: name.to_owned(),
            process,
            log,
        }
    }

    /// Panics with the log if the process has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.process.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.read_log());
        }
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `GET /healthz` at `addr` in `netns` answers 200 (the first sync
    /// is done); panics with the log if the process dies or `timeout` passes.
    pub fn wait_healthy(&mut self, netns: &NetNs, addr: &str, timeout: Duration) {
        let since = Instant::now();
        loop {
            self.check_alive();
            let status = netns.run(|| healthz(addr));
            if status == Some(200) {
                return;
            }
            assert!(
                since.elapsed() < timeout,
                "{} not healthy within {timeout:?} (last /healthz status {status:?}):\n{}",
                self.name,
                self.read_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
    }

    pub fn read_log(&self) -> String {
        read_log(&self.log)
    }
}

pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}

/// The HTTP status of `GET /healthz` at `addr` (in the calling thread's namespace).
pub fn healthz(addr: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}
