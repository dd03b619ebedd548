//! The details a failure carries beside `error`, one field per detail, and
//! which codes carry which. The output schemas declare them from here (per
//! tool, the details of the codes it can return); `mcp/error.rs` sends
//! them. A new detail is one field here and its codes in
//! [`ErrorCode::details`].

use schemars::JsonSchema;
use serde::Serialize;

use super::*;

/// Every detail a tool failure can carry. Each one is present only with
/// the codes [`ErrorCode::details`] names, and never null.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct ErrorDetails {
    /// Per blocked function: conflicting holders, earlier waiters, and your
    /// queue place (the one you take if you wait).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Vec<BlockedView>>,
    /// The wait-for cycle, its first agent repeated last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<Vec<AgentRef>>,
    /// Per stale function: the commits since your base, the diff, the
    /// current text (one function for `too_many_conflicts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<ConflictView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_conflicts: Option<u32>,
    /// The functions you have not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub functions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<DiagnosticView>>,
    /// The function whose lease expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_at: Option<String>,
    /// The failing op's index in `ops`, and its kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// `division_by_zero`, `overflow`, `fuel_exhausted`, `stack_overflow`,
    /// `bad_argument` or `malformed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_code: Option<String>,
    /// The closest existing names, when an edit op names a function or op
    /// that does not exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<String>>,
}

impl ErrorCode {
    /// The fields of [`ErrorDetails`] a failure with this code carries.
    pub fn details(self) -> &'static [&'static str] {
        match self {
            ErrorCode::LockDenied | ErrorCode::LockTimeout => &["blocked"],
            ErrorCode::Deadlock => &["blocked", "cycle"],
            ErrorCode::LockExpired => &["function", "fencing_token", "expired_at"],
            ErrorCode::Conflict => &["conflicts"],
            ErrorCode::TooManyConflicts => &["conflicts", "n_conflicts"],
            ErrorCode::ReadRequired => &["functions"],
            ErrorCode::VerificationFailed => &["diagnostics"],
            ErrorCode::InvalidEdit => &["op_index", "op", "suggestions"],
            ErrorCode::RuntimeError => &["runtime_code"],
            // A not_found says "did you mean `math::fib`?" in its message;
            // a structured list in every tool's schema would cost each
            // connection ~440 characters for what the message already says.
            ErrorCode::NotFound
            | ErrorCode::SessionRequired
            | ErrorCode::Cancelled
            | ErrorCode::TooManyAgents => &[],
        }
    }
}
