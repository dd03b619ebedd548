//! What the adapters (MCP tools, the HTTP status route, the command line)
//! may see and do of the agent registry and the lock table. The service is
//! the only door to them: a second lock backend changes this file, not the
//! adapters. Nothing here decides anything; each method is one call into
//! `locks`.

use std::time::Duration;

use std::collections::BTreeSet;

use super::error::LockedFunction;
use super::{Hub, ServiceError};
use crate::graph::{EditOp, FunctionId, QualifiedName};
use crate::locks::{
    AgentId, AgentInfo, Blocked, CallGuard, Claim, HeldLock, HolderView, LockMode, LockTarget,
    LockView, ModuleName, Resource, ResourceKind, SessionHandle,
};

impl Hub {
    /// An agent's record, if it is connected.
    pub fn agent(&self, id: AgentId) -> Option<AgentInfo> {
        self.agents.get(id)
    }

    /// An agent's display name, or `(ended)` for one that is gone.
    pub fn agent_name(&self, id: AgentId) -> String {
        self.agents
            .get(id)
            .map(|a| a.name)
            .unwrap_or_else(|| "(ended)".into())
    }

    /// Every connected agent.
    pub fn list_agents(&self) -> Vec<AgentInfo> {
        self.agents.list()
    }

    pub fn n_agents(&self) -> usize {
        self.agents.len()
    }

    /// Registers an agent for a client without protocol sessions; the
    /// handle is the secret it passes with every call. Refused when
    /// `HubConfig::max_stateless` of them are alive; agents past their idle
    /// limit are ended first, so an expired one never holds a slot.
    pub fn register_stateless(
        &self,
        name: String,
        purpose: Option<String>,
    ) -> Result<(AgentId, SessionHandle), ServiceError> {
        let cap = self.config.max_stateless;
        if self.agents.n_stateless() >= cap {
            super::reap_idle_agents(self);
        }
        let registered = self
            .agents
            .register_stateless_within(name.clone(), purpose, cap)
            .ok_or(ServiceError::TooManyAgents { cap })?;
        self.feed
            .push(Some(registered.0), name, super::feed::FeedKind::AgentJoined);
        Ok(registered)
    }

    /// The secret handle an agent passes as `session` (or a script as
    /// `COGRAPH_AGENT`): a stateless agent's own, or one made for an agent
    /// bound to its connection, which ends with it.
    pub fn session_handle(&self, id: AgentId) -> Option<SessionHandle> {
        self.agents.handle_for(id)
    }

    /// The agent a secret handle belongs to; marks it active.
    pub fn resolve_session(&self, handle: &str) -> Option<AgentId> {
        self.agents.resolve(handle)
    }

    /// Changes an agent's display name and/or purpose.
    pub fn update_agent(
        &self,
        id: AgentId,
        name: Option<String>,
        purpose: Option<Option<String>>,
    ) -> Option<AgentInfo> {
        let updated = self.agents.update(id, name, purpose);
        if let Some(info) = &updated {
            self.feed.push(
                Some(id),
                info.name.clone(),
                super::feed::FeedKind::AgentUpdated,
            );
        }
        updated
    }

