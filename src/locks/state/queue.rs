//! The queues: a request that may wait is granted at once, refused (a
//! deadlock) or queued behind everyone already waiting for what it
//! conflicts with (`admit`); the pump grants waiting requests in arrival
//! order the moment they can be granted, and leaves the grant for the
//! waiter to `collect`; a waiter that gives up leaves the queues
//! (`time_out`), and one whose caller is gone is taken back, its uncollected
//! grant undone (`abandon`).
//!
//! Waiting itself is not here: a waiter sleeps on its `Notify` in
//! `wait.rs`, and this file only wakes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::keys::own_key;
use super::{Admitted, Beside, Now, RequestId, Settled, State, Waiting, merged_keys};
use crate::locks::agents::AgentId;
use crate::locks::types::{AcquireError, Grant, LockTarget};

impl State {
    /// A request that may wait: granted at once if it can be, refused if
    /// waiting would deadlock, else queued behind everyone already waiting
    /// on each of its keys. `notify` is woken whenever its standing may
    /// have changed.
    pub(in crate::locks) fn admit(
        &mut self,
        agent: AgentId,
        targets: &[LockTarget],
        ttl: Duration,
        purpose: Option<&str>,
        now: Now,
        notify: Arc<Notify>,
    ) -> Result<Admitted, AcquireError> {
        self.check_capacities(targets)?;
        for t in targets {
            self.purge(own_key(t), now);
        }
        let purpose: Option<Arc<str>> = purpose.map(Arc::from);
        if self.grantable(agent, targets, None, now) {
            let grant = self.grant(agent, targets, ttl, &purpose, now, Beside::Nothing);
            return Ok(Admitted::Granted(grant));
        }
        if let Some(cycle) = self.deadlock(agent, targets, now) {
            for t in targets {
                let kind = super::events::LockEventKind::DeadlockRefused;
                self.note(kind, agent, &t.resource, t.claim, None, now);
            }
            return Err(AcquireError::Deadlock {
                cycle,
                denial: self.denial(agent, targets, None, now),
            });
        }
        self.fix_capacities(targets);
        let rid = self.next_request;
        self.next_request += 1;
        let keys = merged_keys(targets);
        for (key, _) in &keys {
            let id = self.keys.make(key.as_ref());
            self.keys.lock_mut(id).queue.push_back(rid);
        }
        self.waiting.insert(
            rid,
            Waiting {
                agent,
                targets: targets.to_vec(),
                keys,
                ttl,
                purpose,
                since: now.system,
                notify,
            },
        );
        Ok(Admitted::Queued(rid))
    }

    /// What became of a waiting request, if anything yet: its grant, or
    /// the end of its agent. Taking it makes the outcome the caller's.
    pub(in crate::locks) fn collect(
        &mut self,
        rid: RequestId,
    ) -> Option<Result<Grant, AcquireError>> {
        match self.settled.remove(&rid)? {
            Settled::Granted { grant, .. } => Some(Ok(grant)),
            Settled::AgentEnded => Some(Err(AcquireError::AgentEnded)),
        }
    }

    /// Ends a waiting request whose wait ran out: returns the denial it
    /// ends with, takes it out of the queues and grants those it let
    /// through.
    pub(in crate::locks) fn time_out(
        &mut self,
        rid: RequestId,
        agent: AgentId,
        targets: &[LockTarget],
        now: Now,
    ) -> AcquireError {
        for t in targets {
            self.purge(own_key(t), now);
        }
        let denial = self.denial(agent, targets, Some(rid), now);
        self.dequeue(rid);
        self.pump(now);
        AcquireError::Timeout(denial)
    }

    /// Takes back a request whose caller is gone. It leaves the queues, and
    /// a grant the pump made for it that nobody collected is undone: what
    /// the agent held before comes back exactly (claim, token, lease and
    /// purpose), so an abandoned wait neither upgrades nor extends.
    pub(in crate::locks) fn abandon(&mut self, rid: RequestId, agent: AgentId, now: Now) {
        self.dequeue(rid);
        if let Some(Settled::Granted { previous, .. }) = self.settled.remove(&rid) {
            for (key, prior) in previous {
                self.uninstall(agent, key.as_ref());
                if let Some(old) = prior {
                    self.expired.remove(&(agent, key.clone()));
                    let path = old.target.clone();
                    let own = (self.keys.make(key.as_ref()), key.as_ref());
                    let above = self.make_above(&path);
                    self.install(agent, own, &path, above, old);
                }
            }
        }
        self.pump(now);
    }

