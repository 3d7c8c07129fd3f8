//! Legacy ServiceAccount tokens, as Kubernetes still makes them for a Secret of type
//! `kubernetes.io/service-account-token` that names its account in the
//! `kubernetes.io/service-account.name` annotation: a JWT from issuer
//! `kubernetes/serviceaccount` that never expires and names the account and the Secret. It
//! authenticates while that Secret exists and holds it, and the account exists with its uid.

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use super::token::{TokenError, TokenIssuer};
use crate::authz::rules::service_account_user;

/// The issuer of legacy tokens.
const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// The claims of a legacy token, as Kubernetes names them: the issuer, the account's user
/// name (`sub`), and the namespace, Secret and account (name and uid) it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyClaims {
    pub iss: String,
    /// `system:serviceaccount:NS:NAME`.
    pub sub: String,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub account_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub account_uid: String,
}

impl LegacyClaims {
    /// The claims of a token for account `account_name` (uid `account_uid`) of `namespace`,
    /// held by Secret `secret_name`.
    pub fn new(namespace: &str, secret_name: &str, account_name: &str, account_uid: &str) -> Self {
        LegacyClaims {
            iss: LEGACY_ISSUER.to_string(),
            sub: service_account_user(namespace, account_name),
            namespace: namespace.to_string(),
            secret_name: secret_name.to_string(),
            account_name: account_name.to_string(),
            account_uid: account_uid.to_string(),
        }
    }
}

impl TokenIssuer {
    /// Signs a legacy token.
    pub fn sign_legacy(&self, claims: &LegacyClaims) -> Result<String, TokenError> {
        self.sign_any(claims)
    }

    /// The claims of `token` if it is a legacy token the cluster's key signed (it has no
    /// expiry and no audience; its subject must be the account it names).
    pub fn verify_legacy(&self, token: &str) -> Result<LegacyClaims, TokenError> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[LEGACY_ISSUER]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "sub"]);
        let claims: LegacyClaims = self.decode(token, &validation)?;
        if claims.sub != service_account_user(&claims.namespace, &claims.account_name) {
            return Err(TokenError::SubjectMismatch { sub: claims.sub });
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ServiceAccountKey;
    use crate::serviceaccount::DEFAULT_ISSUER;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(&ServiceAccountKey::create().expect("key"))
    }

    #[test]
    fn a_legacy_token_verifies_only_as_one_and_only_with_its_own_key() {
        let issuer = issuer();
        let claims = LegacyClaims::new("ci", "builder-token", "builder", "u1");
        let token = issuer.sign_legacy(&claims).expect("sign");
        assert_eq!(issuer.verify_legacy(&token).expect("valid"), claims);
        assert!(issuer.verify(&token).is_err(), "not a bound token");
        assert!(
            TokenIssuer::new(&ServiceAccountKey::create().expect("key"))
                .verify_legacy(&token)
                .is_err(),
            "another cluster's key"
        );
        let mut forged = claims.clone();
        forged.sub = "system:serviceaccount:kube-system:admin".into();
        let forged = issuer.sign_legacy(&forged).expect("sign");
        assert!(
            issuer.verify_legacy(&forged).is_err(),
            "a subject it does not name"
        );
        let mut bound = claims;
        bound.iss = DEFAULT_ISSUER.into();
        let bound = issuer.sign_legacy(&bound).expect("sign");
        assert!(issuer.verify_legacy(&bound).is_err(), "another issuer");
    }
}
