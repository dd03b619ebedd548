//! An agent can learn the language from the server alone (issue 11,
//! section 1), through real rmcp clients: the initialize and discover
//! instructions point to `cograph://docs/language`; that resource is listed
//! and read in-process and over HTTP (with and without a protocol session)
//! and names every op and edit op; its worked example and every edit-op
//! example are accepted by the tools; an unknown resource is
//! resource-not-found; an unknown op or edit op is named with every valid
//! name and the closest ones; an unknown function suggests the closest
//! existing names in every tool that resolves one. Refusals change nothing.

mod common;

use cograph::graph::op::op_names;
use cograph::mcp::reference::edit_op_names;
use common::*;
use rmcp::RoleClient;
use rmcp::model::{ErrorCode, ReadResourceRequestParams, ResourceContents};
use rmcp::service::Peer;
use serde_json::{Value, json};

const URI: &str = "cograph://docs/language";

/// The reference as `client` reads it: (text, mimeType).
async fn read_reference(client: &Peer<RoleClient>) -> (String, Option<String>) {
    let result = client
        .read_resource(ReadResourceRequestParams::new(URI))
        .await
        .expect("the reference reads");
    assert_eq!(result.contents.len(), 1);
    match &result.contents[0] {
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            ..
        } => {
            assert_eq!(uri, URI);
            (text.clone(), mime_type.clone())
        }
        other => panic!("expected text contents, got {other:?}"),
    }
}

/// The fenced blocks of `lang` in markdown, in order.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("```").expect("a closed block");
        out.push(body[..end].to_string());
        rest = &body[end + 3..];
    }
    out
}

fn check_reference(text: &str, mime: Option<String>) {
    assert_eq!(mime.as_deref(), Some("text/markdown"));
    for name in op_names() {
        assert!(text.contains(&format!("`{name}`")), "op {name} missing");
    }
    for name in edit_op_names() {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "edit op {name} missing"
        );
    }
}

