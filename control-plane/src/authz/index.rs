//! The RBAC bindings indexed by subject, with their roles' rules resolved: built once per
//! change of the RBAC objects, so a request looks up the user's name and groups instead of
//! scanning every (Cluster)RoleBinding and looking up its role. It answers exactly as the scan
//! in `rbac` does (the tests hold the two to each other).

use std::collections::HashMap;
use std::sync::Arc;

use skiff_api::k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};

use super::attributes::Attributes;
use super::rbac::PolicySource;
use super::rules;
use crate::identity::UserInfo;

/// The rules of one role, shared by every binding to it.
type Rules = Arc<[PolicyRule]>;

/// What a set of bindings grants, by user name and by group.
#[derive(Default)]
struct Grants {
    users: HashMap<String, Vec<Rules>>,
    groups: HashMap<String, Vec<Rules>>,
}

impl Grants {
    /// Records that `subject` (of a binding in `namespace`, empty for cluster-wide) has `rules`.
    fn add(&mut self, subject: &Subject, namespace: &str, rules: &Rules) {
        let (map, key) = match subject.kind.as_str() {
            "User" => (&mut self.users, subject.name.clone()),
            "Group" => (&mut self.groups, subject.name.clone()),
            "ServiceAccount" => {
                let sa_namespace = subject
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                if sa_namespace.is_empty() {
                    return;
                }
                let user = rules::service_account_user(sa_namespace, &subject.name);
                (&mut self.users, user)
            }
            _ => return,
        };
        map.entry(key).or_default().push(rules.clone());
    }

    /// Whether a rule granted to `user` or one of its groups allows `attrs`.
    fn allow(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        self.granted(user)
            .any(|rules| rules.iter().any(|rule| rules::allows(rule, attrs)))
    }

    /// The rules granted to `user` by name and to its groups.
    fn granted<'a>(&'a self, user: &'a UserInfo) -> impl Iterator<Item = &'a Rules> {
        let by_name = self.users.get(&user.name).into_iter();
        let by_group = user.groups.iter().filter_map(|g| self.groups.get(g));
        by_name.chain(by_group).flatten()
    }
}

/// Every binding's grants: ClusterRoleBindings' everywhere, RoleBindings' by namespace.
#[derive(Default)]
pub struct RbacIndex {
    cluster: Grants,
    namespaced: HashMap<String, Grants>,
}

impl RbacIndex {
    /// Indexes the bindings of `source`, resolving each one's role once.
    pub fn build(source: &impl PolicySource) -> RbacIndex {
        let mut cluster_roles: HashMap<String, Option<Rules>> = HashMap::new();
        let mut cluster_role = |name: &str| {
            cluster_roles
                .entry(name.to_string())
                .or_insert_with(|| {
                    source
                        .cluster_role(name)
                        .map(|r| Rules::from(r.rules.clone().unwrap_or_default()))
                })
                .clone()
        };
        let mut index = RbacIndex::default();
        for binding in source.cluster_role_bindings() {
            if binding.role_ref.kind != "ClusterRole" {
                continue;
            }
            let Some(rules) = cluster_role(&binding.role_ref.name) else {
                continue;
            };
            for subject in binding.subjects.iter().flatten() {
                index.cluster.add(subject, "", &rules);
            }
        }
        for binding in source.role_bindings() {
            let namespace = binding.metadata.namespace.clone().unwrap_or_default();
            if namespace.is_empty() {
                continue;
            }
            let rules = match role_rules(source, &namespace, &binding.role_ref) {
                Some(RoleKind::Role(rules)) => rules,
                Some(RoleKind::ClusterRole(name)) => match cluster_role(&name) {
                    Some(rules) => rules,
                    None => continue,
                },
                None => continue,
            };
            let grants = index.namespaced.entry(namespace.clone()).or_default();
            for subject in binding.subjects.iter().flatten() {
                grants.add(subject, &namespace, &rules);
            }
        }
        index
    }

    /// Every rule RBAC grants `user` in `namespace` (cluster-wide ones only for ""), as
    /// Kubernetes' rule resolver lists them.
    pub fn rules(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let namespaced = Some(namespace)
            .filter(|ns| !ns.is_empty())
            .and_then(|ns| self.namespaced.get(ns));
        self.cluster
            .granted(user)
            .chain(namespaced.into_iter().flat_map(|g| g.granted(user)))
            .flat_map(|rules| rules.iter().cloned())
            .collect()
    }

