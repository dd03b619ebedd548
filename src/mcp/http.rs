//! Streamable HTTP: `/mcp` (rmcp's service, one handler per protocol
//! session or per stateless request), `/healthz`, and `/status` for
//! `cograph status`.
//!
//! Security: every route, `/mcp` included, goes through [`guard`], the one
//! check of `Host` and `Origin` (rmcp's own checks are off, so the two
//! cannot disagree). A foreign origin gets 403; any loopback origin, http
//! or https, is not foreign. On a loopback listener every authority the
//! request names (its `Host`, and the target of an absolute-form request)
//! must be a loopback name. A bearer token, when configured, is required on
//! everything but `/healthz` (401 without it). Request bodies are read
//! whole with a deadline (`body.rs`), request heads under one (`conn.rs`).
//! Refusing to bind a non-loopback address without a token is the caller's
//! job (`cograph serve`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::server::CographServer;
use super::sessions::AgentSessions;
use super::views;
use crate::service::Hub;

mod authority;
mod body;
mod conn;

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Bearer token required on `/mcp` and `/status`.
    pub token: Option<String>,
    /// Whether the listener is on a loopback address.
    pub loopback: bool,
    /// Extra `Host` names to accept (for non-loopback deployments).
    pub allowed_hosts: Vec<String>,
    /// Protocol sessions idle this long are closed (their agents end); a
    /// call in flight keeps a session busy.
    pub session_idle: Duration,
    /// A connection whose next request head has not fully arrived this
    /// long after hyper began waiting for it is closed.
    pub header_read_timeout: Duration,
    /// A request whose body has not fully arrived this long after its head
    /// gets 408 and its connection closes.
    pub body_read_timeout: Duration,
    /// How long a request's closed response stream may stay unresumed
    /// before the request is abandoned (`delivery::STREAM_GRACE`).
    pub stream_grace: Duration,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            token: None,
            loopback: true,
            allowed_hosts: Vec::new(),
            session_idle: Duration::from_secs(30 * 60),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            stream_grace: super::delivery::STREAM_GRACE,
        }
    }
}

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    config: Arc<HttpConfig>,
}

/// The axum app: `/mcp`, `/healthz`, `/status`.
pub fn router(hub: Arc<Hub>, config: HttpConfig, shutdown: CancellationToken) -> Router {
    // `guard` checks Host and Origin on every route, /mcp included.
    let http = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(body::MAX_BODY_BYTES)
        .with_cancellation_token(shutdown.clone());
    let factory_hub = hub.clone();
    let sessions = AgentSessions::start(
        LocalSessionManager::default(),
        hub.clone(),
        config.session_idle,
        config.stream_grace,
        shutdown.clone(),
    );
    let mcp = StreamableHttpService::new(
        move || Ok(CographServer::for_http(factory_hub.clone())),
        sessions.clone(),
        http,
    );
    let page = super::web::routes(hub.clone());
    let state = AppState {
        hub,
        config: Arc::new(config),
    };
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/status", axum::routing::get(status))
        .route("/metrics", axum::routing::get(metrics))
        // Exactly `/mcp`: `/mcp/anything` is not the endpoint (404).
        .route(
            "/mcp",
            axum::routing::any_service(mcp)
                .layer(middleware::from_fn_with_state(sessions, end_session)),
        )
        .with_state(state.clone())
        .merge(page)
        .layer(middleware::from_fn_with_state(state, guard))
}

/// Serves until `shutdown` fires.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    config: HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let header_read_timeout = config.header_read_timeout;
    let app = router(hub, config, shutdown.child_token());
    conn::serve(listener, app, header_read_timeout, shutdown).await
}

/// Returns true if and only if `origin` is a loopback origin.
fn loopback_origin(origin: &str) -> bool {
    authority::origin_host(origin).is_some_and(authority::is_loopback_host)
}

