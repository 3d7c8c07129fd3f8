//! What an image is. A Wasm image in one of the three layouts found in the wild: the CNCF
//! Wasm artifact (config `application/vnd.wasm.config.v0+json`, one `application/wasm`
//! layer), the older `application/vnd.wasm.content.layer.v1+wasm` layer (wasm-to-oci,
//! containerd), and an ordinary image for the `wasi/wasm` platform whose entrypoint names the
//! module inside its tar layers; any other image is a Linux image for this node's platform (or
//! refused). Pure: it reads manifests and configs, never the network.

use oci_client::manifest::{
    ImageIndexEntry, OciDescriptor, OciManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde::Deserialize;
use skiff_api::platform::go_architecture;

use super::ImageConfig;

/// The CNCF Wasm artifact's config media type (`oci-client` knows only a `v1` one).
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The CNCF Wasm artifact's layer media type (not in `oci-client`).
pub const WASM_LAYER: &str = "application/wasm";
/// The older single-layer Wasm media type (wasm-to-oci).
pub const WASM_CONTENT_LAYER: &str = oci_client::manifest::WASM_LAYER_MEDIA_TYPE;
/// OCI and Docker manifest media types, as sent in `Accept`.
pub const MANIFEST_TYPES: [&str; 4] = [
    OCI_IMAGE_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// What an image is, and where its content is.
#[derive(Debug, Clone)]
pub enum Layout {
    /// A Wasm module: this layer, as it is.
    Layer(OciDescriptor),
    /// A Wasm module: the file `path` in the image's tar layers (`wasi/wasm` platform images).
    Tar {
        layers: Vec<OciDescriptor>,
        path: String,
        config: ImageConfig,
    },
    /// A Linux container image for this node's platform: its tar layers, lowest first.
    Linux {
        layers: Vec<OciDescriptor>,
        config: ImageConfig,
    },
}

/// Why an image holds nothing this node can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("is not an image manifest or index: {0}")]
    NotManifest(String),
    #[error("is an image index without a wasi/wasm or {node} entry (it has {platforms})")]
    NoPlatform { node: String, platforms: String },
    #[error("is an image for {platform}, which this node ({node}) cannot run")]
    Platform { platform: String, node: String },
    #[error("is a Wasm artifact with {count} module layers; one is expected")]
    Layers { count: usize },
    #[error("is a wasi/wasm image without an entrypoint naming its module")]
    NoEntrypoint,
    #[error("has an image config that is not JSON: {0}")]
    Config(String),
    #[error("is a Linux image without layers")]
    NoLayers,
    #[error("has a layer {digest} of media type {media_type}, which is not a tar layer")]
    LayerType { digest: String, media_type: String },
}

/// Whether an image of `os`/`architecture` (and `variant`) runs on this node's Linux runtime.
fn runs_here(os: &str, architecture: &str, variant: Option<&str>) -> bool {
    let arch = go_architecture();
    os == "linux"
        && architecture == arch
        // 64-bit ARM has one variant (v8) that images name or leave out; 32-bit ARM
        // variants differ, and only v7 is assumed.
        && (arch != "arm" || matches!(variant, None | Some("v7")))
}

/// Parses a manifest or index (OCI or Docker).
pub fn parse(bytes: &[u8]) -> Result<OciManifest, LayoutError> {
    serde_json::from_slice(bytes).map_err(|err| LayoutError::NotManifest(err.to_string()))
}

/// The entry of an index this node runs: `wasi/wasm` if the index has one, else the node's
/// Linux platform (`linux/amd64` here).
pub fn select_platform(manifests: &[ImageIndexEntry]) -> Result<&ImageIndexEntry, LayoutError> {
    let platform = |m: &&ImageIndexEntry| m.platform.clone();
    let wasi = manifests.iter().find(|m| {
        platform(m).is_some_and(|p| p.os == "wasi".into() && p.architecture == "wasm".into())
    });
    let linux = || {
        manifests.iter().find(|m| {
            platform(m).is_some_and(|p| {
                runs_here(
                    &p.os.to_string(),
                    &p.architecture.to_string(),
                    p.variant.as_deref(),
                )
            })
        })
    };
    wasi.or_else(linux).ok_or_else(|| LayoutError::NoPlatform {
        node: format!("linux/{}", go_architecture()),
        platforms: platforms(manifests),
    })
}

fn platforms(manifests: &[ImageIndexEntry]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .map(|m| match &m.platform {
            Some(p) => format!("{}/{}", p.os, p.architecture),
            None => "no platform".into(),
        })
        .collect();
    if names.is_empty() {
        "no manifests".into()
    } else {
        names.join(", ")
    }
}

/// The module layer of a Wasm artifact (CNCF or the older layout); `None` when the manifest
/// is neither, and its config must be read ([`from_config`]).
pub fn artifact_layer(
    config: &OciDescriptor,
    layers: &[OciDescriptor],
) -> Result<Option<OciDescriptor>, LayoutError> {
    let wasm: Vec<&OciDescriptor> = layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER || l.media_type == WASM_CONTENT_LAYER)
        .collect();
    match wasm.as_slice() {
        [layer] => Ok(Some((*layer).clone())),
        [] if config.media_type == WASM_CONFIG => Err(LayoutError::Layers { count: 0 }),
        [] => Ok(None),
        more => Err(LayoutError::Layers { count: more.len() }),
    }
}

