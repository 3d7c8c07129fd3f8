//! Node and user certificates from CertificateSigningRequests: an agent joins with the join
//! token, gets `system:node:<name>` (its CSR shows Approved,Issued) and acts under the node
//! authorizer: writing another node's status or reading a Secret none of its pods uses is a
//! 403. `skiff user create bob --group devs` issues a kubeconfig whose user gets 403 until a
//! RoleBinding names the group, then lists pods. Stock `kubectl certificate approve` approves
//! a user's request through `/approval`, and the signer issues it. A running agent rotates
//! its certificate before it expires, and reconnects with the new one. An agent whose
//! certificate expired while it was stopped gets a new one with its join token, without a
//! restart, and its tunnel (closed by the server at the old certificate's expiry) serves logs
//! again.

use std::time::Duration;

use serde_json::json;
use skiff_client::Kubeconfig;
use skiff_e2e::{kubeconfig_client, kubeconfig_for, kubectl, start_agent, wait_until, DevServer};

const DEVS_VIEW: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: devs-view
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: devs
";

#[test]
fn agents_act_as_their_node_and_users_get_certificates() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("server"), false, &[])?;
    let cli = server.cli();
    let url = server.url();
    let token = server.join_token()?;
    let agent_dir = tmp.path().join("node-a");
    let _agent = start_agent(&url, &token, "node-a", &agent_dir, &[])?;
    cli.wait_nodes_ready(1, Duration::from_secs(30))?;

    let csrs = cli.ok(&["get", "csr"])?;
    assert!(
        csrs.lines().any(|l| l.contains("node-csr-node-a-")
            && l.contains("kubernetes.io/kube-apiserver-client-kubelet")
            && l.contains("system:bootstrap:")
            && l.contains("Approved,Issued")),
        "{csrs}"
    );

    // The node's own credential, from its data dir.
    let pki = agent_dir.join("pki");
    let (cert, key) = (
        std::fs::read_to_string(pki.join("node.crt"))?,
        std::fs::read_to_string(pki.join("node.key"))?,
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pki.join("node.key"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let admin = Kubeconfig::load(&kubeconfig_for(&url).expect("the admin kubeconfig"))?;
    let ca = String::from_utf8(admin.credentials.ca_pem.expect("a CA"))?;
    let node_config = tmp.path().join("node-a.kubeconfig");
    let config = Kubeconfig::embedded("skiff", &url, &ca, "system:node:node-a", &cert, &key);
    std::fs::write(&node_config, config.to_yaml())?;
    let node = kubeconfig_client(&node_config, Duration::from_secs(10))?;

    cli.apply_yaml(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-b\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: unused\nstringData:\n  k: v\n",
    )?;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let patch = |name: &str| {
        node.patch(format!("{url}/api/v1/nodes/{name}/status"))
            .header("Content-Type", "application/merge-patch+json")
            .json(&status)
            .send()
    };
    assert_eq!(patch("node-b")?.status(), 403, "another node's status");
    let secret = node
        .get(format!("{url}/api/v1/namespaces/default/secrets/unused"))
        .send()?;
    assert_eq!(secret.status(), 403, "a Secret no pod of the node uses");
    let all = node.get(format!("{url}/api/v1/secrets")).send()?;
    assert_eq!(all.status(), 403, "every Secret");
    let own = node.get(format!("{url}/api/v1/nodes/node-a")).send()?;
    assert_eq!(own.status(), 200);

    let bob_config = tmp.path().join("bob.kubeconfig");
    let bob_path = bob_config.display().to_string();
    cli.ok(&[
        "user", "create", "bob", "--group", "devs", "--out", &bob_path,
    ])?;
    let mode = std::fs::metadata(&bob_config)?.permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let refused = cli.run(&["--kubeconfig", &bob_path, "get", "pods"])?;
    assert!(!refused.success, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("User \"bob\" cannot list resource \"pods\""),
        "{}",
        refused.stderr
    );
    cli.apply_yaml(DEVS_VIEW)?;
    wait_until("bob lists pods", Duration::from_secs(15), || {
        Ok(cli
            .run(&["--kubeconfig", &bob_path, "get", "pods"])?
            .success
            .then_some(()))
    })?;
    let csrs = cli.ok(&["get", "csr"])?;
    assert!(
        csrs.lines()
            .any(|l| l.contains("user-bob-") && l.contains("Approved,Issued")),
        "{csrs}"
    );

    // A request of carol's waits for a person; stock kubectl approves it.
    let made = skiff_client::certificates::key_and_request("carol", &[])?;
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(&made.request_pem);
    cli.apply_yaml(&format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\n\
         metadata:\n  name: carol\nspec:\n  request: {request}\n  \
         signerName: kubernetes.io/kube-apiserver-client\n  \
         usages: [digital signature, client auth]\n"
    ))?;
    let pending = cli.ok(&["get", "csr", "carol"])?;
    assert!(pending.contains("Pending"), "{pending}");
    let cache = tmp.path().join("kubectl-cache");
    kubectl(&url, &cache, &["certificate", "approve", "carol"])?;
    wait_until("carol's certificate", Duration::from_secs(15), || {
        Ok(cli
            .ok(&["get", "csr", "carol"])?
            .contains("Approved,Issued")
            .then_some(()))
    })?;
    Ok(())
}

