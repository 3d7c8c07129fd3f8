//! Container health probes (liveness, readiness, startup): Kubernetes' defaults, filled in
//! by the API server and assumed by the agent for any field still unset.

use serde_json::{json, Map, Value};

/// The probe fields of a container, with the name the kubelet uses in its events.
pub const PROBES: [(&str, &str); 3] = [
    ("startupProbe", "Startup"),
    ("livenessProbe", "Liveness"),
    ("readinessProbe", "Readiness"),
];

/// Seconds to wait for one probe attempt.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
/// Seconds between two attempts.
pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
/// Consecutive successes that make a failed probe succeed.
pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
/// Consecutive failures that make a probe fail.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// Fills the defaults of each probe of `container` in place, as Kubernetes does: a field
/// left out or zero gets its default, and an `httpGet` gets path `/` and scheme `HTTP`.
pub fn default_probes(container: &mut Map<String, Value>) {
    for (field, _) in PROBES {
        let Some(probe) = container.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, value) in [
            ("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
            ("periodSeconds", DEFAULT_PERIOD_SECONDS),
            ("successThreshold", DEFAULT_SUCCESS_THRESHOLD),
            ("failureThreshold", DEFAULT_FAILURE_THRESHOLD),
        ] {
            if probe.get(key).is_none_or(|v| v.is_null() || *v == json!(0)) {
                probe.insert(key.to_string(), json!(value));
            }
        }
        if let Some(http) = probe.get_mut("httpGet").and_then(Value::as_object_mut) {
            for (key, value) in [("path", "/"), ("scheme", "HTTP")] {
                if http
                    .get(key)
                    .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
                {
                    http.insert(key.to_string(), json!(value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_get_kubernetes_defaults_and_keep_what_is_set() {
        let mut container = json!({
            "name": "c",
            "livenessProbe": {"httpGet": {"port": 8080}, "timeoutSeconds": 0},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2, "failureThreshold": 5},
        });
        default_probes(container.as_object_mut().expect("object"));
        assert_eq!(
            container["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            container["readinessProbe"],
            json!({"tcpSocket": {"port": "http"}, "timeoutSeconds": 1, "periodSeconds": 2,
                   "successThreshold": 1, "failureThreshold": 5})
        );
        assert!(container.get("startupProbe").is_none());
    }
}
