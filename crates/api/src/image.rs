//! Image references: what one says about how to run it, and whether it is well formed.
//!
//! Two forms are accepted: `file:/abs/path/guest.wasm` (a Wasm file on the node) and OCI
//! references, `[registry[:port]/]repository[:tag][@sha256:<64 hex>]`, after the grammar of
//! the distribution project's `reference` package.

use crate::runtime_class::WASM_CLASS;

/// The RuntimeClass an image implies: `file:` references are Wasm files on the node.
pub fn runtime_class_for_image(image: &str) -> Option<&'static str> {
    image.starts_with("file:").then_some(WASM_CLASS)
}

/// Kubernetes' default `imagePullPolicy`: `Always` for a registry image named by the tag
/// `latest` or by no tag (and no digest), else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.starts_with("file:") || image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// Why an image reference is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImageReferenceError {
    #[error("a file: image must be an absolute path on the node (file:/path/to/guest.wasm)")]
    FileNotAbsolute,
    #[error("a file: image must be a normalized path: no empty, \".\" or \"..\" segments")]
    FileNotNormalized,
    #[error("a file: image must name a .wasm file")]
    FileNotWasm,
    #[error(
        "must be a file: image or an image reference \
         ([registry/]repository[:tag][@sha256:<64 hex digits>]): {0}"
    )]
    Malformed(&'static str),
}

/// The longest repository name the distribution grammar allows.
const NAME_MAX: usize = 255;
/// The longest tag the distribution grammar allows.
const TAG_MAX: usize = 128;

/// The path a `file:` reference names (`file:/p` and `file:///p` alike), or `None` for
/// other references. The path is not checked; [`check_reference`] does that.
pub fn file_image_path(image: &str) -> Option<&str> {
    let path = image.strip_prefix("file:")?;
    Some(match path.strip_prefix("//") {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    })
}

/// Checks that `image` is a well-formed reference; `file:` paths must be absolute,
/// normalized and end in `.wasm`.
pub fn check_reference(image: &str) -> Result<(), ImageReferenceError> {
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ImageReferenceError::Malformed(
            "it contains whitespace or control characters",
        ));
    }
    match file_image_path(image) {
        Some(path) => check_file_path(path),
        None => check_oci_reference(image),
    }
}

fn check_file_path(path: &str) -> Result<(), ImageReferenceError> {
    let Some(relative) = path.strip_prefix('/') else {
        return Err(ImageReferenceError::FileNotAbsolute);
    };
    let segments: Vec<&str> = relative.split('/').collect();
    if segments.iter().any(|s| matches!(*s, "" | "." | "..")) {
        return Err(ImageReferenceError::FileNotNormalized);
    }
    let name = segments.last().copied().unwrap_or_default();
    if name.len() <= ".wasm".len() || !name.ends_with(".wasm") {
        return Err(ImageReferenceError::FileNotWasm);
    }
    Ok(())
}

fn check_oci_reference(image: &str) -> Result<(), ImageReferenceError> {
    use ImageReferenceError::Malformed;
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or(Malformed("the digest must be sha256:<64 hex digits>"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Malformed("the digest must be sha256:<64 hex digits>"));
        }
    }
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let valid = tag.len() <= TAG_MAX
            && tag.bytes().next().is_some_and(word)
            && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
        if !valid {
            return Err(Malformed("invalid tag"));
        }
    }
    if name.is_empty() {
        return Err(Malformed("the repository name is empty"));
    }
    if name.len() > NAME_MAX {
        return Err(Malformed(
            "the repository name is longer than 255 characters",
        ));
    }
    let mut components = name.split('/').peekable();
    let first = components.peek().copied().unwrap_or_default();
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        check_domain(first)?;
        components.next();
    }
    for component in components {
        if !is_path_component(component) {
            return Err(Malformed(
                "repository path components are lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes",
            ));
        }
    }
    Ok(())
}

/// `host[:port]`, the host being dot-separated DNS labels.
fn check_domain(domain: &str) -> Result<(), ImageReferenceError> {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !host.split('.').all(label) {
        return Err(ImageReferenceError::Malformed("invalid registry host"));
    }
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(ImageReferenceError::Malformed("invalid registry port"));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let separator = &component[i..];
        i += if separator.starts_with("__") {
            2
        } else if separator.starts_with(['.', '_']) {
            1
        } else if separator.starts_with('-') {
            separator.bytes().take_while(|b| *b == b'-').count()
        } else {
            return false;
        };
    }
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

    #[test]
    fn pull_policy_defaults_as_kubernetes() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("127.0.0.1:5000/app", "Always"),
            ("127.0.0.1:5000/app:v1", "IfNotPresent"),
            ("localhost:5000/app@sha256:00", "IfNotPresent"),
            ("file:/x/hello.wasm", "IfNotPresent"),
        ] {
            assert_eq!(default_pull_policy(image), policy, "{image}");
        }
    }

    #[test]
    fn file_references_are_absolute_normalized_wasm_paths() {
        for ok in ["file:/x/hello.wasm", "file:///srv/a-b.wasm", "file:/g.wasm"] {
            assert_eq!(check_reference(ok), Ok(()), "{ok}");
        }
        use ImageReferenceError::*;
        for (bad, why) in [
            ("file:/dev/zero", FileNotWasm),
            ("file:/etc/shadow", FileNotWasm),
            ("file:/x/.wasm", FileNotWasm),
            ("file:relative.wasm", FileNotAbsolute),
            ("file:../x.wasm", FileNotAbsolute),
            ("file:/a/../etc/x.wasm", FileNotNormalized),
            ("file:/a//x.wasm", FileNotNormalized),
            ("file:/a/./x.wasm", FileNotNormalized),
            ("file:/a/x.wasm/", FileNotNormalized),
        ] {
            assert_eq!(check_reference(bad), Err(why), "{bad}");
        }
        assert!(check_reference("file:/a/x .wasm").is_err());
        assert_eq!(file_image_path("file:///srv/a.wasm"), Some("/srv/a.wasm"));
        assert_eq!(file_image_path("nginx"), None);
    }

    #[test]
    fn oci_references_follow_the_distribution_grammar() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for ok in [
            "i".to_string(),
            "nginx".into(),
            "nginx:1.27".into(),
            "library/nginx:latest".into(),
            "registry.example/app:1".into(),
            "localhost:5000/team/my_app__x--y.z:v1.0-rc_1".into(),
            "localhost/app".into(),
            format!("ghcr.io/org/app@{digest}"),
            format!("ghcr.io/org/app:1@{digest}"),
        ] {
            assert_eq!(check_reference(&ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "/nginx",
            "nginx/",
            "a//b",
            "a..b",
            "-a",
            "registry.example:port/app",
            "-bad.example/app",
            "nginx@sha256:abc",
            "nginx@md5:0123",
            "nginx latest",
        ] {
            assert!(
                matches!(check_reference(bad), Err(ImageReferenceError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert!(check_reference(&format!("a:{}", "t".repeat(129))).is_err());
        assert!(check_reference(&"a".repeat(256)).is_err());
    }
}
