//! StorageClass admission for new PersistentVolumeClaims (Kubernetes' `DefaultStorageClass`
//! plugin, plus the check that a named class exists): a claim naming no class gets the
//! default one; a claim naming a class that does not exist is refused (422 on
//! `spec.storageClassName`), so nothing waits forever on a typo. `""` asks for no class.

use serde_json::Value;
use skiff_api::k8s_openapi::api::storage::v1::StorageClass;
use skiff_api::resources::{self, ResourceKind};
use skiff_api::storage::is_default_class;
use skiff_api::validation::{FieldError, FieldErrorReason};

use super::{object, ListOptions, Registry};
use crate::error::ApiError;

impl Registry {
    /// Defaults or checks the class of a new claim; other kinds pass.
    pub(super) async fn admit_storage_class(
        &self,
        kind: &ResourceKind,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if kind.kind != "PersistentVolumeClaim" {
            return Ok(());
        }
        let classes = resources::of::<StorageClass>();
        match obj
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
        {
            Some("") => Ok(()),
            Some(name) => match self.get(classes, None, name).await {
                Ok(_) => Ok(()),
                Err(ApiError::NotFound { .. }) => Err(ApiError::invalid(
                    kind,
                    object::name(obj).unwrap_or_default(),
                    vec![FieldError {
                        field: "spec.storageClassName".into(),
                        reason: FieldErrorReason::Invalid,
                        message: format!(
                            "{name:?}: storageclass.storage.k8s.io {name:?} not found"
                        ),
                    }],
                )),
                Err(err) => Err(err),
            },
            None => {
                let (items, _) = self.list(classes, None, &ListOptions::default()).await?;
                let mut defaults: Vec<String> = items
                    .into_iter()
                    .filter_map(|c| serde_json::from_value::<StorageClass>(c).ok())
                    .filter(is_default_class)
                    .filter_map(|c| c.metadata.name)
                    .collect();
                // Several defaults: Kubernetes picks the newest; the first by name is as stable.
                defaults.sort();
                if let (Some(name), Some(spec)) = (defaults.first(), obj.get_mut("spec")) {
                    if spec.is_object() {
                        spec["storageClassName"] = Value::String(name.clone());
                    }
                }
                Ok(())
            }
        }
    }
}
