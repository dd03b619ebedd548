//! Helpers for the unit tests of the state (this folder and `state.rs`):
//! clock readings made by hand, resources in their text form, and requests
//! in one line. Test code only.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Admitted, Now, RequestId, State};
use crate::locks::agents::AgentId;
use crate::locks::resource::{ModuleName, Resource, ResourceName};
use crate::locks::types::{AcquireError, Denial, Grant, HolderView, LockMode, LockTarget, targets};

pub(super) const R: LockMode = LockMode::Read;
pub(super) const W: LockMode = LockMode::Write;
pub(super) const A: AgentId = AgentId(1);
pub(super) const B: AgentId = AgentId(2);
pub(super) const C: AgentId = AgentId(3);
pub(super) const D: AgentId = AgentId(4);

/// The lease of every test request.
pub(super) const TTL: Duration = Duration::from_secs(60);

/// A clock reading to start a test from; `later` moves it on.
pub(super) fn start() -> Now {
    Now {
        instant: Instant::now(),
        system: SystemTime::UNIX_EPOCH,
    }
}

pub(super) fn later(now: Now, ms: u64) -> Now {
    let d = Duration::from_millis(ms);
    Now {
        instant: now.instant + d,
        system: now.system + d,
    }
}

/// A target from the text form of its resource; a function's module
/// follows `@` (`function:#7@math`).
pub(super) fn target(text: &str, mode: LockMode) -> LockTarget {
    match text.split_once('@') {
        Some((f, module)) => {
            let Resource::Function(id) = Resource::parse(f).unwrap() else {
                panic!("{f} is not a function")
            };
            LockTarget::function(id, ModuleName::parse(module).unwrap(), mode)
        }
        None => LockTarget::new(Resource::parse(text).unwrap(), mode),
    }
}

/// `permits` of semaphore `name`, giving `capacity`.
pub(super) fn sem(name: &str, permits: u32, capacity: Option<u32>) -> LockTarget {
    LockTarget::permits(ResourceName::parse(name).unwrap(), permits, capacity)
}

impl State {
    /// `agent` asks for `fs` (functions of module `m`) without waiting.
    pub(super) fn ask(
        &mut self,
        agent: AgentId,
        fs: &[(u64, LockMode)],
        now: Now,
    ) -> Result<Grant, AcquireError> {
        self.take(agent, &targets(fs), now)
    }

    /// `agent` asks for `ts` without waiting, normalised as the table does.
    pub(super) fn take(
        &mut self,
        agent: AgentId,
        ts: &[LockTarget],
        now: Now,
    ) -> Result<Grant, AcquireError> {
        let ts = super::normalise(ts)?;
        self.try_acquire(agent, &ts, TTL, None, now)
    }

    /// `agent` asks for `fs` ready to wait: granted, queued or refused.
    pub(super) fn ask_to_wait(
        &mut self,
        agent: AgentId,
        fs: &[(u64, LockMode)],
        now: Now,
    ) -> Result<Admitted, AcquireError> {
        self.take_to_wait(agent, &targets(fs), now)
    }

    /// `agent` asks for `ts` ready to wait: granted, queued or refused.
    pub(super) fn take_to_wait(
        &mut self,
        agent: AgentId,
        ts: &[LockTarget],
        now: Now,
    ) -> Result<Admitted, AcquireError> {
        let ts = super::normalise(ts)?;
        let notify = Arc::new(Notify::new());
        self.admit(agent, &ts, TTL, None, now, notify)
    }

    /// `agent` asks for `fs` ready to wait and must be queued.
    pub(super) fn queue(&mut self, agent: AgentId, fs: &[(u64, LockMode)], now: Now) -> RequestId {
        self.queue_for(agent, &targets(fs), now)
    }

    /// `agent` asks for `ts` ready to wait and must be queued.
    pub(super) fn queue_for(&mut self, agent: AgentId, ts: &[LockTarget], now: Now) -> RequestId {
        match self.take_to_wait(agent, ts, now) {
            Ok(Admitted::Queued(rid)) => rid,
            Ok(Admitted::Granted(g)) => panic!("granted at once: {g:?}"),
            Err(e) => panic!("refused: {e:?}"),
        }
    }

    /// The denial `agent` gets for `fs` now (as a new request).
    pub(super) fn denied(&mut self, agent: AgentId, fs: &[(u64, LockMode)], now: Now) -> Denial {
        self.refused(agent, &targets(fs), now)
    }

    /// The denial `agent` gets for `ts` now (as a new request).
    pub(super) fn refused(&mut self, agent: AgentId, ts: &[LockTarget], now: Now) -> Denial {
        match self.take(agent, ts, now) {
            Err(AcquireError::Denied(d)) => d,
            other => panic!("not denied: {other:?}"),
        }
    }
}

/// The agents of some holders, in id order.
pub(super) fn agents(views: &[HolderView]) -> Vec<AgentId> {
    let mut out: Vec<AgentId> = views.iter().map(|h| h.agent).collect();
    out.sort();
    out
}
