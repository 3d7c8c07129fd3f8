//! `Api<K>`: the client's verbs for one typed kind (as kube-rs's `Api`).

use std::marker::PhantomData;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use skiff_api::k8s_openapi::Resource;
use skiff_api::resources::{self, ResourceKind};

use crate::{Client, ClientError, DeleteParams, ListParams};

/// A watch event with a decoded object.
#[derive(Debug, Clone)]
pub struct TypedWatchEvent<K> {
    /// `ADDED`, `MODIFIED`, `DELETED` or `ERROR`.
    pub event_type: String,
    pub object: K,
}

/// Verbs for kind `K` in one namespace (`None`: all namespaces, or cluster scope).
pub struct Api<K> {
    client: Client,
    namespace: Option<String>,
    kind: &'static ResourceKind,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            kind: self.kind,
            _kind: PhantomData,
        }
    }
}

fn decode<K: DeserializeOwned>(kind: &ResourceKind, value: Value) -> Result<K, ClientError> {
    serde_json::from_value(value).map_err(|source| ClientError::Decode {
        url: kind.plural.to_string(),
        source,
    })
}

fn encode<K: Serialize + Resource>(obj: &K) -> Value {
    let mut value = serde_json::to_value(obj).unwrap_or(Value::Null);
    value["apiVersion"] = Value::String(K::API_VERSION.into());
    value["kind"] = Value::String(K::KIND.into());
    value
}

impl<K: Resource + DeserializeOwned + Serialize> Api<K> {
    pub(crate) fn new(client: Client, namespace: Option<&str>) -> Self {
        Api {
            client,
            namespace: namespace.map(str::to_string),
            kind: resources::of::<K>(),
            _kind: PhantomData,
        }
    }

    fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub async fn get(&self, name: &str) -> Result<K, ClientError> {
        decode(
            self.kind,
            self.client.get(self.kind, self.ns(), name).await?,
        )
    }

    /// The objects and the list's `resourceVersion` (to watch from).
    pub async fn list(&self, params: &ListParams) -> Result<(Vec<K>, String), ClientError> {
        let mut list = self.client.list(self.kind, self.ns(), params).await?;
        let version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let items = items
            .into_iter()
            .map(|item| decode(self.kind, item))
            .collect::<Result<_, _>>()?;
        Ok((items, version))
    }

    pub async fn create(&self, obj: &K) -> Result<K, ClientError> {
        decode(
            self.kind,
            self.client
                .create(self.kind, self.ns(), &encode(obj))
                .await?,
        )
    }

    pub async fn replace(&self, name: &str, obj: &K) -> Result<K, ClientError> {
        decode(
            self.kind,
            self.client
                .replace(self.kind, self.ns(), name, &encode(obj))
                .await?,
        )
    }

    pub async fn replace_status(&self, name: &str, obj: &K) -> Result<K, ClientError> {
        let value = self
            .client
            .replace_status(self.kind, self.ns(), name, &encode(obj))
            .await?;
        decode(self.kind, value)
    }

    pub async fn patch(&self, name: &str, merge_patch: &Value) -> Result<K, ClientError> {
        decode(
            self.kind,
            self.client
                .patch(self.kind, self.ns(), name, merge_patch)
                .await?,
        )
    }

    pub async fn patch_status(&self, name: &str, merge_patch: &Value) -> Result<K, ClientError> {
        decode(
            self.kind,
            self.client
                .patch_status(self.kind, self.ns(), name, merge_patch)
                .await?,
        )
    }

    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<(), ClientError> {
        self.client
            .delete(self.kind, self.ns(), name, params)
            .await
            .map(drop)
    }

    /// Watch events with decoded objects; `ERROR` events arrive as `ClientError::Api`.
    pub async fn watch(
        &self,
        params: &ListParams,
        resource_version: &str,
    ) -> Result<
        impl Stream<Item = Result<TypedWatchEvent<K>, ClientError>> + Send + use<K>,
        ClientError,
    >
    where
        K: Send + 'static,
    {
        let kind = self.kind;
        let events = self
            .client
            .watch(kind, self.ns(), params, resource_version)
            .await?;
        Ok(events.map(move |event| {
            let event = event?;
            if event.event_type == "ERROR" {
                let status = serde_json::from_value(event.object).unwrap_or_default();
                return Err(ClientError::Api {
                    status: Box::new(status),
                });
            }
            Ok(TypedWatchEvent {
                event_type: event.event_type,
                object: decode(kind, event.object)?,
            })
        }))
    }
}
