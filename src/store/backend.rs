//! The store interface: what a backend (SQLite in `sqlite.rs`, PostgreSQL
//! in `postgres.rs`) gives the store of `mod.rs`.
//!
//! A backend has two sides, each on a connection of its own. The writer
//! side is owned by the store's one writer thread: it raises the restart
//! epoch when the store opens and writes each group of commits and events
//! in one transaction, durable before it returns. The reader side answers
//! every read (history, old versions, recovery) beside the writer. Both
//! are synchronous; the store calls readers from blocking threads, never
//! from async tasks.
//!
//! What a backend must keep, whatever it stores in: a batch is written
//! whole or not at all; commits are logged in the order they are
//! submitted; `heads` and the counters move with the commits in the same
//! transaction; the fence of a head never goes down; and every record read
//! is checked by `rows.rs` before anyone sees it.

use super::{CommitRecord, Job, OperatorEvent, Recovered, StoreError};
use crate::graph::{ContentHash, Function, FunctionId, Revision};

/// Connects a backend's writer: run on the store's writer thread, which
/// then owns the connection until the store closes.
pub(super) type ConnectWriter = Box<dyn FnOnce() -> Result<Box<dyn Writer>, StoreError> + Send>;

/// The writer's connection.
pub(super) trait Writer: Send {
    /// Raises the restart epoch by one, durably, and returns it.
    fn bump_epoch(&mut self) -> Result<u64, StoreError>;

    /// Writes a group of commits and events in one transaction; returns
    /// each event's sequence number in order. `injected` (the test
    /// failpoint) is returned in place of the commit, after every row is
    /// written, so the transaction rolls back.
    fn write_batch(
        &mut self,
        jobs: &[Job],
        injected: Option<StoreError>,
    ) -> Result<Vec<u64>, StoreError>;
}

/// A reading connection.
pub(super) trait Reader: Send {
    /// A function version by content hash.
    fn version(&mut self, hash: &ContentHash) -> Result<Option<Function>, StoreError>;

    /// Commits, newest first: those touching `function` if given, with
    /// revisions below `before` if given, at most `limit`.
    fn history(
        &mut self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError>;

    /// Commits touching `function` with revisions in `(after, upto]`,
    /// oldest first.
    fn commits_between(
        &mut self,
        function: FunctionId,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<CommitRecord>, StoreError>;

    /// The newest revision whose commit left `function` at `hash`.
    fn revision_of_version(
        &mut self,
        function: FunctionId,
        hash: &ContentHash,
    ) -> Result<Option<Revision>, StoreError>;

    /// The version of `function` right after `revision`.
    fn version_at(
        &mut self,
        function: FunctionId,
        revision: Revision,
    ) -> Result<Option<ContentHash>, StoreError>;

    /// Every commit, oldest first.
    fn all_commits(&mut self) -> Result<Vec<CommitRecord>, StoreError>;

    /// The commit `agent_name` made under `request_id`, if any.
    fn commit_for_request(
        &mut self,
        agent_name: &str,
        request_id: &str,
    ) -> Result<Option<CommitRecord>, StoreError>;

    /// The newest `limit` operator events (naming `function` if given),
    /// oldest first.
    fn events(
        &mut self,
        function: Option<FunctionId>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, StoreError>;

    /// The program rebuilt from the heads, with fences and counters.
    fn recover(&mut self, epoch: u64) -> Result<Recovered, StoreError>;
}
