//! The MCP resources cograph serves (DESIGN.md section 8):
//! - `cograph://docs/language`: the language reference;
//! - `cograph://function/{qualified name}`: a function in the text form
//!   (a template; `resources/list` lists every function, paginated);
//! - `cograph://locks`: the lock table, every resource with holders and
//!   waiters, as `lock_status` shows them, and the latest lock events
//!   (grants, releases, expiries, breaks, deadlock refusals);
//! - `cograph://locks/mine`: the caller's locks and who waits behind them;
//! - `cograph://reads`: the functions the caller read that changed since;
//! - `cograph://log`: the most recent commits.
//!
//! Which of them can be subscribed to, and what a subscriber hears, is
//! `subscriptions.rs`. Reading a function resource with an agent counts as
//! reading the function (it shows its content), as `get_function` does.
//! An unknown URI is rmcp's resource-not-found error, naming the URI.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::json;

use super::reference::language_reference;
use super::views;
use crate::graph::{FunctionRef, QualifiedName};
use crate::locks::AgentId;
use crate::service::Hub;
use crate::service::time::rfc3339;

/// The URI of the language reference.
pub const LANGUAGE_URI: &str = "cograph://docs/language";
const FUNCTION_PREFIX: &str = "cograph://function/";
const LOCKS_URI: &str = "cograph://locks";
const MINE_URI: &str = "cograph://locks/mine";
const READS_URI: &str = "cograph://reads";
const LOG_URI: &str = "cograph://log";

/// Functions per page of `resources/list`.
pub const PAGE: usize = 100;
/// Commits the log resource shows.
const LOG_COMMITS: usize = 50;
/// Lock events the lock-table resource shows, newest last.
const LOCK_EVENTS: usize = 200;

/// A resource URI cograph knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri {
    Language,
    Function(String),
    Locks,
    Mine,
    Reads,
    Log,
}

impl Uri {
    pub fn parse(uri: &str) -> Option<Uri> {
        Some(match uri {
            LANGUAGE_URI => Uri::Language,
            LOCKS_URI => Uri::Locks,
            MINE_URI => Uri::Mine,
            READS_URI => Uri::Reads,
            LOG_URI => Uri::Log,
            _ => Uri::Function(uri.strip_prefix(FUNCTION_PREFIX)?.to_string()),
        })
    }

    /// Returns true if and only if a subscriber to this URI hears of
    /// changes; `bound` says whether the caller is an agent (the per-agent
    /// resources need one).
    pub fn subscribable(&self, bound: bool) -> bool {
        match self {
            Uri::Function(_) | Uri::Log => true,
            Uri::Mine | Uri::Reads => bound,
            Uri::Language | Uri::Locks => false,
        }
    }
}

/// The resources that are always there, as `resources/list` shows them.
fn fixed() -> Vec<Resource> {
    let row = |uri: &str, name: &str, title: &str, description: &str, mime: &str| {
        Resource::new(uri, name)
            .with_title(title)
            .with_description(description)
            .with_mime_type(mime)
    };
    vec![
        row(
            LANGUAGE_URI,
            "language",
            "The cograph language",
            "Ops with arity and typing, the text form with a worked example, and every propose_edit op with a JSON example",
            "text/markdown",
        ),
        row(
            LOCKS_URI,
            "locks",
            "The lock table",
            "Every locked or awaited resource with its holders and waiters in order",
            "application/json",
        ),
        row(
            MINE_URI,
            "my-locks",
            "Your locks",
            "What you hold and who waits behind it (subscribe to hear when someone queues)",
            "application/json",
        ),
        row(
            READS_URI,
            "my-reads",
            "Your stale reads",
            "Functions you read that someone else changed since (subscribe to hear when one does)",
            "application/json",
        ),
        row(
            LOG_URI,
            "log",
            "Recent commits",
            "The latest commits, newest first (subscribe to hear of each)",
            "application/json",
        ),
    ]
}

fn bad_cursor(cursor: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "`cursor` `{}` is not one resources/list gave",
            cursor.chars().take(100).collect::<String>()
        ),
        None,
    )
}

/// What `resources/list` answers: the fixed resources, then every function
/// in name order, `PAGE` functions a page. The cursor is the name of the
/// last function of the previous page, so pages stay right while
/// functions come and go.
pub fn list(hub: &Hub, cursor: Option<&str>) -> Result<ListResourcesResult, ErrorData> {
    let program = hub.snapshot();
    let after = match cursor {
        None => None,
        Some(c) => Some(QualifiedName::new(c).map_err(|_| bad_cursor(c))?),
    };
    let mut resources = if after.is_none() { fixed() } else { Vec::new() };
    let mut last = None;
    let mut more = false;
    for (i, (name, id)) in program.names_from(after.as_ref()).enumerate() {
        if i == PAGE {
            more = true;
            break;
        }
        let doc = program.get(id).and_then(|e| e.function.doc.clone());
        let mut r = Resource::new(format!("{FUNCTION_PREFIX}{name}"), name.to_string())
            .with_mime_type("text/plain");
        if let Some(doc) = doc {
            r = r.with_description(doc);
        }
        resources.push(r);
        last = Some(name.to_string());
    }
    let mut result = ListResourcesResult::with_all_items(resources);
    result.next_cursor = if more { last } else { None };
    Ok(result)
}

