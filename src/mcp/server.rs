//! The MCP server handler: the tools over the shared `Hub`, with their
//! schemas as clients see them, the resources (`resources.rs`), and the
//! protocol hooks (initialize, call_tool). How a call finds its agent is `identity.rs`; the tools, in
//! groups, are `tools/`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    Implementation, InitializeRequestParams, InitializeResult, ListResourceTemplatesResult,
    ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
    UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use super::error::{ToolFailure, bad_function_arg, from_service};
use super::identity::{Binding, Identity, clean_name};
use super::sessions::AgentSlot;
use super::types::FunctionArg;
use crate::graph::FunctionRef;
use crate::service::metrics::ToolOutcome;
use crate::service::{Hub, ServiceError};

/// Most a caller may wait for locks in one call.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

const INSTRUCTIONS: &str = "cograph holds one program shared by many agents: modules of functions, \
each a typed dataflow graph written one node per line (`%3 = add %1, %2`). The language (ops, text form, \
every edit op with a JSON example) is the resource cograph://docs/language: read it first.
How to work: program_overview lists functions; get_function shows one, and that read is the base your \
next propose_edit is checked against (or pass `base`: function -> hash). To edit alone, take a write \
lock with acquire_locks (wait_ms to queue) and release_locks after; or edit optimistically without one. \
If someone committed in between, a non-overlapping edit is merged; otherwise you get `conflict` with the \
diff and the current text to rewrite against. Every commit is verified; a failing one changes nothing.
Over HTTP without a protocol session, call register_agent first and pass its `session` to every call.";
/// One MCP connection's (or one stateless request's) view of the hub.
#[derive(Clone)]
pub struct CographServer {
    pub(crate) hub: Arc<Hub>,
    pub(crate) identity: Arc<Identity>,
}

static ROUTER: LazyLock<ToolRouter<CographServer>> = LazyLock::new(|| {
    let mut router = super::tools::router();
    for route in router.map.values_mut() {
        super::schemas::advertise(&mut route.attr);
    }
    router
});

/// Every tool as advertised in `tools/list`.
pub fn tool_definitions() -> Vec<rmcp::model::Tool> {
    ROUTER.list_all()
}

impl CographServer {
    /// A service error as the agent sees it.
    pub(crate) fn fail(&self, e: ServiceError) -> ToolFailure {
        from_service(e, &self.hub.snapshot(), &self.hub)
    }

    /// A `function` argument as the service takes it, through the one
    /// parser (`FunctionRef::parse`). A malformed reference is an
    /// invalid-params error naming the field, with the existing names
    /// closest to it (`fib` → `math::fib`).
    pub(crate) fn function_ref(
        &self,
        field: &str,
        f: &FunctionArg,
    ) -> Result<FunctionRef, ToolFailure> {
        f.to_ref().map_err(|e| {
            let suggestions = match f {
                FunctionArg::Name(text) => self.hub.snapshot().similar_names(text),
                FunctionArg::Id(_) => Vec::new(),
            };
            bad_function_arg(field, e, &suggestions)
        })
    }
}

impl CographServer {
    /// Refuses a subscription to a URI that is not a resource or whose
    /// changes are not followed.
    fn check_subscribable(&self, uri: &str, bound: bool) -> Result<(), ErrorData> {
        match super::resources::Uri::parse(uri) {
            Some(u) if u.subscribable(bound) => Ok(()),
            Some(super::resources::Uri::Mine | super::resources::Uri::Reads) => {
                Err(ErrorData::invalid_params(
                    format!(
                        "`{uri}` is about your own agent: subscribe over stdio or an HTTP session"
                    ),
                    None,
                ))
            }
            Some(_) => Err(ErrorData::invalid_params(
                format!(
                    "`{uri}` cannot be subscribed to; subscribe to cograph://function/{{name}}, cograph://locks/mine, cograph://reads or cograph://log"
                ),
                None,
            )),
            None => Err(ErrorData::resource_not_found(
                format!(
                    "no resource `{}`",
                    uri.chars().take(200).collect::<String>()
                ),
                Some(serde_json::json!({ "uri": uri })),
            )),
        }
    }
}

