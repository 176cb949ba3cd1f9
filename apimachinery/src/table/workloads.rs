//! Printers of the workload kinds: deployments, replica sets, replication controllers,
//! daemon sets, stateful sets, jobs and controller revisions.

use jiff::Timestamp;
use serde_json::Value;

use super::{AGE, Cells, CONTAINERS, Column, Description, IMAGES, NAME, Printer, age, arr, col, container_cells, format_labels, i, name, s, selector_string};


static DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", 0, Description::Text("Number of the pod with ready state")),
    col("Up-to-date", "integer", 0, field!("apps.v1.DeploymentStatus", "updatedReplicas")),
    col("Available", "integer", 0, field!("apps.v1.DeploymentStatus", "availableReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("apps.v1.DeploymentSpec", "selector")),
];

static REPLICA_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, field!("apps.v1.ReplicaSetSpec", "replicas")),
    col("Current", "integer", 0, field!("apps.v1.ReplicaSetStatus", "replicas")),
    col("Ready", "integer", 0, field!("apps.v1.ReplicaSetStatus", "readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("apps.v1.ReplicaSetSpec", "selector")),
];

static REPLICATION_CONTROLLER: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, field!("core.v1.ReplicationControllerSpec", "replicas")),
    col("Current", "integer", 0, field!("core.v1.ReplicationControllerStatus", "replicas")),
    col("Ready", "integer", 0, field!("core.v1.ReplicationControllerStatus", "readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("core.v1.ReplicationControllerSpec", "selector")),
];

static DAEMON_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, field!("apps.v1.DaemonSetStatus", "desiredNumberScheduled")),
    col("Current", "integer", 0, field!("apps.v1.DaemonSetStatus", "currentNumberScheduled")),
    col("Ready", "integer", 0, field!("apps.v1.DaemonSetStatus", "numberReady")),
    col("Up-to-date", "integer", 0, field!("apps.v1.DaemonSetStatus", "updatedNumberScheduled")),
    col("Available", "integer", 0, field!("apps.v1.DaemonSetStatus", "numberAvailable")),
    col("Node Selector", "string", 0, field!("core.v1.PodSpec", "nodeSelector")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("apps.v1.DaemonSetSpec", "selector")),
];

static STATEFUL_SET: &[Column] = &[
    NAME,
    col("Ready", "string", 0, Description::Text("Number of the pod with ready state")),
    AGE,
    CONTAINERS,
    IMAGES,
];

static JOB: &[Column] = &[
    NAME,
    col("Status", "string", 0, Description::Text("Status of the job.")),
    col("Completions", "string", 0, field!("batch.v1.JobStatus", "succeeded")),
    col("Duration", "string", 0, Description::Text("Time required to complete the job.")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("batch.v1.JobSpec", "selector")),
];

static CONTROLLER_REVISION: &[Column] = &[
    NAME,
    col("Controller", "string", 0, Description::Text("Controller of the object")),
    col("Revision", "integer", 0, field!("apps.v1.ControllerRevision", "revision")),
    AGE,
];

static CRON_JOB: &[Column] = &[
    NAME,
    col("Schedule", "string", 0, field!("batch.v1.CronJobSpec", "schedule")),
    col("Timezone", "string", 0, field!("batch.v1.CronJobSpec", "timeZone")),
    col("Suspend", "boolean", 0, field!("batch.v1.CronJobSpec", "suspend")),
    col("Active", "integer", 0, field!("batch.v1.CronJobStatus", "active")),
    col("Last Schedule", "string", 0, field!("batch.v1.CronJobStatus", "lastScheduleTime")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, field!("batch.v1.JobSpec", "selector")),
];

pub(super) fn printer(kind: &str, group: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Column], Cells) = match (group, kind) {
        ("apps", "Deployment") => (DEPLOYMENT, deployment),
        ("apps", "ReplicaSet") => (REPLICA_SET, replica_set),
        ("", "ReplicationController") => (REPLICATION_CONTROLLER, replication_controller),
        ("apps", "DaemonSet") => (DAEMON_SET, daemon_set),
        ("apps", "StatefulSet") => (STATEFUL_SET, stateful_set),
        ("batch", "Job") => (JOB, job),
        ("batch", "CronJob") => (CRON_JOB, cron_job),
        ("apps", "ControllerRevision") => (CONTROLLER_REVISION, controller_revision),
        ("autoscaling", "Scale") => (SCALE, scale),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

/// The `scale` subresource (`kubectl get deploy x --subresource=scale`); upstream's
/// name column has no `name` format here.
static SCALE: &[Column] = &[
    col("Name", "string", 0, Description::Field(super::META, "name")),
    col("Desired", "integer", 0, field!("autoscaling.v1.ScaleSpec", "replicas")),
    col("Available", "integer", 0, field!("autoscaling.v1.ScaleStatus", "replicas")),
    AGE,
];

fn scale(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj).into(), i(obj, "/spec/replicas").into(), i(obj, "/status/replicas").into(), age(obj, now)]
}

