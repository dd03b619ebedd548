//! The PostgreSQL schema and every statement the PostgreSQL backend runs.
//!
//! The tables are SQLite's (`../schema.rs` and `../events.rs` describe
//! every column; ARCHITECTURE.md too), in a schema of their own,
//! `cograph`, so that the database may hold other things. Integers are
//! `BIGINT`, hashes and bodies `BYTEA`. The layout is stamped with the
//! same `SCHEMA_VERSION` as SQLite's and refused by the same rule: a store
//! stamped higher was written by a newer cograph. No PostgreSQL store was
//! ever written below version 2, so one stamped lower is not a store.

use postgres::Client;
use postgres::types::ToSql;

use super::super::rows::{self, ChangeRow, CommitRow, Counters, HeadRow};
use super::super::{
    CommitRecord, CommitWrite, Job, OperatorEvent, Recovered, SCHEMA_VERSION, StoreError,
    encode_ops, version_row,
};
use crate::graph::{ContentHash, Function, FunctionId, Revision};
use crate::store::OperatorAction;

/// The advisory lock the owning hub holds ("cograph" in ASCII).
const OWNER_LOCK: i64 = 0x636f_6772_6170_6800;

const CREATE: &str = "
    CREATE SCHEMA IF NOT EXISTS cograph;
    CREATE TABLE IF NOT EXISTS cograph.meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE IF NOT EXISTS cograph.versions (hash BYTEA PRIMARY KEY, body BYTEA NOT NULL);
    CREATE TABLE IF NOT EXISTS cograph.commits (
        revision BIGINT PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        purpose TEXT,
        summary TEXT NOT NULL,
        ops TEXT NOT NULL,
        request_id TEXT,
        request_hash BYTEA
    );
    CREATE INDEX IF NOT EXISTS commits_by_request ON cograph.commits(agent_name, request_id)
        WHERE request_id IS NOT NULL;
    CREATE TABLE IF NOT EXISTS cograph.commit_functions (
        function_id BIGINT NOT NULL,
        revision BIGINT NOT NULL REFERENCES cograph.commits(revision),
        name TEXT NOT NULL,
        before BYTEA,
        after BYTEA,
        PRIMARY KEY (function_id, revision)
    );
    CREATE INDEX IF NOT EXISTS commit_functions_by_revision ON cograph.commit_functions(revision);
    CREATE TABLE IF NOT EXISTS cograph.heads (
        function_id BIGINT PRIMARY KEY,
        hash BYTEA NOT NULL REFERENCES cograph.versions(hash),
        revision BIGINT NOT NULL,
        fence BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS cograph.operator_events (
        seq BIGSERIAL PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        agent_name TEXT NOT NULL,
        function_id BIGINT,
        function_name TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS operator_events_by_function
        ON cograph.operator_events(function_id) WHERE function_id IS NOT NULL;";

/// Every statement's names resolve in `cograph` first.
pub(super) fn enter(client: &mut Client) -> Result<(), StoreError> {
    client.batch_execute("SET search_path TO cograph")?;
    Ok(())
}

/// Takes the owner's advisory lock if no other session holds it.
pub(super) fn try_own(client: &mut Client) -> Result<bool, StoreError> {
    Ok(client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&OWNER_LOCK])?
        .get(0))
}

/// Gives up the owner's advisory lock.
pub(super) fn disown(client: &mut Client) -> Result<(), StoreError> {
    client.execute("SELECT pg_advisory_unlock($1)", &[&OWNER_LOCK])?;
    Ok(())
}

/// Creates the tables if missing and stamps a new store; refuses one this
/// build cannot read. One transaction: a refused store is left as it was.
pub(super) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(CREATE)?;
    let found = meta(&mut tx, "schema_version")?;
    match found {
        None => set_meta(&mut tx, "schema_version", SCHEMA_VERSION)?,
        Some(v) => check_version(v)?,
    }
    tx.commit()?;
    Ok(())
}

fn check_version(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 2 {
        return Err(StoreError::Corrupt(format!(
            "schema version {found} is not one cograph has written to PostgreSQL"
        )));
    }
    Ok(())
}

