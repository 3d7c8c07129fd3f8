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
/// those rules (in the order of the selected roles' names, without duplicates).
pub fn aggregate(roles: &[Arc<ClusterRole>]) -> Vec<ClusterRole> {
    let mut by_name: Vec<&Arc<ClusterRole>> = roles.iter().collect();
    by_name.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut updated = Vec::new();
    for role in &by_name {
        let Some(rule) = role.aggregation_rule.as_ref() else {
            continue;
        };
        let selectors: Vec<LabelSelector> = rule
            .cluster_role_selectors
            .iter()
            .flatten()
            .filter_map(|s| LabelSelector::from_k8s(s).ok())
            .filter(|s| !s.is_empty())
            .collect();
        let no_labels = BTreeMap::new();
        let mut rules: Vec<PolicyRule> = Vec::new();
        for other in &by_name {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            let labels = other.metadata.labels.as_ref().unwrap_or(&no_labels);
            if selectors.iter().any(|s| s.matches(labels)) {
                for r in other.rules.iter().flatten() {
                    if !rules.contains(r) {
                        rules.push(r.clone());
                    }
                }
            }
        }
        if role.rules.as_deref().unwrap_or_default() != rules.as_slice() {
            let mut role = ClusterRole::clone(role);
            role.rules = Some(rules);
            updated.push(role);
        }
    }
    updated
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

    /// Runs aggregation passes (as the controller does on each change) until nothing changes.
    fn settle(objects: &mut Objects) {
        for _ in 0..10 {
            let roles: Vec<_> = objects.cluster_roles.values().cloned().collect();
            let updated = aggregate(&roles);
            if updated.is_empty() {
                return;
            }
            for role in updated {
                let name = role.metadata.name.clone().unwrap_or_default();
                objects.cluster_roles.insert(name, Arc::new(role));
            }
        }
        panic!("aggregation did not settle");
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
}
