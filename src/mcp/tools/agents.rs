//! Tools about agents: who you are (register_agent) and who else is here (list_agents).

use super::*;

#[tool_router(router = agents_tools, vis = "pub(super)")]
impl CographServer {
    #[tool(
        description = "Set your name and purpose; returns your secret `session` (COGRAPH_AGENT for shell commands). Over HTTP without a protocol session this creates your agent: pass it to every call.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RegisterAgentResult>(),
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn register_agent(
        &self,
        Parameters(Checked(args)): Parameters<Checked<RegisterAgentArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<RegisterAgentResult> {
        check_text_arg("name", &args.name, 100)?;
        check_text_arg("purpose", &args.purpose, 500)?;
        let existing = match &args.session {
            Some(_) => self.caller(&args.session, &ctx)?,
            None => self.bound_agent(),
        };
        let (id, session) = match existing {
            Some(id) => {
                // Naming this connection's own agent stops it taking the
                // client's name later; naming another (by handle) does not.
                if args.name.is_some() && Some(id) == self.bound_agent() {
                    self.mark_named();
                }
                self.hub
                    .update_agent(id, args.name.clone(), args.purpose.clone().map(Some));
                (id, self.hub.session_handle(id))
            }
            None => {
                let name = args
                    .name
                    .clone()
                    .or_else(|| {
                        ctx.meta
                            .client_info()
                            .map(|c| super::super::identity::clean_name(&c.name))
                    })
                    .unwrap_or_else(|| "agent".into());
                let (id, handle) = self
                    .hub
                    .register_stateless(name, args.purpose.clone())
                    .map_err(|e| self.fail(e))?;
                tracing::info!(agent = %id, "stateless agent registered");
                (id, Some(handle))
            }
        };
        let info = self
            .hub
            .agent(id)
            .ok_or_else(|| ToolFailure::internal("agent vanished while registering"))?;
        Ok(Out(RegisterAgentResult {
            agent_id: id.to_string(),
            name: info.name,
            purpose: info.purpose,
            transport: convert::transport(info.transport),
            session: session.map(|h| h.expose().to_string()),
        }))
    }

    #[tool(
        description = "List the connected agents: id, name, purpose, transport, locks held.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ListAgentsResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_agents(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ListAgentsArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ListAgentsResult> {
        let me = self.caller(&args.session, &ctx)?;
        let agents = self
            .hub
            .list_agents()
            .into_iter()
            .map(|a| AgentView {
                agent_id: a.id.to_string(),
                idle_s: a.idle_for().as_secs(),
                locks_held: self.hub.locks_held_by(a.id).len(),
                you: Some(a.id) == me,
                name: a.name,
                purpose: a.purpose,
                transport: convert::transport(a.transport),
                connected_since: views::rfc3339(a.connected_since),
                last_active: views::rfc3339(a.last_active),
            })
            .collect();
        Ok(Out(ListAgentsResult { agents }))
    }
}
