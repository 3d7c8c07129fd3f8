//! The protobuf form of the Swagger 2.0 document (gnostic's `openapi.v2.Document`), which
//! client-go's `OpenAPISchema()` asks for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`)
//! and decodes with no JSON fallback: what kubectl 1.20's validation, `explain` and strategic
//! merge patches read, and the `dryRun` parameter its dry-run check looks for in the paths.
//! Definitions (vendor extensions as YAML, which JSON is) and paths (operations with their
//! parameters and extensions, not their responses) are encoded.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, text: &str) {
        self.bytes(field, text.as_bytes());
    }

    fn message(&mut self, field: u32, message: Message) {
        self.bytes(field, &message.0);
    }

    fn int(&mut self, field: u32, value: i64) {
        self.key(field, 0);
        self.varint(value as u64);
    }

    fn bool(&mut self, field: u32, value: bool) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    fn double(&mut self, field: u32, value: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&value.to_le_bytes());
    }
}

/// `openapi.v2.Document` with `swagger`, `info`, `paths` and `definitions` of `document`
/// (Swagger 2.0 JSON).
pub fn encode(document: &Value) -> Vec<u8> {
    let mut out = Message::default();
    out.string(1, document["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Message::default();
    info.string(1, document["info"]["title"].as_str().unwrap_or_default());
    info.string(2, document["info"]["version"].as_str().unwrap_or_default());
    out.message(2, info);
    let mut paths = Message::default();
    for (name, item) in document["paths"].as_object().into_iter().flatten() {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, path_item(item));
        paths.message(2, named);
    }
    out.message(8, paths);
    let mut definitions = Message::default();
    for (name, schema) in document["definitions"].as_object().into_iter().flatten() {
        definitions.message(1, named_schema(name, schema));
    }
    out.message(9, definitions);
    out.0
}

/// `openapi.v2.PathItem`: its operations and parameters.
fn path_item(item: &Value) -> Message {
    let mut out = Message::default();
    for (number, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method) {
            out.message(number, operation(op));
        }
    }
    for parameter in item["parameters"].as_array().into_iter().flatten() {
        out.message(9, parameters_item(parameter));
    }
    out
}

/// `openapi.v2.Operation`, without its responses.
fn operation(op: &Value) -> Message {
    let mut out = Message::default();
    for tag in op["tags"].as_array().into_iter().flatten() {
        out.string(1, tag.as_str().unwrap_or_default());
    }
    if let Some(description) = op["description"].as_str() {
        out.string(3, description);
    }
    if let Some(id) = op["operationId"].as_str() {
        out.string(5, id);
    }
    for (number, key) in [(6, "produces"), (7, "consumes")] {
        for media in op[key].as_array().into_iter().flatten() {
            out.string(number, media.as_str().unwrap_or_default());
        }
    }
    for parameter in op["parameters"].as_array().into_iter().flatten() {
        out.message(8, parameters_item(parameter));
    }
    vendor_extensions(&mut out, 13, op);
    out
}

/// `openapi.v2.ParametersItem` holding a body, path or query parameter.
fn parameters_item(parameter: &Value) -> Message {
    let text = |key: &str| parameter[key].as_str().unwrap_or_default();
    let mut inner = Message::default();
    let wrapped = if text("in") == "body" {
        // BodyParameter: description 1, name 2, in 3, required 4, schema 5.
        inner.string(1, text("description"));
        inner.string(2, text("name"));
        inner.string(3, "body");
        inner.bool(4, true);
        inner.message(5, schema_message(&parameter["schema"]));
        let mut body = Message::default();
        body.message(1, inner);
        body
    } else {
        // Path (4) and query (3) sub-schemas: required 1, in 2, description 3, name 4, then
        // type 5 (path) or 6 (query, after allow_empty_value).
        let path = text("in") == "path";
        inner.bool(1, parameter["required"].as_bool().unwrap_or(false));
        inner.string(2, text("in"));
        inner.string(3, text("description"));
        inner.string(4, text("name"));
        inner.string(if path { 5 } else { 6 }, text("type"));
        let mut non_body = Message::default();
        non_body.message(if path { 4 } else { 3 }, inner);
        let mut parameter = Message::default();
        parameter.message(2, non_body);
        parameter
    };
    let mut item = Message::default();
    item.message(1, wrapped);
    item
}

/// The `x-...` fields of `value` as `NamedAny` vendor extensions, field `number`.
fn vendor_extensions(out: &mut Message, number: u32, value: &Value) {
    let fields = value.as_object().into_iter().flatten();
    for (key, value) in fields.filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, key);
        named.message(2, any(value));
        out.message(number, named);
    }
}

