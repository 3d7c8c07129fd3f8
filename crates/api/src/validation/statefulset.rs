//! StatefulSets: a selected template, a governing service, volume claim templates, and the
//! pod management, update and claim retention policies.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};

use super::meta::{self, NameRule};
use super::workloads::{validate_replicas, validate_selected_template};
use super::{Errors, FieldErrorReason};

/// A StatefulSet's fields, its template and claim templates, as Kubernetes validates them.
pub fn validate_statefulset(sts: &StatefulSet, errors: &mut Errors) {
    meta::validate_object_meta(&sts.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = sts.spec.as_ref() else {
        return errors.required("spec");
    };
    validate_replicas(spec.replicas, errors);
    match spec.service_name.as_deref() {
        None | Some("") => errors.required("spec.serviceName"),
        Some(name) if !meta::is_dns_label(name) => errors.invalid(
            "spec.serviceName",
            name,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ),
        Some(_) => {}
    }
    let mut seen = HashSet::new();
    for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
        let field = format!("spec.volumeClaimTemplates[{i}].metadata.name");
        match claim.metadata.name.as_deref() {
            None | Some("") => errors.required(field),
            Some(name) if !meta::is_dns_label(name) => errors.invalid(
                field,
                name,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
            ),
            Some(name) if !seen.insert(name.to_string()) => {
                errors.push(field, FieldErrorReason::Duplicate, format!("{name:?}"))
            }
            Some(_) => {}
        }
    }
    // The template is checked as the pods will be: with the claims' volumes, which its
    // containers may mount.
    let mut template = spec.template.clone();
    if let Some(pod) = template.spec.as_mut() {
        let volumes = pod.volumes.get_or_insert_with(Vec::new);
        for name in seen {
            if !volumes.iter().any(|v| v.name == name) {
                volumes.push(Volume {
                    name: name.clone(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: name,
                        read_only: None,
                    }),
                    ..Default::default()
                });
            }
        }
    }
    validate_selected_template(&spec.selector, Some(&template), errors);
    one_of(
        spec.pod_management_policy.as_deref(),
        "spec.podManagementPolicy",
        &["OrderedReady", "Parallel"],
        errors,
    );
    if let Some(strategy) = spec.update_strategy.as_ref() {
        match strategy.type_.as_deref() {
            None | Some("RollingUpdate") => {
                let partition = strategy.rolling_update.as_ref().and_then(|r| r.partition);
                if let Some(p) = partition.filter(|p| *p < 0) {
                    errors.invalid(
                        "spec.updateStrategy.rollingUpdate.partition",
                        p,
                        "must be greater than or equal to 0",
                    );
                }
            }
            Some("OnDelete") => {
                if strategy.rolling_update.is_some() {
                    errors.push(
                        "spec.updateStrategy.rollingUpdate",
                        FieldErrorReason::Forbidden,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    );
                }
            }
            Some(other) => errors.push(
                "spec.updateStrategy.type",
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"OnDelete\", \"RollingUpdate\""),
            ),
        }
    }
    if let Some(retention) = spec.persistent_volume_claim_retention_policy.as_ref() {
        let policies = ["Retain", "Delete"];
        one_of(
            retention.when_deleted.as_deref(),
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
            &policies,
            errors,
        );
        one_of(
            retention.when_scaled.as_deref(),
            "spec.persistentVolumeClaimRetentionPolicy.whenScaled",
            &policies,
            errors,
        );
    }
    if let Some(limit) = spec.revision_history_limit.filter(|l| *l < 0) {
        errors.invalid(
            "spec.revisionHistoryLimit",
            limit,
            "must be greater than or equal to 0",
        );
    }
}

/// `value`, when set, is one of `supported`.
fn one_of(value: Option<&str>, field: &str, supported: &[&str], errors: &mut Errors) {
    if let Some(value) = value.filter(|v| !supported.contains(v)) {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        errors.push(
            field,
            FieldErrorReason::NotSupported,
            format!("{value:?}: supported values: {}", quoted.join(", ")),
        );
    }
}
