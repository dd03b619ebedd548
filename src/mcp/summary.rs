//! Short text summaries of tool results, for clients that show the model
//! the text content. They carry what an agent needs to act (ids, hashes,
//! positions, holders); the full result is in `structuredContent`.

use std::fmt::Write as _;

use super::types::*;

/// A tool result: its summary text plus its structured content.
pub struct Out<T>(pub T);

pub trait Summary {
    fn summary(&self) -> String;
}

impl<T: serde::Serialize + Summary> rmcp::handler::server::tool::IntoCallToolResult for Out<T> {
    fn into_call_tool_result(self) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let value = serde_json::to_value(&self.0).map_err(|e| {
            rmcp::ErrorData::internal_error(format!("cannot serialise the result: {e}"), None)
        })?;
        let mut result = rmcp::model::CallToolResult::structured(value);
        result.content = vec![rmcp::model::ContentBlock::text(self.0.summary())];
        Ok(result.into())
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

pub fn node_line(n: &NodeView) -> String {
    let mut s = format!("{} = {}", n.id, n.op);
    if !n.inputs.is_empty() {
        s.push(' ');
        s.push_str(&n.inputs.join(", "));
    }
    s
}

/// The diff as indented lines: `+` added, `-` removed, `~` changed.
pub fn diff_text(d: &DiffView) -> String {
    let mut out = String::new();
    if let Some(c) = &d.name {
        let _ = write!(
            out,
            "\n  renamed {} -> {}",
            c.before.as_deref().unwrap_or(""),
            c.after.as_deref().unwrap_or("")
        );
    }
    if let Some(c) = &d.signature {
        let _ = write!(
            out,
            "\n  signature {} -> {}",
            c.before.as_deref().unwrap_or(""),
            c.after.as_deref().unwrap_or("")
        );
    }
    if d.doc.is_some() {
        out.push_str("\n  doc changed");
    }
    for n in &d.nodes_added {
        let _ = write!(out, "\n  + {n}");
    }
    for n in &d.nodes_removed {
        let _ = write!(out, "\n  - {n}");
    }
    for c in &d.nodes_changed {
        let _ = write!(out, "\n  ~ {}  (was {})", c.after, c.before);
    }
    out
}

impl Summary for RegisterAgentResult {
    fn summary(&self) -> String {
        let mut s = format!(
            "agent {} ({}, {})",
            self.name, self.agent_id, self.transport
        );
        if let Some(session) = &self.session {
            let _ = write!(
                s,
                "\nsession: {session}\npass it as `session` on every later call; keep it secret"
            );
        }
        s
    }
}

impl Summary for ListAgentsResult {
    fn summary(&self) -> String {
        let mut s = format!("{} agents", self.agents.len());
        for a in &self.agents {
            let _ = write!(
                s,
                "\n{} ({}, {}){}{}, {} locks, {} (last active {})",
                a.name,
                a.agent_id,
                a.transport,
                if a.you { " [you]" } else { "" },
                a.purpose
                    .as_deref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default(),
                a.locks_held,
                super::views::idle_text(a.idle_s),
                a.last_active
            );
        }
        s
    }
}

impl Summary for ProgramOverviewResult {
    fn summary(&self) -> String {
        let mut s = format!(
            "r{}, {} functions, root {}",
            self.revision,
            self.n_functions,
            short(&self.root_hash)
        );
        for f in &self.functions {
            let _ = write!(
                s,
                "\n#{} {}{} {} nodes, hash {}",
                f.id,
                f.name,
                f.signature,
                f.n_nodes,
                short(&f.hash)
            );
            if !f.locked_by.is_empty() {
                let _ = write!(s, ", locked by {}", f.locked_by.join(", "));
            }
        }
        if let Some(c) = &self.next_cursor {
            let _ = write!(s, "\nmore: cursor {c}");
        }
        s
    }
}

impl Summary for GetFunctionResult {
    fn summary(&self) -> String {
        let mut s = format!(
            "#{} {} r{} hash {}",
            self.id, self.name, self.revision, self.hash
        );
        if !self.locked_by.is_empty() {
            let _ = write!(s, "\nlocked by {}", self.locked_by.join(", "));
        }
        if let Some(warning) = &self.warning {
            let _ = write!(s, "\nwarning: {warning}");
        }
        if let Some(text) = &self.text {
            s.push('\n');
            s.push_str(text);
        }
        if let Some(nodes) = &self.nodes {
            for n in nodes {
                let _ = write!(s, "\n{}", node_line(n));
            }
        }
        s
    }
}

impl Summary for AcquireLocksResult {
    fn summary(&self) -> String {
        let locks: Vec<String> = self
            .granted
            .iter()
            .map(|g| {
                format!(
                    "{} ({}, until {})",
                    g.resource,
                    super::views::claim_text(g.mode, g.permits),
                    g.expires_at
                )
            })
            .collect();
        format!(
            "granted {} (fencing token {}) after {} ms",
            locks.join(", "),
            self.fencing_token,
            self.waited_ms
        )
    }
}

impl Summary for ReleaseLocksResult {
    fn summary(&self) -> String {
        let released: Vec<String> = self.released.iter().map(|r| r.resource.clone()).collect();
        format!(
            "released {}; {} locks still held",
            if released.is_empty() {
                "nothing".into()
            } else {
                released.join(", ")
            },
            self.n_still_held
        )
    }
}

impl Summary for LockStatusResult {
    fn summary(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.token {
            let _ = match (&t.resource, &t.holder, &t.expires_at) {
                (Some(r), Some(h), Some(until)) if t.live => writeln!(
                    s,
                    "token {} is live: {r}, held by {h} until {until}",
                    t.token
                ),
                _ => writeln!(s, "token {} is not live", t.token),
            };
        }
        if self.locks.is_empty() {
            s.push_str("no locks held or waited for");
            return s;
        }
        for l in &self.locks {
            let holders: Vec<String> = l
                .holders
                .iter()
                .map(|h| {
                    format!(
                        "{} ({}, {}{}, until {})",
                        h.agent_name,
                        h.agent_id,
                        super::views::claim_text(h.mode, h.permits),
                        super::views::holder_idle(h),
                        h.expires_at.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            let waiters: Vec<String> = l.waiters.iter().map(super::views::waiter_line).collect();
            let _ = writeln!(
                s,
                "{}{}: held by {}; queue: {}",
                l.resource,
                match (l.capacity, l.in_use) {
                    (Some(c), Some(u)) => format!(" ({u} of {c} permits in use)"),
                    _ => String::new(),
                },
                if holders.is_empty() {
                    "nobody".into()
                } else {
                    holders.join(", ")
                },
                if waiters.is_empty() {
                    "empty".into()
                } else {
                    waiters.join(", ")
                }
            );
        }
        s.trim_end().to_string()
    }
}

impl Summary for ProposeEditResult {
    fn summary(&self) -> String {
        let mut s = match self.revision {
            Some(r) => format!("{} r{r}", self.status),
            None => self.status.to_string(),
        };
        if self.repeated {
            s.push_str(" (a repeat of this request_id: nothing applied again)");
        }
        for f in &self.functions {
            let _ = write!(
                s,
                "\n{}: {} -> {}{}",
                f.function,
                f.before.as_deref().map(short).unwrap_or("(new)"),
                f.after.as_deref().map(short).unwrap_or("(deleted)"),
                if f.merged {
                    " (merged onto concurrent changes)"
                } else {
                    ""
                }
            );
        }
        for (alias, a) in &self.aliases {
            let _ = write!(s, "\n{alias} = {a}");
        }
        if !self.verified.is_empty() {
            let _ = write!(s, "\nverified: {}", self.verified.join(", "));
        }
        s
    }
}

impl Summary for VerifyAllResult {
    fn summary(&self) -> String {
        let mut s = format!(
            "{}: r{}, {} functions, {} nodes, {} diagnostics",
            if self.ok { "ok" } else { "problems" },
            self.revision,
            self.n_functions,
            self.n_nodes,
            self.diagnostics.len()
        );
        for d in &self.diagnostics {
            let _ = write!(
                s,
                "\n{} {}: {} [{}]",
                d.function,
                d.node.as_deref().unwrap_or(""),
                d.message,
                d.code
            );
        }
        s
    }
}

impl Summary for RunFunctionResult {
    fn summary(&self) -> String {
        format!(
            "{} = {} ({}, {} steps)",
            self.function, self.literal, self.ty, self.steps
        )
    }
}

impl Summary for HistoryResult {
    fn summary(&self) -> String {
        let mut s = String::new();
        if self.commits.is_empty() {
            s.push_str("no commits\n");
        }
        for e in &self.operator_events {
            let _ = writeln!(s, "{e}");
        }
        for c in self.commits.iter().map(|c| &c.commit) {
            let _ = writeln!(
                s,
                "r{} {} {} ({}): {}",
                c.revision, c.time, c.agent_name, c.agent_id, c.summary
            );
        }
        if let Some(b) = self.next_before_revision {
            let _ = write!(s, "older: before_revision {b}");
        }
        s.trim_end().to_string()
    }
}

impl Summary for DiffResult {
    fn summary(&self) -> String {
        let body = diff_text(&self.diff);
        format!(
            "{}: {} -> {}{}",
            self.function,
            short(&self.from),
            short(&self.to),
            if body.is_empty() {
                "\n  (no changes)".to_string()
            } else {
                body
            }
        )
    }
}
