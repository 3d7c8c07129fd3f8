//! Signing and verifying ServiceAccount JWTs (jsonwebtoken on ring; no hand-written JWT code).

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::pki::ServiceAccountKey;

/// The issuer (and default audience) of the tokens, as Kubernetes names it.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc";

/// A name and uid: the ServiceAccount a token belongs to, or an object it is bound to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundRef {
    pub name: String,
    pub uid: String,
}

/// The private `kubernetes.io` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: BoundRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<BoundRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<BoundRef>,
    /// The node the token is bound to, or the one its pod was scheduled to when the token was
    /// made (Kubernetes' `ServiceAccountTokenPodNodeInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<BoundRef>,
    /// For a token extended past its asked lifetime: when its holder should have replaced it
    /// (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The claims of a ServiceAccount token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// `system:serviceaccount:NS:NAME`.
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// A token that could not be made or is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing the token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    #[error("the token is not valid: {0}")]
    Invalid(jsonwebtoken::errors::Error),
    #[error("the token's subject {sub:?} does not match its kubernetes.io claim")]
    SubjectMismatch { sub: String },
}

/// Signs and verifies the cluster's ServiceAccount tokens; cheap to clone.
#[derive(Clone)]
pub struct TokenIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    key_id: String,
    issuer: String,
    /// The audiences the API server accepts; the first is the default audience.
    audiences: Vec<String>,
}

impl TokenIssuer {
    /// An issuer with Kubernetes' issuer and audience.
    pub fn new(key: &ServiceAccountKey) -> TokenIssuer {
        // Kubernetes' key id: the unpadded base64url SHA-256 of the public key.
        let key_id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(key.public_key_der()));
        TokenIssuer {
            inner: Arc::new(Inner {
                encoding: EncodingKey::from_ec_der(&key.private_pkcs8_der()),
                decoding: DecodingKey::from_ec_der(key.public_key_raw()),
                key_id,
                issuer: DEFAULT_ISSUER.to_string(),
                audiences: vec![DEFAULT_ISSUER.to_string()],
            }),
        }
    }

    /// The audiences the API server accepts; the first is the default.
    pub fn audiences(&self) -> &[String] {
        &self.inner.audiences
    }

    /// The issuer (`iss`) of the tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        self.sign_any(claims)
    }

    /// Signs claims of any shape (the legacy tokens' too) with the cluster's key.
    pub(super) fn sign_any(&self, claims: &impl Serialize) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.inner.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.inner.encoding).map_err(TokenError::Sign)
    }

    /// The claims of `token` if the cluster's key signed it and they pass `validation`.
    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<T, TokenError> {
        jsonwebtoken::decode::<T>(token, &self.inner.decoding, validation)
            .map(|data| data.claims)
            .map_err(TokenError::Invalid)
    }

    /// The claims of `token` if it is signed with this key, from this issuer, for one of
    /// the API server's audiences, and valid now (`nbf` ≤ now < `exp`, no leeway).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_for(token, &self.inner.audiences)
    }

    /// As `verify`, but for one of `audiences` (a TokenReview's `spec.audiences`) rather
    /// than the API server's.
    pub fn verify_for(&self, token: &str, audiences: &[String]) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        let claims: Claims = self.decode(token, &validation)?;
        let k = &claims.kubernetes;
        if claims.sub
            != crate::authz::rules::service_account_user(&k.namespace, &k.serviceaccount.name)
        {
            return Err(TokenError::SubjectMismatch { sub: claims.sub });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64, lifetime: i64, aud: &str) -> Claims {
        Claims {
            iss: DEFAULT_ISSUER.into(),
            sub: "system:serviceaccount:ci:builder".into(),
            aud: vec![aud.into()],
            exp: now + lifetime,
            iat: now,
            nbf: now,
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "ci".into(),
                serviceaccount: BoundRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
                node: None,
                warnafter: None,
            },
        }
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&ServiceAccountKey::create().expect("key"))
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let issuer = issuer();
        let claims = claims(now(), 600, DEFAULT_ISSUER);
        let token = issuer.sign(&claims).expect("sign");
        assert_eq!(token.matches('.').count(), 2);
        assert_eq!(issuer.verify(&token).expect("valid"), claims);
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::ES256);
        assert!(header.kid.is_some());
    }

    #[test]
    fn expired_future_foreign_and_tampered_tokens_are_refused() {
        let issuer = issuer();
        let expired = issuer.sign(&claims(now() - 7200, 3600, DEFAULT_ISSUER));
        assert!(issuer.verify(&expired.expect("sign")).is_err());
        let mut early = claims(now(), 3600, DEFAULT_ISSUER);
        early.nbf += 600;
        assert!(issuer.verify(&issuer.sign(&early).expect("sign")).is_err());
        let other_audience = issuer.sign(&claims(now(), 600, "https://vault.example"));
        assert!(issuer.verify(&other_audience.expect("sign")).is_err());
        let mut other_issuer = claims(now(), 600, DEFAULT_ISSUER);
        other_issuer.iss = "https://elsewhere".into();
        assert!(issuer
            .verify(&issuer.sign(&other_issuer).expect("sign"))
            .is_err());
        let foreign = self::issuer().sign(&claims(now(), 600, DEFAULT_ISSUER));
        assert!(issuer.verify(&foreign.expect("sign")).is_err());
        let mut spoofed = claims(now(), 600, DEFAULT_ISSUER);
        spoofed.sub = "system:serviceaccount:kube-system:admin".into();
        assert!(matches!(
            issuer.verify(&issuer.sign(&spoofed).expect("sign")),
            Err(TokenError::SubjectMismatch { .. })
        ));
    }
}
