//! Running netprobe inside a bed: servers that are known to listen, clients whose
//! reports come back parsed.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use super::report::{Attempt, Listening, ListeningLine};
use crate::{Place, Spawned, TestBed, TestBedError};

/// How long a server may take to print its `listening` line.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The netprobe binary, and ways to run it in a bed.
#[derive(Clone, Debug)]
pub struct Netprobe {
    path: PathBuf,
}

/// A running `netprobe serve`, killed when dropped (or with the bed).
#[derive(Debug)]
pub struct ProbeServer {
    process: Spawned,
    listening: Listening,
}

impl ProbeServer {
    /// What the server reported once bound.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    pub fn process(&mut self) -> &mut Spawned {
        &mut self.process
    }

    /// Stops the server now.
    pub fn stop(mut self) -> Result<(), TestBedError> {
        self.process.kill().map(drop)
    }
}

impl Netprobe {
    /// The binary at `path`, e.g. `env!("CARGO_BIN_EXE_netprobe")` in integration tests.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Finds the binary: `$WAGGLE_NETPROBE`, else `netprobe` next to the running
    /// executable or one directory up (cargo puts test binaries in `target/*/deps`).
    pub fn locate() -> Result<Self, TestBedError> {
        if let Some(path) = std::env::var_os("WAGGLE_NETPROBE") {
            return Ok(Self::at(path));
        }
        let exe = std::env::current_exe()
            .map_err(|source| TestBedError::io("locating", "current exe", source))?;
        let mut dir = exe.parent();
        for _ in 0..2 {
            let Some(current) = dir else { break };
            let candidate = current.join("netprobe");
            if candidate.is_file() {
                return Ok(Self::at(candidate));
            }
            dir = current.parent();
        }
        Err(TestBedError::Probe {
            what: "binary",
            detail: format!(
                "netprobe not found near {}; set WAGGLE_NETPROBE or build it (`cargo build -p waggle-testbed --bin netprobe`)",
                exe.display()
            ),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A `netprobe ARGS...` command running in `place`.
    pub fn command(&self, place: &impl Place, args: &[&str]) -> Command {
        let mut command = place.command(self.path.to_str().expect("netprobe path is UTF-8"));
        command.args(args);
        command
    }

    /// Starts `netprobe serve --id ID [--tcp P] [--udp P]` in `place` and waits until
    /// it listens.
    pub fn serve(
        &self,
        bed: &TestBed,
        place: &impl Place,
        id: &str,
        tcp: Option<u16>,
        udp: Option<u16>,
    ) -> Result<ProbeServer, TestBedError> {
        let mut args = vec!["serve".to_owned(), "--id".to_owned(), id.to_owned()];
        if let Some(port) = tcp {
            args.extend(["--tcp".to_owned(), port.to_string()]);
        }
        if let Some(port) = udp {
            args.extend(["--udp".to_owned(), port.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.serve_with(bed, place, &args)
    }

    /// Starts `netprobe ARGS...` (a `serve` command line) in `place` and waits for its
    /// `listening` line.
    pub fn serve_with(
        &self,
        bed: &TestBed,
        place: &impl Place,
        args: &[&str],
    ) -> Result<ProbeServer, TestBedError> {
        let mut command = self.command(place, args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = bed.spawn(command)?;
        let stdout = process.child_mut().stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next());
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let first = receiver.recv_timeout(LISTEN_TIMEOUT);
        let failure = |detail: String| TestBedError::Probe {
            what: "serve",
            detail: format!("in {}: {detail}", place.label()),
        };
        let line = match first {
            Ok(Some(Ok(line))) => line,
            Ok(_) => {
                let status = process.wait()?;
                return Err(failure(format!("exited before listening ({status})")));
            }
            Err(_) => return Err(failure(format!("not listening after {LISTEN_TIMEOUT:?}"))),
        };
        let parsed: ListeningLine = serde_json::from_str(&line)
            .map_err(|error| failure(format!("unexpected first line {line:?}: {error}")))?;
        Ok(ProbeServer {
            process,
            listening: parsed.listening,
        })
    }

    /// `netprobe tcp --to TO --count COUNT` in `place` (5 s timeout per attempt).
    pub fn tcp(
        &self,
        place: &impl Place,
        to: SocketAddr,
        count: u32,
    ) -> Result<Vec<Attempt>, TestBedError> {
        self.client(place, "tcp", to, count, &[])
    }

    /// `netprobe udp --to TO --count COUNT [--connected]` in `place`.
    pub fn udp(
        &self,
        place: &impl Place,
        to: SocketAddr,
        count: u32,
        connected: bool,
    ) -> Result<Vec<Attempt>, TestBedError> {
        self.client(
            place,
            "udp",
            to,
            count,
            if connected { &["--connected"] } else { &[] },
        )
    }

    /// Runs a client subcommand (`tcp`/`udp`) with extra flags (e.g. `--timeout-ms`)
    /// and parses its report lines.
    pub fn client(
        &self,
        place: &impl Place,
        proto: &str,
        to: SocketAddr,
        count: u32,
        extra: &[&str],
    ) -> Result<Vec<Attempt>, TestBedError> {
        let (to, count) = (to.to_string(), count.to_string());
        let mut args = vec![proto, "--to", &to, "--count", &count];
        args.extend_from_slice(extra);
        let output = self
            .command(place, &args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| TestBedError::Spawn {
                command: format!("netprobe {}", args.join(" ")),
                source,
            })?;
        let failure = |detail: String| TestBedError::Probe {
            what: "client",
            detail: format!(
                "`netprobe {}` in {}: {detail}",
                args.join(" "),
                place.label()
            ),
        };
        if !output.status.success() {
            return Err(failure(format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .map_err(|error| failure(format!("bad line {line:?}: {error}")))
            })
            .collect()
    }
}
