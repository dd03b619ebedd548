//! What one key of the table records: per agent, its own lock on the key's
//! resource (`Hold`) and, for each mode, the lease ends of its locks below
//! the key (`Below`), which make its intention modes; and the FIFO queue of
//! waiting requests that claim the key.
//!
//! An agent's intention on a key is live while the latest lease end below
//! it is ahead, so an expired lock below stops counting at its instant,
//! before anyone removes it, just as an expired own lock does. Nothing here
//! decides a grant; these are the records `State::each_conflict` reads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::keys::Modes;
use super::slots::AncestorSlots;
use super::{Now, RequestId};
use crate::locks::agents::AgentId;
use crate::locks::types::{Claim, FencingToken, LockMode, LockTarget};

/// An agent's own lock on one resource.
#[derive(Clone, Debug)]
pub(in crate::locks) struct Hold {
    /// What is held: the resource, the claim (the strongest asked), and a
    /// function's module as it was when granted, which says which ancestor
    /// keys carry the lock's intention. The module is left out (`None`)
    /// where the holder record keeps the slots of those keys
    /// (`KeyHolder::above`), which say it without an `Arc` to count on
    /// every grant and release; `State::whole` puts it back for a lock that
    /// is to be installed again. `capacity` is always `None`.
    pub(in crate::locks) target: LockTarget,
    pub(in crate::locks) token: FencingToken,
    pub(in crate::locks) since: SystemTime,
    pub(in crate::locks) expires: Instant,
    pub(in crate::locks) expires_at: SystemTime,
    pub(in crate::locks) purpose: Option<Arc<str>>,
}

impl Hold {
    #[inline]
    pub(in crate::locks) fn is_live(&self, now: Now) -> bool {
        self.expires > now.instant
    }

    /// What this lock leaves on the keys above it.
    #[inline]
    pub(in crate::locks) fn intention(&self) -> Intention {
        Intention {
            mode: self.mode() as usize,
            expires: self.expires,
            lease: BelowLease {
                token: self.token,
                since: self.since,
                expires_at: self.expires_at,
            },
        }
    }

    /// The read/write mode, or `Write` for permits (whose intention, were
    /// semaphores ever under anything, would be exclusive).
    #[inline]
    pub(in crate::locks) fn mode(&self) -> LockMode {
        self.target.claim.mode().unwrap_or(LockMode::Write)
    }
}

/// What a lock leaves on each key above its own: under its mode, its
/// lease end and lease.
#[derive(Clone, Copy, Debug)]
pub(in crate::locks) struct Intention {
    /// `LockMode as usize`: the index into `KeyHolder::below`.
    pub(in crate::locks) mode: usize,
    pub(in crate::locks) expires: Instant,
    pub(in crate::locks) lease: BelowLease,
}

/// The lease of one lock below a key, as `Below` keeps it per lease end.
#[derive(Clone, Copy, Debug)]
pub(in crate::locks) struct BelowLease {
    pub(in crate::locks) token: FencingToken,
    pub(in crate::locks) since: SystemTime,
    pub(in crate::locks) expires_at: SystemTime,
}

/// The lease ends of an agent's locks below one key, in one mode: a
/// multiset, with the lease of the last lock added at each end. Locks of
/// one grant share their end, so this is usually one entry, kept inline.
#[derive(Debug, Default)]
pub(in crate::locks) enum Below {
    #[default]
    Empty,
    One(Instant, u32, BelowLease),
    Many(BTreeMap<Instant, (u32, BelowLease)>),
}

impl Below {
    #[inline]
    pub(in crate::locks) fn add(&mut self, end: Instant, lease: BelowLease) {
        match self {
            Below::Empty => *self = Below::One(end, 1, lease),
            Below::One(at, n, l) if *at == end => {
                *n += 1;
                *l = lease;
            }
            Below::One(at, n, l) => {
                let mut map = BTreeMap::new();
                map.insert(*at, (*n, *l));
                map.insert(end, (1, lease));
                *self = Below::Many(map);
            }
            Below::Many(map) => {
                let e = map.entry(end).or_insert((0, lease));
                e.0 += 1;
                e.1 = lease;
            }
        }
    }

