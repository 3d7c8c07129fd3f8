//! The agent's exec endpoint, as the kubelet's `/exec/{namespace}/{pod}/{container}`: a
//! WebSocket speaking `v5.channel.k8s.io` to a command started in the running container
//! (`?command=sh&command=-c&command=...&stdin=true&stdout=true&stderr=true&tty=false`). The
//! API server proxies `pods/{name}/exec` to it. What cannot run (no such container, a runtime
//! without exec) is refused before the upgrade, with the reason as the body.

use std::sync::Arc;

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::{SinkExt, StreamExt};
use skiff_api::remotecommand;

use super::exec_pump::{pump, Outputs};
use super::log_index::LogIndex;
use crate::runtime::{
    ContainerRuntime, ContainerState, ExecRequest, ExecSession, RuntimeError, RuntimeSet,
};

/// Where the exec endpoint finds containers: the pods on this node and their runtimes.
#[derive(Clone)]
pub struct ExecServerState {
    pub index: Arc<LogIndex>,
    pub runtimes: RuntimeSet,
}

/// The `/exec/...` route.
pub fn router(state: ExecServerState) -> Router {
    Router::new()
        // `any`: over the tunnel the WebSocket is an HTTP/2 extended CONNECT.
        .route("/exec/{namespace}/{pod}/{container}", any(exec))
        .with_state(state)
}

/// The query of an exec request, as the kubelet reads `PodExecOptions`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExecQuery {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl ExecQuery {
    fn parse(raw: Option<&str>) -> Self {
        let mut query = ExecQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let flag = matches!(&*value, "true" | "1");
            match &*key {
                "command" => query.command.push(value.into_owned()),
                "stdin" | "input" => query.stdin = flag,
                "stdout" | "output" => query.stdout = flag,
                "stderr" | "error" => query.stderr = flag,
                "tty" => query.tty = flag,
                _ => {}
            }
        }
        query
    }
}

fn refuse(code: StatusCode, message: String) -> Response {
    (code, message).into_response()
}

async fn exec(
    State(state): State<ExecServerState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let query = ExecQuery::parse(raw.as_deref());
    if query.command.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "command: at least one command parameter is required".into(),
        );
    }
    let (runtime, id) = match find(&state, &namespace, &pod, &container).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let request = ExecRequest {
        cmd: query.command,
        tty: query.tty,
        stdin: query.stdin,
    };
    let session = match runtime.exec(&id, &request).await {
        Ok(session) => session,
        Err(RuntimeError::Unsupported { runtime, .. }) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "exec is not supported for {} containers: container {container} of pod \
                     {namespace}/{pod} runs on the {runtime} runtime",
                    title(runtime)
                ),
            )
        }
        Err(err @ RuntimeError::ContainerNotRunning(_)) => {
            return refuse(StatusCode::BAD_REQUEST, err.to_string())
        }
        Err(err) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    let outputs = Outputs {
        stdout: query.stdout,
        stderr: query.stderr,
    };
    upgrade
        .protocols([remotecommand::PROTOCOL])
        .on_upgrade(move |socket| async move {
            if let Err(err) = pump_socket(session, outputs, socket).await {
                tracing::debug!(%err, "exec stream ended");
            }
        })
}

/// `wasm` → `Wasm`: a runtime's name as a sentence names it.
fn title(runtime: &str) -> String {
    let mut chars = runtime.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The runtime and id of the running container `container` of the newest pod of that name.
async fn find(
    state: &ExecServerState,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<(Arc<dyn ContainerRuntime>, String), Response> {
    let Some((uid, _)) = state.index.get(namespace, pod, container) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("container {container} of pod {namespace}/{pod} is not on this node"),
        ));
    };
    // The agent's sandboxes are named by their pods' uids.
    for runtime in state.runtimes.iter() {
        let listed = runtime
            .list_containers(Some(&uid))
            .await
            .map_err(|err| refuse(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
        let running = listed
            .into_iter()
            .find(|c| c.name == container && matches!(c.state, ContainerState::Running { .. }));
        if let Some(found) = running {
            return Ok((runtime.clone(), found.id));
        }
    }
    Err(refuse(
        StatusCode::BAD_REQUEST,
        format!("container {container} of pod {namespace}/{pod} is not running"),
    ))
}

/// The pump over an accepted WebSocket: binary messages both ways; a close or an error ends
/// the client's side. After the status, a normal close (clients read any other close as an
/// error on the status channel).
async fn pump_socket(
    session: ExecSession,
    outputs: Outputs,
    socket: WebSocket,
) -> Result<(), axum::Error> {
    let (mut sink, stream) = socket.split();
    let incoming = stream
        .take_while(|message| {
            std::future::ready(matches!(message, Ok(m) if !matches!(m, Message::Close(_))))
        })
        .filter_map(|message| {
            std::future::ready(match message {
                Ok(Message::Binary(data)) => Some(data.to_vec()),
                _ => None,
            })
        });
    let outgoing =
        (&mut sink).with(|data: Vec<u8>| std::future::ready(Ok(Message::Binary(data.into()))));
    pump(session, outputs, Box::pin(incoming), Box::pin(outgoing)).await?;
    let normal = CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    };
    sink.send(Message::Close(Some(normal))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_repeated_commands_and_flags() {
        let query = ExecQuery::parse(Some(
            "command=sh&command=-c&command=echo%20hi%3B%20exit%203&stdin=true&stdout=true&tty=1",
        ));
        assert_eq!(
            query,
            ExecQuery {
                command: vec!["sh".into(), "-c".into(), "echo hi; exit 3".into()],
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true,
            }
        );
        assert_eq!(ExecQuery::parse(None), ExecQuery::default());
    }

    #[test]
    fn names_runtimes_in_sentences() {
        assert_eq!(title("wasm"), "Wasm");
        assert_eq!(title(""), "");
    }
}
