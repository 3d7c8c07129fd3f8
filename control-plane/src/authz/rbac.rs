//! The RBAC authorizer: a request is allowed when a rule of a role bound to the user allows it.
//! ClusterRoleBindings grant their ClusterRole everywhere; a RoleBinding grants its Role, or
//! the ClusterRole it names, in its own namespace only. Non-resource URLs are granted only by
//! ClusterRoleBindings. Requests are decided by `index::RbacIndex`, built from a
//! `PolicySource`; the scan here is the plain statement of the rules that the index is tested
//! against.

use std::sync::Arc;

use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
#[cfg(test)]
use {
    super::attributes::Attributes,
    super::rules,
    crate::identity::UserInfo,
    skiff_api::k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef},
};

/// Where the RBAC objects are read from (the informer cache; plain lists in tests).
pub trait PolicySource {
    fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>>;
    /// The RoleBindings of every namespace.
    fn role_bindings(&self) -> Vec<Arc<RoleBinding>>;
    fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>>;
    fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>>;
}

/// Whether RBAC allows `user` the request `attrs`, by a scan of every binding.
#[cfg(test)]
pub fn allows(source: &impl PolicySource, user: &UserInfo, attrs: &Attributes) -> bool {
    for binding in source.cluster_role_bindings() {
        let bound = binding
            .subjects
            .iter()
            .flatten()
            .any(|s| rules::subject_matches(s, user, ""));
        if bound
            && binding.role_ref.kind == "ClusterRole"
            && role_allows(source, "", &binding.role_ref, attrs)
        {
            return true;
        }
    }
    let Some(namespace) = attrs
        .resource()
        .map(|r| r.namespace.as_str())
        .filter(|ns| !ns.is_empty())
    else {
        return false;
    };
    source.role_bindings().iter().any(|binding| {
        binding.metadata.namespace.as_deref() == Some(namespace)
            && binding
                .subjects
                .iter()
                .flatten()
                .any(|s| rules::subject_matches(s, user, namespace))
            && role_allows(source, namespace, &binding.role_ref, attrs)
    })
}

