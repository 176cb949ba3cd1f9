//! The benchmark's stage: a one-node test bed with a client pod and an nginx pod,
//! pinned to separate CPUs, and the per-run hygiene from `benchmarking.md`.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use waggle_testbed::{Pod, Spawned, TestBed, members::join_cgroup_on_exec};

use crate::load::{self, SockperfReport, WrkReport};

/// HTTP port of the nginx pod, and sockperf's port.
pub const HTTP_PORT: u16 = 80;
/// HTTP port of the second nginx of the server pod, whose sockets no cgroup hook sees
/// (see [`ClientCgroup::Unattached`]).
pub const UNATTACHED_HTTP_PORT: u16 = 8080;
pub const SOCKPERF_PORT: u16 = 11111;

/// Which cgroup the client's load generator runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCgroup {
    /// The client pod's cgroup, below the node cgroup: socket-LB hooks apply.
    Pod,
    /// A cgroup beside the node cgroup, in the same pod network namespace: no cgroup
    /// hook applies, the sockets take the plain path (Waggle has no per-packet
    /// program on this path), so "nothing loaded" can be measured while the proxy runs.
    /// The server side of that path is a second nginx in the same cgroup (port
    /// [`UNATTACHED_HTTP_PORT`]): a listener in the pod cgroup would run the
    /// `getpeername` hook on every `accept()`.
    Unattached,
}

/// Extra seconds a load generator may take beyond its window before it is killed.
const GRACE: u64 = 20;

pub struct Stage {
    pub bed: TestBed,
    pub client: Pod,
    pub server: Pod,
    /// See [`ClientCgroup::Unattached`]; removed with the bed's cgroup tree.
    unattached: PathBuf,
    _nginx: Spawned,
    _unattached_nginx: Spawned,
    _sockperf: Spawned,
}

