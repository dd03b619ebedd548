//! The error branch of each tool's output schema: `error: {code, message,
//! hint}` with the codes that tool can return, and beside it the details
//! those codes carry (`ErrorDetails`, per `ErrorCode::details`).

use rmcp::model::JsonObject;
use rmcp::schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::compact;
use crate::mcp::types::{ErrorCode, ErrorDetails};

/// The codes each tool's failures can have. A tool missing here would be
/// advertised with every code and every detail (a unit test keeps the
/// list whole).
pub fn codes_of(tool: &str) -> &'static [ErrorCode] {
    use ErrorCode::*;
    match tool {
        "register_agent" => &[SessionRequired, TooManyAgents],
        "list_agents" | "program_overview" | "verify_all" => &[SessionRequired],
        "get_function" | "release_locks" | "lock_status" | "history" | "diff" => {
            &[NotFound, SessionRequired]
        }
        "run_function" => &[NotFound, RuntimeError, SessionRequired],
        "acquire_locks" => &[
            LockDenied,
            LockTimeout,
            Deadlock,
            Cancelled,
            NotFound,
            SessionRequired,
        ],
        "propose_edit" => &[
            LockDenied,
            LockExpired,
            Conflict,
            TooManyConflicts,
            ReadRequired,
            VerificationFailed,
            InvalidEdit,
            NotFound,
            SessionRequired,
        ],
        _ => &ErrorCode::ALL,
    }
}

/// The error branch for a tool failing with `codes`, and the definitions
/// it refers to (named as in the success schema, which the same generator
/// settings wrote).
pub fn error_branch(codes: &[ErrorCode]) -> (JsonObject, JsonObject) {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let schema = generator.into_root_schema_for::<ErrorDetails>();
    let Value::Object(mut all) = serde_json::to_value(schema).unwrap_or(Value::Null) else {
        return (Map::new(), Map::new());
    };
    compact::drop_prose(&mut all);
    let defs = match all.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let mut detail_schemas = match all.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let codes: Vec<Value> = codes.iter().map(|c| json!(c.as_str())).collect();
    let mut properties = Map::new();
    properties.insert(
        "error".into(),
        json!({
            "type": "object",
            "properties": {
                "code": {"enum": codes},
                "message": {"type": "string"},
                "hint": {"type": "string"}
            },
            "required": ["code", "message", "hint"]
        }),
    );
    for code in ErrorCode::ALL {
        if !codes.contains(&json!(code.as_str())) {
            continue;
        }
        for &detail in code.details() {
            if let Some(s) = detail_schemas.remove(detail) {
                properties.insert(detail.into(), s);
            }
        }
    }
    let branch = json!({
        "type": "object",
        "properties": properties,
        "required": ["error"]
    });
    let Value::Object(branch) = branch else {
        unreachable!("a json! object")
    };
    (branch, defs)
}

/// A tool's output schema that admits its actionable failures too:
/// `anyOf` the success schema and the error branch.
///
/// MCP says structured results conform to the output schema, and clients
/// differ on whether that covers `isError` results: the TypeScript SDK's
/// v1 client validates them too and throws on a mismatch, so with a
/// success-only schema every `lock_denied` would reach such a host as a
/// protocol error instead of the holders and queue position it carries.
pub fn admit_errors(success: &JsonObject, codes: &[ErrorCode]) -> JsonObject {
    let mut success = success.clone();
    compact::drop_prose(&mut success);
    let mut defs = match success.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let (branch, error_defs) = error_branch(codes);
    for (name, def) in error_defs {
        defs.entry(name).or_insert(def);
    }
    let mut out = Map::new();
    if let Some(v) = success.remove("$schema") {
        out.insert("$schema".into(), v);
    }
    out.insert("type".into(), json!("object"));
    out.insert(
        "anyOf".into(),
        json!([Value::Object(success), Value::Object(branch)]),
    );
    out.insert("$defs".into(), Value::Object(defs));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::server::tool_definitions;

    #[test]
    fn every_tool_names_the_codes_it_can_fail_with() {
        for tool in tool_definitions() {
            assert_ne!(
                codes_of(&tool.name),
                &ErrorCode::ALL,
                "{}: add it to codes_of",
                tool.name
            );
        }
    }

    #[test]
    fn every_detail_is_a_field_of_error_details_and_has_a_code() {
        let (branch, _) = error_branch(&ErrorCode::ALL);
        let declared: Vec<&String> = branch["properties"].as_object().unwrap().keys().collect();
        let mut named: Vec<&str> = vec!["error"];
        for code in ErrorCode::ALL {
            for detail in code.details() {
                assert!(
                    declared.iter().any(|d| d == detail),
                    "{code}: `{detail}` is no field of ErrorDetails"
                );
                named.push(detail);
            }
        }
        for d in declared {
            assert!(named.contains(&d.as_str()), "`{d}` is sent with no code");
        }
    }

    #[test]
    fn an_output_schema_admits_the_success_and_the_error_shape() {
        let success = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"view": {"$ref": "#/$defs/View"}},
            "required": ["view"],
            "$defs": {"View": {"type": "string"}}
        });
        let Value::Object(success) = success else {
            unreachable!()
        };
        let out = admit_errors(&success, &[ErrorCode::Deadlock]);
        assert_eq!(out["type"], "object");
        assert_eq!(out["$schema"], success["$schema"]);
        // The success branch keeps its shape, without prose; its
        // definitions moved to the root.
        let branches = out["anyOf"].as_array().unwrap();
        assert_eq!(
            branches[0]["properties"],
            json!({"view": {"$ref": "#/$defs/View"}})
        );
        assert!(branches[0].get("$defs").is_none());
        // The error branch: the tool's codes, and their details only.
        let error = &branches[1];
        assert_eq!(error["required"], json!(["error"]));
        assert_eq!(
            error["properties"]["error"]["required"],
            json!(["code", "message", "hint"])
        );
        assert_eq!(
            error["properties"]["error"]["properties"]["code"]["enum"],
            json!(["deadlock"])
        );
        let mut details: Vec<&String> = error["properties"].as_object().unwrap().keys().collect();
        details.sort();
        assert_eq!(details, ["blocked", "cycle", "error"]);
        // Every definition either branch refers to sits at the root.
        let defs = out["$defs"].as_object().unwrap();
        assert_eq!(defs["View"], json!({"type": "string"}));
        assert!(defs.contains_key("BlockedView"), "{defs:?}");
    }
}
