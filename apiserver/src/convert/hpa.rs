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

/// An object of the entries whose value is present.
fn object(entries: &[(&str, Option<&Value>)]) -> Value {
    Value::Object(entries.iter().filter_map(|(k, v)| Some(((*k).to_owned(), (*v)?.clone()))).collect())
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && metric.pointer("/resource/target/type").and_then(Value::as_str) == Some("Utilization")
}

/// A `v2` MetricSpec in `v1`'s format (`metricName`, `targetAverageValue`, ...).
fn spec_to_v1(m: &Value) -> Value {
    let at = |p: &str| present(m, p);
    let source = match m["type"].as_str().unwrap_or_default() {
        "Object" => (
            "object",
            object(&[
                ("target", at("/object/describedObject")),
                ("metricName", at("/object/metric/name")),
                ("targetValue", at("/object/target/value")),
                ("selector", at("/object/metric/selector")),
                ("averageValue", at("/object/target/averageValue")),
            ]),
        ),
        "Pods" => (
            "pods",
            object(&[
                ("metricName", at("/pods/metric/name")),
                ("targetAverageValue", at("/pods/target/averageValue")),
                ("selector", at("/pods/metric/selector")),
            ]),
        ),
        "Resource" => (
            "resource",
            object(&[
                ("name", at("/resource/name")),
                ("targetAverageUtilization", at("/resource/target/averageUtilization")),
                ("targetAverageValue", at("/resource/target/averageValue")),
            ]),
        ),
        "ContainerResource" => (
            "containerResource",
            object(&[
                ("name", at("/containerResource/name")),
                ("targetAverageUtilization", at("/containerResource/target/averageUtilization")),
                ("targetAverageValue", at("/containerResource/target/averageValue")),
                ("container", at("/containerResource/container")),
            ]),
        ),
        "External" => (
            "external",
            object(&[
                ("metricName", at("/external/metric/name")),
                ("metricSelector", at("/external/metric/selector")),
                ("targetValue", at("/external/target/value")),
                ("targetAverageValue", at("/external/target/averageValue")),
            ]),
        ),
        _ => return m.clone(),
    };
    json!({"type": m["type"], source.0: source.1})
}

/// A `v1`-format MetricSpec back in `v2`'s, with the target type upstream infers.
fn spec_to_v2(m: &Value) -> Value {
    let at = |p: &str| present(m, p);
    let source = match m["type"].as_str().unwrap_or_default() {
        "Object" => {
            let kind = if at("/object/averageValue").is_some() { "AverageValue" } else { "Value" };
            (
                "object",
                object(&[
                    ("describedObject", at("/object/target")),
                    (
                        "metric",
                        Some(&object(&[("name", at("/object/metricName")), ("selector", at("/object/selector"))])),
                    ),
                    (
                        "target",
                        Some(&object(&[
                            ("type", Some(&json!(kind))),
                            ("value", at("/object/targetValue")),
                            ("averageValue", at("/object/averageValue")),
                        ])),
                    ),
                ]),
            )
        }
        "Pods" => (
            "pods",
            object(&[
                ("metric", Some(&object(&[("name", at("/pods/metricName")), ("selector", at("/pods/selector"))]))),
                (
                    "target",
                    Some(&object(&[
                        ("type", Some(&json!("AverageValue"))),
                        ("averageValue", at("/pods/targetAverageValue")),
                    ])),
                ),
            ]),
        ),
        source @ ("Resource" | "ContainerResource") => {
            let key = if source == "Resource" { "resource" } else { "containerResource" };
            let utilization = at(&format!("/{key}/targetAverageUtilization"));
            let kind = if utilization.is_some() { "Utilization" } else { "AverageValue" };
            (
                key,
                object(&[
                    ("name", at(&format!("/{key}/name"))),
                    ("container", at(&format!("/{key}/container"))),
                    (
                        "target",
                        Some(&object(&[
                            ("type", Some(&json!(kind))),
                            ("averageUtilization", utilization),
                            ("averageValue", at(&format!("/{key}/targetAverageValue"))),
                        ])),
                    ),
                ]),
            )
        }
        "External" => {
            let kind = if at("/external/targetValue").is_some() { "Value" } else { "AverageValue" };
            (
                "external",
                object(&[
                    (
                        "metric",
                        Some(&object(&[
                            ("name", at("/external/metricName")),
                            ("selector", at("/external/metricSelector")),
                        ])),
                    ),
                    (
                        "target",
                        Some(&object(&[
                            ("type", Some(&json!(kind))),
                            ("value", at("/external/targetValue")),
                            ("averageValue", at("/external/targetAverageValue")),
                        ])),
                    ),
                ]),
            )
        }
        _ => return m.clone(),
    };
    json!({"type": m["type"], source.0: source.1})
}

