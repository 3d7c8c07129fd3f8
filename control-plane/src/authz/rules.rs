//! Matching one RBAC rule against a request, and one binding subject against a user, with
//! Kubernetes' semantics (`*`, `*/subresource`, `resourceNames`, `nonResourceURLs` ending in
//! `*`, ServiceAccount user names).

use skiff_api::k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use super::attributes::{Attributes, Target};
use crate::identity::UserInfo;

/// Matches any verb, group, resource or URL.
const ALL: &str = "*";

/// Whether `rule` allows the request `attrs`.
pub fn allows(rule: &PolicyRule, attrs: &Attributes) -> bool {
    if !has(&rule.verbs, &attrs.verb) {
        return false;
    }
    match &attrs.target {
        Target::Resource(r) => {
            has(rule.api_groups.as_deref().unwrap_or_default(), &r.api_group)
                && resource_matches(
                    rule.resources.as_deref().unwrap_or_default(),
                    &r.combined_resource(),
                    &r.subresource,
                )
                && name_matches(rule.resource_names.as_deref().unwrap_or_default(), &r.name)
        }
        Target::NonResource { path } => rule
            .non_resource_urls
            .iter()
            .flatten()
            .any(|url| url_matches(url, path)),
    }
}

fn has(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == ALL || v == wanted)
}

fn resource_matches(resources: &[String], combined: &str, subresource: &str) -> bool {
    resources.iter().any(|r| {
        r == ALL
            || r == combined
            || (!subresource.is_empty()
                && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
    })
}

/// An empty list allows every name; else the request must name one of them.
fn name_matches(names: &[String], name: &str) -> bool {
    names.is_empty() || names.iter().any(|n| n == name)
}

/// Whether a rule's non-resource URL (exact, or a prefix ending in `*`) matches `path`.
pub fn url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == ALL
        || rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// The user name of a ServiceAccount's tokens: `system:serviceaccount:NS:NAME`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Whether a binding's `subject` names `user`. `binding_namespace` is the RoleBinding's
/// namespace (ServiceAccounts without one are taken from it), empty for ClusterRoleBindings.
pub fn subject_matches(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            !namespace.is_empty() && user.name == service_account_user(namespace, &subject.name)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let own = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: own(groups),
            resources: own(resources),
            resource_names: own(names),
            non_resource_urls: None,
        }
    }

    fn request(method: Method, uri: &str) -> Attributes {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        Attributes::from_request(&method, path, query)
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let reader = rule(&["get", "list"], &[""], &["pods"], &[]);
        let log_reader = rule(&["get"], &[""], &["pods/log"], &[]);
        let any_status = rule(&["patch"], &["*"], &["*/status"], &[]);
        let one_secret = rule(&["get"], &[""], &["secrets"], &["tls"]);
        let everything = rule(&["*"], &["*"], &["*"], &[]);
        let cases = [
            (&reader, Method::GET, "/api/v1/namespaces/a/pods", true),
            (&reader, Method::GET, "/api/v1/namespaces/a/pods/web", true),
            (
                &reader,
                Method::GET,
                "/api/v1/namespaces/a/pods?watch=1",
                false,
            ),
            (
                &reader,
                Method::DELETE,
                "/api/v1/namespaces/a/pods/w",
                false,
            ),
            // `pods` does not cover its subresources.
            (
                &reader,
                Method::GET,
                "/api/v1/namespaces/a/pods/web/log",
                false,
            ),
            (
                &reader,
                Method::GET,
                "/apis/apps/v1/namespaces/a/deployments",
                false,
            ),
            (
                &log_reader,
                Method::GET,
                "/api/v1/namespaces/a/pods/web/log",
                true,
            ),
            (
                &log_reader,
                Method::GET,
                "/api/v1/namespaces/a/pods/web",
                false,
            ),
            (
                &any_status,
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web/status",
                true,
            ),
            (
                &any_status,
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web",
                false,
            ),
            (
                &one_secret,
                Method::GET,
                "/api/v1/namespaces/a/secrets/tls",
                true,
            ),
            (
                &one_secret,
                Method::GET,
                "/api/v1/namespaces/a/secrets/db",
                false,
            ),
            // A list names no object, unless its field selector names one.
            (
                &one_secret,
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                false,
            ),
            (&everything, Method::DELETE, "/api/v1/nodes/n1", true),
            (&everything, Method::GET, "/healthz", false),
        ];
        for (rule, method, uri, expected) in cases {
            assert_eq!(
                allows(rule, &request(method.clone(), uri)),
                expected,
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let discovery = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/healthz".into(), "/apis/*".into()]),
            ..PolicyRule::default()
        };
        assert!(allows(&discovery, &request(Method::GET, "/healthz")));
        assert!(allows(&discovery, &request(Method::GET, "/apis/apps/v1")));
        assert!(!allows(&discovery, &request(Method::GET, "/apis")));
        assert!(!allows(
            &discovery,
            &request(Method::GET, "/skiff/v1/backup")
        ));
        assert!(!allows(&discovery, &request(Method::POST, "/healthz")));
        assert!(!allows(
            &discovery,
            &request(Method::GET, "/api/v1/namespaces/a/pods")
        ));
    }

    #[test]
    fn subjects_match_users_groups_and_service_accounts() {
        let subject = |kind: &str, name: &str, ns: Option<&str>| Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.map(str::to_string),
            api_group: None,
        };
        let bob = UserInfo::authenticated("bob", vec!["dev".into()]);
        let robot = UserInfo::authenticated(service_account_user("a", "ci"), vec![]);
        assert!(subject_matches(&subject("User", "bob", None), &bob, ""));
        assert!(!subject_matches(&subject("User", "alice", None), &bob, ""));
        assert!(subject_matches(&subject("Group", "dev", None), &bob, ""));
        assert!(subject_matches(
            &subject("Group", "system:authenticated", None),
            &bob,
            ""
        ));
        assert!(!subject_matches(&subject("Group", "bob", None), &bob, ""));
        assert!(subject_matches(
            &subject("ServiceAccount", "ci", None),
            &robot,
            "a"
        ));
        assert!(!subject_matches(
            &subject("ServiceAccount", "ci", None),
            &robot,
            ""
        ));
        assert!(subject_matches(
            &subject("ServiceAccount", "ci", Some("a")),
            &robot,
            "b"
        ));
        assert!(!subject_matches(
            &subject("ServiceAccount", "ci", Some("b")),
            &robot,
            "a"
        ));
    }
}
