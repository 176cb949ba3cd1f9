//! CertificateSigningRequests (`certificates.k8s.io/v1`) as upstream's registry
//! strategies keep them: the requestor is who created the request, whatever the body
//! said; the main resource changes only metadata; the `approval` subresource changes
//! only the conditions (`kubectl certificate approve|deny` write there); `status` is
//! where a signer puts the certificate. Conditions get their timestamps from the
//! server, and validation holds upstream's rules (see [`validate`]).

use serde_json::{Map, Value, json};
use waggle_apimachinery::registry::Resource;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::auth::User;
use crate::objects;
use crate::status::Cause;
use crate::validation::{Errors, at, items};

/// The key usages a request may name (`KeyUsage` in `certificates/v1`).
const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// The shortest validity a request may ask for (`spec.expirationSeconds`).
const MIN_EXPIRATION_SECONDS: i64 = 600;

pub fn is_signing_request(resource: &Resource) -> bool {
    resource.group == "certificates.k8s.io" && resource.kind == "CertificateSigningRequest"
}

/// On create: the request names its requestor as authenticated (none outside a
/// request), and starts with no status.
pub fn record_requestor(obj: &mut Value, user: Option<&User>) {
    let spec = obj
        .as_object_mut()
        .expect("a parsed object")
        .entry("spec")
        .or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for field in ["username", "uid", "groups", "extra"] {
        spec.remove(field);
    }
    let Some(user) = user else { return };
    spec.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        let extra: Map<String, Value> = user
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        spec.insert("extra".into(), Value::Object(extra));
    }
}

/// A write of the main resource changes metadata only: spec stays as created.
pub fn keep_spec(new: &mut Value, old: &Value) {
    match old.get("spec") {
        Some(spec) => new["spec"] = spec.clone(),
        None => {
            if let Some(map) = new.as_object_mut() {
                map.remove("spec");
            }
        }
    }
}

/// A write of the `approval` subresource: the stored request with `new`'s conditions.
pub fn prepare_approval(new: &Value, old: &Value) -> Value {
    let mut result = old.clone();
    let conditions = new.pointer("/status/conditions").cloned();
    let status = result
        .as_object_mut()
        .expect("a stored object")
        .entry("status")
        .or_insert_with(|| json!({}));
    match (status.as_object_mut(), conditions) {
        (Some(status), Some(conditions)) => {
            status.insert("conditions".into(), conditions);
        }
        (Some(status), None) => {
            status.remove("conditions");
        }
        (None, _) => {}
    }
    result
}

/// Conditions the writer left without times get them: `lastUpdateTime` now, and
/// `lastTransitionTime` from the stored condition of the same type and status, else now.
pub fn stamp_conditions(new: &mut Value, old: Option<&Value>) {
    let now = json!(objects::now());
    let previous: Vec<Value> = old
        .map(|o| items(o, "/status/conditions").to_vec())
        .unwrap_or_default();
    let Some(conditions) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for condition in conditions.iter_mut().filter_map(Value::as_object_mut) {
        if condition
            .get("status")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            condition.insert("status".into(), json!("True"));
        }
        if condition.get("lastUpdateTime").is_none_or(Value::is_null) {
            condition.insert("lastUpdateTime".into(), now.clone());
        }
        if condition
            .get("lastTransitionTime")
            .is_none_or(Value::is_null)
        {
            let same = previous.iter().find(|p| {
                p.get("type") == condition.get("type")
                    && p.get("status") == condition.get("status")
                    && p.get("lastTransitionTime").is_some_and(|t| !t.is_null())
            });
            let since = same
                .and_then(|p| p.get("lastTransitionTime"))
                .cloned()
                .unwrap_or_else(|| now.clone());
            condition.insert("lastTransitionTime".into(), since);
        }
    }
}

