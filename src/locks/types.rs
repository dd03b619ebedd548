//! The lock table's vocabulary: what a request asks for (`LockRequest`,
//! `LockTarget`: a `Resource` and a `Claim`), what it gets (`Grant`,
//! `HeldLock`, `FencingToken`), why it does not (`AcquireError`,
//! `InvalidRequest`, `Denial`, `Blocked`), and the views the table gives of
//! itself (`HolderView`, `WaiterView`, `LockView`, `SemaphoreUse`,
//! `LeaseCheck`, `WaitProgress`, `EndedAgent`).
//!
//! These are plain data. Nothing here decides who gets a lock, reads a
//! clock or waits: the rules are in `state.rs`, the waiting in `wait.rs`.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::agents::AgentId;
use super::resource::{ModuleName, Resource, ResourceName};
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

/// What a lock takes of its resource: read (shared) or write (exclusive)
/// for functions, modules, paths and named resources; a number of permits
/// for a semaphore. Claims of one kind order by strength (`Read < Write`,
/// fewer permits < more), and holding a stronger claim covers a weaker one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Claim {
    Read,
    Write,
    Permits(u32),
}

impl Claim {
    /// The read/write mode, if this is not a semaphore's claim.
    pub fn mode(self) -> Option<LockMode> {
        match self {
            Claim::Read => Some(LockMode::Read),
            Claim::Write => Some(LockMode::Write),
            Claim::Permits(_) => None,
        }
    }

    /// The permits, if this is a semaphore's claim.
    pub fn permits(self) -> Option<u32> {
        match self {
            Claim::Permits(n) => Some(n),
            _ => None,
        }
    }

    /// Returns true if and only if holding `self` already gives all that
    /// `asked` asks (same kind, at least as strong).
    pub fn covers(self, asked: Claim) -> bool {
        match (self, asked) {
            (Claim::Permits(held), Claim::Permits(n)) => held >= n,
            (Claim::Permits(_), _) | (_, Claim::Permits(_)) => false,
            (held, asked) => held >= asked,
        }
    }

    /// The stronger of two claims of one kind: what holding both amounts
    /// to, since an agent holds a resource once.
    pub(super) fn max(self, other: Claim) -> Claim {
        if self.covers(other) { self } else { other }
    }
}

impl From<LockMode> for Claim {
    fn from(mode: LockMode) -> Claim {
        match mode {
            LockMode::Read => Claim::Read,
            LockMode::Write => Claim::Write,
        }
    }
}

impl fmt::Display for Claim {
    /// `read`, `write`, or `3 permits`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Claim::Read => f.write_str("read"),
            Claim::Write => f.write_str("write"),
            Claim::Permits(1) => f.write_str("1 permit"),
            Claim::Permits(n) => write!(f, "{n} permits"),
        }
    }
}

/// One resource a request asks for, with what the table needs beside its
/// identity. Build one with `LockTarget::function`, `::new` or `::permits`;
/// the table checks the combination (`InvalidRequest` otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockTarget {
    pub resource: Resource,
    pub claim: Claim,
    /// A function's module, which places the function's lock inside the
    /// module's (so a module lock meets it). Required for a function,
    /// absent for every other kind. The caller knows it from the
    /// function's qualified name; the table does not look it up.
    pub module: Option<ModuleName>,
    /// A semaphore's capacity as the requester believes it: fixes the
    /// capacity if the semaphore has none yet, and must agree with it if it
    /// has. Absent for every other kind, and optional for a semaphore whose
    /// capacity is set.
    pub capacity: Option<u32>,
}

impl LockTarget {
    /// A function, inside `module`.
    pub fn function(function: FunctionId, module: ModuleName, mode: LockMode) -> LockTarget {
        LockTarget {
            resource: Resource::Function(function),
            claim: mode.into(),
            module: Some(module),
            capacity: None,
        }
    }

    /// A module, path or named resource in `mode`.
    pub fn new(resource: Resource, mode: LockMode) -> LockTarget {
        LockTarget {
            resource,
            claim: mode.into(),
            module: None,
            capacity: None,
        }
    }

    /// `permits` of the semaphore `name`, whose capacity the requester
    /// gives if it knows it.
    pub fn permits(name: ResourceName, permits: u32, capacity: Option<u32>) -> LockTarget {
        LockTarget {
            resource: Resource::Semaphore(name),
            claim: Claim::Permits(permits),
            module: None,
            capacity,
        }
    }
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
    pub resource: Resource,
    pub claim: Claim,
    pub token: FencingToken,
    pub granted_at: SystemTime,
    pub expires_at: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token: FencingToken,
    pub locks: Vec<HeldLock>,
}

/// A live holder that meets a resource: one holding it, one holding a
/// resource above it (a directory, a module), or one holding locks below
/// it (`below`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderView {
    pub agent: AgentId,
    /// What it holds: the resource shown, one above it, or (when `below`)
    /// the resource shown, under which its locks are.
    pub resource: Resource,
    pub claim: Claim,
    /// True: the agent holds locks below `resource`, not `resource` itself.
    /// Then `claim` is the strongest of them, and `token`, `since` and
    /// `expires_at` are those of the one whose lease ends last; the view
    /// is found without looking at each of them, so it does not say how
    /// many there are.
    pub below: bool,
    pub purpose: Option<String>,
    pub since: SystemTime,
    pub expires_at: SystemTime,
    pub token: FencingToken,
}

/// A waiting request, as seen from one resource it overlaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaiterView {
    pub agent: AgentId,
    /// The resource it waits for that meets the one shown (the first, if
    /// several do).
    pub resource: Resource,
    pub claim: Claim,
    /// 1-based place among the waiting requests that overlap the resource
    /// shown, in arrival order.
    pub position: usize,
    pub since: SystemTime,
    pub purpose: Option<String>,
}

