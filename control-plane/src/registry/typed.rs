//! Typed access to the registry for in-process controllers (k8s-openapi structs in and out).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::{Metadata, Resource};
use skiff_api::resources;

use super::{DeleteOptions, Registry, Subresource};
use crate::error::ApiError;

/// A typed object the registry serves.
pub trait Object:
    Resource + Metadata<Ty = ObjectMeta> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
}

impl<K> Object for K where
    K: Resource
        + Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned
        + Clone
        + Send
        + Sync
        + 'static
{
}

fn to_value<K: Object>(obj: &K) -> Result<Value, ApiError> {
    let mut value = serde_json::to_value(obj).map_err(|e| ApiError::Internal(e.to_string()))?;
    value["apiVersion"] = Value::String(K::API_VERSION.to_string());
    value["kind"] = Value::String(K::KIND.to_string());
    Ok(value)
}

/// Converts a served JSON object into its typed form.
pub fn from_value<K: Object>(value: Value) -> Result<K, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::Internal(format!("decoding a {}: {e}", K::KIND)))
}

impl Registry {
    pub async fn create_typed<K: Object>(&self, obj: &K) -> Result<K, ApiError> {
        let kind = resources::of::<K>();
        let value = self
            .create(kind, obj.metadata().namespace.as_deref(), to_value(obj)?)
            .await?;
        from_value(value)
    }

    /// Replaces `obj` (or its status) guarded by its `resourceVersion`.
    pub async fn update_typed<K: Object>(
        &self,
        obj: &K,
        subresource: Subresource,
    ) -> Result<K, ApiError> {
        let kind = resources::of::<K>();
        let meta = obj.metadata();
        let name = meta.name.as_deref().unwrap_or_default();
        let value = self
            .update(
                kind,
                meta.namespace.as_deref(),
                name,
                to_value(obj)?,
                subresource,
            )
            .await?;
        from_value(value)
    }

    pub async fn patch_typed<K: Object>(
        &self,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        subresource: Subresource,
    ) -> Result<K, ApiError> {
        let kind = resources::of::<K>();
        from_value(
            self.patch(kind, namespace, name, patch, subresource)
                .await?,
        )
    }

    pub async fn delete_typed<K: Object>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let kind = resources::of::<K>();
        self.delete(kind, namespace, name, &DeleteOptions::default())
            .await
            .map(drop)
    }
}
