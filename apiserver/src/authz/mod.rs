//! Authorization, as kube-apiserver's `--authorization-mode=RBAC`: members of
//! `system:masters` may do anything (upstream's privileged-group authorizer); everyone
//! else needs a rule of a Role or ClusterRole bound to them (see [`policy`]), read from
//! an in-memory [`index`] of the stored RBAC objects. [`bootstrap`] creates upstream's
//! default roles and bindings; [`impersonate`] serves `Impersonate-*` headers.
//! A denial is upstream's 403 Status (see [`forbidden`]).

pub mod bootstrap;
pub mod impersonate;
pub mod index;
pub mod policy;
pub mod rules;

use std::sync::Arc;

use http::Method;
use http::request::Parts;

use crate::auth::{Attributes, Gate, User};
use crate::authn::Authenticator;
use crate::status::{ApiError, qualified};
use policy::Decision;

/// The group whose members bypass authorization.
pub const MASTERS: &str = "system:masters";

/// Decides requests from the RBAC index.
pub struct Authorizer {
    pub index: Arc<index::Index>,
}

impl Authorizer {
    pub fn new(index: Arc<index::Index>) -> Self {
        Authorizer { index }
    }

    /// Allows or denies `request` for `user`, saying why.
    pub fn decide(&self, user: &User, request: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.index.snapshot().authorize(user, request)
    }

    /// `Ok` when allowed, else upstream's 403.
    pub fn check(&self, user: &User, request: &Attributes) -> Result<(), ApiError> {
        let decision = self.decide(user, request);
        if decision.allowed {
            Ok(())
        } else {
            Err(forbidden(user, request, &decision.reason))
        }
    }
}

/// The authorization verb of a resource request (upstream's `RequestInfo.Verb`):
/// `list`/`watch`/`deletecollection` for collections, `create` for POST, and so on.
pub fn resource_verb(method: &Method, collection: bool, watch: bool) -> String {
    match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => return method.as_str().to_ascii_lowercase(),
    }
    .to_owned()
}

/// Upstream's denial: `pods "x" is forbidden: User "u" cannot get resource "pods" in
/// API group "" in the namespace "default"`, plus the authorizer's reason if any.
pub fn forbidden(user: &User, request: &Attributes, reason: &str) -> ApiError {
    let mut cause = if request.is_resource_request() {
        let mut resource = request.resource.clone();
        if !request.subresource.is_empty() {
            resource = format!("{resource}/{}", request.subresource);
        }
        let scope = if request.namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace {:?}", request.namespace)
        };
        format!(
            "User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            user.name, request.verb, request.group
        )
    } else {
        format!(
            "User {:?} cannot {} path {:?}",
            user.name, request.verb, request.path
        )
    };
    if !reason.is_empty() {
        cause = format!("{cause}: {reason}");
    }
    let kind = if request.is_resource_request() {
        qualified(&request.group, &request.resource)
    } else {
        String::new()
    };
    let message = match (kind.is_empty(), request.name.is_empty()) {
        (true, _) => format!("forbidden: {cause}"),
        (false, true) => format!("{kind} is forbidden: {cause}"),
        (false, false) => format!("{kind} {:?} is forbidden: {cause}", request.name),
    };
    ApiError::Forbidden {
        message,
        kind,
        name: request.name.clone(),
    }
}

/// The server's gate: authentication, impersonation, then RBAC.
pub struct RbacGate {
    authn: Authenticator,
    authz: Arc<Authorizer>,
}

impl RbacGate {
    pub fn new(authn: Authenticator, authz: Arc<Authorizer>) -> Self {
        RbacGate { authn, authz }
    }
}

impl Gate for RbacGate {
    fn authenticate(&self, request: &Parts) -> Result<User, ApiError> {
        let user = self.authn.authenticate(request)?;
        impersonate::apply(&self.authz, user, &request.headers)
    }

    fn authorize(&self, user: &User, attributes: &Attributes) -> Result<(), ApiError> {
        self.authz.check(user, attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User::new("system:serviceaccount:default:bot", vec![])
    }

    fn message(request: Attributes) -> String {
        forbidden(&user(), &request, "").to_string()
    }

    #[test]
    fn denials_read_as_upstream() {
        let list = Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        assert_eq!(
            message(list),
            "pods is forbidden: User \"system:serviceaccount:default:bot\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let nodes = Attributes {
            verb: "get".into(),
            resource: "nodes".into(),
            name: "n1".into(),
            ..Default::default()
        };
        assert_eq!(
            message(nodes),
            "nodes \"n1\" is forbidden: User \"system:serviceaccount:default:bot\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"
        );
        let evict = Attributes {
            verb: "create".into(),
            resource: "pods".into(),
            subresource: "eviction".into(),
            name: "p".into(),
            namespace: "ns".into(),
            ..Default::default()
        };
        assert_eq!(
            message(evict),
            "pods \"p\" is forbidden: User \"system:serviceaccount:default:bot\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"ns\""
        );
        let scale = Attributes {
            verb: "update".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            name: "web".into(),
            ..Default::default()
        };
        let err = forbidden(&user(), &scale, "");
        assert_eq!(
            err.to_status()["details"],
            serde_json::json!({"name": "web", "group": "apps", "kind": "deployments"})
        );
        let path = Attributes {
            verb: "get".into(),
            path: "/foo".into(),
            ..Default::default()
        };
        assert_eq!(
            message(path),
            "forbidden: User \"system:serviceaccount:default:bot\" cannot get path \"/foo\""
        );
    }

    #[test]
    fn verbs_follow_upstream_request_info() {
        assert_eq!(resource_verb(&Method::GET, true, false), "list");
        assert_eq!(resource_verb(&Method::GET, true, true), "watch");
        assert_eq!(resource_verb(&Method::GET, false, false), "get");
        assert_eq!(resource_verb(&Method::POST, true, false), "create");
        assert_eq!(resource_verb(&Method::PUT, false, false), "update");
        assert_eq!(
            resource_verb(&Method::DELETE, true, false),
            "deletecollection"
        );
    }
}
