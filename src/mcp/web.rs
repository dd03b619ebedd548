//! The live page at `GET /` of `cograph serve`: assets built into the
//! binary (`web/`), the document it shows (`web/view.rs`), pushed again
//! within a second of every change, a commit's diff, and the operator
//! actions the command line has (end an agent, break a lock).
//!
//! Routes, all under `http.rs`'s Host and Origin rules:
//! - `GET /`, `/page.js`, `/page.css`: the page, which holds no data and so
//!   needs no token (with `--token`, the page asks for it and keeps it in
//!   the tab's `sessionStorage`);
//! - `GET /api/view`: the document now;
//! - `GET /api/stream`: server-sent events, one `view` event now and one
//!   after each change (changes within `SETTLE` of each other make one),
//!   a comment every `KEEPALIVE` so that a dead client is noticed; between
//!   changes nothing runs;
//! - `GET /api/commit/{revision}`: what a commit changed, function by
//!   function, as text before and after and as the structured diff;
//! - `POST /api/act`: `{"action":"end_agent","agent":"ID or name"}` or
//!   `{"action":"break_lock","resource":"path:src/"}`, recorded like the
//!   command line's (operator "web page").
//!
//! Every `/api/` route needs the bearer token when one is set.

mod view;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::graph::{FunctionId, Revision, diff_functions, render_function};
use crate::service::{Hub, OperatorError, VersionSel};

pub use view::PageView;

/// Changes closer together than this are sent as one: under load, at
/// most four documents a second, each within a second of its change.
pub const SETTLE: Duration = Duration::from_millis(250);
/// A comment line this often keeps the stream open through proxies and
/// tells a dead client from a live one.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

const PAGE_HTML: &str = include_str!("../../web/index.html");
const PAGE_JS: &str = include_str!("../../web/page.js");
const PAGE_CSS: &str = include_str!("../../web/page.css");

/// The paths served without a token: the page's own assets.
pub fn is_asset(path: &str) -> bool {
    matches!(path, "/" | "/page.js" | "/page.css")
}

/// The page's routes, on the caller's state.
pub fn routes(hub: Arc<Hub>) -> Router {
    Router::new()
        .route("/", axum::routing::get(|| asset(PAGE_HTML, "text/html")))
        .route(
            "/page.js",
            axum::routing::get(|| asset(PAGE_JS, "text/javascript")),
        )
        .route(
            "/page.css",
            axum::routing::get(|| asset(PAGE_CSS, "text/css")),
        )
        .route("/api/view", axum::routing::get(view_now))
        .route("/api/stream", axum::routing::get(stream))
        .route("/api/commit/{revision}", axum::routing::get(commit))
        .route("/api/act", axum::routing::post(act))
        .with_state(hub)
}

async fn asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, format!("{mime}; charset=utf-8")),
            (header::CACHE_CONTROL, "no-cache".to_string()),
            // Nothing from elsewhere: the page is its own three files.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'".to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn view_now(State(hub): State<Arc<Hub>>) -> Response {
    match view::build(&hub).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// An SSE body fed by a task; the task ends when the client goes.
struct EventBody(mpsc::Receiver<Bytes>);

impl futures_core::Stream for EventBody {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|b| b.map(Ok))
    }
}

