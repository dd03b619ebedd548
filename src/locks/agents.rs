//! The agent registry: who is connected, under which public id, and which
//! secret session handle maps to whom. A stateless agent (HTTP without a
//! protocol session, `cograph agent start`) gets its handle when it is
//! registered; an agent bound to its connection (stdio, an HTTP protocol
//! session) gets one when it asks (`handle_for`), so that a shell command
//! or a git hook can act as it. Either way the handle dies with its agent.
//!
//! The public `AgentId` is what other agents see in lock holders and
//! history. The `SessionHandle` is a bearer secret: it is returned once, to
//! the agent that registered, and never shown to anyone else or logged.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

/// An agent's public identity: `ag_` and 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentId(pub u64);

impl AgentId {
    pub fn random() -> AgentId {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        AgentId(hi ^ lo.rotate_left(17))
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ag_{:016x}", self.0)
    }
}

impl fmt::Debug for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for AgentId {
    type Err = String;

    fn from_str(s: &str) -> Result<AgentId, String> {
        s.strip_prefix("ag_")
            .filter(|hex| hex.len() == 16)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .map(AgentId)
            .ok_or_else(|| format!("`{s}` is not an agent id: expected `ag_` and 16 hex digits"))
    }
}

impl Serialize for AgentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The secret a stateless HTTP agent passes as `session`: 256 random bits
/// as 64 hex characters. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionHandle(String);

impl SessionHandle {
    fn generate() -> SessionHandle {
        let a = uuid::Uuid::new_v4().simple().to_string();
        let b = uuid::Uuid::new_v4().simple().to_string();
        SessionHandle(format!("{a}{b}"))
    }

    /// The secret itself, to hand to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHandle(..)")
    }
}

/// How an agent is connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Stdio,
    HttpSession,
    HttpStateless,
    InProcess,
}

#[derive(Clone, Debug)]
pub struct AgentInfo {
    pub id: AgentId,
    pub name: String,
    pub purpose: Option<String>,
    pub transport: Transport,
    pub connected_since: SystemTime,
    pub last_active: SystemTime,
    /// Monotonic twin of `last_active`, for idle expiry.
    last_active_at: tokio::time::Instant,
    in_flight: Arc<AtomicUsize>,
}

impl AgentInfo {
    /// Calls of this agent being served right now.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How long the agent has been idle: zero while a call of its is in
    /// flight, else the time since its last activity.
    pub fn idle_for(&self) -> Duration {
        if self.calls_in_flight() > 0 {
            return Duration::ZERO;
        }
        tokio::time::Instant::now().saturating_duration_since(self.last_active_at)
    }

    /// Returns true if and only if, at `now`, the agent has no call in
    /// flight and has been inactive for longer than `idle`.
    fn idle_at(&self, now: tokio::time::Instant, idle: Duration) -> bool {
        self.calls_in_flight() == 0 && now.saturating_duration_since(self.last_active_at) > idle
    }
}

#[derive(Default)]
pub struct AgentRegistry {
    agents: DashMap<AgentId, AgentInfo>,
    sessions: DashMap<SessionHandle, AgentId>,
    /// The reverse of `sessions`, so removing an agent forgets its handle;
    /// with whether the agent is stateless (counted in `n_stateless`).
    /// Whoever removes an entry frees the slot it counts, so concurrent
    /// removals free it once.
    handles: DashMap<AgentId, (SessionHandle, bool)>,
    /// Stateless agents registered: one per stateless entry of `handles`.
    n_stateless: AtomicUsize,
}

/// Counts one call in flight for its agent; dropping it ends the call and
/// marks the agent active.
pub struct CallGuard<'a> {
    registry: &'a AgentRegistry,
    id: AgentId,
    in_flight: Option<Arc<AtomicUsize>>,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if let Some(n) = &self.in_flight {
            n.fetch_sub(1, Ordering::Relaxed);
        }
        self.registry.touch(self.id);
    }
}

impl AgentRegistry {
    pub fn new() -> AgentRegistry {
        AgentRegistry::default()
    }

    pub fn register(&self, name: String, purpose: Option<String>, transport: Transport) -> AgentId {
        let now = SystemTime::now();
        loop {
            let id = AgentId::random();
            if let dashmap::Entry::Vacant(slot) = self.agents.entry(id) {
                slot.insert(AgentInfo {
                    id,
                    name,
                    purpose,
                    transport,
                    connected_since: now,
                    last_active: now,
                    last_active_at: tokio::time::Instant::now(),
                    in_flight: Arc::new(AtomicUsize::new(0)),
                });
                return id;
            }
        }
    }