/// A semaphore's capacity and what is taken of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemaphoreUse {
    pub capacity: u32,
    /// Permits held by live holders.
    pub in_use: u32,
}

/// Why one resource of a request cannot be granted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub resource: Resource,
    /// Live holders (other than the requester) in the way.
    pub holders: Vec<HolderView>,
    /// Earlier waiters (other than the requester) in the way.
    pub waiting_ahead: Vec<WaiterView>,
    /// The requester's real place among the waiting requests that overlap
    /// the resource if it waits, else the place it would take
    /// (`queue_length + 1`).
    pub queue_position: usize,
    /// Waiting requests that overlap the resource, the requester's
    /// included if it waits.
    pub queue_length: usize,
    /// For a semaphore: its capacity and the permits in use.
    pub semaphore: Option<SemaphoreUse>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub blocked: Vec<Blocked>,
}

/// A request the table refuses to consider: it names nothing, or a
/// resource with the wrong companions, or a semaphore's capacity wrongly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("no resources to lock")]
    NoResources,
    #[error("a lease needs a ttl above zero")]
    ZeroTtl,
    #[error("{resource} needs its module to be locked (the module of its qualified name)")]
    MissingModule { resource: Resource },
    #[error("only a function has a module; {resource} has none")]
    UnexpectedModule { resource: Resource },
    #[error("{resource} is named in one request under two modules, `{first}` and `{second}`")]
    TwoModules {
        resource: Resource,
        first: ModuleName,
        second: ModuleName,
    },
    #[error("{resource} takes permits, not {claim}")]
    NotPermits { resource: Resource, claim: Claim },
    #[error("{resource} is locked for read or write, not in permits")]
    NotReadWrite { resource: Resource },
    #[error("only a semaphore has a capacity; {resource} has none")]
    UnexpectedCapacity { resource: Resource },
    #[error("{resource}: a request takes at least 1 permit")]
    ZeroPermits { resource: Resource },
    #[error("{resource}: a capacity is at least 1")]
    ZeroCapacity { resource: Resource },
    #[error(
        "{resource} has capacity {capacity}; a request takes 1 to {capacity} permits, not {permits}"
    )]
    PermitsOverCapacity {
        resource: Resource,
        permits: u32,
        capacity: u32,
    },
    #[error("{resource} has capacity {capacity}, not {asked}")]
    CapacityMismatch {
        resource: Resource,
        capacity: u32,
        asked: u32,
    },
    #[error("{resource} has no capacity yet: the first request gives one")]
    CapacityUnknown { resource: Resource },
    #[error("{resource} is given two capacities in one request, {first} and {second}")]
    TwoCapacities {
        resource: Resource,
        first: u32,
        second: u32,
    },
}

/// Why an operator may not set a semaphore's capacity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error("a capacity is at least 1")]
    Zero,
    #[error(
        "semaphore:{name} has {in_use} permits in use; break those locks before lowering it to {capacity}"
    )]
    BelowUse {
        name: ResourceName,
        in_use: u32,
        capacity: u32,
    },
    #[error(
        "a request waits for {permits} permits of semaphore:{name}; a capacity of {capacity} could never grant it"
    )]
    BelowWaiter {
        name: ResourceName,
        permits: u32,
        capacity: u32,
    },
    #[error("a capacity of {capacity} for semaphore:{name} would deadlock the requests waiting for it: {}", cycle_text(.cycle))]
    WouldDeadlock {
        name: ResourceName,
        capacity: u32,
        cycle: Cycle,
    },
}

/// A deadlock a request would wait in: `agents[i]` waits for
/// `resources[i]`, which `agents[i + 1]` holds or waits for ahead of it.
/// The first agent is the requester, and the last one is an agent met
/// before: the requester when its request closes the cycle (the usual
/// case), else the agent where the requester's path of waits joins a cycle
/// of others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub agents: Vec<AgentId>,
    pub resources: Vec<Resource>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("locked by another agent")]
    Denied(Denial),
    #[error("still locked when the wait ran out")]
    Timeout(Denial),
    #[error("waiting would deadlock: {}", cycle_text(.cycle))]
    Deadlock { cycle: Cycle, denial: Denial },
    #[error("the wait was cancelled")]
    Cancelled,
    #[error("the agent ended while waiting")]
    AgentEnded,
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
}

fn cycle_text(cycle: &Cycle) -> String {
    let mut out = String::new();
    for (idx, a) in cycle.agents.iter().enumerate() {
        out.push_str(&a.to_string());
        if let Some(r) = cycle.resources.get(idx) {
            out.push_str(&format!(" -[{r}]-> "));
        }
    }
    out
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
    pub claim: Claim,
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

/// One resource that is held or waited for exactly: its holders and the
/// requests waiting for it, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockView {
    pub resource: Resource,
    pub holders: Vec<HolderView>,
    /// Requests waiting for exactly this resource; `position` counts among
    /// them.
    pub waiters: Vec<WaiterView>,
    pub semaphore: Option<SemaphoreUse>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndedAgent {
    pub released: Vec<(Resource, Claim)>,
    pub n_dequeued: usize,
}

/// The module every function of the unit tests lives in.
#[cfg(test)]
pub(super) fn test_module() -> ModuleName {
    ModuleName::parse("m").unwrap()
}

/// Targets for unit tests: each `(function id, mode)`, in module `m`.
#[cfg(test)]
pub(super) fn targets(fs: &[(u64, LockMode)]) -> Vec<LockTarget> {
    fs.iter()
        .map(|(f, mode)| LockTarget::function(FunctionId(*f), test_module(), *mode))
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
