//! Registering this node and keeping its `Ready` condition fresh.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::json;
use skiff_api::k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeRuntimeHandler,
    NodeStatus, NodeSystemInfo,
};
use skiff_api::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use skiff_api::quantity::{format_bytes, format_cpu_millis};
use skiff_api::requests::Resources;
use skiff_client::Client;

use super::eviction::MemoryPressure;
use super::status;
use super::AgentError;

/// What the node offers.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    /// The user's labels and those of the node's runtimes.
    pub labels: BTreeMap<String, String>,
    /// What the node tells the control plane beyond labels (its local-path storage root).
    pub annotations: BTreeMap<String, String>,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u32,
    /// What pods may request of it.
    pub allocatable: Resources,
    /// The node's address, published as its `InternalIP`.
    pub node_ip: IpAddr,
    /// The port of the kubelet endpoint (logs, exec, images) as bound; 0: the agent has no
    /// listener and is reached through its tunnels alone.
    pub kubelet_port: u16,
    /// `containerRuntimeVersion`: the runtimes' versions, comma-separated.
    pub runtime_version: String,
    /// The RuntimeClass handlers the node serves (its runtimes' names).
    pub runtime_handlers: Vec<String>,
    /// When this agent became ready (the `Ready` condition's transition time).
    pub ready_since: Time,
    /// Whether the node is short of memory, as the eviction manager last found it.
    pub memory_pressure: Arc<MemoryPressure>,
}

/// The Node's status: capacity, allocatable, addresses, endpoint, info, runtime handlers and
/// fresh `Ready` and `MemoryPressure` conditions.
pub(super) fn node_status(spec: &NodeSpec) -> NodeStatus {
    let resources = |cpu_millis: u64, memory_bytes: u64, pods: u64| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(format_cpu_millis(cpu_millis))),
            ("memory".to_string(), Quantity(format_bytes(memory_bytes))),
            ("pods".to_string(), Quantity(pods.to_string())),
        ])
    };
    let allocatable = &spec.allocatable;
    let address = |kind: &str, address: String| NodeAddress {
        type_: kind.to_string(),
        address,
    };
    NodeStatus {
        capacity: Some(resources(
            spec.cpu_millis,
            spec.memory_bytes,
            u64::from(spec.pods),
        )),
        allocatable: Some(resources(
            allocatable.cpu_millis,
            allocatable.memory_bytes,
            allocatable.pods,
        )),
        addresses: Some(vec![
            address("InternalIP", spec.node_ip.to_string()),
            address("Hostname", spec.name.clone()),
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(spec.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            kubelet_version: concat!("v", env!("CARGO_PKG_VERSION"), "-skiff").into(),
            container_runtime_version: spec.runtime_version.clone(),
            operating_system: std::env::consts::OS.into(),
            architecture: skiff_api::platform::go_architecture().into(),
            ..Default::default()
        }),
        runtime_handlers: Some(
            spec.runtime_handlers
                .iter()
                .map(|name| NodeRuntimeHandler {
                    name: Some(name.clone()),
                    features: None,
                })
                .collect(),
        ),
        conditions: Some(vec![
            NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("skiff agent is posting ready status".into()),
                last_heartbeat_time: Some(status::now()),
                last_transition_time: Some(spec.ready_since.clone()),
            },
            spec.memory_pressure.condition(),
        ]),
        phase: Some("Running".into()),
        ..Default::default()
    }
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
    let node = Node {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            labels: Some(labels.clone()),
            annotations: Some(spec.annotations.clone()),
            ..Default::default()
        },
        spec: Some(Default::default()),
        status: None,
    };
    match nodes.create(&node).await {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {
            nodes
                .patch(
                    &spec.name,
                    &json!({"metadata": {"labels": labels, "annotations": spec.annotations}}),
                )
                .await
                .map_err(register_error)?;
        }
        Err(e) => return Err(register_error(e)),
    }
    nodes
        .patch_status(&spec.name, &json!({"status": node_status(spec)}))
        .await
        .map_err(register_error)?;
    Ok(())
}

/// Writes `status` (the Node's, fresh from [`node_status`]), re-registering if the Node was
/// deleted.
pub(super) async fn report(
    client: &Client,
    spec: &NodeSpec,
    status: NodeStatus,
) -> Result<(), AgentError> {
    match client
        .api::<Node>(None)
        .patch_status(&spec.name, &json!({ "status": status }))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => register(client, spec).await,
        Err(e) => Err(register_error(e)),
    }
}
