//! A certificate the user keeps in files (the API's `--tls-cert-file`, a member's
//! `--peer-cert-file`), read again when either file changes (see `reloading_files`): the
//! handshakes that follow a change present the new pair (open connections keep the one they
//! were made with).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::SignatureScheme;

pub use crate::reloading_files::ReloadError;
use crate::reloading_files::{read, ReloadingFiles};
use crate::tls::certified_key;

/// The certificate and key in two files that handshakes present (as a server, or as a client
/// of mutual TLS), reloaded when they change.
pub struct ReloadingCert {
    pair: ReloadingFiles<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.pair.file())
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair; an error names the file that does not load.
    pub fn new(cert_file: &Path, key_file: &Path) -> Result<ReloadingCert, ReloadError> {
        let files = vec![cert_file.to_path_buf(), key_file.to_path_buf()];
        let pair = ReloadingFiles::new(files, |files| load(&files[0], &files[1]))?;
        Ok(ReloadingCert { pair })
    }

    /// The pair to present at `now`.
    fn at(&self, now: Instant) -> Arc<CertifiedKey> {
        self.pair.at(now)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.at(Instant::now()))
    }
}

impl ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.at(Instant::now()))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, ReloadError> {
    let (cert, key) = (read(cert_file)?, read(key_file)?);
    certified_key(&cert, &key).map_err(|e| ReloadError {
        path: if e.what == "key" {
            key_file.to_path_buf()
        } else {
            cert_file.to_path_buf()
        },
        reason: format!("the {}: {}", e.what, e.reason),
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;

    use super::*;
    use crate::reloading_files::CHECK_EVERY;

    /// A self-signed certificate and its key, PEM.
    fn pair() -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn write(dir: &Path, (cert, key): &(String, String)) {
        // As cert-manager and projected volumes do: new files renamed over the old.
        for (name, pem) in [("tls.crt", cert), ("tls.key", key)] {
            let staged = dir.join(format!("{name}.new"));
            std::fs::write(&staged, pem).expect("write");
            std::fs::rename(&staged, dir.join(name)).expect("rename");
        }
    }

    /// Whether `key` presents the certificate of `pair`.
    fn presents(key: &CertifiedKey, (cert, _): &(String, String)) -> bool {
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("der");
        key.end_entity_cert().expect("a leaf") == &der
    }

    #[test]
    fn a_changed_pair_is_presented_after_the_check_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, second, third) = (pair(), pair(), pair());
        write(dir.path(), &first);
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let served = ReloadingCert::new(&cert, &key).expect("loads");
        let start = Instant::now();
        assert!(presents(&served.at(start), &first));

        write(dir.path(), &second);
        assert!(
            presents(&served.at(start), &first),
            "not looked at before the check"
        );
        let later = start + CHECK_EVERY;
        assert!(presents(&served.at(later), &second));

        // A certificate with another's key: refused, the held pair kept.
        write(dir.path(), &(third.0.clone(), first.1.clone()));
        let after = later + CHECK_EVERY;
        assert!(presents(&served.at(after), &second), "a mismatched pair");
        write(dir.path(), &third);
        assert!(presents(&served.at(after + CHECK_EVERY), &third));
    }

    #[test]
    fn a_pair_that_does_not_load_at_start_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, pair().0).expect("write");
        std::fs::write(&key, "not a key").expect("write");
        let err = ReloadingCert::new(&cert, &key).expect_err("a bad key");
        assert_eq!(err.path, key, "{err}");
        let missing = ReloadingCert::new(&dir.path().join("absent.crt"), &key)
            .expect_err("a missing certificate");
        assert!(missing.to_string().contains("absent.crt"), "{missing}");
    }
}
