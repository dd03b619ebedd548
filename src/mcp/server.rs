//! The MCP server handler: the tools over the shared `Hub`, with their
//! schemas as clients see them, and the protocol hooks (initialize,
//! call_tool). How a call finds its agent is `identity.rs`; the tools, in
//! groups, are `tools/`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    Implementation, InitializeRequestParams, InitializeResult, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};

use super::error::{ToolFailure, from_service};
use super::identity::{Binding, Identity, clean_name};
use super::sessions::AgentSlot;
use crate::service::{Hub, ServiceError};

/// Most a caller may wait for locks in one call.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

const INSTRUCTIONS: &str = "cograph holds one program shared by many agents: modules of functions, \
each a typed dataflow graph of `%id = op inputs` nodes. Read a function with get_function: that read \
is the base your next propose_edit is checked against (a stale base gets a `conflict` with the diff, \
or merges automatically when the changes do not overlap). Every commit is verified. When others edit \
the same function, take a write lock with acquire_locks (wait_ms to queue) and release_locks after. \
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
        let call = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        let response = ROUTER.call(call).await?;
        if let Some(message) = argument_error(&response) {
            tracing::debug!(tool = %name, %message, "malformed arguments");
            return Err(ErrorData::invalid_params(message, None));
        }
        Ok(response)
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
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
