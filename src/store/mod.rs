//! The durable store: one SQLite file holding every function version by
//! content hash, the commit log, the current heads and the counters.
//!
//! Writes go through one writer thread that owns the write connection and
//! practises group commit: it takes every commit waiting in its queue,
//! writes them in one transaction, and acknowledges each only after that
//! transaction is durable (WAL with `synchronous=FULL`, so one fsync for the
//! whole group). Commits arrive in revision order and are written in that
//! order. If a write or fsync fails, the store is poisoned: that batch and
//! every later one are refused, and `fatal()` fires so the server stops
//! instead of carrying on with an unknown durable state.
//!
//! Reads (history, old versions) use a separate connection; WAL lets them
//! run beside the writer. Callers on an async runtime run them with
//! `spawn_blocking`.
//!
//! Files: `schema.rs` (tables and statements, the schema version rule),
//! `format.rs` (the stored forms of edit ops and function versions),
//! `failpoint.rs` (an injected write failure, for tests of the poison path).
//!
//! This module knows the graph's types but nothing of locks or MCP.

mod failpoint;
mod format;
mod schema;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::graph::{
    ContentHash, EditOp, Function, FunctionEntry, FunctionId, Program, QualifiedName, Revision,
    decode_function, function_hash,
};

pub use failpoint::{FAILPOINT_ENV, Failpoint};
pub(crate) use format::version_row;
pub use format::{decode_ops, encode_ops};
pub use schema::SCHEMA_VERSION;

/// The store's file inside the data directory.
pub const DB_FILE: &str = "cograph.db";
/// Held with an exclusive file lock by the one process that owns the store.
pub const LOCK_FILE: &str = "cograph.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the data directory {path} is in use by another cograph process; connect to it (`cograph stdio`) or stop it first"
    )]
    InUse { path: PathBuf },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the store was written by a newer cograph (schema {found}, this build reads {supported})"
    )]
    Schema { found: i64, supported: i64 },
    #[error("the store stopped after a write failure: {0}")]
    Poisoned(String),
    #[error("{FAILPOINT_ENV}={value}: {reason}")]
    Failpoint { value: String, reason: String },
}

/// One function a commit changed, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub function: FunctionId,
    pub name: QualifiedName,
    pub before: Option<ContentHash>,
    pub after: Option<ContentHash>,
}

/// One entry of the commit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub revision: Revision,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub agent_id: String,
    pub agent_name: String,
    pub purpose: Option<String>,
    pub summary: String,
    /// The ops as applied, function references resolved to ids. Replaying
    /// every commit's ops in order from an empty program rebuilds the
    /// current program.
    pub ops: Vec<EditOp>,
    pub changes: Vec<ChangeRecord>,
}

/// What a commit writes: its log entry, the new function versions, the new
/// heads, and the counters.
#[derive(Clone, Debug)]
pub struct CommitWrite {
    pub record: CommitRecord,
    /// New versions by hash (the store ignores ones it already has).
    pub versions: Vec<Arc<Function>>,
    /// The fencing token a write lock gave for each function it relied on.
    pub fences: BTreeMap<FunctionId, u64>,
    pub next_function_id: u64,
}

/// What `open` found in the store.
pub struct Recovered {
    pub program: Program,
    /// The highest fencing token each function has been committed under.
    pub fences: BTreeMap<FunctionId, u64>,
    /// This run's restart epoch: one higher than any earlier run's, already
    /// durable. Fencing tokens of this run start at `epoch << 40`.
    pub epoch: u64,
    pub n_commits: u64,
}

struct Job {
    write: CommitWrite,
    ack: oneshot::Sender<Result<(), StoreError>>,
}

pub struct Store {
    dir: PathBuf,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Mutex<Connection>,
    fatal: watch::Receiver<Option<String>>,
    /// Held for the store's lifetime: the OS releases it if the process
    /// dies, so a crashed owner never locks the directory forever.
    _lock: File,
}

/// The most commits the writer puts in one transaction.
const MAX_GROUP: usize = 512;

impl Store {
    /// Opens (creating if needed) the store in `dir`, takes the directory's
    /// lock, recovers the program and starts the writer. The test failpoint
    /// comes from `COGRAPH_FAILPOINT` (see `failpoint.rs`); normally unset.
    pub fn open(dir: &Path) -> Result<(Store, Recovered), StoreError> {
        Store::open_with(dir, Failpoint::from_env()?)
    }

