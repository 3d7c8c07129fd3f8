//! The cluster CA: a self-signed ECDSA P-256 CA (rcgen) that signs serving, client and peer
//! certificates. Its files are `ca.crt` and `ca.key` in a directory (`DATA_DIR/tls/`, or the
//! directory `skiff certificate create-ca --out` writes and `--cluster-ca` reads).

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use super::files::{self, CA_CERT, CA_KEY};
use super::PkiError;

/// How long the CA is valid (k3s: 10 years).
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long leaf certificates are valid by default (k3s: 1 year; renewed on restart).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Leaf certificates are valid from a little before now (clocks of members differ).
const BACKDATE: Duration = Duration::from_secs(3600);

/// The cluster's certificate authority.
pub struct ClusterCa {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What a certificate is for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (the API, a Raft peer's listener).
    Server,
    /// A TLS client (users, nodes).
    Client,
    /// Both (Raft peers, which dial and accept).
    ServerAndClient,
}

/// A certificate to issue.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// The subject's CN: the user name of a client certificate.
    pub common_name: String,
    /// The subject's O fields: a client certificate's groups.
    pub organizations: Vec<String>,
    /// DNS names and IP addresses (as text) it is valid for.
    pub sans: Vec<String>,
    pub usage: Usage,
    /// How long from now it is valid.
    pub validity: Duration,
}

/// A signed certificate and its new private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate { what, source }
}

impl ClusterCa {
    /// A new CA named `skiff-ca@<unix time>` (k3s's `k3s-server-ca@...` shape).
    pub fn create() -> Result<ClusterCa, PkiError> {
        let key = KeyPair::generate().map_err(generate("cluster CA key"))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("skiff-ca@{}", now.unix_timestamp()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let cert = params
            .self_signed(&key)
            .map_err(generate("cluster CA certificate"))?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA in `dir` (`ca.crt`, `ca.key`), if both files are there.
    pub fn load(dir: &Path) -> Result<Option<ClusterCa>, PkiError> {
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        let (Some(cert_pem), Some(key_pem)) = (
            files::read_optional(&cert_path)?,
            files::read_optional(&key_path)?,
        ) else {
            return Ok(None);
        };
        let invalid = |path: &Path, what, err: rcgen::Error| PkiError::Invalid {
            path: path.to_path_buf(),
            what,
            reason: err.to_string(),
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| invalid(&key_path, "CA key", e))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| invalid(&cert_path, "CA certificate", e))?;
        Ok(Some(ClusterCa { cert_pem, issuer }))
    }

    /// Writes `ca.crt` (0644) and `ca.key` (0600) into `dir`, creating it (0700).
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        files::private_dir(dir)?;
        files::write_key(&dir.join(CA_KEY), &self.issuer.key().serialize_pem())?;
        files::write_cert(&dir.join(CA_CERT), &self.cert_pem)
    }

    /// The CA's private key, DER (PKCS#8): material every member shares and no store or
    /// backup holds, from which the shared encryption config's sealing key is derived.
    pub fn key_der(&self) -> Vec<u8> {
        self.issuer.key().serialize_der()
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Signs a new certificate for `request`, with a fresh ECDSA P-256 key.
    pub fn issue(&self, request: &CertRequest) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate().map_err(generate("certificate key"))?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, request.common_name.as_str());
        for organization in &request.organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, organization.as_str());
        }
        params.subject_alt_names = request
            .sans
            .iter()
            .map(|name| san(name))
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match request.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = now + request.validity;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate("certificate"))?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a PKCS#10 request (PEM) as a client certificate: the subject it names, its
    /// public key, `key_encipherment` if asked, valid for `validity` from a little before now.
    /// The request's signature must verify; its own extensions are not copied (the signer
    /// decides the usages, as Kubernetes' signers do).
    pub fn sign_client_request(
        &self,
        request_pem: &str,
        key_encipherment: bool,
        validity: Duration,
    ) -> Result<String, PkiError> {
        self.sign_request(request_pem, validity, |params, _| {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if key_encipherment {
                params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            }
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        })
    }

    /// Signs a PKCS#10 request (PEM) as a serving certificate (`server auth`) for the DNS
    /// names and IP addresses it asks for, valid for `validity` (the kubelet-serving signer;
    /// the caller checked the request's subject and names).
    pub fn sign_serving_request(
        &self,
        request_pem: &str,
        validity: Duration,
    ) -> Result<String, PkiError> {
        self.sign_request(request_pem, validity, |params, asked| {
            params.subject_alt_names = asked
                .into_iter()
                .filter(|san| matches!(san, SanType::DnsName(_) | SanType::IpAddress(_)))
                .collect();
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        })
    }

    /// Signs a PKCS#10 request (PEM) with the subject and public key it names, valid for
    /// `validity` from a little before now; `shape` sets the rest from the SANs it asked for.
    fn sign_request(
        &self,
        request_pem: &str,
        validity: Duration,
        shape: impl FnOnce(&mut CertificateParams, Vec<SanType>),
    ) -> Result<String, PkiError> {
        let request = CertificateSigningRequestParams::from_pem(request_pem)
            .map_err(|source| PkiError::Request { source })?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = request.params.distinguished_name;
        shape(&mut params, request.params.subject_alt_names);
        params.use_authority_key_identifier_extension = true;
        // Backdated for clock skew, by at most a quarter of the validity: a node renews at
        // 70–90% of notBefore..notAfter, which must fall after the certificate was issued.
        params.not_before = now - BACKDATE.min(Duration::from_secs(300)).min(validity / 4);
        params.not_after = now + validity;
        let signed = CertificateSigningRequestParams {
            params,
            public_key: request.public_key,
        }
        .signed_by(&self.issuer)
        .map_err(generate("certificate"))?;
        Ok(signed.pem())
    }
}

/// A SAN: an IP address if `name` parses as one, else a DNS name.
fn san(name: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = name.parse() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .to_string()
        .try_into()
        .map_err(generate("subject alternative name"))?;
    Ok(SanType::DnsName(dns))
}
