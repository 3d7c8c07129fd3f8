//! Timestamps as Kubernetes writes them in object metadata and status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// The current time with seconds precision, as Kubernetes stores a `metav1.Time`.
pub fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The current time in RFC 3339 with seconds precision (`2026-01-02T03:04:05Z`), as
/// Kubernetes' `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    now().0.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_precision() {
        let now = super::now_rfc3339();
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
        let typed = serde_json::to_value(super::now()).expect("json");
        let typed = typed.as_str().expect("a string");
        assert!(typed.ends_with('Z') && !typed.contains('.'), "{typed}");
    }
}
