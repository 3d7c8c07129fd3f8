//! The node's resolver configuration (`/etc/resolv.conf`): where names outside the cluster
//! are forwarded, and what pods with `dnsPolicy: Default` get.

use std::net::IpAddr;
use std::path::Path;

use crate::runtime::DnsConfig;

/// The host's resolver configuration file.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of the real upstream resolvers, behind its 127.0.0.53 stub.
const RESOLVED_UPSTREAMS: &str = "/run/systemd/resolve/resolv.conf";

/// The node's resolver settings as pods can use them: `/etc/resolv.conf`, or where it names
/// only loopback stubs (unreachable from a pod's network namespace), systemd-resolved's
/// upstream list when there is one (as the kubelet's `--resolv-conf` is set on such hosts).
pub fn node_resolvers() -> DnsConfig {
    let host = read(Path::new(HOST_RESOLV_CONF));
    let stub_only =
        !host.nameservers.is_empty() && host.nameservers.iter().all(IpAddr::is_loopback);
    if stub_only && Path::new(RESOLVED_UPSTREAMS).exists() {
        read(Path::new(RESOLVED_UPSTREAMS))
    } else {
        host
    }
}

/// Reads `path`; an unreadable file is an empty configuration (no upstream resolvers).
pub fn read(path: &Path) -> DnsConfig {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "no resolver configuration");
            DnsConfig::default()
        }
    }
}

/// The `nameserver`, `search` (or `domain`) and `options` lines of resolv.conf text; the
/// last `search`/`domain` line wins, as in glibc.
pub fn parse(text: &str) -> DnsConfig {
    let mut config = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                    config.nameservers.push(ip);
                }
            }
            Some("search" | "domain") => {
                config.searches = words.map(str::to_string).collect();
            }
            Some("options") => config.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_searches_and_options() {
        let config = parse(
            "# generated\nnameserver 10.0.0.2\nnameserver  ::1 # v6\nnameserver bogus\n\
             domain old.example\nsearch corp.example example.com\noptions ndots:2 edns0\n",
        );
        assert_eq!(
            config.nameservers,
            vec![
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(config.searches, vec!["corp.example", "example.com"]);
        assert_eq!(config.options, vec!["ndots:2", "edns0"]);
    }
}
