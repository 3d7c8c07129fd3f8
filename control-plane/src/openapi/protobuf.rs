//! The protobuf form of the Swagger 2.0 document (gnostic's `openapi.v2.Document`), which
//! client-go's `OpenAPISchema()` asks for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`)
//! and decodes with no JSON fallback: what kubectl 1.20's validation, `explain` and strategic
//! merge patches read. The `definitions` are encoded (every schema, vendor extensions as
//! YAML, which JSON is); the `paths` are not, as no client reads them from this form.

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

/// `openapi.v2.Document` with `swagger`, `info` and `definitions` of `document` (Swagger 2.0 JSON).
pub fn encode(document: &Value) -> Vec<u8> {
    let mut out = Message::default();
    out.string(1, document["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Message::default();
    info.string(1, document["info"]["title"].as_str().unwrap_or_default());
    info.string(2, document["info"]["version"].as_str().unwrap_or_default());
    out.message(2, info);
    let mut definitions = Message::default();
    for (name, schema) in document["definitions"].as_object().into_iter().flatten() {
        definitions.message(1, named_schema(name, schema));
    }
    out.message(9, definitions);
    out.0
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
    for (key, value) in fields.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, key);
        named.message(2, any(value));
        out.message(31, named);
    }
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
        // definitions = 9, holding one NamedSchema (1) named "D".
        assert_eq!(bytes[13], 0x4a);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("int32") && text.contains("x-kubernetes-group-version-kind"));
        assert!(
            text.contains(r#"[{"group":"","kind":"D","version":"v1"}]"#),
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
