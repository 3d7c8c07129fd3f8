//! The Swagger 2.0 (`/openapi/v2`) form of the OpenAPI 3 parts: `definitions` instead of
//! `components.schemas`, `$ref` with sibling descriptions instead of `allOf: [{$ref}]`, body
//! parameters instead of `requestBody`, and response `schema`s instead of `content`.

use serde_json::{json, Map, Value};

use super::schemas::V3_REFS;

/// Where schemas are referenced from in a Swagger 2.0 document.
const V2_REFS: &str = "#/definitions/";

/// The Swagger 2.0 document of `schemas` and `paths` (both in their OpenAPI 3 form).
pub fn document(schemas: &Map<String, Value>, paths: &Map<String, Value>, version: &str) -> Value {
    let definitions: Map<String, Value> = schemas
        .iter()
        .map(|(name, schema)| (name.clone(), schema_v2(schema)))
        .collect();
    let paths: Map<String, Value> = paths
        .iter()
        .map(|(path, item)| (path.clone(), path_item_v2(item)))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": version},
        "paths": paths,
        "definitions": definitions,
    })
}

/// A schema with its references rewritten for Swagger 2.0.
fn schema_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(fields) => {
            let mut out = Map::new();
            for (key, value) in fields {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        out.insert(key.clone(), json!(r.replace(V3_REFS, V2_REFS)));
                    }
                    ("allOf", Value::Array(all))
                        if all.len() == 1 && all[0].get("$ref").is_some() =>
                    {
                        let r = all[0]["$ref"].as_str().unwrap_or_default();
                        out.insert("$ref".into(), json!(r.replace(V3_REFS, V2_REFS)));
                    }
                    _ => {
                        out.insert(key.clone(), schema_v2(value));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(schema_v2).collect()),
        other => other.clone(),
    }
}

fn path_item_v2(item: &Value) -> Value {
    let mut out = Map::new();
    for (key, value) in item.as_object().into_iter().flatten() {
        let converted = if key == "parameters" {
            parameters_v2(value)
        } else {
            operation_v2(value)
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

/// `{name, in, schema: {type}}` → `{name, in, type}`.
fn parameters_v2(parameters: &Value) -> Value {
    let converted = parameters.as_array().into_iter().flatten().map(|p| {
        let mut p = p.clone();
        if let Some(fields) = p.as_object_mut() {
            if let Some(Value::Object(schema)) = fields.remove("schema") {
                fields.extend(schema);
            }
        }
        p
    });
    Value::Array(converted.collect())
}

fn operation_v2(op: &Value) -> Value {
    let mut out = op.clone();
    let Some(fields) = out.as_object_mut() else {
        return out;
    };
    let mut parameters = parameters_v2(fields.get("parameters").unwrap_or(&json!([])));
    if let Some(body) = fields.remove("requestBody") {
        let consumes: Vec<&String> = body["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        fields.insert("consumes".into(), json!(consumes));
        let schema = body["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| schema_v2(&c["schema"]))
            .unwrap_or(Value::Null);
        if let Some(list) = parameters.as_array_mut() {
            list.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
        }
    }
    fields.insert("parameters".into(), parameters);
    fields.insert("produces".into(), json!(["application/json"]));
    if let Some(Value::Object(responses)) = fields.get_mut("responses") {
        for response in responses.values_mut() {
            let schema = schema_v2(&response["content"]["application/json"]["schema"]);
            *response = json!({"description": response["description"], "schema": schema});
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_bodies_and_responses_take_the_swagger_form() {
        let schemas = Map::from_iter([(
            "io.k8s.api.apps.v1.Deployment".to_string(),
            json!({"properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}], "description": "d"}}}),
        )]);
        let paths = Map::from_iter([(
            "/apis/apps/v1/deployments".to_string(),
            json!({"parameters": [{"name": "namespace", "in": "path", "schema": {"type": "string"}}],
                "post": {"requestBody": {"content": {"*/*": {"schema": {"$ref": "#/components/schemas/X"}}}},
                    "responses": {"201": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}}}}),
        )]);
        let doc = document(&schemas, &paths, "v1");
        assert_eq!(
            doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"],
            json!({"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec", "description": "d"})
        );
        let item = &doc["paths"]["/apis/apps/v1/deployments"];
        assert_eq!(item["parameters"][0]["type"], "string");
        assert_eq!(item["post"]["parameters"][0]["in"], "body");
        assert_eq!(
            item["post"]["parameters"][0]["schema"]["$ref"],
            "#/definitions/X"
        );
        assert_eq!(
            item["post"]["responses"]["201"]["schema"]["$ref"],
            "#/definitions/X"
        );
    }
}
