//! The lock table: per-function read/write locks with all-or-nothing
//! batches, FIFO queues, leases, fencing tokens and deadlock refusal.
//!
//! One `std::sync::Mutex` guards the whole table. A batch must see a
//! consistent view of several functions to be granted all-or-nothing, and a
//! single short critical section (no IO, no `.await`, no allocation beyond
//! the grant itself) is the simplest design that is obviously right. It is
//! a std mutex rather than a tokio one because it is never held across an
//! `.await`; waiting happens outside it, on a per-request `Notify`.
//!
//! Rules (DESIGN.md section 5):
//! - A request is granted only if, for every function, it conflicts with no
//!   live holder other than its agent and with no earlier waiter in that
//!   function's queue. Only a holder refreshing what it already holds skips
//!   the queue; an upgrade waits its turn.
//! - Leases expire at their instant: every operation drops expired holders
//!   of the functions it looks at before deciding anything, so an expired
//!   lease neither blocks nor authorises even if the sweeper has not run.
//!   The sweeper only exists to wake waiters when nobody else touches the
//!   table.
//! - Waiters are granted by the table (the pump), in arrival order, the
//!   moment they can be; a waiter that gives up at the same instant still
//!   gets the grant if the pump got there first.
//! - A blocking request that would close a cycle in the wait-for graph is
//!   refused at once; nobody's held locks are ever revoked.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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

// ---------------------------------------------------------------------------
// State

/// A multiplicative hasher for the table's integer keys: far cheaper than
/// SipHash, and the keys are not attacker-chosen in a way that matters
/// (function ids are handed out by the server, agent ids are random).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

type RequestId = u64;

/// How many function entries the table keeps around when idle.
const IDLE_ENTRIES: usize = 4096;

#[derive(Clone, Debug)]
struct Holder {
    agent: AgentId,
    mode: LockMode,
    token: FencingToken,
    since: SystemTime,
    expires: Instant,
    expires_at: SystemTime,
    purpose: Option<Arc<str>>,
}

impl Holder {
    fn view(&self) -> HolderView {
        HolderView {
            agent: self.agent,
            mode: self.mode,
            purpose: self.purpose.as_deref().map(str::to_string),
            since: self.since,
            expires_at: self.expires_at,
            token: self.token,
        }
    }
}

#[derive(Default)]
struct FunctionLock {
    holders: Vec<Holder>,
    queue: VecDeque<RequestId>,
}

struct Waiting {
    agent: AgentId,
    targets: Vec<LockTarget>,
    ttl: Duration,
    purpose: Option<Arc<str>>,
    since: SystemTime,
    notify: Arc<Notify>,
}

/// What happened to a waiting request, for its waiter to collect.
enum Settled {
    Granted {
        grant: Grant,
        /// What the agent held of each target before the grant, so an
        /// unobserved grant can be undone exactly.
        previous: Vec<(FunctionId, Option<Holder>)>,
    },
    AgentEnded,
}

struct State {
    functions: IdMap<FunctionId, FunctionLock>,
    /// Waiting requests by id; ids rise with arrival, so this is arrival
    /// order.
    waiting: BTreeMap<RequestId, Waiting>,
    settled: IdMap<RequestId, Settled>,
    held: IdMap<AgentId, Vec<FunctionId>>,
    /// Leases that lapsed, until their agent releases, re-acquires or ends.
    expired: IdMap<(AgentId, FunctionId), (FencingToken, SystemTime)>,
    last_token: u64,
    next_request: RequestId,
    /// When the sweeper will next wake (the earliest lease expiry it knew
    /// of); a grant that expires sooner sets `sweep_sooner` to wake it.
    sweep_at: Option<Instant>,
    sweep_sooner: bool,
}

pub struct LockTable {
    state: Mutex<State>,
    config: LockConfig,
    clock: Clock,
    sweeper: Notify,
}

/// A clock reading taken once per operation. Wall-clock times (for
/// display only) are derived from the monotonic instant and a base taken
/// when the table was made, so an operation reads the clock once.
#[derive(Clone, Copy)]
struct Now {
    instant: Instant,
    system: SystemTime,
}

