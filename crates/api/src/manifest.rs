//! Reading manifests: multi-document YAML or JSON into objects of served kinds.

use serde::Deserialize;
use serde_json::Value;

use crate::nesting::{self, MAX_DEPTH};
use crate::resources;
use crate::strict::StrictValue;

/// A manifest that cannot be used; every variant names the source and the document.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: document {document}: invalid YAML{location}: {message}")]
    Syntax {
        source_name: String,
        document: usize,
        location: String,
        message: String,
    },
    #[error("{source_name}: document {document}: {field} is required")]
    MissingField {
        source_name: String,
        document: usize,
        field: &'static str,
    },
    #[error(
        "{source_name}: document {document}: unknown kind {kind:?} in apiVersion {api_version:?}"
    )]
    UnknownKind {
        source_name: String,
        document: usize,
        api_version: String,
        kind: String,
    },
    #[error("no objects in {source_name}")]
    Empty { source_name: String },
    #[error("{source_name}: nested deeper than {limit} levels; refused before parsing")]
    TooDeep { source_name: String, limit: usize },
    #[error("{source_name}: document {document}: expected a mapping (an object), found {found}")]
    NotAnObject {
        source_name: String,
        document: usize,
        found: &'static str,
    },
}

/// Parses every document of `text` (YAML, of which JSON is a subset); expands `kind: List`;
/// skips empty documents but fails if there is no object at all, and refuses nesting deeper
/// than [`MAX_DEPTH`] before parsing. Documents are numbered from 1 in errors.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<Value>, ManifestError> {
    if nesting::depth_exceeds(text, MAX_DEPTH) {
        return Err(ManifestError::TooDeep {
            source_name: source.to_string(),
            limit: MAX_DEPTH,
        });
    }
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = StrictValue::deserialize(document)
            .map(|v| v.0)
            .map_err(|err| ManifestError::Syntax {
                source_name: source.to_string(),
                document: number,
                location: err
                    .location()
                    .map(|l| format!(" at line {} column {}", l.line(), l.column()))
                    .unwrap_or_default(),
                message: err.to_string(),
            })?;
        match value {
            Value::Null => continue,
            Value::Object(_) => {}
            other => {
                return Err(ManifestError::NotAnObject {
                    source_name: source.to_string(),
                    document: number,
                    found: type_name(&other),
                })
            }
        }
        if value.get("kind").and_then(Value::as_str) == Some("List") {
            for item in value
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                objects.push(check_type(source, number, item.clone())?);
            }
        } else {
            objects.push(check_type(source, number, value)?);
        }
    }
    if objects.is_empty() {
        return Err(ManifestError::Empty {
            source_name: source.to_string(),
        });
    }
    Ok(objects)
}

fn check_type(source: &str, document: usize, obj: Value) -> Result<Value, ManifestError> {
    let field = |name: &'static str| {
        obj.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(ManifestError::MissingField {
                source_name: source.to_string(),
                document,
                field: name,
            })
    };
    let api_version = field("apiVersion")?;
    let kind = field("kind")?;
    if resources::by_kind(&api_version, &kind).is_none() {
        return Err(ManifestError::UnknownKind {
            source_name: source.to_string(),
            document,
            api_version,
            kind,
        });
    }
    Ok(obj)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_yaml_and_lists() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\n";
        let objects = parse_documents("m.yaml", text).expect("parse");
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", "Deployment"]);
        let json = parse_documents(
            "m.json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#,
        )
        .expect("json");
        assert_eq!(json.len(), 1);
    }

    #[test]
    fn errors_name_the_source_document_and_problem() {
        let err =
            parse_documents("bad.yaml", "apiVersion: v1\nkind: [unclosed\n").expect_err("syntax");
        let msg = err.to_string();
        assert!(
            msg.starts_with("bad.yaml: document 1: invalid YAML at line"),
            "{msg}"
        );
        let err = parse_documents("w.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Widget\n").expect_err("kind");
        assert_eq!(
            err.to_string(),
            "w.yaml: document 2: unknown kind \"Widget\" in apiVersion \"v1\""
        );
        let err = parse_documents("k.yaml", "apiVersion: v1\nmetadata: {}\n").expect_err("missing");
        assert_eq!(err.to_string(), "k.yaml: document 1: kind is required");
        let err = parse_documents("s.yaml", "- a\n- b\n").expect_err("list");
        assert!(err.to_string().contains("expected a mapping"), "{err}");
    }

    #[test]
    fn a_manifest_without_objects_is_an_error() {
        for text in ["", "# only a comment\n", "---\n---\n"] {
            let err = parse_documents("e.yaml", text).expect_err("empty");
            assert_eq!(err.to_string(), "no objects in e.yaml");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let flow = format!("a: {}", "[".repeat(100_000));
        let mut block = String::new();
        for level in 0..150 {
            block.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
        }
        for text in [flow, block] {
            let err = parse_documents("deep.yaml", &text).expect_err("deep");
            assert_eq!(
                err.to_string(),
                "deep.yaml: nested deeper than 100 levels; refused before parsing"
            );
        }
        let ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: \"[[[[\"}\ndata:\n  s: |\n    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n";
        assert_eq!(parse_documents("ok.yaml", ok).expect("ok").len(), 1);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_documents(
            "d.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nmetadata: {name: b}\n",
        )
        .expect_err("duplicate");
        assert!(
            err.to_string().contains(r#"duplicate field "metadata""#),
            "{err}"
        );
    }
}
