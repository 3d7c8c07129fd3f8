//! Go structs embedded inline in JSON (`json:",inline"`) but carried as a field of their own
//! in protobuf: Volume's `volumeSource`, Probe's `handler`, PersistentVolumeSpec's
//! `persistentVolumeSource`, EphemeralContainer's `ephemeralContainerCommon`, the
//! LocalObjectReference (`name`) of configMapKeyRef and its kin, IngressRule's `http`. Found from the
//! served OpenAPI schemas: the parent's schema has no property of the field's name but has
//! the properties of the embedded message.

use std::collections::HashSet;
use std::sync::LazyLock;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::descriptors;
use crate::openapi::documents;

/// The inline fields of every message, as `(message full name, field number)`, found once.
static INLINE: LazyLock<HashSet<(String, u32)>> = LazyLock::new(|| {
    descriptors::messages()
        .flat_map(|parent| {
            parent
                .fields()
                .filter(|field| embedded_inline(&parent, field))
                .map(|field| (parent.full_name().to_string(), field.number()))
                .collect::<Vec<_>>()
        })
        .collect()
});

/// Whether `field` of `parent` is written inline in the parent's JSON.
pub(super) fn is_inline(parent: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    INLINE.contains(&(parent.full_name().to_string(), field.number()))
}

/// Whether the schema of `parent` lacks `field` but has the fields of its message.
fn embedded_inline(parent: &MessageDescriptor, field: &FieldDescriptor) -> bool {
    let Kind::Message(embedded) = field.kind() else {
        return false;
    };
    if field.is_list() || field.is_map() {
        return false;
    }
    let definition = format!(
        "io.k8s.{}",
        parent
            .full_name()
            .replace("apiextensions_apiserver", "apiextensions-apiserver")
    );
    let Some(properties) = documents().properties(&definition) else {
        return false;
    };
    let properties: Vec<&str> = properties.collect();
    !properties.contains(&field.name())
        && embedded
            .fields()
            .any(|inner| properties.contains(&inner.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kubernetes_inline_structs() {
        let mut found: Vec<String> = INLINE
            .iter()
            .map(|(message, number)| format!("{message}#{number}"))
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                // LocalObjectReference (`name`) in the selectors and sources.
                "api.core.v1.ConfigMapEnvSource#1",
                "api.core.v1.ConfigMapKeySelector#1",
                "api.core.v1.ConfigMapProjection#1",
                "api.core.v1.ConfigMapVolumeSource#1",
                "api.core.v1.EphemeralContainer#1",
                "api.core.v1.PersistentVolumeSpec#2",
                "api.core.v1.Probe#1",
                "api.core.v1.SecretEnvSource#1",
                "api.core.v1.SecretKeySelector#1",
                "api.core.v1.SecretProjection#1",
                "api.core.v1.Volume#2",
                // IngressRuleValue (`http`).
                "api.networking.v1.IngressRule#2",
            ]
        );
    }
}
