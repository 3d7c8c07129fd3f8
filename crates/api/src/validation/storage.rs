//! PersistentVolumes, PersistentVolumeClaims and StorageClasses, as Kubernetes validates them
//! (the parts Skiff serves: local and hostPath volumes).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};
use crate::quantity;

const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
const RECLAIM_POLICIES: [&str; 2] = ["Retain", "Delete"];
const BINDING_MODES: [&str; 2] = ["Immediate", "WaitForFirstConsumer"];

/// A PersistentVolume's fields, as Kubernetes validates them.
pub fn validate_persistent_volume(volume: &PersistentVolume, errors: &mut Errors) {
    meta::validate_object_meta(&volume.metadata, false, NameRule::Subdomain, errors);
    let Some(spec) = volume.spec.as_ref() else {
        errors.required("spec");
        return;
    };
    validate_access_modes(spec.access_modes.as_deref(), "spec.accessModes", errors);
    validate_storage(spec.capacity.as_ref(), "spec.capacity", errors);
    if let Some(policy) = spec.persistent_volume_reclaim_policy.as_deref() {
        if !RECLAIM_POLICIES.contains(&policy) {
            not_supported(
                "spec.persistentVolumeReclaimPolicy",
                policy,
                &RECLAIM_POLICIES,
                errors,
            );
        }
    }
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        meta::validate_name(class, NameRule::Subdomain, "spec.storageClassName", errors);
    }
    match (spec.local.as_ref(), spec.host_path.as_ref()) {
        (None, None) => errors.push(
            "spec",
            FieldErrorReason::Required,
            "must specify a volume type: one of local or hostPath",
        ),
        (Some(_), Some(_)) => errors.push(
            "spec.hostPath",
            FieldErrorReason::Forbidden,
            "may not specify more than 1 volume type",
        ),
        (Some(local), None) => {
            validate_absolute(&local.path, "spec.local.path", errors);
            let has_affinity = spec
                .node_affinity
                .as_ref()
                .and_then(|a| a.required.as_ref())
                .is_some_and(|r| !r.node_selector_terms.is_empty());
            if !has_affinity {
                errors.push(
                    "spec.nodeAffinity",
                    FieldErrorReason::Required,
                    "Local volume requires node affinity",
                );
            }
        }
        (None, Some(host_path)) => validate_absolute(&host_path.path, "spec.hostPath.path", errors),
    }
}

/// A PersistentVolumeClaim's fields, as Kubernetes validates them.
pub fn validate_persistent_volume_claim(claim: &PersistentVolumeClaim, errors: &mut Errors) {
    meta::validate_object_meta(&claim.metadata, true, NameRule::Subdomain, errors);
    let Some(spec) = claim.spec.as_ref() else {
        errors.required("spec");
        return;
    };
    validate_access_modes(spec.access_modes.as_deref(), "spec.accessModes", errors);
    validate_storage(
        spec.resources.as_ref().and_then(|r| r.requests.as_ref()),
        "spec.resources.requests",
        errors,
    );
    if let Some(class) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        meta::validate_name(class, NameRule::Subdomain, "spec.storageClassName", errors);
    }
}

/// A StorageClass's fields, as Kubernetes validates them.
pub fn validate_storage_class(class: &StorageClass, errors: &mut Errors) {
    meta::validate_object_meta(&class.metadata, false, NameRule::Subdomain, errors);
    if class.provisioner.is_empty() {
        errors.required("provisioner");
    } else if !meta::is_qualified_name(&class.provisioner) {
        errors.invalid(
            "provisioner",
            &class.provisioner,
            "a provisioner name must be a qualified name such as example.com/provisioner",
        );
    }
    if let Some(policy) = class.reclaim_policy.as_deref() {
        if !RECLAIM_POLICIES.contains(&policy) {
            not_supported("reclaimPolicy", policy, &RECLAIM_POLICIES, errors);
        }
    }
    if let Some(mode) = class.volume_binding_mode.as_deref() {
        if !BINDING_MODES.contains(&mode) {
            not_supported("volumeBindingMode", mode, &BINDING_MODES, errors);
        }
    }
}

fn validate_access_modes(modes: Option<&[String]>, field: &str, errors: &mut Errors) {
    let modes = modes.unwrap_or_default();
    if modes.is_empty() {
        errors.push(
            field,
            FieldErrorReason::Required,
            "at least 1 access mode is required",
        );
    }
    for (i, mode) in modes.iter().enumerate() {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            not_supported(&format!("{field}[{i}]"), mode, &ACCESS_MODES, errors);
        }
    }
}

/// `<field>.storage` must be a positive size.
fn validate_storage(map: Option<&BTreeMap<String, Quantity>>, field: &str, errors: &mut Errors) {
    let at = format!("{field}.storage");
    match map.and_then(|m| m.get("storage")) {
        None => errors.required(at),
        Some(q) => match quantity::parse_bytes(&q.0) {
            Ok(0) => errors.invalid(at, &q.0, "must be greater than zero"),
            Ok(_) => {}
            Err(err) => errors.invalid(at, &q.0, err),
        },
    }
}

fn validate_absolute(path: &str, field: &str, errors: &mut Errors) {
    if !path.starts_with('/') {
        errors.invalid(field, path, "must be an absolute path");
    } else if path.split('/').any(|part| part == "..") {
        errors.invalid(field, path, "must not contain '..'");
    }
}

fn not_supported(field: &str, value: &str, supported: &[&str], errors: &mut Errors) {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    errors.push(
        field,
        FieldErrorReason::NotSupported,
        format!("{value:?}: supported values: {}", supported.join(", ")),
    );
}
