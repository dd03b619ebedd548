//! What the state shows of itself: the denial a blocked request gets (what
//! is in its way and its real place in the queue), holders, queues and
//! leases, each as of one clock reading.
//!
//! These only look. Apart from dropping expired holders first (which every
//! operation does, so that an expired lease shows as expired), nothing here
//! changes who holds or waits.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use super::conflicts::Conflict;
use super::holders::{Hold, KeyHolder, KeyLock};
use super::keys::{Key, KeyClaim, KeyRef, KeyText, Modes, own_key, parts};
use super::{Now, RequestId, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::Resource;
use crate::locks::types::{
    Blocked, Denial, HeldLock, HolderView, LeaseCheck, LockMode, LockTarget, LockView,
    SemaphoreUse, WaiterView,
};

impl Hold {
    fn view(&self, agent: AgentId) -> HolderView {
        HolderView {
            agent,
            resource: self.target.resource.clone(),
            claim: self.target.claim,
            below: false,
            purpose: self.purpose.as_deref().map(str::to_string),
            since: self.since,
            expires_at: self.expires_at,
            token: self.token,
        }
    }

    fn held(&self) -> HeldLock {
        HeldLock {
            resource: self.target.resource.clone(),
            claim: self.target.claim,
            token: self.token,
            granted_at: self.since,
            expires_at: self.expires_at,
        }
    }
}

impl KeyHolder {
    /// The agent's locks below `key` in `mode`, as one view, if any is live.
    fn below_view<S: KeyText>(&self, key: &Key<S>, mode: LockMode, now: Now) -> Option<HolderView> {
        let below = &self.below[mode as usize];
        if !below.is_live(now) {
            return None;
        }
        let (_, lease) = below.latest()?;
        Some(HolderView {
            agent: self.agent,
            resource: key.resource(),
            claim: mode.into(),
            below: true,
            purpose: None,
            since: lease.since,
            expires_at: lease.expires_at,
            token: lease.token,
        })
    }

    /// How this holder stands in the way of `claim` on `key`: its own lock
    /// if that conflicts, else the strongest of its locks below that does.
    fn view_against(&self, key: &Key, claim: KeyClaim, now: Now) -> Option<HolderView> {
        let conflicting = match claim {
            KeyClaim::Modes(m) => m.conflicting(),
            KeyClaim::Permits(_) => return self.live_own(now).map(|h| h.view(self.agent)),
        };
        let live = self.live_modes(now, conflicting);
        if live.is_own() {
            return self.live_own(now).map(|h| h.view(self.agent));
        }
        if !live.intersect(Modes::IX).is_empty() {
            return self.below_view(key, LockMode::Write, now);
        }
        if !live.intersect(Modes::IS).is_empty() {
            return self.below_view(key, LockMode::Read, now);
        }
        None
    }
}

impl KeyLock {
    /// What a semaphore's key has taken of `capacity`.
    fn semaphore_use(&self, capacity: u32, now: Now) -> SemaphoreUse {
        SemaphoreUse {
            capacity,
            in_use: self.holders.iter().map(|h| h.live_permits(now)).sum(),
        }
    }
}

/// Adds a holder's view unless the same agent already shows for the same
/// resource the same way.
fn push_holder(views: &mut Vec<HolderView>, view: HolderView) {
    if !views
        .iter()
        .any(|v| v.agent == view.agent && v.resource == view.resource && v.below == view.below)
    {
        views.push(view);
    }
}

impl State {
    /// Why `agent`'s request (waiting as `request`, or new) cannot be
    /// granted now: per blocked target, what `each_conflict` finds and the
    /// request's place among the waiting requests that overlap it.
    pub(in crate::locks) fn denial(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        now: Now,
    ) -> Denial {
        let mut blocked = Vec::new();
        for t in targets {
            let mut holders = Vec::new();
            let mut ahead: Vec<(RequestId, &Key)> = Vec::new();
            let _ = self.each_conflict(
                agent,
                t,
                request,
                now,
                |_| true,
                |c| {
                    match c {
                        Conflict::Holder { key, holder, claim } => {
                            if let Some(view) = holder.view_against(key, claim, now) {
                                push_holder(&mut holders, view);
                            }
                        }
                        Conflict::Waiter { key, request, .. } => {
                            if !ahead.iter().any(|(r, _)| *r == request) {
                                ahead.push((request, key));
                            }
                        }
                    }
                    ControlFlow::Continue(())
                },
            );
            if holders.is_empty() && ahead.is_empty() {
                continue;
            }
            let queue = self.overlapping_queue(t);
            let place = |rid: RequestId| queue.iter().position(|r| *r == rid).map(|p| p + 1);
            ahead.sort_by_key(|(rid, _)| *rid);
            let waiting_ahead = ahead
                .iter()
                .map(|(rid, key)| self.waiter_view(*rid, key, place(*rid).unwrap_or(0)))
                .collect();
            blocked.push(Blocked {
                resource: t.resource.clone(),
                holders,
                waiting_ahead,
                queue_position: request.and_then(place).unwrap_or(queue.len() + 1),
                queue_length: queue.len(),
                semaphore: self.semaphore_use(t, now),
            });
        }
        Denial { blocked }
    }

    /// The waiting requests that overlap `target`'s resource, in arrival
    /// order: those claiming its own key (it or something below it), and
    /// those with a lock of their own on one of its ancestors.
    fn overlapping_queue(&self, target: &LockTarget) -> Vec<RequestId> {
        let own = own_key(target);
        let mut rids = BTreeSet::new();
        for (key, _) in parts(target) {
            let Some(lock) = self.lock_at(key) else {
                continue;
            };
            let whole = key == own;
            rids.extend(lock.queue.iter().copied().filter(|rid| {
                whole
                    || self.waiting[rid]
                        .claim_on(&key)
                        .is_some_and(KeyClaim::is_own)
            }));
        }
        rids.into_iter().collect()
    }

    /// The waiting requests of other agents that one of `agent`'s live
    /// locks keeps waiting (the FIFO rule names it as a holder in their
    /// way), in arrival order, each shown on the resource it waits for.
    pub(in crate::locks) fn waiting_behind(&self, agent: AgentId, now: Now) -> Vec<WaiterView> {
        let mut behind = Vec::new();
        for (rid, w) in &self.waiting {
            if w.agent == agent {
                continue;
            }
            let blocked_by_me =
                w.targets.iter().find(|t| {
                    let mut mine = false;
                    let _ = self.each_conflict(w.agent, t, Some(*rid), now, |_| true, |c| {
                    mine = matches!(c, Conflict::Holder { holder, .. } if holder.agent == agent);
                    if mine {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                });
                    mine
                });
            if let Some(t) = blocked_by_me {
                behind.push(WaiterView {
                    agent: w.agent,
                    resource: t.resource.clone(),
                    claim: t.claim,
                    position: behind.len() + 1,
                    since: w.since,
                    purpose: w.purpose.as_deref().map(str::to_string),
                });
            }
        }
        behind
    }

    fn waiter_view(&self, rid: RequestId, key: &Key, position: usize) -> WaiterView {
        let w = &self.waiting[&rid];
        let t = w.target_on(key.as_ref());
        WaiterView {
            agent: w.agent,
            resource: t.resource.clone(),
            claim: t.claim,
            position,
            since: w.since,
            purpose: w.purpose.as_deref().map(str::to_string),
        }
    }

    /// A semaphore target's capacity and the permits in use.
    fn semaphore_use(&self, target: &LockTarget, now: Now) -> Option<SemaphoreUse> {
        let capacity = self.capacity_for(target)?;
        let in_use = self
            .lock_at(own_key(target))
            .map_or(0, |l| l.semaphore_use(capacity, now).in_use);
        Some(SemaphoreUse { capacity, in_use })
    }

    /// The agent's lease on a resource, as of `now`.
    pub(in crate::locks) fn lease(
        &mut self,
        agent: AgentId,
        resource: &Resource,
        now: Now,
    ) -> LeaseCheck {
        let key = KeyRef::of(resource);
        self.purge(key, now);
        if let Some(h) = self
            .lock_at(key)
            .and_then(|l| l.holder(agent))
            .and_then(|h| h.own.as_ref())
        {
            return LeaseCheck::Live(h.held());
        }
        match self.expired.get(&(agent, key.owned())) {
            Some((token, at)) => LeaseCheck::Expired {
                token: *token,
                expired_at: Some(*at),
            },
            None => LeaseCheck::None,
        }
    }

    /// The agent's live write lock that covers `target`'s resource: on the
    /// resource itself, else on the nearest resource above it (a module
    /// above a function, a directory above a file). Failing that, an
    /// expired or broken lease of the agent on any of them, nearest first.
    pub(in crate::locks) fn covering_write(
        &mut self,
        agent: AgentId,
        target: &LockTarget,
        now: Now,
    ) -> LeaseCheck {
        let path: Vec<KeyRef<'_>> = parts(target).map(|(key, _)| key).collect();
        for key in path.iter().rev() {
            self.purge(*key, now);
            if let Some(h) = self
                .lock_at(*key)
                .and_then(|l| l.holder(agent))
                .and_then(|h| h.own.as_ref())
                .filter(|h| h.target.claim.mode() == Some(LockMode::Write))
            {
                return LeaseCheck::Live(h.held());
            }
        }
        path.into_iter()
            .rev()
            .find_map(|key| self.expired.get(&(agent, key.owned())).copied())
            .map_or(LeaseCheck::None, |(token, at)| LeaseCheck::Expired {
                token,
                expired_at: Some(at),
            })
    }

    /// Every live holder that meets `target`'s resource, whatever its
    /// claim: holders of it, of a resource above it, and (one view per
    /// agent and mode) of resources below it.
    pub(in crate::locks) fn holders(&mut self, target: &LockTarget, now: Now) -> Vec<HolderView> {
        let own = own_key(target);
        self.purge(own, now);
        let mut views = Vec::new();
        for (key, _) in parts(target) {
            let Some(lock) = self.lock_at(key) else {
                continue;
            };
            for h in &lock.holders {
                if let Some(hold) = h.live_own(now) {
                    push_holder(&mut views, hold.view(h.agent));
                }
                if key == own {
                    for mode in [LockMode::Write, LockMode::Read] {
                        if let Some(v) = h.below_view(&key, mode, now) {
                            push_holder(&mut views, v);
                        }
                    }
                }
            }
        }
        views
    }

    /// Everything `agent` holds at `now`, in resource order.
    pub(in crate::locks) fn held_by(&mut self, agent: AgentId, now: Now) -> Vec<HeldLock> {
        let keys = self.held.get(&agent).cloned().unwrap_or_default();
        for key in &keys {
            self.purge(key.as_ref(), now);
        }
        let mut out: Vec<HeldLock> = self
            .held
            .get(&agent)
            .into_iter()
            .flatten()
            .filter_map(|key| {
                let lock = self.keys.get(key.as_ref())?;
                Some(lock.holder(agent)?.own.as_ref()?.held())
            })
            .collect();
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        out
    }

    /// Every resource with holders or waiters of its own at `now`, in
    /// resource order.
    pub(in crate::locks) fn status(&mut self, now: Now) -> Vec<LockView> {
        self.purge_all(now);
        let mut out: Vec<LockView> = Vec::new();
        for (key, lock) in self.keys.iter() {
            let waiters: Vec<RequestId> = lock
                .queue
                .iter()
                .copied()
                .filter(|rid| {
                    self.waiting[rid]
                        .claim_on(key)
                        .is_some_and(KeyClaim::is_own)
                })
                .collect();
            let holds: Vec<(AgentId, &Hold)> = lock
                .holders
                .iter()
                .filter_map(|h| h.own.as_ref().map(|o| (h.agent, o)))
                .collect();
            if holds.is_empty() && waiters.is_empty() {
                continue;
            }
            let resource = match (holds.first(), waiters.first()) {
                (Some((_, hold)), _) => hold.target.resource.clone(),
                (None, Some(rid)) => self.waiting[rid].target_on(key.as_ref()).resource.clone(),
                (None, None) => key.resource(),
            };
            let semaphore = match &resource {
                Resource::Semaphore(name) => self
                    .capacity(name)
                    .map(|capacity| lock.semaphore_use(capacity, now)),
                _ => None,
            };
            out.push(LockView {
                resource,
                holders: holds.iter().map(|(a, h)| h.view(*a)).collect(),
                waiters: waiters
                    .iter()
                    .enumerate()
                    .map(|(idx, rid)| self.waiter_view(*rid, key, idx + 1))
                    .collect(),
                semaphore,
            });
        }
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        out
    }
}
