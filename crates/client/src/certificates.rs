//! Asking the cluster for a client certificate, as kubelets and `kubectl` users do: a key made
//! here (it never leaves this process), a PKCS#10 request for it (rcgen), a
//! CertificateSigningRequest, and a watch until its signer issues the certificate.

use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{json, Value};
use skiff_api::certificates::KUBELET_SERVING;
use skiff_api::resources::{self, ResourceKind};

use crate::{Client, ClientError, ListParams};

/// A new key and a PKCS#10 request for it naming `common_name` and `organizations`.
#[derive(Debug, Clone)]
pub struct KeyAndRequest {
    /// The private key, PEM.
    pub key_pem: String,
    /// The certificate request, PEM.
    pub request_pem: String,
}

/// What asking for a certificate can fail with, besides the API's errors.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("making a key or certificate request: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("certificatesigningrequest {name} was {condition}: {message}")]
    Refused {
        name: String,
        condition: String,
        message: String,
    },
    #[error("certificatesigningrequest {name} was not issued within {waited:?}")]
    Timeout { name: String, waited: Duration },
    #[error("certificatesigningrequest {name}: status.certificate is not base64 PEM")]
    BadCertificate { name: String },
}

/// A fresh ECDSA P-256 key and a request for CN=`common_name`, O=`organizations`.
pub fn key_and_request(
    common_name: &str,
    organizations: &[String],
) -> Result<KeyAndRequest, CertificateError> {
    key_and_serving_request(common_name, organizations, &[])
}

/// `key_and_request`, asking also for `sans` (DNS names, or IP addresses written as text):
/// what a serving certificate names.
pub fn key_and_serving_request(
    common_name: &str,
    organizations: &[String],
    sans: &[String],
) -> Result<KeyAndRequest, CertificateError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    for organization in organizations {
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization.as_str());
    }
    let request_pem = params.serialize_request(&key)?.pem()?;
    Ok(KeyAndRequest {
        key_pem: key.serialize_pem(),
        request_pem,
    })
}

fn csrs() -> &'static ResourceKind {
    resources::by_name("certificatesigningrequests.certificates.k8s.io")
        .expect("CertificateSigningRequests are served")
}

/// A CertificateSigningRequest for a client certificate.
#[derive(Debug, Clone)]
pub struct ClientRequest<'a> {
    /// The `generateName` prefix of the request.
    pub name_prefix: &'a str,
    pub request_pem: &'a str,
    pub signer_name: &'a str,
    /// `spec.expirationSeconds`, if the request asks for a validity.
    pub expiration_seconds: Option<u64>,
}

impl Client {
    /// Creates a CertificateSigningRequest (usages: digital signature, client auth; for
    /// `kubernetes.io/kubelet-serving`: digital signature, key encipherment, server auth);
    /// its name.
    pub async fn create_certificate_request(
        &self,
        request: &ClientRequest<'_>,
    ) -> Result<String, ClientError> {
        let usages = if request.signer_name == KUBELET_SERVING {
            json!(["digital signature", "key encipherment", "server auth"])
        } else {
            json!(["digital signature", "client auth"])
        };
        let mut spec = json!({
            "request": base64::engine::general_purpose::STANDARD.encode(request.request_pem),
            "signerName": request.signer_name,
            "usages": usages,
        });
        if let Some(seconds) = request.expiration_seconds {
            spec["expirationSeconds"] = json!(seconds);
        }
        let csr = json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"generateName": request.name_prefix},
            "spec": spec,
        });
        let created = self.create(csrs(), None, &csr).await?;
        Ok(created["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Watches CertificateSigningRequest `name` until it is issued (the certificate, PEM),
    /// denied or failed, for at most `wait`.
    pub async fn wait_for_certificate(
        &self,
        name: &str,
        wait: Duration,
    ) -> Result<String, CertificateError> {
        let watched = async {
            let params = ListParams {
                field_selector: Some(format!("metadata.name={name}")),
                ..ListParams::default()
            };
            let mut events = self.watch(csrs(), None, &params, "0").await?;
            while let Some(event) = events.next().await {
                if let Some(pem) = issued(&event?.object)? {
                    return Ok(pem);
                }
            }
            Err(CertificateError::Timeout {
                name: name.to_string(),
                waited: wait,
            })
        };
        tokio::time::timeout(wait, watched)
            .await
            .unwrap_or_else(|_| {
                Err(CertificateError::Timeout {
                    name: name.to_string(),
                    waited: wait,
                })
            })
    }
}

/// The issued certificate (PEM) of `csr`, if any; an error if it was denied or failed.
pub fn issued(csr: &Value) -> Result<Option<String>, CertificateError> {
    let name = csr["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let conditions = csr["status"]["conditions"].as_array().into_iter().flatten();
    for condition in conditions {
        if let Some(kind @ ("Denied" | "Failed")) = condition["type"].as_str() {
            return Err(CertificateError::Refused {
                name,
                condition: kind.to_string(),
                message: condition["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
    }
    let Some(b64) = csr["status"]["certificate"]
        .as_str()
        .filter(|c| !c.is_empty())
    else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|pem| String::from_utf8(pem).ok())
        .map(Some)
        .ok_or(CertificateError::BadCertificate { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_their_subject_and_states_read_from_status() {
        let made = key_and_request("bob", &["devs".to_string()]).expect("made");
        let parsed =
            skiff_api::certificates::parse_request(made.request_pem.as_bytes()).expect("parses");
        assert_eq!(parsed.common_name, "bob");
        assert_eq!(parsed.organizations, ["devs"]);
        assert!(made.key_pem.contains("PRIVATE KEY"));

        let pending = json!({"metadata": {"name": "c"}, "status": {}});
        assert!(issued(&pending).expect("pending").is_none());
        let denied = json!({"metadata": {"name": "c"},
            "status": {"conditions": [{"type": "Denied", "message": "no"}]}});
        assert!(matches!(
            issued(&denied),
            Err(CertificateError::Refused { .. })
        ));
        let done = json!({"metadata": {"name": "c"}, "status": {"certificate": "UEVN"}});
        assert_eq!(issued(&done).expect("issued").as_deref(), Some("PEM"));
    }
}