/// Returns true if and only if an authority the request names may reach
/// this server: a loopback name on a loopback listener (so a page that
/// rebinds its own name to 127.0.0.1 is refused), else one of
/// `allowed_hosts` or a loopback name when any are configured, else any.
fn host_allowed(host: Option<&str>, config: &HttpConfig) -> bool {
    if !config.loopback && config.allowed_hosts.is_empty() {
        return true;
    }
    let Some(name) = host.and_then(authority::host_of) else {
        return false;
    };
    authority::is_loopback_host(name)
        || (!config.loopback
            && config.allowed_hosts.iter().any(|allowed| {
                authority::host_of(allowed)
                    .unwrap_or(allowed.as_str())
                    .eq_ignore_ascii_case(name)
            }))
}

/// Returns true if and only if every authority `request` names is allowed:
/// its one `Host` header and, in an absolute-form request
/// (`GET http://host/path`), the target's authority, which RFC 9112 says a
/// server uses instead of `Host`; both must pass, and a request with two
/// `Host` headers or none (on a listener that checks) is refused.
fn authorities_allowed(request: &Request, config: &HttpConfig) -> bool {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next().map(|h| h.to_str().ok());
    if hosts.next().is_some() || host == Some(None) {
        return false;
    }
    let target = request.uri().authority().map(|a| a.as_str());
    host_allowed(host.flatten(), config) && target.is_none_or(|t| host_allowed(Some(t), config))
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !authorities_allowed(&request, &state.config) {
        tracing::warn!(
            host = ?request.headers().get(header::HOST),
            target = %request.uri(),
            "refused a foreign Host"
        );
        return (
            StatusCode::FORBIDDEN,
            "forbidden: the Host is not allowed; on loopback use localhost, 127.0.0.1 or [::1]\n",
        )
            .into_response();
    }
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(loopback_origin);
        if !ok {
            tracing::warn!(origin = ?origin, path = %request.uri().path(), "refused a foreign Origin");
            return (
                StatusCode::FORBIDDEN,
                "forbidden: the Origin is not allowed\n",
            )
                .into_response();
        }
    }
    // The page's assets hold no data: the page asks for the token itself.
    if request.uri().path() != "/healthz"
        && !super::web::is_asset(request.uri().path())
        && let Some(token) = &state.config.token
        && !bearer_matches(headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "unauthorized: send Authorization: Bearer <token>\n",
        )
            .into_response();
    }
    let (parts, bytes) = match body::read_whole(request, state.config.body_read_timeout).await {
        Ok(read) => read,
        Err(refusal) => return refusal,
    };
    if parts.method == Method::POST
        && parts.uri.path() == "/mcp"
        && let Some(answer) = malformed_message(&bytes)
    {
        return answer;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The JSON-RPC error for a message rmcp would accept but the protocol
/// does not (`requests::check_raw`: a `tools/call` with `arguments:
/// null`), as stdio answers it. Only a body that mentions `null` is
/// parsed a second time, so ordinary calls pay nothing.
fn malformed_message(bytes: &[u8]) -> Option<Response> {
    if !bytes.windows(4).any(|w| w == b"null") {
        return None;
    }
    let message: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let error = super::requests::check_raw(&message)?;
    Some(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            super::requests::error_response_line(&message, &error),
        )
            .into_response(),
    )
}

/// `DELETE /mcp`: a session this server does not have is 404 (rmcp
/// answers 202 whatever the id), and ending one answers 204, not rmcp's
/// 202, which clients (the Python SDK) report as a failed termination.
async fn end_session(
    State(sessions): State<Arc<AgentSessions>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::DELETE {
        return next.run(request).await;
    }
    let id = request
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok());
    if let Some(id) = id
        && !sessions.has_session(&id.into()).await.unwrap_or(false)
    {
        return (
            StatusCode::NOT_FOUND,
            "not found: no such session (it ended, or never began)\n",
        )
            .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::ACCEPTED {
        return StatusCode::NO_CONTENT.into_response();
    }
    response
}

/// Compares in time independent of where the first difference is. The
/// scheme is case-insensitive (RFC 7235); spaces may separate it from the
/// token.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, given)| given.trim_start_matches(' '))
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    revision: u64,
    agents: usize,
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(Health {
        status: "ok",
        revision: state.hub.snapshot().revision().0,
        agents: state.hub.n_agents(),
    })
}

