//! How an API server dials agents' own listeners (kube-apiserver's
//! `--kubelet-client-certificate` and `--kubelet-certificate-authority`): with a client
//! certificate for `kube-apiserver-kubelet-client` it issues itself from the cluster CA and
//! renews while it runs (`RenewingCert`; kept in memory only; the default
//! `system:kubelet-api-admin` binding authorizes it), trusting only serving certificates from
//! the cluster CA.

use std::sync::Arc;

use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::authority::LEAF_VALIDITY;
use super::{crypto_provider, CertRequest, PkiError, RenewingCert, ServerTls, Usage};
use crate::authz::defaults::KUBELET_CLIENT_USER;

/// The rustls configuration that dials agents' listeners as `kube-apiserver-kubelet-client`
/// and verifies their serving certificates against the cluster CA of `tls`.
pub fn agent_client_config(tls: &ServerTls) -> Result<Arc<ClientConfig>, PkiError> {
    let request = CertRequest {
        common_name: KUBELET_CLIENT_USER.into(),
        organizations: Vec::new(),
        sans: Vec::new(),
        usage: Usage::Client,
        validity: LEAF_VALIDITY,
    };
    let client_cert = RenewingCert::new(tls.shared_ca(), request, None)?;
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(tls.ca_pem().as_bytes()) {
        let der = der.map_err(|e| PkiError::InMemory {
            what: "CA certificate",
            reason: e.to_string(),
        })?;
        roots.add(der)?;
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(client_cert));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session would present the client certificate of its first handshake, also
    // after a renewal: every connection shows the current one (they are pooled, and rare).
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}
