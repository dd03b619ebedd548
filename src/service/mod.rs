//! The service: one program, one lock table, one store, shared by every
//! agent. It is what the MCP tools call, and it knows nothing of MCP.
//!
//! State and who guards it:
//! - `published`: the latest durable program, an `Arc<Program>` behind a
//!   std `RwLock` held only to clone or swap the `Arc`. Reads never wait for
//!   writers: they work on the snapshot they cloned.
//! - `tip`: the latest sequenced program, which may be ahead of `published`
//!   by commits whose fsync is in flight. Edits are prepared against a clone
//!   of it, outside any lock; a std `Mutex` guards only the short
//!   sequencing step (validate, assign the revision, queue the write), never
//!   an `.await`.
//! - `structure`: module-structure commits (create, delete, rename) hold it
//!   exclusively while they prepare and sequence; function commits share it.
//! - the lock table and the agent registry (see `locks`).
//! - `agent_state`: per agent, what it last read of each function (the base
//!   its edits are checked against) and its run of conflicts.

mod access;
mod commit;
pub mod error;
pub mod feed;
mod fencing;
mod guard;
mod import;
mod locking;
pub mod metrics;
mod observe;
mod operator;
mod proposal;
mod reads;
pub mod requests;
pub mod time;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::{FunctionConflict, LockedFunction, ServiceError};
pub use guard::{GuardReport, RefusedPath};
pub use import::ImportOutcome;
pub use locking::{LockSpec, ResourceRef, TokenCheck};
pub use operator::{ActionReport, AgentReport, OperatorError, resource_text};
pub use proposal::{CommitOutcome, EditRequest, FunctionOutcome, OnConflict};
pub use reads::{DiffResult, FunctionRead, VersionSel};

use crate::eval::Budget;
use crate::graph::{ContentHash, Function, FunctionId, Program, QualifiedName, Revision};
use crate::locks::{AgentId, AgentRegistry, LockConfig, LockTable, StructureLock, Transport};
use crate::store::{Store, StoreError};
use crate::verify::{Diagnostic, verify_all};

/// The default cap on live stateless agents: thousands, so a busy host
/// never meets it, but a runaway client cannot fill memory with agents.
pub const DEFAULT_MAX_STATELESS: usize = 4096;

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub data_dir: PathBuf,
    pub locks: LockConfig,
    /// Consecutive conflicts on one function by one agent before the
    /// answer becomes `too_many_conflicts`.
    pub max_conflicts: u32,
    /// Stateless (register_agent) agents idle this long are ended
    /// (`cograph serve --agent-idle`).
    pub stateless_idle: Duration,
    /// Most stateless agents alive at once (`cograph serve --max-agents`);
    /// `register_agent` past it is refused.
    pub max_stateless: usize,
    pub run_budget: Budget,
    /// Most ops in one propose_edit.
    pub max_ops: usize,
}

impl HubConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> HubConfig {
        HubConfig {
            data_dir: data_dir.into(),
            locks: LockConfig::default(),
            max_conflicts: 5,
            stateless_idle: Duration::from_secs(30 * 60),
            max_stateless: DEFAULT_MAX_STATELESS,
            run_budget: Budget::default(),
            max_ops: 1000,
        }
    }
}

/// What an agent last read of a function: the base of its next edit.
#[derive(Clone, Debug)]
pub struct ReadRecord {
    pub hash: ContentHash,
    pub revision: Revision,
    pub function: Arc<Function>,
}

#[derive(Default)]
struct AgentState {
    reads: HashMap<FunctionId, ReadRecord>,
    conflicts: HashMap<FunctionId, u32>,
}

impl AgentState {
    /// Records that the agent has seen `entry` of `id`, unless it has
    /// already seen a later version: two of its own commits acknowledged
    /// in one batch may report in either order, and its base must not move
    /// back to the older one.
    fn note_read(&mut self, id: FunctionId, entry: &crate::graph::FunctionEntry) {
        if self
            .reads
            .get(&id)
            .is_some_and(|r| r.revision > entry.revision)
        {
            return;
        }
        self.reads.insert(
            id,
            ReadRecord {
                hash: entry.hash,
                revision: entry.revision,
                function: entry.function.clone(),
            },
        );
    }
}

/// The program at the tip of the commit sequence, with the fencing
/// high-water mark of each function.
#[derive(Clone)]
struct Tip {
    program: Program,
    fences: imbl::HashMap<FunctionId, u64>,
}

