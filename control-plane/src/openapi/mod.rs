//! The OpenAPI documents of the served API, as Kubernetes serves them: `/openapi/v3` (an
//! index of group-versions), `/openapi/v3/api/v1` and `/openapi/v3/apis/GROUP/VERSION`
//! (OpenAPI 3.0 with the schemas of that group-version's kinds and its paths), and
//! `/openapi/v2` (Swagger 2.0 of everything, in JSON or gnostic protobuf). The schemas are generated from the k8s-openapi
//! types; the documents are built once (the server starts the build, off the request path, when
//! it starts; a request that comes before it ends waits for it) and served by content hash.

mod paths;
mod protobuf;
mod schemas;
mod swagger;
mod unknown_fields;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use skiff_api::resources::{ResourceKind, KINDS};

/// The version the documents' `info` names (that of `/version`).
const API_VERSION: &str = concat!("v1.34.0-skiff-", env!("CARGO_PKG_VERSION"));

/// One served document: its JSON and the hash of it (ETag and `?hash=`).
pub struct Document {
    pub body: Bytes,
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Self {
        // A `Value` built here always serializes.
        Document::from_bytes(serde_json::to_vec(value).expect("a JSON value serializes"))
    }

    fn from_bytes(body: Vec<u8>) -> Self {
        let hash = hex::encode_upper(Sha256::digest(&body));
        Document {
            body: Bytes::from(body),
            hash,
        }
    }
}

/// Every OpenAPI document, and the schemas field validation walks.
pub struct Documents {
    /// `/openapi/v3`.
    pub index: Document,
    /// By `api/v1` / `apis/apps/v1`.
    group_versions: BTreeMap<String, Document>,
    /// `/openapi/v2`.
    pub v2: Document,
    /// `/openapi/v2` as gnostic protobuf (its definitions).
    pub v2_protobuf: Document,
    /// The schemas of every served kind (OpenAPI 3 references).
    schemas: Map<String, Value>,
    /// How long building all this took.
    pub build_time: Duration,
}

static DOCUMENTS: OnceLock<Documents> = OnceLock::new();

/// The documents, built by the first call (the others wait for it).
pub fn documents() -> &'static Documents {
    DOCUMENTS.get_or_init(Documents::build)
}

/// `api/v1` or `apis/apps/v1`: a group-version's path under `/openapi/v3/`.
fn group_version_path(kind: &ResourceKind) -> String {
    if kind.group.is_empty() {
        format!("api/{}", kind.version)
    } else {
        format!("apis/{}/{}", kind.group, kind.version)
    }
}

impl Documents {
    fn build() -> Self {
        let started = Instant::now();
        let mut by_group_version: BTreeMap<String, Vec<&ResourceKind>> = BTreeMap::new();
        for kind in KINDS {
            by_group_version
                .entry(group_version_path(kind))
                .or_default()
                .push(kind);
        }
        let mut group_versions = BTreeMap::new();
        let mut index = Map::new();
        for (path, kinds) in &by_group_version {
            let document = Document::new(&v3_document(kinds));
            index.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", document.hash)}),
            );
            group_versions.insert(path.clone(), document);
        }
        let all: Vec<&ResourceKind> = KINDS.iter().collect();
        let schemas = schemas::components(&all, true);
        let v2 = swagger::document(&schemas, &paths_of(&all), API_VERSION);
        let v2_protobuf = Document::from_bytes(protobuf::encode(&v2));
        Documents {
            index: Document::new(&json!({ "paths": index })),
            group_versions,
            v2: Document::new(&v2),
            v2_protobuf,
            schemas,
            build_time: started.elapsed(),
        }
    }

    /// The OpenAPI 3 document of `path` (`api/v1`, `apis/apps/v1`).
    pub fn group_version(&self, path: &str) -> Option<&Document> {
        self.group_versions.get(path.trim_matches('/'))
    }

    /// Removes the fields of `value` that `kind`'s schema does not define, returning their
    /// paths (`spec.replicaz`); a `patch` (merge or strategic) keeps its `$` patch and
    /// `null`s.
    pub fn remove_unknown_fields(
        &self,
        kind: &ResourceKind,
        value: &mut Value,
        patch: bool,
    ) -> Vec<String> {
        match schemas::name(kind) {
            Some(root) => unknown_fields::remove_unknown(&self.schemas, &root, value, patch),
            None => Vec::new(),
        }
    }

    /// The property names of the schema `definition` (`io.k8s.api.core.v1.Probe`), if it is
    /// one of the served schemas.
    pub fn properties(&self, definition: &str) -> Option<impl Iterator<Item = &str>> {
        let properties = self
            .schemas
            .get(definition)?
            .get("properties")?
            .as_object()?;
        Some(properties.keys().map(String::as_str))
    }

    /// The sizes of the documents in bytes: (v3 index, all v3 group-versions, v2, v2 protobuf).
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        let v3: usize = self.group_versions.values().map(|d| d.body.len()).sum();
        let v2 = (self.v2.body.len(), self.v2_protobuf.body.len());
        (self.index.body.len(), v3, v2.0, v2.1)
    }
}

