//! Service-account tokens: ES256-signed JWTs issued by `TokenRequest`
//! (`serviceaccounts/<name>/token`, `kubectl create token`) and accepted as bearer
//! tokens. The signing key is a P-256 key kept in the data directory's `pki/sa.key`
//! (created on first start), so tokens stay valid across restarts.

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::auth::User;
use crate::tls::TlsError;

/// The issuer (`iss`) and default audience (`aud`) of the tokens, as upstream's default.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The prefix of a service account's user name.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Why a bearer token was refused (the request is answered 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is not a JWT")]
    Malformed,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid for this API server (issuer or audience)")]
    WrongAudience,
}

/// What a token says about its service account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
    /// The object the token is bound to (`kind`, `name`, `uid`), if any.
    pub bound: Option<(String, String, String)>,
}

/// Signs and verifies service-account tokens.
pub struct Issuer {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
}

impl Issuer {
    /// Loads `pki_dir/sa.key`, creating it when missing.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, TlsError> {
        let path = pki_dir.join("sa.key");
        let pem = match fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pem = rcgen::KeyPair::generate()?.serialize_pem();
                fs::write(&path, &pem).map_err(|source| TlsError::Io { path: path.clone(), source })?;
                pem
            }
            Err(source) => return Err(TlsError::Io { path, source }),
        };
        Self::from_pem(&pem)
    }

    /// An issuer signing with the PKCS#8 P-256 key in `pem`.
    pub fn from_pem(pem: &str) -> Result<Self, TlsError> {
        let pkcs8 = rcgen::KeyPair::from_pem(pem)?.serialize_der();
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| TlsError::Config(format!("service-account key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(Issuer { key, key_id, rng })
    }

    /// The OpenID Connect discovery document of the tokens' issuer, naming `jwks_uri`
    /// as where the signing keys are (`/.well-known/openid-configuration`), so other
    /// systems can verify service-account tokens as upstream's are.
    pub fn openid_configuration(&self, jwks_uri: &str) -> Value {
        json!({
            "issuer": ISSUER,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// The public signing key as a JSON Web Key Set (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        // An uncompressed P-256 point: 0x04, then x and y (32 bytes each).
        let point = self.key.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        json!({"keys": [{
            "use": "sig",
            "kty": "EC",
            "kid": self.key_id,
            "crv": "P-256",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }

    /// A signed token for `grant`.
    pub fn issue(&self, grant: &Grant, token_id: &str) -> Result<String, TokenError> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let mut kubernetes = json!({
            "namespace": grant.namespace,
            "serviceaccount": {"name": grant.name, "uid": grant.uid},
        });
        if let Some((kind, name, uid)) = &grant.bound {
            kubernetes[kind.to_ascii_lowercase()] = json!({"name": name, "uid": uid});
        }
        let claims = json!({
            "aud": grant.audiences,
            "exp": grant.expires_at,
            "iat": grant.issued_at,
            "iss": ISSUER,
            "jti": token_id,
            "kubernetes.io": kubernetes,
            "nbf": grant.issued_at,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{}:{}", grant.namespace, grant.name),
        });
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).map_err(|_| TokenError::Signature)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// The service account a token authenticates, if it is one of ours and current
    /// at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<User, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header = decode(header)?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(TokenError::Signature);
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
        let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| TokenError::Signature)?;
        let claims = decode(claims)?;
        let number = |field: &str| claims.get(field).and_then(Value::as_i64);
        if number("exp").is_none_or(|exp| exp <= now) || number("nbf").is_some_and(|nbf| nbf > now) {
            return Err(TokenError::Expired);
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) || !audiences.contains(&ISSUER) {
            return Err(TokenError::WrongAudience);
        }
        let subject = claims.get("sub").and_then(Value::as_str).ok_or(TokenError::Malformed)?;
        let namespace = claims.pointer("/kubernetes.io/namespace").and_then(Value::as_str).ok_or(TokenError::Malformed)?;
        if !subject.starts_with(SERVICE_ACCOUNT_PREFIX) {
            return Err(TokenError::Malformed);
        }
        let mut extra = vec![(
            "authentication.kubernetes.io/credential-id".to_owned(),
            vec![format!("JTI={}", claims.get("jti").and_then(Value::as_str).unwrap_or_default())],
        )];
        if let Some(pod) = claims.pointer("/kubernetes.io/pod") {
            for (key, field) in [("pod-name", "name"), ("pod-uid", "uid")] {
                let value = pod.get(field).and_then(Value::as_str).unwrap_or_default();
                extra.push((format!("authentication.kubernetes.io/{key}"), vec![value.to_owned()]));
            }
        }
        Ok(User {
            name: subject.to_owned(),
            uid: claims.pointer("/kubernetes.io/serviceaccount/uid").and_then(Value::as_str).unwrap_or_default().to_owned(),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_owned(),
            ],
            extra,
        })
    }
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode(part: &str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: i64) -> Grant {
        Grant {
            namespace: "default".into(),
            name: "builder".into(),
            uid: "u-1".into(),
            audiences: vec![ISSUER.into()],
            issued_at: 1_000,
            expires_at,
            bound: None,
        }
    }

    #[test]
    fn the_published_key_set_verifies_issued_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_create(dir.path()).unwrap();
        let token = issuer.issue(&grant(5_000), "jti-1").unwrap();
        let jwks = issuer.jwks();
        let key = &jwks["keys"][0];
        assert_eq!((key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()), (Some("EC"), Some("P-256"), Some("ES256")));
        let header = decode(token.split('.').next().unwrap()).unwrap();
        assert_eq!(header["kid"], key["kid"], "tokens name the published key");
        let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(key[c].as_str().unwrap()).unwrap();
        let point = [vec![4], coordinate("x"), coordinate("y")].concat();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .expect("a verifier with only the key set accepts the token");
        let config = issuer.openid_configuration("https://127.0.0.1:6443/openid/v1/jwks");
        assert_eq!(config["issuer"], ISSUER);
        assert_eq!(config["jwks_uri"], "https://127.0.0.1:6443/openid/v1/jwks");
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_create(dir.path()).unwrap();
        let token = issuer.issue(&grant(5_000), "jti-1").unwrap();
        let user = issuer.verify(&token, 2_000).unwrap();
        assert_eq!(user.name, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.groups[1], "system:serviceaccounts:default");
        assert_eq!(user.extra[0].1, vec!["JTI=jti-1".to_owned()]);
        assert_eq!(issuer.verify(&token, 5_000), Err(TokenError::Expired));
        // The same key is reloaded from disk: old tokens remain valid.
        let reloaded = Issuer::load_or_create(dir.path()).unwrap();
        assert!(reloaded.verify(&token, 2_000).is_ok());
    }

    #[test]
    fn tampered_foreign_and_other_audience_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_create(dir.path()).unwrap();
        let token = issuer.issue(&grant(5_000), "j").unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = encode(&json!({"sub": "system:serviceaccount:kube-system:admin"}));
        parts[1] = &forged;
        assert_eq!(issuer.verify(&parts.join("."), 2_000), Err(TokenError::Signature));
        let other = Issuer::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(other.verify(&token, 2_000), Err(TokenError::Signature));
        assert_eq!(issuer.verify("not-a-jwt", 2_000), Err(TokenError::Malformed));
        let mut elsewhere = grant(5_000);
        elsewhere.audiences = vec!["vault".into()];
        let token = issuer.issue(&elsewhere, "j").unwrap();
        assert_eq!(issuer.verify(&token, 2_000), Err(TokenError::WrongAudience));
    }
}
