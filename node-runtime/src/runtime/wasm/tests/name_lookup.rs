//! A guest's name lookups go through its pod's resolver, from the pod's network namespace:
//! net-client in a pod with its own namespace resolves the short name `echo` through the
//! search list to a fake cluster DNS listening on 127.0.0.1:53 of that namespace only, and
//! reaches tcp-echo there. The example guests must be built (scripts/build-guests.sh).

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use nix::sched::{setns, CloneFlags};

use super::net::{example, free_port, new_netns, tcp};
use super::*;
use crate::runtime::{DnsConfig, PodNetwork};

/// The only name the fake DNS knows.
const ECHO: &str = "echo.default.svc.cluster.local.";

/// Answers A queries for [`ECHO`] with 127.0.0.1 and NXDOMAIN for the rest, on 127.0.0.1:53
/// of `netns`, until `stop`; the names it was asked, in order.
fn fake_dns(netns: Arc<OwnedFd>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    let (bound, ready) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        setns(&*netns, CloneFlags::CLONE_NEWNET).expect("enter the namespace");
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 53)).expect("bind :53 in the namespace");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        bound.send(()).expect("tell");
        let mut asked = Vec::new();
        let mut buffer = [0; 512];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let request = Message::from_vec(&buffer[..n]).expect("a query");
            let name = request.queries()[0].name().clone();
            asked.push(name.to_ascii());
            let mut reply = request.clone();
            reply.set_message_type(MessageType::Response);
            if name.to_ascii() == ECHO {
                reply.add_answer(Record::from_rdata(
                    name,
                    5,
                    RData::A(A(Ipv4Addr::LOCALHOST)),
                ));
            } else {
                reply.set_response_code(ResponseCode::NXDomain);
            }
            socket
                .send_to(&reply.to_vec().expect("encode"), peer)
                .expect("reply");
        }
        asked
    });
    ready.recv().expect("the fake DNS is up");
    server
}

#[tokio::test]
async fn a_guest_resolves_a_short_name_through_its_pods_search_list() {
    let f = fixture().await;
    let netns = Arc::new(new_netns());
    let stop = Arc::new(AtomicBool::new(false));
    let dns = fake_dns(netns.clone(), stop.clone());
    let sandbox = f
        .runtime
        .run_pod_sandbox(&PodSandboxConfig {
            network: Some(PodNetwork {
                ip: "10.244.0.9".parse().expect("ip"),
                netns,
            }),
            uid: "dns-pod".into(),
            namespace: "default".into(),
            name: "dns-pod".into(),
            labels: Default::default(),
            log_directory: f.dir.path().join("logs-dns"),
            hostname: "dns-pod".into(),
            dns: Some(DnsConfig {
                nameservers: vec!["127.0.0.1".parse().expect("ip")],
                searches: vec![
                    "default.svc.cluster.local".into(),
                    "svc.cluster.local".into(),
                    "cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
            }),
        })
        .await
        .expect("sandbox");
    let port = free_port();
    let echo = f
        .create_with_ports(
            &sandbox,
            "echo",
            &example("tcp-echo.wasm"),
            tcp(port),
            &[&port.to_string()],
            &[],
        )
        .await
        .expect("create echo");
    f.runtime.start_container(&echo).await.expect("start echo");
    let target = format!("echo:{port}");
    let client = f
        .create_with_ports(
            &sandbox,
            "client",
            &example("net-client.wasm"),
            Vec::new(),
            &[&target, "ping"],
            &[],
        )
        .await
        .expect("create client");
    f.runtime
        .start_container(&client)
        .await
        .expect("start client");

    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = f.log(&client).await;
        if log.contains("replied") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.store(true, Ordering::Relaxed);
    let status = f.runtime.container_status(&client).await.expect("status");
    let log = format!(
        "{log}\n(client {:?}; echo log {:?})",
        status.state,
        f.log(&echo).await
    );
    let asked = dns.join().expect("fake DNS");
    assert!(
        log.contains("net-client: echo (127.0.0.1) replied \"ping\""),
        "client log: {log}\nasked: {asked:?}"
    );
    assert_eq!(asked.first().map(String::as_str), Some(ECHO), "{asked:?}");
    f.runtime
        .remove_pod_sandbox(&sandbox)
        .await
        .expect("remove");
}
