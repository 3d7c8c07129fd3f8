//! The node's image service, shared by every runtime (CRI's ImageService): pulls images into
//! a content-addressed store with an index that survives agent restarts. It knows nothing of
//! what an image holds; each runtime says by `can_handle` whether it can run one.

mod assemble;
mod blobs;
mod file;
mod import;
mod index;
mod layers;
mod layout;
mod push;
mod registry;
mod source;
mod store;
mod tar_module;
mod unpack;

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use blobs::BlobError;
pub use file::{FileImageError, FileImages, DEFAULT_MAX_IMAGE_SIZE};
pub use import::ImportError;
pub use push::{push_wasm, PushError, Pushed, PUSH_CHUNK};
pub use registry::RegistryError;
pub use store::ImageStore;

use super::RuntimeError;

/// What an image says about how to run it (OCI image config: `Entrypoint`, `Cmd`, `Env`,
/// `WorkingDir`); merged with the pod spec as Kubernetes does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    /// `User` (`uid`, `uid:gid` or a name), for Linux images; None runs as root.
    #[serde(default)]
    pub user: Option<String>,
}

/// An image as pulled onto the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// The reference the pod spec named (`file:/abs/path.wasm` or `registry/repo:tag`).
    pub reference: String,
    /// `sha256:<hex>` of the image content (of its manifest, for a registry image).
    pub digest: String,
    /// Size in bytes (of the module).
    pub size: u64,
    pub config: ImageConfig,
    /// Where the content lies on the node, for runtimes to read (a single-blob image: the
    /// blob); empty for images that have none (the hollow simulator's).
    pub content: PathBuf,
    /// A Linux image's layers, unpacked, lowest first: one directory each, in overlayfs form
    /// (a whiteout is a 0/0 character device, an opaque directory carries the
    /// `trusted.overlay.opaque=y` xattr), ready to be an overlay's lower directories. Empty
    /// for Wasm images.
    #[serde(default)]
    pub layers: Vec<PathBuf>,
}

/// Credentials for a registry (CRI's AuthConfig); `file:` images need none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PullAuth {
    pub server: Option<String>,
    pub username: String,
    pub password: String,
}

/// CRI ImageService.
#[async_trait]
pub trait ImageService: Send + Sync {
    async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
    ) -> Result<ImageRef, RuntimeError>;
    async fn image_status(&self, reference: &str) -> Result<Option<ImageRef>, RuntimeError>;
    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError>;
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError>;

    /// Imports the images of an archive (a tar of an OCI image layout, or a `docker save`
    /// tarball) under the names it gives them; blocking reads, so the archive may be a
    /// bridge from an async stream. Not part of the CRI (containerd's `ctr images import`);
    /// image services without a store refuse it.
    async fn import_images(
        &self,
        archive: Box<dyn std::io::Read + Send>,
    ) -> Result<Vec<ImageRef>, RuntimeError> {
        drop(archive);
        Err(RuntimeError::Unsupported {
            runtime: "node's image service",
            operation: "image import",
        })
    }
}