    /// Registers an agent for a client without protocol sessions and
    /// returns the secret handle it must pass with each call.
    pub fn register_stateless(
        &self,
        name: String,
        purpose: Option<String>,
    ) -> (AgentId, SessionHandle) {
        self.n_stateless.fetch_add(1, Ordering::AcqRel);
        self.insert_stateless(name, purpose)
    }

    fn insert_stateless(&self, name: String, purpose: Option<String>) -> (AgentId, SessionHandle) {
        let id = self.register(name, purpose, Transport::HttpStateless);
        let handle = SessionHandle::generate();
        self.sessions.insert(handle.clone(), id);
        self.handles.insert(id, (handle.clone(), true));
        (id, handle)
    }

    /// The secret handle of a registered agent: a stateless agent's own,
    /// or, for an agent bound to its connection, one made on first asking
    /// (the same one after). `None` for an agent that is gone.
    pub fn handle_for(&self, id: AgentId) -> Option<SessionHandle> {
        if !self.agents.contains_key(&id) {
            return None;
        }
        let handle = self
            .handles
            .entry(id)
            .or_insert_with(|| {
                let handle = SessionHandle::generate();
                self.sessions.insert(handle.clone(), id);
                (handle, false)
            })
            .0
            .clone();
        // The agent may have ended meanwhile; its handle must not outlive it.
        if !self.agents.contains_key(&id) {
            self.forget_handle(id);
            return None;
        }
        Some(handle)
    }

    /// Registers a stateless agent as `register_stateless` does, unless
    /// `cap` of them are registered already. A slot is reserved on the
    /// counter before the insert, so concurrent registrations never pass
    /// the cap.
    pub fn register_stateless_within(
        &self,
        name: String,
        purpose: Option<String>,
        cap: usize,
    ) -> Option<(AgentId, SessionHandle)> {
        self.n_stateless
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()?;
        Some(self.insert_stateless(name, purpose))
    }

    /// Stateless agents registered now.
    pub fn n_stateless(&self) -> usize {
        self.n_stateless.load(Ordering::Acquire)
    }