/// Whether `text` is one or more PEM blocks of `label`, each of which `parses`.
fn pem_blocks(text: &[u8], label: &str, parses: impl Fn(&[u8]) -> bool) -> Result<(), String> {
    let mut count = 0;
    for pem in Pem::iter_from_buffer(text) {
        let pem = pem.map_err(|e| format!("error decoding PEM: {e}"))?;
        if pem.label != label {
            return Err(format!("PEM block type must be {label}"));
        }
        if !parses(&pem.contents) {
            return Err(format!("invalid {label}"));
        }
        count += 1;
    }
    if count == 0 {
        return Err(format!("PEM block type must be {label}"));
    }
    Ok(())
}

/// The bytes of a base64 `[]byte` field.
fn bytes(value: &Value) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str()?)
        .ok()
}

/// Upstream's checks of a request (`ValidateCertificateSigningRequest{Create,Update}`).
pub fn validate(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let spec = at(obj, "/spec");
    let request = spec.get("request").filter(|r| !r.is_null());
    match request.map(|r| (r, bytes(r))) {
        None => errors.push(Cause::required("spec.request")),
        Some((r, None)) => errors.push(Cause::invalid("spec.request", r, "must be base64-encoded")),
        Some((r, Some(der))) => {
            let parsed = pem_blocks(&der, "CERTIFICATE REQUEST", |block| {
                X509CertificationRequest::from_der(block).is_ok()
            });
            if let Err(detail) = parsed {
                errors.push(Cause::invalid("spec.request", r, detail));
            }
        }
    }
    match spec
        .get("signerName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        None => errors.push(Cause::required("spec.signerName")),
        Some(signer) => {
            if let Err(detail) = signer_name(signer) {
                errors.push(Cause::invalid("spec.signerName", &json!(signer), detail));
            }
        }
    }
    if let Some(seconds) = spec.get("expirationSeconds").and_then(Value::as_i64) {
        if seconds < MIN_EXPIRATION_SECONDS {
            let detail = "may not specify a duration less than 600 seconds (10 minutes)";
            errors.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(seconds),
                detail,
            ));
        }
    }
    let usages = items(obj, "/spec/usages");
    if usages.is_empty() {
        errors.push(Cause::required("spec.usages"));
    }
    for (i, usage) in usages.iter().enumerate() {
        let field = format!("spec.usages[{i}]");
        if !usage.as_str().is_some_and(|u| USAGES.contains(&u)) {
            errors.push(Cause::not_supported(&field, usage, USAGES));
        } else if usages[..i].contains(usage) {
            errors.push(Cause::duplicate(&field, usage));
        }
    }
    conditions(obj, old, errors);
    if let Some(certificate) = obj.pointer("/status/certificate").filter(|c| !c.is_null()) {
        let parsed = bytes(certificate)
            .ok_or_else(|| "must be base64-encoded".to_owned())
            .and_then(|der| {
                pem_blocks(&der, "CERTIFICATE", |block| {
                    X509Certificate::from_der(block).is_ok()
                })
            });
        match parsed {
            Err(detail) if !certificate.as_str().is_some_and(str::is_empty) => {
                errors.push(Cause::invalid(
                    "status.certificate",
                    &json!("<certificate data>"),
                    detail,
                ));
            }
            _ => {}
        }
        let before = old
            .and_then(|o| o.pointer("/status/certificate"))
            .filter(|c| c.as_str().is_some_and(|c| !c.is_empty()));
        if before.is_some_and(|b| b != certificate) {
            errors.push(Cause::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
}

/// A signer name: a domain-prefixed path, `example.com/signer-name`.
fn signer_name(name: &str) -> Result<(), String> {
    let (domain, path) = name
        .split_once('/')
        .ok_or("must be a fully qualified domain and path of the form 'example.com/signer-name'")?;
    if domain.is_empty() || path.is_empty() || !domain.contains('.') {
        return Err(
            "must be a fully qualified domain and path of the form 'example.com/signer-name'"
                .into(),
        );
    }
    if let Err(e) = crate::validation::names::dns1123_subdomain(domain) {
        return Err(format!("validating domain component: {e}"));
    }
    Ok(())
}

fn conditions(obj: &Value, old: Option<&Value>, errors: &mut Errors) {
    let list = items(obj, "/status/conditions");
    let mut seen: Vec<&str> = Vec::new();
    for (i, condition) in list.iter().enumerate() {
        let field = format!("status.conditions[{i}]");
        let kind = condition
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.is_empty() {
            errors.push(Cause::required(format!("{field}.type")));
        }
        let status = condition
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let allowed: &[&str] = if matches!(kind, "Approved" | "Denied") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if !allowed.contains(&status) {
            // Upstream names only "True" as supported, whatever the type.
            errors.push(Cause::not_supported(
                format!("{field}.status"),
                &json!(status),
                &["True"],
            ));
        }
        let other = match kind {
            "Approved" => Some("Denied"),
            "Denied" => Some("Approved"),
            _ => None,
        };
        if other.is_some_and(|o| seen.contains(&o)) {
            let detail = "Approved and Denied conditions are mutually exclusive";
            errors.push(Cause::invalid(
                format!("{field}.type"),
                &json!(kind),
                detail,
            ));
        }
        if seen.contains(&kind) {
            errors.push(Cause::duplicate(format!("{field}.type"), &json!(kind)));
        }
        seen.push(kind);
    }
    for kind in ["Approved", "Denied"] {
        let had = old.is_some_and(|o| {
            items(o, "/status/conditions")
                .iter()
                .any(|c| c["type"] == kind)
        });
        if had && !seen.contains(&kind) {
            errors.push(Cause::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type {kind:?}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(obj: &Value, old: Option<&Value>) -> Vec<String> {
        let mut errors = Errors::default();
        validate(obj, old, &mut errors);
        errors
            .0
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn the_requestor_is_who_asked() {
        let mut csr = json!({"spec": {"username": "forged", "groups": ["system:masters"]}});
        let mut user = User::new("alice", vec!["dev".into()]);
        user.extra.push(("scopes".into(), vec!["a".into()]));
        record_requestor(&mut csr, Some(&user));
        assert_eq!(
            csr["spec"],
            json!({"username": "alice", "groups": ["dev"], "extra": {"scopes": ["a"]}})
        );
        record_requestor(&mut csr, None);
        assert_eq!(csr["spec"], json!({}));
    }

    #[test]
    fn approval_changes_only_the_conditions() {
        let old = json!({"spec": {"signerName": "a.io/b"}, "status": {"certificate": "Y2VydA=="}});
        let new = json!({"spec": {"signerName": "x.io/y"}, "status": {"certificate": null, "conditions": [{"type": "Approved"}]}});
        let mut result = prepare_approval(&new, &old);
        assert_eq!(result["spec"], old["spec"]);
        assert_eq!(result["status"]["certificate"], "Y2VydA==");
        stamp_conditions(&mut result, Some(&old));
        let condition = &result["status"]["conditions"][0];
        assert_eq!(condition["status"], "True");
        assert!(
            condition["lastUpdateTime"].is_string() && condition["lastTransitionTime"].is_string()
        );
    }

    #[test]
    fn decisions_are_exclusive_and_stay() {
        let approved = json!({"type": "Approved", "status": "True"});
        let denied = json!({"type": "Denied", "status": "True"});
        let base = |conditions: Value| {
            json!({"spec": {"signerName": "example.com/x", "usages": ["client auth"], "request": null},
                   "status": {"conditions": conditions}})
        };
        let both = validated(&base(json!([approved, denied])), None);
        assert!(both.contains(&"status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive".to_owned()), "{both:?}");
        let removed = validated(&base(json!([])), Some(&base(json!([approved]))));
        assert!(removed.contains(&"status.conditions: Forbidden: updates may not remove a condition of type \"Approved\"".to_owned()), "{removed:?}");
        let unsure = validated(
            &base(json!([{"type": "Approved", "status": "False"}])),
            None,
        );
        assert!(unsure.contains(&"status.conditions[0].status: Unsupported value: \"False\": supported values: \"True\"".to_owned()), "{unsure:?}");
    }
}
