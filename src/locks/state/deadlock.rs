//! Deadlock: whether a blocking request could ever be granted, decided by
//! a graph reduction (Holt's) of the waiting part of the table, and the
//! cycle to name when it could not.
//!
//! The reduction: an agent with no waiting request can finish, releasing
//! all it holds, so it is left out at once. A waiting request is reached
//! when, counting only what unfinished agents hold and the earlier waiters
//! of unfinished agents, it is free by the FIFO rule (`each_conflict`, with
//! `counts` set to the unfinished agents); an agent finishes when all its
//! waiting requests are reached. Repeat until nothing changes. A new
//! request is a deadlock if and only if it is never reached: then it waits
//! for agents that wait, directly or not, for its own agent.
//!
//! A wait-for graph's cycle is not enough once semaphores count: a waiter
//! of a semaphore that a holder outside the cycle will give back is
//! reached, so a cycle through it is no deadlock. The reduction sees that;
//! it also never refuses a request that could be granted.
//!
//! A waiting request can also become stuck without any new request: one
//! that waits for a resource it held (a refresh, which skips the queue)
//! queues like any other once that lease lapses or is released, and may
//! then wait behind a waiter that waits for the agent's other locks. No
//! request closed that cycle, so none was refused; its waits run out. A
//! new request that would wait behind such a cycle is never reached
//! either, and is refused with the path to it.
//!
//! The cost is the waiting requests and the keys they claim, not the
//! table.
//!
//! It only decides. Refusing the request is `State::admit`'s decision, and
//! nothing here (or anywhere) takes a held lock away to break a deadlock.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use super::hash::IdMap;
use super::{Now, RequestId, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::Resource;
use crate::locks::types::{Cycle, LockTarget};

/// A new request that is not in the table yet: its agent and targets.
type NewRequest<'a> = (AgentId, &'a [LockTarget]);

/// Where a reduction ended.
struct Reduction {
    /// Agents that never finish, with how many of their requests are not
    /// reached (the new request counted for its agent).
    unfinished: IdMap<AgentId, usize>,
    reached: BTreeSet<RequestId>,
    new_reached: bool,
}

impl State {
    /// The deadlock `agent`'s new request for `targets` would be in if it
    /// waited, or `None` if it can be granted some day.
    pub(super) fn deadlock(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        now: Now,
    ) -> Option<Cycle> {
        let new = (agent, targets);
        let reduction = self.reduce(Some(new), now);
        if reduction.new_reached {
            return None;
        }
        Some(self.cycle_from(agent, Some(new), &reduction, now))
    }

    /// The waiting requests the reduction never reaches.
    pub(super) fn unreached(&self, now: Now) -> BTreeSet<RequestId> {
        let reduction = self.reduce(None, now);
        self.waiting
            .keys()
            .filter(|rid| !reduction.reached.contains(rid))
            .copied()
            .collect()
    }

    /// A deadlock among the waiting requests that was not there when
    /// `before` were the unreached ones (a semaphore's capacity was just
    /// lowered, say), if any.
    pub(super) fn stuck_since(&self, before: &BTreeSet<RequestId>, now: Now) -> Option<Cycle> {
        let reduction = self.reduce(None, now);
        let (_, w) = self
            .waiting
            .iter()
            .find(|(rid, _)| !reduction.reached.contains(rid) && !before.contains(rid))?;
        Some(self.cycle_from(w.agent, None, &reduction, now))
    }

    /// Returns true if and only if every target is free by the FIFO rule
    /// when only `unfinished` agents count.
    fn free_among(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        unfinished: &IdMap<AgentId, usize>,
        now: Now,
    ) -> bool {
        let counts = |a: AgentId| unfinished.contains_key(&a);
        targets.iter().all(|t| {
            self.each_conflict(agent, t, request, now, counts, |_| ControlFlow::Break(()))
                .is_continue()
        })
    }

