//! `skiff describe svc`: a Service's addresses, ports and endpoints, as kubectl shows them.

use serde_json::Value;

/// The Service's description lines; `slices` are its EndpointSlices.
pub fn lines(svc: &Value, slices: &[Value]) -> Vec<(String, String)> {
    let spec = &svc["spec"];
    let text = |v: &Value| v.as_str().unwrap_or("<none>").to_string();
    let selector = spec["selector"]
        .as_object()
        .filter(|m| !m.is_empty())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "<none>".into());
    let mut out = vec![
        ("Selector".to_string(), selector),
        (
            "Type".into(),
            spec["type"].as_str().unwrap_or("ClusterIP").into(),
        ),
        ("IP".into(), text(&spec["clusterIP"])),
    ];
    if let Some(ips) = spec["clusterIPs"].as_array() {
        let ips: Vec<String> = ips.iter().map(text).collect();
        out.push(("IPs".into(), ips.join(",")));
    }
    let endpoints: Vec<(String, i64, String)> = slices
        .iter()
        .flat_map(|slice| {
            let ready: Vec<String> = slice["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["conditions"]["ready"] != false)
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .map(|a| text(&a))
                .collect();
            let ports: Vec<(String, i64)> = slice["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| (text(&p["name"]), p["port"].as_i64().unwrap_or(0)))
                .collect();
            ports.into_iter().flat_map(move |(name, port)| {
                ready
                    .clone()
                    .into_iter()
                    .map(move |ip| (name.clone(), port, ip))
            })
        })
        .collect();
    for port in spec["ports"].as_array().into_iter().flatten() {
        let name = port["name"].as_str().unwrap_or("<unset>");
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        out.push((
            "Port".into(),
            format!("{name}  {}/{protocol}", port["port"]),
        ));
        let target = match &port["targetPort"] {
            Value::Null => port["port"].to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push(("TargetPort".into(), format!("{target}/{protocol}")));
        if let Some(node_port) = port["nodePort"].as_i64() {
            out.push(("NodePort".into(), format!("{name}  {node_port}/{protocol}")));
        }
        let mine: Vec<String> = endpoints
            .iter()
            .filter(|(n, _, _)| n == port["name"].as_str().unwrap_or_default())
            .map(|(_, p, ip)| format!("{ip}:{p}"))
            .collect();
        let shown = if mine.is_empty() {
            "<none>".to_string()
        } else {
            mine.join(",")
        };
        out.push(("Endpoints".into(), shown));
    }
    out.push((
        "Session Affinity".into(),
        spec["sessionAffinity"].as_str().unwrap_or("None").into(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_show_their_node_port_and_ready_endpoints() {
        let svc = json!({"spec": {"type": "NodePort", "selector": {"app": "web"},
            "clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7"],
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080}]}});
        let slice = json!({"ports": [{"name": "http", "port": 8080}], "endpoints": [
            {"addresses": ["10.1.0.1"], "conditions": {"ready": true}},
            {"addresses": ["10.1.0.2"], "conditions": {"ready": false}}]});
        let got: Vec<String> = lines(&svc, &[slice])
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            got,
            [
                "Selector: app=web",
                "Type: NodePort",
                "IP: 10.43.0.7",
                "IPs: 10.43.0.7",
                "Port: http  80/TCP",
                "TargetPort: web/TCP",
                "NodePort: http  30080/TCP",
                "Endpoints: 10.1.0.1:8080",
                "Session Affinity: None",
            ]
        );
    }
}
