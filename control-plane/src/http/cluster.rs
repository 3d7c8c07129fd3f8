//! The control plane's own endpoints: this member's view of the Raft group
//! (`skiff cluster status`), membership changes (`skiff cluster add|remove`), backups
//! (`skiff backup save`), health and readiness.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::error::ApiError;

/// `GET /skiff/v1/cluster`: members, leader, term, commit and applied index as this member
/// sees them; on the leader, how far each member's log is replicated. With `?consistent=true`
/// the member first catches up with the leader (what a joining server asks).
pub async fn status(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let store = state.registry.store();
    if query.get("consistent").map(String::as_str) == Some("true") {
        store.read_barrier().await?;
    }
    Ok(Json(view(&state)))
}

/// This member's view of the Raft group (what `GET /skiff/v1/cluster` answers; the dashboard
/// shows it too).
pub(super) fn view(state: &AppState) -> Value {
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
            let role = if status.learners.contains(&m.id) {
                "learner"
            } else {
                "voter"
            };
            json!({"id": m.id, "name": m.name, "peerAddress": m.peer_addr, "role": role,
                   "matched": matched})
        })
        .collect();
    json!({
        "clusterId": cluster.cluster_id,
        "maxId": cluster.max_id,
        "member": {"id": status.id, "name": name_of(status.id)},
        "role": status.role,
        "leader": (status.leader != 0).then(|| json!({"id": status.leader, "name": name_of(status.leader)})),
        "term": status.term,
        "commitIndex": status.commit,
        "appliedIndex": status.applied,
        "revision": store.revision(),
        "members": members,
        "voters": status.voters,
        "learners": status.learners,
        "stopped": status.stopped.as_ref().map(ToString::to_string),
    })
}

/// `POST /skiff/v1/cluster/members` `{"name": ..., "peerAddress": "host:port"}`: adds a member,
/// first as a learner; the leader promotes it to voter once it has caught up.
pub async fn add_member(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let field = |name: &str| {
        body[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::BadRequest(format!("{name}: required")))
    };
    let (name, peer) = (field("name")?, field("peerAddress")?);
    if peer.parse::<std::net::SocketAddr>().is_err() {
        return Err(ApiError::BadRequest(format!(
            "peerAddress: {peer:?} is not IP:PORT"
        )));
    }
    let member = state.registry.store().add_member(name, peer).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": member.id, "name": member.name, "peerAddress": member.peer_addr})),
    ))
}

/// `DELETE /skiff/v1/cluster/members/{name}`: removes a member; it stops serving.
pub async fn remove_member(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.registry.store().remove_member(&name).await?;
    Ok(Json(json!({"removed": name})))
}

/// `GET /healthz`, `/livez`: 200 while this member's store serves; 503 naming the cause once
/// it has stopped (storage failed, removed from the cluster, shutting down).
pub async fn health(State(state): State<AppState>) -> (StatusCode, String) {
    match &state.registry.store().status().borrow().stopped {
        Some(cause) => (StatusCode::SERVICE_UNAVAILABLE, cause.to_string()),
        None => (StatusCode::OK, "ok".into()),
    }
}

/// `GET /readyz`: ready while this member's store serves and knows a leader (it can serve
/// reads and writes); else 503 with the actual reason.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let status = state.registry.store().status().borrow().clone();
    match status.stopped {
        Some(cause) => (StatusCode::SERVICE_UNAVAILABLE, cause.to_string()),
        None if status.leader == 0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader: a majority of the control-plane servers is unreachable".into(),
        ),
        None => match state.registry.encryption().loading() {
            Some(loading) => (StatusCode::SERVICE_UNAVAILABLE, loading.to_string()),
            None => (StatusCode::OK, "ok".into()),
        },
    }
}

/// `GET /skiff/v1/backup`: every key of the store at a linearizable point, checksummed.
pub async fn backup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let bytes = state.registry.store().backup().await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}
