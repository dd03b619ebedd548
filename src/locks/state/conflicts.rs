//! The FIFO rule, stated once (`State::each_conflict`): what keeps one
//! target of a request from being granted now. Everything that decides a
//! grant asks it: a new request, the pump, the deadlock reduction (which
//! asks it about a table where some agents are taken as finished), and the
//! denial a refused request gets.
//!
//! It only looks. It reads each key of the target's path once, and on each
//! key only the agents standing there and the requests queued there, so
//! its cost does not grow with the rest of the table.

use std::ops::ControlFlow;

use super::holders::KeyHolder;
use super::keys::{Key, KeyClaim, own_key, parts};
use super::{Now, RequestId, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::Resource;
use crate::locks::types::LockTarget;

/// One thing that keeps a target of a request from being granted now.
#[derive(Clone, Copy)]
pub(super) enum Conflict<'s> {
    /// A live holder of another agent standing on `key` in a way the
    /// request's claim there conflicts with (or, on a semaphore's key, that
    /// takes permits the request does not fit beside).
    Holder {
        key: &'s Key,
        holder: &'s KeyHolder,
        claim: KeyClaim,
    },
    /// An earlier waiting request of another agent claiming `key` in a way
    /// that conflicts (or that reserves permits the request does not fit
    /// beside).
    Waiter {
        key: &'s Key,
        request: RequestId,
        agent: AgentId,
    },
}

impl Conflict<'_> {
    pub(super) fn agent(&self) -> AgentId {
        match self {
            Conflict::Holder { holder, .. } => holder.agent,
            Conflict::Waiter { agent, .. } => *agent,
        }
    }
}

impl State {
    /// The FIFO rule: calls `f` with each thing that keeps `target` of
    /// `agent`'s request from being granted now, until `f` breaks. For
    /// every key of the target's path: first the live holders of other
    /// agents whose modes conflict with the target's claim there, then the
    /// earlier waiters of other agents whose claims there conflict. On a
    /// semaphore's key nothing conflicts pairwise; instead, if the live
    /// holders' permits and the earlier waiters' permits and the target's
    /// own do not fit in the capacity, every one of them is in the way.
    ///
    /// `request` is the request's id if it waits (only waiters ahead of it
    /// count), or `None` for a new request (every waiter is ahead). A
    /// target the agent already holds at least as strongly (a refresh)
    /// skips the waiters, since it changes nothing for anyone. Expired
    /// holders count as absent, purged or not. Only agents for which
    /// `counts` is true are looked at (the deadlock reduction leaves out
    /// those it takes as finished; everyone else counts all). The target is
    /// free if and only if `f` is never called.
    pub(super) fn each_conflict<'s>(
        &'s self,
        agent: AgentId,
        target: &LockTarget,
        request: Option<RequestId>,
        now: Now,
        counts: impl Fn(AgentId) -> bool,
        mut f: impl FnMut(Conflict<'s>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let counts = &counts;
        let mut refresh: Option<bool> = None;
        for (key, claim) in parts(target) {
            let Some((key, lock)) = self.keys.get_key_value(key) else {
                continue;
            };
            let others = lock
                .holders
                .iter()
                .filter(move |h| h.agent != agent && counts(h.agent));
            let skip_waiters = lock.queue.is_empty()
                || *refresh.get_or_insert_with(|| self.refreshes(agent, target, now));
            let ahead = lock
                .queue
                .iter()
                .take(if skip_waiters { 0 } else { usize::MAX })
                .take_while(move |rid| Some(**rid) != request)
                .map(move |rid| (*rid, &self.waiting[rid]))
                .filter(move |(_, w)| w.agent != agent && counts(w.agent));
            match claim {
                KeyClaim::Modes(modes) => {
                    for h in lock
                        .in_the_way(agent, modes, now)
                        .filter(|h| counts(h.agent))
                    {
                        f(Conflict::Holder {
                            key,
                            holder: h,
                            claim,
                        })?;
                    }
                    for (rid, w) in ahead.clone() {
                        if w.claim_on(key).is_some_and(|c| c.conflicts(claim)) {
                            f(Conflict::Waiter {
                                key,
                                request: rid,
                                agent: w.agent,
                            })?;
                        }
                    }
                }
                KeyClaim::Permits(asked) => {
                    let capacity = self.capacity_for(target).unwrap_or(0) as u64;
                    let held: u64 = others.clone().map(|h| h.live_permits(now) as u64).sum();
                    let reserved: u64 = ahead
                        .clone()
                        .map(|(_, w)| w.claim_on(key).map_or(0, KeyClaim::permits) as u64)
                        .sum();
                    if held + reserved + asked as u64 <= capacity {
                        continue;
                    }
                    for h in others.filter(|h| h.live_permits(now) > 0) {
                        f(Conflict::Holder {
                            key,
                            holder: h,
                            claim,
                        })?;
                    }
                    for (rid, w) in ahead.clone() {
                        f(Conflict::Waiter {
                            key,
                            request: rid,
                            agent: w.agent,
                        })?;
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Returns true if and only if every target is free for `agent` by the
    /// FIFO rule (`each_conflict` finds nothing for any of them).
    pub(super) fn grantable(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        now: Now,
    ) -> bool {
        targets.iter().all(|t| {
            self.each_conflict(agent, t, request, now, |_| true, |_| ControlFlow::Break(()))
                .is_continue()
        })
    }

    /// Returns true if and only if `agent` holds `target`'s resource live
    /// with a claim that covers the target's.
    fn refreshes(&self, agent: AgentId, target: &LockTarget, now: Now) -> bool {
        self.lock_at(own_key(target))
            .and_then(|l| l.holder(agent))
            .and_then(|h| h.live_own(now))
            .is_some_and(|h| h.target.claim.covers(target.claim))
    }

    /// The capacity a semaphore target is decided against: the one set,
    /// else the one it gives (which will be set if it is granted or
    /// queued).
    pub(super) fn capacity_for(&self, target: &LockTarget) -> Option<u32> {
        match &target.resource {
            Resource::Semaphore(name) => {
                self.capacities.get(name.arc()).copied().or(target.capacity)
            }
            _ => None,
        }
    }
}
