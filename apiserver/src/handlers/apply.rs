//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): field ownership
//! and conflicts come from `waggle_apimachinery::apply`; an apply of a missing object
//! creates it.

use serde_json::Value;

use super::write::{Mode, Update};
use crate::params::Params;
use crate::reply::Reply;
use crate::state::ApiState;
use crate::status::ApiError;
use crate::target::Target;
use waggle_apimachinery::apply::{self, ApplyError};

fn to_api_error(err: ApplyError, target: &Target) -> ApiError {
    match err {
        ApplyError::Conflict { message, .. } => ApiError::Conflict {
            message,
            kind: crate::status::qualified(target.resource.group, target.resource.plural),
            name: target.item_name().into(),
        },
        ApplyError::Invalid(message) => ApiError::bad_request(message),
    }
}

pub async fn apply(state: &ApiState, target: &Target, params: &Params, applied: &Value) -> Result<Reply, ApiError> {
    let manager = params
        .value("fieldManager")
        .ok_or_else(|| ApiError::bad_request("PATCH /apply requires a fieldManager (fieldManager: Required value: is required for apply patch)"))?
        .to_owned();
    let force = params.flag("force");
    let now = jiff::Timestamp::now();
    let current = super::get::read(state, target).await;
    match current {
        Err(ApiError::NotFound { .. }) if target.subresource.is_none() => {
            let created = apply::apply(apply::Kind::of(target.resource), None, applied, &manager, force, now).map_err(|e| to_api_error(e, target))?;
            let list_target = Target { name: None, ..target.clone() };
            let mut created = created;
            crate::body::check_name(&mut created, target.item_name())?;
            super::create::create_object(state, &list_target, params, created).await
        }
        Err(e) => Err(e),
        Ok(_) => {
            let mode = match target.subresource.as_deref() {
                Some("status") => Mode::Status,
                Some("approval") => Mode::Approval,
                _ => Mode::Main,
            };
            let update = Update {
                state,
                resource: target.resource,
                namespace: target.namespace.as_deref(),
                name: target.item_name(),
                precondition: None,
                mode,
                dry_run: params.dry_run()?,
            };
            let written = update
                .run(|live| apply::apply(apply::Kind::of(target.resource), Some(live), applied, &manager, force, now).map_err(|e| to_api_error(e, target)))
                .await?;
            Ok(Reply::ok(written))
        }
    }
}
