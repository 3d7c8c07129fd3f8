//! Publishing a Wasm module or component as a CNCF Wasm OCI artifact (as `oci-wasm` and `wkg`
//! write it): config `application/vnd.wasm.config.v0+json`, one `application/wasm` layer.

use bytes::Bytes;
use futures::stream::{self, Stream};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciImageManifest, OCI_IMAGE_MEDIA_TYPE};
use oci_client::{Reference, RegistryOperation};
use serde::Serialize;

use super::blobs::sha256;
use super::layout::{WASM_CONFIG, WASM_LAYER};
use super::registry::{client_for, registry_auth};
use super::PullAuth;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{reference:?} is not a valid image reference: {message}")]
    Reference { reference: String, message: String },
    #[error("the file is not a WebAssembly module or component (it does not start with \\0asm)")]
    NotWasm,
    #[error("pushing to {registry}: {source}")]
    Registry {
        registry: String,
        #[source]
        source: OciDistributionError,
    },
}

/// What was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest: `REGISTRY/REPO@DIGEST` pulls exactly this.
    pub digest: String,
    /// The module's size in bytes.
    pub size: u64,
}

/// How much of the module each upload request carries: a 20 MB module moves a progress bar
/// five times.
pub const PUSH_CHUNK: usize = 4 << 20;

/// The CNCF Wasm config (the fields `oci-wasm` writes that do not vary between pushes, so one
/// module always gets one digest).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig {
    architecture: &'static str,
    os: &'static str,
    layer_digests: Vec<String>,
}

/// The config and manifest of `module` in the CNCF layout.
fn artifact(module: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PushError> {
    if !module.starts_with(b"\0asm") || module.len() < 8 {
        return Err(PushError::NotWasm);
    }
    // Modules have version 1; components set the layer field (bytes 6..8) to 1.
    let os = if module[6..8] == [1, 0] {
        "wasip2"
    } else {
        "wasip1"
    };
    let layer = OciDescriptor {
        media_type: WASM_LAYER.into(),
        digest: sha256(module),
        size: module.len() as i64,
        ..OciDescriptor::default()
    };
    let config = serde_json::to_vec(&WasmConfig {
        architecture: "wasm",
        os,
        layer_digests: vec![layer.digest.clone()],
    })
    .expect("config serializes");
    let manifest = serde_json::to_vec(&OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
        config: OciDescriptor {
            media_type: WASM_CONFIG.into(),
            digest: sha256(&config),
            size: config.len() as i64,
            ..OciDescriptor::default()
        },
        layers: vec![layer],
        ..OciImageManifest::default()
    })
    .expect("manifest serializes");
    Ok((config, manifest))
}

/// Pushes `module` to `reference` (plain HTTP for loopback registries and `insecure` ones).
/// The module goes up in [`PUSH_CHUNK`]-byte requests; `progress` hears how many of its bytes
/// the registry has taken: 0 first, then after each chunk, last the module's size.
pub async fn push_wasm(
    reference: &str,
    module: &[u8],
    auth: Option<&PullAuth>,
    insecure: &[String],
    progress: impl FnMut(u64) + Send + 'static,
) -> Result<Pushed, PushError> {
    let image: Reference =
        reference
            .parse()
            .map_err(|err: oci_client::ParseError| PushError::Reference {
                reference: reference.to_string(),
                message: err.to_string(),
            })?;
    let (config, manifest) = artifact(module)?;
    let registry = image.resolve_registry().to_string();
    let client = client_for(&registry, insecure);
    let failed = |source| PushError::Registry {
        registry: registry.clone(),
        source,
    };
    client
        .auth(&image, &registry_auth(auth), RegistryOperation::Push)
        .await
        .map_err(failed)?;
    let size = module.len() as u64;
    client
        .push_blob_stream(
            &image,
            chunks(Bytes::copy_from_slice(module), progress),
            &sha256(module),
            Some(size),
        )
        .await
        .map_err(failed)?;
    client
        .push_blob(&image, config.clone(), &sha256(&config))
        .await
        .map_err(failed)?;
    let digest = sha256(&manifest);
    client
        .push_manifest_raw(
            &image,
            manifest,
            OCI_IMAGE_MEDIA_TYPE.parse().expect("media type"),
        )
        .await
        .map_err(failed)?;
    Ok(Pushed { digest, size })
}

/// `module` in [`PUSH_CHUNK`]-byte pieces. The client asks for a piece once it has sent the
/// one before, so each ask tells `progress` the bytes sent so far.
fn chunks(
    module: Bytes,
    mut progress: impl FnMut(u64) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, OciDistributionError>> + Send + 'static {
    stream::unfold((module, 0u64), move |(mut rest, sent)| {
        progress(sent);
        let next = (!rest.is_empty()).then(|| {
            let chunk = rest.split_to(PUSH_CHUNK.min(rest.len()));
            let sent = sent + chunk.len() as u64;
            (Ok(chunk), (rest, sent))
        });
        std::future::ready(next)
    })
}

#[cfg(test)]
mod tests {
    use super::super::layout::{artifact_layer, parse};
    use super::*;
    use oci_client::manifest::OciManifest;

    #[test]
    fn writes_the_cncf_layout_that_pulls_read() {
        let module = b"\0asm\x01\0\0\0";
        let (config, manifest) = artifact(module).expect("artifact");
        // The exact bytes, so one module keeps its digest across versions of this code.
        let expected = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/wasm","digest":"{}","size":8}}]}}"#,
            sha256(&config),
            config.len(),
            sha256(module)
        );
        assert_eq!(String::from_utf8_lossy(&manifest), expected);
        let Ok(OciManifest::Image(parsed)) = parse(&manifest) else {
            panic!("a manifest")
        };
        let (c, layers) = (parsed.config, parsed.layers);
        assert_eq!(
            (c.media_type.as_str(), c.digest.clone()),
            (WASM_CONFIG, sha256(&config))
        );
        let layer = artifact_layer(&c, &layers).expect("layout").expect("layer");
        assert_eq!((layer.digest, layer.size), (sha256(module), 8));
        let config: serde_json::Value = serde_json::from_slice(&config).expect("json");
        assert_eq!(config["os"], "wasip1");
        let component = b"\0asm\x0d\0\x01\0";
        let (config, _) = artifact(component).expect("component");
        assert!(String::from_utf8_lossy(&config).contains("wasip2"));
        assert!(matches!(artifact(b"#!/bin/sh\n"), Err(PushError::NotWasm)));
    }
}
