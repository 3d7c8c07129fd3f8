//! Service allocation with several API servers: three `skiff server` processes in one Raft
//! group each create Services at the same time; no ClusterIP or nodePort is handed out twice,
//! and once the node port range is spent the rest are refused.

use std::collections::BTreeSet;
use std::thread;

use skiff_e2e::{Cluster, Skiff};

/// Services created through each server.
const PER_SERVER: usize = 5;

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: NodePort\n  \
         selector: {{app: {name}}}\n  ports:\n  - {{port: 80}}\n"
    )
}

#[test]
fn servers_creating_services_at_once_never_share_an_address_or_port() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    // 12 ports for 15 Services.
    let cluster = Cluster::start(tmp.path(), 3, &["--service-node-port-range", "30000-30011"])?;
    let creators: Vec<_> = cluster
        .members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let cli = Skiff::new(member.url());
            thread::spawn(move || {
                (0..PER_SERVER)
                    .map(|n| {
                        let out = cli.run_with_stdin(
                            &["apply", "-f", "-"],
                            Some(&service(&format!("s{i}-{n}"))),
                        )?;
                        Ok((out.success, out.stderr))
                    })
                    .collect::<anyhow::Result<Vec<(bool, String)>>>()
            })
        })
        .collect();
    let mut refused = 0;
    for creator in creators {
        for (created, stderr) in creator.join().expect("creator thread")? {
            if !created {
                assert!(stderr.contains("range is full"), "{stderr}");
                refused += 1;
            }
        }
    }
    let services = cluster.cli().items(&["get", "services"])?;
    let mine: Vec<_> = services
        .iter()
        .filter(|s| s["metadata"]["name"] != "kubernetes")
        .collect();
    let addresses: BTreeSet<String> = mine
        .iter()
        .filter_map(|s| s["spec"]["clusterIP"].as_str().map(str::to_string))
        .collect();
    let ports: BTreeSet<i64> = mine
        .iter()
        .filter_map(|s| s["spec"]["ports"][0]["nodePort"].as_i64())
        .collect();
    assert_eq!(mine.len(), 12, "every port taken once");
    assert_eq!(addresses.len(), 12, "distinct addresses: {addresses:?}");
    assert_eq!(ports, (30000..=30011).collect(), "distinct ports");
    assert_eq!(refused, 3);
    Ok(())
}
