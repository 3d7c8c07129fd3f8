//! Wasm networking end to end on a dev server: the `http-echo` wasi:http component answers
//! HTTP on its containerPort at its pod's IP with its pod's name, the `tcp-echo` guest echoes
//! over WASI sockets, and a tcp-echo told to listen on a port its spec does not declare fails
//! with a clear error in its log. The clients use `status.podIP`, so the test holds whether the
//! node gives pods their own network namespace or shares its own network with them. The guests
//! must be built (scripts/build-guests.sh).

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use skiff_e2e::{repo_root, wait_until, DevServer, Skiff};

const WAIT: Duration = Duration::from_secs(60);

/// Extra `skiff server --dev` arguments choosing how the node networks its pods (empty: the
/// node's default). Each test pod gets a port nothing else uses, so that pods sharing the
/// node's network do not collide either.
const POD_NETWORK_ARGS: &[&str] = &[];

/// The image reference of a built preview 2 example guest.
fn guest(file: &str) -> String {
    let path = repo_root()
        .join("wasm-examples/target/wasm32-wasip2/release")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: build the guests first with scripts/build-guests.sh",
        path.display()
    );
    format!("file:{}", path.display())
}

/// A TCP port nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn apply(cli: &Skiff, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])?;
    Ok(())
}

/// A pod running `image` with `args`, declaring TCP `port`, its name in `POD_NAME`.
fn pod(name: &str, image: &str, port: u16, args: &[String]) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: main
    image: "{image}"
    args: {args:?}
    ports:
    - containerPort: {port}
    env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
"#
    )
}

/// The pod's `status.podIP`, once it has one.
fn pod_ip(cli: &Skiff, pod: &str) -> anyhow::Result<IpAddr> {
    wait_until(&format!("{pod} to have an IP"), WAIT, || {
        let pod = cli.json(&["get", "pod", pod])?;
        Ok(pod["status"]["podIP"]
            .as_str()
            .and_then(|ip| ip.parse().ok()))
    })
}

/// Sends `request` to `ip`:`port` and reads until the peer closes or `len` bytes came.
fn exchange(ip: IpAddr, port: u16, request: &[u8], len: Option<usize>) -> anyhow::Result<String> {
    let stream = TcpStream::connect_timeout(&(ip, port).into(), Duration::from_secs(5))?;
    Ok(skiff_test_support::exchange::exchange(
        stream,
        request,
        len,
        Duration::from_secs(10),
    )?)
}

#[test]
fn wasm_guests_serve_http_and_tcp_on_their_ports_only() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let server = DevServer::start_with(&tmp.path().join("data"), true, POD_NETWORK_ARGS)?;
    let cli = server.cli();
    let (http_port, tcp_port, undeclared) = (free_port()?, free_port()?, free_port()?);

    apply(
        &cli,
        tmp.path(),
        "http",
        &pod("http-echo-a", &guest("http_echo.wasm"), http_port, &[]),
    )?;
    apply(
        &cli,
        tmp.path(),
        "tcp",
        &pod(
            "tcp-echo",
            &guest("tcp-echo.wasm"),
            tcp_port,
            &[tcp_port.to_string()],
        ),
    )?;
    apply(
        &cli,
        tmp.path(),
        "bad",
        &pod(
            "tcp-echo-bad",
            &guest("tcp-echo.wasm"),
            free_port()?,
            &[undeclared.to_string()],
        ),
    )?;

    let get = b"GET /hello HTTP/1.1\r\nHost: http-echo\r\nConnection: close\r\n\r\n";
    let http_ip = pod_ip(&cli, "http-echo-a")?;
    let reply = wait_until("http-echo to answer", WAIT, || {
        Ok(exchange(http_ip, http_port, get, None)
            .ok()
            .filter(|r| r.starts_with("HTTP/1.1 200")))
    })?;
    assert!(reply.ends_with("pod http-echo-a: GET /hello\n"), "{reply}");

    let tcp_ip = pod_ip(&cli, "tcp-echo")?;
    let echoed = wait_until("tcp-echo to echo", WAIT, || {
        Ok(exchange(tcp_ip, tcp_port, b"over wasi sockets\n", Some(18)).ok())
    })?;
    assert_eq!(echoed, "over wasi sockets\n");

    let expected = format!("cannot listen on port {undeclared}: access-denied");
    wait_until("the undeclared port to be refused in the log", WAIT, || {
        let out = cli.run(&["logs", "tcp-echo-bad"])?;
        Ok(out.stdout.contains(&expected).then_some(()))
    })?;
    let bad_ip = pod_ip(&cli, "tcp-echo-bad")?;
    assert!(
        TcpStream::connect_timeout(&(bad_ip, undeclared).into(), Duration::from_secs(5)).is_err(),
        "nothing may listen on the undeclared port"
    );

    // The handler logs each request it served.
    let log = cli.ok(&["logs", "http-echo-a"])?;
    assert!(
        log.contains("http-echo: pod http-echo-a: GET /hello"),
        "{log}"
    );
    Ok(())
}
