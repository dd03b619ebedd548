//! Agents that live in shell scripts, through the built binary against a
//! running `cograph serve`: `cograph agent start` prints a handle,
//! `cograph lock` prints `TOKEN RESOURCE` lines or refuses with an exit
//! code a script branches on (1 denied, 2 bad input, 3 timed out, 4
//! deadlock, 5 no hub, 6 unknown agent), a wait is granted in turn, a
//! killed waiter leaves the queue and is never granted, `unlock`,
//! `locks` and `agent end` do what they say, and a shell agent and an MCP
//! client meet on one path. Every wait is bounded.

mod common;

use std::time::{Duration, Instant};

use common::served::{CliRun, Served, cli, finish};
use common::{call, err, ok};
use serde_json::json;

/// Starts a shell agent and returns its handle.
fn start(s: &Served, name: &str) -> String {
    let started = s.cli(&["agent", "start", name, "--purpose", "a script"]);
    assert_eq!(started.code, Some(0), "{started:?}");
    assert!(
        started
            .stderr
            .contains(&format!("started agent {name} (ag_")),
        "{started:?}"
    );
    let handle = started.stdout.trim_end_matches('\n');
    assert!(
        handle.len() == 64 && handle.chars().all(|c| c.is_ascii_hexdigit()),
        "one line, the handle: {started:?}"
    );
    handle.to_string()
}

