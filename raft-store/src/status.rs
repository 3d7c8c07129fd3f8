//! What a member publishes about itself and the group.

/// What one member knows of the group, as `skiff cluster status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's Raft id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate` or `PreCandidate`.
    pub role: String,
    /// The leader's id as this member knows it (0: none).
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    /// Set to the term while this member leads and has applied an entry of its own term:
    /// the moment leader-only work (controllers, scheduler) may start, fenced to that term.
    pub leading: Option<u64>,
    /// On the leader: each member's id and the highest log index known to be replicated to it.
    pub progress: Vec<(u64, u64)>,
    /// The voting members' ids.
    pub voters: Vec<u64>,
    /// Members catching up before they vote.
    pub learners: Vec<u64>,
    /// This member was removed from the group and has stopped.
    pub removed: bool,
    /// Why this member stopped serving, once it has.
    pub stopped: Option<StopCause>,
}

/// Why a member's Raft loop ended: what `/healthz` and `/readyz` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// The server is shutting down.
    Shutdown,
    /// A membership change removed this member from the group.
    Removed,
    /// Writing or reading the Raft log or state failed; the message is the storage error.
    StorageFailed(String),
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::Shutdown => write!(f, "this member is shutting down"),
            StopCause::Removed => write!(f, "this member was removed from the cluster"),
            StopCause::StorageFailed(err) => write!(
                f,
                "the store failed and this member stopped serving until it is restarted: {err}"
            ),
        }
    }
}

impl MemberStatus {
    /// Nothing leads or serves here any more: leader-only work stops, readiness fails.
    pub(crate) fn mark_stopped(&mut self, cause: StopCause) {
        self.stopped = Some(cause);
        self.role = "Stopped".into();
        self.leader = raft::INVALID_ID;
        self.leading = None;
    }
}
