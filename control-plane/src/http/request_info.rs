//! What a request asks for, read from its method and URL alone (Kubernetes' `RequestInfo`):
//! the verb, the object it names and whether it is long-running. Limits and the audit log
//! use it before (and whatever) the handler decides.

use axum::http::{Method, Uri};

use super::{node_proxy, path};

/// The verb and object of one API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or
    /// the lower-case HTTP method of a request that names no resource.
    pub verb: String,
    /// The object addressed, when the path names a resource.
    pub object: Option<ObjectRef>,
    /// Watches, logs, exec, attach, port-forward and node proxying: these stay open for as
    /// long as the client wants and are exempt from concurrency limits, as in Kubernetes.
    pub long_running: bool,
}

/// An addressed object (audit's `objectRef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub resource: &'static str,
    pub api_group: &'static str,
    pub api_version: &'static str,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Subresources that stream for as long as the client wants.
const LONG_RUNNING_SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward", "proxy"];

impl RequestInfo {
    /// Reads `method` and `uri`; paths that name no resource get the method as verb.
    pub fn of(method: &Method, uri: &Uri) -> RequestInfo {
        let watching = uri.query().is_some_and(|q| {
            q.split('&')
                .any(|pair| matches!(pair, "watch=true" | "watch=1" | "watch"))
        });
        let target = match node_proxy::split(uri.path()) {
            Some((node, _)) => path::parse(&format!("/api/v1/nodes/{node}/proxy")),
            None => path::parse(uri.path()),
        };
        let Ok(target) = target else {
            return RequestInfo {
                verb: method.as_str().to_ascii_lowercase(),
                object: None,
                long_running: false,
            };
        };
        let named = target.name.is_some();
        let verb = match *method {
            Method::GET | Method::HEAD if watching => "watch",
            Method::GET | Method::HEAD if named => "get",
            Method::GET | Method::HEAD => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if named => "delete",
            Method::DELETE => "deletecollection",
            _ => method.as_str(),
        };
        let long_running = watching
            || target
                .subresource
                .as_deref()
                .is_some_and(|s| LONG_RUNNING_SUBRESOURCES.contains(&s));
        RequestInfo {
            verb: verb.to_ascii_lowercase(),
            object: Some(ObjectRef {
                resource: target.kind.plural,
                api_group: target.kind.group,
                api_version: target.kind.version,
                namespace: target.namespace,
                name: target.name,
                subresource: target.subresource,
            }),
            long_running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, uri: &str) -> RequestInfo {
        RequestInfo::of(&method, &uri.parse().expect("uri"))
    }

    #[test]
    fn verbs_objects_and_long_running_requests() {
        let get = info(Method::GET, "/api/v1/namespaces/a/pods/web");
        assert_eq!(get.verb, "get");
        assert!(!get.long_running);
        let object = get.object.expect("object");
        assert_eq!(
            (
                object.resource,
                object.namespace.as_deref(),
                object.name.as_deref()
            ),
            ("pods", Some("a"), Some("web"))
        );
        assert_eq!(info(Method::GET, "/api/v1/pods").verb, "list");
        let watch = info(Method::GET, "/apis/apps/v1/deployments?watch=true");
        assert_eq!((watch.verb.as_str(), watch.long_running), ("watch", true));
        assert_eq!(watch.object.expect("object").api_group, "apps");
        assert_eq!(
            info(Method::POST, "/api/v1/namespaces/a/pods").verb,
            "create"
        );
        assert_eq!(
            info(Method::DELETE, "/api/v1/namespaces/a/pods").verb,
            "deletecollection"
        );
        for long in [
            "/api/v1/namespaces/a/pods/web/log?follow=true",
            "/api/v1/namespaces/a/pods/web/exec?command=sh",
            "/api/v1/nodes/n1/proxy/images/import",
        ] {
            assert!(info(Method::GET, long).long_running, "{long}");
        }
        let status = info(Method::PUT, "/api/v1/namespaces/a/pods/log/status");
        assert!(!status.long_running, "a pod named log is not a log request");
        let version = info(Method::GET, "/version");
        assert_eq!((version.verb.as_str(), version.object), ("get", None));
    }
}
