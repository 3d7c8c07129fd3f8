//! DNS messages in and out: a query is parsed, answered from the [`Zone`] when it names a
//! cluster name, or passed on to the upstream resolvers. Pure, for tests.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::records::{Answer, Location, Wanted, Zone};

/// Seconds clients may cache a cluster record (CoreDNS's `kubernetes` plugin default).
const TTL: u32 = 5;
/// The largest UDP reply without EDNS (RFC 1035); longer ones are truncated so the client
/// asks again over TCP.
const UDP_LIMIT: usize = 512;
/// The DNS header's length.
const HEADER: usize = 12;

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// A name outside the cluster domain: relay the query upstream.
    Forward,
    /// Not a DNS message: say nothing.
    Drop,
}

/// How a query came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The reply to the query `bytes`.
pub fn respond(zone: &Zone, bytes: &[u8], transport: Transport) -> Reply {
    let request = match Message::from_vec(bytes) {
        Ok(request) => request,
        Err(_) if bytes.len() >= HEADER => {
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            return encoded(Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
        }
        Err(_) => return Reply::Drop,
    };
    if request.message_type() != MessageType::Query {
        return Reply::Drop;
    }
    let [query] = request.queries() else {
        return error(&request, ResponseCode::FormErr);
    };
    if request.op_code() != OpCode::Query {
        return error(&request, ResponseCode::NotImp);
    }
    let wanted = match (query.query_class(), query.query_type()) {
        (DNSClass::IN, RecordType::A) => Wanted::A,
        (DNSClass::IN, RecordType::SRV) => Wanted::Srv,
        _ => Wanted::Other,
    };
    let mut response = response_to(&request);
    response.set_authoritative(true);
    let name = query.name().clone();
    match zone.lookup(&name.to_ascii(), wanted) {
        Answer::Foreign => return Reply::Forward,
        Answer::NoName => {
            response.set_response_code(ResponseCode::NXDomain);
        }
        Answer::NoData => {}
        Answer::Addresses(ips) => {
            for ip in ips {
                response.add_answer(Record::from_rdata(name.clone(), TTL, RData::A(A(ip))));
            }
        }
        Answer::Locations(locations) => add_locations(&mut response, &name, &locations),
    }
    let reply = encoded(response.clone());
    match (reply, transport) {
        (Reply::Answer(bytes), Transport::Udp) if bytes.len() > UDP_LIMIT => {
            encoded(response.truncate())
        }
        (reply, _) => reply,
    }
}

/// SERVFAIL for `bytes`, when no upstream resolver answered it.
pub fn server_failure(bytes: &[u8]) -> Reply {
    match Message::from_vec(bytes) {
        Ok(request) => error(&request, ResponseCode::ServFail),
        Err(_) => Reply::Drop,
    }
}

/// Whether `reply` answers `query` (same ID): upstream answers to other queries are ignored.
pub fn answers(query: &[u8], reply: &[u8]) -> bool {
    query.len() >= 2 && reply.len() >= HEADER && query[..2] == reply[..2]
}

fn add_locations(response: &mut Message, name: &Name, locations: &[Location]) {
    let weight = u16::try_from(100 / locations.len().max(1)).unwrap_or(100);
    for location in locations {
        let Ok(target) = Name::from_ascii(format!("{}.", location.target)) else {
            continue;
        };
        let srv = SRV::new(0, weight, location.port, target.clone());
        response.add_answer(Record::from_rdata(name.clone(), TTL, RData::SRV(srv)));
        if let Some(ip) = location.address {
            response.add_additional(Record::from_rdata(target, TTL, RData::A(A(ip))));
        }
    }
}

/// A response with the request's ID, opcode, question and recursion-desired flag.
fn response_to(request: &Message) -> Message {
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .add_queries(request.queries().iter().cloned());
    response
}

fn error(request: &Message, code: ResponseCode) -> Reply {
    let mut response = response_to(request);
    response.set_response_code(code);
    encoded(response)
}

fn encoded(message: Message) -> Reply {
    match message.to_vec() {
        Ok(bytes) => Reply::Answer(bytes),
        Err(err) => {
            tracing::debug!(%err, "cannot encode a DNS reply");
            Reply::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::Query;
    use serde_json::json;
    use skiff_api::k8s_openapi::api::core::v1::Service;

    use super::*;

    fn zone() -> Zone {
        let echo: Service = serde_json::from_value(json!({
            "metadata": {"name": "echo", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 8080}]}}))
        .unwrap();
        Zone::build("cluster.local", [&echo], [])
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::new();
        message
            .set_id(4242)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message.to_vec().unwrap()
    }

    fn answer(reply: Reply) -> Message {
        match reply {
            Reply::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn a_cluster_name_is_answered_with_the_query_id() {
        let reply = answer(respond(
            &zone(),
            &query("echo.default.svc.cluster.local.", RecordType::A),
            Transport::Udp,
        ));
        assert_eq!(reply.id(), 4242);
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert!(reply.authoritative());
        let ips: Vec<_> = reply
            .answers()
            .iter()
            .filter_map(|r| r.data().as_a().map(|a| a.0))
            .collect();
        assert_eq!(ips, vec![Ipv4Addr::new(10, 43, 0, 20)]);
    }

    #[test]
    fn srv_answers_carry_the_target_address() {
        let reply = answer(respond(
            &zone(),
            &query(
                "_http._tcp.echo.default.svc.cluster.local.",
                RecordType::SRV,
            ),
            Transport::Tcp,
        ));
        let srv = reply.answers()[0].data().as_srv().expect("SRV").clone();
        assert_eq!(srv.port(), 8080);
        assert_eq!(srv.target().to_ascii(), "echo.default.svc.cluster.local.");
        assert_eq!(
            reply.additionals()[0].data().as_a().map(|a| a.0),
            Some(Ipv4Addr::new(10, 43, 0, 20))
        );
    }

    #[test]
    fn unknown_cluster_names_are_nxdomain_and_aaaa_is_empty() {
        let zone = zone();
        let missing = answer(respond(
            &zone,
            &query("nope.default.svc.cluster.local.", RecordType::A),
            Transport::Udp,
        ));
        assert_eq!(missing.response_code(), ResponseCode::NXDomain);
        let aaaa = answer(respond(
            &zone,
            &query("echo.default.svc.cluster.local.", RecordType::AAAA),
            Transport::Udp,
        ));
        assert_eq!(aaaa.response_code(), ResponseCode::NoError);
        assert!(aaaa.answers().is_empty());
    }

    #[test]
    fn other_names_are_forwarded_and_garbage_is_refused() {
        let zone = zone();
        assert_eq!(
            respond(&zone, &query("example.com.", RecordType::A), Transport::Udp),
            Reply::Forward
        );
        assert_eq!(respond(&zone, b"\x01", Transport::Udp), Reply::Drop);
        let garbage = answer(respond(
            &zone,
            &[0x12, 0x34, 0xff, 0xff, 0, 9, 0, 0, 0, 0, 0, 0, 1],
            Transport::Udp,
        ));
        assert_eq!(garbage.id(), 0x1234);
        assert_eq!(garbage.response_code(), ResponseCode::FormErr);
    }

    #[test]
    fn a_long_udp_answer_is_truncated() {
        let web: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None"}}))
        .unwrap();
        let addresses: Vec<_> = (1..=60)
            .map(|i| json!({"addresses": [format!("10.42.0.{i}")]}))
            .collect();
        let slice = serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": addresses}))
        .unwrap();
        let zone = Zone::build("cluster.local", [&web], [&slice]);
        let name = "web.default.svc.cluster.local.";
        let udp = answer(respond(&zone, &query(name, RecordType::A), Transport::Udp));
        assert!(udp.truncated());
        assert!(udp.answers().is_empty());
        let tcp = answer(respond(&zone, &query(name, RecordType::A), Transport::Tcp));
        assert_eq!(tcp.answers().len(), 60);
    }
}