    /// `open` with an explicit failpoint instead of the environment's.
    pub fn open_with(dir: &Path, failpoint: Failpoint) -> Result<(Store, Recovered), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StoreError::Dir {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
        let path = dir.join(DB_FILE);
        let mut conn = schema::open_connection(&path)?;
        schema::migrate(&mut conn)?;
        let epoch = schema::bump_epoch(&mut conn)?;
        let recovered = recover(&conn, epoch)?;
        let reader = schema::open_connection(&path)?;

        let (tx, rx) = mpsc::channel::<Job>();
        let (fatal_tx, fatal_rx) = watch::channel(None);
        let writer = std::thread::Builder::new()
            .name("cograph-store-writer".into())
            .spawn(move || writer_loop(conn, rx, fatal_tx, failpoint))
            .map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok((
            Store {
                dir: dir.to_path_buf(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                reader: Mutex::new(reader),
                fatal: fatal_rx,
                _lock: lock,
            },
            recovered,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a commit. The receiver resolves once the commit is durable (or
    /// the write failed). Commits are written in the order they are queued.
    pub fn submit(&self, write: CommitWrite) -> oneshot::Receiver<Result<(), StoreError>> {
        let (ack, rx) = oneshot::channel();
        let jobs = self.jobs.lock().expect("store queue lock");
        match jobs.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(Job { write, ack }) {
                    let _ = job
                        .ack
                        .send(Err(StoreError::Poisoned("the writer has stopped".into())));
                }
            }
            None => {
                let _ = ack.send(Err(StoreError::Poisoned("the store is closed".into())));
            }
        }
        rx
    }

    /// Fires with a message when a write fails; the server must stop.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// Stops the writer after it has written everything queued.
    pub fn close(&self) {
        self.jobs.lock().expect("store queue lock").take();
        if let Some(handle) = self.writer.lock().expect("store writer lock").take() {
            let _ = handle.join();
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().expect("store reader lock");
        f(&conn)
    }

    /// A function version by content hash.
    pub fn version(&self, hash: &ContentHash) -> Result<Option<Function>, StoreError> {
        self.read(|c| load_version(c, hash))
    }

    /// Commits, newest first: those touching `function` if given, with
    /// revisions below `before` if given, at most `limit`.
    pub fn history(
        &self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|c| schema::history(c, function, before, limit))
    }

    /// Commits touching `function` with revisions in `(after, upto]`, oldest
    /// first.
    pub fn commits_between(
        &self,
        function: FunctionId,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|c| schema::commits_between(c, function, after, upto))
    }

    /// The revision whose commit left `function` at version `hash`, if any.
    pub fn revision_of_version(
        &self,
        function: FunctionId,
        hash: &ContentHash,
    ) -> Result<Option<Revision>, StoreError> {
        self.read(|c| schema::revision_of_version(c, function, hash))
    }

    /// The version of `function` right after `revision` (None if it did not
    /// exist then).
    pub fn version_at(
        &self,
        function: FunctionId,
        revision: Revision,
    ) -> Result<Option<ContentHash>, StoreError> {
        self.read(|c| schema::version_at(c, function, revision))
    }

    /// Every commit, oldest first (for replay checks and export).
    pub fn all_commits(&self) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(schema::all_commits)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a store without owning it: for `cograph log`, `export` and
/// `verify` while a hub may be running (WAL lets readers in beside it).
pub struct StoreReader {
    conn: Connection,
}

impl StoreReader {
    pub fn open(dir: &Path) -> Result<StoreReader, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Dir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no cograph store here"),
            });
        }
        let conn = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        schema::check_readable(&conn)?;
        Ok(StoreReader { conn })
    }

    /// The current program, every version's hash checked.
    pub fn program(&self) -> Result<Program, StoreError> {
        Ok(recover(&self.conn, 0)?.program)
    }

    pub fn history(
        &self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        schema::history(&self.conn, function, before, limit)
    }

    pub fn all_commits(&self) -> Result<Vec<CommitRecord>, StoreError> {
        schema::all_commits(&self.conn)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn load_version(conn: &Connection, hash: &ContentHash) -> Result<Option<Function>, StoreError> {
    let body: Option<Vec<u8>> = conn
        .query_row(
            "SELECT body FROM versions WHERE hash = ?1",
            params![&hash.0[..]],
            |row| row.get(0),
        )
        .optional()?;
    let Some(body) = body else { return Ok(None) };
    let f =
        decode_function(&body).map_err(|e| StoreError::Corrupt(format!("version {hash}: {e}")))?;
    if function_hash(&f) != *hash {
        return Err(StoreError::Corrupt(format!(
            "version {hash} does not hash to its key"
        )));
    }
    Ok(Some(f))
}

/// Rebuilds the program from the heads, checking every version's hash.
fn recover(conn: &Connection, epoch: u64) -> Result<Recovered, StoreError> {
    let mut program = Program::new();
    let mut fences = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT function_id, hash, revision, fence FROM heads ORDER BY function_id")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (id, hash, revision, fence) = row?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("head of #{id} has a bad hash")))?;
            let hash = ContentHash(hash);
            let f = load_version(conn, &hash)?.ok_or_else(|| {
                StoreError::Corrupt(format!("head of #{id} names missing version {hash}"))
            })?;
            let id = FunctionId(id as u64);
            if program.id_of(&f.name).is_some() {
                return Err(StoreError::Corrupt(format!(
                    "two heads are named `{}`",
                    f.name
                )));
            }
            program.put(
                id,
                FunctionEntry {
                    function: Arc::new(f),
                    hash,
                    revision: Revision(revision as u64),
                },
            );
            if fence > 0 {
                fences.insert(id, fence as u64);
            }
        }
    }
    let next_function = schema::meta(conn, "next_function_id")?.unwrap_or(1);
    program.reserve_function_ids(next_function as u64);
    let (n_commits, last): (i64, Option<i64>) =
        conn.query_row("SELECT COUNT(*), MAX(revision) FROM commits", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    program.set_revision(Revision(last.unwrap_or(0) as u64));
    Ok(Recovered {
        program,
        fences,
        epoch,
        n_commits: n_commits as u64,
    })
}

