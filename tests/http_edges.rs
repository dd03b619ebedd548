//! The HTTP listener's edges, spoken in raw HTTP/1.1 where a library would
//! not send the request (issue 11, sections 6 to 9). Each test names the
//! bug it guards against:
//! - two requests with one JSON-RPC id on one session left the first's
//!   response stream open for ever;
//! - a malformed chunked body was a 500; `DELETE /mcp` of an unknown
//!   session was 202; `POST /mcp/anything` was served as `/mcp`; ending a
//!   session answered 202, which the Python SDK reports as a failure;
//! - `https://localhost` and other loopback origins got 403; the `Bearer`
//!   scheme was case-sensitive;
//! - an absolute-form target or a `Host` with userinfo reached `/status`
//!   for a foreign host;
//! - accepted sockets lacked `TCP_NODELAY` (40 ms per kept-alive call);
//! - and the read timeouts that fix slow clients must not cut a long lock
//!   wait.

mod common;

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::time::Duration;

use cograph::mcp::http::HttpConfig;
use common::raw::{INITIALIZE, Raw, mcp_headers, tool_call};
use common::{Server, acquire, call, eventually, lock_queue, ok, spawn_call, wait_call};
use serde_json::json;

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The status of one request on a fresh connection.
async fn status(
    server: &Server,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> u16 {
    let mut raw = Raw::connect(&server.addr.to_string()).await;
    raw.exchange(method, target, &headers(extra), body)
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_request_with_an_id_in_flight_is_refused_and_both_streams_end() {
    let server = Server::start().await;
    let addr = server.addr.to_string();
    let holder = server.in_process("holder").await;
    ok(&acquire(&holder, "demo::f", "write").await);

    let mut first = Raw::connect(&addr).await;
    let session = first.open_session().await;
    let wait = tool_call(
        7,
        "acquire_locks",
        json!({"locks": [{"function": "demo::f", "mode": "write"}], "wait_ms": 30000}),
    );
    first
        .request("POST", "/mcp", &mcp_headers(Some(&session)), &wait)
        .await;
    eventually("the first request to queue", async || {
        lock_queue(&holder, "demo::f").await.1.len() == 1
    })
    .await;

    let mut second = Raw::connect(&addr).await;
    let dup = second
        .call_tool(&session, 7, "lock_status", json!({}))
        .await;
    assert_eq!(dup.status, 200, "{dup:?}");
    assert!(
        dup.body.contains("already in flight") && dup.body.contains("-32600"),
        "the duplicate should get an invalid-request error: {}",
        dup.body
    );

    ok(&call(&holder, "release_locks", json!({})).await);
    let granted = first
        .response()
        .await
        .expect("the first request's stream ends with its answer");
    assert!(
        granted.body.contains(r#""id":7"#)
            && granted.body.contains("fencing_token")
            && !granted.body.contains(r#""isError":true"#),
        "the first request should be granted: {}",
        granted.body
    );
    // The id is free again once its answer went out.
    let again = second
        .call_tool(&session, 7, "lock_status", json!({}))
        .await;
    assert!(!again.body.contains("already in flight"), "{}", again.body);
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_bad_request() {
    let server = Server::start().await;
    let mut chunked = mcp_headers(None);
    chunked.push(("Transfer-Encoding".into(), "chunked".into()));
    let mut raw = Raw::connect(&server.addr.to_string()).await;
    let r = raw
        .exchange("POST", "/mcp", &chunked, "zz\r\nnot a chunk\r\n0\r\n\r\n")
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("request body"), "{}", r.body);
    // The server is still fine.
    assert_eq!(status(&server, "GET", "/healthz", &[], "").await, 200);
}

#[tokio::test]
async fn deleting_a_session_answers_204_and_an_unknown_one_404() {
    let server = Server::start().await;
    let mut raw = Raw::connect(&server.addr.to_string()).await;
    let session = raw.open_session().await;
    let end = raw
        .exchange("DELETE", "/mcp", &mcp_headers(Some(&session)), "")
        .await;
    assert_eq!(end.status, 204, "{end:?}");
    let again = raw
        .exchange("DELETE", "/mcp", &mcp_headers(Some(&session)), "")
        .await;
    assert_eq!(again.status, 404, "{again:?}");
    let unknown = raw
        .exchange(
            "DELETE",
            "/mcp",
            &mcp_headers(Some("00000000-0000-4000-8000-000000000000")),
            "",
        )
        .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
}

#[tokio::test]
async fn only_mcp_itself_is_the_endpoint() {
    let server = Server::start().await;
    let extra = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    assert_eq!(
        status(&server, "POST", "/mcp", &extra, INITIALIZE).await,
        200
    );
    for path in ["/mcp/anything", "/mcp/", "/mcpx"] {
        assert_eq!(
            status(&server, "POST", path, &extra, INITIALIZE).await,
            404,
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_loopback_origin_is_accepted_and_no_other() {
    let server = Server::start().await;
    for (origin, expected) in [
        ("https://localhost", 200),
        ("https://localhost:8443", 200),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1", 200),
        ("https://127.0.0.2:3000", 200),
        ("http://[::1]:9", 200),
        ("https://[::1]", 200),
        ("http://evil.example", 403),
        ("https://localhost.evil.example", 403),
        ("http://127.0.0.1.evil.example", 403),
        ("null", 403),
    ] {
        let extra = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Origin", origin),
        ];
        assert_eq!(
            status(&server, "POST", "/mcp", &extra, INITIALIZE).await,
            expected,
            "Origin: {origin}"
        );
        assert_eq!(
            status(&server, "GET", "/status", &extra[2..], "").await,
            expected,
            "Origin: {origin} on /status"
        );
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    const TOKEN: &str = "a-token-of-at-least-16-chars";
    let server = Server::start_http(HttpConfig {
        token: Some(TOKEN.into()),
        ..HttpConfig::default()
    })
    .await;
    for (authorization, expected) in [
        (format!("Bearer {TOKEN}"), 200),
        (format!("bearer {TOKEN}"), 200),
        (format!("BEARER {TOKEN}"), 200),
        (format!("Bearer  {TOKEN}"), 200),
        (format!("Basic {TOKEN}"), 401),
        (format!("Bearer {TOKEN}x"), 401),
        (TOKEN.to_string(), 401),
    ] {
        assert_eq!(
            status(
                &server,
                "GET",
                "/status",
                &[("Authorization", &authorization)],
                ""
            )
            .await,
            expected,
            "Authorization: {authorization}"
        );
    }
}

#[tokio::test]
async fn a_loopback_listener_answers_only_loopback_authorities_in_every_request_form() {
    let server = Server::start().await;
    let port = server.addr.port();
    let own = server.addr.to_string();
    let localhost = format!("localhost:{port}");
    let absolute = format!("http://127.0.0.1:{port}/status");
    for (target, host, expected) in [
        ("/status", own.as_str(), 200),
        ("/status", localhost.as_str(), 200),
        ("/status", "127.0.0.2", 200),
        ("/status", "[::1]:80", 200),
        (absolute.as_str(), own.as_str(), 200),
        ("http://evil.example/status", own.as_str(), 403),
        ("http://127.0.0.1:80@evil.example/status", own.as_str(), 403),
        ("/status", "127.0.0.1:80@evil.example", 403),
        ("/status", "evil.example", 403),
        ("/status", "127.0.0.1:http", 403),
        ("/healthz", "127.0.0.1:80@evil.example", 403),
    ] {
        assert_eq!(
            status(&server, "GET", target, &[("Host", host)], "").await,
            expected,
            "GET {target} with Host: {host}"
        );
    }
    // Two Host headers: which one would count? Neither.
    assert_eq!(
        status(
            &server,
            "GET",
            "/status",
            &[("Host", own.as_str()), ("Host", "evil.example")],
            ""
        )
        .await,
        403
    );
}

/// The `TCP_NODELAY` option of the server's side of the connection from
/// `client` to `server`, found among this process's file descriptors (the
/// server runs in-process).
fn served_nodelay(server: SocketAddr, client: SocketAddr) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.take(100_000) {
        let Some(fd) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor was open when listed; the borrow ends in
        // this iteration and only getsockname, getpeername and getsockopt
        // are called on it, which fail harmlessly on a descriptor that was
        // closed (or is not a socket) meanwhile.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let ends = (
            socket.local_addr().ok().and_then(|a| a.as_socket()),
            socket.peer_addr().ok().and_then(|a| a.as_socket()),
        );
        if ends == (Some(server), Some(client)) {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_connection_has_tcp_nodelay() {
    let server = Server::start().await;
    let mut raw = Raw::connect(&server.addr.to_string()).await;
    assert_eq!(raw.exchange("GET", "/healthz", &[], "").await.status, 200);
    let client = raw.stream.get_ref().local_addr().unwrap();
    let nodelay = served_nodelay(server.addr, client)
        .expect("the server's side of the connection among this process's sockets");
    assert!(nodelay, "the served connection lacks TCP_NODELAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_outlasts_the_request_read_timeouts() {
    let server = Server::start_http(HttpConfig {
        header_read_timeout: Duration::from_millis(200),
        body_read_timeout: Duration::from_millis(200),
        ..HttpConfig::default()
    })
    .await;
    let holder = server.in_process("holder").await;
    ok(&acquire(&holder, "demo::f", "write").await);
    let waiter = server.http_session().await;
    let waiting = spawn_call(&waiter, wait_call("demo::f", None));
    eventually("the waiter to queue", async || {
        lock_queue(&holder, "demo::f").await.1.len() == 1
    })
    .await;
    // Several times both timeouts pass while the response is pending.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ok(&call(&holder, "release_locks", json!({})).await);
    ok(&waiting.await.unwrap().unwrap());
    // The session, and its connection pool, still work.
    ok(&call(&waiter, "lock_status", json!({})).await);
}

/// `tools/call` whose `arguments` is not an object, over HTTP as over
/// stdio: invalid params naming `arguments`, whatever the shape (rmcp
/// itself took `null` as no arguments and ran the tool).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_are_not_an_object_are_invalid_params_over_http() {
    let server = Server::start().await;
    let mut raw = Raw::connect(&server.addr.to_string()).await;
    let session = raw.open_session().await;
    for (idx, (args, kind)) in [
        (json!(null), "null"),
        (json!([]), "an array"),
        (json!("x"), "a string"),
        (json!(5), "a number"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = raw
            .call_tool(&session, 10 + idx as u64, "verify_all", args)
            .await;
        assert_eq!(r.status, 200, "{kind}: {r:?}");
        let json_start = r.body.find('{').expect("a JSON-RPC message");
        let json_end = r.body.rfind('}').unwrap() + 1;
        let reply: serde_json::Value = serde_json::from_str(&r.body[json_start..json_end]).unwrap();
        assert_eq!(reply["id"], 10 + idx as u64, "{kind}: {reply}");
        assert_eq!(reply["error"]["code"], -32602, "{kind}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("`arguments`") && message.contains(kind),
            "{kind}: {message}"
        );
    }
    // The session still serves a well-formed call.
    let fine = raw.call_tool(&session, 20, "verify_all", json!({})).await;
    assert!(fine.body.contains(r#""ok":true"#), "{}", fine.body);
}
