//! `autoscaling/v1` HorizontalPodAutoscalers, stored as `autoscaling/v2`. As upstream,
//! `v1` has the CPU utilization target alone; what only `v2` can say travels in
//! annotations of the `v1` object, in `v1`'s own metric format:
//!
//! | annotation | `v2` field |
//! |---|---|
//! | `autoscaling.alpha.kubernetes.io/metrics` | `spec.metrics` but the CPU utilization one |
//! | `autoscaling.alpha.kubernetes.io/behavior` | `spec.behavior` |
//! | `autoscaling.alpha.kubernetes.io/current-metrics` | `status.currentMetrics` (all of them) |
//! | `autoscaling.alpha.kubernetes.io/conditions` | `status.conditions` |
//!
//! So a `v1` client that reads an object and writes it back loses nothing.

use serde_json::{Map, Value, json};

pub const V1: &str = "autoscaling/v1";
pub const V2: &str = "autoscaling/v2";

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";

const SPEC: &[&str] = &["scaleTargetRef", "minReplicas", "maxReplicas"];
const STATUS: &[&str] = &["observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"];

fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn present<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.pointer(pointer).filter(|v| !v.is_null())
}

/// Copies `fields` of `from` into `to` where present.
fn copy(from: Option<&Value>, to: &mut Map<String, Value>, fields: &[&str]) {
    for field in fields {
        if let Some(v) = from.and_then(|f| f.get(*field)) {
            to.insert((*field).into(), v.clone());
        }
    }
}

/// The CPU utilization target, which `v1` has a field of its own for.
fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

/// How one metric source reads in `v1` (the annotations' format) and in `v2`: its key,
/// and per `v1` field the JSON pointer of the same value inside the `v2` source.
struct Source {
    key: &'static str,
    fields: &'static [(&'static str, &'static str)],
}

/// The metric sources of a MetricSpec, by `type`.
const SPECS: &[(&str, Source)] = &[
    (
        "Object",
        Source {
            key: "object",
            fields: &[
                ("target", "/describedObject"),
                ("metricName", "/metric/name"),
                ("targetValue", "/target/value"),
                ("selector", "/metric/selector"),
                ("averageValue", "/target/averageValue"),
            ],
        },
    ),
    (
        "Pods",
        Source {
            key: "pods",
            fields: &[
                ("metricName", "/metric/name"),
                ("targetAverageValue", "/target/averageValue"),
                ("selector", "/metric/selector"),
            ],
        },
    ),
    (
        "Resource",
        Source {
            key: "resource",
            fields: &[
                ("name", "/name"),
                ("targetAverageUtilization", "/target/averageUtilization"),
                ("targetAverageValue", "/target/averageValue"),
            ],
        },
    ),
    (
        "ContainerResource",
        Source {
            key: "containerResource",
            fields: &[
                ("name", "/name"),
                ("targetAverageUtilization", "/target/averageUtilization"),
                ("targetAverageValue", "/target/averageValue"),
                ("container", "/container"),
            ],
        },
    ),
    (
        "External",
        Source {
            key: "external",
            fields: &[
                ("metricName", "/metric/name"),
                ("metricSelector", "/metric/selector"),
                ("targetValue", "/target/value"),
                ("targetAverageValue", "/target/averageValue"),
            ],
        },
    ),
];

/// The metric sources of a MetricStatus, by `type`.
const STATUSES: &[(&str, Source)] = &[
    (
        "Object",
        Source {
            key: "object",
            fields: &[
                ("target", "/describedObject"),
                ("metricName", "/metric/name"),
                ("currentValue", "/current/value"),
                ("selector", "/metric/selector"),
                ("averageValue", "/current/averageValue"),
            ],
        },
    ),
    (
        "Pods",
        Source {
            key: "pods",
            fields: &[
                ("metricName", "/metric/name"),
                ("currentAverageValue", "/current/averageValue"),
                ("selector", "/metric/selector"),
            ],
        },
    ),
    (
        "Resource",
        Source {
            key: "resource",
            fields: &[
                ("name", "/name"),
                ("currentAverageUtilization", "/current/averageUtilization"),
                ("currentAverageValue", "/current/averageValue"),
            ],
        },
    ),
    (
        "ContainerResource",
        Source {
            key: "containerResource",
            fields: &[
                ("name", "/name"),
                ("currentAverageUtilization", "/current/averageUtilization"),
                ("currentAverageValue", "/current/averageValue"),
                ("container", "/container"),
            ],
        },
    ),
    (
        "External",
        Source {
            key: "external",
            fields: &[
                ("metricName", "/metric/name"),
                ("metricSelector", "/metric/selector"),
                ("currentValue", "/current/value"),
                ("currentAverageValue", "/current/averageValue"),
            ],
        },
    ),
];

