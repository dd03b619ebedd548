//! The wait-for graph: which agents a request would wait for, and whether
//! waiting would close a cycle. An edge runs from a waiting agent to every
//! agent it conflicts with by the FIFO rule (`State::conflicts`): live
//! holders, and earlier waiters whose mode conflicts.
//!
//! It only finds cycles. Refusing the request is `State::admit`'s decision,
//! and nothing here (or anywhere) takes a held lock away to break one.

use super::{IdMap, Now, RequestId, State};
use crate::locks::agents::AgentId;
use crate::locks::types::LockTarget;

impl State {
    /// Agents that `agent`'s request (waiting as `request`, or new) would
    /// wait for.
    pub(super) fn waits_for(
        &self,
        agent: AgentId,
        targets: &[LockTarget],
        request: Option<RequestId>,
        now: Now,
    ) -> Vec<AgentId> {
        let mut out: Vec<AgentId> = targets
            .iter()
            .flat_map(|t| self.conflicts(agent, *t, request, now))
            .map(|c| c.agent())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// A path in the wait-for graph from `from` back to `to`, if any, as
    /// the cycle `to, .., to` in wait order.
    pub(super) fn cycle_to(&self, to: AgentId, from: &[AgentId], now: Now) -> Option<Vec<AgentId>> {
        // Edges of each agent: the union over its waiting requests.
        let mut edges: IdMap<AgentId, Vec<AgentId>> = IdMap::default();
        for (rid, w) in &self.waiting {
            let next = self.waits_for(w.agent, &w.targets, Some(*rid), now);
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
}

#[cfg(test)]
mod tests {
    use super::super::Admitted;
    use super::*;
    use crate::locks::state::testing::*;
    use crate::locks::types::AcquireError;

    fn cycle(result: Result<Admitted, AcquireError>) -> Vec<AgentId> {
        match result {
            Err(AcquireError::Deadlock { cycle, .. }) => cycle,
            Err(e) => panic!("refused otherwise: {e:?}"),
            Ok(_) => panic!("admitted"),
        }
    }

    #[test]
    fn a_two_agent_cycle_is_refused_and_nothing_is_revoked() {
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(1, W)], now).unwrap();
        s.ask(B, &[(2, W)], now).unwrap();
        s.queue(A, &[(2, W)], now);
        assert_eq!(cycle(s.ask_to_wait(B, &[(1, W)], now)), vec![B, A, B]);
        assert_eq!(s.held_by(A, now).len(), 1);
        assert_eq!(s.held_by(B, now).len(), 1);
        assert_eq!(s.n_waiting(), 1, "the refused request was not queued");
    }

    #[test]
    fn a_three_agent_cycle_is_refused_and_a_chain_is_queued() {
        let (mut s, now) = (State::new(0), start());
        for (agent, f) in [(A, 1), (B, 2), (C, 3)] {
            s.ask(agent, &[(f, W)], now).unwrap();
        }
        s.queue(A, &[(2, W)], now);
        s.queue(B, &[(3, R)], now);
        // D waiting for f1 closes no cycle: nobody waits for D.
        s.queue(D, &[(1, R)], now);
        assert_eq!(cycle(s.ask_to_wait(C, &[(1, R)], now)), vec![C, A, B, C]);
    }

    #[test]
    fn upgrading_while_a_writer_waits_is_a_deadlock() {
        // The writer waits for the reader; the reader's upgrade would wait
        // behind the writer.
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(1, R)], now).unwrap();
        s.queue(B, &[(1, W)], now);
        assert_eq!(cycle(s.ask_to_wait(A, &[(1, W)], now)), vec![A, B, A]);
    }
}