/// Polls `cograph locks` until its table contains `text` (at most 20 s).
fn until_locks_show(s: &Served, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = s.cli(&["locks"]).stdout;
        if table.contains(text) {
            return table;
        }
        assert!(
            Instant::now() < deadline,
            "`cograph locks` never showed {text:?}: {table}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cograph locks` until its table does not contain `text` (at
/// most 20 s).
fn until_locks_lack(s: &Served, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.cli(&["locks"]).stdout.contains(text) {
        assert!(
            Instant::now() < deadline,
            "`cograph locks` kept showing {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The token of each `TOKEN RESOURCE` line, checking the resources.
fn tokens(run: &CliRun, resources: &[&str]) -> Vec<u64> {
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<(u64, &str)> = run
        .stdout
        .lines()
        .map(|l| {
            let (token, resource) = l.split_once(' ').expect("TOKEN RESOURCE");
            (token.parse().expect("a number"), resource)
        })
        .collect();
    assert_eq!(
        lines.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
        resources,
        "{run:?}"
    );
    lines.into_iter().map(|(t, _)| t).collect()
}

#[test]
fn a_shell_agent_starts_locks_lists_unlocks_and_ends() {
    let s = Served::start(&[]);
    let bot = start(&s, "ci-bot");
    let locked = s.cli_as(
        &bot,
        &[
            "lock",
            "path:src/net/",
            "named:deploy:staging",
            "--purpose",
            "deploy the fix",
            "--ttl",
            "1h",
        ],
    );
    let granted = tokens(&locked, &["path:src/net/", "named:deploy:staging"]);
    assert_eq!(granted[0], granted[1], "one token for the grant");
    assert!(
        locked
            .stderr
            .contains("locked path:src/net/ (write) until 20"),
        "{locked:?}"
    );
    let gpu = s.cli_as(
        &bot,
        &["lock", "semaphore:gpu", "--permits", "2", "--capacity", "3"],
    );
    assert!(tokens(&gpu, &["semaphore:gpu"])[0] > granted[0]);

    let table = s.cli(&["locks"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert!(
        rows[0].starts_with("RESOURCE") && rows[0].contains("PURPOSE"),
        "{table:?}"
    );
    assert!(
        rows.iter().any(|r| r.starts_with("path:src/net/ ")
            && r.contains("ci-bot")
            && r.contains("write")
            && r.contains("deploy the fix")),
        "{table:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("semaphore:gpu [2 of 3 in use]") && r.contains("2 permits")),
        "{table:?}"
    );
    let named = s.cli(&["locks", "--kind", "named"]).stdout;
    assert_eq!(named.lines().count(), 2, "{named}");
    assert!(named.contains("named:deploy:staging"), "{named}");
    let prefixed = s.cli(&["locks", "--prefix", "src/"]).stdout;
    assert!(
        prefixed.contains("path:src/net/") && !prefixed.contains("gpu"),
        "{prefixed}"
    );

    let one = s.cli_as(&bot, &["unlock", "named:deploy:staging"]);
    assert_eq!(one.code, Some(0), "{one:?}");
    assert!(
        one.stderr
            .contains("released 1: named:deploy:staging (write); 2 still held"),
        "{one:?}"
    );
    let rest = s.cli_as(&bot, &["unlock"]);
    assert!(
        rest.stderr.contains("released 2:") && rest.stderr.contains("0 still held"),
        "{rest:?}"
    );
    let empty = s.cli(&["locks"]);
    assert_eq!(
        (empty.code, empty.stdout.as_str()),
        (Some(0), ""),
        "{empty:?}"
    );
    assert!(empty.stderr.contains("no locks"), "{empty:?}");

    // Ending the agent releases what it holds; its handle is dead after.
    s.cli_as(&bot, &["lock", "path:src/"]);
    let ended = s.cli_as(&bot, &["agent", "end"]);
    assert_eq!(ended.code, Some(0), "{ended:?}");
    assert!(
        ended.stderr.contains("ended agent ci-bot") && ended.stderr.contains("released 1 locks"),
        "{ended:?}"
    );
    assert_eq!(s.cli(&["locks"]).stdout, "");
    let dead = s.cli_as(&bot, &["lock", "path:src/"]);
    assert_eq!(dead.code, Some(6), "{dead:?}");
    assert!(dead.stderr.contains("unknown or expired"), "{dead:?}");
    // `--agent` names the agent as well as the environment does.
    let other = start(&s, "other");
    let flagged = s.cli(&["lock", "path:src/", "--agent", &other]);
    tokens(&flagged, &["path:src/"]);
}

#[test]
fn exit_codes_say_denied_timed_out_bad_input_no_hub_and_unknown_agent() {
    let s = Served::start(&[]);
    let alice = start(&s, "alice");
    let bob = start(&s, "bob");
    tokens(
        &s.cli_as(
            &alice,
            &[
                "lock",
                "path:src/",
                "semaphore:gpu",
                "--capacity",
                "2",
                "--purpose",
                "refactor",
            ],
        ),
        &["path:src/", "semaphore:gpu"],
    );

    let denied = s.cli_as(&bob, &["lock", "path:src/net/tcp.rs"]);
    assert_eq!(
        (denied.code, denied.stdout.as_str()),
        (Some(1), ""),
        "{denied:?}"
    );
    for says in [
        "error: `path:src/net/tcp.rs` is locked by another agent; nothing was granted",
        "held by alice (ag_",
        "write on path:src/: refactor",
        ", until 20",
        "your queue position 1 of 1",
        "hint: pass --wait",
    ] {
        assert!(denied.stderr.contains(says), "{says:?} in {denied:?}");
    }
    let full = s.cli_as(&bob, &["lock", "semaphore:gpu", "--permits", "2"]);
    assert_eq!(full.code, Some(1), "{full:?}");
    assert!(full.stderr.contains("(1 of 2 permits in use)"), "{full:?}");

    let timed_out = s.cli_as(&bob, &["lock", "path:src/", "--read", "--wait", "300ms"]);
    assert_eq!(timed_out.code, Some(3), "{timed_out:?}");
    assert!(
        timed_out
            .stderr
            .contains("still locked when --wait ran out"),
        "{timed_out:?}"
    );
    assert!(
        timed_out.stderr.contains("waiting:"),
        "a waiter sees its place: {timed_out:?}"
    );

    for (args, says) in [
        (vec!["lock", "path:/etc"], "is absolute"),
        (vec!["lock", "fib"], "`fib` names no resource"),
        (vec!["lock", "math::nope"], "no function"),
        (
            vec!["lock", "path:a", "--permits", "2"],
            "--permits and --capacity are for semaphores",
        ),
        (
            vec!["lock", "semaphore:gpu", "--capacity", "5"],
            "has capacity 2, not 5",
        ),
        (
            vec!["lock", "path:a", "--wait", "11m"],
            "--wait is at most 600 s",
        ),
        (
            vec!["lock", "path:a", "--ttl", "0s"],
            "--ttl must be above 0",
        ),
        (vec!["lock", "path:a", "--wait", "soon"], "not a duration"),
        (vec!["unlock", "path:a//b"], "empty segment"),
        (vec!["locks", "--kind", "file"], "invalid value"),
    ] {
        let bad = s.cli_as(&bob, &args);
        assert_eq!(bad.code, Some(2), "{args:?}: {bad:?}");
        assert!(bad.stderr.contains(says), "{args:?}: {says:?} in {bad:?}");
    }
    let nobody = s.cli(&["lock", "path:a"]);
    assert_eq!(nobody.code, Some(2), "{nobody:?}");
    assert!(nobody.stderr.contains("COGRAPH_AGENT"), "{nobody:?}");
    let unknown = s.cli_as("not-a-handle", &["unlock"]);
    assert_eq!(unknown.code, Some(6), "{unknown:?}");

    let elsewhere = tempfile::tempdir().unwrap();
    for args in [vec!["agent", "start", "x"], vec!["locks"]] {
        let no_hub = cli(&args, elsewhere.path());
        assert_eq!(no_hub.code, Some(5), "{no_hub:?}");
        assert!(no_hub.stderr.contains("no hub is running"), "{no_hub:?}");
    }
    // Bob's refusals took nothing.
    let table = s.cli(&["locks"]).stdout;
    assert!(!table.contains("bob"), "{table}");
}

#[test]
fn a_waiter_is_granted_in_turn_and_a_closing_cycle_is_refused_as_deadlock() {
    let s = Served::start(&[]);
    let alice = start(&s, "alice");
    let bob = start(&s, "bob");
    tokens(&s.cli_as(&alice, &["lock", "named:x"]), &["named:x"]);
    tokens(&s.cli_as(&bob, &["lock", "named:y"]), &["named:y"]);
    let waiting = s.spawn_as(&bob, &["lock", "named:x", "--wait", "30s"]);
    until_locks_show(&s, "1. bob (write)");

    let deadlock = s.cli_as(&alice, &["lock", "named:y", "--wait", "10s"]);
    assert_eq!(deadlock.code, Some(4), "{deadlock:?}");
    assert!(
        deadlock
            .stderr
            .contains("waiting would deadlock: alice -> bob -> alice"),
        "{deadlock:?}"
    );
    assert!(
        deadlock
            .stderr
            .contains("hint: release what the others wait for"),
        "{deadlock:?}"
    );

    let released = s.cli_as(&alice, &["unlock", "named:x"]);
    assert_eq!(released.code, Some(0), "{released:?}");
    let granted = finish(waiting, Duration::from_secs(30));
    tokens(&granted, &["named:x"]);
    assert!(granted.stderr.contains("waiting:"), "{granted:?}");
    assert!(
        granted.stderr.contains("granted after waiting"),
        "{granted:?}"
    );
}

#[test]
fn a_killed_waiter_leaves_the_queue_and_is_never_granted() {
    let s = Served::start(&[]);
    let alice = start(&s, "alice");
    let bob = start(&s, "bob");
    let carol = start(&s, "carol");
    tokens(&s.cli_as(&alice, &["lock", "path:src/"]), &["path:src/"]);
    let mut bob_waits = s.spawn_as(&bob, &["lock", "path:src/net/", "--wait", "60s"]);
    until_locks_show(&s, "1. bob (write)");
    let carol_waits = s.spawn_as(&carol, &["lock", "path:src/net/", "--wait", "60s"]);
    until_locks_show(&s, "2. carol (write)");

    bob_waits.kill().unwrap();
    bob_waits.wait().unwrap();
    until_locks_lack(&s, "bob");
    let table = until_locks_show(&s, "1. carol (write)");
    assert!(!table.contains("bob"), "bob left the queue: {table}");

    // Alice lets go: the lock goes to Carol, next in line, never to Bob.
    s.cli_as(&alice, &["unlock"]);
    let granted = finish(carol_waits, Duration::from_secs(30));
    tokens(&granted, &["path:src/net/"]);
    let table = s.cli(&["locks"]).stdout;
    assert!(table.contains("carol") && !table.contains("bob"), "{table}");
    let bobs = s.cli_as(&bob, &["unlock"]);
    assert!(
        bobs.stderr
            .contains("nothing to release; 0 locks still held"),
        "{bobs:?}"
    );

    // With nobody behind it, a killed waiter leaves the lock free.
    let mut bob_waits = s.spawn_as(&bob, &["lock", "path:src/net/tcp.rs", "--wait", "60s"]);
    until_locks_show(&s, "1. bob (write)");
    bob_waits.kill().unwrap();
    bob_waits.wait().unwrap();
    until_locks_lack(&s, "bob");
    s.cli_as(&carol, &["unlock"]);
    until_locks_lack(&s, "path:");
    tokens(
        &s.cli_as(&alice, &["lock", "path:src/net/tcp.rs"]),
        &["path:src/net/tcp.rs"],
    );
}

// The commands run as child processes and are waited for on a worker
// thread; the hub is a process of its own, and the MCP client keeps the
// other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_agent_and_an_mcp_client_contend_on_one_path() {
    let s = Served::start(&[]);
    let claude = s.session_client().await;
    let me = ok(&call(&claude, "register_agent", json!({"name": "claude"})).await);
    let handle = me["session"].as_str().unwrap().to_string();
    ok(&call(
        &claude,
        "acquire_locks",
        json!({"locks": [{"path": "src/net/tcp.rs"}, {"path": "docs/"}], "purpose": "fix the retry loop"}),
    )
    .await);
    let bot = start(&s, "ci-bot");

    let denied = s.cli_as(&bot, &["lock", "path:src/net/"]);
    assert_eq!(denied.code, Some(1), "{denied:?}");
    // A holder of locks below a directory is shown without a purpose
    // (the lock table sums them up without reading each).
    assert!(
        denied.stderr.contains("held by claude (ag_")
            && denied.stderr.contains("write below path:src/net/, "),
        "{denied:?}"
    );

    let waiter = s.spawn_as(
        &bot,
        &[
            "lock",
            "path:src/net/",
            "--wait",
            "30s",
            "--purpose",
            "deploy",
        ],
    );
    until_locks_show(&s, "1. ci-bot (write)");
    ok(&call(
        &claude,
        "release_locks",
        json!({"resources": ["path:src/net/tcp.rs"]}),
    )
    .await);
    tokens(&finish(waiter, Duration::from_secs(30)), &["path:src/net/"]);

    // Now the MCP client is the one denied, told who holds it and why.
    let refusal = call(
        &claude,
        "acquire_locks",
        json!({"locks": [{"path": "src/net/tcp.rs"}]}),
    )
    .await;
    let e = err(&refusal, "lock_denied");
    let holder = &e["blocked"][0]["holders"][0];
    assert_eq!(holder["agent_name"], "ci-bot", "{e:#}");
    assert_eq!(holder["purpose"], "deploy", "{e:#}");

    // The MCP agent's own handle acts as it from the shell.
    let released = s.cli_as(&handle, &["unlock", "path:docs/"]);
    assert!(
        released.stderr.contains("released 1: path:docs/ (write)"),
        "{released:?}"
    );
    let status = ok(&call(&claude, "lock_status", json!({})).await);
    assert_eq!(status["yours"], json!([]), "{status:#}");
}

#[test]
fn a_rate_limit_is_a_semaphore_whose_permits_lapse_instead_of_being_released() {
    // Each call is an agent of its own taking one permit for the window
    // and never releasing it (an agent holds a semaphore once: taking it
    // again only renews its lease). Here the window is 2 s.
    let s = Served::start(&["--agent-idle", "1h"]);
    let set = s.cli(&["set-capacity", "api:github", "7"]);
    assert_eq!(set.code, Some(0), "{set:?}");
    for call in 0..7 {
        let agent = start(&s, &format!("call-{call}"));
        tokens(
            &s.cli_as(&agent, &["lock", "semaphore:api:github", "--ttl", "2s"]),
            &["semaphore:api:github"],
        );
    }
    let late = start(&s, "call-7");
    let over = s.cli_as(&late, &["lock", "semaphore:api:github", "--ttl", "2s"]);
    assert_eq!(over.code, Some(1), "{over:?}");
    assert!(over.stderr.contains("(7 of 7 permits in use)"), "{over:?}");
    assert_eq!(over.stderr.matches("held by call-").count(), 5, "{over:?}");
    assert!(
        over.stderr.contains("; 2 more holders not shown"),
        "{over:?}"
    );
    // When the window's leases lapse, the next call gets its permit.
    let waited = s.cli_as(
        &late,
        &[
            "lock",
            "semaphore:api:github",
            "--ttl",
            "2s",
            "--wait",
            "20s",
        ],
    );
    tokens(&waited, &["semaphore:api:github"]);
    assert!(
        waited.stderr.contains("granted after waiting"),
        "{waited:?}"
    );
}
