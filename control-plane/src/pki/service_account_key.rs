//! The key pair that signs ServiceAccount tokens (`service-account.key`, ECDSA P-256, PKCS#8
//! PEM, 0600), kept beside the cluster CA. Members of one cluster must share it, as they share
//! the CA: a token signed by one is then accepted by every other.

use std::path::Path;

use rcgen::{KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};

use super::files::{self, SERVICE_ACCOUNT_KEY};
use super::PkiError;

/// The ServiceAccount token signing key.
pub struct ServiceAccountKey {
    key: KeyPair,
}

impl ServiceAccountKey {
    /// A new P-256 key (tokens are signed ES256).
    pub fn create() -> Result<ServiceAccountKey, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
            PkiError::Generate {
                what: "ServiceAccount signing key",
                source,
            }
        })?;
        Ok(ServiceAccountKey { key })
    }

    /// The key in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<ServiceAccountKey>, PkiError> {
        let path = dir.join(SERVICE_ACCOUNT_KEY);
        let Some(pem) = files::read_optional(&path)? else {
            return Ok(None);
        };
        let invalid = |reason: String| PkiError::Invalid {
            path: path.clone(),
            what: "ServiceAccount signing key",
            reason,
        };
        let key = KeyPair::from_pem(&pem).map_err(|e| invalid(e.to_string()))?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(invalid("it is not an ECDSA P-256 key".into()));
        }
        Ok(Some(ServiceAccountKey { key }))
    }

    /// The key in `dir`; else the one in `shared` (copied into `dir`); else a new one
    /// (written to `dir`).
    pub fn load_or_create(dir: &Path, shared: Option<&Path>) -> Result<Self, PkiError> {
        if let Some(key) = Self::load(dir)? {
            return Ok(key);
        }
        let key = match shared.map(Self::load).transpose()?.flatten() {
            Some(key) => key,
            None => {
                if let Some(shared) = shared {
                    tracing::warn!(
                        dir = %shared.display(),
                        "the shared cluster CA directory has no {SERVICE_ACCOUNT_KEY}: this \
                         member signs ServiceAccount tokens with a key of its own, which the \
                         other members do not accept"
                    );
                }
                Self::create()?
            }
        };
        key.write(dir)?;
        Ok(key)
    }

    /// Writes `service-account.key` (0600) into `dir`, creating it (0700).
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        files::private_dir(dir)?;
        files::write_key(&dir.join(SERVICE_ACCOUNT_KEY), &self.key.serialize_pem())
    }

    /// The private key, PKCS#8 DER.
    pub fn private_pkcs8_der(&self) -> Vec<u8> {
        self.key.serialize_der()
    }

    /// The public key: the uncompressed curve point.
    pub fn public_key_raw(&self) -> &[u8] {
        self.key.public_key_raw()
    }

    /// The public key, SubjectPublicKeyInfo DER (what a key id is computed from).
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }
}
