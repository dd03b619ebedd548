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

use std::sync::Arc;

use super::Hub;
use super::error::ServiceError;
use super::proposal::{CommitOutcome, EditRequest};
use crate::graph::{Program, import_ops};
use crate::locks::AgentId;

/// What an import did.
#[derive(Clone, Debug)]
pub struct ImportOutcome {
    pub commit: CommitOutcome,
    /// Function ids, node ids and counters are exactly the file's.
    pub exact: bool,
    /// Existing functions whose content the import replaced.
    pub n_replaced: usize,
}

impl Hub {
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
        let request = EditRequest {
            ops: plan.ops,
            purpose: Some(purpose),
            ..EditRequest::default()
        };
        let commit = self.propose_within(agent, request, usize::MAX).await?;
        Ok(ImportOutcome {
            commit,
            exact: plan.exact,
            n_replaced: existing.len(),
        })
    }
}
