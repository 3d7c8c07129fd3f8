//! `skiff get ingress` and `get ingressclass` rows, as kubectl prints them.

use serde_json::Value;

use super::age;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The hosts of an Ingress's rules (`*` for a rule without one), comma-separated.
pub fn hosts(ingress: &Value) -> String {
    let hosts: Vec<String> = items(&ingress["spec"]["rules"])
        .map(|r| match text(&r["host"]) {
            host if host.is_empty() => "*".to_string(),
            host => host,
        })
        .collect();
    if hosts.is_empty() {
        "*".into()
    } else {
        hosts.join(",")
    }
}

/// The addresses in `status.loadBalancer.ingress`, comma-separated.
pub fn addresses(ingress: &Value) -> String {
    items(&ingress["status"]["loadBalancer"]["ingress"])
        .map(|i| text(&i["ip"]) + &text(&i["hostname"]))
        .collect::<Vec<_>>()
        .join(",")
}

/// NAME CLASS HOSTS ADDRESS PORTS AGE
pub fn ingress_row(ingress: &Value, _wide: bool) -> Vec<String> {
    let class = ingress["spec"]["ingressClassName"]
        .as_str()
        .unwrap_or("<none>");
    let tls = items(&ingress["spec"]["tls"]).next().is_some();
    vec![
        text(&ingress["metadata"]["name"]),
        class.to_string(),
        hosts(ingress),
        addresses(ingress),
        if tls { "80, 443" } else { "80" }.to_string(),
        age::since(ingress["metadata"]["creationTimestamp"].as_str()),
    ]
}

/// NAME CONTROLLER PARAMETERS AGE
pub fn ingress_class_row(class: &Value, _wide: bool) -> Vec<String> {
    let parameters = &class["spec"]["parameters"];
    let parameters = if parameters.is_object() {
        let group = parameters["apiGroup"].as_str().unwrap_or("core");
        format!(
            "{group}/{}/{}",
            text(&parameters["kind"]),
            text(&parameters["name"])
        )
    } else {
        "<none>".into()
    };
    vec![
        text(&class["metadata"]["name"]),
        text(&class["spec"]["controller"]),
        parameters,
        age::since(class["metadata"]["creationTimestamp"].as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_as_kubectl_prints_them() {
        let ingress = json!({"metadata": {"name": "web"},
            "spec": {"ingressClassName": "skiff",
                "rules": [{"host": "a.example.com"}, {"http": {}}],
                "tls": [{"hosts": ["a.example.com"], "secretName": "a"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}}});
        let row = ingress_row(&ingress, false);
        assert_eq!(
            row[..5],
            [
                "web",
                "skiff",
                "a.example.com,*",
                "10.0.0.1,10.0.0.2",
                "80, 443"
            ]
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {"defaultBackend": {}}});
        assert_eq!(
            ingress_row(&bare, false)[..5],
            ["x", "<none>", "*", "", "80"]
        );
        let class =
            json!({"metadata": {"name": "skiff"}, "spec": {"controller": "skiff.dev/ingress"}});
        assert_eq!(
            ingress_class_row(&class, false)[..3],
            ["skiff", "skiff.dev/ingress", "<none>"]
        );
    }
}
