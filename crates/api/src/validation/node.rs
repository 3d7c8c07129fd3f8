//! Nodes: the name, and the pod CIDRs the control plane hands out.

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use super::{meta, Errors};

pub fn validate_node(node: &Node, errors: &mut Errors) {
    meta::validate_object_meta(&node.metadata, false, meta::NameRule::Subdomain, errors);
    let Some(spec) = &node.spec else {
        return;
    };
    if let Some(cidr) = spec.pod_cidr.as_deref().filter(|c| !c.is_empty()) {
        if cidr.parse::<IpNet>().is_err() {
            errors.invalid(
                "spec.podCIDR",
                cidr,
                "must be a valid CIDR (such as 10.42.0.0/24)",
            );
        }
    }
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        if cidr.parse::<IpNet>().is_err() {
            errors.invalid(
                format!("spec.podCIDRs[{i}]"),
                cidr,
                "must be a valid CIDR (such as 10.42.0.0/24)",
            );
        }
    }
    let first = spec.pod_cidrs.as_ref().and_then(|c| c.first());
    if let (Some(cidr), Some(first)) = (spec.pod_cidr.as_ref(), first) {
        if cidr != first {
            errors.invalid(
                "spec.podCIDRs[0]",
                first,
                format!("must match spec.podCIDR ({cidr})"),
            );
        }
    }
}
