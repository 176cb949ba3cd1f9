//! What the write and print paths need to know about the request being served, carried
//! in a task-local so that it does not have to be threaded through every handler: the
//! field manager ([`super::managed::record`]), the rows' objects of a server-side
//! Table (`includeObject`, [`include_object`]) and who asks ([`current_user`], which a
//! CertificateSigningRequest records as its requestor). Server-internal writes (controllers,
//! namespace clean-up) run outside any request scope and record nothing.

use std::future::Future;

use http::HeaderMap;
use waggle_apimachinery::apply::default_manager;
use waggle_apimachinery::table::IncludeObject;

use crate::auth::User;
use crate::params::Params;

/// The request-scoped facts.
#[derive(Clone, Debug)]
struct Request {
    /// `None` for server-side apply, which keeps its own `Apply` entries.
    manager: Option<String>,
    include_object: IncludeObject,
    user: User,
}

tokio::task_local! {
    static REQUEST: Request;
}

/// The manager a request writes as: `fieldManager`, else the user agent's program name.
pub fn manager_of(params: &Params, headers: &HeaderMap) -> String {
    if let Some(manager) = params.value("fieldManager") {
        return manager.to_owned();
    }
    let agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    default_manager(agent)
}

/// Whether a request is a server-side apply.
fn is_apply(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/apply-patch"))
}

/// Runs `fut` (one resource request) with its context in scope.
pub async fn scoped<F: Future>(params: &Params, headers: &HeaderMap, user: &User, fut: F) -> F::Output {
    let request = Request {
        manager: (!is_apply(headers)).then(|| manager_of(params, headers)),
        include_object: IncludeObject::from_query(params.get("includeObject")),
        user: user.clone(),
    };
    REQUEST.scope(request, fut).await
}

/// The current request's field manager (`None` outside a request and for apply).
pub fn current_manager() -> Option<String> {
    REQUEST.try_with(|r| r.manager.clone()).ok().flatten()
}

/// Who made the current request (`None` outside a request).
pub fn current_user() -> Option<User> {
    REQUEST.try_with(|r| r.user.clone()).ok()
}

/// What the rows of a Table built for the current request carry (`includeObject`;
/// upstream's default, `Metadata`, outside a request).
pub fn include_object() -> IncludeObject {
    REQUEST.try_with(|r| r.include_object).unwrap_or_default()
}
