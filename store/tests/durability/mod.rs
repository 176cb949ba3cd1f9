//! Acknowledged writes survive `kill -9`: a child process (`store-writer`) writes
//! and prints every acknowledged revision; the test kills a process mid-stream and
//! checks that every acknowledged write is in the reopened store.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use waggle_store::Store;

/// A running `store-writer`, killed on drop.
pub struct Writer {
    child: Child,
    lines: BufReader<ChildStdout>,
    pub acknowledged: Vec<(i64, String)>,
}

impl Writer {
    pub fn spawn(spec: &str, prefix: &str, count: usize, concurrency: usize) -> Writer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-writer"))
            .args([spec, prefix, &count.to_string(), &concurrency.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run store-writer");
        let lines = BufReader::new(child.stdout.take().unwrap());
        Writer {
            child,
            lines,
            acknowledged: Vec::new(),
        }
    }

    /// Reads acknowledgements until `n` have arrived (or the writer stops).
    pub fn read_until(&mut self, n: usize) {
        let mut line = String::new();
        while self.acknowledged.len() < n {
            line.clear();
            if self.lines.read_line(&mut line).unwrap() == 0 {
                break;
            }
            self.record(&line);
        }
    }

    /// `kill -9`s the writer and collects the acknowledgements it printed.
    pub fn kill_and_drain(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }

    /// Reads whatever acknowledgements are left until the writer's stdout closes.
    pub fn drain(&mut self) {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut self.lines, &mut rest);
        for line in rest.lines() {
            self.record(line);
        }
    }

    fn record(&mut self, line: &str) {
        let (rev, key) = line
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        self.acknowledged
            .push((rev.parse().unwrap(), key.to_owned()));
    }

    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every acknowledged write is present with its revision and value.
pub async fn assert_all_present(store: &Arc<dyn Store>, acknowledged: &[(i64, String)]) {
    assert!(!acknowledged.is_empty(), "the writer acknowledged nothing");
    for (rev, key) in acknowledged {
        let kv = store
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {key} at {rev} was lost"));
        assert_eq!(kv.mod_revision, *rev, "{key}");
        assert!(
            kv.value.starts_with(format!("{key}:").as_bytes()),
            "{key} has the written value"
        );
    }
    let mut revs: Vec<i64> = acknowledged.iter().map(|(rev, _)| *rev).collect();
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(
        revs.len(),
        acknowledged.len(),
        "no revision acknowledged twice"
    );
}
