//! Where an Ingress request goes, as Kubernetes defines it: the rules of the most specific host
//! that has any (exact name, then `*.` wildcard of one label, then rules without a host), within
//! them an `Exact` path before the longest `Prefix` (matched by path element, so `/foo` matches
//! `/foo/bar` but not `/foobar`; `ImplementationSpecific` is a Prefix here), else the default
//! backend. Backends are the ready endpoints of the named Service port. Pure, for table tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use crate::agent::proxy::balancer::Balancer;
use crate::agent::proxy::table::{belongs_to, ready_backends, Affinity};

/// A Service port requests are sent to.
#[derive(Debug)]
pub struct Target {
    /// `namespace/service:port`, for logs and tests.
    pub service: String,
    /// The ready endpoints in turn; None when the Service or its port does not exist.
    pub balancer: Option<Balancer>,
}

#[derive(Debug)]
enum PathMatch {
    Exact(String),
    /// Path elements, without empty ones.
    Prefix(Vec<String>),
}

impl PathMatch {
    fn new(path: &str, path_type: &str) -> Self {
        match path_type {
            "Exact" => PathMatch::Exact(path.to_string()),
            _ => PathMatch::Prefix(elements(path).map(str::to_string).collect()),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(exact) => exact == path,
            PathMatch::Prefix(prefix) => {
                let mut request = elements(path);
                prefix.iter().all(|p| request.next() == Some(p.as_str()))
            }
        }
    }

    /// Exact paths first, then prefixes by their number of elements, longest first.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        match self {
            PathMatch::Exact(_) => (0, std::cmp::Reverse(0)),
            PathMatch::Prefix(p) => (1, std::cmp::Reverse(p.len())),
        }
    }
}

fn elements(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|e| !e.is_empty())
}

/// The paths of one host, best first.
#[derive(Debug, Default)]
struct Paths(Vec<(PathMatch, Arc<Target>)>);

impl Paths {
    fn find(&self, path: &str) -> Option<&Arc<Target>> {
        self.0
            .iter()
            .find(|(m, _)| m.matches(path))
            .map(|(_, target)| target)
    }
}

/// Every route of the Ingresses this node serves.
#[derive(Debug, Default)]
pub struct Routes {
    exact: HashMap<String, Paths>,
    /// By the domain after `*.`.
    wildcard: HashMap<String, Paths>,
    any_host: Option<Paths>,
    default: Option<Arc<Target>>,
}

/// The Services and EndpointSlices backends are looked up in.
pub struct Endpoints<'a> {
    /// Services by `namespace/name`.
    pub services: &'a BTreeMap<String, Service>,
    pub slices: Vec<&'a EndpointSlice>,
}

impl Endpoints<'_> {
    fn target(&self, namespace: &str, backend: &IngressBackend) -> Target {
        let Some(service_backend) = backend.service.as_ref() else {
            let resource = backend.resource.as_ref();
            return Target {
                service: format!(
                    "{namespace}/{}",
                    resource.map(|r| r.name.as_str()).unwrap_or_default()
                ),
                balancer: None,
            };
        };
        let name = &service_backend.name;
        let port = service_backend.port.as_ref();
        let wanted_name = port.and_then(|p| p.name.as_deref());
        let wanted_number = port.and_then(|p| p.number);
        let shown = wanted_name.map_or_else(
            || wanted_number.unwrap_or_default().to_string(),
            str::to_string,
        );
        let service = format!("{namespace}/{name}:{shown}");
        let port_name = self
            .services
            .get(&format!("{namespace}/{name}"))
            .and_then(|s| s.spec.as_ref())
            .and_then(|spec| {
                spec.ports.iter().flatten().find(|p| match wanted_name {
                    Some(wanted) => p.name.as_deref() == Some(wanted),
                    None => Some(p.port) == wanted_number,
                })
            })
            .map(|p| p.name.clone().unwrap_or_default());
        let balancer = port_name.map(|port_name| {
            let own: Vec<&EndpointSlice> = self
                .slices
                .iter()
                .copied()
                .filter(|s| belongs_to(s, namespace, name))
                .collect();
            Balancer::new(ready_backends(&own, &port_name), Affinity::None)
        });
        Target { service, balancer }
    }
}

impl Routes {
    /// The routes of `ingresses` (in order: earlier ones win ties).
    pub fn build<'a>(
        ingresses: impl IntoIterator<Item = &'a Ingress>,
        endpoints: &Endpoints<'_>,
    ) -> Self {
        let mut routes = Routes::default();
        for ingress in ingresses {
            let Some(spec) = ingress.spec.as_ref() else {
                continue;
            };
            let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
            if routes.default.is_none() {
                routes.default = spec
                    .default_backend
                    .as_ref()
                    .map(|b| Arc::new(endpoints.target(namespace, b)));
            }
            for rule in spec.rules.iter().flatten() {
                let host = rule
                    .host
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let paths = if host.is_empty() {
                    routes.any_host.get_or_insert_with(Paths::default)
                } else if let Some(domain) = host.strip_prefix("*.") {
                    routes.wildcard.entry(domain.to_string()).or_default()
                } else {
                    routes.exact.entry(host).or_default()
                };
                for path in rule.http.iter().flat_map(|h| &h.paths) {
                    let matcher =
                        PathMatch::new(path.path.as_deref().unwrap_or("/"), &path.path_type);
                    let target = Arc::new(endpoints.target(namespace, &path.backend));
                    paths.0.push((matcher, target));
                }
            }
        }
        let hosts = routes
            .exact
            .values_mut()
            .chain(routes.wildcard.values_mut());
        for paths in hosts.chain(routes.any_host.as_mut()) {
            paths.0.sort_by_key(|(m, _)| m.rank());
        }
        routes
    }

    /// The target of a request for `host` (no port, any case) and `path`; None: 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Target>> {
        let host = host.to_ascii_lowercase();
        let wildcard = || {
            let (_, domain) = host.split_once('.')?;
            self.wildcard.get(domain)
        };
        let paths = self
            .exact
            .get(&host)
            .or_else(wildcard)
            .or(self.any_host.as_ref());
        paths.and_then(|p| p.find(path)).or(self.default.as_ref())
    }
}

