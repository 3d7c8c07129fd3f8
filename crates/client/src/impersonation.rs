//! Acting as another user (`skiff --as USER --as-group G --as-uid U --as-user-extra K=V`, as
//! `kubectl --as` and client-go's impersonation config): the `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-KEY` headers, which the
//! server honours when the caller may `impersonate` each of them; and access reviews ("may I?").

use std::collections::BTreeMap;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::HeaderName;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{Client, ClientError, TokenUser};

/// Whom a SubjectAccessReview asks about: a user, its uid, groups and extra fields (a
/// certificate's CN and O entries, or what a TokenReview found a token to authenticate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReviewSubject {
    /// The user (a certificate's CN, a token's username).
    pub user: String,
    /// Its uid, if the authenticator knows one.
    pub uid: Option<String>,
    /// Its groups (a certificate's O entries, a token's groups).
    pub groups: Vec<String>,
    /// What else the authenticator knows (a ServiceAccount token's pod, say).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl From<TokenUser> for ReviewSubject {
    fn from(user: TokenUser) -> Self {
        ReviewSubject {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
        }
    }
}

/// Whom a client's requests act as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    /// Extra fields of the user, by key (a key may have several values).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What an extra field's key keeps unescaped in its header's name: the characters of an HTTP
/// token but `%` (as client-go escapes it).
const HEADER_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'*')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

impl Impersonation {
    /// The headers that ask the server to act as this user.
    pub fn headers(&self) -> Vec<(HeaderName, &str)> {
        let mut headers = vec![(
            HeaderName::from_static("impersonate-user"),
            self.user.as_str(),
        )];
        let group = HeaderName::from_static("impersonate-group");
        headers.extend(self.groups.iter().map(|g| (group.clone(), g.as_str())));
        if let Some(uid) = &self.uid {
            headers.push((HeaderName::from_static("impersonate-uid"), uid.as_str()));
        }
        for (key, values) in &self.extra {
            let escaped = utf8_percent_encode(key, HEADER_KEY);
            let name = HeaderName::try_from(format!("impersonate-extra-{escaped}"))
                .expect("an escaped key is a header name");
            headers.extend(values.iter().map(|v| (name.clone(), v.as_str())));
        }
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
    /// This client acting as the user `impersonation` describes (needs the `impersonate`
    /// permission on each of its parts).
    pub fn impersonate(mut self, impersonation: Impersonation) -> Self {
        self.impersonation = Some(std::sync::Arc::new(impersonation));
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

    /// Asks the server whether `subject` may make the request `attributes` describes (a
    /// SubjectAccessReview's `resourceAttributes`), as a kubelet's webhook authorizer does;
    /// this client's user needs `create` on `subjectaccessreviews`.
    pub async fn subject_access_review(
        &self,
        subject: &ReviewSubject,
        attributes: Value,
    ) -> Result<bool, ClientError> {
        let review = subject_review(subject, attributes);
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

/// The SubjectAccessReview asking whether `subject` may make the request `attributes` describes.
fn subject_review(subject: &ReviewSubject, attributes: Value) -> Value {
    let mut spec = json!({"user": subject.user, "groups": subject.groups,
        "resourceAttributes": attributes});
    if let Some(uid) = &subject.uid {
        spec["uid"] = json!(uid);
    }
    if !subject.extra.is_empty() {
        spec["extra"] = json!(subject.extra);
    }
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_review_carries_the_uid_and_extra_only_when_known() {
        let attributes = json!({"verb": "get", "resource": "nodes", "subresource": "log"});
        let certificate = ReviewSubject {
            user: "alice".into(),
            groups: vec!["ops".into()],
            ..Default::default()
        };
        let review = subject_review(&certificate, attributes.clone());
        assert_eq!(review["kind"], "SubjectAccessReview");
        assert_eq!(
            review["spec"],
            json!({"user": "alice", "groups": ["ops"], "resourceAttributes": attributes})
        );
        let token = ReviewSubject::from(TokenUser {
            username: "system:serviceaccount:default:app".into(),
            uid: Some("u1".into()),
            groups: vec!["system:serviceaccounts".into()],
            extra: BTreeMap::from([(
                "authentication.kubernetes.io/pod-name".into(),
                vec!["p1".into()],
            )]),
        });
        let review = subject_review(&token, attributes);
        assert_eq!(review["spec"]["uid"], "u1");
        assert_eq!(
            review["spec"]["extra"]["authentication.kubernetes.io/pod-name"],
            json!(["p1"])
        );
    }

    #[test]
    fn extra_keys_are_escaped_into_header_names_as_client_go_does() {
        let impersonation = Impersonation {
            user: "bob".into(),
            groups: vec!["dev".into()],
            uid: Some("u-1".into()),
            extra: BTreeMap::from([(
                "acme.com/project".to_string(),
                vec!["web".to_string(), "api".to_string()],
            )]),
        };
        let headers: Vec<(String, &str)> = impersonation
            .headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        let expected = [
            ("impersonate-user", "bob"),
            ("impersonate-group", "dev"),
            ("impersonate-uid", "u-1"),
            ("impersonate-extra-acme.com%2fproject", "web"),
            ("impersonate-extra-acme.com%2fproject", "api"),
        ];
        let expected: Vec<(String, &str)> =
            expected.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        assert_eq!(headers, expected);
    }
}
