//! kubectl against Waggle's controllers: `rollout status` follows a real rollout,
//! `rollout history` and `undo` work on the ReplicaSets the Deployment controller
//! made, `scale` and `rollout restart` take effect, namespaces get their defaults,
//! and `wait --for=condition=complete` follows a Job the Job controller ran.
//!
//! No kubelet runs here, so a thread plays its part with kubectl: every pod that is
//! not running yet is marked running and ready through the `status` subresource (or,
//! for Jobs, succeeded).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

/// Marks pods running and ready until `stop` is set.
fn play_kubelet(c: &Cluster, stop: &AtomicBool) {
    let ready = r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#;
    play_kubelet_as(c, stop, "Running", ready);
}

/// Until `stop` is set, patches every pod whose phase is not `phase` with `status`
/// (a merge patch of the status subresource that sets that phase).
fn play_kubelet_as(c: &Cluster, stop: &AtomicBool, phase: &str, status: &str) {
    let pending = format!(
        "jsonpath={{range .items[?(@.status.phase!=\"{phase}\")]}}{{.metadata.name}}{{\"\\n\"}}{{end}}"
    );
    while !stop.load(Ordering::Relaxed) {
        let names = c.run(&["get", "pods", "-o", &pending]).stdout;
        for name in names.lines().filter(|n| !n.is_empty()) {
            // A pod deleted meanwhile fails the patch; the next round moves on.
            c.run(&[
                "patch",
                "pod",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                status,
            ]);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rolled_out(c: &Cluster) {
    let status = c.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_line(
        status.lines().last().unwrap_or_default(),
        "deployment \"web\" successfully rolled out",
    );
}

#[test]
fn rollouts_run_by_the_deployment_controller() {
    let c = Cluster::with_controllers();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| play_kubelet(&c, &stop));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rollouts(&c)));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

fn rollouts(c: &Cluster) {
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
    ]);
    rolled_out(c);
    let sets = columns(&c.ok(&["get", "rs", "-l", "app=web"]));
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert!(
        sets[1].starts_with("web-") && sets[1].contains(" 2 2 2 "),
        "{sets:?}"
    );
    assert_eq!(
        columns(&c.ok(&["get", "deployment", "web"]))[1]
            .split(' ')
            .take(4)
            .collect::<Vec<_>>(),
        ["web", "2/2", "2", "2"]
    );

    // A new template is rolled out by a second ReplicaSet, followed by `rollout status`.
    // The controller copies the Deployment's annotations to its new ReplicaSet (only),
    // so the change cause annotated after the change lands on revision 2.
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    c.ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=nginx 1.26",
    ]);
    rolled_out(c);
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert_eq!(
        columns(&history),
        [
            "deployment.apps/web",
            "REVISION CHANGE-CAUSE",
            "1 <none>",
            "2 nginx 1.26"
        ]
    );
    let second = c.ok(&["rollout", "history", "deployment/web", "--revision=2"]);
    assert_line(&second, "deployment.apps/web with revision #2");
    assert_contains(&second, "Image:\tnginx:1.26");

    // Undo: revision 1's ReplicaSet becomes the new one, as revision 3. kubectl copies
    // that ReplicaSet's annotations back too, so the change cause goes with it.
    assert_eq!(
        c.ok(&["rollout", "undo", "deployment/web"]).trim(),
        "deployment.apps/web rolled back"
    );
    rolled_out(c);
    let history = c.ok(&["rollout", "history", "deployment/web"]);
    assert_eq!(
        columns(&history),
        [
            "deployment.apps/web",
            "REVISION CHANGE-CAUSE",
            "2 nginx 1.26",
            "3 <none>"
        ]
    );
    let image = "jsonpath={.spec.template.spec.containers[0].image}";
    assert_eq!(c.ok(&["get", "deployment/web", "-o", image]), "nginx:1.25");

    // Scaling and restarting.
    assert_eq!(
        c.ok(&["scale", "deployment/web", "--replicas=3"]).trim(),
        "deployment.apps/web scaled"
    );
    rolled_out(c);
    c.ok(&["rollout", "restart", "deployment/web"]);
    rolled_out(c);
    let revision = "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}";
    assert_eq!(c.ok(&["get", "deployment/web", "-o", revision]), "4");
    let pods = c.wait_for_output(&["get", "pods", "-l", "app=web", "-o", "name"], |out| {
        out.lines().count() == 3
    });
    assert_eq!(pods.lines().count(), 3, "{pods}");

    let described = c.ok(&["describe", "deployment", "web"]);
    assert_line(
        &described,
        "Replicas: 3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
    );
    assert_contains(&described, "NewReplicaSetAvailable");
    assert_contains(&described, "ScalingReplicaSet");
    assert_contains(&described, "Scaled down replica set");
    assert_contains(&described, "deployment-controller");

    // Deleting the Deployment takes its ReplicaSets and their pods along (the garbage
    // collector follows the owner references).
    c.ok(&["delete", "deployment", "web"]);
    let left = c.wait_for_output(&["get", "rs,pods", "-l", "app=web", "-o", "name"], |out| {
        out.trim().is_empty()
    });
    assert_eq!(left.trim(), "", "left behind");

    // Every namespace gets its service account and CA bundle.
    c.ok(&["create", "namespace", "team"]);
    let defaults = c.wait_for_output(&["get", "sa,cm", "-n", "team", "-o", "name"], |out| {
        out.contains("serviceaccount/default") && out.contains("configmap/kube-root-ca.crt")
    });
    assert_contains(&defaults, "configmap/kube-root-ca.crt");
}

