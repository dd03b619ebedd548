//! Locks as agents name them. A [`LockSpec`] is a function by id or name
//! (resolved here, with the module its qualified name places it in) or any
//! other resource already parsed (a module, path, named resource or
//! semaphore); [`ResourceRef`] is the same without a claim, for releasing
//! and filtering. `acquire` turns specs into the lock table's targets,
//! `release` gives resources back, `check_token` says whether a fencing
//! token is live and for what.
//!
//! The rules (overlap, fairness, leases, deadlock) are the lock table's;
//! nothing here decides who gets what.

use std::fmt;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::LockOutcome;
use super::{Hub, ServiceError};
use crate::graph::{FunctionRef, Program};
use crate::locks::{
    AcquireError, AgentId, Claim, FencingToken, Grant, LockMode, LockRequest, LockTarget,
    ModuleName, Resource, ResourceError, WaitProgress,
};

/// One lock an agent asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockSpec {
    /// A function by id or qualified name, resolved when the request runs.
    Function {
        function: FunctionRef,
        mode: LockMode,
    },
    /// A module, path, named resource or semaphore, with its claim (and,
    /// for a semaphore, the capacity the requester believes in).
    Other(LockTarget),
}

impl fmt::Display for LockSpec {
    /// `math::fib write`, `path:src/ read`, `semaphore:gpu 2 permits of 4`:
    /// what a request asks, for hashing a retried request and for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockSpec::Function { function, mode } => write!(f, "{function} {}", mode.as_str()),
            LockSpec::Other(t) => {
                write!(f, "{} {}", t.resource, t.claim)?;
                match t.capacity {
                    Some(c) => write!(f, " of {c}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A resource as an agent names it, without a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceRef {
    Function(FunctionRef),
    Other(Resource),
}

impl ResourceRef {
    /// Parses the text form: `kind:name` for a module, path, named
    /// resource or semaphore (`path:src/net/`, `semaphore:gpu`), and a
    /// function by qualified name, `#7` or `function:` either of them.
    pub fn parse(text: &str) -> Result<ResourceRef, ResourceError> {
        let function = text.strip_prefix("function:").unwrap_or(text);
        let looks_like_function = function.contains("::")
            || function.starts_with('#')
            || function.bytes().all(|b| b.is_ascii_digit());
        if looks_like_function && let Ok(f) = FunctionRef::parse(function) {
            return Ok(ResourceRef::Function(f));
        }
        Resource::parse(text).map(ResourceRef::Other)
    }
}

/// Whether a fencing token is live, as `lock_status` answers anyone who
/// presents one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// A live lease holds it: what, by whom, until when.
    Live {
        resource: Resource,
        agent: AgentId,
        claim: Claim,
        purpose: Option<String>,
        since: SystemTime,
        expires_at: SystemTime,
    },
    /// No live lease holds it. `issued` is whether the hub ever handed it
    /// out (it was released, expired or broken since), or not (never).
    NotLive { issued: bool },
}

impl Hub {
    /// Takes the locks `specs` names, all or none, waiting up to `wait` in
    /// the FIFO queues. Progress goes to `progress` while waiting.
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire(
        &self,
        agent: AgentId,
        specs: &[LockSpec],
        wait: Duration,
        ttl: Option<Duration>,
        purpose: Option<String>,
        cancel: &CancellationToken,
        progress: Option<mpsc::UnboundedSender<WaitProgress>>,
    ) -> Result<Grant, ServiceError> {
        let program = self.snapshot();
        let targets = specs
            .iter()
            .map(|s| target(&program, s))
            .collect::<Result<Vec<_>, _>>()?;
        // Without a purpose of its own, a lock shows the agent's.
        let purpose = purpose.or_else(|| self.agents.get(agent).and_then(|a| a.purpose));
        let request = LockRequest {
            agent,
            targets,
            ttl,
            purpose,
        };
        let counted = request.targets.clone();
        let started = std::time::Instant::now();
        let result = self.locks.acquire(request, wait, cancel, progress).await;
        if !wait.is_zero() && !matches!(result, Err(AcquireError::Invalid(_))) {
            self.metrics.lock_wait(started.elapsed());
        }
        let outcome = match &result {
            Ok(_) => LockOutcome::Granted,
            Err(e) => LockOutcome::of(e),
        };
        self.metrics.lock_request(&counted, outcome);
        self.feed_refusal(agent, &program, &counted, outcome);
        let grant = result?;
        if !self.agents.contains(agent) {
            // The agent ended while this call was in flight: nobody could
            // ever release these locks, so they go now.
            self.locks.end_agent(agent);
            return Err(AcquireError::AgentEnded.into());
        }
        Ok(grant)
    }

    /// Gives back what `grant` granted and the agent still holds under it
    /// (its answer never reached the agent); waiters are granted.
    pub fn give_back(&self, agent: AgentId, grant: &Grant) {
        let resources: Vec<Resource> = grant.locks.iter().map(|l| l.resource.clone()).collect();
        let n = self.locks.give_back(agent, grant.token, &resources);
        tracing::info!(%agent, released = n, "gave back a grant its caller never received");
    }

    /// Releases the named resources, or all the agent's locks; returns what
    /// was released.
    pub fn release(
        &self,
        agent: AgentId,
        resources: Option<&[ResourceRef]>,
    ) -> Result<Vec<(Resource, Claim)>, ServiceError> {
        let resources = match resources {
            None => None,
            Some(refs) => Some(
                refs.iter()
                    .map(|r| match r {
                        // A function deleted since it was locked can still
                        // be released by id.
                        ResourceRef::Function(f) => self.resolve_any(f).map(Resource::Function),
                        ResourceRef::Other(r) => Ok(r.clone()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(self.locks.release(agent, resources.as_deref()))
    }

    /// Whether `token` is live: anyone may ask, so that a holder can hand
    /// its token to a step that checks it (a deploy script refusing a stale
    /// one). The token is looked up among live holders.
    pub fn check_token(&self, token: FencingToken) -> TokenCheck {
        let live = self
            .locks
            .status()
            .into_iter()
            .flat_map(|v| v.holders)
            .find(|h| h.token == token && !h.below);
        match live {
            Some(h) => TokenCheck::Live {
                resource: h.resource,
                agent: h.agent,
                claim: h.claim,
                purpose: h.purpose,
                since: h.since,
                expires_at: h.expires_at,
            },
            None => TokenCheck::NotLive {
                issued: token.0 != 0 && token.0 <= self.locks.fencing_high_water(),
            },
        }
    }
}

/// The lock table's target for `spec`: a function resolved in `program`,
/// placed in its module.
fn target(program: &Program, spec: &LockSpec) -> Result<LockTarget, ServiceError> {
    match spec {
        LockSpec::Function { function, mode } => {
            let id = Hub::resolve_in(program, function)?;
            let name = program.name_of(id).expect("a resolved function has a name");
            Ok(LockTarget::function(id, ModuleName::of(&name), *mode))
        }
        LockSpec::Other(t) => Ok(t.clone()),
    }
}
