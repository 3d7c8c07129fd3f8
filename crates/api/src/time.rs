//! Timestamps as Kubernetes writes them in object metadata and status.

use k8s_openapi::jiff::Timestamp;

/// The current time in RFC 3339 with seconds precision (`2026-01-02T03:04:05Z`), as
/// Kubernetes' `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_precision() {
        let now = super::now_rfc3339();
        assert!(now.ends_with('Z') && !now.contains('.'), "{now}");
    }
}
