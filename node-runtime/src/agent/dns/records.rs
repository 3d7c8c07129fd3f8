//! The cluster's DNS records, as kube-dns and CoreDNS's `kubernetes` plugin serve them, built
//! from Services and EndpointSlices and looked up by name. Pure, for table tests.
//!
//! - `SVC.NS.svc.DOMAIN` A: the ClusterIP; for a headless Service, its ready endpoints' IPs.
//! - `HOST.SVC.NS.svc.DOMAIN` A: a headless Service's ready endpoint whose `hostname` is HOST
//!   (StatefulSet pods with a `subdomain`), or whose IP written with dashes is HOST.
//! - `_PORT._PROTO.SVC.NS.svc.DOMAIN` SRV: the named port, at the Service's name (one record),
//!   or at each ready endpoint of a headless Service.
//! - `A-B-C-D.NS.pod.DOMAIN` A: A.B.C.D (kube-dns's "pods insecure").

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use skiff_api::k8s_openapi::api::core::v1::Service;
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;

/// Label naming the Service a slice belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// IPv4 addresses.
    A,
    /// Service locations.
    Srv,
    /// Any other type (AAAA, TXT, ...): cluster names have none.
    Other,
}

/// One SRV record: where a named port is served.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The target's name, fully qualified without the final dot.
    pub target: String,
    pub port: u16,
    /// The target's address, for the additional section.
    pub address: Option<Ipv4Addr>,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name is outside the cluster domain: ask the upstream resolvers.
    Foreign,
    /// No such cluster name (NXDOMAIN).
    NoName,
    /// The name exists but has no records of the wanted type (NOERROR, empty).
    NoData,
    Addresses(Vec<Ipv4Addr>),
    Locations(Vec<Location>),
}

/// One ready endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    ip: Ipv4Addr,
    hostname: Option<String>,
    /// Port name → port number, as the endpoint's slice gives them.
    ports: BTreeMap<String, u16>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    name: String,
    /// Lower case: `tcp`, `udp`, `sctp`.
    protocol: String,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceRecords {
    /// `None`: headless.
    cluster_ip: Option<Ipv4Addr>,
    ports: Vec<Port>,
    endpoints: Vec<Endpoint>,
}

/// Every Service's records under one cluster domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// `cluster.local`, lower case, without dots at either end.
    domain: String,
    /// By (namespace, name).
    services: BTreeMap<(String, String), ServiceRecords>,
    /// Namespaces with at least one Service.
    namespaces: BTreeSet<String>,
}

