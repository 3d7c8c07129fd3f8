//! PodDisruptionBudgets.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::meta::{self, NameRule};
use super::workloads::validate_int_or_percent;
use super::{Errors, FieldErrorReason};
use crate::selector::LabelSelector;

/// A PodDisruptionBudget's fields, as Kubernetes validates them.
pub fn validate_pod_disruption_budget(pdb: &PodDisruptionBudget, errors: &mut Errors) {
    meta::validate_object_meta(&pdb.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = pdb.spec.as_ref() else {
        return;
    };
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errors.push(
            "spec",
            FieldErrorReason::Invalid,
            "minAvailable and maxUnavailable cannot be both set",
        );
    }
    validate_int_or_percent(spec.min_available.as_ref(), "spec.minAvailable", errors);
    validate_int_or_percent(spec.max_unavailable.as_ref(), "spec.maxUnavailable", errors);
    if let Some(selector) = spec.selector.as_ref() {
        if let Err(err) = LabelSelector::from_k8s(selector) {
            errors.invalid("spec.selector", "", err);
        }
    }
    if let Some(policy) = spec.unhealthy_pod_eviction_policy.as_deref() {
        if !matches!(policy, "IfHealthyBudget" | "AlwaysAllow") {
            errors.push(
                "spec.unhealthyPodEvictionPolicy",
                FieldErrorReason::NotSupported,
                format!("{policy:?}: supported values: \"AlwaysAllow\", \"IfHealthyBudget\""),
            );
        }
    }
}
