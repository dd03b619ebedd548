//! Unit tests of the store: schema and version checks, the restart epoch,
//! group commit (whole or not at all, in queue order), history paging,
//! recovery, the directory lock, readers and the failpoint. `Commits`
//! builds log entries the way the service does, for the other files' tests.

use super::*;
use crate::graph::{apply, function_hash};
use rusqlite::{Connection, params};
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
            changes.push(ChangeRecord::of(*id, c));
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
                request: None,
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

/// A plain SQLite connection to a store's file, beside its own.
fn raw(store: &Store) -> Connection {
    Connection::open(store.dir().join(DB_FILE)).unwrap()
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
    let n_versions: i64 = raw(&store)
        .query_row("SELECT COUNT(*) FROM versions", [], |r| r.get(0))
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
    let stored: String = raw(&store)
        .query_row("SELECT ops FROM commits WHERE revision = 4", [], |r| {
            r.get(0)
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
