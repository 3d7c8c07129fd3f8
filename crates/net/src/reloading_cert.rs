//! A certificate the user keeps in files (the API's `--tls-cert-file`, a member's
//! `--peer-cert-file`), read again when either file changes, as kube-apiserver reloads its
//! serving certificate (which watches the files; here a handshake looks): a handshake at
//! most once every `CHECK_EVERY` looks at both files' metadata (inode, size, modification
//! time, so a rename or a symlink swap over them counts) and reads them outside the lock, and
//! a changed pair is presented from the handshakes that follow on (open connections keep the
//! one they were made with). A pair that does not load (half written, a key that is not the
//! certificate's) is logged and the held one kept until the files change again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::SignatureScheme;

use crate::tls::certified_key;

/// A certificate file or key file that does not load.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ReloadError {
    /// The file.
    pub path: PathBuf,
    /// Why it does not load.
    pub reason: String,
}

/// How often a handshake looks at the files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate and key in two files that handshakes present (as a server, or as a client
/// of mutual TLS), reloaded when they change.
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    held: RwLock<Held>,
}

/// The loaded pair, the files' stamp it was loaded at (or last failed at), and when the
/// files were last looked at.
struct Held {
    key: Arc<CertifiedKey>,
    stamp: Option<Stamp>,
    checked: Instant,
}

/// What tells that a file changed: its inode, size and modification time (ns).
type Stamp = [(u64, u64, i64, i64); 2];

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair; an error names the file that does not load.
    pub fn new(cert_file: &Path, key_file: &Path) -> Result<ReloadingCert, ReloadError> {
        let stamp = stamp(cert_file, key_file);
        let key = load(cert_file, key_file)?;
        Ok(ReloadingCert {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            held: RwLock::new(Held {
                key,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to present at `now`, loaded again first if the files changed since. The
    /// files are read outside the lock: handshakes meanwhile present the held pair.
    fn at(&self, now: Instant) -> Arc<CertifiedKey> {
        {
            let held = self.held.read().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(held.checked) < CHECK_EVERY {
                return held.key.clone();
            }
        }
        let known = {
            let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(held.checked) < CHECK_EVERY {
                return held.key.clone();
            }
            // This handshake looks; others within `CHECK_EVERY` do not.
            held.checked = now;
            held.stamp
        };
        let current = stamp(&self.cert_file, &self.key_file);
        let loaded = match current {
            Some(current) if Some(current) != known => Some(load(&self.cert_file, &self.key_file)),
            _ => None,
        };
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Some(Ok(key)) => {
                tracing::info!(file = %self.cert_file.display(), "reloaded the certificate");
                held.key = key;
                held.stamp = current;
            }
            Some(Err(err)) => {
                tracing::warn!(%err, "the changed certificate does not load: the held one is used");
                held.stamp = current;
            }
            None => {}
        }
        held.key.clone()
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

/// Both files' stamps; `None` if either cannot be read (say, in the middle of a swap).
fn stamp(cert_file: &Path, key_file: &Path) -> Option<Stamp> {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()))
    };
    Some([one(cert_file)?, one(key_file)?])
}

fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, ReloadError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| ReloadError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
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