fn source_of<'a>(table: &'a [(&str, Source)], metric: &Value) -> Option<&'a Source> {
    table.iter().find(|(kind, _)| metric["type"] == *kind).map(|(_, source)| source)
}

/// A `v2` metric in `v1`'s format (`metricName`, `targetAverageValue`, ...).
fn to_v1(table: &[(&str, Source)], metric: &Value) -> Value {
    let Some(source) = source_of(table, metric) else { return metric.clone() };
    let v2 = &metric[source.key];
    let fields: Map<String, Value> = source
        .fields
        .iter()
        .filter_map(|(v1, pointer)| Some(((*v1).to_owned(), present(v2, pointer)?.clone())))
        .collect();
    json!({"type": metric["type"], source.key: fields})
}

/// A `v1`-format metric back in `v2`'s.
fn to_v2(table: &[(&str, Source)], metric: &Value) -> Value {
    let Some(source) = source_of(table, metric) else { return metric.clone() };
    let v1 = &metric[source.key];
    let mut v2 = json!({});
    for (field, pointer) in source.fields {
        if let Some(value) = present(v1, &format!("/{field}")) {
            let mut at = &mut v2;
            for part in pointer.trim_start_matches('/').split('/') {
                at = at.as_object_mut().expect("built of objects").entry(part).or_insert_with(|| json!({}));
            }
            *at = value.clone();
        }
    }
    json!({"type": metric["type"], source.key: v2})
}

/// A `v1`-format MetricSpec in `v2`'s, with the target type upstream infers from which
/// target the `v1` metric gives.
fn spec_to_v2(metric: &Value) -> Value {
    let mut v2 = to_v2(SPECS, metric);
    let Some(source) = source_of(SPECS, metric) else { return v2 };
    let has = |field: &str| present(&metric[source.key], &format!("/{field}")).is_some();
    let kind = match source.key {
        "object" if has("averageValue") => "AverageValue",
        "object" => "Value",
        "resource" | "containerResource" if has("targetAverageUtilization") => "Utilization",
        "external" if has("targetValue") => "Value",
        _ => "AverageValue",
    };
    let target =
        v2[source.key].as_object_mut().expect("built as an object").entry("target").or_insert_with(|| json!({}));
    target["type"] = json!(kind);
    v2
}

/// A stored `v2` object as `v1` serves it.
pub fn v2_to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(V1);
    let mut annotations: Vec<(&str, String)> = Vec::new();
    let mut spec = Map::new();
    copy(obj.get("spec"), &mut spec, SPEC);
    let metrics = items(obj, "/spec/metrics");
    if let Some(target) =
        metrics.iter().find(|m| is_cpu_utilization(m)).and_then(|m| m.pointer("/resource/target/averageUtilization"))
    {
        spec.insert("targetCPUUtilizationPercentage".into(), target.clone());
    }
    let others: Vec<Value> = metrics.iter().filter(|m| !is_cpu_utilization(m)).map(|m| to_v1(SPECS, m)).collect();
    if !others.is_empty() {
        annotations.push((METRICS, Value::Array(others).to_string()));
    }
    if let Some(behavior) = present(obj, "/spec/behavior") {
        annotations.push((BEHAVIOR, behavior.to_string()));
    }
    out["spec"] = Value::Object(spec);
    if let Some(status) = obj.get("status").filter(|s| s.is_object()) {
        let mut converted = Map::new();
        copy(Some(status), &mut converted, STATUS);
        let current = items(status, "/currentMetrics");
        let cpu = current
            .iter()
            .find(|m| m["type"] == "Resource" && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu"));
        if let Some(utilization) = cpu.and_then(|m| m.pointer("/resource/current/averageUtilization")) {
            converted.insert("currentCPUUtilizationPercentage".into(), utilization.clone());
        }
        if !current.is_empty() {
            annotations.push((
                CURRENT_METRICS,
                Value::Array(current.iter().map(|m| to_v1(STATUSES, m)).collect()).to_string(),
            ));
        }
        let conditions = items(status, "/conditions");
        if !conditions.is_empty() {
            annotations.push((CONDITIONS, Value::Array(conditions.to_vec()).to_string()));
        }
        out["status"] = Value::Object(converted);
    }
    if !annotations.is_empty() {
        let meta = crate::objects::meta_mut(&mut out);
        let map = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(map) = map.as_object_mut() {
            for (key, value) in annotations {
                map.insert(key.into(), Value::String(value));
            }
        }
    }
    out
}

