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
//! `events.rs` (the operator-event log), `failpoint.rs` (an injected write
//! failure, for tests of the poison path), `private.rs` (the data
//! directory's modes: 0700, files 0600).
//!
//! This module knows the graph's types but nothing of locks or MCP.

mod backend;
mod events;
mod failpoint;
mod format;
mod location;
mod postgres;
pub mod private;
mod rows;
mod schema;
mod sqlite;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::graph::{ContentHash, EditOp, Function, FunctionId, Program, QualifiedName, Revision};
use crate::histogram::Histogram;
use backend::{ConnectWriter, Reader, Writer};

pub use events::{OperatorAction, OperatorEvent};
pub use failpoint::{FAILPOINT_ENV, Failpoint};
pub(crate) use format::version_row;
pub use format::{decode_ops, encode_ops};
pub use location::{PostgresUrl, STORE_ENV, StoreLocation};
pub use schema::SCHEMA_VERSION;

/// The store's file inside the data directory.
pub const DB_FILE: &str = "cograph.db";
/// Held with an exclusive file lock by the one process that owns the store.
pub const LOCK_FILE: &str = "cograph.lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The messages below include their cause; none is also a `source`,
    // which `{:#}` (anyhow) would print a second time.
    #[error("cannot open the data directory {path}: {cause}")]
    Dir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "the data directory {path} is in use by another cograph process; connect to it (`cograph stdio`) or stop it first"
    )]
    InUse { path: PathBuf },
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("{location}: {reason}")]
    Location { location: String, reason: String },
    #[error(
        "the database {location} is in use by another cograph hub; several hubs on one database are not supported yet"
    )]
    DatabaseInUse { location: String },
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

/// One function a commit changed, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub function: FunctionId,
    pub name: QualifiedName,
    pub before: Option<ContentHash>,
    pub after: Option<ContentHash>,
}

impl ChangeRecord {
    /// What the log records of one function an applied edit changed.
    pub fn of(function: FunctionId, change: &crate::graph::FunctionChange) -> ChangeRecord {
        ChangeRecord {
            function,
            name: change.name().clone(),
            before: change.before.as_ref().map(|e| e.hash),
            after: change.after.as_ref().map(|e| e.hash),
        }
    }
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
    /// The client-chosen request id the commit was made under, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestTag>,
}

/// A commit's request id and a hash of what the request asked for, so a
/// repeat can be told from another request that reuses the id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTag {
    pub id: String,
    pub hash: ContentHash,
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

