//! The git guard's decision (`cograph guard`, run as a pre-commit hook):
//! may a commit by `committer` change these repository paths? A path is
//! refused when another agent holds a live lock that meets it, read or
//! write: on the path itself, on a directory above it, or below it (a
//! path that was a directory). With `require_lock`, a path is also
//! refused unless the committer holds a write lock on it or on a
//! directory above it. Expired leases count for nothing.
//!
//! The overlap rule is the lock table's (`LockTable::holders`); this file
//! only sorts the holders it reports into "others" and "the committer's
//! own". It knows nothing of git: the paths come as the hook read them.

use std::collections::BTreeSet;

use super::Hub;
use crate::locks::{AgentId, Claim, HolderView, LockMode, LockTarget, Resource, ResourcePath};

/// One staged path the guard refuses, and why.
#[derive(Clone, Debug)]
pub struct RefusedPath {
    /// The path as given.
    pub path: String,
    /// What it was checked as: itself, or for a path no lock can name
    /// (one with a backslash), its longest directory that one can; none if it has
    /// none.
    pub checked_as: Option<ResourcePath>,
    /// Live locks of other agents that meet it, read or write.
    pub held_by_others: Vec<HolderView>,
    /// With `require_lock`: the committer holds no write lock on it or on
    /// a directory above it.
    pub not_locked: bool,
}

/// What the guard decided about one commit.
#[derive(Clone, Debug)]
pub struct GuardReport {
    /// Distinct paths checked.
    pub n_checked: usize,
    /// The paths refused, in path order; empty means the commit may go.
    pub refused: Vec<RefusedPath>,
}

impl GuardReport {
    /// Returns true if and only if no path is refused.
    pub fn allows(&self) -> bool {
        self.refused.is_empty()
    }
}

impl Hub {
    /// Checks the paths a commit changes against the lock table: see the
    /// module doc. `committer` is the agent making the commit, if known
    /// (its own locks never refuse it); without one, every lock refuses
    /// and `require_lock` refuses every path.
    pub fn check_paths(
        &self,
        committer: Option<AgentId>,
        paths: &[String],
        require_lock: bool,
    ) -> GuardReport {
        let paths: BTreeSet<&str> = paths.iter().map(String::as_str).collect();
        let mut refused = Vec::new();
        for &path in &paths {
            let checked_as = lockable(path);
            let (holders_of, exact) = match &checked_as {
                Some((p, exact)) => (
                    self.locks
                        .holders(&LockTarget::new(Resource::Path(p.clone()), LockMode::Read)),
                    *exact,
                ),
                None => (Vec::new(), false),
            };
            // Through a directory standing in for a path no lock can name,
            // only locks on it or above it cover the path; those below it
            // are on its other entries.
            let holders = holders_of.into_iter().filter(|h| exact || !h.below);
            let (own, held_by_others): (Vec<HolderView>, Vec<HolderView>) =
                holders.partition(|h| Some(h.agent) == committer);
            let not_locked =
                require_lock && !own.iter().any(|h| !h.below && h.claim == Claim::Write);
            if !held_by_others.is_empty() || not_locked {
                refused.push(RefusedPath {
                    path: path.to_string(),
                    checked_as: checked_as.map(|(p, _)| p),
                    held_by_others,
                    not_locked,
                });
            }
        }
        GuardReport {
            n_checked: paths.len(),
            refused,
        }
    }
}

