//! What the page shows, as one JSON document: agents with what they hold
//! and wait for, every lock with holders and waiters (the shape
//! `lock_status` answers), recent commits, recent events and their rates,
//! and the program by module with each function's lock state and calls.
//!
//! Built whole on each change and sent whole (`web.rs`): at hundreds of
//! functions and dozens of agents it is tens of kilobytes, and a page that
//! replaces its state can never drift from the server's.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::graph::{FunctionId, Program};
use crate::locks::{Claim, LockEvent, Resource};
use crate::mcp::convert;
use crate::mcp::types::{LockView, TransportView};
use crate::mcp::views;
use crate::service::feed::{FeedItem, FeedKind};
use crate::service::{Hub, ServiceError, resource_text};
use crate::store::CommitRecord;

/// The newest commits shown.
const COMMITS: usize = 30;
/// The newest events shown (feed and lock events together).
const EVENTS: usize = 150;
/// The window rates are counted over.
const RATE_WINDOW: Duration = Duration::from_secs(300);

#[derive(Serialize)]
pub struct PageView {
    pub revision: u64,
    pub root_hash: String,
    /// The server's clock, so that the page counts lease time left from it.
    pub now: String,
    pub agents: Vec<PageAgent>,
    pub locks: Vec<LockView>,
    pub commits: Vec<PageCommit>,
    pub events: Vec<PageEvent>,
    pub rates: Rates,
    pub modules: Vec<PageModule>,
}

#[derive(Serialize)]
pub struct PageAgent {
    pub id: String,
    pub name: String,
    pub purpose: Option<String>,
    pub transport: TransportView,
    pub connected_since: String,
    pub last_active: String,
    pub idle_s: u64,
    /// `resource (mode)` for each lock it holds.
    pub holds: Vec<String>,
    pub waits: Vec<String>,
}

#[derive(Serialize)]
pub struct PageCommit {
    pub revision: u64,
    pub at: String,
    pub agent: String,
    pub summary: String,
    /// How many of its functions were merged onto concurrent changes;
    /// unknown for commits made before this hub started.
    pub merged: Option<usize>,
    pub functions: Vec<String>,
}

#[derive(Serialize)]
pub struct PageEvent {
    pub at: String,
    pub kind: &'static str,
    pub agent: String,
    pub text: String,
}

/// Per minute, over the last five.
#[derive(Serialize, Default)]
pub struct Rates {
    pub conflicts: f64,
    pub denials: f64,
    pub timeouts: f64,
    pub deadlocks: f64,
    pub commits: f64,
}

#[derive(Serialize)]
pub struct PageModule {
    pub name: String,
    pub functions: Vec<PageFunction>,
}

#[derive(Serialize)]
pub struct PageFunction {
    pub id: u64,
    pub name: String,
    /// `free`, `read`, `write` or `queued` (someone waits for it), counting
    /// locks on its module and the modules above.
    pub lock: &'static str,
    pub calls: Vec<String>,
}

/// The page's document, now.
pub async fn build(hub: &Arc<Hub>) -> Result<PageView, ServiceError> {
    build_with(hub, &mut History::default()).await
}

/// The newest commits as of a revision: read from the store again only
/// when the revision moved.
#[derive(Default)]
pub struct History {
    revision: Option<u64>,
    commits: Vec<CommitRecord>,
}

/// `build`, reading the log only if a commit landed since `history`.
pub async fn build_with(hub: &Arc<Hub>, history: &mut History) -> Result<PageView, ServiceError> {
    let program = hub.snapshot();
    if history.revision != Some(program.revision().0) {
        history.commits = hub.history(None, None, COMMITS).await?;
        history.revision = Some(program.revision().0);
    }
    let history = &history.commits;
    let status = hub.lock_status();
    let feed = hub.feed().recent(crate::service::feed::MAX_ITEMS);
    let lock_events = hub.lock_events(None, EVENTS);
    let locks: Vec<LockView> = status
        .iter()
        .map(|v| views::lock_view(hub, &program, resource_text(&program, &v.resource), v))
        .collect();
    Ok(PageView {
        revision: program.revision().0,
        root_hash: program.root_hash().to_hex(),
        now: views::rfc3339(SystemTime::now()),
        agents: agents(hub, &locks),
        commits: commits(history, &feed),
        events: events(&program, hub, &feed, &lock_events),
        rates: rates(&feed),
        modules: modules(&program, &status),
        locks,
    })
}

