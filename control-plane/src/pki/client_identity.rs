//! Who a verified client certificate names: as Kubernetes' x509 authenticator reads it, the
//! subject's CN is the user and each O is a group.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::UserInfo;

/// The user a client certificate names, and until when it may speak for them.
#[derive(Clone, Debug)]
pub struct CertificateUser {
    /// The CN as the user, each O as a group.
    pub user: UserInfo,
    /// The end of the certificate's validity, in seconds since the Unix epoch.
    pub not_after: i64,
}

impl CertificateUser {
    /// Whether the certificate has expired at `now` (Unix seconds). The handshake checked it
    /// once; a keep-alive connection outlives that check, so each request checks again, as
    /// Kubernetes' x509 authenticator verifies on every request.
    pub fn expired_at(&self, now: i64) -> bool {
        now > self.not_after
    }
}

/// The user of a client certificate (DER) that the TLS layer already verified against the
/// cluster CA; `None` if it cannot be parsed or has no CN.
pub fn user_of_certificate(der: &[u8]) -> Option<CertificateUser> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(CertificateUser {
        user: UserInfo::authenticated(name, groups),
        not_after: cert.validity().not_after.timestamp(),
    })
}
