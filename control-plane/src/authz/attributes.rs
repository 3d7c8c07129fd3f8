//! What a request asks to do, as Kubernetes' `RequestInfo` reads it from the method and path:
//! a verb and either a resource (group, resource, subresource, namespace, name) or a
//! non-resource URL (`/healthz`, `/version`, `/skiff/v1/backup`).

use axum::http::Method;

/// A request's authorization attributes. Empty strings mean "none", as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `impersonate`, ...; for non-resource URLs the lower-case HTTP method.
    pub verb: String,
    pub target: Target,
}

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Resource(ResourceAttributes),
    /// A path outside the resource API (`/healthz`, `/api` discovery, `/skiff/v1/...`).
    NonResource {
        path: String,
    },
}

/// The resource a request addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceAttributes {
    /// `pods` or `pods/log`, as rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Namespace subresources: `/api/v1/namespaces/{name}/status` addresses the namespace itself.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Subresources whose WebSocket upgrade (a GET) is authorized as `create`, as Kubernetes
/// does since 1.35, so that `get` on `pods/exec` never opens a shell.
const CONNECT_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];

impl Attributes {
    /// Reads the attributes of a request from its method, path and query string.
    pub fn from_request(method: &Method, path: &str, query: Option<&str>) -> Attributes {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let (api_group, rest) = match parts.as_slice() {
            ["api", _version, rest @ ..] if !rest.is_empty() => ("", rest),
            ["apis", group, _version, rest @ ..] if !rest.is_empty() => (*group, rest),
            _ => {
                return Attributes {
                    verb: method.as_str().to_ascii_lowercase(),
                    target: Target::NonResource {
                        path: path.to_string(),
                    },
                }
            }
        };
        let mut attrs = ResourceAttributes {
            api_group: api_group.to_string(),
            ..ResourceAttributes::default()
        };
        let mut rest = rest;
        if rest[0] == "namespaces" && rest.len() > 1 {
            attrs.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        attrs.resource = rest[0].to_string();
        attrs.name = rest.get(1).map_or_else(String::new, |n| n.to_string());
        attrs.subresource = rest.get(2).map_or_else(String::new, |s| s.to_string());
        let mut verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        if attrs.name.is_empty() && verb == "get" {
            let query = Params::parse(query);
            verb = if query.watch { "watch" } else { "list" }.into();
            if let Some(name) = query.name {
                attrs.name = name;
            }
        } else if attrs.name.is_empty() && verb == "delete" {
            verb = "deletecollection".into();
        } else if verb == "get" && CONNECT_SUBRESOURCES.contains(&attrs.subresource.as_str()) {
            verb = "create".into();
        }
        Attributes {
            verb,
            target: Target::Resource(attrs),
        }
    }

    /// The resource addressed, if this is a resource request.
    pub fn resource(&self) -> Option<&ResourceAttributes> {
        match &self.target {
            Target::Resource(r) => Some(r),
            Target::NonResource { .. } => None,
        }
    }
}

/// The query parameters that change a list's attributes.
struct Params {
    watch: bool,
    /// The name of a `fieldSelector=metadata.name=NAME` list, which rules with
    /// `resourceNames` may allow.
    name: Option<String>,
}

impl Params {
    fn parse(query: Option<&str>) -> Params {
        let mut params = Params {
            watch: false,
            name: None,
        };
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "watch" => params.watch = matches!(value.as_ref(), "true" | "1"),
                "fieldSelector" => {
                    params.name = value
                        .strip_prefix("metadata.name==")
                        .or_else(|| value.strip_prefix("metadata.name="))
                        .filter(|n| !n.is_empty() && !n.contains([',', '/', '%']))
                        .map(str::to_string);
                }
                _ => {}
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, uri: &str) -> (String, ResourceAttributes) {
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let attrs = Attributes::from_request(&method, path, query);
        let resource = attrs.resource().cloned().expect("a resource request");
        (attrs.verb, resource)
    }

    fn r(group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> ResourceAttributes {
        ResourceAttributes {
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn reads_verbs_and_resources_like_kubernetes() {
        let cases = [
            (
                Method::GET,
                "/api/v1/pods",
                "list",
                r("", "pods", "", "", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods?watch=true",
                "watch",
                r("", "pods", "", "a", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/secrets?fieldSelector=metadata.name%3Dtls",
                "list",
                r("", "secrets", "", "a", "tls"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/log",
                "get",
                r("", "pods", "log", "a", "web"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/exec?command=sh",
                "create",
                r("", "pods", "exec", "a", "web"),
            ),
            (
                Method::POST,
                "/apis/apps/v1/namespaces/a/deployments",
                "create",
                r("apps", "deployments", "", "a", ""),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web/scale",
                "patch",
                r("apps", "deployments", "scale", "a", "web"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                "deletecollection",
                r("", "pods", "", "a", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a",
                "get",
                r("", "namespaces", "", "a", "a"),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/status",
                "update",
                r("", "namespaces", "status", "a", "a"),
            ),
            (
                Method::POST,
                "/api/v1/nodes/n1/proxy/images/import",
                "create",
                r("", "nodes", "proxy", "", "n1"),
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
                "update",
                r("coordination.k8s.io", "leases", "", "kube-node-lease", "n1"),
            ),
        ];
        for (method, uri, verb, expected) in cases {
            assert_eq!(resource(method, uri), (verb.to_string(), expected), "{uri}");
        }
    }

    #[test]
    fn discovery_and_skiff_paths_are_non_resource_urls() {
        for (method, path, verb) in [
            (Method::GET, "/api", "get"),
            (Method::GET, "/api/v1", "get"),
            (Method::GET, "/apis/apps/v1", "get"),
            (Method::GET, "/healthz", "get"),
            (Method::DELETE, "/skiff/v1/cluster/members/s1", "delete"),
        ] {
            let attrs = Attributes::from_request(&method, path, None);
            assert_eq!(attrs.verb, verb);
            assert_eq!(
                attrs.target,
                Target::NonResource {
                    path: path.to_string()
                }
            );
        }
    }
}
