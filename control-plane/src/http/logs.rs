//! `pods/{name}/log`: logs stay on the node; the API server proxies to its agent.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::Value;
use skiff_api::resources;

use super::query::Query;
use super::AppState;
use crate::error::ApiError;

/// Streams a container's log from the node agent that runs the pod.
pub async fn proxy(
    state: &AppState,
    namespace: &str,
    pod_name: &str,
    query: &Query,
) -> Result<Response, ApiError> {
    let pods = resources::by_name("pods").expect("pods are served");
    let pod = state.registry.get(pods, Some(namespace), pod_name).await?;
    let container = pick_container(&pod, pod_name, query.get("container"))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "pod {pod_name} is not scheduled to a node yet, so it has no logs"
            ))
        })?;
    let nodes = resources::by_name("nodes").expect("nodes are served");
    let node = state.registry.get(nodes, None, node_name).await?;
    let endpoint = kubelet_endpoint(&node).ok_or_else(|| {
        ApiError::Unavailable(format!(
            "node {node_name} does not publish a kubelet endpoint"
        ))
    })?;
    let mut url = format!("http://{endpoint}/containerLogs/{namespace}/{pod_name}/{container}?");
    for param in ["follow", "tailLines", "previous", "timestamps"] {
        if let Some(value) = query.get(param) {
            url.push_str(&format!("{param}={value}&"));
        }
    }
    let response = state
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("node {node_name} is unreachable: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let message = response.text().await.unwrap_or_default();
        return Err(match status {
            reqwest::StatusCode::NOT_FOUND => ApiError::BadRequest(format!(
                "container {container:?} in pod {pod_name:?} has no logs yet: {}",
                message.trim()
            )),
            _ => ApiError::Unavailable(format!("node {node_name}: {}", message.trim())),
        });
    }
    let stream = response.bytes_stream().map_err(std::io::Error::other);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The named container, or the only one; several and no name is an error, as in Kubernetes.
fn pick_container(
    pod: &Value,
    pod_name: &str,
    requested: Option<&str>,
) -> Result<String, ApiError> {
    let names: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("name")?.as_str()).collect())
        .unwrap_or_default();
    match requested {
        Some(name) if names.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(ApiError::BadRequest(format!(
            "container {name} is not valid for pod {pod_name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// `InternalIP:kubeletPort` of a node.
fn kubelet_endpoint(node: &Value) -> Option<String> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)?;
    let ip = node
        .pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))?
        .get("address")?
        .as_str()?;
    if ip.contains(':') {
        Some(format!("[{ip}]:{port}"))
    } else {
        Some(format!("{ip}:{port}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_only_container_or_the_named_one() {
        let one = json!({"spec": {"containers": [{"name": "app"}]}});
        assert_eq!(pick_container(&one, "p", None).ok().as_deref(), Some("app"));
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert!(pick_container(&two, "p", None).is_err());
        assert_eq!(
            pick_container(&two, "p", Some("b")).ok().as_deref(),
            Some("b")
        );
        assert!(pick_container(&two, "p", Some("c")).is_err());
    }

    #[test]
    fn finds_the_kubelet_endpoint() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(kubelet_endpoint(&node).as_deref(), Some("127.0.0.1:10250"));
    }
}
