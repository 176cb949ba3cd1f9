//! The batch, networking, policy, scheduling, autoscaling and storage kinds through
//! kubectl's generators (`create cronjob|ingress|poddisruptionbudget|priorityclass`,
//! `autoscale`), their `get` columns as upstream prints them, and their validation
//! errors. No controller acts on them yet (no CronJob runs, no PDB status is computed).

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

#[test]
fn create_cronjob_get_and_invalid_schedule() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"]).trim(),
        "cronjob.batch/tick created"
    );
    let rows = columns(&c.ok(&["get", "cronjobs"]));
    assert_eq!(rows[0], "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE");
    assert!(rows[1].starts_with("tick */5 * * * * <none> False 0 <none> "), "{rows:?}");
    let wide = columns(&c.ok(&["get", "cj", "tick", "-o", "wide"]));
    assert_eq!(wide[0], "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE CONTAINERS IMAGES SELECTOR");
    assert!(wide[1].ends_with(" tick busybox <none>"), "{wide:?}");
    // Defaults as upstream's: the policy, history limits, and the job template's.
    assert_eq!(
        c.ok(&[
            "get",
            "cronjob",
            "tick",
            "-o",
            "jsonpath={.spec.concurrencyPolicy} {.spec.successfulJobsHistoryLimit} {.spec.failedJobsHistoryLimit} {.spec.jobTemplate.spec.backoffLimit}"
        ]),
        "Allow 3 1 6"
    );
    let err = c.fails(&["create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *"]);
    assert_contains(
        &err,
        "CronJob.batch \"bad\" is invalid: spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61",
    );
    let err = c.fails(&["create", "cronjob", "worse", "--image=busybox", "--schedule=often"]);
    assert_contains(&err, "spec.schedule: Invalid value: \"often\": expected exactly 5 fields, found 1: [often]");
}

#[test]
fn create_ingress_and_ingress_class() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "ingress", "shop", "--class=edge", "--rule=shop.example/cart*=cart:8080,tls=shop-cert"]).trim(),
        "ingress.networking.k8s.io/shop created"
    );
    let rows = columns(&c.ok(&["get", "ingress"]));
    assert_eq!(rows[0], "NAME CLASS HOSTS ADDRESS PORTS AGE");
    assert!(rows[1].starts_with("shop edge shop.example 80, 443 "), "{rows:?}");
    assert_eq!(
        c.ok(&["get", "ing", "shop", "-o", "jsonpath={.spec.rules[0].http.paths[0].pathType} {.spec.rules[0].http.paths[0].backend.service.port.number}"]),
        "Prefix 8080"
    );
    let class = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: edge}
spec:
  controller: example.com/edge
  parameters: {apiGroup: k8s.example.com, kind: EdgeParams, name: defaults}
";
    c.ok_stdin(&["create", "-f", "-"], class);
    let classes = columns(&c.ok(&["get", "ingressclasses"]));
    assert_eq!(classes[0], "NAME CONTROLLER PARAMETERS AGE");
    assert!(classes[1].starts_with("edge example.com/edge EdgeParams.k8s.example.com/defaults "), "{classes:?}");
    let no_backend = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: empty}
spec: {}
";
    let err = c.fails_stdin(&["create", "-f", "-"], no_backend);
    assert_contains(&err, "The Ingress \"empty\" is invalid: spec: Invalid value:");
    assert_contains(&err, "either `defaultBackend` or `rules` must be specified");
}