pub struct Hub {
    config: HubConfig,
    store: Store,
    locks: Arc<LockTable>,
    agents: AgentRegistry,
    structure: StructureLock,
    published: RwLock<Arc<Program>>,
    published_revision: watch::Sender<Revision>,
    tip: Mutex<Tip>,
    agent_state: DashMap<AgentId, AgentState>,
    /// Commits made under a request id and not yet durable.
    pending_requests: requests::PendingRequests,
    /// Each agent's recent lock requests made under a request id.
    lock_requests: DashMap<AgentId, requests::LockRequests>,
    /// Why the hub must stop (a store failure or a poisoned mutex), once.
    fatal: watch::Sender<Option<String>>,
    metrics: metrics::Metrics,
    feed: feed::Feed,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored program does not verify ({} diagnostics; first: {})", .0.len(), .0[0])]
    Unverified(Vec<Diagnostic>),
}

/// Ends its agent when dropped: a stdio connection or an HTTP protocol
/// session holds one, so that however the session ends, its locks and
/// queue places go at once.
pub struct AgentSession {
    hub: Arc<Hub>,
    id: AgentId,
}

impl AgentSession {
    pub fn id(&self) -> AgentId {
        self.id
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        self.hub.end_agent(self.id);
    }
}

impl Hub {
    /// Opens the store in the configured directory, recovers and verifies
    /// the program, and starts the lease sweeper and the idle-agent reaper.
    /// Must run inside a tokio runtime.
    pub fn open(config: HubConfig) -> Result<Arc<Hub>, HubError> {
        let (store, recovered) = Store::open(&config.data_dir)?;
        let diagnostics = verify_all(&recovered.program);
        if !diagnostics.is_empty() {
            return Err(HubError::Unverified(diagnostics));
        }
        let mut lock_config = config.locks.clone();
        lock_config.fencing_base = recovered.epoch << 40;
        let locks = LockTable::new(lock_config);
        let revision = recovered.program.revision();
        tracing::info!(
            dir = %config.data_dir.display(),
            functions = recovered.program.len(),
            commits = recovered.n_commits,
            %revision,
            epoch = recovered.epoch,
            "store opened"
        );
        let program = recovered.program;
        let hub = Arc::new(Hub {
            store,
            locks,
            agents: AgentRegistry::new(),
            structure: StructureLock::new(),
            published: RwLock::new(Arc::new(program.clone())),
            published_revision: watch::channel(revision).0,
            tip: Mutex::new(Tip {
                program,
                fences: recovered.fences.into_iter().collect(),
            }),
            agent_state: DashMap::new(),
            pending_requests: Default::default(),
            lock_requests: DashMap::new(),
            fatal: watch::channel(None).0,
            metrics: metrics::Metrics::default(),
            feed: feed::Feed::default(),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        let sweeper = hub.locks.spawn_sweeper(hub.shutdown.clone());
        let reaper = tokio::spawn(sweep_while_alive(
            Arc::downgrade(&hub),
            hub.config.stateless_idle,
            hub.shutdown.clone(),
            async |hub| reap_idle_agents(&hub),
        ));
        // A store failure and a poisoned lock table stop the hub alike.
        let stoppers = [hub.store.fatal(), hub.locks.poisoned()].map(|reason| {
            tokio::spawn(stop_when(
                Arc::downgrade(&hub),
                reason,
                hub.shutdown.clone(),
            ))
        });
        let mut tasks = hub.tasks.lock().expect("tasks lock");
        tasks.extend([sweeper, reaper]);
        tasks.extend(stoppers);
        drop(tasks);
        Ok(hub)
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    pub fn locks(&self) -> &Arc<LockTable> {
        &self.locks
    }

    pub fn agents(&self) -> &AgentRegistry {
        &self.agents
    }

    /// The hub's counters, for the adapters to record tool calls in.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// Cancelled when the hub shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What happened lately (commits, conflicts, refusals, agents).
    pub fn feed(&self) -> &feed::Feed {
        &self.feed
    }

    /// The metrics in Prometheus's text form, with the gauges read now.
    pub fn metrics_text(&self) -> String {
        let gauges = metrics::Gauges {
            n_waiting: self.locks.n_waiting(),
            n_held: self.locks.n_held(),
            agents: self.agents.list().iter().map(|a| a.transport).collect(),
            revision: self.snapshot().revision().0,
        };
        self.metrics.render(&gauges, self.store.write_durations())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fires with a reason when the hub must stop: the store failed, or a
    /// mutex was poisoned. The server exits on it (non-zero).
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.subscribe()
    }

    /// Records why the hub must stop; the first reason wins.
    fn stop(&self, reason: String) {
        self.fatal.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            tracing::error!(%reason, "the hub must stop");
            *current = Some(reason);
            true
        });
    }

    /// The tip, under its mutex.
    ///
    /// Poison policy (the same for every mutex of the hub and the lock
    /// table): a poisoned mutex means a panic interrupted a critical
    /// section, so what it guards may be half-changed. Going on could
    /// sequence a commit on a tip that is not the program the store holds,
    /// so the hub stops as it does on a store failure, and this call is
    /// refused. A restart recovers every acknowledged commit from the store.
    fn tip(&self) -> Result<std::sync::MutexGuard<'_, Tip>, ServiceError> {
        self.tip.lock().map_err(|_| {
            let reason = "the tip mutex was poisoned by a panic; the hub must restart".to_string();
            self.stop(reason.clone());
            ServiceError::Unavailable(reason)
        })
    }

