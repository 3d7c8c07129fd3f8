//! The agent's own listener end to end (issue 14): it serves HTTPS only, with a serving
//! certificate the control plane issued through a `kubernetes.io/kubelet-serving` CSR (the
//! handshake verifies against the cluster CA and the node's address); a request without a
//! cluster client certificate or a bearer token the API's TokenReview authenticates is a
//! 401, a user the API does not authorize for the node's subresource a 403 naming the user
//! and the subresource, an admin or a user (or ServiceAccount token) RBAC binds a 200. A server with no tunnel from an agent (`skiff agent --no-tunnel`) reaches it over
//! HTTPS on that listener: `skiff logs` works through it, and `skiff exec` into a Linux pod
//! (its WebSocket over TLS).

use std::path::Path;
use std::time::Duration;

use skiff_control_plane::pki::{
    CertRequest, ClusterCa, Usage, ADMIN_CERT, ADMIN_KEY, CA_CERT, TLS_DIR,
};
use skiff_e2e::linux::LinuxCluster;
use skiff_e2e::{example_guest, start_agent, wait_until, DevServer};

const WAIT: Duration = Duration::from_secs(60);

/// An HTTPS client trusting only the cluster CA in `tls`, presenting `identity` (certificate
/// and key PEM) if given.
fn https(tls: &Path, identity: Option<(&str, &str)>) -> anyhow::Result<reqwest::blocking::Client> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(tls.join(CA_CERT))?)?;
    let mut builder = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(
            format!("{cert}{key}").as_bytes(),
        )?);
    }
    Ok(builder.build()?)
}

/// `GET url`'s status and body.
fn get(client: &reqwest::blocking::Client, url: &str) -> anyhow::Result<(u16, String)> {
    let response = client.get(url).send()?;
    Ok((response.status().as_u16(), response.text()?))
}

/// `GET url` with `Authorization: Bearer token`: its status and body.
fn get_with_token(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(u16, String)> {
    let response = client.get(url).bearer_auth(token).send()?;
    Ok((response.status().as_u16(), response.text()?))
}

fn ticker_pod(guest: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: ticker}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: ticker
    image: "file:{guest}"
    env:
    - {{name: MESSAGE, value: "over the listener"}}
"#
    )
}

#[test]
fn the_listener_serves_https_to_cluster_certificates_the_api_authorizes() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let token = server.join_token()?;
    let mut agent = start_agent(&server.url(), &token, "edge", &tmp.path().join("edge"), &[])?;
    let cli = server.cli();
    let port = wait_until("the node's listener", WAIT, || {
        agent.check_running()?;
        let node = cli.json(&["get", "node", "edge"]).ok();
        let port = node
            .as_ref()
            .and_then(|n| n.pointer("/status/daemonEndpoints/kubeletEndpoint/Port"))
            .and_then(serde_json::Value::as_u64)
            .filter(|p| *p > 0);
        Ok(port.filter(|_| {
            agent
                .log()
                .contains("serving the node's listener over HTTPS")
        }))
    })?;
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let tls = server.data_dir.join(TLS_DIR);

    // The handshake verifies against the cluster CA; no client certificate: 401.
    let anonymous = https(&tls, None)?;
    let (status, _) = get(&anonymous, &url("/stats/summary"))?;
    assert_eq!(status, 401, "anonymous");
    // A bearer token the API's TokenReview does not authenticate: 401.
    let (status, _) = get_with_token(&anonymous, &url("/healthz"), "not-a-token")?;
    assert_eq!(status, 401, "garbage token");
    let (status, _) = get_with_token(&anonymous, &url("/healthz"), "a.b.c")?;
    assert_eq!(status, 401, "garbage JWT");
    // The join token (without its `K10<CA hash>::` prefix) authenticates, as
    // system:bootstrap:ID, and buys nothing on the node.
    let bare = token.rsplit("::").next().unwrap_or(&token);
    let (status, body) = get_with_token(&anonymous, &url("/stats/summary"), bare)?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("user=system:bootstrap:"), "{body}");
    // Plain HTTP is not served.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(format!("http://127.0.0.1:{port}/stats/summary"))
        .send();
    assert!(
        plain.is_err(),
        "plain HTTP must not be answered: {:?}",
        plain.map(|r| r.status())
    );

    // A user of the cluster CA that RBAC grants nothing on nodes: 403 naming them.
    let ca = ClusterCa::load(&tls)?.ok_or_else(|| anyhow::anyhow!("no CA in {}", tls.display()))?;
    let eve = ca.issue(&CertRequest {
        common_name: "eve".into(),
        organizations: vec!["devs".into()],
        sans: Vec::new(),
        usage: Usage::Client,
        validity: Duration::from_secs(3600),
    })?;
    let as_eve = https(&tls, Some((&eve.cert_pem, &eve.key_pem)))?;
    let (status, body) = get(&as_eve, &url("/stats/summary"))?;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("user=eve") && body.contains("subresource=stats"),
        "{body}"
    );
    let (status, body) = get(&as_eve, &url("/containerLogs/default/ticker/ticker"))?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("subresource=proxy"), "{body}");

    // The admin (system:masters): 200.
    let admin = https(
        &tls,
        Some((
            &std::fs::read_to_string(tls.join(ADMIN_CERT))?,
            &std::fs::read_to_string(tls.join(ADMIN_KEY))?,
        )),
    )?;
    let (status, body) = get(&admin, &url("/stats/summary"))?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"nodeName\":\"edge\""), "{body}");

    // Bound to system:kubelet-api-admin, eve may read the node's metrics (a subresource her
    // earlier denial did not cache).
    cli.apply_yaml(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: eve-kubelet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kubelet-api-admin"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: eve}]
"#,
    )?;
    let metrics = wait_until("eve's access to /metrics/resource", WAIT, || {
        let (status, body) = get(&as_eve, &url("/metrics/resource"))?;
        Ok((status == 200).then_some(body))
    })?;
    assert!(!metrics.is_empty());

    // A ServiceAccount's token: authenticated by a TokenReview, authorized by RBAC. Without
    // a binding, 403 naming the account; bound to `get` on nodes/proxy, 200.
    cli.apply_yaml(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: scraper}
