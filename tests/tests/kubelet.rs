//! The kubelet end to end: `waggle server` in node 0's namespace, and on every node a
//! containerd (Debian's) and `waggle kubelet` (see `cluster_e2e/cluster.rs`). Pods run
//! for real, from images made of the host's static busybox, and the real kubectl reads
//! their logs, execs into them and forwards ports to them through the API server and
//! the kubelet API, as a user does.
//!
//! Needs root and the `waggle` binary built beside the tests (`cargo xtask test`).

#[path = "cluster_e2e/api.rs"]
#[allow(dead_code)]
mod api;
#[path = "cluster_e2e/cluster.rs"]
#[allow(dead_code)]
mod cluster;
#[path = "daemon_support/mod.rs"]
mod daemon_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::{Cluster, Parts};
use k8s_openapi::api::core::v1::Pod;
use waggle_testbed::TestBed;
use waggle_testbed::runtime::images::BUSYBOX;

/// A container command that runs until it is asked to stop.
const SLEEPER: &str = "trap 'exit 0' TERM; while true; do sleep 0.2; done";
const WAIT: Duration = Duration::from_secs(60);

struct Kubectl<'a> {
    bed: &'a TestBed,
    cluster: &'a Cluster,
}

impl Kubectl<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bed.node(0).netns().command("kubectl");
        command
            .arg("--kubeconfig")
            .arg(self.cluster.kubeconfig())
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// Runs kubectl and returns its stdout; panics (with stderr) when it fails.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs kubectl with `input` on its stdin.
    fn with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing kubectl's stdin");
        child.wait_with_output().expect("waiting for kubectl")
    }

    fn apply(&self, manifest: &str) {
        let output = self.with_input(&["apply", "-f", "-"], manifest);
        assert!(
            output.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pod(&self, name: &str) -> Pod {
        serde_json::from_str(&self.ok(&["get", "pod", name, "-o", "json"])).expect("a pod as JSON")
    }

    /// Waits until `check` holds for the pod; panics with the pod and the cluster's
    /// logs after [`WAIT`].
    fn wait_for(&self, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
        let started = Instant::now();
        loop {
            let pod = self.pod(name);
            if check(&pod) {
                return pod;
            }
            assert!(
                started.elapsed() < WAIT,
                "pod {name}: {what} not reached within {WAIT:?}: {:#?}",
                pod.status
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A bed of `nodes` nodes and a cluster on it: the server, a containerd and a kubelet
/// per node and, with `proxies`, a proxy per node. (The cluster is dropped first.)
fn start(nodes: usize, proxies: bool) -> (TestBed, Cluster) {
    let bed = TestBed::builder()
        .nodes(nodes)
        .build()
        .expect("building the bed");
    let cluster = Cluster::start_with(
        &bed,
        Parts {
            proxies,
            kubelets: true,
        },
    );
    (bed, cluster)
}

fn pod_manifest(name: &str, restart: &str, script: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
            "metadata": {{"name": "{name}"}},
            "spec": {{"restartPolicy": "{restart}", "terminationGracePeriodSeconds": 2,
                      "containers": [{{"name": "main", "image": "{BUSYBOX}",
                                       "command": ["sh", "-c", {script:?}]}}]}}}}"#
    )
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn main_status(pod: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()
        .cloned()
}

#[test]
fn kubectl_reads_logs_execs_and_forwards_ports_to_pods_the_kubelet_runs() {
    let (bed, cluster) = start(1, false);
    let kubectl = Kubectl {
        bed: &bed,
        cluster: &cluster,
    };

    kubectl.apply(&pod_manifest(
        "talker",
        "Always",
        "trap 'exit 0' TERM; echo hello from $(hostname); i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ));
    let pod = kubectl.wait_for("talker", "Ready", ready);
    let status = pod.status.clone().expect("a status");
    assert_eq!(phase(&pod), "Running");
    let ip: std::net::Ipv4Addr = status
        .pod_ip
        .as_deref()
        .expect("a pod IP")
        .parse()
        .expect("an IPv4 pod IP");
    assert_eq!(
        ip.octets()[..3],
        [10, 244, 0],
        "the pod's address is from node0's podCIDR: {ip}"
    );
    assert_eq!(status.host_ip.as_deref(), Some("10.250.0.1"));
    let container = main_status(&pod).expect("a container status");
    assert!(container.ready && container.started == Some(true));
    assert!(
        container
            .container_id
            .unwrap_or_default()
            .starts_with("containerd://")
    );

    let wide = kubectl.ok(&["get", "pod", "talker", "-o", "wide"]);
    assert!(
        wide.contains("1/1")
            && wide.contains("Running")
            && wide.contains(&ip.to_string())
            && wide.contains("node0"),
        "{wide}"
    );

    // Logs: whole, tail, follow.
    let logs = kubectl.ok(&["logs", "talker"]);
    assert!(logs.starts_with("hello from talker\n"), "{logs}");
    let tail = kubectl.ok(&["logs", "talker", "--tail=1"]);
    assert!(
        tail.starts_with("tick ") && tail.lines().count() == 1,
        "{tail:?}"
    );
    let stamped = kubectl.ok(&["logs", "talker", "--timestamps", "--tail=1"]);
    assert!(
        stamped
            .split(' ')
            .next()
            .is_some_and(|t| t.contains('T') && t.ends_with('Z')),
        "{stamped:?}"
    );
    let mut follower = kubectl
        .command(&["logs", "-f", "talker", "--tail=0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let mut lines = BufReader::new(follower.stdout.take().expect("stdout")).lines();
    for _ in 0..3 {
        let line = lines
            .next()
            .expect("a followed line")
            .expect("reading kubectl logs -f");
        assert!(line.starts_with("tick "), "{line}");
    }
    let _ = follower.kill();
    let _ = follower.wait();

    // Exec: a command's output and exit code, stdin, an unknown container.
    let out = kubectl.ok(&[
        "exec",
        "talker",
        "--",
        "sh",
        "-c",
        "echo $((6*7)) $(hostname)",
    ]);
    assert_eq!(out, "42 talker\n");
    let echoed = kubectl.with_input(&["exec", "-i", "talker", "--", "cat"], "through stdin\n");
    assert!(
        echoed.status.success(),
        "{}",
        String::from_utf8_lossy(&echoed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "through stdin\n");
    let failed = kubectl.run(&["exec", "talker", "--", "sh", "-c", "exit 3"]);
    assert_eq!(
        failed.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    let wrong = kubectl.run(&["exec", "talker", "-c", "nope", "--", "true"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr)
            .contains("container nope is not valid for pod talker"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    // Files in and out: `kubectl cp` runs tar in the container through exec.
    let local = tempfile::tempdir().expect("a temporary directory");
    let source = local.path().join("greeting.txt");
    std::fs::write(&source, "copied in\n").expect("writing a local file");
    kubectl.ok(&[
        "cp",
        source.to_str().expect("a UTF-8 path"),
        "talker:/tmp/greeting.txt",
    ]);
    assert_eq!(
        kubectl.ok(&["exec", "talker", "--", "cat", "/tmp/greeting.txt"]),
        "copied in\n"
    );
    kubectl.ok(&[
        "exec",
        "talker",
        "--",
        "sh",
        "-c",
        "echo copied out > /tmp/back.txt",
    ]);
    let back = local.path().join("back.txt");
    kubectl.ok(&[
        "cp",
        "talker:/tmp/back.txt",
        back.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("the copied file"),
        "copied out\n"
    );

    // kubectl debug: an ephemeral container in the PID namespace of the target.
    let image = format!("--image={BUSYBOX}");
    let debug = [
        "debug",
        "talker",
        &image,
        "--target=main",
        "--container=debugger",
        "--",
        "ps",
        "-o",
        "args",
    ];
    kubectl.ok(&debug);
    kubectl.wait_for("talker", "the debugger finished", |p| {
        let statuses = p
            .status
            .as_ref()
            .and_then(|s| s.ephemeral_container_statuses.as_ref());
        statuses.into_iter().flatten().any(|s| {
            s.name == "debugger"
                && s.state
                    .as_ref()
                    .and_then(|st| st.terminated.as_ref())
                    .is_some_and(|t| t.exit_code == 0)
        })
    });
    let seen = kubectl.ok(&["logs", "talker", "-c", "debugger"]);
    assert!(
        seen.contains("trap 'exit 0' TERM"),
        "the debugger sees the target's processes: {seen}"
    );

    // Port-forward to a server in another pod.
    kubectl.apply(&pod_manifest(
        "web",
        "Always",
        "mkdir -p /www && echo served-by-the-pod > /www/index.html && exec httpd -f -p 8080 -h /www",
    ));
    kubectl.wait_for("web", "Ready", ready);
    let mut forwarder = kubectl
        .command(&["port-forward", "-v=4", "pod/web", "18080:8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl port-forward");
    let mut announced = BufReader::new(forwarder.stdout.take().expect("stdout"));
    let mut first = String::new();
    announced
        .read_line(&mut first)
        .expect("port-forward's first line");
    assert!(
        first.contains("Forwarding from 127.0.0.1:18080 -> 8080"),
        "{first}"
    );
    let page = bed.node(0).netns().run(|| {
        let mut stream =
            TcpStream::connect("127.0.0.1:18080").expect("connecting to the forwarded port");
        stream
            .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
            .expect("sending a request");
        let mut page = String::new();
        stream
            .read_to_string(&mut page)
            .expect("reading the answer");
        page
    });
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    let mut log = String::new();
    let _ = forwarder
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log);
    // kubectl tunnels SPDY through a WebSocket, as against upstream, and did not
    // fall back to a SPDY upgrade.
    assert!(
        log.contains("negotiated protocol: portforward.k8s.io"),
        "{log}"
    );
    assert!(!log.contains("fallback to secondary dialer"), "{log}");
    assert!(
        page.starts_with("HTTP/1.") && page.contains("served-by-the-pod"),
        "{page}"
    );

    // Deleting: the containers stop within the grace period and the pod goes.
    let started = Instant::now();
    kubectl.ok(&[
        "delete",
        "pod",
        "talker",
        "web",
        "--wait=true",
        "--timeout=30s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "deletion took {:?}",
        started.elapsed()
    );
    let left = kubectl.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(left, "", "pods left: {left}");
}

/// kubectl's log at `-v=7` says which stream protocol it spoke: client-go's WebSocket
/// executor logs the negotiated subprotocol, and its fallback executor logs
/// `RemoteCommand fallback` before it retries over SPDY.
fn assert_websocket_v5(what: &str, log: &str) {
    assert!(
        log.contains("The subprotocol is v5.channel.k8s.io"),
        "{what}: kubectl did not speak WebSocket v5: {log}"
    );
    assert!(
        !log.contains("RemoteCommand fallback"),
        "{what}: kubectl fell back to SPDY: {log}"
    );
}

#[test]
fn kubectl_exec_and_attach_speak_websocket_v5_through_the_kubelets_translator() {
    let (bed, cluster) = start(1, false);
    let kubectl = Kubectl {
        bed: &bed,
        cluster: &cluster,
    };
    kubectl.apply(&pod_manifest("shell", "Always", SLEEPER));
    kubectl.wait_for("shell", "Ready", ready);

    // stdout and stderr each on their channel.
    let both = kubectl.run(&[
        "exec",
        "-v=7",
        "shell",
        "--",
        "sh",
        "-c",
        "echo to stdout; echo to stderr >&2",
    ]);
    let log = String::from_utf8_lossy(&both.stderr);
    assert!(both.status.success(), "{log}");
    assert_websocket_v5("exec", &log);
    assert_eq!(String::from_utf8_lossy(&both.stdout), "to stdout\n");
    assert!(log.lines().any(|line| line == "to stderr"), "{log}");

    // The exit code comes back in the error channel's Status.
    let failed = kubectl.run(&["exec", "-v=7", "shell", "--", "sh", "-c", "exit 3"]);
    let log = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(3), "{log}");
    assert_websocket_v5("exec exiting 3", &log);

    // stdin to its end: kubectl's close signal half-closes the runtime's stdin stream,
    // so `cat` sees EOF and the session ends.
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let echoed = kubectl.with_input(&["exec", "-i", "-v=7", "shell", "--", "cat"], &input);
    let log = String::from_utf8_lossy(&echoed.stderr);
    assert!(echoed.status.success(), "{log}");
    assert_websocket_v5("exec -i", &log);
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), input);

    // A terminal: script(1) gives kubectl one, 33 rows by 101 columns; the size
    // reaches the container's terminal through the resize channel (until it has come,
    // busybox's `stty size` prints nothing).
    let mut script = bed.node(0).netns().command("script");
    script
        .args(["-qec"])
        .arg(format!(
            "stty rows 33 cols 101; kubectl --kubeconfig {} exec -it -v=7 shell -- \
             sh -c 'i=0; while [ -z \"$(stty size 2>/dev/null)\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
             echo size $(stty size); exit 5'",
            cluster.kubeconfig().display()
        ))
        .arg("/dev/null")
        .stdin(Stdio::null());
    let terminal = script.output().expect("running script");
    let transcript = String::from_utf8_lossy(&terminal.stdout);
    assert_eq!(terminal.status.code(), Some(5), "{transcript}");
    assert!(transcript.contains("size 33 101\r\n"), "{transcript}");
    assert_websocket_v5("exec -it", &transcript);

    // Attach: the container reads its stdin, which kubectl attach -i feeds.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "listener"}},
            "spec": {{"restartPolicy": "Never",
                      "containers": [{{"name": "main", "image": "{BUSYBOX}", "stdin": true, "stdinOnce": true,
                                       "command": ["sh", "-c", "read line; echo got $line"]}}]}}}}"#
    ));
    kubectl.wait_for("listener", "Running", |p| phase(p) == "Running");
    let attached = kubectl.with_input(&["attach", "-i", "-v=7", "listener"], "hello\n");
    let log = String::from_utf8_lossy(&attached.stderr);
    assert!(attached.status.success(), "{log}");
    assert_websocket_v5("attach -i", &log);
    assert_eq!(String::from_utf8_lossy(&attached.stdout), "got hello\n");

    // With WebSockets turned off, kubectl speaks SPDY, spliced to the runtime as before.
    let spdy = kubectl
        .command(&[
            "exec",
            "-v=7",
            "shell",
            "--",
            "sh",
            "-c",
            "echo over spdy; exit 4",
        ])
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .output()
        .expect("running kubectl");
    let log = String::from_utf8_lossy(&spdy.stderr);
    assert_eq!(spdy.status.code(), Some(4), "{log}");
    assert_eq!(String::from_utf8_lossy(&spdy.stdout), "over spdy\n");
    assert!(
        log.contains("X-Stream-Protocol-Version: v4.channel.k8s.io")
            && log.contains("POST https://")
            && !log.contains("The subprotocol is"),
        "kubectl did not speak SPDY: {log}"
    );

    kubectl.ok(&["delete", "pods", "--all", "--wait=true", "--timeout=30s"]);
}

#[test]
fn containers_restart_and_pods_finish_as_their_restart_policy_says() {
    let (bed, cluster) = start(1, false);
    let kubectl = Kubectl {
        bed: &bed,
        cluster: &cluster,
    };

    kubectl.apply(&pod_manifest("done", "Never", "echo finished"));
    kubectl.apply(&pod_manifest("broken", "Never", "echo failing; exit 3"));
    kubectl.apply(&pod_manifest(
        "crasher",
        "Always",
        "echo run at $(date +%s%N); exit 1",
    ));

    let done = kubectl.wait_for("done", "Succeeded", |p| phase(p) == "Succeeded");
    let terminated = main_status(&done)
        .and_then(|s| s.state?.terminated)
        .expect("a terminated state");
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (0, Some("Completed"))
    );
    assert_eq!(kubectl.ok(&["logs", "done"]), "finished\n");

    let broken = kubectl.wait_for("broken", "Failed", |p| phase(p) == "Failed");
    let terminated = main_status(&broken)
        .and_then(|s| s.state?.terminated)
        .expect("a terminated state");
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (3, Some("Error"))
    );
    assert_eq!(kubectl.ok(&["logs", "broken"]), "failing\n");

    // Restarted at once the first time, then held back (CrashLoopBackOff) with its
    // last run shown, and the previous run's log kept.
    let crasher = kubectl.wait_for("crasher", "a restart and a back-off", |p| {
        main_status(p).is_some_and(|s| {
            s.restart_count >= 1
                && s.state
                    .and_then(|st| st.waiting)
                    .and_then(|w| w.reason)
                    .as_deref()
                    == Some("CrashLoopBackOff")
        })
    });
    let status = main_status(&crasher).expect("a status");
    let last = status
        .last_state
        .and_then(|l| l.terminated)
        .expect("the last run");
    assert_eq!(last.exit_code, 1);
    assert_eq!(phase(&crasher), "Running");
    let previous = kubectl.ok(&["logs", "crasher", "--previous"]);
    assert!(previous.starts_with("run at "), "{previous}");
    let described = kubectl.ok(&["describe", "pod", "crasher"]);
    assert!(
        described.contains("Back-off restarting failed container main"),
        "{described}"
    );
    assert!(described.contains("Started container main"), "{described}");

    // Init containers run first, in order; volumes and the environment come from the
    // pod's ConfigMap and Secret.
    kubectl.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=greeting=hello",
    ]);
    kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=token=s3cret",
    ]);
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "staged"}},
            "spec": {{"restartPolicy": "Never",
              "volumes": [{{"name": "work", "emptyDir": {{}}}},
                          {{"name": "scratch", "emptyDir": {{"medium": "Memory", "sizeLimit": "8Mi"}}}},
                          {{"name": "creds", "secret": {{"secretName": "creds"}}}}],
              "initContainers": [
                {{"name": "first", "image": "{BUSYBOX}", "command": ["sh", "-c", "echo one > /work/order"],
                  "volumeMounts": [{{"name": "work", "mountPath": "/work"}}]}},
                {{"name": "second", "image": "{BUSYBOX}", "command": ["sh", "-c", "echo two >> /work/order"],
                  "volumeMounts": [{{"name": "work", "mountPath": "/work"}}]}}],
              "containers": [
                {{"name": "main", "image": "{BUSYBOX}",
                  "command": ["sh", "-c", "cat /work/order; echo $GREETING $(cat /creds/token) $POD_NAME; echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT $KUBERNETES_PORT; grep ' /scratch ' /proc/mounts | cut -d' ' -f1,3; df -k /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2"],
                  "env": [{{"name": "GREETING", "valueFrom": {{"configMapKeyRef": {{"name": "settings", "key": "greeting"}}}}}},
                          {{"name": "POD_NAME", "valueFrom": {{"fieldRef": {{"fieldPath": "metadata.name"}}}}}}],
                  "volumeMounts": [{{"name": "work", "mountPath": "/work"}},
                                   {{"name": "scratch", "mountPath": "/scratch"}},
                                   {{"name": "creds", "mountPath": "/creds", "readOnly": true}}]}}]}}}}"#
    ));
    kubectl.wait_for("staged", "Succeeded", |p| phase(p) == "Succeeded");
    // The service links of the `kubernetes` Service come with every pod; a
    // memory-backed emptyDir is a tmpfs of its size limit.
    let kubernetes = kubectl.ok(&[
        "get",
        "service",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(
        kubectl.ok(&["logs", "staged"]),
        format!(
            "one\ntwo\nhello s3cret staged\n{kubernetes}:443 tcp://{kubernetes}:443\ntmpfs tmpfs\n8192\n"
        )
    );

    // A missing ConfigMap holds the container back with upstream's reason.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "unconfigured"}},
            "spec": {{"containers": [{{"name": "main", "image": "{BUSYBOX}", "command": ["true"],
              "envFrom": [{{"configMapRef": {{"name": "absent"}}}}]}}]}}}}"#
    ));
    let held = kubectl.wait_for("unconfigured", "CreateContainerConfigError", |p| {
        main_status(p)
            .and_then(|s| s.state?.waiting?.reason)
            .as_deref()
            == Some("CreateContainerConfigError")
    });
    let waiting = main_status(&held)
        .and_then(|s| s.state?.waiting)
        .expect("waiting");
    assert_eq!(
        waiting.message.as_deref(),
        Some("configmap \"absent\" not found")
    );

    // A ConfigMap volume follows the ConfigMap, and is read-only.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "follower"}},
            "spec": {{"terminationGracePeriodSeconds": 1,
              "volumes": [{{"name": "settings", "configMap": {{"name": "settings"}}}}],
              "containers": [{{"name": "main", "image": "{BUSYBOX}",
                "command": ["sh", "-c", {SLEEPER:?}],
                "volumeMounts": [{{"name": "settings", "mountPath": "/config"}}]}}]}}}}"#
    ));
    kubectl.wait_for("follower", "Ready", ready);
    assert_eq!(
        kubectl.ok(&["exec", "follower", "--", "cat", "/config/greeting"]),
        "hello"
    );
    let written = kubectl.run(&["exec", "follower", "--", "touch", "/config/new"]);
    assert!(!written.status.success());
    assert!(
        String::from_utf8_lossy(&written.stderr).contains("Read-only file system"),
        "{written:?}"
    );
    kubectl.ok(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data": {"greeting": "bonjour", "extra": "1"}}"#,
    ]);
    let started = Instant::now();
    loop {
        let seen = kubectl.ok(&[
            "exec",
            "follower",
            "--",
            "sh",
            "-c",
            "cat /config/greeting; echo; ls /config",
        ]);
        if seen == "bonjour\nextra\ngreeting\n" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the volume still shows {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    kubectl.ok(&["delete", "pods", "--all", "--wait=true", "--timeout=30s"]);
}

#[test]
fn probes_decide_when_containers_are_started_ready_and_alive() {
    let (bed, cluster) = start(1, false);
    let kubectl = Kubectl {
        bed: &bed,
        cluster: &cluster,
    };
    let container = |pod: &str, extra: &str, script: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{pod}"}},
                "spec": {{"terminationGracePeriodSeconds": 1,
                  "containers": [{{"name": "main", "image": "{BUSYBOX}", "command": ["sh", "-c", {script:?}],
                                   "ports": [{{"name": "http", "containerPort": 8080}}], {extra}}}]}}}}"#
        )
    };
    let every_second = r#""periodSeconds": 1, "failureThreshold": 1"#;

    // Readiness through exec: unready until the file exists.
    kubectl.apply(&container(
        "gated",
        &format!(r#""readinessProbe": {{"exec": {{"command": ["test", "-f", "/tmp/ready"]}}, {every_second}}}"#),
        SLEEPER,
    ));
    // Readiness through HTTP on a named port.
    kubectl.apply(&container(
        "served",
        &format!(r#""readinessProbe": {{"httpGet": {{"port": "http", "path": "/index.html"}}, {every_second}}}"#),
        "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
    ));
    // Started only once its startup probe succeeds.
    kubectl.apply(&container(
        "slow",
        r#""startupProbe": {"exec": {"command": ["test", "-f", "/tmp/started"]}, "periodSeconds": 1, "failureThreshold": 60}"#,
        SLEEPER,
    ));
    // Alive only while something listens on its port: nothing does.
    kubectl.apply(&container(
        "unhealthy",
        r#""livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 2}"#,
        SLEEPER,
    ));

    kubectl.wait_for("served", "Ready", ready);
    let gated = kubectl.wait_for("gated", "running", |p| {
        main_status(p).is_some_and(|s| s.started == Some(true))
    });
    std::thread::sleep(Duration::from_secs(2));
    let gated = kubectl.pod(gated.metadata.name.as_deref().unwrap());
    assert!(
        !ready(&gated),
        "ready before its probe succeeded: {:#?}",
        gated.status
    );
    assert_eq!(phase(&gated), "Running");
    kubectl.ok(&["exec", "gated", "--", "touch", "/tmp/ready"]);
    let waited = kubectl.run(&[
        "wait",
        "--for=condition=Ready",
        "pod/gated",
        "--timeout=30s",
    ]);
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout),
        "pod/gated condition met\n"
    );

    let slow = kubectl.pod("slow");
    let status = main_status(&slow).expect("a status");
    assert!(
        status.state.and_then(|s| s.running).is_some(),
        "{:#?}",
        slow.status
    );
    assert_eq!((status.started, status.ready), (Some(false), false));
    kubectl.ok(&["exec", "slow", "--", "touch", "/tmp/started"]);
    let slow = kubectl.wait_for("slow", "Ready", ready);
    assert_eq!(main_status(&slow).and_then(|s| s.started), Some(true));

    let unhealthy = kubectl.wait_for("unhealthy", "a restart", |p| {
        main_status(p).is_some_and(|s| s.restart_count >= 1)
    });
    let last = main_status(&unhealthy)
        .and_then(|s| s.last_state?.terminated)
        .expect("the killed run");
    assert_eq!(last.exit_code, 0, "the container exits on TERM: {last:?}");
    let described = kubectl.ok(&["describe", "pod", "unhealthy"]);
    assert!(
        described.contains("Liveness probe failed: dial tcp"),
        "{described}"
    );
    assert!(
        described.contains("Container main failed liveness probe, will be restarted"),
        "{described}"
    );
    let described = kubectl.ok(&["describe", "pod", "gated"]);
    assert!(described.contains("Readiness probe failed:"), "{described}");

    // A sidecar (restartable init container) starts before the init containers after
    // it (once its startup probe succeeds), is restarted whatever the pod's policy,
    // runs beside the pod's container and is stopped when that one is done.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "sided"}},
            "spec": {{"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
              "volumes": [{{"name": "shared", "emptyDir": {{}}}}],
              "initContainers": [
                {{"name": "helper", "image": "{BUSYBOX}", "restartPolicy": "Always",
                  "command": ["sh", "-c", "echo up >> /shared/starts; touch /shared/ready; sleep 3; exit 1"],
                  "startupProbe": {{"exec": {{"command": ["test", "-f", "/shared/ready"]}}, "periodSeconds": 1}},
                  "volumeMounts": [{{"name": "shared", "mountPath": "/shared"}}]}},
                {{"name": "after", "image": "{BUSYBOX}", "command": ["sh", "-c", "cp /shared/ready /shared/seen"],
                  "volumeMounts": [{{"name": "shared", "mountPath": "/shared"}}]}}],
              "containers": [
                {{"name": "main", "image": "{BUSYBOX}",
                  "command": ["sh", "-c", "test -f /shared/seen && until [ $(wc -l < /shared/starts) -ge 2 ]; do sleep 0.2; done; echo sidecar restarted"],
                  "volumeMounts": [{{"name": "shared", "mountPath": "/shared"}}]}}]}}}}"#
    ));
    let sided = kubectl.wait_for("sided", "Succeeded with its sidecar stopped", |p| {
        phase(p) == "Succeeded"
            && p.status
                .as_ref()
                .and_then(|s| s.init_container_statuses.as_ref())
                .is_some_and(|statuses| {
                    statuses
                        .iter()
                        .all(|s| s.state.as_ref().is_some_and(|st| st.terminated.is_some()))
                })
    });
    assert_eq!(kubectl.ok(&["logs", "sided"]), "sidecar restarted\n");
    let statuses = sided
        .status
        .and_then(|s| s.init_container_statuses)
        .expect("init container statuses");
    let helper = statuses
        .iter()
        .find(|s| s.name == "helper")
        .expect("the sidecar's status");
    assert!(helper.restart_count >= 1, "{helper:?}");
    let after = statuses
        .iter()
        .find(|s| s.name == "after")
        .expect("the init container's status");
    assert_eq!(
        after
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(0)
    );

    kubectl.ok(&["delete", "pods", "--all", "--wait=true", "--timeout=30s"]);
}

