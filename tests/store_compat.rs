//! A store written by an earlier cograph opens in this one. The failure
//! this guards against: a change to the schema, the stored JSON of edit
//! ops, the canonical encoding of functions or the recovery code that
//! leaves existing data directories unreadable, or readable as something
//! else (another program, other revisions, a log that no longer replays).
//!
//! `tests/fixtures/store-v1/cograph.db` is a data directory's store file
//! written by `cograph serve` at schema version 1, over MCP, by
//! `generate_store_v1_fixture` below: functions in two modules created,
//! edited under a write lock, renamed, one deleted, bodies replaced as text
//! and as nodes, a doc set, aliases used; then checkpointed, so the file
//! stands alone. The tests open a copy (opening raises the
//! restart epoch, so the fixture itself is never opened for writing) and
//! compare with the values recorded below when the fixture was made.
//!
//! The fixture is never regenerated: it is what this version wrote, and
//! later versions must keep reading it. A new schema version adds a new
//! fixture beside it.

use std::path::{Path, PathBuf};

mod common;

use cograph::graph::{FunctionId, Program, Revision, function_hash};
use cograph::service::{Hub, HubConfig};
use cograph::store::{Failpoint, Store, StoreReader};
use cograph::verify::verify_all;

/// The last revision of the fixture.
const REVISION: u64 = 7;
/// Its root hash, as `program_overview` reported it when it was written.
const ROOT_HASH: &str = "9692d344d1b59e261bfe81884430580b15938ff1fb061c1706ee9dd9f62f3694";
/// Its functions at the last revision: id, name, revision of the head.
const HEADS: [(u64, &str, u64); 3] = [
    (1, "math::add1", 7),
    (3, "util::lucky", 7),
    (4, "math::quad", 5),
];
/// Per revision, the ids of the functions that commit changed.
const CHANGES: [&[u64]; 7] = [&[1, 2, 3], &[4], &[1], &[3], &[4], &[2], &[1, 3]];
/// The restart epoch it was left at (one `serve` run).
const EPOCH: u64 = 1;
/// The fencing high-water mark of the function edited under a lock.
const FENCE: (u64, u64) = (1, (1 << 40) + 1);

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1")
}

/// A fresh data directory holding a copy of the fixture's store file.
fn copy_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture().join(cograph::store::DB_FILE),
        dir.path().join(cograph::store::DB_FILE),
    )
    .expect("the fixture's store file");
    dir
}

fn revisions(records: &[cograph::store::CommitRecord]) -> Vec<u64> {
    records.iter().map(|c| c.revision.0).collect()
}

fn heads(program: &Program) -> Vec<(u64, String, u64)> {
    program
        .functions()
        .map(|(id, e)| (id.0, e.function.name.to_string(), e.revision.0))
        .collect()
}

fn recorded_heads() -> Vec<(u64, String, u64)> {
    HEADS
        .iter()
        .map(|(id, name, rev)| (*id, name.to_string(), *rev))
        .collect()
}

#[test]
fn the_fixture_holds_only_the_store_file() {
    let mut names: Vec<String> = std::fs::read_dir(fixture())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(names, [cograph::store::DB_FILE]);
}

#[tokio::test]
async fn the_hub_opens_it_verified_at_the_recorded_revision_and_root() {
    let dir = copy_of_fixture();
    let hub = Hub::open(HubConfig::new(dir.path())).expect("the hub opens the old store");
    let program = hub.snapshot();
    assert_eq!(program.revision(), Revision(REVISION));
    assert_eq!(program.root_hash().to_hex(), ROOT_HASH);
    assert_eq!(heads(&program), recorded_heads());
    assert!(verify_all(&program).is_empty());
    hub.shutdown().await;
}

#[test]
fn the_store_recovers_its_counters_and_continues_them() {
    let dir = copy_of_fixture();
    let (store, recovered) = Store::open_with(dir.path(), Failpoint::none()).unwrap();
    assert_eq!(recovered.n_commits, REVISION);
    assert_eq!(recovered.epoch, EPOCH + 1);
    assert_eq!(
        recovered.fences.get(&FunctionId(FENCE.0)).copied(),
        Some(FENCE.1)
    );
    let highest = HEADS.iter().map(|h| h.0).max().unwrap();
    assert!(recovered.program.next_function_id().0 > highest);
    drop(store);
}