/// The check a reader makes before reading anything.
pub(super) fn check_readable(client: &mut Client, shown: &str) -> Result<(), StoreError> {
    let has_meta: bool = client
        .query_one("SELECT to_regclass('cograph.meta') IS NOT NULL", &[])?
        .get(0);
    if !has_meta {
        return Err(StoreError::Location {
            location: shown.to_string(),
            reason: "no cograph store in this database (`cograph serve --store URL` or `cograph import FILE --store URL` creates one)".into(),
        });
    }
    match meta(client, "schema_version")? {
        Some(v) => check_version(v),
        None => Err(StoreError::Corrupt("it has no schema version".into())),
    }
}

fn meta(client: &mut impl postgres::GenericClient, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(client
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
        .map(|r| r.get(0)))
}

fn set_meta(
    client: &mut impl postgres::GenericClient,
    key: &str,
    value: i64,
) -> Result<(), StoreError> {
    client.execute(
        "INSERT INTO meta(key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&key, &value],
    )?;
    Ok(())
}

/// Raises the restart epoch by one, durably, and returns it.
pub(super) fn bump_epoch(client: &mut Client) -> Result<u64, StoreError> {
    let mut tx = client.transaction()?;
    let epoch = meta(&mut tx, "epoch")?.unwrap_or(0) + 1;
    set_meta(&mut tx, "epoch", epoch)?;
    tx.commit()?;
    Ok(epoch as u64)
}

/// The writer's statements, prepared once per connection. Each writes
/// every row of its table that a whole batch adds, from arrays, so a batch
/// costs the same few round trips however many commits it holds.
pub(super) struct Statements {
    versions: postgres::Statement,
    commits: postgres::Statement,
    changes: postgres::Statement,
    upsert_heads: postgres::Statement,
    delete_heads: postgres::Statement,
    event: postgres::Statement,
}

impl Statements {
    pub(super) fn prepare(client: &mut Client) -> Result<Statements, StoreError> {
        Ok(Statements {
            versions: client.prepare(
                "INSERT INTO versions(hash, body)
                 SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[]) ON CONFLICT (hash) DO NOTHING",
            )?,
            commits: client.prepare(
                "INSERT INTO commits(revision, time_ms, agent_id, agent_name, purpose, summary,
                     ops, request_id, request_hash)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[],
                     $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BYTEA[])",
            )?,
            changes: client.prepare(
                "INSERT INTO commit_functions(function_id, revision, name, before, after)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BYTEA[],
                     $5::BYTEA[])",
            )?,
            upsert_heads: client.prepare(
                "INSERT INTO heads(function_id, hash, revision, fence)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[])
                 ON CONFLICT (function_id) DO UPDATE SET hash = EXCLUDED.hash,
                     revision = EXCLUDED.revision, fence = GREATEST(heads.fence, EXCLUDED.fence)",
            )?,
            delete_heads: client.prepare("DELETE FROM heads WHERE function_id = ANY($1)")?,
            event: client.prepare(
                "INSERT INTO operator_events(time_ms, operator, action, agent_id, agent_name,
                     function_id, function_name, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
            )?,
        })
    }
}

/// The rows a batch of commits adds, column by column.
#[derive(Default)]
struct Rows {
    version_hashes: Vec<Vec<u8>>,
    version_bodies: Vec<Vec<u8>>,
    seen_versions: std::collections::HashSet<ContentHash>,
    revisions: Vec<i64>,
    times: Vec<i64>,
    agent_ids: Vec<String>,
    agent_names: Vec<String>,
    purposes: Vec<Option<String>>,
    summaries: Vec<String>,
    ops: Vec<String>,
    request_ids: Vec<Option<String>>,
    request_hashes: Vec<Option<Vec<u8>>>,
    change_functions: Vec<i64>,
    change_revisions: Vec<i64>,
    change_names: Vec<String>,
    change_before: Vec<Option<Vec<u8>>>,
    change_after: Vec<Option<Vec<u8>>>,
    /// Each function's head after the batch: its last change's version
    /// and revision and the highest fence the batch committed it under,
    /// or None if the batch deleted it.
    heads: std::collections::BTreeMap<i64, Option<(Vec<u8>, i64, i64)>>,
}

