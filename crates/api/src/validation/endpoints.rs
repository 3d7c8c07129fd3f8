//! Core v1 Endpoints: every subset names an address, every address is a specified IP, every
//! port is in range with a supported protocol and (when a subset has several) a unique name,
//! as Kubernetes' `ValidateEndpoints` checks them. Unlike Kubernetes, loopback addresses are
//! accepted: single-machine clusters advertise their API servers on 127.0.0.1.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};

pub fn validate_endpoints(endpoints: &Endpoints, errors: &mut Errors) {
    meta::validate_object_meta(&endpoints.metadata, true, NameRule::Subdomain, errors);
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let path = format!("subsets[{i}]");
        let ready = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if ready.is_empty() && not_ready.is_empty() {
            errors.required(path.clone());
        }
        for (j, address) in ready.iter().enumerate() {
            validate_address(address, &format!("{path}.addresses[{j}]"), errors);
        }
        for (j, address) in not_ready.iter().enumerate() {
            validate_address(address, &format!("{path}.notReadyAddresses[{j}]"), errors);
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        let mut names = BTreeSet::new();
        for (j, port) in ports.iter().enumerate() {
            let path = format!("{path}.ports[{j}]");
            validate_port(port, ports.len() > 1, &path, errors);
            if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
                if !names.insert(name) {
                    errors.push(format!("{path}.name"), FieldErrorReason::Duplicate, name);
                }
            }
        }
    }
}

fn validate_address(address: &EndpointAddress, path: &str, errors: &mut Errors) {
    match address.ip.parse::<IpAddr>() {
        Err(_) if address.ip.is_empty() => errors.required(format!("{path}.ip")),
        Err(_) => errors.invalid(
            format!("{path}.ip"),
            &address.ip,
            "must be a valid IP address",
        ),
        Ok(ip) if ip.is_unspecified() => errors.invalid(
            format!("{path}.ip"),
            &address.ip,
            "may not be unspecified (0.0.0.0)",
        ),
        Ok(_) => {}
    }
    if let Some(hostname) = address.hostname.as_deref().filter(|h| !h.is_empty()) {
        if !meta::is_dns_label(hostname) {
            errors.invalid(format!("{path}.hostname"), hostname, "must be a DNS label");
        }
    }
    if let Some(node) = address.node_name.as_deref().filter(|n| !n.is_empty()) {
        if !meta::is_dns_subdomain(node) {
            errors.invalid(format!("{path}.nodeName"), node, "must be a DNS subdomain");
        }
    }
}

fn validate_port(port: &EndpointPort, name_required: bool, path: &str, errors: &mut Errors) {
    match port.name.as_deref().filter(|n| !n.is_empty()) {
        None if name_required => errors.required(format!("{path}.name")),
        Some(name) if !meta::is_dns_label(name) => {
            errors.invalid(format!("{path}.name"), name, "must be a DNS label")
        }
        _ => {}
    }
    if !(1..=65535).contains(&port.port) {
        errors.invalid(
            format!("{path}.port"),
            port.port,
            "must be between 1 and 65535, inclusive",
        );
    }
    match port.protocol.as_deref() {
        None | Some("") => errors.required(format!("{path}.protocol")),
        Some("TCP" | "UDP" | "SCTP") => {}
        Some(protocol) => errors.push(
            format!("{path}.protocol"),
            FieldErrorReason::NotSupported,
            format!("{protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""),
        ),
    }
}
