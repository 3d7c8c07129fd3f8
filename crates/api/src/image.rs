//! What an image reference says about how to run it.

use crate::runtime_class::WASM_CLASS;

/// The RuntimeClass an image implies: `file:` references are Wasm files on the node.
pub fn runtime_class_for_image(image: &str) -> Option<&'static str> {
    image.starts_with("file:").then_some(WASM_CLASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_images_are_wasm() {
        assert_eq!(
            runtime_class_for_image("file:/x/hello.wasm"),
            Some("wasmtime")
        );
        assert_eq!(runtime_class_for_image("nginx:1.27"), None);
    }
}
