//! The node's own client certificate, as the kubelet's TLS bootstrap and certificate manager
//! make it: with the join token, the agent asks for a certificate for `system:node:<name>`
//! (group `system:nodes`, signer `kubernetes.io/kube-apiserver-client-kubelet`) through a
//! CertificateSigningRequest the control plane approves and signs, keeps it in
//! `DATA_DIR/pki/node.crt` and `node.key` (0600), and from then on uses it for every API call
//! and for its tunnels. A restart reuses a stored certificate that is still valid, without
//! the token; one with less than 20% of its lifetime left is renewed at start with the node's
//! own identity, and a running agent renews it as the kubelet does (`cert_rotation`), falling
//! back to the join token if it expires first.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_api::certificates::{KUBE_APISERVER_CLIENT_KUBELET, NODES_GROUP, NODE_USER_PREFIX};
use skiff_client::certificates::{key_and_request, CertificateError, ClientRequest};
use skiff_client::{Client, ClientError, ClientIdentity, Credentials};

use super::cert_rotation::{self, Renewal};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The directory of the node's certificate inside the agent's data dir.
pub const PKI_DIR: &str = "pki";
/// The node's client certificate.
pub const NODE_CERT: &str = "node.crt";
/// The node's private key.
pub const NODE_KEY: &str = "node.key";
/// How long the agent waits for its certificate to be approved and issued.
const ISSUE_WAIT: Duration = Duration::from_secs(60);
/// The share of a certificate's lifetime after which it is renewed (the kubelet: 70–90%).
const RENEW_AFTER: f64 = 0.8;

/// Why the node has no client certificate.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the API client: {0}")]
    Client(#[from] ClientError),
    #[error("the node certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error("the node's client certificate expired and the agent has no join token to replace it: restart it with --token")]
    Expired,
}

/// How the agent reaches the API before it has a certificate of its own.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    pub servers: &'a [String],
    /// The cluster CA (checked against the join token's hash).
    pub ca_pem: &'a [u8],
    /// The join token (empty if the agent was not given one: a stored certificate must do),
    /// kept for the agent's life to replace its certificate should it expire.
    pub token: &'a str,
    /// The agent's data dir (the certificate goes to its `pki/`).
    pub data_dir: &'a Path,
    pub node: &'a str,
}

/// What a stored certificate is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Fresh,
    /// Valid, but past `RENEW_AFTER` of its lifetime.
    Aging,
    /// Expired, not yet valid, unreadable or naming another node.
    Unusable,
}

fn standing(cert_pem: &str, user: &str, now: i64) -> Standing {
    let Some((cn, from, to)) = validity(cert_pem) else {
        return Standing::Unusable;
    };
    if cn.as_deref() != Some(user) || now < from || now >= to {
        return Standing::Unusable;
    }
    let used = (now - from) as f64 / (to - from).max(1) as f64;
    if used >= RENEW_AFTER {
        Standing::Aging
    } else {
        Standing::Fresh
    }
}

/// A PEM certificate's common name and validity (Unix seconds), if it parses.
fn validity(cert_pem: &str) -> Option<(Option<String>, i64, i64)> {
    let der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()?
        .ok()?;
    validity_der(&der)
}

