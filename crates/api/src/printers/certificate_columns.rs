//! The columns of CertificateSigningRequests, as `kubectl get csr` shows them.

use serde_json::Value;

use super::columns::{age_of, name, s};

/// NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION
pub fn csr_row(csr: &Value, _wide: bool) -> Vec<String> {
    let duration = csr["spec"]["expirationSeconds"]
        .as_i64()
        .map(human_duration)
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(csr),
        age_of(csr),
        s(&csr["spec"]["signerName"]),
        s(&csr["spec"]["username"]),
        duration,
        condition(csr),
    ]
}

/// `Pending`, `Approved`, `Denied`, with `,Failed` and `,Issued` as kubectl joins them.
pub fn condition(csr: &Value) -> String {
    let mut parts: Vec<String> = csr["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"].as_str().unwrap_or("True") == "True")
        .filter_map(|c| c["type"].as_str().map(str::to_string))
        .collect();
    if parts.is_empty() {
        parts.push("Pending".into());
    }
    if csr["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        parts.push("Issued".into());
    }
    parts.join(",")
}

/// `1h`, `10m`, `365d` as kubectl prints a requested duration.
fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_read_as_kubectl_prints_them() {
        let pending =
            json!({"metadata": {"name": "n1"}, "spec": {"signerName": "s", "username": "u"}});
        assert_eq!(csr_row(&pending, false)[5], "Pending");
        assert_eq!(csr_row(&pending, false)[4], "<none>");
        let issued = json!({"spec": {"expirationSeconds": 3600},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="}});
        assert_eq!(condition(&issued), "Approved,Issued");
        assert_eq!(csr_row(&issued, false)[4], "1h");
        let denied = json!({"status": {"conditions": [{"type": "Denied", "status": "True"}]}});
        assert_eq!(condition(&denied), "Denied");
    }
}
