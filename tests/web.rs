//! The live page's HTTP side (issue 13): the assets, the token and origin
//! rules, the pushed document following locks and commits taken through
//! MCP, a commit's diff, and the operator actions with bad input refused.
//! The page itself runs in a real browser in `tests/interop/page.mjs`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn get(server: &Server, target: &str, extra: &[(&str, &str)]) -> common::raw::Response {
    request(server, "GET", target, extra, "").await
}

async fn request(
    server: &Server,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> common::raw::Response {
    common::raw::once(&server.addr.to_string(), method, target, extra, body).await
}

fn json_of(r: &common::raw::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// `GET /api/stream`, read frame by frame.
struct Stream(BufReader<TcpStream>);

impl Stream {
    async fn open(server: &Server) -> Stream {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let req = format!(
            "GET /api/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            server.addr
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut s = Stream(BufReader::new(tcp));
        let status = s.line().await;
        assert!(status.contains(" 200 "), "{status}");
        s
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.0.read_line(&mut line).await.unwrap();
        assert!(n > 0, "the stream closed");
        line.trim_end().to_string()
    }

    /// The next pushed document, within `within`.
    async fn next_view(&mut self, within: Duration) -> Value {
        tokio::time::timeout(within, async {
            loop {
                let line = self.line().await;
                if let Some(data) = line.strip_prefix("data: ") {
                    return serde_json::from_str(data).unwrap();
                }
            }
        })
        .await
        .expect("a document within the bound")
    }

    /// Documents until one satisfies `want`; panics after `within`.
    async fn until(&mut self, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next_view(left).await;
            if want(&v) {
                return v;
            }
        }
    }
}

const BOUND: Duration = Duration::from_secs(10);

fn lock_on<'a>(view: &'a Value, resource: &str) -> Option<&'a Value> {
    view["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resource"] == resource)
}

