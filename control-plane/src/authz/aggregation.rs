//! The ClusterRole aggregation controller: a ClusterRole with an `aggregationRule` gets the
//! rules of every ClusterRole its label selectors match (so a role labelled
//! `rbac.authorization.k8s.io/aggregate-to-view: "true"` extends `view`). Runs on the leader.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use skiff_api::selector::LabelSelector;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::registry::{Registry, Subresource};
use crate::runtime::informer::Informer;

/// Pause before trying again after a failed write.
const RETRY: Duration = Duration::from_secs(1);

/// Keeps aggregated ClusterRoles' rules up to date until `shutdown`.
pub fn spawn(registry: Registry, shutdown: CancellationToken) {
    let roles: Arc<Informer<ClusterRole>> = Informer::start(registry.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut changes = roles.subscribe();
        roles.synced().await;
        loop {
            let retry = match write_all(&registry, &roles).await {
                Ok(()) => None,
                Err(err) => {
                    tracing::debug!(%err, "aggregating ClusterRoles failed; retrying");
                    Some(RETRY)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changes.recv() => {}
                _ = tokio::time::sleep(retry.unwrap_or(Duration::MAX)), if retry.is_some() => {}
            }
            // A burst of changes is one pass.
            while changes.try_recv().is_ok() {}
        }
    });
}

async fn write_all(registry: &Registry, roles: &Informer<ClusterRole>) -> Result<(), ApiError> {
    for role in aggregate(&roles.list(|_| true)) {
        let written = registry.update_typed(&role, Subresource::Main).await?;
        roles
            .wait_for(crate::runtime::informer::revision_of(&written))
            .await;
    }
    Ok(())
}