fn writer_loop(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    fatal: watch::Sender<Option<String>>,
    failpoint: Failpoint,
) {
    let mut poisoned: Option<String> = None;
    let mut n_batches: u64 = 0;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Some(reason) = &poisoned {
            for job in batch {
                let _ = job.ack.send(Err(StoreError::Poisoned(reason.clone())));
            }
            continue;
        }
        let inject = failpoint
            .fails_batch(n_batches)
            .then(failpoint::injected_write_error);
        n_batches += 1;
        let result = schema::write_batch(&mut conn, batch.iter().map(|j| &j.write), inject);
        match result {
            Ok(()) => {
                for job in batch {
                    let _ = job.ack.send(Ok(()));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(error = %reason, "store write failed; stopping");
                // `fatal` fires before any caller hears of the failure, so
                // no one can act on a refused commit while the server
                // still looks healthy.
                let _ = fatal.send(Some(reason.clone()));
                for job in batch {
                    let _ = job.ack.send(Err(StoreError::Poisoned(reason.clone())));
                }
                poisoned = Some(reason);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::graph::apply;
    use serde_json::json;

    /// Builds commits the way the service does: applies the ops to the
    /// program so far and turns the result into a log entry, its new
    /// versions and heads.
    #[derive(Default)]
    pub(in crate::store) struct Commits {
        pub program: Program,
    }

    impl Commits {
        pub fn next(&mut self, ops: serde_json::Value) -> CommitWrite {
            self.next_fenced(ops, BTreeMap::new())
        }

        pub fn next_fenced(
            &mut self,
            ops: serde_json::Value,
            fences: BTreeMap<FunctionId, u64>,
        ) -> CommitWrite {
            let ops: Vec<EditOp> = serde_json::from_value(ops).expect("valid ops");
            let revision = self.program.revision().next();
            let applied = apply(&self.program, &ops, revision).expect("ops apply");
            let mut changes = Vec::new();
            let mut versions = Vec::new();
            for (id, c) in &applied.changes {
                changes.push(ChangeRecord {
                    function: *id,
                    name: c.name().clone(),
                    before: c.before.as_ref().map(|e| e.hash),
                    after: c.after.as_ref().map(|e| e.hash),
                });
                versions.extend(c.after.as_ref().map(|e| e.function.clone()));
            }
            self.program = applied.program;
            self.program.set_revision(revision);
            CommitWrite {
                record: CommitRecord {
                    revision,
                    time_ms: 1_700_000_000_000 + revision.0,
                    agent_id: "ag_test".into(),
                    agent_name: "test".into(),
                    purpose: None,
                    summary: format!("commit {}", revision.0),
                    ops,
                    changes,
                },
                versions,
                fences,
                next_function_id: self.program.next_function_id().0,
            }
        }
    }

    pub fn create(name: &str, value: i64) -> serde_json::Value {
        json!([{"create_function": {
            "name": name, "params": [], "returns": "i64",
            "body": {"text": format!("%0 = const {value}\n%1 = return %0\n")}
        }}])
    }

    pub fn set_const(id: u64, value: i64) -> serde_json::Value {
        json!([{"set_op": {"function": id, "node": "%0", "op": format!("const {value}")}}])
    }

    fn open(dir: &Path) -> (Store, Recovered) {
        Store::open_with(dir, Failpoint::none()).expect("the store opens")
    }

    fn commit(store: &Store, write: CommitWrite) {
        store
            .submit(write)
            .blocking_recv()
            .expect("the writer answers")
            .expect("the commit is durable");
    }

    fn revisions(records: &[CommitRecord]) -> Vec<u64> {
        records.iter().map(|c| c.revision.0).collect()
    }

    /// Three functions, then `n_edits` commits setting #1 and #2 in turn
    /// (#1 at even revisions from 4, #2 at odd ones).
    fn store_with_edits(dir: &Path, n_edits: u64) -> (Store, Commits) {
        let (store, _) = open(dir);
        let mut log = Commits::default();
        for (name, value) in [("m::a", 1), ("m::b", 2), ("n::c", 3)] {
            commit(&store, log.next(create(name, value)));
        }
        for k in 0..n_edits {
            commit(&store, log.next(set_const(1 + k % 2, 100 + k as i64)));
        }
        (store, log)
    }

    #[test]
    fn opening_an_empty_directory_creates_the_store_and_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (_store, recovered) = open(&data);
        assert!(data.join(DB_FILE).is_file());
        assert!(data.join(LOCK_FILE).is_file());
        assert!(recovered.program.is_empty());
        assert_eq!(recovered.program.revision(), Revision(0));
        assert_eq!(recovered.program.next_function_id(), FunctionId(1));
        assert_eq!(recovered.n_commits, 0);
        assert_eq!(recovered.epoch, 1);
    }

    #[test]
    fn every_open_raises_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let epochs: Vec<u64> = (0..3).map(|_| open(dir.path()).1.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
    }

    #[test]
    fn a_second_owner_of_the_directory_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let second = Store::open_with(dir.path(), Failpoint::none());
        assert!(
            matches!(second, Err(StoreError::InUse { .. })),
            "{:?}",
            second.err()
        );
        drop(first);
        assert_eq!(open(dir.path()).1.epoch, 2);
    }

    #[test]
    fn reopening_recovers_heads_revision_counters_and_fences() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        commit(
            &store,
            log.next_fenced(set_const(2, 7), BTreeMap::from([(FunctionId(2), 42)])),
        );
        commit(
            &store,
            log.next(json!([{"delete_function": {"function": 3}}])),
        );
        drop(store);
        let (_store, recovered) = open(dir.path());
        assert_eq!(recovered.n_commits, 5);
        assert_eq!(recovered.program.revision(), Revision(5));
        assert_eq!(recovered.program.root_hash(), log.program.root_hash());
        assert_eq!(recovered.program.len(), 2);
        assert_eq!(
            recovered.program.get(FunctionId(2)).unwrap().revision,
            Revision(4)
        );
        // Ids are never reused, also after the highest one was deleted.
        assert_eq!(recovered.program.next_function_id(), FunctionId(4));
        assert_eq!(recovered.fences, BTreeMap::from([(FunctionId(2), 42)]));
    }

    #[test]
    fn a_lower_fence_never_lowers_the_high_water_mark() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        for token in [42, 17] {
            commit(
                &store,
                log.next_fenced(
                    set_const(1, token as i64),
                    BTreeMap::from([(FunctionId(1), token)]),
                ),
            );
        }
        drop(store);
        assert_eq!(open(dir.path()).1.fences[&FunctionId(1)], 42);
    }

    #[test]
    fn commits_queued_together_are_acknowledged_and_logged_in_queue_order() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        // Queued without waiting, so the writer may group them.
        let acks: Vec<_> = (0..40)
            .map(|k| store.submit(log.next(set_const(1 + k % 3, k as i64))))
            .collect();
        for ack in acks {
            ack.blocking_recv().unwrap().unwrap();
        }
        let all = store.all_commits().unwrap();
        assert_eq!(revisions(&all), (1..=43).collect::<Vec<_>>());
        for c in &all {
            assert_eq!(c.summary, format!("commit {}", c.revision.0));
        }
        drop(store);
        let (_store, recovered) = open(dir.path());
        assert_eq!(recovered.program.root_hash(), log.program.root_hash());
    }

    #[test]
    fn history_pages_back_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_edits(dir.path(), 4);
        let mut pages = Vec::new();
        let mut before = None;
        for _ in 0..10 {
            let page = store.history(None, before, 3).unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.revision);
            pages.push(revisions(&page));
        }
        assert_eq!(pages, [vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    }

    #[test]
    fn history_of_one_function_holds_only_its_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_edits(dir.path(), 4);
        let of_a = store.history(Some(FunctionId(1)), None, 10).unwrap();
        assert_eq!(revisions(&of_a), [6, 4, 1]);
        let older = store
            .history(Some(FunctionId(1)), Some(Revision(6)), 1)
            .unwrap();
        assert_eq!(revisions(&older), [4]);
        assert!(
            of_a.iter()
                .all(|c| c.changes.iter().any(|ch| ch.function == FunctionId(1)))
        );
        assert!(
            store
                .history(Some(FunctionId(99)), None, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn commits_between_and_versions_answer_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = store_with_edits(dir.path(), 4);
        let between = store
            .commits_between(FunctionId(2), Revision(2), Revision(7))
            .unwrap();
        assert_eq!(revisions(&between), [5, 7]);
        let head = log.program.get(FunctionId(2)).unwrap();
        assert_eq!(
            store.version_at(FunctionId(2), Revision(7)).unwrap(),
            Some(head.hash)
        );
        let at_5 = store
            .version_at(FunctionId(2), Revision(6))
            .unwrap()
            .unwrap();
        assert_ne!(at_5, head.hash);
        assert_eq!(
            store.revision_of_version(FunctionId(2), &at_5).unwrap(),
            Some(Revision(5))
        );
        assert_eq!(store.version_at(FunctionId(3), Revision(2)).unwrap(), None);
        let old = store
            .version(&at_5)
            .unwrap()
            .expect("old versions are kept");
        assert_eq!(function_hash(&old), at_5);
        assert_eq!(store.version(&ContentHash([0; 32])).unwrap(), None);
    }

    #[test]
    fn a_version_two_commits_share_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        commit(&store, log.next(set_const(1, 50)));
        // Back to the version the function was created with.
        commit(&store, log.next(set_const(1, 1)));
        let n_versions: i64 = store
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM versions", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n_versions, 4);
    }

    #[test]
    fn the_ops_column_holds_exactly_the_encoded_ops() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        let write = log.next(set_const(1, 9));
        let want = encode_ops(&write.record.ops).unwrap();
        commit(&store, write);
        let stored: String = store
            .read(|c| {
                Ok(
                    c.query_row("SELECT ops FROM commits WHERE revision = 4", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert_eq!(stored, want);
        assert_eq!(
            stored,
            r#"[{"set_op":{"function":1,"node":"%0","op":"const 9"}}]"#
        );
    }

    #[test]
    fn a_reader_sees_what_the_owner_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (store, log) = store_with_edits(dir.path(), 2);
        let reader = StoreReader::open(dir.path()).unwrap();
        assert_eq!(revisions(&reader.all_commits().unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(
            revisions(&reader.history(None, Some(Revision(3)), 5).unwrap()),
            [2, 1]
        );
        assert_eq!(
            reader.program().unwrap().root_hash(),
            log.program.root_hash()
        );
        drop(store);
    }

    #[test]
    fn a_reader_of_a_directory_without_a_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = StoreReader::open(dir.path()).err().expect("no store");
        assert!(matches!(e, StoreError::Dir { .. }), "{e}");
    }

    /// Stamps a closed store with another schema version.
    fn stamp(dir: &Path, version: i64) {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            params![version],
        )
        .unwrap();
    }

    #[test]
    fn a_store_from_a_newer_cograph_is_refused_by_owner_and_reader() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with_edits(dir.path(), 1));
        stamp(dir.path(), SCHEMA_VERSION + 1);
        let e = Store::open_with(dir.path(), Failpoint::none())
            .err()
            .expect("refused");
        assert!(
            matches!(e, StoreError::Schema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{e}"
        );
        assert!(e.to_string().contains("newer cograph"), "{e}");
        let e = StoreReader::open(dir.path()).err().expect("refused");
        assert!(matches!(e, StoreError::Schema { .. }), "{e}");
        // Refusing it changed nothing: stamped back, it opens as before.
        stamp(dir.path(), SCHEMA_VERSION);
        let (_store, recovered) = open(dir.path());
        assert_eq!(recovered.n_commits, 4);
        assert_eq!(recovered.epoch, 2);
    }

    #[test]
    fn a_head_naming_a_missing_version_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with_edits(dir.path(), 0));
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; UPDATE heads SET hash = zeroblob(32) WHERE function_id = 2;",
        )
        .unwrap();
        drop(conn);
        let e = Store::open_with(dir.path(), Failpoint::none())
            .err()
            .expect("refused");
        assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("missing version"), "{e}");
    }

    fn refused(store: &Store, write: CommitWrite) -> String {
        match store
            .submit(write)
            .blocking_recv()
            .expect("the writer answers")
        {
            Err(StoreError::Poisoned(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_write_failure_refuses_that_batch_and_every_later_one_and_fires_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with(dir.path(), Failpoint::write_fails_after(2)).unwrap();
        let fatal = store.fatal();
        let mut log = Commits::default();
        commit(&store, log.next(create("m::a", 1)));
        commit(&store, log.next(create("n::b", 2)));
        let acknowledged = log.program.clone();
        assert_eq!(*fatal.borrow(), None);

        let reason = refused(&store, log.next(set_const(1, 3)));
        assert!(reason.contains("injected"), "{reason}");
        // `fatal` fired before the refusal was sent.
        assert_eq!(fatal.borrow().as_deref(), Some(reason.as_str()));
        // Later commits are refused too, whether queued alone or together.
        assert_eq!(refused(&store, log.next(set_const(2, 4))), reason);
        let queued: Vec<_> = (0..3)
            .map(|k| store.submit(log.next(set_const(1, 10 + k))))
            .collect();
        for ack in queued {
            let r = ack.blocking_recv().unwrap();
            assert!(matches!(r, Err(StoreError::Poisoned(_))), "{r:?}");
        }
        assert_eq!(revisions(&store.all_commits().unwrap()), [1, 2]);
        drop(store);

        // Reopened without the failpoint: exactly the acknowledged commits.
        let (store, recovered) = open(dir.path());
        assert_eq!(recovered.n_commits, 2);
        assert_eq!(recovered.program.revision(), Revision(2));
        assert_eq!(recovered.program.root_hash(), acknowledged.root_hash());
        assert_eq!(recovered.program.next_function_id(), FunctionId(3));
        let mut log = Commits {
            program: recovered.program,
        };
        commit(&store, log.next(set_const(1, 5)));
        assert_eq!(revisions(&store.all_commits().unwrap()), [1, 2, 3]);
    }

    #[test]
    fn a_failpoint_at_zero_refuses_the_first_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open_with(dir.path(), Failpoint::write_fails_after(0)).unwrap();
        let mut log = Commits::default();
        refused(&store, log.next(create("m::a", 1)));
        assert!(store.fatal().borrow().is_some());
        assert!(store.all_commits().unwrap().is_empty());
    }

    #[test]
    fn a_submit_after_close_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, mut log) = store_with_edits(dir.path(), 0);
        store.close();
        let r = store
            .submit(log.next(set_const(1, 5)))
            .blocking_recv()
            .unwrap();
        assert!(matches!(r, Err(StoreError::Poisoned(_))), "{r:?}");
    }
}