#[derive(Clone, Copy)]
struct Clock {
    base_instant: Instant,
    base_system: SystemTime,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base_instant: Instant::now(),
            base_system: SystemTime::now(),
        }
    }

    fn now(&self) -> Now {
        let instant = Instant::now();
        Now {
            instant,
            system: self.base_system + instant.saturating_duration_since(self.base_instant),
        }
    }
}

impl State {
    /// Drops expired holders of `f`, remembering their leases as expired.
    fn purge(&mut self, f: FunctionId, now: Now) {
        let Some(lock) = self.functions.get_mut(&f) else {
            return;
        };
        if purge_lock(f, lock, &mut self.held, &mut self.expired, now) {
            self.drop_if_idle(f);
        }
    }

    fn unhold(&mut self, agent: AgentId, f: FunctionId) {
        // The agent's entry stays (empty) until it ends, so that an agent
        // cycling one lock does not allocate on every grant.
        if let Some(list) = self.held.get_mut(&agent) {
            list.retain(|x| *x != f);
        }
    }

    /// Function entries stay while the table is small, so that locking the
    /// same functions again does not allocate; past a bound, idle ones go.
    fn drop_if_idle(&mut self, f: FunctionId) {
        if self.functions.len() > IDLE_ENTRIES
            && self
                .functions
                .get(&f)
                .is_some_and(|l| l.holders.is_empty() && l.queue.is_empty())
        {
            self.functions.remove(&f);
        }
    }

    /// The conflicts of one target of a request from `agent`; `request` is
    /// the request's id if it waits (only waiters ahead of it count), or
    /// `None` for a new request (every waiter is ahead).
    fn blockers(
        &self,
        agent: AgentId,
        target: LockTarget,
        request: Option<RequestId>,
    ) -> (Vec<&Holder>, Vec<(usize, RequestId)>) {
        let Some(lock) = self.functions.get(&target.function) else {
            return (Vec::new(), Vec::new());
        };
        let holders: Vec<&Holder> = lock
            .holders
            .iter()
            .filter(|h| h.agent != agent && h.mode.conflicts_with(target.mode))
            .collect();
        // Refreshing what one already holds changes nothing for anyone, so
        // waiters do not hold it back. An upgrade does change what others
        // can get, so it queues behind earlier conflicting waiters like any
        // other request (a reader upgrading while a writer waits is then a
        // deadlock, refused at once).
        if lock
            .holders
            .iter()
            .any(|h| h.agent == agent && h.mode >= target.mode)
        {
            return (holders, Vec::new());
        }
        let mut ahead = Vec::new();
        for (idx, rid) in lock.queue.iter().enumerate() {
            if Some(*rid) == request {
                break;
            }
            let w = &self.waiting[rid];
            if w.agent == agent {
                continue;
            }
            let mode = w
                .targets
                .iter()
                .find(|t| t.function == target.function)
                .map(|t| t.mode)
                .expect("a queued request targets the function");
            if mode.conflicts_with(target.mode) {
                ahead.push((idx, *rid));
            }
        }
        (holders, ahead)
    }

    /// Returns true if and only if every target is free for `agent` by the
    /// FIFO rule; the same decision as `blockers`, without allocating.
    /// Expired holders count as absent, whether or not they were purged.
    fn grantable(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        now: Now,
    ) -> bool {
        targets
            .iter()
            .all(|t| self.free_for(agent, *t, request, now))
    }

    fn free_for(
        &self,
        agent: AgentId,
        target: LockTarget,
        request: Option<RequestId>,
        now: Now,
    ) -> bool {
        let Some(lock) = self.functions.get(&target.function) else {
            return true;
        };
        let mut refresh = false;
        for h in &lock.holders {
            if h.expires <= now.instant {
                continue;
            }
            if h.agent == agent {
                refresh |= h.mode >= target.mode;
            } else if h.mode.conflicts_with(target.mode) {
                return false;
            }
        }
        if refresh {
            return true;
        }
        for rid in &lock.queue {
            if Some(*rid) == request {
                break;
            }
            let w = &self.waiting[rid];
            if w.agent != agent
                && w.targets
                    .iter()
                    .any(|t| t.function == target.function && t.mode.conflicts_with(target.mode))
            {
                return false;
            }
        }
        true
    }

