//! The check that a server the client dials as an API server is one: its certificate must
//! chain to the cluster CA (webpki) and must not be a node's. Nodes get serving certificates
//! from the same CA for their own listeners (`kubernetes.io/kubelet-serving`); a node that
//! put up a server of its own at an address agents were pointed to must not pass for an API
//! server, so a certificate for `system:node:*` (group `system:nodes`) is refused.

use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, Error, SignatureScheme};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Webpki's verification against the cluster CA, refusing nodes' certificates.
#[derive(Debug)]
pub struct ApiServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ApiServerVerifier {
    /// Wraps `inner` (webpki over the cluster CA).
    pub fn new(inner: Arc<WebPkiServerVerifier>) -> ApiServerVerifier {
        ApiServerVerifier { inner }
    }
}

/// Whether `der` is a certificate issued to a node (`CN=system:node:*` or `O=system:nodes`).
fn is_a_nodes(der: &[u8]) -> bool {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .any(|cn| cn.as_str().is_ok_and(|cn| cn.starts_with("system:node:")));
    let nodes_group = subject
        .iter_organization()
        .any(|o| o.as_str().is_ok_and(|o| o == "system:nodes"));
    common_name || nodes_group
}

impl ServerCertVerifier for ApiServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if is_a_nodes(end_entity) {
            return Err(Error::General(
                "the server presented a node's serving certificate, not an API server's".into(),
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    fn cert(cn: &str, organization: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["10.0.0.5".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(o) = organization {
            params.distinguished_name.push(DnType::OrganizationName, o);
        }
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn nodes_certificates_are_told_from_api_servers() {
        assert!(is_a_nodes(&cert("system:node:n1", Some("system:nodes"))));
        assert!(is_a_nodes(&cert("anything", Some("system:nodes"))));
        assert!(!is_a_nodes(&cert("kube-apiserver", None)));
        assert!(!is_a_nodes(&cert("s1", Some("skiff"))));
    }
}
