//! Mutual TLS between members (as etcd's `--peer-*` flags): both ends present a certificate
//! signed by the cluster's peer CA and verify the other's. Each end also checks that the
//! other's certificate names the member it talks to: a subject alternative name equal to the
//! member's name or to the host of its peer address. Member A's certificate therefore cannot
//! speak for member B, and a certificate the same CA issued to something else (a node, a
//! user) cannot speak for any member. The CA may come from a file that is read again when it
//! changes (`ReloadingCa`), so that it can be rotated without a restart.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use skiff_net::reloading_ca::ReloadingCa;

use crate::member::Member;

#[cfg(test)]
mod tests;

/// Why a peer TLS configuration could not be built from its PEM inputs.
#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("the peer CA holds no PEM certificate: {0}")]
    CaPem(#[source] rustls::pki_types::pem::Error),
    #[error("the peer CA certificate is not usable as a trust anchor: {0}")]
    Ca(#[source] rustls::Error),
    #[error("the peer certificate holds no PEM certificate: {0}")]
    CertPem(#[source] rustls::pki_types::pem::Error),
    #[error("the peer key holds no PEM private key: {0}")]
    KeyPem(#[source] rustls::pki_types::pem::Error),
    #[error("the peer certificate and key do not make a TLS identity: {0}")]
    Identity(#[source] rustls::Error),
    #[error("cannot verify peer certificates against the CA: {0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}

/// A member's peer TLS: its certificate and key, and the CA its peers' certificates must be
/// signed by. Cheap to clone.
#[derive(Clone)]
pub struct PeerTls {
    provider: Arc<CryptoProvider>,
    anchors: Anchors,
    identity: Arc<dyn ResolvesClientCert>,
    acceptor: TlsAcceptor,
}

/// The CA certificates peers are verified with: given once, or a file read again when it
/// changes.
#[derive(Clone)]
enum Anchors {
    Fixed(Arc<RootCertStore>),
    File(Arc<ReloadingCa>),
}

impl Anchors {
    /// The ones to verify with now.
    fn roots(&self) -> Arc<RootCertStore> {
        match self {
            Anchors::Fixed(roots) => roots.clone(),
            Anchors::File(file) => file.roots(),
        }
    }
}

impl fmt::Debug for Anchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchors::Fixed(roots) => write!(f, "{} CA certificates", roots.len()),
            Anchors::File(file) => file.fmt(f),
        }
    }
}

impl fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Builds the configuration from PEM: the CA certificate(s) peers are verified against,
    /// this member's certificate (chain) and its private key.
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<PeerTls, PeerTlsError> {
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(PeerTlsError::CertPem)?;
        if chain.is_empty() {
            return Err(PeerTlsError::CertPem(
                rustls::pki_types::pem::Error::NoItemsFound,
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(PeerTlsError::KeyPem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Loads the key and checks that it is the certificate's.
        let identity =
            CertifiedKey::from_der(chain, key, &provider).map_err(PeerTlsError::Identity)?;
        PeerTls::with_provider(provider, ca, Arc::new(SingleCertAndKey::from(identity)))
    }

    /// As `from_pem`, this member's certificate chosen at each handshake by `identity` (one
    /// that is renewed while the member runs, say): it must come from the CA and name the
    /// member, as a `from_pem` one.
    pub fn with_identity<I>(ca: &[u8], identity: Arc<I>) -> Result<PeerTls, PeerTlsError>
    where
        I: ResolvesClientCert + ResolvesServerCert + 'static,
    {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        PeerTls::with_provider(provider, ca, identity)
    }

    /// As `with_identity`, the CA read from a file, and read again when it changes (etcd's
    /// `--peer-trusted-ca-file`): the handshakes that follow a change verify against it.
    pub fn with_trusted_ca_file<I>(
        ca: Arc<ReloadingCa>,
        identity: Arc<I>,
    ) -> Result<PeerTls, PeerTlsError>
    where
        I: ResolvesClientCert + ResolvesServerCert + 'static,
    {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        PeerTls::with_anchors(provider, Anchors::File(ca), identity)
    }

    fn with_provider<I>(
        provider: Arc<CryptoProvider>,
        ca: &[u8],
        identity: Arc<I>,
    ) -> Result<PeerTls, PeerTlsError>
    where
        I: ResolvesClientCert + ResolvesServerCert + 'static,
    {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca) {
            roots
                .add(ca.map_err(PeerTlsError::CaPem)?)
                .map_err(PeerTlsError::Ca)?;
        }
        if roots.is_empty() {
            return Err(PeerTlsError::CaPem(
                rustls::pki_types::pem::Error::NoItemsFound,
            ));
        }
        PeerTls::with_anchors(provider, Anchors::Fixed(Arc::new(roots)), identity)
    }

    fn with_anchors<I>(
        provider: Arc<CryptoProvider>,
        anchors: Anchors,
        identity: Arc<I>,
    ) -> Result<PeerTls, PeerTlsError>
    where
        I: ResolvesClientCert + ResolvesServerCert + 'static,
    {
        let clients = PeerClientVerifier(Current::new(
            anchors.clone(),
            provider.clone(),
            |roots, provider| WebPkiClientVerifier::builder_with_provider(roots, provider).build(),
        )?);
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(PeerTlsError::Identity)?
            .with_client_cert_verifier(Arc::new(clients))
            .with_cert_resolver(identity.clone());
        Ok(PeerTls {
            provider,
            anchors,
            identity,
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// The listener's side: requires and verifies a client certificate from the CA (which
    /// member it names is checked once its `Hello` says who it is: see `names`).
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The sender's side towards `peer`: its certificate must come from the CA and name it.
    pub(super) fn connector(&self, peer: &Member) -> Result<TlsConnector, PeerTlsError> {
        let verifier = MemberVerifier {
            inner: Current::new(
                self.anchors.clone(),
                self.provider.clone(),
                |roots, provider| {
                    WebPkiServerVerifier::builder_with_provider(roots, provider).build()
                },
            )?,
            names: member_names(peer),
        };
        let client = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(PeerTlsError::Identity)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(self.identity.clone());
        Ok(TlsConnector::from(Arc::new(client)))
    }
}

/// The names a member's certificate may carry: its name, and the host of its peer address.
fn member_names(member: &Member) -> Vec<ServerName<'static>> {
    let host = member
        .peer_addr
        .rsplit_once(':')
        .map_or(member.peer_addr.as_str(), |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    [member.name.as_str(), host]
        .into_iter()
        .filter_map(|name| ServerName::try_from(name.to_string()).ok())
        .collect()
}

/// The name a TLS client sends: the first of `member`'s names, or its name if none parses
/// (the verifier checks the names, not the SNI).
pub(super) fn server_name(member: &Member) -> ServerName<'static> {
    member_names(member)
        .into_iter()
        .next()
        .unwrap_or_else(|| ServerName::try_from("skiff-peer").expect("a valid DNS name"))
}

/// Whether `cert` (a peer's end-entity certificate, already verified against the CA) names
/// `member`.
pub(super) fn names(cert: &CertificateDer<'_>, member: &Member) -> bool {
    let Ok(parsed) = ParsedCertificate::try_from(cert) else {
        return false;
    };
    member_names(member)
        .iter()
        .any(|name| rustls::client::verify_server_name(&parsed, name).is_ok())
}

/// Verifies a listener's certificate against the CA as it is at the handshake (a sender
/// keeps its connector across reconnections) and for any of its member's names.
#[derive(Debug)]
struct MemberVerifier {
    inner: Current<WebPkiServerVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _sni: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let inner = self.inner.get();
        let mut last = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        for name in &self.names {
            match inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now) {
                Ok(verified) => return Ok(verified),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.get().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.get().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.get().supported_verify_schemes()
    }
}

/// Verifies a connecting peer's certificate against the CA as it is at the handshake. It
/// sends no CA names as hints, so a peer presents its certificate whatever CA it is from
/// (members present their one certificate anyway).
#[derive(Debug)]
struct PeerClientVerifier(Current<dyn ClientCertVerifier>);

/// A verifier of the CA as it is now: built from the anchors, and built again when they
/// change.
struct Current<V: ?Sized> {
    anchors: Anchors,
    provider: Arc<CryptoProvider>,
    build: BuildVerifier<V>,
    built: Mutex<(Arc<RootCertStore>, Arc<V>)>,
}

type BuildVerifier<V> = fn(
    Arc<RootCertStore>,
    Arc<CryptoProvider>,
) -> Result<Arc<V>, rustls::client::VerifierBuilderError>;

impl<V: ?Sized> fmt::Debug for Current<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("anchors", &self.anchors)
            .finish_non_exhaustive()
    }
}

impl<V: ?Sized> Current<V> {
    fn new(
        anchors: Anchors,
        provider: Arc<CryptoProvider>,
        build: BuildVerifier<V>,
    ) -> Result<Self, PeerTlsError> {
        let roots = anchors.roots();
        let verifier = build(roots.clone(), provider.clone()).map_err(PeerTlsError::Verifier)?;
        Ok(Current {
            anchors,
            provider,
            build,
            built: Mutex::new((roots, verifier)),
        })
    }

    /// The verifier of the roots as they are now.
    fn get(&self) -> Arc<V> {
        let roots = self.anchors.roots();
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&built.0, &roots) {
            // Loaded roots are never empty, the one way a build fails.
            match (self.build)(roots.clone(), self.provider.clone()) {
                Ok(verifier) => *built = (roots, verifier),
                Err(err) => tracing::warn!(%err, "the reloaded peer CA is not used"),
            }
        }
        built.1.clone()
    }
}

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .get()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().supported_verify_schemes()
    }
}
