//! The store's poison path through the built binary. The failure this
//! guards against: a `cograph serve` whose store can no longer write, yet
//! keeps answering, acknowledges a commit that is not durable, or leaves
//! half a commit behind for the next start to find.
//!
//! The test failpoint `COGRAPH_FAILPOINT=store-write-after:3` makes the
//! writer's fourth batch fail with an injected I/O error (see
//! `src/store/failpoint.rs`). Three commits, each awaited before the next
//! so each is its own batch, are acknowledged; the fourth is answered with
//! an error; the server then exits with a failure status by itself. Started
//! again without the failpoint, it serves exactly the three acknowledged
//! commits: their revisions and hashes in the history and in the
//! functions, and nothing of the fourth. On each store, SQLite and
//! PostgreSQL (`each_store!`).

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cograph::mcp::hub::HubInfo;
use cograph::store::{FAILPOINT_ENV, StoreReader};
use common::stores::TestStore;
use common::{Client, Recorder, call, ok, try_call};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_cograph");
/// How long a call may take to be answered, failure included: generous, so
/// only a server that never answers runs into it.
const ANSWER_BOUND: Duration = Duration::from_secs(60);

/// Starts `cograph serve` on `store`, its log in `log`, and waits until it
/// has written its hub.json.
fn serve(store: &TestStore, log: &Path, failpoint: Option<&str>) -> (Child, String) {
    let data = store.dir.path();
    let mut command = Command::new(EXE);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(store.args())
        .env("COGRAPH_LOG", "warn")
        .env_remove(FAILPOINT_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(fp) = failpoint {
        command.env(FAILPOINT_ENV, fp);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(info) = HubInfo::read(data)
            && info.pid == child.id()
        {
            return (child, format!("http://{}/mcp", info.http));
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "serve exited early with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "serve never wrote hub.json");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (up to a minute) for the process to exit by itself.
fn exit_status(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("serve kept running after its store failed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn connect(url: &str) -> Client {
    Recorder::default()
        .serve(StreamableHttpClientTransport::from_uri(url))
        .await
        .unwrap()
}

/// One acknowledged commit: its revision and, per function id, the hash
/// it was told.
struct Acked {
    revision: u64,
    after: Vec<(u64, String)>,
}

fn acked(result: &Value) -> Acked {
    assert_eq!(result["status"], "committed", "{result:#}");
    Acked {
        revision: result["revision"].as_u64().unwrap(),
        after: result["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["function_id"].as_u64().unwrap(),
                    f["after"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    }
}

async fn propose(client: &Client, ops: Value) -> Value {
    ok(&call(client, "propose_edit", json!({"ops": ops})).await)
}

/// A `propose_edit` with `ops`, and its answer: the tool result or the
/// JSON-RPC error, or `None` if none came in `ANSWER_BOUND`.
async fn answer(
    client: &Client,
    ops: Value,
) -> Option<Result<rmcp::model::CallToolResult, rmcp::ServiceError>> {
    tokio::time::timeout(
        ANSWER_BOUND,
        try_call(client, "propose_edit", json!({"ops": ops})),
    )
    .await
    .ok()
}

const ADD: &str = "fn math::add1(x: i64) -> i64 {\n  %0 = param 0\n  %1 = const 1\n  %2 = add %0, %1\n  %3 = return %2\n}\n";
const SEVEN: &str = "fn util::seven() -> i64 {\n  %0 = const 7\n  %1 = return %0\n}\n";

each_store! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_stops_serve_and_a_restart_keeps_exactly_the_acknowledged_commits(store) {
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("first.log");
        let (mut child, url) = serve(&store, &log, Some("store-write-after:3"));
        let client = connect(&url).await;

        let set_add1 = |value: i64| json!([{"set_op": {"function": "math::add1", "node": "%1", "op": format!("const {value}")}}]);
        let create = json!([{"create_function": {"text": ADD}}, {"create_function": {"text": SEVEN}}]);
        let rename =
            json!([{"rename_function": {"function": "util::seven", "new_name": "util::lucky"}}]);
        let mut commits = vec![
            acked(&propose(&client, create).await),
            acked(&propose(&client, set_add1(2)).await),
            acked(&propose(&client, rename).await),
        ];
        assert_eq!(
            commits.iter().map(|c| c.revision).collect::<Vec<_>>(),
            [1, 2, 3]
        );

        // The fourth batch fails: the commit is answered with an error.
        let faulted = answer(&client, set_add1(999))
            .await
            .expect("the faulted commit is answered");
        match &faulted {
            Err(rmcp::ServiceError::McpError(e)) => {
                assert_eq!(e.code, rmcp::model::ErrorCode::INTERNAL_ERROR, "{e:?}");
                assert!(e.message.contains("the server is stopping"), "{e:?}");
                assert!(e.message.contains("injected"), "{e:?}");
            }
            other => panic!("expected an error answer for the faulted commit, got {other:?}"),
        }
        // A later commit is refused too, if the stopping server answers at
        // all. (It edits another function: one the failed commit changed is,
        // at the server's tip, at a revision that never became durable.)
        let later = json!([{"set_op": {"function": "util::lucky", "node": "%0", "op": "const 8"}}]);
        match answer(&client, later).await {
            Some(Ok(result)) => assert_eq!(
                result.is_error,
                Some(true),
                "a commit after the fault succeeded"
            ),
            Some(Err(rmcp::ServiceError::McpError(e))) => {
                assert!(e.message.contains("the server is stopping"), "{e:?}")
            }
            // Cut off by the stopping server.
            Some(Err(_)) | None => {}
        }

        let status = exit_status(&mut child);
        assert!(
            !status.success(),
            "serve exited with {status} after its store failed"
        );
        let first_log = std::fs::read_to_string(&log).unwrap();
        assert!(first_log.contains("the hub must stop"), "{first_log}");
        assert!(
            first_log.contains("injected by the test failpoint"),
            "the log names the store's failure: {first_log}"
        );
        drop(client);

        // Started again without the failpoint.
        let (mut child, url) = serve(&store, &logs.path().join("second.log"), None);
        let client = connect(&url).await;
        let history = ok(&call(&client, "history", json!({})).await);
        let logged: Vec<u64> = history["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["revision"].as_u64().unwrap())
            .collect();
        assert_eq!(logged, [3, 2, 1], "{history:#}");
        for (c, logged) in commits
            .iter()
            .rev()
            .zip(history["commits"].as_array().unwrap())
        {
            let mut after: Vec<(u64, String)> = logged["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ch| {
                    (
                        ch["function_id"].as_u64().unwrap(),
                        ch["after"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            after.sort();
            let mut told = c.after.clone();
            told.sort();
            assert_eq!(
                after, told,
                "r{} is not what its client was told",
                c.revision
            );
        }
        // Each function is at the version its last acknowledged commit left.
        let last = commits.pop().unwrap();
        let add1 = ok(&call(&client, "get_function", json!({"function": "math::add1"})).await);
        assert_eq!(add1["revision"], 2);
        assert_eq!(add1["hash"].as_str(), Some(commits[1].after[0].1.as_str()));
        assert!(
            add1["text"].as_str().unwrap().contains("const 2"),
            "{add1:#}"
        );
        assert!(!add1["text"].as_str().unwrap().contains("999"), "{add1:#}");
        let lucky = ok(&call(&client, "get_function", json!({"function": "util::lucky"})).await);
        assert_eq!(lucky["revision"], 3);
        assert_eq!(lucky["hash"].as_str(), Some(last.after[0].1.as_str()));
        let overview = ok(&call(&client, "program_overview", json!({})).await);
        assert_eq!(overview["revision"], 3);
        assert_eq!(overview["n_functions"], 2);

        // And the store at rest agrees: the log ends at r3 and the heads hash
        // to the root the server reported.
        let reader = StoreReader::open_at(&store.location).unwrap();
        let all: Vec<u64> = reader
            .all_commits()
            .unwrap()
            .iter()
            .map(|c| c.revision.0)
            .collect();
        assert_eq!(all, [1, 2, 3]);
        assert_eq!(
            reader.program().unwrap().root_hash().to_hex(),
            overview["root_hash"].as_str().unwrap()
        );
        // The restarted server commits again, from r4.
        let next = acked(&propose(&client, set_add1(3)).await);
        assert_eq!(next.revision, 4);
        drop(client);
        let _ = child.kill();
        let _ = child.wait();
    }
}
