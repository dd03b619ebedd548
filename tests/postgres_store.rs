//! The PostgreSQL store through the built binary: `cograph serve --store
//! postgres://...` keeps the program and the log in the database (a fresh
//! one of the test process's throwaway cluster, `common/pg.rs`), and
//! `import`, `export`, `log`, `verify` and `status` take the same
//! `--store`. Also: one hub per database for now (a second is refused),
//! and what is wrong with a `--store` is said, password left out.

mod common;

use common::pg;
use common::served::{CliRun, Served, cli};
use common::{F, G, call, ok, read, try_call};
use serde_json::json;

fn succeeded(run: &CliRun) {
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_postgres_keeps_its_commits_there_for_every_command() {
    let url = pg::fresh_database();
    let mut hub = Served::start(&["--store", &url]);
    let client = hub.session_client().await;
    ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": F}}, {"create_function": {"text": G}}], "purpose": "seed"}),
    )
    .await);
    read(&client, "demo::g").await;
    ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::g", "node": "%0", "op": "const 7"}}]}),
    )
    .await);
    let status = hub.cli(&["status", "--store", &url]);
    succeeded(&status);
    assert!(status.stdout.contains("r2"), "{status:?}");
    drop(client);
    // Whatever the hub had in memory is gone: what follows reads the
    // database only.
    hub.kill();

    let elsewhere = tempfile::tempdir().unwrap();
    let log = cli(&["log", "--store", &url], elsewhere.path());
    succeeded(&log);
    let lines: Vec<&str> = log.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{log:?}");
    assert!(lines[0].starts_with("r2 "), "{log:?}");
    assert!(
        lines[1].starts_with("r1 ") && lines[1].contains("[seed]"),
        "{log:?}"
    );

    let export = cli(&["export", "--store", &url], elsewhere.path());
    succeeded(&export);
    assert!(export.stdout.contains("const 7"), "{export:?}");
    assert!(export.stdout.contains("fn #1 demo::f"), "{export:?}");

    let verify = cli(&["verify", "--store", &url], elsewhere.path());
    succeeded(&verify);
    assert!(verify.stderr.contains("2 functions"), "{verify:?}");
    assert!(
        verify.stderr.starts_with(&url),
        "named by its URL: {verify:?}"
    );

    // The same database, a new hub on another directory: the program and
    // the revisions go on from where they were.
    let again = Served::start(&["--store", &url]);
    let client = again.session_client().await;
    let g = read(&client, "demo::g").await;
    assert!(g.to_string().contains("const 7"), "{g}");
    let next = ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::g", "node": "%0", "op": "const 8"}}]}),
    )
    .await);
    assert_eq!(next["revision"], json!(3), "{next}");
}

#[test]
fn import_into_postgres_then_export_is_exact() {
    let url = pg::fresh_database();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("prog.cg");
    std::fs::write(&file, format!("{F}\n{G}")).unwrap();
    let data = work.path().join("d");
    let import = cli(&["import", file.to_str().unwrap(), "--store", &url], &data);
    succeeded(&import);
    let first = cli(&["export", "--store", &url], &data);
    succeeded(&first);
    // Through a file and into SQLite, then back into a second database:
    // the same text every time.
    let text = work.path().join("exported.cg");
    std::fs::write(&text, &first.stdout).unwrap();
    let sqlite = work.path().join("s");
    succeeded(&cli(&["import", text.to_str().unwrap()], &sqlite));
    let from_sqlite = cli(&["export"], &sqlite);
    assert_eq!(from_sqlite.stdout, first.stdout);
    let url2 = pg::fresh_database();
    succeeded(&cli(
        &["import", text.to_str().unwrap(), "--store", &url2],
        &data,
    ));
    let second = cli(&["export", "--store", &url2, "--format", "json"], &data);
    let json_first = cli(&["export", "--store", &url, "--format", "json"], &data);
    succeeded(&second);
    assert_eq!(second.stdout, json_first.stdout);
}

