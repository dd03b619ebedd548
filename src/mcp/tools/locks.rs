//! Lock tools: acquire (with waits, progress and cancellation), release,
//! status. The lock rules live in `locks`; these tools only convert.

use rmcp::model::{ProgressNotificationParam, ProgressToken};

use super::*;
use crate::locks::WaitProgress;
use crate::mcp::delivery::Delivery;

#[tool_router(router = locks_tools, vis = "pub(super)")]
impl CographServer {
    #[tool(
        description = "Take read/write locks on functions, all or none. wait_ms queues you (FIFO); a denial names the holders and your queue place. Leases expire (ttl_ms); no heartbeat needed.",
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
        let mut targets = Vec::with_capacity(args.locks.len());
        for (idx, l) in args.locks.iter().enumerate() {
            let function = self.function_ref(&format!("locks[{idx}].function"), &l.function)?;
            targets.push((function, convert::lock_mode(l.mode)));
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
        description = "Release the named locks, or all of yours when `functions` is omitted.",
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
        let functions = match &args.functions {
            None => None,
            Some(fs) => Some(
                fs.iter()
                    .enumerate()
                    .map(|(idx, f)| self.function_ref(&format!("functions[{idx}]"), f))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let released = self
            .hub
            .release(agent, functions.as_deref())
            .map_err(|e| self.fail(e))?;
        let program = self.hub.snapshot();
        Ok(Out(ReleaseLocksResult {
            released: released
                .iter()
                .map(|(f, m)| ReleasedView {
                    function: views::function_name(&program, *f),
                    mode: views::mode(*m),
                })
                .collect(),
            still_held: self
                .hub
                .locks_held_by(agent)
                .iter()
                .map(|l| views::granted(&program, l))
                .collect(),
        }))
    }

    #[tool(
        description = "Every lock now: holders and FIFO waiters, optionally for one function.",
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
        let locks = self
            .hub
            .lock_status()
            .into_iter()
            // The wire lists function locks; other kinds wait for their
            // own fields.
            .filter_map(|v| Some((v.resource.function()?, v)))
            .filter(|(f, _)| only.is_none_or(|o| o == *f))
            .map(|(f, v)| LockView {
                function: views::function_name(&program, f),
                holders: v
                    .holders
                    .iter()
                    .map(|h| views::holder(&self.hub, h))
                    .collect(),
                waiters: v
                    .waiters
                    .iter()
                    .map(|w| views::waiter(&self.hub, w))
                    .collect(),
            })
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
        Ok(Out(LockStatusResult { locks, yours }))
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
                        views::function_name(&program, views::function_of(&b.resource)),
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