/// `spec.replicas`, defaulted to 1 as the API server's defaulting does.
fn desired(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn template_containers(obj: &Value) -> (Value, Value) {
    container_cells(arr(obj, "/spec/template/spec/containers"))
}

fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = template_containers(obj);
    vec![
        name(obj).into(),
        format!("{}/{}", i(obj, "/status/readyReplicas"), desired(obj)).into(),
        i(obj, "/status/updatedReplicas").into(),
        i(obj, "/status/availableReplicas").into(),
        age(obj, now),
        c,
        im,
        selector_string(obj.pointer("/spec/selector")).into(),
    ]
}

fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = template_containers(obj);
    vec![
        name(obj).into(),
        desired(obj).into(),
        i(obj, "/status/replicas").into(),
        i(obj, "/status/readyReplicas").into(),
        age(obj, now),
        c,
        im,
        selector_string(obj.pointer("/spec/selector")).into(),
    ]
}

fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = template_containers(obj);
    let selector = format_labels(obj.pointer("/spec/selector"));
    vec![
        name(obj).into(),
        desired(obj).into(),
        i(obj, "/status/replicas").into(),
        i(obj, "/status/readyReplicas").into(),
        age(obj, now),
        c,
        im,
        if selector == "<none>" { String::new() } else { selector }.into(),
    ]
}

fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = template_containers(obj);
    vec![
        name(obj).into(),
        i(obj, "/status/desiredNumberScheduled").into(),
        i(obj, "/status/currentNumberScheduled").into(),
        i(obj, "/status/numberReady").into(),
        i(obj, "/status/updatedNumberScheduled").into(),
        i(obj, "/status/numberAvailable").into(),
        format_labels(obj.pointer("/spec/template/spec/nodeSelector")).into(),
        age(obj, now),
        c,
        im,
        selector_string(obj.pointer("/spec/selector")).into(),
    ]
}

fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = template_containers(obj);
    vec![name(obj).into(), format!("{}/{}", i(obj, "/status/readyReplicas"), desired(obj)).into(), age(obj, now), c, im]
}

fn has_condition(obj: &Value, kind: &str) -> bool {
    arr(obj, "/status/conditions").iter().any(|c| s(c, "/type") == kind && s(c, "/status") == "True")
}

fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = i(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match obj.pointer("/spec/parallelism").and_then(Value::as_i64).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = super::age::timestamp(obj.pointer("/status/startTime"));
    let end = super::age::timestamp(obj.pointer("/status/completionTime"));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(st), None) => super::age::between(st, now),
        (Some(st), Some(en)) => super::age::between(st, en),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (c, im) = template_containers(obj);
    vec![
        name(obj).into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        c,
        im,
        selector_string(obj.pointer("/spec/selector")).into(),
    ]
}

fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    let controller = arr(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let group = s(r, "/apiVersion").rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
            let kind = s(r, "/kind").to_lowercase();
            let kind = if group.is_empty() { kind } else { format!("{kind}.{group}") };
            format!("{kind}/{}", s(r, "/name"))
        })
        .unwrap_or_else(|| "<none>".into());
    vec![name(obj).into(), controller.into(), i(obj, "/revision").into(), age(obj, now)]
}


fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (c, im) = container_cells(arr(obj, "/spec/jobTemplate/spec/template/spec/containers"));
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let last = match obj.pointer("/status/lastScheduleTime").filter(|t| !t.is_null()) {
        Some(t) => super::age::since(Some(t), now),
        None => "<none>".to_owned(),
    };
    let selector = selector_string(obj.pointer("/spec/jobTemplate/spec/selector"));
    vec![
        name(obj).into(),
        s(obj, "/spec/schedule").into(),
        obj.pointer("/spec/timeZone").and_then(Value::as_str).unwrap_or("<none>").into(),
        suspend.into(),
        arr(obj, "/status/active").len().into(),
        last.into(),
        age(obj, now),
        c,
        im,
        if selector.is_empty() { "<none>".to_owned() } else { selector }.into(),
    ]
}
