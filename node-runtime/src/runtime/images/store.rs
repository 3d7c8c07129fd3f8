//! The node's image store: images' content in the content-addressed blob store
//! (`<dir>/blobs/sha256/<hex>`, shared between images), Linux images' layers unpacked beside
//! it (`<dir>/layers/sha256/<hex>/`, shared too), and the index mapping each reference to its
//! digest (a registry image's manifest digest), its module or config blob and its layers.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::assemble::Stores;
use super::blobs::{sha256, Blobs};
use super::import;
use super::index::Index;
use super::layers::Layers;
use super::registry::Registries;
use super::source::{self, Fetched};
use super::{FileImages, ImageRef, ImageService, PullAuth};
use crate::runtime::RuntimeError;

/// The node's images; cheap to share behind an `Arc`.
pub struct ImageStore {
    dir: PathBuf,
    index: Mutex<Index>,
    files: FileImages,
    blobs: Blobs,
    layers: Layers,
    insecure: Vec<String>,
    registries: Registries,
    /// Held shared by pulls and imports until their image is in the index, and exclusively by
    /// removals: a removal never deletes a layer or blob that a pull under way has just found
    /// in the store (and an image not yet indexed does not count as sharing).
    removal: tokio::sync::RwLock<()>,
}

impl ImageStore {
    /// Opens (or starts) the store in `dir`, with the images its index remembers. It pulls
    /// no `file:` images until [`with_file_images`](Self::with_file_images) allows some, and
    /// reaches registries over HTTPS (plain HTTP for loopback ones).
    pub fn open(dir: PathBuf) -> Result<Self, RuntimeError> {
        let index = Index::load(dir.join("index.json"))?;
        remove_partial(&dir);
        let blobs = Blobs::new(&dir);
        let files = FileImages::default();
        Ok(ImageStore {
            dir: dir.clone(),
            index: Mutex::new(index),
            registries: Registries::new(
                Stores {
                    blobs: blobs.clone(),
                    layers: Layers::new(&dir),
                    max_size: files.size_limit(),
                },
                Vec::new(),
            ),
            layers: Layers::new(&dir),
            files,
            blobs,
            insecure: Vec::new(),
            removal: tokio::sync::RwLock::new(()),
        })
    }

    /// Where `file:` images may come from and how large images may be (registry modules too).
    pub fn with_file_images(mut self, files: FileImages) -> Self {
        self.files = files;
        self.rebuild_registries()
    }

    /// Registries (`HOST:PORT`) reached over plain HTTP although they are not on loopback
    /// (the agent's `--insecure-registry`).
    pub fn with_insecure_registries(mut self, registries: Vec<String>) -> Self {
        self.insecure = registries;
        self.rebuild_registries()
    }

    fn rebuild_registries(mut self) -> Self {
        self.registries = Registries::new(self.stores(), self.insecure.clone());
        self
    }

