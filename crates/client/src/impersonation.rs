//! Acting as another user (`skiff --as USER --as-group G`, as `kubectl --as`): the
//! `Impersonate-User` and `Impersonate-Group` headers, which the server honours when the
//! caller may `impersonate` that user and those groups; and access reviews ("may I?").

use reqwest::Method;
use serde_json::{json, Value};

use crate::{Client, ClientError};

/// Whom a client's requests act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    pub user: String,
    pub groups: Vec<String>,
}

impl Impersonation {
    /// The headers that ask the server to act as this user.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![("Impersonate-User", self.user.as_str())];
        headers.extend(
            self.groups
                .iter()
                .map(|g| ("Impersonate-Group", g.as_str())),
        );
        headers
    }
}

/// Where SelfSubjectAccessReviews are created.
const SELF_REVIEW_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// Where SubjectAccessReviews are created.
const SUBJECT_REVIEW_PATH: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// Where SelfSubjectRulesReviews are created.
const RULES_REVIEW_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";

impl Client {
    /// This client acting as `user` in `groups` (needs the `impersonate` permission).
    pub fn impersonate(mut self, user: &str, groups: &[String]) -> Self {
        self.impersonation = Some(std::sync::Arc::new(Impersonation {
            user: user.to_string(),
            groups: groups.to_vec(),
        }));
        self
    }

    /// Asks the server whether this client's user may make the request `attributes`
    /// describes: a SelfSubjectAccessReview's `resourceAttributes`
    /// (`{"verb", "group", "resource", "subresource", "namespace", "name"}`) or, when
    /// `non_resource` is set, its `nonResourceAttributes` (`{"verb", "path"}`).
    pub async fn can_i(&self, attributes: Value, non_resource: bool) -> Result<bool, ClientError> {
        let field = if non_resource {
            "nonResourceAttributes"
        } else {
            "resourceAttributes"
        };
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": { field: attributes },
        });
        let answer = self
            .json(Method::POST, SELF_REVIEW_PATH, Self::body(&review))
            .await?;
        Ok(answer
            .pointer("/status/allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// Asks the server whether `user` in `groups` may make the request `attributes`
    /// describes (a SubjectAccessReview's `resourceAttributes`), as a kubelet's webhook
    /// authorizer does; this client's user needs `create` on `subjectaccessreviews`.
    pub async fn subject_access_review(
        &self,
        user: &str,
        groups: &[String],
        attributes: Value,
    ) -> Result<bool, ClientError> {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
        });
        let answer = self
            .json(Method::POST, SUBJECT_REVIEW_PATH, Self::body(&review))
            .await?;
        Ok(answer
            .pointer("/status/allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// Asks the server what this client's user may do in `namespace` (a
    /// SelfSubjectRulesReview); its `status`: `resourceRules`, `nonResourceRules`, `incomplete`.
    pub async fn rules_review(&self, namespace: &str) -> Result<Value, ClientError> {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": { "namespace": namespace },
        });
        let answer = self
            .json(Method::POST, RULES_REVIEW_PATH, Self::body(&review))
            .await?;
        Ok(answer.get("status").cloned().unwrap_or(Value::Null))
    }
}
