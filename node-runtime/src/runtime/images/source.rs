//! Where image content comes from: `file:` references today, registries later.

use std::path::{Path, PathBuf};

use super::{ImageConfig, PullAuth};
use crate::runtime::RuntimeError;

/// An image's content and config as fetched from its source.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub config: ImageConfig,
}

/// Fetches `reference` (re-reading `file:` references every time, so a rebuilt guest is
/// picked up). `file:` images carry no config and need no credentials.
pub async fn fetch(reference: &str, _auth: Option<&PullAuth>) -> Result<Fetched, RuntimeError> {
    let path = file_path(reference)?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| RuntimeError::ImagePull {
            reference: reference.to_string(),
            message: format!("reading {}: {e}", path.display()),
        })?;
    Ok(Fetched {
        bytes,
        config: ImageConfig::default(),
    })
}

/// The path of a `file:` reference.
fn file_path(reference: &str) -> Result<PathBuf, RuntimeError> {
    let path = reference.strip_prefix("file:").ok_or_else(|| RuntimeError::ImagePull {
        reference: reference.to_string(),
        message: "only file: references (file:/path/to/guest.wasm) are supported by this node yet; OCI registries come later".into(),
    })?;
    let path = Path::new(path.strip_prefix("//").unwrap_or(path));
    if !path.is_absolute() {
        return Err(RuntimeError::ImagePull {
            reference: reference.to_string(),
            message: "a file: image must be an absolute path on the node".into(),
        });
    }
    Ok(path.to_path_buf())
}