/// Whether the role a RoleBinding's `roleRef` names in `namespace` allows `attrs`.
#[cfg(test)]
fn role_allows(
    source: &impl PolicySource,
    namespace: &str,
    role_ref: &RoleRef,
    attrs: &Attributes,
) -> bool {
    let granted = |rules: Option<&Vec<PolicyRule>>| {
        rules
            .into_iter()
            .flatten()
            .any(|rule| rules::allows(rule, attrs))
    };
    match role_ref.kind.as_str() {
        "Role" => source
            .role(namespace, &role_ref.name)
            .is_some_and(|r| granted(r.rules.as_ref())),
        "ClusterRole" => source
            .cluster_role(&role_ref.name)
            .is_some_and(|r| granted(r.rules.as_ref())),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use axum::http::Method;
    use serde_json::{json, Value};

    use super::*;

    /// RBAC objects held in maps, for tests.
    #[derive(Default)]
    pub struct Objects {
        pub cluster_roles: HashMap<String, Arc<ClusterRole>>,
        pub roles: HashMap<(String, String), Arc<Role>>,
        pub cluster_role_bindings: Vec<Arc<ClusterRoleBinding>>,
        pub role_bindings: Vec<Arc<RoleBinding>>,
    }

    impl Objects {
        /// Adds an object of any of the four kinds, from its JSON.
        pub fn add(&mut self, obj: Value) {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let namespace = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match obj["kind"].as_str() {
                Some("ClusterRole") => {
                    let role = serde_json::from_value(obj).expect("ClusterRole");
                    self.cluster_roles.insert(name, Arc::new(role));
                }
                Some("Role") => {
                    let role = serde_json::from_value(obj).expect("Role");
                    self.roles.insert((namespace, name), Arc::new(role));
                }
                Some("ClusterRoleBinding") => self
                    .cluster_role_bindings
                    .push(Arc::new(serde_json::from_value(obj).expect("binding"))),
                Some("RoleBinding") => self
                    .role_bindings
                    .push(Arc::new(serde_json::from_value(obj).expect("binding"))),
                other => panic!("not an RBAC kind: {other:?}"),
            }
        }
    }

    impl PolicySource for Objects {
        fn cluster_role_bindings(&self) -> Vec<Arc<ClusterRoleBinding>> {
            self.cluster_role_bindings.clone()
        }
        fn role_bindings(&self) -> Vec<Arc<RoleBinding>> {
            self.role_bindings.clone()
        }
        fn cluster_role(&self, name: &str) -> Option<Arc<ClusterRole>> {
            self.cluster_roles.get(name).cloned()
        }
        fn role(&self, namespace: &str, name: &str) -> Option<Arc<Role>> {
            self.roles
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
        }
    }

    pub fn binding(kind: &str, ns: Option<&str>, role: (&str, &str), subjects: Value) -> Value {
        let name = format!("{}-{}", role.1, subjects[0]["name"].as_str().unwrap_or("x"));
        let mut metadata = json!({ "name": name });
        if let Some(ns) = ns {
            metadata["namespace"] = json!(ns);
        }
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
            "subjects": subjects,
        })
    }

    fn user(name: &str) -> Value {
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}])
    }

    pub fn policy() -> Objects {
        let mut objects = Objects::default();
        objects.add(json!({"kind": "ClusterRole", "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]}));
        objects.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "backup"},
            "rules": [{"nonResourceURLs": ["/skiff/v1/backup"], "verbs": ["get"]}]}),
        );
        objects.add(json!({"kind": "Role", "metadata": {"name": "web-deployer", "namespace": "a"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["get", "patch"]}]}));
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("ClusterRole", "pod-reader"),
            user("bob"),
        ));
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("Role", "web-deployer"),
            user("bob"),
        ));
        // A RoleBinding in `b` cannot use `a`'s Role.
        objects.add(binding(
            "RoleBinding",
            Some("b"),
            ("Role", "web-deployer"),
            user("carol"),
        ));
        objects.add(binding(
            "ClusterRoleBinding",
            None,
            ("ClusterRole", "pod-reader"),
            json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "auditors"}]),
        ));
        objects.add(binding(
            "ClusterRoleBinding",
            None,
            ("ClusterRole", "backup"),
            user("ops"),
        ));
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("ClusterRole", "backup"),
            user("bob"),
        ));
        objects.add(binding(
            "RoleBinding",
            Some("ci"),
            ("ClusterRole", "pod-reader"),
            json!([{"kind": "ServiceAccount", "name": "builder"}]),
        ));
        objects
    }

    #[test]
    fn bindings_grant_their_roles_in_their_scope() {
        let objects = policy();
        let bob = UserInfo::authenticated("bob", vec![]);
        let carol = UserInfo::authenticated("carol", vec![]);
        let auditor = UserInfo::authenticated("dan", vec!["auditors".into()]);
        let ops = UserInfo::authenticated("ops", vec![]);
        let builder = UserInfo::authenticated("system:serviceaccount:ci:builder", vec![]);
        let cases = [
            (&bob, Method::GET, "/api/v1/namespaces/a/pods", true),
            (&bob, Method::GET, "/api/v1/namespaces/a/pods/w/log", true),
            (&bob, Method::GET, "/api/v1/namespaces/b/pods", false),
            (&bob, Method::GET, "/api/v1/pods", false),
            (&bob, Method::DELETE, "/api/v1/namespaces/a/pods/w", false),
            (
                &bob,
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web",
                true,
            ),
            (
                &bob,
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/db",
                false,
            ),
            (
                &bob,
                Method::POST,
                "/apis/apps/v1/namespaces/a/deployments",
                false,
            ),
            // A RoleBinding never grants non-resource URLs.
            (&bob, Method::GET, "/skiff/v1/backup", false),
            (
                &carol,
                Method::GET,
                "/apis/apps/v1/namespaces/b/deployments/web",
                false,
            ),
            (&auditor, Method::GET, "/api/v1/pods", true),
            (&auditor, Method::GET, "/api/v1/namespaces/z/pods/p", true),
            (
                &auditor,
                Method::GET,
                "/api/v1/namespaces/z/secrets/s",
                false,
            ),
            (&ops, Method::GET, "/skiff/v1/backup", true),
            (&ops, Method::DELETE, "/skiff/v1/cluster/members/s1", false),
            (&builder, Method::GET, "/api/v1/namespaces/ci/pods", true),
            (&builder, Method::GET, "/api/v1/namespaces/a/pods", false),
        ];
        for (user, method, uri, expected) in cases {
            let (path, query) = match uri.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (uri, None),
            };
            let attrs = Attributes::from_request(&method, path, query);
            assert_eq!(
                allows(&objects, user, &attrs),
                expected,
                "{} {method} {uri}",
                user.name
            );
        }
    }
}
