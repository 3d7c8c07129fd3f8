//! Where the Wasm module lies in an image, for the three layouts found in the wild: the CNCF
//! Wasm artifact (config `application/vnd.wasm.config.v0+json`, one `application/wasm`
//! layer), the older `application/vnd.wasm.content.layer.v1+wasm` layer (wasm-to-oci,
//! containerd), and an ordinary image for the `wasi/wasm` platform whose entrypoint names the
//! module inside its tar layers. Pure: it reads manifests and configs, never the network.

use oci_client::manifest::{
    ImageIndexEntry, OciDescriptor, OciManifest, IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use serde::Deserialize;

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

/// Where the module is.
#[derive(Debug, Clone)]
pub enum WasmLayout {
    /// The module is this layer, as it is.
    Layer(OciDescriptor),
    /// The module is the file `path` in the image's tar layers (`wasi/wasm` platform images).
    Tar {
        layers: Vec<OciDescriptor>,
        path: String,
        config: ImageConfig,
    },
}

/// Why an image holds no module this node can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("is not an image manifest or index: {0}")]
    NotManifest(String),
    #[error(
        "is an image index without a wasi/wasm platform (it has {platforms}); \
         this node has no Linux container runtime yet, only Wasm"
    )]
    NoWasmPlatform { platforms: String },
    #[error(
        "is a Linux container image (platform {platform}), not Wasm; \
         this node has no Linux container runtime yet"
    )]
    NotWasm { platform: String },
    #[error("is a Wasm artifact with {count} module layers; one is expected")]
    Layers { count: usize },
    #[error("is a wasi/wasm image without an entrypoint naming its module")]
    NoEntrypoint,
    #[error("has an image config that is not JSON: {0}")]
    Config(String),
}

/// Parses a manifest or index (OCI or Docker).
pub fn parse(bytes: &[u8]) -> Result<OciManifest, LayoutError> {
    serde_json::from_slice(bytes).map_err(|err| LayoutError::NotManifest(err.to_string()))
}

/// The `wasi/wasm` entry of an index.
pub fn select_wasi(manifests: &[ImageIndexEntry]) -> Result<&ImageIndexEntry, LayoutError> {
    manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "wasi" && p.architecture == "wasm")
        })
        .ok_or_else(|| LayoutError::NoWasmPlatform {
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
            user: None,
        }
    }
}

/// For an ordinary image: the module in its tar layers if its platform is `wasi/wasm` (the
/// entrypoint, else the command, names it), else why it is not Wasm.
pub fn from_config(config: &[u8], layers: &[OciDescriptor]) -> Result<WasmLayout, LayoutError> {
    let parsed: ImageConfigJson =
        serde_json::from_slice(config).map_err(|err| LayoutError::Config(err.to_string()))?;
    if parsed.os != "wasi" || parsed.architecture != "wasm" {
        return Err(LayoutError::NotWasm {
            platform: format!("{}/{}", parsed.os, parsed.architecture),
        });
    }
    let config = parsed
        .config
        .map(RunConfig::image_config)
        .unwrap_or_default();
    let path = config
        .entrypoint
        .first()
        .or(config.cmd.first())
        .ok_or(LayoutError::NoEntrypoint)?
        .clone();
    Ok(WasmLayout::Tar {
        layers: layers.to_vec(),
        path,
        config,
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
    fn reads_wasi_platform_images_and_refuses_linux_ones() {
        let layers = [desc("application/vnd.oci.image.layer.v1.tar", "sha256:t")];
        let wasi = br#"{"os":"wasi","architecture":"wasm",
            "config":{"Entrypoint":["/app.wasm"],"Env":["A=1"],"WorkingDir":"/"}}"#;
        let Ok(WasmLayout::Tar {
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
            matches!(from_config(by_cmd, &layers), Ok(WasmLayout::Tar { path, .. }) if path == "hello.wasm")
        );
        let bare = br#"{"os":"wasi","architecture":"wasm"}"#;
        assert!(matches!(
            from_config(bare, &layers),
            Err(LayoutError::NoEntrypoint)
        ));
        let linux = br#"{"os":"linux","architecture":"amd64","config":{"Entrypoint":["/bin/sh"]}}"#;
        let err = from_config(linux, &layers).expect_err("linux");
        assert!(
            err.to_string().contains("linux/amd64")
                && err.to_string().contains("no Linux container runtime"),
            "{err}"
        );
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
            select_wasi(&manifests).map(|m| m.digest.as_str()),
            Ok("sha256:w")
        );
        let err = select_wasi(&manifests[..1]).expect_err("linux only");
        assert!(err.to_string().contains("it has linux/amd64"), "{err}");

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
