//! Encryption at rest (Kubernetes' EncryptionConfiguration): values of the listed resources
//! are sealed on their way into the store and opened on their way out, so the store, the Raft
//! log, its snapshots and backups only ever hold their ciphertext.

pub mod config;
pub mod envelope;
mod file;
pub mod shared;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use skiff_raft_store::{EventKind, KeyValue, Store, WatchEvent};
use tokio_util::sync::CancellationToken;

use self::config::{resource_of_key, Provider, Transformers};
pub use self::config::{ConfigError, EncryptionConfiguration};
use self::envelope::{aesgcm_parts, provider_of};
pub use self::file::{setup, DEFAULT_FILE};

/// The resource (`{group}/{plural}`) the shared config must be loaded for before writing.
const SECRETS: &str = "core/secrets";

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
    #[error("the cluster's shared encryption config: {reason}")]
    SharedConfig { reason: String },
    #[error(
        "Secrets cannot be written or read yet: this member has not loaded the cluster's \
         shared encryption config ({reason})"
    )]
    NotLoaded { reason: String },
}

/// Where a server's encryption config lives, and whether the server may edit it.
#[derive(Clone)]
enum Source {
    /// A file: the one given (`managed: false`) or the one a lone server keeps.
    File { path: PathBuf, managed: bool },
    /// The cluster's config in the replicated store.
    Shared(Arc<shared::Shared>),
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

    /// The cluster's shared config, when this member uses one.
    fn shared_state(&self) -> Option<&Arc<shared::Shared>> {
        match &self.source {
            Some(Source::Shared(shared)) => Some(shared),
            _ => None,
        }
    }

    /// Whether the keys are the cluster's shared config in the store (members given no
    /// config file), which `rotate` changes for every member at once.
    pub fn is_shared(&self) -> bool {
        self.shared_state().is_some()
    }

    /// Why this member is not ready to serve Secrets yet: it is still loading the cluster's
    /// shared config (`None` once loaded, or once a load failed: that failure is answered to
    /// each Secret request instead, and waiting would not mend it).
    pub fn loading(&self) -> Option<EncryptionError> {
        let shared = self.shared_state()?;
        let failed = shared.failure.lock().expect("failure lock").is_some();
        (!shared.loaded() && !failed).then(|| shared.not_loaded())
    }

    /// Refuses to seal a Secret before the shared config is loaded: it would go in clear.
    fn check_loaded(&self, store_key: &[u8]) -> Result<(), EncryptionError> {
        match self.shared_state() {
            Some(shared) if !shared.loaded() && resource_of_key(store_key) == Some(SECRETS) => {
                Err(shared.not_loaded())
            }
            _ => Ok(()),
        }
    }

    /// Uses the shared config stored as `kv` unless a newer one is in use already.
    fn apply_shared(&self, shared: &shared::Shared, kv: &KeyValue) {
        let transformers = shared::unseal_config(&shared.kek, &kv.value).and_then(|config| {
            config
                .transformers()
                .map_err(|err| EncryptionError::SharedConfig {
                    reason: err.to_string(),
                })
        });
        let transformers = match transformers {
            Ok(transformers) => transformers,
            Err(err) => return shared.fail(&err),
        };
        let mut current = self.current.write().expect("encryption transformers");
        if shared.revision.load(Ordering::Acquire) >= kv.mod_revision {
            return;
        }
        *current = Arc::new(transformers);
        shared.revision.store(kv.mod_revision, Ordering::Release);
        tracing::info!(
            revision = kv.mod_revision,
            "loaded the cluster's shared encryption config"
        );
    }

    /// Reads the shared config again from this member's store (a value under a key this
    /// member does not know yet was written after a config it has not applied).
    fn reload_shared(&self) {
        if let Some(shared) = self.shared_state() {
            if let Some(kv) = shared.local_now() {
                self.apply_shared(shared, &kv);
            }
        }
    }

    /// Whether values at `store_key` are encrypted when written.
    pub fn encrypts(&self, store_key: &[u8]) -> bool {
        self.providers_of(store_key)
            .is_some_and(|p| matches!(p.first(), Some(Provider::AesGcm(_))))
    }

