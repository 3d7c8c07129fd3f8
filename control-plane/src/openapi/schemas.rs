//! The JSON schemas of the served kinds, generated from the k8s-openapi types' `JsonSchema`
//! impls (its `schemars` feature) under Kubernetes' own names (`io.k8s.api.core.v1.Pod`),
//! with what Kubernetes adds to its documents: `x-kubernetes-group-version-kind` on each kind,
//! a `...List` schema per kind, and the patch strategies and merge keys of the lists that
//! strategic merge patches merge (from `registry::strategic_merge::merge_keys`).

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use skiff_api::k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use skiff_api::k8s_openapi::api::autoscaling::v1::Scale;
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, Job};
use skiff_api::k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service, ServiceAccount,
};
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_api::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ListMeta, Patch, Status, WatchEvent,
};
use skiff_api::k8s_openapi::Resource;
use skiff_api::resources::ResourceKind;

use crate::registry::strategic_merge::merge_keys::{self, Strategy};

/// Where schemas are referenced from in an OpenAPI 3 document.
pub const V3_REFS: &str = "#/components/schemas/";

/// The `DeleteOptions`, `Status` and `WatchEvent` schemas' names, which paths reference.
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
/// The `autoscaling/v1` `Scale` of the `/scale` subresources.
pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// One kind's schema source: its type's `apiVersion`, `kind` and the function adding its
/// schema (and all it references) to a generator.
struct KindSchema {
    api_version: &'static str,
    kind: &'static str,
    add: fn(&mut SchemaGenerator),
    name: fn() -> String,
}

const fn entry<K: Resource + JsonSchema>() -> KindSchema {
    KindSchema {
        api_version: K::API_VERSION,
        kind: K::KIND,
        add: |generator| drop(generator.subschema_for::<K>()),
        name: || K::schema_name().into_owned(),
    }
}

/// The type of every kind Skiff serves (`skiff_api::resources::KINDS`).
static SERVED: &[KindSchema] = &[
    entry::<Namespace>(),
    entry::<Pod>(),
    entry::<ConfigMap>(),
    entry::<Secret>(),
    entry::<ServiceAccount>(),
    entry::<PersistentVolume>(),
    entry::<PersistentVolumeClaim>(),
    entry::<Service>(),
    entry::<Node>(),
    entry::<Event>(),
    entry::<ResourceQuota>(),
    entry::<LimitRange>(),
    entry::<Deployment>(),
    entry::<ReplicaSet>(),
    entry::<DaemonSet>(),
    entry::<StatefulSet>(),
    entry::<ControllerRevision>(),
    entry::<Job>(),
    entry::<CronJob>(),
    entry::<RuntimeClass>(),
    entry::<StorageClass>(),
    entry::<PodDisruptionBudget>(),
    entry::<Endpoints>(),
    entry::<EndpointSlice>(),
    entry::<Ingress>(),
    entry::<IngressClass>(),
    entry::<Lease>(),
    entry::<CertificateSigningRequest>(),
    entry::<Role>(),
    entry::<ClusterRole>(),
    entry::<RoleBinding>(),
    entry::<ClusterRoleBinding>(),
];

fn served(kind: &ResourceKind) -> Option<&'static KindSchema> {
    SERVED
        .iter()
        .find(|s| s.kind == kind.kind && s.api_version == kind.api_version())
}

/// The schema name of a served kind (`io.k8s.api.apps.v1.Deployment`).
pub fn name(kind: &ResourceKind) -> Option<String> {
    served(kind).map(|s| (s.name)())
}

/// The schema name of a served kind's list (`io.k8s.api.apps.v1.DeploymentList`).
pub fn list_name(kind: &ResourceKind) -> Option<String> {
    name(kind).map(|n| format!("{n}List"))
}

/// The schemas of `kinds` and of everything they reference, their lists, `DeleteOptions`,
/// `Status`, `WatchEvent`, `Patch` (and `Scale` when `scale`), keyed by schema name, as an OpenAPI 3
/// document's `components.schemas` (references `#/components/schemas/...`).
pub fn components(kinds: &[&ResourceKind], scale: bool) -> Map<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3());
    generator.subschema_for::<DeleteOptions>();
    generator.subschema_for::<Status>();
    generator.subschema_for::<WatchEvent<Pod>>();
    generator.subschema_for::<ListMeta>();
    generator.subschema_for::<Patch>();
    if scale {
        generator.subschema_for::<Scale>();
    }
    for kind in kinds {
        if let Some(schema) = served(kind) {
            (schema.add)(&mut generator);
        }
    }
    let mut schemas = generator.take_definitions(true);
    for kind in kinds {
        let Some(name) = name(kind) else { continue };
        if let Some(schema) = schemas.get_mut(&name) {
            schema["x-kubernetes-group-version-kind"] = group_version_kind(kind);
            // k8s-openapi requires `metadata` (it is not optional in Rust); Kubernetes does not.
            if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r != "metadata");
                if required.is_empty() {
                    schema.as_object_mut().map(|s| s.remove("required"));
                }
            }
        }
        schemas.insert(format!("{name}List"), list_schema(kind, &name));
        if let Some(root) = merge_keys::root(kind.kind) {
            mark_patch_strategies(&mut schemas, &name, root);
        }
    }
    schemas
}

