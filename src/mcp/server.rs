//! The MCP server handler: the twelve tools over the shared `Hub`, and how a
//! call finds its agent.
//!
//! Identity (DESIGN.md section 7):
//! - stdio (and in-process): the connection is the agent, created when the
//!   handler is and ended when it drops;
//! - HTTP with a protocol session (clients on 2025-11-25 or older): the
//!   agent is created at `initialize`; rmcp keeps one handler per session,
//!   and the agent ends when the session does (DELETE, idle timeout,
//!   shutdown; see `sessions.rs`) or at the latest when the handler drops;
//! - HTTP without a protocol session (2026-07-28): the handler lives for
//!   one request and has no agent; `register_agent` creates one and
//!   returns a secret `session` handle that later calls pass as `session`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    Implementation, InitializeRequestParams, InitializeResult, ProgressNotificationParam,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};

use super::error::{ToolFailure, bad_arg, from_acquire, from_service};
use super::sessions::AgentSlot;
use super::summary::Out;
use super::types::*;
use super::{convert, views};
use crate::graph::{ContentHash, Program, Revision};
use crate::locks::{AgentId, LockMode, Transport};
use crate::service::{AgentSession, EditRequest, Hub, OnConflict, VersionSel};

/// Most a caller may wait for locks in one call.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

const INSTRUCTIONS: &str = "cograph holds one program shared by many agents: modules of functions, \
each a typed dataflow graph of `%id = op inputs` nodes. Read a function with get_function: that read \
is the base your next propose_edit is checked against (a stale base gets a `conflict` with the diff, \
or merges automatically when the changes do not overlap). Every commit is verified. When others edit \
the same function, take a write lock with acquire_locks (wait_ms to queue) and release_locks after. \
Over HTTP without a protocol session, call register_agent first and pass its `session` to every call.";

type ToolResult<T> = Result<Out<T>, ToolFailure>;

/// How this handler's agent comes to be.
enum Binding {
    /// Created with the handler (stdio, in-process).
    Connection,
    /// Created at `initialize` (HTTP with a protocol session).
    OnInitialize,
}

struct Identity {
    binding: Binding,
    transport: Transport,
    session: OnceLock<AgentSession>,
    /// The agent chose its name (register_agent): do not overwrite it with
    /// the client's name.
    named: AtomicBool,
}

/// One MCP connection's (or one stateless request's) view of the hub.
#[derive(Clone)]
pub struct CographServer {
    hub: Arc<Hub>,
    identity: Arc<Identity>,
}

static ROUTER: LazyLock<ToolRouter<CographServer>> = LazyLock::new(|| {
    use super::schemas::{admit_errors, drop_nonstandard_formats};
    let mut router = CographServer::tool_router();
    for route in router.map.values_mut() {
        let tool = &mut route.attr;
        let mut input = (*tool.input_schema).clone();
        drop_nonstandard_formats(&mut input);
        tool.input_schema = Arc::new(input);
        if let Some(success) = &tool.output_schema {
            let mut output = admit_errors(success);
            drop_nonstandard_formats(&mut output);
            tool.output_schema = Some(Arc::new(output));
        }
    }
    router
});

/// Every tool as advertised in `tools/list`.
pub fn tool_definitions() -> Vec<rmcp::model::Tool> {
    ROUTER.list_all()
}

impl CographServer {
    /// A handler whose connection is one agent (stdio, in-process).
    pub fn for_connection(hub: Arc<Hub>, transport: Transport, name: &str) -> CographServer {
        let session = hub.connect(name, transport);
        let identity = Identity {
            binding: Binding::Connection,
            transport,
            session: OnceLock::new(),
            named: AtomicBool::new(false),
        };
        let _ = identity.session.set(session);
        CographServer {
            hub,
            identity: Arc::new(identity),
        }
    }

