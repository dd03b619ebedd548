//! Crash consistency: a `cograph serve` process is killed with SIGKILL at
//! random moments while several clients commit concurrently, many times over
//! on one data directory. The failure this guards against: a commit that a
//! client was told is durable but is missing after a crash, or a commit that
//! is half there (a log entry without its head, or a head without its log
//! entry, or versions that do not hash to their keys).
//!
//! After every kill: every acknowledged commit is in the log with the hash
//! its client was told; replaying the log from an empty program gives, commit
//! by commit, exactly the recorded hashes and finally the stored heads; the
//! store opens (checking every version's hash) and the program verifies.
//!
//! Cycles: 20 by default; set COGRAPH_CRASH_CYCLES for more.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cograph::service::{Hub, HubConfig};
use cograph::store::StoreReader;
use cograph::verify::verify_all;
use common::{EXE, try_call, wait_for_hub};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
const N_FUNCTIONS: usize = 8;
const N_CLIENTS: usize = 6;

type Acked = Arc<Mutex<Vec<(u64, u64, String)>>>;

/// The structured content of a successful call; `None` for a tool error or
/// a transport failure (the server may be gone).
async fn call(client: &rmcp::Peer<rmcp::RoleClient>, tool: &str, args: Value) -> Option<Value> {
    let r = try_call(client, tool, args).await.ok()?;
    if r.is_error == Some(true) {
        return None;
    }
    r.structured_content
}

async fn client_loop(url: String, seed: u64, acked: Acked) {
    let Ok(client) = ().serve(StreamableHttpClientTransport::from_uri(url.as_str())).await else {
        return;
    };
    let mut x = seed | 1;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = format!("crash::f{}", x % N_FUNCTIONS as u64);
        if call(&client, "get_function", json!({"function": f}))
            .await
            .is_none()
        {
            return;
        }
        let op = json!({"set_op": {"function": f, "node": "%0", "op": format!("const {}", x % 100_000)}});
        match tokio::time::timeout(
            Duration::from_secs(5),
            call(&client, "propose_edit", json!({"ops": [op]})),
        )
        .await
        {
            Ok(Some(r)) if r["status"] == "committed" => {
                let change = &r["functions"][0];
                acked.lock().unwrap().push((
                    r["revision"].as_u64().unwrap(),
                    change["function_id"].as_u64().unwrap(),
                    change["after"].as_str().unwrap().to_string(),
                ));
            }
            Ok(Some(_)) => {}
            // A conflict or a transport error: try again, or stop once the
            // server is gone.
            Ok(None) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => return,
        }
    }
}

/// Everything the failure model promises, checked on the store at rest.
fn check_store(dir: &std::path::Path, acked: &[(u64, u64, String)]) -> usize {
    let reader = StoreReader::open(dir).expect("the store opens after a crash");
    let log = reader.all_commits().unwrap();
    for (idx, c) in log.iter().enumerate() {
        assert_eq!(c.revision.0, idx as u64 + 1, "the log has no gaps");
        assert!(!c.changes.is_empty(), "r{} changes nothing", c.revision.0);
    }
    for (rev, fid, hash) in acked {
        let c = log
            .iter()
            .find(|c| c.revision.0 == *rev)
            .unwrap_or_else(|| panic!("acknowledged r{rev} is missing after the crash"));
        let change = c
            .changes
            .iter()
            .find(|ch| ch.function.0 == *fid)
            .expect("the acknowledged change");
        assert_eq!(
            change.after.map(|h| h.to_hex()).as_deref(),
            Some(hash.as_str())
        );
    }
    // Replay: each commit's ops give exactly its recorded hashes.
    let program = common::replay(&log);
    let stored = reader
        .program()
        .expect("every stored version hashes to its key");
    assert_eq!(
        stored.root_hash(),
        program.root_hash(),
        "heads differ from the replayed log"
    );
    assert!(verify_all(&stored).is_empty());
    log.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_commit_and_leaves_no_partial_one() {
    let cycles: usize = std::env::var("COGRAPH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let acked: Acked = Arc::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut total_commits = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(EXE)
            .args(["serve", "--data", &data, "--listen", "127.0.0.1:0"])
            .env("COGRAPH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let info = wait_for_hub(dir.path(), child.id());
        let url = format!("http://{}/mcp", info.http);
        if cycle == 0 {
            let setup =
                ().serve(StreamableHttpClientTransport::from_uri(url.as_str()))
                    .await
                    .unwrap();
            let ops: Vec<Value> = (0..N_FUNCTIONS)
                .map(|i| json!({"create_function": {"text": format!("fn crash::f{i}() -> i64 {{\n  %0 = const 0\n  %1 = return %0\n}}\n")}}))
                .collect();
            call(&setup, "propose_edit", json!({"ops": ops}))
                .await
                .expect("setup");
            setup.cancel().await.unwrap();
        }
        let tasks: Vec<_> = (0..N_CLIENTS)
            .map(|k| {
                tokio::spawn(client_loop(
                    url.clone(),
                    rng ^ (k as u64 * 0x2545_f491),
                    acked.clone(),
                ))
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(50 + rng % 350)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in tasks {
            t.abort();
        }
        let snapshot = acked.lock().unwrap().clone();
        total_commits = check_store(dir.path(), &snapshot);
    }
    let n_acked = acked.lock().unwrap().len();
    eprintln!("{cycles} kills, {n_acked} acknowledged commits, {total_commits} in the log");
    assert!(
        n_acked >= cycles * 5,
        "too few commits to mean anything: {n_acked}"
    );
    // The hub (recovery + verification) opens on what the kills left.
    let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
    assert_eq!(hub.snapshot().revision().0 as usize, total_commits);
}
