//! Bodies captured from kubectl 1.32 (`kubectl create ...` against a server answering
//! 415), decoded to the JSON kubectl 1.31 sends for the same commands.

use serde_json::json;

use super::{ProtobufError, decode};

#[test]
fn configmap() {
    let v = decode(include_bytes!("testdata/configmap.bin")).unwrap();
    assert_eq!(v, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}));
}

#[test]
fn secret_data_is_base64() {
    let v = decode(include_bytes!("testdata/secret.bin")).unwrap();
    assert_eq!(v["data"], json!({"k": "dg=="}));
    assert_eq!(v["metadata"]["name"], "sec");
}

#[test]
fn namespace_and_service_account() {
    let ns = decode(include_bytes!("testdata/namespace.bin")).unwrap();
    assert_eq!((ns["kind"].as_str(), ns["metadata"]["name"].as_str()), (Some("Namespace"), Some("team-a")));
    let sa = decode(include_bytes!("testdata/serviceaccount.bin")).unwrap();
    assert_eq!(sa["metadata"]["name"], "sa");
}

#[test]
fn deployment_with_template() {
    let v = decode(include_bytes!("testdata/deployment.bin")).unwrap();
    assert_eq!(v["apiVersion"], "apps/v1");
    assert_eq!(v["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(v["spec"]["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(v["spec"]["template"]["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"],
        json!([{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}], "resources": {}}])
    );
    assert_eq!(v["spec"]["strategy"], json!({}));
}

#[test]
fn service_ports_with_int_or_string() {
    let v = decode(include_bytes!("testdata/service.bin")).unwrap();
    assert_eq!(v["spec"]["type"], "NodePort");
    assert_eq!(v["spec"]["ports"], json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]));
    assert_eq!(v["spec"]["selector"], json!({"app": "svc"}));
}

#[test]
fn job_command() {
    let v = decode(include_bytes!("testdata/job.bin")).unwrap();
    let c = &v["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"], json!(["sleep", "1"]));
    assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Never");
}

#[test]
fn errors() {
    assert_eq!(decode(b"{}"), Err(ProtobufError::NoMagic));
    assert_eq!(decode(b"k8s\0\x0a\x05"), Err(ProtobufError::Malformed));
    assert_eq!(decode(b"k8s\0"), Err(ProtobufError::NoKind));
    assert!(matches!(decode(b"k8s\0\x0a\x0a\x0a\x02v1\x12\x04Nope"), Err(ProtobufError::UnknownKind { .. })));
}

#[test]
fn every_field_number_names_a_schema_property() {
    let defs = crate::openapi::all_definitions();
    for (key, fields) in super::fields::FIELDS {
        // `<definition>#<Go type>` tables name properties of the parent definition.
        let definition = key.split('#').next().unwrap_or(key);
        let Some(schema) = defs.get(definition) else { continue };
        for (number, property) in *fields {
            if property.starts_with("$inline:") {
                continue;
            }
            assert!(
                schema.pointer(&format!("/properties/{property}")).is_some(),
                "{key} field {number} names {property}, which {definition} does not have"
            );
        }
    }
    for kind in ["io.k8s.api.rbac.v1.Role", "io.k8s.api.batch.v1.CronJob", "io.k8s.api.authentication.v1.TokenRequest"] {
        assert!(super::fields::FIELDS.iter().any(|(k, _)| k == &kind), "{kind}");
    }
}