#[test]
fn its_history_reads_back_page_by_page() {
    let dir = copy_of_fixture();
    let (store, _) = Store::open_with(dir.path(), Failpoint::none()).unwrap();
    let mut newest_first = Vec::new();
    let mut before = None;
    for _ in 0..=REVISION {
        let page = store.history(None, before, 3).unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.revision);
        newest_first.extend(page);
    }
    assert_eq!(
        revisions(&newest_first),
        (1..=REVISION).rev().collect::<Vec<_>>()
    );
    for c in &newest_first {
        let ids: Vec<u64> = c.changes.iter().map(|ch| ch.function.0).collect();
        assert_eq!(ids, CHANGES[c.revision.0 as usize - 1], "r{}", c.revision.0);
        assert!(!c.ops.is_empty() && !c.summary.is_empty());
    }
    // Each head's own history ends at the head's revision.
    for (id, _, rev) in HEADS {
        let own = store.history(Some(FunctionId(id)), None, 100).unwrap();
        assert_eq!(own.first().map(|c| c.revision.0), Some(rev), "#{id}");
    }
}

#[test]
fn its_log_replays_to_its_heads() {
    let dir = copy_of_fixture();
    let reader = StoreReader::open(dir.path()).unwrap();
    let program = common::replay(&reader.all_commits().unwrap());
    assert_eq!(program.root_hash().to_hex(), ROOT_HASH);
    assert_eq!(reader.program().unwrap().root_hash().to_hex(), ROOT_HASH);
}

#[test]
fn its_old_versions_are_kept_and_hash_to_their_keys() {
    let dir = copy_of_fixture();
    let (store, _) = Store::open_with(dir.path(), Failpoint::none()).unwrap();
    let mut n_versions = 0;
    for c in store.all_commits().unwrap() {
        for ch in &c.changes {
            let Some(hash) = ch.after else { continue };
            let f = store
                .version(&hash)
                .unwrap()
                .unwrap_or_else(|| panic!("r{}: version {hash} is missing", c.revision.0));
            assert_eq!(function_hash(&f), hash);
            assert_eq!(f.name, ch.name);
            assert_eq!(
                store.version_at(ch.function, c.revision).unwrap(),
                Some(hash)
            );
            n_versions += 1;
        }
    }
    assert!(n_versions > HEADS.len(), "the fixture keeps old versions");
}

