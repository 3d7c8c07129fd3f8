//! Certificates for the Ingress HTTPS listener: each `spec.tls[]` entry names a
//! `kubernetes.io/tls` Secret (`tls.crt`, `tls.key` in PEM) of the Ingress's namespace for its
//! hosts, and SNI picks one (exact name, then `*.` wildcard, then an entry without hosts). A
//! host whose Secret is missing or bad has no certificate: its handshakes are refused.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::api::networking::v1::Ingress;
use tokio::sync::watch;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why a TLS Secret gives no certificate.
#[derive(Debug, thiserror::Error, PartialEq, Eq, PartialOrd, Ord, Clone)]
pub enum CertError {
    #[error("TLS Secret {secret} of Ingress {ingress} does not exist")]
    Missing { ingress: String, secret: String },
    #[error("TLS Secret {secret} of Ingress {ingress} has no {key}")]
    MissingKey {
        ingress: String,
        secret: String,
        key: &'static str,
    },
    #[error("TLS Secret {secret} of Ingress {ingress}: {key} is not valid PEM: {reason}")]
    Pem {
        ingress: String,
        secret: String,
        key: &'static str,
        reason: String,
    },
    #[error("TLS Secret {secret} of Ingress {ingress}: the key does not fit the certificate or is not supported: {reason}")]
    Key {
        ingress: String,
        secret: String,
        reason: String,
    },
}

