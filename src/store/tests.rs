//! Unit tests of the store: schema and version checks, the restart epoch,
//! group commit (whole or not at all, in queue order), history paging,
//! recovery, the directory lock, readers and the failpoint. Those that
//! hold for every backend run on SQLite and on PostgreSQL (`both!`). `Commits`
//! builds log entries the way the service does, for the other files' tests.

use super::*;
use crate::graph::{apply, function_hash};
use rusqlite::Connection;
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

#[allow(dead_code)]
#[path = "../../tests/common/pg.rs"]
mod pg;

/// A store of either backend: its data directory and where it lives (a
/// fresh database of the test process's PostgreSQL cluster, `pg.rs`).
struct Place {
    dir: tempfile::TempDir,
    location: StoreLocation,
}

impl Place {
    fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let location = StoreLocation::Dir(dir.path().to_path_buf());
        Place { dir, location }
    }

    fn postgres() -> Place {
        let location = StoreLocation::Postgres(pg::fresh_database().parse().unwrap());
        Place {
            dir: tempfile::tempdir().unwrap(),
            location,
        }
    }

    fn open(&self) -> (Store, Recovered) {
        open_failing(self, Failpoint::none()).expect("the store opens")
    }

    /// Runs SQL on the closed store behind its back: `sqlite` on
    /// `cograph.db`, or `postgres` in the database.
    fn sql(&self, sqlite: &str, postgres: &str) {
        match &self.location {
            StoreLocation::Dir(dir) => Connection::open(dir.join(DB_FILE))
                .unwrap()
                .execute_batch(sqlite)
                .unwrap(),
            StoreLocation::Postgres(url) => {
                pg::cluster().sql(url.secret(), postgres);
            }
        }
    }

    /// Stamps the closed store with another schema version.
    fn stamp(&self, version: i64) {
        self.sql(
            &format!("UPDATE meta SET value = {version} WHERE key = 'schema_version'"),
            &format!("UPDATE cograph.meta SET value = {version} WHERE key = 'schema_version'"),
        );
    }
}

