//! Hosts in network namespaces on one bridge, for partition tests: each host gets its own
//! namespace, a veth into a bridge in the test's namespace, and an address in a /24 picked
//! at random; partitions are nftables drop rules inside a host's namespace. Everything is
//! created by the test and removed when the `Network` is dropped, also on failure. Needs root.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context};

use crate::command::run;

/// A bridge and the namespaces of `hosts` hosts attached to it.
pub struct Network {
    id: String,
    subnet: [u8; 3],
    hosts: usize,
}

impl Network {
    /// Creates the bridge and `hosts` namespaces, each with its address and loopback up.
    pub fn create(hosts: usize) -> anyhow::Result<Network> {
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64;
        let network = Network {
            id: format!("{:04x}", seed & 0xffff),
            subnet: [10, 200 + (seed >> 16) as u8 % 50, (seed >> 24) as u8],
            hosts,
        };
        // Created piece by piece; whatever exists is removed by `Drop` if a step fails.
        let bridge = network.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", network.gateway()),
                "dev",
                &bridge,
            ],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for host in 0..hosts {
            let ns = network.namespace(host);
            let outside = format!("skv{}{host}", network.id);
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            )?;
            run("ip", &["link", "set", &outside, "master", &bridge])?;
            run("ip", &["link", "set", &outside, "up"])?;
            let exec = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns];
                all.extend_from_slice(args);
                run("ip", &all)
            };
            exec(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", network.address(host)),
                "dev",
                "eth0",
            ])?;
            exec(&["ip", "link", "set", "eth0", "up"])?;
            exec(&["ip", "link", "set", "lo", "up"])?;
        }
        Ok(network)
    }

    fn bridge(&self) -> String {
        format!("skb{}", self.id)
    }

    /// The namespace of `host`.
    pub fn namespace(&self, host: usize) -> String {
        format!("skiff-{}-{host}", self.id)
    }

    /// The bridge's address in the test's own namespace.
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// `host`'s address.
    pub fn address(&self, host: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 10 + host as u8)
    }

    /// Cuts `host` off from every other host (the test's namespace still reaches it).
    pub fn isolate(&self, host: usize) -> anyhow::Result<()> {
        let others: Vec<String> = (0..self.hosts)
            .filter(|h| *h != host)
            .map(|h| self.address(h).to_string())
            .collect();
        let set = others.join(", ");
        let rules = format!(
            "table inet skiff_partition {{
               chain input {{ type filter hook input priority 0; ip saddr {{ {set} }} drop; }}
               chain output {{ type filter hook output priority 0; ip daddr {{ {set} }} drop; }}
             }}"
        );
        let ns = self.namespace(host);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(rules.as_bytes())?;
                child.wait_with_output()
            })
            .context("running nft")?;
        if !out.status.success() {
            bail!(
                "nft in {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Removes `host`'s partition rules.
    pub fn heal(&self, host: usize) -> anyhow::Result<()> {
        let ns = self.namespace(host);
        run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "nft",
                "delete",
                "table",
                "inet",
                "skiff_partition",
            ],
        )
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and with it the pair.
        for host in 0..self.hosts {
            let _ = run("ip", &["netns", "delete", &self.namespace(host)]);
        }
        let _ = run("ip", &["link", "delete", &self.bridge()]);
    }
}
