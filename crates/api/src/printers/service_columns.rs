//! `skiff get svc`, `get endpoints` and `get endpointslices` rows, as kubectl prints them.

use serde_json::Value;

use super::age;

/// Addresses `get endpointslices` shows before it counts the rest.
const SHOWN_ENDPOINTS: usize = 3;

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn none_if_empty(text: String, none: &str) -> String {
    if text.is_empty() {
        none.to_string()
    } else {
        text
    }
}

/// `80:30080/TCP,443/TCP`: port, nodePort if any, protocol.
pub fn service_ports(svc: &Value) -> String {
    items(&svc["spec"]["ports"])
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64().filter(|n| *n > 0) {
                Some(node_port) => format!("{}:{node_port}/{protocol}", p["port"]),
                None => format!("{}/{protocol}", p["port"]),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE (wide: SELECTOR)
pub fn service_row(svc: &Value, wide: bool) -> Vec<String> {
    let spec = &svc["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    let external = match kind {
        "ExternalName" => text(&spec["externalName"]),
        "LoadBalancer" => {
            let ingress: Vec<String> = items(&svc["status"]["loadBalancer"]["ingress"])
                .map(|i| text(&i["ip"]) + &text(&i["hostname"]))
                .collect();
            none_if_empty(ingress.join(","), "<pending>")
        }
        _ => items(&spec["externalIPs"])
            .map(text)
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut row = vec![
        text(&svc["metadata"]["name"]),
        kind.to_string(),
        none_if_empty(text(&spec["clusterIP"]), "<none>"),
        none_if_empty(external, "<none>"),
        none_if_empty(service_ports(svc), "<none>"),
        age::since(svc["metadata"]["creationTimestamp"].as_str()),
    ];
    if wide {
        let selector: Vec<String> = spec["selector"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        row.push(none_if_empty(selector.join(","), "<none>"));
    }
    row
}

/// NAME ADDRESSTYPE PORTS ENDPOINTS AGE
pub fn endpoint_slice_row(slice: &Value, _wide: bool) -> Vec<String> {
    let ports: Vec<String> = items(&slice["ports"])
        .map(|p| {
            p["port"]
                .as_i64()
                .map_or("<unset>".into(), |n| n.to_string())
        })
        .collect();
    let addresses: Vec<String> = items(&slice["endpoints"])
        .flat_map(|e| items(&e["addresses"]).map(text))
        .collect();
    let mut endpoints = addresses
        .iter()
        .take(SHOWN_ENDPOINTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if addresses.len() > SHOWN_ENDPOINTS {
        endpoints += &format!(" + {} more...", addresses.len() - SHOWN_ENDPOINTS);
    }
    vec![
        text(&slice["metadata"]["name"]),
        text(&slice["addressType"]),
        none_if_empty(ports.join(","), "<unset>"),
        none_if_empty(endpoints, "<unset>"),
        age::since(slice["metadata"]["creationTimestamp"].as_str()),
    ]
}

/// NAME ENDPOINTS AGE: the ready `ip:port` pairs, each subset's every port with every
/// address (just the address when a subset has no ports), the first three and a count of the
/// rest, as kubectl prints them; `<none>` without subsets.
pub fn endpoints_row(endpoints: &Value, _wide: bool) -> Vec<String> {
    let mut pairs = Vec::new();
    for subset in items(&endpoints["subsets"]) {
        let addresses: Vec<String> = items(&subset["addresses"])
            .map(|a| text(&a["ip"]))
            .collect();
        let ports: Vec<i64> = items(&subset["ports"])
            .filter_map(|p| p["port"].as_i64())
            .collect();
        if ports.is_empty() {
            pairs.extend(addresses);
            continue;
        }
        for port in ports {
            pairs.extend(addresses.iter().map(|ip| match ip.contains(':') {
                true => format!("[{ip}]:{port}"),
                false => format!("{ip}:{port}"),
            }));
        }
    }
    let mut shown = pairs
        .iter()
        .take(SHOWN_ENDPOINTS)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if pairs.len() > SHOWN_ENDPOINTS {
        shown += &format!(" + {} more...", pairs.len() - SHOWN_ENDPOINTS);
    }
    if items(&endpoints["subsets"]).next().is_none() {
        shown = "<none>".into();
    }
    vec![
        text(&endpoints["metadata"]["name"]),
        shown,
        age::since(endpoints["metadata"]["creationTimestamp"].as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_show_node_ports_and_headless_addresses() {
        let node_port = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort",
            "clusterIP": "10.43.0.7", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            &service_row(&node_port, false)[..5],
            [
                "web",
                "NodePort",
                "10.43.0.7",
                "<none>",
                "80:30080/TCP,53/UDP"
            ]
        );
        let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None"}});
        assert_eq!(
            &service_row(&headless, false)[..5],
            ["db", "ClusterIP", "None", "<none>", "<none>"]
        );
        let balancer = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(service_row(&balancer, false)[3], "<pending>");
    }

    #[test]
    fn slices_show_three_addresses_and_count_the_rest() {
        let endpoints: Vec<Value> = (1..=5)
            .map(|i| json!({"addresses": [format!("10.0.0.{i}")]}))
            .collect();
        let slice = json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4",
            "ports": [{"port": 8080}], "endpoints": endpoints});
        assert_eq!(
            &endpoint_slice_row(&slice, false)[..4],
            [
                "web-abcde",
                "IPv4",
                "8080",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."
            ]
        );
        let empty = json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": []});
        assert_eq!(
            &endpoint_slice_row(&empty, false)[2..4],
            ["<unset>", "<unset>"]
        );
    }

    #[test]
    fn endpoints_show_three_pairs_and_count_the_rest() {
        let ep = json!({"metadata": {"name": "web"}, "subsets": [
            {"addresses": [{"ip": "10.42.0.2"}, {"ip": "10.42.0.3"}],
             "notReadyAddresses": [{"ip": "10.42.0.9"}],
             "ports": [{"port": 8080}, {"port": 9090}]}]});
        assert_eq!(
            endpoints_row(&ep, false)[..2],
            [
                "web",
                "10.42.0.2:8080,10.42.0.3:8080,10.42.0.2:9090 + 1 more..."
            ]
        );
        let headless =
            json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.42.0.2"}]}]});
        assert_eq!(endpoints_row(&headless, false)[1], "10.42.0.2");
        let empty = json!({"metadata": {"name": "e"}});
        assert_eq!(endpoints_row(&empty, false)[1], "<none>");
    }
}
