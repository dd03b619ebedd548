//! Programs in and out, exactly (issue 11, section 5), through the built
//! binary and MCP clients of a running `cograph serve`. Regressions:
//! - `cograph export` then `cograph import` into a fresh directory gave
//!   other function ids, other node ids and another root hash: the text
//!   form carried no function ids, so functions came back as 1, 2, ...;
//! - `cograph import` into a directory whose hub ran was refused ("stop
//!   the hub first"), and a program of more than 1,000 ops was refused by
//!   the per-request op limit;
//! - `cograph log` and `cograph export` on an empty store printed nothing.

mod common;

use std::path::{Path, PathBuf};

use common::served::{CliRun, Served, cli};
use common::{Client, F, G, call, ok, program_state, read};
use serde_json::{Value, json};

/// `body` written to `name` in `dir`.
fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

fn succeeded(run: &CliRun) {
    assert_eq!(run.code, Some(0), "{run:?}");
}

/// The root hash `cograph verify` reports for the store in `data`.
fn verified_root(data: &Path) -> String {
    let run = cli(&["verify"], data);
    succeeded(&run);
    let (_, rest) = run
        .stderr
        .split_once(", root ")
        .unwrap_or_else(|| panic!("no root hash in {run:?}"));
    rest[..64].to_string()
}

async fn propose(client: &Client, ops: Value) -> Value {
    ok(&call(client, "propose_edit", json!({ "ops": ops })).await)
}