impl Rows {
    fn add(&mut self, w: &CommitWrite) -> Result<(), StoreError> {
        let r = &w.record;
        for f in &w.versions {
            let (hash, body) = version_row(f);
            if self.seen_versions.insert(hash) {
                self.version_hashes.push(hash.0.to_vec());
                self.version_bodies.push(body);
            }
        }
        let revision = r.revision.0 as i64;
        self.revisions.push(revision);
        self.times.push(r.time_ms as i64);
        self.agent_ids.push(r.agent_id.clone());
        self.agent_names.push(r.agent_name.clone());
        self.purposes.push(r.purpose.clone());
        self.summaries.push(r.summary.clone());
        self.ops.push(encode_ops(&r.ops)?);
        self.request_ids
            .push(r.request.as_ref().map(|t| t.id.clone()));
        self.request_hashes
            .push(r.request.as_ref().map(|t| t.hash.0.to_vec()));
        for c in &r.changes {
            let id = c.function.0 as i64;
            self.change_functions.push(id);
            self.change_revisions.push(revision);
            self.change_names.push(c.name.as_str().to_string());
            self.change_before.push(c.before.map(|h| h.0.to_vec()));
            self.change_after.push(c.after.map(|h| h.0.to_vec()));
            let head = c.after.map(|hash| {
                let fence = w.fences.get(&c.function).copied().unwrap_or(0) as i64;
                let earlier = match self.heads.get(&id) {
                    Some(Some((_, _, f))) => *f,
                    _ => 0,
                };
                (hash.0.to_vec(), revision, fence.max(earlier))
            });
            self.heads.insert(id, head);
        }
        Ok(())
    }

    fn write(self, tx: &mut postgres::Transaction<'_>, st: &Statements) -> Result<(), StoreError> {
        if self.revisions.is_empty() {
            return Ok(());
        }
        tx.execute(&st.versions, &[&self.version_hashes, &self.version_bodies])?;
        tx.execute(
            &st.commits,
            &[
                &self.revisions,
                &self.times,
                &self.agent_ids,
                &self.agent_names,
                &self.purposes,
                &self.summaries,
                &self.ops,
                &self.request_ids,
                &self.request_hashes,
            ],
        )?;
        tx.execute(
            &st.changes,
            &[
                &self.change_functions,
                &self.change_revisions,
                &self.change_names,
                &self.change_before,
                &self.change_after,
            ],
        )?;
        let (mut ids, mut hashes, mut revisions, mut fences, mut deleted) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (id, head) in self.heads {
            match head {
                Some((hash, revision, fence)) => {
                    ids.push(id);
                    hashes.push(hash);
                    revisions.push(revision);
                    fences.push(fence);
                }
                None => deleted.push(id),
            }
        }
        tx.execute(&st.upsert_heads, &[&ids, &hashes, &revisions, &fences])?;
        if !deleted.is_empty() {
            tx.execute(&st.delete_heads, &[&deleted])?;
        }
        Ok(())
    }
}

/// Writes a group of commits and events in one transaction (durable at
/// its commit: `synchronous_commit` is the server's, on by default).
/// An event's `seq` comes from a sequence, so a batch that failed leaves
/// a gap in the numbers.
pub(super) fn write_batch(
    client: &mut Client,
    st: &Statements,
    jobs: &[Job],
    injected: Option<StoreError>,
) -> Result<Vec<u64>, StoreError> {
    let mut tx = client.transaction()?;
    let mut next_function = None;
    let mut seqs = Vec::new();
    let mut rows = Rows::default();
    for job in jobs {
        match job {
            Job::Commit { write, .. } => {
                rows.add(write)?;
                next_function = Some(write.next_function_id);
            }
            Job::Event { event: e, .. } => {
                let function = e.function.map(|f| f.0 as i64);
                let seq: i64 = tx
                    .query_one(
                        &st.event,
                        &[
                            &(e.time_ms as i64),
                            &e.operator,
                            &e.action.as_str(),
                            &e.agent_id,
                            &e.agent_name,
                            &function,
                            &e.function_name,
                            &e.detail,
                        ],
                    )?
                    .get(0);
                seqs.push(seq as u64);
            }
        }
    }
    rows.write(&mut tx, st)?;
    if let Some(n) = next_function {
        set_meta(&mut tx, "next_function_id", n as i64)?;
    }
    if let Some(e) = injected {
        return Err(e);
    }
    tx.commit()?;
    Ok(seqs)
}

