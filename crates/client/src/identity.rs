//! A client certificate that can be replaced while the client runs, as the kubelet's
//! certificate manager rotates the node's: rustls asks for the certificate at every TLS
//! handshake, so connections made after `replace` present the new one, while open ones keep
//! the one they were made with (the client then opens new ones: see `connections`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::SignatureScheme;

use crate::ClientError;

/// The certificate and key a client presents (shared by every clone of the client).
#[derive(Debug)]
pub struct ClientIdentity {
    current: RwLock<Arc<CertifiedKey>>,
    /// How many times the certificate was replaced.
    generation: AtomicU64,
}

impl ClientIdentity {
    /// From a certificate chain and its private key, both PEM.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, ClientError> {
        Ok(ClientIdentity {
            current: RwLock::new(certified(cert, key)?),
            generation: AtomicU64::new(0),
        })
    }

    /// Presents `cert` (with `key`) from the next handshake on; a certificate or key that does
    /// not load is refused and the current one stays.
    pub fn replace(&self, cert: &[u8], key: &[u8]) -> Result<(), ClientError> {
        let next = certified(cert, key)?;
        *self.current.write().expect("identity lock") = next;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Changes with every `replace`: connections made before a change present an older
    /// certificate.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The certificate chain presented now (DER).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().expect("identity lock").cert.clone()
    }
}

impl ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("identity lock").clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified(cert: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, ClientError> {
    let bad = |what: &'static str, reason: String| ClientError::Tls { what, reason };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("client certificate", e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(
            "client certificate",
            "no certificate in the PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("client key", e.to_string()))?;
    // Loads the key and checks that it is the certificate's.
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map(Arc::new)
        .map_err(|e| bad("client key", e.to_string()))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn pair(cn: &str) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_replaced_certificate_is_presented_and_a_bad_one_is_refused() {
        let (cert1, key1) = pair("system:node:n1");
        let (cert2, key2) = pair("system:node:n1");
        let identity = ClientIdentity::from_pem(cert1.as_bytes(), key1.as_bytes()).expect("loads");
        let presented =
            |identity: &ClientIdentity| identity.resolve(&[], &[]).expect("a cert").cert.clone();
        let first = presented(&identity);
        identity
            .replace(cert2.as_bytes(), key2.as_bytes())
            .expect("replaced");
        let second = presented(&identity);
        assert_ne!(first, second);
        assert_eq!(
            identity.generation(),
            1,
            "a replacement is a new generation"
        );
        assert_eq!(second, identity.chain());
        let err = identity
            .replace(b"junk", key2.as_bytes())
            .expect_err("refused");
        assert!(err.to_string().contains("client certificate"), "{err}");
        let err = identity
            .replace(cert1.as_bytes(), key2.as_bytes())
            .expect_err("a key that is not the certificate's is refused");
        assert!(err.to_string().contains("client key"), "{err}");
        assert_eq!(presented(&identity), second);
        assert_eq!(
            identity.generation(),
            1,
            "a refused replacement changes nothing"
        );
    }
}