/// rmcp reports arguments that fail to decode as a tool result; DESIGN.md
/// asks for a JSON-RPC invalid-params error naming the field, so that a
/// malformed call is never mistaken for a tool outcome.
fn argument_error(response: &rmcp::model::CallToolResponse) -> Option<String> {
    let rmcp::model::CallToolResponse::Complete(result) = response else {
        return None;
    };
    if result.is_error != Some(true) || result.structured_content.is_some() {
        return None;
    }
    let text = result.content.first()?.as_text()?.text.clone();
    text.starts_with("failed to deserialize parameters:")
        .then(|| text.replacen("failed to deserialize parameters:", "invalid arguments:", 1))
}

#[tool_handler(router = ROUTER)]
impl ServerHandler for CographServer {
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, ErrorData> {
        let name = request.name.clone();
        if !ROUTER.has_route(&name) {
            let tools: Vec<String> = ROUTER.map.keys().map(|k| k.to_string()).collect();
            return Err(super::requests::unknown_tool(&name, &tools));
        }
        let started = std::time::Instant::now();
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        let result = ROUTER
            .call(call)
            .await
            .and_then(|response| match argument_error(&response) {
                Some(message) => {
                    tracing::debug!(tool = %name, %message, "malformed arguments");
                    Err(ErrorData::invalid_params(message, None))
                }
                None => Ok(response),
            });
        let outcome = match &result {
            Ok(rmcp::model::CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                ToolOutcome::Error
            }
            Ok(_) => ToolOutcome::Ok,
            Err(_) => ToolOutcome::Failed,
        };
        self.hub
            .metrics()
            .tool_call(&name, outcome, started.elapsed());
        result
    }

    /// rmcp hands over a `tools/call` it could not decode as a custom
    /// request; answer it as the malformed call it is.
    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, ErrorData> {
        if request.method == "tools/call" {
            return Err(super::requests::malformed_tools_call(
                request.params.as_ref(),
            ));
        }
        Err(ErrorData::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("there is no method `{}`", request.method),
            None,
        ))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        super::resources::list(&self.hub, cursor)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(super::resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        super::resources::read(&self.hub, self.bound_agent(), &request.uri)
            .await
            .map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri;
        let agent = self.bound_agent();
        self.check_subscribable(&uri, agent.is_some())?;
        let hub = self.hub.clone();
        let peer = context.peer.clone();
        let added = self.identity.subscriptions.add(uri.clone(), |uris, ct| {
            let listed = move || {
                let uris = uris.lock().unwrap_or_else(|p| p.into_inner());
                uris.iter().cloned().collect()
            };
            let send = move |uri: String| {
                let peer = peer.clone();
                async move {
                    let update = rmcp::model::ResourceUpdatedNotificationParam::new(uri);
                    peer.notify_resource_updated(update).await.is_ok()
                }
            };
            tokio::spawn(super::subscriptions::forward(hub, agent, listed, send, ct));
        });
        if !added {
            return Err(ErrorData::invalid_params(
                format!(
                    "this session already has {} subscriptions, the most it may; unsubscribe from some first",
                    super::subscriptions::MAX_SUBSCRIPTIONS
                ),
                None,
            ));
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.identity.subscriptions.remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // Stateless requests have no agent, so the per-agent resources
        // cannot be followed; the rest can.
        let uris = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|u| super::resources::Uri::parse(u).is_some_and(|p| p.subscribable(false)))
            .take(super::subscriptions::MAX_SUBSCRIPTIONS)
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let sink = context.sink().clone();
        let send = move |uri: String| {
            let sink = sink.clone();
            async move { sink.notify_resource_updated(uri).await.is_ok() }
        };
        let ct = context.request_context().ct.clone();
        super::subscriptions::forward(self.hub.clone(), None, move || uris.clone(), send, ct).await;
        Ok(())
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("cograph", env!("CARGO_PKG_VERSION"))
                .with_title("cograph shared program graph"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let client = clean_name(&request.client_info.name);
        match self.identity.binding {
            Binding::OnInitialize => {
                let session = self.hub.connect(&client, self.identity.transport);
                // A second initialize on one session keeps the first agent.
                let _ = self.identity.session.set(session);
                if let (Some(agent), Some(slot)) =
                    (self.bound_agent(), context.extensions.get::<AgentSlot>())
                {
                    slot.bind(agent);
                }
            }
            Binding::Connection => {
                if let Some(agent) = self.bound_agent() {
                    self.adopt_client_name(agent, &client);
                }
            }
        }
        self.negotiate_initialize(&request)
    }
}