/// A DER certificate's common name and validity (Unix seconds), if it parses.
pub(super) fn validity_der(der: &[u8]) -> Option<(Option<String>, i64, i64)> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string);
    Some((
        cn,
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

/// The API client the node uses from now on: with its stored certificate, renewed or newly
/// requested as needed, and renewed again while the client is in use (`cert_rotation`).
pub async fn node_client(bootstrap: &Bootstrap<'_>) -> Result<Client, CredentialError> {
    let client = obtain(bootstrap).await?;
    if let Some(identity) = client.identity() {
        cert_rotation::spawn(
            identity,
            Renewal {
                servers: bootstrap.servers.to_vec(),
                ca_pem: bootstrap.ca_pem.to_vec(),
                node: bootstrap.node.to_string(),
                data_dir: bootstrap.data_dir.to_path_buf(),
                token: (!bootstrap.token.is_empty()).then(|| bootstrap.token.to_string()),
            },
        );
    }
    Ok(client)
}

async fn obtain(bootstrap: &Bootstrap<'_>) -> Result<Client, CredentialError> {
    let user = format!("{NODE_USER_PREFIX}{}", bootstrap.node);
    let dir = bootstrap.data_dir.join(PKI_DIR);
    let (cert_path, key_path) = (dir.join(NODE_CERT), dir.join(NODE_KEY));
    let stored = match (read(&cert_path)?, read(&key_path)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    let now = jiff::Timestamp::now().as_second();
    // A key that is not the certificate's (a renewal cut short) is as good as none.
    let standing =
        stored.as_ref().map_or(
            Standing::Unusable,
            |(cert, key)| match ClientIdentity::from_pem(cert.as_bytes(), key.as_bytes()) {
                Ok(_) => standing(cert, &user, now),
                Err(_) => Standing::Unusable,
            },
        );
    if let (Standing::Fresh, Some((cert, key))) = (standing, &stored) {
        return with_identity(bootstrap, cert, key);
    }
    // Renewed with the node's own identity while it is valid, else with the join token.
    let asking = match (standing, &stored) {
        (Standing::Aging, Some((cert, key))) => with_identity(bootstrap, cert, key)?,
        _ => Client::with_credentials(
            bootstrap.servers,
            &Credentials {
                ca_pem: Some(bootstrap.ca_pem.to_vec()),
                identity: None,
                token: Some(bootstrap.token.to_string()),
            },
        )?,
    };
    let (cert, key) = request(&asking, bootstrap.node, bootstrap.data_dir).await?;
    with_identity(bootstrap, &cert, &key)
}

/// Asks the control plane, as `asking`, for a new client certificate for `node` and stores
/// it with its new key in `data_dir`'s `pki/`: the certificate and key PEMs.
pub(super) async fn request(
    asking: &Client,
    node: &str,
    data_dir: &Path,
) -> Result<(String, String), CredentialError> {
    let user = format!("{NODE_USER_PREFIX}{node}");
    let made = key_and_request(&user, &[NODES_GROUP.to_string()])?;
    let name = asking
        .create_certificate_request(&ClientRequest {
            name_prefix: &format!("node-csr-{node}-"),
            request_pem: &made.request_pem,
            signer_name: KUBE_APISERVER_CLIENT_KUBELET,
            expiration_seconds: None,
        })
        .await?;
    tracing::info!(csr = %name, node, "requested the node's client certificate");
    let cert = asking.wait_for_certificate(&name, ISSUE_WAIT).await?;
    let dir = data_dir.join(PKI_DIR);
    let (cert_path, key_path) = (dir.join(NODE_CERT), dir.join(NODE_KEY));
    private_dir(&dir)?;
    write(&key_path, &made.key_pem, 0o600)?;
    write(&cert_path, &cert, 0o644)?;
    tracing::info!(path = %cert_path.display(), "stored the node's client certificate");
    Ok((cert, made.key_pem))
}

fn with_identity(
    bootstrap: &Bootstrap<'_>,
    cert: &str,
    key: &str,
) -> Result<Client, CredentialError> {
    Ok(Client::with_credentials(
        bootstrap.servers,
        &Credentials {
            ca_pem: Some(bootstrap.ca_pem.to_vec()),
            identity: Some((cert.as_bytes().to_vec(), key.as_bytes().to_vec())),
            token: None,
        },
    )?)
}

pub(super) fn read(path: &Path) -> Result<Option<String>, CredentialError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(super) fn private_dir(dir: &Path) -> Result<(), CredentialError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CredentialError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// Replaces `path` with `text` whole: written beside it, synced, then renamed over it, so a
/// crash leaves the old file or the new one, never a part.
pub(super) fn write(path: &Path, text: &str, mode: u32) -> Result<(), CredentialError> {
    let failed = |source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    let next = PathBuf::from(next);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&next)
        .map_err(failed)?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&next, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    fn cert(cn: &str, from: i64, to: i64) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).expect("time");
        params.self_signed(&key).expect("cert").pem()
    }

    #[test]
    fn stored_certificates_are_reused_renewed_at_eighty_percent_or_replaced() {
        let me = "system:node:n1";
        let now = 1_800_000_000;
        assert_eq!(
            standing(&cert(me, now - 10, now + 90), me, now),
            Standing::Fresh
        );
        assert_eq!(
            standing(&cert(me, now - 85, now + 15), me, now),
            Standing::Aging
        );
        assert_eq!(
            standing(&cert(me, now - 100, now - 1), me, now),
            Standing::Unusable
        );
        assert_eq!(
            standing(&cert("system:node:n2", now - 10, now + 90), me, now),
            Standing::Unusable
        );
        assert_eq!(standing("junk", me, now), Standing::Unusable);
    }
}
