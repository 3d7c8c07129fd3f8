//! The Kubernetes verbs on objects as JSON values: get, list, create, replace (and its
//! subresources), patch, server-side apply, delete, evict, watch and logs.

use futures::StreamExt;
use serde_json::Value;
use skiff_api::resources::ResourceKind;

use crate::{
    watch_lines, ByteStream, Client, ClientError, DeleteParams, ListParams, LogParams, Method,
    WatchStream,
};

impl Client {
    /// One object.
    pub async fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        self.json(Method::GET, &kind.object_path(namespace, name), None)
            .await
    }

    /// A `*List` of objects (all namespaces when `namespace` is `None`).
    pub async fn list(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Value, ClientError> {
        let path = format!("{}{}", kind.collection_path(namespace), params.query(&[]));
        self.json(Method::GET, &path, None).await
    }

    pub async fn create(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        self.json(
            Method::POST,
            &kind.collection_path(namespace),
            Self::body(obj),
        )
        .await
    }

    pub async fn replace(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        self.json(
            Method::PUT,
            &kind.object_path(namespace, name),
            Self::body(obj),
        )
        .await
    }

    pub async fn replace_status(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let path = Self::status_path(kind, namespace, name);
        self.json(Method::PUT, &path, Self::body(obj)).await
    }

    /// Replaces `obj` through a subresource (`approval` of a CertificateSigningRequest).
    pub async fn replace_subresource(
        &self,
        kind: &ResourceKind,
        name: &str,
        subresource: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let path = format!("{}/{subresource}", kind.object_path(None, name));
        self.json(Method::PUT, &path, Self::body(obj)).await
    }

    /// JSON merge patch (RFC 7386).
    pub async fn patch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        merge_patch: &Value,
    ) -> Result<Value, ClientError> {
        let path = kind.object_path(namespace, name);
        self.json(Method::PATCH, &path, Self::merge_patch_body(merge_patch))
            .await
    }

    /// Server-side apply (`application/apply-patch+yaml`) of `config` as `field_manager`;
    /// `force` takes over the fields other managers own instead of failing with a conflict.
    pub async fn apply(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        config: &Value,
        field_manager: &str,
        force: bool,
    ) -> Result<Value, ClientError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("fieldManager", field_manager);
        if force {
            query.append_pair("force", "true");
        }
        let path = format!("{}?{}", kind.object_path(namespace, name), query.finish());
        let body = serde_json::to_vec(config).unwrap_or_default();
        self.json(
            Method::PATCH,
            &path,
            Some(("application/apply-patch+yaml", body)),
        )
        .await
    }

    pub async fn patch_status(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        merge_patch: &Value,
    ) -> Result<Value, ClientError> {
        let path = Self::status_path(kind, namespace, name);
        self.json(Method::PATCH, &path, Self::merge_patch_body(merge_patch))
            .await
    }

    pub async fn delete(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Value, ClientError> {
        let path = format!("{}{}", kind.object_path(namespace, name), params.query());
        self.json(Method::DELETE, &path, None).await
    }

    /// Evicts a pod through the eviction subresource (policy/v1 `Eviction`), which honours its
    /// PodDisruptionBudget: a 429 (`is_too_many_requests`) while the budget forbids it.
    /// With `uid`, only the pod of that uid is evicted (a 409 if the name now holds another).
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        grace_period_seconds: Option<i64>,
    ) -> Result<Value, ClientError> {
        let pods = skiff_api::resources::by_name("pods").expect("pods are served");
        let path = format!("{}/eviction", pods.object_path(Some(namespace), name));
        let mut eviction = serde_json::json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        });
        if let Some(grace) = grace_period_seconds {
            eviction["deleteOptions"]["gracePeriodSeconds"] = grace.into();
        }
        if let Some(uid) = uid {
            eviction["deleteOptions"]["preconditions"] = serde_json::json!({ "uid": uid });
        }
        self.json(Method::POST, &path, Self::body(&eviction)).await
    }

    /// Streams watch events after `resource_version` ("" or "0": current objects first, as ADDED).
    pub async fn watch(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<WatchStream, ClientError> {
        let extra = [("watch", "true"), ("resourceVersion", resource_version)];
        let path = format!(
            "{}{}",
            kind.collection_path(namespace),
            params.query(&extra)
        );
        let response = self.checked(Method::GET, &path, None).await?;
        let url = response.url().to_string();
        Ok(Box::pin(watch_lines::events(response, url)))
    }

    /// A container's log, proxied by the API server from the node.
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        params: &LogParams,
    ) -> Result<ByteStream, ClientError> {
        let pods = skiff_api::resources::by_name("pods").expect("pods are served");
        let path = format!(
            "{}/log{}",
            pods.object_path(Some(namespace), pod),
            params.query()
        );
        let response = self.checked(Method::GET, &path, None).await?;
        let url = response.url().to_string();
        Ok(Box::pin(response.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })
        })))
    }
}
