//! Where image content comes from: `file:` references today, registries later.

use super::file::FileImages;
use super::{ImageConfig, PullAuth};
use crate::runtime::RuntimeError;

/// An image's content and config as fetched from its source.
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub config: ImageConfig,
}

/// Fetches `reference` (re-reading `file:` references every time, so a rebuilt guest is
/// picked up). `file:` images carry no config and need no credentials.
pub async fn fetch(
    files: &FileImages,
    reference: &str,
    _auth: Option<&PullAuth>,
) -> Result<Fetched, RuntimeError> {
    if !reference.starts_with("file:") {
        return Err(RuntimeError::ImagePull {
            reference: reference.to_string(),
            message: "only file: references (file:/path/to/guest.wasm) are supported by this node yet; OCI registries come later".into(),
        });
    }
    let (files, owned) = (files.clone(), reference.to_string());
    let bytes = tokio::task::spawn_blocking(move || files.read(&owned))
        .await
        .expect("image read task")
        .map_err(|source| RuntimeError::FileImage {
            reference: reference.to_string(),
            source,
        })?;
    Ok(Fetched {
        bytes,
        config: ImageConfig::default(),
    })
}
