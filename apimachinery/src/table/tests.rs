//! Golden-style checks of the cells upstream prints for typical objects.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{IncludeObject, to_table};
use crate::registry;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn table(plural: &str, group: &str, obj: Value) -> Value {
    let r = registry::RESOURCES.iter().find(|r| r.plural == plural && r.group == group).unwrap();
    to_table(r, &obj, IncludeObject::Metadata, now())
}

fn names(t: &Value) -> Vec<&str> {
    t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect()
}

#[test]
fn running_pod() {
    let pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T11:56:48Z", "resourceVersion": "7"},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}}},
                {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]},
    });
    let t = table("pods", "", pod);
    assert_eq!(names(&t), ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]);
    assert_eq!(t["rows"][0]["cells"], json!(["web", "2/2", "Running", "2 (60s ago)", "3m12s", "10.0.0.5", "n1", "<none>", "<none>"]));
    assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web");
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert!(t["columnDefinitions"][0]["description"].as_str().unwrap().starts_with("Name must be unique"));
    assert_eq!(t["columnDefinitions"][5]["priority"], 1);
}

#[test]
fn pod_status_reasons() {
    let base = |status: Value, extra: Value| {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "initContainers": [{"name": "i"}]}, "status": status});
        if let Some(o) = extra.as_object() {
            for (k, v) in o {
                p["metadata"][k] = v.clone();
            }
        }
        table("pods", "", p)["rows"][0]["cells"][2].as_str().unwrap().to_owned()
    };
    assert_eq!(base(json!({"phase": "Pending"}), json!({})), "Pending");
    assert_eq!(
        base(json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]}), json!({})),
        "Init:0/1"
    );
    assert_eq!(
        base(json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 3}}}]}), json!({})),
        "Init:ExitCode:3"
    );
    assert_eq!(
        base(json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}), json!({})),
        "Init:ImagePullBackOff"
    );
    assert_eq!(
        base(json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 0}}}],
                    "containerStatuses": [{"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}), json!({})),
        "CrashLoopBackOff"
    );
    assert_eq!(base(json!({"phase": "Running"}), json!({"deletionTimestamp": "2024-05-01T11:00:00Z"})), "Terminating");
    assert_eq!(base(json!({"phase": "Succeeded"}), json!({"deletionTimestamp": "2024-05-01T11:00:00Z"})), "Succeeded");
    assert_eq!(
        base(json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}), json!({})),
        "Completed"
    );
}

#[test]
fn deployment_and_list_metadata() {
    let list = json!({
        "kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "42"},
        "items": [{"metadata": {"name": "d", "creationTimestamp": "2024-04-29T12:00:00Z"},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
                            "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}, {"name": "side", "image": "busybox"}]}}},
                   "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}],
    });
    let t = table("deployments", "apps", list);
    assert_eq!(names(&t), ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]);
    assert_eq!(t["metadata"]["resourceVersion"], "42");
    assert_eq!(t["rows"][0]["cells"], json!(["d", "2/3", 3, 2, "2d", "nginx,side", "nginx:1,busybox", "app=d,tier in (a,b)"]));
}

#[test]
fn service_cells() {
    let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"], "selector": {"app": "x"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
    let t = table("services", "", svc);
    assert_eq!(names(&t), ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]);
    assert_eq!(t["rows"][0]["cells"], json!(["s", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "<unknown>", "app=x"]));
    let lb = json!({"metadata": {"name": "l"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 443}]}});
    assert_eq!(table("services", "", lb)["rows"][0]["cells"][3], "<pending>");
}

