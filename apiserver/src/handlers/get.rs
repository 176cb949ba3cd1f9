//! GET of one object (and of its `status` subresource).

use waggle_store::KeyValue;

use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;
use crate::{keys, objects};

/// Reads the object a target names; 404 if absent.
pub async fn read(state: &ApiState, target: &Target) -> Result<serde_json::Value, ApiError> {
    objects::decode(&read_stored(state, target).await?)
}

/// The stored key-value of the object a target names; 404 if absent.
async fn read_stored(state: &ApiState, target: &Target) -> Result<KeyValue, ApiError> {
    let resource = target.resource;
    let name = target.item_name();
    let key = keys::object_key(resource, target.namespace.as_deref(), name);
    let kv = state.store.get(&key).await.map_err(ApiError::from_store)?;
    kv.ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))
}

pub async fn get(state: &ApiState, target: &Target, _params: &Params) -> Result<Reply, ApiError> {
    let mut obj = read(state, target).await?;
    crate::convert::to_request(target.resource, &mut obj);
    Ok(Reply::ok(obj))
}

/// [`get`] as JSON bytes spliced from the stored ones (see [`crate::raw`]), for
/// clients that do not ask for a Table.
pub async fn get_serialized(state: &ApiState, target: &Target) -> Result<Reply, ApiError> {
    Ok(Reply::raw(crate::raw::object_bytes(
        &read_stored(state, target).await?,
    )?))
}