// ---------------------------------------------------------------------------
// How the fixture was made. Run once, with the cograph of the schema version
// the fixture is named after:
//
//     COGRAPH_FIXTURE_OUT=tests/fixtures/store-v1 \
//         cargo test --release --test store_compat -- --ignored --exact generate_store_v1_fixture
//
// It starts `cograph serve` on an empty data directory, makes the commits
// below over MCP, lets the server exit by itself (`--idle-exit`), checkpoints
// the WAL into the store file, copies that file to COGRAPH_FIXTURE_OUT and
// prints the values to record above.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the fixture; run by hand, once per schema version"]
async fn generate_store_v1_fixture() {
    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use serde_json::{Value, json};

    let out = PathBuf::from(std::env::var("COGRAPH_FIXTURE_OUT").expect("COGRAPH_FIXTURE_OUT"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cograph"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--idle-exit",
            "1",
            "--data",
        ])
        .arg(&data)
        .env("COGRAPH_LOG", "warn")
        .env_remove(cograph::store::FAILPOINT_ENV)
        .spawn()
        .unwrap();
    let url = wait_for_hub(&data, child.id());
    let client = ().serve(StreamableHttpClientTransport::from_uri(url.as_str())).await.unwrap();
    let call = async |tool: &str, args: Value| -> Value {
        let Value::Object(map) = args else {
            unreachable!()
        };
        let r = client
            .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{tool}: {r:?}");
        r.structured_content.unwrap()
    };
    let propose =
        async |ops: Value| call("propose_edit", json!({"ops": ops, "purpose": "fixture"})).await;

    // r1: three functions in two modules.
    propose(json!([
        {"create_function": {"text": "/// Adds one.\nfn math::add1(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = return %2\n}\n"}},
        {"create_function": {"text": "fn math::double(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 2\n  %2 = mul %0, %1\n  %3 = return %2\n}\n"}},
        {"create_function": {"name": "util::seven", "params": [], "returns": "i64", "body": "%0 = const 7\n%1 = return %0\n"}},
    ]))
    .await;
    // r2: a caller, by name.
    propose(json!([{"create_function": {"text": "fn math::quad(x: i64) -> i64 {\n  %0 = param 0\n  %1 = call math::double %0\n  %2 = call math::double %1\n  %3 = return %2\n}\n"}}])).await;
    // r3: an edit under a write lock (it records a fencing token).
    call(
        "acquire_locks",
        json!({"locks": [{"function": "math::add1", "mode": "write"}]}),
    )
    .await;
    propose(json!([{"set_op": {"function": "math::add1", "node": "%1", "op": "const 5"}}])).await;
    call("release_locks", json!({})).await;
    // r4: a rename.
    propose(json!([{"rename_function": {"function": "util::seven", "new_name": "util::lucky"}}]))
        .await;
    // r5: a body replaced as nodes, so math::double loses its last caller.
    propose(
        json!([{"replace_body": {"function": "math::quad", "nodes": [
            {"id": 0, "op": "param 0"},
            {"id": 1, "op": "const 4"},
            {"id": 2, "op": "mul", "inputs": [0, 1]},
            {"id": 3, "op": "return", "inputs": [2]}
        ]}}]),
    )
    .await;
    // r6: a delete.
    propose(json!([{"delete_function": {"function": "math::double"}}])).await;
    // r7: several ops on two functions: an alias, a doc, a body as text.
    propose(json!([
        {"add_node": {"function": "math::add1", "op": "call util::lucky", "as": "$seven"}},
        {"add_node": {"function": "math::add1", "op": "add", "inputs": ["%2", "$seven"], "as": "$sum"}},
        {"set_inputs": {"function": "math::add1", "node": "%3", "inputs": ["$sum"]}},
        {"set_doc": {"function": "math::add1", "doc": "Adds five, then seven."}},
        {"replace_body": {"function": "util::lucky", "text": "%0 = const 8\n%1 = return %0\n"}},
    ]))
    .await;
    let overview = call("program_overview", json!({})).await;
    client.cancel().await.unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");

    // Fold the WAL into the store file (the owner's last close usually has).
    let db = data.join(cograph::store::DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    for leftover in ["-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{leftover}", db.display()));
        assert!(!path.exists() || std::fs::metadata(&path).unwrap().len() == 0);
        let _ = std::fs::remove_file(path);
    }
    // The values to record, read before anything else opens the file.
    let reader = StoreReader::open(&data).unwrap();
    let program = reader.program().unwrap();
    eprintln!("REVISION = {}", program.revision().0);
    eprintln!(
        "ROOT_HASH = {} (overview: {})",
        program.root_hash(),
        overview["root_hash"]
    );
    eprintln!("HEADS = {:?}", heads(&program));
    let changes: Vec<Vec<u64>> = reader
        .all_commits()
        .unwrap()
        .iter()
        .map(|c| c.changes.iter().map(|ch| ch.function.0).collect())
        .collect();
    eprintln!("CHANGES = {changes:?}");
    drop(reader);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(&db, out.join(cograph::store::DB_FILE)).unwrap();
    let (_store, recovered) = Store::open_with(&data, Failpoint::none()).unwrap();
    eprintln!("EPOCH = {} (before this open)", recovered.epoch - 1);
    eprintln!("FENCES = {:?}", recovered.fences);
}

fn wait_for_hub(data: &Path, pid: u32) -> String {
    for _ in 0..1500 {
        if let Some(info) = cograph::mcp::hub::HubInfo::read(data)
            && info.pid == pid
        {
            return format!("http://{}/mcp", info.http);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("serve did not start");
}