#[test]
fn a_second_hub_on_one_database_is_refused_for_now() {
    let url = pg::fresh_database();
    let _first = Served::start(&["--store", &url]);
    let other = tempfile::tempdir().unwrap();
    let run = cli(
        &["serve", "--listen", "127.0.0.1:0", "--store", &url],
        other.path(),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("in use by another cograph hub"),
        "{run:?}"
    );
}

#[test]
fn a_bad_store_is_refused_saying_what_is_wrong_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for (store, says) in [
        ("/var/lib/cograph", "takes a PostgreSQL URL"),
        ("postgres://h:5432", "names no database"),
        ("postgres://ann:hunter2@127.0.0.1:1/db", "cannot connect"),
    ] {
        for command in [&["log"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
            let mut args = command.to_vec();
            args.extend(["--store", store]);
            let run = cli(&args, dir.path());
            assert_eq!(run.code, Some(1), "{store}: {run:?}");
            assert!(run.stderr.contains(says), "{store}: {run:?}");
            assert!(!run.stderr.contains("hunter2"), "{store}: {run:?}");
        }
    }
    // A database that holds no store: readers say so and create nothing.
    let url = pg::fresh_database();
    let run = cli(&["log", "--store", &url], dir.path());
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("no cograph store in this database"),
        "{run:?}"
    );
    assert_eq!(
        pg::cluster().sql(
            &url,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'cograph'"
        ),
        "0"
    );
}

/// The database ends the hub's connections (an operator, a failover): the
/// next commit is not acknowledged, the hub stops by itself with a failure
/// status rather than go on with an unknown durable state, and a new hub
/// on the database serves exactly the acknowledged commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_connection_stops_the_hub_and_loses_nothing_acknowledged() {
    let url = pg::fresh_database();
    let mut hub = Served::start(&["--store", &url]);
    let client = hub.session_client().await;
    let first = ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": G}}]}),
    )
    .await);
    assert_eq!(first["revision"], json!(1), "{first}");
    let database = url.rsplit('/').next().unwrap();
    let ended = pg::cluster().sql(
        &url,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ),
    );
    assert_eq!(ended, "2", "the hub's writer and reader");
    read(&client, "demo::g").await;
    let second = try_call(
        &client,
        "propose_edit",
        json!({"ops": [{"set_op": {"function": "demo::g", "node": "%0", "op": "const 9"}}]}),
    )
    .await;
    match &second {
        Err(rmcp::ServiceError::McpError(e)) => {
            assert!(e.message.contains("the server is stopping"), "{e:?}");
            assert!(e.message.contains("postgres"), "{e:?}");
        }
        other => panic!("expected an error answer for the commit, got {other:?}"),
    }
    let status = hub
        .exit_within(std::time::Duration::from_secs(30))
        .expect("the hub stops by itself");
    assert!(!status.success(), "{status}");

    let again = Served::start(&["--store", &url]);
    let log = again.cli(&["log", "--store", &url]);
    assert_eq!(log.stdout.lines().count(), 1, "{log:?}");
    let client = again.session_client().await;
    let g = read(&client, "demo::g").await;
    assert!(g.to_string().contains("const 5"), "{g}");
}

/// `cograph stdio --store URL` starts the directory's hub on that database
/// (handing it the URL through `COGRAPH_STORE`, out of the process list):
/// an agent's commit over stdio is in the database's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_starts_its_hub_on_the_database() {
    use rmcp::ServiceExt;
    let url = pg::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(common::EXE);
    cmd.args([
        "stdio",
        "--data",
        dir.path().to_str().unwrap(),
        "--store",
        &url,
    ])
    .env("COGRAPH_LOG", "warn");
    let client = common::Recorder::default()
        .serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    ok(&call(
        &client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": G}}], "purpose": "over stdio"}),
    )
    .await);
    let info = cograph::mcp::hub::HubInfo::read(dir.path()).expect("a hub runs");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", info.pid)).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("postgres://"),
        "the URL is not in the hub's command line"
    );
    let log = cli(&["log", "--store", &url], dir.path());
    succeeded(&log);
    assert!(log.stdout.contains("[over stdio]"), "{log:?}");
    drop(client);
    // The hub exits by itself once idle; end it now.
    let _ = std::process::Command::new("kill")
        .arg(info.pid.to_string())
        .status();
}