    /// Takes one lock with lease end `end` away.
    #[inline]
    pub(in crate::locks) fn remove(&mut self, end: Instant) {
        match self {
            Below::Empty => {}
            Below::One(at, n, _) => {
                if *at == end {
                    *n -= 1;
                    if *n == 0 {
                        *self = Below::Empty;
                    }
                }
            }
            Below::Many(map) => {
                if let Some(e) = map.get_mut(&end) {
                    e.0 -= 1;
                    if e.0 == 0 {
                        map.remove(&end);
                    }
                }
                if map.len() == 1 {
                    let (at, (n, l)) = map.pop_first().expect("one entry");
                    *self = Below::One(at, n, l);
                } else if map.is_empty() {
                    *self = Below::Empty;
                }
            }
        }
    }

    /// The latest lease end and its lease.
    #[inline]
    pub(in crate::locks) fn latest(&self) -> Option<(Instant, BelowLease)> {
        match self {
            Below::Empty => None,
            Below::One(at, _, l) => Some((*at, *l)),
            Below::Many(map) => map.last_key_value().map(|(at, (_, l))| (*at, *l)),
        }
    }

    /// Returns true if and only if some lock below is live at `now`.
    #[inline]
    pub(in crate::locks) fn is_live(&self, now: Now) -> bool {
        self.latest().is_some_and(|(at, _)| at > now.instant)
    }

    #[inline]
    pub(in crate::locks) fn is_empty(&self) -> bool {
        matches!(self, Below::Empty)
    }
}

/// One agent's standing on one key.
#[derive(Debug)]
pub(in crate::locks) struct KeyHolder {
    pub(in crate::locks) agent: AgentId,
    pub(in crate::locks) own: Option<Hold>,
    /// The slots of the keys above that carry `own`'s intention, set where
    /// it is installed (kept here rather than in the `Hold`, which is
    /// moved whole and is copied inline only while it is small).
    pub(in crate::locks) above: AncestorSlots,
    /// Its locks below the key: `[read, write]`, whose liveness makes IS
    /// and IX.
    pub(in crate::locks) below: [Below; 2],
}

impl KeyHolder {
    #[inline]
    pub(in crate::locks) fn new(agent: AgentId) -> KeyHolder {
        KeyHolder {
            agent,
            own: None,
            above: AncestorSlots::NONE,
            below: [Below::Empty, Below::Empty],
        }
    }

    /// The modes among `wanted` that this agent holds live at `now`.
    /// Looking only at `wanted` keeps the common case cheap: an intention
    /// request conflicts with own locks only, so it never reads `below`.
    #[inline]
    pub(in crate::locks) fn live_modes(&self, now: Now, wanted: Modes) -> Modes {
        let mut modes = Modes::NONE;
        if let Some(h) = &self.own
            && h.is_live(now)
        {
            modes = modes.union(Modes::own(h.mode()));
        }
        if !wanted.intersect(Modes::IS).is_empty() && self.below[0].is_live(now) {
            modes = modes.union(Modes::IS);
        }
        if !wanted.intersect(Modes::IX).is_empty() && self.below[1].is_live(now) {
            modes = modes.union(Modes::IX);
        }
        modes.intersect(wanted)
    }

    /// The permits this agent holds live at `now` (semaphore keys).
    #[inline]
    pub(in crate::locks) fn live_permits(&self, now: Now) -> u32 {
        match &self.own {
            Some(h) if h.is_live(now) => h.target.claim.permits().unwrap_or(0),
            _ => 0,
        }
    }

    /// The own lock if it is live.
    #[inline]
    pub(in crate::locks) fn live_own(&self, now: Now) -> Option<&Hold> {
        self.own.as_ref().filter(|h| h.is_live(now))
    }

    /// Returns true if and only if its own lock is there but expired.
    #[inline]
    pub(in crate::locks) fn own_expired(&self, now: Now) -> bool {
        self.own.as_ref().is_some_and(|h| !h.is_live(now))
    }

    #[inline]
    pub(in crate::locks) fn is_empty(&self) -> bool {
        self.own.is_none() && self.below.iter().all(Below::is_empty)
    }
}

