//! The encryption config file: the one given with `--encryption-provider-config`, or the one a
//! server keeps in its data dir (generated on a lone member's first start, as k3s's
//! `--secrets-encryption` does).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{EncryptionConfiguration, EncryptionError, Source};
use crate::encryption::Encryption;

/// The server-kept config's name inside the data dir.
pub const DEFAULT_FILE: &str = "encryption-config.yaml";

/// The encryption a server starts with. `given` is `--encryption-provider-config`; without
/// it the data dir's file is used, and made with a new key when absent on a member that is
/// a cluster of its own (`lone`). Members of a larger cluster must share keys, so they do not
/// make one: without a file they store values in clear text, and say so.
pub fn setup(
    data_dir: &Path,
    given: Option<&Path>,
    lone: bool,
) -> Result<Encryption, EncryptionError> {
    let (path, managed) = match given {
        Some(path) => (path.to_path_buf(), false),
        None => (data_dir.join(DEFAULT_FILE), true),
    };
    if managed && !path.exists() {
        if !lone {
            tracing::warn!(
                path = %path.display(),
                "no encryption config: Secrets are stored in clear text; copy the encryption \
                 config of a member to this path (or pass --encryption-provider-config) on every member"
            );
            return Ok(Encryption::identity());
        }
        std::fs::create_dir_all(data_dir).map_err(|source| EncryptionError::File {
            path: data_dir.to_path_buf(),
            source,
        })?;
        write(&path, &EncryptionConfiguration::generate()?)?;
        tracing::info!(path = %path.display(), "generated an encryption config: Secrets are encrypted at rest");
    }
    let config = read(&path)?;
    let transformers = config
        .transformers()
        .map_err(|source| EncryptionError::Config {
            path: path.clone(),
            source,
        })?;
    Ok(Encryption {
        current: Arc::new(RwLock::new(Arc::new(transformers))),
        source: Some(Source::File { path, managed }),
    })
}

pub(super) fn read(path: &Path) -> Result<EncryptionConfiguration, EncryptionError> {
    let text = std::fs::read_to_string(path).map_err(|source| EncryptionError::File {
        path: path.to_path_buf(),
        source,
    })?;
    EncryptionConfiguration::parse(&text).map_err(|source| EncryptionError::Config {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `config` to `path` (mode 0600) through a temporary file, so a crash leaves the old
/// file or the new one.
pub(super) fn write(path: &Path, config: &EncryptionConfiguration) -> Result<(), EncryptionError> {
    let failed = |source| EncryptionError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = PathBuf::from(path);
    temp.set_extension("yaml.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .map_err(failed)?;
    file.write_all(config.to_yaml().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    std::fs::rename(&temp, path).map_err(failed)
}