    fn denial(&self, agent: AgentId, targets: &[LockTarget], request: Option<RequestId>) -> Denial {
        let mut blocked = Vec::new();
        for t in targets {
            let (holders, ahead) = self.blockers(agent, *t, request);
            if holders.is_empty() && ahead.is_empty() {
                continue;
            }
            let queue = self.functions.get(&t.function).map(|l| &l.queue);
            let queue_length = queue.map_or(0, |q| q.len());
            let queue_position = match (request, queue) {
                (Some(rid), Some(q)) => q
                    .iter()
                    .position(|r| *r == rid)
                    .map_or(queue_length + 1, |p| p + 1),
                _ => queue_length + 1,
            };
            blocked.push(Blocked {
                function: t.function,
                holders: holders.iter().map(|h| h.view()).collect(),
                waiting_ahead: ahead
                    .iter()
                    .map(|(idx, rid)| self.waiter_view(*rid, t.function, idx + 1))
                    .collect(),
                queue_position,
                queue_length,
            });
        }
        Denial { blocked }
    }

    fn waiter_view(&self, rid: RequestId, f: FunctionId, position: usize) -> WaiterView {
        let w = &self.waiting[&rid];
        WaiterView {
            agent: w.agent,
            mode: w
                .targets
                .iter()
                .find(|t| t.function == f)
                .map_or(LockMode::Read, |t| t.mode),
            position,
            since: w.since,
            purpose: w.purpose.as_deref().map(str::to_string),
        }
    }

    /// Grants every target to `agent`. The caller has checked grantable.
    /// When `previous` is given, records what the agent held of each target
    /// before, so the grant can be undone exactly.
    fn grant(
        &mut self,
        agent: AgentId,
        targets: &[LockTarget],
        ttl: Duration,
        purpose: &Option<Arc<str>>,
        now: Now,
        mut previous: Option<&mut Vec<(FunctionId, Option<Holder>)>>,
    ) -> Grant {
        self.last_token += 1;
        let token = FencingToken(self.last_token);
        let expires = now.instant + ttl;
        let expires_at = now.system + ttl;
        let mut locks = Vec::with_capacity(targets.len());
        for t in targets {
            let lock = self.functions.entry(t.function).or_default();
            purge_lock(t.function, lock, &mut self.held, &mut self.expired, now);
            if !self.expired.is_empty() {
                self.expired.remove(&(agent, t.function));
            }
            let prior = lock.holders.iter().position(|h| h.agent == agent);
            let mode = match prior {
                Some(idx) => {
                    let h = &mut lock.holders[idx];
                    if let Some(p) = previous.as_deref_mut() {
                        p.push((t.function, Some(h.clone())));
                    }
                    h.mode = h.mode.max(t.mode);
                    h.token = token;
                    h.expires = expires;
                    h.expires_at = expires_at;
                    h.purpose = purpose.clone();
                    h.mode
                }
                None => {
                    if let Some(p) = previous.as_deref_mut() {
                        p.push((t.function, None));
                    }
                    lock.holders.push(Holder {
                        agent,
                        mode: t.mode,
                        token,
                        since: now.system,
                        expires,
                        expires_at,
                        purpose: purpose.clone(),
                    });
                    self.held.entry(agent).or_default().push(t.function);
                    t.mode
                }
            };
            locks.push(HeldLock {
                function: t.function,
                mode,
                token,
                granted_at: now.system,
                expires_at,
            });
        }
        if self.sweep_at.is_none_or(|at| expires < at) {
            self.sweep_at = Some(expires);
            self.sweep_sooner = true;
        }
        Grant { token, locks }
    }

    /// Removes a waiting request from its queues and wakes those behind it.
    fn dequeue(&mut self, rid: RequestId) -> Option<Waiting> {
        let w = self.waiting.remove(&rid)?;
        for t in &w.targets {
            if let Some(lock) = self.functions.get_mut(&t.function) {
                lock.queue.retain(|r| *r != rid);
                for other in &lock.queue {
                    if let Some(o) = self.waiting.get(other) {
                        o.notify.notify_one();
                    }
                }
            }
            self.drop_if_idle(t.function);
        }
        Some(w)
    }

