//! Lock tools: acquire (with waits, progress and cancellation), release,
//! status. The lock rules live in `locks`; these tools only convert.

use rmcp::model::{ProgressNotificationParam, ProgressToken};

use super::*;
use crate::locks::{
    FencingToken, LockTarget, ModuleName, Resource, ResourceName, ResourcePath, WaitProgress,
};
use crate::mcp::delivery::Delivery;
use crate::service::{LockSpec, ResourceRef};

#[tool_router(router = locks_tools, vis = "pub(super)")]
impl CographServer {
    #[tool(
        description = "Lock functions, modules, repository paths, named resources or semaphore permits, all or none. wait_ms queues you (FIFO); a denial names holders and your place. Leases expire (ttl_ms).",
        output_schema = rmcp::handler::server::tool::schema_for_output::<AcquireLocksResult>(),
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn acquire_locks(
        &self,
        Parameters(Checked(args)): Parameters<Checked<AcquireLocksArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<AcquireLocksResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.begin_call(agent);
        if args.locks.is_empty() {
            return Err(bad_arg(
                "locks",
                "give at least one, e.g. {\"function\": \"m::f\", \"mode\": \"write\"}",
            ));
        }
        if args.locks.len() > 1000 {
            return Err(bad_arg("locks", "at most 1000 locks per request"));
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
        let mut targets = Vec::with_capacity(args.locks.len());
        for (idx, l) in args.locks.iter().enumerate() {
            targets.push(self.lock_spec(idx, l)?);
        }
        // Over a protocol session, a closed response stream that is not
        // resumed within the grace period abandons this call: the wait is
        // cancelled, and a grant that was not delivered is given back.
        let delivery = ctx.extensions.get::<Delivery>().cloned();
        if let Some(d) = &delivery {
            let ct = ctx.ct.clone();
            d.on_lost(move || ct.cancel());
        }
        let progress = ctx
            .meta
            .get_progress_token()
            .map(|token| forward_progress(self.hub.clone(), ctx.peer.clone(), token, wait));
        let started = Instant::now();
        let grant = self
            .hub
            .acquire_once(
                args.request_id.as_deref(),
                agent,
                &targets,
                wait,
                ttl,
                args.purpose.clone(),
                &ctx.ct,
                progress,
            )
            .await
            .map_err(|e| self.fail(e))?;
        if let Some(d) = &delivery {
            let (hub, grant) = (self.hub.clone(), grant.clone());
            d.on_lost(move || hub.give_back(agent, &grant));
        }
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
        description = "Release the named locks, or all of yours when `functions` and `resources` are omitted.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ReleaseLocksResult>(),
        annotations(destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn release_locks(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ReleaseLocksArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ReleaseLocksResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.begin_call(agent);
        let mut named = Vec::new();
        for (idx, f) in args.functions.iter().flatten().enumerate() {
            let function = self.function_ref(&format!("functions[{idx}]"), f)?;
            named.push(ResourceRef::Function(function));
        }
        for (idx, text) in args.resources.iter().flatten().enumerate() {
            let r = ResourceRef::parse(text)
                .map_err(|e| bad_arg(&format!("resources[{idx}]"), e.to_string()))?;
            named.push(r);
        }
        let all = args.functions.is_none() && args.resources.is_none();
        let released = self
            .hub
            .release(agent, (!all).then_some(named.as_slice()))
            .map_err(|e| self.fail(e))?;
        let program = self.hub.snapshot();
        Ok(Out(ReleaseLocksResult {
            released: released
                .iter()
                .map(|(r, c)| {
                    let (mode, permits) = views::claim(*c);
                    ReleasedView {
                        resource: views::resource(&program, r),
                        mode,
                        permits,
                    }
                })
                .collect(),
            n_still_held: self.hub.locks_held_by(agent).len(),
        }))
    }

    #[tool(
        description = "Every lock now: holders and FIFO waiters, by function, kind or name prefix; or is a fencing token live.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<LockStatusResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
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
                let function = self.function_ref("function", f)?;
                Some(Hub::resolve_in(&program, &function).map_err(|e| self.fail(e))?)
            }
            None => None,
        };
        check_text_arg("prefix", &args.prefix, 1024)?;
        let kind = args.kind.map(convert::resource_kind);
        let locks = self
            .hub
            .locks_matching(kind, args.prefix.as_deref())
            .into_iter()
            .filter(|(_, v)| only.is_none_or(|f| v.resource.function() == Some(f)))
            .map(|(name, v)| views::lock_view(&self.hub, &program, name, &v))
            .collect();
        let yours = me
            .map(|a| {
                self.hub
                    .locks_held_by(a)
                    .iter()
                    .map(|l| views::granted(&program, l))
                    .collect()
            })
            .unwrap_or_default();
        let token = args.token.map(|t| {
            views::token(
                &self.hub,
                &program,
                t,
                self.hub.check_token(FencingToken(t)),
            )
        });
        Ok(Out(LockStatusResult {
            locks,
            yours,
            token,
        }))
    }

