//! Limits that keep one edit request from exhausting the server, and the
//! checks of the free-form parts of an op (aliases, names, parameters,
//! docs) against them. Exceeding one is an `invalid_edit`, never a crash.
//! The service's own bounds (ops per request, lock waits, TTLs) live in
//! `HubConfig` and the MCP tools; ARCHITECTURE.md lists them all.

use super::edit::{EditErrorKind, NodeRef};
use super::function::{Param, QualifiedName, is_identifier};

pub const MAX_NODES_PER_FUNCTION: usize = 100_000;
pub const MAX_INPUTS_PER_NODE: usize = 256;
pub const MAX_PARAMS: usize = 64;
pub const MAX_DOC_BYTES: usize = 16 * 1024;
pub const MAX_NAME_BYTES: usize = 200;
/// The highest function id a program file may state: 2^53, the largest
/// integer every JSON reader (JavaScript's too) keeps exactly, since ids
/// travel to clients as JSON numbers. The hub hands ids out one by one, so
/// only a file can ask for one this high.
pub const MAX_FUNCTION_ID: u64 = 1 << 53;

type OpResult<T> = Result<T, EditErrorKind>;

pub(super) fn check_alias(alias: &str) -> OpResult<()> {
    match NodeRef::parse(alias) {
        Ok(NodeRef::Alias(_)) => Ok(()),
        _ => Err(EditErrorKind::Invalid(format!(
            "`{alias}` is not an alias: expected `$` and an identifier, like `$sum`"
        ))),
    }
}

pub(super) fn check_name(name: &QualifiedName) -> OpResult<()> {
    if name.as_str().len() > MAX_NAME_BYTES {
        return Err(EditErrorKind::Invalid(format!(
            "a qualified name has at most {} bytes",
            MAX_NAME_BYTES
        )));
    }
    Ok(())
}

pub(super) fn check_params(params: &[Param]) -> OpResult<()> {
    if params.len() > MAX_PARAMS {
        return Err(EditErrorKind::Invalid(format!(
            "a function has at most {} parameters",
            MAX_PARAMS
        )));
    }
    for p in params {
        if !is_identifier(&p.name) || p.name.len() > MAX_NAME_BYTES {
            return Err(EditErrorKind::Invalid(format!(
                "`{}` is not a parameter name: expected an identifier",
                p.name
            )));
        }
    }
    Ok(())
}

/// Docs are free text, but without control characters other than newline
/// and tab, so that the text form can show them as `///` lines.
pub(super) fn check_doc(doc: &str) -> OpResult<()> {
    if doc.len() > MAX_DOC_BYTES {
        return Err(EditErrorKind::Invalid(format!(
            "a doc has at most {} bytes",
            MAX_DOC_BYTES
        )));
    }
    if let Some(c) = doc
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(EditErrorKind::Invalid(format!(
            "a doc may not hold the control character {c:?}"
        )));
    }
    Ok(())
}
