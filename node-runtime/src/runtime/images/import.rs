//! Importing images from an archive (`skiff image import`, for air-gapped nodes): a tar
//! (plain, gzip or zstd) of an OCI image layout (`oci-layout`, `index.json`, `blobs/`) or a
//! `docker save` tarball (`manifest.json`, config and layer files). The archive is unpacked
//! with the same care as a layer into a scratch directory beside the store, every blob it
//! names is copied into the blob store checked against its digest, and the images are put
//! together as pulled ones are. The scratch directory is removed whatever happens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest, OciManifest};
use serde::Deserialize;

use super::assemble::{Assembled, BlobSource, ContentError, Stores, MAX_METADATA};
use super::blobs::{digest_hex, BlobError};
use super::layout;
use super::unpack::{self, UnpackError};

/// The annotation naming an image in an OCI layout's index (`REPO:TAG`, or a bare tag).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd and `docker save` (25+) add with the full name.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Why an archive was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the archive cannot be unpacked: {0}")]
    Unpack(#[source] UnpackError),
    #[error(
        "the archive is not an image: it has neither an OCI layout's index.json nor \
         docker save's manifest.json"
    )]
    NotImage,
    #[error("the archive's {file} is malformed: {message}")]
    Malformed { file: String, message: String },
    #[error("the archive's {file} names {path:?}, which is not a file in the archive")]
    Missing { file: String, path: String },
    #[error("the archive names no image: no {REF_NAME} annotation nor RepoTags")]
    Unnamed,
    #[error(transparent)]
    Content(#[from] ContentError),
}

impl From<BlobError> for ImportError {
    fn from(err: BlobError) -> Self {
        ImportError::Content(err.into())
    }
}

/// An image found in an archive: the names it is tagged with, its digest and content.
#[derive(Debug)]
pub struct Imported {
    /// The references it is tagged with (`repo:tag`).
    pub names: Vec<String>,
    /// `sha256:<hex>` of its manifest.
    pub digest: String,
    /// Its content, stored.
    pub image: Assembled,
}

/// Blobs read from the unpacked archive, by digest.
struct ArchiveBlobs<'a> {
    files: HashMap<String, PathBuf>,
    stores: &'a Stores,
    /// Which archive file named them, for messages.
    file: &'static str,
}

#[async_trait]
impl BlobSource for ArchiveBlobs<'_> {
    type Error = ImportError;

    async fn blob(&self, desc: &OciDescriptor, max: u64) -> Result<PathBuf, ImportError> {
        if let Some(path) = self.stores.blobs.get(&desc.digest) {
            return Ok(path);
        }
        let path = self
            .files
            .get(&desc.digest)
            .ok_or_else(|| ImportError::Missing {
                file: self.file.into(),
                path: desc.digest.clone(),
            })?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| BlobError::Io {
                path: path.clone(),
                source,
            })?;
        let stream = tokio_util::io::ReaderStream::new(file);
        Ok(self
            .stores
            .blobs
            .put_stream(&desc.digest, max, stream)
            .await?)
    }
}

/// Unpacks `archive` into `scratch` (an empty directory) and imports the images it holds.
pub async fn import(
    stores: &Stores,
    archive: impl std::io::Read + Send + 'static,
    scratch: &Path,
) -> Result<Vec<Imported>, ImportError> {
    let dir = scratch.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let tar = unpack::decompressed(archive).map_err(ImportError::Unpack)?;
        unpack::unpack_into(tar, &dir).map_err(ImportError::Unpack)
    })
    .await
    .expect("archive unpack task")?;
    let root = scratch.canonicalize().map_err(|source| BlobError::Io {
        path: scratch.to_path_buf(),
        source,
    })?;
    // `docker save` 25+ writes both; its manifest.json has the names as Docker users write
    // them (`busybox:latest`), its index.json the normalized ones.
    let imported = if root.join("manifest.json").is_file() {
        docker_save(stores, &root).await?
    } else if root.join("index.json").is_file() {
        oci_layout(stores, &root).await?
    } else {
        return Err(ImportError::NotImage);
    };
    if imported.is_empty() {
        return Err(ImportError::Unnamed);
    }
    Ok(imported)
}

/// The file `rel` of the unpacked archive at `root`: symlinks (docker save links repeated
/// layers) are followed only while they stay inside the archive.
fn archive_file(root: &Path, file: &str, rel: &str) -> Result<PathBuf, ImportError> {
    let missing = || ImportError::Missing {
        file: file.into(),
        path: rel.into(),
    };
    let path = root.join(rel).canonicalize().map_err(|_| missing())?;
    if path.starts_with(root) && path.is_file() {
        Ok(path)
    } else {
        Err(missing())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    root: &Path,
    file: &'static str,
    rel: &str,
) -> Result<T, ImportError> {
    let path = archive_file(root, file, rel)?;
    let malformed = |message: String| ImportError::Malformed {
        file: rel.into(),
        message,
    };
    let bytes = std::fs::read(&path).map_err(|e| malformed(e.to_string()))?;
    if bytes.len() as u64 > MAX_METADATA {
        return Err(malformed(format!("over {MAX_METADATA} bytes")));
    }
    serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))
}