/// A `v2` MetricStatus in `v1`'s format (`currentAverageValue`, ...).
fn status_to_v1(m: &Value) -> Value {
    let at = |p: &str| present(m, p);
    let source = match m["type"].as_str().unwrap_or_default() {
        "Object" => (
            "object",
            object(&[
                ("target", at("/object/describedObject")),
                ("metricName", at("/object/metric/name")),
                ("currentValue", at("/object/current/value")),
                ("selector", at("/object/metric/selector")),
                ("averageValue", at("/object/current/averageValue")),
            ]),
        ),
        "Pods" => (
            "pods",
            object(&[
                ("metricName", at("/pods/metric/name")),
                ("currentAverageValue", at("/pods/current/averageValue")),
                ("selector", at("/pods/metric/selector")),
            ]),
        ),
        "Resource" => (
            "resource",
            object(&[
                ("name", at("/resource/name")),
                ("currentAverageUtilization", at("/resource/current/averageUtilization")),
                ("currentAverageValue", at("/resource/current/averageValue")),
            ]),
        ),
        "ContainerResource" => (
            "containerResource",
            object(&[
                ("name", at("/containerResource/name")),
                ("currentAverageUtilization", at("/containerResource/current/averageUtilization")),
                ("currentAverageValue", at("/containerResource/current/averageValue")),
                ("container", at("/containerResource/container")),
            ]),
        ),
        "External" => (
            "external",
            object(&[
                ("metricName", at("/external/metric/name")),
                ("metricSelector", at("/external/metric/selector")),
                ("currentValue", at("/external/current/value")),
                ("currentAverageValue", at("/external/current/averageValue")),
            ]),
        ),
        _ => return m.clone(),
    };
    json!({"type": m["type"], source.0: source.1})
}

/// A `v1`-format MetricStatus back in `v2`'s.
fn status_to_v2(m: &Value) -> Value {
    let at = |p: &str| present(m, p);
    let metric = |name: &str, selector: &str| object(&[("name", at(name)), ("selector", at(selector))]);
    let source = match m["type"].as_str().unwrap_or_default() {
        "Object" => (
            "object",
            object(&[
                ("describedObject", at("/object/target")),
                ("metric", Some(&metric("/object/metricName", "/object/selector"))),
                (
                    "current",
                    Some(&object(&[
                        ("value", at("/object/currentValue")),
                        ("averageValue", at("/object/averageValue")),
                    ])),
                ),
            ]),
        ),
        "Pods" => (
            "pods",
            object(&[
                ("metric", Some(&metric("/pods/metricName", "/pods/selector"))),
                ("current", Some(&object(&[("averageValue", at("/pods/currentAverageValue"))]))),
            ]),
        ),
        source @ ("Resource" | "ContainerResource") => {
            let key = if source == "Resource" { "resource" } else { "containerResource" };
            (
                key,
                object(&[
                    ("name", at(&format!("/{key}/name"))),
                    ("container", at(&format!("/{key}/container"))),
                    (
                        "current",
                        Some(&object(&[
                            ("averageUtilization", at(&format!("/{key}/currentAverageUtilization"))),
                            ("averageValue", at(&format!("/{key}/currentAverageValue"))),
                        ])),
                    ),
                ]),
            )
        }
        "External" => (
            "external",
            object(&[
                ("metric", Some(&metric("/external/metricName", "/external/metricSelector"))),
                (
                    "current",
                    Some(&object(&[
                        ("value", at("/external/currentValue")),
                        ("averageValue", at("/external/currentAverageValue")),
                    ])),
                ),
            ]),
        ),
        _ => return m.clone(),
    };
    json!({"type": m["type"], source.0: source.1})
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
    let others: Vec<Value> = metrics.iter().filter(|m| !is_cpu_utilization(m)).map(spec_to_v1).collect();
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
            annotations.push((CURRENT_METRICS, Value::Array(current.iter().map(status_to_v1).collect()).to_string()));
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
            Some(list) => list.iter().map(status_to_v2).collect(),
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
