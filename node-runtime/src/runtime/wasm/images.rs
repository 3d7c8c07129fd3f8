//! The node's image store for Wasm: content-addressed copies of pulled images.
//!
//! References today are `file:/abs/path.wasm`; the store keeps images by `sha256` digest under
//! `<data>/images/sha256/<hex>`, so an OCI puller only has to produce the bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::runtime::{ImageRef, RuntimeError};

/// Whether the bytes are a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    Module,
    Component,
}

/// Tells a Wasm binary's kind from its header, or says why it is not Wasm.
pub fn wasm_kind(bytes: &[u8]) -> Result<WasmKind, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("it does not start with the WebAssembly magic bytes \\0asm".into());
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Ok(WasmKind::Module),
        [0x0d, 0, 1, 0] => Ok(WasmKind::Component),
        other => Err(format!(
            "unsupported WebAssembly version/layer {other:02x?}"
        )),
    }
}

pub struct ImageStore {
    dir: PathBuf,
    /// reference → pulled image.
    index: Mutex<HashMap<String, ImageRef>>,
}

impl ImageStore {
    pub fn new(dir: PathBuf) -> Self {
        ImageStore {
            dir,
            index: Mutex::new(HashMap::new()),
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Fetches the image into the store (re-reading `file:` references every time, so a
    /// rebuilt guest is picked up) and checks that it is Wasm.
    pub async fn pull(&self, reference: &str) -> Result<ImageRef, RuntimeError> {
        let path = file_path(reference)?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| RuntimeError::ImagePull {
                reference: reference.to_string(),
                message: format!("reading {}: {e}", path.display()),
            })?;
        wasm_kind(&bytes).map_err(|message| RuntimeError::InvalidImage {
            reference: reference.to_string(),
            message: format!("{}: {message}", path.display()),
        })?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            write_atomically(&blob, &bytes)
                .await
                .map_err(|source| RuntimeError::Io {
                    context: format!("storing image {reference} at {}", blob.display()),
                    source,
                })?;
        }
        let image = ImageRef {
            reference: reference.to_string(),
            digest,
            size: bytes.len() as u64,
        };
        self.index
            .lock()
            .expect("image index lock")
            .insert(reference.to_string(), image.clone());
        Ok(image)
    }

    /// The stored bytes of a pulled image.
    pub async fn read(&self, image: &ImageRef) -> Result<Vec<u8>, RuntimeError> {
        let blob = self.blob_path(&image.digest);
        tokio::fs::read(&blob)
            .await
            .map_err(|source| RuntimeError::Io {
                context: format!("reading image {} from {}", image.reference, blob.display()),
                source,
            })
    }

    pub fn status(&self, reference: &str) -> Option<ImageRef> {
        self.index
            .lock()
            .expect("image index lock")
            .get(reference)
            .cloned()
    }

    pub fn list(&self) -> Vec<ImageRef> {
        self.index
            .lock()
            .expect("image index lock")
            .values()
            .cloned()
            .collect()
    }

    /// Forgets the reference and deletes its blob unless another reference shares it.
    pub async fn remove(&self, reference: &str) -> Result<(), RuntimeError> {
        let removed = {
            let mut index = self.index.lock().expect("image index lock");
            let removed = index.remove(reference);
            removed.filter(|r| !index.values().any(|other| other.digest == r.digest))
        };
        if let Some(image) = removed {
            let blob = self.blob_path(&image.digest);
            match tokio::fs::remove_file(&blob).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(RuntimeError::Io {
                        context: format!("removing {}", blob.display()),
                        source,
                    })
                }
            }
        }
        Ok(())
    }
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

/// Writes via a temporary file and a rename, so a crash never leaves a partial blob.
async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_modules_from_components() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), Ok(WasmKind::Module));
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0"), Ok(WasmKind::Component));
        assert!(wasm_kind(b"\x7fELF\x02\x01\x01\0").is_err());
        assert!(wasm_kind(b"\0as").is_err());
    }

    #[tokio::test]
    async fn pulls_by_content_and_names_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ImageStore::new(dir.path().join("images"));
        let guest = dir.path().join("g.wasm");
        std::fs::write(&guest, b"\0asm\x01\0\0\0").expect("write");
        let reference = format!("file:{}", guest.display());
        let image = store.pull(&reference).await.expect("pull");
        assert!(image.digest.starts_with("sha256:"));
        assert_eq!(store.read(&image).await.expect("read"), b"\0asm\x01\0\0\0");
        assert_eq!(store.list().len(), 1);

        let missing = format!("file:{}/nope.wasm", dir.path().display());
        let err = store.pull(&missing).await.expect_err("missing");
        assert!(err.to_string().contains("nope.wasm"), "{err}");
        let text = dir.path().join("t.wasm");
        std::fs::write(&text, b"not wasm at all").expect("write");
        let err = store
            .pull(&format!("file:{}", text.display()))
            .await
            .expect_err("not wasm");
        assert!(
            matches!(err, RuntimeError::InvalidImage { .. }) && err.to_string().contains("t.wasm"),
            "{err}"
        );
        assert!(store.pull("nginx:latest").await.is_err());
        store.remove(&reference).await.expect("remove");
        assert!(store.status(&reference).is_none());
    }
}
