//! Encryption at rest (Kubernetes' EncryptionConfiguration): values of the listed resources
//! are sealed on their way into the store and opened on their way out, so the store, the Raft
//! log, its snapshots and backups only ever hold their ciphertext.

pub mod config;
pub mod envelope;
mod file;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use skiff_raft_store::{EventKind, KeyValue, WatchEvent};

use self::config::{resource_of_key, Provider, Transformers};
pub use self::config::{ConfigError, EncryptionConfiguration};
use self::envelope::{aesgcm_parts, provider_of};
pub use self::file::{setup, DEFAULT_FILE};

/// Why a value could not be sealed or opened, or a config not loaded.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("the system's random number generator failed")]
    Random,
    #[error("encrypting with key {key:?} failed")]
    Seal { key: String },
    #[error(
        "{store_key} does not decrypt with key {key:?}: the value is damaged or was written \
         with another key of that name"
    )]
    Open { store_key: String, key: String },
    #[error(
        "{store_key} is encrypted with key {key:?}, which this server's encryption config \
         lacks: give every control-plane member the same encryption config"
    )]
    UnknownKey { store_key: String, key: String },
    #[error("{store_key} is encrypted by provider {provider:?}, which this server does not serve")]
    UnknownProvider { store_key: String, provider: String },
    #[error(
        "{store_key} is stored in clear text, but its resource's providers do not include \
         identity"
    )]
    NotEncrypted { store_key: String },
    #[error("encryption config {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    #[error(transparent)]
    Rotate(#[from] ConfigError),
    #[error("encryption config {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the encryption config {path} was given with --encryption-provider-config: add the new \
         key to it on every member, restart them, then run `skiff secrets rotate-key \
         --rewrite-only`"
    )]
    NotManaged { path: PathBuf },
}

/// Where a server's encryption config lives, and whether the server may edit it.
#[derive(Debug, Clone)]
struct Source {
    path: PathBuf,
    /// Generated and kept by the server (no `--encryption-provider-config`).
    managed: bool,
}

/// The transformers in use; cheap to clone, shared by every registry of a server.
#[derive(Clone)]
pub struct Encryption {
    current: Arc<RwLock<Arc<Transformers>>>,
    source: Option<Source>,
}

impl Default for Encryption {
    fn default() -> Self {
        Encryption::identity()
    }
}

impl Encryption {
    /// Nothing is encrypted (tests, and members that were given no config).
    pub fn identity() -> Encryption {
        Encryption {
            current: Arc::default(),
            source: None,
        }
    }

    /// The transformers of `config`, from no file.
    pub fn from_config(config: &EncryptionConfiguration) -> Result<Encryption, ConfigError> {
        Ok(Encryption {
            current: Arc::new(RwLock::new(Arc::new(config.transformers()?))),
            source: None,
        })
    }

    fn transformers(&self) -> Arc<Transformers> {
        self.current
            .read()
            .expect("encryption transformers")
            .clone()
    }

    fn providers_of(&self, store_key: &[u8]) -> Option<Arc<Vec<Provider>>> {
        let resource = resource_of_key(store_key)?;
        self.transformers().by_resource.get(resource).cloned()
    }

    /// Whether values at `store_key` are encrypted when written.
    pub fn encrypts(&self, store_key: &[u8]) -> bool {
        self.providers_of(store_key)
            .is_some_and(|p| matches!(p.first(), Some(Provider::AesGcm(_))))
    }

    /// The stored form of `plain` at `store_key`: sealed by the first provider of its resource.
    pub fn seal(&self, store_key: &[u8], plain: Vec<u8>) -> Result<Vec<u8>, EncryptionError> {
        match self
            .providers_of(store_key)
            .as_deref()
            .and_then(|p| p.first())
        {
            Some(Provider::AesGcm(keys)) => keys[0].seal(store_key, &plain),
            Some(Provider::Identity) | None => Ok(plain),
        }
    }

