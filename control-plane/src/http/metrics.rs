//! `GET /metrics`, and the layer that counts every request into kube-apiserver's series:
//! `apiserver_request_total`, `apiserver_request_duration_seconds`,
//! `apiserver_current_inflight_requests`, and for streams `apiserver_longrunning_requests` and
//! `apiserver_registered_watchers` until their bodies end.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::gauge::Gauge;
use skiff_net::GuardedBody;

use super::request_info::RequestInfo;
use super::AppState;
use crate::metrics::api::{CodeLabels, InflightLabels, RequestLabels, WatcherLabels, COMPONENT};
use crate::metrics::{ApiMetrics, Metrics, CONTENT_TYPE};

/// Subresources that kube-apiserver reports under the `CONNECT` verb.
const CONNECT_SUBRESOURCES: &[&str] = &["exec", "attach", "portforward", "proxy"];
/// The subresources a series may name: any other is counted as `unknown`, so that a client
/// cannot mint a series per path it makes up (counting happens before authentication).
const SUBRESOURCES: &[&str] = &[
    "approval",
    "attach",
    "binding",
    "ephemeralcontainers",
    "eviction",
    "exec",
    "finalize",
    "log",
    "portforward",
    "proxy",
    "scale",
    "status",
    "token",
];

/// `subresource` as a series label: one of `SUBRESOURCES`, `unknown`, or empty.
fn subresource_label(subresource: Option<&str>) -> &'static str {
    match subresource {
        None => "",
        Some(sub) => SUBRESOURCES
            .iter()
            .find(|known| **known == sub)
            .copied()
            .unwrap_or("unknown"),
    }
}

/// The content type of a server-side apply (reported as `APPLY`).
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// Serves every metric in Prometheus' text format.
pub async fn serve(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        state.metrics.encode(),
    )
        .into_response()
}

/// The series a request counts in (kube-apiserver's `CleanVerb` and `CleanScope`).
pub fn labels(
    info: &RequestInfo,
    method: &Method,
    headers: &HeaderMap,
    query: &str,
) -> RequestLabels {
    let Some(object) = &info.object else {
        return RequestLabels {
            verb: method_verb(method),
            component: COMPONENT,
            ..RequestLabels::default()
        };
    };
    let subresource = subresource_label(object.subresource.as_deref());
    let applying = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(APPLY_PATCH));
    let verb = match info.verb.as_str() {
        _ if CONNECT_SUBRESOURCES.contains(&subresource) => "CONNECT",
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "create" => "POST",
        "update" => "PUT",
        "patch" if applying => "APPLY",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        _ => method_verb(method),
    };
    let scope = if object.name.is_some() || info.verb == "create" {
        "resource"
    } else if object.namespace.is_some() {
        "namespace"
    } else {
        "cluster"
    };
    let dry_run =
        form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "dryRun" && v == "All");
    RequestLabels {
        verb,
        dry_run: if dry_run { "All" } else { "" },
        group: object.api_group,
        version: object.api_version,
        resource: object.resource,
        subresource,
        scope,
        component: COMPONENT,
    }
}