    /// A handler for HTTP: the agent appears at `initialize` if the client
    /// opens a protocol session; stateless requests have none.
    pub fn for_http(hub: Arc<Hub>) -> CographServer {
        CographServer {
            hub,
            identity: Arc::new(Identity {
                binding: Binding::OnInitialize,
                transport: Transport::HttpSession,
                session: OnceLock::new(),
                named: AtomicBool::new(false),
            }),
        }
    }

    /// The agent bound to this connection, if any.
    pub fn bound_agent(&self) -> Option<AgentId> {
        self.identity.session.get().map(AgentSession::id)
    }

    /// Names an agent after its client unless it chose a name itself.
    fn adopt_client_name(&self, agent: AgentId, client: &str) {
        if !self.identity.named.load(Ordering::Relaxed) && !client.is_empty() {
            self.hub
                .agents()
                .update(agent, Some(clean_name(client)), None);
        }
    }

    /// The caller's agent: from `session` if given, else this connection's.
    fn caller(
        &self,
        session: &SessionArg,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Option<AgentId>, ToolFailure> {
        if let Some(handle) = session {
            return match self.hub.agents().resolve(handle) {
                Some(id) => Ok(Some(id)),
                None => Err(ToolFailure::new(
                    "session_required",
                    "the `session` handle is unknown or expired",
                    "call register_agent again (without `session`) and use the new handle",
                )),
            };
        }
        let agent = self.bound_agent();
        if let Some(agent) = agent
            && let Some(info) = ctx.meta.client_info()
        {
            self.adopt_client_name(agent, &info.name);
        }
        Ok(agent)
    }

    fn require_caller(
        &self,
        session: &SessionArg,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<AgentId, ToolFailure> {
        self.caller(session, ctx)?
            .ok_or_else(ToolFailure::session_required)
    }

    fn fail(&self, e: crate::service::ServiceError) -> ToolFailure {
        from_service(e, &self.hub.snapshot(), self.hub.agents())
    }

    fn function_summary_holders(
        &self,
        program: &Program,
    ) -> std::collections::HashMap<u64, Vec<String>> {
        let mut out: std::collections::HashMap<u64, Vec<String>> = std::collections::HashMap::new();
        for view in self.hub.locks().status() {
            if program.get(view.function).is_some() {
                out.insert(
                    view.function.0,
                    view.holders
                        .iter()
                        .map(|h| {
                            format!(
                                "{} ({})",
                                views::agent_name(self.hub.agents(), h.agent),
                                views::mode(h.mode)
                            )
                        })
                        .collect(),
                );
            }
        }
        out
    }
}

fn clean_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    if cleaned.trim().is_empty() {
        "agent".into()
    } else {
        cleaned
    }
}

fn check_text_arg(field: &str, value: &Option<String>, max: usize) -> Result<(), ToolFailure> {
    if let Some(v) = value
        && (v.chars().count() > max || v.chars().any(char::is_control))
    {
        return Err(bad_arg(
            field,
            format!("at most {max} characters, without control characters"),
        ));
    }
    Ok(())
}

#[tool_router(vis = "pub(crate)")]
impl CographServer {
    #[tool(
        description = "Set your display name and purpose. Over HTTP without a protocol session it creates your agent and returns a secret `session` to pass to every later call.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RegisterAgentResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn register_agent(
        &self,
        Parameters(Checked(args)): Parameters<Checked<RegisterAgentArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<RegisterAgentResult> {
        check_text_arg("name", &args.name, 100)?;
        check_text_arg("purpose", &args.purpose, 500)?;
        let agents = self.hub.agents();
        let existing = match &args.session {
            Some(_) => self.caller(&args.session, &ctx)?,
            None => self.bound_agent(),
        };
        let (id, session) = match existing {
            Some(id) => {
                // Naming this connection's own agent stops it taking the
                // client's name later; naming another (by handle) does not.
                if args.name.is_some() && Some(id) == self.bound_agent() {
                    self.identity.named.store(true, Ordering::Relaxed);
                }
                agents.update(id, args.name.clone(), args.purpose.clone().map(Some));
                (id, None)
            }
            None => {
                let name = args
                    .name
                    .clone()
                    .or_else(|| ctx.meta.client_info().map(|c| clean_name(&c.name)))
                    .unwrap_or_else(|| "agent".into());
                let (id, handle) = agents.register_stateless(name, args.purpose.clone());
                tracing::info!(agent = %id, "stateless agent registered");
                (id, Some(handle.expose().to_string()))
            }
        };
        let info = agents
            .get(id)
            .ok_or_else(|| ToolFailure::internal("agent vanished while registering"))?;
        Ok(Out(RegisterAgentResult {
            agent_id: id.to_string(),
            name: info.name,
            purpose: info.purpose,
            transport: convert::transport(info.transport),
            session,
        }))
    }