/// A program with gaps everywhere: `demo::f` (#1) and `demo::g` (#2)
/// stay; `demo::h` (#4) loses its highest node (so its body ends with
/// `next %3`); `demo::tmp` (#3) and `demo::last` (#5), the highest id, are
/// deleted (a gap in the function ids, and the counter above every live
/// id).
async fn program_with_gaps(client: &Client) {
    let h = "fn demo::h() -> i64 {\n  %0 = call demo::g\n  %1 = return %0\n  %2 = const 9\n}\n";
    let tmp = "fn demo::tmp() -> unit {\n  %0 = const ()\n  %1 = return %0\n}\n";
    let last = tmp.replace("demo::tmp", "demo::last");
    propose(
        client,
        json!([
            {"create_function": {"text": F}},
            {"create_function": {"text": G}},
            {"create_function": {"text": tmp}},
            {"create_function": {"text": h}},
            {"create_function": {"text": last}},
        ]),
    )
    .await;
    for name in ["demo::h", "demo::tmp", "demo::last"] {
        read(client, name).await;
    }
    propose(
        client,
        json!([
            {"remove_node": {"function": "demo::h", "node": "%2"}},
            {"delete_function": {"function": "demo::tmp"}},
            {"delete_function": {"function": "demo::last"}},
        ]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_a_fresh_directory_is_exact_in_both_formats() {
    let s = Served::start(&[]);
    let alice = s.session_client().await;
    program_with_gaps(&alice).await;
    let (_, root) = program_state(&alice).await;
    let text = s.cli(&["export"]);
    let json = s.cli(&["export", "--format", "json"]);
    succeeded(&text);
    succeeded(&json);
    for (what, needle) in [
        ("a stated id", "fn #4 demo::h() -> i64 {\n"),
        ("a node-id counter", "  next %3\n}\n"),
        ("the function-id counter", "\nnext #6\n"),
    ] {
        assert!(text.stdout.contains(needle), "{what}: {}", text.stdout);
    }
    assert!(!text.stdout.contains("demo::tmp"), "{}", text.stdout);
    assert_eq!(verified_root(s.data()), root, "verify beside the hub");

    let files = tempfile::tempdir().unwrap();
    for (format, exported, name) in [
        ("text", &text.stdout, "program.cg"),
        ("json", &json.stdout, "program.json"),
    ] {
        let file = write_file(files.path(), name, exported);
        let file = file.to_str().unwrap();
        // Into a directory no hub serves, and into one a hub serves.
        let fresh = tempfile::tempdir().unwrap();
        let run = cli(&["import", file], fresh.path());
        succeeded(&run);
        assert!(
            run.stderr.contains("imported 3 functions")
                && run.stderr.contains("(ids and counters as in the file)")
                && !run.stderr.contains("through the running hub"),
            "{format}: {run:?}"
        );
        let served = Served::start(&[]);
        let run = served.cli(&["import", file]);
        succeeded(&run);
        assert!(
            run.stderr
                .contains("through the running hub at r1 (ids and counters as in the file)"),
            "{format}: {run:?}"
        );
        let bob = served.session_client().await;
        assert_eq!(program_state(&bob).await, (1, root.clone()), "{format}");
        bob.cancel().await.unwrap();
        for data in [fresh.path(), served.data()] {
            assert_eq!(verified_root(data), root, "{format}");
            assert_eq!(cli(&["export"], data).stdout, text.stdout, "{format}");
            let again = cli(&["export", "--format", "json"], data);
            assert_eq!(again.stdout, json.stdout, "{format}");
        }
    }
    alice.cancel().await.unwrap();
}

/// `n` functions of two nodes each: `big::fI` returns I.
fn big_program(n: usize) -> String {
    (0..n)
        .map(|i| format!("fn big::f{i}() -> i64 {{\n  %0 = const {i}\n  %1 = return %0\n}}\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run_value(client: &Client, function: &str) -> Value {
    let r = ok(&call(client, "run_function", json!({"function": function})).await);
    r["value"].clone()
}

/// The commit lines of `cograph log`.
fn log_lines(s: &Served) -> Vec<String> {
    let log = s.cli(&["log"]);
    succeeded(&log);
    log.stdout.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_a_running_hub_is_one_commit_its_clients_see_at_once() {
    let s = Served::start(&[]);
    let alice = s.session_client().await;
    let overview = ok(&call(&alice, "program_overview", json!({})).await);
    assert_eq!(overview["n_functions"], 0);

    // 600 functions: 1,801 edit ops in one commit, past propose_edit's
    // limit of 1,000.
    let files = tempfile::tempdir().unwrap();
    let big = write_file(files.path(), "big.cg", &big_program(600));
    let big = big.to_str().unwrap();
    let run = s.cli(&["import", big]);
    succeeded(&run);
    assert!(
        run.stderr.contains(&format!(
            "imported 600 functions from {big} through the running hub at r1"
        )),
        "{run:?}"
    );
    let overview = ok(&call(&alice, "program_overview", json!({})).await);
    assert_eq!(
        overview["n_functions"], 600,
        "seen by a client connected before"
    );
    assert_eq!(overview["revision"], 1);
    assert_eq!(run_value(&alice, "big::f599").await, 599);
    let log = log_lines(&s);
    assert_eq!(log.len(), 1, "one commit: {log:?}");
    assert!(
        log[0].starts_with("r1 ") && log[0].contains(&format!("[import {big}]")),
        "{log:?}"
    );

    // Names that exist are refused, naming them and --replace; nothing
    // changes.
    let clash = "fn big::f1() -> i64 {\n  %0 = const 1001\n  %1 = return %0\n}\nfn big::f2() -> i64 {\n  %0 = const 1002\n  %1 = return %0\n}\nfn big::new() -> i64 {\n  %0 = const 7\n  %1 = return %0\n}\n";
    let clash = write_file(files.path(), "clash.cg", clash);
    let clash = clash.to_str().unwrap();
    let run = s.cli(&["import", clash]);
    assert_eq!(run.code, Some(1), "{run:?}");
    for needle in ["`big::f1`", "`big::f2`", "--replace"] {
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
    }
    assert!(
        !run.stderr.contains("big::new") && !run.stderr.contains("stop"),
        "{run:?}"
    );
    assert_eq!(log_lines(&s).len(), 1);
    assert_eq!(run_value(&alice, "big::f1").await, 1);

    let run = s.cli(&["import", clash, "--replace"]);
    succeeded(&run);
    assert!(
        run.stderr.contains("imported 3 functions")
            && run.stderr.contains("through the running hub at r2")
            && run.stderr.contains("; 2 replaced"),
        "{run:?}"
    );
    assert_eq!(run_value(&alice, "big::f1").await, 1001);
    assert_eq!(run_value(&alice, "big::new").await, 7);
    assert_eq!(log_lines(&s).len(), 2);

    // A file the hub cannot parse is refused naming the file and line.
    let bad = write_file(
        files.path(),
        "bad.cg",
        "fn big::x() -> i64 {\n  %0 = bogus\n}\n",
    );
    let run = s.cli(&["import", bad.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("bad.cg: line 2, column 8"), "{run:?}");
    alice.cancel().await.unwrap();
}

#[test]
fn import_with_no_hub_running_opens_the_store_itself() {
    let files = tempfile::tempdir().unwrap();
    let program = write_file(files.path(), "fg.cg", &format!("{F}\n{G}"));
    let program = program.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let run = cli(&["import", program], data.path());
    succeeded(&run);
    assert!(
        run.stderr.contains(&format!(
            "imported 2 functions from {program} at r1 (ids and counters as in the file)"
        )),
        "{run:?}"
    );
    let run = cli(&["import", program], data.path());
    assert_eq!(run.code, Some(1), "{run:?}");
    for needle in ["`demo::f`", "`demo::g`", "--replace"] {
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
    }
    let run = cli(&["import", program, "--replace"], data.path());
    succeeded(&run);
    assert!(run.stderr.contains("; 2 replaced"), "{run:?}");

    // A hub killed without a chance to clean up leaves admin.sock, which
    // nobody answers: the import opens the store itself.
    let mut s = Served::start(&[]);
    s.kill();
    assert!(s.data().join("admin.sock").exists());
    let run = s.cli(&["import", program]);
    succeeded(&run);
    assert!(!run.stderr.contains("through the running hub"), "{run:?}");
}

#[test]
fn log_and_export_on_an_empty_store_say_so() {
    let s = Served::start(&[]);
    let log = s.cli(&["log"]);
    succeeded(&log);
    assert!(log.stdout.is_empty(), "{log:?}");
    assert!(
        log.stderr.contains("no commits yet") && log.stderr.contains("cograph import"),
        "{log:?}"
    );
    let export = s.cli(&["export"]);
    succeeded(&export);
    assert!(export.stdout.is_empty(), "{export:?}");
    assert!(export.stderr.contains("nothing to export"), "{export:?}");
}
