//! GET of one object (and of its `status` subresource).

use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;
use crate::{keys, objects};

/// Reads the object a target names; 404 if absent.
pub async fn read(state: &ApiState, target: &Target) -> Result<serde_json::Value, ApiError> {
    let resource = target.resource;
    let name = target.item_name();
    let key = keys::object_key(resource, target.namespace.as_deref(), name);
    let kv = state.store.get(&key).await.map_err(ApiError::from_store)?;
    let kv = kv.ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
    objects::decode(&kv)
}

pub async fn get(state: &ApiState, target: &Target, _params: &Params) -> Result<Reply, ApiError> {
    Ok(Reply::ok(read(state, target).await?))
}