/// The image config fields that say what the image is.
#[derive(Deserialize)]
struct ImageConfigJson {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

impl RunConfig {
    fn image_config(self) -> ImageConfig {
        ImageConfig {
            entrypoint: self.entrypoint.unwrap_or_default(),
            cmd: self.cmd.unwrap_or_default(),
            env: (self.env.unwrap_or_default().iter())
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            working_dir: self.working_dir.filter(|dir| !dir.is_empty()),
            user: self.user.filter(|user| !user.is_empty()),
        }
    }
}

/// For an ordinary image: the module in its tar layers if its platform is `wasi/wasm` (the
/// entrypoint, else the command, names it), the layers if it is a Linux image for this node,
/// else why it runs nowhere here.
pub fn from_config(config: &[u8], layers: &[OciDescriptor]) -> Result<Layout, LayoutError> {
    let parsed: ImageConfigJson =
        serde_json::from_slice(config).map_err(|err| LayoutError::Config(err.to_string()))?;
    let wasi = parsed.os == "wasi" && parsed.architecture == "wasm";
    if !wasi && !runs_here(&parsed.os, &parsed.architecture, parsed.variant.as_deref()) {
        let mut platform = format!("{}/{}", parsed.os, parsed.architecture);
        if let Some(variant) = &parsed.variant {
            platform = format!("{platform}/{variant}");
        }
        return Err(LayoutError::Platform {
            platform,
            node: format!("linux/{}", go_architecture()),
        });
    }
    if let Some(layer) = layers.iter().find(|l| !is_tar_layer(&l.media_type)) {
        return Err(LayoutError::LayerType {
            digest: layer.digest.clone(),
            media_type: layer.media_type.clone(),
        });
    }
    let config = parsed
        .config
        .map(RunConfig::image_config)
        .unwrap_or_default();
    if !wasi {
        if layers.is_empty() {
            return Err(LayoutError::NoLayers);
        }
        return Ok(Layout::Linux {
            layers: layers.to_vec(),
            config,
        });
    }
    let path = config
        .entrypoint
        .first()
        .or(config.cmd.first())
        .ok_or(LayoutError::NoEntrypoint)?
        .clone();
    Ok(Layout::Tar {
        layers: layers.to_vec(),
        path,
        config,
    })
}

/// OCI tar layers (plain, gzip, zstd, non-distributable too) and Docker's gzip layers;
/// encrypted layers and other artifacts' blobs are not.
fn is_tar_layer(media_type: &str) -> bool {
    media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        || media_type == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        || [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
        ]
        .iter()
        .any(|tar| {
            media_type
                .strip_prefix(tar)
                .is_some_and(|rest| matches!(rest, "" | "+gzip" | "+zstd"))
        })
}

#[cfg(test)]
mod tests {
    use oci_client::manifest::OciImageIndex;

    use super::*;

    fn desc(media_type: &str, digest: &str) -> OciDescriptor {
        OciDescriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size: 1,
            ..OciDescriptor::default()
        }
    }

    /// The digest of the module layer found, for comparing.
    fn layer_digest(
        found: Result<Option<OciDescriptor>, LayoutError>,
    ) -> Result<Option<String>, LayoutError> {
        found.map(|layer| layer.map(|l| l.digest))
    }

    #[test]
    fn finds_the_module_layer_of_both_artifact_layouts() {
        let config = desc(WASM_CONFIG, "sha256:c");
        let layer = desc(WASM_LAYER, "sha256:l");
        assert_eq!(
            layer_digest(artifact_layer(&config, std::slice::from_ref(&layer))),
            Ok(Some(layer.digest))
        );
        let old = desc(WASM_CONTENT_LAYER, "sha256:o");
        let any_config = desc("application/vnd.oci.image.config.v1+json", "sha256:c");
        assert_eq!(
            layer_digest(artifact_layer(&any_config, std::slice::from_ref(&old))),
            Ok(Some(old.digest.clone()))
        );
        assert_eq!(
            layer_digest(artifact_layer(&config, &[])),
            Err(LayoutError::Layers { count: 0 })
        );
        assert_eq!(
            layer_digest(artifact_layer(&config, &[old.clone(), old])),
            Err(LayoutError::Layers { count: 2 })
        );
        let tar = desc("application/vnd.oci.image.layer.v1.tar+gzip", "sha256:t");
        assert_eq!(layer_digest(artifact_layer(&any_config, &[tar])), Ok(None));
    }

