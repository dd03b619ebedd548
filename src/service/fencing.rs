//! The write leases an edit relies on, and the fencing check at the moment
//! of commit. An agent's edit of a function is authorised by its own live
//! write lock covering the function: on the function, or on a module above
//! it (the lock table finds the nearest, `LockTable::covering_write`).
//! Preparation notes each such lease and its fencing token; sequencing,
//! under the tip mutex where no commit can slip in between, checks that
//! each lease is still live and that no function was already committed
//! under a newer token. Otherwise the edit is `lock_expired`.
//!
//! This file only looks at leases; who else holds locks (`lock_denied`) is
//! `access.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::{Hub, ServiceError};
use crate::graph::{FunctionId, QualifiedName};
use crate::locks::{AgentId, FencingToken, LeaseCheck, LockMode, LockTarget, ModuleName};

/// What preparation found of the agent's leases on the functions an edit
/// touches.
pub(super) struct Leases {
    /// Live write-lease tokens, by function.
    pub(super) fences: BTreeMap<FunctionId, u64>,
    /// The locks those leases are on, to check again at commit.
    pub(super) relied_on: Vec<(FunctionId, LockTarget)>,
    /// Leases the agent had that lapsed or were broken.
    pub(super) expired: BTreeMap<FunctionId, (FencingToken, Option<SystemTime>)>,
}

impl Hub {
    /// The agent's write leases covering each of `touched`.
    pub(super) fn leases_relied_on(
        &self,
        agent: AgentId,
        touched: &BTreeSet<FunctionId>,
        name_of: impl Fn(FunctionId) -> QualifiedName,
    ) -> Leases {
        let mut leases = Leases {
            fences: BTreeMap::new(),
            relied_on: Vec::new(),
            expired: BTreeMap::new(),
        };
        for &id in touched {
            let module = ModuleName::of(&name_of(id));
            let target = LockTarget::function(id, module, LockMode::Write);
            match self.locks.covering_write(agent, &target) {
                LeaseCheck::Live(held) => {
                    leases.fences.insert(id, held.token.0);
                    leases.relied_on.push((id, target));
                }
                LeaseCheck::Expired { token, expired_at } => {
                    leases.expired.insert(id, (token, expired_at));
                }
                LeaseCheck::None => {}
            }
        }
        leases
    }

    /// At commit: every lease relied on is still live (one that lapsed,
    /// was broken or was released since preparation no longer authorises),
    /// and no function was committed under a newer token than ours
    /// (`high`: the highest token a function was committed under).
    pub(super) fn check_leases(
        &self,
        agent: AgentId,
        fences: &BTreeMap<FunctionId, u64>,
        relied_on: &[(FunctionId, LockTarget)],
        high: impl Fn(FunctionId) -> Option<u64>,
        name_of: impl Fn(FunctionId) -> QualifiedName,
    ) -> Result<(), ServiceError> {
        let expired = |id: FunctionId, token: u64, expired_at| ServiceError::LockExpired {
            function: id,
            name: name_of(id),
            token: FencingToken(token),
            expired_at,
        };
        for (id, target) in relied_on {
            match self.locks.covering_write(agent, target) {
                LeaseCheck::Live(_) => {}
                LeaseCheck::Expired { token, expired_at } => {
                    return Err(expired(*id, token.0, expired_at));
                }
                LeaseCheck::None => return Err(expired(*id, fences[id], None)),
            }
        }
        for (id, token) in fences {
            if high(*id).is_some_and(|h| h > *token) {
                return Err(expired(*id, *token, None));
            }
        }
        Ok(())
    }
}