    /// Whether RBAC allows `user` the request `attrs`.
    pub fn allows(&self, user: &UserInfo, attrs: &Attributes) -> bool {
        if self.cluster.allow(user, attrs) {
            return true;
        }
        attrs
            .resource()
            .map(|r| r.namespace.as_str())
            .filter(|ns| !ns.is_empty())
            .and_then(|ns| self.namespaced.get(ns))
            .is_some_and(|grants| grants.allow(user, attrs))
    }
}

/// What a RoleBinding's `roleRef` resolves to.
enum RoleKind {
    /// A Role of the binding's namespace, with its rules.
    Role(Rules),
    /// A ClusterRole, by name (resolved once for all bindings).
    ClusterRole(String),
}

fn role_rules(source: &impl PolicySource, namespace: &str, role_ref: &RoleRef) -> Option<RoleKind> {
    match role_ref.kind.as_str() {
        "Role" => source
            .role(namespace, &role_ref.name)
            .map(|r| RoleKind::Role(Rules::from(r.rules.clone().unwrap_or_default()))),
        "ClusterRole" => Some(RoleKind::ClusterRole(role_ref.name.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::json;

    use super::*;
    use crate::authz::rbac::{self, tests::binding, tests::Objects};

    fn subjects(kind: &str, name: &str, namespace: Option<&str>) -> serde_json::Value {
        let mut subject = json!({"kind": kind, "name": name});
        if kind != "ServiceAccount" {
            subject["apiGroup"] = json!("rbac.authorization.k8s.io");
        }
        if let Some(ns) = namespace {
            subject["namespace"] = json!(ns);
        }
        json!([subject])
    }

    /// Roles and bindings of every shape the index must get right.
    fn objects() -> Objects {
        let mut objects = Objects::default();
        objects.add(json!({"kind": "ClusterRole", "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}]}));
        objects.add(json!({"kind": "ClusterRole", "metadata": {"name": "writer"},
            "rules": [{"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["create", "delete"]}]}));
        objects.add(json!({"kind": "ClusterRole", "metadata": {"name": "urls"},
            "rules": [{"nonResourceURLs": ["/skiff/v1/*"], "verbs": ["get"]}]}));
        objects.add(json!({"kind": "Role", "metadata": {"name": "secrets", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"], "verbs": ["get"]}]}));
        let bindings = [
            (
                "ClusterRoleBinding",
                None,
                ("ClusterRole", "reader"),
                subjects("Group", "auditors", None),
            ),
            (
                "ClusterRoleBinding",
                None,
                ("ClusterRole", "urls"),
                subjects("User", "ops", None),
            ),
            // A ServiceAccount of a ClusterRoleBinding needs its namespace.
            (
                "ClusterRoleBinding",
                None,
                ("ClusterRole", "writer"),
                subjects("ServiceAccount", "ci", Some("build")),
            ),
            (
                "ClusterRoleBinding",
                None,
                ("ClusterRole", "writer"),
                subjects("ServiceAccount", "lost", None),
            ),
            // A ClusterRoleBinding to a Role grants nothing.
            (
                "ClusterRoleBinding",
                None,
                ("Role", "secrets"),
                subjects("User", "eve", None),
            ),
            (
                "RoleBinding",
                Some("a"),
                ("ClusterRole", "writer"),
                subjects("User", "bob", None),
            ),
            (
                "RoleBinding",
                Some("a"),
                ("ClusterRole", "urls"),
                subjects("User", "bob", None),
            ),
            (
                "RoleBinding",
                Some("a"),
                ("Role", "secrets"),
                subjects("Group", "devs", None),
            ),
            (
                "RoleBinding",
                Some("b"),
                ("Role", "secrets"),
                subjects("User", "carol", None),
            ),
            (
                "RoleBinding",
                Some("b"),
                ("ClusterRole", "missing"),
                subjects("User", "carol", None),
            ),
            (
                "RoleBinding",
                Some("a"),
                ("ClusterRole", "reader"),
                subjects("ServiceAccount", "app", None),
            ),
            (
                "RoleBinding",
                Some("b"),
                ("ClusterRole", "reader"),
                subjects("ServiceAccount", "app", Some("a")),
            ),
        ];
        for (kind, ns, role, subjects) in bindings {
            objects.add(binding(kind, ns, role, subjects));
        }
        objects
    }

    fn users() -> Vec<UserInfo> {
        vec![
            UserInfo::authenticated("bob", vec![]),
            UserInfo::authenticated("carol", vec!["devs".into()]),
            UserInfo::authenticated("dan", vec!["auditors".into(), "devs".into()]),
            UserInfo::authenticated("ops", vec![]),
            UserInfo::authenticated("eve", vec![]),
            UserInfo::authenticated("system:serviceaccount:a:app", vec![]),
            UserInfo::authenticated("system:serviceaccount:build:ci", vec![]),
            UserInfo::authenticated("system:serviceaccount::lost", vec![]),
            UserInfo::anonymous(),
        ]
    }

    fn requests() -> Vec<Attributes> {
        let mut requests = Vec::new();
        for ns in ["a", "b", "c"] {
            for (method, path) in [
                (Method::GET, format!("/api/v1/namespaces/{ns}/pods")),
                (Method::GET, format!("/api/v1/namespaces/{ns}/secrets/s1")),
                (Method::GET, format!("/api/v1/namespaces/{ns}/secrets/s2")),
                (
                    Method::POST,
                    format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                ),
                (
                    Method::DELETE,
                    format!("/api/v1/namespaces/{ns}/configmaps/c"),
                ),
            ] {
                requests.push(Attributes::from_request(&method, &path, None));
            }
        }
        for (method, path) in [
            (Method::GET, "/api/v1/pods"),
            (Method::GET, "/skiff/v1/backup"),
            (Method::POST, "/api/v1/namespaces"),
        ] {
            requests.push(Attributes::from_request(&method, path, None));
        }
        requests
    }

    /// Asserts the index and the scan agree on every user and request; returns how many
    /// requests were allowed (so a test can see the table is not all refusals).
    fn agree(objects: &Objects) -> usize {
        let index = RbacIndex::build(objects);
        let mut allowed = 0;
        for user in users() {
            for attrs in requests() {
                let scan = rbac::allows(objects, &user, &attrs);
                assert_eq!(index.allows(&user, &attrs), scan, "{} {attrs:?}", user.name);
                allowed += usize::from(scan);
            }
        }
        allowed
    }

    #[test]
    fn the_index_answers_as_the_scan_does() {
        let objects = objects();
        assert!(agree(&objects) > 10);
        assert!(agree(&rbac::tests::policy()) > 0);
        let index = RbacIndex::build(&objects);
        let bob = UserInfo::authenticated("bob", vec![]);
        let create = |ns: &str| {
            Attributes::from_request(
                &Method::POST,
                &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
                None,
            )
        };
        assert!(index.allows(&bob, &create("a")));
        assert!(!index.allows(&bob, &create("b")));
        let sa = UserInfo::authenticated("system:serviceaccount:build:ci", vec![]);
        assert!(index.allows(&sa, &create("z")));
    }

    #[test]
    fn the_index_follows_binding_and_role_changes() {
        let mut objects = objects();
        let carol = UserInfo::authenticated("carol", vec![]);
        let list_b = Attributes::from_request(&Method::GET, "/api/v1/namespaces/b/pods", None);
        assert!(!RbacIndex::build(&objects).allows(&carol, &list_b));
        // The ClusterRole carol's binding in `b` names appears.
        objects.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "missing"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}),
        );
        assert!(RbacIndex::build(&objects).allows(&carol, &list_b));
        agree(&objects);
        // Bindings go away.
        objects
            .role_bindings
            .retain(|b| b.metadata.namespace.as_deref() != Some("a"));
        objects.cluster_role_bindings.clear();
        agree(&objects);
        let dan = UserInfo::authenticated("dan", vec!["auditors".into()]);
        let all_pods = Attributes::from_request(&Method::GET, "/api/v1/pods", None);
        assert!(!RbacIndex::build(&objects).allows(&dan, &all_pods));
    }
}
