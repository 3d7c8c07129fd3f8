//! Pulling images from OCI registries with `oci-client`: the manifest (an index resolved to
//! its `wasi/wasm` entry, else to this node's Linux platform), then the module or the layers,
//! into the node's blob store, every blob checked against its digest. Concurrent pulls of one reference with the same credentials share one
//! fetch.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OciDescriptor, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio_rustls::rustls::crypto::ring;

use async_trait::async_trait;

use super::assemble::{Assembled, BlobSource, ContentError, Stores, MAX_METADATA};
use super::blobs::{sha256, BlobError, Blobs};
use super::layout::{self, LayoutError, MANIFEST_TYPES};
use super::PullAuth;
/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may leave a response without a byte: a registry that hangs fails the
/// pull (and the pod backs off) instead of holding its worker.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a registry pull failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("is not a valid image reference: {0}")]
    Reference(String),
    #[error("registry {registry}: {source}")]
    Registry {
        registry: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("manifest {digest} {source}")]
    Layout {
        digest: String,
        #[source]
        source: LayoutError,
    },
    #[error("manifest {digest} is {size} bytes, over the limit of {MAX_METADATA}")]
    MetadataTooLarge { digest: String, size: u64 },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Content(#[from] ContentError),
}

/// An image as pulled: its manifest digest and its content on the node.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub manifest_digest: String,
    pub image: Assembled,
}

type PullFuture = Shared<BoxFuture<'static, Result<Pulled, Arc<RegistryError>>>>;

/// Which pulls share one fetch: those of one reference with the same credentials, so a pull
/// with a pod's pull secret never joins an anonymous one (and inherits its 401), nor the
/// reverse.
type PullKey = (String, Option<PullAuth>);

/// How this node reaches registries; cheap to clone.
#[derive(Clone)]
pub struct Registries {
    inner: Arc<Inner>,
}

struct Inner {
    stores: Stores,
    insecure: Vec<String>,
    inflight: Mutex<HashMap<PullKey, PullFuture>>,
}