    /// The clear form of a stored value: opened by the provider that wrote it.
    pub fn open(&self, store_key: &[u8], stored: Vec<u8>) -> Result<Vec<u8>, EncryptionError> {
        let providers = self.providers_of(store_key);
        let providers = providers.as_deref().map(Vec::as_slice).unwrap_or_default();
        let store_key_text = || String::from_utf8_lossy(store_key).into_owned();
        let Some(provider) = provider_of(&stored) else {
            let identity =
                providers.is_empty() || providers.iter().any(|p| matches!(p, Provider::Identity));
            return match identity {
                true => Ok(stored),
                false => Err(EncryptionError::NotEncrypted {
                    store_key: store_key_text(),
                }),
            };
        };
        let Some((name, body)) = aesgcm_parts(&stored) else {
            return Err(EncryptionError::UnknownProvider {
                store_key: store_key_text(),
                provider,
            });
        };
        let key = providers
            .iter()
            .filter_map(|p| match p {
                Provider::AesGcm(keys) => Some(keys),
                Provider::Identity => None,
            })
            .flatten()
            .find(|k| k.name == name);
        match key {
            Some(key) => key.open(store_key, body),
            None => Err(EncryptionError::UnknownKey {
                store_key: store_key_text(),
                key: name.to_string(),
            }),
        }
    }

    /// Whether a stored value is already in the form a write would give it now (under the
    /// current write key, or in clear text for a resource that is not encrypted).
    pub fn is_current(&self, store_key: &[u8], stored: &[u8]) -> bool {
        match self
            .providers_of(store_key)
            .as_deref()
            .and_then(|p| p.first())
        {
            Some(Provider::AesGcm(keys)) => {
                aesgcm_parts(stored).is_some_and(|(name, _)| name == keys[0].name)
            }
            Some(Provider::Identity) | None => provider_of(stored).is_none(),
        }
    }

    /// The name of the key that writes values at `store_key`, if they are encrypted.
    pub fn write_key(&self, store_key: &[u8]) -> Option<String> {
        match self
            .providers_of(store_key)
            .as_deref()
            .and_then(|p| p.first())
        {
            Some(Provider::AesGcm(keys)) => Some(keys[0].name.clone()),
            _ => None,
        }
    }

    /// `kv` with its value opened.
    pub fn open_kv(&self, mut kv: KeyValue) -> Result<KeyValue, EncryptionError> {
        kv.value = self.open(&kv.key, std::mem::take(&mut kv.value))?;
        Ok(kv)
    }

    /// A watch event with its values opened; one that does not open is logged and skipped,
    /// as a corrupt object is.
    pub fn open_event(&self, event: WatchEvent) -> Option<WatchEvent> {
        let WatchEvent { kind, kv, prev } = event;
        let opened = (|| -> Result<WatchEvent, EncryptionError> {
            Ok(WatchEvent {
                kv: match kind {
                    EventKind::Put => self.open_kv(kv)?,
                    // A delete's value is empty.
                    EventKind::Delete => kv,
                },
                prev: prev.map(|kv| self.open_kv(kv)).transpose()?,
                kind,
            })
        })();
        match opened {
            Ok(event) => Some(event),
            Err(err) => {
                tracing::error!(%err, "skipping a watch event that does not decrypt");
                None
            }
        }
    }

    /// Adds a new key as the writing one to the server-managed config file and uses it from
    /// now on; returns its name. Refused for a config the user gave.
    pub fn add_key(&self) -> Result<String, EncryptionError> {
        let Some(source) = &self.source else {
            return Err(EncryptionError::Rotate(ConfigError::NoAesGcm));
        };
        if !source.managed {
            return Err(EncryptionError::NotManaged {
                path: source.path.clone(),
            });
        }
        let mut config = file::read(&source.path)?;
        let name = config.add_key()?;
        let transformers = config
            .transformers()
            .map_err(|source_err| EncryptionError::Config {
                path: source.path.clone(),
                source: source_err,
            })?;
        file::write(&source.path, &config)?;
        *self.current.write().expect("encryption transformers") = Arc::new(transformers);
        Ok(name)
    }
}

#[cfg(test)]
mod tests;
