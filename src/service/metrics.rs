//! The hub's counters and histograms, and their Prometheus text form
//! (`GET /metrics`): lock requests by resource kind, claim and outcome,
//! lock waits, commits and conflicts by outcome, verification failures,
//! commit durations, and tool calls by tool and outcome with their
//! durations. Gauges (waiters, held locks, agents by transport, the
//! revision) are read from the hub when the text is made, so they cost
//! nothing between scrapes.
//!
//! Recording is a few relaxed atomic additions (a tool call also takes one
//! short mutex to find its tool's row), so it is cheap enough for every
//! call. This file only counts and writes text; it decides nothing and
//! knows nothing of HTTP. Names follow Prometheus's conventions: the
//! `cograph_` prefix, `_total` on counters, durations in `_seconds`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::histogram::Histogram;
use crate::locks::{AcquireError, Claim, LockTarget, ResourceKind, Transport};

/// What became of one lock request, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    Granted,
    Denied,
    Timeout,
    Deadlock,
    Cancelled,
    Invalid,
}

impl LockOutcome {
    const ALL: [LockOutcome; 6] = [
        LockOutcome::Granted,
        LockOutcome::Denied,
        LockOutcome::Timeout,
        LockOutcome::Deadlock,
        LockOutcome::Cancelled,
        LockOutcome::Invalid,
    ];

    fn as_str(self) -> &'static str {
        match self {
            LockOutcome::Granted => "granted",
            LockOutcome::Denied => "denied",
            LockOutcome::Timeout => "timeout",
            LockOutcome::Deadlock => "deadlock",
            LockOutcome::Cancelled => "cancelled",
            LockOutcome::Invalid => "invalid",
        }
    }

    /// The outcome an acquire error stands for.
    pub fn of(error: &AcquireError) -> LockOutcome {
        match error {
            AcquireError::Denied(_) => LockOutcome::Denied,
            AcquireError::Timeout(_) => LockOutcome::Timeout,
            AcquireError::Deadlock { .. } => LockOutcome::Deadlock,
            AcquireError::Cancelled | AcquireError::AgentEnded => LockOutcome::Cancelled,
            AcquireError::Invalid(_) => LockOutcome::Invalid,
        }
    }
}

/// How a tool call ended, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolOutcome {
    /// A result without `isError`.
    Ok,
    /// A tool error the agent can act on (`isError: true`).
    Error,
    /// A JSON-RPC error: malformed arguments or an internal fault.
    Failed,
}

impl ToolOutcome {
    const ALL: [ToolOutcome; 3] = [ToolOutcome::Ok, ToolOutcome::Error, ToolOutcome::Failed];

    fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Ok => "ok",
            ToolOutcome::Error => "error",
            ToolOutcome::Failed => "failed",
        }
    }
}

const KINDS: [ResourceKind; 5] = [
    ResourceKind::Function,
    ResourceKind::Module,
    ResourceKind::Path,
    ResourceKind::Named,
    ResourceKind::Semaphore,
];

/// The claims counted: read, write, permits.
const MODES: [&str; 3] = ["read", "write", "permits"];

fn kind_idx(kind: ResourceKind) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(0)
}

fn mode_idx(claim: Claim) -> usize {
    match claim {
        Claim::Read => 0,
        Claim::Write => 1,
        Claim::Permits(_) => 2,
    }
}

/// One tool's row.
#[derive(Default)]
struct ToolStats {
    outcomes: [u64; 3],
    duration: Histogram,
}

/// The hub's metrics.
#[derive(Default)]
pub struct Metrics {
    lock_requests: [[[AtomicU64; LockOutcome::ALL.len()]; MODES.len()]; KINDS.len()],
    lock_wait: Histogram,
    commits: AtomicU64,
    conflicts_merged: AtomicU64,
    conflicts_refused: AtomicU64,
    verification_failures: AtomicU64,
    commit_duration: Histogram,
    /// By tool name. Only the server's own tools are recorded (the caller
    /// checks), so the rows are bounded by the tool list.
    tools: Mutex<BTreeMap<String, ToolStats>>,
}

/// What the hub reports of itself when the text is made.
pub struct Gauges {
    pub n_waiting: usize,
    pub n_held: usize,
    pub agents: Vec<Transport>,
    pub revision: u64,
}

