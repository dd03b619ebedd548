//! What the state shows of itself: the denial a blocked request gets (its
//! conflicting holders and waiters, its real queue place), holders, queues
//! and leases, each as of one clock reading.
//!
//! These only look. Apart from dropping expired holders first (which every
//! operation does, so that an expired lease shows as expired), nothing here
//! changes who holds or waits.

use super::{Conflict, Holder, Now, RequestId, State};
use crate::graph::FunctionId;
use crate::locks::agents::AgentId;
use crate::locks::types::{
    Blocked, Denial, HeldLock, HolderView, LeaseCheck, LockMode, LockTarget, LockView, WaiterView,
};

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

    fn held(&self, function: FunctionId) -> HeldLock {
        HeldLock {
            function,
            mode: self.mode,
            token: self.token,
            granted_at: self.since,
            expires_at: self.expires_at,
        }
    }
}

impl State {
    /// Why `agent`'s request (waiting as `request`, or new) cannot be
    /// granted now: per blocked target, what `conflicts` finds and the
    /// request's place in the queue.
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
            let mut waiting_ahead = Vec::new();
            for c in self.conflicts(agent, *t, request, now) {
                match c {
                    Conflict::Holder(h) => holders.push(h.view()),
                    Conflict::Waiter {
                        request: rid,
                        position,
                        ..
                    } => waiting_ahead.push(self.waiter_view(rid, t.function, position)),
                }
            }
            if holders.is_empty() && waiting_ahead.is_empty() {
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
                holders,
                waiting_ahead,
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
            mode: w.mode_on(f).unwrap_or(LockMode::Read),
            position,
            since: w.since,
            purpose: w.purpose.as_deref().map(str::to_string),
        }
    }

    /// The agent's lease on a function, as of `now`.
    pub(in crate::locks) fn lease(
        &mut self,
        agent: AgentId,
        function: FunctionId,
        now: Now,
    ) -> LeaseCheck {
        self.purge(function, now);
        if let Some(h) = self
            .functions
            .get(&function)
            .and_then(|l| l.holders.iter().find(|h| h.agent == agent))
        {
            return LeaseCheck::Live(h.held(function));
        }
        match self.expired.get(&(agent, function)) {
            Some((token, at)) => LeaseCheck::Expired {
                token: *token,
                expired_at: Some(*at),
            },
            None => LeaseCheck::None,
        }
    }

    /// Live holders of `function`, those whose mode conflicts with `mode`
    /// and who are not `agent` if `conflicting_with` is given, else all.
    pub(in crate::locks) fn holders(
        &mut self,
        function: FunctionId,
        conflicting_with: Option<(AgentId, LockMode)>,
        now: Now,
    ) -> Vec<HolderView> {
        self.purge(function, now);
        self.functions
            .get(&function)
            .map(|l| {
                l.holders
                    .iter()
                    .filter(|h| {
                        conflicting_with.is_none_or(|(agent, mode)| {
                            h.agent != agent && h.mode.conflicts_with(mode)
                        })
                    })
                    .map(Holder::view)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything `agent` holds at `now`, in function order.
    pub(in crate::locks) fn held_by(&mut self, agent: AgentId, now: Now) -> Vec<HeldLock> {
        let fs = self.held.get(&agent).cloned().unwrap_or_default();
        for f in &fs {
            self.purge(*f, now);
        }
        let mut out: Vec<HeldLock> = self
            .held
            .get(&agent)
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let lock = self.functions.get(f)?;
                Some(lock.holders.iter().find(|h| h.agent == agent)?.held(*f))
            })
            .collect();
        out.sort_by_key(|l| l.function);
        out
    }

    /// Every function with holders or waiters at `now`, in id order.
    pub(in crate::locks) fn status(&mut self, now: Now) -> Vec<LockView> {
        self.purge_all(now);
        let mut out: Vec<LockView> = self
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
                    .map(|(idx, rid)| self.waiter_view(*rid, *f, idx + 1))
                    .collect(),
            })
            .collect();
        out.sort_by_key(|v| v.function);
        out
    }
}
