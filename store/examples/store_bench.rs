//! Creates per second of 300-byte values: the SQLite store and the etcd store
//! through the `Store` trait, against raw etcd puts (the floor any etcd-backed
//! store pays), with 1 and 16 concurrent writers, measured in one run. The SQLite
//! store runs with its default `synchronous=FULL`; a `synchronous=NORMAL` row
//! shows what the fsync per commit costs.
//!
//! `cargo run --release -p waggle-store --example store_bench -- [SECONDS] [DIR]`
//! (default 5 s per cell; DIR holds the databases and must be on the disk under
//! test, not tmpfs; default: the system temp dir). Starts its own etcd
//! (`/usr/bin/etcd`, from `cargo xtask setup`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use waggle_store::Store;
use waggle_store::etcd::{EtcdOptions, EtcdStore, LocalEtcd};
use waggle_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};

const VALUE_BYTES: usize = 300;
const CONCURRENCY: [usize; 2] = [1, 16];

struct Row {
    name: &'static str,
    writers: usize,
    creates: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.creates as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }
}

/// Runs `writers` loops of `create(key)` for `duration`; keys are unique per cell.
async fn measure<F, Fut>(name: &'static str, writers: usize, duration: Duration, create: F) -> Row
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let create = create.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let began = Instant::now();
                if let Err(err) = create(format!("/bench/{name}/{writers}/{w}/{i:010}")).await {
                    panic!("{name}: create failed: {err}");
                }
                latencies.push(began.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("writer task"));
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Row {
        name,
        writers,
        creates: latencies.len(),
        elapsed,
        latencies,
    }
}

async fn via_store(
    name: &'static str,
    store: Arc<dyn Store>,
    writers: usize,
    duration: Duration,
) -> Row {
    let value = vec![b'x'; VALUE_BYTES];
    measure(name, writers, duration, move |key| {
        let (store, value) = (store.clone(), value.clone());
        async move {
            store
                .create(&key, value)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await
}

async fn raw_etcd(client: etcd_client::Client, writers: usize, duration: Duration) -> Row {
    let value = vec![b'x'; VALUE_BYTES];
    measure("raw etcd put", writers, duration, move |key| {
        let (mut kv, value) = (client.kv_client(), value.clone());
        async move {
            kv.put(key, value, None)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5.0);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let duration = Duration::from_secs_f64(seconds);
    let dir = tempfile::Builder::new()
        .prefix("store-bench-")
        .tempdir_in(&base)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "store_bench: {VALUE_BYTES}-byte creates, {seconds} s per cell, data in {}",
        base.display()
    );
    println!(
        "load average before the run: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("bench.db"))?);
    // For comparison only: the store's default is FULL (see `waggle_store::sqlite`).
    let normal = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..Default::default()
    };
    let sqlite_normal: Arc<dyn Store> = Arc::new(SqliteStore::open_with(
        dir.path().join("normal.db"),
        normal,
    )?);
    let etcd = LocalEtcd::start(&dir.path().join("etcd")).await?;
    let etcd_store: Arc<dyn Store> =
        Arc::new(EtcdStore::connect(EtcdOptions::new(vec![etcd.endpoint()])).await?);
    let raw = etcd_client::Client::connect([etcd.endpoint()], None).await?;

    let mut rows = Vec::new();
    for writers in CONCURRENCY {
        rows.push(raw_etcd(raw.clone(), writers, duration).await);
        rows.push(via_store("etcd store", etcd_store.clone(), writers, duration).await);
        rows.push(via_store("sqlite store", sqlite.clone(), writers, duration).await);
        rows.push(via_store("sqlite NORMAL", sqlite_normal.clone(), writers, duration).await);
    }

    println!();
    println!(
        "{:<14} {:>7} {:>9} {:>11} {:>10} {:>10} {:>9}",
        "backend", "writers", "creates", "creates/s", "p50 ms", "p99 ms", "vs raw"
    );
    for row in &rows {
        let raw = rows
            .iter()
            .find(|r| r.name == "raw etcd put" && r.writers == row.writers)
            .map_or(1.0, Row::rate);
        println!(
            "{:<14} {:>7} {:>9} {:>11.0} {:>10.2} {:>10.2} {:>8.2}x",
            row.name,
            row.writers,
            row.creates,
            row.rate(),
            row.percentile(0.5).as_secs_f64() * 1e3,
            row.percentile(0.99).as_secs_f64() * 1e3,
            row.rate() / raw,
        );
    }
    Ok(())
}
