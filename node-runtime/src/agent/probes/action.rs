//! What one probe does, resolved against its container: the URL of an httpGet (a named
//! port looked up in the container's ports, the host defaulting to the pod's IP), the
//! address of a tcpSocket, the command of an exec.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{Container, Probe};
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::http::HttpGet;
use super::{exec, tcp, Outcome};
use crate::runtime::ContainerRuntime;

/// The container a probe is about: its pod's address, and the runtime that runs it (for exec).
#[derive(Clone)]
pub struct Target {
    /// The pod's IP (`status.podIP`): the host of httpGet and tcpSocket probes that name none.
    pub pod_ip: String,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub container_id: String,
}

/// Why a probe cannot be carried out; every attempt of it fails with this reason.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("the probe has no handler (httpGet, tcpSocket or exec)")]
    NoHandler,
    #[error("port {0:?} is not the name of a containerPort of the container")]
    UnknownPort(String),
    #[error("port {0} is not between 1 and 65535")]
    PortOutOfRange(i32),
    #[error("gRPC probes are not supported by this node")]
    Grpc,
    #[error("the probe's URL {0:?} is not valid")]
    Url(String),
    #[error("the probe's header {name:?} is not valid")]
    Header { name: String },
    #[error("making the HTTP client for the probe: {0}")]
    Client(#[source] reqwest::Error),
}

/// A probe's handler, ready to try.
pub enum Action {
    Http(HttpGet),
    Tcp { host: String, port: u16 },
    Exec(Vec<String>),
}

impl Action {
    /// The handler of `probe` on `container` of a pod at `pod_ip`.
    pub fn resolve(
        probe: &Probe,
        container: &Container,
        pod_ip: &str,
        timeout: Duration,
    ) -> Result<Self, ActionError> {
        if let Some(http) = &probe.http_get {
            let port = port_number(&http.port, container)?;
            let host = bracketed(http.host.as_deref().unwrap_or(pod_ip));
            let scheme = http
                .scheme
                .as_deref()
                .unwrap_or("HTTP")
                .to_ascii_lowercase();
            let path = http.path.as_deref().unwrap_or("/");
            let slash = if path.starts_with('/') { "" } else { "/" };
            let url = format!("{scheme}://{host}:{port}{slash}{path}");
            let headers = http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            return HttpGet::new(&url, headers, timeout).map(Action::Http);
        }
        if let Some(tcp) = &probe.tcp_socket {
            let port = port_number(&tcp.port, container)?;
            let host = tcp.host.clone().unwrap_or_else(|| pod_ip.to_string());
            return Ok(Action::Tcp { host, port });
        }
        if let Some(exec) = &probe.exec {
            return Ok(Action::Exec(exec.command.clone().unwrap_or_default()));
        }
        if probe.grpc.is_some() {
            return Err(ActionError::Grpc);
        }
        Err(ActionError::NoHandler)
    }

    /// One attempt, within `timeout`.
    pub async fn attempt(&self, target: &Target, timeout: Duration) -> Outcome {
        match self {
            Action::Http(http) => http.attempt().await,
            Action::Tcp { host, port } => tcp::attempt(host, *port, timeout).await,
            Action::Exec(command) => exec::attempt(target, command, timeout).await,
        }
    }
}

/// A port number, or the number of the container's port of that name.
fn port_number(port: &IntOrString, container: &Container) -> Result<u16, ActionError> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| ActionError::UnknownPort(name.clone()))?,
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(ActionError::PortOutOfRange(number))
}

/// An IPv6 address in brackets, for a URL; anything else as it is.
fn bracketed(host: &str) -> String {
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container() -> Container {
        serde_json::from_value(json!({"name": "c", "ports": [
            {"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9090}]}))
        .expect("container")
    }

    fn probe(value: serde_json::Value) -> Probe {
        serde_json::from_value(value).expect("probe")
    }

    #[test]
    fn named_ports_resolve_to_the_containers_numbers() {
        let c = container();
        let tcp = probe(json!({"tcpSocket": {"port": "admin"}}));
        match Action::resolve(&tcp, &c, "10.0.0.5", Duration::from_secs(1)) {
            Ok(Action::Tcp { host, port }) => assert_eq!((host.as_str(), port), ("10.0.0.5", 9090)),
            _ => panic!("a tcp action"),
        }
        let http = probe(json!({"httpGet": {"port": "http", "path": "healthz?full=1"}}));
        match Action::resolve(&http, &c, "fd00::5", Duration::from_secs(1)) {
            Ok(Action::Http(get)) => assert_eq!(get.url(), "http://[fd00::5]:8080/healthz?full=1"),
            _ => panic!("an http action"),
        }
        let https =
            probe(json!({"httpGet": {"port": 443, "host": "127.0.0.2", "scheme": "HTTPS"}}));
        match Action::resolve(&https, &c, "10.0.0.5", Duration::from_secs(1)) {
            Ok(Action::Http(get)) => assert_eq!(get.url(), "https://127.0.0.2/"),
            _ => panic!("an http action"),
        }
        let unknown = probe(json!({"tcpSocket": {"port": "metrics"}}));
        let err = Action::resolve(&unknown, &c, "10.0.0.5", Duration::from_secs(1)).err();
        assert!(matches!(err, Some(ActionError::UnknownPort(name)) if name == "metrics"));
        let grpc = probe(json!({"grpc": {"port": 9000}}));
        let err = Action::resolve(&grpc, &c, "10.0.0.5", Duration::from_secs(1)).err();
        assert!(matches!(err, Some(ActionError::Grpc)));
    }
}
