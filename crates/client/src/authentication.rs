//! `authentication.k8s.io/v1`: TokenRequests (a ServiceAccount token, as `kubectl create
//! token` asks for one) and SelfSubjectReviews ("who am I?", as `kubectl auth whoami`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::{Client, ClientError};

/// Where SelfSubjectReviews are created.
const SELF_SUBJECT_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

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
}
