//! What files a configMap, secret, downwardAPI or projected volume holds, computed from the
//! fetched objects and the pod (pure: `sources.rs` fetches).

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod};
use skiff_api::quantity;
use skiff_api::requests::Resources;

use super::atomic_writer::{File, Payload};
use super::VolumeError;
use crate::agent::env;

/// Kubernetes' default mode for projected files, secrets included.
pub const DEFAULT_MODE: u32 = 0o644;

/// ConfigMap or Secret data (`None`: the object does not exist).
pub struct KeySource<'a> {
    /// `configmap` or `secret`, as the kubelet's messages name them.
    pub kind: &'static str,
    pub name: &'a str,
    pub data: Option<&'a BTreeMap<String, Vec<u8>>>,
    pub items: Option<&'a [KeyToPath]>,
    pub optional: bool,
}

/// Adds the files of a configMap or secret source to `payload`: every key, or the `items`
/// listed (each with its own mode or `default_mode`).
pub fn keys(
    source: &KeySource<'_>,
    default_mode: u32,
    payload: &mut Payload,
) -> Result<(), VolumeError> {
    let Some(data) = source.data else {
        if source.optional {
            return Ok(());
        }
        return Err(VolumeError::SourceNotFound {
            kind: source.kind,
            name: source.name.to_string(),
        });
    };
    match source.items {
        None => {
            for (key, value) in data {
                let file = File {
                    data: value.clone(),
                    mode: default_mode,
                };
                payload.insert(key.clone(), file);
            }
        }
        Some(items) => {
            for item in items {
                let Some(value) = data.get(&item.key) else {
                    if source.optional {
                        continue;
                    }
                    return Err(VolumeError::KeyNotFound {
                        kind: source.kind,
                        name: source.name.to_string(),
                        key: item.key.clone(),
                    });
                };
                let mode = item.mode.map_or(default_mode, |m| m as u32);
                payload.insert(
                    item.path.clone(),
                    File {
                        data: value.clone(),
                        mode,
                    },
                );
            }
        }
    }
    Ok(())
}

/// Adds the files of downwardAPI `items` to `payload`.
pub fn downward(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    allocatable: &Resources,
    payload: &mut Payload,
) -> Result<(), VolumeError> {
    for item in items {
        let value = if let Some(field) = item.field_ref.as_ref() {
            field_value(pod, &field.field_path)?
        } else if let Some(resource) = item.resource_field_ref.as_ref() {
            let container = resource.container_name.as_deref().unwrap_or_default();
            let divisor = resource.divisor.as_ref().map(|d| d.0.as_str());
            resource_value(pod, container, &resource.resource, divisor, allocatable)?
        } else {
            return Err(VolumeError::Downward {
                path: item.path.clone(),
                message: "must set fieldRef or resourceFieldRef".into(),
            });
        };
        let mode = item.mode.map_or(default_mode, |m| m as u32);
        let file = File {
            data: value.into_bytes(),
            mode,
        };
        payload.insert(item.path.clone(), file);
    }
    Ok(())
}

/// A pod field; the whole `metadata.labels`/`annotations` as `key="value"` lines, sorted.
fn field_value(pod: &Pod, path: &str) -> Result<String, VolumeError> {
    let map = match path {
        "metadata.labels" => pod.metadata.labels.as_ref(),
        "metadata.annotations" => pod.metadata.annotations.as_ref(),
        _ => {
            return env::pod_field(pod, path).map_err(|err| VolumeError::Downward {
                path: path.to_string(),
                message: err.to_string(),
            })
        }
    };
    Ok(map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}\n"))
        .collect())
}