    /// Grants waiting requests, in arrival order, that can be granted now.
    fn pump(&mut self, now: Now) {
        let ids: Vec<RequestId> = self.waiting.keys().copied().collect();
        for rid in ids {
            let Some(w) = self.waiting.get(&rid) else {
                continue;
            };
            let targets = w.targets.clone();
            let agent = w.agent;
            for t in &targets {
                self.purge(t.function, now);
            }
            if !self.grantable(agent, &targets, Some(rid), now) {
                continue;
            }
            let w = self.dequeue(rid).expect("present");
            let mut previous = Vec::with_capacity(targets.len());
            let grant = self.grant(agent, &targets, w.ttl, &w.purpose, now, Some(&mut previous));
            self.settled
                .insert(rid, Settled::Granted { grant, previous });
            w.notify.notify_one();
        }
    }

    /// Agents that `agent`'s request (waiting as `request`, or new) would
    /// wait for.
    fn waits_for(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
    ) -> Vec<AgentId> {
        let mut out = Vec::new();
        for t in targets {
            let (holders, ahead) = self.blockers(agent, *t, request);
            out.extend(holders.iter().map(|h| h.agent));
            out.extend(ahead.iter().map(|(_, rid)| self.waiting[rid].agent));
        }
        out.sort();
        out.dedup();
        out
    }

    /// A path in the wait-for graph from `from` back to `to`, if any.
    fn cycle_to(&self, to: AgentId, from: &[AgentId]) -> Option<Vec<AgentId>> {
        // Edges of each agent: the union over its waiting requests.
        let mut edges: IdMap<AgentId, Vec<AgentId>> = IdMap::default();
        for (rid, w) in &self.waiting {
            let next = self.waits_for(w.agent, &w.targets, Some(*rid));
            edges.entry(w.agent).or_default().extend(next);
        }
        let mut parent: IdMap<AgentId, AgentId> = IdMap::default();
        let mut stack: Vec<AgentId> = Vec::new();
        for a in from {
            if *a == to {
                return Some(vec![to, to]);
            }
            if !parent.contains_key(a) {
                parent.insert(*a, to);
                stack.push(*a);
            }
        }
        while let Some(a) = stack.pop() {
            for b in edges.get(&a).into_iter().flatten() {
                if *b == to {
                    let mut path = vec![to, a];
                    let mut cur = a;
                    while let Some(p) = parent.get(&cur) {
                        if *p == to {
                            break;
                        }
                        path.push(*p);
                        cur = *p;
                    }
                    // path is to, a, parent(a), ..., first hop: reverse the
                    // hops so it reads as the wait order.
                    let mut cycle = vec![to];
                    cycle.extend(path[1..].iter().rev());
                    cycle.push(to);
                    return Some(cycle);
                }
                if !parent.contains_key(b) {
                    parent.insert(*b, a);
                    stack.push(*b);
                }
            }
        }
        None
    }

    fn earliest_expiry(&self) -> Option<Instant> {
        self.functions
            .values()
            .flat_map(|l| l.holders.iter().map(|h| h.expires))
            .min()
    }

    fn release(&mut self, agent: AgentId, f: FunctionId) -> Option<LockMode> {
        if !self.expired.is_empty() {
            self.expired.remove(&(agent, f));
        }
        let lock = self.functions.get_mut(&f)?;
        let idx = lock.holders.iter().position(|h| h.agent == agent)?;
        let h = lock.holders.swap_remove(idx);
        self.unhold(agent, f);
        self.drop_if_idle(f);
        Some(h.mode)
    }
}

/// Drops the expired holders of one function's lock, remembering their
/// leases as expired and taking the function off their agents' lists.
/// Returns true if and only if it dropped any.
fn purge_lock(
    f: FunctionId,
    lock: &mut FunctionLock,
    held: &mut IdMap<AgentId, Vec<FunctionId>>,
    expired: &mut IdMap<(AgentId, FunctionId), (FencingToken, SystemTime)>,
    now: Now,
) -> bool {
    if !lock.holders.iter().any(|h| h.expires <= now.instant) {
        return false;
    }
    lock.holders.retain(|h| {
        let live = h.expires > now.instant;
        if !live {
            expired.insert((h.agent, f), (h.token, h.expires_at));
            if let Some(list) = held.get_mut(&h.agent) {
                list.retain(|x| *x != f);
            }
        }
        live
    });
    true
}

