//! The client's rustls configuration from `Credentials`: the cluster CA as the only root
//! (or the Mozilla roots without one) and the client certificate, shared by HTTP requests
//! (reqwest) and WebSockets (exec).

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::kubeconfig::Credentials;
use crate::ClientError;

/// The rustls client configuration for `credentials`, or `None` when it has no CA and no
/// client certificate (reqwest's defaults then apply).
pub fn client_config(credentials: &Credentials) -> Result<Option<Arc<ClientConfig>>, ClientError> {
    let Some(ca) = &credentials.ca_pem else {
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
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match &credentials.identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("client certificate", e.to_string()))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| bad("client key", e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("client certificate", e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
