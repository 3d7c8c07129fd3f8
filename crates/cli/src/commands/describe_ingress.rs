//! `skiff describe ingress`: an Ingress's class, addresses, TLS and rules, as kubectl shows them.

use serde_json::Value;

use crate::output::ingress_columns;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// `web:80`, `web:http`, or `Resource/name` for a typed-resource backend.
fn backend(b: &Value) -> String {
    let service = &b["service"];
    if service.is_object() {
        let port = &service["port"];
        let port = port["number"]
            .as_i64()
            .map_or_else(|| text(&port["name"]), |n| n.to_string());
        format!("{}:{port}", text(&service["name"]))
    } else {
        format!(
            "{}/{}",
            text(&b["resource"]["kind"]),
            text(&b["resource"]["name"])
        )
    }
}

/// The Ingress's description lines, then its rules as `host  path  backend` rows.
pub fn lines(ingress: &Value) -> (Vec<(String, String)>, Vec<[String; 3]>) {
    let spec = &ingress["spec"];
    let or_none = |s: String| if s.is_empty() { "<none>".into() } else { s };
    let mut out = vec![
        ("Address".to_string(), ingress_columns::addresses(ingress)),
        (
            "Ingress Class".into(),
            or_none(text(&spec["ingressClassName"])),
        ),
        (
            "Default backend".into(),
            if spec["defaultBackend"].is_object() {
                backend(&spec["defaultBackend"])
            } else {
                "<default>".into()
            },
        ),
    ];
    for tls in items(&spec["tls"]) {
        let hosts: Vec<String> = items(&tls["hosts"]).map(text).collect();
        out.push((
            "TLS".into(),
            format!(
                "{} terminates {}",
                or_none(text(&tls["secretName"])),
                hosts.join(",")
            ),
        ));
    }
    let mut rules = Vec::new();
    for rule in items(&spec["rules"]) {
        let host = match text(&rule["host"]) {
            h if h.is_empty() => "*".to_string(),
            h => h,
        };
        for path in items(&rule["http"]["paths"]) {
            let shown = match text(&path["path"]) {
                p if p.is_empty() => "/".to_string(),
                p => p,
            };
            rules.push([
                host.clone(),
                format!("{shown} ({})", text(&path["pathType"])),
                backend(&path["backend"]),
            ]);
        }
    }
    (out, rules)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rules_name_their_backends() {
        let ingress = json!({"spec": {
            "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}],
            "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/api", "pathType": "Prefix",
                 "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
                {"pathType": "ImplementationSpecific",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        let (lines, rules) = lines(&ingress);
        assert!(lines.contains(&("TLS".into(), "a-tls terminates a.example.com".into())));
        assert!(lines.contains(&("Default backend".into(), "<default>".into())));
        assert_eq!(
            rules[0],
            ["a.example.com", "/api (Prefix)", "api:http"].map(String::from)
        );
        assert_eq!(
            rules[1],
            ["a.example.com", "/ (ImplementationSpecific)", "web:80"].map(String::from)
        );
    }
}
