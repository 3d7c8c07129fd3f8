//! Small Linux images for tests, built by the project's own code: any layers, or the busybox
//! image ([`crate::busybox`]'s layer, `Cmd ["sh"]`) with an optional second layer that deletes
//! a file (a whiteout) to test layering.
//! An image can be written as an OCI image layout (a directory or a tar of one) or as a
//! `docker save` tarball, and gives its blobs and manifest for pushing to a registry.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One entry of a layer being built.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
}

/// A tar layer of `entries` (uncompressed).
pub fn layer_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        let result = match entry {
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty())
            }
            Entry::File(path, bytes, mode) => {
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, *bytes)
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)
            }
        };
        result.expect("appending to an in-memory tar");
    }
    builder.into_inner().expect("an in-memory tar")
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// A Linux image: its config and gzipped layers, lowest first.
#[derive(Debug, Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
}

impl TestImage {
    /// An amd64 (this node's architecture) Linux image of `layers` (uncompressed tars) running
    /// `cmd`.
    pub fn new(layers: Vec<Vec<u8>>, cmd: &[&str]) -> Self {
        let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
        let config = json!({
            "architecture": node_architecture(), "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        TestImage {
            config: serde_json::to_vec(&config).expect("json"),
            layers: layers.iter().map(|l| gzip(l)).collect(),
        }
    }

    /// The busybox image ([`crate::busybox`]'s layer), `Cmd ["sh"]`; with `whiteout`, a
    /// second layer deletes `/etc/motd` and adds `/etc/upper`.
    pub fn busybox(whiteout: bool) -> std::io::Result<Self> {
        let mut layers = vec![crate::busybox::layer_tar_bytes()?];
        if whiteout {
            layers.push(layer_tar(&[
                Entry::Dir("etc"),
                Entry::File("etc/.wh.motd", b"", 0o644),
                Entry::File("etc/upper", b"from the upper layer\n", 0o644),
            ]));
        }
        Ok(TestImage::new(layers, &["sh"]))
    }

    /// The image manifest (OCI).
    pub fn manifest(&self) -> Vec<u8> {
        let layers: Vec<Value> = (self.layers.iter())
            .map(|l| json!({"mediaType": OCI_LAYER_GZIP, "digest": digest(l), "size": l.len()}))
            .collect();
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest(&self.config), "size": self.config.len()},
            "layers": layers,
        }))
        .expect("json")
    }

    /// Every blob (config, then layers), for pushing before the manifest.
    pub fn blobs(&self) -> Vec<&[u8]> {
        std::iter::once(&self.config[..])
            .chain(self.layers.iter().map(|l| &l[..]))
            .collect()
    }

    /// Writes an OCI image layout into `dir` with the image named `name` (`REPO:TAG`).
    pub fn write_oci_layout(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        let manifest = self.manifest();
        for blob in self.blobs().into_iter().chain([&manifest[..]]) {
            std::fs::write(blobs.join(&digest(blob)[7..]), blob)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": digest(&manifest), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name}}]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
    }

    /// A tar of the OCI image layout [`write_oci_layout`](Self::write_oci_layout) writes.
    pub fn oci_layout_tar(&self, name: &str) -> std::io::Result<Vec<u8>> {
        let dir = tempfile::tempdir()?;
        self.write_oci_layout(dir.path(), name)?;
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all(".", dir.path())?;
        builder.into_inner()
    }

    /// A `docker save` tarball of the image tagged `tags` (layers as `<n>/layer.tar`, as
    /// Docker before 25 writes them).
    pub fn docker_save_tar(&self, tags: &[&str]) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut append = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, path, bytes)
        };
        let config_name = format!("{}.json", &digest(&self.config)[7..]);
        append(&config_name, &self.config)?;
        let mut layer_names = Vec::new();
        for (n, layer) in self.layers.iter().enumerate() {
            let name = format!("{n}/layer.tar");
            append(&name, layer)?;
            layer_names.push(name);
        }
        let manifest = json!([{"Config": config_name, "RepoTags": tags, "Layers": layer_names}]);
        append("manifest.json", &serde_json::to_vec(&manifest)?)?;
        builder.into_inner()
    }
}

/// This machine's architecture as OCI names it.
fn node_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
