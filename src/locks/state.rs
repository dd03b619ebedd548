//! The lock table's state and its rules: who holds what, who waits where,
//! and every decision about them. Synchronous: each operation is a function
//! of the state and a clock reading handed in (`Now`). Nothing here takes a
//! lock, reads a clock, sleeps or needs a runtime, so the unit tests drive
//! it step by step; the mutex and the clock are `table.rs`, waiting for a
//! decision is `wait.rs`.
//!
//! This file holds the data, grants and releases. Beside it, each on one
//! part of the state: `state/keys.rs` (the overlap rule: a resource's key
//! path and the mode matrix), `state/slots.rs` (each key interned once
//! into a numbered slot), `state/holders.rs` (what a key records),
//! `state/fast.rs` (the common request checked and granted in one walk),
//! `state/conflicts.rs` (the FIFO rule), `state/request.rs` (checking and
//! normalising requests, semaphores' capacities), `state/queue.rs`
//! (admitting, pumping and taking back waiting requests),
//! `state/leases.rs` (expiry, the sweep, breaking and giving back),
//! `state/deadlock.rs` (the graph reduction), `state/views.rs` (denials,
//! holders, queues and leases as shown to callers).
//!
//! Rules (DESIGN.md section 5), for every kind of resource and for mixed
//! requests alike:
//! - A request is granted only if, for every key of every resource it
//!   names, it conflicts with no live holder other than its agent and with
//!   no earlier waiter of another agent in that key's queue. On a
//!   semaphore's key, "conflicts" means the permits do not fit: live
//!   holders' permits plus earlier waiters' permits plus its own exceed the
//!   capacity. Only a holder refreshing what it already holds skips the
//!   queue; an upgrade (read to write, more permits) waits its turn.
//!   `State::each_conflict` states this once.
//! - An agent holds a resource once: asking again refreshes the lease and
//!   keeps the stronger claim (write over read, the larger number of
//!   permits).
//! - Leases expire at their instant: every operation drops expired holders
//!   of the keys it looks at before deciding anything, and the FIFO rule
//!   counts an expired holder (and an intention whose locks below have all
//!   expired) as absent even if it was not dropped yet, so an expired lease
//!   neither blocks nor authorises even if the sweeper has not run. The
//!   sweeper only exists to wake waiters when nobody else touches the table.
//! - Waiters are granted by the table (the pump), in arrival order, the
//!   moment they can be; a waiter that gives up at the same instant still
//!   gets the grant if the pump got there first.
//! - A blocking request that could never be granted (a graph reduction of
//!   the waiting part of the table never reaches it) is refused at once as
//!   a deadlock; nobody's held locks are ever revoked.

mod conflicts;
mod deadlock;
pub(super) mod events;
mod fast;
mod hash;
mod holders;
mod keys;
mod leases;
mod queue;
mod request;
mod slots;
#[cfg(test)]
mod testing;
mod views;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::agents::AgentId;
use super::types::{AcquireError, Claim, EndedAgent, FencingToken, Grant, HeldLock, LockTarget};
use crate::locks::resource::Resource;
use hash::IdMap;
use holders::{Hold, Intention, KeyLock};
use keys::{Key, KeyClaim, KeyRef, KeyText, ancestors, own_key, parts};
use slots::{AncestorSlots, SlotId, Slots};

pub(super) use request::normalise;

/// A waiting request's id; ids rise with arrival.
pub(super) type RequestId = u64;

/// How many keys the table keeps around when idle.
const IDLE_ENTRIES: usize = 4096;

/// A clock reading taken once per operation: the monotonic instant that
/// decides leases, and the wall-clock time shown beside it.
#[derive(Clone, Copy)]
pub(super) struct Now {
    pub(super) instant: Instant,
    pub(super) system: SystemTime,
}

struct Waiting {
    agent: AgentId,
    /// Normalised: one per resource, in resource order.
    targets: Vec<LockTarget>,
    /// What the request claims on each of its keys, merged over its
    /// targets, in key order.
    keys: Vec<(Key, KeyClaim)>,
    ttl: Duration,
    purpose: Option<Arc<str>>,
    since: SystemTime,
    notify: Arc<Notify>,
}

impl Waiting {
    /// What this request claims on `key`, if it claims it.
    fn claim_on<S: KeyText>(&self, key: &Key<S>) -> Option<KeyClaim> {
        self.keys
            .binary_search_by(|(k, _)| k.partial_cmp(key).expect("keys are totally ordered"))
            .ok()
            .map(|idx| self.keys[idx].1)
    }

    /// The target whose own key `key` is, else the first of its targets
    /// whose key path holds `key`.
    fn target_on(&self, key: KeyRef<'_>) -> &LockTarget {
        self.targets
            .iter()
            .find(|t| own_key(t) == key)
            .or_else(|| {
                self.targets
                    .iter()
                    .find(|t| parts(t).any(|(k, _)| k == key))
            })
            .unwrap_or(&self.targets[0])
    }
}

