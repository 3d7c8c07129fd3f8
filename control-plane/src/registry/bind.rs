//! The `pods/binding` subresource: the scheduler's one write per pod.

use serde_json::Value;

use super::codec::decode;
use super::{object, pods, strategy, Registry};
use crate::error::ApiError;

impl Registry {
    /// Binds a pod to a node (the `pods/binding` subresource); 409 if it is already bound.
    pub async fn bind(&self, namespace: &str, name: &str, node: &str) -> Result<Value, ApiError> {
        let kind = pods();
        let current = self.get_kv(kind, Some(namespace), name).await?;
        let mut pod = decode(&current)?;
        if let Some(bound) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
            if !bound.is_empty() {
                return Err(ApiError::Conflict {
                    resource: crate::error::qualified(kind),
                    name: name.to_string(),
                    message: format!("pod {name} is already assigned to node \"{bound}\""),
                });
            }
        }
        if object::meta_str(&pod, "deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                resource: crate::error::qualified(kind),
                name: name.to_string(),
                message: "pod is being deleted, cannot be assigned to a host".into(),
            });
        }
        pod["spec"]["nodeName"] = Value::String(node.to_string());
        strategy::mark_scheduled(&mut pod);
        let key = kind.store_key(Some(namespace), name);
        match self.put_if(&key, current.mod_revision, &pod).await? {
            Some(kv) => decode(&kv),
            None => Err(ApiError::stale(kind, name)),
        }
    }
}
