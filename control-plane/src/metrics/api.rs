//! The API server's request metrics, under kube-apiserver's names and labels.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::histogram::REQUEST_BUCKETS;

/// The `component` label of every request series.
pub const COMPONENT: &str = "apiserver";

/// What a request series is keyed by (kube-apiserver's labels but `code`); static strings, so
/// that counting a request allocates nothing and a client cannot mint series.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `APPLY`, `DELETE`, `DELETECOLLECTION`,
    /// `CONNECT`, or the HTTP method of a request that names no resource.
    pub verb: &'static str,
    /// `All` for a dry run, empty otherwise.
    pub dry_run: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    /// One of the subresources served, `unknown`, or empty.
    pub subresource: &'static str,
    /// `resource` (one object, or a create), `namespace`, `cluster`, or empty (no resource).
    pub scope: &'static str,
    pub component: &'static str,
}

/// A request series with its response code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    #[prometheus(flatten)]
    pub request: RequestLabels,
    pub code: u16,
}

/// The kind of object watched (kube-apiserver's `apiserver_registered_watchers` labels).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatcherLabels {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// `readOnly` or `mutating`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InflightLabels {
    pub request_kind: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The request families; cheap to clone (all clones feed the same series).
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    /// `apiserver_request_total`.
    pub requests: Family<CodeLabels, Counter>,
    /// `apiserver_request_duration_seconds`: until the response's head is written.
    pub durations: HistogramFamily,
    /// `apiserver_longrunning_requests`: watches, logs, exec, proxying open now.
    pub longrunning: Family<RequestLabels, Gauge>,
    /// `apiserver_registered_watchers`: watches open now by kind.
    pub watchers: Family<WatcherLabels, Gauge>,
    /// `apiserver_current_inflight_requests`: short requests being served now.
    pub inflight: Family<InflightLabels, Gauge>,
    /// `serviceaccount_stale_tokens_total`: uses of extended ServiceAccount tokens past their
    /// `warnafter`.
    pub stale_tokens: Counter,
}

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

impl ApiMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> ApiMetrics {
        let metrics = ApiMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            longrunning: Family::default(),
            watchers: Family::default(),
            inflight: Family::default(),
            stale_tokens: Counter::default(),
        };
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code",
            metrics.requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component",
            metrics.durations.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component",
            metrics.longrunning.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resource kind",
            metrics.watchers.clone(),
        );
        registry.register(
            "apiserver_current_inflight_requests",
            "Requests this apiserver is serving now (long-running ones apart), per request kind",
            metrics.inflight.clone(),
        );
        registry.register(
            "serviceaccount_stale_tokens",
            "Cumulative stale projected service account tokens used",
            metrics.stale_tokens.clone(),
        );
        for request_kind in ["readOnly", "mutating"] {
            drop(
                metrics
                    .inflight
                    .get_or_create(&InflightLabels { request_kind }),
            );
        }
        metrics
    }
}