/// What a request's targets claim on each key, merged, in key order.
fn merged_keys(targets: &[LockTarget]) -> Vec<(Key, KeyClaim)> {
    let mut merged: BTreeMap<Key, KeyClaim> = BTreeMap::new();
    for t in targets {
        for (key, claim) in parts(t) {
            merged
                .entry(key.owned())
                .and_modify(|c| *c = c.merge(claim))
                .or_insert(claim);
        }
    }
    merged.into_iter().collect()
}

/// What a grant is handed or records beside its targets.
enum Beside<'p> {
    Nothing,
    /// The slots of a single target's key path, as its check found them
    /// (`State::walk_one`).
    Found(fast::Found),
    /// Where to record what the agent held of each target before, so that
    /// a waiter's grant can be undone exactly.
    Previous(&'p mut Vec<(Key, Option<Hold>)>),
}

/// What happened to a waiting request, for its waiter to collect.
enum Settled {
    Granted {
        grant: Grant,
        /// What the agent held of each target before the grant, so an
        /// unobserved grant can be undone exactly.
        previous: Vec<(Key, Option<Hold>)>,
    },
    AgentEnded,
}

/// A new request's way in: granted at once, or queued as a waiting request.
pub(super) enum Admitted {
    Granted(Grant),
    Queued(RequestId),
}

pub(super) struct State {
    keys: Slots,
    /// Waiting requests by id; ids rise with arrival, so this is arrival
    /// order.
    waiting: BTreeMap<RequestId, Waiting>,
    settled: IdMap<RequestId, Settled>,
    /// Each agent's own locks, by key.
    held: IdMap<AgentId, Vec<Key>>,
    /// Leases that lapsed or were broken, until their agent releases,
    /// re-acquires or ends.
    expired: IdMap<(AgentId, Key), (FencingToken, SystemTime)>,
    /// Semaphores' capacities, fixed by the first request granted or queued
    /// on one, or by an operator; kept for the table's life.
    capacities: IdMap<Arc<str>, u32>,
    last_token: u64,
    next_request: RequestId,
    /// When the sweeper will next wake (the earliest lease expiry it knew
    /// of); a grant that expires sooner sets `sweep_sooner` to wake it.
    sweep_at: Option<Instant>,
    sweep_sooner: bool,
    /// No own lock in the table expires before this (`None`: the table
    /// holds none since the last sweep), so `purge` has nothing to do
    /// before it. Lowered by every install, set exactly by every sweep.
    expiry_floor: Option<Instant>,
    /// The recent history, bounded (`state/events.rs`).
    events: events::EventLog,
}

