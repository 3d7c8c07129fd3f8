//! Kubernetes' `EncryptionConfiguration` (apiserver.config.k8s.io/v1): which resources are
//! encrypted, and with which providers. The first provider of a resource writes, all of them
//! read. Providers served: `aesgcm` (named 32-byte keys, base64) and `identity`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use skiff_api::resources::{ResourceKind, KINDS};

use super::envelope::{random_key, AesGcmKey, KEY_LEN};
use super::EncryptionError;

const API_VERSION: &str = "apiserver.config.k8s.io/v1";
const KIND: &str = "EncryptionConfiguration";

/// The file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionConfiguration {
    pub api_version: String,
    pub kind: String,
    pub resources: Vec<ResourceConfig>,
}

/// One `resources[]` entry: resource names and the providers that serve them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceConfig {
    pub resources: Vec<String>,
    pub providers: Vec<ProviderConfig>,
}

/// One provider; exactly one field is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aesgcm: Option<KeysConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Empty>,
    /// Providers this build does not serve (`aescbc`, `secretbox`, `kms`): refused.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

/// The `identity: {}` provider's (empty) settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

/// An `aesgcm` provider's keys; the first one writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeysConfig {
    pub keys: Vec<KeyConfig>,
}

/// One named key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyConfig {
    pub name: String,
    /// The key's 32 bytes, base64.
    pub secret: String,
}

/// What is wrong with an encryption config, and where (a field path).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not YAML of an EncryptionConfiguration: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("{field}: must be {expected:?}, not {actual:?}")]
    Header {
        field: &'static str,
        expected: &'static str,
        actual: String,
    },
    #[error("{field}: required")]
    Required { field: String },
    #[error("{field}: no served resource is named {name:?}")]
    UnknownResource { field: String, name: String },
    #[error("{field}: provider {name:?} is not served (aesgcm and identity are)")]
    UnknownProvider { field: String, name: String },
    #[error("{field}: a provider names exactly one of aesgcm and identity")]
    ProviderCount { field: String },
    #[error("{field}: key names must be unique and hold no ':'; {name:?} is not")]
    KeyName { field: String, name: String },
    #[error("{field}: not base64: {source}")]
    Base64 {
        field: String,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{field}: {len} bytes decoded; AES-256-GCM takes keys of {KEY_LEN} bytes")]
    KeyLength { field: String, len: usize },
    #[error("no resources[] entry has aesgcm as its first provider: there is no key to rotate")]
    NoAesGcm,
}

/// One resource's provider, ready to use.
#[derive(Debug)]
pub enum Provider {
    AesGcm(Vec<AesGcmKey>),
    Identity,
}

/// The parsed configuration: each encrypted resource's providers, by the store's
/// `{group}/{plural}` (the group of core resources is `core`).
#[derive(Debug, Default)]
pub struct Transformers {
    pub(super) by_resource: HashMap<String, Arc<Vec<Provider>>>,
}

impl EncryptionConfiguration {
    pub fn parse(yaml: &str) -> Result<EncryptionConfiguration, ConfigError> {
        Ok(serde_yaml_ng::from_str(yaml)?)
    }