/// Opens the place's store. A store closed just before may still look in
/// use for a moment: another test's thread spawning a process (`pg.rs`'s
/// `createdb`) forks this process with the directory's lock file open,
/// and the child holds the lock until its exec closes it.
fn open_failing(place: &Place, failpoint: Failpoint) -> Result<(Store, Recovered), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open_at(place.dir.path(), &place.location, failpoint) {
            Err(StoreError::InUse { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// One test of the store, run on each backend: `both! { fn name(place)
/// { ... } }` makes `name::sqlite` and `name::postgres`.
macro_rules! both {
    (fn $name:ident($place:ident) $body:block) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                let $place = Place::sqlite();
                $body
            }

            #[test]
            fn postgres() {
                let $place = Place::postgres();
                $body
            }
        }
    };
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
fn store_with_edits(place: &Place, n_edits: u64) -> (Store, Commits) {
    let (store, _) = place.open();
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

both! {
    fn every_open_raises_the_epoch(place) {
        let epochs: Vec<u64> = (0..3).map(|_| place.open().1.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
    }
}

both! {
    fn a_second_owner_of_the_directory_is_refused_until_the_first_closes(place) {
        let first = place.open();
        let second = Store::open_at(place.dir.path(), &place.location, Failpoint::none());
        assert!(
            matches!(second, Err(StoreError::InUse { .. })),
            "{:?}",
            second.err()
        );
        drop(first);
        assert_eq!(place.open().1.epoch, 2);
    }
}

both! {
    fn reopening_recovers_heads_revision_counters_and_fences(place) {
        let (store, mut log) = store_with_edits(&place, 0);
        commit(
            &store,
            log.next_fenced(set_const(2, 7), BTreeMap::from([(FunctionId(2), 42)])),
        );
        commit(
            &store,
            log.next(json!([{"delete_function": {"function": 3}}])),
        );
        drop(store);
        let (_store, recovered) = place.open();
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
}

both! {
    fn a_lower_fence_never_lowers_the_high_water_mark(place) {
        let (store, mut log) = store_with_edits(&place, 0);
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
        assert_eq!(place.open().1.fences[&FunctionId(1)], 42);
    }
}

both! {
    fn commits_queued_together_are_acknowledged_and_logged_in_queue_order(place) {
        let (store, mut log) = store_with_edits(&place, 0);
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
        let (_store, recovered) = place.open();
        assert_eq!(recovered.program.root_hash(), log.program.root_hash());
    }
}

both! {
    fn history_pages_back_newest_first(place) {
        let (store, _) = store_with_edits(&place, 4);
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
}

both! {
    fn history_of_one_function_holds_only_its_commits(place) {
        let (store, _) = store_with_edits(&place, 4);
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
}

both! {
    fn commits_between_and_versions_answer_from_the_log(place) {
        let (store, log) = store_with_edits(&place, 4);
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
}

#[test]
fn a_version_two_commits_share_is_stored_once() {
    let place = Place::sqlite();
    let (store, mut log) = store_with_edits(&place, 0);
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
    let place = Place::sqlite();
    let (store, mut log) = store_with_edits(&place, 0);
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

both! {
    fn a_reader_sees_what_the_owner_acknowledged(place) {
        let (store, log) = store_with_edits(&place, 2);
        let reader = StoreReader::open_at(&place.location).unwrap();
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
}

#[test]
fn a_reader_of_a_directory_without_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = StoreReader::open(dir.path()).err().expect("no store");
    assert!(matches!(e, StoreError::Dir { .. }), "{e}");
}

both! {
    fn a_store_from_a_newer_cograph_is_refused_by_owner_and_reader(place) {
        drop(store_with_edits(&place, 1));
        place.stamp(SCHEMA_VERSION + 1);
        let e = open_failing(&place, Failpoint::none()).err().expect("refused");
        assert!(
            matches!(e, StoreError::Schema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
            "{e}"
        );
        assert!(e.to_string().contains("newer cograph"), "{e}");
        let e = StoreReader::open_at(&place.location).err().expect("refused");
        assert!(matches!(e, StoreError::Schema { .. }), "{e}");
        // Refusing it changed nothing: stamped back, it opens as before.
        place.stamp(SCHEMA_VERSION);
        let (_store, recovered) = place.open();
        assert_eq!(recovered.n_commits, 4);
        assert_eq!(recovered.epoch, 2);
    }
}

both! {
    fn a_head_naming_a_missing_version_is_corrupt(place) {
        drop(store_with_edits(&place, 0));
        place.sql(
            "PRAGMA foreign_keys = OFF; UPDATE heads SET hash = zeroblob(32) WHERE function_id = 2;",
            "SET session_replication_role = replica;
             UPDATE cograph.heads SET hash = decode(repeat('00', 32), 'hex') WHERE function_id = 2;",
        );
        let e = open_failing(&place, Failpoint::none()).err().expect("refused");
        assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
        assert!(e.to_string().contains("missing version"), "{e}");
    }
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

both! {
    fn a_write_failure_refuses_that_batch_and_every_later_one_and_fires_fatal(place) {
        let (store, _) = open_failing(&place, Failpoint::write_fails_after(2)).unwrap();
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
        let (store, recovered) = place.open();
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
}

both! {
    fn a_failpoint_at_zero_refuses_the_first_batch(place) {
        let (store, _) = open_failing(&place, Failpoint::write_fails_after(0)).unwrap();
        let mut log = Commits::default();
        refused(&store, log.next(create("m::a", 1)));
        assert!(store.fatal().borrow().is_some());
        assert!(store.all_commits().unwrap().is_empty());
    }
}

both! {
    fn a_submit_after_close_is_refused(place) {
        let (store, mut log) = store_with_edits(&place, 0);
        store.close();
        let r = store
            .submit(log.next(set_const(1, 5)))
            .blocking_recv()
            .unwrap();
        assert!(matches!(r, Err(StoreError::Poisoned(_))), "{r:?}");
    }
}
