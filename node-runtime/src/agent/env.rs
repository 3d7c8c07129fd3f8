//! Resolving a container's environment: literal values, ConfigMap and Secret keys, pod fields,
//! and the Services' variables.

use std::collections::BTreeMap;

use skiff_api::k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use skiff_client::Client;

/// A reference that cannot be resolved; the container waits with `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyNotFound {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0}")]
    UnsupportedField(String),
    #[error("env {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: skiff_client::ClientError,
    },
}

/// Where a key reference points.
#[derive(Clone, Copy)]
enum Kind {
    ConfigMap,
    Secret,
}

/// The data of ConfigMaps and Secrets, fetched once per resolution.
struct Sources<'a> {
    client: &'a Client,
    namespace: String,
    config_maps: BTreeMap<String, Option<BTreeMap<String, String>>>,
    secrets: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Sources<'_> {
    async fn config_map(
        &mut self,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, String>>, EnvError> {
        if !self.config_maps.contains_key(name) {
            let found = match self
                .client
                .api::<ConfigMap>(Some(&self.namespace))
                .get(name)
                .await
            {
                Ok(cm) => Some(cm.data.unwrap_or_default()),
                Err(e) if e.is_not_found() => None,
                Err(source) => {
                    return Err(EnvError::Api {
                        name: name.into(),
                        source,
                    })
                }
            };
            self.config_maps.insert(name.to_string(), found);
        }
        Ok(self.config_maps.get(name).and_then(Option::as_ref))
    }

    async fn secret(&mut self, name: &str) -> Result<Option<&BTreeMap<String, String>>, EnvError> {
        if !self.secrets.contains_key(name) {
            let found = match self
                .client
                .api::<Secret>(Some(&self.namespace))
                .get(name)
                .await
            {
                Ok(secret) => {
                    let mut data: BTreeMap<String, String> = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                        .collect();
                    data.extend(secret.string_data.unwrap_or_default());
                    Some(data)
                }
                Err(e) if e.is_not_found() => None,
                Err(source) => {
                    return Err(EnvError::Api {
                        name: name.into(),
                        source,
                    })
                }
            };
            self.secrets.insert(name.to_string(), found);
        }
        Ok(self.secrets.get(name).and_then(Option::as_ref))
    }
}

impl Sources<'_> {
    /// The value of `key` in the ConfigMap or Secret `name`; `None` if it is optional and missing.
    async fn key(
        &mut self,
        kind: Kind,
        name: &str,
        key: &str,
        optional: bool,
    ) -> Result<Option<String>, EnvError> {
        let namespace = self.namespace.clone();
        let data = match kind {
            Kind::ConfigMap => self.config_map(name).await?,
            Kind::Secret => self.secret(name).await?,
        };
        let missing_object = || match kind {
            Kind::ConfigMap => EnvError::ConfigMapNotFound(name.to_string()),
            Kind::Secret => EnvError::SecretNotFound(name.to_string()),
        };
        match data {
            Some(data) => match data.get(key) {
                Some(value) => Ok(Some(value.clone())),
                None if optional => Ok(None),
                None => Err(EnvError::KeyNotFound {
                    kind: match kind {
                        Kind::ConfigMap => "ConfigMap",
                        Kind::Secret => "Secret",
                    },
                    namespace,
                    name: name.to_string(),
                    key: key.to_string(),
                }),
            },
            None if optional => Ok(None),
            None => Err(missing_object()),
        }
    }
}

/// `name=value` pairs for the container, `envFrom` first and `env` overriding, then the
/// Service variables the two did not set, as Kubernetes does.
pub async fn resolve(
    client: &Client,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut sources = Sources {
        client,
        namespace: namespace.clone(),
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = from.config_map_ref.as_ref() {
            match sources.config_map(&r.name).await?.cloned() {
                Some(data) => data,
                None if r.optional.unwrap_or(false) => continue,
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        } else if let Some(r) = from.secret_ref.as_ref() {
            match sources.secret(&r.name).await?.cloned() {
                Some(data) => data,
                None if r.optional.unwrap_or(false) => continue,
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            set(&mut env, format!("{prefix}{k}"), v);
        }
    }
    for var in container.env.iter().flatten() {
        let value = match var.value_from.as_ref() {
            None => var.value.clone().unwrap_or_default(),
            Some(from) => {
                let key_ref = if let Some(r) = from.config_map_key_ref.as_ref() {
                    Some((
                        Kind::ConfigMap,
                        &r.name,
                        &r.key,
                        r.optional.unwrap_or(false),
                    ))
                } else {
                    from.secret_key_ref
                        .as_ref()
                        .map(|r| (Kind::Secret, &r.name, &r.key, r.optional.unwrap_or(false)))
                };
                if let Some((kind, name, key, optional)) = key_ref {
                    match sources.key(kind, name, key, optional).await? {
                        Some(value) => value,
                        None => continue,
                    }
                } else if let Some(r) = from.field_ref.as_ref() {
                    pod_field(pod, &r.field_path)?
                } else {
                    return Err(EnvError::UnsupportedField("resourceFieldRef".into()));
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    // Service variables fill in only what the container does not set itself.
    for (name, value) in super::service_env::for_pod(client, pod).await? {
        if !env.iter().any(|(n, _)| *n == name) {
            env.push((name, value));
        }
    }
    Ok(env)
}

/// The downward API fields a Wasm pod can read.
pub(super) fn pod_field(pod: &Pod, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        other => {
            let label = other
                .strip_prefix("metadata.labels['")
                .and_then(|s| s.strip_suffix("']"))
                .map(|k| meta.labels.as_ref().and_then(|l| l.get(k).cloned()));
            let annotation = other
                .strip_prefix("metadata.annotations['")
                .and_then(|s| s.strip_suffix("']"))
                .map(|k| meta.annotations.as_ref().and_then(|a| a.get(k).cloned()));
            match label.or(annotation) {
                Some(value) => value,
                None => return Err(EnvError::UnsupportedField(other.to_string())),
            }
        }
    };
    Ok(value.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "a"}},
            "spec": {"nodeName": "n1", "containers": []}
        }))
        .expect("pod");
        assert_eq!(pod_field(&pod, "metadata.name").expect("name"), "p");
        assert_eq!(pod_field(&pod, "spec.nodeName").expect("node"), "n1");
        assert_eq!(
            pod_field(&pod, "metadata.labels['app']").expect("label"),
            "a"
        );
        assert!(pod_field(&pod, "spec.bogus").is_err());
    }
}
