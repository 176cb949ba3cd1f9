//! The authentication/authorization hook every request passes through.
//!
//! The server installs [`crate::authz::RbacGate`]: [`crate::authn::Authenticator`]
//! (client certificates, the admin token, service-account tokens) then RBAC.
//! [`AllowAll`] treats every request as the cluster admin.

use http::request::Parts;

use crate::status::ApiError;

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Empty when the credential names no uid (certificates, the admin token).
    pub uid: String,
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/credential-id`, ...), in order.
    pub extra: Vec<(String, Vec<String>)>,
}

impl User {
    pub fn new(name: &str, groups: Vec<String>) -> Self {
        User { name: name.to_owned(), uid: String::new(), groups, extra: Vec::new() }
    }
}

/// What a request does, for authorization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, ... for resources; the lower-case method for
    /// non-resource paths.
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    /// Whether the request addresses a resource (else a non-resource path).
    pub fn is_resource_request(&self) -> bool {
        !self.resource.is_empty()
    }
}

/// Decides whether a request may proceed.
pub trait Gate: Send + Sync + 'static {
    /// Identifies the caller (401 when it cannot).
    fn authenticate(&self, request: &Parts) -> Result<User, ApiError>;
    /// Allows or forbids (403) what the caller asks.
    fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), ApiError>;
}

/// Every request is the cluster admin.
pub struct AllowAll;

impl Gate for AllowAll {
    fn authenticate(&self, _request: &Parts) -> Result<User, ApiError> {
        Ok(User::new("admin", vec!["system:masters".into(), "system:authenticated".into()]))
    }

    fn authorize(&self, _user: &User, _attributes: &Attributes) -> Result<(), ApiError> {
        Ok(())
    }
}