/// An OCI image layout: every entry of `index.json` with a name (an image index in it is
/// resolved to the platform this node runs, as a pull does).
async fn oci_layout(stores: &Stores, root: &Path) -> Result<Vec<Imported>, ImportError> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<ImageIndexEntry>,
    }
    let index: Index = read_json(root, "index.json", "index.json")?;
    let blob_path = |digest: &str| -> Result<PathBuf, ImportError> {
        let hex = digest_hex(digest)?;
        archive_file(root, "index.json", &format!("blobs/sha256/{hex}"))
    };
    let mut files = HashMap::new();
    let mut imported = Vec::new();
    for entry in index.manifests {
        let annotations = entry.annotations.clone().unwrap_or_default();
        let Some(name) = (annotations.get(CONTAINERD_NAME))
            .or(annotations.get(REF_NAME))
            .cloned()
        else {
            continue;
        };
        let (mut digest, mut manifest) =
            oci_manifest(stores, &blob_path(&entry.digest)?, &entry.digest).await?;
        if let OciManifest::ImageIndex(inner) = &manifest {
            let chosen = layout::select_platform(&inner.manifests).map_err(|source| {
                ContentError::Layout {
                    digest: digest.clone(),
                    source,
                }
            })?;
            digest = chosen.digest.clone();
            manifest = oci_manifest(stores, &blob_path(&digest)?, &digest).await?.1;
        }
        let OciManifest::Image(manifest) = manifest else {
            return Err(ImportError::Malformed {
                file: format!("blobs/{digest}"),
                message: "an image index inside an image index".into(),
            });
        };
        for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
            files.insert(desc.digest.clone(), blob_path(&desc.digest)?);
        }
        let source = ArchiveBlobs {
            files: files.clone(),
            stores,
            file: "index.json",
        };
        let image = stores.assemble(&source, &digest, manifest).await?;
        imported.push(Imported {
            names: vec![name],
            digest,
            image,
        });
    }
    Ok(imported)
}

/// A manifest blob of the layout, stored (checked against its digest) and parsed.
async fn oci_manifest(
    stores: &Stores,
    path: &Path,
    digest: &str,
) -> Result<(String, OciManifest), ImportError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| BlobError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    stores.blobs.put(digest, &bytes).await?;
    let manifest = layout::parse(&bytes).map_err(|source| ContentError::Layout {
        digest: digest.to_string(),
        source,
    })?;
    Ok((digest.to_string(), manifest))
}

/// A `docker save` tarball: `manifest.json` lists each image's config file, tags and layer
/// files (lowest first). Blobs there are named by path, so their digests are computed here;
/// the image's digest is its config's (Docker's image ID).
async fn docker_save(stores: &Stores, root: &Path) -> Result<Vec<Imported>, ImportError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = read_json(root, "manifest.json", "manifest.json")?;
    let mut imported = Vec::new();
    for entry in entries {
        let names = entry.repo_tags.unwrap_or_default();
        if names.is_empty() {
            continue;
        }
        // Hashing layers takes a while: off the async threads.
        let wanted: Vec<(String, &'static str)> = std::iter::once((entry.config, OCI_CONFIG))
            .chain(entry.layers.into_iter().map(|layer| (layer, OCI_LAYER)))
            .collect();
        let dir = root.to_path_buf();
        let described = tokio::task::spawn_blocking(move || {
            wanted
                .iter()
                .map(|(rel, media_type)| describe(&dir, rel, media_type))
                .collect::<Result<Vec<_>, ImportError>>()
        })
        .await
        .expect("layer hashing task")?;
        let files: HashMap<String, PathBuf> = (described.iter())
            .map(|(desc, path)| (desc.digest.clone(), path.clone()))
            .collect();
        let mut descriptors = described.into_iter().map(|(desc, _)| desc);
        let config = descriptors.next().expect("the config is described first");
        let layers: Vec<OciDescriptor> = descriptors.collect();
        let digest = config.digest.clone();
        let manifest = OciImageManifest {
            config,
            layers,
            ..OciImageManifest::default()
        };
        let source = ArchiveBlobs {
            files,
            stores,
            file: "manifest.json",
        };
        let image = stores.assemble(&source, &digest, manifest).await?;
        imported.push(Imported {
            names,
            digest,
            image,
        });
    }
    Ok(imported)
}

/// The descriptor of the archive file `rel` (its digest computed) and where it is.
fn describe(
    root: &Path,
    rel: &str,
    media_type: &str,
) -> Result<(OciDescriptor, PathBuf), ImportError> {
    let path = archive_file(root, "manifest.json", rel)?;
    let (digest, size) = file_digest(&path)?;
    let desc = OciDescriptor {
        media_type: media_type.into(),
        digest,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    };
    Ok((desc, path))
}

/// `sha256:<hex>` and size of a file, read in chunks.
fn file_digest(path: &Path) -> Result<(String, u64), ImportError> {
    use sha2::Digest;
    let io = |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = sha2::Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}