/// A running agent renews its certificate (here a 60 s one, at 70–90% of its lifetime: long
/// enough that a renewal on a loaded machine lands before the expiry it races). Once
/// the first certificate has expired, the server, which checks a certificate on every
/// request, still hears from the node, and so does a restarted server (every connection
/// dropped): the agent's new connections present the renewed certificate. The tunnel the
/// first certificate opened is closed by the server when that certificate expires.
#[test]
fn a_running_agent_rotates_its_certificate() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut server = DevServer::start_with(
        &tmp.path().join("server"),
        false,
        &["--cluster-signing-duration", "60s"],
    )?;
    let cli = server.cli();
    let token = server.join_token()?;
    let agent_dir = tmp.path().join("node-a");
    let _agent = start_agent(&server.url(), &token, "node-a", &agent_dir, &[])?;
    cli.wait_nodes_ready(1, Duration::from_secs(30))?;

    let cert_path = agent_dir.join("pki").join("node.crt");
    let first = std::fs::read_to_string(&cert_path)?;
    let first_expiry = not_after(&first)?;
    let renewed = wait_until(
        "the certificate to be renewed",
        Duration::from_secs(75),
        || {
            let now = std::fs::read_to_string(&cert_path)?;
            Ok((now != first).then_some(now))
        },
    )?;
    anyhow::ensure!(
        not_after(&renewed)? > first_expiry,
        "the renewal is no newer"
    );
    wait_until(
        "the first certificate to expire",
        Duration::from_secs(30),
        || Ok((unix_now() > first_expiry).then_some(())),
    )?;

    let lease = |cli: &skiff_e2e::Skiff| lease_version(cli, "node-a");
    // The server checks a certificate's validity on every request, so a keep-alive
    // connection made with the first certificate is refused now: the agent renews its Lease
    // only because it opened new connections with the renewed one.
    let before = lease(&cli)?;
    wait_until(
        "the node to renew its Lease after its first certificate expired",
        Duration::from_secs(40),
        || Ok((lease(&cli)? != before).then_some(())),
    )?;
    // The tunnel the first certificate opened is closed by the server at its expiry (the
    // agent opens the next one with the renewed certificate).
    wait_until(
        "the server to close the tunnel of the expired certificate",
        Duration::from_secs(20),
        || {
            Ok(server
                .log()
                .contains("the certificate that opened it expired")
                .then_some(()))
        },
    )?;
    let before = lease(&cli)?;
    server.terminate()?;
    server.restart()?;
    wait_until(
        "the node to renew its Lease after the restart",
        Duration::from_secs(40),
        || Ok((lease(&cli)? != before).then_some(())),
    )?;
    Ok(())
}

