//! Handshakes between two members' `PeerTls` over an in-memory pipe, while one member's
//! trusted CA file is rotated under it.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::*;

/// A CA of the test's: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Every CA of the test bears this name, as two CAs made in the same second do.
        params
            .distinguished_name
            .push(DnType::CommonName, "peer CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for member `name` from this CA, and its key, in PEM.
    fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    /// Peer TLS for member `name`, its certificate from this CA, trusting `trusted` (PEM).
    fn member(&self, name: &str, trusted: &str) -> PeerTls {
        let (cert, key) = self.issue(name);
        PeerTls::from_pem(trusted.as_bytes(), cert.as_bytes(), key.as_bytes()).expect("peer tls")
    }

    /// As `member`, trusting the CA file `trusted`, read again when it changes.
    fn member_trusting_file(&self, name: &str, trusted: &Path) -> PeerTls {
        let (cert, key) = self.issue(name);
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
        let provider = rustls::crypto::ring::default_provider();
        let identity = CertifiedKey::from_der(chain, key, &provider).expect("identity");
        let ca = ReloadingCa::new(trusted).expect("CA file");
        PeerTls::with_trusted_ca_file(Arc::new(ca), Arc::new(SingleCertAndKey::from(identity)))
            .expect("peer tls")
    }
}

fn member(name: &str) -> Member {
    Member {
        id: 1,
        name: name.to_string(),
        peer_addr: "127.0.0.1:2380".to_string(),
    }
}

/// `client`'s connector to member `s1`, kept across handshakes as a peer sender keeps it.
fn to_s1(client: &PeerTls) -> TlsConnector {
    client.connector(&member("s1")).expect("connector")
}

/// Whether `connector` and `server` (member `s1`) both complete a handshake.
async fn handshake(connector: &TlsConnector, server: &PeerTls) -> bool {
    let s1 = member("s1");
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let (accepted, connected) = tokio::join!(
        server.acceptor().accept(server_io),
        connector.connect(server_name(&s1), client_io)
    );
    accepted.is_ok() && connected.is_ok()
}

/// Writes `pem` as a new file renamed over the old.
fn write(path: &Path, pem: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, pem).expect("write");
    std::fs::rename(&staged, path).expect("rename");
}

/// Waits until the handshake's outcome is `wanted` (the file is looked at once a second).
async fn until(wanted: bool, connector: &TlsConnector, server: &PeerTls) {
    for _ in 0..40 {
        if handshake(connector, server).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the handshake never became {wanted}");
}

#[tokio::test]
async fn a_rotated_ca_file_verifies_the_handshakes_that_follow_on_both_sides() {
    let (old, new) = (Ca::new(), Ca::new());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ca.pem");
    write(&file, &old.pem);
    let both = format!("{}{}", old.pem, new.pem);

    // The listener's side: a member already moved to the new CA is refused, then taken
    // once the file holds both; a member still on the old CA is refused once it is gone.
    let server = old.member_trusting_file("s1", &file);
    let moved = to_s1(&new.member("s2", &both));
    let behind = to_s1(&old.member("s2", &both));
    assert!(handshake(&behind, &server).await);
    assert!(!handshake(&moved, &server).await);
    write(&file, &both);
    until(true, &moved, &server).await;
    assert!(handshake(&behind, &server).await);
    write(&file, &new.pem);
    until(false, &behind, &server).await;
    assert!(handshake(&moved, &server).await);

    // The connecting side, its connector made before the change: a listener on the new CA
    // is refused until the file trusts it. (Both CAs bear the same name, so the old one
    // alone fails on the signature, not on a missing issuer.)
    write(&file, &old.pem);
    let client = to_s1(&old.member_trusting_file("s2", &file));
    let listener = new.member("s1", &both);
    assert!(!handshake(&client, &listener).await);
    write(&file, &both);
    until(true, &client, &listener).await;
}
