//! Ingress through the real binary: a control plane and one agent in `--pod-network bridge`
//! mode, each on a host of its own (network namespaces on a bridge), the agent serving
//! Ingresses on ports given by `--ingress-http-listen` and `--ingress-https-listen`. Two
//! http-echo Deployments behind two Services and one Ingress: from the control plane's host,
//! Host and path route to the right one, a request no rule matches gets 404, a Service with no
//! ready endpoint 503, and HTTPS with a certificate from a TLS Secret made here is verified by a
//! client that trusts it; a host whose Secret is missing refuses the handshake; the Ingress's
//! status lists the node. Needs root,
//! curl, openssl and the built guests (scripts/build-guests.sh).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use skiff_e2e::{start_agent_on, start_server_on, wait_until, wasip2_guests, Network, Skiff};

const WAIT: Duration = Duration::from_secs(60);
const SERVER: usize = 0;
const NODE: usize = 1;
const HTTP_PORT: u16 = 8000;
const HTTPS_PORT: u16 = 8443;

fn echo(name: &str, guest: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: http-echo
        image: "file:{guest}"
        ports: [{{name: http, containerPort: 8080}}]
        env:
        - name: POD_NAME
          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"#
    )
}

const INGRESS: &str = r#"apiVersion: v1
kind: Service
metadata: {name: echo-none}
spec:
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  tls:
  - {hosts: [a.example.com], secretName: a-tls}
  - {hosts: [b.example.com], secretName: missing-tls}
  rules:
  - host: a.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: echo-a, port: {number: 80}}}}
  - host: b.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: echo-b, port: {name: http}}}}
  - http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: echo-a, port: {number: 80}}}}
      - {path: /b, pathType: Exact, backend: {service: {name: echo-b, port: {number: 80}}}}
      - {path: /none, pathType: Prefix, backend: {service: {name: echo-none, port: {number: 80}}}}
"#;

/// What a curl from `host` got: its exit code, the HTTP status and the body.
struct Answer {
    exit: i32,
    status: String,
    body: String,
}

fn curl(network: &Network, host: usize, args: &[&str]) -> anyhow::Result<Answer> {
    let out = Command::new("ip")
        .args(["netns", "exec", &network.namespace(host)])
        .args(["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .context("running curl (apt-get install curl)")?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Ok(Answer {
        exit: out.status.code().unwrap_or(-1),
        status: status.to_string(),
        body: body.to_string() + &String::from_utf8_lossy(&out.stderr),
    })
}

/// A self-signed certificate for `host` and its key, in PEM.
fn certificate(dir: &Path, host: &str) -> anyhow::Result<(String, String)> {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .context("running openssl (apt-get install openssl)")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        std::fs::read_to_string(cert)?,
        std::fs::read_to_string(key)?,
    ))
}

#[test]
fn ingress_routes_by_host_and_path_over_http_and_https() -> anyhow::Result<()> {
    let release = wasip2_guests(&["http_echo.wasm"])?;
    let guest = release.join("http_echo.wasm");
    let tmp = tempfile::tempdir()?;
    let network = Network::create(2)?;
    let (_server, url) = start_server_on(&network, SERVER, &tmp.path().join("server"), &[])?;
    let cli = Skiff::new(url.clone());
    let release = release.display().to_string();
    let http_listen = format!("0.0.0.0:{HTTP_PORT}");
    let https_listen = format!("0.0.0.0:{HTTPS_PORT}");
    let mut agent = start_agent_on(
        &network,
        NODE,
        &url,
        "a",
        &tmp.path().join("a"),
        &[
            "--allow-image-dir",
            &release,
            "--pod-network",
            "bridge",
            "--ingress-http-listen",
            &http_listen,
            "--ingress-https-listen",
            &https_listen,
        ],
    )?;

    let (cert, key) = certificate(tmp.path(), "a.example.com")?;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "a-tls"}, "stringData": {"tls.crt": cert, "tls.key": key}});
    cli.apply_yaml(&secret.to_string())?;
    let guest = guest.display().to_string();
    cli.apply_yaml(&(echo("echo-a", &guest) + "---\n" + &echo("echo-b", &guest)))?;
    cli.apply_yaml(INGRESS)?;

    let node = network.address(NODE);
    let http = |host: &str, path: &str| {
        curl(
            &network,
            SERVER,
            &[
                "-H",
                &format!("Host: {host}"),
                &format!("http://{node}:{HTTP_PORT}{path}"),
            ],
        )
    };
    let mut last = String::new();
    for (host, path, pod) in [
        ("a.example.com", "/", "pod echo-a-"),
        ("b.example.com", "/anything", "pod echo-b-"),
        ("other.org", "/a/x", "pod echo-a-"),
        ("other.org", "/b", "pod echo-b-"),
    ] {
        wait_until(&format!("{host}{path} to reach {pod}"), WAIT, || {
            agent.check_running()?;
            let answer = http(host, path)?;
            last = format!("{} {}", answer.status, answer.body);
            Ok((answer.status == "200" && answer.body.starts_with(pod)).then_some(()))
        })
        .with_context(|| last.clone())?;
    }
    for (host, path, status) in [
        ("other.org", "/b/x", "404"),
        ("other.org", "/", "404"),
        ("other.org", "/none", "503"),
    ] {
        let answer = http(host, path)?;
        assert_eq!(answer.status, status, "{host}{path}: {}", answer.body);
    }

    // HTTPS: the client trusts only the certificate made above.
    let ca = tmp.path().join("tls.crt").display().to_string();
    let https = |host: &str| {
        curl(
            &network,
            SERVER,
            &[
                "--cacert",
                &ca,
                "--resolve",
                &format!("{host}:{HTTPS_PORT}:{node}"),
                &format!("https://{host}:{HTTPS_PORT}/"),
            ],
        )
    };
    wait_until("https://a.example.com to reach echo-a", WAIT, || {
        let answer = https("a.example.com")?;
        last = format!("{} {} {}", answer.exit, answer.status, answer.body);
        Ok((answer.status == "200" && answer.body.starts_with("pod echo-a-")).then_some(()))
    })
    .with_context(|| last.clone())?;
    let refused = https("b.example.com")?;
    assert!(
        refused.exit != 0 && refused.status == "000",
        "b.example.com's Secret is missing, so its handshake is refused: {} {} {}",
        refused.exit,
        refused.status,
        refused.body
    );

    // The serving node lists itself in the Ingress's status.
    wait_until("the node's address in the Ingress's status", WAIT, || {
        let ingress = cli.json(&["get", "ingress", "web"])?;
        let ips = ingress["status"]["loadBalancer"]["ingress"].clone();
        Ok((ips == json!([{"ip": node.to_string()}])).then_some(()))
    })?;
    let listed = cli.ok(&["get", "ingress"])?;
    assert!(
        listed.contains("web")
            && listed.contains("a.example.com,b.example.com,*")
            && listed.contains(&node.to_string()),
        "{listed}"
    );
    assert!(listed.contains("80, 443"), "{listed}");
    let classes = cli.ok(&["get", "ingressclass"])?;
    assert!(classes.contains("skiff.dev/ingress"), "{classes}");
    Ok(())
}