pub(super) fn version(
    client: &mut Client,
    hash: &ContentHash,
) -> Result<Option<Function>, StoreError> {
    let row = client.query_opt("SELECT body FROM versions WHERE hash = $1", &[&&hash.0[..]])?;
    row.map(|r| rows::version(hash, r.get::<_, &[u8]>(0)))
        .transpose()
}

/// Full records for the given revisions, in the given order: two queries
/// whatever their number.
fn records(client: &mut Client, revisions: &[i64]) -> Result<Vec<CommitRecord>, StoreError> {
    if revisions.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = revisions.to_vec();
    let mut commits: std::collections::HashMap<i64, CommitRow> = client
        .query(
            "SELECT revision, time_ms, agent_id, agent_name, purpose, summary, ops, request_id,
                 request_hash
             FROM commits WHERE revision = ANY($1)",
            &[&wanted],
        )?
        .into_iter()
        .map(|r| {
            let row = CommitRow {
                revision: r.get(0),
                time_ms: r.get(1),
                agent_id: r.get(2),
                agent_name: r.get(3),
                purpose: r.get(4),
                summary: r.get(5),
                ops: r.get(6),
                request_id: r.get(7),
                request_hash: r.get(8),
            };
            (row.revision, row)
        })
        .collect();
    let mut changes: std::collections::HashMap<i64, Vec<ChangeRow>> = Default::default();
    for r in client.query(
        "SELECT revision, function_id, name, before, after FROM commit_functions
         WHERE revision = ANY($1) ORDER BY revision, function_id",
        &[&wanted],
    )? {
        changes.entry(r.get(0)).or_default().push(ChangeRow {
            function_id: r.get(1),
            name: r.get(2),
            before: r.get(3),
            after: r.get(4),
        });
    }
    revisions
        .iter()
        .map(|rev| {
            let row = commits
                .remove(rev)
                .ok_or_else(|| StoreError::Corrupt(format!("r{rev} is indexed but not logged")))?;
            rows::commit(row, changes.remove(rev).unwrap_or_default())
        })
        .collect()
}

