//! kubectl against Waggle's controllers: `rollout status` follows a real rollout,
//! `rollout history` and `undo` work on the ReplicaSets the Deployment controller
//! made, `scale` and `rollout restart` take effect, namespaces get their defaults,
//! `wait --for=condition=complete` follows a Job the Job controller ran, and `drain`
//! evicts a node's pods no faster than their PodDisruptionBudget allows.
//!
//! No kubelet runs here, so a thread plays its part with kubectl: every pod that is
//! not running yet is marked running and ready through the `status` subresource (or,
//! for Jobs, succeeded), and every terminating pod is deleted for good.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

/// Until `stop` is set, patches every pod whose phase is not `phase` with `status`
/// (a merge patch of the status subresource that sets that phase), and, as a kubelet
/// does once a pod's containers stopped, finishes deleting pods that are terminating.
fn play_kubelet_as(c: &Cluster, stop: &AtomicBool, phase: &str, status: &str) {
    let pending = format!(
        "jsonpath={{range .items[?(@.status.phase!=\"{phase}\")]}}{{.metadata.name}}{{\"\\n\"}}{{end}}"
    );
    let terminating =
        "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{\"\\n\"}{end}";
    while !stop.load(Ordering::Relaxed) {
        let names = c.run(&["get", "pods", "-o", terminating]).stdout;
        for name in names.lines().filter(|n| !n.is_empty()) {
            c.run(&["delete", "pod", name, "--grace-period=0", "--force"]);
        }
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

/// `rollout history` of `<kind>/web` lists `revisions` (REVISION CHANGE-CAUSE rows),
/// and revision 2 is the template with image nginx:1.26.
pub(crate) fn assert_two_revisions(c: &Cluster, kind: &str, revisions: &[&str]) {
    let history = c.ok(&["rollout", "history", &format!("{kind}/web")]);
    let mut expected = vec![
        format!("{kind}.apps/web"),
        "REVISION CHANGE-CAUSE".to_owned(),
    ];
    expected.extend(revisions.iter().map(|r| (*r).to_owned()));
    assert_eq!(columns(&history), expected);
    let second = c.ok(&["rollout", "history", &format!("{kind}/web"), "--revision=2"]);
    assert_line(&second, &format!("{kind}.apps/web with revision #2"));
    assert_contains(&second, "Image:\tnginx:1.26");
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
    with_kubelet(&c, rollouts);
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
    assert_two_revisions(c, "deployment", &["1 <none>", "2 nginx 1.26"]);

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
    with_kubelet_as(&c, "Succeeded", r#"{"status":{"phase":"Succeeded"}}"#, jobs);
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

/// Runs `body` against `c` while a thread plays the kubelet: pods run, ready.
pub(crate) fn with_kubelet(c: &Cluster, body: impl FnOnce(&Cluster)) {
    let ready = r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#;
    with_kubelet_as(c, "Running", ready, body);
}

/// Runs `body` against `c` while a thread plays the kubelet, reporting every pod's
/// phase as `phase` with `status`.
fn with_kubelet_as(c: &Cluster, phase: &str, status: &str, body: impl FnOnce(&Cluster)) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| play_kubelet_as(c, &stop, phase, status));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(c)));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

#[test]
fn drain_obeys_the_disruption_budget() {
    let c = Cluster::with_controllers();
    with_kubelet(&c, drain);
}

const PINNED_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeName: n1
      containers: [{name: c, image: nginx}]
";

fn drain(c: &Cluster) {
    c.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    c.ok_stdin(&["create", "-f", "-"], PINNED_DEPLOYMENT);
    assert_eq!(
        c.ok(&[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--min-available=1"
        ])
        .trim(),
        "poddisruptionbudget.policy/web created"
    );
    rolled_out(c);
    let allowed = c.wait_for_output(&["get", "pdb", "web"], |out| {
        columns(out)
            .get(1)
            .is_some_and(|row| row.starts_with("web 1 N/A 1 "))
    });
    assert_eq!(
        columns(&allowed)[0],
        "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE"
    );
    let before = c.ok(&["get", "pods", "-o", "name"]);

    // The budget lets one pod go at a time: the second eviction is refused (429) and
    // retried until the first pod's replacement is ready.
    let drained = c.run(&["drain", "n1", "--ignore-daemonsets", "--timeout=90s"]);
    assert_eq!(drained.code, Some(0), "{drained:?}");
    assert_line(&drained.stdout, "node/n1 cordoned");
    for pod in before.lines() {
        let name = pod.trim_start_matches("pod/");
        assert_line(&drained.stdout, &format!("evicting pod default/{name}"));
        assert_line(&drained.stdout, &format!("pod/{name} evicted"));
    }
    assert_contains(
        &drained.stderr,
        "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.",
    );
    assert_eq!(drained.stdout.lines().last(), Some("node/n1 drained"));
    let nodes = columns(&c.ok(&["get", "nodes"]));
    assert!(
        nodes[1].starts_with("n1 Unknown,SchedulingDisabled "),
        "{nodes:?}"
    );
    assert_eq!(c.ok(&["uncordon", "n1"]).trim(), "node/n1 uncordoned");
}

const STATEFUL_SET: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 2
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: 'nginx:1.25'}]
";

