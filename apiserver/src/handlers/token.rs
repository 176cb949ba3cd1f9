//! `serviceaccounts/<name>/token`: a `TokenRequest` is answered with a signed
//! service-account token (see [`crate::authn::tokens`]) that this server then accepts
//! as a bearer token (`kubectl create token`). Nothing is stored.

use http::HeaderMap;
use serde_json::{Value, json};
use waggle_apimachinery::registry;

use crate::authn::tokens::{Grant, ISSUER};
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::{ApiError, Cause};
use crate::target::Target;
use crate::{body, keys, objects};

/// Upstream's default lifetime (one hour) and bounds of a requested token.
const DEFAULT_SECONDS: i64 = 3600;
const MIN_SECONDS: i64 = 600;
const MAX_SECONDS: i64 = 1 << 32;

/// The kinds a token may be bound to (its lifetime then ends with the object's).
const BINDABLE: &[&str] = &["Pod", "Node", "Secret"];

fn check_kind(request: &Value) -> Result<(), ApiError> {
    body::check_request_kind(request, "TokenRequest", &["authentication.k8s.io/v1"])
}

async fn read(state: &ApiState, plural: &str, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
    let resource = registry::find("", "v1", plural).expect("core kinds are served");
    let key = keys::object_key(resource, namespace, name);
    match state.store.get(&key).await.map_err(ApiError::from_store)? {
        Some(kv) => objects::decode(&kv),
        None => Err(ApiError::not_found("", plural, name)),
    }
}

fn invalid(name: &str, cause: Cause) -> ApiError {
    ApiError::invalid("TokenRequest", name, vec![cause])
}

pub async fn create(
    state: &ApiState,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Reply, ApiError> {
    let mut request = body::parse(headers, bytes)?;
    check_kind(&request)?;
    let dry_run = params.dry_run()?;
    let namespace = target.namespace.as_deref();
    let name = target.item_name();
    let account = read(state, "serviceaccounts", namespace, name).await?;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let seconds = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(DEFAULT_SECONDS);
    if seconds < MIN_SECONDS {
        return Err(invalid(name, Cause::invalid("spec.expirationSeconds", &json!(seconds), "may not specify a duration less than 10 minutes")));
    }
    if seconds > MAX_SECONDS {
        return Err(invalid(name, Cause::invalid("spec.expirationSeconds", &json!(seconds), "may not specify a duration larger than 2^32 seconds")));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(ISSUER.to_owned());
    }
    let bound = match spec.get("boundObjectRef").filter(|b| !b.is_null()) {
        Some(reference) => Some(bound_object(state, namespace, reference, name).await?),
        None => None,
    };
    let issued_at = jiff::Timestamp::now().as_second();
    let grant = Grant {
        namespace: namespace.unwrap_or_default().to_owned(),
        name: name.to_owned(),
        uid: objects::meta_str(&account, "uid").unwrap_or_default().to_owned(),
        audiences: audiences.clone(),
        issued_at,
        expires_at: issued_at + seconds,
        bound,
    };
    let token = if dry_run {
        String::new()
    } else {
        state
            .tokens
            .issue(&grant, &uuid::Uuid::new_v4().to_string())
            .map_err(|e| ApiError::internal(format!("signing the token: {e}")))?
    };
    let meta = objects::meta_mut(&mut request);
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(namespace));
    meta.entry("creationTimestamp").or_insert(Value::Null);
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(seconds);
    request["spec"]["boundObjectRef"] = spec.get("boundObjectRef").cloned().unwrap_or(Value::Null);
    request["status"] = json!({"token": token, "expirationTimestamp": objects::timestamp_in(seconds)});
    Ok(Reply::created(request))
}

/// The `(kind, name, uid)` of the object a token is bound to, which must exist (and
/// have the given uid, if one is given).
async fn bound_object(
    state: &ApiState,
    namespace: Option<&str>,
    reference: &Value,
    token_name: &str,
) -> Result<(String, String, String), ApiError> {
    let kind = reference.get("kind").and_then(Value::as_str).unwrap_or_default();
    let plural = match kind {
        "Pod" => "pods",
        "Node" => "nodes",
        "Secret" => "secrets",
        _ => {
            let cause = Cause::not_supported("spec.boundObjectRef.kind", &json!(kind), BINDABLE);
            return Err(invalid(token_name, cause));
        }
    };
    let api_version = reference.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
    if api_version != "v1" {
        let cause = Cause::not_supported("spec.boundObjectRef.apiVersion", &json!(api_version), &["v1"]);
        return Err(invalid(token_name, cause));
    }
    let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
    let object = read(state, plural, namespace, name).await?;
    let uid = objects::meta_str(&object, "uid").unwrap_or_default().to_owned();
    if let Some(expected) = reference.get("uid").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        if expected != uid {
            return Err(ApiError::Conflict {
                message: format!(
                    "the UID in the bound object reference ({expected}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
                kind: plural.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    Ok((kind.to_owned(), name.to_owned(), uid))
}
