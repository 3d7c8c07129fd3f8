//! Printing objects: kubectl-like tables, JSON, YAML and names.

pub mod table;

pub use skiff_api::printers::{age, columns, ingress_columns};

use serde_json::Value;
use skiff_api::resources::ResourceKind;

/// `-o`: a table with more columns, or a machine format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

/// `deployment.apps/web`, as kubectl names objects.
pub fn qualified_name(kind: &ResourceKind, name: &str) -> String {
    if kind.group.is_empty() {
        format!("{}/{name}", kind.singular)
    } else {
        format!("{}.{}/{name}", kind.singular, kind.group)
    }
}

/// Prints one object or a list in a machine format (`json`, `yaml`, `name`).
pub fn print_structured(format: Output, kind: &ResourceKind, value: &Value) -> anyhow::Result<()> {
    match format {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", serde_yaml_ng::to_string(value)?),
        Output::Name => {
            let items = value["items"]
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![value.clone()]);
            for item in items {
                println!(
                    "{}",
                    qualified_name(kind, item["metadata"]["name"].as_str().unwrap_or_default())
                );
            }
        }
        Output::Wide => unreachable!("wide is a table format"),
    }
    Ok(())
}

/// A Kubernetes `List` of items.
pub fn list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    })
}