#[test]
fn statefulsets_run_by_the_statefulset_controller() {
    let c = Cluster::with_controllers();
    with_kubelet(&c, statefulsets);
}

/// `kubectl rollout status statefulset/web`'s last line. The apiserver defaults a
/// rolling update's partition to 0, so upstream kubectl ends on its partitioned message.
fn sts_rolled_out(c: &Cluster, pods: usize) {
    let status = c.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]);
    assert_eq!(
        status.lines().last().unwrap_or_default(),
        format!("partitioned roll out complete: {pods} new pods have been updated..."),
        "{status}"
    );
}

fn statefulsets(c: &Cluster) {
    assert_eq!(
        c.ok_stdin(&["create", "-f", "-"], STATEFUL_SET).trim(),
        "statefulset.apps/web created"
    );
    sts_rolled_out(c, 2);
    let rows = columns(&c.ok(&["get", "sts"]));
    assert_eq!(rows[0], "NAME READY AGE", "{rows:?}");
    assert!(rows[1].starts_with("web 2/2 "), "{rows:?}");
    let pods = c.ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.lines().collect::<Vec<_>>(), ["pod/web-0", "pod/web-1"]);

    assert_eq!(
        c.ok(&["scale", "statefulset/web", "--replicas=3"]).trim(),
        "statefulset.apps/web scaled"
    );
    sts_rolled_out(c, 3);
    assert!(columns(&c.ok(&["get", "sts", "web"]))[1].starts_with("web 3/3 "));

    // A new template rolls out as revision 2; undo brings revision 1's back as 3.
    c.ok(&["set", "image", "statefulset/web", "nginx=nginx:1.26"]);
    sts_rolled_out(c, 3);
    assert_two_revisions(c, "statefulset", &["1 <none>", "2 <none>"]);
    assert_eq!(
        c.ok(&["rollout", "undo", "statefulset/web"]).trim(),
        "statefulset.apps/web rolled back"
    );
    sts_rolled_out(c, 3);
    let image = "jsonpath={.spec.template.spec.containers[0].image}";
    assert_eq!(c.ok(&["get", "statefulset/web", "-o", image]), "nginx:1.25");
    let images = "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}";
    assert_eq!(
        c.ok(&["get", "pods", "-l", "app=web", "-o", images]).trim(),
        "web-0=nginx:1.25 web-1=nginx:1.25 web-2=nginx:1.25"
    );
    assert_eq!(
        columns(&c.ok(&["rollout", "history", "statefulset/web"]))[2..],
        ["2 <none>", "3 <none>"]
    );

    // Scaling down removes the highest ordinals.
    c.ok(&["scale", "statefulset/web", "--replicas=1"]);
    let left = c.wait_for_output(&["get", "pods", "-l", "app=web", "-o", "name"], |out| {
        out.trim() == "pod/web-0"
    });
    assert_eq!(left.trim(), "pod/web-0");
    sts_rolled_out(c, 1);
}