    /// The latest durable program. Cheap: clones an `Arc`.
    pub fn snapshot(&self) -> Arc<Program> {
        // The critical sections on `published` only clone or swap an `Arc`
        // and cannot leave it half-changed; a poisoned lock still stops the
        // hub (the one policy, see `tip`) but reads go on meanwhile.
        match self.published.read() {
            Ok(published) => published.clone(),
            Err(poisoned) => {
                self.stop("the published-snapshot lock was poisoned by a panic".into());
                poisoned.into_inner().clone()
            }
        }
    }

    /// Registers an agent for a connection; the agent ends when the
    /// returned session is dropped.
    pub fn connect(self: &Arc<Self>, name: &str, transport: Transport) -> AgentSession {
        let id = self.agents.register(name.to_string(), None, transport);
        tracing::info!(agent = %id, name, ?transport, "agent connected");
        self.feed
            .push(Some(id), name.to_string(), feed::FeedKind::AgentJoined);
        AgentSession {
            hub: self.clone(),
            id,
        }
    }

    /// Ends an agent: its locks and queue places go at once, and what it
    /// read is forgotten.
    pub fn end_agent(&self, agent: AgentId) {
        // Unregister first: a call of this agent still in flight that is
        // granted locks after the table below lets them go sees the agent
        // gone and gives them back (see `acquire`).
        let info = self.agents.remove(agent);
        self.end_agent_locks(agent, info);
    }

    /// Ends a stateless agent if and only if it is still idle past `idle`
    /// with no call in flight, checked atomically with its removal, so a
    /// call that has just begun keeps its agent.
    pub fn end_agent_if_idle(&self, agent: AgentId, idle: Duration) -> bool {
        match self.agents.remove_if_idle(agent, idle) {
            Some(info) => {
                self.end_agent_locks(agent, Some(info));
                true
            }
            None => false,
        }
    }

    fn end_agent_locks(&self, agent: AgentId, info: Option<crate::locks::AgentInfo>) {
        let ended = self.locks.end_agent(agent);
        self.agent_state.remove(&agent);
        self.lock_requests.remove(&agent);
        if let Some(info) = info {
            self.feed
                .push(Some(agent), info.name.clone(), feed::FeedKind::AgentLeft);
            tracing::info!(
                agent = %agent,
                name = %info.name,
                released = ended.released.len(),
                dequeued = ended.n_dequeued,
                "agent ended"
            );
        }
    }

