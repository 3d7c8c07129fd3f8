//! Node tunnels on a real API server: only the node's own credential (`system:node:<name>`)
//! opens its tunnel; through it the server reaches an agent that has no listener (node proxy,
//! logs); a node with neither a tunnel nor a kubelet endpoint is a 503 that names it; a newer
//! tunnel replaces the older; a tunnel opened with a client certificate is closed when the
//! certificate expires, and the node's next one, with a renewed certificate, serves; on the
//! plain-HTTP listener a tunnel opened with a join token is refused with a bad token and
//! closed once its token is deleted.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use serde_json::json;
use skiff_api::join_token::{self, JoinToken};
use skiff_control_plane::{Server, ServerConfig};
use skiff_net::tunnel::PROTOCOL;
use tokio_util::sync::CancellationToken;

use crate::common::TlsServer;

const DEADLINE: Duration = Duration::from_secs(15);

/// `GET .../nodes/{node}/tunnel` upgraded, by `client`, with `token` as the bearer if given.
async fn open(
    server: &TlsServer,
    client: &reqwest::Client,
    node: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .get(format!("{}/skiff/v1/nodes/{node}/tunnel", server.url()))
        .header("Connection", "upgrade")
        .header("Upgrade", PROTOCOL);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

fn n1(server: &TlsServer) -> reqwest::Client {
    server.user("system:node:n1", &["system:nodes"])
}

/// An agent that has no listener: `name` answers `/healthz` through its tunnel.
async fn agent(server: &TlsServer, name: &'static str) -> CancellationToken {
    agent_as(server, &n1(server), name).await.0
}

/// As `agent`, with `client`'s credential; with the task serving the tunnel, which ends when
/// the tunnel closes.
async fn agent_as(
    server: &TlsServer,
    client: &reqwest::Client,
    name: &'static str,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let response = open(server, client, "n1", None).await;
    assert_eq!(response.status(), 101);
    let io = response.upgrade().await.expect("upgraded");
    let app = Router::new().route("/healthz", get(move || async move { name }));
    let stop = CancellationToken::new();
    let serving = tokio::spawn(skiff_net::tunnel::serve(io, app, stop.clone()));
    (stop, serving)
}

/// Creates node n1 publishing no kubelet endpoint (port 0): an agent with no listener.
async fn listenerless_n1(server: &TlsServer) {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.9.9.9"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
    let created = n1(server)
        .post(format!("{}/api/v1/nodes", server.url()))
        .json(&node)
        .send()
        .await
        .expect("node");
    assert_eq!(created.status(), 201);
}

/// Polls the node proxy's `/healthz` of n1 until it answers `expected`.
async fn wait_proxied(server: &TlsServer, expected: &str) {
    wait_answer(&server.admin(), &server.url(), expected).await;
}

/// Polls n1's `/healthz` through the node proxy of the server at `base`, as `admin`, until it
/// answers 200 with `expected`.
async fn wait_answer(admin: &reqwest::Client, base: &str, expected: &str) {
    let url = format!("{base}/api/v1/nodes/n1/proxy/healthz");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        let response = admin.get(&url).send().await.expect("proxy");
        let code = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if code == 200 && body == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {expected:?} through the tunnel: {code} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_node_credential_opens_a_tunnel() {
    let server = TlsServer::start().await;
    let token = server.join_token().await;
    let anonymous = server.anonymous();
    assert_eq!(open(&server, &anonymous, "n1", None).await.status(), 401);
    let forged = skiff_api::join_token::JoinToken::from_random([9; 22]).to_string();
    assert_eq!(
        open(&server, &anonymous, "n1", Some(&forged))
            .await
            .status(),
        401
    );
    // The join token is shared by every new node: it may not speak for one.
    assert_eq!(
        open(&server, &anonymous, "n1", Some(&token)).await.status(),
        403
    );
    let n2 = server.user("system:node:n2", &["system:nodes"]);
    assert_eq!(open(&server, &n2, "n1", None).await.status(), 403);
    // The node's own credential without the upgrade is a bad request, not a tunnel.
    let plain = n1(&server)
        .get(format!("{}/skiff/v1/nodes/n1/tunnel", server.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(plain.status(), 400);
    assert_eq!(open(&server, &n1(&server), "n1", None).await.status(), 101);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reaches_a_listenerless_node_through_its_latest_tunnel() {
    let server = TlsServer::start().await;
    listenerless_n1(&server).await;
    let proxy = format!("{}/api/v1/nodes/n1/proxy/healthz", server.url());
    let unreachable = server.admin().get(&proxy).send().await.expect("proxy");
    assert_eq!(unreachable.status(), 503);
    let message = unreachable.text().await.unwrap_or_default();
    assert!(message.contains("node n1 has no tunnel"), "{message}");

    let first = agent(&server, "first").await;
    wait_proxied(&server, "first").await;
    // The agent dials again (a server that lost it, a network path that changed): the newer
    // tunnel is used, and the older one is let go.
    let _second = agent(&server, "second").await;
    wait_proxied(&server, "second").await;
    first.cancel();
    wait_proxied(&server, "second").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_closes_when_its_certificate_expires() {
    let server = TlsServer::start().await;
    listenerless_n1(&server).await;
    let validity = Duration::from_secs(2);
    let expiring = server.user_for("system:node:n1", &["system:nodes"], validity);
    let opened = std::time::Instant::now();
    let (_stop, serving) = agent_as(&server, &expiring, "expiring").await;
    wait_proxied(&server, "expiring").await;
    // The server closes it once the certificate has expired (notAfter is whole seconds).
    let _ = tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("the tunnel closes when its certificate expires")
        .expect("joined");
    assert!(
        opened.elapsed() >= validity - Duration::from_secs(1),
        "closed at {:?}, before the certificate expired",
        opened.elapsed()
    );
    // The agent's next tunnel, with its renewed certificate, serves.
    let renewed = server.user_for(
        "system:node:n1",
        &["system:nodes"],
        Duration::from_secs(3600),
    );
    let (_stop, _serving) = agent_as(&server, &renewed, "renewed").await;
    wait_proxied(&server, "renewed").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_token_tunnel_on_plain_http_closes_once_its_token_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = "127.0.0.1:0".parse().expect("addr");
    let server = Server::start(ServerConfig::new("test", dir.path().to_path_buf(), listen))
        .await
        .expect("server");
    let base = server.url();
    let http = reqwest::Client::new();
    let tunnel_url = format!("{base}/skiff/v1/nodes/n1/tunnel");
    let open = |token: String| {
        http.get(&tunnel_url)
            .header("Connection", "upgrade")
            .header("Upgrade", PROTOCOL)
            .bearer_auth(token)
            .send()
    };
    let token = JoinToken::from_random([5; 22]);
    let secrets = format!("{base}/api/v1/namespaces/{}/secrets", join_token::NAMESPACE);
    let created = http
        .post(&secrets)
        .json(&token.to_secret(None, "test"))
        .send()
        .await
        .expect("token");
    assert_eq!(created.status(), 201);
    let forged = JoinToken::from_random([6; 22]).to_string();
    assert_eq!(open(forged).await.expect("request").status(), 401);
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}}});
    let registered = http
        .post(format!("{base}/api/v1/nodes"))
        .bearer_auth(token.to_string())
        .json(&node)
        .send()
        .await
        .expect("node");
    assert_eq!(registered.status(), 201);

    let response = open(token.to_string()).await.expect("request");
    assert_eq!(response.status(), 101);
    let io = response.upgrade().await.expect("upgraded");
    let app = Router::new().route("/healthz", get(|| async { "joined" }));
    let serving = tokio::spawn(skiff_net::tunnel::serve(io, app, CancellationToken::new()));
    wait_answer(&http, &base, "joined").await;
    let deleted = http
        .delete(format!("{secrets}/{}", token.secret_name()))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    // The server checks the token again every 10 s and closes the tunnel at the first refusal.
    let _ = tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("the tunnel closes once its token is deleted")
        .expect("joined");
    // The server lets the tunnel go: n1 is unreachable again (once its closing is seen).
    let proxied = format!("{base}/api/v1/nodes/n1/proxy/healthz");
    tokio::time::timeout(DEADLINE, async {
        while http.get(&proxied).send().await.expect("proxy").status() != 503 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("n1 answers 503 once its tunnel is closed");
    server.shutdown().await;
}