    /// The stored form of `plain` at `store_key`: sealed by the first provider of its resource.
    pub fn seal(&self, store_key: &[u8], plain: Vec<u8>) -> Result<Vec<u8>, EncryptionError> {
        self.check_loaded(store_key)?;
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
        if let Some((name, _)) = aesgcm_parts(&stored).filter(|_| self.is_shared()) {
            if !self.knows(store_key, name) {
                self.reload_shared();
            }
        }
        match (
            self.open_with_current(store_key, stored),
            self.shared_state(),
        ) {
            (Err(EncryptionError::UnknownKey { .. }), Some(shared)) if !shared.loaded() => {
                Err(shared.not_loaded())
            }
            (opened, _) => opened,
        }
    }

    /// Whether the config in use has an `aesgcm` key `name` for values at `store_key`.
    fn knows(&self, store_key: &[u8], name: &str) -> bool {
        self.providers_of(store_key).is_some_and(|providers| {
            providers.iter().any(|p| match p {
                Provider::AesGcm(keys) => keys.iter().any(|k| k.name == name),
                Provider::Identity => false,
            })
        })
    }

    fn open_with_current(
        &self,
        store_key: &[u8],
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, EncryptionError> {
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
        let path = match &self.source {
            None | Some(Source::Shared(_)) => {
                return Err(EncryptionError::Rotate(ConfigError::NoAesGcm))
            }
            Some(Source::File {
                path,
                managed: false,
            }) => return Err(EncryptionError::NotManaged { path: path.clone() }),
            Some(Source::File {
                path,
                managed: true,
            }) => path,
        };
        let mut config = file::read(path)?;
        let name = config.add_key()?;
        let transformers = config
            .transformers()
            .map_err(|source_err| EncryptionError::Config {
                path: path.clone(),
                source: source_err,
            })?;
        file::write(path, &config)?;
        *self.current.write().expect("encryption transformers") = Arc::new(transformers);
        Ok(name)
    }

    /// Adds a new writing key: to the cluster's shared config (every member loads it when it
    /// applies the change, before any value written under the key), or to the lone server's
    /// own file ([`Encryption::add_key`]); returns its name.
    pub async fn rotate(&self) -> Result<String, EncryptionError> {
        let Some(shared) = self.shared_state() else {
            return self.add_key();
        };
        let (name, stored) = shared::add_key(shared).await?;
        self.apply_shared(shared, &stored);
        if shared.revision.load(Ordering::Acquire) < stored.mod_revision {
            return Err(shared.not_loaded());
        }
        Ok(name)
    }

    /// The encryption of a member given no config file, in a cluster whose config is shared
    /// through `store`, sealed with a key derived from the cluster CA's private key
    /// (`ca_key_der`). Loads what this member's store holds now, then follows (or first
    /// creates) it in a task until `shutdown`; until loaded, Secrets are refused with a 503.
    pub fn shared(store: Store, ca_key_der: &[u8], shutdown: CancellationToken) -> Encryption {
        let shared = Arc::new(shared::Shared::new(
            store,
            shared::key_encryption_key(ca_key_der),
        ));
        let encryption = Encryption {
            current: Arc::default(),
            source: Some(Source::Shared(shared.clone())),
        };
        encryption.reload_shared();
        tokio::spawn(shared::follow(encryption.clone(), shared, shutdown));
        encryption
    }
}

/// How a member keeps its keys: the config file given or its own (see [`setup`]), or the
/// cluster's shared config in the store. A given file wins; a data dir's own file (a lone
/// server's, or one copied there) comes next; the shared config serves members of a larger
/// cluster, and a lone server whose store already holds one (restored from a backup).
pub async fn start(
    data_dir: &Path,
    given: Option<&Path>,
    lone: bool,
    store: &Store,
    ca_key_der: Option<&[u8]>,
    shutdown: &CancellationToken,
) -> Result<Encryption, EncryptionError> {
    let own_file = data_dir.join(DEFAULT_FILE).exists();
    if let (None, false, Some(ca_key_der)) = (given, own_file, ca_key_der) {
        let stored = store.get(shared::SHARED_CONFIG_KEY).await.map_err(|err| {
            EncryptionError::SharedConfig {
                reason: format!("reading it: {err}"),
            }
        })?;
        if !lone || stored.is_some() {
            return Ok(Encryption::shared(
                store.clone(),
                ca_key_der,
                shutdown.clone(),
            ));
        }
    }
    setup(data_dir, given, lone)
}

#[cfg(test)]
mod tests;
