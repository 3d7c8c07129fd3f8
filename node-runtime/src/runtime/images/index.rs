//! The image index (reference → pulled image), kept in `<images>/index.json` so that it
//! survives agent restarts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ImageRef;
use crate::runtime::RuntimeError;

/// The index in memory and the file it is saved to after every change.
pub struct Index {
    path: PathBuf,
    images: BTreeMap<String, ImageRef>,
}

impl Index {
    /// Loads the index at `path`; a missing file is an empty index.
    pub fn load(path: PathBuf) -> Result<Self, RuntimeError> {
        let images = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| RuntimeError::ImageIndex {
                    path: path.clone(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(RuntimeError::Io {
                    context: format!("reading the image index {}", path.display()),
                    source,
                })
            }
        };
        Ok(Index { path, images })
    }

    pub fn get(&self, reference: &str) -> Option<&ImageRef> {
        self.images.get(reference)
    }

    pub fn values(&self) -> impl Iterator<Item = &ImageRef> {
        self.images.values()
    }

    /// Records `image` and saves the index.
    pub fn insert(&mut self, image: ImageRef) -> Result<(), RuntimeError> {
        if self.images.get(&image.reference) == Some(&image) {
            return Ok(());
        }
        self.images.insert(image.reference.clone(), image);
        self.save()
    }

    /// Forgets `reference` and saves the index; returns what it named.
    pub fn remove(&mut self, reference: &str) -> Result<Option<ImageRef>, RuntimeError> {
        let removed = self.images.remove(reference);
        if removed.is_some() {
            self.save()?;
        }
        Ok(removed)
    }

    fn save(&self) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec_pretty(&self.images).expect("image index serializes");
        write_atomically(&self.path, &bytes).map_err(|source| RuntimeError::Io {
            context: format!("writing the image index {}", self.path.display()),
            source,
        })
    }
}

/// Writes via a temporary file and a rename, so a crash never leaves a partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
