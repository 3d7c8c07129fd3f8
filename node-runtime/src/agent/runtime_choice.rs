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
    #[error(
        "image {reference} is a Linux container image; this node has no Linux container \
         runtime (it has: {have})"
    )]
    LinuxImage { reference: String, have: String },
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
    runtimes.for_images(images).cloned().ok_or_else(|| {
        let unrunnable = images
            .iter()
            .find(|image| !runtimes.iter().any(|r| r.can_handle(image)));
        let reference = unrunnable.or(images.first()).map(|i| i.reference.clone());
        let (reference, have) = (reference.unwrap_or_default(), runtimes.names());
        // A Linux image (it has layers) that no runtime takes: the node lacks the Linux
        // runtime. (Else the pod mixes images that no one runtime runs together.)
        if unrunnable.is_some_and(|image| !image.layers.is_empty()) {
            ChoiceError::LinuxImage { reference, have }
        } else {
            ChoiceError::NoRuntimeForImage { reference, have }
        }
    })
}