    fn reduce(&self, new: Option<NewRequest<'_>>, now: Now) -> Reduction {
        let mut unfinished: IdMap<AgentId, usize> = IdMap::default();
        for w in self.waiting.values() {
            *unfinished.entry(w.agent).or_default() += 1;
        }
        if let Some((agent, _)) = new {
            *unfinished.entry(agent).or_default() += 1;
        }
        let mut reached = BTreeSet::new();
        loop {
            if let Some((agent, targets)) = new
                && self.free_among(agent, targets, None, &unfinished, now)
            {
                return Reduction {
                    unfinished,
                    reached,
                    new_reached: true,
                };
            }
            let newly: Vec<(RequestId, AgentId)> = self
                .waiting
                .iter()
                .filter(|(rid, w)| !reached.contains(*rid) && unfinished.contains_key(&w.agent))
                .filter(|(rid, w)| {
                    self.free_among(w.agent, &w.targets, Some(**rid), &unfinished, now)
                })
                .map(|(rid, w)| (*rid, w.agent))
                .collect();
            if newly.is_empty() {
                return Reduction {
                    unfinished,
                    reached,
                    new_reached: false,
                };
            }
            for (rid, agent) in newly {
                reached.insert(rid);
                if let Some(left) = unfinished.get_mut(&agent) {
                    *left -= 1;
                    if *left == 0 {
                        unfinished.remove(&agent);
                    }
                }
            }
        }
    }

    /// Whom `agent` waits for among the unfinished, and for which of its
    /// resources: what keeps its unreached requests (and the new one, if it
    /// is the new request's agent) from being granted.
    fn waits_for(
        &self,
        agent: AgentId,
        new: Option<NewRequest<'_>>,
        reduction: &Reduction,
        now: Now,
    ) -> Vec<(AgentId, Resource)> {
        let counts = |a: AgentId| reduction.unfinished.contains_key(&a);
        let mut requests: Vec<(Option<RequestId>, &[LockTarget])> = Vec::new();
        if let Some((a, targets)) = new
            && a == agent
        {
            requests.push((None, targets));
        }
        for (rid, w) in &self.waiting {
            if w.agent == agent && !reduction.reached.contains(rid) {
                requests.push((Some(*rid), &w.targets));
            }
        }
        let mut out: Vec<(AgentId, Resource)> = Vec::new();
        for (rid, targets) in requests {
            for t in targets {
                let _ = self.each_conflict(agent, t, rid, now, counts, |c| {
                    if !out.iter().any(|(a, _)| *a == c.agent()) {
                        out.push((c.agent(), t.resource.clone()));
                    }
                    ControlFlow::Continue(())
                });
            }
        }
        out
    }

    /// A cycle of "waits for" among the unfinished agents, from `start`:
    /// back to `start` if there is one (a depth-first walk that looks for
    /// an edge to `start` at every agent it reaches), else the path from
    /// `start` to the first loop the walk closes.
    fn cycle_from(
        &self,
        start: AgentId,
        new: Option<NewRequest<'_>>,
        reduction: &Reduction,
        now: Now,
    ) -> Cycle {
        let mut visited: BTreeSet<AgentId> = BTreeSet::from([start]);
        // The path from `start`: each agent with the edges it has left to
        // try; `via` holds the resource of each step taken.
        let mut path: Vec<(AgentId, Vec<(AgentId, Resource)>)> =
            vec![(start, self.waits_for(start, new, reduction, now))];
        let mut via: Vec<Resource> = Vec::new();
        let mut first_loop: Option<Cycle> = None;
        while let Some(top) = path.len().checked_sub(1) {
            if let Some((_, r)) = path[top].1.iter().find(|(b, _)| *b == start) {
                let mut agents: Vec<AgentId> = path.iter().map(|(a, _)| *a).collect();
                agents.push(start);
                let mut resources = via;
                resources.push(r.clone());
                return Cycle { agents, resources };
            }
            let Some((next, r)) = path[top].1.pop() else {
                path.pop();
                via.pop();
                continue;
            };
            if path.iter().any(|(a, _)| *a == next) {
                if first_loop.is_none() {
                    let mut agents: Vec<AgentId> = path.iter().map(|(a, _)| *a).collect();
                    agents.push(next);
                    let mut resources = via.clone();
                    resources.push(r);
                    first_loop = Some(Cycle { agents, resources });
                }
                continue;
            }
            if !visited.insert(next) {
                continue;
            }
            via.push(r);
            let edges = self.waits_for(next, new, reduction, now);
            path.push((next, edges));
        }
        first_loop.unwrap_or(Cycle {
            agents: vec![start, start],
            resources: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "deadlock_tests.rs"]
mod tests;
