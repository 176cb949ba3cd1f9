//! `kubectl apply --prune -l ...` with kubectl's default prune allowlist (no
//! `--prune-allowlist`): kubectl lists every kind of that list (ConfigMaps,
//! PersistentVolumeClaims, PersistentVolumes, CronJobs, Ingresses, ...), so all of them
//! must be served for the prune to run at all.

use crate::asserts::assert_line;
use crate::harness::Cluster;

/// In both applies, unchanged.
const CRON_JOB: &str = "apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, labels: {app: shop}}
spec:
  schedule: '0 3 * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: busybox}]
";

const FIRST: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: shop}}
data: {mode: a}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, labels: {app: shop}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: front, labels: {app: shop}}
spec:
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
";

/// The second apply: the ConfigMap changes, the claim and the ingress are gone.
const SECOND: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: shop}}
data: {mode: b}
";

#[test]
fn apply_prune_with_the_default_allowlist_creates_updates_and_prunes() {
    let c = Cluster::start();
    // Unlabelled, so outside the selector: never pruned.
    c.ok(&["create", "configmap", "bystander"]);
    let first = c.write_file("first.yaml", &format!("{FIRST}---\n{CRON_JOB}"));
    let first = c.ok(&["apply", "--prune", "-l", "app=shop", "-f", &first]);
    for line in [
        "configmap/settings created",
        "persistentvolumeclaim/cache created",
        "cronjob.batch/nightly created",
        "ingress.networking.k8s.io/front created",
    ] {
        assert_line(&first, line);
    }
    let second = c.write_file("second.yaml", &format!("{SECOND}---\n{CRON_JOB}"));
    let second = c.ok(&["apply", "--prune", "-l", "app=shop", "-f", &second]);
    for line in [
        "configmap/settings configured",
        "cronjob.batch/nightly unchanged",
        "persistentvolumeclaim/cache pruned",
        "ingress.networking.k8s.io/front pruned",
    ] {
        assert_line(&second, line);
    }
    assert_eq!(c.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]), "b");
    let gone = c.fails(&["get", "ingress", "front"]);
    assert_line(&gone, "Error from server (NotFound): ingresses.networking.k8s.io \"front\" not found");
    c.ok(&["get", "configmap", "bystander"]);
    let pvcs = c.run(&["get", "pvc"]);
    assert_eq!(pvcs.stderr.trim(), "No resources found in default namespace.");
}
