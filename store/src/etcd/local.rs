//! A single-member etcd run as a child process on 127.0.0.1, for tests,
//! benchmarks and single-machine development. Killed when dropped.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::StoreError;

/// Where the etcd binary is looked for unless `WAGGLE_ETCD_BIN` says otherwise
/// (Debian's `etcd-server` package, which `cargo xtask setup` installs).
pub const DEFAULT_ETCD_BIN: &str = "/usr/bin/etcd";

/// A running etcd member.
pub struct LocalEtcd {
    child: Option<Child>,
    data_dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

/// Ports this process has given to an etcd. The probe listener closes before etcd
/// binds, so the kernel may offer the same port again meanwhile: to another etcd
/// started at once by a parallel test, which would then answer the other's health
/// check. A port is handed out once per process (restarts keep theirs).
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn free_port() -> Result<u16, StoreError> {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| StoreError::Backend(format!("no free port: {e}")))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| StoreError::Backend(format!("no free port: {e}")))?;
        if HANDED_OUT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(port)
        {
            return Ok(port);
        }
    }
    Err(StoreError::Backend(
        "no free port: the kernel kept offering ports already given to an etcd".into(),
    ))
}

fn etcd_bin() -> Result<PathBuf, StoreError> {
    let bin =
        PathBuf::from(std::env::var("WAGGLE_ETCD_BIN").unwrap_or_else(|_| DEFAULT_ETCD_BIN.into()));
    if !bin.exists() {
        return Err(StoreError::Backend(format!(
            "etcd binary {} not found: `cargo xtask setup` installs it (Debian package etcd-server)",
            bin.display()
        )));
    }
    Ok(bin)
}

impl LocalEtcd {
    /// Starts etcd with a data dir under `data_dir` on free ports, and waits until it serves.
    pub async fn start(data_dir: &Path) -> Result<Self, StoreError> {
        let mut last = None;
        // A free port can be taken between probing and etcd binding it: retry.
        for _ in 0..3 {
            match Self::start_on(data_dir, free_port()?, free_port()?).await {
                Ok(etcd) => return Ok(etcd),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::Backend("etcd did not start".into())))
    }

    /// Starts etcd on the given ports (a restart on the same data dir reuses them).
    pub async fn start_on(
        data_dir: &Path,
        client_port: u16,
        peer_port: u16,
    ) -> Result<Self, StoreError> {
        let bin = etcd_bin()?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Backend(format!("etcd data dir: {e}")))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .map_err(|e| StoreError::Backend(format!("etcd log file: {e}")))?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(&bin)
            .arg("--name=default")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            // Progress notifications become watch bookmarks; etcd's default is 10 minutes.
            .arg("--experimental-watch-progress-notify-interval=5s")
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| StoreError::Backend(format!("etcd log file: {e}")))?,
            )
            .stderr(log)
            .spawn()
            .map_err(|e| StoreError::Backend(format!("cannot run {}: {e}", bin.display())))?;
        let mut etcd = LocalEtcd {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            client_port,
            peer_port,
        };
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    async fn wait_ready(&mut self) -> Result<(), StoreError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.data_dir.with_extension("log"))
                    .unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                return Err(StoreError::Backend(format!(
                    "etcd exited with {status}: {tail}"
                )));
            }
            let options =
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
            if let Ok(mut client) =
                etcd_client::Client::connect([self.endpoint()], Some(options)).await
                && client.get("health", None).await.is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Backend(format!(
                    "etcd on {} not ready within 30s",
                    self.endpoint()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// `127.0.0.1:PORT`, as `etcd://` specs spell it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `kill -9`s the server (a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same data dir and ports.
    pub async fn crash_and_restart(&mut self) -> Result<(), StoreError> {
        self.kill();
        let mut restarted =
            Self::start_on(&self.data_dir, self.client_port, self.peer_port).await?;
        // `restarted` drops with no child left to kill.
        self.child = restarted.child.take();
        Ok(())
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}
