//! The SQLite schema and every statement the store runs.
//!
//! Tables: `meta` (counters), `versions` (canonical function bytes by
//! blake3 hash), `commits` (the log), `commit_functions` (which functions
//! each commit changed, before and after, for per-function history and
//! conflict reports) and `heads` (the current version of every function
//! and the highest fencing token it was committed under).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{ChangeRecord, CommitRecord, CommitWrite, StoreError, version_row};
use crate::graph::{ContentHash, FunctionId, Revision};

const SCHEMA_VERSION: i64 = 1;

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
    match meta(&tx, "schema_version")? {
        None => set_meta(&tx, "schema_version", SCHEMA_VERSION)?,
        Some(v) if v == SCHEMA_VERSION => {}
        Some(found) => {
            return Err(StoreError::Schema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    tx.commit()?;
    Ok(())
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

/// Writes a group of commits in one transaction: one fsync for all.
pub(super) fn write_batch<'a>(
    conn: &mut Connection,
    writes: impl Iterator<Item = &'a CommitWrite>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let mut next_function = None;
    for w in writes {
        write_one(&tx, w)?;
        next_function = Some(w.next_function_id);
    }
    if let Some(n) = next_function {
        set_meta(&tx, "next_function_id", n as i64)?;
    }
    tx.commit()?;
    Ok(())
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
    let ops = serde_json::to_string(&r.ops).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO commits(revision, time_ms, agent_id, agent_name, purpose, summary, ops)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.revision.0 as i64,
        r.time_ms as i64,
        r.agent_id,
        r.agent_name,
        r.purpose,
        r.summary,
        ops
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

fn hash_of(bytes: Option<Vec<u8>>) -> Result<Option<ContentHash>, rusqlite::Error> {
    match bytes {
        None => Ok(None),
        Some(b) => {
            let arr: [u8; 32] = b.try_into().map_err(|_| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Blob,
                    "a content hash is 32 bytes".into(),
                )
            })?;
            Ok(Some(ContentHash(arr)))
        }
    }
}

/// Loads full records for the given revisions, in the given order.
fn records(conn: &Connection, revisions: &[i64]) -> Result<Vec<CommitRecord>, StoreError> {
    let mut commit = conn.prepare_cached(
        "SELECT time_ms, agent_id, agent_name, purpose, summary, ops FROM commits WHERE revision = ?1",
    )?;
    let mut changes = conn.prepare_cached(
        "SELECT function_id, name, before, after FROM commit_functions WHERE revision = ?1 ORDER BY function_id",
    )?;
    let mut out = Vec::with_capacity(revisions.len());
    for &rev in revisions {
        let (time_ms, agent_id, agent_name, purpose, summary, ops): (
            i64,
            String,
            String,
            Option<String>,
            String,
            String,
        ) = commit.query_row(params![rev], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
        let ops = serde_json::from_str(&ops)
            .map_err(|e| StoreError::Corrupt(format!("ops of r{rev}: {e}")))?;
        let rows = changes.query_map(params![rev], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                hash_of(r.get(2)?)?,
                hash_of(r.get(3)?)?,
            ))
        })?;
        let mut list = Vec::new();
        for row in rows {
            let (id, name, before, after) = row?;
            let name = crate::graph::QualifiedName::new(&name)
                .map_err(|e| StoreError::Corrupt(format!("r{rev}: {e}")))?;
            list.push(ChangeRecord {
                function: FunctionId(id as u64),
                name,
                before,
                after,
            });
        }
        out.push(CommitRecord {
            revision: Revision(rev as u64),
            time_ms: time_ms as u64,
            agent_id,
            agent_name,
            purpose,
            summary,
            ops,
            changes: list,
        });
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
    Ok(hash_of(row.flatten())?)
}
