//! Who is in the Raft group: members parsed from an etcd-style `--initial-cluster`, their
//! Raft ids, and the cluster identity a data dir is bound to.

use std::sync::{Arc, RwLock};

use prost::Message;
use sha2::{Digest, Sha256};

/// The membership as this member has applied it, shared by the driver (which changes it),
/// the storage and the transport.
pub type SharedCluster = Arc<RwLock<Cluster>>;

/// One control-plane member.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Member {
    /// Raft id (non-zero): the member's position in the name-sorted initial cluster, plus one.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    /// `host:port` other members reach this member's Raft listener at (empty for a lone member).
    #[prost(string, tag = "3")]
    pub peer_addr: String,
}

/// The members a cluster was started with, and which of them this process is.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct Cluster {
    #[prost(message, repeated, tag = "1")]
    pub members: Vec<Member>,
    /// This member's id.
    #[prost(uint64, tag = "2")]
    pub local: u64,
    /// Identifies the cluster: a digest of its initial members, checked on every peer connection
    /// and against the data dir, so members of different clusters never mix.
    #[prost(string, tag = "3")]
    pub cluster_id: String,
    /// The highest id any member ever had: ids are never reused.
    #[prost(uint64, tag = "4")]
    pub max_id: u64,
}

/// What a snapshot sent to a follower carries: the state machine and the membership it
/// belongs with (names and addresses are not in Raft's own configuration).
#[derive(Clone, PartialEq, Message)]
pub struct RaftSnapshot {
    /// An encoded state machine snapshot.
    #[prost(bytes = "vec", tag = "1")]
    pub state: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
    #[prost(uint64, tag = "3")]
    pub max_id: u64,
}

/// The context of a membership change entry: which member, and which proposer waits for it.
#[derive(Clone, PartialEq, Message)]
pub struct MemberChange {
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    #[prost(message, optional, tag = "2")]
    pub member: Option<Member>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("--initial-cluster: entry {0:?} is not NAME=HOST:PORT")]
    Entry(String),
    #[error("--initial-cluster: member {0:?} is listed twice")]
    Duplicate(String),
    #[error("--initial-cluster does not list this server's --name {0:?}")]
    NotListed(String),
}

impl Cluster {
    /// A one-member cluster (the dev server, or a server started without `--initial-cluster`).
    pub fn single(name: &str) -> Cluster {
        Cluster::from_members(
            name,
            vec![Member {
                id: 0,
                name: name.to_string(),
                peer_addr: String::new(),
            }],
        )
        .expect("a lone member is always listed")
    }

    /// Parses `s1=127.0.0.1:2380,s2=127.0.0.1:2381,...` for the member named `local`.
    pub fn parse(local: &str, initial_cluster: &str) -> Result<Cluster, ClusterError> {
        let mut members = Vec::new();
        for entry in initial_cluster.split(',').map(str::trim) {
            let (name, addr) = entry
                .split_once('=')
                .filter(|(n, a)| !n.is_empty() && a.contains(':'))
                .ok_or_else(|| ClusterError::Entry(entry.to_string()))?;
            if members.iter().any(|m: &Member| m.name == name) {
                return Err(ClusterError::Duplicate(name.to_string()));
            }
            members.push(Member {
                id: 0,
                name: name.to_string(),
                peer_addr: addr.to_string(),
            });
        }
        Cluster::from_members(local, members)
    }

    fn from_members(local: &str, mut members: Vec<Member>) -> Result<Cluster, ClusterError> {
        members.sort_by(|a, b| a.name.cmp(&b.name));
        let mut digest = Sha256::new();
        for (position, member) in members.iter_mut().enumerate() {
            member.id = position as u64 + 1;
            digest.update(format!("{}={};", member.name, member.peer_addr));
        }
        let local = members
            .iter()
            .find(|m| m.name == local)
            .map(|m| m.id)
            .ok_or_else(|| ClusterError::NotListed(local.to_string()))?;
        Ok(Cluster {
            max_id: members.len() as u64,
            members,
            local,
            cluster_id: hex::encode(&digest.finalize()[..8]),
        })
    }

    /// The other members.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.id != self.local)
    }

    /// Every member's Raft id.
    pub fn voters(&self) -> Vec<u64> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// A member by Raft id.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// A member by name.
    pub fn by_name(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The id the next added member gets (ids of removed members are never reused).
    pub fn next_id(&self) -> u64 {
        self.members
            .iter()
            .map(|m| m.id)
            .max()
            .unwrap_or(0)
            .max(self.max_id)
            + 1
    }

    /// Adds a member (as a membership change applies it); false if its id or name is taken
    /// or its id was used before.
    pub fn add(&mut self, member: Member) -> bool {
        if member.id < self.next_id() || self.by_name(&member.name).is_some() {
            return false;
        }
        self.max_id = member.id;
        self.members.push(member);
        true
    }

    /// Whether `id` belonged to a member that a membership change removed: ids are never
    /// reused, so an id up to `max_id` that is not a member any more was removed.
    pub fn was_removed(&self, id: u64) -> bool {
        id != 0 && id <= self.max_id && self.member(id).is_none()
    }

    /// Removes the member with `id`; false if there is none.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.members.len();
        self.members.retain(|m| m.id != id);
        self.members.len() != before
    }

    /// `name=addr,...` as given on the command line (sorted by name).
    pub fn describe(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_addr))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_sorted_names_and_the_digest_ignores_order() {
        let a = Cluster::parse("s2", "s3=h:3,s1=h:1,s2=h:2").expect("parse");
        let b = Cluster::parse("s1", "s1=h:1,s2=h:2,s3=h:3").expect("parse");
        assert_eq!(a.local, 2);
        assert_eq!(b.local, 1);
        assert_eq!(a.cluster_id, b.cluster_id);
        assert_eq!(a.voters(), vec![1, 2, 3]);
        assert_eq!(a.peers().map(|m| m.id).collect::<Vec<_>>(), vec![1, 3]);
        let other = Cluster::parse("s1", "s1=h:1,s2=h:2,s3=h:4").expect("parse");
        assert_ne!(
            other.cluster_id, a.cluster_id,
            "another peer list is another cluster"
        );
    }

    #[test]
    fn added_members_get_fresh_ids_and_unique_names() {
        let mut c = Cluster::parse("s1", "s1=h:1,s2=h:2,s3=h:3").expect("parse");
        let member = |id, name: &str| Member {
            id,
            name: name.into(),
            peer_addr: "h:9".into(),
        };
        assert_eq!(c.next_id(), 4);
        assert!(!c.add(member(4, "s2")), "names are unique");
        assert!(!c.add(member(2, "s4")), "ids are unique");
        assert!(c.add(member(4, "s4")));
        assert!(!c.was_removed(4));
        assert!(
            !c.was_removed(5),
            "an id not yet added is not a removed one"
        );
        assert!(c.remove(4));
        assert!(c.was_removed(4));
        assert!(!c.remove(4));
        assert_eq!(c.next_id(), 5, "a removed member's id is not reused");
        assert!(!c.add(member(4, "s5")));
    }

    #[test]
    fn bad_lists_name_the_problem() {
        assert_eq!(
            Cluster::parse("s1", "s1=h:1,s2"),
            Err(ClusterError::Entry("s2".into()))
        );
        assert_eq!(
            Cluster::parse("s1", "s1=h:1,s1=h:2"),
            Err(ClusterError::Duplicate("s1".into()))
        );
        assert_eq!(
            Cluster::parse("s4", "s1=h:1"),
            Err(ClusterError::NotListed("s4".into()))
        );
    }
}
