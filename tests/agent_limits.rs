//! Stateless agents' limits, through `cograph serve` and `register_agent`
//! over HTTP: past `--max-agents` a registration is refused with an error
//! naming the cap and the flag, and changes nothing; `--agent-idle` sets
//! how long an idle stateless agent lives, and one that expired frees its
//! slot. Before these flags every registration lived 30 minutes and there
//! was no cap.
//!
//! Also what others see of an agent's activity, so a waiting agent can
//! judge a dead holder: denials name each holder's last activity and idle
//! time (data and text), and so does `list_agents`.

mod common;

use common::served::Served;
use common::{Server, acquire, call, err, eventually, ok, refused, register, text};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_agent_past_the_cap_is_refused_naming_the_cap_and_the_flag() {
    let s = Served::start(&["--max-agents", "3"]);
    let client = s.stateless_client().await;
    let mut sessions = Vec::new();
    for n in 0..3 {
        sessions.push(register(&client, &format!("agent-{n}")).await.0);
    }
    let refusal = refused(
        &client,
        "register_agent",
        json!({"name": "one-too-many"}),
        "too_many_agents",
    )
    .await;
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(message.contains('3'), "{message}");
    assert!(message.contains("--max-agents"), "{message}");
    // Nothing changed: still three agents, and every handle still works.
    let listed = ok(&call(&client, "list_agents", json!({"session": sessions[0]})).await);
    let agents = listed["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{listed:#}");
    assert!(agents.iter().all(|a| a["name"] != "one-too-many"));
    for session in &sessions {
        ok(&call(&client, "lock_status", json!({"session": session})).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_past_its_idle_limit_is_ended_and_frees_its_slot() {
    let s = Served::start(&["--max-agents", "1", "--agent-idle", "1s"]);
    let client = s.stateless_client().await;
    let (first, _) = register(&client, "first").await;
    refused(
        &client,
        "register_agent",
        json!({"name": "second"}),
        "too_many_agents",
    )
    .await;
    // After a second of idleness the first agent is gone, and its slot
    // is free for the next registration.
    let mut second = None;
    eventually("the idle agent's slot to free", async || {
        let r = call(&client, "register_agent", json!({"name": "second"})).await;
        if r.is_error == Some(true) {
            return false;
        }
        second = Some(ok(&r)["session"].as_str().unwrap().to_string());
        true
    })
    .await;
    refused(
        &client,
        "lock_status",
        json!({"session": first}),
        "session_required",
    )
    .await;
    ok(&call(&client, "lock_status", json!({"session": second.unwrap()})).await);
}

#[test]
fn serve_refuses_nonsense_limits() {
    for (flag, value, says) in [
        ("--max-agents", "0", "--max-agents"),
        ("--agent-idle", "0s", "--agent-idle"),
        ("--agent-idle", "5 parsecs", "unknown unit"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(common::EXE)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_and_list_agents_show_how_long_a_holder_has_been_idle() {
    let s = Server::start().await;
    let alice = s.http_session().await;
    ok(&call(&alice, "register_agent", json!({"name": "alice"})).await);
    ok(&acquire(&alice, "demo::f", "write").await);
    // Alice does nothing more; after a second she has been idle at least
    // that long.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let bob = s.http_session().await;
    let denied = acquire(&bob, "demo::f", "write").await;
    let details = err(&denied, "lock_denied");
    let holder = &details["blocked"][0]["holders"][0];
    assert_eq!(holder["agent_name"], "alice", "{details:#}");
    assert!(holder["idle_s"].as_u64().unwrap() >= 1, "{holder:#}");
    assert!(text(&denied).contains("idle "), "{}", text(&denied));

    let listed = call(&bob, "list_agents", json!({})).await;
    let agents = ok(&listed)["agents"].as_array().unwrap().clone();
    let a = agents.iter().find(|a| a["name"] == "alice").unwrap();
    assert!(a["idle_s"].as_u64().unwrap() >= 1, "{a:#}");
    let b = agents.iter().find(|a| a["you"] == true).unwrap();
    assert_eq!(b["idle_s"], 0, "the caller is in a call: {b:#}");
    let summary = text(&listed);
    assert!(
        summary.contains("alice") && summary.contains("idle "),
        "{summary}"
    );
    assert!(summary.contains("active"), "{summary}");

    let status = call(&bob, "lock_status", json!({})).await;
    assert!(text(&status).contains("idle "), "{}", text(&status));
}
