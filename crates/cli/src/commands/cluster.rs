//! `skiff cluster status|add|remove`: the control plane's Raft group, seen from every server,
//! and its membership.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;
use skiff_client::Client;
use skiff_control_plane::{Cluster, JoinConf, Member};

use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Members, leader, term, commit and applied index, and each member's lag, asked of every
    /// server in `--server`.
    Status,
    /// Add a member (a learner until it has caught up, then a voter); then start it with
    /// `skiff server --name NAME --join URL...`.
    Add(ClusterAddArgs),
    /// Remove a member; it stops serving.
    Remove(ClusterRemoveArgs),
}

#[derive(Args, Debug)]
pub struct ClusterAddArgs {
    /// The new member's `--name`.
    pub name: String,
    /// Where the new member will accept Raft traffic (its `--peer-listen`), IP:PORT.
    #[arg(long)]
    pub peer_address: String,
}

#[derive(Args, Debug)]
pub struct ClusterRemoveArgs {
    /// The member's name.
    pub name: String,
}

pub async fn run(command: ClusterCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Status => status(opts).await,
        ClusterCommand::Add(args) => add(args, opts).await,
        ClusterCommand::Remove(args) => remove(args, opts).await,
    }
}

/// One server's answer, or why there is none.
struct Row {
    url: String,
    status: Result<Value, String>,
}

async fn status(opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let mut rows = Vec::new();
    for url in client.servers().to_vec() {
        let status = client
            .for_server(&url)
            .cluster_status(false)
            .await
            .map_err(|e| e.to_string());
        rows.push(Row { url, status });
    }
    print!("{}", render(&rows));
    if rows.iter().all(|r| r.status.is_err()) {
        anyhow::bail!("no server answered");
    }
    Ok(())
}

async fn add(args: ClusterAddArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    let member = client.add_member(&args.name, &args.peer_address).await?;
    println!(
        "added {} (id {}) as a learner; it becomes a voter once caught up. Start it with:",
        args.name, member["id"]
    );
    println!(
        "  skiff server --name {} --join {} --peer-listen {} --data-dir DIR --listen ADDR",
        args.name,
        client.servers().join(","),
        args.peer_address
    );
    Ok(())
}

async fn remove(args: ClusterRemoveArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = super::client(opts)?;
    client.remove_member(&args.name).await?;
    println!("removed {}", args.name);
    Ok(())
}

/// What a new member needs to join: the group's members (itself included, after
/// `skiff cluster add`) and Raft configuration, read consistently from a running member.
pub async fn join_info(
    urls: &str,
    name: &str,
    credentials: &skiff_client::Credentials,
) -> anyhow::Result<(Cluster, JoinConf)> {
    let client = Client::with_credentials(&[urls.to_string()], credentials).context("--join")?;
    let status = client
        .cluster_status(true)
        .await
        .with_context(|| format!("asking {urls} for the cluster's members"))?;
    let members: Vec<Member> = status["members"]
        .as_array()
        .context("the cluster's answer lists no members")?
        .iter()
        .map(|m| Member {
            id: m["id"].as_u64().unwrap_or_default(),
            name: m["name"].as_str().unwrap_or_default().to_string(),
            peer_addr: m["peerAddress"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    let local = members
        .iter()
        .find(|m| m.name == name)
        .map(|m| m.id)
        .with_context(|| {
            format!(
                "{name:?} is not a member of the cluster at {urls}: run `skiff cluster add {name} \
             --peer-address IP:PORT` first"
            )
        })?;
    let ids = |field: &str| -> Vec<u64> {
        status[field]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let cluster = Cluster {
        members,
        local,
        cluster_id: status["clusterId"].as_str().unwrap_or_default().to_string(),
        max_id: status["maxId"].as_u64().unwrap_or_default(),
    };
    Ok((
        cluster,
        JoinConf {
            voters: ids("voters"),
            learners: ids("learners"),
        },
    ))
}

fn render(rows: &[Row]) -> String {
    let answers: Vec<&Value> = rows.iter().filter_map(|r| r.status.as_ref().ok()).collect();
    let u64_of = |v: &Value, field: &str| v[field].as_u64().unwrap_or(0);
    // The leader's commit index is the reference for lag; any member's is a lower bound.
    let commit = answers
        .iter()
        .map(|v| u64_of(v, "commitIndex"))
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{:<12} {:<4} {:<10} {:<6} {:<8} {:<8} {:<6} SERVER\n",
        "NAME", "ID", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG"
    );
    for row in rows {
        match &row.status {
            Ok(v) => out.push_str(&format!(
                "{:<12} {:<4} {:<10} {:<6} {:<8} {:<8} {:<6} {}\n",
                v["member"]["name"].as_str().unwrap_or("?"),
                u64_of(&v["member"], "id"),
                v["role"].as_str().unwrap_or("?"),
                u64_of(v, "term"),
                u64_of(v, "commitIndex"),
                u64_of(v, "appliedIndex"),
                commit.saturating_sub(u64_of(v, "appliedIndex")),
                row.url
            )),
            Err(err) => out.push_str(&format!(
                "{:<12} {:<4} {:<10} {:<6} {:<8} {:<8} {:<6} {} ({err})\n",
                "?", "-", "unreachable", "-", "-", "-", "-", row.url
            )),
        }
    }
    let leader = answers.iter().find_map(|v| v["leader"]["name"].as_str());
    let members = answers
        .iter()
        .find(|v| v["role"] == "Leader")
        .or(answers.first())
        .and_then(|v| v["members"].as_array());
    match leader {
        Some(name) => out.push_str(&format!("leader: {name}\n")),
        None => out.push_str("leader: none (no quorum among the servers that answered)\n"),
    }
    if let Some(members) = members {
        let listed: Vec<String> = members
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap_or("?");
                let learner = if m["role"] == "learner" {
                    ", learner"
                } else {
                    ""
                };
                match m["matched"].as_u64() {
                    Some(matched) => format!("{name} (replicated to {matched}{learner})"),
                    None if learner.is_empty() => name.to_string(),
                    None => format!("{name} (learner)"),
                }
            })
            .collect();
        out.push_str(&format!("members: {}\n", listed.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lag_is_measured_against_the_highest_commit_and_silence_is_shown() {
        let member = |name: &str, id: u64, role: &str, commit: u64, applied: u64| {
            json!({"member": {"name": name, "id": id}, "role": role, "term": 4,
                   "commitIndex": commit, "appliedIndex": applied, "leader": {"name": "s1"},
                   "members": [{"name": "s1", "matched": 90}, {"name": "s2", "matched": 80}]})
        };
        let rows = vec![
            Row {
                url: "http://a".into(),
                status: Ok(member("s1", 1, "Leader", 100, 100)),
            },
            Row {
                url: "http://b".into(),
                status: Ok(member("s2", 2, "Follower", 95, 90)),
            },
            Row {
                url: "http://c".into(),
                status: Err("connection refused".into()),
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("s1") && lines[1].contains("Leader"));
        assert!(lines[2].split_whitespace().nth(6) == Some("10"), "{text}");
        assert!(lines[3].contains("unreachable") && lines[3].contains("connection refused"));
        assert!(text.contains("leader: s1"));
        assert!(text.contains("s2 (replicated to 80)"));
    }
}
