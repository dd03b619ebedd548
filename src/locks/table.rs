//! The lock table: read/write locks on functions, modules, paths and named
//! resources, and permits of semaphores, with all-or-nothing batches, FIFO
//! queues, leases, fencing tokens and deadlock refusal.
//! `LockTable` is the state (`state.rs`) behind one mutex, read with one
//! clock; this file holds that mutex, the clock, the poison policy and the
//! operations that answer at once. Waiting in the queues and the sweeper
//! are `wait.rs`. The rules themselves are stated in `state.rs`; nothing
//! here decides who gets a lock.
//!
//! One `std::sync::Mutex` guards the whole table. A batch must see a
//! consistent view of several resources to be granted all-or-nothing, and a
//! single short critical section (no IO, no `.await`, no allocation beyond
//! the grant itself) is the simplest design that is obviously right. It is
//! a std mutex rather than a tokio one because it is never held across an
//! `.await`; waiting happens outside it, on a per-request `Notify`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::agents::AgentId;
use super::resource::{Resource, ResourceName};
use super::state::events::LockEvent;
use super::state::{self, Now, State};
use super::types::{
    AcquireError, BrokenLease, CapacityError, Claim, Denial, EndedAgent, FencingToken, Grant,
    HeldLock, HolderView, InvalidRequest, LeaseCheck, LockConfig, LockRequest, LockTarget,
    LockView, WaiterView,
};

pub struct LockTable {
    state: Mutex<State>,
    pub(super) config: LockConfig,
    pub(super) clock: Clock,
    /// Wakes the sweeper when a grant expires before it planned to wake.
    pub(super) sweeper: Notify,
    /// `Some(reason)` once the mutex was found poisoned (see `lock_state`).
    poisoned: watch::Sender<Option<String>>,
    /// Counts requests that joined a queue, so that a holder can hear that
    /// someone waits behind it (watchers compare the queues themselves).
    pub(super) queued: watch::Sender<u64>,
}

/// Reads the clock once per operation. Wall-clock times (for display only)
/// are derived from the monotonic instant and a base taken when the table
/// was made, so an operation reads the clock once.
#[derive(Clone, Copy)]
pub(super) struct Clock {
    base_instant: Instant,
    base_system: SystemTime,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base_instant: Instant::now(),
            base_system: SystemTime::now(),
        }
    }

    pub(super) fn now(&self) -> Now {
        let instant = Instant::now();
        Now {
            instant,
            system: self.base_system + instant.saturating_duration_since(self.base_instant),
        }
    }
}