/// `limits.cpu`, `requests.memory` and so on of one container, in units of `divisor`
/// (rounded up); an unset limit is the node's allocatable, as the kubelet reports it.
fn resource_value(
    pod: &Pod,
    container: &str,
    resource: &str,
    divisor: Option<&str>,
    allocatable: &Resources,
) -> Result<String, VolumeError> {
    let bad = |message: String| VolumeError::Downward {
        path: resource.to_string(),
        message,
    };
    let spec = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find(|c| c.name == container)
        .ok_or_else(|| bad(format!("container {container:?} not found")))?;
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| bad("unsupported resource".into()))?;
    let resources = spec.resources.as_ref();
    let set = match section {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(bad("unsupported resource".into())),
    };
    let given = set.and_then(|s| s.get(name)).map(|q| q.0.as_str());
    let parse = match name {
        "cpu" => quantity::parse_cpu_millis,
        "memory" | "ephemeral-storage" => quantity::parse_bytes,
        _ => return Err(bad("unsupported resource".into())),
    };
    let value = match (given, section, name) {
        (Some(q), _, _) => parse(q).map_err(|e| bad(e.to_string()))?,
        (None, "limits", "cpu") => allocatable.cpu_millis,
        (None, "limits", "memory") => allocatable.memory_bytes,
        (None, _, _) => 0,
    };
    let divisor = parse(divisor.unwrap_or("1"))
        .map_err(|e| bad(e.to_string()))?
        .max(1);
    Ok(value.div_ceil(divisor).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn text(payload: &Payload) -> Vec<(String, String, u32)> {
        payload
            .iter()
            .map(|(p, f)| {
                (
                    p.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect()
    }

    #[test]
    fn config_keys_items_and_missing_sources() {
        let found = data(&[("a", "1"), ("b", "2")]);
        let items: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "b", "path": "dir/b.txt", "mode": 0o400}]))
                .expect("items");
        let source = |data, items, optional| KeySource {
            kind: "configmap",
            name: "cfg",
            data,
            items,
            optional,
        };
        let mut all = Payload::new();
        keys(&source(Some(&found), None, false), 0o640, &mut all).expect("all keys");
        assert_eq!(
            text(&all),
            [
                ("a".into(), "1".into(), 0o640),
                ("b".into(), "2".into(), 0o640)
            ]
        );
        let mut some = Payload::new();
        keys(
            &source(Some(&found), Some(&items), false),
            DEFAULT_MODE,
            &mut some,
        )
        .expect("items");
        assert_eq!(text(&some), [("dir/b.txt".into(), "2".into(), 0o400)]);

        let missing = keys(
            &source(None, None, false),
            DEFAULT_MODE,
            &mut Payload::new(),
        );
        assert_eq!(
            missing.expect_err("missing").to_string(),
            "configmap \"cfg\" not found"
        );
        keys(&source(None, None, true), DEFAULT_MODE, &mut Payload::new()).expect("optional");
        let empty = data(&[]);
        let no_key = keys(
            &source(Some(&empty), Some(&items), false),
            0o644,
            &mut Payload::new(),
        );
        assert_eq!(
            no_key.expect_err("no key").to_string(),
            "configmap \"cfg\" has no key \"b\""
        );
    }

    #[test]
    fn downward_fields_and_resources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                         "labels": {"b": "2", "a": "x\"y"}},
            "spec": {"containers": [{"name": "c", "resources": {
                "limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}]}
        }))
        .expect("pod");
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}},
            {"path": "cpu-limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}
        ]))
        .expect("items");
        let allocatable = Resources {
            cpu_millis: 1500,
            memory_bytes: 0,
            pods: 0,
        };
        let mut payload = Payload::new();
        downward(&pod, &items, DEFAULT_MODE, &allocatable, &mut payload).expect("downward");
        let got: BTreeMap<String, String> =
            text(&payload).into_iter().map(|(p, t, _)| (p, t)).collect();
        assert_eq!(got["name"], "p");
        assert_eq!(got["labels"], "a=\"x\\\"y\"\nb=\"2\"\n");
        assert_eq!(got["mem"], "64");
        assert_eq!(got["cpu"], "250");
        assert_eq!(
            got["cpu-limit"], "2",
            "unset limit: the node's allocatable, rounded up"
        );
    }
}