/// One key's record: the agents standing on it and the queue of waiting
/// requests that claim it, in arrival order.
#[derive(Debug, Default)]
pub(in crate::locks) struct KeyLock {
    pub(in crate::locks) holders: Vec<KeyHolder>,
    pub(in crate::locks) queue: VecDeque<RequestId>,
}

impl KeyLock {
    #[inline]
    pub(in crate::locks) fn holder(&self, agent: AgentId) -> Option<&KeyHolder> {
        self.holders.iter().find(|h| h.agent == agent)
    }

    /// The agent's record, made if it has none.
    #[inline]
    pub(in crate::locks) fn holder_mut(&mut self, agent: AgentId) -> &mut KeyHolder {
        let idx = match self.holders.iter().position(|h| h.agent == agent) {
            Some(idx) => idx,
            // The key's empty record (see `tidy`) is taken over first.
            None => match self.holders.iter().position(KeyHolder::is_empty) {
                Some(idx) => {
                    self.holders[idx].agent = agent;
                    idx
                }
                None => {
                    self.holders.push(KeyHolder::new(agent));
                    self.holders.len() - 1
                }
            },
        };
        &mut self.holders[idx]
    }

    /// Drops the agent's record if nothing is left in it, unless it would
    /// be the key's only empty record: an agent cycling a lock then reuses
    /// its record instead of making and dropping one per grant (on a
    /// directory above a file, once per ancestor). An empty record holds
    /// nothing and blocks nothing, and a key keeps at most one.
    #[inline]
    pub(in crate::locks) fn tidy(&mut self, agent: AgentId) {
        let Some(idx) = self.holders.iter().position(|h| h.agent == agent) else {
            return;
        };
        if !self.holders[idx].is_empty() {
            return;
        }
        let another_empty = self
            .holders
            .iter()
            .enumerate()
            .any(|(i, h)| i != idx && h.is_empty());
        if another_empty {
            self.holders.swap_remove(idx);
        }
    }

    /// The live holders of agents other than `agent` that stand on the key
    /// at `now` in a mode conflicting with one of `modes`.
    #[inline]
    pub(in crate::locks) fn in_the_way(
        &self,
        agent: AgentId,
        modes: Modes,
        now: Now,
    ) -> impl Iterator<Item = &KeyHolder> + Clone {
        let conflicting = modes.conflicting();
        self.holders
            .iter()
            .filter(move |h| h.agent != agent && !h.live_modes(now, conflicting).is_empty())
    }

    /// Returns true if and only if nobody stands on the key (its records
    /// are empty) and nobody waits for it.
    #[inline]
    pub(in crate::locks) fn is_idle(&self) -> bool {
        self.holders.iter().all(KeyHolder::is_empty) && self.queue.is_empty()
    }

    /// Returns true if and only if some own lock on the key is expired.
    #[inline]
    pub(in crate::locks) fn has_expired(&self, now: Now) -> bool {
        self.holders.iter().any(|h| h.own_expired(now))
    }

    /// The claim held on the key's own resource, for views.
    #[inline]
    pub(in crate::locks) fn claims(&self) -> impl Iterator<Item = (AgentId, Claim)> + '_ {
        self.holders
            .iter()
            .filter_map(|h| h.own.as_ref().map(|o| (h.agent, o.target.claim)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::locks::state::testing::start;

    fn lease(token: u64) -> BelowLease {
        BelowLease {
            token: FencingToken(token),
            since: SystemTime::UNIX_EPOCH,
            expires_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn below_is_live_until_its_latest_lease_end_however_many_share_it() {
        let now = start();
        let at = |ms| now.instant + Duration::from_millis(ms);
        let mut b = Below::default();
        b.add(at(10), lease(1));
        b.add(at(10), lease(2));
        b.add(at(30), lease(3));
        assert_eq!(b.latest().map(|(e, l)| (e, l.token.0)), Some((at(30), 3)));
        b.remove(at(30));
        assert_eq!(
            b.latest().map(|(e, _)| e),
            Some(at(10)),
            "back to the earlier end"
        );
        b.remove(at(10));
        assert!(b.is_live(now), "one lock with that end is left");
        b.remove(at(10));
        assert!(b.is_empty());
        assert!(!b.is_live(now));
    }
}
