//! A serving certificate that can be replaced while its listener runs, as the kubelet's
//! certificate manager swaps a rotated serving certificate in: rustls asks the resolver for
//! the certificate at every handshake, so connections made after `replace` are served the new
//! one, while open ones keep the one they were made with. A client that resumes a TLS session
//! of the old certificate is not shown a certificate at all (the session vouches for it).

use std::sync::{Arc, RwLock};

use tokio::sync::watch;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why a certificate and key were refused.
#[derive(Debug, thiserror::Error)]
#[error("the serving {what}: {reason}")]
pub struct CertError {
    /// `certificate` or `key`.
    pub what: &'static str,
    pub reason: String,
}

/// The certificate a listener serves now.
pub struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// How many times it was replaced.
    replaced: watch::Sender<u64>,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("replaced", &*self.replaced.borrow())
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// From a certificate chain (leaf first) and its private key, both PEM.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<ServerCert, CertError> {
        Ok(ServerCert {
            current: RwLock::new(certified_key(cert, key)?),
            replaced: watch::Sender::new(0),
        })
    }

    /// Serves `cert` (with `key`) from the next handshake on; a certificate or key that does
    /// not load, or a key that is not the certificate's, is refused and the current one stays.
    pub fn replace(&self, cert: &[u8], key: &[u8]) -> Result<(), CertError> {
        let next = certified_key(cert, key)?;
        *self.current.write().expect("serving certificate lock") = next;
        self.replaced.send_modify(|count| *count += 1);
        Ok(())
    }

    /// The chain served now (DER, leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .expect("serving certificate lock")
            .cert
            .clone()
    }

    /// Changes with every `replace` (its value counts them).
    pub fn replacements(&self) -> watch::Receiver<u64> {
        self.replaced.subscribe()
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .expect("serving certificate lock")
                .clone(),
        )
    }
}

/// A certificate chain (leaf first) and its private key, both PEM, loaded for rustls; refused
/// if either does not load or the key is not the certificate's.
pub fn certified_key(cert: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, CertError> {
    let bad = |what: &'static str, reason: String| CertError { what, reason };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("certificate", "no certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("key", e.to_string()))?;
    // Loads the key and checks that it is the certificate's.
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map(Arc::new)
        .map_err(|e| bad("key", e.to_string()))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn pair() -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_replacement_is_served_and_counted_and_a_bad_one_is_refused() {
        let (cert1, key1) = pair();
        let (cert2, key2) = pair();
        let served = ServerCert::from_pem(cert1.as_bytes(), key1.as_bytes()).expect("loads");
        let replacements = served.replacements();
        let first = served.chain();
        served
            .replace(cert2.as_bytes(), key2.as_bytes())
            .expect("replaced");
        assert_ne!(served.chain(), first);
        assert_eq!(*replacements.borrow(), 1);
        let err = served
            .replace(cert1.as_bytes(), key2.as_bytes())
            .expect_err("a key that is not the certificate's is refused");
        assert_eq!(err.what, "key", "{err}");
        assert!(served.replace(b"junk", key1.as_bytes()).is_err());
        assert_eq!(
            *replacements.borrow(),
            1,
            "a refused replacement changes nothing"
        );
        assert_ne!(served.chain(), first);
    }
}
