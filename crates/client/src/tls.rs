//! The client's rustls configuration: the cluster CA as the only root, refusing nodes'
//! serving certificates (see `api_server_verifier`), or the Mozilla roots without one and the client certificate (a `ClientIdentity`), shared by HTTP requests
//! (reqwest) and WebSockets (exec).

use std::sync::Arc;

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::api_server_verifier::ApiServerVerifier;
use crate::identity::ClientIdentity;
use crate::ClientError;

/// The rustls client configuration for `ca_pem` and `identity`, or `None` when there is no CA
/// (reqwest's defaults then apply).
pub fn client_config(
    ca_pem: Option<&[u8]>,
    identity: Option<&Arc<ClientIdentity>>,
) -> Result<Option<Arc<ClientConfig>>, ClientError> {
    let Some(ca) = ca_pem else {
        return Ok(None);
    };
    let bad = |what: &'static str, reason: String| ClientError::Tls { what, reason };
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca) {
        let der = der.map_err(|e| bad("CA certificate", e.to_string()))?;
        roots
            .add(der)
            .map_err(|e| bad("CA certificate", e.to_string()))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad("CA certificate", e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ApiServerVerifier::new(webpki)));
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(identity.clone()),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
