//! Service environment variables, as the kubelet sets them: for each Service of the pod's
//! namespace that exists when the container starts (`enableServiceLinks`, default true) and
//! the `kubernetes` Service of `default` always, `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT`,
//! `{NAME}_SERVICE_PORT_{PORT}` and the Docker-link variables (`{NAME}_PORT=tcp://IP:PORT`,
//! `{NAME}_PORT_{P}_TCP` with `_PROTO`, `_PORT`, `_ADDR`). Headless Services have none.

use skiff_api::k8s_openapi::api::core::v1::{Pod, Service};
use skiff_client::{Client, ListParams};

use super::env::EnvError;

/// The namespace and name of the Service every pod gets variables for.
const MASTER_SERVICE: (&str, &str) = ("default", "kubernetes");

/// The Service variables of `pod`, Services in name order.
pub async fn for_pod(client: &Client, pod: &Pod) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut services = Vec::new();
    if links {
        services = list(client, namespace).await?;
    }
    if namespace != MASTER_SERVICE.0 || !links {
        let master = list(client, MASTER_SERVICE.0).await?;
        services.retain(|s| s.metadata.name.as_deref() != Some(MASTER_SERVICE.1));
        services.extend(
            master
                .into_iter()
                .filter(|s| s.metadata.name.as_deref() == Some(MASTER_SERVICE.1)),
        );
    }
    services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(services.iter().flat_map(variables).collect())
}

async fn list(client: &Client, namespace: &str) -> Result<Vec<Service>, EnvError> {
    client
        .api::<Service>(Some(namespace))
        .list(&ListParams::default())
        .await
        .map(|(items, _)| items)
        .map_err(|source| EnvError::Api {
            name: "services".into(),
            source,
        })
}

/// `my-svc` → `MY_SVC`.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The variables of one Service; none if it has no virtual IP.
pub fn variables(service: &Service) -> Vec<(String, String)> {
    let spec = service.spec.clone().unwrap_or_default();
    let ip = match spec.cluster_ip.as_deref() {
        Some(ip) if !ip.is_empty() && ip != "None" => ip.to_string(),
        _ => return Vec::new(),
    };
    let prefix = env_name(service.metadata.name.as_deref().unwrap_or_default());
    let ports = spec.ports.unwrap_or_default();
    let mut vars = vec![(format!("{prefix}_SERVICE_HOST"), ip.clone())];
    if let Some(first) = ports.first() {
        vars.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    }
    for port in &ports {
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            vars.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(name)),
                port.port.to_string(),
            ));
        }
    }
    for (i, port) in ports.iter().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let url = format!("{}://{ip}:{}", protocol.to_ascii_lowercase(), port.port);
        if i == 0 {
            vars.push((format!("{prefix}_PORT"), url.clone()));
        }
        let link = format!(
            "{prefix}_PORT_{}_{}",
            port.port,
            protocol.to_ascii_uppercase()
        );
        vars.push((link.clone(), url));
        vars.push((format!("{link}_PROTO"), protocol.to_ascii_lowercase()));
        vars.push((format!("{link}_PORT"), port.port.to_string()));
        vars.push((format!("{link}_ADDR"), ip.clone()));
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn variables_follow_the_kubelet() {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "redis-primary"},
            "spec": {"clusterIP": "10.43.0.11", "ports": [
                {"name": "redis", "port": 6379},
                {"name": "metrics-http", "port": 9121, "protocol": "UDP"}]}
        }))
        .unwrap();
        let vars: Vec<String> = variables(&service)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            vars,
            [
                "REDIS_PRIMARY_SERVICE_HOST=10.43.0.11",
                "REDIS_PRIMARY_SERVICE_PORT=6379",
                "REDIS_PRIMARY_SERVICE_PORT_REDIS=6379",
                "REDIS_PRIMARY_SERVICE_PORT_METRICS_HTTP=9121",
                "REDIS_PRIMARY_PORT=tcp://10.43.0.11:6379",
                "REDIS_PRIMARY_PORT_6379_TCP=tcp://10.43.0.11:6379",
                "REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp",
                "REDIS_PRIMARY_PORT_6379_TCP_PORT=6379",
                "REDIS_PRIMARY_PORT_6379_TCP_ADDR=10.43.0.11",
                "REDIS_PRIMARY_PORT_9121_UDP=udp://10.43.0.11:9121",
                "REDIS_PRIMARY_PORT_9121_UDP_PROTO=udp",
                "REDIS_PRIMARY_PORT_9121_UDP_PORT=9121",
                "REDIS_PRIMARY_PORT_9121_UDP_ADDR=10.43.0.11",
            ]
        );
    }

    #[test]
    fn headless_services_have_no_variables() {
        let headless: Service = serde_json::from_value(json!({
            "metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}
        }))
        .unwrap();
        assert!(variables(&headless).is_empty());
    }
}