#[test]
fn create_pdb_and_priority_class() {
    let c = Cluster::start();
    assert_eq!(
        c.ok(&["create", "poddisruptionbudget", "web", "--selector=app=web", "--min-available=50%"]).trim(),
        "poddisruptionbudget.policy/web created"
    );
    let rows = columns(&c.ok(&["get", "pdb"]));
    assert_eq!(rows[0], "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE");
    assert!(rows[1].starts_with("web 50% N/A 0 "), "{rows:?}");
    let both = "apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: both}
spec: {minAvailable: 1, maxUnavailable: 1, selector: {matchLabels: {app: web}}}
";
    let err = c.fails_stdin(&["create", "-f", "-"], both);
    assert_contains(&err, "The PodDisruptionBudget \"both\" is invalid: spec: Invalid value:");
    assert_contains(&err, "minAvailable and maxUnavailable cannot be both set");

    assert_eq!(
        c.ok(&["create", "priorityclass", "high", "--value=1000", "--description=important"]).trim(),
        "priorityclass.scheduling.k8s.io/high created"
    );
    let classes = columns(&c.ok(&["get", "priorityclass", "high"]));
    assert_eq!(classes[0], "NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY");
    assert!(classes[1].starts_with("high 1000 false ") && classes[1].ends_with(" PreemptLowerPriority"), "{classes:?}");
    let err = c.fails(&["create", "priorityclass", "huge", "--value=2000000000"]);
    assert_contains(
        &err,
        "PriorityClass.scheduling.k8s.io \"huge\" is invalid: value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
    );
    let err = c.fails(&["patch", "priorityclass", "high", "--type=merge", "-p", r#"{"value":5}"#]);
    assert_contains(&err, "value: Forbidden: may not be changed in an update.");
}

#[test]
fn autoscale_a_deployment() {
    let c = Cluster::start();
    c.ok(&["create", "deployment", "web", "--image=nginx"]);
    assert_eq!(
        c.ok(&["autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60"]).trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let rows = columns(&c.ok(&["get", "hpa"]));
    assert_eq!(rows[0], "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE");
    assert!(rows[1].starts_with("web Deployment/web cpu: <unknown>/60% 2 5 0 "), "{rows:?}");
    // kubectl 1.32 writes autoscaling/v1; it is stored (and read by kubectl) as v2.
    assert_eq!(
        c.ok(&["get", "hpa", "web", "-o", "jsonpath={.apiVersion} {.spec.metrics[0].resource.target.averageUtilization}"]),
        "autoscaling/v2 60"
    );
    assert_eq!(
        c.ok(&["get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage}"]),
        "autoscaling/v1 60"
    );
    // What only v2 says reaches v1 clients in upstream's annotations, and survives
    // their writes.
    c.ok(&["patch", "hpa", "web", "--type=merge", "-p", r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":60}}}}"#]);
    let v1 = c.ok(&["get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web"]);
    let v1: serde_json::Value = serde_json::from_str(&v1).unwrap();
    let behavior = v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(behavior).unwrap()["scaleDown"]["stabilizationWindowSeconds"], 60);
    c.ok_stdin(&["replace", "-f", "-"], &v1.to_string());
    assert_eq!(
        c.ok(&["get", "hpa", "web", "-o", "jsonpath={.spec.behavior.scaleDown.stabilizationWindowSeconds} {.metadata.annotations}"]),
        "60 "
    );
    let described = c.ok(&["describe", "hpa", "web"]);
    assert_line(&described, "Reference: Deployment/web");
    assert_line(&described, "Min replicas: 2");
    assert_line(&described, "Max replicas: 5");
    assert_contains(&described, "resource cpu on pods  (as a percentage of request):  <unknown> / 60%");
    let err = c.fails(&["autoscale", "deployment", "web", "--name=inverted", "--min=4", "--max=3"]);
    assert_contains(&err, "--max=MAXPODS must be larger or equal to --min=MINPODS");
    let inverted = "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: inverted}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 4
  maxReplicas: 3
";
    let err = c.fails_stdin(&["create", "-f", "-"], inverted);
    assert_contains(
        &err,
        "The HorizontalPodAutoscaler \"inverted\" is invalid: spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`",
    );
}

const STORAGE: &str = "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations: {storageclass.kubernetes.io/is-default-class: 'true'}
provisioner: example.com/ssd
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: disk-1}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce, ReadOnlyMany]
  storageClassName: fast
  hostPath: {path: /srv/disk-1}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: fast
  resources: {requests: {storage: 1Gi}}
";

#[test]
fn storage_kinds_print_as_upstream() {
    let c = Cluster::start();
    c.ok_stdin(&["create", "-f", "-"], STORAGE);
    let classes = columns(&c.ok(&["get", "storageclass"]));
    assert_eq!(classes[0], "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE");
    assert!(classes[1].starts_with("fast (default) example.com/ssd Delete Immediate false "), "{classes:?}");
    let volumes = columns(&c.ok(&["get", "pv", "-o", "wide"]));
    assert_eq!(
        volumes[0],
        "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE VOLUMEMODE"
    );
    assert!(volumes[1].starts_with("disk-1 5Gi RWO,ROX Retain Pending fast <unset> "), "{volumes:?}");
    assert!(volumes[1].ends_with(" Filesystem"), "{volumes:?}");
    let claims = columns(&c.ok(&["get", "pvc"]));
    assert_eq!(claims[0], "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE");
    assert!(claims[1].starts_with("data Pending fast <unset> "), "{claims:?}");
    // A claim's spec is fixed once created (only the requested size may grow).
    let err = c.fails(&["patch", "pvc", "data", "--type=merge", "-p", r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#]);
    assert_contains(&err, "spec: Forbidden: spec is immutable after creation");
    let described = c.ok(&["describe", "pvc", "data"]);
    assert_line(&described, "StorageClass: fast");
    assert_line(&described, "Status: Pending");
}
