//! `metrics.k8s.io/v1beta1`: what nodes and pods use now (`skiff top`, as `kubectl top`).

use reqwest::Method;
use serde_json::Value;

use crate::{Client, ClientError, ListParams};

impl Client {
    /// The `NodeMetricsList` of the nodes `params` select.
    pub async fn node_metrics(&self, params: &ListParams) -> Result<Value, ClientError> {
        let path = format!("/apis/metrics.k8s.io/v1beta1/nodes{}", params.query(&[]));
        self.json(Method::GET, &path, None).await
    }

    /// The `PodMetricsList` of the pods `params` select (all namespaces when `namespace` is
    /// `None`).
    pub async fn pod_metrics(
        &self,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ClientError> {
        let scope = namespace.map_or_else(String::new, |ns| format!("/namespaces/{ns}"));
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1{scope}/pods{}",
            params.query(&[])
        );
        self.json(Method::GET, &path, None).await
    }
}