/// Takes annotation `key` off `obj`, parsed.
fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let annotations = obj.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)?;
    let text = annotations.remove(key)?;
    serde_json::from_str(text.as_str()?).ok()
}

/// A `v1` object as it is stored in `v2`.
pub fn v1_to_v2(obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(V2);
    let others = take_annotation(&mut out, METRICS);
    let behavior = take_annotation(&mut out, BEHAVIOR);
    let current = take_annotation(&mut out, CURRENT_METRICS);
    let conditions = take_annotation(&mut out, CONDITIONS);
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("annotations").and_then(Value::as_object).is_some_and(Map::is_empty)
    {
        meta.remove("annotations");
    }
    let mut spec = Map::new();
    copy(obj.get("spec"), &mut spec, SPEC);
    let mut metrics: Vec<Value> =
        others.as_ref().and_then(Value::as_array).into_iter().flatten().map(spec_to_v2).collect();
    if let Some(target) = present(obj, "/spec/targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}));
    }
    if !metrics.is_empty() {
        spec.insert("metrics".into(), Value::Array(metrics));
    }
    if let Some(behavior) = behavior {
        spec.insert("behavior".into(), behavior);
    }
    out["spec"] = Value::Object(spec);
    if let Some(status) = obj.get("status").filter(|s| s.is_object()) {
        let mut converted = Map::new();
        copy(Some(status), &mut converted, STATUS);
        // The annotation holds every current metric, with more than the CPU percentage.
        let current = match current.as_ref().and_then(Value::as_array) {
            Some(list) => list.iter().map(|m| to_v2(STATUSES, m)).collect(),
            None => present(status, "/currentCPUUtilizationPercentage")
                .map(|c| {
                    vec![json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}})]
                })
                .unwrap_or_default(),
        };
        if !current.is_empty() {
            converted.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = conditions {
            converted.insert("conditions".into(), conditions);
        }
        out["status"] = Value::Object(converted);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_round_trips_through_storage() {
        let written = json!({"apiVersion": V1, "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
                     "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 35}});
        let stored = v1_to_v2(&written);
        assert_eq!(stored["apiVersion"], V2);
        assert_eq!(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        assert_eq!(stored["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"], 35);
        assert!(stored["spec"].get("targetCPUUtilizationPercentage").is_none());
        let mut read = v2_to_v1(&stored);
        // Reading through v1 records the current metrics in their annotation.
        let annotation = read["metadata"]["annotations"].as_object_mut().unwrap().remove(CURRENT_METRICS).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(annotation.as_str().unwrap()).unwrap(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 35}}])
        );
        read["metadata"].as_object_mut().unwrap().remove("annotations");
        assert_eq!(read, written);
    }

    #[test]
    fn what_only_v2_says_travels_in_annotations_and_comes_back() {
        let stored = json!({"apiVersion": V2, "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "annotations": {"team": "a"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4,
                     "metrics": [
                         {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                         {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                         {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}},
                     ],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
            "status": {"currentReplicas": 1, "desiredReplicas": 1,
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 20, "averageValue": "100m"}}}],
                       "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}});
        let v1 = v2_to_v1(&stored);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        let annotations = &v1["metadata"]["annotations"];
        assert_eq!(annotations["team"], "a");
        let others: Value = serde_json::from_str(annotations[METRICS].as_str().unwrap()).unwrap();
        assert_eq!(
            others,
            json!([
                {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}},
                {"type": "External", "external": {"metricName": "queue", "targetValue": "30"}},
            ])
        );
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 20);
        // Written back through v1 unchanged, it is stored as it was (the CPU metric last, as upstream).
        let back = v1_to_v2(&v1);
        assert_eq!(back["metadata"]["annotations"], json!({"team": "a"}));
        assert_eq!(back["spec"]["behavior"], stored["spec"]["behavior"]);
        assert_eq!(back["status"], stored["status"]);
        let metrics = back["spec"]["metrics"].as_array().unwrap();
        assert_eq!(
            metrics,
            &[
                stored["spec"]["metrics"][0].clone(),
                stored["spec"]["metrics"][2].clone(),
                stored["spec"]["metrics"][1].clone()
            ]
        );
    }
}
