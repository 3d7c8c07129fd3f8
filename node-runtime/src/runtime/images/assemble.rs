//! From an image manifest to an image the node can run, whatever the blobs come from (a
//! registry, or an imported image layout): a Wasm module in the blob store, or a Linux image's
//! layers unpacked in the layer store.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use oci_client::manifest::{OciDescriptor, OciImageManifest};

use super::blobs::{sha256, BlobError, Blobs};
use super::layers::{LayerError, Layers};
use super::layout::{self, Layout, LayoutError};
use super::tar_module::{self, TarModuleError};
use super::ImageConfig;

/// The largest manifest or image config accepted.
pub const MAX_METADATA: u64 = 4 * 1024 * 1024;

/// Why an image's content cannot be put together.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("manifest {digest} {source}")]
    Layout {
        digest: String,
        #[source]
        source: LayoutError,
    },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    TarModule(#[from] TarModuleError),
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// Where an image's blobs come from.
#[async_trait]
pub trait BlobSource: Sync {
    type Error: From<ContentError> + Send;

    /// The blob `desc` in the node's blob store (fetched and checked against its digest if it
    /// is not there yet), refused past `max` bytes.
    async fn blob(&self, desc: &OciDescriptor, max: u64) -> Result<PathBuf, Self::Error>;
}

/// An image's content on the node.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The Wasm module, or a Linux image's config blob.
    pub content: PathBuf,
    /// A Linux image's unpacked layers, lowest first; empty for Wasm.
    pub layers: Vec<PathBuf>,
    /// The module's size, or the sum of a Linux image's layer blobs.
    pub size: u64,
    /// How to run it (from the image config).
    pub config: ImageConfig,
}

/// The stores an image is put together in.
#[derive(Debug, Clone)]
pub struct Stores {
    /// The content-addressed blobs.
    pub blobs: Blobs,
    /// The unpacked layer directories.
    pub layers: Layers,
    /// The node's cap on a module, and on each layer blob (`--max-image-size`).
    pub max_size: u64,
}

impl Stores {
    /// Puts the image of manifest `manifest` (of digest `digest`) together from `source`.
    pub async fn assemble<S: BlobSource>(
        &self,
        source: &S,
        digest: &str,
        manifest: OciImageManifest,
    ) -> Result<Assembled, S::Error> {
        let (config_desc, layers) = (manifest.config, manifest.layers);
        let layout_error = |source| ContentError::Layout {
            digest: digest.to_string(),
            source,
        };
        let found = match layout::artifact_layer(&config_desc, &layers).map_err(layout_error)? {
            Some(layer) => Layout::Layer(layer),
            None => {
                let path = source.blob(&config_desc, MAX_METADATA).await?;
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|source| ContentError::from(BlobError::Io { path, source }))?;
                layout::from_config(&bytes, &layers).map_err(layout_error)?
            }
        };
        Ok(match found {
            Layout::Layer(layer) => {
                let module = source.blob(&layer, self.max_size).await?;
                Assembled {
                    size: file_size(&module).await?,
                    content: module,
                    layers: Vec::new(),
                    config: ImageConfig::default(),
                }
            }
            Layout::Tar {
                layers,
                path,
                config,
            } => {
                let mut stored = Vec::new();
                for layer in &layers {
                    stored.push(source.blob(layer, self.max_size).await?);
                }
                let max = self.max_size;
                let bytes = tokio::task::spawn_blocking(move || {
                    tar_module::read_module(&stored, &path, max)
                })
                .await
                .expect("layer read task")
                .map_err(ContentError::from)?;
                let module = self
                    .blobs
                    .put(&sha256(&bytes), &bytes)
                    .await
                    .map_err(ContentError::from)?;
                Assembled {
                    size: bytes.len() as u64,
                    content: module,
                    layers: Vec::new(),
                    config,
                }
            }
            Layout::Linux { layers, config } => {
                // Fetched above, so the image's config is at hand.
                let config_blob = source.blob(&config_desc, MAX_METADATA).await?;
                let mut dirs = Vec::new();
                let mut size = 0;
                for layer in &layers {
                    let blob = source.blob(layer, self.max_size).await?;
                    size += file_size(&blob).await?;
                    dirs.push(self.unpack(&layer.digest, blob).await?);
                }
                Assembled {
                    content: config_blob,
                    layers: dirs,
                    size,
                    config,
                }
            }
        })
    }

    /// Unpacks a layer blob (once) off the async threads.
    async fn unpack(&self, digest: &str, blob: PathBuf) -> Result<PathBuf, ContentError> {
        let (layers, digest) = (self.layers.clone(), digest.to_string());
        tokio::task::spawn_blocking(move || layers.unpack(&digest, &blob))
            .await
            .expect("layer unpack task")
            .map_err(ContentError::from)
    }
}

async fn file_size(path: &Path) -> Result<u64, ContentError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|source| BlobError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(meta.len())
}