fn named_schema(name: &str, schema: &Value) -> Message {
    let mut named = Message::default();
    named.string(1, name);
    named.message(2, schema_message(schema));
    named
}

/// `openapi.v2.Any` with the value as YAML (JSON is YAML).
fn any(value: &Value) -> Message {
    let mut any = Message::default();
    any.string(2, &value.to_string());
    any
}

/// `openapi.v2.Schema`.
fn schema_message(schema: &Value) -> Message {
    let mut out = Message::default();
    let Some(fields) = schema.as_object() else {
        return out;
    };
    let text = |key: &str| fields.get(key).and_then(Value::as_str);
    for (number, key) in [(1, "$ref"), (2, "format"), (3, "title"), (4, "description")] {
        if let Some(value) = text(key) {
            out.string(number, value);
        }
    }
    for (number, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(value) = fields.get(key).and_then(Value::as_f64) {
            out.double(number, value);
        }
    }
    for (number, key) in [
        (8, "exclusiveMaximum"),
        (10, "exclusiveMinimum"),
        (16, "uniqueItems"),
        (27, "readOnly"),
    ] {
        if let Some(value) = fields.get(key).and_then(Value::as_bool) {
            out.bool(number, value);
        }
    }
    for (number, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(value) = fields.get(key).and_then(Value::as_i64) {
            out.int(number, value);
        }
    }
    if let Some(pattern) = text("pattern") {
        out.string(13, pattern);
    }
    for required in fields
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(19, required.as_str().unwrap_or_default());
    }
    for value in fields
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(20, any(value));
    }
    match fields.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut item = Message::default();
            item.bool(2, *allowed);
            out.message(21, item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema_message(schema));
            out.message(21, item);
        }
        _ => {}
    }
    let types: Vec<&str> = match fields.get("type") {
        Some(Value::String(t)) => vec![t],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let mut item = Message::default();
        for t in types {
            item.string(1, t);
        }
        out.message(22, item);
    }
    if let Some(items) = fields.get("items") {
        let mut item = Message::default();
        match items {
            Value::Array(schemas) => schemas
                .iter()
                .for_each(|s| item.message(1, schema_message(s))),
            schema => item.message(1, schema_message(schema)),
        }
        out.message(23, item);
    }
    for schema in fields
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(24, schema_message(schema));
    }
    if let Some(properties) = fields.get("properties").and_then(Value::as_object) {
        out.message(25, properties_message(properties));
    }
    vendor_extensions(&mut out, 31, schema);
    out
}

fn properties_message(properties: &Map<String, Value>) -> Message {
    let mut out = Message::default();
    for (name, schema) in properties {
        out.message(1, named_schema(name, schema));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemas_encode_as_gnostic_messages() {
        let document = json!({
            "swagger": "2.0",
            "info": {"title": "K", "version": "v"},
            "definitions": {"D": {
                "type": "object",
                "required": ["a"],
                "properties": {"a": {"type": "integer", "format": "int32"}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "D", "version": "v1"}],
            }},
        });
        let bytes = encode(&document);
        // swagger = 1 ("2.0"), then info = 2 (title 1 "K", version 2 "v").
        assert_eq!(&bytes[..5], [0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(&bytes[5..13], [0x12, 6, 0x0a, 1, b'K', 0x12, 1, b'v']);
        // paths = 8 (empty here), then definitions = 9 holding one NamedSchema named "D".
        assert_eq!(&bytes[13..15], [0x42, 0]);
        assert_eq!(bytes[15], 0x4a);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("int32") && text.contains("x-kubernetes-group-version-kind"));
        assert!(
            text.contains(r#"[{"group":"","kind":"D","version":"v1"}]"#),
            "{text}"
        );
    }

    #[test]
    fn patch_operations_carry_their_query_parameters_and_kind() {
        let document = json!({"swagger": "2.0", "info": {}, "definitions": {}, "paths": {"/p": {
            "patch": {
                "parameters": [{"name": "dryRun", "in": "query", "type": "string"}],
                "x-kubernetes-group-version-kind": {"group": "apps", "kind": "D", "version": "v1"},
            },
        }}});
        let text = String::from_utf8_lossy(&encode(&document)).to_string();
        assert!(text.contains("dryRun") && text.contains("query"), "{text}");
        assert!(
            text.contains(r#"{"group":"apps","kind":"D","version":"v1"}"#),
            "{text}"
        );
    }

    #[test]
    fn varints_take_seven_bits_a_byte() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
    }
}
