//! Unknown fields of an object, found by walking it along its kind's schema: what Kubernetes'
//! field validation reports (`unknown field "spec.replicaz"`) and, unless the request is
//! refused, drops.

use serde_json::{Map, Value};

use super::schemas::referenced;

/// Removes the fields of `value` that schema `root` of `schemas` does not define and returns
/// their paths, sorted (`spec.template.spec.containers[0].imagePullPolicyy`). In a `patch`
/// (merge or strategic), keys starting with `$` (`$patch`, `$setElementOrder/...`) and keys
/// set to `null` (which delete, never add, a field) are not fields to check.
/// Objects whose schema names no properties (maps with `additionalProperties`, `RawExtension`,
/// `x-kubernetes-preserve-unknown-fields`) take any key.
pub fn remove_unknown(
    schemas: &Map<String, Value>,
    root: &str,
    value: &mut Value,
    patch: bool,
) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(schema) = schemas.get(root) {
        let walk = Walk { schemas, patch };
        walk.value(schema, value, String::new(), &mut found);
    }
    found.sort();
    found
}

struct Walk<'a> {
    schemas: &'a Map<String, Value>,
    patch: bool,
}

impl Walk<'_> {
    /// A property's own schema, following `$ref` / `allOf: [{$ref}]`.
    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match referenced(schema).and_then(|name| self.schemas.get(name)) {
            Some(target) => target,
            None => schema,
        }
    }

    fn value(&self, schema: &Value, value: &mut Value, path: String, found: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return;
        }
        match value {
            Value::Object(fields) => {
                if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                    let mut unknown = Vec::new();
                    for (key, child) in fields.iter_mut() {
                        if self.patch && (key.starts_with('$') || child.is_null()) {
                            continue;
                        }
                        let child_path = join(&path, key);
                        match properties.get(key) {
                            Some(property) => self.value(property, child, child_path, found),
                            None => unknown.push(key.clone()),
                        }
                    }
                    for key in unknown {
                        fields.remove(&key);
                        found.push(join(&path, &key));
                    }
                } else if let Some(values) =
                    schema.get("additionalProperties").filter(|s| s.is_object())
                {
                    for (key, child) in fields.iter_mut() {
                        self.value(values, child, join(&path, key), found);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.value(item_schema, item, format!("{path}[{i}]"), found);
                    }
                }
            }
            _ => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_api::resources::by_kind;

    use crate::openapi::schemas::components;

    #[test]
    fn unknown_fields_are_named_by_path_and_removed() {
        let deployment = by_kind("apps/v1", "Deployment").expect("served");
        let schemas = components(&[deployment], false);
        let mut obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"any": "label"}, "colour": "red"},
            "spec": {
                "replicaz": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPortt": 1}],
                     "resources": {"limits": {"cpu": "1"}}},
                ]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
            },
        });
        let found = remove_unknown(&schemas, "io.k8s.api.apps.v1.Deployment", &mut obj, false);
        assert_eq!(
            found,
            [
                "metadata.colour",
                "spec.replicaz",
                "spec.template.spec.containers[0].ports[0].hostPortt",
            ]
        );
        assert!(obj["spec"].get("replicaz").is_none());
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["ports"][0],
            json!({"containerPort": 80})
        );
        assert_eq!(obj["metadata"]["labels"]["any"], "label");
    }

    #[test]
    fn patch_directives_and_nulls_are_not_fields() {
        let deployment = by_kind("apps/v1", "Deployment").expect("served");
        let schemas = components(&[deployment], false);
        let mut patch = json!({"spec": {"replicaz": null, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "$patch": "delete"}],
        }}}});
        let before = patch.clone();
        assert!(
            remove_unknown(&schemas, "io.k8s.api.apps.v1.Deployment", &mut patch, true).is_empty()
        );
        assert_eq!(patch, before);
        let found = remove_unknown(&schemas, "io.k8s.api.apps.v1.Deployment", &mut patch, false);
        assert_eq!(found.len(), 3, "{found:?}");
    }
}
