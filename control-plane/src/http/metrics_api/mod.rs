//! `metrics.k8s.io/v1beta1`, served by the API server itself as metrics-server would serve it:
//! `NodeMetrics` and `PodMetrics` (get and list, pods by namespace, label selectors), for
//! `kubectl top` and `skiff top`. Each request reads the summaries (`/stats/summary`) of the
//! nodes it needs through the agents' tunnels; the agents rate CPU over their last two
//! readings (10 s apart), so a request needs no history here.

mod objects;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use skiff_api::resources;
use skiff_api::stats::Summary;

use super::query::Query;
use super::{agent_conn, AppState};
use crate::error::ApiError;

/// How long one node's agent may take to answer its summary before it is left out.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a summary that is read.
const MAX_SUMMARY_BYTES: usize = 64 << 20;

/// What a `metrics.k8s.io/v1beta1` path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Nodes(Option<&'a str>),
    Pods {
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    },
}

fn target(rest: &str) -> Option<Target<'_>> {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["nodes"] => Some(Target::Nodes(None)),
        ["nodes", name] => Some(Target::Nodes(Some(name))),
        ["pods"] => Some(Target::Pods {
            namespace: None,
            name: None,
        }),
        ["namespaces", ns, "pods"] => Some(Target::Pods {
            namespace: Some(ns),
            name: None,
        }),
        ["namespaces", ns, "pods", name] => Some(Target::Pods {
            namespace: Some(ns),
            name: Some(name),
        }),
        _ => None,
    }
}

/// `GET /apis/metrics.k8s.io/v1beta1/{rest}`.
pub async fn get(State(state): State<AppState>, Path(rest): Path<String>, uri: Uri) -> Response {
    let result = async {
        let target =
            target(&rest).ok_or_else(|| ApiError::UnknownResource(uri.path().to_string()))?;
        let query = Query::parse(uri.query());
        match target {
            Target::Nodes(name) => nodes(&state, name, &query).await,
            Target::Pods { namespace, name } => pods(&state, namespace, name, &query).await,
        }
    }
    .await;
    result.map_or_else(IntoResponse::into_response, |v| Json(v).into_response())
}

fn not_found(resource: &str, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: format!("{resource}.metrics.k8s.io"),
        name: name.to_string(),
    }
}

async fn nodes(state: &AppState, name: Option<&str>, query: &Query) -> Result<Value, ApiError> {
    let kind = resources::by_name("nodes").expect("nodes are served");
    let nodes = match name {
        Some(name) => vec![state.registry.get(kind, None, name).await?],
        None => {
            state
                .registry
                .list(kind, None, &query.list_options()?)
                .await?
                .0
        }
    };
    let names: Vec<&str> = nodes.iter().filter_map(object_name).collect();
    let summaries = summaries(state, &names).await;
    let now = skiff_api::time::now_rfc3339();
    let items: Vec<Value> = nodes
        .iter()
        .filter_map(|node| {
            let summary = summaries.get(object_name(node)?)?;
            objects::node_metrics(node, &summary.node, &now)
        })
        .collect();
    match name {
        Some(name) => items
            .into_iter()
            .next()
            .ok_or_else(|| not_found("nodes", name)),
        None => Ok(objects::list("NodeMetrics", items)),
    }
}

async fn pods(
    state: &AppState,
    namespace: Option<&str>,
    name: Option<&str>,
    query: &Query,
) -> Result<Value, ApiError> {
    let kind = resources::by_name("pods").expect("pods are served");
    let pods = match name {
        Some(name) => vec![state.registry.get(kind, namespace, name).await?],
        None => {
            state
                .registry
                .list(kind, namespace, &query.list_options()?)
                .await?
                .0
        }
    };
    let mut nodes: Vec<&str> = pods.iter().filter_map(node_of).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let summaries = summaries(state, &nodes).await;
    let now = skiff_api::time::now_rfc3339();
    let items: Vec<Value> = pods
        .iter()
        .filter_map(|pod| {
            let summary = summaries.get(node_of(pod)?)?;
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str)?;
            let stats = summary.pods.iter().find(|p| p.pod_ref.uid == uid)?;
            objects::pod_metrics(pod, stats, &now)
        })
        .collect();
    match name {
        Some(name) => items
            .into_iter()
            .next()
            .ok_or_else(|| not_found("pods", name)),
        None => Ok(objects::list("PodMetrics", items)),
    }
}

/// The node a pod is bound to, if any.
fn node_of(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn object_name(object: &Value) -> Option<&str> {
    object.pointer("/metadata/name").and_then(Value::as_str)
}

/// The summaries of `nodes`, read at once; a node that does not answer is left out.
async fn summaries(state: &AppState, nodes: &[&str]) -> HashMap<String, Summary> {
    let reads = nodes.iter().map(|node| async move {
        let summary = tokio::time::timeout(SCRAPE_TIMEOUT, summary(state, node)).await;
        match summary {
            Ok(Ok(summary)) => Some((node.to_string(), summary)),
            Ok(Err(err)) => {
                tracing::debug!(%node, %err, "no usage summary from the node");
                None
            }
            Err(_) => {
                tracing::debug!(%node, "the node's usage summary timed out");
                None
            }
        }
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn summary(state: &AppState, node: &str) -> Result<Summary, ApiError> {
    let response =
        agent_conn::send(state, node, Method::GET, "/stats/summary", Body::empty()).await?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), MAX_SUMMARY_BYTES)
        .await
        .map_err(|e| ApiError::Unavailable(format!("node {node}: reading its summary: {e}")))?;
    if status != StatusCode::OK {
        return Err(ApiError::Unavailable(format!(
            "node {node} answered its summary with {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::Unavailable(format!("node {node}: its summary: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_nodes_and_pods() {
        assert_eq!(target("nodes"), Some(Target::Nodes(None)));
        assert_eq!(target("nodes/n1"), Some(Target::Nodes(Some("n1"))));
        assert_eq!(
            target("namespaces/shop/pods/web"),
            Some(Target::Pods {
                namespace: Some("shop"),
                name: Some("web")
            })
        );
        assert_eq!(
            target("pods"),
            Some(Target::Pods {
                namespace: None,
                name: None
            })
        );
        assert_eq!(target("namespaces/shop/services"), None);
        assert_eq!(target("nodes/n1/extra"), None);
    }
}