/// Endpoints of a balancer, for tests.
#[cfg(test)]
fn backends_of(target: &Target) -> Option<Vec<std::net::SocketAddr>> {
    target.balancer.as_ref().map(|b| b.backends().to_vec())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn ingress(name: &str, spec: Value) -> Ingress {
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn to(service: &str, path: &str, path_type: &str) -> Value {
        json!({"path": path, "pathType": path_type,
            "backend": {"service": {"name": service, "port": {"number": 80}}}})
    }

    fn services() -> BTreeMap<String, Service> {
        ["a", "b", "c", "d", "default", "empty"]
            .into_iter()
            .map(|name| {
                let service: Service = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"clusterIP": "10.43.0.9", "ports": [{"name": "http", "port": 80}]}}))
                .unwrap();
                (format!("default/{name}"), service)
            })
            .collect()
    }

    fn slices() -> Vec<EndpointSlice> {
        ["a", "b", "c", "d", "default"]
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("{name}-x"), "namespace": "default",
                        "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                    "endpoints": [{"addresses": [format!("10.42.0.{}", i + 1)]}]}))
                .unwrap()
            })
            .collect()
    }

    fn routed(routes: &Routes, host: &str, path: &str) -> Option<String> {
        routes.route(host, path).map(|t| t.service.clone())
    }

    #[test]
    fn hosts_paths_and_the_default_backend() {
        let services = services();
        let slices = slices();
        let endpoints = Endpoints {
            services: &services,
            slices: slices.iter().collect(),
        };
        let first = ingress(
            "first",
            json!({"defaultBackend": {"service": {"name": "default", "port": {"name": "http"}}},
                "rules": [
                {"host": "a.example.com", "http": {"paths": [
                    to("a", "/", "Prefix"), to("b", "/api", "Prefix"),
                    to("c", "/api/v2", "Prefix"), to("d", "/api", "Exact")]}},
                {"host": "*.example.com", "http": {"paths": [to("b", "/", "Prefix")]}},
                {"http": {"paths": [to("c", "/any", "ImplementationSpecific")]}}]}),
        );
        let second = ingress(
            "second",
            json!({"defaultBackend": {"service": {"name": "a", "port": {"number": 80}}},
                "rules": [{"host": "b.example.com", "http": {"paths": [to("d", "/only", "Exact")]}}]}),
        );
        let routes = Routes::build([&first, &second], &endpoints);
        let cases = [
            ("a.example.com", "/", Some("default/a:80")),
            ("A.Example.COM", "/x", Some("default/a:80")),
            ("a.example.com", "/api", Some("default/d:80")),
            ("a.example.com", "/api/", Some("default/b:80")),
            ("a.example.com", "/api/v1", Some("default/b:80")),
            ("a.example.com", "/apiary", Some("default/a:80")),
            ("a.example.com", "/api/v2/x", Some("default/c:80")),
            ("z.example.com", "/", Some("default/b:80")),
            ("b.example.com", "/only", Some("default/d:80")),
            // The host has rules, none matches: the first Ingress's default backend.
            ("b.example.com", "/other", Some("default/default:http")),
            // A wildcard covers one label only.
            ("x.z.example.com", "/any/thing", Some("default/c:80")),
            ("example.com", "/any", Some("default/c:80")),
            ("example.com", "/anything", Some("default/default:http")),
            ("other.org", "/nope", Some("default/default:http")),
        ];
        for (host, path, service) in cases {
            assert_eq!(
                routed(&routes, host, path).as_deref(),
                service,
                "{host}{path}"
            );
        }
        let target = routes.route("a.example.com", "/").unwrap();
        assert_eq!(
            backends_of(target),
            Some(vec!["10.42.0.1:8080".parse().unwrap()])
        );
    }

    #[test]
    fn no_match_without_a_default_and_missing_services_have_no_balancer() {
        let services = services();
        let slices = slices();
        let endpoints = Endpoints {
            services: &services,
            slices: slices.iter().collect(),
        };
        let only = ingress(
            "only",
            json!({"rules": [{"host": "a.example.com", "http": {"paths": [
                to("gone", "/gone", "Prefix"), to("empty", "/empty", "Prefix")]}}]}),
        );
        let routes = Routes::build([&only], &endpoints);
        assert!(routes.route("a.example.com", "/").is_none());
        assert!(routes.route("b.example.com", "/gone").is_none());
        let gone = routes.route("a.example.com", "/gone").unwrap();
        assert_eq!(backends_of(gone), None);
        let empty = routes.route("a.example.com", "/empty/x").unwrap();
        assert_eq!(backends_of(empty), Some(vec![]));
    }
}
