//! configMap and secret sources (as volumes or projected sources): the object read through
//! the API and its keys written as files.

use skiff_api::k8s_openapi::api::core::v1::KeyToPath;

use super::atomic_writer::Payload;
use super::projection::{self, KeySource};
use super::{sources, Inputs, VolumeError};

/// Which object a configMap or secret source reads.
#[derive(Clone, Copy)]
pub enum KeyKind {
    ConfigMap,
    Secret,
}

/// A configMap or secret source: the object and which of its keys become files.
pub struct Keys<'a> {
    kind: KeyKind,
    name: &'a str,
    items: Option<&'a [KeyToPath]>,
    optional: Option<bool>,
}

impl<'a> Keys<'a> {
    pub fn new(
        kind: KeyKind,
        name: &'a str,
        items: Option<&'a [KeyToPath]>,
        optional: Option<bool>,
    ) -> Self {
        Keys {
            kind,
            name,
            items,
            optional,
        }
    }

    /// Reads the object and adds its files to `payload`, each with `default_mode` unless
    /// its item says otherwise.
    pub async fn add(
        &self,
        inputs: &Inputs<'_>,
        namespace: &str,
        default_mode: u32,
        payload: &mut Payload,
    ) -> Result<(), VolumeError> {
        let (data, kind) = match self.kind {
            KeyKind::ConfigMap => (
                sources::config_map(inputs.client, namespace, self.name).await?,
                "configmap",
            ),
            KeyKind::Secret => (
                sources::secret(inputs.client, namespace, self.name).await?,
                "secret",
            ),
        };
        let source = KeySource {
            kind,
            name: self.name,
            data: data.as_ref(),
            items: self.items,
            optional: self.optional.unwrap_or(false),
        };
        projection::keys(&source, default_mode, payload)
    }
}