/// `[{"group": "apps", "kind": "Deployment", "version": "v1"}]`.
pub fn group_version_kind(kind: &ResourceKind) -> Value {
    json!([{"group": kind.group, "kind": kind.kind, "version": kind.version}])
}

fn list_schema(kind: &ResourceKind, item: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {} objects.", kind.kind, kind.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "items": {"type": "array", "description": format!("List of {}.", kind.plural),
                "items": {"$ref": format!("{V3_REFS}{item}")}},
            "metadata": {"allOf": [{"$ref": format!("{V3_REFS}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")}],
                "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [{"group": kind.group, "kind": kind.list_kind(), "version": kind.version}],
    })
}

/// The schema a property refers to (`$ref`, or `allOf: [{$ref}]` with siblings), by name.
pub fn referenced(property: &Value) -> Option<&str> {
    let reference = property
        .get("$ref")
        .or_else(|| property.pointer("/allOf/0/$ref"))?;
    reference.as_str()?.rsplit('/').next()
}

/// Marks the properties of schema `name` (strategic merge type `ty`) and, through the nested
/// types the merge-key table names, of the schemas below it, with Kubernetes' patch extensions.
fn mark_patch_strategies(schemas: &mut Map<String, Value>, name: &str, ty: &str) {
    let Some(properties) = schemas
        .get(name)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let mut marks = Vec::new();
    let mut nested = Vec::new();
    for (field, property) in properties {
        let Some((strategy, child)) = merge_keys::field(ty, field) else {
            continue;
        };
        let target = referenced(property).or_else(|| property.get("items").and_then(referenced));
        match strategy {
            Strategy::Nested => {}
            Strategy::MergeByKey(key) => marks.push((field.clone(), Some(key))),
            Strategy::MergePrimitives => marks.push((field.clone(), None)),
        }
        if let (Some(target), false) = (target, child.is_empty()) {
            nested.push((target.to_string(), child));
        }
    }
    if let Some(properties) = schemas
        .get_mut(name)
        .and_then(|s| s.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        for (field, key) in marks {
            let Some(property) = properties.get_mut(&field) else {
                continue;
            };
            property["x-kubernetes-patch-strategy"] = json!("merge");
            if let Some(key) = key {
                property["x-kubernetes-patch-merge-key"] = json!(key);
            }
        }
    }
    for (target, child) in nested {
        mark_patch_strategies(schemas, &target, child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::resources::{by_kind, KINDS};

    #[test]
    fn every_served_kind_has_a_generated_schema() {
        let kinds: Vec<&ResourceKind> = KINDS.iter().collect();
        let schemas = components(&kinds, true);
        for kind in KINDS {
            let name = name(kind).unwrap_or_else(|| panic!("{} has no schema", kind.kind));
            let schema = &schemas[&name];
            assert_eq!(
                schema["x-kubernetes-group-version-kind"][0]["kind"],
                kind.kind
            );
            assert!(schema["properties"]["metadata"].is_object(), "{name}");
            assert!(schemas.contains_key(&format!("{name}List")), "{name}List");
        }
        for name in [DELETE_OPTIONS, STATUS, WATCH_EVENT, SCALE] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }

    #[test]
    fn schemas_carry_descriptions_references_and_merge_keys() {
        let deployment = by_kind("apps/v1", "Deployment").expect("served");
        let schemas = components(&[deployment], false);
        let spec = &schemas["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(spec["properties"]["replicas"]["type"], "integer");
        assert!(spec["properties"]["replicas"]["description"]
            .as_str()
            .expect("description")
            .starts_with("Number of desired pods"));
        assert_eq!(
            referenced(&spec["properties"]["template"]),
            Some("io.k8s.api.core.v1.PodTemplateSpec")
        );
        let pod_spec = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"];
        assert_eq!(
            pod_spec["containers"]["x-kubernetes-patch-merge-key"],
            "name"
        );
        assert_eq!(
            pod_spec["containers"]["x-kubernetes-patch-strategy"],
            "merge"
        );
        let container = &schemas["io.k8s.api.core.v1.Container"]["properties"];
        assert_eq!(
            container["ports"]["x-kubernetes-patch-merge-key"],
            "containerPort"
        );
        let meta = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
        assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
        assert!(schemas["io.k8s.api.apps.v1.Deployment"]
            .get("required")
            .is_none());
        // Only the group-version's kinds (and what they reference) are in its document.
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Service"));
    }
}
