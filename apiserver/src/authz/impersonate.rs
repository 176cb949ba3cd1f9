//! `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and
//! `Impersonate-Extra-<key>` headers (`kubectl --as`, `--as-group`, `--as-uid`): the
//! authenticated caller acts as another user once RBAC allows them the `impersonate`
//! verb on `users` (or `serviceaccounts` for a `system:serviceaccount:NS:NAME` name)
//! and `groups`, and in `authentication.k8s.io` on `uids` and on `userextras/<key>`
//! for each extra value, as upstream's impersonation filter.

use http::HeaderMap;

use super::Authorizer;
use crate::auth::{Attributes, User};
use crate::authn::AUTHENTICATED;
use crate::status::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user a request acts as: `user` itself without impersonation headers.
pub fn apply(authz: &Authorizer, user: User, headers: &HeaderMap) -> Result<User, ApiError> {
    let names = values(headers, USER);
    let groups = values(headers, GROUP);
    let uids = values(headers, UID);
    let extra = extras(headers)?;
    let Some(&name) = names.first() else {
        if !groups.is_empty() || !uids.is_empty() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, uid or extra attributes without impersonating a user",
            ));
        }
        return Ok(user);
    };
    let allow_in = |group: &str, resource: &str, subresource: &str, namespace: &str, name: &str| {
        let request = Attributes {
            verb: "impersonate".into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        };
        authz.check(&user, &request)
    };
    let allow =
        |resource: &str, namespace: &str, name: &str| allow_in("", resource, "", namespace, name);
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    let mut acting_groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    match service_account {
        Some((namespace, account)) => {
            allow("serviceaccounts", namespace, account)?;
            if groups.is_empty() {
                acting_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{namespace}"),
                ];
            }
        }
        None => allow("users", "", name)?,
    }
    for group in &groups {
        allow("groups", "", group)?;
    }
    for uid in &uids {
        allow_in(AUTHENTICATION, "uids", "", "", uid)?;
    }
    for (key, values) in &extra {
        for value in values {
            allow_in(AUTHENTICATION, "userextras", key, "", value)?;
        }
    }
    if name == "system:anonymous" {
        if !acting_groups.iter().any(|g| g == "system:unauthenticated") {
            acting_groups.push("system:unauthenticated".into());
        }
    } else if !acting_groups.iter().any(|g| g == AUTHENTICATED) {
        acting_groups.push(AUTHENTICATED.into());
    }
    let mut acting = User::new(name, acting_groups);
    acting.uid = uids.first().map(|u| (*u).to_owned()).unwrap_or_default();
    acting.extra = extra;
    Ok(acting)
}

/// The API group of the `uids` and `userextras` impersonation resources.
const AUTHENTICATION: &str = "authentication.k8s.io";

/// The `Impersonate-Extra-<key>` headers as (key, values), in header order. The key is
/// the header name's rest, lowercased (header names are case-insensitive) and
/// percent-decoded, so keys with characters a header name cannot hold (`/`, say)
/// arrive as upstream's clients send them.
fn extras(headers: &HeaderMap) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let mut extra: Vec<(String, Vec<String>)> = Vec::new();
    for name in headers.keys() {
        let Some(escaped) = name.as_str().strip_prefix(EXTRA) else {
            continue;
        };
        let key = percent_encoding::percent_decode_str(escaped)
            .decode_utf8()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid impersonation header {name}: its key is not percent-encoded UTF-8"
                ))
            })?
            .into_owned();
        let values = values(headers, name.as_str())
            .into_iter()
            .map(str::to_owned)
            .collect();
        extra.push((key, values));
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::authz::index::Index;

    /// An authorizer with no roles at all (an empty store).
    async fn authorizer(dir: &tempfile::TempDir) -> Authorizer {
        let spec = format!("sqlite://{}", dir.path().join("state.db").display());
        let store = waggle_store::open(&spec).await.unwrap();
        Authorizer::new(Arc::new(Index::new(store)))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[tokio::test]
    async fn masters_act_as_others_and_others_may_not() {
        let dir = tempfile::tempdir().unwrap();
        let authz = authorizer(&dir).await;
        let admin = User::new("admin", vec!["system:masters".into(), AUTHENTICATED.into()]);
        let jane = apply(
            &authz,
            admin.clone(),
            &headers(&[("Impersonate-User", "jane"), ("Impersonate-Group", "devs")]),
        )
        .unwrap();
        assert_eq!(
            (jane.name.as_str(), jane.groups.clone()),
            ("jane", vec!["devs".to_owned(), AUTHENTICATED.to_owned()])
        );
        let bot = apply(
            &authz,
            admin.clone(),
            &headers(&[("Impersonate-User", "system:serviceaccount:ci:bot")]),
        )
        .unwrap();
        assert_eq!(
            bot.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                AUTHENTICATED
            ]
        );
        assert_eq!(
            apply(&authz, admin.clone(), &HeaderMap::new()).unwrap(),
            admin
        );
        let denied = apply(&authz, jane, &headers(&[("Impersonate-User", "admin")])).unwrap_err();
        assert_eq!(
            denied.to_string(),
            "users \"admin\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
        let groups_only =
            apply(&authz, admin, &headers(&[("Impersonate-Group", "x")])).unwrap_err();
        assert_eq!(groups_only.code(), http::StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn extra_attributes_are_decoded_and_authorized_one_value_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let authz = authorizer(&dir).await;
        let admin = User::new("admin", vec!["system:masters".into(), AUTHENTICATED.into()]);
        let acting = apply(
            &authz,
            admin,
            &headers(&[
                ("Impersonate-User", "jane"),
                ("Impersonate-Extra-Scopes", "view"),
                ("Impersonate-Extra-Scopes", "edit"),
                ("Impersonate-Extra-example.org%2Fteam", "blue"),
            ]),
        )
        .unwrap();
        assert_eq!(
            acting.extra,
            [
                (
                    "scopes".to_owned(),
                    vec!["view".to_owned(), "edit".to_owned()]
                ),
                ("example.org/team".to_owned(), vec!["blue".to_owned()]),
            ]
        );
        // Jane may not impersonate anyone: the first check (the user) already fails.
        let jane = User::new("jane", vec![AUTHENTICATED.into()]);
        let denied = apply(
            &authz,
            jane,
            &headers(&[
                ("Impersonate-User", "jane"),
                ("Impersonate-Extra-Scopes", "view"),
            ]),
        )
        .unwrap_err();
        assert_eq!(denied.code(), http::StatusCode::FORBIDDEN);
        let no_user = apply(
            &authz,
            acting,
            &headers(&[("Impersonate-Extra-Scopes", "view")]),
        )
        .unwrap_err();
        assert_eq!(no_user.code(), http::StatusCode::BAD_REQUEST);
    }
}
