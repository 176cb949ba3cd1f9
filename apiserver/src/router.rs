//! The HTTP surface: non-resource endpoints (discovery, version, health, metrics) and
//! resource requests, behind the auth gate and the metrics recorder.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Uri};
use serde_json::Value;

use crate::auth::{Attributes, Gate};
use crate::params::Params;
use crate::reply::Reply;
use crate::state::Shared;
use crate::status::ApiError;
use waggle_apimachinery::discovery as apimachinery_discovery;
use waggle_apimachinery::openapi;

use crate::{authz, discovery, handlers, kubelet, target};

#[derive(Clone)]
struct Ctx {
    state: Shared,
    gate: Arc<dyn Gate>,
    /// The address clients reach us at (for discovery's serverAddressByClientCIDRs).
    server_address: String,
}

pub fn router(state: Shared, gate: Arc<dyn Gate>, server_address: String) -> Router {
    let ctx = Ctx {
        state,
        gate,
        server_address,
    };
    Router::new().fallback(serve).with_state(ctx)
}

/// The name a `fieldSelector` pins with `metadata.name=` (or `==`), when it is a valid
/// path segment.
fn selected_name(
    resource: &waggle_apimachinery::registry::Resource,
    params: &Params,
) -> Option<String> {
    let selector =
        crate::selectors::field::Selector::parse(resource, params.value("fieldSelector")?).ok()?;
    let name = selector.equals("metadata.name")?;
    let valid = !matches!(name, "" | "." | "..") && !name.contains(['/', '%']);
    valid.then(|| name.to_owned())
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        message: "the server could not find the requested resource".into(),
        kind: String::new(),
        name: String::new(),
    }
}