#[test]
fn jobs_run_by_the_job_controller() {
    let c = Cluster::with_controllers();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            play_kubelet_as(
                &c,
                &stop,
                "Succeeded",
                r#"{"status":{"phase":"Succeeded"}}"#,
            )
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| jobs(&c)));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

fn jobs(c: &Cluster) {
    assert_eq!(
        c.ok(&["create", "job", "pi", "--image=busybox", "--", "true"])
            .trim(),
        "job.batch/pi created"
    );
    let waited = c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=60s",
    ]);
    assert_eq!(waited.trim(), "job.batch/pi condition met");
    let rows = columns(&c.ok(&["get", "jobs"]));
    assert_eq!(rows[0], "NAME STATUS COMPLETIONS DURATION AGE", "{rows:?}");
    assert!(rows[1].starts_with("pi Complete 1/1 "), "{rows:?}");
    let pods = c.ok(&["get", "pods", "-l", "job-name=pi", "-o", "name"]);
    assert_eq!(pods.lines().count(), 1, "{pods}");
    let described = c.ok(&["describe", "job", "pi"]);
    assert_line(
        &described,
        "Pods Statuses: 0 Active (0 Ready) / 1 Succeeded / 0 Failed",
    );
    assert_contains(&described, "SuccessfulCreate");
    assert_contains(&described, "Completed");

    // A Job made from a CronJob's template by hand runs the same way.
    c.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=@yearly",
        "--",
        "true",
    ]);
    assert_eq!(
        c.ok(&["create", "job", "manual", "--from=cronjob/tick"])
            .trim(),
        "job.batch/manual created"
    );
    let waited = c.ok(&[
        "wait",
        "--for=condition=complete",
        "job/manual",
        "--timeout=60s",
    ]);
    assert_eq!(waited.trim(), "job.batch/manual condition met");
    let owner = "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}";
    assert_eq!(c.ok(&["get", "job", "manual", "-o", owner]), "CronJob/tick");
    let rows = columns(&c.ok(&["get", "cronjob", "tick"]));
    assert!(
        rows[1].starts_with("tick @yearly <none> False 0 <none> "),
        "{rows:?}"
    );
}