    #[test]
    fn reads_wasi_platform_images_and_linux_ones_for_this_node() {
        let layers = [desc("application/vnd.oci.image.layer.v1.tar", "sha256:t")];
        let wasi = br#"{"os":"wasi","architecture":"wasm",
            "config":{"Entrypoint":["/app.wasm"],"Env":["A=1"],"WorkingDir":"/"}}"#;
        let Ok(Layout::Tar {
            layers: found,
            path,
            config,
        }) = from_config(wasi, &layers)
        else {
            panic!("a wasi/wasm image")
        };
        assert_eq!((found.len(), found[0].digest.as_str()), (1, "sha256:t"));
        assert_eq!(path, "/app.wasm");
        assert_eq!(
            config,
            ImageConfig {
                entrypoint: vec!["/app.wasm".into()],
                env: vec![("A".into(), "1".into())],
                working_dir: Some("/".into()),
                ..ImageConfig::default()
            }
        );
        let by_cmd = br#"{"os":"wasi","architecture":"wasm","config":{"Cmd":["hello.wasm","x"]}}"#;
        assert!(
            matches!(from_config(by_cmd, &layers), Ok(Layout::Tar { path, .. }) if path == "hello.wasm")
        );
        let bare = br#"{"os":"wasi","architecture":"wasm"}"#;
        assert!(matches!(
            from_config(bare, &layers),
            Err(LayoutError::NoEntrypoint)
        ));

        let arch = go_architecture();
        let linux = format!(
            r#"{{"os":"linux","architecture":"{arch}","config":{{"Entrypoint":["/bin/sh"],
                "Cmd":["-c","true"],"Env":["PATH=/bin"],"WorkingDir":"/tmp","User":"1000:100"}}}}"#
        );
        let gzip = [desc(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "sha256:g",
        )];
        let Ok(Layout::Linux {
            layers: found,
            config,
        }) = from_config(linux.as_bytes(), &gzip)
        else {
            panic!("a Linux image for this node")
        };
        assert_eq!(found[0].digest, "sha256:g");
        assert_eq!(
            config,
            ImageConfig {
                entrypoint: vec!["/bin/sh".into()],
                cmd: vec!["-c".into(), "true".into()],
                env: vec![("PATH".into(), "/bin".into())],
                working_dir: Some("/tmp".into()),
                user: Some("1000:100".into()),
            }
        );
        let other = br#"{"os":"linux","architecture":"s390x"}"#;
        let err = from_config(other, &layers).expect_err("another platform");
        assert!(
            err.to_string().contains("linux/s390x") && err.to_string().contains(arch),
            "{err}"
        );
        assert!(matches!(
            from_config(linux.as_bytes(), &[]),
            Err(LayoutError::NoLayers)
        ));
        let helm = [desc(
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "sha256:h",
        )];
        let plain = format!(r#"{{"os":"linux","architecture":"{arch}"}}"#);
        assert!(matches!(
            from_config(plain.as_bytes(), &helm),
            Err(LayoutError::LayerType { .. })
        ));
        for tar in [
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        ] {
            assert!(is_tar_layer(tar), "{tar}");
        }
        assert!(!is_tar_layer(
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted"
        ));
        assert!(matches!(
            from_config(b"garbage", &layers),
            Err(LayoutError::Config(_))
        ));
    }

    #[test]
    fn selects_wasi_wasm_from_an_index() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:w","size":2,"platform":{"os":"wasi","architecture":"wasm"}}]}"#;
        let Ok(OciManifest::ImageIndex(OciImageIndex { manifests, .. })) = parse(index) else {
            panic!("an index")
        };
        assert_eq!(
            select_platform(&manifests).map(|m| m.digest.as_str()),
            Ok("sha256:w")
        );
        if go_architecture() == "amd64" {
            assert_eq!(
                select_platform(&manifests[..1]).map(|m| m.digest.as_str()),
                Ok("sha256:a")
            );
        }
        let arm = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"riscv32"}}]}"#;
        let Ok(OciManifest::ImageIndex(OciImageIndex { manifests, .. })) = parse(arm) else {
            panic!("an index")
        };
        let err = select_platform(&manifests).expect_err("no platform for this node");
        assert!(err.to_string().contains("it has linux/riscv32"), "{err}");

        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:c","size":3},
            "layers":[{"mediaType":"application/wasm","digest":"sha256:l","size":4}]}"#;
        assert!(matches!(parse(manifest), Ok(OciManifest::Image(m)) if m.layers.len() == 1));
        assert!(matches!(parse(b"<html>"), Err(LayoutError::NotManifest(_))));
        assert!(matches!(
            parse(b"{\"errors\":[]}"),
            Err(LayoutError::NotManifest(_))
        ));
    }
}
