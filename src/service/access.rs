//! What the adapters (MCP tools, the HTTP status route, the command line)
//! may see and do of the agent registry and the lock table. The service is
//! the only door to them: a second lock backend changes this file, not the
//! adapters. Nothing here decides anything; each method is one call into
//! `locks`.

use std::time::Duration;

use super::{Hub, ServiceError};
use crate::graph::FunctionId;
use crate::locks::{
    AgentId, AgentInfo, CallGuard, Claim, HeldLock, HolderView, LockTarget, LockView, ModuleName,
    Resource, SessionHandle,
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
        self.agents
            .register_stateless_within(name, purpose, cap)
            .ok_or(ServiceError::TooManyAgents { cap })
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
        self.agents.update(id, name, purpose)
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

    /// What an agent holds now.
    pub fn locks_held_by(&self, agent: AgentId) -> Vec<HeldLock> {
        self.locks.held_by(agent)
    }
}
