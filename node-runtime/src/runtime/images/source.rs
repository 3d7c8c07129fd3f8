//! Where image content comes from: a `file:` path on the node (re-read every time, so a
//! rebuilt guest is picked up) or an OCI registry (pulled into the blob store).

use super::assemble::Assembled;
use super::file::FileImages;
use super::registry::Registries;
use super::PullAuth;
use crate::runtime::RuntimeError;

/// An image's content as fetched from its source.
pub enum Fetched {
    /// A `file:` image's bytes, still to be stored; such images carry no config.
    File(Vec<u8>),
    /// A registry image, already in the blob store (and its layers in the layer store).
    Stored { digest: String, image: Assembled },
}

/// Fetches `reference` from where it says.
pub async fn fetch(
    files: &FileImages,
    registries: &Registries,
    reference: &str,
    auth: Option<&PullAuth>,
) -> Result<Fetched, RuntimeError> {
    if !reference.starts_with("file:") {
        let pulled =
            registries
                .pull(reference, auth)
                .await
                .map_err(|source| RuntimeError::Registry {
                    reference: reference.to_string(),
                    source,
                })?;
        return Ok(Fetched::Stored {
            digest: pulled.manifest_digest,
            image: pulled.image,
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
    Ok(Fetched::File(bytes))
}