    /// A configuration that encrypts Secrets with one new random key, and still reads Secrets
    /// stored in clear text (written before encryption was enabled).
    pub fn generate() -> Result<EncryptionConfiguration, EncryptionError> {
        Ok(EncryptionConfiguration {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            resources: vec![ResourceConfig {
                resources: vec!["secrets".into()],
                providers: vec![
                    ProviderConfig {
                        aesgcm: Some(KeysConfig {
                            keys: vec![KeyConfig {
                                name: "key1".into(),
                                secret: STANDARD.encode(random_key()?),
                            }],
                        }),
                        ..ProviderConfig::default()
                    },
                    ProviderConfig {
                        identity: Some(Empty {}),
                        ..ProviderConfig::default()
                    },
                ],
            }],
        })
    }

    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("an encryption config serializes")
    }

    /// Puts a new random key first in every entry whose first provider is `aesgcm` (so it
    /// writes from now on; the older keys still read); returns its name.
    pub fn add_key(&mut self) -> Result<String, EncryptionError> {
        let highest = self
            .resources
            .iter()
            .flat_map(|r| &r.providers)
            .filter_map(|p| p.aesgcm.as_ref())
            .flat_map(|a| &a.keys)
            .filter_map(|k| k.name.strip_prefix("key")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let name = format!("key{}", highest + 1);
        let secret = STANDARD.encode(random_key()?);
        let mut added = false;
        for entry in &mut self.resources {
            if let Some(aesgcm) = entry.providers.first_mut().and_then(|p| p.aesgcm.as_mut()) {
                aesgcm.keys.insert(
                    0,
                    KeyConfig {
                        name: name.clone(),
                        secret: secret.clone(),
                    },
                );
                added = true;
            }
        }
        if !added {
            return Err(ConfigError::NoAesGcm.into());
        }
        Ok(name)
    }

    /// Checks every field and builds the providers of each resource it names; the first
    /// entry naming a resource wins, as in Kubernetes.
    pub fn transformers(&self) -> Result<Transformers, ConfigError> {
        if self.api_version != API_VERSION {
            return Err(ConfigError::Header {
                field: "apiVersion",
                expected: API_VERSION,
                actual: self.api_version.clone(),
            });
        }
        if self.kind != KIND {
            return Err(ConfigError::Header {
                field: "kind",
                expected: KIND,
                actual: self.kind.clone(),
            });
        }
        let mut by_resource = HashMap::new();
        for (i, entry) in self.resources.iter().enumerate() {
            let field = format!("resources[{i}]");
            let providers = Arc::new(providers(&field, &entry.providers)?);
            if entry.resources.is_empty() {
                return Err(ConfigError::Required {
                    field: format!("{field}.resources"),
                });
            }
            for (j, name) in entry.resources.iter().enumerate() {
                let kinds = matching_kinds(name);
                if kinds.is_empty() && !name.contains('*') {
                    return Err(ConfigError::UnknownResource {
                        field: format!("{field}.resources[{j}]"),
                        name: name.clone(),
                    });
                }
                for kind in kinds {
                    by_resource
                        .entry(resource_key(kind))
                        .or_insert_with(|| providers.clone());
                }
            }
        }
        Ok(Transformers { by_resource })
    }
}

fn providers(field: &str, configs: &[ProviderConfig]) -> Result<Vec<Provider>, ConfigError> {
    if configs.is_empty() {
        return Err(ConfigError::Required {
            field: format!("{field}.providers"),
        });
    }
    let mut names = Vec::new();
    let mut out = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        let field = format!("{field}.providers[{i}]");
        if let Some(name) = config.other.keys().next() {
            return Err(ConfigError::UnknownProvider {
                field,
                name: name.clone(),
            });
        }
        match (&config.aesgcm, &config.identity) {
            (Some(aesgcm), None) => {
                let field = format!("{field}.aesgcm.keys");
                if aesgcm.keys.is_empty() {
                    return Err(ConfigError::Required { field });
                }
                let mut keys = Vec::new();
                for (k, key) in aesgcm.keys.iter().enumerate() {
                    let field = format!("{field}[{k}]");
                    if key.name.is_empty() || key.name.contains(':') || names.contains(&key.name) {
                        return Err(ConfigError::KeyName {
                            field: format!("{field}.name"),
                            name: key.name.clone(),
                        });
                    }
                    names.push(key.name.clone());
                    let field = format!("{field}.secret");
                    let secret = STANDARD.decode(key.secret.trim()).map_err(|source| {
                        ConfigError::Base64 {
                            field: field.clone(),
                            source,
                        }
                    })?;
                    let len = secret.len();
                    keys.push(
                        AesGcmKey::new(&key.name, &secret)
                            .ok_or(ConfigError::KeyLength { field, len })?,
                    );
                }
                out.push(Provider::AesGcm(keys));
            }
            (None, Some(_)) => out.push(Provider::Identity),
            _ => return Err(ConfigError::ProviderCount { field }),
        }
    }
    Ok(out)
}

/// The served kinds a `resources[]` name means: `secrets`, `deployments.apps`, `*.apps`,
/// `*.` (every core resource) or `*.*` (every resource).
fn matching_kinds(name: &str) -> Vec<&'static ResourceKind> {
    let (resource, group) = name.split_once('.').unwrap_or((name, ""));
    KINDS
        .iter()
        .filter(|k| (group == "*" || group == k.group) && (resource == "*" || resource == k.plural))
        .collect()
}

/// The part of a kind's store keys that names it: `core/secrets`, `apps/deployments`.
fn resource_key(kind: &ResourceKind) -> String {
    let prefix = kind.store_prefix(None);
    resource_of_key(prefix.as_bytes())
        .expect("store prefixes start with /registry/")
        .to_string()
}

