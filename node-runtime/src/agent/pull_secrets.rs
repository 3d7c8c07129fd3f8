//! Registry credentials for a pod's images from its `imagePullSecrets` (Secrets of type
//! `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg`), as the kubelet finds them.
//! A missing or unreadable secret means an anonymous pull, as in Kubernetes.

use serde_json::Value;
use skiff_api::k8s_openapi::api::core::v1::{Pod, Secret};
use skiff_api::k8s_openapi::ByteString;
use skiff_client::Client;

use crate::runtime::PullAuth;

/// Docker Hub's names; an image without a registry host is on Docker Hub.
const DOCKER_HUB: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The credentials the pod's pull secrets hold for `reference`'s registry, if any.
pub async fn auth_for(client: &Client, pod: &Pod, reference: &str) -> Option<PullAuth> {
    let names = pod.spec.as_ref()?.image_pull_secrets.as_ref()?;
    let registry = registry_of(reference)?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let secrets = client.api::<Secret>(Some(namespace));
    for name in names.iter().map(|r| r.name.as_str()) {
        let secret = match secrets.get(name).await {
            Ok(secret) => secret,
            Err(err) => {
                tracing::warn!(secret = name, %err, "image pull secret unavailable; pulling without it");
                continue;
            }
        };
        let data = secret.data.unwrap_or_default();
        let config = data
            .get(".dockerconfigjson")
            .or_else(|| data.get(".dockercfg"));
        if let Some(auth) = config.and_then(|c| auth_in_config(&c.0, &registry)) {
            return Some(auth);
        }
    }
    None
}

/// The registry host of an image reference (`None` for `file:` images, which need none).
pub fn registry_of(reference: &str) -> Option<String> {
    if reference.starts_with("file:") {
        return None;
    }
    let first = reference.split('/').next().unwrap_or_default();
    let is_host = reference.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    Some(if is_host { first } else { DOCKER_HUB[0] }.to_string())
}

/// `https://host:5000/v1/` → `host:5000`; Docker Hub's aliases → `docker.io`.
fn normalize(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    if DOCKER_HUB.contains(&host) {
        DOCKER_HUB[0]
    } else {
        host
    }
}

/// The entry for `registry` in a docker config (`{"auths": {...}}` or the older bare map).
pub fn auth_in_config(config: &[u8], registry: &str) -> Option<PullAuth> {
    let config: Value = serde_json::from_slice(config).ok()?;
    let auths = config.get("auths").unwrap_or(&config).as_object()?;
    let (key, entry) = auths
        .iter()
        .find(|(key, _)| normalize(key) == normalize(registry))?;
    let field = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_string);
    let (username, password) = match (field("username"), field("password")) {
        (Some(username), Some(password)) => (username, password),
        _ => {
            // `auth` is base64 of `user:password`, decoded as Kubernetes decodes secret data.
            let decoded: ByteString = serde_json::from_value(Value::String(field("auth")?)).ok()?;
            let pair = String::from_utf8(decoded.0).ok()?;
            let (username, password) = pair.split_once(':')?;
            (username.to_string(), password.to_string())
        }
    };
    Some(PullAuth {
        server: Some(key.clone()),
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_of_references() {
        let cases = [
            ("file:/x.wasm", None),
            ("nginx:1.27", Some("docker.io")),
            ("library/nginx", Some("docker.io")),
            ("ghcr.io/acme/app:1", Some("ghcr.io")),
            ("localhost/app", Some("localhost")),
            ("10.0.0.1:5000/app@sha256:00", Some("10.0.0.1:5000")),
        ];
        for (reference, registry) in cases {
            assert_eq!(registry_of(reference).as_deref(), registry, "{reference}");
        }
    }

    #[test]
    fn finds_credentials_in_docker_configs() {
        let config = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "ghcr.io": {"username": "bot", "password": "token"}
        }}"#;
        let hub = auth_in_config(config, "docker.io").expect("hub");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let ghcr = auth_in_config(config, "ghcr.io").expect("ghcr");
        assert_eq!(
            (ghcr.username.as_str(), ghcr.server.as_deref()),
            ("bot", Some("ghcr.io"))
        );
        assert_eq!(auth_in_config(config, "quay.io"), None);
        let legacy = br#"{"quay.io": {"auth": "cTpw"}}"#;
        assert_eq!(
            auth_in_config(legacy, "quay.io").map(|a| (a.username, a.password)),
            Some(("q".to_string(), "p".to_string()))
        );
        assert_eq!(auth_in_config(b"not json", "quay.io"), None);
    }
}