/// The aggregated roles whose rules are not yet the union of the roles they select, with
/// those rules (in the order of the selected roles' names, without duplicates). Aggregation is
/// followed through aggregated roles in the same pass (`admin` selects `edit`, which selects
/// `view`), so a fresh cluster's roles are complete after one write each.
pub fn aggregate(roles: &[Arc<ClusterRole>]) -> Vec<ClusterRole> {
    let mut by_name: Vec<&Arc<ClusterRole>> = roles.iter().collect();
    by_name.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let selectors: Vec<Option<Vec<LabelSelector>>> =
        by_name.iter().map(|role| selectors(role)).collect();
    let mut rules: Vec<Vec<PolicyRule>> = by_name
        .iter()
        .map(|role| role.rules.clone().unwrap_or_default())
        .collect();
    // Each pass settles at least one more level of aggregation; chains are never longer than
    // the number of roles (a cycle settles on the union of its members).
    for _ in 0..by_name.len() {
        let mut changed = false;
        for (i, selectors) in selectors.iter().enumerate() {
            let Some(selectors) = selectors else { continue };
            let union = selected_rules(&by_name, &rules, i, selectors);
            if union != rules[i] {
                rules[i] = union;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    by_name
        .iter()
        .zip(rules)
        .zip(&selectors)
        .filter(|((role, rules), selectors)| {
            selectors.is_some() && role.rules.as_deref().unwrap_or_default() != rules.as_slice()
        })
        .map(|((role, rules), _)| {
            let mut role = ClusterRole::clone(role);
            role.rules = Some(rules);
            role
        })
        .collect()
}

/// The label selectors of `role`'s aggregation rule, if it has one.
fn selectors(role: &ClusterRole) -> Option<Vec<LabelSelector>> {
    let rule = role.aggregation_rule.as_ref()?;
    Some(
        rule.cluster_role_selectors
            .iter()
            .flatten()
            .filter_map(|s| LabelSelector::from_k8s(s).ok())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// The union of the current `rules` of every role (but role `of` itself) that `selectors` match.
fn selected_rules(
    by_name: &[&Arc<ClusterRole>],
    rules: &[Vec<PolicyRule>],
    of: usize,
    selectors: &[LabelSelector],
) -> Vec<PolicyRule> {
    let no_labels = BTreeMap::new();
    let mut union: Vec<PolicyRule> = Vec::new();
    for (j, other) in by_name.iter().enumerate() {
        let labels = other.metadata.labels.as_ref().unwrap_or(&no_labels);
        if j == of || !selectors.iter().any(|s| s.matches(labels)) {
            continue;
        }
        for rule in &rules[j] {
            if !union.contains(rule) {
                union.push(rule.clone());
            }
        }
    }
    union
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use serde_json::json;

    use super::*;
    use crate::authz::attributes::Attributes;
    use crate::authz::defaults;
    use crate::authz::rbac;
    use crate::authz::rbac::tests::{binding, Objects};
    use crate::identity::UserInfo;

    /// Runs one aggregation pass (as the controller does on each change) and checks that it
    /// settled: a second pass changes nothing.
    fn settle(objects: &mut Objects) {
        let roles: Vec<_> = objects.cluster_roles.values().cloned().collect();
        for role in aggregate(&roles) {
            let name = role.metadata.name.clone().unwrap_or_default();
            objects.cluster_roles.insert(name, Arc::new(role));
        }
        let roles: Vec<_> = objects.cluster_roles.values().cloned().collect();
        assert!(aggregate(&roles).is_empty(), "one pass did not settle");
    }

    fn can(objects: &Objects, user: &str, method: Method, path: &str) -> bool {
        let user = UserInfo::authenticated(user, vec![]);
        rbac::allows(
            objects,
            &user,
            &Attributes::from_request(&method, path, None),
        )
    }

    #[test]
    fn view_edit_and_admin_aggregate_and_users_extend_them() {
        let mut objects = Objects::default();
        for role in defaults::cluster_roles() {
            objects.add(role);
        }
        let user = |name: &str| json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}]);
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("ClusterRole", "view"),
            user("viewer"),
        ));
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("ClusterRole", "edit"),
            user("editor"),
        ));
        objects.add(binding(
            "RoleBinding",
            Some("a"),
            ("ClusterRole", "admin"),
            user("owner"),
        ));
        settle(&mut objects);
        let deployments = "/apis/apps/v1/namespaces/a/deployments";
        assert!(can(&objects, "viewer", Method::GET, deployments));
        assert!(!can(&objects, "viewer", Method::POST, deployments));
        assert!(!can(
            &objects,
            "viewer",
            Method::GET,
            "/api/v1/namespaces/a/secrets"
        ));
        assert!(can(&objects, "editor", Method::POST, deployments));
        assert!(can(&objects, "editor", Method::GET, deployments));
        assert!(can(
            &objects,
            "editor",
            Method::GET,
            "/api/v1/namespaces/a/secrets"
        ));
        assert!(!can(
            &objects,
            "editor",
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings"
        ));
        assert!(can(
            &objects,
            "owner",
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings"
        ));
        assert!(can(
            &objects,
            "owner",
            Method::DELETE,
            "/api/v1/namespaces/a/pods/p"
        ));
        assert!(!can(
            &objects,
            "owner",
            Method::GET,
            "/api/v1/namespaces/b/pods"
        ));

        // A user's role labelled aggregate-to-view extends view (and so edit and admin).
        let widgets = "/apis/example.com/v1/namespaces/a/widgets";
        assert!(!can(&objects, "viewer", Method::GET, widgets));
        objects.add(json!({"kind": "ClusterRole", "metadata": {"name": "widget-viewer",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}]}));
        settle(&mut objects);
        assert!(can(&objects, "viewer", Method::GET, widgets));
        assert!(can(&objects, "owner", Method::GET, widgets));
        assert!(aggregate(&objects.cluster_roles.values().cloned().collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn roles_that_select_each_other_settle_on_the_union() {
        let mut objects = Objects::default();
        let select = |key: &str| json!({"clusterRoleSelectors": [{"matchLabels": {key: "true"}}]});
        objects.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "a", "labels": {"x": "true"}},
            "aggregationRule": select("y")}),
        );
        objects.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "b", "labels": {"y": "true"}},
            "aggregationRule": select("x")}),
        );
        objects.add(
            json!({"kind": "ClusterRole", "metadata": {"name": "c", "labels": {"x": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
        settle(&mut objects);
        for name in ["a", "b"] {
            let rules = objects.cluster_roles[name]
                .rules
                .clone()
                .unwrap_or_default();
            assert_eq!(
                rules,
                objects.cluster_roles["c"].rules.clone().unwrap_or_default(),
                "{name}"
            );
        }
    }
}
