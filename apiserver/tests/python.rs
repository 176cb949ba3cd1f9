//! Runs the official Python client's tests (`tests/python/test_*.py`, pytest) against
//! a server started here, on SQLite and on etcd.

mod support;

use std::process::Command;

use support::{Backend, TestServer};

fn python_ready() {
    let check = Command::new("python3")
        .args(["-c", "import kubernetes, pytest; print(kubernetes.__version__)"])
        .output()
        .expect("python3 must be installed to run the Python client tests");
    assert!(
        check.status.success(),
        "the Python client tests need `pip install kubernetes pytest` (import failed: {})",
        String::from_utf8_lossy(&check.stderr)
    );
}

async fn run_pytest(backend: Backend) {
    python_ready();
    let server = TestServer::start(backend).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let kubeconfig = server.running.kubeconfig.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", dir])
            .env("WAGGLE_KUBECONFIG", kubeconfig)
            .output()
            .expect("run pytest")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "pytest failed:\n{stdout}");
    assert!(stdout.contains("passed"), "pytest ran no tests:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_sqlite() {
    run_pytest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_etcd() {
    run_pytest(Backend::Etcd).await;
}
