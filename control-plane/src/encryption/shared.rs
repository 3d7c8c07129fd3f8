//! The cluster's shared encryption config (members given no `--encryption-provider-config`):
//! kept in the replicated store under a reserved key that no API path maps to, sealed with a
//! key-encryption key derived (HKDF-SHA256) from the cluster CA's private key, which every
//! member already holds (`--cluster-ca`) and which is neither in the store nor in backups,
//! as k3s seals its bootstrap data with the cluster token.
//!
//! The first member to find no config creates one (a create-only txn, so two members never
//! put two configs in); every member loads it, follows its changes with a watch, and reads
//! it again from its local store when it meets a value under a key it does not know yet (the
//! config's entry precedes, in the log, every value written under its new key).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use ring::hkdf::{Salt, HKDF_SHA256};
use skiff_raft_store::{Compare, KeyValue, Op, Store, Txn};
use tokio_util::sync::CancellationToken;

use super::envelope::{aesgcm_parts, AesGcmKey, KEY_LEN};
use super::{EncryptionConfiguration, EncryptionError};

/// Where the sealed config lives in the store: outside `/registry/`, so never served.
pub const SHARED_CONFIG_KEY: &[u8] = b"/skiff/internal/encryption-config";
/// HKDF's salt and info: the key-encryption key is for this one purpose.
const KEK_SALT: &[u8] = b"skiff encryption-config key-encryption key";
const KEK_INFO: &[u8] = b"v1";
/// The key-encryption key's name in the sealed value's prefix.
const KEK_NAME: &str = "cluster-ca";
/// How long a member waits before trying again to read or create the config (no leader yet).
const RETRY: Duration = Duration::from_millis(500);
/// How often a member reads the config again besides its watch.
const RESYNC: Duration = Duration::from_secs(30);

/// The key-encryption key derived from the cluster CA's private key (its DER bytes).
pub fn key_encryption_key(ca_key_der: &[u8]) -> AesGcmKey {
    let prk = Salt::new(HKDF_SHA256, KEK_SALT).extract(ca_key_der);
    let mut bytes = [0u8; KEY_LEN];
    prk.expand(&[KEK_INFO], HkdfLen)
        .and_then(|okm| okm.fill(&mut bytes))
        .expect("HKDF-SHA256 yields 32 bytes");
    AesGcmKey::new(KEK_NAME, &bytes).expect("32 bytes")
}

/// The output length HKDF is asked for: one AES-256 key.
struct HkdfLen;

impl ring::hkdf::KeyType for HkdfLen {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// `config` as stored: its YAML sealed under the key-encryption key, bound to its store key.
pub fn seal_config(
    kek: &AesGcmKey,
    config: &EncryptionConfiguration,
) -> Result<Vec<u8>, EncryptionError> {
    kek.seal(SHARED_CONFIG_KEY, config.to_yaml().as_bytes())
}

/// The config a stored value holds; a clear error when this member's CA did not seal it.
pub fn unseal_config(
    kek: &AesGcmKey,
    stored: &[u8],
) -> Result<EncryptionConfiguration, EncryptionError> {
    let not_ours = || EncryptionError::SharedConfig {
        reason: "it does not decrypt with this member's cluster CA key: every member must be \
                 started with the same cluster CA (--cluster-ca)"
            .into(),
    };
    let body = match aesgcm_parts(stored) {
        Some((name, body)) if name == KEK_NAME => body,
        _ => return Err(not_ours()),
    };
    let yaml = kek.open(SHARED_CONFIG_KEY, body).map_err(|_| not_ours())?;
    let yaml = String::from_utf8(yaml).map_err(|_| EncryptionError::SharedConfig {
        reason: "it is not UTF-8".into(),
    })?;
    let config =
        EncryptionConfiguration::parse(&yaml).map_err(|err| EncryptionError::SharedConfig {
            reason: err.to_string(),
        })?;
    // The transformers are checked by whoever applies it; a bad config is refused there.
    Ok(config)
}

/// A member's handle on the shared config.
pub(super) struct Shared {
    pub(super) store: Store,
    pub(super) kek: AesGcmKey,
    /// The `mod_revision` of the config in use; 0 before the first one is loaded.
    pub(super) revision: AtomicU64,
    /// Why the config is not loaded yet, when a load failed (for the 503's message).
    pub(super) failure: Mutex<Option<String>>,
}

impl Shared {
    pub(super) fn new(store: Store, kek: AesGcmKey) -> Shared {
        Shared {
            store,
            kek,
            revision: AtomicU64::new(0),
            failure: Mutex::new(None),
        }
    }

