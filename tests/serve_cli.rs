//! `cograph serve`, `cograph status` and `cograph log` as an operator runs
//! them: the built binary, its flags, and what it refuses. Covers the
//! bearer token (401 without it), the refusal to listen beyond loopback
//! without one, an idle HTTP protocol session ending with its locks (but
//! not while it waits for a lock), and
//! the status and log reports while a hub runs.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Client, EXE, F, Recorder, acquire, call, eventually, ok, refused, spawn_call, wait_call,
    wait_for_hub,
};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

const TOKEN: &str = "s3cret-token-for-the-serve-cli-test";

/// A `cograph serve` process on 127.0.0.1:0 over a fresh data directory,
/// killed when dropped.
struct Served {
    child: Child,
    dir: tempfile::TempDir,
    addr: String,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(EXE)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .args(extra)
            .env("COGRAPH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = wait_for_hub(dir.path(), child.id()).http;
        Served { child, dir, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    async fn client(&self, token: Option<&str>) -> Client {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url());
        if let Some(t) = token {
            config = config.auth_header(t);
        }
        Recorder::default()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code of one plain HTTP/1.1 request to the server.
fn status_of(addr: &str, request_line: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!(
        "{request_line} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

fn cograph(args: &[&str], data: &Path) -> (bool, String, String) {
    let out = Command::new(EXE)
        .args(args)
        .arg("--data")
        .arg(data)
        .env("COGRAPH_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates `demo::f` (with a commit `purpose`, if given) and takes its
/// write lock.
async fn create_f_and_lock_it(client: &Client, purpose: Option<&str>) {
    ok(&call(
        client,
        "propose_edit",
        json!({"ops": [{"create_function": {"text": F}}], "purpose": purpose}),
    )
    .await);
    ok(&acquire(client, "demo::f", "write").await);
}

#[test]
fn a_public_address_without_a_token_is_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(EXE)
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--token-file"), "{stderr}");
    assert!(!dir.path().join("hub.json").exists());

    // A token too short to be a secret is refused too, naming the file.
    let short = dir.path().join("token");
    std::fs::write(&short, "short\n").unwrap();
    let out = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&short)
        .arg("--data")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shorter than 16"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_needs_it() {
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let served = Served::start(&["--token-file", token_file.to_str().unwrap()]);
    let addr = served.addr.clone();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mcp_headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let bearer = format!("Bearer {TOKEN}");
    let codes = tokio::task::spawn_blocking(move || {
        let with = |auth: &str| {
            let mut h = mcp_headers.to_vec();
            h.push(("Authorization", auth));
            status_of(&addr, "POST /mcp", &h, init)
        };
        (
            status_of(&addr, "POST /mcp", &mcp_headers, init),
            with("Bearer wrong-token-of-enough-length"),
            with(&bearer),
            status_of(&addr, "GET /status", &[], ""),
            status_of(&addr, "GET /healthz", &[], ""),
        )
    })
    .await
    .unwrap();
    assert_eq!(codes, (401, 401, 200, 401, 200));

    // A real client with the token works; `cograph status` uses the token.
    let client = served.client(Some(TOKEN)).await;
    ok(&call(&client, "register_agent", json!({"name": "tokened"})).await);
    let (success, stdout, _) = cograph(
        &["status", "--token-file", token_file.to_str().unwrap()],
        served.data(),
    );
    assert!(success);
    assert!(stdout.contains("tokened"), "{stdout}");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_log_show_agents_locks_and_commits() {
    let served = Served::start(&[]);
    // A page that rebinds its own name to 127.0.0.1 sends its own Host and
    // no Origin on a same-origin GET: refused on every path.
    let addr = served.addr.clone();
    let rebound = tokio::task::spawn_blocking(move || {
        ["GET /status", "GET /healthz", "POST /mcp"]
            .map(|line| status_of(&addr, line, &[("Host", "attacker.example:7878")], ""))
    })
    .await
    .unwrap();
    assert_eq!(rebound, [403, 403, 403]);

    let alice = served.client(None).await;
    ok(&call(
        &alice,
        "register_agent",
        json!({"name": "alice", "purpose": "status report"}),
    )
    .await);
    create_f_and_lock_it(&alice, Some("seed")).await;

    let data = served.data().to_path_buf();
    let (status, log) = tokio::task::spawn_blocking(move || {
        (cograph(&["status"], &data), cograph(&["log"], &data))
    })
    .await
    .unwrap();
    let (success, stdout, stderr) = status;
    assert!(success, "{stderr}");
    assert!(stdout.contains("r1, 1 functions"), "{stdout}");
    assert!(
        stdout.contains("alice") && stdout.contains("status report"),
        "{stdout}"
    );
    let lock_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("demo::f:"))
        .unwrap_or_else(|| panic!("no lock line in {stdout}"));
    assert!(lock_line.contains("alice"), "{lock_line}");
    let (success, stdout, stderr) = log;
    assert!(success, "{stderr}");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("r1 ") && first.contains("alice") && first.contains("[seed]"),
        "{stdout}"
    );
    alice.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_longer_than_the_idle_limit_keeps_its_session() {
    let served = Served::start(&["--session-idle", "1"]);
    let alice = served.client(None).await;
    create_f_and_lock_it(&alice, None).await;
    // Bob waits (no progress token: nothing flows on his session meanwhile)
    // for three times the idle limit, while alice stays active.
    let bob = served.client(None).await;
    let waiting = spawn_call(&bob, wait_call("demo::f", None));
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        ok(&call(&alice, "lock_status", json!({})).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok(&call(&alice, "release_locks", json!({})).await);
    // Bounded: when the server closed bob's session mid-wait, his client
    // never heard back.
    let granted = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("bob's wait never ended: his session was closed under it")
        .unwrap()
        .expect("bob's session survived his wait");
    assert_ne!(granted.is_error, Some(true), "{granted:?}");
    let waited = granted.structured_content.unwrap()["waited_ms"]
        .as_u64()
        .unwrap();
    assert!(waited >= 3000, "bob waited {waited} ms");
    // His session is still his: he holds the lock and can use it.
    let status = ok(&call(&bob, "lock_status", json!({})).await);
    assert_eq!(status["yours"].as_array().unwrap().len(), 1, "{status:#}");
    bob.cancel().await.unwrap();
    alice.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http_session_ends_and_its_locks_go() {
    let served = Served::start(&["--session-idle", "1"]);
    let alice = served.client(None).await;
    create_f_and_lock_it(&alice, None).await;
    // Alice falls silent. Bob, active, is denied until her session idles
    // out; then the lock is his.
    let bob = served.client(None).await;
    refused(
        &bob,
        "acquire_locks",
        common::lock_args("demo::f", "write"),
        "lock_denied",
    )
    .await;
    eventually("alice's idle session to let the lock go", async || {
        acquire(&bob, "demo::f", "write").await.is_error != Some(true)
    })
    .await;
    let agents = ok(&call(&bob, "list_agents", json!({})).await);
    assert_eq!(agents["agents"].as_array().unwrap().len(), 1, "{agents:#}");
    bob.cancel().await.unwrap();
}

/// Reads until the server closes the connection; returns whether it did
/// (end of file or a reset) within the 10 s read timeout, and what it sent.
fn read_until_closed(stream: &mut std::net::TcpStream) -> (bool, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let closed = match stream.take(1 << 20).read_to_end(&mut got) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    (closed, String::from_utf8_lossy(&got).into_owned())
}

/// Regression: 300 half-sent request heads stayed open 35 s and counting.
#[test]
fn a_half_sent_request_head_is_disconnected() {
    let served = Served::start(&["--header-timeout-ms", "300"]);
    let mut stream = std::net::TcpStream::connect(&served.addr).unwrap();
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow:", served.addr).as_bytes())
        .unwrap();
    let (closed, _) = read_until_closed(&mut stream);
    assert!(closed, "the server kept a half-sent request head open");
    // A whole request on a new connection is still served.
    assert_eq!(status_of(&served.addr, "GET /healthz", &[], ""), 200);
}

#[test]
fn a_half_sent_request_body_gets_408_and_the_connection_closes() {
    let served = Served::start(&["--body-timeout-ms", "300"]);
    let mut stream = std::net::TcpStream::connect(&served.addr).unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\":",
        served.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (closed, answer) = read_until_closed(&mut stream);
    assert!(
        closed,
        "the server kept a half-sent body open; it sent {answer:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 300 ms"), "{answer}");
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Regression: the data directory was 0755 and its files 0644, so any
/// local user could read the program and its log.
#[test]
fn the_data_directory_is_0700_and_its_files_0600() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("fresh").join("data");
    let mut child = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("COGRAPH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info = wait_for_hub(&data, child.id());
    // Opening the store wrote a transaction, so SQLite's -wal and -shm
    // exist while the server runs.
    assert_eq!(status_of(&info.http, "GET /healthz", &[], ""), 200);
    assert_eq!(mode_of(&data), 0o700, "the data directory");
    assert_eq!(
        mode_of(&parent.path().join("fresh")),
        0o700,
        "a parent cograph created"
    );
    for file in [
        "cograph.db",
        "cograph.db-wal",
        "cograph.db-shm",
        "cograph.lock",
        "hub.json",
        "hub.sock",
    ] {
        assert_eq!(mode_of(&data.join(file)), 0o600, "{file}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_hub_started_by_stdio_logs_to_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bridge = Command::new(EXE)
        .args(["stdio", "--data"])
        .arg(dir.path())
        .env("COGRAPH_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        if let Some(info) = cograph::mcp::hub::HubInfo::read(dir.path()) {
            break info;
        }
        assert!(Instant::now() < deadline, "no hub started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let modes = (
        mode_of(&dir.path().join("hub.log")),
        mode_of(&dir.path().join("cograph.db")),
    );
    drop(bridge.stdin.take());
    let _ = bridge.wait();
    let _ = Command::new("kill").arg(info.pid.to_string()).status();
    // The directory existed already and keeps its mode; the files cograph
    // made in it are private.
    assert_eq!(modes, (0o600, 0o600));
}

/// An existing directory keeps its mode (it may be one the user shares on
/// purpose), but the owner warns when others can read it, and the files in
/// it are private all the same.
#[test]
fn an_existing_shared_data_directory_is_warned_about_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A store left 0644 by an older cograph (an empty file is an empty
    // SQLite database).
    let db = dir.path().join("cograph.db");
    std::fs::write(&db, "").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("stderr.txt");
    let mut child = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("COGRAPH_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_hub(dir.path(), child.id());
    let db_mode = mode_of(&dir.path().join("cograph.db"));
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("readable by other users") && stderr.contains("chmod 700"),
        "{stderr}"
    );
    assert_eq!(
        mode_of(dir.path()),
        0o755,
        "an existing directory keeps its mode"
    );
    assert_eq!(db_mode, 0o600);
}

/// `cograph serve` on an empty store says how to load a program (issue 11,
/// section 5); it used to start without a word about it.
#[test]
fn serve_on_an_empty_store_says_how_to_load_a_program() {
    let dir = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("COGRAPH_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    wait_for_hub(dir.path(), child.id());
    // hub.json is written just before the message: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut stderr = String::new();
    while std::time::Instant::now() < deadline {
        stderr = std::fs::read_to_string(log.path()).unwrap();
        if stderr.contains("the program is empty") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        stderr.contains("the program is empty") && stderr.contains("cograph import FILE"),
        "{stderr}"
    );
}