fn revisions(
    client: &mut Client,
    sql: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<i64>, StoreError> {
    Ok(client.query(sql, args)?.iter().map(|r| r.get(0)).collect())
}

pub(super) fn history(
    client: &mut Client,
    function: Option<FunctionId>,
    before: Option<Revision>,
    limit: usize,
) -> Result<Vec<CommitRecord>, StoreError> {
    let before = before.map_or(i64::MAX, |r| r.0 as i64);
    let limit = limit as i64;
    let revs = match function {
        Some(f) => revisions(
            client,
            "SELECT revision FROM commit_functions WHERE function_id = $1 AND revision < $2
             ORDER BY revision DESC LIMIT $3",
            &[&(f.0 as i64), &before, &limit],
        )?,
        None => revisions(
            client,
            "SELECT revision FROM commits WHERE revision < $1 ORDER BY revision DESC LIMIT $2",
            &[&before, &limit],
        )?,
    };
    records(client, &revs)
}

pub(super) fn commits_between(
    client: &mut Client,
    function: FunctionId,
    after: Revision,
    upto: Revision,
) -> Result<Vec<CommitRecord>, StoreError> {
    let revs = revisions(
        client,
        "SELECT revision FROM commit_functions
         WHERE function_id = $1 AND revision > $2 AND revision <= $3 ORDER BY revision",
        &[&(function.0 as i64), &(after.0 as i64), &(upto.0 as i64)],
    )?;
    records(client, &revs)
}

pub(super) fn commit_for_request(
    client: &mut Client,
    agent_name: &str,
    request_id: &str,
) -> Result<Option<CommitRecord>, StoreError> {
    let revs = revisions(
        client,
        "SELECT revision FROM commits WHERE agent_name = $1 AND request_id = $2
         ORDER BY revision LIMIT 1",
        &[&agent_name, &request_id],
    )?;
    Ok(records(client, &revs)?.pop())
}

pub(super) fn all_commits(client: &mut Client) -> Result<Vec<CommitRecord>, StoreError> {
    let revs = revisions(
        client,
        "SELECT revision FROM commits ORDER BY revision",
        &[],
    )?;
    records(client, &revs)
}

pub(super) fn revision_of_version(
    client: &mut Client,
    function: FunctionId,
    hash: &ContentHash,
) -> Result<Option<Revision>, StoreError> {
    let rev: Option<i64> = client
        .query_one(
            "SELECT MAX(revision) FROM commit_functions WHERE function_id = $1 AND after = $2",
            &[&(function.0 as i64), &&hash.0[..]],
        )?
        .get(0);
    Ok(rev.map(|r| Revision(r as u64)))
}

pub(super) fn version_at(
    client: &mut Client,
    function: FunctionId,
    revision: Revision,
) -> Result<Option<ContentHash>, StoreError> {
    let after: Option<Vec<u8>> = client
        .query_opt(
            "SELECT after FROM commit_functions WHERE function_id = $1 AND revision <= $2
             ORDER BY revision DESC LIMIT 1",
            &[&(function.0 as i64), &(revision.0 as i64)],
        )?
        .and_then(|r| r.get(0));
    after
        .map(|h| {
            rows::hash(h, || {
                format!("the version of #{} at r{}", function.0, revision.0)
            })
        })
        .transpose()
}

pub(super) fn events(
    client: &mut Client,
    function: Option<FunctionId>,
    limit: usize,
) -> Result<Vec<OperatorEvent>, StoreError> {
    let function = function.map(|f| f.0 as i64);
    let rows = client.query(
        "SELECT seq, time_ms, operator, action, agent_id, agent_name, function_id,
             function_name, detail
         FROM operator_events WHERE ($1::BIGINT IS NULL OR function_id = $1)
         ORDER BY seq DESC LIMIT $2",
        &[&function, &(limit as i64)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().rev() {
        let seq: i64 = r.get(0);
        let action: &str = r.get(3);
        let action = OperatorAction::parse(action).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "operator event {seq} has unknown action `{action}`"
            ))
        })?;
        out.push(OperatorEvent {
            seq: seq as u64,
            time_ms: r.get::<_, i64>(1) as u64,
            operator: r.get(2),
            action,
            agent_id: r.get(4),
            agent_name: r.get(5),
            function: r.get::<_, Option<i64>>(6).map(|f| FunctionId(f as u64)),
            function_name: r.get(7),
            detail: r.get(8),
        });
    }
    Ok(out)
}

pub(super) fn recover(client: &mut Client, epoch: u64) -> Result<Recovered, StoreError> {
    let heads = client
        .query(
            "SELECT h.function_id, h.hash, h.revision, h.fence, v.body
             FROM heads h LEFT JOIN versions v ON v.hash = h.hash ORDER BY h.function_id",
            &[],
        )?
        .into_iter()
        .map(|r| HeadRow {
            function_id: r.get(0),
            hash: r.get(1),
            revision: r.get(2),
            fence: r.get(3),
            body: r.get(4),
        })
        .collect();
    let counts = client.query_one("SELECT COUNT(*), MAX(revision) FROM commits", &[])?;
    let counters = Counters {
        next_function_id: meta(client, "next_function_id")?.unwrap_or(1),
        n_commits: counts.get(0),
        last_revision: counts.get::<_, Option<i64>>(1).unwrap_or(0),
    };
    rows::recovered(heads, counters, epoch)
}
