//! The listener's serving certificate, as the kubelet's `serverTLSBootstrap` gets one: the
//! agent asks, with its own node identity, for a `kubernetes.io/kubelet-serving` certificate
//! (CN `system:node:NAME`, O `system:nodes`, its `InternalIP` and name as SANs) through a
//! CertificateSigningRequest; the control plane approves it when the names are the Node's own
//! addresses, and signs it with the cluster CA. It is kept in `DATA_DIR/pki/kubelet-serving.crt`
//! and `kubelet-serving.key` (0600) and reused at the next start while it names the same
//! addresses and has more than a fifth of its lifetime left; a running agent renews it before
//! it expires (`rotation`), with `request`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_api::certificates::{KUBELET_SERVING, NODES_GROUP, NODE_USER_PREFIX};
use skiff_client::certificates::{key_and_serving_request, ClientRequest};
use skiff_client::Client;
use skiff_net::tls::ServerCert;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::super::credentials::{private_dir, read, write, CredentialError, PKI_DIR};

/// The serving certificate, in the data dir's `pki/`.
pub const SERVING_CERT: &str = "kubelet-serving.crt";
/// Its private key.
pub const SERVING_KEY: &str = "kubelet-serving.key";
/// How long the agent waits for the certificate to be approved and issued.
const ISSUE_WAIT: Duration = Duration::from_secs(60);
/// A stored certificate with less than this share of its lifetime left is replaced.
const REPLACE_BELOW: f64 = 0.2;

/// A serving certificate and its key, PEM.
pub struct ServingCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
}

/// The node's serving certificate for `names` (IP addresses as text, DNS names): the stored
/// one if it still fits, else a new one asked for as `client` (the node's own identity).
pub async fn obtain(
    client: &Client,
    node: &str,
    names: &[String],
    data_dir: &Path,
) -> Result<ServingCert, CredentialError> {
    let (_, cert_path, key_path) = paths(data_dir);
    if let (Some(cert_pem), Some(key_pem)) = (read(&cert_path)?, read(&key_path)?) {
        // A key that is not the certificate's (a write cut short) is replaced too.
        if fits(&cert_pem, names, jiff::Timestamp::now().as_second())
            && ServerCert::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).is_ok()
        {
            return Ok(ServingCert { cert_pem, key_pem });
        }
    }
    request(client, node, names, data_dir).await
}

/// A new serving certificate for `names`, asked for as `client` (the node's own identity),
/// stored in the data dir's `pki/` in place of the one before.
pub async fn request(
    client: &Client,
    node: &str,
    names: &[String],
    data_dir: &Path,
) -> Result<ServingCert, CredentialError> {
    let (dir, cert_path, key_path) = paths(data_dir);
    let user = format!("{NODE_USER_PREFIX}{node}");
    let made = key_and_serving_request(&user, &[NODES_GROUP.to_string()], names)?;
    let name = client
        .create_certificate_request(&ClientRequest {
            name_prefix: &format!("node-serving-{node}-"),
            request_pem: &made.request_pem,
            signer_name: KUBELET_SERVING,
            expiration_seconds: None,
        })
        .await?;
    tracing::info!(csr = %name, node, ?names, "requested the listener's serving certificate");
    let cert_pem = client.wait_for_certificate(&name, ISSUE_WAIT).await?;
    private_dir(&dir)?;
    write(&key_path, &made.key_pem, 0o600)?;
    write(&cert_path, &cert_pem, 0o644)?;
    Ok(ServingCert {
        cert_pem,
        key_pem: made.key_pem,
    })
}

/// The data dir's `pki/` and the serving certificate's and key's paths in it.
fn paths(data_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let dir = data_dir.join(PKI_DIR);
    let (cert, key) = (dir.join(SERVING_CERT), dir.join(SERVING_KEY));
    (dir, cert, key)
}

/// Whether `cert_pem` names exactly `names` and has more than `REPLACE_BELOW` of its
/// lifetime left at `now` (Unix seconds).
fn fits(cert_pem: &str, names: &[String], now: i64) -> bool {
    let Some(Ok(der)) = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).next() else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    let (from, to) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let left = (to - now) as f64 / (to - from).max(1) as f64;
    if now < from || left <= REPLACE_BELOW {
        return false;
    }
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return false;
    };
    let mut have: Vec<String> = sans
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => skiff_api::certificates::ip_text(bytes),
            _ => None,
        })
        .collect();
    let mut want = names.to_vec();
    have.sort();
    want.sort();
    have == want
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn cert(names: &[&str], from: i64, to: i64) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).expect("time");
        params.self_signed(&key).expect("cert").pem()
    }

    #[test]
    fn a_stored_certificate_is_reused_only_for_the_same_names_and_while_young() {
        let now = 1_800_000_000;
        let names = ["10.0.0.5".to_string(), "n1".to_string()];
        assert!(fits(
            &cert(&["n1", "10.0.0.5"], now - 10, now + 90),
            &names,
            now
        ));
        assert!(!fits(
            &cert(&["10.0.0.6", "n1"], now - 10, now + 90),
            &names,
            now
        ));
        assert!(!fits(
            &cert(&["10.0.0.5", "n1"], now - 90, now + 10),
            &names,
            now
        ));
        assert!(!fits("junk", &names, now));
    }
}