/// The certificates by host.
#[derive(Default)]
pub struct Certificates {
    /// None: the host's Secret is missing or bad.
    exact: HashMap<String, Option<Arc<CertifiedKey>>>,
    /// By the domain after `*.`.
    wildcard: HashMap<String, Option<Arc<CertifiedKey>>>,
    /// From an entry without hosts: for names no entry lists, and clients without SNI.
    fallback: Option<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("exact", &self.exact.keys().collect::<Vec<_>>())
            .field("wildcard", &self.wildcard.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Certificates {
    /// The certificates `ingresses` name, from `secrets` (by `namespace/name`), and what is
    /// wrong with the Secrets that give none.
    pub fn build<'a>(
        ingresses: impl IntoIterator<Item = &'a Ingress>,
        secrets: &BTreeMap<String, Secret>,
    ) -> (Self, Vec<CertError>) {
        let provider = ring::default_provider();
        let mut certificates = Certificates::default();
        let mut problems = Vec::new();
        for ingress in ingresses {
            let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
            let ingress_name = format!(
                "{namespace}/{}",
                ingress.metadata.name.as_deref().unwrap_or_default()
            );
            let entries = ingress.spec.iter().flat_map(|s| s.tls.iter().flatten());
            for entry in entries {
                let secret_name = entry.secret_name.as_deref().unwrap_or_default();
                let secret_key = format!("{namespace}/{secret_name}");
                let loaded = match secrets.get(&secret_key) {
                    Some(secret) => load(secret, &provider)
                        .map_err(|e| e.into_error(ingress_name.clone(), secret_key.clone())),
                    None => Err(CertError::Missing {
                        ingress: ingress_name.clone(),
                        secret: secret_key,
                    }),
                };
                let key = loaded.map_err(|e| problems.push(e)).ok();
                let hosts = entry.hosts.as_deref().unwrap_or_default();
                if hosts.is_empty() && certificates.fallback.is_none() {
                    certificates.fallback = key.clone();
                }
                for host in hosts {
                    let host = host.to_ascii_lowercase();
                    let table = match host.strip_prefix("*.") {
                        Some(domain) => certificates.wildcard.entry(domain.to_string()),
                        None => certificates.exact.entry(host),
                    };
                    table.or_insert_with(|| key.clone());
                }
            }
        }
        (certificates, problems)
    }

    /// The certificate for a client that asked for `server_name`; None refuses the handshake.
    pub fn lookup(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = server_name.map(str::to_ascii_lowercase) else {
            return self.fallback.clone();
        };
        if let Some(key) = self.exact.get(&name) {
            return key.clone();
        }
        let wildcard = name.split_once('.').and_then(|(_, d)| self.wildcard.get(d));
        match wildcard {
            Some(key) => key.clone(),
            None => self.fallback.clone(),
        }
    }
}

/// A Secret's problem before it is placed.
enum LoadError {
    MissingKey(&'static str),
    Pem(&'static str, String),
    Key(String),
}

impl LoadError {
    fn into_error(self, ingress: String, secret: String) -> CertError {
        match self {
            LoadError::MissingKey(key) => CertError::MissingKey {
                ingress,
                secret,
                key,
            },
            LoadError::Pem(key, reason) => CertError::Pem {
                ingress,
                secret,
                key,
                reason,
            },
            LoadError::Key(reason) => CertError::Key {
                ingress,
                secret,
                reason,
            },
        }
    }
}

const CERT_KEY: &str = "tls.crt";
const PRIVATE_KEY: &str = "tls.key";

fn load(secret: &Secret, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, LoadError> {
    let data = |key: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
            .ok_or(LoadError::MissingKey(key))
    };
    let chain = CertificateDer::pem_slice_iter(data(CERT_KEY)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::Pem(CERT_KEY, e.to_string()))?;
    if chain.is_empty() {
        return Err(LoadError::Pem(CERT_KEY, "no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(data(PRIVATE_KEY)?)
        .map_err(|e| LoadError::Pem(PRIVATE_KEY, e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map(Arc::new)
        .map_err(|e| LoadError::Key(e.to_string()))
}

/// Picks the certificate by SNI from the latest certificates.
pub struct Resolver(pub watch::Receiver<Arc<Certificates>>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Resolver").field(&*self.0.borrow()).finish()
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certificates = self.0.borrow().clone();
        let key = certificates.lookup(hello.server_name());
        if key.is_none() {
            tracing::debug!(server_name = ?hello.server_name(), "ingress: no certificate; refusing the handshake");
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skiff_api::k8s_openapi::ByteString;

    use super::*;

    const CERT: &str = include_str!("../probes/testdata/cert.pem");
    const KEY: &str = include_str!("../probes/testdata/key.pem");

    fn secret(name: &str, data: &[(&str, &str)]) -> (String, Secret) {
        let data = data
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        let mut secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"}, "type": "kubernetes.io/tls"}))
        .unwrap();
        secret.data = Some(data);
        (format!("default/{name}"), secret)
    }

    #[test]
    fn sni_picks_the_hosts_certificate_and_bad_secrets_refuse() {
        let secrets = BTreeMap::from([
            secret("good", &[("tls.crt", CERT), ("tls.key", KEY)]),
            secret("no-key", &[("tls.crt", CERT)]),
            secret("garbled", &[("tls.crt", "not pem"), ("tls.key", KEY)]),
        ]);
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"tls": [
                {"hosts": ["a.example.com", "*.wild.example.com"], "secretName": "good"},
                {"hosts": ["b.example.com"], "secretName": "no-key"},
                {"hosts": ["c.example.com"], "secretName": "garbled"},
                {"hosts": ["d.example.com"], "secretName": "absent"}]}}))
        .unwrap();
        let (certificates, mut problems) = Certificates::build([&ingress], &secrets);
        problems.sort();
        let secrets_named: Vec<String> = problems
            .iter()
            .map(|p| match p {
                CertError::Missing { secret, .. }
                | CertError::MissingKey { secret, .. }
                | CertError::Pem { secret, .. }
                | CertError::Key { secret, .. } => secret.clone(),
            })
            .collect();
        assert_eq!(
            secrets_named,
            ["default/absent", "default/no-key", "default/garbled"]
        );
        assert!(certificates.lookup(Some("A.example.com")).is_some());
        assert!(certificates.lookup(Some("x.wild.example.com")).is_some());
        for refused in [
            "b.example.com",
            "c.example.com",
            "d.example.com",
            "other.org",
        ] {
            assert!(certificates.lookup(Some(refused)).is_none(), "{refused}");
        }
        assert!(
            certificates.lookup(None).is_none(),
            "no entry without hosts"
        );
    }
}
