//! The names the API's serving certificate is valid for, and whether a certificate on disk
//! still fits them.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The DNS names pods use for the API (`kubernetes.default.svc` and its longer forms).
const SERVICE_NAMES: [&str; 4] = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The SANs of the API's serving certificate: localhost, 127.0.0.1 and ::1, the listen
/// address (unless it is unspecified), `host_name`, the `kubernetes.default.svc` names,
/// the first Service IP (the `kubernetes` Service's), and `extra` (`--tls-san`).
pub fn serving_names(
    listen: SocketAddr,
    host_name: &str,
    first_service_ip: Option<IpAddr>,
    extra: &[String],
) -> Vec<String> {
    let mut names = BTreeSet::from([
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ]);
    if !listen.ip().is_unspecified() {
        names.insert(listen.ip().to_string());
    }
    if !host_name.is_empty() {
        names.insert(host_name.to_string());
    }
    names.extend(SERVICE_NAMES.iter().map(|n| n.to_string()));
    names.extend(first_service_ip.map(|ip| ip.to_string()));
    names.extend(
        extra
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
    );
    names.into_iter().collect()
}

/// Whether the PEM certificate `pem` is valid for at least `margin` more and its SANs are
/// exactly `names` (as `serving_names` spells them).
pub(crate) fn still_fits(pem: &str, names: &[String], margin: Duration) -> bool {
    let Some(der) = first_der(pem) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    let deadline = time::OffsetDateTime::now_utc() + margin;
    if cert.validity().not_after.to_datetime() < deadline {
        return false;
    }
    let Ok(Some(sans)) = cert.subject_alternative_name() else {
        return names.is_empty();
    };
    let have: BTreeSet<String> = sans
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
            _ => None,
        })
        .collect();
    have == names.iter().cloned().collect()
}

/// Whether the PEM certificate `pem` is valid for at least `margin` more.
pub(crate) fn still_valid(pem: &str, margin: Duration) -> bool {
    let Some(der) = first_der(pem) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    cert.validity().not_after.to_datetime() >= time::OffsetDateTime::now_utc() + margin
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// The DER of the first certificate in `pem`.
pub fn first_der(pem: &str) -> Option<Vec<u8>> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|der| der.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_names_cover_loopback_listen_address_host_and_the_kubernetes_service() {
        let names = serving_names(
            "10.0.0.5:6443".parse().unwrap(),
            "box",
            Some("10.43.0.1".parse().unwrap()),
            &["api.example.com".to_string()],
        );
        for name in [
            "localhost",
            "127.0.0.1",
            "10.0.0.5",
            "box",
            "kubernetes.default.svc",
            "10.43.0.1",
            "api.example.com",
        ] {
            assert!(names.contains(&name.to_string()), "{name} in {names:?}");
        }
        let any = serving_names("0.0.0.0:6443".parse().unwrap(), "box", None, &[]);
        assert!(!any.contains(&"0.0.0.0".to_string()));
    }
}
