//! The runtimes of one node, and the choice of one per pod.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ContainerRuntime, ImageRef, RuntimeError};

/// The runtimes a node has, in the order they were added (the first that can run an image
/// is chosen for it).
#[derive(Clone, Default)]
pub struct RuntimeSet {
    runtimes: Vec<Arc<dyn ContainerRuntime>>,
}

impl RuntimeSet {
    /// Adds a runtime; a later one with the same name replaces the earlier.
    pub fn push(&mut self, runtime: Arc<dyn ContainerRuntime>) {
        self.runtimes.retain(|r| r.name() != runtime.name());
        self.runtimes.push(runtime);
    }

    pub fn is_empty(&self) -> bool {
        self.runtimes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn ContainerRuntime>> {
        self.runtimes.iter()
    }

    /// Their names, for messages (`wasm, hollow`).
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.runtimes.iter().map(|r| r.name()).collect();
        names.join(", ")
    }

    /// The runtime a RuntimeClass handler names.
    pub fn by_handler(&self, handler: &str) -> Option<&Arc<dyn ContainerRuntime>> {
        self.runtimes.iter().find(|r| r.name() == handler)
    }

    /// Each image reference that a container of these runtimes (running or exited) was made
    /// from, with one such container as `name (id)`.
    pub async fn image_users(&self) -> Result<HashMap<String, String>, RuntimeError> {
        let mut users = HashMap::new();
        for runtime in &self.runtimes {
            for container in runtime.list_containers(None).await? {
                users
                    .entry(container.image.reference)
                    .or_insert_with(|| format!("{} ({})", container.name, container.id));
            }
        }
        Ok(users)
    }

    /// The first runtime that can run every one of the pulled images.
    pub fn for_images(&self, images: &[ImageRef]) -> Option<&Arc<dyn ContainerRuntime>> {
        self.runtimes
            .iter()
            .find(|r| images.iter().all(|image| r.can_handle(image)))
    }
}
