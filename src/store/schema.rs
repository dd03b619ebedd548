//! The SQLite schema and every statement the store runs.
//!
//! Tables: `meta` (counters and the schema version), `versions` (canonical
//! function bytes by blake3 hash), `commits` (the log, with the
//! client-chosen request id a commit was made under), `commit_functions`
//! (which functions each commit changed, before and after, for
//! per-function history and conflict reports), `heads` (the current
//! version of every function and the highest fencing token it was
//! committed under) and, from schema 2, `operator_events` (`events.rs`).
//! ARCHITECTURE.md ("On-disk formats") describes every column.
//!
//! The version rule: `meta.schema_version` names the layout of the tables
//! and of the stored forms in `format.rs`. A new store is stamped with
//! [`SCHEMA_VERSION`]. A store stamped higher was written by a newer
//! cograph and is refused, by the owner and by read-only readers alike,
//! before anything is written to it. A change to any table, column or
//! stored form raises `SCHEMA_VERSION` by one and adds to [`migrate`] a
//! step that upgrades a store of the version before, in the same
//! transaction as the new stamp; stores of every earlier version keep
//! opening.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::rows::{self, ChangeRow, CommitRow};
use super::{CommitRecord, CommitWrite, Job, StoreError, encode_ops, events, version_row};
use crate::graph::{ContentHash, FunctionId, Revision};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 2;

pub(super) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS versions (hash BLOB PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS commits (
             revision INTEGER PRIMARY KEY,
             time_ms INTEGER NOT NULL,
             agent_id TEXT NOT NULL,
             agent_name TEXT NOT NULL,
             purpose TEXT,
             summary TEXT NOT NULL,
             ops TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS commit_functions (
             function_id INTEGER NOT NULL,
             revision INTEGER NOT NULL REFERENCES commits(revision),
             name TEXT NOT NULL,
             before BLOB,
             after BLOB,
             PRIMARY KEY (function_id, revision)
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS commit_functions_by_revision ON commit_functions(revision);
         CREATE TABLE IF NOT EXISTS heads (
             function_id INTEGER PRIMARY KEY,
             hash BLOB NOT NULL REFERENCES versions(hash),
             revision INTEGER NOT NULL,
             fence INTEGER NOT NULL DEFAULT 0
         );",
    )?;
    // The statement above is schema 1's layout; a new store is stamped 1
    // and then upgraded like an old one, so both take the same path. On an
    // error the transaction rolls back: a refused store is left as it was,
    // tables included.
    let mut version = match meta(&tx, "schema_version")? {
        None => 1,
        found => {
            check_version(found)?;
            found.unwrap_or(1)
        }
    };
    while version < SCHEMA_VERSION {
        upgrade_from(&tx, version)?;
        version += 1;
    }
    set_meta(&tx, "schema_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Upgrades a store of schema `version` to `version + 1`, inside the
/// migration's transaction.
fn upgrade_from(tx: &Transaction<'_>, version: i64) -> Result<(), StoreError> {
    match version {
        // 1 → 2: the request id a commit was made under (for safe
        // retries) and the operator-event log.
        1 => {
            tx.execute_batch(
                "ALTER TABLE commits ADD COLUMN request_id TEXT;
                 ALTER TABLE commits ADD COLUMN request_hash BLOB;
                 CREATE INDEX commits_by_request ON commits(agent_name, request_id)
                     WHERE request_id IS NOT NULL;",
            )?;
            tx.execute_batch(events::CREATE)?;
        }
        v => {
            return Err(StoreError::Corrupt(format!(
                "no upgrade from schema version {v}"
            )));
        }
    }
    Ok(())
}

/// The schema version a store is stamped with (1 if unstamped).
pub(super) fn stored_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(meta(conn, "schema_version")?.unwrap_or(1))
}

/// Refuses a store this build cannot read: a newer one, or one whose
/// stamp is missing or below every version cograph has written. Older
/// versions are read as they are (a reader) or upgraded (the owner).
fn check_version(found: Option<i64>) -> Result<(), StoreError> {
    match found {
        Some(v) if (1..=SCHEMA_VERSION).contains(&v) => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::Schema {
            found,
            supported: SCHEMA_VERSION,
        }),
        Some(found) => Err(StoreError::Corrupt(format!(
            "schema version {found} is not one cograph has written"
        ))),
        None => Err(StoreError::Corrupt("it has no schema version".into())),
    }
}

/// The check a read-only reader makes before reading anything.
pub(super) fn check_readable(conn: &Connection) -> Result<(), StoreError> {
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Err(StoreError::Corrupt("it has no meta table".into()));
    }
    check_version(meta(conn, "schema_version")?)
}

