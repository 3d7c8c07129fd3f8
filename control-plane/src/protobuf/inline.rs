//! Go structs embedded inline in JSON (`json:",inline"`) but carried as a field of their own
//! in protobuf: Volume's `volumeSource`, Probe's `handler`, PersistentVolumeSpec's
//! `persistentVolumeSource`, EphemeralContainer's `ephemeralContainerCommon`. Found from the
//! served OpenAPI schemas: the parent's schema has no property of the field's name but has
//! the properties of the embedded message.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::openapi::documents;

/// Whether `field` of `parent` is written inline in the parent's JSON.
pub(super) fn is_inline(parent: &MessageDescriptor, field: &FieldDescriptor) -> bool {
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
