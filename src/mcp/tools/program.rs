//! Tools that read the program: overview, one function, whole-program
//! verification, running a function. None of them changes anything but the
//! caller's recorded reads.

use super::*;

#[tool_router(router = program_tools, vis = "pub(super)")]
impl CographServer {
    #[tool(
        description = "The program at a glance: revision, root hash, functions (signature, hash, size, holders), paged by name.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<ProgramOverviewResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
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
        let holders = holders_by_function(&self.hub, &program);
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
        description = "Read a function (text form by default); your next propose_edit is checked against this read.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<GetFunctionResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_function(
        &self,
        Parameters(Checked(args)): Parameters<Checked<GetFunctionArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<GetFunctionResult> {
        let me = self.caller(&args.session, &ctx)?;
        let function = self.function_ref("function", &args.function)?;
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
        let shown = crate::locks::Resource::Function(read.id);
        let locked_by = self
            .hub
            .lock_holders(read.id)
            .iter()
            .map(|h| views::holder_line(&self.hub, &read.program, &shown, h))
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
            warning: me.is_none().then(|| {
                format!(
                    "this read was not recorded: the call had no `session`, so a later propose_edit on {} needs `base: {{\"{}\": \"{}\"}}`, or call register_agent and pass its `session`",
                    f.name,
                    f.name,
                    read.entry.hash.to_hex()
                )
            }),
            locked_by,
        }))
    }

    #[tool(
        description = "Verify the whole program now (every commit is verified already).",
        output_schema = rmcp::handler::server::tool::schema_for_output::<VerifyAllResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
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
        description = "Run a function on arguments (one per parameter) and return its value.",
        output_schema = rmcp::handler::server::tool::schema_for_output::<RunFunctionResult>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn run_function(
        &self,
        Parameters(Checked(args)): Parameters<Checked<RunFunctionArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> ToolResult<RunFunctionResult> {
        self.caller(&args.session, &ctx)?;
        let program = self.hub.snapshot();
        let function = self.function_ref("function", &args.function)?;
        let id = Hub::resolve_in(&program, &function).map_err(|e| self.fail(e))?;
        let callee = &program.get(id).expect("resolved").function;
        crate::eval::check_arity(callee, args.args.len()).map_err(|e| self.fail(e.into()))?;
        let signature = callee.signature.clone();
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
            function: views::function_name(&program, id),
            value: views::value_json(&outcome.value),
            literal: outcome.value.literal(),
            ty: outcome.value.ty().name().into(),
            steps: outcome.steps,
        }))
    }
}

/// Per function, its lock holders as `name (mode)`.
fn holders_by_function(
    hub: &Hub,
    program: &crate::graph::Program,
) -> std::collections::HashMap<u64, Vec<String>> {
    hub.lock_status()
        .into_iter()
        .filter_map(|view| Some((view.resource.function()?, view)))
        .filter(|(f, _)| program.get(*f).is_some())
        .map(|(f, view)| {
            let holders = view
                .holders
                .iter()
                .map(|h| views::holder_line(hub, program, &view.resource, h))
                .collect();
            (f.0, holders)
        })
        .collect()
}
