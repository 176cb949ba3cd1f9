//! Test helper for the durability tests: writes keys to a store and prints one
//! line `REVISION KEY` per acknowledged write, flushed before the next write.
//!
//! Usage: `store-writer SPEC KEY_PREFIX COUNT [CONCURRENCY]`.

use std::io::Write;
use std::sync::Arc;

fn usage() -> ! {
    eprintln!("usage: store-writer SPEC KEY_PREFIX COUNT [CONCURRENCY]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [spec, prefix, count, rest @ ..] = args.as_slice() else {
        usage()
    };
    let count: usize = count.parse().unwrap_or_else(|_| usage());
    let concurrency: usize = rest
        .first()
        .map_or(Ok(1), |c| c.parse())
        .unwrap_or_else(|_| usage())
        .max(1);
    let store = waggle_store::open(spec).await.unwrap_or_else(|err| {
        eprintln!("store-writer: cannot open {spec}: {err}");
        std::process::exit(1)
    });
    let prefix: Arc<str> = prefix.as_str().into();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (store, prefix) = (store.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..count).step_by(concurrency) {
                let key = format!("{prefix}{i:08}");
                let value = format!("{key}:{}", "v".repeat(280)).into_bytes();
                match store.create(&key, value).await {
                    Ok(revision) => {
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{revision} {key}")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            std::process::exit(1);
                        }
                    }
                    Err(err) => {
                        eprintln!("store-writer: create {key}: {err}");
                        std::process::exit(1);
                    }
                }
            }
        }));
    }
    for task in tasks {
        if task.await.is_err() {
            std::process::exit(1);
        }
    }
}
