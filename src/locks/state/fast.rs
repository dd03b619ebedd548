//! The common request decided in one walk: one resource that is not a
//! semaphore, asked while no request waits anywhere in the table. Then the
//! FIFO rule (`State::each_conflict`) comes down to its holders' half, and
//! the walk that checks each key of the path also finds the slots the grant
//! installs on, so a grant looks each key up once.
//!
//! It decides nothing the general path would decide otherwise: it asks
//! the same question of each key's holders (`KeyLock::in_the_way`), and
//! anything else (several resources, a semaphore, anyone waiting) goes the
//! general way.

use super::keys::{KeyClaim, own_key, parts};
use super::slots::{AncestorSlots, SlotId};
use super::{Now, State};
use crate::locks::agents::AgentId;
use crate::locks::types::LockTarget;

/// The slots of a free target's key path, for `State::grant`.
#[derive(Clone, Copy)]
pub(super) struct Found {
    pub(super) own: SlotId,
    pub(super) above: AncestorSlots,
}

/// What the one walk found.
pub(super) enum Walk {
    /// Free: grant it on these slots.
    Free(Found),
    /// A live holder of another agent is in its way.
    Blocked,
    /// Not the common case: decide it the general way.
    NotOne,
}

impl State {
    /// Decides a request of `agent` for `targets` in one walk, if it is the
    /// common case; drops the expired holders of its resource first.
    pub(super) fn walk_one(&mut self, agent: AgentId, targets: &[LockTarget], now: Now) -> Walk {
        let [target] = targets else {
            return Walk::NotOne;
        };
        if !self.waiting.is_empty() || target.claim.mode().is_none() {
            return Walk::NotOne;
        }
        self.purge(own_key(target), now);
        let mut above = AncestorSlots::NONE;
        let mut last: Option<SlotId> = None;
        let mut complete = true;
        for (key, claim) in parts(target) {
            let KeyClaim::Modes(modes) = claim else {
                return Walk::NotOne;
            };
            if let Some(id) = last.take() {
                above.push(id);
            }
            match self.keys.find(key) {
                Some(id) => {
                    if self
                        .keys
                        .lock(id)
                        .in_the_way(agent, modes, now)
                        .next()
                        .is_some()
                    {
                        return Walk::Blocked;
                    }
                    last = Some(id);
                }
                None => complete = false,
            }
        }
        match last {
            // Every key has its slot: the own key's came last.
            Some(own) if complete => Walk::Free(Found { own, above }),
            // A key new to the table is free; make the slots (the first
            // lock on a key path, or one the table let go when idle).
            _ => Walk::Free(Found {
                own: self.keys.make(own_key(target)),
                above: self.make_above(target),
            }),
        }
    }
}
