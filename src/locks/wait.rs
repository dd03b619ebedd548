//! The table's async side: `LockTable::acquire`, which waits in the queues
//! for a request the table cannot grant at once (reporting progress, giving
//! up on timeout, cancellation or a dropped future), and the sweeper task,
//! which wakes waiters when a lease runs out and nobody else touches the
//! table.
//!
//! Neither decides anything. The waiter sleeps on its own `Notify` outside
//! the mutex and, when woken, collects what the state decided for it (the
//! pump grants waiters; a waiter never grants itself). No guard of the
//! state is held across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::agents::AgentId;
use super::state::{self, Admitted, RequestId};
use super::table::LockTable;
use super::types::{AcquireError, Blocked, Grant, LockRequest, WaitProgress};

/// Takes its request back if the acquire future ends without an answer
/// from the table (dropped, cancelled): the request leaves the queues and a
/// grant nobody collected is undone.
struct WaitGuard<'a> {
    table: &'a LockTable,
    rid: RequestId,
    agent: AgentId,
    done: bool,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let now = self.table.clock.now();
        let mut s = self.table.lock_state();
        s.abandon(self.rid, self.agent, now);
        self.table.unlock(s);
    }
}

impl LockTable {
    /// Grants the request, waiting up to `wait` in the queues for it.
    pub async fn acquire(
        &self,
        req: LockRequest,
        wait: Duration,
        cancel: &CancellationToken,
        progress: Option<mpsc::UnboundedSender<WaitProgress>>,
    ) -> Result<Grant, AcquireError> {
        if wait.is_zero() {
            return self.try_acquire(&req);
        }
        let targets = state::normalise(&req.targets)?.into_owned();
        let ttl = self.ttl(req.ttl)?;
        let start = Instant::now();
        let deadline = start + wait;
        let notify = Arc::new(Notify::new());
        let rid = {
            let now = self.clock.now();
            let mut s = self.lock_state();
            let admitted = s.admit(
                req.agent,
                &targets,
                ttl,
                req.purpose.as_deref(),
                now,
                notify.clone(),
            )?;
            match admitted {
                Admitted::Granted(grant) => {
                    self.unlock(s);
                    return Ok(grant);
                }
                Admitted::Queued(rid) => rid,
            }
        };
        self.queued.send_modify(|n| *n += 1);
        let mut guard = WaitGuard {
            table: self,
            rid,
            agent: req.agent,
            done: false,
        };
        let mut last_report: Option<Vec<Blocked>> = None;
        if let Some(tx) = &progress {
            // Report the starting position at once.
            let now = self.clock.now();
            let blocked = self
                .lock_state()
                .denial(req.agent, &targets, Some(rid), now)
                .blocked;
            let _ = tx.send(WaitProgress {
                waited: Duration::ZERO,
                blocked: blocked.clone(),
            });
            last_report = Some(blocked);
        }
        let mut next_tick = Instant::now() + self.config.progress_interval;
        loop {
            let mut timed_out = false;
            let mut cancelled = false;
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep_until(deadline) => timed_out = true,
                _ = cancel.cancelled() => cancelled = true,
                _ = tokio::time::sleep_until(next_tick) => {}
            }
            if cancelled || cancel.is_cancelled() {
                // Even a grant the pump made a moment ago is undone: the
                // caller is gone and would never learn it holds the locks.
                // The guard leaves the queue, restores what was held
                // before, and wakes those behind.
                drop(guard);
                return Err(AcquireError::Cancelled);
            }
            let now = self.clock.now();
            let mut s = self.lock_state();
            if let Some(outcome) = s.collect(rid) {
                guard.done = true;
                self.unlock(s);
                return outcome;
            }
            if timed_out {
                let err = s.time_out(rid, req.agent, &targets, now);
                self.unlock(s);
                guard.done = true;
                return Err(err);
            }
            if let Some(tx) = &progress {
                let blocked = s.denial(req.agent, &targets, Some(rid), now).blocked;
                let tick = now.instant >= next_tick;
                if tick || last_report.as_ref() != Some(&blocked) {
                    let _ = tx.send(WaitProgress {
                        waited: now.instant.saturating_duration_since(start),
                        blocked: blocked.clone(),
                    });
                    last_report = Some(blocked);
                }
            }
            if now.instant >= next_tick {
                next_tick = now.instant + self.config.progress_interval;
            }
        }
    }

    /// Starts the task that sleeps until the earliest lease expiry, then
    /// expires it and wakes waiters; re-armed whenever a grant is made.
    pub fn spawn_sweeper(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let table = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(t) = table.upgrade() else { return };
                let next = t.sweep();
                let wake = async {
                    match next {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = t.sweeper.notified() => {}
                    _ = wake => {}
                }
            }
        })
    }
}