/// What the writer thread is asked to make durable.
enum Job {
    Commit {
        write: CommitWrite,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Event {
        event: OperatorEvent,
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
}

impl Job {
    fn refuse(self, reason: &str) {
        let e = || StoreError::Poisoned(reason.to_string());
        match self {
            Job::Commit { ack, .. } => drop(ack.send(Err(e()))),
            Job::Event { ack, .. } => drop(ack.send(Err(e()))),
        }
    }
}

pub struct Store {
    dir: PathBuf,
    location: StoreLocation,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: StoreReader,
    fatal: watch::Receiver<Option<String>>,
    /// How long each group's durable write took (its transaction, whose
    /// commit is the fsync).
    writes: Arc<Histogram>,
    /// Held for the store's lifetime: the OS releases it if the process
    /// dies, so a crashed owner never locks the directory forever.
    _lock: File,
}

/// The most commits the writer puts in one transaction.
const MAX_GROUP: usize = 512;

impl Store {
    /// Opens (creating if needed) the SQLite store in `dir`, takes the
    /// directory's lock, recovers the program and starts the writer. The
    /// test failpoint comes from `COGRAPH_FAILPOINT` (see `failpoint.rs`);
    /// normally unset.
    pub fn open(dir: &Path) -> Result<(Store, Recovered), StoreError> {
        Store::open_with(dir, Failpoint::from_env()?)
    }

    /// `open` with an explicit failpoint instead of the environment's.
    pub fn open_with(dir: &Path, failpoint: Failpoint) -> Result<(Store, Recovered), StoreError> {
        Store::open_at(dir, &StoreLocation::Dir(dir.to_path_buf()), failpoint)
    }

    /// Opens the store at `location` for the hub of the data directory
    /// `dir`, whose lock it takes (one hub per directory, whatever the
    /// store), recovers the program and starts the writer.
    pub fn open_at(
        dir: &Path,
        location: &StoreLocation,
        failpoint: Failpoint,
    ) -> Result<(Store, Recovered), StoreError> {
        let dir_error = |source| StoreError::Dir {
            path: dir.to_path_buf(),
            cause: source,
        };
        private::create_dir(dir).map_err(dir_error)?;
        private::warn_if_shared(dir);
        let lock = private::create(&dir.join(LOCK_FILE)).map_err(dir_error)?;
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
                    cause: source,
                });
            }
        }
        let (connect_writer, mut reader): (ConnectWriter, Box<dyn Reader>) = match location {
            StoreLocation::Dir(d) => {
                let writer = sqlite::open_writer(d)?;
                let reader = sqlite::open_reader(d)?;
                let connect: ConnectWriter = Box::new(move || Ok(Box::new(writer)));
                (connect, Box::new(reader))
            }
            StoreLocation::Postgres(url) => postgres::open(url)?,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let (fatal_tx, fatal_rx) = watch::channel(None);
        let (epoch_tx, epoch_rx) = mpsc::channel();
        let writes = Arc::new(Histogram::default());
        let timed = writes.clone();
        // The writer connects, and raises the epoch, on its own thread:
        // a backend's connection may have to live there (`postgres.rs`).
        let writer = std::thread::Builder::new()
            .name("cograph-store-writer".into())
            .spawn(move || {
                let opened = connect_writer().and_then(|mut w| Ok((w.bump_epoch()?, w)));
                match opened {
                    Ok((epoch, writer)) => {
                        let _ = epoch_tx.send(Ok(epoch));
                        writer_loop(writer, rx, fatal_tx, failpoint, &timed);
                    }
                    Err(e) => drop(epoch_tx.send(Err(e))),
                }
            })
            .map_err(dir_error)?;
        let epoch = epoch_rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Poisoned(
                "the writer stopped while opening".into(),
            ))
        })?;
        let recovered = reader.recover(epoch)?;
        Ok((
            Store {
                dir: dir.to_path_buf(),
                location: location.clone(),
                jobs: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                reader: StoreReader {
                    reader: Mutex::new(reader),
                },
                fatal: fatal_rx,
                writes,
                _lock: lock,
            },
            recovered,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the store lives.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Queues a commit. The receiver resolves once the commit is durable (or
    /// the write failed). Commits are written in the order they are queued.
    pub fn submit(&self, write: CommitWrite) -> oneshot::Receiver<Result<(), StoreError>> {
        let (ack, rx) = oneshot::channel();
        self.queue(Job::Commit { write, ack });
        rx
    }

    /// Queues an operator event; the receiver resolves with its sequence
    /// number once it is durable. Events and commits share one queue, so
    /// an event is durable after every commit queued before it.
    pub fn record_event(&self, event: OperatorEvent) -> oneshot::Receiver<Result<u64, StoreError>> {
        let (ack, rx) = oneshot::channel();
        self.queue(Job::Event { event, ack });
        rx
    }

    fn queue(&self, job: Job) {
        let jobs = self.jobs.lock().expect("store queue lock");
        match jobs.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job.refuse("the writer has stopped");
                }
            }
            None => job.refuse("the store is closed"),
        }
    }

    /// Fires with a message when a write fails; the server must stop.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// The durations of the store's durable writes, one per group commit.
    pub fn write_durations(&self) -> &Histogram {
        &self.writes
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
        f: impl FnOnce(&mut dyn Reader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.reader.read(f)
    }

    /// A function version by content hash.
    pub fn version(&self, hash: &ContentHash) -> Result<Option<Function>, StoreError> {
        self.read(|r| r.version(hash))
    }

    /// Commits, newest first: those touching `function` if given, with
    /// revisions below `before` if given, at most `limit`.
    pub fn history(
        &self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.reader.history(function, before, limit)
    }

    /// Commits touching `function` with revisions in `(after, upto]`, oldest
    /// first.
    pub fn commits_between(
        &self,
        function: FunctionId,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|r| r.commits_between(function, after, upto))
    }

    /// The revision whose commit left `function` at version `hash`, if any.
    pub fn revision_of_version(
        &self,
        function: FunctionId,
        hash: &ContentHash,
    ) -> Result<Option<Revision>, StoreError> {
        self.read(|r| r.revision_of_version(function, hash))
    }

    /// The version of `function` right after `revision` (None if it did not
    /// exist then).
    pub fn version_at(
        &self,
        function: FunctionId,
        revision: Revision,
    ) -> Result<Option<ContentHash>, StoreError> {
        self.read(|r| r.version_at(function, revision))
    }

    /// Every commit, oldest first (for replay checks and export).
    pub fn all_commits(&self) -> Result<Vec<CommitRecord>, StoreError> {
        self.reader.all_commits()
    }

    /// The commit `agent_name` made under `request_id`, if any.
    pub fn commit_for_request(
        &self,
        agent_name: &str,
        request_id: &str,
    ) -> Result<Option<CommitRecord>, StoreError> {
        self.read(|r| r.commit_for_request(agent_name, request_id))
    }

    /// The newest `limit` operator events (naming `function` if given),
    /// oldest first.
    pub fn events(
        &self,
        function: Option<FunctionId>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        self.reader.events(function, limit)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads a store without owning it: for `cograph log`, `export` and
/// `verify` while a hub may be running (SQLite's WAL lets readers in
/// beside it; PostgreSQL's readers never wait for its writer).
pub struct StoreReader {
    reader: Mutex<Box<dyn Reader>>,
}

impl StoreReader {
    /// The SQLite store in `dir`.
    pub fn open(dir: &Path) -> Result<StoreReader, StoreError> {
        StoreReader::open_at(&StoreLocation::Dir(dir.to_path_buf()))
    }

    /// The store at `location`, refused if it is not one this build reads.
    pub fn open_at(location: &StoreLocation) -> Result<StoreReader, StoreError> {
        let reader: Box<dyn Reader> = match location {
            StoreLocation::Dir(dir) => Box::new(sqlite::open_read_only(dir)?),
            StoreLocation::Postgres(url) => postgres::open_reader(url)?,
        };
        Ok(StoreReader {
            reader: Mutex::new(reader),
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Reader) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut reader = self.reader.lock().expect("store reader lock");
        f(reader.as_mut())
    }

    /// The current program, every version's hash checked.
    pub fn program(&self) -> Result<Program, StoreError> {
        Ok(self.read(|r| r.recover(0))?.program)
    }

    pub fn history(
        &self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|r| r.history(function, before, limit))
    }

    pub fn all_commits(&self) -> Result<Vec<CommitRecord>, StoreError> {
        self.read(|r| r.all_commits())
    }

    /// The newest `limit` operator events (naming `function` if given),
    /// oldest first.
    pub fn events(
        &self,
        function: Option<FunctionId>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        self.read(|r| r.events(function, limit))
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn writer_loop(
    mut conn: Box<dyn Writer>,
    jobs: mpsc::Receiver<Job>,
    fatal: watch::Sender<Option<String>>,
    failpoint: Failpoint,
    writes: &Histogram,
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
                job.refuse(reason);
            }
            continue;
        }
        let inject = failpoint
            .fails_batch(n_batches)
            .then(failpoint::injected_write_error);
        n_batches += 1;
        let started = std::time::Instant::now();
        let result = conn.write_batch(&batch, inject);
        writes.observe(started.elapsed());
        match result {
            Ok(seqs) => {
                let mut seqs = seqs.into_iter();
                for job in batch {
                    match job {
                        Job::Commit { ack, .. } => drop(ack.send(Ok(()))),
                        Job::Event { ack, .. } => {
                            let seq = seqs.next().expect("one seq per event");
                            drop(ack.send(Ok(seq)));
                        }
                    }
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
                    job.refuse(&reason);
                }
                poisoned = Some(reason);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