pub(super) fn meta(conn: &Connection, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Raises the restart epoch by one, durably, and returns it.
pub(super) fn bump_epoch(conn: &mut Connection) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    let epoch = meta(&tx, "epoch")?.unwrap_or(0) + 1;
    set_meta(&tx, "epoch", epoch)?;
    tx.commit()?;
    Ok(epoch as u64)
}

/// Writes a group of commits and events in one transaction: one fsync for
/// all. Returns each event's sequence number, in order. `injected` (from
/// the test failpoint) is returned in place of the commit, after every row
/// is written, so the transaction rolls back.
pub(super) fn write_batch(
    conn: &mut Connection,
    jobs: &[Job],
    injected: Option<StoreError>,
) -> Result<Vec<u64>, StoreError> {
    let tx = conn.transaction()?;
    let mut next_function = None;
    let mut seqs = Vec::new();
    for job in jobs {
        match job {
            Job::Commit { write, .. } => {
                write_one(&tx, write)?;
                next_function = Some(write.next_function_id);
            }
            Job::Event { event, .. } => seqs.push(events::write(&tx, event)?),
        }
    }
    if let Some(n) = next_function {
        set_meta(&tx, "next_function_id", n as i64)?;
    }
    if let Some(e) = injected {
        return Err(e);
    }
    tx.commit()?;
    Ok(seqs)
}

fn write_one(tx: &Transaction<'_>, w: &CommitWrite) -> Result<(), StoreError> {
    let r = &w.record;
    {
        let mut insert_version =
            tx.prepare_cached("INSERT OR IGNORE INTO versions(hash, body) VALUES (?1, ?2)")?;
        for f in &w.versions {
            let (hash, body) = version_row(f);
            insert_version.execute(params![&hash.0[..], body])?;
        }
    }
    let ops = encode_ops(&r.ops)?;
    tx.prepare_cached(
        "INSERT INTO commits(revision, time_ms, agent_id, agent_name, purpose, summary, ops,
             request_id, request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        r.revision.0 as i64,
        r.time_ms as i64,
        r.agent_id,
        r.agent_name,
        r.purpose,
        r.summary,
        ops,
        r.request.as_ref().map(|t| t.id.as_str()),
        r.request.as_ref().map(|t| t.hash.0.to_vec()),
    ])?;
    let mut insert_change = tx.prepare_cached(
        "INSERT INTO commit_functions(function_id, revision, name, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut upsert_head = tx.prepare_cached(
        "INSERT INTO heads(function_id, hash, revision, fence) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(function_id) DO UPDATE SET hash = excluded.hash, revision = excluded.revision,
             fence = MAX(heads.fence, excluded.fence)",
    )?;
    let mut delete_head = tx.prepare_cached("DELETE FROM heads WHERE function_id = ?1")?;
    for c in &r.changes {
        insert_change.execute(params![
            c.function.0 as i64,
            r.revision.0 as i64,
            c.name.as_str(),
            c.before.map(|h| h.0.to_vec()),
            c.after.map(|h| h.0.to_vec()),
        ])?;
        match c.after {
            Some(hash) => {
                let fence = w.fences.get(&c.function).copied().unwrap_or(0);
                upsert_head.execute(params![
                    c.function.0 as i64,
                    &hash.0[..],
                    r.revision.0 as i64,
                    fence as i64
                ])?;
            }
            None => {
                delete_head.execute(params![c.function.0 as i64])?;
            }
        }
    }
    Ok(())
}

