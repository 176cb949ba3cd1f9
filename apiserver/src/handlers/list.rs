//! GET of a collection: selectors, `limit`/`continue` pagination and
//! `resourceVersion`/`resourceVersionMatch` semantics, as upstream.

use base64::Engine;
use serde_json::{Map, Value, json};
use waggle_store::{KeyValue, ListOptions, Revision, StoreError};

use crate::params::Params;
use crate::reply::Reply;
use crate::selectors::Filter;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;
use crate::{keys, objects, raw};

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// The most objects read from the store at once: a large collection is read in
/// chunks at one revision, so no store response (etcd's are capped at 4 MiB by
/// default on the client) nor the server's memory has to hold all of it at once.
const CHUNK: u64 = 1000;

/// The opaque pagination token: the list's revision and the last key returned.
pub fn encode_continue(revision: Revision, last_key_in_prefix: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key_in_prefix});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

pub fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let revision = value
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = value.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((revision, start.to_owned()))
}

/// Which revision a list reads at, from `resourceVersion` and `resourceVersionMatch`.
async fn list_revision(
    state: &ApiState,
    params: &Params,
    paged: bool,
) -> Result<Option<Revision>, ApiError> {
    let rv = params.value("resourceVersion");
    let matching = params.value("resourceVersionMatch");
    match (rv, matching) {
        (None, Some(_)) => Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (None, None) | (Some("0"), None | Some("NotOlderThan")) => Ok(None),
        (Some(rv), Some("Exact")) => Ok(Some(objects::parse_resource_version(rv)?)),
        (Some(rv), None) if paged => Ok(Some(objects::parse_resource_version(rv)?)),
        (Some(rv), None | Some("NotOlderThan")) => {
            let wanted = objects::parse_resource_version(rv)?;
            let current = state
                .store
                .current_revision()
                .await
                .map_err(ApiError::from_store)?;
            if wanted > current {
                return Err(ApiError::from_store(StoreError::FutureRevision {
                    requested: wanted,
                    current,
                }));
            }
            Ok(None)
        }
        (Some(_), Some(other)) => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
        ))),
    }
}

/// One page of a list, each item kept as `keep` made it.
pub struct Page<T = Value> {
    pub items: Vec<T>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<u64>,
}

/// Reads the (filtered) collection a request addresses.
pub async fn read_page(
    state: &ApiState,
    target: &Target,
    params: &Params,
    filter: &Filter,
) -> Result<Page, ApiError> {
    read_page_with(state, target, params, filter, |obj| obj).await
}

/// [`read_page`], turning each matching object into a `T` as soon as it is read (so a
/// large list need not hold every object as a JSON tree at once).
pub async fn read_page_with<T>(
    state: &ApiState,
    target: &Target,
    params: &Params,
    filter: &Filter,
    mut keep: impl FnMut(Value) -> T,
) -> Result<Page<T>, ApiError> {
    let resource = target.resource;
    read_stored_page(state, target, params, filter.is_everything(), |kv| {
        let obj = objects::decode(kv)?;
        Ok(filter.matches(resource, &obj).then(|| keep(obj)))
    })
    .await
}

