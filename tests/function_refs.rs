//! What every tool accepts as a function reference, pinned in one table:
//! the same spellings are accepted, and the same refused, by every tool
//! that names a function (and inside edit ops and `base` keys), because all
//! of them go through `FunctionRef::parse`. Before that parser existed,
//! `"7"` worked in get_function but not inside an edit op, and `"##7"` was
//! accepted by release_locks.

mod common;

use common::{Server, call, ok, try_call};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

/// `demo::f` is function 1 on a fresh test server.
fn accepted() -> Vec<Value> {
    vec![json!(1), json!("1"), json!("#1"), json!("demo::f")]
}

fn refused() -> Vec<Value> {
    vec![
        json!("##1"),
        json!("+1"),
        json!("1a"),
        json!("#demo::f"),
        json!("demo"),
        json!(" demo::f"),
        json!("demo::1f"),
        json!(""),
        json!(-1),
        json!(true),
    ]
}

/// How a call came out, as far as the reference is concerned.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    /// Refused for the reference: a JSON-RPC invalid-params error, or an
    /// `invalid_edit` for a reference inside an edit op.
    BadReference,
    Other(String),
}

fn classify(result: Result<CallToolResult, rmcp::ServiceError>) -> Outcome {
    match result {
        Ok(r) if r.is_error != Some(true) => Outcome::Ok,
        Ok(r) => {
            let s = r.structured_content.unwrap_or_default();
            let message = s["error"]["message"].as_str().unwrap_or_default();
            if s["error"]["code"] == "invalid_edit" && message.contains("is not a function") {
                Outcome::BadReference
            } else {
                Outcome::Other(format!("{s}"))
            }
        }
        Err(rmcp::ServiceError::McpError(e))
            if e.code == rmcp::model::ErrorCode::INVALID_PARAMS
                && (e.message.contains("is not a function")
                    || e.message.contains("expected a function")) =>
        {
            Outcome::BadReference
        }
        Err(e) => Outcome::Other(e.to_string()),
    }
}

/// Calls `tool` with the arguments `args(spelling)` for every spelling and
/// fails, listing every mismatch, unless the accepted ones succeed and the
/// refused ones are refused for the reference.
async fn check(tool: &str, args: impl Fn(Value) -> Value) {
    let s = Server::start().await;
    let client = s.in_process("refs").await;
    // A read of demo::f, so that edits have a base.
    ok(&call(&client, "get_function", json!({"function": "demo::f"})).await);
    let root_before = s.hub.snapshot().root_hash();
    let mut mismatches = Vec::new();
    for (spelling, expected) in accepted()
        .into_iter()
        .map(|v| (v, Outcome::Ok))
        .chain(refused().into_iter().map(|v| (v, Outcome::BadReference)))
    {
        let got = classify(try_call(&client, tool, args(spelling.clone())).await);
        if got != expected {
            mismatches.push(format!("{spelling}: expected {expected:?}, got {got:?}"));
        }
        // Whatever the outcome, the release tool gets a clean slate.
        if tool == "acquire_locks" {
            ok(&call(&client, "release_locks", json!({})).await);
        }
    }
    assert!(mismatches.is_empty(), "{tool}:\n{}", mismatches.join("\n"));
    assert_eq!(
        s.hub.snapshot().root_hash(),
        root_before,
        "{tool} changed the program"
    );
}

macro_rules! surfaces {
    ($($test:ident: $tool:literal, |$f:ident| $args:expr;)*) => {$(
        #[tokio::test]
        async fn $test() {
            check($tool, |$f| $args).await;
        }
    )*};
}

surfaces! {
    get_function: "get_function", |f| json!({"function": f});
    lock_status: "lock_status", |f| json!({"function": f});
    run_function: "run_function", |f| json!({"function": f, "args": [1]});
    history: "history", |f| json!({"function": f});
    diff: "diff", |f| json!({"function": f, "from": 1});
    acquire_locks: "acquire_locks", |f| json!({"locks": [{"function": f, "mode": "read"}]});
    release_locks: "release_locks", |f| json!({"functions": [f]});
    an_edit_op: "propose_edit", |f| json!({
        "ops": [{"set_doc": {"function": f, "doc": "checked"}}],
        "dry_run": true
    });
}

/// `base` is a map, so its keys are strings only: the string spellings.
#[tokio::test]
async fn base_keys() {
    let s = Server::start().await;
    let client = s.in_process("refs").await;
    let read = ok(&call(&client, "get_function", json!({"function": "demo::f"})).await);
    let hash = read["hash"].clone();
    let propose = |key: &str| {
        let mut base = serde_json::Map::new();
        base.insert(key.to_string(), hash.clone());
        json!({
            "ops": [{"set_doc": {"function": "demo::f", "doc": "checked"}}],
            "base": base,
            "dry_run": true
        })
    };
    let mut mismatches = Vec::new();
    let strings = |list: Vec<Value>| -> Vec<String> {
        list.into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    for key in strings(accepted()) {
        let got = classify(try_call(&client, "propose_edit", propose(&key)).await);
        if got != Outcome::Ok {
            mismatches.push(format!("{key:?}: expected Ok, got {got:?}"));
        }
    }
    for key in strings(refused()) {
        let got = classify(try_call(&client, "propose_edit", propose(&key)).await);
        if got != Outcome::BadReference {
            mismatches.push(format!("{key:?}: expected BadReference, got {got:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "base keys:\n{}",
        mismatches.join("\n")
    );
}