async fn check_listed(client: &Peer<RoleClient>) {
    let listed = client.list_all_resources().await.expect("resources/list");
    let entry = listed
        .iter()
        .find(|r| r.uri == URI)
        .unwrap_or_else(|| panic!("{URI} not listed: {listed:?}"));
    assert_eq!(entry.mime_type.as_deref(), Some("text/markdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instructions_point_to_the_reference_on_every_transport() {
    let s = Server::start().await;
    let in_process = s.in_process("alice").await;
    let session = s.http_session().await;
    let stateless = s.http_stateless().await;
    for (what, client) in [
        ("in-process", &in_process),
        ("http session", &session),
        ("stateless discover", &stateless),
    ] {
        let info = client.peer_info().expect("server info");
        let instructions = info.instructions.clone().unwrap_or_default();
        assert!(instructions.contains(URI), "{what}: {instructions}");
        for word in [
            "get_function",
            "propose_edit",
            "acquire_locks",
            "conflict",
            "register_agent",
        ] {
            assert!(
                instructions.contains(word),
                "{what} lacks {word}: {instructions}"
            );
        }
        assert!(
            info.capabilities.resources.is_some(),
            "{what}: resources capability"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_is_listed_and_read_on_every_transport() {
    let s = Server::start().await;
    let in_process = s.in_process("alice").await;
    let session = s.http_session().await;
    let stateless = s.http_stateless().await;
    for client in [&in_process, &session, &stateless] {
        check_listed(client).await;
        let (text, mime) = read_reference(client).await;
        check_reference(&text, mime);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_resource_is_resource_not_found() {
    let s = Server::start().await;
    let session = s.http_session().await;
    let stateless = s.http_stateless().await;
    for (client, code) in [
        (&session, ErrorCode::RESOURCE_NOT_FOUND),
        // 2026-07-28 spells resource-not-found as invalid params (SEP-2164).
        (&stateless, ErrorCode::INVALID_PARAMS),
    ] {
        let e = client
            .read_resource(ReadResourceRequestParams::new("cograph://docs/nope"))
            .await
            .expect_err("an unknown resource");
        let rmcp::ServiceError::McpError(e) = e else {
            panic!("expected a JSON-RPC error, got {e:?}")
        };
        assert_eq!(e.code, code, "{e:?}");
        assert!(e.message.contains("cograph://docs/nope"), "{e:?}");
        assert!(e.message.contains(URI), "names what exists: {e:?}");
    }
}

/// A server with only the reference's worked example, read by `client`'s
/// agent (so its edits have a base).
async fn with_worked_example(s: &Server, client: &Peer<RoleClient>) -> String {
    let (text, _) = read_reference(client).await;
    let example = blocks(&text, "text")
        .into_iter()
        .find(|b| b.starts_with("///") || b.starts_with("fn "))
        .expect("a worked example");
    ok(&call(
        client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": example}}]}),
    )
    .await);
    let _ = s;
    read(client, "math::fib").await;
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worked_example_is_a_real_function() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    with_worked_example(&s, &alice).await;
    let run = ok(&call(
        &alice,
        "run_function",
        json!({"function": "math::fib", "args": [10]}),
    )
    .await);
    assert_eq!(run["value"], 55, "{run:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_op_example_is_accepted_by_propose_edit() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let text = with_worked_example(&s, &alice).await;
    let examples = blocks(&text, "json");
    assert_eq!(examples.len(), edit_op_names().count());
    let before = program_state(&alice).await;
    for (example, name) in examples.iter().zip(edit_op_names()) {
        let mut args: Value = serde_json::from_str(example).expect("the example is JSON");
        let ops = args["ops"].as_array().expect("ops");
        assert!(ops.last().unwrap().get(name).is_some(), "{name}: {example}");
        args["dry_run"] = json!(true);
        let r = ok(&call(&alice, "propose_edit", args).await);
        assert_eq!(r["status"], "dry_run", "{name}: {r:#}");
    }
    assert_eq!(program_state(&alice).await, before);
}

/// The message of an `invalid_edit` refusal of `ops`.
async fn invalid_edit(client: &Peer<RoleClient>, ops: Value) -> Value {
    refused(client, "propose_edit", json!({"ops": ops}), "invalid_edit").await
}

fn message(e: &Value) -> String {
    e["error"]["message"].as_str().unwrap().to_string()
}

fn lists_every_op(m: &str) {
    for name in op_names() {
        assert!(
            m.contains(&format!("`{name}`")),
            "`{name}` missing from: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_op_lists_every_op_and_the_closest() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    read(&alice, "demo::f").await;
    // In the text form.
    let text = "fn demo::h(x: i64) -> i64 {\n  %0 = param 0\n  %1 = select %0, %0, %0\n  %2 = return %1\n}\n";
    let e = invalid_edit(&alice, json!([{"create_function": {"text": text}}])).await;
    let m = message(&e);
    lists_every_op(&m);
    assert!(m.contains("`select`") && !m.contains("did you mean"), "{m}");
    let typo = text.replace("select %0, %0, %0", "ad %0, %0");
    let m = message(&invalid_edit(&alice, json!([{"create_function": {"text": typo}}])).await);
    lists_every_op(&m);
    assert!(m.contains("did you mean `add` or `and`?"), "{m}");
    // Inside an edit op.
    for (op, close) in [
        ("select", None),
        ("ad", Some("`add`")),
        ("cal demo::g", Some("`call`")),
    ] {
        let e = invalid_edit(
            &alice,
            json!([{"add_node": {"function": "demo::f", "op": op, "inputs": ["%0"]}}]),
        )
        .await;
        let m = message(&e);
        lists_every_op(&m);
        assert_eq!(e["op"], "add_node", "{e:#}");
        match close {
            Some(name) => assert!(m.contains(&format!("did you mean {name}")), "{m}"),
            None => assert!(!m.contains("did you mean"), "{m}"),
        }
    }
}

/// The JSON-RPC invalid-params message of a propose_edit with `ops`,
/// checking that nothing changed.
async fn bad_ops(client: &Peer<RoleClient>, ops: Value) -> String {
    let before = program_state(client).await;
    let e = try_call(client, "propose_edit", json!({"ops": ops}))
        .await
        .expect_err("malformed ops are invalid params");
    let rmcp::ServiceError::McpError(e) = e else {
        panic!("expected a JSON-RPC error, got {e:?}")
    };
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{e:?}");
    assert_eq!(program_state(client).await, before);
    e.message.to_string()
}

fn lists_every_edit_op(m: &str) {
    for name in edit_op_names() {
        assert!(m.contains(name), "{name} missing from: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_edit_op_is_named_with_every_edit_op() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    read(&alice, "demo::f").await;
    let set_const = json!({"function": "demo::f", "node": "%1", "op": "const 7"});
    let good = json!({"set_op": set_const.clone()});

    let m = bad_ops(
        &alice,
        json!([good.clone(), {"set_opp": set_const.clone()}]),
    )
    .await;
    assert!(
        m.contains("`ops[1]`") && m.contains("unknown edit op `set_opp`"),
        "{m}"
    );
    assert!(m.contains("did you mean `set_op`?"), "{m}");
    lists_every_edit_op(&m);

    let m = bad_ops(&alice, json!([{"frobnicate": {}}])).await;
    assert!(
        m.contains("`frobnicate`") && !m.contains("did you mean"),
        "{m}"
    );
    lists_every_edit_op(&m);

    // The op's name as a field: the message shows the right shape.
    let mut flat = set_const.clone();
    flat["op"] = json!("set_op");
    let m = bad_ops(&alice, json!([flat])).await;
    assert!(m.contains(r#"{"set_op": {"#), "{m}");

    for shape in [json!("set_op"), json!([]), json!({})] {
        let m = bad_ops(&alice, json!([shape])).await;
        assert!(m.contains("one key naming it"), "{m}");
        lists_every_edit_op(&m);
    }
    // The same op, well formed, goes through.
    ok(&call(&alice, "propose_edit", json!({"ops": [good]})).await);
}

/// The message suggests `name`; an invalid_edit also lists it in
/// `suggestions` (a not_found says it in its message only).
fn suggests(e: &Value, name: &str) {
    let m = message(e);
    assert!(m.contains(&format!("did you mean `{name}`")), "{m}");
    if e["error"]["code"] == "invalid_edit" {
        assert_eq!(e["suggestions"][0], name, "{e:#}");
    } else {
        assert!(e.get("suggestions").is_none(), "{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_suggests_the_closest_names_in_every_tool() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": "fn math::fib(n: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n"}}]}),
    )
    .await);
    read(&alice, "demo::f").await;
    let calls = [
        ("get_function", json!({"function": "math::fibb"})),
        (
            "run_function",
            json!({"function": "math::fibb", "args": [1]}),
        ),
        ("lock_status", json!({"function": "math::fibb"})),
        ("acquire_locks", lock_args("math::fibb", "write")),
        ("history", json!({"function": "math::fibb"})),
        ("diff", json!({"function": "math::fibb"})),
        ("get_function", json!({"function": "mth::fib"})),
        ("get_function", json!({"function": "other::fib"})),
    ];
    for (tool, args) in calls {
        let e = refused(&alice, tool, args.clone(), "not_found").await;
        suggests(&e, "math::fib");
    }
    // A `base` naming a function that does not exist.
    let e = refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "math::fib", "doc": "x"}}],
               "base": {"math::fibb": "0".repeat(64)}}),
        "not_found",
    )
    .await;
    suggests(&e, "math::fib");
    // An edit op naming one: invalid_edit, with the same suggestions.
    let e = refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "math::fibb", "doc": "x"}}]}),
        "invalid_edit",
    )
    .await;
    suggests(&e, "math::fib");
    let e = refused(
        &alice,
        "propose_edit",
        json!({"ops": [{"add_node": {"function": "demo::f", "op": "call demo::gg"}}]}),
        "invalid_edit",
    )
    .await;
    suggests(&e, "demo::g");
    // Nothing close: no suggestion, still not_found.
    let e = refused(
        &alice,
        "get_function",
        json!({"function": "zzz::qqqqqq"}),
        "not_found",
    )
    .await;
    assert!(!message(&e).contains("did you mean"), "{e:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_name_suggests_its_qualified_name() {
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": "fn math::fib(n: i64) -> i64 {\n  %0 = param 0\n  %1 = return %0\n}\n"}}]}),
    )
    .await);
    for (tool, args) in [
        ("get_function", json!({"function": "fib"})),
        ("run_function", json!({"function": "fib", "args": [1]})),
        ("acquire_locks", lock_args("fib", "write")),
    ] {
        let before = program_state(&alice).await;
        let e = try_call(&alice, tool, args)
            .await
            .expect_err("a bare name is invalid params");
        let rmcp::ServiceError::McpError(e) = e else {
            panic!("expected a JSON-RPC error, got {e:?}")
        };
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{tool}: {e:?}");
        assert!(
            e.message.contains("did you mean `math::fib`?"),
            "{tool}: {e:?}"
        );
        assert_eq!(
            e.data.unwrap()["suggestions"],
            json!(["math::fib"]),
            "{tool}"
        );
        assert_eq!(program_state(&alice).await, before);
    }
}

