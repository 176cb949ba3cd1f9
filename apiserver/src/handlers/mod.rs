//! Resource requests: one module per verb, dispatched on method and target.

pub mod apply;
pub mod binding;
pub mod create;
pub mod delete;
pub mod disruption;
pub mod ephemeral;
pub mod eviction;
pub mod get;
pub mod list;
pub mod patch;
pub mod review;
pub mod scale;
pub mod token;
pub mod update;
pub mod write;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method};

use crate::params::Params;
use crate::state::Shared;
use crate::status::ApiError;
use crate::target::Target;
use crate::{body, watch};

/// The verb a request is, as audit logs and metrics name it.
pub fn verb(method: &Method, target: &Target, params: &Params) -> &'static str {
    let collection = target.name.is_none();
    match *method {
        Method::GET if target.watch_path || params.flag("watch") => "WATCH",
        Method::GET if collection => "LIST",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE if collection => "DELETECOLLECTION",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

fn not_allowed(method: &Method) -> ApiError {
    ApiError::MethodNotAllowed {
        message: format!(
            "the server does not allow this method on the requested resource ({method})"
        ),
    }
}

/// Serves one resource request.
pub async fn dispatch(
    state: Shared,
    method: Method,
    target: Target,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let verb = verb(&method, &target, &params);
    if verb == "WATCH" {
        return watch::watch(state, &target, &params, &headers).await;
    }
    let bytes = body::read(body, state.settings.max_body_bytes).await?;
    if target.name.is_none()
        && target.namespace.is_none()
        && resource.namespaced()
        && !matches!(verb, "LIST")
    {
        // Writes to a namespaced collection need a namespace in the path.
        return Err(not_allowed(&method));
    }
    let sub = target.subresource.as_deref();
    let reply = match (verb, sub) {
        ("LIST", _) => handlers_list(&state, &target, &params, &headers).await?,
        ("GET", None | Some("status" | "approval"))
            if !crate::reply::wants_table(&headers) && !crate::convert::needed(resource) =>
        {
            get::get_serialized(&state, &target).await?
        }
        ("GET", None | Some("status" | "approval")) => get::get(&state, &target, &params).await?,
        ("GET", Some("scale")) => scale::get(&state, &target).await?,
        ("POST", None) if target.name.is_none() => {
            create::create(&state, &target, &params, &headers, &bytes).await?
        }
        ("POST", Some("binding")) => {
            binding::create(&state, &target, &params, &headers, &bytes).await?
        }
        ("POST", Some("token")) => token::create(&state, &target, &params, &headers, &bytes).await?,
        ("POST", Some("eviction")) => {
            eviction::create(&state, &target, &params, &headers, &bytes).await?
        }
        ("GET", Some("ephemeralcontainers")) => get::get(&state, &target, &params).await?,
        ("PUT", Some("ephemeralcontainers")) => {
            ephemeral::update(&state, &target, &params, &headers, &bytes).await?
        }
        ("PATCH", Some("ephemeralcontainers")) => {
            ephemeral::patch(&state, &target, &params, &headers, &bytes).await?
        }
        ("PUT", Some("finalize")) => {
            update::update(&state, &target, &params, &headers, &bytes).await?
        }
        ("PUT", None | Some("status" | "approval")) => {
            update::update(&state, &target, &params, &headers, &bytes).await?
        }
        ("PUT", Some("scale")) => scale::update(&state, &target, &params, &headers, &bytes).await?,
        ("PATCH", None | Some("status" | "approval")) => {
            patch::patch(&state, &target, &params, &headers, &bytes).await?
        }
        ("PATCH", Some("scale")) => {
            scale::patch(&state, &target, &params, &headers, &bytes).await?
        }
        ("DELETE", None) => delete::delete(&state, &target, &params, &headers, &bytes).await?,
        ("DELETECOLLECTION", None) => {
            delete::delete_collection(&state, &target, &params, &headers, &bytes).await?
        }
        ("GET" | "PUT" | "PATCH" | "POST", Some(other)) => {
            return Err(ApiError::NotFound {
                message: format!(
                    "the server could not find the requested resource ({} {}/{other})",
                    method, resource.plural
                ),
                kind: resource.plural.into(),
                name: target.item_name().into(),
            });
        }
        _ => return Err(not_allowed(&method)),
    };
    Ok(reply.render(Some(resource), &headers).into_response())
}

async fn handlers_list(
    state: &Shared,
    target: &Target,
    params: &Params,
    headers: &HeaderMap,
) -> Result<crate::reply::Reply, ApiError> {
    list::list(state, target, params, crate::reply::wants_table(headers)).await
}