    pub(super) fn loaded(&self) -> bool {
        self.revision.load(Ordering::Acquire) > 0
    }

    /// The stored config as this member's store holds it now, read without waiting (the
    /// store's reads are local; `None` if it ever had to wait, or holds none).
    pub(super) fn local_now(&self) -> Option<KeyValue> {
        self.store
            .get(SHARED_CONFIG_KEY)
            .now_or_never()
            .and_then(Result::ok)
            .flatten()
    }

    pub(super) fn fail(&self, err: &EncryptionError) {
        tracing::error!(%err, "the cluster's shared encryption config does not load");
        *self.failure.lock().expect("failure lock") = Some(err.to_string());
    }

    pub(super) fn not_loaded(&self) -> EncryptionError {
        EncryptionError::NotLoaded {
            reason: self
                .failure
                .lock()
                .expect("failure lock")
                .clone()
                .unwrap_or_else(|| "it has not reached this member yet".into()),
        }
    }
}

/// Keeps `encryption`'s shared config current until `shutdown`: watches its key, loads what
/// the store holds, and creates a first config (create-only) when the cluster has none.
pub(super) async fn follow(
    encryption: super::Encryption,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        // Watch first, then read: a change between the two is in the watch.
        let watch = shared.store.watch(SHARED_CONFIG_KEY, 0);
        let current = shared.store.get(SHARED_CONFIG_KEY).await;
        let (mut watch, current) = match (watch, current) {
            (Ok(watch), Ok(current)) => (watch, current),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(%err, "reading the shared encryption config; trying again");
                retry_later(&shutdown).await;
                continue;
            }
        };
        match current {
            Some(kv) => encryption.apply_shared(&shared, &kv),
            None => match create(&shared).await {
                // Read it back (this member applied it before the txn returned).
                Ok(true) => continue,
                // Another member's: its watch event comes when this member applies it.
                Ok(false) => {}
                Err(err) => {
                    tracing::info!(%err, "creating the shared encryption config; trying again")
                }
            },
        }
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                // A config that arrived with a snapshot makes no watch event: read it again now
                // and then (soon while none is loaded).
                () = tokio::time::sleep(if shared.loaded() { RESYNC } else { RETRY }) => break,
                event = watch.events.recv() => event,
            };
            match event {
                Some(event) if event.kv.key == SHARED_CONFIG_KEY && !event.kv.value.is_empty() => {
                    encryption.apply_shared(&shared, &event.kv)
                }
                Some(_) => {}
                // The watch was dropped (a slow reader): watch and read again.
                None => break,
            }
        }
    }
}

async fn retry_later(shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(RETRY) => {}
    }
}

/// Puts a new config in the store unless one is there; whether it did.
async fn create(shared: &Shared) -> Result<bool, EncryptionError> {
    let config = EncryptionConfiguration::generate()?;
    let sealed = seal_config(&shared.kek, &config)?;
    let created = shared.store.txn(create_only(sealed)).await.map_err(|err| {
        EncryptionError::SharedConfig {
            reason: format!("storing it: {err}"),
        }
    })?;
    if created.succeeded {
        tracing::info!(
            "created the cluster's shared encryption config: Secrets are encrypted at rest"
        );
    }
    Ok(created.succeeded)
}

