//! `kubectl get -w`: the streamed table rows (read for a bounded time, then the process
//! is killed), `--watch-only`, `--output-watch-events`, `-o name` and `--sort-by`.

use std::time::{Duration, Instant};

use crate::asserts::{assert_line, has_line};
use crate::harness::{Cluster, columns};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn get_watch_streams_rows() {
    let c = Cluster::start();
    c.ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    let watch = c.spawn(&["get", "configmaps", "watched", "-w"]);
    let first = watch.wait_for(WAIT, |t| has_line(t, "watched 1 "));
    assert_line(&first, "NAME DATA AGE");
    c.ok(&[
        "patch",
        "configmap",
        "watched",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    let seen = watch.wait_for(WAIT, |t| has_line(t, "watched 2 "));
    assert_line(&seen, "watched 2 ");
    // The header is printed once.
    assert_eq!(
        columns(&seen)
            .iter()
            .filter(|l| l.starts_with("NAME "))
            .count(),
        1,
        "{seen}"
    );

    let events = c.spawn(&[
        "get",
        "configmaps",
        "-w",
        "--watch-only",
        "--output-watch-events",
    ]);
    // The watch starts at the revision of kubectl's first list, which a cold kubectl
    // may take seconds to reach: change a sentinel until the watch shows it, so the
    // changes below come after that list.
    c.ok(&["create", "configmap", "sentinel"]);
    let started = Instant::now();
    for bump in 1.. {
        let patch = format!(r#"{{"data":{{"bump":"{bump}"}}}}"#);
        c.ok(&[
            "patch",
            "configmap",
            "sentinel",
            "--type=merge",
            "-p",
            &patch,
        ]);
        let text = events.wait_for(Duration::from_secs(1), |t| {
            has_line(t, "MODIFIED sentinel ")
        });
        if has_line(&text, "MODIFIED sentinel ") {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the watch showed no change within {WAIT:?}:\n{text}\n{}",
            events.stderr()
        );
    }
    c.ok(&["create", "configmap", "fresh"]);
    c.ok(&["delete", "configmap", "watched"]);
    let text = events.wait_for(WAIT, |t| has_line(t, "DELETED watched "));
    assert_line(&text, "EVENT NAME DATA AGE");
    assert_line(&text, "ADDED fresh 0 ");
    assert_line(&text, "DELETED watched 2 ");
    assert!(
        !has_line(&text, "ADDED kube-root-ca.crt"),
        "--watch-only printed the initial list:\n{text}"
    );

    let names = c.spawn(&["get", "configmaps", "-w", "-o", "name"]);
    let listed = names.wait_for(WAIT, |t| t.contains("configmap/fresh"));
    assert!(listed.lines().any(|l| l == "configmap/fresh"), "{listed}");
}

#[test]
fn get_watch_sorted_lists_then_streams() {
    let c = Cluster::start();
    c.ok(&[
        "create",
        "deployment",
        "big",
        "--image=nginx",
        "--replicas=3",
    ]);
    c.ok(&[
        "create",
        "deployment",
        "small",
        "--image=nginx",
        "--replicas=1",
    ]);
    let watch = c.spawn(&["get", "deployments", "-w", "--sort-by=.spec.replicas"]);
    let first = watch.wait_for(WAIT, |t| has_line(t, "big ") && has_line(t, "small "));
    let rows: Vec<String> = columns(&first);
    assert_eq!(
        rows.first().map(String::as_str),
        Some("NAME READY UP-TO-DATE AVAILABLE AGE"),
        "{first}"
    );
    let order: Vec<&str> = rows[1..]
        .iter()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(order, ["small", "big"], "{first}");
    c.ok(&["scale", "deployment", "small", "--replicas=5"]);
    let later = watch.wait_for(WAIT, |t| has_line(t, "small 0/5 "));
    assert_line(&later, "small 0/5 ");
    // Rows of later events come as they arrive; kubectl says so, as against upstream.
    assert!(
        watch.stderr().contains(
            "warning: --watch requested, --sort-by will be ignored for watch events received"
        ),
        "{}",
        watch.stderr()
    );
}
