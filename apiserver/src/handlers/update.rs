//! PUT of an object or its `status`: replace, with optimistic concurrency when the
//! body carries a resourceVersion.

use http::HeaderMap;

use super::write::{Mode, Update, precondition_of};
use crate::body;
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;

pub async fn update(state: &ApiState, target: &Target, params: &Params, headers: &HeaderMap, bytes: &[u8]) -> Result<Reply, ApiError> {
    let resource = target.resource;
    let mut obj = body::parse(headers, bytes)?;
    body::check_kind(resource, &mut obj)?;
    body::check_namespace(resource, &mut obj, target.namespace.as_deref())?;
    body::check_name(&mut obj, target.item_name())?;
    let warnings = crate::kubectl::validation::check(resource, params, &obj)?;
    let mode = match target.subresource.as_deref() {
        Some("status") => Mode::Status,
        Some("approval") => Mode::Approval,
        _ => Mode::Main,
    };
    let update = Update {
        state,
        resource,
        namespace: target.namespace.as_deref(),
        name: target.item_name(),
        precondition: precondition_of(&obj)?,
        mode,
        dry_run: params.dry_run()?,
    };
    let written = update.run(|_| Ok(obj.clone())).await?;
    Ok(Reply::ok(written).with_warnings(warnings))
}
