//! What an operator may do to the live hub (`cograph agents`, `end-agent`,
//! `break-lock`, `set-capacity`): see who is connected with what they hold
//! and wait for, end an agent, break the locks on a resource of any kind,
//! set a semaphore's capacity. An action takes effect at once (locks and
//! queue places go, waiters are granted, a broken lease stops authorising).
//! Ending an agent and breaking a lock are then recorded durably in the
//! store's operator events before they are reported, so every report names
//! an event that survives a crash; a capacity is not an event (it lives
//! with the lock table, which a restart empties) and goes to the log.
//!
//! This file decides whom an operator's words name; it knows nothing of
//! sockets or of how the answer is shown.

use super::{Hub, ResourceRef};
use crate::graph::{FunctionRef, Program};
use crate::locks::{
    AgentId, AgentInfo, CapacityError, Claim, HeldLock, Resource, ResourceError, ResourceName,
};
use crate::store::{OperatorAction, OperatorEvent, StoreError, now_ms};

/// One connected agent as an operator sees it.
#[derive(Clone, Debug)]
pub struct AgentReport {
    pub info: AgentInfo,
    pub held: Vec<HeldLock>,
    /// The resources it waits for, with the claim it asked for.
    pub waiting: Vec<(Resource, Claim)>,
}

/// A resource as operators read it: a function by its qualified name
/// (`#id` once deleted), anything else in its text form.
pub fn resource_text(program: &Program, resource: &Resource) -> String {
    match resource {
        Resource::Function(f) => program
            .name_of(*f)
            .map_or_else(|| format!("#{}", f.0), |n| n.to_string()),
        other => other.to_string(),
    }
}