fn function_lock(view: &Value, name: &str) -> String {
    view["modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["functions"].as_array().unwrap())
        .find(|f| f["name"] == name)
        .map(|f| f["lock"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no function {name} in {view}"))
}

#[tokio::test]
async fn the_page_is_built_in_and_fetches_nothing_from_elsewhere() {
    let server = Server::start().await;
    let page = get(&server, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body.contains(r#"<script src="/page.js">"#),
        "{}",
        page.body
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    for asset in ["/page.js", "/page.css"] {
        let r = get(&server, asset, &[]).await;
        assert_eq!(r.status, 200, "{asset}");
        // The SVG namespace is a name, not a place anything is fetched from.
        let body = r.body.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} names another origin"
        );
    }
    assert_eq!(get(&server, "/nope.js", &[]).await.status, 404);
}

#[tokio::test]
async fn a_token_guards_the_api_but_not_the_page_and_a_foreign_origin_gets_neither() {
    let server = Server::start_http(cograph::mcp::http::HttpConfig {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(get(&server, "/", &[]).await.status, 200);
    for target in ["/api/view", "/api/stream", "/api/commit/1"] {
        assert_eq!(get(&server, target, &[]).await.status, 401, "{target}");
    }
    let act = request(
        &server,
        "POST",
        "/api/act",
        &[],
        r#"{"action":"end_agent","agent":"x"}"#,
    )
    .await;
    assert_eq!(act.status, 401);
    let ok = get(&server, "/api/view", &[("Authorization", "Bearer s3cret")]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(json_of(&ok)["revision"], 1);
    let foreign = get(&server, "/", &[("Origin", "https://evil.example")]).await;
    assert_eq!(foreign.status, 403);
}

#[tokio::test]
async fn the_stream_follows_locks_taken_through_mcp_of_every_kind() {
    let server = Server::start().await;
    let mut stream = Stream::open(&server).await;
    let first = stream.next_view(BOUND).await;
    assert!(first["locks"].as_array().unwrap().is_empty(), "{first}");
    assert_eq!(function_lock(&first, "demo::f"), "free");

    let alice = server.http_session().await;
    ok(&call(
        &alice,
        "register_agent",
        json!({"name": "alice", "purpose": "docs"}),
    )
    .await);
    ok(&call(
        &alice,
        "acquire_locks",
        json!({"locks": [{"function": "demo::f", "mode": "write"}, {"path": "src/net/", "mode": "read"}],
               "purpose": "rewriting f"}),
    )
    .await);
    let held = stream
        .until(BOUND, |v| {
            lock_on(v, "path:src/net/").is_some() && lock_on(v, "demo::f").is_some()
        })
        .await;
    let f = lock_on(&held, "demo::f").unwrap();
    assert_eq!(f["holders"][0]["agent_name"], "alice");
    assert_eq!(f["holders"][0]["mode"], "write");
    assert_eq!(f["holders"][0]["purpose"], "rewriting f");
    assert!(f["holders"][0]["expires_at"].is_string());
    assert_eq!(function_lock(&held, "demo::f"), "write");
    assert_eq!(function_lock(&held, "demo::g"), "free");
    let agent = held["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "alice")
        .unwrap();
    assert_eq!(agent["holds"].as_array().unwrap().len(), 2, "{agent}");
    assert_eq!(agent["transport"], "http_session");

    // A second agent refused shows in the events and the rates, and one
    // that waits shows in order, then in the program as queued.
    let bob = server.http_session().await;
    ok(&call(&bob, "register_agent", json!({"name": "bob"})).await);
    let denied = try_call(
        &bob,
        "acquire_locks",
        json!({"locks": [{"function": "demo::f"}]}),
    )
    .await;
    assert_eq!(denied.unwrap().is_error, Some(true));
    let seen = stream
        .until(BOUND, |v| {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "lock_denied")
        })
        .await;
    assert!(
        seen["rates"]["denials"].as_f64().unwrap() > 0.0,
        "{}",
        seen["rates"]
    );

    ok(&call(&alice, "release_locks", json!({})).await);
    let gone = stream
        .until(BOUND, |v| v["locks"].as_array().unwrap().is_empty())
        .await;
    assert_eq!(function_lock(&gone, "demo::f"), "free");
    let kinds: Vec<&str> = gone["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"released") && kinds.contains(&"granted"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_module_lock_colours_every_function_below_it() {
    let server = Server::start().await;
    let alice = server.http_session().await;
    ok(&call(
        &alice,
        "acquire_locks",
        json!({"locks": [{"module": "demo", "mode": "read"}]}),
    )
    .await);
    let view = json_of(&get(&server, "/api/view", &[]).await);
    assert_eq!(function_lock(&view, "demo::f"), "read");
    assert_eq!(function_lock(&view, "demo::g"), "read");
    assert!(lock_on(&view, "module:demo").is_some(), "{}", view["locks"]);
}

#[tokio::test]
async fn a_commit_appears_with_its_diff() {
    let server = Server::start().await;
    let mut stream = Stream::open(&server).await;
    stream.next_view(BOUND).await;
    let alice = server.http_session().await;
    ok(&call(&alice, "get_function", json!({"function": "demo::g"})).await);
    let edit = ok(&call(
        &alice,
        "propose_edit",
        json!({"ops": [{"set_doc": {"function": "demo::g", "doc": "five"}}]}),
    )
    .await);
    let rev = edit["revision"].as_u64().unwrap();
    let view = stream
        .until(BOUND, |v| v["commits"][0]["revision"] == rev)
        .await;
    assert_eq!(view["commits"][0]["functions"], json!(["demo::g"]));
    assert_eq!(
        view["commits"][0]["merged"], 0,
        "made on this hub: merged is known"
    );
    assert_eq!(view["commits"][1]["merged"], 0);

    let diff = json_of(&get(&server, &format!("/api/commit/{rev}"), &[]).await);
    let g = &diff["functions"][0];
    assert_eq!(g["name"], "demo::g");
    assert_eq!(g["change"], "changed");
    assert!(!g["before"].as_str().unwrap().contains("/// five"));
    assert!(
        g["after"].as_str().unwrap().starts_with("/// five\n"),
        "{g}"
    );
    assert_eq!(g["diff"], json!(["doc changed"]));
    let created = json_of(&get(&server, "/api/commit/1", &[]).await);
    assert_eq!(created["functions"][0]["change"], "created");
    assert!(created["functions"][0]["before"].is_null());

    let bad = get(&server, "/api/commit/abc", &[]).await;
    assert_eq!(bad.status, 400);
    assert!(
        json_of(&bad)["error"]
            .as_str()
            .unwrap()
            .contains("`abc` is not a revision number")
    );
    let missing = get(&server, "/api/commit/99", &[]).await;
    assert_eq!(missing.status, 404);
    assert!(
        json_of(&missing)["error"]
            .as_str()
            .unwrap()
            .contains("no commit at revision 99")
    );
}

#[tokio::test]
async fn operator_actions_from_the_page_are_recorded_and_bad_ones_change_nothing() {
    let server = Server::start().await;
    let alice = server.http_session().await;
    ok(&call(&alice, "register_agent", json!({"name": "alice"})).await);
    ok(&call(
        &alice,
        "acquire_locks",
        json!({"locks": [{"named": "deploy:staging"}]}),
    )
    .await);
    let act = |body: &'static str| request(&server, "POST", "/api/act", &[], body);

    for (body, names) in [
        (r#"{"action":"reboot"}"#, "unknown variant `reboot`"),
        (r#"{"action":"break_lock"}"#, "missing field `resource`"),
        (r#"not json"#, "bad action"),
        (r#"{"action":"break_lock","resource":"path:/etc"}"#, "path"),
        (
            r#"{"action":"break_lock","resource":"named:nobody-holds"}"#,
            "nobody holds a lock",
        ),
        (r#"{"action":"end_agent","agent":"zed"}"#, "zed"),
    ] {
        let r = act(body).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        let error = json_of(&r)["error"].as_str().unwrap().to_string();
        assert!(error.contains(names), "{body}: {error}");
    }
    let view = json_of(&get(&server, "/api/view", &[]).await);
    assert!(
        lock_on(&view, "named:deploy:staging").is_some(),
        "bad actions changed nothing"
    );

    let broke = act(r#"{"action":"break_lock","resource":"named:deploy:staging"}"#).await;
    assert_eq!(broke.status, 200, "{broke:?}");
    assert!(
        json_of(&broke)["done"][0]
            .as_str()
            .unwrap()
            .contains("web page"),
        "{}",
        broke.body
    );
    let view = json_of(&get(&server, "/api/view", &[]).await);
    assert!(view["locks"].as_array().unwrap().is_empty());
    let events = server.hub.operator_events(None, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].operator, "web page");
    assert_eq!(events[0].agent_name, "alice");

    let ended = act(r#"{"action":"end_agent","agent":"alice"}"#).await;
    assert_eq!(ended.status, 200, "{ended:?}");
    let view = json_of(&get(&server, "/api/view", &[]).await);
    assert!(
        view["agents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name"] != "alice")
    );
    assert!(
        view["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "operator"
                && e["text"]
                    .as_str()
                    .unwrap()
                    .contains("end_agent by web page")),
        "{}",
        view["events"]
    );
}