    #[tool(
        description = "List the connected agents: id, name, purpose, transport, locks held.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ListAgentsResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn list_agents(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ListAgentsArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ListAgentsResult> {
        let me = self.caller(&args.session, &ctx)?;
        let agents = self
            .hub
            .agents()
            .list()
            .into_iter()
            .map(|a| AgentView {
                agent_id: a.id.to_string(),
                locks_held: self.hub.locks().held_by(a.id).len(),
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

    #[tool(
        description = "The program at a glance: revision, root hash, and functions (id, name, signature, hash, size, lock holders), paginated by name.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ProgramOverviewResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn program_overview(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ProgramOverviewArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ProgramOverviewResult> {
        self.caller(&args.session, &ctx)?;
        let limit = match args.limit {
            None => 200,
            Some(n @ 1..=1000) => n as usize,
            Some(n) => return Err(bad_arg("limit", format!("{n} is not between 1 and 1000"))),
        };
        let program = self.hub.snapshot();
        let after = match &args.cursor {
            None => None,
            Some(c) => Some(
                crate::graph::QualifiedName::new(c)
                    .map_err(|_| bad_arg("cursor", "not a cursor from program_overview"))?,
            ),
        };
        let prefix = args.module.as_ref().map(|m| format!("{m}::"));
        let holders = self.function_summary_holders(&program);
        let mut functions = Vec::new();
        let mut next_cursor = None;
        for (name, id) in program.names_from(after.as_ref()) {
            if let Some(p) = &prefix
                && !name.as_str().starts_with(p.as_str())
            {
                continue;
            }
            if functions.len() == limit {
                next_cursor = functions.last().map(|f: &FunctionSummary| f.name.clone());
                break;
            }
            let e = program.get(id).expect("indexed");
            functions.push(FunctionSummary {
                id: id.0,
                name: name.to_string(),
                signature: e.function.signature.to_string(),
                hash: e.hash.to_hex(),
                revision: e.revision.0,
                n_nodes: e.function.nodes.len(),
                doc: e
                    .function
                    .doc
                    .as_ref()
                    .and_then(|d| d.lines().next())
                    .map(str::to_string),
                locked_by: holders.get(&id.0).cloned().unwrap_or_default(),
            });
        }
        Ok(Out(ProgramOverviewResult {
            revision: program.revision().0,
            root_hash: program.root_hash().to_hex(),
            n_functions: program.len(),
            functions,
            next_cursor,
        }))
    }

    #[tool(
        description = "Read one function (text form by default). The read is your base: your next propose_edit on it is checked against this version.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<GetFunctionResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_function(
        &self,
        Parameters(Checked(args)): Parameters<Checked<GetFunctionArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<GetFunctionResult> {
        let me = self.caller(&args.session, &ctx)?;
        let function = args.function.as_ref_string();
        let read = match me {
            Some(agent) => self
                .hub
                .read_function(agent, &function)
                .map_err(|e| self.fail(e))?,
            None => {
                let program = self.hub.snapshot();
                let id = Hub::resolve_in(&program, &function).map_err(|e| self.fail(e))?;
                let entry = program.get(id).expect("resolved").clone();
                crate::service::FunctionRead { id, entry, program }
            }
        };
        let f = &read.entry.function;
        let namer = read.program.namer();
        let locked_by = self
            .hub
            .locks()
            .holders(read.id)
            .iter()
            .map(|h| views::holder(self.hub.agents(), h))
            .collect();
        Ok(Out(GetFunctionResult {
            id: read.id.0,
            name: f.name.to_string(),
            hash: read.entry.hash.to_hex(),
            revision: read.entry.revision.0,
            signature: f.signature.to_string(),
            doc: f.doc.clone(),
            text: (args.format == Format::Text).then(|| crate::graph::render_function(f, &namer)),
            nodes: (args.format == Format::Json).then(|| views::nodes(&read.program, f)),
            next_node: format!("%{}", f.next_node),
            read_recorded: me.is_some(),
            locked_by,
        }))
    }

    #[tool(
        description = "Take read/write locks on functions, all or none. wait_ms queues you (FIFO) until granted; denials name the holders and your queue position. Leases expire (ttl_ms, default 30 min); no heartbeat needed.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<AcquireLocksResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn acquire_locks(
        &self,
        Parameters(Checked(args)): Parameters<Checked<AcquireLocksArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<AcquireLocksResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.agents().begin_call(agent);
        if args.locks.is_empty() {
            return Err(bad_arg("locks", "give at least one {function, mode}"));
        }
        if args.locks.len() > 1000 {
            return Err(bad_arg("locks", "at most 1000 functions per request"));
        }
        check_text_arg("purpose", &args.purpose, 500)?;
        let wait = Duration::from_millis(args.wait_ms.unwrap_or(0));
        if wait > MAX_WAIT {
            return Err(bad_arg(
                "wait_ms",
                format!("at most {}", MAX_WAIT.as_millis()),
            ));
        }
        let ttl = match args.ttl_ms {
            Some(0) => return Err(bad_arg("ttl_ms", "must be above 0")),
            Some(ms) => Some(Duration::from_millis(ms)),
            None => None,
        };
        let targets: Vec<(String, LockMode)> = args
            .locks
            .iter()
            .map(|l| {
                (
                    l.function.as_ref_string(),
                    match l.mode {
                        ModeArg::Read => LockMode::Read,
                        ModeArg::Write => LockMode::Write,
                    },
                )
            })
            .collect();
        let progress = match ctx.meta.get_progress_token() {
            Some(token) => {
                let (tx, mut rx) =
                    tokio::sync::mpsc::unbounded_channel::<crate::locks::WaitProgress>();
                let peer = ctx.peer.clone();
                let hub = self.hub.clone();
                let total = wait.as_millis() as f64;
                tokio::spawn(async move {
                    // MCP wants progress to rise with every notification; two
                    // reports within one microsecond send only the first.
                    let mut last_sent = -1.0_f64;
                    while let Some(p) = rx.recv().await {
                        let progress = p.waited.as_secs_f64() * 1000.0;
                        if progress <= last_sent {
                            continue;
                        }
                        last_sent = progress;
                        let program = hub.snapshot();
                        let parts: Vec<String> = p
                            .blocked
                            .iter()
                            .map(|b| {
                                let who: Vec<String> = b
                                    .holders
                                    .iter()
                                    .map(|h| views::agent_name(hub.agents(), h.agent))
                                    .collect();
                                format!(
                                    "{}: position {} of {}{}",
                                    views::function_name(&program, b.function),
                                    b.queue_position,
                                    b.queue_length,
                                    if who.is_empty() {
                                        String::new()
                                    } else {
                                        format!(", held by {}", who.join(", "))
                                    }
                                )
                            })
                            .collect();
                        let param = ProgressNotificationParam::new(token.clone(), progress)
                            .with_total(total)
                            .with_message(format!("waiting: {}", parts.join("; ")));
                        if peer.notify_progress(param).await.is_err() {
                            break;
                        }
                    }
                });
                Some(tx)
            }
            None => None,
        };
        let started = Instant::now();
        let grant = self
            .hub
            .acquire(
                agent,
                &targets,
                wait,
                ttl,
                args.purpose.clone(),
                &ctx.ct,
                progress,
            )
            .await
            .map_err(|e| match e {
                crate::service::ServiceError::Lock(e) => {
                    from_acquire(e, &self.hub.snapshot(), self.hub.agents())
                }
                other => self.fail(other),
            })?;
        let program = self.hub.snapshot();
        Ok(Out(AcquireLocksResult {
            granted: grant
                .locks
                .iter()
                .map(|l| views::granted(&program, l))
                .collect(),
            fencing_token: grant.token.0,
            waited_ms: started.elapsed().as_millis() as u64,
        }))
    }