/// An agent stopped (SIGSTOP) until its 60 s certificate has expired, so that it could not
/// renew it, recovers when it continues, without a restart: it gets a new certificate with
/// its join token, renews its Lease again, and serves logs through a new tunnel (the server
/// closed the one the expired certificate opened).
#[test]
fn an_agent_whose_certificate_expired_while_stopped_recovers_with_its_join_token(
) -> anyhow::Result<()> {
    let guest = skiff_e2e::example_guest("ticker")?;
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(
        &tmp.path().join("server"),
        false,
        &["--cluster-signing-duration", "60s"],
    )?;
    let cli = server.cli();
    let token = server.join_token()?;
    let agent_dir = tmp.path().join("node-a");
    // No listener: logs reach the node only through its tunnel.
    let mut agent = start_agent(
        &server.url(),
        &token,
        "node-a",
        &agent_dir,
        &["--kubelet-listen", "none"],
    )?;
    cli.wait_nodes_ready(1, Duration::from_secs(30))?;
    let cert_path = agent_dir.join("pki").join("node.crt");
    let first = std::fs::read_to_string(&cert_path)?;
    let first_expiry = not_after(&first)?;
    // Stopped before its renewal (at 70-90% of the certificate's lifetime), until the
    // certificate expired.
    wait_until("the node's Lease", Duration::from_secs(30), || {
        Ok(lease_version(&cli, "node-a").ok())
    })?;
    agent.pause()?;
    let stopped = lease_version(&cli, "node-a")?;
    anyhow::ensure!(
        std::fs::read_to_string(&cert_path)? == first,
        "the certificate was renewed before the agent was stopped"
    );
    wait_until(
        "the stopped agent's certificate to expire",
        Duration::from_secs(120),
        || Ok((unix_now() > first_expiry).then_some(())),
    )?;
    agent.resume()?;

    let lease_renewed = wait_until(
        "the node to renew its Lease after its certificate expired",
        Duration::from_secs(60),
        || {
            agent.check_running()?;
            Ok((lease_version(&cli, "node-a")? != stopped).then_some(()))
        },
    );
    lease_renewed?;
    let replaced = std::fs::read_to_string(&cert_path)?;
    anyhow::ensure!(
        not_after(&replaced)? > first_expiry,
        "the stored certificate is no newer"
    );
    let log = agent.log();
    anyhow::ensure!(
        log.contains("obtained with the join token"),
        "the agent did not fall back to its join token:\n{log}"
    );
    // The node, marked unreachable while it was stopped (its pods deleted), is Ready again
    // and runs a pod whose log it serves.
    cli.wait_nodes_ready(1, Duration::from_secs(60))?;
    cli.apply_yaml(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: ticker}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: ticker
    image: "file:{}"
    env:
    - {{name: MESSAGE, value: "through the tunnel"}}
"#,
        guest.display()
    ))?;
    let logs = |agent: &mut skiff_e2e::SkiffProcess| -> anyhow::Result<Option<String>> {
        agent.check_running()?;
        let out = cli.run(&["logs", "ticker", "--tail", "1"])?;
        Ok((out.success && out.stdout.contains("through the tunnel")).then_some(out.stdout))
    };
    // Through the tunnel the agent opened with its new certificate.
    wait_until("the ticker's log", Duration::from_secs(60), || {
        logs(&mut agent)
    })?;

    Ok(())
}

/// The resourceVersion of `node`'s Lease: it moves whenever the node renews it.
fn lease_version(cli: &skiff_e2e::Skiff, node: &str) -> anyhow::Result<String> {
    let out = cli.ok(&["get", "lease", node, "-n", "kube-node-lease", "-o", "json"])?;
    let lease: serde_json::Value = serde_json::from_str(&out)?;
    Ok(lease["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// A PEM certificate's notAfter, in Unix seconds.
fn not_after(pem: &str) -> anyhow::Result<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())?;
    Ok(pem.parse_x509()?.validity().not_after.timestamp())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
