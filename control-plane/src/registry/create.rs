//! Creates: defaulting, admission, validation, then a write that must find the name free.

use serde_json::Value;
use skiff_api::resources::ResourceKind;

use super::codec::decode;
use super::{admission, namespaces, object, quotas, Registry, Subresource};
use crate::error::ApiError;

/// How many names a create with `generateName` draws before it answers AlreadyExists
/// (Kubernetes' API server tries eight).
pub(super) const GENERATE_NAME_ATTEMPTS: u32 = 8;

impl Registry {
    /// Creates an object after defaulting, admission and validation; 409 if the name is taken.
    pub async fn create(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let generate_prefix = admission::generate_name_prefix(&obj);
        admission::prepare_create(kind, namespace, &mut obj)?;
        self.admit_runtime_class(kind, &mut obj).await?;
        self.admit_storage_class(kind, &mut obj).await?;
        self.admit_limit_ranges(kind, &mut obj, None).await?;
        admission::validate(kind, &obj)?;
        self.record_write(kind, None, &mut obj, Subresource::Main)?;
        let ns = object::namespace(&obj).map(str::to_string);
        if let Some(ns) = ns.as_deref() {
            self.ensure_namespace(ns).await?;
            self.admit_service_account(kind, &mut obj).await?;
            if kind == quotas() {
                obj["status"] = self.quota_status(ns, &obj).await?;
            }
        }
        let mut attempt = 1;
        loop {
            let name = object::name(&obj).unwrap_or_default().to_string();
            let key = kind.store_key(ns.as_deref(), &name);
            match self
                .write_charged(kind, ns.as_deref(), &key, &obj, None)
                .await?
            {
                Some(kv) => return decode(&kv),
                // A generated name that is taken is drawn again, as Kubernetes does since
                // 1.30, so creates with `generateName` do not fail as a collection grows.
                None => match generate_prefix.as_deref() {
                    Some(prefix) if attempt < GENERATE_NAME_ATTEMPTS => {
                        attempt += 1;
                        object::set_meta(&mut obj, "name", admission::generate_name(prefix));
                    }
                    _ => return Err(ApiError::already_exists(kind, &name)),
                },
            }
        }
    }

    async fn ensure_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let ns_kind = namespaces();
        match self.get_kv(ns_kind, None, namespace).await {
            Ok(_) => Ok(()),
            Err(ApiError::NotFound { .. }) => Err(ApiError::not_found(ns_kind, namespace)),
            Err(other) => Err(other),
        }
    }
}