    /// Marks a call in flight for the agent until the guard drops: an agent
    /// with a call in flight is never idle.
    pub fn begin_call(&self, agent: AgentId) -> CallGuard<'_> {
        self.agents.begin_call(agent)
    }

    /// Returns true if and only if the agent has had no call in flight and
    /// no activity for at least `idle`.
    pub fn agent_is_idle(&self, agent: AgentId, idle: Duration) -> bool {
        self.agents.is_idle(agent, idle)
    }

    /// Every lock with holders or waiters, in function order.
    pub fn lock_status(&self) -> Vec<LockView> {
        self.locks.status()
    }

    /// Every lock with holders or waiters, with its name as shown
    /// (`resource_text`), of `kind` if given, and whose name starts with
    /// `prefix` if given: the name as shown (`math::`, `path:src/`), its
    /// `kind:name` form (`function:#7`) or the name after the kind (`src/`).
    pub fn locks_matching(
        &self,
        kind: Option<ResourceKind>,
        prefix: Option<&str>,
    ) -> Vec<(String, LockView)> {
        let program = self.snapshot();
        self.locks
            .status()
            .into_iter()
            .filter(|v| kind.is_none_or(|k| v.resource.kind() == k))
            .map(|v| (super::resource_text(&program, &v.resource), v))
            .filter(|(name, v)| {
                prefix.is_none_or(|p| {
                    name.starts_with(p)
                        || v.resource.to_string().starts_with(p)
                        || name.split_once(':').is_some_and(|(_, n)| n.starts_with(p))
                })
            })
            .collect()
    }

    /// The live holders of one function's lock (of the function itself,
    /// or of its module).
    pub fn lock_holders(&self, function: FunctionId) -> Vec<HolderView> {
        let target = LockTarget {
            resource: Resource::Function(function),
            claim: Claim::Read,
            module: self
                .snapshot()
                .name_of(function)
                .map(|n| ModuleName::of(&n)),
            capacity: None,
        };
        self.locks.holders(&target)
    }

    /// Requests of other agents that `agent`'s locks keep waiting.
    pub fn waiting_behind(&self, agent: AgentId) -> Vec<crate::locks::WaiterView> {
        self.locks.waiting_behind(agent)
    }

    /// The lock table's recent events after `after`, oldest first, at most
    /// the `limit` newest (the log keeps an hour, 10,000 at most).
    pub fn lock_events(&self, after: Option<u64>, limit: usize) -> Vec<crate::locks::LockEvent> {
        self.locks.events(after, limit)
    }

    /// Changes whenever a lock request joins a queue.
    pub fn lock_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.locks.lock_changes()
    }

    pub fn queue_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.locks.queue_changes()
    }

    /// What an agent holds now.
    pub fn locks_held_by(&self, agent: AgentId) -> Vec<HeldLock> {
        self.locks.held_by(agent)
    }

    /// The functions of `ids` on which another agent holds a lock, each as
    /// a write-lock request for it would be told (so the denial has the
    /// shape `acquire_locks` gives), and the structure changes of `ops`
    /// (creating a function, renaming one into a module) inside a module
    /// another agent holds. A structure change is checked as a write lock
    /// on a function of that module nobody can hold (id 0): it meets a
    /// lock on the module, not locks on the module's other functions.
    pub(super) fn locked_by_others(
        &self,
        agent: AgentId,
        ids: &BTreeSet<FunctionId>,
        ops: &[EditOp],
        name_of: impl Fn(FunctionId) -> QualifiedName,
    ) -> Vec<LockedFunction> {
        // A write inside its module: a lock on the module is honoured too.
        let write = |&id| LockTarget::function(id, ModuleName::of(&name_of(id)), LockMode::Write);
        let mut targets: Vec<LockTarget> = ids.iter().map(write).collect();
        let new_names: Vec<&QualifiedName> = ops
            .iter()
            .filter_map(|op| match op {
                EditOp::CreateFunction { name, .. } => Some(name),
                EditOp::RenameFunction { new_name, .. } => Some(new_name),
                _ => None,
            })
            .collect();
        for name in &new_names {
            let placeholder = FunctionId(0);
            targets.push(LockTarget::function(
                placeholder,
                ModuleName::of(name),
                LockMode::Write,
            ));
        }
        let blocked = self.locks.held_against(agent, &targets).blocked;
        let mut placeholders = new_names.into_iter();
        let named = |blocked: Blocked| {
            let id = blocked.resource.function()?;
            let name = if id.0 == 0 {
                placeholders.next()?.clone()
            } else {
                name_of(id)
            };
            Some(LockedFunction { name, blocked })
        };
        blocked.into_iter().filter_map(named).collect()
    }
}