async fn stream(State(hub): State<Arc<Hub>>) -> Response {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(push_views(hub, tx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(EventBody(rx)),
    )
        .into_response()
}

/// Sends the view now and after every change until the client goes or
/// the hub stops.
async fn push_views(hub: Arc<Hub>, tx: mpsc::Sender<Bytes>) {
    let mut revisions = hub.revisions();
    let mut locks = hub.lock_changes();
    let mut queues = hub.queue_changes();
    let mut feed = hub.feed().changes();
    let shutdown = hub.shutdown_token();
    let mut last = String::new();
    let mut history = view::History::default();
    loop {
        let frame = match view::build_with(&hub, &mut history).await {
            Ok(mut v) => {
                // Compared without the clock: a change that changed
                // nothing shown sends nothing. The clock goes back in
                // where it was taken out, so the document is written once.
                let now = std::mem::take(&mut v.now);
                let json = serde_json::to_string(&v).unwrap_or_default();
                if json == last {
                    None
                } else {
                    let frame = format!(
                        "event: view\ndata: {}\n\n",
                        json.replacen(r#""now":"""#, &format!(r#""now":"{now}""#), 1)
                    );
                    last = json;
                    Some(frame)
                }
            }
            Err(e) => Some(format!(
                "event: problem\ndata: {}\n\n",
                serde_json::json!({ "error": e.to_string() })
            )),
        };
        if let Some(frame) = frame
            && tx.send(Bytes::from(frame)).await.is_err()
        {
            return;
        }
        // Wait for a change, sending a keep-alive while there is none.
        loop {
            tokio::select! {
                r = revisions.changed() => if r.is_err() { return } else { break },
                r = locks.changed() => if r.is_err() { return } else { break },
                r = queues.changed() => if r.is_err() { return } else { break },
                r = feed.changed() => if r.is_err() { return } else { break },
                () = tx.closed() => return,
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(KEEPALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
        // Let a burst settle into one frame.
        tokio::time::sleep(SETTLE).await;
        revisions.mark_unchanged();
        locks.mark_unchanged();
        queues.mark_unchanged();
        feed.mark_unchanged();
    }
}

#[derive(Serialize)]
struct CommitDiff {
    revision: u64,
    agent: String,
    summary: String,
    at: String,
    functions: Vec<FunctionChangeView>,
}

#[derive(Serialize)]
struct FunctionChangeView {
    name: String,
    /// `created`, `deleted` or `changed`.
    change: &'static str,
    before: Option<String>,
    after: Option<String>,
    /// The structured diff, one change per line (`+`, `-`, `~`).
    diff: Vec<String>,
}

async fn commit(State(hub): State<Arc<Hub>>, Path(revision): Path<String>) -> Response {
    let Ok(revision) = revision.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{revision}` is not a revision number"),
        );
    };
    let found = match hub
        .history(None, Some(Revision(revision.saturating_add(1))), 1)
        .await
    {
        Ok(h) => h.into_iter().find(|c| c.revision.0 == revision),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let Some(c) = found else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "there is no commit at revision {revision} (the latest is {})",
                hub.snapshot().revision().0
            ),
        );
    };
    let program = hub.snapshot();
    let namer = program.namer();
    let mut functions = Vec::with_capacity(c.changes.len());
    for ch in &c.changes {
        let version = |hash| version(&hub, ch.function, hash);
        let before = match ch.before {
            Some(h) => version(h).await,
            None => None,
        };
        let after = match ch.after {
            Some(h) => version(h).await,
            None => None,
        };
        let diff = match (&before, &after) {
            (Some(b), Some(a)) => {
                let view = super::views::diff(&program, &diff_functions(b, a));
                super::summary::diff_text(&view)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            }
            _ => Vec::new(),
        };
        functions.push(FunctionChangeView {
            name: ch.name.to_string(),
            change: match (ch.before, ch.after) {
                (None, _) => "created",
                (_, None) => "deleted",
                _ => "changed",
            },
            before: before.map(|f| render_function(&f, &namer)),
            after: after.map(|f| render_function(&f, &namer)),
            diff,
        });
    }
    axum::Json(CommitDiff {
        revision,
        agent: c.agent_name,
        summary: c.summary,
        at: crate::service::time::rfc3339_ms(c.time_ms),
        functions,
    })
    .into_response()
}

async fn version(
    hub: &Arc<Hub>,
    id: FunctionId,
    hash: crate::graph::ContentHash,
) -> Option<Arc<crate::graph::Function>> {
    match hub.version(id, &VersionSel::Hash(hash)).await {
        Ok(Some((_, f))) => Some(f),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    EndAgent { agent: String },
    BreakLock { resource: String },
}

/// Who the page's actions are recorded as.
const OPERATOR: &str = "web page";

async fn act(State(hub): State<Arc<Hub>>, body: Bytes) -> Response {
    let action: Action = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "bad action: {e}; send {{\"action\":\"end_agent\",\"agent\":\"ID\"}} \
                     or {{\"action\":\"break_lock\",\"resource\":\"RESOURCE\"}}"
                ),
            );
        }
    };
    let done = match action {
        Action::EndAgent { agent } => hub
            .operator_end_agent(&agent, OPERATOR)
            .await
            .map(|r| vec![r]),
        Action::BreakLock { resource } => hub.operator_break_lock(&resource, OPERATOR).await,
    };
    match done {
        Ok(reports) => axum::Json(serde_json::json!({
            "done": reports
                .iter()
                .map(|r| super::views::operator_event_line(&super::views::operator_event(&r.event)))
                .collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e @ OperatorError::Store(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