/// What an operator action did, as recorded.
#[derive(Clone, Debug)]
pub struct ActionReport {
    /// The event's sequence number in the store.
    pub seq: u64,
    pub event: OperatorEvent,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no agent `{given}` is connected; connected: {}", list_agents(.connected))]
    UnknownAgent {
        given: String,
        connected: Vec<(AgentId, String)>,
    },
    #[error("{} agents are named `{given}` ({}); give one id", .ids.len(), join(.ids))]
    AmbiguousAgent { given: String, ids: Vec<AgentId> },
    #[error("no function `{0}`; `cograph export` lists them")]
    UnknownFunction(String),
    #[error("{0}")]
    BadResource(#[from] ResourceError),
    #[error(transparent)]
    Capacity(#[from] CapacityError),
    #[error(
        "nobody holds a lock on `{0}`; nothing to break (`cograph agents` shows who holds what)"
    )]
    NotLocked(String),
    #[error("the action took effect but could not be recorded: {0}")]
    Store(#[from] StoreError),
}

fn join(ids: &[AgentId]) -> String {
    ids.iter()
        .map(AgentId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_agents(agents: &[(AgentId, String)]) -> String {
    if agents.is_empty() {
        return "nobody".into();
    }
    agents
        .iter()
        .map(|(id, name)| format!("{name} ({id})"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Hub {
    /// Every connected agent with what it holds and waits for, oldest
    /// connection first.
    pub fn agents_report(&self) -> Vec<AgentReport> {
        let status = self.locks.status();
        self.agents
            .list()
            .into_iter()
            .map(|info| AgentReport {
                held: self.locks.held_by(info.id),
                waiting: status
                    .iter()
                    .flat_map(|l| {
                        l.waiters
                            .iter()
                            .filter(|w| w.agent == info.id)
                            .map(|w| (w.resource.clone(), w.claim))
                    })
                    .collect(),
                info,
            })
            .collect()
    }

    /// The one connected agent `who` names: its id (`ag_…`) or its name.
    fn agent_named(&self, who: &str) -> Result<AgentInfo, OperatorError> {
        let agents = self.agents.list();
        if let Ok(id) = who.parse::<AgentId>()
            && let Some(a) = agents.iter().find(|a| a.id == id)
        {
            return Ok(a.clone());
        }
        let named: Vec<&AgentInfo> = agents.iter().filter(|a| a.name == who).collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(OperatorError::UnknownAgent {
                given: who.to_string(),
                connected: agents.iter().map(|a| (a.id, a.name.clone())).collect(),
            }),
            many => Err(OperatorError::AmbiguousAgent {
                given: who.to_string(),
                ids: many.iter().map(|a| a.id).collect(),
            }),
        }
    }

    /// Ends the agent `who` names (id or unique name), as its session's
    /// end would: its locks and queue places go at once and waiters are
    /// granted. Recorded before it returns.
    pub async fn operator_end_agent(
        &self,
        who: &str,
        operator: &str,
    ) -> Result<ActionReport, OperatorError> {
        let agent = self.agent_named(who)?;
        let held = self.locks.held_by(agent.id);
        let n_waiting = self
            .agents_report()
            .into_iter()
            .find(|r| r.info.id == agent.id)
            .map_or(0, |r| r.waiting.len());
        self.end_agent(agent.id);
        let program = self.snapshot();
        let locks: Vec<String> = held
            .iter()
            .map(|l| {
                format!(
                    "{} ({}, token {})",
                    resource_text(&program, &l.resource),
                    l.claim,
                    l.token.0
                )
            })
            .collect();
        let detail = format!(
            "released {} locks{}; left {} queues",
            held.len(),
            if locks.is_empty() {
                String::new()
            } else {
                format!(": {}", locks.join(", "))
            },
            n_waiting
        );
        self.record(OperatorEvent {
            seq: 0,
            time_ms: now_ms(),
            operator: operator.to_string(),
            action: OperatorAction::EndAgent,
            agent_id: agent.id.to_string(),
            agent_name: agent.name,
            function: None,
            function_name: None,
            detail,
        })
        .await
    }

    /// Breaks every lease on exactly the resource `text` names (any kind:
    /// `math::fib` or `#7` for a function, `path:src/net/`,
    /// `semaphore:gpu`, ...; locks above or below it stay): the holders
    /// lose it at once, their tokens stop authorising (a commit relying on
    /// one is refused as `lock_expired`), and waiters are granted. One
    /// event per holder.
    pub async fn operator_break_lock(
        &self,
        text: &str,
        operator: &str,
    ) -> Result<Vec<ActionReport>, OperatorError> {
        let resource = match ResourceRef::parse(text)? {
            ResourceRef::Function(reference) => {
                let id = self
                    .resolve_any(&reference)
                    .map_err(|_| OperatorError::UnknownFunction(text.to_string()))?;
                Resource::Function(id)
            }
            ResourceRef::Other(r) => r,
        };
        let function = resource.function();
        let name = match function {
            Some(id) => self
                .snapshot()
                .name_of(id)
                .map_or_else(|| text.to_string(), |n| n.to_string()),
            None => resource.to_string(),
        };
        let broken = self.locks.break_lock(&resource);
        if broken.is_empty() {
            return Err(OperatorError::NotLocked(name));
        }
        let mut reports = Vec::with_capacity(broken.len());
        for b in broken {
            tracing::info!(agent = %b.agent, resource = %name, token = b.token.0, "operator broke a lock");
            let detail = match b.claim {
                Claim::Permits(_) => format!("{}, token {}", b.claim, b.token.0),
                _ => format!("{} lock, token {}", b.claim, b.token.0),
            };
            let report = self
                .record(OperatorEvent {
                    seq: 0,
                    time_ms: now_ms(),
                    operator: operator.to_string(),
                    action: OperatorAction::BreakLock,
                    agent_id: b.agent.to_string(),
                    agent_name: self.agent_name(b.agent),
                    function,
                    // The resource it names: a function's qualified name,
                    // anything else as `kind:name`.
                    function_name: Some(name.clone()),
                    detail,
                })
                .await?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Sets the capacity of the semaphore `text` names (`gpu` or
    /// `semaphore:gpu`), whether or not it was used yet; returns the one it
    /// had. Refused below the permits in use or below what a waiting
    /// request asks; a larger one grants the waiters it lets in.
    pub fn operator_set_capacity(
        &self,
        text: &str,
        capacity: u32,
        operator: &str,
    ) -> Result<(ResourceName, Option<u32>), OperatorError> {
        let name = ResourceName::parse_semaphore(text.strip_prefix("semaphore:").unwrap_or(text))?;
        let before = self.locks.set_capacity(&name, capacity)?;
        tracing::info!(semaphore = %name, capacity, ?before, operator, "operator set a capacity");
        Ok((name, before))
    }

    /// Writes an event durably and returns it with its sequence number.
    async fn record(&self, event: OperatorEvent) -> Result<ActionReport, OperatorError> {
        let seq = self
            .store
            .record_event(event.clone())
            .await
            .map_err(|_| StoreError::Poisoned("the store writer stopped".into()))??;
        self.feed.push(
            event.agent_id.parse().ok(),
            event.agent_name.clone(),
            super::feed::FeedKind::Operator {
                action: format!(
                    "{} by {}: {}",
                    event.action.as_str(),
                    event.operator,
                    event.detail
                ),
            },
        );
        Ok(ActionReport {
            seq,
            event: OperatorEvent { seq, ..event },
        })
    }

    /// The newest `limit` operator events (naming `function` if given),
    /// oldest first.
    pub async fn operator_events(
        self: &std::sync::Arc<Self>,
        function: Option<&FunctionRef>,
        limit: usize,
    ) -> Result<Vec<OperatorEvent>, super::ServiceError> {
        let id = function.map(|f| self.resolve_any(f)).transpose()?;
        self.store_read(move |s| s.events(id, limit)).await
    }
}