    /// Stops background tasks and closes the store after pending writes.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().expect("tasks lock").drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        self.store.close();
    }

    fn publish(&self, program: Arc<Program>) {
        let revision = program.revision();
        {
            let mut published = self.published.write().unwrap_or_else(|poisoned| {
                self.stop("the published-snapshot lock was poisoned by a panic".into());
                poisoned.into_inner()
            });
            if published.revision() >= revision {
                return;
            }
            *published = program;
        }
        self.published_revision.send_if_modified(|r| {
            if *r < revision {
                *r = revision;
                true
            } else {
                false
            }
        });
    }

    /// The published revision, watched: it changes after every commit is
    /// published (several commits may show as one change).
    pub fn revisions(&self) -> watch::Receiver<Revision> {
        self.published_revision.subscribe()
    }

    /// Waits until the published program has reached `revision`.
    async fn wait_published(&self, revision: Revision) {
        let mut rx = self.published_revision.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| *r >= revision)).await;
    }

    /// The fencing high-water mark of every function (for tests and status).
    pub fn fences(&self) -> BTreeMap<FunctionId, u64> {
        match self.tip() {
            Ok(tip) => tip.fences.iter().map(|(k, v)| (*k, *v)).collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    pub fn name_of(&self, id: FunctionId) -> Option<QualifiedName> {
        self.snapshot().name_of(id)
    }
}

/// Stops the hub when `reason` fires, unless the hub is gone or shut down
/// first.
async fn stop_when(
    hub: Weak<Hub>,
    mut reason: watch::Receiver<Option<String>>,
    shutdown: CancellationToken,
) {
    let fired = tokio::select! {
        r = reason.wait_for(|r| r.is_some()) => r.ok().and_then(|r| r.clone()),
        _ = shutdown.cancelled() => None,
    };
    if let (Some(reason), Some(hub)) = (fired, hub.upgrade()) {
        hub.stop(reason);
    }
}

/// Runs `sweep` every quarter of `idle` (50 ms to 5 s) while `owner` lives
/// and until `shutdown`: the loop of every idle reaper (stateless agents
/// here, HTTP protocol sessions in the MCP layer).
pub async fn sweep_while_alive<T, F, Fut>(
    owner: Weak<T>,
    idle: Duration,
    shutdown: CancellationToken,
    mut sweep: F,
) where
    F: FnMut(Arc<T>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let period = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(owner) = owner.upgrade() else { return };
        sweep(owner).await;
    }
}

/// Ends stateless agents that have been idle too long (never one with a
/// call in flight, so a long lock wait is safe).
fn reap_idle_agents(hub: &Hub) {
    for agent in hub.agents.idle_stateless(hub.config.stateless_idle) {
        if hub.end_agent_if_idle(agent, hub.config.stateless_idle) {
            tracing::info!(%agent, "stateless agent was idle too long; ended it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Body, EditOp, Type};

    fn create(name: &str) -> EditRequest {
        EditRequest {
            ops: vec![EditOp::CreateFunction {
                name: QualifiedName::new(name).unwrap(),
                params: Vec::new(),
                returns: Type::I64,
                doc: None,
                body: Some(Body::Text("%0 = const 1\n%1 = return %0\n".into())),
            }],
            ..EditRequest::default()
        }
    }

    #[tokio::test]
    async fn a_poisoned_tip_stops_the_hub_and_refuses_commits() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
        let agent = hub.connect("a", Transport::InProcess);
        hub.propose(agent.id(), create("m::before")).await.unwrap();
        let mut fatal = hub.fatal();
        assert!(fatal.borrow().is_none());

        let poisoner = hub.clone();
        let panicked = std::thread::spawn(move || {
            let _tip = poisoner.tip.lock().unwrap();
            panic!("a panic inside the tip's critical section (on purpose)");
        })
        .join();
        assert!(panicked.is_err() && hub.tip.is_poisoned());

        let err = hub
            .propose(agent.id(), create("m::after"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ServiceError::Unavailable(m) if m.contains("tip mutex was poisoned")),
            "{err:?}"
        );
        let reason = fatal.wait_for(Option::is_some).await.unwrap().clone();
        assert!(reason.unwrap().contains("tip mutex was poisoned"));
        // Nothing was half-committed, and reads go on from the snapshot.
        let program = hub.snapshot();
        assert_eq!(program.revision(), Revision(1));
        assert!(
            program
                .id_of(&QualifiedName::new("m::after").unwrap())
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_poisoned_lock_table_stops_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
        let mut fatal = hub.fatal();
        hub.locks.poison_by_panic();
        // The next call into the table finds the poison; it still answers.
        assert!(hub.lock_status().is_empty());
        let reason = tokio::time::timeout(Duration::from_secs(30), fatal.wait_for(Option::is_some))
            .await
            .expect("the hub is told to stop")
            .unwrap()
            .clone();
        assert!(
            reason.unwrap().contains("lock table"),
            "{:?}",
            hub.fatal().borrow()
        );
    }

    #[tokio::test]
    async fn the_first_stop_reason_wins() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
        hub.stop("first".into());
        hub.stop("second".into());
        assert_eq!(hub.fatal().borrow().as_deref(), Some("first"));
    }
}
