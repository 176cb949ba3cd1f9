//! The kubectl test bed: an in-process Waggle API server on a loopback port (SQLite store
//! in a temporary directory), the admin kubeconfig it writes, and the real kubectl binary
//! run against it with its own `HOME` (so discovery and OpenAPI caches start cold).
//!
//! kubectl is `/usr/bin/kubectl.1.32`, else the 1.32 binary of the Google Cloud SDK
//! (bypassing its version dispatcher, which picks a binary by server version), else
//! `kubectl` from `PATH`; `WAGGLE_KUBECTL` overrides.
//!
//! [`Cluster::start`] runs the API server alone, so each case sees exactly the objects
//! it made; [`Cluster::with_controllers`] adds Waggle's controllers, as `waggle server`
//! runs them, [`Cluster::with_scheduler`] its scheduler, and
//! [`Cluster::with_controllers_and_scheduler`] both.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The directory with the YAML fixtures.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kubectl/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn kubectl_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("WAGGLE_KUBECTL") {
        return p.into();
    }
    for candidate in [
        "/usr/bin/kubectl.1.32",
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.32",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "kubectl".into()
}

/// A running API server and a kubectl configured for it.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    server: Option<waggle_apiserver::Running>,
    controllers: Option<tokio::task::JoinHandle<()>>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    dir: TempDir,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Cluster {
    /// Starts a fresh server; panics (failing the test) when it cannot.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let server = runtime.block_on(async {
            let store =
                waggle_store::open(&format!("sqlite://{}", data_dir.join("state.db").display()))
                    .await
                    .expect("opening the SQLite store");
            let mut config = waggle_apiserver::Config::new(data_dir.clone(), store);
            config.bind = "127.0.0.1:0".parse().expect("address");
            waggle_apiserver::start(config)
                .await
                .expect("starting the API server")
        });
        std::fs::create_dir_all(dir.path().join("home")).expect("home dir");
        // The admin kubeconfig as the server wrote it (client certificate signed by the
        // cluster CA); a copy, so that kubectl never edits the server's file.
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::copy(&server.kubeconfig, &kubeconfig).expect("copying the admin kubeconfig");
        Cluster {
            runtime,
            server: Some(server),
            controllers: None,
            scheduler: None,
            dir,
            kubectl: kubectl_binary(),
            kubeconfig,
        }
    }

    /// Starts a fresh server with every controller running against it.
    pub fn with_controllers() -> Cluster {
        let mut cluster = Cluster::start();
        cluster.run_controllers();
        cluster
    }

    /// Starts a fresh server with Waggle's scheduler (`default-scheduler`) running
    /// against it, and no controllers.
    pub fn with_scheduler() -> Cluster {
        let mut cluster = Cluster::start();
        cluster.run_scheduler();
        cluster
    }

    /// Starts a fresh server with every controller and the scheduler, as `waggle
    /// server` runs them.
    pub fn with_controllers_and_scheduler() -> Cluster {
        let mut cluster = Cluster::start();
        cluster.run_controllers();
        cluster.run_scheduler();
        cluster
    }

    fn run_controllers(&mut self) {
        let ca = std::fs::read_to_string(self.dir.path().join("data/pki/ca.crt"))
            .expect("reading the cluster CA");
        let key = std::fs::read_to_string(self.dir.path().join("data/pki/ca.key"))
            .expect("reading the cluster CA's key");
        let client = self.client();
        let task = self.runtime.spawn(async move {
            let client = client.await;
            let signing = waggle_controllers::certificate_signer::SigningCa {
                cert_pem: ca.clone(),
                key_pem: key,
                duration: waggle_controllers::certificate_signer::DEFAULT_DURATION,
            };
            let options = waggle_controllers::Options::all(Some(ca), Some(signing));
            if let Err(error) = waggle_controllers::run(client, options).await {
                eprintln!("controllers stopped: {error}");
            }
        });
        self.controllers = Some(task);
    }

    fn run_scheduler(&mut self) {
        let client = self.client();
        let task = self.runtime.spawn(async move {
            let options = waggle_scheduler::Options::default();
            if let Err(error) = waggle_scheduler::run(client.await, options).await {
                eprintln!("scheduler stopped: {error}");
            }
        });
        self.scheduler = Some(task);
    }

    /// A kube-rs client with the admin kubeconfig, once awaited (on the cluster's runtime).
    fn client(&self) -> impl std::future::Future<Output = kube::Client> + Send + 'static {
        // rustls is built with more than one provider in this workspace; kube-rs then
        // needs the process default chosen (an error only means it is already set).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = self.kubeconfig.clone();
        async move {
            let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .expect("client configuration");
            kube::Client::try_from(config).expect("client")
        }
    }

    /// The kubectl binary's file name: what kube-apiserver takes as the default field
    /// manager (kubectl's user agent starts with it).
    pub fn binary_name(&self) -> String {
        self.kubectl
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Writes `contents` to `name` in the test's directory (mode 0755, so scripts such
    /// as a `KUBE_EDITOR` can run); returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("writing a test file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path.to_string_lossy().into_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            // kubectl's temporary files (edit copies, diff trees) go with the test's directory.
            .env("TMPDIR", self.dir.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl with `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.kubectl.display()))
            .into()
    }

    /// Runs kubectl with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("running kubectl").into()
    }

    /// Runs kubectl with `stdin` piped in (`-f -`).
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writing stdin");
        child.wait_with_output().expect("kubectl output").into()
    }

    /// Runs kubectl, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code,
            Some(0),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Like [`Cluster::ok`] with stdin.
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let r = self.run_stdin(args, stdin);
        assert_eq!(
            r.code,
            Some(0),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs kubectl, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_ne!(
            r.code,
            Some(0),
            "kubectl {} unexpectedly succeeded:\n{}",
            args.join(" "),
            r.stdout
        );
        r.stderr
    }

    /// Like [`Cluster::fails`] with stdin.
    pub fn fails_stdin(&self, args: &[&str], stdin: &str) -> String {
        let r = self.run_stdin(args, stdin);
        assert_ne!(
            r.code,
            Some(0),
            "kubectl {} unexpectedly succeeded:\n{}",
            args.join(" "),
            r.stdout
        );
        r.stderr
    }

    /// Runs kubectl until its output satisfies `done` (30 seconds at most); returns the
    /// last output.
    pub fn wait_for_output(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ok(args);
            if done(&out) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts kubectl in the background with stdout captured to a file (for `get -w`).
    pub fn spawn(&self, args: &[&str]) -> Background {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = self.dir.path().join(format!("background-{n}.out"));
        let err = self.dir.path().join(format!("background-{n}.err"));
        let file = std::fs::File::create(&out).expect("output file");
        let err_file = std::fs::File::create(&err).expect("error file");
        let child = self
            .command(args)
            .stdout(file)
            .stderr(err_file)
            .spawn()
            .expect("spawning kubectl");
        Background { child, out, err }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(controllers) = self.controllers.take() {
            controllers.abort();
        }
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.abort();
        }
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// A kubectl running in the background; killed on drop.
pub struct Background {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    /// Waits (up to `timeout`) until the output satisfies `done`; returns the output.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if done(&text) || start.elapsed() > timeout {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The exit of the process if it ends within `timeout` (`None` if it is still running).
    pub fn exit_within(&mut self, timeout: Duration) -> Option<Run> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polling kubectl") {
                return Some(Run {
                    code: status.code(),
                    stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                });
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines with runs of spaces collapsed, for comparing kubectl's column output.
pub fn columns(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}
