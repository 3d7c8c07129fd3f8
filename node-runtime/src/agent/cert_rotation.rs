//! Renews the node's client certificate while the agent runs, as the kubelet's certificate
//! manager does: at a point between 70% and 90% of the certificate's lifetime (spread over
//! nodes by the certificate's own bytes) the node asks for a new one with its current
//! identity, stores it in `pki/`, and presents it from the next connection on. Open
//! connections (a tunnel, pooled keep-alive ones) keep the certificate they were made with
//! until they reconnect (the server closes a tunnel when its certificate expires). The task
//! ends once no client holds the identity any more.
//!
//! A certificate that expired before it was renewed (the agent paused or cut off, a renewal
//! that kept failing), or whose renewal the server refuses (401), is replaced as the kubelet
//! falls back to its bootstrap credential: a new one is requested with the join token the
//! agent keeps for its life, through the same CSR path as at its start. Failed attempts are
//! retried with back-off (1 s doubling, at most a tenth of the certificate's lifetime and
//! five minutes); an agent without a join token logs at every attempt that it must be
//! restarted with one.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use skiff_api::backoff::Backoff;
use skiff_api::cert_renewal;
use skiff_client::{Client, ClientIdentity, Credentials};

use super::credentials::{request, validity_der, CredentialError};

/// Pauses between failed attempts (each also at most `retry_after`).
const RETRY: Backoff = Backoff {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(300),
    reset_after: Duration::ZERO,
};

/// What the node needs to ask for a new certificate.
pub struct Renewal {
    /// The API servers to ask.
    pub servers: Vec<String>,
    /// The cluster CA (PEM) their certificates chain to.
    pub ca_pem: Vec<u8>,
    /// The node's name.
    pub node: String,
    /// The agent's data dir, whose `pki/` holds the certificate.
    pub data_dir: PathBuf,
    /// The join token, kept for the agent's life to replace an expired certificate (`None`:
    /// the agent was not given one, and must then be restarted with one).
    pub token: Option<String>,
}

/// Keeps `identity` renewed while a client holds it.
pub fn spawn(identity: &Arc<ClientIdentity>, renewal: Renewal) {
    let identity = Arc::downgrade(identity);
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let Some(wait) = until_renewal(&identity) else {
                return;
            };
            tokio::time::sleep(wait).await;
            let Some(current) = identity.upgrade() else {
                return;
            };
            let result = renew(&current, &renewal).await;
            // Never sooner than this again, even if the signer's certificate is already due.
            let mut pause = retry_after(&current);
            drop(current);
            match result {
                Ok(()) => failures = 0,
                Err(err) => {
                    failures = failures.saturating_add(1);
                    pause = pause.min(RETRY.delay(failures));
                    tracing::warn!(%err, node = %renewal.node, retry = ?pause, "renewing the node's client certificate failed");
                }
            }
            tokio::time::sleep(pause).await;
        }
    });
}

/// Renews `identity` with itself while it is valid; once it has expired, or the server
/// refuses it, replaces it with one obtained with the join token.
async fn renew(identity: &Arc<ClientIdentity>, renewal: &Renewal) -> Result<(), CredentialError> {
    let now = jiff::Timestamp::now().as_second();
    if !expired(identity, now) {
        let client = Client::with_identity(
            &renewal.servers,
            Some(&renewal.ca_pem),
            Some(identity.clone()),
        )?;
        match request(&client, &renewal.node, &renewal.data_dir).await {
            Ok((cert, key)) => {
                identity.replace(cert.as_bytes(), key.as_bytes())?;
                tracing::info!(node = %renewal.node, "rotated the node's client certificate");
                return Ok(());
            }
            Err(CredentialError::Client(err)) if err.is_unauthorized() => {
                tracing::warn!(%err, node = %renewal.node, "the server refused the node's client certificate");
            }
            Err(err) => return Err(err),
        }
    }
    let Some(token) = &renewal.token else {
        tracing::error!(
            node = %renewal.node,
            "the node's client certificate expired and the agent has no join token: restart \
             it with --token to obtain a new certificate"
        );
        return Err(CredentialError::Expired);
    };
    tracing::warn!(node = %renewal.node, "the node's client certificate expired: requesting a new one with the join token");
    let client = Client::with_credentials(
        &renewal.servers,
        &Credentials {
            ca_pem: Some(renewal.ca_pem.clone()),
            identity: None,
            token: Some(token.clone()),
        },
    )?;
    let (cert, key) = request(&client, &renewal.node, &renewal.data_dir).await?;
    identity.replace(cert.as_bytes(), key.as_bytes())?;
    tracing::info!(node = %renewal.node, "replaced the node's expired client certificate with one obtained with the join token");
    Ok(())
}

/// Whether the certificate `identity` presents has expired at `now` (Unix seconds), or cannot
/// be read.
fn expired(identity: &ClientIdentity, now: i64) -> bool {
    identity
        .chain()
        .first()
        .and_then(|der| validity_der(der))
        .is_none_or(|(_, _, to)| now >= to)
}

/// How long until the presented certificate is due for renewal (zero if it is due), or
/// `None` when no client holds the identity any more.
fn until_renewal(identity: &Weak<ClientIdentity>) -> Option<Duration> {
    let chain = identity.upgrade()?.chain();
    let now = jiff::Timestamp::now().as_second();
    Some(
        chain
            .first()
            .map_or(Duration::ZERO, |der| cert_renewal::until_due(der, now)),
    )
}

/// The pause after a renewal or a failed one: a tenth of the certificate's lifetime, between
/// one second and five minutes (five minutes if its lifetime cannot be read).
fn retry_after(identity: &ClientIdentity) -> Duration {
    identity
        .chain()
        .first()
        .map_or(Duration::from_secs(300), |der| cert_renewal::pause(der))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    fn identity(from: i64, to: i64) -> ClientIdentity {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "system:node:n1");
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).expect("time");
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).expect("time");
        let cert = params.self_signed(&key).expect("cert").pem();
        ClientIdentity::from_pem(cert.as_bytes(), key.serialize_pem().as_bytes()).expect("loads")
    }

    #[test]
    fn a_certificate_past_its_not_after_is_replaced_with_the_join_token() {
        let now = 1_800_000_000;
        assert!(!expired(&identity(now - 50, now + 10), now));
        assert!(expired(&identity(now - 60, now), now));
        assert!(expired(&identity(now - 60, now - 1), now));
    }

    #[test]
    fn failed_attempts_back_off_within_a_tenth_of_the_lifetime() {
        let short = identity(0, 60);
        let pauses: Vec<_> = (1..=5)
            .map(|n| retry_after(&short).min(RETRY.delay(n)).as_secs())
            .collect();
        assert_eq!(pauses, [1, 2, 4, 6, 6]);
        let long = identity(0, 86_400 * 365);
        assert_eq!(retry_after(&long).min(RETRY.delay(30)).as_secs(), 300);
    }
}
