//! Three store members over real loopback sockets with mutual TLS between peers: they elect
//! and replicate; a member whose certificate is from another CA, expired, made out to another
//! member, or who has none, is refused at the handshake and gets nothing while the others
//! go on writing; and forged heartbeats over plain TCP (the attack of issue 14) neither raise
//! the term nor stop writes, where without peer TLS they do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use skiff_raft_store::{Cluster, Op, PeerTls, Store, StoreConfig, StoreError, Timing, Txn};
use tokio::io::AsyncWriteExt;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const NAMES: [&str; 3] = ["s1", "s2", "s3"];

/// A certificate authority made for the test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A peer certificate with these SANs (server and client auth), and its key, in PEM.
    fn issue(&self, sans: &[&str], expired: bool) -> (String, String) {
        let key = KeyPair::generate().expect("peer key");
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("peer params");
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).expect("peer cert");
        (cert.pem(), key.serialize_pem())
    }

    /// Peer TLS for a member whose certificate has these SANs, trusting `trusted`.
    fn tls(&self, sans: &[&str], trusted: &Ca, expired: bool) -> PeerTls {
        let (cert, key) = self.issue(sans, expired);
        PeerTls::from_pem(trusted.pem.as_bytes(), cert.as_bytes(), key.as_bytes())
            .expect("peer tls")
    }
}

fn config(dir: &Path, name: &str, addrs: &[SocketAddr], tls: Option<PeerTls>) -> StoreConfig {
    let initial: Vec<String> = NAMES
        .iter()
        .zip(addrs)
        .map(|(n, a)| format!("{n}={a}"))
        .collect();
    let cluster = Cluster::parse(name, &initial.join(",")).expect("cluster");
    let local = cluster.local as usize - 1;
    StoreConfig {
        data_dir: PathBuf::from(dir),
        peer_listen: Some(addrs[local]),
        peer_tls: tls,
        cluster,
        watch_history: 10_000,
        timing: Timing {
            tick: Duration::from_millis(20),
            heartbeat_ticks: 1,
            election_ticks: 10,
        },
        log_retain: 10_000,
        join: None,
    }
}

/// Three data dirs and peer addresses; members are opened one by one.
struct Group {
    dirs: Vec<tempfile::TempDir>,
    addrs: Vec<SocketAddr>,
    listeners: Vec<Option<tokio::net::TcpListener>>,
    stores: Vec<Option<Store>>,
}

impl Group {
    async fn new() -> Group {
        let mut group = Group {
            dirs: Vec::new(),
            addrs: Vec::new(),
            listeners: Vec::new(),
            stores: vec![None, None, None],
        };
        for _ in NAMES {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            group.addrs.push(listener.local_addr().expect("addr"));
            group.listeners.push(Some(listener));
            group.dirs.push(tempfile::tempdir().expect("tempdir"));
        }
        group
    }

    /// Opens member `i` with `tls` (on its first listener, or binding its address again).
    async fn open(&mut self, i: usize, tls: Option<PeerTls>) {
        let config = config(self.dirs[i].path(), NAMES[i], &self.addrs, tls);
        let store = match self.listeners[i].take() {
            Some(listener) => Store::open_with_listener(config, listener).await,
            None => Store::open(config).await,
        };
        self.stores[i] = Some(store.expect("open member"));
    }

    async fn stop(&mut self, i: usize) {
        if let Some(store) = self.stores[i].take() {
            store.shutdown().await;
        }
    }

    fn store(&self, i: usize) -> &Store {
        self.stores[i].as_ref().expect("member running")
    }

