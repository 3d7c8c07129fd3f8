//! The `paths` of an OpenAPI 3 document: the served endpoints of each kind (collection, object,
//! the all-namespaces list, and the `status` and `scale` subresources) with their query
//! parameters, as Kubernetes lists them. kubectl reads the `fieldValidation` parameter of the
//! PATCH operations (with their `x-kubernetes-group-version-kind`) to decide whether the server
//! validates fields itself.

use serde_json::{json, Map, Value};
use skiff_api::resources::ResourceKind;

use super::schemas::{self, V3_REFS};
use crate::registry::has_status_subresource;

/// The schema name of the patch bodies.
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// The paths of `kind` (whose schema is `schema`), added to `paths`.
pub fn add(paths: &mut Map<String, Value>, kind: &ResourceKind, schema: &str) {
    let op = Operations {
        kind,
        schema,
        speaks: (kind.group, kind.version, kind.kind),
    };
    let collection = kind.collection_path(Some("{namespace}"));
    let object = format!("{collection}/{{name}}");
    let mut scope = Vec::new();
    if kind.namespaced {
        scope.push(path_parameter(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let mut name_scope = scope.clone();
    name_scope.push(path_parameter(
        "name",
        &format!("name of the {}", kind.kind),
    ));
    paths.insert(
        collection,
        json!({
            "parameters": scope,
            "get": op.list(false),
            "post": op.create(),
            "delete": op.delete_collection(),
        }),
    );
    paths.insert(
        object.clone(),
        json!({
            "parameters": name_scope,
            "get": op.read(""),
            "put": op.replace(""),
            "patch": op.patch(""),
            "delete": op.delete(),
        }),
    );
    if kind.namespaced {
        paths.insert(kind.collection_path(None), json!({"get": op.list(true)}));
    }
    if has_status_subresource(kind) {
        paths.insert(
            format!("{object}/status"),
            json!({
                "parameters": name_scope,
                "get": op.read("Status"),
                "put": op.replace("Status"),
                "patch": op.patch("Status"),
            }),
        );
    }
    if crate::registry::has_scale_subresource(kind) {
        let scale = Operations {
            kind,
            schema: schemas::SCALE,
            speaks: ("autoscaling", "v1", "Scale"),
        };
        paths.insert(
            format!("{object}/scale"),
            json!({
                "parameters": name_scope,
                "get": scale.read("Scale"),
                "put": scale.replace("Scale"),
                "patch": scale.patch("Scale"),
            }),
        );
    }
}

/// The operations on one kind's paths.
struct Operations<'a> {
    kind: &'a ResourceKind,
    /// The schema of the bodies (the kind's, or `Scale`'s).
    schema: &'a str,
    /// The group, version and kind of the bodies.
    speaks: (&'a str, &'a str, &'a str),
}

impl Operations<'_> {
    /// `readAppsV1NamespacedDeploymentStatus`.
    fn operation_id(&self, verb: &str, suffix: &str) -> String {
        let scope = if self.kind.namespaced && verb != "list" {
            "Namespaced"
        } else {
            ""
        };
        format!(
            "{verb}{}{scope}{}{suffix}",
            group_version_id(self.kind),
            self.kind.kind
        )
    }

    fn operation(&self, verb: &str, action: &str, suffix: &str, description: String) -> Value {
        json!({
            "description": description,
            "operationId": self.operation_id(verb, suffix),
            "tags": [group_version_id(self.kind)],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {
                "group": self.speaks.0, "version": self.speaks.1, "kind": self.speaks.2,
            },
        })
    }

    fn list(&self, all_namespaces: bool) -> Value {
        let suffix = if all_namespaces {
            "ForAllNamespaces"
        } else {
            ""
        };
        let mut op = self.operation(
            "list",
            "list",
            suffix,
            format!("list or watch objects of kind {}", self.kind.kind),
        );
        if !all_namespaces && self.kind.namespaced {
            op["operationId"] = json!(format!(
                "list{}Namespaced{}",
                group_version_id(self.kind),
                self.kind.kind
            ));
        }
        op["parameters"] = json!(list_parameters());
        let list = schemas::list_name(self.kind).unwrap_or_default();
        let mut ok = response(&list);
        ok["content"]["application/json;stream=watch"] =
            json!({"schema": {"$ref": format!("{V3_REFS}{}", schemas::WATCH_EVENT)}});
        op["responses"] = json!({ "200": ok });
        op
    }

    fn create(&self) -> Value {
        let mut op = self.operation("create", "post", "", format!("create a {}", self.kind.kind));
        op["parameters"] = json!(write_parameters());
        op["requestBody"] = body(&[("*/*", self.schema)]);
        op["responses"] = json!({
            "200": response(self.schema), "201": response(self.schema), "202": response(self.schema),
        });
        op
    }

    fn read(&self, suffix: &str) -> Value {
        let mut op = self.operation(
            "read",
            "get",
            suffix,
            format!("read the specified {}{suffix}", self.kind.kind),
        );
        op["responses"] = json!({"200": response(self.schema)});
        op
    }

    fn replace(&self, suffix: &str) -> Value {
        let mut op = self.operation(
            "replace",
            "put",
            suffix,
            format!("replace the specified {}{suffix}", self.kind.kind),
        );
        op["parameters"] = json!(write_parameters());
        op["requestBody"] = body(&[("*/*", self.schema)]);
        op["responses"] = json!({"200": response(self.schema), "201": response(self.schema)});
        op
    }

    fn patch(&self, suffix: &str) -> Value {
        let mut op = self.operation(
            "patch",
            "patch",
            suffix,
            format!("partially update the specified {}{suffix}", self.kind.kind),
        );
        let mut parameters = write_parameters();
        parameters.push(query_parameter(
            "force",
            "boolean",
            "Force is going to \"force\" Apply requests; Skiff serves no apply patches yet.",
        ));
        op["parameters"] = json!(parameters);
        op["requestBody"] = body(&[
            ("application/json-patch+json", PATCH),
            ("application/merge-patch+json", PATCH),
            ("application/strategic-merge-patch+json", PATCH),
        ]);
        op["responses"] = json!({"200": response(self.schema), "201": response(self.schema)});
        op
    }

    fn delete(&self) -> Value {
        let mut op = self.operation(
            "delete",
            "delete",
            "",
            format!("delete a {}", self.kind.kind),
        );
        op["parameters"] = json!(delete_parameters());
        op["requestBody"] = body(&[("*/*", schemas::DELETE_OPTIONS)]);
        op["responses"] = json!({
            "200": response(schemas::STATUS), "202": response(schemas::STATUS),
        });
        op
    }

    fn delete_collection(&self) -> Value {
        let mut op = self.operation(
            "deletecollection",
            "deletecollection",
            "",
            format!("delete collection of {}", self.kind.kind),
        );
        op["operationId"] = json!(format!(
            "deleteCollection{}{}{}",
            group_version_id(self.kind),
            if self.kind.namespaced {
                "Namespaced"
            } else {
                ""
            },
            self.kind.kind
        ));
        let mut parameters = delete_parameters();
        parameters.extend(list_parameters());
        op["parameters"] = json!(parameters);
        op["requestBody"] = body(&[("*/*", schemas::DELETE_OPTIONS)]);
        op["responses"] = json!({"200": response(schemas::STATUS)});
        op
    }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`, as Kubernetes' operation ids spell them.
fn group_version_id(kind: &ResourceKind) -> String {
    let group = if kind.group.is_empty() {
        "core"
    } else {
        kind.group.trim_end_matches(".k8s.io")
    };
    let mut id: String = group.split('.').map(capitalized).collect();
    id.push_str(&capitalized(kind.version));
    id
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn response(schema: &str) -> Value {
    json!({
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": format!("{V3_REFS}{schema}")}}},
    })
}

fn body(types: &[(&str, &str)]) -> Value {
    let content: Map<String, Value> = types
        .iter()
        .map(|(media, schema)| {
            (
                media.to_string(),
                json!({"schema": {"$ref": format!("{V3_REFS}{schema}")}}),
            )
        })
        .collect();
    json!({"content": content, "required": true})
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string", "uniqueItems": true}})
}

fn query_parameter(name: &str, ty: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description,
        "schema": {"type": ty, "uniqueItems": true}})
}

fn write_parameters() -> Vec<Value> {
    vec![
        query_parameter("dryRun", "string", "When present, indicates that modifications should not be persisted. The only valid value is All."),
        query_parameter("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes."),
        query_parameter("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
        query_parameter("pretty", "string", "If 'true', then the output is pretty printed."),
    ]
}

fn list_parameters() -> Vec<Value> {
    vec![
        query_parameter("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        query_parameter("continue", "string", "The continue option should be set when retrieving more results from the server."),
        query_parameter("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields."),
        query_parameter("labelSelector", "string", "A selector to restrict the list of returned objects by their labels."),
        query_parameter("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        query_parameter("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        query_parameter("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        query_parameter("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        query_parameter("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        query_parameter("dryRun", "string", "When present, indicates that modifications should not be persisted. The only valid value is All."),
        query_parameter("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
        query_parameter("propagationPolicy", "string", "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::resources::by_kind;

    #[test]
    fn deployments_have_kubernetes_paths_and_field_validation_on_patch() {
        let kind = by_kind("apps/v1", "Deployment").expect("served");
        let mut paths = Map::new();
        add(&mut paths, kind, "io.k8s.api.apps.v1.Deployment");
        let object = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        assert_eq!(
            object["patch"]["operationId"],
            "patchAppsV1NamespacedDeployment"
        );
        assert_eq!(
            object["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let names: Vec<&str> = object["patch"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"), "{names:?}");
        assert!(paths.contains_key("/apis/apps/v1/deployments"));
        assert!(
            paths.contains_key("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status")
        );
        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
        );
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        let roles = by_kind("rbac.authorization.k8s.io/v1", "ClusterRole").expect("served");
        let mut paths = Map::new();
        add(&mut paths, roles, "io.k8s.api.rbac.v1.ClusterRole");
        assert_eq!(
            paths["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
            "listRbacAuthorizationV1ClusterRole"
        );
    }
}