/// Normalises a request's targets: one per function, the stronger mode, in
/// function order. Already-normal requests (the common single-function
/// one) are used as they are, without allocating.
fn normalise(targets: &[LockTarget]) -> Result<Cow<'_, [LockTarget]>, AcquireError> {
    if targets.is_empty() {
        return Err(AcquireError::Invalid("no functions to lock".into()));
    }
    if targets.windows(2).all(|w| w[0].function < w[1].function) {
        return Ok(Cow::Borrowed(targets));
    }
    let mut by_function: BTreeMap<FunctionId, LockMode> = BTreeMap::new();
    for t in targets {
        let m = by_function.entry(t.function).or_insert(t.mode);
        *m = (*m).max(t.mode);
    }
    Ok(Cow::Owned(
        by_function
            .into_iter()
            .map(|(function, mode)| LockTarget { function, mode })
            .collect(),
    ))
}

/// Removes its request from the queues if the acquire future is dropped
/// before it finished, and undoes a grant nobody collected.
struct WaitGuard<'a> {
    table: &'a LockTable,
    rid: RequestId,
    agent: AgentId,
    done: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let now = self.table.clock.now();
        let mut s = self.table.lock_state();
        s.dequeue(self.rid);
        if let Some(Settled::Granted { previous, .. }) = s.settled.remove(&self.rid) {
            // Restore exactly what was held before: mode, token, lease and
            // purpose, so an abandoned wait neither upgrades nor extends.
            for (f, prior) in previous {
                match prior {
                    None => {
                        s.release(self.agent, f);
                    }
                    Some(old) => {
                        if let Some(lock) = s.functions.get_mut(&f)
                            && let Some(h) = lock.holders.iter_mut().find(|h| h.agent == self.agent)
                        {
                            *h = old;
                        }
                    }
                }
            }
        }
        s.pump(now);
        self.table.unlock(s);
    }
}