impl LockTable {
    pub fn new(config: LockConfig) -> Arc<LockTable> {
        Arc::new(LockTable {
            state: Mutex::new(State::new(config.fencing_base)),
            config,
            clock: Clock::new(),
            sweeper: Notify::new(),
            poisoned: watch::channel(None).0,
            queued: watch::channel(0).0,
        })
    }

    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// Holds `Some(reason)` once the table's state may be broken (its
    /// mutex was poisoned by a panic); the hub must then stop, as it does
    /// on a store write failure. A receiver taken afterwards sees the
    /// reason at once.
    pub fn poisoned(&self) -> watch::Receiver<Option<String>> {
        self.poisoned.subscribe()
    }

    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poison| {
            // A poisoned mutex means a panic happened in the middle of an
            // update, so the state may be half-changed (a holder gone from
            // its function but not from its agent's list, a request out of
            // its queue but not settled). Granting on it could break the
            // rules the table exists to keep, silently. So the hub stops,
            // as it does on a store write failure: the first caller to see
            // the poison sends the reason, and the server shuts down on it.
            // The call in hand still completes on the state as it is, so
            // that one panic does not become a panic in every call while
            // the server stops.
            self.poisoned.send_if_modified(|reason| {
                let first = reason.is_none();
                if first {
                    *reason =
                        Some("lock table mutex poisoned by a panic: the hub must restart".into());
                }
                first
            });
            poison.into_inner()
        })
    }

    /// Releases the state and wakes the sweeper if a grant made under it
    /// expires before the sweeper planned to wake.
    pub(super) fn unlock(&self, mut s: MutexGuard<'_, State>) {
        let wake = s.take_sweep_sooner();
        drop(s);
        if wake {
            self.sweeper.notify_one();
        }
    }

    pub(super) fn ttl(&self, ttl: Option<Duration>) -> Result<Duration, AcquireError> {
        let ttl = ttl.unwrap_or(self.config.default_ttl);
        if ttl.is_zero() {
            return Err(InvalidRequest::ZeroTtl.into());
        }
        Ok(ttl.min(self.config.max_ttl))
    }

    /// Grants the whole request now or nothing.
    pub fn try_acquire(&self, req: &LockRequest) -> Result<Grant, AcquireError> {
        let targets = state::normalise(&req.targets)?;
        let ttl = self.ttl(req.ttl)?;
        let now = self.clock.now();
        let mut s = self.lock_state();
        let grant = s.try_acquire(req.agent, &targets, ttl, req.purpose.as_deref(), now)?;
        self.unlock(s);
        Ok(grant)
    }

    /// Releases `resources` (or everything) held by `agent`, and forgets
    /// their expired leases. A resource is named by its identity alone (a
    /// function by id, whatever its module).
    pub fn release(
        &self,
        agent: AgentId,
        resources: Option<&[Resource]>,
    ) -> Vec<(Resource, Claim)> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let released = s.release(agent, resources, now);
        if s.has_waiters() {
            s.pump(now);
        }
        self.unlock(s);
        released
    }

    /// Ends an agent: releases all it holds, removes its waiting requests
    /// (their acquire calls return `AgentEnded`), forgets its leases.
    pub fn end_agent(&self, agent: AgentId) -> EndedAgent {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let ended = s.end_agent(agent, now);
        self.unlock(s);
        ended
    }

    /// Breaks every lease on exactly `resource` at once (operator
    /// `break-lock`; locks above or below it stay): the holders' tokens
    /// stop authorising, and waiters are granted.
    pub fn break_lock(&self, resource: &Resource) -> Vec<BrokenLease> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let broken = s.break_lock(resource, now);
        self.unlock(s);
        broken
    }

    /// Releases those of `resources` that `agent` still holds under `token`
    /// (a grant whose answer never arrived); returns how many.
    pub fn give_back(&self, agent: AgentId, token: FencingToken, resources: &[Resource]) -> usize {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let n = s.give_back(agent, token, resources, now);
        self.unlock(s);
        n
    }

    /// The agent's lease on a resource, as of this instant.
    pub fn lease(&self, agent: AgentId, resource: &Resource) -> LeaseCheck {
        let now = self.clock.now();
        self.lock_state().lease(agent, resource, now)
    }

    /// The agent's live write lock covering `target`'s resource (on it,
    /// or on a module or directory above it), as of this instant; else an
    /// expired lease it had there.
    pub fn covering_write(&self, agent: AgentId, target: &LockTarget) -> LeaseCheck {
        let now = self.clock.now();
        self.lock_state().covering_write(agent, target, now)
    }

    /// Live holders other than `agent` in the way of `target` (a
    /// directory or module above it included).
    pub fn conflicting_holders(&self, agent: AgentId, target: &LockTarget) -> Vec<HolderView> {
        self.held_against(agent, std::slice::from_ref(target))
            .blocked
            .into_iter()
            .flat_map(|b| b.holders)
            .collect()
    }

    /// What a new request by `agent` for `targets` would be told now, for
    /// the targets that live holders of other agents block (earlier
    /// waiters alone block a lock request, not an optimistic edit): their
    /// holders, the waiters ahead and the place the request would take. It
    /// only looks.
    ///
    /// An edit of a function asks this with `LockTarget::function(id,
    /// module, Write)`, so a lock on the function's module (or a module
    /// above it) is honoured like one on the function. A structure change
    /// inside a module (creating a function in it, moving one in or out)
    /// asks it with a write target on the function inside that module, new
    /// id or old: then only the module's holders (and the function's) are
    /// in the way, not the holders of its other functions.
    pub fn held_against(&self, agent: AgentId, targets: &[LockTarget]) -> Denial {
        let now = self.clock.now();
        let mut denial = self.lock_state().denial(agent, targets, None, now);
        denial.blocked.retain(|b| !b.holders.is_empty());
        denial
    }

    /// Every live holder that meets `target`'s resource, whatever its
    /// claim: of it, of a resource above it, of resources below it.
    pub fn holders(&self, target: &LockTarget) -> Vec<HolderView> {
        let now = self.clock.now();
        self.lock_state().holders(target, now)
    }

    /// Everything `agent` holds now.
    pub fn held_by(&self, agent: AgentId) -> Vec<HeldLock> {
        let now = self.clock.now();
        self.lock_state().held_by(agent, now)
    }

    /// Every resource with holders or waiters of its own, in resource
    /// order (kind, then name).
    pub fn status(&self) -> Vec<LockView> {
        let now = self.clock.now();
        self.lock_state().status(now)
    }

    /// A semaphore's capacity, if it has one yet.
    pub fn capacity(&self, name: &ResourceName) -> Option<u32> {
        self.lock_state().capacity(name)
    }

    /// Sets a semaphore's capacity (an operator's); returns the one it
    /// had. Refused below the permits in use, below what a waiting request
    /// asks, or where the waiting requests would deadlock.
    pub fn set_capacity(
        &self,
        name: &ResourceName,
        capacity: u32,
    ) -> Result<Option<u32>, CapacityError> {
        let now = self.clock.now();
        let mut s = self.lock_state();
        let set = s.set_capacity(name, capacity, now);
        self.unlock(s);
        set
    }

    /// The highest fencing token handed out.
    pub fn fencing_high_water(&self) -> u64 {
        self.lock_state().fencing_high_water()
    }

    /// Expires due leases and grants waiters; what the sweeper does.
    pub fn sweep(&self) -> Option<Instant> {
        let now = self.clock.now();
        self.lock_state().sweep(now)
    }

    /// Requests of other agents that `agent`'s locks keep waiting.
    pub fn waiting_behind(&self, agent: AgentId) -> Vec<WaiterView> {
        let now = self.clock.now();
        self.lock_state().waiting_behind(agent, now)
    }

    /// The recent lock events after `after` (by sequence number), oldest
    /// first, at most the `limit` newest.
    pub fn events(&self, after: Option<u64>, limit: usize) -> Vec<LockEvent> {
        self.lock_state().events_since(after, limit)
    }

    /// Changes whenever a lock event (grant, release, expiry, break,
    /// deadlock refusal) is logged.
    pub fn lock_changes(&self) -> watch::Receiver<u64> {
        self.lock_state().event_watch()
    }

    /// Changes whenever a request joins a queue.
    pub fn queue_changes(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// Waiting requests, for status and tests.
    pub fn n_waiting(&self) -> usize {
        self.lock_state().n_waiting()
    }

    /// Locks held with a live lease, for metrics.
    pub fn n_held(&self) -> usize {
        let now = self.clock.now();
        self.lock_state().n_held(now)
    }
}

