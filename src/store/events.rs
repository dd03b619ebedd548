//! Operator events: the durable record of what an operator did to the
//! live system (ended an agent, broke a lock), kept beside the commit log.
//!
//! An event changes no function, so it is not a commit and takes no
//! revision; it is a row of `operator_events` with its own sequence
//! number, written by the store's writer thread like a commit (durable
//! before it is acknowledged). `cograph log` shows events among commits
//! by time, and a function's history shows the events that named it.
//!
//! This file holds the event's type and its SQL; it knows nothing of locks.

use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::graph::FunctionId;

/// What an operator did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// Ended an agent's session: all its locks and queue places went.
    EndAgent,
    /// Broke one agent's lock on one function.
    BreakLock,
}

impl OperatorAction {
    /// The stored (and shown) name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::EndAgent => "end_agent",
            OperatorAction::BreakLock => "break_lock",
        }
    }

    pub(super) fn parse(s: &str) -> Option<OperatorAction> {
        [OperatorAction::EndAgent, OperatorAction::BreakLock]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// One operator action, as the store records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorEvent {
    /// Its place in the event sequence, from 1; ignored (0) when writing.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who did it (for example "operator uid 1000 via admin socket").
    pub operator: String,
    pub action: OperatorAction,
    /// The agent whose session or lock it was.
    pub agent_id: String,
    pub agent_name: String,
    /// The function whose lock was broken, if the action names one.
    pub function: Option<FunctionId>,
    pub function_name: Option<String>,
    /// What it released, in words ("write lock, token 1099511627777").
    pub detail: String,
}

pub(super) const CREATE: &str = "CREATE TABLE IF NOT EXISTS operator_events (
         seq INTEGER PRIMARY KEY,
         time_ms INTEGER NOT NULL,
         operator TEXT NOT NULL,
         action TEXT NOT NULL,
         agent_id TEXT NOT NULL,
         agent_name TEXT NOT NULL,
         function_id INTEGER,
         function_name TEXT,
         detail TEXT NOT NULL
     );
     CREATE INDEX IF NOT EXISTS operator_events_by_function
         ON operator_events(function_id) WHERE function_id IS NOT NULL;";

/// Writes one event inside the writer's transaction; returns its `seq`.
pub(super) fn write(tx: &Transaction<'_>, e: &OperatorEvent) -> Result<u64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO operator_events(time_ms, operator, action, agent_id, agent_name,
             function_id, function_name, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.time_ms as i64,
        e.operator,
        e.action.as_str(),
        e.agent_id,
        e.agent_name,
        e.function.map(|f| f.0 as i64),
        e.function_name,
        e.detail,
    ])?;
    Ok(tx.last_insert_rowid() as u64)
}

/// The newest `limit` events (those naming `function` if given), oldest
/// first. A store of schema 1 has no events.
pub(super) fn read(
    conn: &Connection,
    function: Option<FunctionId>,
    limit: usize,
) -> Result<Vec<OperatorEvent>, StoreError> {
    if super::schema::stored_version(conn)? < 2 {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, time_ms, operator, action, agent_id, agent_name, function_id, function_name, detail
         FROM operator_events WHERE (?1 IS NULL OR function_id = ?1)
         ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![function.map(|f| f.0 as i64), limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, Option<String>>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, time_ms, operator, action, agent_id, agent_name, function, function_name, detail) =
            row?;
        let action = OperatorAction::parse(&action).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "operator event {seq} has unknown action `{action}`"
            ))
        })?;
        out.push(OperatorEvent {
            seq: seq as u64,
            time_ms: time_ms as u64,
            operator,
            action,
            agent_id,
            agent_name,
            function: function.map(|f| FunctionId(f as u64)),
            function_name,
            detail,
        });
    }
    out.reverse();
    Ok(out)
}
