//! Who a verified client certificate names: as Kubernetes' x509 authenticator reads it, the
//! subject's CN is the user and each O is a group.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::identity::UserInfo;

/// The user of a client certificate (DER) that the TLS layer already verified against the
/// cluster CA; `None` if it cannot be parsed or has no CN.
pub fn user_of_certificate(der: &[u8]) -> Option<UserInfo> {
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
    Some(UserInfo::authenticated(name, groups))
}
