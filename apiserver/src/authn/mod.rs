//! Authentication, as kube-apiserver's authenticator chain: a verified client
//! certificate (user = `CN`, groups = `O`) first, then a bearer token (the admin's
//! token from the data directory, or a service-account token this server issued, see
//! [`tokens`]). A request with neither is `system:anonymous`; a bearer token that is
//! neither is refused with 401, and so is a service-account token whose account was
//! deleted (or deleted and made again: its uid differs), as upstream's bound-token
//! validation. A request to the plain-HTTP development listener
//! (marked [`InsecurePort`]) is a cluster admin, as upstream's old insecure port.
//! Authorization is [`crate::authz`]'s.

pub mod peer;
pub mod tokens;

use std::sync::Arc;

use http::request::Parts;

use crate::admin_cert::{ADMIN_GROUP, ADMIN_USER};
use crate::auth::{Attributes, Gate, User};
use crate::status::ApiError;

pub const AUTHENTICATED: &str = "system:authenticated";

/// Marks a request that came in on the plain-HTTP development listener.
#[derive(Clone, Copy, Debug)]
pub struct InsecurePort;

/// The ServiceAccounts that exist now, by namespace and name: their uids.
pub trait ServiceAccounts: Send + Sync {
    fn uid(&self, namespace: &str, name: &str) -> Option<String>;
}

/// The authenticator chain (see the module docs).
pub struct Authenticator {
    admin_token: String,
    tokens: Arc<tokens::Issuer>,
    accounts: Arc<dyn ServiceAccounts>,
}

impl Authenticator {
    pub fn new(
        admin_token: String,
        tokens: Arc<tokens::Issuer>,
        accounts: Arc<dyn ServiceAccounts>,
    ) -> Self {
        Authenticator {
            admin_token,
            tokens,
            accounts,
        }
    }

    /// The service account a verified token names still exists, with the uid the token
    /// was issued for.
    fn account_exists(&self, user: &User) -> bool {
        let Some((namespace, name)) = user
            .name
            .strip_prefix(tokens::SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return false;
        };
        match self.accounts.uid(namespace, name) {
            Some(uid) if uid == user.uid => true,
            found => {
                tracing::debug!(account = %user.name, token_uid = %user.uid, found = ?found, "service account token of a deleted account");
                false
            }
        }
    }
}

fn with_authenticated(mut groups: Vec<String>) -> Vec<String> {
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.to_owned());
    }
    groups
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(request: &Parts) -> Option<&str> {
    let value = request
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares secrets without an early exit on the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Gate for Authenticator {
    fn authenticate(&self, request: &Parts) -> Result<User, ApiError> {
        if request.extensions.get::<InsecurePort>().is_some() {
            return Ok(User::new(
                "system:unsecured",
                vec![ADMIN_GROUP.to_owned(), AUTHENTICATED.to_owned()],
            ));
        }
        if let Some(identity) = request.extensions.get::<Arc<peer::ClientIdentity>>() {
            return Ok(User::new(
                &identity.user,
                with_authenticated(identity.groups.clone()),
            ));
        }
        let Some(token) = bearer(request) else {
            return Ok(User::new(
                "system:anonymous",
                vec!["system:unauthenticated".to_owned()],
            ));
        };
        if same_secret(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(User::new(
                ADMIN_USER,
                with_authenticated(vec![ADMIN_GROUP.to_owned()]),
            ));
        }
        self.tokens
            .verify(token, jiff::Timestamp::now().as_second())
            .ok()
            .filter(|user| self.account_exists(user))
            .ok_or_else(|| ApiError::Unauthorized {
                message: "Unauthorized".into(),
            })
    }

    /// Authentication only: [`crate::authz::RbacGate`] authorizes.
    fn authorize(&self, _user: &User, _attributes: &Attributes) -> Result<(), ApiError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(token: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri("/api");
        if let Some(token) = token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        builder.body(()).unwrap().into_parts().0
    }

    /// Accounts by `namespace/name`.
    struct Accounts(std::sync::Mutex<std::collections::HashMap<String, String>>);

    impl ServiceAccounts for Accounts {
        fn uid(&self, namespace: &str, name: &str) -> Option<String> {
            self.0
                .lock()
                .unwrap()
                .get(&format!("{namespace}/{name}"))
                .cloned()
        }
    }

    #[test]
    fn certificates_then_tokens_then_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Arc::new(tokens::Issuer::load_or_create(dir.path()).unwrap());
        let accounts = Arc::new(Accounts(Default::default()));
        accounts
            .0
            .lock()
            .unwrap()
            .insert("ci/bot".into(), "u".into());
        let gate = Authenticator::new("secret".into(), issuer.clone(), accounts.clone());
        let admin = gate.authenticate(&parts(Some("secret"))).unwrap();
        assert_eq!(
            (admin.name.as_str(), admin.groups.clone()),
            (
                "admin",
                vec!["system:masters".to_owned(), AUTHENTICATED.to_owned()]
            )
        );
        let anonymous = gate.authenticate(&parts(None)).unwrap();
        assert_eq!(anonymous.name, "system:anonymous");
        let refused = gate.authenticate(&parts(Some("guess"))).unwrap_err();
        assert!(matches!(refused, ApiError::Unauthorized { .. }));
        let now = jiff::Timestamp::now().as_second();
        let grant = tokens::Grant {
            namespace: "ci".into(),
            name: "bot".into(),
            uid: "u".into(),
            audiences: vec![tokens::ISSUER.into()],
            issued_at: now,
            expires_at: now + 600,
            bound: None,
        };
        let token = issuer.issue(&grant, "j").unwrap();
        assert_eq!(
            gate.authenticate(&parts(Some(&token))).unwrap().name,
            "system:serviceaccount:ci:bot"
        );
        // Made again under the same name: a new uid, the old tokens are dead.
        accounts
            .0
            .lock()
            .unwrap()
            .insert("ci/bot".into(), "u2".into());
        assert!(matches!(
            gate.authenticate(&parts(Some(&token))),
            Err(ApiError::Unauthorized { .. })
        ));
        accounts.0.lock().unwrap().clear();
        assert!(matches!(
            gate.authenticate(&parts(Some(&token))),
            Err(ApiError::Unauthorized { .. })
        ));
        let mut with_cert = parts(Some("guess"));
        with_cert.extensions.insert(Arc::new(peer::ClientIdentity {
            user: "jane".into(),
            groups: vec!["dev".into()],
        }));
        let jane = gate.authenticate(&with_cert).unwrap();
        assert_eq!(
            (jane.name.as_str(), jane.groups),
            ("jane", vec!["dev".to_owned(), AUTHENTICATED.to_owned()])
        );
        let mut insecure = parts(None);
        insecure.extensions.insert(InsecurePort);
        assert!(
            gate.authenticate(&insecure)
                .unwrap()
                .groups
                .contains(&ADMIN_GROUP.to_owned())
        );
    }
}