    /// The index of the member that leads, once one does (bounded wait).
    async fn leader(&self) -> usize {
        for _ in 0..400 {
            for (i, store) in self.stores.iter().enumerate() {
                if matches!(store, Some(store) if store.status().borrow().leading.is_some()) {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no leader elected within 10 s");
    }

    async fn stop_all(&mut self) {
        for i in 0..NAMES.len() {
            self.stop(i).await;
        }
    }
}

fn put(key: &str, value: &str) -> Txn {
    Txn {
        success: vec![Op::Put {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }],
        ..Default::default()
    }
}

/// Retries a write while leadership settles (bounded).
async fn write(store: &Store, key: &str, value: &str) {
    for _ in 0..200 {
        match store.txn(put(key, value)).await {
            Ok(_) => return,
            Err(StoreError::NoLeader | StoreError::Timeout) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(err) => panic!("write {key}: {err}"),
        }
    }
    panic!("write {key} never succeeded");
}

async fn read(store: &Store, key: &str) -> Option<String> {
    store.read_barrier().await.expect("read barrier");
    store
        .get(key.as_bytes())
        .await
        .expect("get")
        .map(|kv| String::from_utf8(kv.value).expect("utf8"))
}

/// Waits (bounded) until member `i` has applied `key` with `value`, reading locally.
async fn applied(group: &Group, i: usize, key: &str, value: &str) {
    for _ in 0..400 {
        let got = group.store(i).get(key.as_bytes()).await.expect("get");
        if got.is_some_and(|kv| kv.value == value.as_bytes()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never applied {key}={value}", NAMES[i]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_with_peer_tls_elect_and_replicate() {
    let ca = Ca::new("peer CA");
    let mut group = Group::new().await;
    for (i, name) in NAMES.iter().enumerate() {
        group.open(i, Some(ca.tls(&[name], &ca, false))).await;
    }
    let leader = group.leader().await;
    for i in 0..NAMES.len() {
        write(group.store(i), &format!("/via-{i}"), "v").await;
    }
    for i in 0..NAMES.len() {
        for j in 0..NAMES.len() {
            assert_eq!(
                read(group.store(i), &format!("/via-{j}")).await.as_deref(),
                Some("v")
            );
        }
    }
    // A certificate naming the member's peer host (not its name) is as good.
    group.stop(leader).await;
    group
        .open(leader, Some(ca.tls(&["127.0.0.1"], &ca, false)))
        .await;
    write(group.store((leader + 1) % 3), "/after-restart", "v").await;
    applied(&group, leader, "/after-restart", "v").await;
    group.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_without_the_clusters_certificate_are_refused_and_get_nothing() {
    let ca = Ca::new("peer CA");
    let other = Ca::new("another CA");
    let mut group = Group::new().await;
    group.open(0, Some(ca.tls(&["s1"], &ca, false))).await;
    group.open(1, Some(ca.tls(&["s2"], &ca, false))).await;
    let leader = group.leader().await;
    let s3 = 2;
    let impostors: [(&str, Option<PeerTls>); 5] = [
        ("no peer TLS", None),
        (
            "a certificate from another CA",
            Some(other.tls(&["s3"], &ca, false)),
        ),
        (
            "a certificate from another CA, trusting only it",
            Some(other.tls(&["s3"], &other, false)),
        ),
        ("an expired certificate", Some(ca.tls(&["s3"], &ca, true))),
        (
            "the cluster CA's certificate for another member",
            Some(ca.tls(&["s1"], &ca, false)),
        ),
    ];
    for (round, (what, tls)) in impostors.into_iter().enumerate() {
        group.open(s3, tls).await;
        // The majority goes on writing while the impostor tries to take part.
        let started = Instant::now();
        for n in 0..50 {
            write(group.store(leader), &format!("/r{round}-{n}"), "v").await;
        }
        let writing = started.elapsed();
        let status = group.store(s3).status().borrow().clone();
        assert_eq!(
            status.applied, 0,
            "s3 with {what} applied entries from the cluster"
        );
        let progress = group.store(leader).status().borrow().progress.clone();
        assert!(
            progress
                .iter()
                .any(|&(id, matched)| id == 3 && matched == 0),
            "the leader replicated to s3 with {what}: {progress:?}"
        );
        assert!(
            writing < Duration::from_secs(20),
            "50 writes took {writing:?} with s3 holding {what}"
        );
        group.stop(s3).await;
    }
    // The same data dir with the cluster's certificate catches up at once: the refusals
    // above were the certificates'.
    group.open(s3, Some(ca.tls(&["s3"], &ca, false))).await;
    applied(&group, s3, "/r4-49", "v").await;
    group.stop_all().await;
}

/// The first frame of a peer connection, as an attacker who read the wire format writes it.
#[derive(Clone, PartialEq, prost::Message)]
struct ForgedHello {
    #[prost(string, tag = "1")]
    cluster_id: String,
    #[prost(uint64, tag = "2")]
    from: u64,
    #[prost(uint64, tag = "3")]
    to: u64,
}

const FORGED_TERM: u64 = 10_000_000;

/// A connection of the attacker's.
trait Stream: tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// An attacker's TLS client: it trusts the peer CA (public) and holds a certificate the same
/// CA issued to something that is no member (a node, a user).
fn outsider(ca: &Ca) -> tokio_rustls::TlsConnector {
    let (cert, key) = ca.issue(&["node-1"], false);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("ca"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
        PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
    )
    .expect("client config");
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects to every member's peer port again and again (over plain TCP, or over TLS with
/// `tls`), saying it is the leader `from` of `cluster_id`, and sends heartbeats of a huge
/// term, until aborted.
fn forge_heartbeats(
    addrs: Vec<SocketAddr>,
    cluster_id: String,
    from: u64,
    tls: Option<tokio_rustls::TlsConnector>,
) -> tokio::task::JoinHandle<()> {
    let frame = |body: Vec<u8>| {
        let mut framed = (body.len() as u32).to_be_bytes().to_vec();
        framed.extend(body);
        framed
    };
    tokio::spawn(async move {
        loop {
            for (i, addr) in addrs.iter().enumerate() {
                let to = i as u64 + 1;
                if to == from {
                    continue;
                }
                let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                    continue;
                };
                let mut stream: Box<dyn Stream> = match &tls {
                    None => Box::new(stream),
                    Some(tls) => {
                        let name = ServerName::try_from(NAMES[i]).expect("name");
                        match tls.connect(name, stream).await {
                            Ok(stream) => Box::new(stream),
                            Err(_) => continue,
                        }
                    }
                };
                let hello = ForgedHello {
                    cluster_id: cluster_id.clone(),
                    from,
                    to,
                };
                let mut bytes = frame(hello.encode_to_vec());
                for _ in 0..20 {
                    let mut heartbeat = raft::eraftpb::Message::default();
                    heartbeat.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
                    heartbeat.from = from;
                    heartbeat.to = to;
                    heartbeat.term = FORGED_TERM;
                    bytes.extend(frame(heartbeat.encode_to_vec()));
                }
                let _ = stream.write_all(&bytes).await;
                let _ = stream.flush().await;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

/// Runs the attack against a group of three opened with `tls`; returns the highest term any
/// member reached, and how many of `writes` writes succeeded within `within`.
async fn attack(
    tls: impl Fn(&str) -> Option<PeerTls>,
    attacker_tls: Option<tokio_rustls::TlsConnector>,
    writes: usize,
    within: Duration,
) -> (u64, usize) {
    let mut group = Group::new().await;
    for (i, name) in NAMES.iter().enumerate() {
        group.open(i, tls(name)).await;
    }
    let leader = group.leader().await;
    write(group.store(leader), "/before", "v").await;
    // What `GET /skiff/v1/cluster` hands anyone.
    let cluster_id = group.store(leader).cluster().cluster_id;
    let attacker = forge_heartbeats(
        group.addrs.clone(),
        cluster_id,
        leader as u64 + 1,
        attacker_tls,
    );
    let deadline = Instant::now() + within;
    let mut written = 0;
    for n in 0..writes {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        let through = group.store(n % NAMES.len());
        if tokio::time::timeout(left, write(through, &format!("/during-{n}"), "v"))
            .await
            .is_ok()
        {
            written += 1;
        }
    }
    attacker.abort();
    let term = (0..NAMES.len())
        .map(|i| group.store(i).status().borrow().term)
        .max()
        .unwrap_or_default();
    group.stop_all().await;
    (term, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_over_plain_tcp_neither_raise_the_term_nor_stop_writes() {
    let ca = Ca::new("peer CA");
    let members = |name: &str| Some(ca.tls(&[name], &ca, false));
    let (term, written) = attack(members, None, 100, Duration::from_secs(30)).await;
    assert!(
        term < 1000,
        "forged heartbeats raised a TLS member's term to {term}"
    );
    assert_eq!(written, 100, "writes stalled under the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_the_cluster_ca_that_names_no_member_cannot_forge_heartbeats() {
    let ca = Ca::new("peer CA");
    let members = |name: &str| Some(ca.tls(&[name], &ca, false));
    let attacker = Some(outsider(&ca));
    let (term, written) = attack(members, attacker, 100, Duration::from_secs(30)).await;
    assert!(
        term < 1000,
        "heartbeats forged with a node's certificate raised the term to {term}"
    );
    assert_eq!(written, 100, "writes stalled under the attack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_peer_tls_forged_heartbeats_raise_the_term() {
    // Why peer TLS exists (and the proof that the attack above reaches the members).
    let (term, _) = attack(|_| None, None, 10, Duration::from_secs(5)).await;
    assert!(
        term >= FORGED_TERM,
        "the forged heartbeats did not reach plain-TCP members (term {term})"
    );
}
