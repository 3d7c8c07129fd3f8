//! `status.loadBalancer.ingress` of each Ingress a node serves lists that node's address: each
//! agent adds its own, replacing the status at the mirrored `resourceVersion`, so that agents
//! writing at once conflict and the loser adds its address again on the next change it sees.

use std::net::IpAddr;

use skiff_api::k8s_openapi::api::networking::v1::{
    Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus,
};
use skiff_client::Client;

/// Whether `ingress`'s status lists `ip`.
pub fn lists(ingress: &Ingress, ip: IpAddr) -> bool {
    let ip = ip.to_string();
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|entries| entries.iter().any(|e| e.ip.as_deref() == Some(&ip)))
}

/// `ingress` with `ip` added to its status's addresses (kept sorted).
fn with_address(mut ingress: Ingress, ip: IpAddr) -> Ingress {
    let status = ingress.status.get_or_insert_with(IngressStatus::default);
    let balancer = status
        .load_balancer
        .get_or_insert_with(IngressLoadBalancerStatus::default);
    let entries = balancer.ingress.get_or_insert_with(Vec::new);
    entries.push(IngressLoadBalancerIngress {
        ip: Some(ip.to_string()),
        ..Default::default()
    });
    entries.sort_by(|a, b| a.ip.cmp(&b.ip));
    ingress
}

/// Adds `ip` to the status of each of `ingresses` (which do not list it yet).
pub async fn publish(client: &Client, ip: IpAddr, ingresses: Vec<Ingress>) {
    for ingress in ingresses {
        let name = ingress.metadata.name.clone().unwrap_or_default();
        let namespace = ingress.metadata.namespace.clone();
        let api = client.api::<Ingress>(namespace.as_deref());
        if let Err(err) = api.replace_status(&name, &with_address(ingress, ip)).await {
            tracing::debug!(%name, %err, "ingress: adding this node to the status failed; trying again on the next change");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn addresses_are_added_once_and_sorted() {
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}}))
        .unwrap();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(!lists(&ingress, ip));
        let added = with_address(ingress, ip);
        assert!(lists(&added, ip));
        let ips: Vec<_> = added
            .status
            .unwrap()
            .load_balancer
            .unwrap()
            .ingress
            .unwrap()
            .into_iter()
            .filter_map(|e| e.ip)
            .collect();
        assert_eq!(ips, ["10.0.0.2", "10.0.0.9"]);
    }
}
