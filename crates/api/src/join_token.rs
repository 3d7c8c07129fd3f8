//! Join tokens: what an agent shows to register its node and heartbeat. They have the shape
//! of Kubernetes' bootstrap tokens, `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`), and
//! live as a Secret `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` in
//! `kube-system`, so `skiff get secrets -n kube-system` lists them and deleting one revokes it.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;

/// The namespace join tokens are stored in.
pub const NAMESPACE: &str = "kube-system";
/// The Secret type of a join token.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a join token has the form <6 characters>.<16 characters> of [a-z0-9]")]
    Malformed,
    #[error("unknown or wrong join token")]
    Wrong,
    #[error("the join token expired at {0}")]
    Expired(String),
}

/// A parsed join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub id: String,
    pub secret: String,
}

impl JoinToken {
    /// A token from 22 random bytes (the caller supplies the randomness).
    pub fn from_random(bytes: [u8; ID_LEN + SECRET_LEN]) -> Self {
        let text: String = bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        JoinToken {
            id: text[..ID_LEN].to_string(),
            secret: text[ID_LEN..].to_string(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let (id, secret) = text.trim().split_once('.').ok_or(TokenError::Malformed)?;
        let valid =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| ALPHABET.contains(&b));
        if !valid(id, ID_LEN) || !valid(secret, SECRET_LEN) {
            return Err(TokenError::Malformed);
        }
        Ok(JoinToken {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The name of the Secret that stores this token.
    pub fn secret_name(&self) -> String {
        secret_name(&self.id)
    }

    /// The Secret to store; it expires at `expiration` (RFC 3339) if given.
    pub fn to_secret(&self, expiration: Option<Timestamp>, description: &str) -> Secret {
        let mut data = BTreeMap::from([
            ("token-id".to_string(), self.id.clone()),
            ("token-secret".to_string(), self.secret.clone()),
            (
                "usage-bootstrap-authentication".to_string(),
                "true".to_string(),
            ),
            ("description".to_string(), description.to_string()),
        ]);
        if let Some(at) = expiration {
            data.insert("expiration".into(), at.to_string());
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(self.secret_name()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            type_: Some(SECRET_TYPE.into()),
            data: Some(
                data.into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// Checks this token against its stored Secret at time `now`.
    pub fn verify(&self, stored: &Secret, now: Timestamp) -> Result<(), TokenError> {
        let field = |name: &str| data_field(stored, name);
        let matches = stored.type_.as_deref() == Some(SECRET_TYPE)
            && field("token-id").as_deref() == Some(self.id.as_str())
            && constant_time_eq(
                field("token-secret").unwrap_or_default().as_bytes(),
                self.secret.as_bytes(),
            );
        if !matches {
            return Err(TokenError::Wrong);
        }
        if let Some(expiration) = field("expiration") {
            match expiration.parse::<Timestamp>() {
                Ok(at) if at > now => {}
                _ => return Err(TokenError::Expired(expiration)),
            }
        }
        Ok(())
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

/// A field of a token's Secret (`token-id`, `expiration`, `description`, ...).
pub fn data_field(secret: &Secret, name: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(name)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

/// The name of the Secret storing the token with this id.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// Compares without stopping at the first difference, so timing tells nothing about the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A join token as printed for agents, k3s-style: `K10<sha256 of the cluster CA, hex>::<token>`,
/// so an agent can fetch the CA from the server and check it before trusting it.
pub fn with_ca_hash(token: &JoinToken, ca_hash: &str) -> String {
    format!("K10{ca_hash}::{token}")
}

/// Splits a printed join token into the CA hash it carries (if it has the `K10` form) and
/// the token itself.
pub fn split_ca_hash(text: &str) -> (Option<&str>, &str) {
    let text = text.trim();
    match text
        .strip_prefix("K10")
        .and_then(|rest| rest.split_once("::"))
    {
        Some((hash, token)) => (Some(hash), token),
        None => (None, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_tokens_carry_the_ca_hash() {
        let token = JoinToken::parse("abcdef.0123456789abcdef").unwrap();
        let printed = with_ca_hash(&token, "ff00");
        assert_eq!(printed, "K10ff00::abcdef.0123456789abcdef");
        assert_eq!(
            split_ca_hash(&printed),
            (Some("ff00"), "abcdef.0123456789abcdef")
        );
        assert_eq!(
            split_ca_hash("abcdef.0123456789abcdef"),
            (None, "abcdef.0123456789abcdef")
        );
    }

    #[test]
    fn round_trip_and_verification() {
        let token = JoinToken::from_random([7; 22]);
        let parsed = JoinToken::parse(&token.to_string()).expect("parses");
        assert_eq!(parsed, token);
        let now = Timestamp::now();
        let stored = token.to_secret(None, "test");
        assert_eq!(parsed.verify(&stored, now), Ok(()));
        let wrong = JoinToken {
            secret: "x".repeat(16),
            ..token.clone()
        };
        assert_eq!(wrong.verify(&stored, now), Err(TokenError::Wrong));
        let expired = token.to_secret(Some(Timestamp::from_second(1).expect("ts")), "old");
        assert!(matches!(
            token.verify(&expired, now),
            Err(TokenError::Expired(_))
        ));
    }

    #[test]
    fn malformed_tokens() {
        for bad in [
            "",
            "abc",
            "abcdef.short",
            "ABCDEF.0123456789abcdef",
            "abcdef0123456789abcdefx",
        ] {
            assert_eq!(JoinToken::parse(bad), Err(TokenError::Malformed), "{bad}");
        }
    }
}
