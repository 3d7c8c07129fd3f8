//! The control plane's own endpoints: this member's view of the Raft group
//! (`skiff cluster status`), backups (`skiff backup save`) and readiness.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;

/// `GET /skiff/v1/cluster`: members, leader, term, commit and applied index as this member
/// sees them; on the leader, how far each member's log is replicated.
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let store = state.registry.store();
    let status = store.status().borrow().clone();
    let cluster = store.cluster();
    let name_of = |id: u64| cluster.member(id).map(|m| m.name.clone());
    let members: Vec<Value> = cluster
        .members
        .iter()
        .map(|m| {
            let matched = status
                .progress
                .iter()
                .find(|(id, _)| *id == m.id)
                .map(|(_, matched)| *matched);
            json!({"id": m.id, "name": m.name, "peerAddress": m.peer_addr, "matched": matched})
        })
        .collect();
    Json(json!({
        "clusterId": cluster.cluster_id,
        "member": {"id": status.id, "name": name_of(status.id)},
        "role": status.role,
        "leader": (status.leader != 0).then(|| json!({"id": status.leader, "name": name_of(status.leader)})),
        "term": status.term,
        "commitIndex": status.commit,
        "appliedIndex": status.applied,
        "revision": store.revision(),
        "members": members,
    }))
}

/// `GET /readyz`: ready while this member knows a leader (it can serve reads and writes).
pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.registry.store().status().borrow().leader != 0 {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader: a majority of the control-plane servers is unreachable",
        )
    }
}

/// `GET /skiff/v1/backup`: every key of the store at a linearizable point, checksummed.
pub async fn backup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let bytes = state.registry.store().backup().await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
