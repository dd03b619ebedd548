//! The SQLite backend: `cograph.db` in the data directory, the embedded
//! default. The statements are in `schema.rs` and `events.rs`; this file
//! gives them the backend interface of `backend.rs`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::backend::{Reader, Writer};
use super::rows::{self, Counters, HeadRow};
use super::{
    CommitRecord, DB_FILE, Job, OperatorEvent, Recovered, StoreError, events, private, schema,
};
use crate::graph::{ContentHash, Function, FunctionId, Revision};

/// Opens (creating if needed) `dir/cograph.db` for writing: its files
/// restricted to the user, the schema migrated. The caller holds the
/// directory's lock.
pub(super) fn open_writer(dir: &Path) -> Result<Connection, StoreError> {
    let dir_error = |cause| StoreError::Dir {
        path: dir.to_path_buf(),
        cause,
    };
    let path = dir.join(DB_FILE);
    // SQLite creates `-wal` and `-shm` with the mode of the database file,
    // so a 0600 database keeps them 0600 too; files left by an older
    // cograph are restricted here as well.
    if !path.exists() {
        private::create(&path).map_err(dir_error)?;
    }
    for file in [DB_FILE, "cograph.db-wal", "cograph.db-shm"] {
        private::restrict(&dir.join(file)).map_err(dir_error)?;
    }
    let mut conn = schema::open_connection(&path)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// A second connection to the owner's store, for reads beside the writer.
pub(super) fn open_reader(dir: &Path) -> Result<Connection, StoreError> {
    schema::open_connection(&dir.join(DB_FILE))
}

/// A read-only connection to a store some hub may own (WAL lets it read
/// beside the writer), refused if the store is not one this build reads.
pub(super) fn open_read_only(dir: &Path) -> Result<Connection, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Dir {
            path: dir.to_path_buf(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no cograph store here"),
        });
    }
    let conn = Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    schema::check_readable(&conn)?;
    Ok(conn)
}

impl Writer for Connection {
    fn bump_epoch(&mut self) -> Result<u64, StoreError> {
        schema::bump_epoch(self)
    }

    fn write_batch(
        &mut self,
        jobs: &[Job],
        injected: Option<StoreError>,
    ) -> Result<Vec<u64>, StoreError> {
        schema::write_batch(self, jobs, injected)
    }
}

impl Reader for Connection {
    fn version(&mut self, hash: &ContentHash) -> Result<Option<Function>, StoreError> {
        let body: Option<Vec<u8>> = self
            .query_row(
                "SELECT body FROM versions WHERE hash = ?1",
                params![&hash.0[..]],
                |row| row.get(0),
            )
            .optional()?;
        body.map(|b| rows::version(hash, &b)).transpose()
    }

    fn history(
        &mut self,
        function: Option<FunctionId>,
        before: Option<Revision>,
        limit: usize,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        schema::history(self, function, before, limit)
    }

    fn commits_between(
        &mut self,
        function: FunctionId,
        after: Revision,
        upto: Revision,
    ) -> Result<Vec<CommitRecord>, StoreError> {
        schema::commits_between(self, function, after, upto)
    }

    fn revision_of_version(
        &mut self,
        function: FunctionId,
        hash: &ContentHash,
    ) -> Result<Option<Revision>, StoreError> {
        schema::revision_of_version(self, function, hash)
    }

    fn version_at(
        &mut self,
        function: FunctionId,
        revision: Revision,
    ) -> Result<Option<ContentHash>, StoreError> {
        schema::version_at(self, function, revision)
    }

    fn all_commits(&mut self) -> Result<Vec<CommitRecord>, StoreError> {
        schema::all_commits(self)
    }

    fn commit_for_request(
        &mut self,
        agent_name: &str,
        request_id: &str,
    ) -> Result<Option<CommitRecord>, StoreError> {
        schema::commit_for_request(self, agent_name, request_id)
    }

    fn events(
        &mut self,
        function: Option<FunctionId>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        events::read(self, function, limit)
    }

    fn recover(&mut self, epoch: u64) -> Result<Recovered, StoreError> {
        let mut stmt = self.prepare(
            "SELECT h.function_id, h.hash, h.revision, h.fence, v.body
             FROM heads h LEFT JOIN versions v ON v.hash = h.hash ORDER BY h.function_id",
        )?;
        let heads = stmt
            .query_map([], |row| {
                Ok(HeadRow {
                    function_id: row.get(0)?,
                    hash: row.get(1)?,
                    revision: row.get(2)?,
                    fence: row.get(3)?,
                    body: row.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let (n_commits, last): (i64, Option<i64>) =
            self.query_row("SELECT COUNT(*), MAX(revision) FROM commits", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let counters = Counters {
            next_function_id: schema::meta(self, "next_function_id")?.unwrap_or(1),
            n_commits,
            last_revision: last.unwrap_or(0),
        };
        rows::recovered(heads, counters, epoch)
    }
}
