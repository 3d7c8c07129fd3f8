//! The signer (Kubernetes' `csrsigning` controller) for `kubernetes.io/kube-apiserver-client`,
//! `kubernetes.io/kube-apiserver-client-kubelet` and `kubernetes.io/kubelet-serving`: an
//! approved request that passes the signer's checks gets a client (or, for kubelet-serving,
//! a serving) certificate from the cluster CA, valid for the shorter of
//! `spec.expirationSeconds` and `--cluster-signing-duration`.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::certificates::{
    check_client_request, check_serving_request, parse_request, RequestError, SignerRefusal,
    KUBELET_SERVING, KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET,
};
use skiff_api::k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use crate::pki::{ClusterCa, PkiError};

/// How long signed certificates are valid unless a request asks for less (Kubernetes'
/// `--cluster-signing-duration`: one year).
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the signer signs with.
#[derive(Clone)]
pub struct Signing {
    /// The cluster CA.
    pub ca: Arc<ClusterCa>,
    /// The longest validity it grants (`--cluster-signing-duration`).
    pub max_duration: Duration,
}

/// Why an approved request was not signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The request breaks the signer's rules: the request gets a Failed condition.
    #[error(transparent)]
    Refused(#[from] SignerRefusal),
    /// The request does not parse: the request gets a Failed condition.
    #[error(transparent)]
    Unparseable(#[from] RequestError),
    /// The CA could not sign it (its signature does not verify, or signing failed).
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// Whether `signer` is one this signer serves.
pub fn serves(signer: &str) -> bool {
    signer == KUBE_APISERVER_CLIENT
        || signer == KUBE_APISERVER_CLIENT_KUBELET
        || signer == KUBELET_SERVING
}

/// Signs `csr` (which must be approved and for a signer this one serves): the certificate PEM.
pub fn sign(signing: &Signing, csr: &CertificateSigningRequest) -> Result<String, SigningError> {
    let spec = &csr.spec;
    let request = parse_request(&spec.request.0)?;
    let usages = spec.usages.clone().unwrap_or_default();
    let asked = spec
        .expiration_seconds
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let validity = asked.map_or(signing.max_duration, |a| a.min(signing.max_duration));
    let pem = String::from_utf8_lossy(&spec.request.0);
    if spec.signer_name == KUBELET_SERVING {
        check_serving_request(&request, &usages)?;
        return Ok(signing.ca.sign_serving_request(&pem, validity)?);
    }
    check_client_request(&spec.signer_name, &request, &usages)?;
    let key_encipherment = usages.iter().any(|u| u == "key encipherment");
    Ok(signing
        .ca
        .sign_client_request(&pem, key_encipherment, validity)?)
}

#[cfg(test)]
mod tests {
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;
    use crate::certificates::approver::tests::csr;
    use crate::identity::BOOTSTRAPPERS_GROUP;
    use crate::pki::user_of_certificate;

    fn signing() -> Signing {
        Signing {
            ca: Arc::new(ClusterCa::create().expect("ca")),
            max_duration: Duration::from_secs(7200),
        }
    }

    const USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn signs_client_requests_for_the_asked_or_capped_duration() {
        let signing = signing();
        let mut request = csr(
            "bob",
            &["devs"],
            KUBE_APISERVER_CLIENT,
            USAGES,
            ("admin", &[]),
        );
        request.spec.expiration_seconds = Some(600);
        let pem = sign(&signing, &request).expect("signed");
        let der = crate::pki::first_der(&pem).expect("a certificate");
        let user = user_of_certificate(&der).expect("a user").user;
        assert_eq!(user.name, "bob");
        assert!(user.in_group("devs"));
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let lifetime =
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert!((600..=900).contains(&lifetime), "{lifetime}");

        request.spec.expiration_seconds = Some(100_000);
        let pem = sign(&signing, &request).expect("signed");
        let der = crate::pki::first_der(&pem).expect("a certificate");
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let lifetime =
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
        assert!(lifetime <= 7200 + 300, "capped: {lifetime}");
    }

    #[test]
    fn refuses_wrong_usages_and_non_node_subjects() {
        let signing = signing();
        let boot = ("system:bootstrap:abc", &[BOOTSTRAPPERS_GROUP][..]);
        let server = csr(
            "bob",
            &[],
            KUBE_APISERVER_CLIENT,
            &["digital signature", "server auth"],
            boot,
        );
        assert!(matches!(
            sign(&signing, &server),
            Err(SigningError::Refused(SignerRefusal::Usages(_)))
        ));
        let not_node = csr("bob", &[], KUBE_APISERVER_CLIENT_KUBELET, USAGES, boot);
        assert!(matches!(
            sign(&signing, &not_node),
            Err(SigningError::Refused(SignerRefusal::NotANode))
        ));
        assert!(serves(KUBE_APISERVER_CLIENT_KUBELET));
        assert!(!serves("example.com/other"));
    }

    #[test]
    fn signs_kubelet_serving_requests_for_their_names_with_server_auth() {
        use base64::Engine;
        use rcgen::{CertificateParams, DnType, KeyPair};
        use x509_parser::extensions::GeneralName;

        let signing = signing();
        let request = |sans: Vec<String>| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(sans).expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, "system:node:n1");
            params
                .distinguished_name
                .push(DnType::OrganizationName, "system:nodes");
            let pem = params
                .serialize_request(&key)
                .expect("csr")
                .pem()
                .expect("pem");
            serde_json::from_value::<CertificateSigningRequest>(serde_json::json!({
                "metadata": {"name": "c"},
                "spec": {
                    "request": base64::engine::general_purpose::STANDARD.encode(pem),
                    "signerName": KUBELET_SERVING,
                    "usages": ["digital signature", "key encipherment", "server auth"],
                }
            }))
            .expect("csr")
        };
        let pem = sign(&signing, &request(vec!["10.0.0.5".into(), "n1".into()])).expect("signed");
        let der = crate::pki::first_der(&pem).expect("a certificate");
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let sans = cert
            .subject_alternative_name()
            .expect("parses")
            .expect("SANs");
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(ip) => format!("{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["[10, 0, 0, 5]", "n1"]);
        let eku = cert.extended_key_usage().expect("parses").expect("EKU");
        assert!(eku.value.server_auth && !eku.value.client_auth);
        assert!(matches!(
            sign(&signing, &request(Vec::new())),
            Err(SigningError::Refused(SignerRefusal::ServingNames))
        ));
    }
}
