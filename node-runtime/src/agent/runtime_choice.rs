//! Which of the node's runtimes runs a pod: the handler of its RuntimeClass when it names
//! one, else the first runtime that can run its pulled images.

use std::sync::Arc;

use skiff_api::k8s_openapi::api::node::v1::RuntimeClass;
use skiff_client::Client;

use crate::runtime::{ContainerRuntime, ImageRef, RuntimeSet};

/// Why no runtime of this node can run the pod.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("RuntimeClass \"{class}\" not found")]
    UnknownClass { class: String },
    #[error("RuntimeClass \"{class}\" names handler \"{handler}\", which this node does not have (it has: {have})")]
    NoHandler {
        class: String,
        handler: String,
        have: String,
    },
    #[error("reading RuntimeClass \"{class}\": {source}")]
    Lookup {
        class: String,
        #[source]
        source: skiff_client::ClientError,
    },
    #[error("no runtime of this node ({have}) can run image {reference}")]
    NoRuntimeForImage { reference: String, have: String },
}

/// The runtime the handler of the pod's RuntimeClass names.
pub async fn by_class(
    client: &Client,
    runtimes: &RuntimeSet,
    class: &str,
) -> Result<Arc<dyn ContainerRuntime>, ChoiceError> {
    let handler = match client.api::<RuntimeClass>(None).get(class).await {
        Ok(found) => found.handler,
        Err(err) if err.is_not_found() => {
            return Err(ChoiceError::UnknownClass {
                class: class.to_string(),
            })
        }
        Err(source) => {
            return Err(ChoiceError::Lookup {
                class: class.to_string(),
                source,
            })
        }
    };
    runtimes
        .by_handler(&handler)
        .cloned()
        .ok_or_else(|| ChoiceError::NoHandler {
            class: class.to_string(),
            handler,
            have: runtimes.names(),
        })
}

/// The first runtime that can run all of the pod's pulled images.
pub fn by_images(
    runtimes: &RuntimeSet,
    images: &[ImageRef],
) -> Result<Arc<dyn ContainerRuntime>, ChoiceError> {
    runtimes
        .for_images(images)
        .cloned()
        .ok_or_else(|| ChoiceError::NoRuntimeForImage {
            reference: images
                .iter()
                .find(|image| !runtimes.iter().any(|r| r.can_handle(image)))
                .or(images.first())
                .map(|image| image.reference.clone())
                .unwrap_or_default(),
            have: runtimes.names(),
        })
}