fn create_only(value: Vec<u8>) -> Txn {
    Txn {
        compare: vec![Compare::ModRevision {
            key: SHARED_CONFIG_KEY.to_vec(),
            revision: 0,
        }],
        success: vec![Op::Put {
            key: SHARED_CONFIG_KEY.to_vec(),
            value,
        }],
        failure: vec![],
    }
}

/// Adds a new writing key to the stored config with a compare-and-swap on its revision (a
/// rotation that raced another reads again); returns the key's name and the new revision.
pub(super) async fn add_key(shared: &Shared) -> Result<(String, KeyValue), EncryptionError> {
    let stored_failure = |err: skiff_raft_store::StoreError| EncryptionError::SharedConfig {
        reason: format!("storing it: {err}"),
    };
    shared.store.read_barrier().await.map_err(stored_failure)?;
    for _ in 0..5 {
        let Some(kv) = shared
            .store
            .get(SHARED_CONFIG_KEY)
            .await
            .map_err(stored_failure)?
        else {
            return Err(shared.not_loaded());
        };
        let mut config = unseal_config(&shared.kek, &kv.value)?;
        let name = config.add_key()?;
        let value = seal_config(&shared.kek, &config)?;
        let swapped = shared
            .store
            .txn(Txn {
                compare: vec![Compare::ModRevision {
                    key: SHARED_CONFIG_KEY.to_vec(),
                    revision: kv.mod_revision,
                }],
                success: vec![Op::Put {
                    key: SHARED_CONFIG_KEY.to_vec(),
                    value,
                }],
                failure: vec![],
            })
            .await
            .map_err(stored_failure)?;
        if swapped.succeeded {
            // The txn is applied here before it returns: read back what it stored.
            if let Some(new) = shared
                .store
                .get(SHARED_CONFIG_KEY)
                .await
                .map_err(stored_failure)?
            {
                return Ok((name, new));
            }
        }
    }
    Err(EncryptionError::SharedConfig {
        reason: "other rotations kept changing it; run the rotation again".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_key_der() -> Vec<u8> {
        rcgen::KeyPair::generate().expect("key").serialize_der()
    }

    #[test]
    fn a_config_sealed_with_one_ca_opens_with_it_and_not_with_another() {
        let ca = ca_key_der();
        let kek = key_encryption_key(&ca);
        let config = EncryptionConfiguration::generate().expect("config");
        let sealed = seal_config(&kek, &config).expect("seal");
        let secret = config.resources[0].providers[0]
            .aesgcm
            .as_ref()
            .expect("aesgcm")
            .keys[0]
            .secret
            .clone();
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains(&secret), "the key is not in the stored form");
        assert!(!text.contains("EncryptionConfiguration"));
        // The same CA key derives the same KEK (another member).
        let opened = unseal_config(&key_encryption_key(&ca), &sealed).expect("unseal");
        assert_eq!(opened.to_yaml(), config.to_yaml());

        let other =
            unseal_config(&key_encryption_key(&ca_key_der()), &sealed).expect_err("another CA");
        assert!(
            other.to_string().contains("cluster CA key"),
            "clear message: {other}"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(unseal_config(&kek, &flipped).is_err());
        assert!(unseal_config(&kek, config.to_yaml().as_bytes()).is_err());
    }

    #[test]
    fn the_sealed_config_is_bound_to_its_store_key() {
        let kek = key_encryption_key(&ca_key_der());
        let config = EncryptionConfiguration::generate().expect("config");
        let sealed = seal_config(&kek, &config).expect("seal");
        let (_, body) = aesgcm_parts(&sealed).expect("aesgcm");
        assert!(kek.open(b"/registry/core/secrets/ns/x", body).is_err());
        assert!(kek.open(SHARED_CONFIG_KEY, body).is_ok());
    }
}