/// [`read_page`] on stored key-values: `keep` gives the item of a matching object and
/// `None` for one the selectors leave out (`everything`: they match every object).
async fn read_stored_page<T>(
    state: &ApiState,
    target: &Target,
    params: &Params,
    everything: bool,
    mut keep: impl FnMut(&KeyValue) -> Result<Option<T>, ApiError>,
) -> Result<Page<T>, ApiError> {
    let resource = target.resource;
    let prefix = keys::collection_prefix(resource, target.namespace.as_deref());
    let limit = params.int("limit")?.filter(|l| *l > 0).map(|l| l as u64);
    let (mut at_revision, mut cursor, continuing) = match params.value("continue") {
        Some(token) => {
            let (revision, start) = decode_continue(token)?;
            (Some(revision), Some(format!("{prefix}{start}")), true)
        }
        None => (
            list_revision(state, params, limit.is_some()).await?,
            None,
            false,
        ),
    };
    let mut items = Vec::new();
    let mut revision;
    let mut more = false;
    let mut remaining = None;
    loop {
        let want = limit.map(|l| l - items.len() as u64);
        let page_limit = want
            .map(|w| if everything { w } else { w.max(64) })
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let options = ListOptions {
            prefix: prefix.clone(),
            start_after: cursor.clone(),
            limit: Some(page_limit),
            at_revision,
        };
        let result = match state.store.list(&options).await {
            Ok(result) => result,
            Err(StoreError::Compacted { .. }) if continuing => {
                return Err(ApiError::gone(EXPIRED_CONTINUE));
            }
            Err(e) => return Err(ApiError::from_store(e)),
        };
        revision = result.revision;
        at_revision = Some(revision);
        let scanned = result.items.len();
        let mut taken_all = true;
        for (i, kv) in result.items.iter().enumerate() {
            cursor = Some(kv.key.clone());
            if let Some(item) = keep(kv)? {
                items.push(item);
            }
            if limit.is_some_and(|l| items.len() as u64 >= l) {
                let unscanned = (scanned - i - 1) as u64 + result.remaining;
                more = unscanned > 0;
                if everything && more {
                    remaining = Some(unscanned);
                }
                taken_all = i + 1 == scanned;
                break;
            }
        }
        let full = limit.is_some_and(|l| items.len() as u64 >= l);
        if full || result.remaining == 0 || (taken_all && scanned == 0) {
            if !full {
                more = false;
            }
            break;
        }
    }
    let continue_token = more.then(|| {
        let last = cursor.as_deref().unwrap_or_default();
        encode_continue(revision, last.strip_prefix(prefix.as_str()).unwrap_or(last))
    });
    Ok(Page {
        items,
        revision,
        continue_token,
        remaining,
    })
}

pub async fn list(
    state: &ApiState,
    target: &Target,
    params: &Params,
    as_table: bool,
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let filter = Filter::parse(
        resource,
        params.get("labelSelector"),
        params.get("fieldSelector"),
    )?;
    if !as_table && !crate::convert::needed(resource) {
        return list_serialized(state, target, params, &filter).await;
    }
    let mut page = read_page(state, target, params, &filter).await?;
    for item in &mut page.items {
        crate::convert::to_request(resource, item);
    }
    let meta = list_meta(page.revision, page.continue_token, page.remaining);
    Ok(Reply::ok(objects::list_object(
        &resource.api_version(),
        resource.kind,
        page.items,
        meta,
    )))
}

/// A JSON list built from the stored bytes of each item, with `resourceVersion`
/// spliced in ([`raw`]): objects are parsed only to apply selectors.
async fn list_serialized(
    state: &ApiState,
    target: &Target,
    params: &Params,
    filter: &Filter,
) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let everything = filter.is_everything();
    let mut items = Vec::new();
    let page = read_stored_page(state, target, params, everything, |kv| {
        if !everything && !filter.matches(resource, &objects::decode(kv)?) {
            return Ok(None);
        }
        items.push(if items.is_empty() { b'[' } else { b',' });
        items.extend_from_slice(&raw::object_bytes(kv)?);
        Ok(Some(()))
    })
    .await?;
    if items.is_empty() {
        items.push(b'[');
    }
    let meta = list_meta(page.revision, page.continue_token, page.remaining);
    let head = json!({"kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    let mut body = Vec::with_capacity(head.len() + items.len() + 16);
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":");
    body.extend_from_slice(&items);
    drop(items);
    body.extend_from_slice(b"]}");
    Ok(Reply::raw(body))
}

fn list_meta(
    revision: Revision,
    continue_token: Option<String>,
    remaining: Option<u64>,
) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(revision.to_string()));
    if let Some(token) = continue_token {
        meta.insert("continue".into(), json!(token));
    }
    if let Some(remaining) = remaining {
        meta.insert("remainingItemCount".into(), json!(remaining));
    }
    meta
}

/// Every object a request's selectors match (no pagination), for deletecollection.
pub async fn list_all(
    state: &ApiState,
    target: &Target,
    params: &Params,
) -> Result<Vec<Value>, ApiError> {
    let filter = Filter::parse(
        target.resource,
        params.get("labelSelector"),
        params.get("fieldSelector"),
    )?;
    let unpaged = Params(
        params
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "limit" | "continue"))
            .cloned()
            .collect(),
    );
    Ok(read_page(state, target, &unpaged, &filter).await?.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "default/pod-7");
        assert_eq!(
            decode_continue(&token).unwrap(),
            (42, "default/pod-7".to_owned())
        );
        assert!(decode_continue("not-a-token").is_err());
        let sneaky =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"rv":1,"start":"../x"}"#);
        assert!(decode_continue(&sneaky).is_err());
    }
}