#[test]
fn workloads_run_by_kubelets_on_two_nodes_are_reached_through_their_service() {
    let (bed, cluster) = start(2, true);
    let kubectl = Kubectl {
        bed: &bed,
        cluster: &cluster,
    };
    let serve = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

    // A Deployment through the controllers, the scheduler and the kubelets, ready as
    // its readiness probe says.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "web"}},
            "spec": {{"replicas": 3, "selector": {{"matchLabels": {{"app": "web"}}}},
              "template": {{"metadata": {{"labels": {{"app": "web"}}}},
                "spec": {{"terminationGracePeriodSeconds": 1,
                  "containers": [{{"name": "httpd", "image": "{BUSYBOX}", "command": ["sh", "-c", {serve:?}],
                    "ports": [{{"containerPort": 8080}}],
                    "readinessProbe": {{"httpGet": {{"port": 8080, "path": "/index.html"}}, "periodSeconds": 1}}}}]}}}}}}}}"#
    ));
    let rolled = kubectl.run(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    assert!(String::from_utf8_lossy(&rolled.stdout).contains("successfully rolled out"));
    kubectl.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);

    // A DaemonSet puts one pod on each node.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {{"name": "agent"}},
            "spec": {{"selector": {{"matchLabels": {{"app": "agent"}}}},
              "template": {{"metadata": {{"labels": {{"app": "agent"}}}},
                "spec": {{"terminationGracePeriodSeconds": 1,
                  "containers": [{{"name": "agent", "image": "{BUSYBOX}",
                    "command": ["sh", "-c", {SLEEPER:?}]}}]}}}}}}}}"#
    ));
    let rolled = kubectl.run(&["rollout", "status", "daemonset/agent", "--timeout=60s"]);
    assert!(
        rolled.status.success(),
        "{}",
        String::from_utf8_lossy(&rolled.stderr)
    );
    let nodes = kubectl.ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    let mut nodes: Vec<&str> = nodes.split(' ').collect();
    nodes.sort();
    assert_eq!(nodes, ["node0", "node1"]);

    // A client pod on node 0 reaches every backend through the Service's ClusterIP
    // (its service-link variables), wherever the backend runs.
    kubectl.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "client"}},
            "spec": {{"nodeName": "node0", "terminationGracePeriodSeconds": 1,
              "containers": [{{"name": "main", "image": "{BUSYBOX}",
                "command": ["sh", "-c", {SLEEPER:?}]}}]}}}}"#
    ));
    kubectl.wait_for("client", "Ready", ready);
    let backends = kubectl.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let backends: std::collections::BTreeSet<&str> = backends.split(' ').collect();
    assert_eq!(backends.len(), 3, "{backends:?}");
    let placed = kubectl.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    eprintln!("web pods {backends:?} on {placed}");
    let answers = kubectl.ok(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        "for i in $(seq 40); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $WEB_SERVICE_HOST $WEB_SERVICE_PORT | tail -n 1 || echo failed; done",
    ]);
    let seen: std::collections::BTreeSet<&str> = answers.lines().collect();
    if seen != backends {
        let ips = kubectl.ok(&["get", "pods", "-o", "wide"]);
        let diag = kubectl.run(&["exec", "client", "--", "sh", "-c", "env | grep WEB; ip addr; ip route; cat /proc/self/cgroup; printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $WEB_SERVICE_HOST $WEB_SERVICE_PORT 2>&1"]);
        panic!(
            "answers: {answers}\n{ips}\n{}{}",
            String::from_utf8_lossy(&diag.stdout),
            String::from_utf8_lossy(&diag.stderr)
        );
    }

    kubectl.ok(&["delete", "deployment", "web"]);
    kubectl.ok(&["delete", "daemonset", "agent"]);
    kubectl.ok(&["delete", "pods", "--all", "--wait=true", "--timeout=30s"]);
}
