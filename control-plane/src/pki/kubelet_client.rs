//! How an API server dials agents' own listeners (kube-apiserver's
//! `--kubelet-client-certificate` and `--kubelet-certificate-authority`): with a client
//! certificate for `kube-apiserver-kubelet-client` it issues itself from the cluster CA on
//! every start (kept in memory only; the default `system:kubelet-api-admin` binding authorizes
//! it), trusting only serving certificates from the cluster CA.

use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::authority::LEAF_VALIDITY;
use super::{crypto_provider, CertRequest, ClusterCa, PkiError, Usage};
use crate::authz::defaults::KUBELET_CLIENT_USER;

/// The rustls configuration that dials agents' listeners as `kube-apiserver-kubelet-client`
/// and verifies their serving certificates against `ca`.
pub fn agent_client_config(ca: &ClusterCa) -> Result<Arc<ClientConfig>, PkiError> {
    let issued = ca.issue(&CertRequest {
        common_name: KUBELET_CLIENT_USER.into(),
        organizations: Vec::new(),
        sans: Vec::new(),
        usage: Usage::Client,
        validity: LEAF_VALIDITY,
    })?;
    let invalid = |what: &'static str, reason: String| PkiError::Invalid {
        path: "(in memory)".into(),
        what,
        reason,
    };
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots.add(der.map_err(|e| invalid("CA certificate", e.to_string()))?)?;
    }
    let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("kubelet client certificate", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| invalid("kubelet client key", e.to_string()))?;
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