impl Registries {
    /// Pulls into `stores`, over plain HTTP from loopback registries and from the `insecure`
    /// ones (`HOST:PORT`).
    pub fn new(stores: Stores, insecure: Vec<String>) -> Self {
        Registries {
            inner: Arc::new(Inner {
                stores,
                insecure,
                inflight: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Pulls `reference`; a pull of the same reference with the same credentials already
    /// under way is joined.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<&PullAuth>,
    ) -> Result<Pulled, Arc<RegistryError>> {
        let key: PullKey = (reference.to_string(), auth.cloned());
        let future = {
            let mut inflight = self.inner.inflight.lock().expect("inflight lock");
            inflight
                .entry(key.clone())
                .or_insert_with(|| {
                    let inner = self.inner.clone();
                    let auth = registry_auth(auth);
                    async move {
                        let pulled = inner.pull(&key.0, auth).await.map_err(Arc::new);
                        inner.inflight.lock().expect("inflight lock").remove(&key);
                        pulled
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        future.await
    }
}

/// The credentials as `oci-client` takes them: a user name means basic credentials (which
/// the client trades for a bearer token when the registry asks), a lone password a token.
pub fn registry_auth(auth: Option<&PullAuth>) -> RegistryAuth {
    match auth {
        Some(a) if !a.username.is_empty() => {
            RegistryAuth::Basic(a.username.clone(), a.password.clone())
        }
        Some(a) if !a.password.is_empty() => RegistryAuth::Bearer(a.password.clone()),
        _ => RegistryAuth::Anonymous,
    }
}

/// Whether `registry` (`host[:port]`) is reached over plain HTTP: loopback hosts, as Docker
/// does, and those the node lists as insecure.
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    if insecure.iter().any(|r| r == registry) {
        return true;
    }
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An `oci-client` client for `registry`, over HTTPS unless [`plain_http`] says otherwise.
pub fn client_for(registry: &str, insecure: &[String]) -> Client {
    // oci-client's reqwest takes the process's rustls provider: ring, as the rest of Skiff.
    // Installing fails harmlessly once one is installed.
    let _ = ring::default_provider().install_default();
    let protocol = if plain_http(registry, insecure) {
        ClientProtocol::HttpsExcept(vec![registry.to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..ClientConfig::default()
    })
}

impl Inner {
    async fn pull(&self, reference: &str, auth: RegistryAuth) -> Result<Pulled, RegistryError> {
        let image: Reference = reference
            .parse()
            .map_err(|err: oci_client::ParseError| RegistryError::Reference(err.to_string()))?;
        let registry = image.resolve_registry().to_string();
        let client = client_for(&registry, &self.insecure);
        let fetch = Fetch {
            client: &client,
            image: &image,
            auth: &auth,
            registry: &registry,
            blobs: &self.stores.blobs,
        };
        let (mut digest, mut manifest) = fetch.manifest(&image).await?;
        if let OciManifest::ImageIndex(index) = &manifest {
            let entry = layout::select_platform(&index.manifests).map_err(|source| {
                RegistryError::Layout {
                    digest: digest.clone(),
                    source,
                }
            })?;
            let child = image.clone_with_digest(entry.digest.clone());
            (digest, manifest) = fetch.manifest(&child).await?;
        }
        let OciManifest::Image(image_manifest) = manifest else {
            return Err(RegistryError::Layout {
                digest,
                source: LayoutError::NotManifest("an index inside an index".into()),
            });
        };
        let image = self
            .stores
            .assemble(&fetch, &digest, image_manifest)
            .await?;
        Ok(Pulled {
            manifest_digest: digest,
            image,
        })
    }
}

/// One pull's requests.
struct Fetch<'a> {
    client: &'a Client,
    image: &'a Reference,
    auth: &'a RegistryAuth,
    registry: &'a str,
    blobs: &'a Blobs,
}

impl Fetch<'_> {
    fn registry_error(&self, source: OciDistributionError) -> RegistryError {
        RegistryError::Registry {
            registry: self.registry.to_string(),
            source,
        }
    }

    /// Fetches a manifest, stores it as a blob (checked against the digest the reference
    /// names, if it names one) and parses it.
    async fn manifest(&self, image: &Reference) -> Result<(String, OciManifest), RegistryError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(image, self.auth, &MANIFEST_TYPES)
            .await
            .map_err(|err| self.registry_error(err))?;
        let digest = image
            .digest()
            .map(str::to_string)
            .unwrap_or_else(|| sha256(&bytes));
        if bytes.len() as u64 > MAX_METADATA {
            return Err(RegistryError::MetadataTooLarge {
                digest,
                size: bytes.len() as u64,
            });
        }
        self.blobs.put(&digest, &bytes).await?;
        let manifest = layout::parse(&bytes).map_err(|source| RegistryError::Layout {
            digest: digest.clone(),
            source,
        })?;
        Ok((digest, manifest))
    }
}

#[async_trait]
impl BlobSource for Fetch<'_> {
    type Error = RegistryError;

    /// Streams a blob into the store (unless it is there), refusing it past `max` bytes or if
    /// its content does not hash to its digest.
    async fn blob(&self, desc: &OciDescriptor, max: u64) -> Result<PathBuf, RegistryError> {
        if let Some(path) = self.blobs.get(&desc.digest) {
            return Ok(path);
        }
        // A negative size claims nothing; the stream is held to `max` all the same.
        if u64::try_from(desc.size).unwrap_or(0) > max {
            return Err(BlobError::TooLarge {
                digest: desc.digest.clone(),
                max,
            }
            .into());
        }
        let stream = self
            .client
            .pull_blob_stream(self.image, desc.digest.as_str())
            .await
            .map_err(|err| self.registry_error(err))?;
        Ok(self.blobs.put_stream(&desc.digest, max, stream).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed_registries() {
        let insecure = vec!["10.0.0.5:5000".to_string()];
        for (registry, plain) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.1", true),
            ("localhost:5000", true),
            ("[::1]:5000", true),
            ("10.0.0.5:5000", true),
            ("10.0.0.5:5001", false),
            ("10.0.0.5", false),
            ("ghcr.io", false),
            ("localhost.evil.com:5000", false),
            ("index.docker.io", false),
        ] {
            assert_eq!(plain_http(registry, &insecure), plain, "{registry}");
        }
    }

    #[test]
    fn credentials_map_to_basic_bearer_or_anonymous() {
        let basic = PullAuth {
            server: None,
            username: "u".into(),
            password: "p".into(),
        };
        assert!(
            matches!(registry_auth(Some(&basic)), RegistryAuth::Basic(u, p) if u == "u" && p == "p")
        );
        let token = PullAuth {
            username: String::new(),
            ..basic
        };
        assert!(matches!(registry_auth(Some(&token)), RegistryAuth::Bearer(t) if t == "p"));
        assert!(matches!(registry_auth(None), RegistryAuth::Anonymous));
    }
}
