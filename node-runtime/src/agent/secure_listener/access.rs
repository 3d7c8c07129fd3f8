//! What a request to the listener asks to do, in the kubelet's terms: the verb its method
//! maps to, on subresource `proxy`, `log`, `stats` or `metrics` of this Node (Kubernetes'
//! kubelet authorizer's path mapping). Exec is a `create` whatever its method: its
//! WebSocket handshake is a GET, and `get` on `nodes/proxy` must not buy a shell.

use axum::http::Method;

/// The attributes a request is authorized with: `verb` on `nodes/<subresource>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAccess {
    /// The verb asked of the SubjectAccessReview (`get`, `create`, ...).
    pub verb: &'static str,
    /// The `nodes` subresource: `proxy`, `log`, `stats` or `metrics`.
    pub subresource: &'static str,
}

/// The access a request with `method` on `path` needs.
pub fn of(method: &Method, path: &str) -> NodeAccess {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else {
        "proxy"
    };
    let runs_something = ["/exec", "/run", "/attach", "/portForward"]
        .iter()
        .any(|p| under(p));
    let verb = if runs_something {
        "create"
    } else {
        match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "get",
        }
    };
    NodeAccess { verb, subresource }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_kubelets_subresources_and_exec_is_always_create() {
        let get = |path| of(&Method::GET, path);
        assert_eq!(get("/stats/summary").subresource, "stats");
        assert_eq!(get("/metrics/cadvisor").subresource, "metrics");
        assert_eq!(get("/metrics").subresource, "metrics");
        assert_eq!(get("/logs/").subresource, "log");
        assert_eq!(get("/containerLogs/ns/p/c").subresource, "proxy");
        assert_eq!(get("/statsfoo").subresource, "proxy");
        assert_eq!(get("/containerLogs/ns/p/c").verb, "get");
        assert_eq!(
            get("/exec/ns/p/c?command=sh"),
            NodeAccess {
                verb: "create",
                subresource: "proxy"
            }
        );
        assert_eq!(of(&Method::DELETE, "/images/x").verb, "delete");
        assert_eq!(of(&Method::POST, "/images").verb, "create");
    }
}