async fn serve(State(ctx): State<Ctx>, request: Request) -> Response {
    let started = Instant::now();
    let (mut parts, body) = request.into_parts();
    // Kept for the kubelet-bound subresources that upgrade the connection (exec, ...).
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let params = Params::parse(parts.uri.query());
    let parsed = target::parse(&ctx.state.registry(), parts.uri.path());
    let kubelet_route = kubelet::route(parts.uri.path());
    let mut attributes = Attributes {
        verb: parts.method.as_str().to_ascii_lowercase(),
        path: parts.uri.path().to_owned(),
        ..Default::default()
    };
    let (verb, resource, subresource) = match &parsed {
        Ok(Some(t)) => {
            let verb = handlers::verb(&parts.method, t, &params);
            attributes.verb =
                authz::resource_verb(&parts.method, t.name.is_none(), verb == "WATCH");
            attributes.group = t.resource.group.into();
            attributes.resource = t.resource.plural.into();
            attributes.subresource = t.subresource.clone().unwrap_or_default();
            attributes.namespace = t.namespace.clone().unwrap_or_default();
            attributes.name = t.name.clone().unwrap_or_default();
            if t.name.is_none() && parts.method == Method::GET {
                // A list or watch of one name (`kubectl get pod x -w`) is authorized as
                // a request for that name, so `resourceNames` rules allow it (as
                // upstream's RequestInfo).
                attributes.name = selected_name(t.resource, &params).unwrap_or_default();
            }
            if t.resource.group.is_empty() && t.resource.plural == "namespaces" {
                // A namespace is in itself, for RoleBindings (as upstream's RequestInfo).
                attributes.namespace = attributes.name.clone();
            }
            (
                verb,
                t.resource.plural,
                t.subresource.clone().unwrap_or_default(),
            )
        }
        _ => {
            // Not served, but resource-shaped: authorized as the resource request it is
            // (a denial names the resource; an allowed one gets its 404).
            if let (Ok(None), Some(shape)) = (&parsed, target::shape(parts.uri.path())) {
                let watch = shape.watch_path || params.flag("watch");
                attributes.verb = authz::resource_verb(&parts.method, shape.name.is_empty(), watch);
                attributes.group = shape.group;
                attributes.resource = shape.resource;
                attributes.subresource = shape.subresource;
                attributes.namespace = shape.namespace;
                attributes.name = shape.name;
            }
            (method_label(&parts.method), "", String::new())
        }
    };
    if let (Some(kubelet::Route::Node { name, .. }), Ok(None)) = (&kubelet_route, &parsed) {
        // `nodes/NAME/proxy/PATH` is deeper than resource paths go.
        attributes.verb = authz::resource_verb(&parts.method, false, false);
        attributes.resource = "nodes".into();
        attributes.subresource = "proxy".into();
        attributes.name = name.clone();
    }
    let outcome = async {
        let user = ctx.gate.authenticate(&parts)?;
        ctx.gate.authorize(&user, &attributes)?;
        let parsed = parsed?;
        if let Some(route) = kubelet_route {
            let request = kubelet::Request {
                method: parts.method.clone(),
                uri: parts.uri.clone(),
                headers: parts.headers.clone(),
                body,
                upgrade,
            };
            return kubelet::serve(&ctx.state, route, &params, request).await;
        }
        match parsed {
            Some(t) if !t.resource.persisted() => {
                handlers::review::serve(
                    &ctx.state,
                    &user,
                    &parts.method,
                    &t,
                    &params,
                    &parts.headers,
                    body,
                )
                .await
            }
            Some(t) => {
                let write = !matches!(parts.method, Method::GET | Method::HEAD);
                let (group, plural) = (t.resource.group, t.resource.plural);
                let request = handlers::dispatch(
                    ctx.state.clone(),
                    parts.method.clone(),
                    t,
                    params.clone(),
                    parts.headers.clone(),
                    body,
                );
                let response =
                    crate::kubectl::context::scoped(&params, &parts.headers, &user, request).await;
                if write && response.as_ref().is_ok_and(|r| r.status().is_success()) {
                    // The writer's next request sees its change to RBAC or to a
                    // ServiceAccount (the watch may lag).
                    if let Err(e) = ctx.state.authorizer.index.refresh(group, plural).await {
                        tracing::warn!(error = %e, "re-reading indexed objects failed");
                    }
                    // Likewise for the resources a CustomResourceDefinition serves.
                    if crate::crd::is_definitions(group, plural)
                        && let Err(e) = crate::crd::refresh(&ctx.state).await
                    {
                        tracing::warn!(error = %e, "re-reading definitions failed");
                    }
                }
                response
            }
            None => non_resource(&ctx, &parts.method, &parts.uri, &parts.headers).await,
        }
    }
    .await;
    let response = outcome.unwrap_or_else(IntoResponse::into_response);
    let code = response.status().as_u16();
    if verb != "WATCH" {
        tracing::debug!(method = %parts.method, path = %parts.uri, code, "request");
    }
    ctx.state.metrics.observe(
        verb,
        resource,
        &subresource,
        code,
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Method names as `&'static str` for metric labels of non-resource requests.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

async fn non_resource(
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if *method != Method::GET && *method != Method::HEAD {
        // Below a group version every path is a resource path: an unknown resource or
        // subresource (`configmaps/x/scale`) is a 404 whatever the method, as upstream.
        if let ["api", _, _, ..] | ["apis", _, _, _, ..] = segments.as_slice() {
            return Err(not_found());
        }
        return Err(ApiError::MethodNotAllowed {
            message: format!(
                "the server does not allow this method on the requested resource ({method})"
            ),
        });
    }
    let json = |v: Value| Ok(Reply::ok(v).render(None, headers));
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let bytes = |content_type: String, body: std::borrow::Cow<'static, [u8]>| {
        let body = match body {
            std::borrow::Cow::Borrowed(cached) => axum::body::Body::from(cached),
            std::borrow::Cow::Owned(built) => axum::body::Body::from(built),
        };
        Ok(([(http::header::CONTENT_TYPE, content_type)], body).into_response())
    };
    if let ["api"] | ["apis"] = segments.as_slice() {
        if let Some(version) = apimachinery_discovery::negotiate_aggregated(accept) {
            let document = apimachinery_discovery::aggregated(
                &ctx.state.registry(),
                segments == ["api"],
                version,
            );
            let body = serde_json::to_vec(&document).unwrap_or_default();
            return Ok((
                [(
                    http::header::CONTENT_TYPE,
                    apimachinery_discovery::aggregated_content_type(version),
                )],
                body,
            )
                .into_response());
        }
    }
    match segments.as_slice() {
        ["openapi", "v2"] => {
            let (content_type, body) = openapi::v2_response(accept);
            bytes(content_type.to_owned(), body.into())
        }
        ["openapi", "v3"] => bytes(
            "application/json".into(),
            openapi::v3_index_bytes(&ctx.state.registry()),
        ),
        ["openapi", "v3", rest @ ..] => match openapi::v3_document_bytes(&ctx.state.registry(), &rest.join("/")) {
            Some(body) => bytes("application/json".into(), body),
            None => Err(not_found()),
        },
        [".well-known", "openid-configuration"] => {
            let jwks_uri = format!("https://{}/openid/v1/jwks", ctx.server_address);
            json(ctx.state.tokens.openid_configuration(&jwks_uri))
        }
        ["openid", "v1", "jwks"] => Ok((
            [(http::header::CONTENT_TYPE, "application/jwk-set+json")],
            serde_json::to_vec(&ctx.state.tokens.jwks()).unwrap_or_default(),
        )
            .into_response()),
        ["version"] => json(discovery::version()),
        ["api"] => json(discovery::core_versions(&ctx.server_address)),
        ["apis"] => json(discovery::groups(&ctx.state.registry())),
        ["api", version] => discovery::resource_list(&ctx.state.registry(), "", version)
            .map_or_else(|| Err(not_found()), json),
        ["apis", group] => discovery::group_document(&ctx.state.registry(), group)
            .map_or_else(|| Err(not_found()), json),
        ["apis", group, version] => discovery::resource_list(&ctx.state.registry(), group, version)
            .map_or_else(|| Err(not_found()), json),
        [endpoint @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            let params = Params::parse(uri.query());
            match crate::health::serve(&ctx.state, endpoint, rest, &params).await {
                Some((code, text)) => Ok((code, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()),
                None => Err(not_found()),
            }
        }
        ["metrics"] => Ok((
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            ctx.state.metrics.render(),
        )
            .into_response()),
        _ => Err(not_found()),
    }
}