    /// Forgets an agent's handle and, for a stateless agent, frees its slot.
    fn forget_handle(&self, id: AgentId) {
        if let Some((_, (handle, stateless))) = self.handles.remove(&id) {
            self.sessions.remove(&handle);
            if stateless {
                self.n_stateless.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// The agent a secret handle belongs to; marks it active.
    pub fn resolve(&self, handle: &str) -> Option<AgentId> {
        let id = *self.sessions.get(&SessionHandle(handle.to_string()))?;
        self.touch(id);
        Some(id)
    }

    /// Changes an agent's display name and/or purpose.
    pub fn update(
        &self,
        id: AgentId,
        name: Option<String>,
        purpose: Option<Option<String>>,
    ) -> Option<AgentInfo> {
        let mut info = self.agents.get_mut(&id)?;
        if let Some(name) = name {
            info.name = name;
        }
        if let Some(purpose) = purpose {
            info.purpose = purpose;
        }
        Some(info.clone())
    }

    pub fn touch(&self, id: AgentId) {
        if let Some(mut info) = self.agents.get_mut(&id) {
            info.last_active = SystemTime::now();
            info.last_active_at = tokio::time::Instant::now();
        }
    }

    pub fn get(&self, id: AgentId) -> Option<AgentInfo> {
        self.agents.get(&id).map(|i| i.clone())
    }

    /// Returns true if and only if the agent is registered (without
    /// cloning its record, for checks on every call).
    pub fn contains(&self, id: AgentId) -> bool {
        self.agents.contains_key(&id)
    }

    /// Every agent, oldest connection first.
    pub fn list(&self) -> Vec<AgentInfo> {
        let mut out: Vec<AgentInfo> = self.agents.iter().map(|e| e.value().clone()).collect();
        out.sort_by_key(|a| (a.connected_since, a.id));
        out
    }

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    pub fn remove(&self, id: AgentId) -> Option<AgentInfo> {
        self.forget_handle(id);
        self.agents.remove(&id).map(|(_, info)| info)
    }

    /// Removes a stateless agent and its handle if and only if it is idle
    /// past `idle` with no call in flight, decided atomically with the
    /// removal.
    pub fn remove_if_idle(&self, id: AgentId, idle: Duration) -> Option<AgentInfo> {
        let now = tokio::time::Instant::now();
        let (_, info) = self.agents.remove_if(&id, |_, a| {
            a.transport == Transport::HttpStateless && a.idle_at(now, idle)
        })?;
        self.forget_handle(id);
        Some(info)
    }

    /// Marks a call in flight for `id` until the guard drops.
    pub fn begin_call(&self, id: AgentId) -> CallGuard<'_> {
        let in_flight = self.agents.get(&id).map(|info| info.in_flight.clone());
        if let Some(n) = &in_flight {
            n.fetch_add(1, Ordering::Relaxed);
        }
        self.touch(id);
        CallGuard {
            registry: self,
            id,
            in_flight,
        }
    }

    /// Whether `id` has had no call in flight and no activity for longer
    /// than `idle`; an agent that is gone counts as idle.
    pub fn is_idle(&self, id: AgentId, idle: Duration) -> bool {
        let now = tokio::time::Instant::now();
        self.agents.get(&id).is_none_or(|a| a.idle_at(now, idle))
    }

    /// Stateless agents idle for longer than `idle` with no call in flight.
    pub fn idle_stateless(&self, idle: Duration) -> Vec<AgentId> {
        let now = tokio::time::Instant::now();
        self.agents
            .iter()
            .filter(|e| e.transport == Transport::HttpStateless && e.idle_at(now, idle))
            .map(|e| *e.key())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_round_trip_and_reject_junk() {
        let id = AgentId::random();
        assert_eq!(id.to_string().parse::<AgentId>(), Ok(id));
        for bad in [
            "",
            "ag_",
            "ag_123",
            "xx_0123456789abcdef",
            "ag_0123456789abcdeg",
        ] {
            assert!(bad.parse::<AgentId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn session_handles_are_secret_and_resolve() {
        let r = AgentRegistry::new();
        let (id, handle) = r.register_stateless("a".into(), None);
        assert_eq!(handle.expose().len(), 64);
        assert_eq!(format!("{handle:?}"), "SessionHandle(..)");
        assert_eq!(r.resolve(handle.expose()), Some(id));
        assert_eq!(r.resolve("nope"), None);
        r.remove(id);
        assert_eq!(r.resolve(handle.expose()), None);
    }

    #[test]
    fn a_connection_bound_agent_gets_one_handle_that_dies_with_it_and_takes_no_slot() {
        let r = AgentRegistry::new();
        let id = r.register("stdio".into(), None, Transport::Stdio);
        let handle = r.handle_for(id).expect("a live agent");
        assert_eq!(r.handle_for(id), Some(handle.clone()), "the same one");
        assert_eq!(r.resolve(handle.expose()), Some(id));
        assert_eq!(r.n_stateless(), 0);
        let (stateless, own) = r.register_stateless("s".into(), None);
        assert_eq!(r.handle_for(stateless), Some(own));
        assert_eq!(r.n_stateless(), 1);
        r.remove(id);
        assert_eq!(r.resolve(handle.expose()), None);
        assert_eq!(r.handle_for(id), None);
        assert_eq!(r.n_stateless(), 1, "ending a bound agent frees no slot");
        r.remove(stateless);
        assert_eq!(r.n_stateless(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_expiry_skips_agents_with_a_call_in_flight() {
        let r = AgentRegistry::new();
        let (busy, _) = r.register_stateless("busy".into(), None);
        let (idle, _) = r.register_stateless("idle".into(), None);
        let _stdio = r.register("stdio".into(), None, Transport::Stdio);
        let guard = r.begin_call(busy);
        tokio::time::advance(Duration::from_secs(120)).await;
        assert_eq!(r.idle_stateless(Duration::from_secs(60)), vec![idle]);
        drop(guard);
        assert!(r.idle_stateless(Duration::from_secs(60)).contains(&idle));
        assert!(!r.idle_stateless(Duration::from_secs(60)).contains(&busy));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(r.idle_stateless(Duration::from_secs(60)).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_agent_is_idle_only_with_no_call_in_flight_and_none_recently() {
        let r = AgentRegistry::new();
        let id = r.register("http".into(), None, Transport::HttpSession);
        let minute = Duration::from_secs(60);
        assert!(!r.is_idle(id, minute));
        let guard = r.begin_call(id);
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(!r.is_idle(id, minute), "a call is in flight");
        // The call's end counts as activity.
        drop(guard);
        assert!(!r.is_idle(id, minute));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(r.is_idle(id, minute));
        r.remove(id);
        assert!(r.is_idle(id, minute), "an agent that is gone is idle");
    }
}
