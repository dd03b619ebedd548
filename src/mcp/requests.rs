//! JSON-RPC requests that rmcp cannot decode, answered with an error that
//! says what was wrong instead of "method not found" or silence.
//!
//! rmcp decodes a `tools/call` whose `params` do not fit its shape (an
//! `arguments` that is not an object, a missing `name`) as a custom request
//! and would answer `-32601 "tools/call"`; `arguments: null` it takes as
//! absent. A line on stdio that is not JSON it drops without an answer.
//! This file decides the answers; the transports (`lines.rs` for stdio and
//! the hub's socket, the handler's `on_custom_request`) send them. It
//! knows nothing of tools beyond their names.

use rmcp::ErrorData;
use serde_json::{Value, json};

use super::types::kind;

/// The error for a `tools/call` whose `params` rmcp could not decode:
/// invalid params naming the field.
pub fn malformed_tools_call(params: Option<&Value>) -> ErrorData {
    let message = match params {
        None | Some(Value::Null) => "`params`: a tools/call needs params {\"name\": ..., \"arguments\": {...}}".to_string(),
        Some(Value::Object(p)) => match (p.get("name"), p.get("arguments")) {
            (None, _) => "`name`: a tools/call needs the name of a tool".to_string(),
            (Some(name), _) if !name.is_string() => {
                format!("`name`: expected a tool name (a string), got {}", kind(name))
            }
            (_, Some(args)) if !args.is_object() => arguments_message(args),
            _ => "`params`: not a valid tools/call (expected {\"name\": string, \"arguments\": object})".to_string(),
        },
        Some(other) => format!("`params`: expected an object, got {}", kind(other)),
    };
    ErrorData::invalid_params(message, None)
}

/// What rmcp would accept but the protocol does not: a `tools/call` with
/// `arguments: null` (rmcp reads it as no arguments). `None` when the
/// message is fine as far as this check goes.
pub fn check_raw(message: &Value) -> Option<ErrorData> {
    let is_tools_call = message.get("method").and_then(Value::as_str) == Some("tools/call");
    let args = message.get("params")?.get("arguments")?;
    (is_tools_call && args.is_null())
        .then(|| ErrorData::invalid_params(arguments_message(args), None))
}

fn arguments_message(args: &Value) -> String {
    format!(
        "`arguments`: expected an object of the tool's arguments (or leave it out), got {}",
        kind(args)
    )
}

/// A tool name the server does not have: invalid params naming it and
/// listing the tools.
pub fn unknown_tool(name: &str, tools: &[String]) -> ErrorData {
    let mut tools = tools.to_vec();
    tools.sort();
    ErrorData::invalid_params(
        format!(
            "`name`: there is no tool `{name}`; the tools are {}",
            tools.join(", ")
        ),
        Some(json!({ "tools": tools })),
    )
}

/// The JSON-RPC error response for a line that is not a JSON-RPC message
/// at all: parse error (-32700) with id null, as JSON-RPC 2.0 prescribes.
pub fn parse_error_line(problem: &str) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("parse error: {problem}")},
    }))
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// The error response for a message that is JSON but not a request,
/// notification or response (invalid request, -32600), answered under its
/// id when it has a usable one.
pub fn invalid_request_line(message: &Value, problem: &str) -> Vec<u8> {
    error_line(
        usable_id(message),
        json!({"code": -32600, "message": format!("invalid request: {problem}")}),
    )
}

/// An error response under the message's id (or null).
pub fn error_response_line(message: &Value, error: &ErrorData) -> Vec<u8> {
    error_line(
        usable_id(message),
        serde_json::to_value(error).unwrap_or(Value::Null),
    )
}

fn error_line(id: Value, error: Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "error": error}))
        .unwrap_or_default();
    line.push(b'\n');
    line
}

fn usable_id(message: &Value) -> Value {
    match message.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}
