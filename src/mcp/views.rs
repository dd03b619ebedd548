//! Conversions from core types to the wire views in `types.rs`: names
//! resolved, node ids spelled `%3`, hashes as hex, times as RFC 3339.

use super::types::*;
use crate::graph::text::render_op;
use crate::graph::{
    Function, FunctionDiff, FunctionId, Node, NodeId, Program, QualifiedName, Type, Value,
};
use crate::locks::{self, Blocked, Claim, HeldLock, Resource};
use crate::service::{FunctionConflict, Hub, TokenCheck};
use crate::store::CommitRecord;
use crate::verify::Diagnostic;

pub use crate::service::time::{rfc3339, rfc3339_ms};

pub use super::convert::{claim_mode, mode};

pub fn function_name(program: &Program, id: FunctionId) -> String {
    program
        .name_of(id)
        .map(|n| n.to_string())
        .unwrap_or_else(|| id.to_string())
}

/// An idle time as people read it: `idle 40 s`, `idle 14 min`,
/// `idle 2 h 5 min`; `active` while a call is in flight.
pub fn idle_text(idle_s: u64) -> String {
    match idle_s {
        0 => "active".into(),
        s if s < 60 => format!("idle {s} s"),
        s if s < 3600 => format!("idle {} min", s / 60),
        s => format!("idle {} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// `, idle 14 min` for a holder still connected; nothing for one gone.
pub fn holder_idle(h: &HolderView) -> String {
    h.idle_s
        .map(|s| format!(", {}", idle_text(s)))
        .unwrap_or_default()
}

pub fn operator_event(e: &crate::store::OperatorEvent) -> OperatorEventView {
    OperatorEventView {
        time: crate::service::time::rfc3339_ms(e.time_ms),
        action: e.action.as_str().to_string(),
        operator: e.operator.clone(),
        agent_id: e.agent_id.clone(),
        agent_name: e.agent_name.clone(),
        function: e.function_name.clone(),
        detail: e.detail.clone(),
    }
}

/// One operator event as a line of text (`cograph log`, `history`).
pub fn operator_event_line(e: &OperatorEventView) -> String {
    format!(
        "{} {} by {}: {} ({}){}: {}",
        e.time,
        e.action,
        e.operator,
        e.agent_name,
        e.agent_id,
        e.function
            .as_deref()
            .map(|f| format!(" on {f}"))
            .unwrap_or_default(),
        e.detail
    )
}

/// A resource as the wire names it: a function by its qualified name,
/// anything else as `kind:name` (`path:src/net/`, `semaphore:gpu`).
pub fn resource(program: &Program, r: &Resource) -> String {
    crate::service::resource_text(program, r)
}

/// A claim as the wire shows it: `mode` for read/write, `permits` for a
/// semaphore.
pub fn claim(c: Claim) -> (Option<Mode>, Option<u32>) {
    (c.mode().map(mode), c.permits())
}

/// `write`, `read`, `2 permits`.
pub fn claim_text(mode: Option<Mode>, permits: Option<u32>) -> String {
    match (mode, permits) {
        (Some(m), _) => m.as_str().to_string(),
        (None, Some(1)) => "1 permit".into(),
        (None, Some(n)) => format!("{n} permits"),
        (None, None) => "held".into(),
    }
}

pub fn holder(hub: &Hub, program: &Program, shown: &Resource, h: &locks::HolderView) -> HolderView {
    let agent = hub.agent(h.agent);
    let (mode, permits) = claim(h.claim);
    HolderView {
        idle_s: agent.as_ref().map(|a| a.idle_for().as_secs()),
        agent_id: h.agent.to_string(),
        agent_name: hub.agent_name(h.agent),
        mode,
        permits,
        resource: (h.resource != *shown || h.below).then(|| resource(program, &h.resource)),
        below: h.below,
        purpose: h.purpose.clone(),
        since: rfc3339(h.since),
        expires_at: Some(rfc3339(h.expires_at)),
        position: None,
    }
}

/// A holder in one line: `alice (write)`, `bob (read, on module:math)`.
pub fn holder_line(
    hub: &Hub,
    program: &Program,
    shown: &Resource,
    h: &locks::HolderView,
) -> String {
    let (mode, permits) = claim(h.claim);
    let on = if h.resource != *shown || h.below {
        format!(
            ", {} {}",
            if h.below { "below" } else { "on" },
            resource(program, &h.resource)
        )
    } else {
        String::new()
    };
    format!(
        "{} ({}{on})",
        hub.agent_name(h.agent),
        claim_text(mode, permits)
    )
}

/// A waiter in one line: `2. bob (write)`.
pub fn waiter_line(w: &WaiterView) -> String {
    format!(
        "{}. {} ({})",
        w.position.unwrap_or(0),
        w.agent_name,
        claim_text(w.mode, w.permits)
    )
}

pub fn waiter(hub: &Hub, program: &Program, shown: &Resource, w: &locks::WaiterView) -> WaiterView {
    let (mode, permits) = claim(w.claim);
    WaiterView {
        agent_id: w.agent.to_string(),
        agent_name: hub.agent_name(w.agent),
        mode,
        permits,
        resource: (w.resource != *shown).then(|| resource(program, &w.resource)),
        below: false,
        position: Some(w.position),
        since: rfc3339(w.since),
        expires_at: None,
        idle_s: None,
        purpose: w.purpose.clone(),
    }
}

pub fn blocked(hub: &Hub, program: &Program, b: &Blocked) -> BlockedView {
    let shown = &b.resource;
    BlockedView {
        resource: resource(program, shown),
        holders: b
            .holders
            .iter()
            .map(|h| holder(hub, program, shown, h))
            .collect(),
        waiting_ahead: b
            .waiting_ahead
            .iter()
            .map(|w| waiter(hub, program, shown, w))
            .collect(),
        queue_position: b.queue_position,
        queue_length: b.queue_length,
        capacity: b.semaphore.map(|s| s.capacity),
        in_use: b.semaphore.map(|s| s.in_use),
    }
}

/// One resource's holders and waiters, named `name` (its name as shown).
pub fn lock_view(hub: &Hub, program: &Program, name: String, v: &locks::LockView) -> LockView {
    LockView {
        resource: name,
        holders: v
            .holders
            .iter()
            .map(|h| holder(hub, program, &v.resource, h))
            .collect(),
        waiters: v
            .waiters
            .iter()
            .map(|w| waiter(hub, program, &v.resource, w))
            .collect(),
        capacity: v.semaphore.map(|s| s.capacity),
        in_use: v.semaphore.map(|s| s.in_use),
    }
}

pub fn token(hub: &Hub, program: &Program, token: u64, check: TokenCheck) -> TokenView {
    match check {
        TokenCheck::Live {
            resource: r,
            agent,
            expires_at,
            ..
        } => TokenView {
            token,
            live: true,
            resource: Some(resource(program, &r)),
            holder: Some(format!("{} ({agent})", hub.agent_name(agent))),
            expires_at: Some(rfc3339(expires_at)),
        },
        TokenCheck::NotLive { .. } => TokenView {
            token,
            live: false,
            resource: None,
            holder: None,
            expires_at: None,
        },
    }
}

pub fn granted(program: &Program, l: &HeldLock) -> GrantedView {
    let (mode, permits) = claim(l.claim);
    GrantedView {
        resource: resource(program, &l.resource),
        mode,
        permits,
        fencing_token: l.token.0,
        expires_at: rfc3339(l.expires_at),
    }
}

pub fn node(program: &Program, id: NodeId, n: &Node) -> NodeView {
    let namer = program.namer();
    NodeView {
        id: id.to_string(),
        op: render_op(&n.op, &namer),
        inputs: n.inputs.iter().map(|i| i.to_string()).collect(),
    }
}

/// A node as its line in the text form: `%3 = add %1, %2`.
pub fn node_line(program: &Program, id: NodeId, n: &Node) -> String {
    crate::graph::text::render_node(id, n, &program.namer())
}

pub fn nodes(program: &Program, f: &Function) -> Vec<NodeView> {
    f.nodes
        .iter()
        .map(|(id, n)| node(program, *id, n))
        .collect()
}

pub fn diff(program: &Program, d: &FunctionDiff) -> DiffView {
    let edge = |e: &crate::graph::Edge| EdgeView {
        from: e.from.to_string(),
        to: e.to.to_string(),
        port: e.port,
    };
    DiffView {
        name: d.name.as_ref().map(|c| TextChange {
            before: Some(c.before.to_string()),
            after: Some(c.after.to_string()),
        }),
        doc: d.doc.as_ref().map(|c| TextChange {
            before: c.before.clone(),
            after: c.after.clone(),
        }),
        signature: d.signature.as_ref().map(|c| TextChange {
            before: Some(c.before.to_string()),
            after: Some(c.after.to_string()),
        }),
        nodes_added: d
            .nodes_added
            .iter()
            .map(|(id, n)| node_line(program, *id, n))
            .collect(),
        nodes_removed: d
            .nodes_removed
            .iter()
            .map(|(id, n)| node_line(program, *id, n))
            .collect(),
        nodes_changed: d
            .nodes_changed
            .iter()
            .map(|c| NodeChangeView {
                id: c.id.to_string(),
                before: node_line(program, c.id, &c.before),
                after: node_line(program, c.id, &c.after),
            })
            .collect(),
        edges_added: d.edges_added.iter().map(edge).collect(),
        edges_removed: d.edges_removed.iter().map(edge).collect(),
    }
}

pub fn commit_ref(c: &CommitRecord) -> CommitRef {
    CommitRef {
        revision: c.revision.0,
        time: rfc3339_ms(c.time_ms),
        agent_id: c.agent_id.clone(),
        agent_name: c.agent_name.clone(),
        purpose: c.purpose.clone(),
        summary: c.summary.clone(),
    }
}

pub fn commit(c: &CommitRecord) -> CommitView {
    CommitView {
        commit: commit_ref(c),
        changes: c
            .changes
            .iter()
            .map(|ch| ChangeView {
                function_id: ch.function.0,
                function: ch.name.to_string(),
                before: ch.before.map(|h| h.to_hex()),
                after: ch.after.map(|h| h.to_hex()),
            })
            .collect(),
    }
}

pub fn diagnostic(d: &Diagnostic) -> DiagnosticView {
    DiagnosticView {
        function: d.function_name.to_string(),
        node: d.node.map(|n| n.to_string()),
        code: d.code.as_str().to_string(),
        message: d.message.clone(),
        hint: d.hint.clone(),
    }
}

pub fn conflict(program: &Program, c: &FunctionConflict) -> ConflictView {
    let namer = program.namer();
    ConflictView {
        function: c.name.to_string(),
        base: c.base.to_hex(),
        current: c.current.map(|h| h.to_hex()),
        commits: c.commits.iter().map(commit_ref).collect(),
        diff: diff(program, &c.diff),
        overlaps: c.overlaps.iter().map(|o| o.to_string()).collect(),
        current_text: c
            .current_function
            .as_ref()
            .map(|f| crate::graph::render_function(f, &namer)),
    }
}

pub fn signature_text(f: &Function) -> String {
    f.signature.to_string()
}

pub fn qualified(name: &QualifiedName) -> String {
    name.to_string()
}

/// A value as JSON: numbers, booleans, null for unit; non-finite floats
/// as their literal strings.
pub fn value_json(v: &Value) -> serde_json::Value {
    match *v {
        Value::I64(x) => serde_json::json!(x),
        Value::F64(x) if x.is_finite() => serde_json::json!(x),
        Value::F64(_) => serde_json::Value::String(v.literal()),
        Value::Bool(b) => serde_json::Value::Bool(b),
        Value::Unit => serde_json::Value::Null,
    }
}

/// Reads an argument of a known type from JSON; the error names what was
/// expected.
pub fn value_from_json(ty: Type, v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    match (ty, v) {
        (Type::I64, J::Number(n)) => n
            .as_i64()
            .map(Value::I64)
            .ok_or_else(|| format!("{n} is not an i64")),
        (Type::F64, J::Number(n)) => n
            .as_f64()
            .map(Value::F64)
            .ok_or_else(|| format!("{n} is not an f64")),
        (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Unit, J::Null) => Ok(Value::Unit),
        (_, J::String(s)) => Value::parse_as(ty, s),
        (ty, other) => Err(format!("expected {ty}, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn values_cross_json_both_ways() {
        for (ty, v) in [
            (Type::I64, Value::I64(-3)),
            (Type::F64, Value::F64(2.5)),
            (Type::F64, Value::F64(f64::INFINITY)),
            (Type::Bool, Value::Bool(true)),
            (Type::Unit, Value::Unit),
        ] {
            assert_eq!(value_from_json(ty, &value_json(&v)), Ok(v));
        }
        assert!(value_from_json(Type::I64, &serde_json::json!(1.5)).is_err());
        assert!(value_from_json(Type::Bool, &serde_json::json!(1)).is_err());
        assert_eq!(
            value_from_json(Type::F64, &serde_json::json!(2)),
            Ok(Value::F64(2.0))
        );
    }
}
