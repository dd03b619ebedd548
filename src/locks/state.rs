//! The lock table's state and its rules: who holds what, who waits where,
//! and every decision about them. Synchronous: each operation is a function
//! of the state and a clock reading handed in (`Now`). Nothing here takes a
//! lock, reads a clock, sleeps or needs a runtime, so the unit tests drive
//! it step by step; the mutex and the clock are `table.rs`, waiting for a
//! decision is `wait.rs`.
//!
//! This file holds the data, the FIFO rule (`conflicts`), grants and
//! releases. Beside it, each on one part of the state: `state/queue.rs`
//! (admitting, pumping and taking back waiting requests),
//! `state/leases.rs` (expiry and the sweep), `state/deadlock.rs` (the
//! wait-for graph), `state/views.rs` (denials, holders, queues and leases
//! as shown to callers).
//!
//! Rules (DESIGN.md section 5):
//! - A request is granted only if, for every function, it conflicts with no
//!   live holder other than its agent and with no earlier waiter in that
//!   function's queue. Only a holder refreshing what it already holds skips
//!   the queue; an upgrade waits its turn. `conflicts` states this once.
//! - Leases expire at their instant: every operation drops expired holders
//!   of the functions it looks at before deciding anything, and `conflicts`
//!   counts an expired holder as absent even if it was not dropped yet, so
//!   an expired lease neither blocks nor authorises even if the sweeper has
//!   not run. The sweeper only exists to wake waiters when nobody else
//!   touches the table.
//! - Waiters are granted by the table (the pump), in arrival order, the
//!   moment they can be; a waiter that gives up at the same instant still
//!   gets the grant if the pump got there first.
//! - A blocking request that would close a cycle in the wait-for graph is
//!   refused at once; nobody's held locks are ever revoked.

mod deadlock;
mod leases;
mod queue;
#[cfg(test)]
mod testing;
mod views;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::agents::AgentId;
use super::types::{AcquireError, EndedAgent, FencingToken, Grant, HeldLock, LockMode, LockTarget};
use crate::graph::FunctionId;
use leases::purge_lock;

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

/// A waiting request's id; ids rise with arrival.
pub(super) type RequestId = u64;

/// How many function entries the table keeps around when idle.
const IDLE_ENTRIES: usize = 4096;

/// A clock reading taken once per operation: the monotonic instant that
/// decides leases, and the wall-clock time shown beside it.
#[derive(Clone, Copy)]
pub(super) struct Now {
    pub(super) instant: Instant,
    pub(super) system: SystemTime,
}

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

impl Waiting {
    /// The mode this request asks for on `f`, if it asks for `f`.
    fn mode_on(&self, f: FunctionId) -> Option<LockMode> {
        self.targets
            .iter()
            .find(|t| t.function == f)
            .map(|t| t.mode)
    }
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

/// One thing that keeps a target of a request from being granted now.
#[derive(Clone, Copy)]
enum Conflict<'s> {
    /// A live holder of another agent whose mode conflicts.
    Holder(&'s Holder),
    /// An earlier waiting request of another agent whose mode conflicts,
    /// with its 1-based place in the function's queue.
    Waiter {
        request: RequestId,
        agent: AgentId,
        position: usize,
    },
}

impl Conflict<'_> {
    fn agent(&self) -> AgentId {
        match self {
            Conflict::Holder(h) => h.agent,
            Conflict::Waiter { agent, .. } => *agent,
        }
    }
}

/// A new request's way in: granted at once, or queued as a waiting request.
pub(super) enum Admitted {
    Granted(Grant),
    Queued(RequestId),
}

pub(super) struct State {
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

impl State {
    /// An empty table whose first fencing token is `fencing_base + 1`.
    pub(super) fn new(fencing_base: u64) -> State {
        State {
            functions: IdMap::default(),
            waiting: BTreeMap::new(),
            settled: IdMap::default(),
            held: IdMap::default(),
            expired: IdMap::default(),
            last_token: fencing_base,
            next_request: 1,
            sweep_at: None,
            sweep_sooner: false,
        }
    }

