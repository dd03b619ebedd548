//! The program graph: identities, types, ops, functions and programs; the
//! canonical encoding and content hash; the text form; edit ops with their
//! atomic application, diff and rebase.
//!
//! Architecture invariant: `graph` does no IO and knows nothing of locks,
//! storage or MCP. Everything here is a pure function of its inputs.

pub mod diff;
pub mod edit;
pub mod edit_ops;
pub mod encoding;
pub mod file;
pub mod function;
pub mod function_ref;
pub mod ids;
pub mod limits;
pub mod op;
pub mod program;
pub mod rebase;
pub mod reference;
pub mod suggest;
pub mod text;
pub mod types;

pub use diff::{Change, Edge, FunctionDiff, NodeChange, diff_functions};
pub use edit::{
    Applied, Body, EditError, EditErrorKind, EditOp, FunctionChange, NodeRef, NodeSpec, apply,
};
pub use encoding::{decode_function, encode_function, function_hash};
pub use file::{
    ImportPlan, LoadError, import_ops, load_program, load_program_json, load_program_text,
    program_to_json, render_program,
};
pub use function::{Function, Node, Param, QualifiedName, Signature};
pub use function_ref::{FunctionRef, FunctionRefError};
pub use ids::{ContentHash, FunctionId, NodeId, Revision};
pub use op::Op;
pub use program::{FunctionEntry, Program};
pub use rebase::{OverlapReason, check_rebase};
pub use text::{OpSpec, ParseError, parse_function, render_function};
pub use types::{Type, Value};
