//! Unit tests of `schema.rs`: migration and upgrades, the version rule,
//! batches, request lookups and operator events.

use super::*;
use crate::store::RequestTag;
use crate::store::tests::{Commits, create, set_const};

fn migrated() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    conn
}

fn names(conn: &Connection, kind: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = ?1 AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap();
    stmt.query_map(params![kind], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The writer's jobs for some commits (nobody hears their answers).
fn jobs<'a>(writes: impl IntoIterator<Item = &'a CommitWrite>) -> Vec<Job> {
    writes
        .into_iter()
        .map(|w| Job::Commit {
            write: w.clone(),
            ack: tokio::sync::oneshot::channel().0,
        })
        .collect()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn migrate_creates_every_table_and_stamps_the_version() {
    let conn = migrated();
    assert_eq!(
        names(&conn, "table"),
        [
            "commit_functions",
            "commits",
            "heads",
            "meta",
            "operator_events",
            "versions"
        ]
    );
    assert_eq!(
        names(&conn, "index"),
        [
            "commit_functions_by_revision",
            "commits_by_request",
            "operator_events_by_function"
        ]
    );
    assert_eq!(meta(&conn, "schema_version").unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 2);
}

/// A store of schema 1, as cograph 1 left it: its tables, one commit.
fn schema_1_store() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn).unwrap();
    let mut log = Commits::default();
    write_batch(&mut conn, &jobs([&log.next(create("m::a", 1))]), None).unwrap();
    conn.execute_batch(
        "DROP INDEX commits_by_request;
         ALTER TABLE commits DROP COLUMN request_id;
         ALTER TABLE commits DROP COLUMN request_hash;
         DROP TABLE operator_events;
         UPDATE meta SET value = 1 WHERE key = 'schema_version';",
    )
    .unwrap();
    conn
}

#[test]
fn a_schema_1_store_reads_as_it_is_then_upgrades_in_place() {
    let mut conn = schema_1_store();
    check_readable(&conn).unwrap();
    let before = all_commits(&conn).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].request, None);
    assert_eq!(events::read(&conn, None, 10).unwrap(), []);
    assert_eq!(commit_for_request(&conn, "test", "x").unwrap(), None);

    migrate(&mut conn).unwrap();
    assert_eq!(meta(&conn, "schema_version").unwrap(), Some(2));
    assert_eq!(all_commits(&conn).unwrap(), before);
    assert!(names(&conn, "table").contains(&"operator_events".to_string()));
}

#[test]
fn a_commit_is_found_by_its_agent_name_and_request_id() {
    let mut conn = migrated();
    let mut log = Commits::default();
    let mut tagged = log.next(create("m::a", 1));
    let tag = RequestTag {
        id: "req-1".into(),
        hash: crate::graph::ContentHash([7; 32]),
    };
    tagged.record.request = Some(tag.clone());
    let untagged = log.next(create("m::b", 2));
    write_batch(&mut conn, &jobs([&tagged, &untagged]), None).unwrap();
    let found = commit_for_request(&conn, "test", "req-1").unwrap().unwrap();
    assert_eq!(found.revision, tagged.record.revision);
    assert_eq!(found.request, Some(tag));
    assert_eq!(commit_for_request(&conn, "other", "req-1").unwrap(), None);
    assert_eq!(commit_for_request(&conn, "test", "req-2").unwrap(), None);
}

#[test]
fn operator_events_are_written_with_commits_and_read_newest_last() {
    let mut conn = migrated();
    let mut log = Commits::default();
    let event = |action, function: Option<u64>| crate::store::OperatorEvent {
        seq: 0,
        time_ms: 5,
        operator: "operator".into(),
        action,
        agent_id: "ag_1".into(),
        agent_name: "a".into(),
        function: function.map(FunctionId),
        function_name: function.map(|_| "m::a".to_string()),
        detail: "write lock".into(),
    };
    let mut batch = jobs([&log.next(create("m::a", 1))]);
    for e in [
        event(events::OperatorAction::BreakLock, Some(1)),
        event(events::OperatorAction::EndAgent, None),
    ] {
        batch.push(Job::Event {
            event: e,
            ack: tokio::sync::oneshot::channel().0,
        });
    }
    assert_eq!(write_batch(&mut conn, &batch, None).unwrap(), [1, 2]);
    let all = events::read(&conn, None, 10).unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(all[0].action, events::OperatorAction::BreakLock);
    let on_a = events::read(&conn, Some(FunctionId(1)), 10).unwrap();
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0].function_name.as_deref(), Some("m::a"));
    assert_eq!(events::read(&conn, None, 1).unwrap()[0].seq, 2);
}

