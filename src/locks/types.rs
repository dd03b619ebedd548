//! The lock table's vocabulary: what a request asks for (`LockRequest`,
//! `LockTarget`, `LockMode`), what it gets (`Grant`, `HeldLock`,
//! `FencingToken`), why it does not (`AcquireError`, `Denial`, `Blocked`),
//! and the views the table gives of itself (`HolderView`, `WaiterView`,
//! `LockView`, `LeaseCheck`, `WaitProgress`, `EndedAgent`).
//!
//! These are plain data. Nothing here decides who gets a lock, reads a
//! clock or waits: the rules are in `state.rs`, the waiting in `wait.rs`.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::agents::AgentId;
use crate::graph::FunctionId;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Read,
    Write,
}

impl LockMode {
    /// Returns true if and only if two holders in these modes exclude each
    /// other.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        self == LockMode::Write || other == LockMode::Write
    }

    /// `read` or `write`, as operators and the log read it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Read => "read",
            LockMode::Write => "write",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTarget {
    pub function: FunctionId,
    pub mode: LockMode,
}

/// A fencing token: from one counter that only rises, across restarts too
/// (the service starts it at `restart_epoch << 40`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FencingToken(pub u64);

#[derive(Clone, Debug)]
pub struct LockConfig {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// The first token handed out is `fencing_base + 1`.
    pub fencing_base: u64,
    /// How often a waiter reports progress when nothing changes.
    pub progress_interval: Duration,
}

impl Default for LockConfig {
    fn default() -> LockConfig {
        LockConfig {
            default_ttl: Duration::from_secs(30 * 60),
            max_ttl: Duration::from_secs(24 * 60 * 60),
            fencing_base: 0,
            progress_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LockRequest {
    pub agent: AgentId,
    pub targets: Vec<LockTarget>,
    /// `None`: the default; capped at `max_ttl`.
    pub ttl: Option<Duration>,
    pub purpose: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    pub function: FunctionId,
    pub mode: LockMode,
    pub token: FencingToken,
    pub granted_at: SystemTime,
    pub expires_at: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token: FencingToken,
    pub locks: Vec<HeldLock>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderView {
    pub agent: AgentId,
    pub mode: LockMode,
    pub purpose: Option<String>,
    pub since: SystemTime,
    pub expires_at: SystemTime,
    pub token: FencingToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiterView {
    pub agent: AgentId,
    pub mode: LockMode,
    /// 1-based place in the function's queue.
    pub position: usize,
    pub since: SystemTime,
    pub purpose: Option<String>,
}

/// Why one function of a request cannot be granted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub function: FunctionId,
    /// Live holders (other than the requester) whose mode conflicts.
    pub holders: Vec<HolderView>,
    /// Earlier waiters whose mode conflicts.
    pub waiting_ahead: Vec<WaiterView>,
    /// The requester's real place in the queue if it waits, else the place
    /// it would take (`queue_length + 1`).
    pub queue_position: usize,
    /// Waiting requests in the queue, the requester's included if it waits.
    pub queue_length: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub blocked: Vec<Blocked>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("locked by another agent")]
    Denied(Denial),
    #[error("still locked when the wait ran out")]
    Timeout(Denial),
    #[error("waiting would deadlock: {}", cycle_text(.cycle))]
    Deadlock { cycle: Vec<AgentId>, denial: Denial },
    #[error("the wait was cancelled")]
    Cancelled,
    #[error("the agent ended while waiting")]
    AgentEnded,
    #[error("{0}")]
    Invalid(String),
}

fn cycle_text(cycle: &[AgentId]) -> String {
    cycle
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitProgress {
    pub waited: Duration,
    pub blocked: Vec<Blocked>,
}

/// A lease an operator broke (`LockTable::break_lock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokenLease {
    pub agent: AgentId,
    pub mode: LockMode,
    pub token: FencingToken,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseCheck {
    Live(HeldLock),
    Expired {
        token: FencingToken,
        expired_at: Option<SystemTime>,
    },
    None,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockView {
    pub function: FunctionId,
    pub holders: Vec<HolderView>,
    pub waiters: Vec<WaiterView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndedAgent {
    pub released: Vec<(FunctionId, LockMode)>,
    pub n_dequeued: usize,
}

/// Targets for unit tests: each `(function id, mode)`.
#[cfg(test)]
pub(super) fn targets(fs: &[(u64, LockMode)]) -> Vec<LockTarget> {
    fs.iter()
        .map(|(f, mode)| LockTarget {
            function: FunctionId(*f),
            mode: *mode,
        })
        .collect()
}

/// A request for unit tests: `agent` asks for each `(function id, mode)`,
/// with the default lease and no purpose.
#[cfg(test)]
pub(super) fn req(agent: AgentId, fs: &[(u64, LockMode)]) -> LockRequest {
    LockRequest {
        agent,
        targets: targets(fs),
        ttl: None,
        purpose: None,
    }
}
