//! The overview (the Raft members as this server sees them, node count, pod phases) and the
//! nodes page (status, capacity, pods per node).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::Value;

use super::layout;
use super::reader::Reader;
use super::tables::{self, TableOptions};
use crate::http::{cluster, AppState};
use crate::identity::UserInfo;

/// A member whose log is this many entries behind the leader's commit index counts as lagging.
const LAGGING_ENTRIES: u64 = 100;

/// `GET /ui/`.
pub async fn page(State(state): State<AppState>, Extension(user): Extension<UserInfo>) -> Response {
    let reader = Reader::new(&state, &user);
    let cluster = match reader.check_path("/skiff/v1/cluster") {
        Ok(()) => members(&cluster::view(&state)),
        Err(err) => layout::refused(&err),
    };
    let nodes = match reader.list("nodes", None).await {
        Ok(nodes) => html! { p #node-count { (nodes.len()) " nodes, " (ready(&nodes)) " Ready" } },
        Err(err) => layout::refused(&err),
    };
    let pods = match reader.list("pods", None).await {
        Ok(pods) => phases(&pods),
        Err(err) => layout::refused(&err),
    };
    let body = html! {
        h2 { "Control plane" } (cluster)
        h2 { "Nodes" } (nodes)
        h2 { "Pods by phase" } (pods)
    };
    layout::page("Overview", &user, body).into_response()
}

/// The Raft members table, from `GET /skiff/v1/cluster`'s answer.
fn members(view: &Value) -> Markup {
    let leader = view.pointer("/leader/id").and_then(Value::as_u64);
    let commit = view["commitIndex"].as_u64().unwrap_or(0);
    let this = view.pointer("/member/id").and_then(Value::as_u64);
    let on_leader = leader.is_some() && leader == this;
    let health = |member: &Value| -> String {
        if Some(member["id"].as_u64().unwrap_or(0)) == this {
            return match view["stopped"].as_str() {
                Some(cause) => format!("stopped: {cause}"),
                None => "serving".into(),
            };
        }
        match member["matched"].as_u64() {
            _ if !on_leader => "(the leader knows)".into(),
            Some(matched) if commit.saturating_sub(matched) <= LAGGING_ENTRIES => {
                format!("replicating (log at {matched})")
            }
            Some(matched) => format!("lagging: log at {matched} of {commit}"),
            None => "not replicating".into(),
        }
    };
    let empty = Vec::new();
    let list = view["members"].as_array().unwrap_or(&empty);
    html! {
        p #raft-summary {
            "This server: " (view.pointer("/member/name").and_then(Value::as_str).unwrap_or("?"))
            ", " (view["role"].as_str().unwrap_or("?"))
            ", term " (view["term"]) ", commit index " (commit)
            ", applied index " (view["appliedIndex"]) ", revision " (view["revision"])
        }
        table.objects #raft-members {
            thead { tr { th { "NAME" } th { "ID" } th { "ROLE" } th { "LEADER" } th { "PEER ADDRESS" } th { "HEALTH" } } }
            tbody {
                @for member in list {
                    tr {
                        td { (member["name"].as_str().unwrap_or("")) }
                        td { (member["id"]) }
                        td { (member["role"].as_str().unwrap_or("")) }
                        td { @if member["id"].as_u64() == leader { "leader" } }
                        td { (member["peerAddress"].as_str().unwrap_or("")) }
                        td { (health(member)) }
                    }
                }
            }
        }
    }
}

fn ready(nodes: &[Value]) -> usize {
    nodes
        .iter()
        .filter(|n| condition(n, "Ready") == "True")
        .count()
}

/// The status of a node's condition `kind` (`True`, `False`, `Unknown`), or empty.
fn condition<'a>(node: &'a Value, kind: &str) -> &'a str {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .unwrap_or("")
}

fn phases(pods: &[Value]) -> Markup {
    let mut counts = BTreeMap::new();
    for pod in pods {
        let phase = tables::text(pod, "/status/phase");
        *counts
            .entry(if phase.is_empty() { "Pending" } else { phase })
            .or_insert(0) += 1;
    }
    html! {
        table.objects #pod-phases {
            thead { tr { th { "PHASE" } th { "PODS" } } }
            tbody {
                @for (phase, count) in &counts {
                    tr { td { (phase) } td { (count) } }
                }
            }
        }
    }
}

/// `GET /ui/nodes`.
pub async fn nodes(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let nodes = match reader.list("nodes", None).await {
        Ok(nodes) => nodes,
        Err(err) => return layout::error_page("Nodes", &user, &err, html! {}),
    };
    let pods = reader.list("pods", None).await;
    let options = TableOptions {
        namespace_column: false,
        link: None,
    };
    let body = html! {
        (tables::objects("Node", &nodes, &options))
        h2 { "Capacity" }
        table.objects #capacity {
            thead { tr { th { "NODE" } th { "CPU" } th { "MEMORY" } th { "PODS (MAX)" } th { "PODS (BOUND)" } } }
            tbody {
                @for node in &nodes {
                    @let name = tables::text(node, "/metadata/name");
                    tr {
                        td { (name) }
                        td { (tables::text(node, "/status/capacity/cpu")) }
                        td { (tables::text(node, "/status/capacity/memory")) }
                        td { (tables::text(node, "/status/capacity/pods")) }
                        td {
                            @match &pods {
                                Ok(pods) => (pods.iter().filter(|p| tables::text(p, "/spec/nodeName") == name).count()),
                                Err(_) => "(may not list pods)",
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Nodes", &user, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_leader_shows_each_members_replication() {
        let view = json!({
            "member": {"id": 1, "name": "s1"}, "leader": {"id": 1, "name": "s1"},
            "role": "Leader", "term": 3, "commitIndex": 500, "appliedIndex": 500, "revision": 40,
            "members": [
                {"id": 1, "name": "s1", "peerAddress": "127.0.0.1:1", "role": "voter", "matched": 500},
                {"id": 2, "name": "s2", "peerAddress": "127.0.0.1:2", "role": "voter", "matched": 450},
                {"id": 3, "name": "<s3>", "peerAddress": "127.0.0.1:3", "role": "learner", "matched": 10},
            ],
        });
        let html = members(&view).into_string();
        assert!(html.contains("<td>serving</td>"), "{html}");
        assert!(html.contains("replicating (log at 450)"), "{html}");
        assert!(html.contains("lagging: log at 10 of 500"), "{html}");
        assert!(html.contains("&lt;s3&gt;"), "{html}");
        assert!(html.contains("applied index 500"), "{html}");
    }

    #[test]
    fn pods_count_by_phase() {
        let pods = [
            json!({"status": {"phase": "Running"}}),
            json!({"status": {"phase": "Running"}}),
            json!({}),
        ];
        let html = phases(&pods).into_string();
        assert!(html.contains("<td>Pending</td><td>1</td>"), "{html}");
        assert!(html.contains("<td>Running</td><td>2</td>"), "{html}");
    }
}
