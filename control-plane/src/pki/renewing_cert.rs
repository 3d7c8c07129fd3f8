//! A certificate a server issues itself from the cluster CA and renews while it runs, as the
//! kubelet's certificate manager renews its own (`cert_renewal`: at 70–90% of its lifetime):
//! the first handshake after that point issues the next one, and connections made from then
//! on present it (open ones keep the one they were made with). It serves as a client
//! certificate (the kubelet client's, a member's peer one) and as a serving one (the API's,
//! a member's peer listener).

use std::sync::{Arc, RwLock};

use skiff_api::cert_renewal;
use tokio_rustls::rustls::client::ResolvesClientCert;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::SignatureScheme;

use super::{CertRequest, ClusterCa, IssuedCert, PkiError};

/// The certificate for one `CertRequest` that handshakes present: the one held, or the next
/// one once the held one is due for renewal.
pub struct RenewingCert {
    ca: Arc<ClusterCa>,
    request: CertRequest,
    held: RwLock<Held>,
}

/// A certificate in use and when (Unix seconds) the next is issued.
struct Held {
    key: Arc<CertifiedKey>,
    renew_at: i64,
}

impl std::fmt::Debug for RenewingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenewingCert")
            .field("common_name", &self.request.common_name)
            .finish_non_exhaustive()
    }
}

impl RenewingCert {
    /// Starts from `first` (one issued for `request` before, say one read from the data dir),
    /// or else from a new one.
    pub fn new(
        ca: Arc<ClusterCa>,
        request: CertRequest,
        first: Option<&IssuedCert>,
    ) -> Result<RenewingCert, PkiError> {
        let now = jiff::Timestamp::now().as_second();
        let key = match first {
            Some(first) => load(first)?,
            None => load(&ca.issue(&request)?)?,
        };
        let held = Held {
            renew_at: renewal(&key, now),
            key,
        };
        Ok(RenewingCert {
            ca,
            request,
            held: RwLock::new(held),
        })
    }

    /// The certificate to present at `now` (Unix seconds). The next one is issued outside
    /// the lock (handshakes meanwhile present the held one); a renewal that fails keeps the
    /// held certificate and is tried again after `cert_renewal::pause`.
    fn at(&self, now: i64) -> Arc<CertifiedKey> {
        {
            let held = self.held.read().unwrap_or_else(|p| p.into_inner());
            if now < held.renew_at {
                return held.key.clone();
            }
        }
        let name = &self.request.common_name;
        let next = self
            .ca
            .issue(&self.request)
            .and_then(|issued| load(&issued));
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        if now < held.renew_at {
            // Another handshake renewed it meanwhile.
            return held.key.clone();
        }
        match next {
            Ok(key) => {
                tracing::info!(%name, "renewed the certificate");
                held.renew_at = renewal(&key, now);
                held.key = key;
            }
            Err(err) => {
                tracing::warn!(%name, %err, "renewing the certificate failed: the held one is used");
                held.renew_at = now + pause_secs(&held.key);
            }
        }
        held.key.clone()
    }

    fn now(&self) -> Arc<CertifiedKey> {
        self.at(jiff::Timestamp::now().as_second())
    }
}

impl ResolvesClientCert for RenewingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.now())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for RenewingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.now())
    }
}

fn load(issued: &IssuedCert) -> Result<Arc<CertifiedKey>, PkiError> {
    skiff_net::tls::certified_key(issued.cert_pem.as_bytes(), issued.key_pem.as_bytes()).map_err(
        |e| PkiError::InMemory {
            what: e.what,
            reason: e.reason,
        },
    )
}

/// When `key`'s certificate, taken up at `now`, is renewed: when it is due, and never sooner
/// than a pause after `now` (a certificate that comes back already due is not reissued at
/// once).
fn renewal(key: &CertifiedKey, now: i64) -> i64 {
    cert_renewal::due(leaf_der(key))
        .unwrap_or(now)
        .max(now + pause_secs(key))
}

fn pause_secs(key: &CertifiedKey) -> i64 {
    i64::try_from(cert_renewal::pause(leaf_der(key)).as_secs()).unwrap_or(i64::MAX)
}

/// The DER of `key`'s leaf certificate (empty if it has none).
fn leaf_der(key: &CertifiedKey) -> &[u8] {
    key.end_entity_cert()
        .map(|c| c.as_ref())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pki::{user_of_certificate, Usage};

    fn name(key: &CertifiedKey) -> String {
        let der = key.end_entity_cert().expect("a leaf");
        user_of_certificate(der).expect("a user").user.name
    }

    #[test]
    fn the_certificate_is_kept_until_due_then_renewed() {
        let ca = Arc::new(ClusterCa::create().expect("ca"));
        let request = CertRequest {
            common_name: "renewed".into(),
            organizations: Vec::new(),
            sans: Vec::new(),
            usage: Usage::Client,
            validity: Duration::from_secs(365 * 24 * 3600),
        };
        let certs = RenewingCert::new(ca, request, None).expect("issued");
        let now = jiff::Timestamp::now().as_second();
        let first = certs.at(now);
        assert_eq!(name(&first), "renewed");
        let due = cert_renewal::due(first.end_entity_cert().expect("leaf")).expect("due");
        let year = 365 * 24 * 3600;
        assert!(
            (now + year * 6 / 10..now + year).contains(&due),
            "renewed {}s from now",
            due - now
        );
        assert!(Arc::ptr_eq(&certs.at(due - 1), &first), "kept until due");
        let renewed = certs.at(due);
        assert!(!Arc::ptr_eq(&renewed, &first), "renewed once due");
        assert_eq!(name(&renewed), "renewed");
        assert!(
            Arc::ptr_eq(&certs.at(due + 1), &renewed),
            "the renewed one is held"
        );
    }
}