impl LockTable {
    pub fn new(config: LockConfig) -> Arc<LockTable> {
        Arc::new(LockTable {
            state: Mutex::new(State {
                functions: IdMap::default(),
                waiting: BTreeMap::new(),
                settled: IdMap::default(),
                held: IdMap::default(),
                expired: IdMap::default(),
                last_token: config.fencing_base,
                next_request: 1,
                sweep_at: None,
                sweep_sooner: false,
            }),
            config,
            clock: Clock::new(),
            sweeper: Notify::new(),
        })
    }

    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in this file; the
        // state is still consistent between operations, so keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl(&self, ttl: Option<Duration>) -> Result<Duration, AcquireError> {
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        if ttl.is_zero() {
            return Err(AcquireError::Invalid(
                "a lease needs a ttl above zero".into(),
            ));
        }
        Ok(ttl.min(self.config.max_ttl))
    }

    /// Grants the whole request now or nothing.
    pub fn try_acquire(&self, req: &LockRequest) -> Result<Grant, AcquireError> {
        let targets = normalise(&req.targets)?;
        let ttl = self.ttl(req.ttl)?;
        let now = self.clock.now();
        let mut s = self.lock_state();
        if !s.grantable(req.agent, &targets, None, now) {
            for t in targets.iter() {
                s.purge(t.function, now);
            }
            return Err(AcquireError::Denied(s.denial(req.agent, &targets, None)));
        }
        let purpose = req.purpose.as_deref().map(Arc::from);
        let grant = s.grant(req.agent, &targets, ttl, &purpose, now, None);
        if !s.waiting.is_empty() {
            s.pump(now);
        }
        self.unlock(s);
        Ok(grant)
    }

    /// Grants the request, waiting up to `wait` in the queues for it.
    pub async fn acquire(
        &self,
        req: LockRequest,
        wait: Duration,
        cancel: &CancellationToken,
        progress: Option<mpsc::UnboundedSender<WaitProgress>>,
    ) -> Result<Grant, AcquireError> {
        if wait.is_zero() {
            return self.try_acquire(&req);
        }
        let targets = normalise(&req.targets)?.into_owned();
        let ttl = self.ttl(req.ttl)?;
        let start = Instant::now();
        let deadline = start + wait;
        let notify = Arc::new(Notify::new());
        let rid = {
            let now = self.clock.now();
            let mut s = self.lock_state();
            for t in &targets {
                s.purge(t.function, now);
            }
            let purpose: Option<Arc<str>> = req.purpose.as_deref().map(Arc::from);
            if s.grantable(req.agent, &targets, None, now) {
                let grant = s.grant(req.agent, &targets, ttl, &purpose, now, None);
                self.unlock(s);
                return Ok(grant);
            }
            let blockers = s.waits_for(req.agent, &targets, None);
            if let Some(cycle) = s.cycle_to(req.agent, &blockers) {
                return Err(AcquireError::Deadlock {
                    cycle,
                    denial: s.denial(req.agent, &targets, None),
                });
            }
            let rid = s.next_request;
            s.next_request += 1;
            for t in &targets {
                s.functions
                    .entry(t.function)
                    .or_default()
                    .queue
                    .push_back(rid);
            }
            s.waiting.insert(
                rid,
                Waiting {
                    agent: req.agent,
                    targets: targets.clone(),
                    ttl,
                    purpose,
                    since: now.system,
                    notify: notify.clone(),
                },
            );
            rid
        };
        let mut guard = WaitGuard {
            table: self,
            rid,
            agent: req.agent,
            done: false,
        };
        let mut last_report: Option<Vec<Blocked>> = None;
        if let Some(tx) = &progress {
            // Report the starting position at once.
            let blocked = self
                .lock_state()
                .denial(req.agent, &targets, Some(rid))
                .blocked;
            let _ = tx.send(WaitProgress {
                waited: Duration::ZERO,
                blocked: blocked.clone(),
            });
            last_report = Some(blocked);
        }
        let mut next_tick = Instant::now() + self.config.progress_interval;
        loop {
            let mut timed_out = false;
            let mut cancelled = false;
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep_until(deadline) => timed_out = true,
                _ = cancel.cancelled() => cancelled = true,
                _ = tokio::time::sleep_until(next_tick) => {}
            }
            if cancelled || cancel.is_cancelled() {
                // Even a grant the pump made a moment ago is undone: the
                // caller is gone and would never learn it holds the locks.
                // The guard leaves the queue, restores what was held
                // before, and wakes those behind.
                drop(guard);
                return Err(AcquireError::Cancelled);
            }
            let now = self.clock.now();
            let mut s = self.lock_state();
            match s.settled.remove(&rid) {
                Some(Settled::Granted { grant, .. }) => {
                    guard.done = true;
                    self.unlock(s);
                    return Ok(grant);
                }
                Some(Settled::AgentEnded) => {
                    guard.done = true;
                    return Err(AcquireError::AgentEnded);
                }
                None => {}
            }
            if timed_out {
                for t in &targets {
                    s.purge(t.function, now);
                }
                let denial = s.denial(req.agent, &targets, Some(rid));
                s.dequeue(rid);
                s.pump(now);
                self.unlock(s);
                guard.done = true;
                return Err(AcquireError::Timeout(denial));
            }
            if let Some(tx) = &progress {
                let blocked = s.denial(req.agent, &targets, Some(rid)).blocked;
                let tick = now.instant >= next_tick;
                if tick || last_report.as_ref() != Some(&blocked) {
                    let _ = tx.send(WaitProgress {
                        waited: now.instant.saturating_duration_since(start),
                        blocked: blocked.clone(),
                    });
                    last_report = Some(blocked);
                }
            }
            if now.instant >= next_tick {
                next_tick = now.instant + self.config.progress_interval;
            }
        }
    }

    /// Releases `functions` (or everything) held by `agent`, and forgets
    /// their expired leases.
    pub fn release(
        &self,
        agent: AgentId,
        functions: Option<&[FunctionId]>,
    ) -> Vec<(FunctionId, LockMode)> {
        // No clock reading unless someone waits: removing a holder needs no
        // time, and a lease that lapsed a moment ago is removed all the same.
        let mut s = self.lock_state();
        let mut released = Vec::with_capacity(functions.map_or(4, <[FunctionId]>::len));
        let mut one = |s: &mut State, f: FunctionId| {
            if let Some(mode) = s.release(agent, f) {
                released.push((f, mode));
            }
        };
        match functions {
            Some(fs) => {
                for f in fs {
                    one(&mut s, *f);
                }
            }
            None => {
                let mut all = s.held.get(&agent).cloned().unwrap_or_default();
                all.extend(
                    s.expired
                        .keys()
                        .filter(|(a, _)| *a == agent)
                        .map(|(_, f)| *f),
                );
                for f in all {
                    one(&mut s, f);
                }
            }
        }
        if !s.waiting.is_empty() {
            let now = self.clock.now();
            s.pump(now);
        }
        self.unlock(s);
        released
    }

    /// Ends an agent: releases all it holds, removes its waiting requests
    /// (their acquire calls return `AgentEnded`), forgets its leases.
    pub fn end_agent(&self, agent: AgentId) -> EndedAgent {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let held = s.held.remove(&agent).unwrap_or_default();
        let mut released = Vec::new();
        for f in held {
            if let Some(mode) = s.release(agent, f) {
                released.push((f, mode));
            }
        }
        s.expired.retain(|(a, _), _| *a != agent);
        let mine: Vec<RequestId> = s
            .waiting
            .iter()
            .filter(|(_, w)| w.agent == agent)
            .map(|(rid, _)| *rid)
            .collect();
        for rid in &mine {
            if let Some(w) = s.dequeue(*rid) {
                s.settled.insert(*rid, Settled::AgentEnded);
                w.notify.notify_one();
            }
        }
        s.pump(now);
        self.unlock(s);
        EndedAgent {
            released,
            n_dequeued: mine.len(),
        }
    }

    /// The agent's lease on a function, as of this instant.
    pub fn lease(&self, agent: AgentId, function: FunctionId) -> LeaseCheck {
        let now = self.clock.now();
        let mut s = self.lock_state();
        s.purge(function, now);
        if let Some(h) = s
            .functions
            .get(&function)
            .and_then(|l| l.holders.iter().find(|h| h.agent == agent))
        {
            return LeaseCheck::Live(HeldLock {
                function,
                mode: h.mode,
                token: h.token,
                granted_at: h.since,
                expires_at: h.expires_at,
            });
        }
        match s.expired.get(&(agent, function)) {
            Some((token, at)) => LeaseCheck::Expired {
                token: *token,
                expired_at: Some(*at),
            },
            None => LeaseCheck::None,
        }
    }

    /// Live holders other than `agent` whose mode conflicts with `mode`.
    pub fn conflicting_holders(
        &self,
        agent: AgentId,
        function: FunctionId,
        mode: LockMode,
    ) -> Vec<HolderView> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        s.purge(function, now);
        s.functions
            .get(&function)
            .map(|l| {
                l.holders
                    .iter()
                    .filter(|h| h.agent != agent && h.mode.conflicts_with(mode))
                    .map(Holder::view)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live holder of a function.
    pub fn holders(&self, function: FunctionId) -> Vec<HolderView> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        s.purge(function, now);
        s.functions
            .get(&function)
            .map(|l| l.holders.iter().map(Holder::view).collect())
            .unwrap_or_default()
    }

    /// Everything `agent` holds now.
    pub fn held_by(&self, agent: AgentId) -> Vec<HeldLock> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let fs = s.held.get(&agent).cloned().unwrap_or_default();
        for f in &fs {
            s.purge(*f, now);
        }
        let mut out: Vec<HeldLock> = s
            .held
            .get(&agent)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let h = s
                    .functions
                    .get(f)?
                    .holders
                    .iter()
                    .find(|h| h.agent == agent)?;
                Some(HeldLock {
                    function: *f,
                    mode: h.mode,
                    token: h.token,
                    granted_at: h.since,
                    expires_at: h.expires_at,
                })
            })
            .collect();
        out.sort_by_key(|l| l.function);
        out
    }

    /// Every function with holders or waiters, in id order.
    pub fn status(&self) -> Vec<LockView> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let fs: Vec<FunctionId> = s.functions.keys().copied().collect();
        for f in fs {
            s.purge(f, now);
        }
        let mut out: Vec<LockView> = s
            .functions
            .iter()
            .filter(|(_, l)| !l.holders.is_empty() || !l.queue.is_empty())
            .map(|(f, l)| LockView {
                function: *f,
                holders: l.holders.iter().map(Holder::view).collect(),
                waiters: l
                    .queue
                    .iter()
                    .enumerate()
                    .map(|(idx, rid)| s.waiter_view(*rid, *f, idx + 1))
                    .collect(),
            })
            .collect();
        out.sort_by_key(|v| v.function);
        out
    }

    /// The highest fencing token handed out.
    pub fn fencing_high_water(&self) -> u64 {
        self.lock_state().last_token
    }

    /// Expires due leases and grants waiters; what the sweeper does.
    pub fn sweep(&self) -> Option<Instant> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let fs: Vec<FunctionId> = s.functions.keys().copied().collect();
        for f in fs {
            s.purge(f, now);
        }
        s.pump(now);
        let next = s.earliest_expiry();
        s.sweep_at = next;
        s.sweep_sooner = false;
        next
    }

    /// Releases the state and wakes the sweeper if a grant made under it
    /// expires before the sweeper planned to wake.
    fn unlock(&self, mut s: MutexGuard<'_, State>) {
        let wake = std::mem::take(&mut s.sweep_sooner);
        drop(s);
        if wake {
            self.sweeper.notify_one();
        }
    }

    /// Starts the task that sleeps until the earliest lease expiry, then
    /// expires it and wakes waiters; re-armed whenever a grant is made.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let table = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(t) = table.upgrade() else { return };
                let next = t.sweep();
                let wake = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = t.sweeper.notified() => {}
                    _ = wake => {}
                }
            }
        })
    }

    /// Waiting requests, for status and tests.
    pub fn n_waiting(&self) -> usize {
        self.lock_state().waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(agent: AgentId, fs: &[(u64, LockMode)]) -> LockRequest {
        LockRequest {
            agent,
            targets: fs
                .iter()
                .map(|(f, m)| LockTarget {
                    function: FunctionId(*f),
                    mode: *m,
                })
                .collect(),
            ttl: None,
            purpose: None,
        }
    }

    #[tokio::test]
    async fn readers_share_writers_exclude() {
        let t = LockTable::new(LockConfig::default());
        let (a, b) = (AgentId(1), AgentId(2));
        t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        t.try_acquire(&req(b, &[(1, LockMode::Read)])).unwrap();
        let err = t.try_acquire(&req(b, &[(1, LockMode::Write)])).unwrap_err();
        let AcquireError::Denied(d) = err else {
            panic!("{err:?}")
        };
        assert_eq!(d.blocked[0].holders[0].agent, a);
        assert_eq!(
            (d.blocked[0].queue_position, d.blocked[0].queue_length),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn failed_batch_keeps_what_was_held() {
        let t = LockTable::new(LockConfig::default());
        let (a, b) = (AgentId(1), AgentId(2));
        t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        t.try_acquire(&req(b, &[(2, LockMode::Write)])).unwrap();
        assert!(
            t.try_acquire(&req(
                a,
                &[
                    (1, LockMode::Write),
                    (2, LockMode::Read),
                    (3, LockMode::Write)
                ]
            ))
            .is_err()
        );
        let held = t.held_by(a);
        assert_eq!(held.len(), 1);
        assert_eq!(
            (held[0].function, held[0].mode),
            (FunctionId(1), LockMode::Read)
        );
    }

    #[tokio::test]
    async fn upgrade_when_sole_reader() {
        let t = LockTable::new(LockConfig::default());
        let a = AgentId(1);
        let g1 = t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        let g2 = t.try_acquire(&req(a, &[(1, LockMode::Write)])).unwrap();
        assert!(g2.token > g1.token);
        assert_eq!(g2.locks[0].mode, LockMode::Write);
        // Asking for read while holding write keeps write.
        let g3 = t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        assert_eq!(g3.locks[0].mode, LockMode::Write);
    }

    #[tokio::test]
    async fn invalid_requests_are_refused() {
        let t = LockTable::new(LockConfig::default());
        assert!(matches!(
            t.try_acquire(&req(AgentId(1), &[])),
            Err(AcquireError::Invalid(_))
        ));
        let mut r = req(AgentId(1), &[(1, LockMode::Read)]);
        r.ttl = Some(Duration::ZERO);
        assert!(matches!(t.try_acquire(&r), Err(AcquireError::Invalid(_))));
    }
}
