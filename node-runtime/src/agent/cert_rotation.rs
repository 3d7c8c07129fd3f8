//! Renews the node's client certificate while the agent runs, as the kubelet's certificate
//! manager does: at a point between 70% and 90% of the certificate's lifetime (spread over
//! nodes by the certificate's own bytes) the node asks for a new one with its current
//! identity, stores it in `pki/`, and presents it from the next connection on. Open
//! connections (a tunnel, pooled keep-alive ones) keep the certificate they were made with
//! until they reconnect. The task ends once no client holds the identity any more.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use skiff_client::{Client, ClientIdentity};

use super::credentials::{request, validity_der, CredentialError};

/// Where the renewal falls in a certificate's lifetime: between these shares.
const RENEW_FROM: f64 = 0.7;
const RENEW_SPREAD: f64 = 0.2;

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
}

/// Keeps `identity` renewed while a client holds it.
pub fn spawn(identity: &Arc<ClientIdentity>, renewal: Renewal) {
    let identity = Arc::downgrade(identity);
    tokio::spawn(async move {
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
            let pause = retry_after(&current);
            drop(current);
            if let Err(err) = result {
                tracing::warn!(%err, node = %renewal.node, retry = ?pause, "renewing the node's client certificate failed");
            }
            tokio::time::sleep(pause).await;
        }
    });
}

async fn renew(identity: &Arc<ClientIdentity>, renewal: &Renewal) -> Result<(), CredentialError> {
    let client = Client::with_identity(
        &renewal.servers,
        Some(&renewal.ca_pem),
        Some(identity.clone()),
    )?;
    let (cert, key) = request(&client, &renewal.node, &renewal.data_dir).await?;
    identity.replace(cert.as_bytes(), key.as_bytes())?;
    tracing::info!(node = %renewal.node, "rotated the node's client certificate");
    Ok(())
}

/// How long until the presented certificate is due for renewal (zero if it is due), or
/// `None` when no client holds the identity any more.
fn until_renewal(identity: &Weak<ClientIdentity>) -> Option<Duration> {
    let chain = identity.upgrade()?.chain();
    let now = jiff::Timestamp::now().as_second();
    let due = chain
        .first()
        .and_then(|der| Some((validity_der(der)?, *der.last()?)))
        .map_or(now, |((_, from, to), spread)| renew_at(from, to, spread));
    Some(Duration::from_secs(u64::try_from(due - now).unwrap_or(0)))
}

/// When a certificate valid from `from` to `to` is renewed: at 70% of its lifetime plus
/// `spread`/255 of another 20%.
fn renew_at(from: i64, to: i64, spread: u8) -> i64 {
    let share = RENEW_FROM + RENEW_SPREAD * f64::from(spread) / 255.0;
    from + ((to - from) as f64 * share).round() as i64
}

/// The pause after a renewal or a failed one: a tenth of the certificate's lifetime, between
/// one second and five minutes (five minutes if its lifetime cannot be read).
fn retry_after(identity: &ClientIdentity) -> Duration {
    let most = Duration::from_secs(300);
    let Some((_, from, to)) = identity.chain().first().and_then(|der| validity_der(der)) else {
        return most;
    };
    Duration::from_secs(u64::try_from((to - from) / 10).unwrap_or(0))
        .clamp(Duration::from_secs(1), most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_between_seventy_and_ninety_percent() {
        assert_eq!(renew_at(1000, 2000, 0), 1700);
        assert_eq!(renew_at(1000, 2000, 255), 1900);
        let middle = renew_at(0, 100_000, 128);
        assert!((80_000..80_100).contains(&middle), "{middle}");
    }
}