impl State {
    /// An empty table whose first fencing token is `fencing_base + 1`.
    pub(super) fn new(fencing_base: u64) -> State {
        State {
            keys: Slots::default(),
            waiting: BTreeMap::new(),
            settled: IdMap::default(),
            held: IdMap::default(),
            expired: IdMap::default(),
            capacities: IdMap::default(),
            last_token: fencing_base,
            next_request: 1,
            sweep_at: None,
            sweep_sooner: false,
            expiry_floor: None,
            events: events::EventLog::default(),
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
        let found = match self.walk_one(agent, targets, now) {
            fast::Walk::Free(found) => Some(found),
            fast::Walk::Blocked => return Err(self.refuse(agent, targets, now)),
            fast::Walk::NotOne => {
                self.check_capacities(targets)?;
                if !self.grantable(agent, targets, None, now) {
                    return Err(self.refuse(agent, targets, now));
                }
                None
            }
        };
        let purpose = purpose.map(Arc::from);
        let beside = found.map_or(Beside::Nothing, Beside::Found);
        let grant = self.grant(agent, targets, ttl, &purpose, now, beside);
        if !self.waiting.is_empty() {
            self.pump(now);
        }
        Ok(grant)
    }

    /// The refusal of a request that is not grantable now (expired holders
    /// of its resources dropped first, so that the denial is true).
    fn refuse(&mut self, agent: AgentId, targets: &[LockTarget], now: Now) -> AcquireError {
        for t in targets {
            self.purge(own_key(t), now);
        }
        AcquireError::Denied(self.denial(agent, targets, None, now))
    }

    /// Releases `resources` (or everything) held by `agent`, and forgets
    /// their expired leases. Grants no waiter: the caller pumps if anyone
    /// waits (`has_waiters`).
    pub(super) fn release(
        &mut self,
        agent: AgentId,
        resources: Option<&[Resource]>,
        now: Now,
    ) -> Vec<(Resource, Claim)> {
        let mut released = Vec::with_capacity(resources.map_or(4, <[Resource]>::len));
        match resources {
            Some(rs) => {
                for r in rs {
                    if let Some(hold) = self.release_one(agent, KeyRef::of(r), now) {
                        released.push((hold.target.resource, hold.target.claim));
                    }
                }
            }
            None => {
                let mut all = self.held.get(&agent).cloned().unwrap_or_default();
                all.extend(
                    self.expired
                        .keys()
                        .filter(|(a, _)| *a == agent)
                        .map(|(_, k)| k.clone()),
                );
                for key in all {
                    if let Some(hold) = self.release_one(agent, key.as_ref(), now) {
                        released.push((hold.target.resource, hold.target.claim));
                    }
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
        for key in held {
            if let Some(hold) = self.release_one(agent, key.as_ref(), now) {
                released.push((hold.target.resource, hold.target.claim));
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
        released.sort();
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

    /// Locks held with a live lease at `now` (one per agent and resource).
    pub(super) fn n_held(&self, now: Now) -> usize {
        self.held
            .iter()
            .flat_map(|(agent, keys)| keys.iter().map(move |k| (*agent, k)))
            .filter(|(agent, key)| {
                self.keys
                    .get(key.as_ref())
                    .and_then(|l| l.holder(*agent))
                    .and_then(|h| h.live_own(now))
                    .is_some()
            })
            .count()
    }

    /// The highest fencing token handed out.
    pub(super) fn fencing_high_water(&self) -> u64 {
        self.last_token
    }

    /// The record of `key`, if the table has one.
    fn lock_at(&self, key: KeyRef<'_>) -> Option<&KeyLock> {
        self.keys.get(key)
    }

    /// Keys stay while the table is small, so that locking the same
    /// resources again does not allocate; past a bound, idle ones go.
    fn drop_if_idle(&mut self, key: KeyRef<'_>) {
        if self.keys.len() > IDLE_ENTRIES
            && let Some(id) = self.keys.find(key)
        {
            self.drop_slot_if_idle(id);
        }
    }

    fn drop_slot_if_idle(&mut self, id: SlotId) {
        if self.keys.len() > IDLE_ENTRIES && self.keys.lock(id).is_idle() {
            self.keys.remove(id);
        }
    }

    /// Grants every target to `agent`. The caller has checked grantable.
    fn grant(
        &mut self,
        agent: AgentId,
        targets: &[LockTarget],
        ttl: Duration,
        purpose: &Option<Arc<str>>,
        now: Now,
        mut beside: Beside<'_>,
    ) -> Grant {
        self.last_token += 1;
        let token = FencingToken(self.last_token);
        let expires = now.instant + ttl;
        let expires_at = now.system + ttl;
        let mut locks = Vec::with_capacity(targets.len());
        self.fix_capacities(targets);
        for t in targets {
            let key = own_key(t);
            self.purge(key, now);
            if !self.expired.is_empty() {
                self.expired.remove(&(agent, key.owned()));
            }
            let (own, above) = match beside {
                Beside::Found(f) if targets.len() == 1 => (f.own, f.above),
                _ => (self.keys.make(key), self.make_above(t)),
            };
            let hold = Hold {
                target: LockTarget {
                    resource: t.resource.clone(),
                    claim: t.claim,
                    // Where the holder record keeps the slots above, they
                    // say where the intention is (see `Hold::target`).
                    module: if above.kept().is_some() {
                        None
                    } else {
                        t.module.clone()
                    },
                    capacity: None,
                },
                token,
                since: now.system,
                expires,
                expires_at,
                purpose: purpose.clone(),
            };
            let (claim, old) = self.install(agent, (own, key), t, above, hold);
            locks.push(HeldLock {
                resource: t.resource.clone(),
                claim,
                token,
                granted_at: now.system,
                expires_at,
            });
            if let Beside::Previous(p) = &mut beside {
                let old = old.map(|(hold, above)| self.whole(hold, above));
                p.push((key.owned(), old));
            }
            self.note(
                events::LockEventKind::Granted,
                agent,
                &t.resource,
                claim,
                Some(token),
                now,
            );
        }
        if self.sweep_at.is_none_or(|at| expires < at) {
            self.sweep_at = Some(expires);
            self.sweep_sooner = true;
        }
        Grant { token, locks }
    }

    /// Puts `hold` on its key (slot `own.0`) as the agent's own lock, and
    /// its intention on every ancestor of `path` (the hold's target, or
    /// one on the same resource in the same module), whose slots `above`
    /// are and the hold keeps. A lock the agent held there is replaced: the
    /// new one keeps the stronger claim and the old one's start, and the
    /// old one's intentions go. Returns the claim now held and the lock
    /// replaced, with the slots above that it stood on.
    fn install(
        &mut self,
        agent: AgentId,
        own: (SlotId, KeyRef<'_>),
        path: &LockTarget,
        above: AncestorSlots,
        mut hold: Hold,
    ) -> (Claim, Option<(Hold, AncestorSlots)>) {
        let (id, key) = own;
        let holder = self.keys.lock_mut(id).holder_mut(agent);
        let (old, old_above) = (holder.own.take(), holder.above);
        if let Some(o) = &old {
            hold.target.claim = o.target.claim.max(hold.target.claim);
            hold.since = o.since;
        }
        let Intention {
            mode,
            expires,
            lease,
        } = hold.intention();
        if self.expiry_floor.is_none_or(|floor| expires < floor) {
            self.expiry_floor = Some(expires);
        }
        self.each_above(above, path, |s, id| {
            s.keys.lock_mut(id).holder_mut(agent).below[mode].add(expires, lease);
        });
        let claim = hold.target.claim;
        let holder = self.keys.lock_mut(id).holder_mut(agent);
        (holder.own, holder.above) = (Some(hold), above);
        match &old {
            Some(o) => self.unintend(agent, o, old_above),
            None => self.held.entry(agent).or_default().push(key.owned()),
        }
        (claim, old.map(|o| (o, old_above)))
    }

    /// `hold` with a function's module filled in from the slots `above` it
    /// stood on (the last is its module's key), so that it can be installed again
    /// after those slots are gone.
    fn whole(&self, mut hold: Hold, above: AncestorSlots) -> Hold {
        if matches!(hold.target.resource, Resource::Function(_))
            && hold.target.module.is_none()
            && let Some(module) = above.kept().and_then(<[SlotId]>::last)
            && let Resource::Module(m) = self.keys.key(*module).resource()
        {
            hold.target.module = Some(m);
        }
        hold
    }

    /// Makes a slot for each key above `path`'s; returns them (as many as
    /// a lock keeps).
    fn make_above(&mut self, path: &LockTarget) -> AncestorSlots {
        let mut slots = AncestorSlots::NONE;
        for (key, _) in ancestors(path) {
            slots.push(self.keys.make(key));
        }
        slots
    }

    /// Calls `f` with the slot of each key above `path`'s: `slots`, or, if
    /// there were too many to keep, those its keys find.
    fn each_above(
        &mut self,
        slots: AncestorSlots,
        path: &LockTarget,
        mut f: impl FnMut(&mut State, SlotId),
    ) {
        match slots.kept() {
            Some(ids) => ids.iter().for_each(|id| f(self, *id)),
            None => {
                for (key, _) in ancestors(path) {
                    if let Some(id) = self.keys.find(key) {
                        f(self, id);
                    }
                }
            }
        }
    }

    /// Takes the agent's own lock off its key and its intention off every
    /// ancestor; returns it.
    fn uninstall(&mut self, agent: AgentId, key: KeyRef<'_>) -> Option<Hold> {
        let id = self.keys.find(key)?;
        let lock = self.keys.lock_mut(id);
        let idx = lock.holders.iter().position(|h| h.agent == agent)?;
        let hold = lock.holders[idx].own.take()?;
        let above = lock.holders[idx].above;
        lock.tidy(agent);
        // The agent's entry stays (empty) until it ends, so that an agent
        // cycling one lock does not allocate on every grant.
        if let Some(list) = self.held.get_mut(&agent)
            && let Some(pos) = list.iter().position(|k| *k == key)
        {
            list.swap_remove(pos);
        }
        self.unintend(agent, &hold, above);
        self.drop_slot_if_idle(id);
        Some(hold)
    }

    /// Takes `hold`'s intention off each key above its own (slots `above`).
    fn unintend(&mut self, agent: AgentId, hold: &Hold, above: AncestorSlots) {
        let Intention { mode, expires, .. } = hold.intention();
        self.each_above(above, &hold.target, |s, id| {
            let lock = s.keys.lock_mut(id);
            if let Some(h) = lock.holders.iter_mut().find(|h| h.agent == agent) {
                h.below[mode].remove(expires);
            }
            lock.tidy(agent);
            s.drop_slot_if_idle(id);
        });
    }

    /// Releases the agent's own lock on `key` and forgets its expired
    /// lease there; returns what it held.
    fn release_one(&mut self, agent: AgentId, key: KeyRef<'_>, now: Now) -> Option<Hold> {
        if !self.expired.is_empty() {
            self.expired.remove(&(agent, key.owned()));
        }
        let hold = self.uninstall(agent, key)?;
        let (resource, claim) = (&hold.target.resource, hold.target.claim);
        self.note(
            events::LockEventKind::Released,
            agent,
            resource,
            claim,
            Some(hold.token),
            now,
        );
        Some(hold)
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
