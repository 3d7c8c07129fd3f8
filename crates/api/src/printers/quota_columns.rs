//! ResourceQuota and LimitRange rows, as `kubectl get` prints them.

use serde_json::Value;

use super::columns::{age_of, name, s};

/// `NAME AGE REQUEST LIMIT`: `used/hard` per resource, `limits.*` under LIMIT, the rest under
/// REQUEST (`pods: 2/2, requests.cpu: 500m/1`).
pub fn quota_row(obj: &Value, _wide: bool) -> Vec<String> {
    let empty = serde_json::Map::new();
    let hard = obj
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let used = |r: &str| {
        obj.pointer("/status/used")
            .and_then(|u| u.get(r))
            .map(s)
            .unwrap_or_else(|| "0".into())
    };
    let list = |limits: bool| {
        hard.iter()
            .filter(|(r, _)| r.starts_with("limits.") == limits)
            .map(|(r, h)| format!("{r}: {}/{}", used(r), s(h)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![name(obj), age_of(obj), list(false), list(true)]
}

/// `NAME CREATED AT`, as kubectl prints LimitRanges.
pub fn limit_range_row(obj: &Value, _wide: bool) -> Vec<String> {
    vec![name(obj), s(&obj["metadata"]["creationTimestamp"])]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quota_splits_requests_and_limits() {
        let q = json!({"metadata": {"name": "q"},
                       "spec": {"hard": {"pods": "2", "limits.cpu": "1", "requests.cpu": "1"}},
                       "status": {"used": {"pods": "1", "limits.cpu": "500m"}}});
        let row = quota_row(&q, false);
        assert_eq!(row[0], "q");
        assert_eq!(row[2], "pods: 1/2, requests.cpu: 0/1");
        assert_eq!(row[3], "limits.cpu: 500m/1");
    }
}
