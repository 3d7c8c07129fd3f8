//! Reading what volumes project from the API: ConfigMap and Secret data, and the
//! PersistentVolume a claim is bound to.

use std::collections::BTreeMap;
use std::path::PathBuf;

use skiff_api::k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret,
};
use skiff_client::Client;

use super::VolumeError;

/// A ConfigMap's `data` and `binaryData` as bytes; `None` if it does not exist.
pub async fn config_map(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    match client.api::<ConfigMap>(Some(namespace)).get(name).await {
        Ok(cm) => {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            Ok(Some(data))
        }
        Err(err) if err.is_not_found() => Ok(None),
        Err(source) => Err(VolumeError::Api {
            what: format!("configmap {name:?}"),
            source,
        }),
    }
}

/// A Secret's `data` (and `stringData`) as bytes; `None` if it does not exist.
pub async fn secret(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    match client.api::<Secret>(Some(namespace)).get(name).await {
        Ok(secret) => {
            let mut data: BTreeMap<String, Vec<u8>> = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            data.extend(
                secret
                    .string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes())),
            );
            Ok(Some(data))
        }
        Err(err) if err.is_not_found() => Ok(None),
        Err(source) => Err(VolumeError::Api {
            what: format!("secret {name:?}"),
            source,
        }),
    }
}

/// The node directory behind claim `name`: its PersistentVolume's `local.path` or
/// `hostPath.path`.
pub async fn claim_path(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<PathBuf, VolumeError> {
    let claim = match client
        .api::<PersistentVolumeClaim>(Some(namespace))
        .get(name)
        .await
    {
        Ok(claim) => claim,
        Err(err) if err.is_not_found() => {
            return Err(VolumeError::ClaimNotFound(name.to_string()));
        }
        Err(source) => {
            return Err(VolumeError::Api {
                what: format!("persistentvolumeclaim {name:?}"),
                source,
            })
        }
    };
    let Some(volume) = claim
        .spec
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty())
    else {
        return Err(VolumeError::ClaimNotBound(name.to_string()));
    };
    let pv = match client.api::<PersistentVolume>(None).get(&volume).await {
        Ok(pv) => pv,
        Err(err) if err.is_not_found() => {
            return Err(VolumeError::VolumeNotFound {
                claim: name.to_string(),
                volume,
            })
        }
        Err(source) => {
            return Err(VolumeError::Api {
                what: format!("persistentvolume {volume:?}"),
                source,
            })
        }
    };
    let spec = pv.spec.unwrap_or_default();
    spec.local
        .map(|l| l.path)
        .or(spec.host_path.map(|h| h.path))
        .map(PathBuf::from)
        .ok_or(VolumeError::VolumeNotLocal(volume))
}