impl Stage {
    pub fn new() -> anyhow::Result<Self> {
        // Pods route the service CIDR to their node, as in any cluster, so the
        // kube-proxy baselines (DNAT in the node) see the traffic; the node itself has
        // no route for it, so an untranslated packet ends as "network unreachable".
        let bed = TestBed::builder()
            .nodes(1)
            .pod_route(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 0)), 12)
            .build()
            .context("building the test bed")?;
        let client = bed.add_pod(0, "client")?;
        let server = bed.add_pod(0, "nginx")?;
        // Many short connections: wide port range and TIME_WAIT reuse on the client,
        // deep accept queues on the server. Same settings for every column.
        client
            .netns()
            .set_sysctl("net/ipv4/ip_local_port_range", "1024 65535")?;
        client.netns().set_sysctl("net/ipv4/tcp_tw_reuse", "1")?;
        server.netns().set_sysctl("net/core/somaxconn", "65535")?;
        server
            .netns()
            .set_sysctl("net/ipv4/tcp_max_syn_backlog", "65535")?;
        // nginx closes first, so TIME_WAIT sockets pile up in the server pod; with
        // per-connection timestamp offsets, a reused client port then fails the PAWS
        // check and the SYN is retried after 1 s, and the rate of every later run
        // decays. Keeping no TIME_WAIT buckets in the server pod removes that carry-over
        // for every path alike (the kernel logs "time wait bucket table overflow").
        server
            .netns()
            .set_sysctl("net/ipv4/tcp_max_tw_buckets", "0")?;
        let unattached = bed.cgroup_root().join("bench-unattached");
        waggle_testbed::cgroup::create(&unattached)?;
        let nginx = start_nginx(&bed, server.command("taskset"), "nginx", HTTP_PORT)?;
        let mut command = server.netns().command("taskset");
        join_cgroup_on_exec(&mut command, &unattached);
        let unattached_nginx =
            start_nginx(&bed, command, "nginx-unattached", UNATTACHED_HTTP_PORT)?;
        let mut sockperf = server.command("taskset");
        sockperf
            .args([
                "-c",
                "1",
                "sockperf",
                "server",
                "--tcp",
                "-i",
                "0.0.0.0",
                "-p",
                &SOCKPERF_PORT.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let sockperf = bed.spawn(sockperf)?;
        let stage = Stage {
            client,
            server,
            unattached,
            _nginx: nginx,
            _unattached_nginx: unattached_nginx,
            _sockperf: sockperf,
            bed,
        };
        stage.wait_listening(stage.server.address(), HTTP_PORT)?;
        stage.wait_listening(stage.server.address(), UNATTACHED_HTTP_PORT)?;
        stage.wait_listening(stage.server.address(), SOCKPERF_PORT)?;
        Ok(stage)
    }

    fn wait_listening(&self, ip: Ipv4Addr, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = self
                .client
                .command("bash")
                .args(["-c", &format!("exec 3<>/dev/tcp/{ip}/{port}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nothing listens on {ip}:{port} in the server pod after 10s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Forgets conntrack state everywhere (carry-over between runs makes DNAT look
    /// several times slower than it is) and lets TIME_WAIT sockets of the last run
    /// settle for `settle` (the same for every path).
    pub fn reset_between_runs(&self, settle: Duration) {
        for netns in self.bed.namespaces() {
            let _ = netns
                .command("conntrack")
                .arg("-F")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(settle);
    }

    /// SYN retransmits and PAWS rejects counted in the client and server namespaces.
    pub fn syn_trouble_counters(&self) -> u64 {
        [&self.client, &self.server]
            .iter()
            .map(|pod| {
                pod.netns()
                    .command("nstat")
                    .args(["-az"])
                    .output()
                    .map(|out| load::syn_trouble(&String::from_utf8_lossy(&out.stdout)))
                    .unwrap_or(0)
            })
            .sum()
    }

    /// A command in the client pod's network namespace and the chosen cgroup, pinned
    /// to CPU 0 and killed if it overruns `window` by more than [`GRACE`] seconds.
    fn client_command(&self, cgroup: ClientCgroup, window: u64) -> Command {
        let mut command = match cgroup {
            ClientCgroup::Pod => self.client.command("timeout"),
            ClientCgroup::Unattached => {
                let mut command = self.client.netns().command("timeout");
                join_cgroup_on_exec(&mut command, &self.unattached);
                command
            }
        };
        command.args([
            "--kill-after=5",
            &format!("{}s", window + GRACE),
            "taskset",
            "-c",
            "0",
        ]);
        command
    }

    /// New HTTP connections per second (`Connection: close`) from the client pod to
    /// `ip`, wrk on CPU 0 (nginx runs on CPU 1).
    pub fn wrk(
        &self,
        cgroup: ClientCgroup,
        ip: Ipv4Addr,
        port: u16,
        duration: Duration,
        connections: u32,
    ) -> anyhow::Result<WrkReport> {
        let out = self
            .wrk_command(cgroup, ip, port, duration, connections)
            .output()
            .context("running wrk in the client pod")?;
        wrk_report(&out)
    }

    /// Two wrk runs started together, each with its own target and cgroup, sharing the
    /// client's CPU (and the server's): whatever slows the machine during the window
    /// slows both.
    pub fn wrk_pair(
        &self,
        targets: [(ClientCgroup, Ipv4Addr, u16); 2],
        duration: Duration,
        connections: u32,
    ) -> anyhow::Result<[WrkReport; 2]> {
        let spawn = |(cgroup, ip, port): (ClientCgroup, Ipv4Addr, u16)| {
            self.wrk_command(cgroup, ip, port, duration, connections)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting wrk in the client pod")
        };
        let first = spawn(targets[0])?;
        let second = spawn(targets[1]);
        // Wait for the first even when the second failed to start: no run is left behind.
        let first = first
            .wait_with_output()
            .context("running wrk in the client pod");
        let second = second?
            .wait_with_output()
            .context("running wrk in the client pod")?;
        Ok([wrk_report(&first?)?, wrk_report(&second)?])
    }

    fn wrk_command(
        &self,
        cgroup: ClientCgroup,
        ip: Ipv4Addr,
        port: u16,
        duration: Duration,
        connections: u32,
    ) -> Command {
        let seconds = duration.as_secs().max(1);
        let mut command = self.client_command(cgroup, seconds);
        command
            .args(["wrk", "-t1", "-c", &connections.to_string()])
            .args([
                "-d",
                &format!("{seconds}s"),
                "--latency",
                "-H",
                "Connection: close",
            ])
            .arg(format!("http://{ip}:{port}/"));
        command
    }

    /// Request/response latency over one TCP connection (sockperf ping-pong).
    pub fn sockperf(
        &self,
        cgroup: ClientCgroup,
        ip: Ipv4Addr,
        seconds: u32,
    ) -> anyhow::Result<SockperfReport> {
        let out = self
            .client_command(cgroup, u64::from(seconds))
            .args(["sockperf", "ping-pong", "--tcp", "-i", &ip.to_string()])
            .args(["-p", &SOCKPERF_PORT.to_string(), "-t", &seconds.to_string()])
            .output()
            .context("running sockperf in the client pod")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(load::parse_sockperf(&text)?)
    }

    /// Runs `program` with `input` on stdin in the node namespace (rule loaders),
    /// killed after `limit`.
    pub fn node_stdin(
        &self,
        program: &str,
        args: &[&str],
        input: &str,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        use std::io::Write;
        let started = Instant::now();
        let mut child = self
            .bed
            .node(0)
            .netns()
            .command("timeout")
            .args(["--kill-after=5", &format!("{}s", limit.as_secs())])
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(started.elapsed())
    }

    /// Runs a command in the node namespace and fails with its stderr.
    pub fn node_run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .bed
            .node(0)
            .netns()
            .command(program)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// nginx on CPU 1, one worker, listening on `port`; `command` is `taskset` in the
/// server pod's namespace and the wanted cgroup.
/// A finished wrk's report, from its stdout and stderr.
fn wrk_report(out: &std::process::Output) -> anyhow::Result<WrkReport> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(load::parse_wrk(&text)?)
}

fn start_nginx(
    bed: &TestBed,
    mut command: Command,
    name: &str,
    port: u16,
) -> anyhow::Result<Spawned> {
    let dir = bed.run_dir().join(name);
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 16384; multi_accept on; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{ listen {port} backlog=65535; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        ),
    )?;
    command
        .args(["-c", "1", "nginx", "-p"])
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(bed.spawn(command)?)
}
