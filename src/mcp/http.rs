//! Streamable HTTP: `/mcp` (rmcp's service, one handler per protocol
//! session or per stateless request), `/healthz`, and `/status` for
//! `cograph status`.
//!
//! Security: `Origin` is validated on every route (a foreign origin gets
//! 403); `Host` is limited to loopback names when bound to loopback; a
//! bearer token, when configured, is required on everything but `/healthz`
//! (401 without it). Refusing to bind a non-loopback address without a
//! token is the caller's job (`cograph serve`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::server::CographServer;
use super::sessions::AgentSessions;
use super::views;
use crate::service::Hub;

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
            stream_grace: super::delivery::STREAM_GRACE,
        }
    }
}

const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    config: Arc<HttpConfig>,
}

/// The axum app: `/mcp`, `/healthz`, `/status`.
pub fn router(hub: Arc<Hub>, config: HttpConfig, shutdown: CancellationToken) -> Router {
    let mut http = StreamableHttpServerConfig::default()
        .with_allowed_origins(LOOPBACK_ORIGINS)
        .enforce_origin_validation()
        .with_cancellation_token(shutdown.clone());
    if !config.loopback {
        http = if config.allowed_hosts.is_empty() {
            http.disable_allowed_hosts()
        } else {
            let mut hosts = config.allowed_hosts.clone();
            hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
            http.with_allowed_hosts(hosts)
        };
    }
    let factory_hub = hub.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(CographServer::for_http(factory_hub.clone())),
        AgentSessions::start(
            LocalSessionManager::default(),
            hub.clone(),
            config.session_idle,
            config.stream_grace,
            shutdown.clone(),
        ),
        http,
    );
    let state = AppState {
        hub,
        config: Arc::new(config),
    };
    Router::new()
        .route("/healthz", axum::routing::get(healthz))
        .route("/status", axum::routing::get(status))
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Serves until `shutdown` fires.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    config: HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(hub, config, shutdown.child_token());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// The host name of a `host[:port]` authority, without brackets for IPv6.
fn host_name(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    }
}

fn is_loopback_name(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Returns true if and only if `origin` is a loopback origin.
fn loopback_origin(origin: &str) -> bool {
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| is_loopback_name(host_name(rest)))
}

/// Returns true if and only if the `Host` header may reach this server: a
/// loopback name on a loopback listener (so a page that rebinds its own
/// name to 127.0.0.1 is refused), else one of `allowed_hosts` when any are
/// configured. rmcp checks `/mcp` the same way; this covers every path.
fn host_allowed(host: Option<&str>, config: &HttpConfig) -> bool {
    let Some(name) = host.map(host_name) else {
        return !config.loopback && config.allowed_hosts.is_empty();
    };
    if config.loopback {
        is_loopback_name(name)
    } else {
        config.allowed_hosts.is_empty()
            || is_loopback_name(name)
            || config.allowed_hosts.iter().any(|h| host_name(h) == name)
    }
}

async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host_allowed(host, &state.config) {
        tracing::warn!(host = ?host, path = %request.uri().path(), "refused a foreign Host");
        return (
            StatusCode::FORBIDDEN,
            "forbidden: the Host is not allowed\n",
        )
            .into_response();
    }
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
    if request.uri().path() != "/healthz"
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
    next.run(request).await
}

/// Compares in time independent of where the first difference is.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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
                function: views::function_name(&program, l.function),
                holders: l
                    .holders
                    .iter()
                    .map(|h| {
                        format!(
                            "{} {} ({}) until {}",
                            views::mode(h.mode).as_str(),
                            hub.agent_name(h.agent),
                            h.agent,
                            views::rfc3339(h.expires_at)
                        )
                    })
                    .collect(),
                waiters: l
                    .waiters
                    .iter()
                    .map(|w| {
                        format!(
                            "{}. {} {}",
                            w.position,
                            views::mode(w.mode).as_str(),
                            hub.agent_name(w.agent)
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(status_report(&state.hub))
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
        ] {
            assert!(loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://evil.com",
            "http://localhost.evil.com",
            "null",
            "",
            "http://127.0.0.2",
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
    }
}
