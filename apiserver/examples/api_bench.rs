//! API server benchmark over HTTP: creates/s and gets/s of small ConfigMaps, watch
//! delivery latency with many watchers, listing 10,000 pods, and the server's RSS.
//!
//! The server runs as a child process (this binary re-executed with `--serve`) so its
//! RSS is its own; traffic goes over the loopback plain-HTTP listener.
//!
//! With `--backend both` (the default) it prints one table: the embedded SQLite store,
//! the etcd store, and raw puts/gets through etcd-client to the same kind of local
//! etcd (the floor an etcd-backed server cannot beat). Progress goes to stderr.
//!
//! ```text
//! cargo run --release -p waggle-apiserver --example api_bench [-- --backend sqlite|etcd|both]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const CONCURRENCY: usize = 32;

fn now_micros(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

/// `--serve DATA_DIR STORE_SPEC PORT_FILE`: run a server and write its HTTP port.
async fn serve(args: &[String]) -> anyhow::Result<()> {
    let (dir, spec, port_file) = (PathBuf::from(&args[0]), &args[1], &args[2]);
    let store = waggle_store::open(spec).await?;
    let mut config = waggle_apiserver::Config::new(dir, store);
    config.bind = "127.0.0.1:0".parse()?;
    config.insecure_bind = Some("127.0.0.1:0".parse()?);
    let running = waggle_apiserver::start(config).await?;
    std::fs::write(
        port_file,
        running.http_addr.expect("http").port().to_string(),
    )?;
    running.wait().await;
    Ok(())
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }
}

