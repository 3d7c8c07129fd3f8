//! `authentication.k8s.io/v1`: TokenRequests (a ServiceAccount token, as `kubectl create
//! token` asks for one), SelfSubjectReviews ("who am I?", as `kubectl auth whoami`) and
//! TokenReviews ("whose is this token?", as the kubelet's webhook authenticator asks).

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::{Client, ClientError};

/// Where SelfSubjectReviews are created.
const SELF_SUBJECT_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

/// Where TokenReviews are created.
const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The user a TokenReview found a token to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// `status.user.username`.
    pub username: String,
    /// `status.user.uid`, if the authenticator knows one.
    pub uid: Option<String>,
    /// `status.user.groups`.
    pub groups: Vec<String>,
    /// `status.user.extra`: what else the authenticator knows (a ServiceAccount token's pod
    /// and node, say).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// A TokenReview's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenReviewAnswer {
    /// The token authenticates this user.
    Authenticated(TokenUser),
    /// It does not, for the reason in `status.error` (empty if none was given).
    Unauthenticated(String),
}

impl Client {
    /// A TokenRequest for ServiceAccount `name` of `namespace` with `spec` (`audiences`,
    /// `expirationSeconds`, `boundObjectRef`); the answer carries `status.token` and
    /// `status.expirationTimestamp`.
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        spec: Value,
    ) -> Result<Value, ClientError> {
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": spec});
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        self.json(Method::POST, &path, Self::body(&request)).await
    }

    /// Who the server takes this client for: the review's `status.userInfo` (`username`,
    /// `uid`, `groups`).
    pub async fn whoami(&self) -> Result<Value, ClientError> {
        let review = json!({"apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview"});
        let answer = self
            .json(Method::POST, SELF_SUBJECT_REVIEW_PATH, Self::body(&review))
            .await?;
        Ok(answer
            .pointer("/status/userInfo")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Asks the server whether bearer `token` authenticates, and as whom (a TokenReview, for
    /// the API server's audiences); this client's user needs `create` on `tokenreviews`.
    pub async fn token_review(&self, token: &str) -> Result<TokenReviewAnswer, ClientError> {
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}});
        let answer = self
            .json(Method::POST, TOKEN_REVIEW_PATH, Self::body(&review))
            .await?;
        Ok(token_review_answer(&answer))
    }
}

/// What a TokenReview `review` answered.
fn token_review_answer(review: &Value) -> TokenReviewAnswer {
    let text = |pointer: &str| review.pointer(pointer).and_then(Value::as_str);
    let username = text("/status/user/username").unwrap_or_default();
    if review.pointer("/status/authenticated") != Some(&Value::Bool(true)) || username.is_empty() {
        let error = text("/status/error").unwrap_or_default();
        return TokenReviewAnswer::Unauthenticated(error.to_string());
    }
    let groups = review
        .pointer("/status/user/groups")
        .and_then(Value::as_array)
        .map(|groups| {
            groups
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let extra = review
        .pointer("/status/user/extra")
        .and_then(|extra| serde_json::from_value(extra.clone()).ok())
        .unwrap_or_default();
    TokenReviewAnswer::Authenticated(TokenUser {
        username: username.to_string(),
        uid: text("/status/user/uid").map(str::to_string),
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_review_answer_names_the_user_or_the_reason() {
        let yes = json!({"status": {"authenticated": true, "user": {"username": "bob",
            "uid": "u1", "groups": ["g", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["p1"]}}}});
        assert_eq!(
            token_review_answer(&yes),
            TokenReviewAnswer::Authenticated(TokenUser {
                username: "bob".into(),
                uid: Some("u1".into()),
                groups: vec!["g".into(), "system:authenticated".into()],
                extra: BTreeMap::from([(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec!["p1".into()]
                )]),
            })
        );
        let no = json!({"status": {"authenticated": false, "error": "expired"}});
        assert_eq!(
            token_review_answer(&no),
            TokenReviewAnswer::Unauthenticated("expired".into())
        );
        let nameless = json!({"status": {"authenticated": true, "user": {}}});
        assert!(matches!(
            token_review_answer(&nameless),
            TokenReviewAnswer::Unauthenticated(_)
        ));
    }
}
