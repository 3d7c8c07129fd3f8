//! `/version`: the server's `version.Info`, with every field Kubernetes' clients require.

use axum::Json;
use serde_json::{json, Value};

/// The Kubernetes minor version whose API Skiff serves.
const KUBERNETES_MINOR: &str = "34";

/// `GET /version` (and `/version/`). Every field of Kubernetes' `version.Info` is present,
/// since typed clients (the Python client's `VersionInfo`) refuse one without them; what
/// does not apply to a Rust build (the Go version) or is not recorded at build time (the
/// commit, its tree state and the build date) is empty, or the Unix epoch for the date, as an
/// unstamped Kubernetes build reports it.
pub async fn version() -> Json<Value> {
    Json(json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBERNETES_MINOR,
        "gitVersion": concat!("v", env!("CARGO_PKG_VERSION"), "-skiff"),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": skiff_api::platform::platform(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn version_has_every_field_kubernetes_clients_require() {
        let Json(info) = version().await;
        for field in [
            "major",
            "minor",
            "gitVersion",
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform",
        ] {
            assert!(info[field].is_string(), "{field} missing from {info}");
        }
        assert_eq!(info["minor"], "34");
    }
}
