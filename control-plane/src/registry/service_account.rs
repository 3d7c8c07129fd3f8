//! ServiceAccount admission (Kubernetes' `ServiceAccount` admission plugin): a new pod runs as
//! `spec.serviceAccountName` (default `default`), which must exist, and, unless the pod or the
//! account says `automountServiceAccountToken: false`, gets the projected volume
//! `kube-api-access-<5 random>` (a bound token, the cluster CA, the namespace) mounted
//! read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in each of its containers.
//! A missing `default` account is made here rather than refused: the ServiceAccount
//! controller makes it moments after a namespace appears, and a pod created in those moments
//! should not fail for it.

use serde_json::{json, Value};
use skiff_api::resources::{self, ResourceKind};

use super::{admission, object, Registry};
use crate::error::ApiError;

/// Where containers find the token, `ca.crt` and `namespace`.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The ConfigMap with the cluster CA that every namespace has.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// The key of the CA in that ConfigMap.
pub const ROOT_CA_KEY: &str = "ca.crt";
/// The account pods run as when they name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The lifetime the kubelet asks for (Kubernetes' 3607 s, to tell admission-made volumes apart).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// Prefix of the volume's name.
const VOLUME_PREFIX: &str = "kube-api-access-";

/// The ServiceAccount resource.
pub fn service_accounts() -> &'static ResourceKind {
    resources::by_name("serviceaccounts").expect("serviceaccounts are served")
}

/// A `default` ServiceAccount for `namespace`.
pub fn default_service_account(namespace: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}})
}

impl Registry {
    /// Settles a new pod's ServiceAccount and mounts its token; other kinds pass.
    pub(super) async fn admit_service_account(
        &self,
        kind: &ResourceKind,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if kind.kind != "Pod" || !obj.get("spec").is_some_and(Value::is_object) {
            return Ok(());
        }
        let namespace = object::namespace(obj).unwrap_or("default").to_string();
        let spec = &mut obj["spec"];
        let account = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|f| {
                spec.get(*f)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
            .to_string();
        spec["serviceAccountName"] = json!(account);
        spec["serviceAccount"] = json!(account);
        let found = match self
            .get(service_accounts(), Some(&namespace), &account)
            .await
        {
            Ok(found) => found,
            Err(ApiError::NotFound { .. }) if account == DEFAULT_SERVICE_ACCOUNT => {
                self.ensure_default_service_account(&namespace).await?
            }
            Err(ApiError::NotFound { .. }) => {
                return Err(ApiError::Forbidden {
                    resource: "pods".into(),
                    name: object::name(obj).unwrap_or_default().to_string(),
                    message: format!(
                        "error looking up service account {namespace}/{account}: \
                         serviceaccount \"{account}\" not found"
                    ),
                })
            }
            Err(err) => return Err(err),
        };
        let automount = obj["spec"]
            .get("automountServiceAccountToken")
            .or_else(|| found.get("automountServiceAccountToken"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if self.tokens().is_some() && automount {
            let volume = format!("{VOLUME_PREFIX}{}", admission::random_suffix());
            mount_token_volume(&mut obj["spec"], &volume);
        }
        Ok(())
    }

    /// The `default` ServiceAccount of `namespace`, made if missing.
    pub(crate) async fn ensure_default_service_account(
        &self,
        namespace: &str,
    ) -> Result<Value, ApiError> {
        let kind = service_accounts();
        // Boxed: this runs inside the create of a pod.
        match Box::pin(self.create(kind, Some(namespace), default_service_account(namespace))).await
        {
            Ok(made) => Ok(made),
            Err(ApiError::AlreadyExists { .. }) => {
                self.get(kind, Some(namespace), DEFAULT_SERVICE_ACCOUNT)
                    .await
            }
            Err(err) => Err(err),
        }
    }
}

/// Adds the token volume `volume` to a pod spec and mounts it in every container and init
/// container that has nothing mounted at the token path yet; a pod that already mounts
/// something there in every container is left alone.
pub fn mount_token_volume(spec: &mut Value, volume: &str) {
    let mount = json!({"name": volume, "mountPath": TOKEN_MOUNT_PATH, "readOnly": true});
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let mounts = &mut container["volumeMounts"];
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            let mounts = mounts.as_array_mut().expect("an array");
            if mounts.iter().any(|m| m["mountPath"] == TOKEN_MOUNT_PATH) {
                continue;
            }
            mounts.push(mount.clone());
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    let projected = json!({"name": volume, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": ROOT_CA_KEY, "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}});
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(volumes) => volumes.push(projected),
        None => spec["volumes"] = json!([projected]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_is_kubernetes_shape_and_mounted_everywhere() {
        let mut spec = json!({
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [{"name": "a", "image": "a"},
                {"name": "b", "image": "b", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}],
            "volumes": [{"name": "x", "emptyDir": {}}],
        });
        mount_token_volume(&mut spec, "kube-api-access-abcde");
        for path in ["/initContainers/0", "/containers/0", "/containers/1"] {
            let mounts = spec
                .pointer(&format!("{path}/volumeMounts"))
                .expect("mounts");
            let mount = mounts.as_array().expect("array").last().expect("one");
            assert_eq!(mount["name"], "kube-api-access-abcde", "{path}");
            assert_eq!(mount["mountPath"], TOKEN_MOUNT_PATH);
            assert_eq!(mount["readOnly"], true);
        }
        let volume = &spec["volumes"][1];
        assert_eq!(volume["name"], "kube-api-access-abcde");
        let sources = &volume["projected"]["sources"];
        assert_eq!(sources[0]["serviceAccountToken"]["expirationSeconds"], 3607);
        assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
        assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
        assert_eq!(
            sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        let pod: skiff_api::k8s_openapi::api::core::v1::PodSpec =
            serde_json::from_value(spec).expect("a valid PodSpec");
        assert_eq!(pod.volumes.map(|v| v.len()), Some(2));
    }

    #[test]
    fn a_pod_that_mounts_the_path_itself_gets_no_volume() {
        let mut spec = json!({"containers": [{"name": "a", "image": "a",
            "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}]});
        mount_token_volume(&mut spec, "kube-api-access-abcde");
        assert!(spec.get("volumes").is_none());
        assert_eq!(
            spec["containers"][0]["volumeMounts"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
}