    /// Grants the whole request now or returns why not; a failed request
    /// changes nothing but dropping expired holders.
    pub(super) fn try_acquire(
        &mut self,
        agent: AgentId,
        targets: &[LockTarget],
        ttl: Duration,
        purpose: Option<&str>,
        now: Now,
    ) -> Result<Grant, AcquireError> {
        if !self.grantable(agent, targets, None, now) {
            for t in targets {
                self.purge(t.function, now);
            }
            return Err(AcquireError::Denied(self.denial(agent, targets, None, now)));
        }
        let purpose = purpose.map(Arc::from);
        let grant = self.grant(agent, targets, ttl, &purpose, now, None);
        if !self.waiting.is_empty() {
            self.pump(now);
        }
        Ok(grant)
    }

    /// Releases `functions` (or everything) held by `agent`, and forgets
    /// their expired leases. Grants no waiter: the caller pumps if anyone
    /// waits (`has_waiters`), so a release without waiters reads no clock.
    pub(super) fn release(
        &mut self,
        agent: AgentId,
        functions: Option<&[FunctionId]>,
    ) -> Vec<(FunctionId, LockMode)> {
        let mut released = Vec::with_capacity(functions.map_or(4, <[FunctionId]>::len));
        let mut one = |s: &mut State, f: FunctionId| {
            if let Some(mode) = s.release_one(agent, f) {
                released.push((f, mode));
            }
        };
        match functions {
            Some(fs) => {
                for f in fs {
                    one(self, *f);
                }
            }
            None => {
                let mut all = self.held.get(&agent).cloned().unwrap_or_default();
                all.extend(
                    self.expired
                        .keys()
                        .filter(|(a, _)| *a == agent)
                        .map(|(_, f)| *f),
                );
                for f in all {
                    one(self, f);
                }
            }
        }
        released
    }

    /// Ends an agent: releases all it holds, settles its waiting requests
    /// as `AgentEnded` (waking them), forgets its leases, and grants those
    /// it let through.
    pub(super) fn end_agent(&mut self, agent: AgentId, now: Now) -> EndedAgent {
        let held = self.held.remove(&agent).unwrap_or_default();
        let mut released = Vec::new();
        for f in held {
            if let Some(mode) = self.release_one(agent, f) {
                released.push((f, mode));
            }
        }
        self.expired.retain(|(a, _), _| *a != agent);
        let mine: Vec<RequestId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.agent == agent)
            .map(|(rid, _)| *rid)
            .collect();
        for rid in &mine {
            if let Some(w) = self.dequeue(*rid) {
                self.settled.insert(*rid, Settled::AgentEnded);
                w.notify.notify_one();
            }
        }
        self.pump(now);
        EndedAgent {
            released,
            n_dequeued: mine.len(),
        }
    }

    /// Returns true if and only if a grant since the last call expires
    /// before the sweeper planned to wake; clears the flag.
    pub(super) fn take_sweep_sooner(&mut self) -> bool {
        std::mem::take(&mut self.sweep_sooner)
    }