impl Zone {
    /// The records of `services` (ExternalName ones and those without an address yet are
    /// left out) and their ready endpoints in `slices`, under `domain`.
    pub fn build<'a>(
        domain: &str,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Zone {
        let mut endpoints: BTreeMap<(String, String), BTreeSet<Endpoint>> = BTreeMap::new();
        for slice in slices {
            if slice.address_type != "IPv4" {
                continue;
            }
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let namespace = slice.metadata.namespace.clone().unwrap_or_default();
            let ports: BTreeMap<String, u16> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    let port = u16::try_from(p.port?).ok()?;
                    Some((p.name.clone().unwrap_or_default(), port))
                })
                .collect();
            let own = endpoints.entry((namespace, service.clone())).or_default();
            for endpoint in &slice.endpoints {
                // Kubernetes: an unknown readiness counts as ready.
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(ip) = address.parse::<Ipv4Addr>() {
                        own.insert(Endpoint {
                            ip,
                            hostname: endpoint.hostname.as_ref().map(|h| h.to_lowercase()),
                            ports: ports.clone(),
                        });
                    }
                }
            }
        }
        let mut zone = Zone {
            domain: normalize(domain),
            services: BTreeMap::new(),
            namespaces: BTreeSet::new(),
        };
        for service in services {
            let Some(spec) = service.spec.as_ref() else {
                continue;
            };
            let cluster_ip = match spec.cluster_ip.as_deref() {
                Some("None") => None,
                Some(ip) => match ip.parse::<Ipv4Addr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => continue,
                },
                None => continue, // ExternalName, or not allocated yet
            };
            let namespace = service
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let name = service.metadata.name.clone().unwrap_or_default();
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(Port {
                        name: p.name.clone().unwrap_or_default().to_lowercase(),
                        protocol: p.protocol.as_deref().unwrap_or("TCP").to_lowercase(),
                        port: u16::try_from(p.port).ok()?,
                    })
                })
                .collect();
            let key = (namespace.to_lowercase(), name.to_lowercase());
            let endpoints = endpoints
                .remove(&(namespace, name))
                .unwrap_or_default()
                .into_iter()
                .collect();
            zone.namespaces.insert(key.0.clone());
            zone.services.insert(
                key,
                ServiceRecords {
                    cluster_ip,
                    ports,
                    endpoints,
                },
            );
        }
        zone
    }

    /// The answer for `name` (absolute or not; a final dot is ignored; any case).
    pub fn lookup(&self, name: &str, wanted: Wanted) -> Answer {
        let name = normalize(name);
        let rest = if name == self.domain {
            ""
        } else if let Some(rest) = name.strip_suffix(&format!(".{}", self.domain)) {
            rest
        } else {
            return Answer::Foreign;
        };
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        match labels.as_slice() {
            [] | ["svc"] | ["pod"] => Answer::NoData,
            [namespace, "svc"] if self.namespaces.contains(*namespace) => Answer::NoData,
            [service, namespace, "svc"] => match self.service(namespace, service) {
                Some(records) => self.service_answer(namespace, service, records, wanted),
                None => Answer::NoName,
            },
            [port, proto, service, namespace, "svc"]
                if port.starts_with('_') && proto.starts_with('_') =>
            {
                match self.service(namespace, service) {
                    Some(records) => self.port_answer(
                        namespace,
                        service,
                        records,
                        &port[1..],
                        &proto[1..],
                        wanted,
                    ),
                    None => Answer::NoName,
                }
            }
            [host, service, namespace, "svc"] => {
                let found = self
                    .service(namespace, service)
                    .and_then(|records| records.endpoints.iter().find(|e| host_label(e) == *host));
                match (found, wanted) {
                    (Some(endpoint), Wanted::A) => Answer::Addresses(vec![endpoint.ip]),
                    (Some(_), _) => Answer::NoData,
                    (None, _) => Answer::NoName,
                }
            }
            [dashed, _namespace, "pod"] => match (dashed.replace('-', ".").parse(), wanted) {
                (Ok(ip), Wanted::A) => Answer::Addresses(vec![ip]),
                (Ok::<Ipv4Addr, _>(_), _) => Answer::NoData,
                (Err(_), _) => Answer::NoName,
            },
            _ => Answer::NoName,
        }
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&ServiceRecords> {
        self.services
            .get(&(namespace.to_string(), name.to_string()))
    }

    fn service_answer(
        &self,
        namespace: &str,
        service: &str,
        records: &ServiceRecords,
        wanted: Wanted,
    ) -> Answer {
        match (wanted, records.cluster_ip) {
            (Wanted::A, Some(ip)) => Answer::Addresses(vec![ip]),
            (Wanted::A, None) if records.endpoints.is_empty() => Answer::NoData,
            (Wanted::A, None) => {
                Answer::Addresses(records.endpoints.iter().map(|e| e.ip).collect())
            }
            (Wanted::Srv, _) => {
                let locations: Vec<Location> = records
                    .ports
                    .iter()
                    .flat_map(|port| self.locations(namespace, service, records, port))
                    .collect();
                found(locations)
            }
            (Wanted::Other, _) => Answer::NoData,
        }
    }

    fn port_answer(
        &self,
        namespace: &str,
        service: &str,
        records: &ServiceRecords,
        port_name: &str,
        protocol: &str,
        wanted: Wanted,
    ) -> Answer {
        let Some(port) = records
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == protocol)
        else {
            return Answer::NoName;
        };
        match wanted {
            Wanted::Srv => found(self.locations(namespace, service, records, port)),
            _ => Answer::NoData,
        }
    }

    /// Where `port` is served: the Service's own name, or each endpoint of a headless one.
    fn locations(
        &self,
        namespace: &str,
        service: &str,
        records: &ServiceRecords,
        port: &Port,
    ) -> Vec<Location> {
        let service_name = format!("{service}.{namespace}.svc.{}", self.domain);
        match records.cluster_ip {
            Some(ip) => vec![Location {
                target: service_name,
                port: port.port,
                address: Some(ip),
            }],
            None => records
                .endpoints
                .iter()
                .filter_map(|endpoint| {
                    Some(Location {
                        target: format!("{}.{service_name}", host_label(endpoint)),
                        port: *endpoint.ports.get(&port.name)?,
                        address: Some(endpoint.ip),
                    })
                })
                .collect(),
        }
    }
}

fn found(locations: Vec<Location>) -> Answer {
    if locations.is_empty() {
        Answer::NoData
    } else {
        Answer::Locations(locations)
    }
}

/// An endpoint's own label: its hostname, else its IP with dashes.
fn host_label(endpoint: &Endpoint) -> String {
    endpoint
        .hostname
        .clone()
        .unwrap_or_else(|| endpoint.ip.to_string().replace('.', "-"))
}

fn normalize(name: &str) -> String {
    name.trim_matches('.').to_lowercase()
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
