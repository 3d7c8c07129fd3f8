//! The files of `DATA_DIR/tls/`: certificates are world-readable PEM, keys owner-only (0600).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::PkiError;

/// The certificates' directory inside a server's data dir.
pub const TLS_DIR: &str = "tls";
/// The cluster CA's certificate.
pub const CA_CERT: &str = "ca.crt";
/// The cluster CA's private key.
pub const CA_KEY: &str = "ca.key";
/// The API's serving certificate.
pub const SERVING_CERT: &str = "serving.crt";
/// The API's serving key.
pub const SERVING_KEY: &str = "serving.key";
/// The key that signs ServiceAccount tokens.
pub const SERVICE_ACCOUNT_KEY: &str = "service-account.key";
/// The admin client certificate (CN=admin, O=system:masters).
pub const ADMIN_CERT: &str = "admin.crt";
/// The admin client key.
pub const ADMIN_KEY: &str = "admin.key";

/// Creates `dir` (mode 0700) if missing.
pub(crate) fn private_dir(dir: &Path) -> Result<(), PkiError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `contents` to `path` with `mode`, replacing what was there.
pub(crate) fn write(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let failed = |source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(failed)?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)
}

/// Writes a private key (0600).
pub(crate) fn write_key(path: &Path, pem: &str) -> Result<(), PkiError> {
    write(path, pem, 0o600)
}

/// Writes a certificate (0644).
pub(crate) fn write_cert(path: &Path, pem: &str) -> Result<(), PkiError> {
    write(path, pem, 0o644)
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
