//! A server's TLS material on start: the cluster CA (made on the first start, or copied from
//! `--cluster-ca`), the serving certificate (made, reused, or remade when its names changed;
//! or the user's own) and the admin client certificate, all in `DATA_DIR/tls/`; and the
//! rustls configuration that serves the API with them, renewing a serving certificate made
//! from the cluster CA while it serves (`RenewingCert`; the renewed one is kept in memory,
//! and the next start reuses or remakes the file's), or reloading the user's own when its
//! files change (`ReloadingCert`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use skiff_net::reloading_cert::ReloadingCert;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use super::authority::LEAF_VALIDITY;
use super::files::{self, ADMIN_CERT, ADMIN_KEY, CA_CERT, SERVING_CERT, SERVING_KEY, TLS_DIR};
use super::serving::{still_fits, still_valid};
use super::{CertRequest, ClusterCa, IssuedCert, PkiError, RenewingCert, ServiceAccountKey, Usage};
use crate::identity::MASTERS_GROUP;

/// A certificate with less left than this is renewed on start.
const RENEW_MARGIN: Duration = Duration::from_secs(30 * 24 * 3600);
/// The admin client certificate's user.
const ADMIN_USER: &str = "admin";

/// How a server sets up its certificates.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// The names the serving certificate must be valid for (see `serving_names`).
    pub serving_names: Vec<String>,
    /// A directory with the cluster's `ca.crt` and `ca.key` (`--cluster-ca`), copied into
    /// `DATA_DIR/tls/` on the first start.
    pub cluster_ca: Option<PathBuf>,
    /// The user's own serving certificate chain and key (`--tls-cert-file`,
    /// `--tls-private-key-file`), used instead of one from the cluster CA.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// This member is one of several (or joins a running cluster): a CA of its own would not
    /// be the others', so it needs one already in its data dir or from `cluster_ca`.
    pub needs_shared_ca: bool,
}

/// Where the serving certificate comes from.
enum Serving {
    /// The cluster CA: `cert`, issued for `request`, renewed while serving.
    Issued {
        cert: IssuedCert,
        request: CertRequest,
    },
    /// The user's files, reloaded when they change.
    Files(Arc<ReloadingCert>),
}

/// A server's TLS material, ready to serve.
pub struct ServerTls {
    dir: PathBuf,
    ca: Arc<ClusterCa>,
    serving: Serving,
    admin: IssuedCert,
    service_account_key: Arc<ServiceAccountKey>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The ring crypto provider all of Skiff's TLS uses.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::ring::default_provider())
}

/// The SHA-256 (hex) of a CA bundle as served by `/cacerts`: what join tokens carry.
pub fn ca_hash(ca_pem: &str) -> String {
    hex::encode(Sha256::digest(ca_pem.as_bytes()))
}