/// What `resources/templates/list` answers.
pub fn templates() -> ListResourceTemplatesResult {
    let template = ResourceTemplate::new("cograph://function/{name}", "function")
        .with_title("A function")
        .with_description(
            "A function of the program in the text form, by qualified name (`math::fib`)",
        )
        .with_mime_type("text/plain");
    ListResourceTemplatesResult::with_all_items(vec![template])
}

fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!(
            "no resource `{}`: {why}",
            uri.chars().take(200).collect::<String>()
        ),
        Some(json!({ "uri": uri })),
    )
}

fn needs_agent(uri: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("`{uri}` is about your own agent: read it over stdio or an HTTP session"),
        None,
    )
}

/// What `resources/read` answers for `uri`, for `agent` if the caller is
/// one.
pub async fn read(
    hub: &Arc<Hub>,
    agent: Option<AgentId>,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let parsed = Uri::parse(uri).ok_or_else(|| {
        let known = [LANGUAGE_URI, LOCKS_URI, MINE_URI, READS_URI, LOG_URI];
        let why = format!(
            "the resources are {} and cograph://function/{{name}}",
            known.join(", ")
        );
        not_found(uri, &why)
    })?;
    let (text, mime) = match parsed {
        Uri::Language => (language_reference().to_string(), "text/markdown"),
        Uri::Function(name) => (function_text(hub, agent, uri, &name)?, "text/plain"),
        Uri::Locks => (locks_json(hub).to_string(), "application/json"),
        Uri::Mine => {
            let agent = agent.ok_or_else(|| needs_agent(uri))?;
            (mine_json(hub, agent).to_string(), "application/json")
        }
        Uri::Reads => {
            let agent = agent.ok_or_else(|| needs_agent(uri))?;
            (reads_json(hub, agent).to_string(), "application/json")
        }
        Uri::Log => {
            let commits = hub
                .history(None, None, LOG_COMMITS)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let commits: Vec<_> = commits.iter().map(views::commit).collect();
            (
                json!({ "commits": commits }).to_string(),
                "application/json",
            )
        }
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(mime),
    ]))
}

fn function_text(
    hub: &Hub,
    agent: Option<AgentId>,
    uri: &str,
    name: &str,
) -> Result<String, ErrorData> {
    let missing = || {
        let program = hub.snapshot();
        let close = program.similar_names(name);
        let hint = match close.first() {
            Some(n) => format!("did you mean `{FUNCTION_PREFIX}{n}`?"),
            None => "resources/list shows every function".to_string(),
        };
        not_found(uri, &format!("no function `{name}`; {hint}"))
    };
    let function = FunctionRef::Name(QualifiedName::new(name).map_err(|_| missing())?);
    let read = match agent {
        Some(agent) => hub.read_function(agent, &function),
        None => hub.peek_function(&function),
    }
    .map_err(|_| missing())?;
    let namer = read.program.namer();
    Ok(crate::graph::render_function(&read.entry.function, &namer))
}

fn locks_json(hub: &Hub) -> serde_json::Value {
    let program = hub.snapshot();
    let locks: Vec<_> = hub
        .lock_status()
        .iter()
        .map(|v| {
            let holders: Vec<_> = v
                .holders
                .iter()
                .map(|h| views::holder(hub, &program, &v.resource, h))
                .collect();
            let waiters: Vec<_> = v
                .waiters
                .iter()
                .map(|w| views::waiter(hub, &program, &v.resource, w))
                .collect();
            json!({
                "resource": views::resource(&program, &v.resource),
                "holders": holders,
                "waiters": waiters,
            })
        })
        .collect();
    let events: Vec<_> = hub
        .lock_events(None, LOCK_EVENTS)
        .iter()
        .map(|e| {
            let (mode, permits) = views::claim(e.claim);
            json!({
                "seq": e.seq,
                "at": rfc3339(e.at),
                "event": e.kind.as_str(),
                "agent_name": hub.agent_name(e.agent),
                "agent_id": e.agent.to_string(),
                "resource": views::resource(&program, &e.resource),
                "claim": views::claim_text(mode, permits),
                "token": e.token.map(|t| t.0),
            })
        })
        .collect();
    json!({ "locks": locks, "events": events })
}

fn mine_json(hub: &Hub, agent: AgentId) -> serde_json::Value {
    let program = hub.snapshot();
    let held: Vec<_> = hub
        .locks_held_by(agent)
        .iter()
        .map(|l| views::granted(&program, l))
        .collect();
    let behind: Vec<_> = hub
        .waiting_behind(agent)
        .iter()
        .map(|w| {
            json!({
                "resource": views::resource(&program, &w.resource),
                "waiter": views::waiter(hub, &program, &w.resource, w),
            })
        })
        .collect();
    json!({ "held": held, "waiting_behind": behind })
}

fn reads_json(hub: &Hub, agent: AgentId) -> serde_json::Value {
    let program = hub.snapshot();
    let stale: Vec<_> = hub
        .reads_of(agent)
        .into_iter()
        .filter_map(|(id, read)| {
            let now = program.get(id).map(|e| e.hash);
            (now != Some(read)).then(|| {
                json!({
                    "function": views::function_name(&program, id),
                    "read": read.to_hex(),
                    "current": now.map(|h| h.to_hex()),
                })
            })
        })
        .collect();
    json!({ "stale": stale })
}
