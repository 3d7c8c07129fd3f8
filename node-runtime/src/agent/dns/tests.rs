//! The DNS server over real loopback sockets: cluster names answered from the zone over UDP
//! and TCP, other names relayed to a fake upstream resolver, SERVFAIL when it is silent.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::records::Zone;
use super::server::{self, Resolver};
use super::upstream::{read_framed, write_framed, Upstream};

fn zone() -> Zone {
    let echo = serde_json::from_value(json!({
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 8080}]}}))
    .unwrap();
    Zone::build("cluster.local", [&echo], [])
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message.to_vec().unwrap()
}

fn addresses(reply: &[u8]) -> (ResponseCode, Vec<Ipv4Addr>) {
    let message = Message::from_vec(reply).expect("a DNS reply");
    let ips = message
        .answers()
        .iter()
        .filter_map(|r| r.data().as_a().map(|a| a.0))
        .collect();
    (message.response_code(), ips)
}

/// A resolver for names outside the cluster that answers every A query with 192.0.2.7.
async fn fake_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0; 512];
        loop {
            let (n, peer) = socket.recv_from(&mut buffer).await.unwrap();
            let request = Message::from_vec(&buffer[..n]).unwrap();
            let mut reply = request.clone();
            reply.set_message_type(hickory_proto::op::MessageType::Response);
            let name = request.queries()[0].name().clone();
            reply.add_answer(Record::from_rdata(
                name,
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
            ));
            socket
                .send_to(&reply.to_vec().unwrap(), peer)
                .await
                .unwrap();
        }
    });
    addr
}

/// A server on 127.0.0.1 (any port) relaying to `upstream`; its address.
async fn start(upstream: Vec<SocketAddr>, stop: &CancellationToken) -> SocketAddr {
    // TCP on the same port as UDP, as on port 53: a UDP port whose TCP twin another test
    // holds is passed over (a bounded number of tries).
    let (udp, udp_addr, tcp) = 'bound: {
        for _ in 0..50 {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let udp_addr = udp.local_addr().unwrap();
            if let Ok(tcp) = tokio::net::TcpListener::bind(udp_addr).await {
                break 'bound (udp, udp_addr, tcp);
            }
        }
        panic!("no loopback port free for both UDP and TCP in 50 tries");
    };
    let (sender, zone) = watch::channel(Arc::new(zone()));
    let kept = stop.clone();
    tokio::spawn(async move {
        kept.cancelled().await;
        drop(sender);
    });
    let resolver = Resolver {
        zone,
        upstream: Arc::new(Upstream::with_servers(upstream)),
    };
    tokio::spawn(server::serve(udp, tcp, resolver, stop.clone()));
    udp_addr
}

async fn ask_udp(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0; 4096];
    let n = socket.recv(&mut buffer).await.unwrap();
    buffer.truncate(n);
    buffer
}

#[tokio::test]
async fn cluster_names_are_answered_over_udp_and_tcp() {
    let stop = CancellationToken::new();
    let server = start(Vec::new(), &stop).await;
    let reply = ask_udp(server, &query(1, "echo.default.svc.cluster.local.")).await;
    assert_eq!(
        addresses(&reply),
        (ResponseCode::NoError, vec![Ipv4Addr::new(10, 43, 0, 20)])
    );
    let reply = ask_udp(server, &query(2, "nope.default.svc.cluster.local.")).await;
    assert_eq!(addresses(&reply), (ResponseCode::NXDomain, vec![]));

    // Two queries on one TCP connection.
    let mut stream = TcpStream::connect(server).await.unwrap();
    for id in [3, 4] {
        write_framed(&mut stream, &query(id, "echo.default.svc.cluster.local."))
            .await
            .unwrap();
        let reply = read_framed(&mut stream).await.unwrap();
        assert_eq!(Message::from_vec(&reply).unwrap().id(), id);
        assert_eq!(addresses(&reply).1, vec![Ipv4Addr::new(10, 43, 0, 20)]);
    }
    stop.cancel();
}

#[tokio::test]
async fn other_names_are_relayed_upstream_or_fail() {
    let stop = CancellationToken::new();
    let upstream = fake_upstream().await;
    let server = start(vec![upstream], &stop).await;
    let reply = ask_udp(server, &query(7, "example.com.")).await;
    assert_eq!(Message::from_vec(&reply).unwrap().id(), 7);
    assert_eq!(
        addresses(&reply),
        (ResponseCode::NoError, vec![Ipv4Addr::new(192, 0, 2, 7)])
    );

    let lonely = start(Vec::new(), &stop).await;
    let reply = ask_udp(lonely, &query(8, "example.com.")).await;
    assert_eq!(addresses(&reply), (ResponseCode::ServFail, vec![]));
    stop.cancel();
}
