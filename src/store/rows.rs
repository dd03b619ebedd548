//! What both backends read, as plain rows, and how rows become the
//! store's records: a commit with its changes, and the program rebuilt
//! from the heads. Every check of what was read (hash lengths, half a
//! request tag, ops that do not decode, a version that does not hash to
//! its key) is made here once, whichever backend read it.
//!
//! This file does no IO.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ChangeRecord, CommitRecord, Recovered, RequestTag, StoreError, decode_ops};
use crate::graph::{
    ContentHash, FunctionEntry, FunctionId, Program, QualifiedName, Revision, decode_function,
    function_hash,
};

/// One row of `commits`.
pub(super) struct CommitRow {
    pub revision: i64,
    pub time_ms: i64,
    pub agent_id: String,
    pub agent_name: String,
    pub purpose: Option<String>,
    pub summary: String,
    pub ops: String,
    pub request_id: Option<String>,
    pub request_hash: Option<Vec<u8>>,
}

/// One row of `commit_functions`.
pub(super) struct ChangeRow {
    pub function_id: i64,
    pub name: String,
    pub before: Option<Vec<u8>>,
    pub after: Option<Vec<u8>>,
}

/// One row of `heads`, with its version's body (None if missing).
pub(super) struct HeadRow {
    pub function_id: i64,
    pub hash: Vec<u8>,
    pub revision: i64,
    pub fence: i64,
    pub body: Option<Vec<u8>>,
}

/// What recovery reads besides the heads.
pub(super) struct Counters {
    pub next_function_id: i64,
    pub n_commits: i64,
    pub last_revision: i64,
}

/// A stored content hash, which must be 32 bytes.
pub(super) fn hash(
    bytes: Vec<u8>,
    what: impl FnOnce() -> String,
) -> Result<ContentHash, StoreError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{} is not a 32-byte hash", what())))?;
    Ok(ContentHash(arr))
}

fn maybe_hash(
    bytes: Option<Vec<u8>>,
    what: impl FnOnce() -> String,
) -> Result<Option<ContentHash>, StoreError> {
    bytes.map(|b| hash(b, what)).transpose()
}

/// A commit's record from its row and its change rows (in function order).
pub(super) fn commit(row: CommitRow, changes: Vec<ChangeRow>) -> Result<CommitRecord, StoreError> {
    let rev = row.revision;
    let request = match (row.request_id, row.request_hash) {
        (Some(id), Some(h)) => Some(RequestTag {
            id,
            hash: hash(h, || format!("the request hash of r{rev}"))?,
        }),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "r{rev} has half a request tag"
            )));
        }
    };
    let ops =
        decode_ops(&row.ops).map_err(|e| StoreError::Corrupt(format!("ops of r{rev}: {e}")))?;
    let mut list = Vec::with_capacity(changes.len());
    for c in changes {
        let name =
            QualifiedName::new(&c.name).map_err(|e| StoreError::Corrupt(format!("r{rev}: {e}")))?;
        let id = c.function_id;
        list.push(ChangeRecord {
            function: FunctionId(id as u64),
            name,
            before: maybe_hash(c.before, || format!("r{rev}'s before of #{id}"))?,
            after: maybe_hash(c.after, || format!("r{rev}'s after of #{id}"))?,
        });
    }
    Ok(CommitRecord {
        revision: Revision(rev as u64),
        time_ms: row.time_ms as u64,
        agent_id: row.agent_id,
        agent_name: row.agent_name,
        purpose: row.purpose,
        summary: row.summary,
        ops,
        changes: list,
        request,
    })
}

/// A stored version, checked against the hash it is stored under.
pub(super) fn version(
    hash: &ContentHash,
    body: &[u8],
) -> Result<crate::graph::Function, StoreError> {
    let f =
        decode_function(body).map_err(|e| StoreError::Corrupt(format!("version {hash}: {e}")))?;
    if function_hash(&f) != *hash {
        return Err(StoreError::Corrupt(format!(
            "version {hash} does not hash to its key"
        )));
    }
    Ok(f)
}

/// The program rebuilt from the heads (each version's hash checked), with
/// the fencing high-water marks and the counters.
pub(super) fn recovered(
    heads: Vec<HeadRow>,
    counters: Counters,
    epoch: u64,
) -> Result<Recovered, StoreError> {
    let mut program = Program::new();
    let mut fences = BTreeMap::new();
    for head in heads {
        let id = head.function_id;
        let hash = hash(head.hash, || format!("the head of #{id}"))?;
        let body = head.body.ok_or_else(|| {
            StoreError::Corrupt(format!("head of #{id} names missing version {hash}"))
        })?;
        let f = version(&hash, &body)?;
        if program.id_of(&f.name).is_some() {
            return Err(StoreError::Corrupt(format!(
                "two heads are named `{}`",
                f.name
            )));
        }
        let id = FunctionId(id as u64);
        program.put(
            id,
            FunctionEntry {
                function: Arc::new(f),
                hash,
                revision: Revision(head.revision as u64),
            },
        );
        if head.fence > 0 {
            fences.insert(id, head.fence as u64);
        }
    }
    program.reserve_function_ids(counters.next_function_id as u64);
    program.set_revision(Revision(counters.last_revision as u64));
    Ok(Recovered {
        program,
        fences,
        epoch,
        n_commits: counters.n_commits as u64,
    })
}