    #[tool(
        description = "Release the named locks, or all of yours when `functions` is omitted.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ReleaseLocksResult>(),
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn release_locks(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ReleaseLocksArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ReleaseLocksResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.agents().begin_call(agent);
        let names: Option<Vec<String>> = args
            .functions
            .as_ref()
            .map(|fs| fs.iter().map(FunctionArg::as_ref_string).collect());
        let released = self
            .hub
            .release(agent, names.as_deref())
            .map_err(|e| self.fail(e))?;
        let program = self.hub.snapshot();
        Ok(Out(ReleaseLocksResult {
            released: released
                .iter()
                .map(|(f, m)| ReleasedView {
                    function_id: f.0,
                    function: views::function_name(&program, *f),
                    mode: views::mode(*m),
                })
                .collect(),
            still_held: self
                .hub
                .locks()
                .held_by(agent)
                .iter()
                .map(|l| views::granted(&program, l))
                .collect(),
        }))
    }

    #[tool(
        description = "Every lock now: holders (agent, mode, purpose, expiry) and FIFO waiters, optionally for one function.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<LockStatusResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn lock_status(
        &self,
        Parameters(Checked(args)): Parameters<Checked<LockStatusArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<LockStatusResult> {
        let me = self.caller(&args.session, &ctx)?;
        let program = self.hub.snapshot();
        let only = match &args.function {
            Some(f) => {
                Some(Hub::resolve_in(&program, &f.as_ref_string()).map_err(|e| self.fail(e))?)
            }
            None => None,
        };
        let agents = self.hub.agents();
        let locks = self
            .hub
            .locks()
            .status()
            .into_iter()
            .filter(|v| only.is_none_or(|f| f == v.function))
            .map(|v| LockView {
                function_id: v.function.0,
                function: views::function_name(&program, v.function),
                holders: v.holders.iter().map(|h| views::holder(agents, h)).collect(),
                waiters: v.waiters.iter().map(|w| views::waiter(agents, w)).collect(),
            })
            .collect();
        let yours = me
            .map(|a| {
                self.hub
                    .locks()
                    .held_by(a)
                    .iter()
                    .map(|l| views::granted(&program, l))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Out(LockStatusResult { locks, yours }))
    }

    #[tool(
        description = "Apply edit ops atomically (across functions). Checked against your last read of each function: stale edits merge when they do not overlap, else get a `conflict` with the diff. Verified before commit; durable on success.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ProposeEditResult>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn propose_edit(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ProposeEditArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ProposeEditResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.agents().begin_call(agent);
        check_text_arg("purpose", &args.purpose, 500)?;
        if args.ops.is_empty() {
            return Err(bad_arg("ops", "give at least one edit op"));
        }
        let mut ops = Vec::with_capacity(args.ops.len());
        for (idx, op) in args.ops.iter().enumerate() {
            ops.push(convert::edit_op(idx, op)?);
        }
        let mut base = Vec::new();
        for (function, hash) in args.base.iter().flatten() {
            let hash = ContentHash::from_hex(hash).ok_or_else(|| {
                bad_arg(
                    &format!("base.{function}"),
                    "expected a hash of 64 hex characters",
                )
            })?;
            base.push((function.clone(), hash));
        }
        let request = EditRequest {
            ops,
            base,
            on_conflict: match args.on_conflict {
                OnConflictArg::Merge => OnConflict::Merge,
                OnConflictArg::Reject => OnConflict::Reject,
            },
            dry_run: args.dry_run,
            purpose: args.purpose.clone(),
        };
        let out = self
            .hub
            .propose(agent, request)
            .await
            .map_err(|e| self.fail(e))?;
        let status = match (out.dry_run, out.revision) {
            (true, _) => "dry_run",
            (false, Some(_)) => "committed",
            (false, None) => "unchanged",
        };
        Ok(Out(ProposeEditResult {
            status: status.into(),
            revision: out.revision.map(|r| r.0),
            functions: out
                .functions
                .iter()
                .map(|f| FunctionOutcomeView {
                    function_id: f.id.0,
                    function: f.name.to_string(),
                    before: f.before.map(|h| h.to_hex()),
                    after: f.after.map(|h| h.to_hex()),
                    merged: f.merged,
                })
                .collect(),
            verified: out.verified.iter().map(|(_, n)| n.to_string()).collect(),
            aliases: out
                .aliases
                .iter()
                .map(|(alias, t)| {
                    (
                        alias.clone(),
                        AliasView {
                            function_id: t.function.0,
                            node: t.node.to_string(),
                        },
                    )
                })
                .collect(),
        }))
    }

