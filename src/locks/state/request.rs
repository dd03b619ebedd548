//! What a request may ask, checked before anything is decided: every
//! target's companions match its kind (a function has its module, a
//! semaphore takes 1 to N permits), a request names each resource once
//! (`normalise`), and a semaphore's capacity agrees with the one it has
//! (`State::check_capacities`). A refused request changes nothing.
//!
//! Semaphores' capacities live here too: the first request granted or
//! queued on a semaphore fixes its capacity (`State::grant`, `State::admit`
//! record it), and an operator may set it (`State::set_capacity`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::keys::KeyRef;
use super::{Now, State};
use crate::locks::resource::{Resource, ResourceName};
use crate::locks::types::{CapacityError, Claim, InvalidRequest, LockTarget};

/// Checks one target's shape.
fn check(t: &LockTarget) -> Result<(), InvalidRequest> {
    let resource = || t.resource.clone();
    let semaphore = matches!(t.resource, Resource::Semaphore(_));
    if matches!(t.resource, Resource::Function(_)) != t.module.is_some() {
        return Err(match t.module {
            None => InvalidRequest::MissingModule {
                resource: resource(),
            },
            Some(_) => InvalidRequest::UnexpectedModule {
                resource: resource(),
            },
        });
    }
    if !semaphore && t.capacity.is_some() {
        return Err(InvalidRequest::UnexpectedCapacity {
            resource: resource(),
        });
    }
    match (semaphore, t.claim) {
        (true, Claim::Permits(0)) => Err(InvalidRequest::ZeroPermits {
            resource: resource(),
        }),
        (true, Claim::Permits(permits)) => match t.capacity {
            Some(0) => Err(InvalidRequest::ZeroCapacity {
                resource: resource(),
            }),
            Some(capacity) if permits > capacity => Err(InvalidRequest::PermitsOverCapacity {
                resource: resource(),
                permits,
                capacity,
            }),
            _ => Ok(()),
        },
        (true, claim) => Err(InvalidRequest::NotPermits {
            resource: resource(),
            claim,
        }),
        (false, Claim::Permits(_)) => Err(InvalidRequest::NotReadWrite {
            resource: resource(),
        }),
        (false, _) => Ok(()),
    }
}

/// Folds a second target on the same resource into the first: the stronger
/// claim; the module and the capacity must agree where both are given.
fn fold(into: &mut LockTarget, t: &LockTarget) -> Result<(), InvalidRequest> {
    into.claim = into.claim.max(t.claim);
    match (&into.module, &t.module) {
        (Some(a), Some(b)) if a != b => {
            return Err(InvalidRequest::TwoModules {
                resource: t.resource.clone(),
                first: a.clone(),
                second: b.clone(),
            });
        }
        _ => {}
    }
    match (into.capacity, t.capacity) {
        (Some(a), Some(b)) if a != b => Err(InvalidRequest::TwoCapacities {
            resource: t.resource.clone(),
            first: a,
            second: b,
        }),
        (None, given) => {
            into.capacity = given;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks a request's targets and normalises them: one per resource, the
/// strongest claim, in resource order. Already-normal requests (the common
/// single-resource one) are used as they are, without allocating.
pub(in crate::locks) fn normalise(
    targets: &[LockTarget],
) -> Result<Cow<'_, [LockTarget]>, InvalidRequest> {
    if targets.is_empty() {
        return Err(InvalidRequest::NoResources);
    }
    for t in targets {
        check(t)?;
    }
    if targets.windows(2).all(|w| w[0].resource < w[1].resource) {
        return Ok(Cow::Borrowed(targets));
    }
    let mut by_resource: BTreeMap<&Resource, LockTarget> = BTreeMap::new();
    for t in targets {
        match by_resource.get_mut(&t.resource) {
            Some(into) => fold(into, t)?,
            None => {
                by_resource.insert(&t.resource, t.clone());
            }
        }
    }
    let merged: Vec<LockTarget> = by_resource.into_values().collect();
    for t in &merged {
        check(t)?;
    }
    Ok(Cow::Owned(merged))
}

impl State {
    /// Checks every semaphore target against the capacity it has: a given
    /// capacity must agree, the permits must fit, and one without a
    /// capacity yet must be given one.
    pub(super) fn check_capacities(&self, targets: &[LockTarget]) -> Result<(), InvalidRequest> {
        for t in targets {
            let (Resource::Semaphore(name), Claim::Permits(permits)) = (&t.resource, t.claim)
            else {
                continue;
            };
            let resource = || t.resource.clone();
            match (self.capacities.get(name.arc()).copied(), t.capacity) {
                (Some(capacity), Some(asked)) if asked != capacity => {
                    return Err(InvalidRequest::CapacityMismatch {
                        resource: resource(),
                        capacity,
                        asked,
                    });
                }
                (Some(capacity), _) if permits > capacity => {
                    return Err(InvalidRequest::PermitsOverCapacity {
                        resource: resource(),
                        permits,
                        capacity,
                    });
                }
                (None, None) => {
                    return Err(InvalidRequest::CapacityUnknown {
                        resource: resource(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Fixes the capacity of each semaphore target that gives one and has
    /// none yet (its first use).
    pub(super) fn fix_capacities(&mut self, targets: &[LockTarget]) {
        for t in targets {
            if let (Resource::Semaphore(name), Some(c)) = (&t.resource, t.capacity) {
                self.capacities.entry(name.arc().clone()).or_insert(c);
            }
        }
    }

    /// A semaphore's capacity, if it has one.
    pub(in crate::locks) fn capacity(&self, name: &ResourceName) -> Option<u32> {
        self.capacities.get(name.arc()).copied()
    }

    /// Sets a semaphore's capacity (an operator's), refusing one below the
    /// permits held now or below what a waiting request asks (it could
    /// never be granted); then grants the waiters a larger one lets in.
    /// Returns the capacity it had.
    pub(in crate::locks) fn set_capacity(
        &mut self,
        name: &ResourceName,
        capacity: u32,
        now: Now,
    ) -> Result<Option<u32>, CapacityError> {
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        let semaphore = Resource::Semaphore(name.clone());
        let key = KeyRef::of(&semaphore);
        self.purge(key, now);
        if let Some(lock) = self.lock_at(key) {
            let in_use: u32 = lock.holders.iter().map(|h| h.live_permits(now)).sum();
            if in_use > capacity {
                return Err(CapacityError::BelowUse {
                    name: name.clone(),
                    in_use,
                    capacity,
                });
            }
            let most = lock
                .queue
                .iter()
                .filter_map(|rid| self.waiting[rid].claim_on(&key))
                .map(|c| c.permits())
                .max()
                .unwrap_or(0);
            if most > capacity {
                return Err(CapacityError::BelowWaiter {
                    name: name.clone(),
                    permits: most,
                    capacity,
                });
            }
        }
        let stuck = self.unreached(now);
        let before = self.capacities.insert(name.arc().clone(), capacity);
        if before.is_some_and(|b| capacity < b)
            && let Some(cycle) = self.stuck_since(&stuck, now)
        {
            // A smaller capacity can leave waiters that each wait for the
            // others' permits; every waiting request must stay reachable.
            self.capacities
                .insert(name.arc().clone(), before.expect("lowered"));
            return Err(CapacityError::WouldDeadlock {
                name: name.clone(),
                capacity,
                cycle,
            });
        }
        self.pump(now);
        Ok(before)
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