/// The path a lock can name for `path`, and whether it is `path` itself:
/// the path when it is a valid lock path, else its longest ancestor
/// directory that is (a repository may hold names a lock path refuses,
/// such as one with `\`), else none.
fn lockable(path: &str) -> Option<(ResourcePath, bool)> {
    if let Ok(p) = ResourcePath::parse(path) {
        return Some((p, true));
    }
    let mut end = path.len();
    while let Some(slash) = path[..end].rfind('/') {
        if let Ok(dir) = ResourcePath::parse(&path[..=slash]) {
            return Some((dir, false));
        }
        end = slash;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::locks::Transport;
    use crate::service::{HubConfig, LockSpec};

    async fn lock(hub: &Hub, agent: AgentId, resource: &str, mode: LockMode) {
        let spec = LockSpec::Other(LockTarget::new(Resource::parse(resource).unwrap(), mode));
        hub.acquire(
            agent,
            &[spec],
            Duration::ZERO,
            None,
            Some(format!("work on {resource}")),
            &CancellationToken::new(),
            None,
        )
        .await
        .expect("granted");
    }

    fn hub() -> (tempfile::TempDir, std::sync::Arc<Hub>) {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
        (dir, hub)
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    fn refused(report: &GuardReport) -> Vec<&str> {
        report.refused.iter().map(|r| r.path.as_str()).collect()
    }

    #[tokio::test]
    async fn others_locks_on_a_path_or_a_directory_above_refuse_it_and_the_committers_do_not() {
        let (_dir, hub) = hub();
        let alice = hub.connect("alice", Transport::InProcess);
        let bob = hub.connect("bob", Transport::InProcess);
        lock(&hub, alice.id(), "path:src/net/", LockMode::Read).await;
        lock(&hub, alice.id(), "path:README.md", LockMode::Write).await;
        lock(&hub, bob.id(), "path:docs/", LockMode::Write).await;
        let staged = paths(&["src/net/tcp.rs", "src/lib.rs", "README.md", "docs/a.md"]);

        let report = hub.check_paths(Some(bob.id()), &staged, false);
        assert_eq!(report.n_checked, 4);
        assert_eq!(refused(&report), ["README.md", "src/net/tcp.rs"]);
        let held = &report.refused[1].held_by_others[0];
        assert_eq!(held.agent, alice.id());
        assert_eq!(held.resource.to_string(), "path:src/net/");
        assert_eq!(held.claim, Claim::Read, "a read lock refuses too");

        // Without a committer, Bob's own lock refuses as well.
        let anonymous = hub.check_paths(None, &staged, false);
        assert_eq!(
            refused(&anonymous),
            ["README.md", "docs/a.md", "src/net/tcp.rs"]
        );
    }

    #[tokio::test]
    async fn require_lock_wants_the_committers_write_lock_on_the_path_or_above() {
        let (_dir, hub) = hub();
        let bob = hub.connect("bob", Transport::InProcess);
        lock(&hub, bob.id(), "path:src/", LockMode::Write).await;
        lock(&hub, bob.id(), "path:notes.md", LockMode::Read).await;
        let staged = paths(&["src/a.rs", "src/b/c.rs", "notes.md", "other.md"]);
        let report = hub.check_paths(Some(bob.id()), &staged, true);
        assert_eq!(refused(&report), ["notes.md", "other.md"]);
        assert!(report.refused.iter().all(|r| r.not_locked));
        assert!(report.refused.iter().all(|r| r.held_by_others.is_empty()));
        assert!(hub.check_paths(Some(bob.id()), &staged, false).allows());
        assert_eq!(hub.check_paths(None, &staged, true).refused.len(), 4);
    }

    #[tokio::test]
    async fn a_path_no_lock_can_name_is_checked_through_its_directory() {
        let (_dir, hub) = hub();
        let alice = hub.connect("alice", Transport::InProcess);
        lock(&hub, alice.id(), "path:win/", LockMode::Write).await;
        lock(&hub, alice.id(), "path:odd/sibling.txt", LockMode::Write).await;
        let staged = paths(&["win/a\\b.txt", "odd/x\\y.txt", "top\\level.txt"]);
        let report = hub.check_paths(None, &staged, false);
        assert_eq!(
            refused(&report),
            ["win/a\\b.txt"],
            "the sibling's lock is not it"
        );
        assert_eq!(
            lockable("a/b\\c/d.rs").map(|(p, exact)| (p.to_string(), exact)),
            Some(("a/".to_string(), false))
        );
        assert!(lockable("x\\y").is_none());
    }
}
