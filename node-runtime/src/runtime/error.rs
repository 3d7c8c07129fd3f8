//! Runtime failures; the agent maps each to a container waiting or terminated reason.

use super::{ContainerId, SandboxId};

/// A runtime or image failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("image {reference}: {message}")]
    ImagePull { reference: String, message: String },
    #[error("image {reference} {source}")]
    FileImage {
        reference: String,
        #[source]
        source: super::images::FileImageError,
    },
    #[error("image {reference}: {source}")]
    Registry {
        reference: String,
        #[source]
        source: std::sync::Arc<super::images::RegistryError>,
    },
    #[error("image {reference}: {source}")]
    Blob {
        reference: String,
        #[source]
        source: super::images::BlobError,
    },
    #[error("image import: {source}")]
    Import {
        #[source]
        source: super::images::ImportError,
    },
    #[error("image {reference} cannot be run here: {message}")]
    InvalidImage { reference: String, message: String },
    #[error("container {name}: create failed: {message}")]
    CreateContainer { name: String, message: String },
    #[error("container {id}: start failed: {message}")]
    StartContainer { id: ContainerId, message: String },
    #[error("container {0} is not running")]
    ContainerNotRunning(ContainerId),
    #[error("container {0} not found")]
    ContainerNotFound(ContainerId),
    #[error("sandbox {0} not found")]
    SandboxNotFound(SandboxId),
    #[error("{operation} is not supported by the {runtime} runtime")]
    Unsupported {
        runtime: &'static str,
        operation: &'static str,
    },
    #[error("image index {}: {source}", path.display())]
    ImageIndex {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}