    /// The service's lock spec for one wire target, or invalid params
    /// naming the field that is wrong.
    fn lock_spec(&self, idx: usize, l: &LockArg) -> Result<LockSpec, ToolFailure> {
        let field = |name: &str| format!("locks[{idx}].{name}");
        let kinds: Vec<&str> = [
            ("function", l.function.is_some()),
            ("module", l.module.is_some()),
            ("path", l.path.is_some()),
            ("named", l.named.is_some()),
            ("semaphore", l.semaphore.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, given)| given.then_some(k))
        .collect();
        if kinds.len() != 1 {
            return Err(bad_arg(
                &format!("locks[{idx}]"),
                format!(
                    "name exactly one of `function`, `module`, `path`, `named`, `semaphore`; {}",
                    if kinds.is_empty() {
                        "none was given".to_string()
                    } else {
                        format!("got {}", kinds.join(" and "))
                    }
                ),
            ));
        }
        let bad = |name: &str, e: crate::locks::ResourceError| bad_arg(&field(name), e.to_string());
        if let Some(name) = &l.semaphore {
            if l.mode.is_some() {
                return Err(bad_arg(
                    &field("mode"),
                    "a semaphore takes `permits`, not a mode",
                ));
            }
            let name = ResourceName::parse_semaphore(name).map_err(|e| bad("semaphore", e))?;
            let permits = l.permits.unwrap_or(1);
            return Ok(LockSpec::Other(LockTarget::permits(
                name, permits, l.capacity,
            )));
        }
        for (given, what) in [
            (l.permits.is_some(), "permits"),
            (l.capacity.is_some(), "capacity"),
        ] {
            if given {
                return Err(bad_arg(
                    &field(what),
                    format!(
                        "only a semaphore has `{what}`; this lock names a {}",
                        kinds[0]
                    ),
                ));
            }
        }
        let mode = convert::lock_mode(l.mode.unwrap_or(Mode::Write));
        let resource = if let Some(f) = &l.function {
            let function = self.function_ref(&field("function"), f)?;
            return Ok(LockSpec::Function { function, mode });
        } else if let Some(m) = &l.module {
            Resource::Module(ModuleName::parse(m).map_err(|e| bad("module", e))?)
        } else if let Some(p) = &l.path {
            Resource::Path(ResourcePath::parse(p).map_err(|e| bad("path", e))?)
        } else {
            let n = l.named.as_deref().unwrap_or_default();
            Resource::Named(ResourceName::parse(n).map_err(|e| bad("named", e))?)
        };
        Ok(LockSpec::Other(LockTarget::new(resource, mode)))
    }
}

/// Sends the client a progress notification for each report of a waiting
/// acquire, naming per function the queue position and the holders. MCP
/// wants progress to rise with every notification, so two reports within
/// one microsecond send only the first. Ends when the wait does (the sender
/// drops) or the client is gone.
fn forward_progress(
    hub: std::sync::Arc<Hub>,
    peer: rmcp::Peer<RoleServer>,
    token: ProgressToken,
    wait: Duration,
) -> tokio::sync::mpsc::UnboundedSender<WaitProgress> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<WaitProgress>();
    let total = wait.as_millis() as f64;
    tokio::spawn(async move {
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
                    let who: Vec<String> =
                        b.holders.iter().map(|h| hub.agent_name(h.agent)).collect();
                    format!(
                        "{}: position {} of {}{}",
                        views::resource(&program, &b.resource),
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
    tx
}