    /// The stores images are put together in.
    fn stores(&self) -> Stores {
        Stores {
            blobs: self.blobs.clone(),
            layers: self.layers.clone(),
            max_size: self.files.size_limit(),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().expect("image index lock")
    }
}

/// Deletes what pulls and imports cut short by a crash left: half-unpacked layers and import
/// scratch directories.
fn remove_partial(dir: &std::path::Path) {
    Layers::new(dir).remove_partial();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("import-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[async_trait]
impl ImageService for ImageStore {
    /// Fetches the image into the store and records it in the index.
    async fn pull_image(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
    ) -> Result<ImageRef, RuntimeError> {
        let _adding = self.removal.read().await;
        let image =
            match source::fetch(&self.files, &self.registries, reference, auth).await? {
                Fetched::File(bytes) => {
                    let digest = sha256(&bytes);
                    let content = self.blobs.put(&digest, &bytes).await.map_err(|source| {
                        RuntimeError::Blob {
                            reference: reference.to_string(),
                            source,
                        }
                    })?;
                    ImageRef {
                        reference: reference.to_string(),
                        digest,
                        size: bytes.len() as u64,
                        config: Default::default(),
                        content,
                        layers: Vec::new(),
                    }
                }
                Fetched::Stored { digest, image } => ImageRef {
                    reference: reference.to_string(),
                    digest,
                    size: image.size,
                    config: image.config,
                    content: image.content,
                    layers: image.layers,
                },
            };
        self.index().insert(image.clone())?;
        Ok(image)
    }

    async fn image_status(&self, reference: &str) -> Result<Option<ImageRef>, RuntimeError> {
        Ok(self.index().get(reference).cloned())
    }

    async fn list_images(&self) -> Result<Vec<ImageRef>, RuntimeError> {
        Ok(self.index().values().cloned().collect())
    }

    /// Forgets the reference and deletes its content blob, and its unpacked layers and their
    /// blobs, unless another image shares them (two registry images with different manifests
    /// may hold one module; Linux images share layers). Manifest blobs stay until image
    /// garbage collection exists.
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        let _removing = self.removal.write().await;
        let (content, layers) = {
            let mut index = self.index();
            let Some(removed) = index.remove(reference)? else {
                return Ok(());
            };
            let shared = |path: &std::path::Path| {
                index
                    .values()
                    .any(|other| other.content == path || other.layers.iter().any(|l| l == path))
            };
            let content = (!shared(&removed.content)).then_some(removed.content.clone());
            let layers: Vec<_> = (removed.layers.iter())
                .filter(|layer| !shared(layer))
                .cloned()
                .collect();
            (content, layers)
        };
        let io = |path: &std::path::Path| {
            let context = format!("removing {}", path.display());
            move |source| RuntimeError::Io { context, source }
        };
        let mut files: Vec<_> = content.into_iter().collect();
        for layer in &layers {
            let dir = layer.clone();
            let store = self.layers.clone();
            tokio::task::spawn_blocking(move || store.remove(&dir))
                .await
                .expect("layer removal task")
                .map_err(io(layer))?;
            let blob = self
                .layers
                .digest_of(layer)
                .and_then(|d| self.blobs.get(&d));
            files.extend(blob);
        }
        for file in files {
            match tokio::fs::remove_file(&file).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&file)(e))?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Unpacks the archive in a scratch directory of the store (removed afterwards), stores
    /// its images and records each under every name it has.
    async fn import_images(
        &self,
        archive: Box<dyn std::io::Read + Send>,
    ) -> Result<Vec<ImageRef>, RuntimeError> {
        let _adding = self.removal.read().await;
        let scratch = self
            .dir
            .join(format!("import-{}", uuid::Uuid::new_v4().simple()));
        let created = tokio::fs::create_dir_all(&scratch).await;
        created.map_err(|source| RuntimeError::Io {
            context: format!("creating {}", scratch.display()),
            source,
        })?;
        let imported = import::import(&self.stores(), archive, &scratch).await;
        let scratch_left = scratch.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(scratch_left)).await;
        let imported = imported.map_err(|source| RuntimeError::Import { source })?;
        let mut images = Vec::new();
        for found in imported {
            for name in found.names {
                let image = ImageRef {
                    reference: name,
                    digest: found.digest.clone(),
                    size: found.image.size,
                    config: found.image.config.clone(),
                    content: found.image.content.clone(),
                    layers: found.image.layers.clone(),
                };
                self.index().insert(image.clone())?;
                images.push(image);
            }
        }
        Ok(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in `dir/images` that allows `file:` images in `dir`.
    fn store_in(dir: &std::path::Path) -> ImageStore {
        let files = FileImages::default().allow_dir(dir).expect("allow");
        ImageStore::open(dir.join("images"))
            .expect("open")
            .with_file_images(files)
    }

    #[tokio::test]
    async fn pulls_by_content_and_remembers_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_in(dir.path());
        let guest = dir.path().join("g.wasm");
        std::fs::write(&guest, b"\0asm\x01\0\0\0").expect("write");
        let reference = format!("file:{}", guest.display());
        let image = store.pull_image(&reference, None).await.expect("pull");
        assert!(image.digest.starts_with("sha256:"));
        assert_eq!(image.size, 8);
        assert_eq!(
            std::fs::read(&image.content).expect("read"),
            b"\0asm\x01\0\0\0"
        );
        assert_eq!(store.list_images().await.expect("list").len(), 1);

        // The index survives a restart (a new store on the same directory).
        drop(store);
        let store = ImageStore::open(dir.path().join("images")).expect("reopen");
        assert_eq!(
            store.image_status(&reference).await.expect("status"),
            Some(image.clone())
        );

        store.remove_image(&reference).await.expect("remove");
        assert!(store
            .image_status(&reference)
            .await
            .expect("status")
            .is_none());
        assert!(!image.content.exists(), "the unshared blob is deleted");
        let store = ImageStore::open(dir.path().join("images")).expect("reopen");
        assert!(store.list_images().await.expect("list").is_empty());
    }

    #[test]
    fn opening_removes_what_a_crash_left_half_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partial = dir.path().join("layers/sha256/.tmp-1234");
        let scratch = dir.path().join("import-5678");
        let kept = dir.path().join("layers/sha256").join("a".repeat(64));
        for d in [&partial, &scratch, &kept] {
            std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        }
        ImageStore::open(dir.path().to_path_buf()).expect("open");
        assert!(!partial.exists() && !scratch.exists());
        assert!(kept.is_dir(), "complete layers stay");
    }

    #[test]
    fn a_damaged_index_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.json"), "{not json").expect("write");
        let err = ImageStore::open(dir.path().to_path_buf())
            .err()
            .expect("refused");
        assert!(
            matches!(err, RuntimeError::ImageIndex { .. })
                && err.to_string().contains("index.json"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn names_missing_files_and_unsupported_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_in(dir.path());
        let missing = format!("file:{}/nope.wasm", dir.path().display());
        let err = store.pull_image(&missing, None).await.expect_err("missing");
        assert!(err.to_string().contains("nope.wasm"), "{err}");
        // Nothing listens on port 1: a registry that is down is named with its reason.
        let err = store
            .pull_image("127.0.0.1:1/app:1", None)
            .await
            .expect_err("registry");
        assert!(
            matches!(err, RuntimeError::Registry { .. }) && err.to_string().contains("127.0.0.1:1"),
            "{err}"
        );
        let err = store
            .pull_image("file:relative.wasm", None)
            .await
            .expect_err("relative");
        assert!(err.to_string().contains("absolute"), "{err}");
    }
}
