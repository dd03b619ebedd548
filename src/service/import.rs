//! Loading a whole program into the hub as one commit (`cograph import`).
//!
//! Into an empty program that has never used the file's function ids (a
//! fresh directory), the import is exact: the same function ids (gaps
//! included, through `reserve_function_ids`), node ids, node-id counters,
//! function-id counter, and so the same root hash as the program that was
//! exported. Into a program that has functions, the file's functions get
//! new ids (ids are never reused) and keep their node ids; a name that
//! exists already is refused, naming every such function, unless the
//! caller asks to replace them. Either way it is one commit of ordinary
//! edit ops, so the log replays it, locks are honoured and the result is
//! verified like any edit. The per-request op limit of `propose_edit` does
//! not apply: a program of any size is one commit.
//!
//! `import_file` is what `cograph import` runs: in its own process on a
//! store no hub holds, or in the running hub, sent over the admin socket.
//! Both paths parse, refuse and report alike.

use std::sync::Arc;

use super::Hub;
use super::error::ServiceError;
use super::proposal::{CommitOutcome, EditRequest, OnConflict};
use crate::graph::{FunctionRef, Program, import_ops, load_program};
use crate::locks::{AgentId, Transport};

/// How many of a refused import's diagnostics its message lists.
const N_DIAGNOSTICS_SHOWN: usize = 5;

/// What an import did.
#[derive(Clone, Debug)]
pub struct ImportOutcome {
    pub commit: CommitOutcome,
    /// Functions in the file.
    pub n_functions: usize,
    /// Function ids, node ids and counters are exactly the file's.
    pub exact: bool,
    /// Existing functions whose content the import replaced.
    pub n_replaced: usize,
}

impl Hub {
    /// Parses a program file's `content` (text or JSON) and imports it as
    /// one commit by an in-process agent named `import`, which ends with
    /// the call. `source` names the file in errors and in the commit's
    /// purpose. A program that does not verify is refused with its first
    /// diagnostics in the message.
    pub async fn import_file(
        self: &Arc<Self>,
        content: &str,
        source: &str,
        replace: bool,
    ) -> Result<ImportOutcome, ServiceError> {
        let program = load_program(content)
            .map_err(|e| ServiceError::InvalidRequest(format!("{source}: {e}")))?;
        let agent = self.connect("import", Transport::InProcess);
        let purpose = format!("import {source}");
        match self.import(agent.id(), &program, replace, purpose).await {
            Err(ServiceError::VerificationFailed { diagnostics }) => {
                let shown: Vec<String> = diagnostics
                    .iter()
                    .take(N_DIAGNOSTICS_SHOWN)
                    .map(|d| d.to_string())
                    .collect();
                Err(ServiceError::InvalidRequest(format!(
                    "{source} does not verify ({} diagnostics): {}{}",
                    diagnostics.len(),
                    shown.join("; "),
                    if diagnostics.len() > shown.len() {
                        "; ..."
                    } else {
                        ""
                    }
                )))
            }
            other => other,
        }
    }

    /// Imports `program` as one commit by `agent`. See the module doc.
    pub async fn import(
        self: &Arc<Self>,
        agent: AgentId,
        program: &Program,
        replace: bool,
        purpose: String,
    ) -> Result<ImportOutcome, ServiceError> {
        if program.is_empty() {
            return Err(ServiceError::InvalidRequest(
                "the file holds no functions: nothing to import".into(),
            ));
        }
        let current = self.snapshot();
        let existing: Vec<_> = program
            .functions()
            .filter(|(_, e)| current.id_of(&e.function.name).is_some())
            .map(|(_, e)| e.function.name.clone())
            .collect();
        if !existing.is_empty() && !replace {
            return Err(ServiceError::InvalidRequest(format!(
                "{} of the file's functions exist already: {}; import with --replace to replace them, or rename them in the file",
                existing.len(),
                super::error::backticked(existing.iter())
            )));
        }
        let plan = import_ops(program, &current);
        // The functions replaced are checked against the versions seen
        // here, as if the importing agent had read them: one changed since
        // is refused as a conflict, never merged into.
        let base = existing
            .iter()
            .filter_map(|name| current.id_of(name))
            .filter_map(|id| Some((FunctionRef::Id(id), current.get(id)?.hash)))
            .collect();
        let request = EditRequest {
            ops: plan.ops,
            base,
            on_conflict: OnConflict::Reject,
            purpose: Some(purpose),
            ..EditRequest::default()
        };
        let commit = self.propose_within(agent, request, usize::MAX).await?;
        Ok(ImportOutcome {
            commit,
            n_functions: program.len(),
            exact: plan.exact,
            n_replaced: existing.len(),
        })
    }
}
