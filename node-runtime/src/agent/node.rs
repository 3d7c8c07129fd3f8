//! Registering this node and keeping its `Ready` condition fresh.

use skiff_api::time::now_rfc3339;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_api::quantity::{format_bytes, format_cpu_millis};
use skiff_client::Client;

use super::AgentError;

/// What the node offers.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    /// The user's labels and those of the node's runtimes.
    pub labels: BTreeMap<String, String>,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u32,
    /// The kubelet endpoint (log server) as bound.
    pub kubelet: SocketAddr,
    /// `containerRuntimeVersion`: the runtimes' versions, comma-separated.
    pub runtime_version: String,
    /// When this agent became ready (the `Ready` condition's transition time).
    pub ready_since: String,
}

/// The Node's status: capacity, addresses, endpoint, info and a fresh `Ready` condition.
fn status(spec: &NodeSpec) -> serde_json::Value {
    let resources = json!({
        "cpu": format_cpu_millis(spec.cpu_millis),
        "memory": format_bytes(spec.memory_bytes),
        "pods": spec.pods.to_string(),
    });
    let now = now_rfc3339();
    json!({
        "capacity": resources,
        "allocatable": resources,
        "addresses": [
            {"type": "InternalIP", "address": spec.kubelet.ip().to_string()},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.kubelet.port()}},
        "nodeInfo": {
            "kubeletVersion": concat!("v", env!("CARGO_PKG_VERSION"), "-skiff"),
            "kubeProxyVersion": "",
            "containerRuntimeVersion": spec.runtime_version,
            "operatingSystem": std::env::consts::OS,
            "architecture": std::env::consts::ARCH,
            "osImage": "",
            "kernelVersion": "",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
        "conditions": [ready_condition(&now, &spec.ready_since)],
        "phase": "Running",
    })
}

fn ready_condition(heartbeat: &str, transition: &str) -> serde_json::Value {
    json!({
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "skiff agent is posting ready status",
        "lastHeartbeatTime": heartbeat,
        "lastTransitionTime": transition,
    })
}

/// A registration failure: `Refused` when the cluster rejected the join token (retrying cannot help).
fn register_error(err: skiff_client::ClientError) -> AgentError {
    if err.is_unauthorized() {
        AgentError::Refused(err.to_string())
    } else {
        AgentError::Register(err.to_string())
    }
}

/// Creates the Node, or takes over the existing one (an agent restart), and publishes its status.
pub async fn register(client: &Client, spec: &NodeSpec) -> Result<(), AgentError> {
    let nodes = client.api::<Node>(None);
    let mut labels = spec.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), spec.name.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
    }))
    .map_err(|e| AgentError::Register(e.to_string()))?;
    match nodes.create(&node).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {
            nodes
                .patch(&spec.name, &json!({"metadata": {"labels": labels}}))
                .await
                .map_err(register_error)?;
        }
        Err(e) => return Err(register_error(e)),
    }
    nodes
        .patch_status(&spec.name, &json!({"status": status(spec)}))
        .await
        .map_err(register_error)?;
    Ok(())
}

/// Refreshes the `Ready` condition's heartbeat (re-registering if the Node was deleted).
pub async fn heartbeat(client: &Client, spec: &NodeSpec) -> Result<(), AgentError> {
    match client
        .api::<Node>(None)
        .patch_status(&spec.name, &json!({"status": status(spec)}))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => register(client, spec).await,
        Err(e) => Err(register_error(e)),
    }
}