/// The verb of a request that names no resource: its method (`OTHER` for an extension method).
fn method_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Counts the request: in flight while the handler runs, then its code and duration; a
/// long-running request stays counted until its response body ends.
pub async fn instrument(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let info = RequestInfo::of(request.method(), request.uri());
    let series = labels(
        &info,
        request.method(),
        request.headers(),
        request.uri().query().unwrap_or_default(),
    );
    let api = &metrics.api;
    let response = if info.long_running {
        let mut gauges = vec![api.longrunning.get_or_create_owned(&series)];
        if let Some(watched) = watcher(&info) {
            gauges.push(api.watchers.get_or_create_owned(&watched));
        }
        let open = Open::new(gauges);
        let response = next.run(request).await;
        response.map(|body| Body::new(GuardedBody::new(body, open)))
    } else {
        let request_kind = match *request.method() {
            Method::GET | Method::HEAD | Method::OPTIONS => "readOnly",
            _ => "mutating",
        };
        let _open = Open::new(vec![api
            .inflight
            .get_or_create_owned(&InflightLabels { request_kind })]);
        next.run(request).await
    };
    record(
        api,
        series,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn record(api: &ApiMetrics, series: RequestLabels, code: u16, seconds: f64) {
    api.durations.get_or_create(&series).observe(seconds);
    let counted = CodeLabels {
        request: series,
        code,
    };
    api.requests.get_or_create(&counted).inc();
}

/// The kind a watch request watches.
fn watcher(info: &RequestInfo) -> Option<WatcherLabels> {
    let object = info.object.as_ref().filter(|_| info.verb == "watch")?;
    let kind =
        skiff_api::resources::by_path(object.api_group, object.api_version, object.resource)?;
    Some(WatcherLabels {
        group: object.api_group,
        version: object.api_version,
        kind: kind.kind,
    })
}

/// Gauges raised while this lives.
struct Open(Vec<Gauge>);

impl Open {
    fn new(gauges: Vec<Gauge>) -> Open {
        for gauge in &gauges {
            gauge.inc();
        }
        Open(gauges)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        for gauge in &self.0 {
            gauge.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(method: Method, uri: &str, headers: &[(&str, &str)]) -> RequestLabels {
        let uri: axum::http::Uri = uri.parse().expect("uri");
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        let info = RequestInfo::of(&method, &uri);
        labels(&info, &method, &map, uri.query().unwrap_or_default())
    }

    /// Verb, group, resource, subresource, scope and dry_run.
    type Short<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
    /// A request (method, URI, headers) and its labels.
    type Case = (
        Method,
        &'static str,
        &'static [(&'static str, &'static str)],
        Short<'static>,
    );

    fn short(l: &RequestLabels) -> Short<'_> {
        (
            l.verb,
            l.group,
            l.resource,
            l.subresource,
            l.scope,
            l.dry_run,
        )
    }

    #[test]
    fn verbs_scopes_and_resources_as_kube_apiserver_labels_them() {
        let cases: &[Case] = &[
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web",
                &[],
                ("GET", "", "pods", "", "resource", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/made-up-1234",
                &[],
                ("GET", "", "pods", "unknown", "resource", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods",
                &[],
                ("LIST", "", "pods", "", "namespace", ""),
            ),
            (
                Method::GET,
                "/api/v1/pods",
                &[],
                ("LIST", "", "pods", "", "cluster", ""),
            ),
            (
                Method::GET,
                "/apis/apps/v1/deployments?watch=true",
                &[],
                ("WATCH", "apps", "deployments", "", "cluster", ""),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods",
                &[],
                ("POST", "", "pods", "", "resource", ""),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods?dryRun=All",
                &[],
                ("POST", "", "pods", "", "resource", "All"),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/pods/web/status",
                &[],
                ("PUT", "", "pods", "status", "resource", ""),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web",
                &[("content-type", "application/strategic-merge-patch+json")],
                ("PATCH", "apps", "deployments", "", "resource", ""),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/a/deployments/web",
                &[("content-type", "application/apply-patch+yaml")],
                ("APPLY", "apps", "deployments", "", "resource", ""),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/configmaps",
                &[],
                ("DELETECOLLECTION", "", "configmaps", "", "namespace", ""),
            ),
            (
                Method::DELETE,
                "/api/v1/nodes/n1",
                &[],
                ("DELETE", "", "nodes", "", "resource", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/exec?command=sh",
                &[],
                ("CONNECT", "", "pods", "exec", "resource", ""),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/web/log",
                &[],
                ("GET", "", "pods", "log", "resource", ""),
            ),
            (Method::GET, "/metrics", &[], ("GET", "", "", "", "", "")),
            (
                Method::POST,
                "/no/such/path",
                &[],
                ("POST", "", "", "", "", ""),
            ),
        ];
        for (method, uri, headers, want) in cases {
            let got = series(method.clone(), uri, headers);
            assert_eq!(short(&got), *want, "{method} {uri}");
            assert_eq!(got.component, "apiserver");
        }
        let version = series(Method::GET, "/apis/apps/v1/deployments", &[]).version;
        assert_eq!(version, "v1");
    }

    #[test]
    fn a_watch_counts_as_a_watcher_of_its_kind() {
        let watch = RequestInfo::of(
            &Method::GET,
            &"/api/v1/namespaces/a/pods?watch=1".parse().expect("uri"),
        );
        let labels = watcher(&watch).expect("a watcher");
        assert_eq!(
            (labels.group, labels.version, labels.kind),
            ("", "v1", "Pod")
        );
        let log = RequestInfo::of(
            &Method::GET,
            &"/api/v1/namespaces/a/pods/web/log".parse().expect("uri"),
        );
        assert_eq!(watcher(&log), None);
    }
}