async fn start_server(dir: &Path, spec: &str) -> anyhow::Result<Server> {
    let port_file = dir.join("port");
    let child = Command::new(std::env::current_exe()?)
        .args([
            "--serve",
            &dir.display().to_string(),
            spec,
            &port_file.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(port) = std::fs::read_to_string(&port_file) {
            if !port.is_empty() {
                return Ok(Server {
                    child,
                    base: format!("http://127.0.0.1:{port}"),
                });
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `total` requests made by `make(i)` on `CONCURRENCY` workers; returns per second.
async fn rate<F, Fut>(total: usize, make: F) -> f64
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    make(i).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn post(http: &reqwest::Client, url: &str, body: Value) {
    let response = http.post(url).json(&body).send().await.expect("request");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// What a watch client reads of each event: the write's send time. (Parsing into
/// this instead of a whole `Value` keeps the 1,000 client tasks, which share the
/// machine with the server, from dominating the CPU.)
#[derive(serde::Deserialize)]
struct Event {
    object: Stamped,
}

#[derive(serde::Deserialize)]
struct Stamped {
    data: Option<Sent>,
}

#[derive(serde::Deserialize)]
struct Sent {
    sent: String,
}

/// Watch latency: `watchers` watches on one namespace, `events` writes at ~200/s.
async fn watch_latency(
    base: &str,
    http: &reqwest::Client,
    watchers: usize,
    events: usize,
) -> (f64, f64, usize) {
    let ns = format!("watch{watchers}");
    post(
        http,
        &format!("{base}/api/v1/namespaces"),
        json!({"metadata": {"name": ns}}),
    )
    .await;
    let origin = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(watchers * events)));
    let list: Value = http
        .get(format!("{base}/api/v1/namespaces/{ns}/configmaps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let url = format!("{base}/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}");
        let client = reqwest::Client::new();
        let latencies = latencies.clone();
        let response = client.get(&url).send().await.expect("watch");
        tasks.push(tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut buffer = Vec::new();
            let mut seen = 0;
            let mut mine = Vec::with_capacity(events);
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.extend_from_slice(&chunk);
                while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=pos).collect();
                    if let Ok(Event {
                        object:
                            Stamped {
                                data: Some(Sent { sent }),
                            },
                    }) = serde_json::from_slice::<Event>(&line)
                    {
                        let sent: u64 = sent.parse().unwrap_or(0);
                        mine.push((now_micros(origin) - sent) as f64 / 1000.0);
                        seen += 1;
                    }
                }
                if seen >= events {
                    break;
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..events {
        let body = json!({"metadata": {"name": format!("e{i}")}, "data": {"sent": now_micros(origin).to_string()}});
        post(
            http,
            &format!("{base}/api/v1/namespaces/{ns}/configmaps"),
            body,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(tasks)).await;
    let mut all = latencies.lock().await.clone();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (percentile(&all, 0.5), percentile(&all, 0.99), all.len())
}

/// One column of the table.
#[derive(Default)]
struct Column {
    creates: Option<f64>,
    gets: Option<f64>,
    watch: Vec<(usize, f64, f64, usize)>,
    pod_creates: Option<f64>,
    list: Option<(f64, f64)>,
    rss_start: Option<f64>,
    rss_end: Option<f64>,
}

/// Starts a throwaway etcd under `dir`; its `host:port`.
async fn local_etcd(dir: &Path) -> anyhow::Result<(waggle_store::etcd::LocalEtcd, String)> {
    let etcd = waggle_store::etcd::LocalEtcd::start(&dir.join("etcd")).await?;
    let host_port = etcd.endpoint().trim_start_matches("http://").to_owned();
    Ok((etcd, host_port))
}

async fn bench(backend: &str) -> anyhow::Result<Column> {
    let dir = tempfile::tempdir()?;
    let _etcd;
    let spec = if backend == "etcd" {
        let (etcd, host_port) = local_etcd(dir.path()).await?;
        _etcd = Some(etcd);
        format!("etcd://{host_port}/bench/")
    } else {
        _etcd = None;
        format!("sqlite://{}", dir.path().join("state.db").display())
    };
    let server = start_server(dir.path(), &spec).await?;
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build()?;
    let mut column = Column {
        rss_start: Some(server.rss_mb()),
        ..Column::default()
    };
    eprintln!("# {backend}: server RSS at start {:.1} MB", server.rss_mb());

    let url = format!("{base}/api/v1/namespaces/default/configmaps");
    let (h, u) = (http.clone(), url.clone());
    let creates = rate(5000, move |i| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            post(
                &h,
                &u,
                json!({"metadata": {"name": format!("cm-{i}")}, "data": {"key": "value"}}),
            )
            .await
        }
    })
    .await;
    column.creates = Some(creates);
    eprintln!("# {backend}: creates/s {creates:.0}");
    let (h, u) = (http.clone(), url.clone());
    let gets = rate(20000, move |i| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            let r = h.get(format!("{u}/cm-{}", i % 5000)).send().await.unwrap();
            assert!(r.status().is_success());
            let _ = r.bytes().await;
        }
    })
    .await;
    column.gets = Some(gets);
    eprintln!("# {backend}: gets/s {gets:.0}");

    for watchers in [100, 1000] {
        let (p50, p99, n) = watch_latency(&base, &http, watchers, 100).await;
        column.watch.push((watchers, p50, p99, n));
        eprintln!(
            "# {backend}: {watchers} watchers p50 {p50:.1} ms, p99 {p99:.1} ms ({n} deliveries)"
        );
    }

    post(
        &http,
        &format!("{base}/api/v1/namespaces"),
        json!({"metadata": {"name": "bench"}}),
    )
    .await;
    let pods_url = format!("{base}/api/v1/namespaces/bench/pods");
    let (h, u) = (http.clone(), pods_url.clone());
    let pod_rate = rate(10000, move |i| {
        let (h, u) = (h.clone(), u.clone());
        async move {
            post(&h, &u, json!({"metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}})).await
        }
    })
    .await;
    column.pod_creates = Some(pod_rate);
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let body = http.get(&pods_url).send().await?.bytes().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        let list: Value = serde_json::from_slice(&body)?;
        anyhow::ensure!(
            list["items"].as_array().map(Vec::len) == Some(10000),
            "list returned all pods"
        );
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    column.list = Some((times[2], times[0]));
    eprintln!(
        "# {backend}: list 10,000 pods median {:.0} ms, best {:.0} ms",
        times[2], times[0]
    );
    column.rss_end = Some(server.rss_mb());
    Ok(column)
}

/// The floor: small puts and gets straight through etcd-client to a local etcd.
async fn raw_etcd() -> anyhow::Result<Column> {
    let dir = tempfile::tempdir()?;
    let (_etcd, host_port) = local_etcd(dir.path()).await?;
    let client = etcd_client::Client::connect([format!("http://{host_port}")], None).await?;
    let value = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}, "data": {"key": "value"}}),
    )?;
    let c = client.clone();
    let creates = rate(5000, move |i| {
        let (mut kv, value) = (c.kv_client(), value.clone());
        async move {
            kv.put(format!("/raw/configmaps/default/cm-{i}"), value, None)
                .await
                .expect("etcd put");
        }
    })
    .await;
    let c = client.clone();
    let gets = rate(20000, move |i| {
        let mut kv = c.kv_client();
        async move {
            let response = kv
                .get(format!("/raw/configmaps/default/cm-{}", i % 5000), None)
                .await
                .expect("etcd get");
            assert_eq!(response.kvs().len(), 1);
        }
    })
    .await;
    eprintln!("# raw etcd: puts/s {creates:.0}, gets/s {gets:.0}");
    Ok(Column {
        creates: Some(creates),
        gets: Some(gets),
        ..Column::default()
    })
}

fn cell(value: Option<String>) -> String {
    value.unwrap_or_else(|| "n/a".into())
}

fn print_table(columns: &[(&str, Column)]) {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    println!("| metric | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    let row = |label: String, f: &dyn Fn(&Column) -> Option<String>| {
        let cells: Vec<String> = columns.iter().map(|(_, c)| cell(f(c))).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row(
        format!("creates/s (small ConfigMaps, {CONCURRENCY} clients)"),
        &|c| c.creates.map(|v| format!("{v:.0}")),
    );
    row("gets/s".into(), &|c| c.gets.map(|v| format!("{v:.0}")));
    for (i, watchers) in [100, 1000].iter().enumerate() {
        row(
            format!("watch delivery, {watchers} watchers (ms, p50 / p99)"),
            &|c| {
                c.watch
                    .get(i)
                    .map(|(_, p50, p99, n)| format!("{p50:.1} / {p99:.1} ({n} deliveries)"))
            },
        );
    }
    row("pod creates/s (10,000 pods)".into(), &|c| {
        c.pod_creates.map(|v| format!("{v:.0}"))
    });
    row("list 10,000 pods (ms, median of 5 / best)".into(), &|c| {
        c.list.map(|(m, b)| format!("{m:.0} / {b:.0}"))
    });
    row("server RSS at start (MB)".into(), &|c| {
        c.rss_start.map(|v| format!("{v:.1}"))
    });
    row(
        "server RSS with 10,000 pods, 1,100 watchers (MB)".into(),
        &|c| c.rss_end.map(|v| format!("{v:.1}")),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(&args[1..]).await;
    }
    let backend = args
        .iter()
        .position(|a| a == "--backend")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .unwrap_or("both");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load.trim());
    let mut columns = Vec::new();
    if matches!(backend, "sqlite" | "both") {
        columns.push(("embedded (SQLite)", bench("sqlite").await?));
    }
    if matches!(backend, "etcd" | "both") {
        columns.push(("etcd store", bench("etcd").await?));
        columns.push(("raw etcd-client (floor)", raw_etcd().await?));
    }
    print_table(&columns);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    Ok(())
}
