//! A pod's page: its status and containers, the tail of each container's log (through the
//! API server's log proxy to the node agent) and the pod's events.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde_json::Value;

use super::layout;
use super::reader::Reader;
use super::tables::{self, TableOptions};
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{logs, AppState};
use crate::identity::UserInfo;

/// How many log lines of each container the page shows.
const TAIL_LINES: u32 = 200;
/// The most of one container's log the page reads.
const MAX_LOG_BYTES: usize = 256 << 10;
/// How long the page waits for a node's log answer.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /ui/namespaces/{namespace}/pods/{name}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let reader = Reader::new(&state, &user);
    let pod = match reader.get("pods", Some(&namespace), &name).await {
        Ok(pod) => pod,
        Err(err) => return layout::error_page("Pod", &user, &err, html! {}),
    };
    let mut logs = Vec::new();
    for container in containers(&pod) {
        let text = match reader.check("get", "pods/log", Some(&namespace), &name) {
            Ok(()) => log_tail(&state, &namespace, &name, &container).await,
            Err(err) => Err(err),
        };
        logs.push((container, text));
    }
    let events = match reader.list("events", Some(&namespace)).await {
        Ok(events) => {
            let mut own: Vec<Value> = events
                .into_iter()
                .filter(|e| {
                    tables::text(e, "/involvedObject/kind") == "Pod"
                        && tables::text(e, "/involvedObject/name") == name
                })
                .collect();
            tables::sort_events(&mut own);
            let options = TableOptions {
                namespace_column: false,
                link: None,
            };
            tables::objects("Event", &own, &options)
        }
        Err(err) => layout::refused(&err),
    };
    let body = html! {
        (summary(&pod))
        h2 { "Logs" }
        @for (container, text) in &logs {
            h3 { (container) }
            @match text {
                Ok(text) => pre.log data-container=(container) { (text) },
                Err(err) => (layout::refused(err)),
            }
        }
        h2 { "Events" }
        (events)
    };
    layout::page(&format!("Pod {namespace}/{name}"), &user, body).into_response()
}

/// The pod's status and containers.
fn summary(pod: &Value) -> Markup {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    html! {
        dl.summary {
            dt { "Phase" } dd #phase { (tables::text(pod, "/status/phase")) }
            dt { "Node" } dd { (tables::text(pod, "/spec/nodeName")) }
            dt { "Pod IP" } dd { (tables::text(pod, "/status/podIP")) }
            dt { "Labels" } dd.labels { (tables::labels(pod)) }
        }
        table.objects #containers {
            thead { tr { th { "CONTAINER" } th { "IMAGE" } th { "READY" } th { "RESTARTS" } th { "STATE" } } }
            tbody {
                @for container in containers(pod) {
                    @let status = statuses.iter().find(|s| s["name"] == container.as_str());
                    tr {
                        td { (container) }
                        td { (status.map(|s| tables::text(s, "/image")).unwrap_or("")) }
                        td { (status.and_then(|s| s["ready"].as_bool()).unwrap_or(false)) }
                        td { (status.and_then(|s| s["restartCount"].as_i64()).unwrap_or(0)) }
                        td { (status.map(state_of).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// `running`, `waiting: CrashLoopBackOff`, `terminated: Completed (exit 0)`.
fn state_of(status: &Value) -> String {
    let Some((state, detail)) = status["state"].as_object().and_then(|s| s.iter().next()) else {
        return String::new();
    };
    let reason = tables::text(detail, "/reason");
    match detail["exitCode"].as_i64() {
        Some(code) => format!("{state}: {reason} (exit {code})"),
        None if reason.is_empty() => state.clone(),
        None => format!("{state}: {reason}"),
    }
}

fn containers(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The last lines of a container's log.
async fn log_tail(
    state: &AppState,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<String, ApiError> {
    let raw = format!(
        "tailLines={TAIL_LINES}&container={}",
        form_urlencoded::byte_serialize(container.as_bytes()).collect::<String>()
    );
    let query = Query::parse(Some(&raw));
    let read = async {
        let response = logs::proxy(state, namespace, pod, &query).await?;
        axum::body::to_bytes(response.into_body(), MAX_LOG_BYTES)
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading the log of {container}: {e}")))
    };
    let bytes = tokio::time::timeout(LOG_TIMEOUT, read)
        .await
        .map_err(|_| {
            ApiError::Unavailable(format!("the node did not send {container}'s log in time"))
        })??;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_show_restarts_and_state() {
        let pod = json!({
            "metadata": {"name": "p", "labels": {"app": "<i>x</i>"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "main"}, {"name": "side"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "main", "image": "img", "ready": true, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
        });
        let html = summary(&pod).into_string();
        assert!(html.contains("<td>main</td><td>img</td><td>true</td><td>3</td><td>waiting: CrashLoopBackOff</td>"), "{html}");
        assert!(
            html.contains("<td>side</td><td></td><td>false</td><td>0</td><td></td>"),
            "{html}"
        );
        assert!(html.contains("app=&lt;i&gt;x&lt;/i&gt;"), "{html}");
        let done = json!({"state": {"terminated": {"reason": "Completed", "exitCode": 0}}});
        assert_eq!(state_of(&done), "terminated: Completed (exit 0)");
    }
}