fn paths_of(kinds: &[&ResourceKind]) -> Map<String, Value> {
    let mut paths = Map::new();
    for kind in kinds {
        if let Some(schema) = schemas::name(kind) {
            paths::add(&mut paths, kind, &schema);
        }
    }
    paths
}

fn v3_document(kinds: &[&ResourceKind]) -> Value {
    let scale = kinds
        .iter()
        .any(|k| crate::registry::has_scale_subresource(k));
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": API_VERSION},
        "paths": paths_of(kinds),
        "components": {"schemas": schemas::components(kinds, scale)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_each_group_version_by_hash() {
        let docs = documents();
        let index: Value = serde_json::from_slice(&docs.index.body).expect("json");
        let apps = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps/v1");
        let document = docs
            .group_version("apis/apps/v1")
            .expect("apps/v1 document");
        assert_eq!(
            apps,
            format!("/openapi/v3/apis/apps/v1?hash={}", document.hash)
        );
        assert!(index["paths"]["api/v1"].is_object());
        let apps: Value = serde_json::from_slice(&document.body).expect("json");
        assert_eq!(apps["openapi"], "3.0.0");
        let schemas = apps["components"]["schemas"].as_object().expect("schemas");
        assert!(schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(!schemas.contains_key("io.k8s.api.core.v1.Service"));
        let v2: Value = serde_json::from_slice(&docs.v2.body).expect("json");
        assert_eq!(v2["swagger"], "2.0");
        assert!(v2["definitions"]["io.k8s.api.core.v1.Service"].is_object());
        let (index_bytes, v3_bytes, v2_bytes, protobuf_bytes) = docs.sizes();
        assert!(index_bytes > 0 && v3_bytes > v2_bytes / 2 && protobuf_bytes > v2_bytes / 4);
        println!(
            "OpenAPI documents built in {:?}: v3 index {index_bytes} B, v3 group-versions \
             {v3_bytes} B, v2 {v2_bytes} B, v2 protobuf {protobuf_bytes} B",
            docs.build_time
        );
    }

    /// The examples deploy with stock kubectl's validation too.
    #[test]
    fn every_example_manifest_has_only_known_fields() {
        let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-examples");
        let mut checked = 0;
        for dir in std::fs::read_dir(&examples)
            .expect("wasm-examples")
            .flatten()
        {
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("manifest");
                let name = path.display().to_string();
                for mut obj in skiff_api::manifest::parse_documents(&name, &text).expect("parses") {
                    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
                    let kind_name = obj["kind"].as_str().unwrap_or_default().to_string();
                    let kind = skiff_api::resources::by_kind(&api_version, &kind_name)
                        .unwrap_or_else(|| panic!("{name}: {kind_name} is not served"));
                    let unknown = documents().remove_unknown_fields(kind, &mut obj, false);
                    assert!(unknown.is_empty(), "{name}: {unknown:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10, "{checked} objects checked");
    }
}
