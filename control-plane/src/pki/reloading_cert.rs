//! A certificate the user keeps in files (`--tls-cert-file`, `--tls-private-key-file`), read
//! again when either file changes, as kube-apiserver's dynamic serving certificate is: a
//! handshake at most once every `CHECK_EVERY` looks at both files' metadata (inode, size,
//! modification time, so a rename or a symlink swap over them counts), and a changed pair is
//! loaded for the handshakes that follow (open connections keep the one they were made with).
//! A pair that does not load (half written, a key that is not the certificate's) is logged
//! and the held one kept until the files change again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::PkiError;

/// How often a handshake looks at the files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate and key in two files that handshakes present, reloaded when they change.
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
    pub fn new(cert_file: &Path, key_file: &Path) -> Result<ReloadingCert, PkiError> {
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

    /// The pair to present at `now`, loaded again first if the files changed since.
    fn at(&self, now: Instant) -> Arc<CertifiedKey> {
        {
            let held = self.held.read().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(held.checked) < CHECK_EVERY {
                return held.key.clone();
            }
        }
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(held.checked) < CHECK_EVERY {
            // Another handshake looked meanwhile.
            return held.key.clone();
        }
        held.checked = now;
        let current = stamp(&self.cert_file, &self.key_file);
        if current.is_none() || current == held.stamp {
            return held.key.clone();
        }
        held.stamp = current;
        match load(&self.cert_file, &self.key_file) {
            Ok(key) => {
                tracing::info!(file = %self.cert_file.display(), "reloaded the serving certificate");
                held.key = key;
            }
            Err(err) => {
                tracing::warn!(%err, "the changed serving certificate does not load: the held one is used");
            }
        }
        held.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.at(Instant::now()))
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

fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, PkiError> {
    let cert = super::files::read(cert_file)?;
    let key = super::files::read(key_file)?;
    skiff_net::tls::certified_key(cert.as_bytes(), key.as_bytes()).map_err(|e| PkiError::Invalid {
        path: if e.what == "key" {
            key_file.to_path_buf()
        } else {
            cert_file.to_path_buf()
        },
        what: "serving certificate",
        reason: format!("{}: {}", e.what, e.reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{user_of_certificate, CertRequest, ClusterCa, IssuedCert, Usage};

    fn issue(ca: &ClusterCa, name: &str) -> IssuedCert {
        ca.issue(&CertRequest {
            common_name: name.into(),
            organizations: Vec::new(),
            sans: vec!["localhost".into()],
            usage: Usage::Server,
            validity: Duration::from_secs(3600),
        })
        .expect("issued")
    }

    fn write(dir: &Path, cert: &IssuedCert) {
        // As cert-manager and kubelet's projected volumes do: new files renamed over the old.
        for (name, pem) in [("tls.crt", &cert.cert_pem), ("tls.key", &cert.key_pem)] {
            let staged = dir.join(format!("{name}.new"));
            std::fs::write(&staged, pem).expect("write");
            std::fs::rename(&staged, dir.join(name)).expect("rename");
        }
    }

    fn name(key: &CertifiedKey) -> String {
        let der = key.end_entity_cert().expect("a leaf");
        user_of_certificate(der).expect("a name").user.name
    }

    #[test]
    fn a_changed_pair_is_served_after_the_check_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ClusterCa::create().expect("ca");
        write(dir.path(), &issue(&ca, "first"));
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let served = ReloadingCert::new(&cert, &key).expect("loads");
        let start = Instant::now();
        assert_eq!(name(&served.at(start)), "first");

        write(dir.path(), &issue(&ca, "second"));
        assert_eq!(
            name(&served.at(start)),
            "first",
            "not looked at before the check"
        );
        let later = start + CHECK_EVERY;
        assert_eq!(name(&served.at(later)), "second");

        // A certificate whose key is another's: refused, the held pair kept.
        let third = issue(&ca, "third");
        let other = issue(&ca, "other");
        write(
            dir.path(),
            &IssuedCert {
                cert_pem: third.cert_pem.clone(),
                key_pem: other.key_pem,
            },
        );
        let after = later + CHECK_EVERY;
        assert_eq!(name(&served.at(after)), "second", "a mismatched pair");
        write(dir.path(), &third);
        assert_eq!(name(&served.at(after + CHECK_EVERY)), "third");
    }

    #[test]
    fn a_pair_that_does_not_load_at_start_names_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ClusterCa::create().expect("ca");
        let good = issue(&ca, "good");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &good.cert_pem).expect("write");
        std::fs::write(&key, "not a key").expect("write");
        let err = ReloadingCert::new(&cert, &key).expect_err("a bad key");
        assert!(err.to_string().contains("tls.key"), "{err}");
    }
}