fn agents(hub: &Hub, locks: &[LockView]) -> Vec<PageAgent> {
    let mut holds: HashMap<&str, Vec<String>> = HashMap::new();
    let mut waits: HashMap<&str, Vec<String>> = HashMap::new();
    for l in locks {
        for h in &l.holders {
            let on = h.resource.as_deref().unwrap_or(&l.resource);
            holds
                .entry(&h.agent_id)
                .or_default()
                .push(format!("{on} ({})", views::claim_text(h.mode, h.permits)));
        }
        for w in &l.waiters {
            waits.entry(&w.agent_id).or_default().push(format!(
                "{} ({})",
                l.resource,
                views::claim_text(w.mode, w.permits)
            ));
        }
    }
    let mut out: Vec<PageAgent> = hub
        .list_agents()
        .into_iter()
        .map(|a| {
            let id = a.id.to_string();
            PageAgent {
                holds: holds.remove(id.as_str()).unwrap_or_default(),
                waits: waits.remove(id.as_str()).unwrap_or_default(),
                idle_s: a.idle_for().as_secs(),
                name: a.name,
                purpose: a.purpose,
                transport: convert::transport(a.transport),
                connected_since: views::rfc3339(a.connected_since),
                last_active: views::rfc3339(a.last_active),
                id,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    out
}

fn commits(history: &[CommitRecord], feed: &[FeedItem]) -> Vec<PageCommit> {
    let merged: HashMap<u64, usize> = feed
        .iter()
        .filter_map(|i| match &i.kind {
            FeedKind::Commit {
                revision, merged, ..
            } => Some((revision.0, *merged)),
            _ => None,
        })
        .collect();
    history
        .iter()
        .map(|c| PageCommit {
            revision: c.revision.0,
            at: crate::service::time::rfc3339_ms(c.time_ms),
            agent: c.agent_name.clone(),
            summary: c.summary.clone(),
            merged: merged.get(&c.revision.0).copied(),
            functions: c.changes.iter().map(|ch| ch.name.to_string()).collect(),
        })
        .collect()
}

/// A feed item in words.
fn feed_text(kind: &FeedKind) -> String {
    let list = |v: &[String]| v.join(", ");
    match kind {
        FeedKind::Commit {
            revision,
            functions,
            merged,
        } => format!(
            "committed revision {} ({}{})",
            revision.0,
            list(functions),
            if *merged > 0 {
                format!("; {merged} merged")
            } else {
                String::new()
            }
        ),
        FeedKind::Conflict { functions } if functions.is_empty() => {
            "edit refused: too many conflicts".into()
        }
        FeedKind::Conflict { functions } => format!("edit conflicted on {}", list(functions)),
        FeedKind::VerificationFailed => "edit refused: the program would not verify".into(),
        FeedKind::LockDenied { resources } => format!("lock denied: {}", list(resources)),
        FeedKind::LockTimeout { resources } => format!("lock wait timed out: {}", list(resources)),
        FeedKind::Deadlock { resources } => {
            format!("lock refused, it would deadlock: {}", list(resources))
        }
        FeedKind::LockCancelled { resources } => {
            format!("lock wait cancelled: {}", list(resources))
        }
        FeedKind::AgentJoined => "connected".into(),
        FeedKind::AgentUpdated => "registered".into(),
        FeedKind::AgentLeft => "ended".into(),
        FeedKind::Operator { action } => format!("operator: {action}"),
    }
}

fn events(
    program: &Program,
    hub: &Hub,
    feed: &[FeedItem],
    lock_events: &[LockEvent],
) -> Vec<PageEvent> {
    let mut out: Vec<(SystemTime, PageEvent)> = feed
        .iter()
        .rev()
        .take(EVENTS)
        .map(|i| {
            (
                i.at,
                PageEvent {
                    at: views::rfc3339(i.at),
                    kind: i.kind.as_str(),
                    agent: i.agent_name.clone(),
                    text: feed_text(&i.kind),
                },
            )
        })
        .collect();
    // An agent that has ended is still named by what the feed saw of it.
    let known: HashMap<crate::locks::AgentId, &str> = feed
        .iter()
        .filter_map(|i| Some((i.agent?, i.agent_name.as_str())))
        .collect();
    let name = |agent| match hub.agent(agent) {
        Some(a) => a.name,
        None => known
            .get(&agent)
            .map_or_else(|| hub.agent_name(agent), |n| n.to_string()),
    };
    out.extend(lock_events.iter().rev().map(|e| {
        let (mode, permits) = views::claim(e.claim);
        (
            e.at,
            PageEvent {
                at: views::rfc3339(e.at),
                kind: e.kind.as_str(),
                agent: name(e.agent),
                text: format!(
                    "{} {} ({})",
                    e.kind.as_str().replace('_', " "),
                    resource_text(program, &e.resource),
                    views::claim_text(mode, permits)
                ),
            },
        )
    }));
    // Newest first; both logs are in that order already, and a stable sort
    // keeps each one's order among equal instants.
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.truncate(EVENTS);
    out.into_iter().map(|(_, e)| e).collect()
}

fn rates(feed: &[FeedItem]) -> Rates {
    let since = SystemTime::now()
        .checked_sub(RATE_WINDOW)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut r = Rates::default();
    for i in feed.iter().filter(|i| i.at >= since) {
        match i.kind {
            FeedKind::Conflict { .. } => r.conflicts += 1.0,
            FeedKind::LockDenied { .. } => r.denials += 1.0,
            FeedKind::LockTimeout { .. } => r.timeouts += 1.0,
            FeedKind::Deadlock { .. } => r.deadlocks += 1.0,
            FeedKind::Commit { .. } => r.commits += 1.0,
            _ => {}
        }
    }
    let minutes = RATE_WINDOW.as_secs_f64() / 60.0;
    for v in [
        &mut r.conflicts,
        &mut r.denials,
        &mut r.timeouts,
        &mut r.deadlocks,
        &mut r.commits,
    ] {
        *v /= minutes;
    }
    r
}

/// The stronger of two lock states: write > read > queued > free.
fn stronger(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s| match s {
        "write" => 3,
        "read" => 2,
        "queued" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn modules(program: &Program, status: &[crate::locks::LockView]) -> Vec<PageModule> {
    let mut by_function: HashMap<FunctionId, &'static str> = HashMap::new();
    let mut by_module: HashMap<&str, &'static str> = HashMap::new();
    for v in status {
        let mut state = if v.waiters.is_empty() {
            "free"
        } else {
            "queued"
        };
        for h in v.holders.iter().filter(|h| !h.below) {
            state = stronger(
                state,
                match h.claim {
                    Claim::Write => "write",
                    _ => "read",
                },
            );
        }
        match &v.resource {
            Resource::Function(id) => {
                let e = by_function.entry(*id).or_insert("free");
                *e = stronger(e, state);
            }
            Resource::Module(m) => {
                let e = by_module.entry(m.as_str()).or_insert("free");
                *e = stronger(e, state);
            }
            _ => {}
        }
    }
    let mut grouped: BTreeMap<String, Vec<PageFunction>> = BTreeMap::new();
    for (id, entry) in program.functions() {
        let name = entry.function.name.clone();
        let module = name.module();
        let mut lock = by_function.get(&id).copied().unwrap_or("free");
        // The module and every module above it.
        let mut m = module;
        loop {
            if let Some(s) = by_module.get(m) {
                lock = stronger(lock, s);
            }
            match m.rsplit_once("::") {
                Some((up, _)) => m = up,
                None => break,
            }
        }
        let mut calls: Vec<String> = entry
            .function
            .callees()
            .into_iter()
            .map(|c| views::function_name(program, c))
            .collect();
        calls.sort();
        calls.dedup();
        grouped
            .entry(module.to_string())
            .or_default()
            .push(PageFunction {
                id: id.0,
                name: name.to_string(),
                lock,
                calls,
            });
    }
    grouped
        .into_iter()
        .map(|(name, mut functions)| {
            functions.sort_by(|a, b| a.name.cmp(&b.name));
            PageModule { name, functions }
        })
        .collect()
}
