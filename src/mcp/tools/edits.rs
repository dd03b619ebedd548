//! Edit tools: propose_edit (the commit pipeline), and history and diff,
//! which read the log.

use super::*;

#[tool_router(router = edits_tools, vis = "pub(super)")]
impl CographServer {
    #[tool(
        description = "Apply edit ops atomically against your last read of each function: a stale edit merges if it does not overlap, else gets a `conflict` with the diff. Verified, then durable.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ProposeEditResult>(),
        annotations(open_world_hint = false)
    )]
    async fn propose_edit(
        &self,
        Parameters(Checked(args)): Parameters<Checked<ProposeEditArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<ProposeEditResult> {
        let agent = self.require_caller(&args.session, &ctx)?;
        let _call = self.hub.begin_call(agent);
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
            let field = format!("base.{function}");
            let function =
                crate::graph::FunctionRef::parse(function).map_err(|e| bad_arg(&field, e))?;
            let hash = ContentHash::from_hex(hash)
                .ok_or_else(|| bad_arg(&field, "expected a hash of 64 hex characters"))?;
            base.push((function, hash));
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
            request_id: args.request_id.clone(),
        };
        let out = self
            .hub
            .propose(agent, request)
            .await
            .map_err(|e| self.fail(e))?;
        let status = match (out.dry_run, out.revision) {
            (true, _) => EditStatus::DryRun,
            (false, Some(_)) => EditStatus::Committed,
            (false, None) => EditStatus::Unchanged,
        };
        Ok(Out(ProposeEditResult {
            status,
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
                .map(|(alias, t)| (alias.clone(), t.node.to_string()))
                .collect(),
            repeated: out.repeated,
        }))
    }

    #[tool(
        description = "The commit log, newest first, optionally for one function.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<HistoryResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
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
        let function = args
            .function
            .as_ref()
            .map(|f| self.function_ref("function", f))
            .transpose()?;
        let commits = self
            .hub
            .history(
                function.as_ref(),
                args.before_revision.map(|r| Revision(r.0)),
                limit,
            )
            .await
            .map_err(|e| self.fail(e))?;
        let next_before_revision = (commits.len() == limit)
            .then(|| commits.last().map(|c| c.revision.0))
            .flatten();
        let events = self
            .hub
            .operator_events(function.as_ref(), limit)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Out(HistoryResult {
            commits: commits.iter().map(views::commit).collect(),
            next_before_revision,
            operator_events: events
                .iter()
                .map(|e| views::operator_event_line(&views::operator_event(e)))
                .collect(),
        }))
    }

    #[tool(
        description = "Diff two versions of a function (nodes, edges, signature). Default: your last read to now.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<DiffResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn diff(
        &self,
        Parameters(Checked(args)): Parameters<Checked<DiffArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<DiffResult> {
        let me = self.caller(&args.session, &ctx)?;
        let function = self.function_ref("function", &args.function)?;
        let version = |field: &str, v: &VersionArg| -> Result<VersionSel, ToolFailure> {
            match v {
                VersionArg::Revision(r) => Ok(VersionSel::Revision(Revision(*r))),
                VersionArg::Hash(s) => {
                    ContentHash::from_hex(s)
                        .map(VersionSel::Hash)
                        .ok_or_else(|| {
                            bad_arg(
                                field,
                                "expected a revision (5, \"5\" or \"r5\") or a hash of 64 hex characters",
                            )
                        })
                }
            }
        };
        let program = self.hub.snapshot();
        let from = match &args.from {
            Some(v) => version("from", v)?,
            None => {
                let id = program.lookup(&function);
                let read = match (me, id) {
                    (Some(agent), Some(id)) => self.hub.last_read(agent, id),
                    _ => None,
                };
                match (read, id.and_then(|id| program.get(id))) {
                    (Some(r), _) => VersionSel::Hash(r.hash),
                    (None, Some(e)) => {
                        VersionSel::Revision(Revision(e.revision.0.saturating_sub(1)))
                    }
                    (None, None) if id.is_none() && function.id().is_none() => {
                        let what = format!("no function `{function}`");
                        return Err(self.fail(crate::service::ServiceError::unknown_function(
                            &program, &function, what,
                        )));
                    }
                    (None, None) => {
                        return Err(ToolFailure::new(
                            ErrorCode::NotFound,
                            format!("`{function}` has no current version to diff from"),
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
            function: views::function_name(&d.program, d.function),
            from: d.from.to_hex(),
            to: d.to.to_hex(),
            diff: views::diff(&d.program, &d.diff),
        }))
    }
}
