//! `authorization.k8s.io/v1` SelfSubjectRulesReview: "what may I do in this namespace?",
//! answered in `status` and never stored, as `kubectl auth can-i --list` and
//! `skiff auth can-i --list` ask it. The rules are RBAC's for the caller in the namespace
//! (cluster-wide ones included); a node's answer is `incomplete`, since the node
//! authorizer's decisions depend on its pods and cannot be listed as rules.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;
use skiff_api::k8s_openapi::api::authorization::v1::{
    NonResourceRule, ResourceRule, SubjectRulesReviewStatus,
};
use skiff_api::k8s_openapi::api::rbac::v1::PolicyRule;

use super::access_review::{answered, read_review};
use super::AppState;
use crate::authz::node;
use crate::identity::UserInfo;

/// `POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews`.
pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        const KIND: &str = "SelfSubjectRulesReview";
        let review = read_review(&headers, &body, KIND)?;
        let namespace = review
            .pointer("/spec/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rules = state.authorizer.rules_for(&user, &namespace);
        answered(
            review,
            KIND,
            status(&rules, node::node_name(&user).is_some()),
        )
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The review's status for `rules`, split into resource and non-resource rules.
fn status(rules: &[PolicyRule], incomplete: bool) -> SubjectRulesReviewStatus {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if let Some(urls) = rule.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
            non_resource_rules.push(NonResourceRule {
                verbs: rule.verbs.clone(),
                non_resource_urls: Some(urls.clone()),
            });
        }
        if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
            resource_rules.push(ResourceRule {
                verbs: rule.verbs.clone(),
                api_groups: rule.api_groups.clone(),
                resources: rule.resources.clone(),
                resource_names: rule.resource_names.clone(),
            });
        }
    }
    SubjectRulesReviewStatus {
        incomplete,
        evaluation_error: incomplete
            .then(|| "the node authorizer does not list its rules".to_string()),
        resource_rules,
        non_resource_rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_are_split_into_resource_and_url_rules() {
        let rules: Vec<PolicyRule> = serde_json::from_value(json!([
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ]))
        .expect("rules");
        let status = serde_json::to_value(status(&rules, false)).expect("json");
        assert_eq!(
            status,
            json!({
                "incomplete": false,
                "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"],
                    "resourceNames": ["web"]}],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            })
        );
        assert_eq!(status_of_node()["incomplete"], true);
    }

    fn status_of_node() -> Value {
        serde_json::to_value(status(&[], true)).expect("json")
    }
}
