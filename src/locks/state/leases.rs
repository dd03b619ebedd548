//! Leases: every grant lapses at its instant. An operation drops the
//! expired holders of the functions it looks at (`purge`) before deciding
//! anything, remembering each lapsed lease so that its holder is told
//! "expired" rather than "none"; `State::conflicts` also counts an expired
//! holder as absent before it is dropped. `sweep` does the same for every
//! function and then grants waiters, for the sweeper task (`wait.rs`) to
//! call when nobody else touches the table.
//!
//! Nothing here reads a clock or sleeps: the instant is handed in. A lease
//! is never extended here; only a new grant (`State::grant`) does that.

use std::time::SystemTime;

use tokio::time::Instant;

use super::{FunctionLock, IdMap, Now, State};
use crate::graph::FunctionId;
use crate::locks::agents::AgentId;
use crate::locks::types::{BrokenLease, FencingToken};

impl State {
    /// Expires every due lease and grants waiters; returns the earliest
    /// expiry left, when the sweeper should look again.
    pub(in crate::locks) fn sweep(&mut self, now: Now) -> Option<Instant> {
        self.purge_all(now);
        self.pump(now);
        let next = self
            .functions
            .values()
            .flat_map(|l| l.holders.iter().map(|h| h.expires))
            .min();
        self.sweep_at = next;
        self.sweep_sooner = false;
        next
    }

    /// Drops expired holders of `f`, remembering their leases as expired.
    pub(super) fn purge(&mut self, f: FunctionId, now: Now) {
        let Some(lock) = self.functions.get_mut(&f) else {
            return;
        };
        if purge_lock(f, lock, &mut self.held, &mut self.expired, now) {
            self.drop_if_idle(f);
        }
    }

    /// Breaks every live lease on `f` (an operator's `break-lock`): each
    /// holder loses it at once and is told "expired" from now on, exactly
    /// as if it had lapsed, so its fencing token stops authorising; then
    /// waiters are granted. Returns what was broken.
    pub(in crate::locks) fn break_lock(&mut self, f: FunctionId, now: Now) -> Vec<BrokenLease> {
        self.purge(f, now);
        let holders = self
            .functions
            .get_mut(&f)
            .map(|l| std::mem::take(&mut l.holders))
            .unwrap_or_default();
        let broken: Vec<BrokenLease> = holders
            .into_iter()
            .map(|h| {
                self.unhold(h.agent, f);
                self.expired.insert((h.agent, f), (h.token, now.system));
                BrokenLease {
                    agent: h.agent,
                    mode: h.mode,
                    token: h.token,
                }
            })
            .collect();
        self.drop_if_idle(f);
        self.pump(now);
        broken
    }

    /// Releases those of `functions` that `agent` holds under `token`, then
    /// grants waiters; returns how many it released.
    pub(in crate::locks) fn give_back(
        &mut self,
        agent: AgentId,
        token: FencingToken,
        functions: &[FunctionId],
        now: Now,
    ) -> usize {
        let mut n = 0;
        for f in functions {
            let held = self
                .functions
                .get(f)
                .and_then(|l| l.holders.iter().find(|h| h.agent == agent))
                .map(|h| h.token);
            if held == Some(token) {
                self.release_one(agent, *f);
                n += 1;
            }
        }
        if n > 0 {
            self.pump(now);
        }
        n
    }

    pub(super) fn purge_all(&mut self, now: Now) {
        let fs: Vec<FunctionId> = self.functions.keys().copied().collect();
        for f in fs {
            self.purge(f, now);
        }
    }
}

/// Drops the expired holders of one function's lock, remembering their
/// leases as expired and taking the function off their agents' lists.
/// Returns true if and only if it dropped any.
pub(super) fn purge_lock(
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
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
        assert!(matches!(
            s.lease(A, FunctionId(1), just_before),
            LeaseCheck::Live(_)
        ));
        let at = later(t0, 100);
        // The holder is still in the table, unpurged, and already absent.
        assert_eq!(s.functions[&FunctionId(1)].holders.len(), 1);
        assert!(s.grantable(B, &f1, None, at));
        assert_eq!(
            s.lease(A, FunctionId(1), at),
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
