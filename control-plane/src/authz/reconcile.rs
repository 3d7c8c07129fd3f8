//! Keeping the default roles and bindings (`defaults`) in the store: each is created when
//! missing, and one marked `rbac.authorization.kubernetes.io/autoupdate: "true"` (or not
//! marked) gets back the rules and subjects it lost, as kube-apiserver reconciles them; extra
//! rules and subjects stay.

use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use skiff_api::resources;

use super::defaults::{cluster_role_bindings, cluster_roles, AUTOUPDATE};
use crate::error::ApiError;
use crate::registry::{typed, Registry, Subresource};

/// Creates the default roles and bindings that are missing and restores what auto-updated
/// ones lost.
pub async fn ensure(registry: &Registry) -> Result<(), ApiError> {
    for role in cluster_roles() {
        let role: ClusterRole = typed::from_value(role)?;
        reconcile(registry, role, |stored, default| {
            if default.aggregation_rule.is_some() {
                // The aggregation controller owns the rules.
                let changed = stored.aggregation_rule != default.aggregation_rule;
                stored.aggregation_rule = default.aggregation_rule.clone();
                return changed;
            }
            let rules = stored.rules.get_or_insert_with(Vec::new);
            add_missing(rules, default.rules.iter().flatten())
        })
        .await?;
    }
    for binding in cluster_role_bindings() {
        let binding: ClusterRoleBinding = typed::from_value(binding)?;
        reconcile(registry, binding, |stored, default| {
            let subjects = stored.subjects.get_or_insert_with(Vec::new);
            add_missing(subjects, default.subjects.iter().flatten())
        })
        .await?;
    }
    Ok(())
}

/// Appends the `defaults` that `items` lacks; whether it appended any.
fn add_missing<'a, T: PartialEq + Clone + 'a>(
    items: &mut Vec<T>,
    defaults: impl Iterator<Item = &'a T>,
) -> bool {
    let before = items.len();
    for item in defaults {
        if !items.contains(item) {
            items.push(item.clone());
        }
    }
    items.len() != before
}

/// Creates `default`, or lets `restore` repair the stored object if it is auto-updated.
async fn reconcile<K: typed::Object>(
    registry: &Registry,
    default: K,
    restore: impl Fn(&mut K, &K) -> bool,
) -> Result<(), ApiError> {
    let kind = resources::of::<K>();
    let name = default.metadata().name.clone().unwrap_or_default();
    match registry.get(kind, None, &name).await {
        Ok(value) => {
            let mut stored: K = typed::from_value(value)?;
            let auto = stored
                .metadata()
                .annotations
                .as_ref()
                .and_then(|a| a.get(AUTOUPDATE))
                .is_none_or(|v| v == "true");
            if auto && restore(&mut stored, &default) {
                registry.update_typed(&stored, Subresource::Main).await?;
            }
            Ok(())
        }
        Err(ApiError::NotFound { .. }) => match registry.create_typed(&default).await {
            Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    }
}