#[test]
fn migrate_twice_changes_nothing() {
    let mut conn = migrated();
    bump_epoch(&mut conn).unwrap();
    migrate(&mut conn).unwrap();
    assert_eq!(meta(&conn, "schema_version").unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(meta(&conn, "epoch").unwrap(), Some(1));
}

#[test]
fn migrate_refuses_a_newer_store_and_leaves_it_untouched() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT INTO meta VALUES ('schema_version', {});",
        SCHEMA_VERSION + 1
    ))
    .unwrap();
    let e = migrate(&mut conn).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Schema {
                found,
                supported: SCHEMA_VERSION
            } if found == SCHEMA_VERSION + 1
        ),
        "{e}"
    );
    assert_eq!(names(&conn, "table"), ["meta"]);
}

#[test]
fn check_version_accepts_this_version() {
    assert!(check_version(Some(SCHEMA_VERSION)).is_ok());
}

#[test]
fn check_version_refuses_a_newer_version() {
    assert!(matches!(
        check_version(Some(SCHEMA_VERSION + 1)),
        Err(StoreError::Schema { .. })
    ));
}

#[test]
fn check_version_refuses_a_version_cograph_never_wrote() {
    assert!(matches!(
        check_version(Some(0)),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn check_version_refuses_a_missing_version() {
    assert!(matches!(check_version(None), Err(StoreError::Corrupt(_))));
}

#[test]
fn a_reader_refuses_a_database_that_is_not_a_store() {
    let conn = Connection::open_in_memory().unwrap();
    let e = check_readable(&conn).unwrap_err();
    assert!(e.to_string().contains("no meta table"), "{e}");
    assert!(check_readable(&migrated()).is_ok());
}

#[test]
fn the_epoch_counts_up_from_one() {
    let mut conn = migrated();
    let epochs: Vec<u64> = (0..3).map(|_| bump_epoch(&mut conn).unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3]);
}

#[test]
fn a_batch_is_written_whole_with_the_last_function_counter() {
    let mut conn = migrated();
    let mut log = Commits::default();
    let batch = [
        log.next(create("m::a", 1)),
        log.next(create("m::b", 2)),
        log.next(set_const(1, 3)),
    ];
    write_batch(&mut conn, &jobs(&batch), None).unwrap();
    assert_eq!(count(&conn, "commits"), 3);
    assert_eq!(count(&conn, "commit_functions"), 3);
    assert_eq!(count(&conn, "heads"), 2);
    assert_eq!(count(&conn, "versions"), 3);
    assert_eq!(meta(&conn, "next_function_id").unwrap(), Some(3));
    let revs: Vec<u64> = all_commits(&conn)
        .unwrap()
        .iter()
        .map(|c| c.revision.0)
        .collect();
    assert_eq!(revs, [1, 2, 3]);
}

#[test]
fn an_injected_failure_leaves_nothing_of_its_batch() {
    let mut conn = migrated();
    let mut log = Commits::default();
    let first = log.next(create("m::a", 1));
    write_batch(&mut conn, &jobs([&first]), None).unwrap();
    let batch = [log.next(create("m::b", 2)), log.next(set_const(1, 3))];
    let e = write_batch(
        &mut conn,
        &jobs(&batch),
        Some(crate::store::failpoint::injected_write_error()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");
    assert_eq!(count(&conn, "commits"), 1);
    assert_eq!(count(&conn, "commit_functions"), 1);
    assert_eq!(count(&conn, "heads"), 1);
    assert_eq!(count(&conn, "versions"), 1);
    assert_eq!(meta(&conn, "next_function_id").unwrap(), Some(2));
}

#[test]
fn a_revision_written_twice_is_refused() {
    let mut conn = migrated();
    let mut log = Commits::default();
    let first = log.next(create("m::a", 1));
    write_batch(&mut conn, &jobs([&first]), None).unwrap();
    assert!(write_batch(&mut conn, &jobs([&first]), None).is_err());
    assert_eq!(count(&conn, "commits"), 1);
}
