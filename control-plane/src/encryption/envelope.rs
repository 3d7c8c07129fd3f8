//! The `aesgcm` provider's stored form, as Kubernetes writes it:
//! `k8s:enc:aesgcm:v1:<key name>:` followed by a random 12-byte nonce and the AES-256-GCM
//! ciphertext with its tag. The store key is the associated data, so a value moved to another
//! key does not decrypt.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::EncryptionError;

/// What every encrypted value starts with (any provider).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";
/// What values of the `aesgcm` provider start with, before the key name.
const AESGCM_PREFIX: &[u8] = b"k8s:enc:aesgcm:v1:";
/// Bytes of an AES-256 key.
pub const KEY_LEN: usize = 32;

/// One named AES-256-GCM key of an `aesgcm` provider.
#[derive(Clone)]
pub struct AesGcmKey {
    pub name: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for AesGcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AesGcmKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AesGcmKey {
    /// A key from its 32 bytes; `None` for any other length.
    pub fn new(name: impl Into<String>, secret: &[u8]) -> Option<AesGcmKey> {
        if secret.len() != KEY_LEN {
            return None;
        }
        let key = UnboundKey::new(&AES_256_GCM, secret).ok()?;
        Some(AesGcmKey {
            name: name.into(),
            key: LessSafeKey::new(key),
        })
    }

    /// Encrypts `plain` for `store_key` under a fresh random nonce.
    pub fn seal(&self, store_key: &[u8], plain: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| EncryptionError::Random)?;
        let mut sealed = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key),
                &mut sealed,
            )
            .map_err(|_| EncryptionError::Seal {
                key: self.name.clone(),
            })?;
        let mut out = Vec::with_capacity(AESGCM_PREFIX.len() + self.name.len() + 1 + 12);
        out.extend_from_slice(AESGCM_PREFIX);
        out.extend_from_slice(self.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts the part of a stored value after its prefix (nonce, ciphertext, tag).
    pub fn open(&self, store_key: &[u8], body: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let failed = || EncryptionError::Open {
            store_key: String::from_utf8_lossy(store_key).into_owned(),
            key: self.name.clone(),
        };
        if body.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?;
        let mut buffer = sealed.to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(store_key), &mut buffer)
            .map_err(|_| failed())?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// A stored value's `aesgcm` key name and the rest (nonce, ciphertext, tag); `None` for a
/// value of another form.
pub fn aesgcm_parts(value: &[u8]) -> Option<(&str, &[u8])> {
    let rest = value.strip_prefix(AESGCM_PREFIX)?;
    let colon = rest.iter().position(|b| *b == b':')?;
    let name = std::str::from_utf8(&rest[..colon]).ok()?;
    Some((name, &rest[colon + 1..]))
}

/// The provider a value was written by (`aesgcm`, ...), or `None` for a clear-text value.
pub fn provider_of(value: &[u8]) -> Option<String> {
    let rest = value.strip_prefix(ENCRYPTED_PREFIX)?;
    let end = rest.iter().position(|b| *b == b':').unwrap_or(rest.len());
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// 32 fresh random bytes for a new key.
pub fn random_key() -> Result<[u8; KEY_LEN], EncryptionError> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| EncryptionError::Random)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, byte: u8) -> AesGcmKey {
        AesGcmKey::new(name, &[byte; KEY_LEN]).expect("32 bytes")
    }

    #[test]
    fn values_carry_the_kubernetes_prefix_and_round_trip() {
        let k = key("key1", 7);
        let sealed = k
            .seal(b"/registry/core/secrets/ns/a", b"{\"x\":1}")
            .expect("seal");
        assert!(sealed.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
        assert_eq!(sealed.len(), b"k8s:enc:aesgcm:v1:key1:".len() + 12 + 7 + 16);
        let (name, body) = aesgcm_parts(&sealed).expect("aesgcm value");
        assert_eq!(name, "key1");
        assert_eq!(provider_of(&sealed).as_deref(), Some("aesgcm"));
        assert_eq!(provider_of(b"{}"), None);
        let plain = k.open(b"/registry/core/secrets/ns/a", body).expect("open");
        assert_eq!(plain, b"{\"x\":1}");
    }

    #[test]
    fn every_write_draws_a_new_nonce() {
        let k = key("key1", 7);
        let a = k.seal(b"k", b"same").expect("seal");
        let b = k.seal(b"k", b"same").expect("seal");
        assert_ne!(a, b);
    }

    #[test]
    fn another_store_key_a_wrong_key_or_a_flipped_bit_do_not_decrypt() {
        let k = key("key1", 7);
        let sealed = k
            .seal(b"/registry/core/secrets/ns/a", b"secret")
            .expect("seal");
        let (_, body) = aesgcm_parts(&sealed).expect("aesgcm value");
        let moved = k.open(b"/registry/core/secrets/ns/b", body);
        assert!(
            matches!(moved, Err(EncryptionError::Open { .. })),
            "{moved:?}"
        );
        assert!(key("key1", 8)
            .open(b"/registry/core/secrets/ns/a", body)
            .is_err());
        let mut flipped = body.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(k.open(b"/registry/core/secrets/ns/a", &flipped).is_err());
        assert!(k.open(b"/registry/core/secrets/ns/a", b"short").is_err());
    }

    #[test]
    fn only_32_byte_keys_are_taken() {
        assert!(AesGcmKey::new("k", &[0; 16]).is_none());
        assert!(AesGcmKey::new("k", &[0; 33]).is_none());
    }
}
