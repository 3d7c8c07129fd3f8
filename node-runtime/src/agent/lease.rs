//! The node's Lease in `kube-node-lease`: renewed every heartbeat, it is how the control plane
//! knows the agent is alive (a cheap write, unlike a full Node status).

use serde_json::json;
use skiff_api::k8s_openapi::api::coordination::v1::Lease;
use skiff_api::k8s_openapi::api::core::v1::Node;
use skiff_client::Client;

use super::AgentError;

/// Where node leases live, as in Kubernetes.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

fn micro_now() -> String {
    let now = jiff::Timestamp::now();
    let micros = now.as_microsecond();
    jiff::Timestamp::from_microsecond(micros)
        .unwrap_or(now)
        .to_string()
}

/// Renews (or creates) the lease named after the node, owned by the Node object, claiming
/// `seconds` (its `leaseDurationSeconds`; the control plane's node grace is its own setting).
pub async fn renew(client: &Client, node: &str, seconds: i32) -> Result<(), AgentError> {
    let leases = client.api::<Lease>(Some(LEASE_NAMESPACE));
    let now = micro_now();
    match leases
        .patch(
            node,
            &json!({"spec": {"renewTime": now, "holderIdentity": node, "leaseDurationSeconds": seconds}}),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(err) if err.is_not_found() => {}
        Err(err) => return Err(AgentError::Register(format!("renewing lease: {err}"))),
    }
    let owner = client
        .api::<Node>(None)
        .get(node)
        .await
        .map_err(|e| AgentError::Register(format!("reading node {node}: {e}")))?;
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": owner.metadata.uid}],
        },
        "spec": {"holderIdentity": node, "leaseDurationSeconds": seconds, "renewTime": now},
    }))
    .map_err(|e| AgentError::Register(e.to_string()))?;
    match leases.create(&lease).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_already_exists() => Ok(()),
        Err(err) => Err(AgentError::Register(format!("creating lease: {err}"))),
    }
}