/// The reference shows a program file with a stated id and a `next #N`
/// line; it loads as it says, and `cograph export`'s renderer writes it
/// back byte for byte. Tools show functions without ids, and a whole
/// function given to `replace_body` may state its own id but no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_explains_ids_in_program_files() {
    use cograph::graph::reference::{FILE_EXAMPLE_ID, FILE_EXAMPLE_NEXT};
    use cograph::graph::{load_program_text, render_program};
    let s = Server::start().await;
    let alice = s.in_process("alice").await;
    let (text, _) = read_reference(&alice).await;
    let file = blocks(&text, "text")
        .into_iter()
        .find(|b| b.starts_with("fn #"))
        .expect("a program-file example");
    let program = load_program_text(&file).expect("the program-file example loads");
    assert!(program.get(FILE_EXAMPLE_ID).is_some(), "{file}");
    assert_eq!(program.next_function_id().0, FILE_EXAMPLE_NEXT, "{file}");
    assert!(
        file.contains(&format!("\nnext #{FILE_EXAMPLE_NEXT}\n")),
        "{file}"
    );
    assert_eq!(render_program(&program), file);

    let f = read(&alice, "demo::f").await;
    let shown = f["text"].as_str().unwrap().to_string();
    assert!(
        shown.starts_with("fn demo::f("),
        "tools show no id: {shown}"
    );
    let id = f["id"].as_u64().unwrap();
    let stating = |n: u64| shown.replacen("fn ", &format!("fn #{n} "), 1);
    let replace = |text: String| json!([{"replace_body": {"function": "demo::f", "text": text}}]);
    let m = message(&invalid_edit(&alice, replace(stating(id + 1))).await);
    assert!(
        m.contains(&format!("states #{}", id + 1)) && m.contains(&format!("is #{id}")),
        "{m}"
    );
    ok(&call(&alice, "propose_edit", json!({"ops": replace(stating(id))})).await);
}