    /// Returns true if and only if some request waits.
    pub(super) fn has_waiters(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Waiting requests.
    pub(super) fn n_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The highest fencing token handed out.
    pub(super) fn fencing_high_water(&self) -> u64 {
        self.last_token
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

    /// The FIFO rule, stated once: what keeps one target of a request from
    /// `agent` from being granted now. First the live holders of other
    /// agents whose mode conflicts, then the earlier waiters of other
    /// agents whose mode conflicts. `request` is the request's id if it
    /// waits (only waiters ahead of it count), or `None` for a new request
    /// (every waiter is ahead). Expired holders count as absent, whether or
    /// not they were purged. The target is free if and only if this yields
    /// nothing, and it is lazy, so asking that costs no allocation.
    fn conflicts(
        &self,
        agent: AgentId,
        target: LockTarget,
        request: Option<RequestId>,
        now: Now,
    ) -> impl Iterator<Item = Conflict<'_>> {
        let lock = self.functions.get(&target.function);
        let live = lock
            .into_iter()
            .flat_map(|l| &l.holders)
            .filter(move |h| h.expires > now.instant);
        // Refreshing what one already holds changes nothing for anyone, so
        // waiters do not hold it back. An upgrade does change what others
        // can get, so it queues behind earlier conflicting waiters like any
        // other request (a reader upgrading while a writer waits is then a
        // deadlock, refused at once).
        let refresh = live
            .clone()
            .any(|h| h.agent == agent && h.mode >= target.mode);
        let holders = live
            .filter(move |h| h.agent != agent && h.mode.conflicts_with(target.mode))
            .map(Conflict::Holder);
        let waiters = lock
            .filter(|_| !refresh)
            .into_iter()
            .flat_map(|l| &l.queue)
            .take_while(move |rid| Some(**rid) != request)
            .enumerate()
            .filter_map(move |(idx, rid)| {
                let w = &self.waiting[rid];
                let conflicting = w.agent != agent
                    && w.mode_on(target.function)
                        .is_some_and(|m| m.conflicts_with(target.mode));
                conflicting.then_some(Conflict::Waiter {
                    request: *rid,
                    agent: w.agent,
                    position: idx + 1,
                })
            });
        holders.chain(waiters)
    }

    /// Returns true if and only if every target is free for `agent` by the
    /// FIFO rule (`conflicts` yields nothing for any of them).
    fn grantable(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        now: Now,
    ) -> bool {
        targets
            .iter()
            .all(|t| self.conflicts(agent, *t, request, now).next().is_none())
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

    fn release_one(&mut self, agent: AgentId, f: FunctionId) -> Option<LockMode> {
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

/// Normalises a request's targets: one per function, the stronger mode, in
/// function order. Already-normal requests (the common single-function
/// one) are used as they are, without allocating.
pub(super) fn normalise(targets: &[LockTarget]) -> Result<Cow<'_, [LockTarget]>, AcquireError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::state::testing::*;

    #[test]
    fn readers_share_and_a_writer_is_denied_naming_them() {
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(1, R)], now).unwrap();
        s.ask(B, &[(1, R)], now).unwrap();
        let d = s.denied(C, &[(1, W)], now);
        assert_eq!(d.blocked.len(), 1);
        assert_eq!(agents(&d.blocked[0].holders), vec![A, B]);
        assert_eq!(
            (d.blocked[0].queue_position, d.blocked[0].queue_length),
            (1, 0)
        );
    }

    #[test]
    fn a_batch_is_granted_whole_or_not_at_all() {
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(2, W)], now).unwrap();
        let d = s.denied(C, &[(1, W), (2, R), (3, W)], now);
        assert_eq!(d.blocked.len(), 1, "only f2 is blocked");
        assert_eq!(d.blocked[0].function, FunctionId(2));
        assert!(s.held_by(C, now).is_empty(), "nothing of the batch is held");
        // What the failed batch asked for is still free for others.
        s.ask(D, &[(1, W), (3, W)], now).unwrap();
    }

    #[test]
    fn a_refresh_skips_the_queue_but_an_upgrade_waits_its_turn() {
        let (mut s, now) = (State::new(0), start());
        let first = s.ask(A, &[(1, R)], now).unwrap();
        s.queue(B, &[(1, W)], now);
        let refreshed = s.ask(A, &[(1, R)], later(now, 10)).unwrap();
        assert!(refreshed.token > first.token);
        assert!(refreshed.locks[0].expires_at > first.locks[0].expires_at);
        let d = s.denied(A, &[(1, W)], now);
        assert!(d.blocked[0].holders.is_empty(), "A is the only holder");
        assert_eq!(d.blocked[0].waiting_ahead[0].agent, B);
    }
}
