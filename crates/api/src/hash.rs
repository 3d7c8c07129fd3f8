//! `pod-template-hash`: a stable name for a pod template.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use sha2::{Digest, Sha256};

/// Characters Kubernetes uses for safe encoded names (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A short hash of the template's canonical JSON, stable across processes and versions
/// (unlike std's randomly seeded hasher), rendered in Kubernetes' safe alphabet.
pub fn pod_template_hash(template: &PodTemplateSpec) -> String {
    let canonical = serde_json::to_vec(template).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    let mut value = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let mut out = String::with_capacity(10);
    for _ in 0..10 {
        out.push(ALPHABET[(value % ALPHABET.len() as u64) as usize] as char);
        value /= ALPHABET.len() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn stable_and_sensitive_to_changes() {
        let a = pod_template_hash(&template("file:/a.wasm"));
        assert_eq!(a, pod_template_hash(&template("file:/a.wasm")));
        assert_ne!(a, pod_template_hash(&template("file:/b.wasm")));
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
    }
}