impl ServerTls {
    /// Prepares `data_dir/tls/` as `options` say and loads it.
    pub fn prepare(data_dir: &Path, options: &TlsOptions) -> Result<ServerTls, PkiError> {
        let dir = data_dir.join(TLS_DIR);
        files::private_dir(&dir)?;
        let ca = match ClusterCa::load(&dir)? {
            Some(ca) => ca,
            None => {
                let ca = match &options.cluster_ca {
                    Some(shared) => ClusterCa::load(shared)?.ok_or_else(|| PkiError::Invalid {
                        path: shared.clone(),
                        what: "cluster CA directory",
                        reason: "it needs ca.crt and ca.key (`skiff certificate create-ca \
                                 --out DIR` makes them)"
                            .into(),
                    })?,
                    None if options.needs_shared_ca => {
                        return Err(PkiError::NoSharedCa { dir });
                    }
                    None => ClusterCa::create()?,
                };
                ca.write(&dir)?;
                ca
            }
        };
        let service_account_key =
            ServiceAccountKey::load_or_create(&dir, options.cluster_ca.as_deref())?;
        let serving_request = CertRequest {
            common_name: "skiff-apiserver".into(),
            organizations: Vec::new(),
            sans: options.serving_names.clone(),
            usage: Usage::Server,
            validity: LEAF_VALIDITY,
        };
        let serving = match (&options.cert_file, &options.key_file) {
            (Some(cert), Some(key)) => {
                let files = ReloadingCert::new(cert, key).map_err(|e| PkiError::Invalid {
                    path: e.path,
                    what: "serving certificate",
                    reason: e.reason,
                })?;
                Serving::Files(Arc::new(files))
            }
            (None, None) => Serving::Issued {
                cert: reuse_or_issue(
                    &dir,
                    (SERVING_CERT, SERVING_KEY),
                    |pem| still_fits(pem, &options.serving_names, RENEW_MARGIN),
                    || ca.issue(&serving_request),
                )?,
                request: serving_request,
            },
            _ => {
                return Err(PkiError::Invalid {
                    path: options
                        .cert_file
                        .clone()
                        .or(options.key_file.clone())
                        .unwrap_or_default(),
                    what: "serving certificate",
                    reason: "--tls-cert-file and --tls-private-key-file go together".into(),
                })
            }
        };
        let admin = reuse_or_issue(
            &dir,
            (ADMIN_CERT, ADMIN_KEY),
            |pem| still_valid(pem, RENEW_MARGIN),
            || {
                ca.issue(&CertRequest {
                    common_name: ADMIN_USER.into(),
                    organizations: vec![MASTERS_GROUP.into()],
                    sans: Vec::new(),
                    usage: Usage::Client,
                    validity: LEAF_VALIDITY,
                })
            },
        )?;
        Ok(ServerTls {
            dir,
            ca: Arc::new(ca),
            serving,
            admin,
            service_account_key: Arc::new(service_account_key),
        })
    }

    /// `DATA_DIR/tls/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cluster CA, which signs every certificate of the cluster.
    pub fn ca(&self) -> &ClusterCa {
        &self.ca
    }

    /// The cluster CA, for what issues certificates while the server runs (`RenewingCert`).
    pub fn shared_ca(&self) -> Arc<ClusterCa> {
        self.ca.clone()
    }

    /// The CA certificate as `/cacerts` serves it (the bytes of `ca.crt`).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The key that signs ServiceAccount tokens.
    pub fn service_account_key(&self) -> &Arc<ServiceAccountKey> {
        &self.service_account_key
    }

    /// The admin client certificate and key (CN=admin, O=system:masters).
    pub fn admin(&self) -> &IssuedCert {
        &self.admin
    }

    /// The API's rustls configuration: its serving certificate; client certificates are
    /// optional at the handshake and, when sent, must chain to the cluster CA and be valid now.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = crypto_provider();
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(self.ca_pem().as_bytes()) {
            let der = der.map_err(|e| self.invalid(CA_CERT, "CA certificate", e))?;
            roots.add(der)?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let builder = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier);
        let mut config = match &self.serving {
            Serving::Issued { cert, request } => builder.with_cert_resolver(Arc::new(
                RenewingCert::new(self.ca.clone(), request.clone(), Some(cert))?,
            )),
            Serving::Files(files) => builder.with_cert_resolver(files.clone()),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn invalid(&self, file: &str, what: &'static str, err: impl std::fmt::Display) -> PkiError {
        PkiError::Invalid {
            path: self.dir.join(file),
            what,
            reason: err.to_string(),
        }
    }
}

/// The certificate and key `names` in `dir` if `fits` the certificate, else new ones from
/// `issue`, written there.
fn reuse_or_issue(
    dir: &Path,
    (cert_name, key_name): (&str, &str),
    fits: impl Fn(&str) -> bool,
    issue: impl Fn() -> Result<IssuedCert, PkiError>,
) -> Result<IssuedCert, PkiError> {
    let (cert_path, key_path) = (dir.join(cert_name), dir.join(key_name));
    if let (Some(cert_pem), Some(key_pem)) = (
        files::read_optional(&cert_path)?,
        files::read_optional(&key_path)?,
    ) {
        if fits(&cert_pem) {
            return Ok(IssuedCert { cert_pem, key_pem });
        }
    }
    let issued = issue()?;
    files::write_key(&key_path, &issued.key_pem)?;
    files::write_cert(&cert_path, &issued.cert_pem)?;
    Ok(issued)
}
