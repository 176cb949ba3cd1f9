//! The authentication/authorization hook every request passes through.
//!
//! Authentication is a later issue: the server installs [`AllowAll`] for now; a real
//! authenticator (client certificates, tokens) and authorizer (RBAC) implement
//! [`Gate`] and replace it without touching routing.

use http::request::Parts;

use crate::status::ApiError;

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// What a request does, for authorization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, ... (empty for non-resource requests).
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
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
        Ok(User { name: "admin".into(), groups: vec!["system:masters".into(), "system:authenticated".into()] })
    }

    fn authorize(&self, _user: &User, _attributes: &Attributes) -> Result<(), ApiError> {
        Ok(())
    }
}