/// What `cograph status` shows.
#[derive(Serialize, serde::Deserialize)]
pub struct StatusReport {
    pub revision: u64,
    pub root_hash: String,
    pub n_functions: usize,
    pub agents: Vec<StatusAgent>,
    pub locks: Vec<StatusLock>,
}

#[derive(Serialize, serde::Deserialize)]
pub struct StatusAgent {
    pub agent_id: String,
    pub name: String,
    pub purpose: Option<String>,
    pub transport: super::types::TransportView,
    pub connected_since: String,
    pub last_active: String,
}

#[derive(Serialize, serde::Deserialize)]
pub struct StatusLock {
    pub function: String,
    pub holders: Vec<String>,
    pub waiters: Vec<String>,
}

pub fn status_report(hub: &Hub) -> StatusReport {
    let program = hub.snapshot();
    StatusReport {
        revision: program.revision().0,
        root_hash: program.root_hash().to_hex(),
        n_functions: program.len(),
        agents: hub
            .list_agents()
            .into_iter()
            .map(|a| StatusAgent {
                agent_id: a.id.to_string(),
                name: a.name,
                purpose: a.purpose,
                transport: super::convert::transport(a.transport),
                connected_since: views::rfc3339(a.connected_since),
                last_active: views::rfc3339(a.last_active),
            })
            .collect(),
        locks: hub
            .lock_status()
            .into_iter()
            .map(|l| StatusLock {
                function: crate::service::resource_text(&program, &l.resource),
                holders: l
                    .holders
                    .iter()
                    .map(|h| {
                        format!(
                            "{} {} ({}) until {}",
                            h.claim,
                            hub.agent_name(h.agent),
                            h.agent,
                            views::rfc3339(h.expires_at)
                        )
                    })
                    .collect(),
                waiters: l
                    .waiters
                    .iter()
                    .map(|w| format!("{}. {} {}", w.position, w.claim, hub.agent_name(w.agent)))
                    .collect(),
            })
            .collect(),
    }
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(status_report(&state.hub))
}

/// Prometheus's text exposition format, version 0.0.4.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.hub.metrics_text(),
    )
}

/// Returns true if and only if the address is loopback.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost:6274",
            "http://127.0.0.1",
            "http://[::1]:80",
            "https://localhost",
            "https://127.0.0.2:8443",
        ] {
            assert!(loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://evil.com",
            "http://localhost.evil.com",
            "null",
            "",
            "http://127.0.0.1.evil.com",
            "file://localhost",
        ] {
            assert!(!loopback_origin(bad), "{bad}");
        }
    }

    #[test]
    fn hosts_on_loopback_and_beyond() {
        let loopback = HttpConfig::default();
        for ok in ["127.0.0.1:7878", "localhost", "[::1]:9"] {
            assert!(host_allowed(Some(ok), &loopback), "{ok}");
        }
        for bad in [
            Some("evil.example"),
            Some("127.0.0.1.evil.example:80"),
            Some("127.0.0.1:80@evil.example"),
            None,
        ] {
            assert!(!host_allowed(bad, &loopback), "{bad:?}");
        }
        let open = HttpConfig {
            loopback: false,
            ..HttpConfig::default()
        };
        assert!(host_allowed(Some("anything.example"), &open));
        let named = HttpConfig {
            loopback: false,
            allowed_hosts: vec!["cograph.internal".into()],
            ..HttpConfig::default()
        };
        assert!(host_allowed(Some("cograph.internal:7878"), &named));
        assert!(!host_allowed(Some("evil.example"), &named));
        assert!(!host_allowed(None, &named));
    }

    #[test]
    fn bearer_tokens_compare_exactly() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cre"));
        assert!(!bearer_matches(&h, "s3cret!"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
        for scheme in ["bearer s3cret", "BEARER s3cret", "Bearer  s3cret"] {
            h.insert(header::AUTHORIZATION, scheme.parse().unwrap());
            assert!(bearer_matches(&h, "s3cret"), "{scheme}");
        }
        h.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!bearer_matches(&h, "s3cret"));
    }
}
