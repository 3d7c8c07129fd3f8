//! Reads of single objects and lists.

use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_raft_store::KeyValue;

use super::codec::decode;
use super::{list_prefix, scope, ListOptions, ReadAt, Registry};
use crate::error::ApiError;

impl Registry {
    /// The object `name` of `kind` (in `namespace` if it is namespaced), as this member's
    /// store holds it; 404 if there is none.
    pub async fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let kv = self.get_kv(kind, namespace, name).await?;
        decode(&kv)
    }

    pub(super) async fn get_kv(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        let key = kind.store_key(scope(kind, namespace), name);
        let kv = self
            .store
            .get(key.as_bytes())
            .await?
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        Ok(self.encryption.open_kv(kv)?)
    }

    /// Lists objects of `kind` (all namespaces when `namespace` is `None`) and the revision read at.
    pub async fn list(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<(Vec<Value>, u64), ApiError> {
        let page = self
            .list_page(kind, namespace, options, None, None, ReadAt::Latest)
            .await?;
        Ok((page.items, page.revision))
    }

    /// Whether this member's store holds any object of `kind` in `namespace` (all namespaces
    /// when `None`): what an unfiltered `list` would say about emptiness, from the same local
    /// store and without a read barrier, for one key read instead of a range.
    pub(super) async fn any_stored(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
    ) -> Result<bool, ApiError> {
        let prefix = list_prefix(kind, namespace);
        Ok(self.store.has_prefix(prefix.as_bytes()).await?)
    }
}
