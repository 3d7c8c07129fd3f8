//! The pod `skiff port-forward` forwards to, as kubectl picks it: the one named, or a running
//! pod a workload (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) or Service selects; a
//! Service's ports become the target ports they reach on that pod.

use anyhow::Context;
use skiff_api::k8s_openapi::api::core::v1::{Pod, Service};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_api::selector::LabelSelector;
use skiff_client::{Client, ListParams};

use super::port_forward::PortSpec;

/// The name of the running pod `target` (`NAME` or `TYPE/NAME`) stands for; with a Service,
/// `ports`' remote ports (its ports) become its target ports on that pod.
pub(super) async fn resolve(
    client: &Client,
    namespace: &str,
    target: &str,
    ports: &mut [PortSpec],
) -> anyhow::Result<String> {
    let (kind, name) = target.split_once('/').unwrap_or(("pod", target));
    if name.is_empty() {
        anyhow::bail!("{target:?}: name the pod, as POD or TYPE/NAME");
    }
    let kind = super::kind(kind)?;
    let pod = match kind.kind {
        "Pod" => client.api::<Pod>(Some(namespace)).get(name).await?,
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            let workload = client.get(kind, Some(namespace), name).await?;
            let selector = serde_json::from_value(workload["spec"]["selector"].clone())
                .with_context(|| format!("{target}'s selector"))?;
            selected_pod(client, namespace, &selector, target).await?
        }
        "Service" => {
            let service = client.api::<Service>(Some(namespace)).get(name).await?;
            let selector = metav1::LabelSelector {
                match_labels: service.spec.as_ref().and_then(|s| s.selector.clone()),
                ..Default::default()
            };
            let pod = selected_pod(client, namespace, &selector, target).await?;
            for port in ports.iter_mut() {
                port.remote = target_port(&service, &pod, port.remote)?;
            }
            pod
        }
        _ => anyhow::bail!(
            "cannot forward ports to {}: name a pod, deployment, replicaset, statefulset, daemonset, job or service",
            kind.plural
        ),
    };
    let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
    if phase != "Running" {
        anyhow::bail!("unable to forward port because pod is not running. Current status={phase}");
    }
    Ok(pod.metadata.name.unwrap_or_default())
}

/// A running pod `selector` selects (else one that is not running, for the error).
async fn selected_pod(
    client: &Client,
    namespace: &str,
    selector: &metav1::LabelSelector,
    target: &str,
) -> anyhow::Result<Pod> {
    let selector =
        LabelSelector::from_k8s(selector).with_context(|| format!("{target}'s selector"))?;
    if selector.is_empty() {
        anyhow::bail!("{target} has no selector to find its pods by");
    }
    let (pods, _) = client
        .api::<Pod>(Some(namespace))
        .list(&ListParams::default())
        .await?;
    let mut selected: Vec<Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| selector.matches(&p.metadata.labels.clone().unwrap_or_default()))
        .collect();
    let running = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    selected.sort_by_key(|p| !running(p));
    selected
        .into_iter()
        .next()
        .with_context(|| format!("{target} has no pods"))
}

/// The pod's port that port `port` of `service` reaches, as kubectl maps it: the service
/// port's targetPort (its `port` when unset), a named one looked up in the pod's container
/// ports; a headless Service's ports are the pods'.
fn target_port(service: &Service, pod: &Pod, port: u16) -> anyhow::Result<u16> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let spec = service.spec.clone().unwrap_or_default();
    let service_port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| p.port == i32::from(port))
        .with_context(|| format!("Service {name} does not have a service port {port}"))?;
    if spec.cluster_ip.as_deref() == Some("None") {
        return Ok(port);
    }
    let number = match &service_port.target_port {
        None | Some(IntOrString::Int(0)) => i32::from(port),
        Some(IntOrString::Int(number)) => *number,
        Some(IntOrString::String(named)) => pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(named.as_str()))
            .map(|p| p.container_port)
            .with_context(|| {
                let pod = pod.metadata.name.as_deref().unwrap_or_default();
                format!("Pod '{pod}' does not have a named port '{named}'")
            })?,
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("Service {name} port {port}: target port {number} is not a port"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(cluster_ip: &str, target_port: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"clusterIP": cluster_ip, "selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": target_port},
                {"name": "admin", "port": 9000},
            ]},
        }))
        .unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app", "image": "app.wasm",
                "ports": [{"name": "web", "containerPort": 8080}]}]},
        }))
        .unwrap()
    }

    #[test]
    fn service_ports_become_their_target_ports() {
        let port = |service: &Service, port| target_port(service, &pod(), port);
        let numbered = service("10.43.0.5", json!(8081));
        assert_eq!(port(&numbered, 80).unwrap(), 8081);
        assert_eq!(port(&numbered, 9000).unwrap(), 9000, "unset: the port");
        let named = service("10.43.0.5", json!("web"));
        assert_eq!(port(&named, 80).unwrap(), 8080);
        let headless = service("None", json!(8081));
        assert_eq!(port(&headless, 80).unwrap(), 80);
    }

    #[test]
    fn unknown_service_ports_and_port_names_are_named() {
        let port = |service: &Service, port| target_port(service, &pod(), port);
        let numbered = service("10.43.0.5", json!(8081));
        assert_eq!(
            port(&numbered, 81).unwrap_err().to_string(),
            "Service web does not have a service port 81"
        );
        let named = service("10.43.0.5", json!("metrics"));
        assert_eq!(
            port(&named, 80).unwrap_err().to_string(),
            "Pod 'web-1' does not have a named port 'metrics'"
        );
    }
}
