//! `pods/binding`: the scheduler's write of `spec.nodeName`.

use http::HeaderMap;
use serde_json::{Value, json};

use super::write::{Mode, Update};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;

pub async fn create(state: &ApiState, target: &Target, params: &Params, headers: &HeaderMap, bytes: &[u8]) -> Result<Reply, ApiError> {
    let binding = body::parse(headers, bytes)?;
    let pod_name = target.item_name();
    if let Some(name) = binding.pointer("/metadata/name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        if name != pod_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({pod_name})"
            )));
        }
    }
    let node = binding.pointer("/target/name").and_then(Value::as_str).unwrap_or_default().to_owned();
    if node.is_empty() {
        return Err(ApiError::invalid("Binding", pod_name, vec![Cause::required("target.name")]));
    }
    if binding.pointer("/target/kind").and_then(Value::as_str).is_some_and(|k| !k.is_empty() && k != "Node") {
        return Err(ApiError::invalid(
            "Binding",
            pod_name,
            vec![Cause::not_supported("target.kind", &binding["target"]["kind"], &["Node", "<empty>"])],
        ));
    }
    let uid = binding.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_owned);
    let update = Update {
        state,
        resource: target.resource,
        namespace: target.namespace.as_deref(),
        name: pod_name,
        precondition: None,
        mode: Mode::Raw,
        dry_run: params.dry_run()?,
    };
    update
        .run(|pod| {
            if crate::objects::is_deleting(pod) {
                return Err(ApiError::Conflict {
                    message: format!("pod {pod_name} is being deleted, cannot be assigned to a host"),
                    kind: "pods".into(),
                    name: pod_name.into(),
                });
            }
            if let Some(uid) = uid.as_deref() {
                if crate::objects::meta_str(pod, "uid") != Some(uid) {
                    return Err(ApiError::Conflict {
                        message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", crate::objects::meta_str(pod, "uid").unwrap_or_default()),
                        kind: "pods".into(),
                        name: pod_name.into(),
                    });
                }
            }
            if let Some(current) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(ApiError::Conflict {
                    message: format!("pod {pod_name} is already assigned to node \"{current}\""),
                    kind: "pods".into(),
                    name: pod_name.into(),
                });
            }
            let mut bound = pod.clone();
            bound["spec"]["nodeName"] = json!(node);
            if let Some(annotations) = binding.pointer("/metadata/annotations").and_then(Value::as_object) {
                let meta = crate::objects::meta_mut(&mut bound);
                let target = meta.entry("annotations").or_insert_with(|| json!({}));
                for (k, v) in annotations {
                    target[k] = v.clone();
                }
            }
            let conditions = bound["status"].as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
            if let Some(Value::Array(list)) = conditions {
                list.retain(|c| c.get("type") != Some(&json!("PodScheduled")));
                list.push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": crate::objects::now(), "lastProbeTime": null}));
            }
            Ok(bound)
        })
        .await?;
    Ok(Reply::created(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201,
    })))
}
