//! preStop hooks, as the kubelet runs them when a pod is deleted: each running container's
//! `lifecycle.preStop` (sleep, httpGet, or exec where the runtime can exec) runs before the
//! container is asked to stop, all of them within the pod's grace period, and what is left of
//! that period (at least `OVERRUN_GRACE` when the hooks used it up) goes to the stop. A hook
//! that fails is reported and the stop goes on. A `preStop.sleep` is how Kubernetes users keep
//! a deleted pod serving until every node proxy has dropped its endpoint.

use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::{Container, Probe};

use super::probes::{Action, ActionError, Outcome, Target};

/// The stop's grace when the hooks took the whole grace period (the kubelet's 2 s).
pub const OVERRUN_GRACE: Duration = Duration::from_secs(2);

/// One container's preStop hook, ready to run.
pub enum Hook {
    /// `sleep`: wait this long.
    Sleep(Duration),
    /// `httpGet` or `exec`, run as a probe's handler.
    Action(Action),
}

/// Why a container's preStop hook cannot run.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("tcpSocket is not supported as a lifecycle handler")]
    TcpSocket,
    #[error(transparent)]
    Action(#[from] ActionError),
}

/// Why a preStop hook that ran did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookFailed {
    /// The handler ran and failed (as a probe fails).
    #[error("{0}")]
    Failed(String),
    /// The handler was still running when the grace period ended.
    #[error("did not finish within the grace period of {}s", .0.as_secs())]
    Timeout(Duration),
}

impl Hook {
    /// The preStop hook of `container` in a pod at `pod_ip`, if it has one; `timeout` bounds
    /// an httpGet.
    pub fn of(
        container: &Container,
        pod_ip: &str,
        timeout: Duration,
    ) -> Option<Result<Hook, HookError>> {
        let handler = container.lifecycle.as_ref()?.pre_stop.as_ref()?;
        if let Some(sleep) = &handler.sleep {
            let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
            return Some(Ok(Hook::Sleep(Duration::from_secs(seconds))));
        }
        if handler.tcp_socket.is_some() {
            return Some(Err(HookError::TcpSocket));
        }
        // httpGet and exec work as a probe's handlers do.
        let probe = Probe {
            http_get: handler.http_get.clone(),
            exec: handler.exec.clone(),
            ..Probe::default()
        };
        Some(
            Action::resolve(&probe, container, pod_ip, timeout)
                .map(Hook::Action)
                .map_err(HookError::from),
        )
    }

    /// Runs the hook against `target` within `timeout`.
    pub async fn run(&self, target: &Target, timeout: Duration) -> Result<(), HookFailed> {
        let run = async {
            match self {
                Hook::Sleep(pause) => {
                    tokio::time::sleep(*pause).await;
                    Outcome::Success
                }
                Hook::Action(action) => action.attempt(target, timeout).await,
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Outcome::Success) => Ok(()),
            Ok(Outcome::Failure(why)) => Err(HookFailed::Failed(why)),
            Err(_) => Err(HookFailed::Timeout(timeout)),
        }
    }
}

/// The grace left for stopping the containers after hooks that took `elapsed` of `grace`.
pub fn grace_after_hooks(grace: Duration, elapsed: Duration) -> Duration {
    match grace.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => left,
        _ => OVERRUN_GRACE,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::time::Instant;

    use super::*;
    use crate::runtime::hollow::HollowRuntime;

    fn container(lifecycle: serde_json::Value) -> Container {
        serde_json::from_value(json!({"name": "c", "lifecycle": lifecycle,
            "ports": [{"name": "http", "containerPort": 8080}]}))
        .expect("container")
    }

    fn target() -> Target {
        Target {
            pod_ip: "127.0.0.1".into(),
            runtime: Arc::new(HollowRuntime::new()),
            container_id: "c1".into(),
        }
    }

    fn hook(lifecycle: serde_json::Value) -> Hook {
        match Hook::of(&container(lifecycle), "127.0.0.1", Duration::from_secs(5)) {
            Some(Ok(hook)) => hook,
            Some(Err(err)) => panic!("{err}"),
            None => panic!("no hook"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_hook_sleeps_its_seconds_within_the_grace_period() {
        let sleep = hook(json!({"preStop": {"sleep": {"seconds": 5}}}));
        let started = Instant::now();
        assert_eq!(sleep.run(&target(), Duration::from_secs(30)).await, Ok(()));
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        let started = Instant::now();
        let cut = sleep.run(&target(), Duration::from_secs(2)).await;
        assert_eq!(cut, Err(HookFailed::Timeout(Duration::from_secs(2))));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_http_get_hook_asks_the_containers_port() {
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = server.local_addr().unwrap().port();
        let asked = tokio::spawn(async move {
            let (mut conn, _) = server.accept().await.unwrap();
            let mut request = vec![0; 1024];
            let n = conn.read(&mut request).await.unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        let drain = hook(json!({"preStop": {"httpGet": {"port": port, "path": "/drain"}}}));
        assert_eq!(drain.run(&target(), Duration::from_secs(5)).await, Ok(()));
        let request = asked.await.unwrap();
        assert!(request.starts_with("GET /drain HTTP/1.1"), "{request}");
    }

    #[tokio::test]
    async fn a_failing_or_unsupported_hook_says_why() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = hook(json!({"preStop": {"httpGet": {"port": port}}}));
        assert!(refused
            .run(&target(), Duration::from_secs(5))
            .await
            .is_err());

        let tcp = Hook::of(
            &container(json!({"preStop": {"tcpSocket": {"port": 8080}}})),
            "127.0.0.1",
            Duration::from_secs(5),
        );
        assert!(matches!(tcp, Some(Err(HookError::TcpSocket))));
        let unknown = Hook::of(
            &container(json!({"preStop": {"httpGet": {"port": "metrics"}}})),
            "127.0.0.1",
            Duration::from_secs(5),
        );
        assert!(matches!(unknown, Some(Err(HookError::Action(_)))));
        assert!(Hook::of(&container(json!({})), "127.0.0.1", Duration::from_secs(5)).is_none());
    }

    #[test]
    fn the_stop_gets_what_the_hooks_left_or_the_overrun_grace() {
        let s = Duration::from_secs;
        assert_eq!(grace_after_hooks(s(30), s(5)), s(25));
        assert_eq!(grace_after_hooks(s(30), s(30)), OVERRUN_GRACE);
        assert_eq!(grace_after_hooks(s(0), s(0)), OVERRUN_GRACE);
    }
}
