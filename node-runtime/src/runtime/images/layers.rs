//! The node's unpacked layers (`<images>/layers/sha256/<hex>/`, named for the layer blob's
//! digest): each layer is unpacked once, into a temporary directory renamed into place when
//! complete, and shared by every image that has it. A layer that fails to unpack leaves
//! nothing behind.

use std::path::{Path, PathBuf};

use super::blobs::{digest_hex, BlobError};
use super::unpack::{self, UnpackError};

/// Why a layer could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Digest(#[from] BlobError),
    #[error("layer {digest} {source}")]
    Unpack {
        digest: String,
        #[source]
        source: UnpackError,
    },
}

/// The unpacked-layer directory of an image store.
#[derive(Debug, Clone)]
pub struct Layers {
    dir: PathBuf,
}

impl Layers {
    /// Layers under `<images>/layers/sha256`.
    pub fn new(images: &Path) -> Self {
        Layers {
            dir: images.join("layers").join("sha256"),
        }
    }

    /// Where the layer `digest` is (or would be) unpacked.
    pub fn path(&self, digest: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(digest_hex(digest)?))
    }

    /// Unpacks the layer blob `blob` (of digest `digest`) unless it is unpacked already;
    /// blocking, so callers run it off the async threads.
    pub fn unpack(&self, digest: &str, blob: &Path) -> Result<PathBuf, LayerError> {
        let dest = self.path(digest)?;
        if dest.is_dir() {
            return Ok(dest);
        }
        let failed = |source| LayerError::Unpack {
            digest: digest.to_string(),
            source,
        };
        let write = |path: &Path| {
            let path = path.to_path_buf();
            move |source| failed(UnpackError::Write { path, source })
        };
        std::fs::create_dir_all(&self.dir).map_err(write(&self.dir))?;
        let tmp = self
            .dir
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&tmp).map_err(write(&tmp))?;
        let unpacked = std::fs::File::open(blob)
            .map_err(|source| UnpackError::Read { source })
            .and_then(unpack::decompressed)
            .and_then(|tar| unpack::unpack_into(tar, &tmp));
        if let Err(source) = unpacked {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(failed(source));
        }
        match std::fs::rename(&tmp, &dest) {
            Ok(()) => Ok(dest),
            // Another pull unpacked the same layer meanwhile.
            Err(_) if dest.is_dir() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(dest)
            }
            Err(source) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(write(&dest)(source))
            }
        }
    }

    /// Deletes the temporary directories of unpacks cut short (an agent killed mid-pull).
    pub fn remove_partial(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Deletes the unpacked layer `dir` (one of this store's); a missing one is not an error.
    pub fn remove(&self, dir: &Path) -> std::io::Result<()> {
        if dir.parent() != Some(self.dir.as_path()) {
            return Ok(());
        }
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The digest of the layer unpacked in `dir`, if `dir` is one of this store's.
    pub fn digest_of(&self, dir: &Path) -> Option<String> {
        (dir.parent() == Some(self.dir.as_path()))
            .then(|| dir.file_name()?.to_str())
            .flatten()
            .map(|hex| format!("sha256:{hex}"))
    }
}
