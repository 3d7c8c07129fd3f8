//! RuntimeClass admission (Kubernetes' `RuntimeClass` admission plugin): a new pod's
//! `spec.runtimeClassName` must name a RuntimeClass, and the pod takes on the class's
//! scheduling constraints, so it is only ever placed on nodes that have the runtime.

use serde_json::Value;
use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_api::resources::{self, ResourceKind};
use skiff_api::runtime_class::merge_scheduling;

use super::{object, strategy, Registry};
use crate::error::ApiError;

impl Registry {
    /// Checks the RuntimeClass a new object names (pods: `spec.runtimeClassName`) and merges
    /// its scheduling into the object; objects that name none pass.
    pub(super) async fn admit_runtime_class(
        &self,
        kind: &ResourceKind,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        let Some(class_name) = strategy::of(kind).runtime_class(obj) else {
            return Ok(());
        };
        let forbidden = |message: String| ApiError::Forbidden {
            resource: crate::error::qualified(kind),
            name: object::name(obj).unwrap_or_default().to_string(),
            message,
        };
        let class = match self
            .get(resources::of::<RuntimeClass>(), None, &class_name)
            .await
        {
            Ok(class) => class,
            Err(ApiError::NotFound { .. }) => {
                return Err(forbidden(format!(
                    "pod rejected: RuntimeClass {class_name:?} not found"
                )))
            }
            Err(err) => return Err(err),
        };
        let class: RuntimeClass = serde_json::from_value(class).map_err(|e| {
            ApiError::Internal(format!(
                "stored RuntimeClass {class_name:?} is corrupt: {e}"
            ))
        })?;
        let merged = merge_scheduling(obj, &class).map_err(|e| forbidden(e.to_string()))?;
        *obj = merged;
        Ok(())
    }
}
