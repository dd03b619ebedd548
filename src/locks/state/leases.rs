//! Leases: every grant lapses at its instant. An operation drops the
//! expired holders of the keys it looks at (`purge`) before deciding
//! anything, remembering each lapsed lease so that its holder is told
//! "expired" rather than "none"; `State::each_conflict` also counts an
//! expired holder, and an intention whose locks below have all expired, as
//! absent before anything is dropped. `sweep` does the same for every key
//! and then grants waiters, for the sweeper task (`wait.rs`) to call when
//! nobody else touches the table. An operator's break (`break_lock`) ends
//! leases the same way, at once.
//!
//! Nothing here reads a clock or sleeps: the instant is handed in. A lease
//! is never extended here; only a new grant (`State::grant`) does that.

use tokio::time::Instant;

use super::events::LockEventKind;
use super::keys::{Key, KeyRef};
use super::{Now, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::Resource;
use crate::locks::types::{BrokenLease, FencingToken};

impl State {
    /// Expires every due lease and grants waiters; returns the earliest
    /// expiry left, when the sweeper should look again.
    pub(in crate::locks) fn sweep(&mut self, now: Now) -> Option<Instant> {
        self.purge_all(now);
        self.pump(now);
        let next = self
            .keys
            .iter()
            .flat_map(|(_, l)| l.holders.iter().filter_map(|h| h.own.as_ref()))
            .map(|h| h.expires)
            .min();
        self.sweep_at = next;
        self.sweep_sooner = false;
        self.expiry_floor = next;
        next
    }

    /// Drops the expired own locks on `key`, remembering their leases as
    /// expired, and their intentions on the keys above.
    pub(super) fn purge(&mut self, key: KeyRef<'_>, now: Now) {
        if self.expiry_floor.is_none_or(|floor| now.instant < floor) {
            return; // nothing in the table has expired
        }
        let Some(lock) = self.lock_at(key).filter(|l| l.has_expired(now)) else {
            return;
        };
        let agents: Vec<AgentId> = lock
            .holders
            .iter()
            .filter(|h| h.own_expired(now))
            .map(|h| h.agent)
            .collect();
        for agent in agents {
            if let Some(hold) = self.uninstall(agent, key) {
                self.expired
                    .insert((agent, key.owned()), (hold.token, hold.expires_at));
                let (resource, claim) = (&hold.target.resource, hold.target.claim);
                self.note(
                    LockEventKind::Expired,
                    agent,
                    resource,
                    claim,
                    Some(hold.token),
                    now,
                );
            }
        }
    }

    /// Breaks every live lease on exactly `resource` (an operator's
    /// `break-lock`; locks above or below it are left alone): each holder
    /// loses it at once and is told "expired" from now on, exactly as if it
    /// had lapsed, so its fencing token stops authorising; then waiters are
    /// granted. Returns what was broken.
    pub(in crate::locks) fn break_lock(
        &mut self,
        resource: &Resource,
        now: Now,
    ) -> Vec<BrokenLease> {
        let key = KeyRef::of(resource);
        self.purge(key, now);
        let agents: Vec<AgentId> = self
            .lock_at(key)
            .map(|l| l.claims().map(|(a, _)| a).collect())
            .unwrap_or_default();
        let mut broken = Vec::with_capacity(agents.len());
        for agent in agents {
            if let Some(hold) = self.uninstall(agent, key) {
                self.expired
                    .insert((agent, key.owned()), (hold.token, now.system));
                let (resource, claim) = (&hold.target.resource, hold.target.claim);
                self.note(
                    LockEventKind::Broken,
                    agent,
                    resource,
                    claim,
                    Some(hold.token),
                    now,
                );
                broken.push(BrokenLease {
                    agent,
                    claim: hold.target.claim,
                    token: hold.token,
                });
            }
        }
        self.pump(now);
        broken
    }

    /// Releases those of `resources` that `agent` holds under `token`, then
    /// grants waiters; returns how many it released.
    pub(in crate::locks) fn give_back(
        &mut self,
        agent: AgentId,
        token: FencingToken,
        resources: &[Resource],
        now: Now,
    ) -> usize {
        let mut n = 0;
        for r in resources {
            let key = KeyRef::of(r);
            let held = self
                .lock_at(key)
                .and_then(|l| l.holder(agent))
                .and_then(|h| h.own.as_ref())
                .map(|h| h.token);
            if held == Some(token) {
                self.release_one(agent, key, now);
                n += 1;
            }
        }
        if n > 0 {
            self.pump(now);
        }
        n
    }

    pub(super) fn purge_all(&mut self, now: Now) {
        let keys: Vec<Key> = self
            .keys
            .iter()
            .filter(|(_, l)| l.has_expired(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.purge(key.as_ref(), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::graph::FunctionId;
    use crate::locks::state::testing::*;
    use crate::locks::types::{LeaseCheck, targets};

    #[test]
    fn a_lease_stops_blocking_and_authorising_at_its_instant_before_any_purge() {
        let (mut s, t0) = (State::new(0), start());
        let ttl = Duration::from_millis(100);
        let grant = s
            .try_acquire(A, &targets(&[(1, W)]), ttl, None, t0)
            .unwrap();
        let f1 = targets(&[(1, W)]);
        let just_before = later(t0, 99);
        assert!(!s.grantable(B, &f1, None, just_before));
        let f = Resource::Function(FunctionId(1));
        assert!(matches!(s.lease(A, &f, just_before), LeaseCheck::Live(_)));
        let at = later(t0, 100);
        // The holder is still in the table, unpurged, and already absent.
        assert_eq!(s.keys.get(KeyRef::of(&f)).unwrap().holders.len(), 1);
        assert!(s.grantable(B, &f1, None, at));
        assert_eq!(
            s.lease(A, &f, at),
            LeaseCheck::Expired {
                token: grant.token,
                expired_at: Some(grant.locks[0].expires_at),
            }
        );
        s.ask(B, &[(1, W)], at).unwrap();
    }

    #[test]
    fn the_sweep_grants_a_waiter_when_the_lease_ahead_of_it_expires() {
        let (mut s, t0) = (State::new(0), start());
        let ttl = Duration::from_millis(100);
        s.try_acquire(A, &targets(&[(1, W)]), ttl, None, t0)
            .unwrap();
        let rb = s.queue(B, &[(1, W)], t0);
        assert_eq!(s.sweep(later(t0, 50)), Some(later(t0, 100).instant));
        assert!(s.collect(rb).is_none());
        let at = later(t0, 100);
        assert_eq!(s.sweep(at), Some(at.instant + TTL), "next: B's lease");
        assert!(s.collect(rb).expect("settled").is_ok());
    }
}
