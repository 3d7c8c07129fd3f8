//! What an image reference says about how to run it.

/// The runtime class an image implies: `file:` references are Wasm files on the node.
pub fn runtime_class_for_image(image: &str) -> Option<&'static str> {
    image.starts_with("file:").then_some("wasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_images_are_wasm() {
        assert_eq!(runtime_class_for_image("file:/x/hello.wasm"), Some("wasm"));
        assert_eq!(runtime_class_for_image("nginx:1.27"), None);
    }
}