    #[tool(
        description = "Verify the whole program now (it always verifies after each commit; this is the safety net).",
        output_schema = rmcp::handler::server::tool::schema_for_output::<VerifyAllResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn verify_all(
        &self,
        Parameters(Checked(args)): Parameters<Checked<VerifyAllArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<VerifyAllResult> {
        self.caller(&args.session, &ctx)?;
        let hub = self.hub.clone();
        let (program, diagnostics) = tokio::task::spawn_blocking(move || hub.verify_all())
            .await
            .map_err(|e| ToolFailure::internal(format!("verification task: {e}")))?;
        Ok(Out(VerifyAllResult {
            ok: diagnostics.is_empty(),
            revision: program.revision().0,
            root_hash: program.root_hash().to_hex(),
            n_functions: program.len(),
            n_nodes: program.n_nodes(),
            diagnostics: diagnostics.iter().map(views::diagnostic).collect(),
        }))
    }

    #[tool(
        description = "Run a function on arguments (one per parameter) and return its value; runtime errors (division_by_zero, overflow, fuel_exhausted, stack_overflow) are results.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RunFunctionResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn run_function(
        &self,
        Parameters(Checked(args)): Parameters<Checked<RunFunctionArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<RunFunctionResult> {
        self.caller(&args.session, &ctx)?;
        let program = self.hub.snapshot();
        let function = args.function.as_ref_string();
        let id = Hub::resolve_in(&program, &function).map_err(|e| self.fail(e))?;
        let signature = program
            .get(id)
            .expect("resolved")
            .function
            .signature
            .clone();
        if args.args.len() != signature.params.len() {
            return Err(self.fail(crate::service::ServiceError::Runtime(
                crate::eval::RuntimeError::BadArgument(format!(
                    "`{function}` {signature} takes {} argument{}, got {}",
                    signature.params.len(),
                    if signature.params.len() == 1 { "" } else { "s" },
                    args.args.len()
                )),
            )));
        }
        let mut values = Vec::with_capacity(args.args.len());
        for (idx, (v, p)) in args.args.iter().zip(&signature.params).enumerate() {
            // Well-formed JSON of the wrong type for the parameter is, like a
            // wrong count, a `bad_argument` the agent can act on.
            let value = views::value_from_json(p.ty, v).map_err(|e| {
                self.fail(crate::service::ServiceError::Runtime(
                    crate::eval::RuntimeError::BadArgument(format!(
                        "args[{idx}] (`{}`): {e}",
                        p.name
                    )),
                ))
            })?;
            values.push(value);
        }
        let mut budget = self.hub.config().run_budget;
        if let Some(fuel) = args.fuel {
            budget.fuel = budget.fuel.min(fuel.max(1));
        }
        let hub = self.hub.clone();
        let (id, outcome) =
            tokio::task::spawn_blocking(move || hub.run_function(&function, &values, budget))
                .await
                .map_err(|e| ToolFailure::internal(format!("run task: {e}")))?
                .map_err(|e| self.fail(e))?;
        Ok(Out(RunFunctionResult {
            function_id: id.0,
            function: views::function_name(&program, id),
            value: views::value_json(&outcome.value),
            literal: outcome.value.literal(),
            ty: outcome.value.ty().name().into(),
            steps: outcome.steps,
        }))
    }

    #[tool(
        description = "The commit log, newest first: revision, time, agent, summary, functions changed (hashes before/after); optionally for one function.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<HistoryResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn history(
        &self,
        Parameters(Checked(args)): Parameters<Checked<HistoryArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<HistoryResult> {
        self.caller(&args.session, &ctx)?;
        let limit = match args.limit {
            None => 20,
            Some(n @ 1..=200) => n as usize,
            Some(n) => return Err(bad_arg("limit", format!("{n} is not between 1 and 200"))),
        };
        let function = args.function.as_ref().map(FunctionArg::as_ref_string);
        let commits = self
            .hub
            .history(
                function.as_deref(),
                args.before_revision.map(Revision),
                limit,
            )
            .await
            .map_err(|e| self.fail(e))?;
        let next_before_revision = (commits.len() == limit)
            .then(|| commits.last().map(|c| c.revision.0))
            .flatten();
        Ok(Out(HistoryResult {
            commits: commits.iter().map(views::commit).collect(),
            next_before_revision,
        }))
    }

    #[tool(
        description = "Structured diff between two versions of a function (nodes and edges added, removed, changed; signature). Default: your last read to now.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<DiffResult>(),
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn diff(
        &self,
        Parameters(Checked(args)): Parameters<Checked<DiffArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<DiffResult> {
        let me = self.caller(&args.session, &ctx)?;
        let function = args.function.as_ref_string();
        let version = |field: &str, v: &VersionArg| -> Result<VersionSel, ToolFailure> {
            match v {
                VersionArg::Revision(r) => Ok(VersionSel::Revision(Revision(*r))),
                VersionArg::Hash(s) => {
                    if let Some(r) = s.strip_prefix('r').and_then(|d| d.parse().ok()) {
                        return Ok(VersionSel::Revision(Revision(r)));
                    }
                    ContentHash::from_hex(s)
                        .map(VersionSel::Hash)
                        .ok_or_else(|| {
                            bad_arg(
                                field,
                                "expected a revision number or a hash of 64 hex characters",
                            )
                        })
                }
            }
        };
        let program = self.hub.snapshot();
        let from = match &args.from {
            Some(v) => version("from", v)?,
            None => {
                let id = program.lookup_str(&function);
                let read = match (me, id) {
                    (Some(agent), Some(id)) => self.hub.last_read(agent, id),
                    _ => None,
                };
                match (read, id.and_then(|id| program.get(id))) {
                    (Some(r), _) => VersionSel::Hash(r.hash),
                    (None, Some(e)) => {
                        VersionSel::Revision(Revision(e.revision.0.saturating_sub(1)))
                    }
                    (None, None) => {
                        return Err(ToolFailure::new(
                            "not_found",
                            format!(
                                "`{}` has no current version to diff from",
                                args.function.as_ref_string()
                            ),
                            "give `from` (a hash or revision from history) to diff a deleted function",
                        ));
                    }
                }
            }
        };
        let to = match &args.to {
            Some(v) => version("to", v)?,
            None => VersionSel::Current,
        };
        let d = self
            .hub
            .diff(&function, from, to)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Out(DiffResult {
            function_id: d.function.0,
            function: views::function_name(&d.program, d.function),
            from: d.from.to_hex(),
            to: d.to.to_hex(),
            diff: views::diff(&d.program, &d.diff),
        }))
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