/// Loads full records for the given revisions, in the given order.
fn records(conn: &Connection, revisions: &[i64]) -> Result<Vec<CommitRecord>, StoreError> {
    // Schema 1 has no request columns: read them as NULL there.
    let request_columns = if stored_version(conn)? >= 2 {
        "request_id, request_hash"
    } else {
        "NULL, NULL"
    };
    let mut commit = conn.prepare_cached(&format!(
        "SELECT time_ms, agent_id, agent_name, purpose, summary, ops, {request_columns}
         FROM commits WHERE revision = ?1"
    ))?;
    let mut changes = conn.prepare_cached(
        "SELECT function_id, name, before, after FROM commit_functions WHERE revision = ?1 ORDER BY function_id",
    )?;
    let mut out = Vec::with_capacity(revisions.len());
    for &revision in revisions {
        let row = commit.query_row(params![revision], |r| {
            Ok(CommitRow {
                revision,
                time_ms: r.get(0)?,
                agent_id: r.get(1)?,
                agent_name: r.get(2)?,
                purpose: r.get(3)?,
                summary: r.get(4)?,
                ops: r.get(5)?,
                request_id: r.get(6)?,
                request_hash: r.get(7)?,
            })
        })?;
        let list = changes
            .query_map(params![revision], |r| {
                Ok(ChangeRow {
                    function_id: r.get(0)?,
                    name: r.get(1)?,
                    before: r.get(2)?,
                    after: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(rows::commit(row, list)?);
    }
    Ok(out)
}

fn revisions(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, i64>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn history(
    conn: &Connection,
    function: Option<FunctionId>,
    before: Option<Revision>,
    limit: usize,
) -> Result<Vec<CommitRecord>, StoreError> {
    let before = before.map_or(i64::MAX, |r| r.0 as i64);
    let limit = limit as i64;
    let revs = match function {
        Some(f) => revisions(
            conn,
            "SELECT revision FROM commit_functions WHERE function_id = ?1 AND revision < ?2
             ORDER BY revision DESC LIMIT ?3",
            params![f.0 as i64, before, limit],
        )?,
        None => revisions(
            conn,
            "SELECT revision FROM commits WHERE revision < ?1 ORDER BY revision DESC LIMIT ?2",
            params![before, limit],
        )?,
    };
    records(conn, &revs)
}

pub(super) fn commits_between(
    conn: &Connection,
    function: FunctionId,
    after: Revision,
    upto: Revision,
) -> Result<Vec<CommitRecord>, StoreError> {
    let revs = revisions(
        conn,
        "SELECT revision FROM commit_functions WHERE function_id = ?1 AND revision > ?2 AND revision <= ?3
         ORDER BY revision",
        params![function.0 as i64, after.0 as i64, upto.0 as i64],
    )?;
    records(conn, &revs)
}

/// The commit `agent_name` made under `request_id`, if any.
pub(super) fn commit_for_request(
    conn: &Connection,
    agent_name: &str,
    request_id: &str,
) -> Result<Option<CommitRecord>, StoreError> {
    if stored_version(conn)? < 2 {
        return Ok(None);
    }
    let revs = revisions(
        conn,
        "SELECT revision FROM commits WHERE agent_name = ?1 AND request_id = ?2
         ORDER BY revision LIMIT 1",
        params![agent_name, request_id],
    )?;
    Ok(records(conn, &revs)?.pop())
}

pub(super) fn all_commits(conn: &Connection) -> Result<Vec<CommitRecord>, StoreError> {
    let revs = revisions(conn, "SELECT revision FROM commits ORDER BY revision", [])?;
    records(conn, &revs)
}

pub(super) fn revision_of_version(
    conn: &Connection,
    function: FunctionId,
    hash: &ContentHash,
) -> Result<Option<Revision>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT MAX(revision) FROM commit_functions WHERE function_id = ?1 AND after = ?2",
            params![function.0 as i64, &hash.0[..]],
            |r| r.get::<_, Option<i64>>(0),
        )?
        .map(|r| Revision(r as u64)))
}

pub(super) fn version_at(
    conn: &Connection,
    function: FunctionId,
    revision: Revision,
) -> Result<Option<ContentHash>, StoreError> {
    let row: Option<Option<Vec<u8>>> = conn
        .query_row(
            "SELECT after FROM commit_functions WHERE function_id = ?1 AND revision <= ?2
             ORDER BY revision DESC LIMIT 1",
            params![function.0 as i64, revision.0 as i64],
            |r| r.get(0),
        )
        .optional()?;
    row.flatten()
        .map(|h| {
            rows::hash(h, || {
                format!("the version of #{} at r{}", function.0, revision.0)
            })
        })
        .transpose()
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