#[cfg(test)]
impl LockTable {
    /// Panics while holding the state's guard, as a bug in the middle of an
    /// update would, and catches the panic: the mutex is left poisoned.
    pub(crate) fn poison_by_panic(&self) {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = self.lock_state();
            panic!("a bug in the middle of an update (on purpose, in a test)");
        }));
        assert!(caught.is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::FunctionId;
    use crate::locks::types::{LockMode, req};
    #[tokio::test]
    async fn readers_share_writers_exclude() {
        let t = LockTable::new(LockConfig::default());
        let (a, b) = (AgentId(1), AgentId(2));
        t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        t.try_acquire(&req(b, &[(1, LockMode::Read)])).unwrap();
        let err = t.try_acquire(&req(b, &[(1, LockMode::Write)])).unwrap_err();
        let AcquireError::Denied(d) = err else {
            panic!("{err:?}")
        };
        assert_eq!(d.blocked[0].holders[0].agent, a);
        assert_eq!(
            (d.blocked[0].queue_position, d.blocked[0].queue_length),
            (1, 0)
        );
    }

    #[tokio::test]
    async fn failed_batch_keeps_what_was_held() {
        let t = LockTable::new(LockConfig::default());
        let (a, b) = (AgentId(1), AgentId(2));
        t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        t.try_acquire(&req(b, &[(2, LockMode::Write)])).unwrap();
        assert!(
            t.try_acquire(&req(
                a,
                &[
                    (1, LockMode::Write),
                    (2, LockMode::Read),
                    (3, LockMode::Write)
                ]
            ))
            .is_err()
        );
        let held = t.held_by(a);
        assert_eq!(held.len(), 1);
        assert_eq!(
            (&held[0].resource, held[0].claim),
            (&Resource::Function(FunctionId(1)), Claim::Read)
        );
    }

    #[tokio::test]
    async fn upgrade_when_sole_reader() {
        let t = LockTable::new(LockConfig::default());
        let a = AgentId(1);
        let g1 = t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        let g2 = t.try_acquire(&req(a, &[(1, LockMode::Write)])).unwrap();
        assert!(g2.token > g1.token);
        assert_eq!(g2.locks[0].claim, Claim::Write);
        // Asking for read while holding write keeps write.
        let g3 = t.try_acquire(&req(a, &[(1, LockMode::Read)])).unwrap();
        assert_eq!(g3.locks[0].claim, Claim::Write);
    }

    #[tokio::test]
    async fn invalid_requests_are_refused() {
        let t = LockTable::new(LockConfig::default());
        assert!(matches!(
            t.try_acquire(&req(AgentId(1), &[])),
            Err(AcquireError::Invalid(_))
        ));
        let mut r = req(AgentId(1), &[(1, LockMode::Read)]);
        r.ttl = Some(Duration::ZERO);
        assert!(matches!(t.try_acquire(&r), Err(AcquireError::Invalid(_))));
    }

    #[test]
    fn a_poisoned_mutex_is_reported_once_and_the_table_still_answers() {
        let t = LockTable::new(LockConfig::default());
        let mut before = t.poisoned();
        t.try_acquire(&req(AgentId(1), &[(1, LockMode::Write)]))
            .unwrap();
        assert!(!before.has_changed().unwrap(), "no poison yet");
        t.poison_by_panic();
        // The first call after the panic finds the poison, reports it and
        // still answers from the state as it is.
        let status = t.status();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].holders[0].agent, AgentId(1));
        assert!(before.has_changed().unwrap());
        let reason = before.borrow_and_update().clone().expect("a reason");
        assert!(reason.contains("poisoned"), "{reason}");
        // Later calls keep answering, and do not report again.
        assert!(matches!(
            t.try_acquire(&req(AgentId(2), &[(1, LockMode::Read)])),
            Err(AcquireError::Denied(_))
        ));
        assert!(!before.has_changed().unwrap(), "reported once");
        // A receiver taken afterwards sees the reason at once.
        assert_eq!(t.poisoned().borrow().as_deref(), Some(reason.as_str()));
    }
}