"#,
    )?;
    let sa_token = wait_until("a token for the scraper account", WAIT, || {
        let out = cli.run(&["create", "token", "scraper"])?;
        Ok(out.success.then(|| out.stdout.trim().to_string()))
    })?;
    let (status, body) = get_with_token(&anonymous, &url("/stats/summary"), &sa_token)?;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("user=system:serviceaccount:default:scraper")
            && body.contains("subresource=stats"),
        "{body}"
    );
    cli.apply_yaml(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-proxy-reader}
rules: [{apiGroups: [""], resources: ["nodes/proxy"], verbs: ["get"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: scraper-node-proxy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-proxy-reader}
subjects: [{kind: ServiceAccount, name: scraper, namespace: default}]
"#,
    )?;
    let body = wait_until("the scraper's access to nodes/proxy", WAIT, || {
        let (status, body) = get_with_token(&anonymous, &url("/healthz"), &sa_token)?;
        Ok((status == 200).then_some(body))
    })?;
    assert_eq!(body, "ok");
    // Only `get` on nodes/proxy: deleting an image is not.
    let response = anonymous
        .delete(url("/images/nothing"))
        .bearer_auth(&sa_token)
        .send()?;
    assert_eq!(response.status().as_u16(), 403, "{:?}", response.text());

    // The serving certificate came through an auto-approved kubelet-serving CSR.
    let csrs = cli.ok(&["get", "csr"])?;
    assert!(
        csrs.lines()
            .any(|l| l.contains("node-serving-edge-") && l.contains("Approved,Issued")),
        "{csrs}"
    );
    Ok(())
}

#[test]
fn a_server_without_the_agents_tunnel_dials_its_listener_over_https() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let token = server.join_token()?;
    let mut agent = start_agent(
        &server.url(),
        &token,
        "edge",
        &tmp.path().join("edge"),
        &["--no-tunnel"],
    )?;
    let cli = server.cli();
    wait_until("the node Ready", WAIT, || {
        agent.check_running()?;
        Ok(cli.ok(&["get", "nodes"])?.contains(" Ready ").then_some(()))
    })?;
    cli.apply_yaml(&ticker_pod(&example_guest("ticker")?.display().to_string()))?;
    let logs = wait_until("the ticker's log, over the listener", WAIT, || {
        agent.check_running()?;
        let out = cli.run(&["logs", "ticker"])?;
        Ok((out.success && out.stdout.contains("over the listener")).then_some(out.stdout))
    })?;
    assert!(logs.contains("tick 0"), "{logs}");
    assert!(
        !agent.log().contains("tunnel to the API server open"),
        "{}",
        agent.log()
    );
    Ok(())
}

#[test]
fn exec_reaches_a_linux_pod_over_the_listener_of_a_node_without_tunnels() -> anyhow::Result<()> {
    let cluster = LinuxCluster::start(&[("edge", &["--runtimes", "wasm,linux", "--no-tunnel"])])?;
    let cli = cluster.cli();
    cli.apply_yaml(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: busybox
    image: "{}"
    command: ["sh", "-c", "sleep 3600"]
"#,
        cluster.busybox
    ))?;
    wait_until("the pod Running", Duration::from_secs(90), || {
        let pod = cli.json(&["get", "pod", "shell"])?;
        Ok((pod["status"]["phase"] == "Running").then_some(()))
    })?;
    let out = cli.run(&["exec", "shell", "--", "sh", "-c", "echo over tls; exit 3"])?;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "over tls\n");
    Ok(())
}
