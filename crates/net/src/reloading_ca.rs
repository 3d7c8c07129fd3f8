//! Trusted CA certificates the user keeps in a file (a member's `--peer-trusted-ca-file`),
//! read again when it changes (see `reloading_files`), as kube-apiserver reloads its
//! `--client-ca-file`: a CA is rotated by writing a bundle of the old and the new, moving
//! the certificates to the new one, then writing the new one alone, with no restart. The
//! handshakes that follow a change verify against the new file; open connections stay.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

use crate::reloading_files::{read, ReloadError, ReloadingFiles};

/// The CA certificates of one PEM file, reloaded when it changes.
pub struct ReloadingCa {
    roots: ReloadingFiles<Arc<RootCertStore>>,
}

impl std::fmt::Debug for ReloadingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCa")
            .field("file", &self.roots.file())
            .finish_non_exhaustive()
    }
}

impl ReloadingCa {
    /// Loads the file; an error names it and says why it holds no usable CA.
    pub fn new(file: &Path) -> Result<ReloadingCa, ReloadError> {
        let roots = ReloadingFiles::new(vec![file.to_path_buf()], |files| load(&files[0]))?;
        Ok(ReloadingCa { roots })
    }

    /// The CA certificates to verify with now.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots_at(Instant::now())
    }

    fn roots_at(&self, now: Instant) -> Arc<RootCertStore> {
        self.roots.at(now)
    }
}

/// Every certificate of the PEM file `path` as a trust anchor; at least one.
fn load(path: &Path) -> Result<Arc<RootCertStore>, ReloadError> {
    let invalid = |reason: String| ReloadError {
        path: path.to_path_buf(),
        reason,
    };
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("a certificate that is no trust anchor: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("holds no PEM certificate".to_string()));
    }
    Ok(Arc::new(roots))
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;
    use crate::reloading_files::CHECK_EVERY;

    /// A self-signed CA certificate, PEM.
    fn ca() -> String {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("cert").pem()
    }

    /// Writes `pem` as a new file renamed over the old.
    fn write(path: &Path, pem: &str) {
        let staged = path.with_extension("new");
        std::fs::write(&staged, pem).expect("write");
        std::fs::rename(&staged, path).expect("rename");
    }

    #[test]
    fn a_changed_file_is_trusted_after_the_check_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ca.pem");
        let (old, new) = (ca(), ca());
        write(&file, &old);
        let trusted = ReloadingCa::new(&file).expect("loads");
        let start = Instant::now();
        assert_eq!(trusted.roots_at(start).len(), 1);

        // The rotation's bundle: not looked at before the check, then both.
        write(&file, &format!("{old}{new}"));
        assert_eq!(trusted.roots_at(start).len(), 1);
        let later = start + CHECK_EVERY;
        assert_eq!(trusted.roots_at(later).len(), 2);

        // A file cut short is refused and the bundle kept; the new CA alone is taken.
        write(&file, &new[..new.len() / 2]);
        let after = later + CHECK_EVERY;
        assert_eq!(trusted.roots_at(after).len(), 2, "a broken file");
        write(&file, &new);
        let roots = trusted.roots_at(after + CHECK_EVERY);
        assert_eq!(roots.len(), 1);
        assert_eq!(roots.roots, load(&file).expect("the new CA").roots);
    }

    #[test]
    fn a_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "no PEM here").expect("write");
        let err = ReloadingCa::new(&file).expect_err("no certificate");
        assert_eq!(err.path, file);
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
    }
}