impl Metrics {
    /// Counts one request for `targets` that ended as `outcome`: once per
    /// target, under its kind and claim.
    pub fn lock_request(&self, targets: &[LockTarget], outcome: LockOutcome) {
        let o = LockOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        for t in targets {
            self.lock_requests[kind_idx(t.resource.kind())][mode_idx(t.claim)][o]
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A blocking request's time in the queue, whatever became of it.
    pub fn lock_wait(&self, waited: Duration) {
        self.lock_wait.observe(waited);
    }

    /// A commit that landed, and how many of its functions were merged.
    pub fn commit(&self, took: Duration, n_merged: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.conflicts_merged
            .fetch_add(n_merged as u64, Ordering::Relaxed);
        self.commit_duration.observe(took);
    }

    /// An edit refused for a conflict (one per conflicting function).
    pub fn conflicts_refused(&self, n: usize) {
        self.conflicts_refused
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// An edit refused because the program would not verify.
    pub fn verification_failure(&self) {
        self.verification_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn tool_call(&self, tool: &str, outcome: ToolOutcome, took: Duration) {
        let mut tools = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        let row = match tools.get_mut(tool) {
            Some(row) => row,
            None => tools.entry(tool.to_string()).or_default(),
        };
        let o = ToolOutcome::ALL.iter().position(|x| *x == outcome);
        row.outcomes[o.unwrap_or(0)] += 1;
        row.duration.observe(took);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: &Gauges, store_writes: &Histogram) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "cograph_build_info",
            "gauge",
            "The running cograph's version (always 1).",
        );
        let _ = writeln!(
            out,
            "cograph_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );

        head(
            &mut out,
            "cograph_lock_requests_total",
            "counter",
            "Lock requests by resource kind, claim (read, write, permits) and outcome, one per resource named.",
        );
        for (k, kind) in KINDS.iter().enumerate() {
            for (m, mode) in MODES.iter().enumerate() {
                // Semaphores take permits, nothing else does.
                if (*kind == ResourceKind::Semaphore) != (*mode == "permits") {
                    continue;
                }
                for (o, outcome) in LockOutcome::ALL.iter().enumerate() {
                    let n = self.lock_requests[k][m][o].load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "cograph_lock_requests_total{{kind=\"{}\",mode=\"{mode}\",outcome=\"{}\"}} {n}",
                        kind.as_str(),
                        outcome.as_str()
                    );
                }
            }
        }
        head(
            &mut out,
            "cograph_lock_wait_seconds",
            "histogram",
            "Time blocking lock requests spent in the queue, whatever their outcome.",
        );
        self.lock_wait
            .write(&mut out, "cograph_lock_wait_seconds", "");
        head(
            &mut out,
            "cograph_lock_waiters",
            "gauge",
            "Lock requests waiting in the queues.",
        );
        let _ = writeln!(out, "cograph_lock_waiters {}", gauges.n_waiting);
        head(
            &mut out,
            "cograph_locks_held",
            "gauge",
            "Live locks held (one per agent and resource).",
        );
        let _ = writeln!(out, "cograph_locks_held {}", gauges.n_held);

        head(
            &mut out,
            "cograph_commits_total",
            "counter",
            "Commits that landed.",
        );
        let commits = self.commits.load(Ordering::Relaxed);
        let _ = writeln!(out, "cograph_commits_total {commits}");
        head(
            &mut out,
            "cograph_conflicts_total",
            "counter",
            "Functions whose base was stale, by outcome: merged (rebased and committed) or refused.",
        );
        for (outcome, n) in [
            ("merged", &self.conflicts_merged),
            ("refused", &self.conflicts_refused),
        ] {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "cograph_conflicts_total{{outcome=\"{outcome}\"}} {n}");
        }
        head(
            &mut out,
            "cograph_verification_failures_total",
            "counter",
            "Edits refused because the program would not verify.",
        );
        let n = self.verification_failures.load(Ordering::Relaxed);
        let _ = writeln!(out, "cograph_verification_failures_total {n}");
        head(
            &mut out,
            "cograph_commit_duration_seconds",
            "histogram",
            "Time from proposal to durable acknowledgment of commits that landed.",
        );
        self.commit_duration
            .write(&mut out, "cograph_commit_duration_seconds", "");
        head(
            &mut out,
            "cograph_store_fsync_duration_seconds",
            "histogram",
            "Durable writes of the store, one per group of commits: the SQLite transaction, whose commit is the fsync.",
        );
        store_writes.write(&mut out, "cograph_store_fsync_duration_seconds", "");
        head(
            &mut out,
            "cograph_revision",
            "gauge",
            "The program's current revision.",
        );
        let _ = writeln!(out, "cograph_revision {}", gauges.revision);

        head(
            &mut out,
            "cograph_agents",
            "gauge",
            "Connected agents by transport.",
        );
        for transport in [
            Transport::Stdio,
            Transport::HttpSession,
            Transport::HttpStateless,
            Transport::InProcess,
        ] {
            let n = gauges.agents.iter().filter(|t| **t == transport).count();
            let name = transport_name(transport);
            let _ = writeln!(out, "cograph_agents{{transport=\"{name}\"}} {n}");
        }

        let tools = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        head(
            &mut out,
            "cograph_tool_calls_total",
            "counter",
            "Tool calls by tool and outcome: ok, error (a tool error the agent can act on) or failed (malformed or internal).",
        );
        for (tool, row) in tools.iter() {
            for (o, outcome) in ToolOutcome::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "cograph_tool_calls_total{{tool=\"{tool}\",outcome=\"{}\"}} {}",
                    outcome.as_str(),
                    row.outcomes[o]
                );
            }
        }
        head(
            &mut out,
            "cograph_tool_call_duration_seconds",
            "histogram",
            "Time to answer a tool call, by tool.",
        );
        for (tool, row) in tools.iter() {
            row.duration.write(
                &mut out,
                "cograph_tool_call_duration_seconds",
                &format!("tool=\"{tool}\""),
            );
        }
        out
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Stdio => "stdio",
        Transport::HttpSession => "http_session",
        Transport::HttpStateless => "http_stateless",
        Transport::InProcess => "in_process",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(1000));
        let mut out = String::new();
        h.write(&mut out, "x_seconds", "");
        assert!(out.contains("x_seconds_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"300\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
    }

    #[test]
    fn a_tool_row_appears_with_every_outcome() {
        let m = Metrics::default();
        m.tool_call("lock_status", ToolOutcome::Ok, Duration::from_millis(1));
        let gauges = Gauges {
            n_waiting: 0,
            n_held: 0,
            agents: vec![Transport::Stdio],
            revision: 7,
        };
        let text = m.render(&gauges, &Histogram::default());
        for line in [
            "cograph_tool_calls_total{tool=\"lock_status\",outcome=\"ok\"} 1",
            "cograph_tool_calls_total{tool=\"lock_status\",outcome=\"error\"} 0",
            "cograph_agents{transport=\"stdio\"} 1",
            "cograph_revision 7",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
