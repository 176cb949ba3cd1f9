//! The pods a Job creates from its template.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::indexes::COMPLETION_INDEX;
use super::tracking::FINALIZER;

/// The labels that tie a pod to its Job (with their pre-1.27 spellings).
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";

/// The variable through which an Indexed Job's containers learn their index.
const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

/// A new pod of `job`: the template's metadata and spec, the Job's labels (unless it
/// selects its pods by a manual selector), the tracking finalizer and the Job as its
/// controller; with `index`, the completion index as annotation, label, hostname and
/// `JOB_COMPLETION_INDEX`.
pub fn pod(job: &Job, index: Option<i32>) -> Pod {
    let spec = job.spec.clone().unwrap_or_default();
    let template = spec.template;
    let meta = template.metadata.unwrap_or_default();
    let name = job.name_any();
    let mut labels = meta.labels.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    if spec.manual_selector != Some(true) {
        let uid = job.uid().unwrap_or_default();
        for (key, value) in
            [(CONTROLLER_UID, &uid), (LEGACY_CONTROLLER_UID, &uid), (JOB_NAME, &name), (LEGACY_JOB_NAME, &name)]
        {
            labels.entry(key.to_owned()).or_insert_with(|| value.clone());
        }
    }
    let mut finalizers = meta.finalizers.unwrap_or_default();
    finalizers.push(FINALIZER.to_owned());
    let mut pod_spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(index) => {
            labels.insert(COMPLETION_INDEX.to_owned(), index.to_string());
            annotations.insert(COMPLETION_INDEX.to_owned(), index.to_string());
            if pod_spec.hostname.is_none() {
                pod_spec.hostname = Some(format!("{name}-{index}"));
            }
            let variable = EnvVar {
                name: INDEX_VARIABLE.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                    }),
                    ..EnvVarSource::default()
                }),
            };
            let init = pod_spec.init_containers.iter_mut().flatten();
            for container in pod_spec.containers.iter_mut().chain(init) {
                let env = container.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == INDEX_VARIABLE) {
                    env.push(variable.clone());
                }
            }
            format!("{name}-{index}-")
        }
        None => format!("{name}-"),
    };
    let owner = job.controller_owner_ref(&()).expect("a stored Job has a name and uid");
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(manual: bool) -> Job {
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"},
            "spec": {
                "manualSelector": manual,
                "selector": {"matchLabels": {"app": "pi"}},
                "template": {
                    "metadata": {"labels": {"app": "pi"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }))
        .unwrap()
    }

    #[test]
    fn pods_carry_the_job_labels_finalizer_and_owner() {
        let pod = pod(&job(false), None);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-"));
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels[CONTROLLER_UID], "u-1");
        assert_eq!(labels["controller-uid"], "u-1");
        assert_eq!(labels[JOB_NAME], "pi");
        assert_eq!(labels["job-name"], "pi");
        assert_eq!(labels["app"], "pi");
        assert_eq!(pod.metadata.finalizers.unwrap(), [FINALIZER]);
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("Job", "u-1", Some(true)));
        assert!(pod.spec.unwrap().containers[0].env.is_none());
    }

    #[test]
    fn manual_selectors_keep_the_template_labels() {
        let labels = pod(&job(true), None).metadata.labels.unwrap();
        assert_eq!(labels.into_iter().collect::<Vec<_>>(), [("app".to_string(), "pi".to_string())]);
    }

    #[test]
    fn indexed_pods_know_their_index() {
        let pod = pod(&job(false), Some(2));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(pod.metadata.annotations.unwrap()[COMPLETION_INDEX], "2");
        assert_eq!(pod.metadata.labels.unwrap()[COMPLETION_INDEX], "2");
        let spec = pod.spec.unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        let env = spec.containers[0].env.as_ref().unwrap();
        let field = env[0].value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
        assert_eq!(
            (env[0].name.as_str(), field.field_path.as_str()),
            (INDEX_VARIABLE, "metadata.annotations['batch.kubernetes.io/job-completion-index']")
        );
    }
}