/// The `{group}/{plural}` of a store key under `/registry/`.
pub fn resource_of_key(key: &[u8]) -> Option<&str> {
    let rest = key.strip_prefix(b"/registry/")?;
    let group_end = rest.iter().position(|b| *b == b'/')?;
    let plural_end = rest[group_end + 1..]
        .iter()
        .position(|b| *b == b'/')
        .map_or(rest.len(), |p| group_end + 1 + p);
    std::str::from_utf8(&rest[..plural_end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(providers: &str) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources:\n  - resources: [secrets, configmaps, \"*.apps\"]\n    providers:\n{providers}"
        )
    }

    fn key_b64(len: usize) -> String {
        STANDARD.encode(vec![1u8; len])
    }

    fn error_of(yaml: &str) -> String {
        match EncryptionConfiguration::parse(yaml).and_then(|c| c.transformers()) {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_kubernetes_config_parses_and_names_its_resources() {
        let yaml = config(&format!(
            "      - aesgcm:\n          keys:\n            - name: key1\n              secret: {}\n      - identity: {{}}\n",
            key_b64(32)
        ));
        let transformers = EncryptionConfiguration::parse(&yaml)
            .expect("parses")
            .transformers()
            .expect("valid");
        let secrets = &transformers.by_resource["core/secrets"];
        assert!(matches!(secrets[0], Provider::AesGcm(ref keys) if keys[0].name == "key1"));
        assert!(matches!(secrets[1], Provider::Identity));
        assert!(transformers.by_resource.contains_key("core/configmaps"));
        assert!(transformers.by_resource.contains_key("apps/deployments"));
        assert!(!transformers.by_resource.contains_key("core/pods"));
    }

    #[test]
    fn bad_keys_are_refused_naming_the_field() {
        let with_secret = |secret: &str| {
            config(&format!(
                "      - aesgcm:\n          keys:\n            - name: key1\n              secret: \"{secret}\"\n"
            ))
        };
        let short = error_of(&with_secret(&key_b64(16)));
        assert_eq!(
            short,
            "resources[0].providers[0].aesgcm.keys[0].secret: 16 bytes decoded; AES-256-GCM takes keys of 32 bytes"
        );
        let not_base64 = error_of(&with_secret("not*base64"));
        assert!(
            not_base64.starts_with("resources[0].providers[0].aesgcm.keys[0].secret: not base64"),
            "{not_base64}"
        );
        let unknown = error_of(&config("      - aescbc:\n          keys: []\n"));
        assert!(
            unknown.starts_with("resources[0].providers[0]: provider \"aescbc\""),
            "{unknown}"
        );
        let both = error_of(&config(&format!(
            "      - identity: {{}}\n        aesgcm:\n          keys:\n            - name: a\n              secret: {}\n",
            key_b64(32)
        )));
        assert!(
            both.starts_with("resources[0].providers[0]: a provider names exactly one"),
            "{both}"
        );
        let twice = error_of(&config(&format!(
            "      - aesgcm:\n          keys:\n            - name: a\n              secret: {0}\n            - name: a\n              secret: {0}\n",
            key_b64(32)
        )));
        assert!(
            twice.starts_with("resources[0].providers[0].aesgcm.keys[1].name"),
            "{twice}"
        );
    }

    #[test]
    fn headers_and_resource_names_are_checked() {
        let wrong_kind = config("      - identity: {}\n").replace(KIND, "Nope");
        assert!(error_of(&wrong_kind).starts_with("kind: must be"));
        let unknown = config("      - identity: {}\n").replace("configmaps", "configmapz");
        assert_eq!(
            error_of(&unknown),
            "resources[0].resources[1]: no served resource is named \"configmapz\""
        );
    }

    #[test]
    fn generated_configs_encrypt_secrets_and_rotation_puts_a_new_key_first() {
        let mut config = EncryptionConfiguration::generate().expect("generate");
        let reparsed = EncryptionConfiguration::parse(&config.to_yaml()).expect("round trip");
        reparsed.transformers().expect("valid");
        assert_eq!(config.add_key().expect("rotate"), "key2");
        let transformers = config.transformers().expect("valid");
        let secrets = &transformers.by_resource["core/secrets"];
        let Provider::AesGcm(keys) = &secrets[0] else {
            panic!("aesgcm first");
        };
        let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["key2", "key1"]);
    }

    #[test]
    fn store_keys_name_their_resource() {
        assert_eq!(
            resource_of_key(b"/registry/core/secrets/ns/a"),
            Some("core/secrets")
        );
        assert_eq!(
            resource_of_key(b"/registry/apps/deployments/"),
            Some("apps/deployments")
        );
        assert_eq!(resource_of_key(b"/skiff/allocations"), None);
    }
}
