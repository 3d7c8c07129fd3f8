//! Masquerading pod traffic that leaves the cluster CIDR (flannel's `ip-masq`): packets from
//! this node's pods to anywhere outside the pods' CIDRs leave with the node's address, so the
//! outside world answers without knowing the pod CIDRs. One nftables table, `ip skiff`,
//! replaced as a whole through the `nft` binary.

use std::process::Stdio;

use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt;

use super::NetworkError;

/// The nftables table Skiff owns (`nft list table ip skiff`).
pub const TABLE: &str = "skiff";

/// The ruleset: the table made empty (created first, so that deleting it cannot fail), then
/// one masquerade rule.
fn ruleset(pod_cidr: Ipv4Net, cluster_cidr: Ipv4Net) -> String {
    format!(
        "table ip {TABLE} {{}}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n  chain postrouting {{\n    \
         type nat hook postrouting priority srcnat; policy accept;\n    \
         ip saddr {pod_cidr} ip daddr != {cluster_cidr} masquerade\n  }}\n}}\n"
    )
}

/// Masquerades traffic from `pod_cidr` to destinations outside `cluster_cidr`.
pub async fn ensure(pod_cidr: Ipv4Net, cluster_cidr: Ipv4Net) -> Result<(), NetworkError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetworkError::io("running nft".into()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset(pod_cidr, cluster_cidr).as_bytes())
            .await
            .map_err(NetworkError::io("writing to nft".into()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(NetworkError::io("running nft".into()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Nft {
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_traffic_leaving_the_cluster_is_masqueraded() {
        let rules = ruleset(
            "10.42.3.0/24".parse().unwrap(),
            "10.42.0.0/16".parse().unwrap(),
        );
        assert!(rules.contains("ip saddr 10.42.3.0/24 ip daddr != 10.42.0.0/16 masquerade"));
        assert!(rules.starts_with("table ip skiff {}\ndelete table ip skiff\n"));
    }
}