#[test]
fn small_kinds() {
    let cm = table("configmaps", "", json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}));
    assert_eq!(cm["rows"][0]["cells"], json!(["c", 2, "<unknown>"]));
    let secret = table("secrets", "", json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}}));
    assert_eq!(secret["rows"][0]["cells"], json!(["s", "Opaque", 1, "<unknown>"]));
    let ns = table("namespaces", "", json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}}));
    assert_eq!(ns["rows"][0]["cells"], json!(["default", "Active", "<unknown>"]));
    let node = table("nodes", "", json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.0"},
                   "addresses": [{"type": "InternalIP", "address": "10.1.0.2"}]}}));
    assert_eq!(node["rows"][0]["cells"], json!(["n", "Ready", "control-plane", "<unknown>", "v1.33.0", "10.1.0.2", "<none>", "<unknown>", "<unknown>", "<unknown>"]));
    let ep = table("endpoints", "", json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "1.1.1.1"}, {"ip": "1.1.1.2"}], "ports": [{"port": 80}, {"port": 81}]}]}));
    assert_eq!(ep["rows"][0]["cells"][1], "1.1.1.1:80,1.1.1.2:80,1.1.1.1:81 + 1 more...");
    let job = table("jobs", "batch", json!({"metadata": {"name": "j"}, "spec": {"completions": 1},
        "status": {"succeeded": 1, "startTime": "2024-05-01T11:59:00Z", "completionTime": "2024-05-01T11:59:07Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}}));
    assert_eq!(job["rows"][0]["cells"], json!(["j", "Complete", "1/1", "7s", "<unknown>", "", "", ""]));
    let ev = table("events", "", json!({"metadata": {"name": "e1"}, "type": "Normal", "reason": "Scheduled", "message": "ok ",
        "involvedObject": {"kind": "Pod", "name": "web"}, "source": {"component": "default-scheduler"},
        "firstTimestamp": "2024-05-01T11:59:50Z", "lastTimestamp": "2024-05-01T11:59:55Z", "count": 2}));
    assert_eq!(ev["rows"][0]["cells"], json!(["5s", "Normal", "Scheduled", "pod/web", "", "default-scheduler", "ok", "10s", 2, "e1"]));
}

#[test]
fn default_table_and_include_object() {
    let r = registry::find("", "v1", "serviceaccounts").unwrap();
    let obj = json!({"kind": "ServiceAccount", "metadata": {"name": "sa"}});
    let none = to_table(r, &obj, IncludeObject::None, now());
    assert!(none["rows"][0].get("object").is_none());
    let full = to_table(r, &obj, IncludeObject::Object, now());
    assert_eq!(full["rows"][0]["object"]["kind"], "ServiceAccount");
    let cr = registry::find("apps", "v1", "controllerrevisions").unwrap();
    let rev = json!({"metadata": {"name": "r", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": true}]}, "revision": 3});
    assert_eq!(to_table(cr, &rev, IncludeObject::None, now())["rows"][0]["cells"], json!(["r", "daemonset.apps/ds", 3, "<unknown>"]));
    assert_eq!(IncludeObject::from_query(Some("Object")), IncludeObject::Object);
}

#[test]
fn policy_and_access_kinds() {
    let hpa = table("horizontalpodautoscalers", "autoscaling", json!({"metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                             {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
        "status": {"currentReplicas": 3, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 41}}}]}}));
    assert_eq!(names(&hpa), ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]);
    assert_eq!(hpa["rows"][0]["cells"], json!(["h", "Deployment/web", "cpu: 41%/60%, <unknown>/10", "2", 5, 3, "<unknown>"]));
    let v1 = table("horizontalpodautoscalers", "autoscaling", json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80}}));
    assert_eq!(v1["rows"][0]["cells"].as_array().unwrap()[2..4], [json!("cpu: <unknown>/80%"), json!("<unset>")]);
    let rb = table("rolebindings", "rbac.authorization.k8s.io", json!({"metadata": {"name": "b"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ci"}]}));
    assert_eq!(rb["rows"][0]["cells"], json!(["b", "ClusterRole/view", "<unknown>", "a, b", "", "ci/sa"]));
    let role = table("roles", "rbac.authorization.k8s.io", json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T11:00:00Z"}}));
    assert_eq!(names(&role), ["Name", "Created At"]);
    let pdb = table("poddisruptionbudgets", "policy", json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": 1}, "status": {"disruptionsAllowed": 1}}));
    assert_eq!(pdb["rows"][0]["cells"], json!(["p", "N/A", "1", 1, "<unknown>"]));
    let pc = table("priorityclasses", "scheduling.k8s.io", json!({"metadata": {"name": "high"}, "value": 1000, "globalDefault": true}));
    assert_eq!(pc["rows"][0]["cells"], json!(["high", 1000, true, "<unknown>", "<unset>"]));
}

#[test]
fn batch_networking_and_storage_kinds() {
    let cj = table("cronjobs", "batch", json!({"metadata": {"name": "c"}, "spec": {"schedule": "0 * * * *", "suspend": true,
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "c-1"}], "lastScheduleTime": "2024-05-01T11:58:00Z"}}));
    assert_eq!(cj["rows"][0]["cells"], json!(["c", "0 * * * *", "<none>", "True", 1, "2m", "<unknown>", "a", "busybox", "<none>"]));
    let rules: Vec<Value> = ["a", "b", "c", "d"].iter().map(|h| json!({"host": h})).collect();
    let ing = table("ingresses", "networking.k8s.io", json!({"metadata": {"name": "i"}, "spec": {"rules": rules, "tls": [{"hosts": ["a"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"hostname": "lb.example"}]}}}));
    assert_eq!(ing["rows"][0]["cells"], json!(["i", "<none>", "a,b,c + 1 more...", "10.0.0.1,lb.example", "80, 443", "<unknown>"]));
    let pv = table("persistentvolumes", "", json!({"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem",
        "claimRef": {"namespace": "ns", "name": "data"}, "storageClassName": "fast"}, "status": {"phase": "Bound"}}));
    assert_eq!(pv["rows"][0]["cells"], json!(["v", "1Gi", "RWO,RWX", "Retain", "Bound", "ns/data", "fast", "<unset>", "", "<unknown>", "Filesystem"]));
    let pvc = table("persistentvolumeclaims", "", json!({"metadata": {"name": "data"}, "spec": {"volumeName": "v", "storageClassName": "fast"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}));
    assert_eq!(pvc["rows"][0]["cells"], json!(["data", "Bound", "v", "1Gi", "RWO", "fast", "<unset>", "<unknown>", "<unset>"]));
    let sc = table("storageclasses", "storage.k8s.io", json!({"metadata": {"name": "s"}, "provisioner": "p", "allowVolumeExpansion": true}));
    assert_eq!(sc["rows"][0]["cells"], json!(["s", "p", "Delete", "Immediate", true, "<unknown>"]));
}
