//! `deletecollection`: a DELETE on a list path removes every object its selectors match.

use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::{object, DeleteOptions, ListOptions, Registry};
use crate::error::ApiError;

impl Registry {
    /// Deletes each object of `kind` the selectors match (in `namespace`, or all namespaces),
    /// each as a single delete with `options` would; returns what each delete returned. An
    /// object that went away meanwhile is skipped.
    pub async fn delete_collection(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        selectors: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let (items, _) = self.list(kind, namespace, selectors).await?;
        let mut deleted = Vec::with_capacity(items.len());
        for item in &items {
            let name = object::name(item).unwrap_or_default();
            match self
                .delete(kind, object::namespace(item), name, options)
                .await
            {
                Ok(done) => deleted.push(done),
                Err(ApiError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }
}