    /// Removes a waiting request from its queues and wakes those behind it.
    pub(super) fn dequeue(&mut self, rid: RequestId) -> Option<Waiting> {
        let w = self.waiting.remove(&rid)?;
        for (key, _) in &w.keys {
            if let Some(lock) = self.keys.get_mut(key.as_ref()) {
                lock.queue.retain(|r| *r != rid);
                for other in &lock.queue {
                    if let Some(o) = self.waiting.get(other) {
                        o.notify.notify_one();
                    }
                }
            }
            self.drop_if_idle(key.as_ref());
        }
        Some(w)
    }

    /// Grants waiting requests, in arrival order, that can be granted now.
    pub(in crate::locks) fn pump(&mut self, now: Now) {
        let ids: Vec<RequestId> = self.waiting.keys().copied().collect();
        for rid in ids {
            let Some(w) = self.waiting.get(&rid) else {
                continue;
            };
            let targets = w.targets.clone();
            let agent = w.agent;
            for t in &targets {
                self.purge(own_key(t), now);
            }
            if !self.grantable(agent, &targets, Some(rid), now) {
                continue;
            }
            let w = self.dequeue(rid).expect("present");
            let mut previous = Vec::with_capacity(targets.len());
            let grant = self.grant(
                agent,
                &targets,
                w.ttl,
                &w.purpose,
                now,
                Beside::Previous(&mut previous),
            );
            self.settled
                .insert(rid, Settled::Granted { grant, previous });
            w.notify.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::FunctionId;
    use crate::locks::resource::Resource;
    use crate::locks::state::testing::*;
    use crate::locks::types::targets;

    #[test]
    fn waiters_are_granted_in_arrival_order_and_hold_back_later_requests() {
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(1, W)], now).unwrap();
        let rb = s.queue(B, &[(1, W)], now);
        let rc = s.queue(C, &[(1, R)], now);
        // A new reader conflicts with no reader, but with the writer ahead.
        let d = s.denied(D, &[(1, R)], now);
        let ahead: Vec<(AgentId, usize)> = d.blocked[0]
            .waiting_ahead
            .iter()
            .map(|w| (w.agent, w.position))
            .collect();
        assert_eq!(ahead, vec![(B, 1)]);
        assert_eq!(d.blocked[0].queue_position, 3);
        assert_eq!(d.blocked[0].queue_length, 2);

        s.release(A, None, start());
        s.pump(now);
        let granted = s.collect(rb).expect("the first waiter is settled");
        assert_eq!(granted.unwrap().locks[0].claim, W.into());
        assert!(s.collect(rc).is_none(), "the second still waits");
        let d = s.denial(C, &targets(&[(1, R)]), Some(rc), now);
        assert_eq!(agents(&d.blocked[0].holders), vec![B]);
        assert_eq!(d.blocked[0].queue_position, 1);

        s.release(B, None, start());
        s.pump(now);
        assert!(s.collect(rc).expect("settled").is_ok());
        assert_eq!(s.n_waiting(), 0);
    }

    #[test]
    fn an_abandoned_upgrade_restores_the_old_lease_exactly() {
        let (mut s, now) = (State::new(0), start());
        s.ask(A, &[(1, R)], now).unwrap();
        let before = s.ask(B, &[(1, R)], now).unwrap();
        let rb = s.queue(B, &[(1, W)], later(now, 5));
        s.release(A, None, start());
        s.pump(later(now, 5));
        // The pump granted the upgrade; its caller is gone before it saw it.
        s.abandon(rb, B, later(now, 5));
        let holders = s.holders(&targets(&[(1, R)])[0], now);
        assert_eq!(holders.len(), 1);
        assert_eq!(
            (holders[0].agent, holders[0].claim, holders[0].token),
            (B, R.into(), before.token)
        );
        assert_eq!(holders[0].resource, Resource::Function(FunctionId(1)));
        assert_eq!(holders[0].expires_at, before.locks[0].expires_at);
        assert!(s.collect(rb).is_none(), "nothing left to collect");
        // Its intention on the module came back with it.
        s.refused(C, &[target("module:m", W)], now);
        s.release(B, None, now);
        s.take(C, &[target("module:m", W)], now).unwrap();
    }
}
