//! The tools' JSON schemas as files: `cograph schemas --out tool-schemas`
//! writes `<tool>.input.json` and `<tool>.output.json` for each tool, from
//! the same definitions the server advertises in `tools/list`.

use std::path::Path;

use rmcp::model::{JsonObject, Tool};
use serde_json::{Map, Value, json};

use super::server::tool_definitions;
use super::types::ErrorInfo;

/// The formats JSON Schema (2020-12) defines. schemars also writes its own
/// (`uint64`, `int32`, `double`, ...), which validators do not know: Ajv,
/// inside the TypeScript SDK, warns about each on every `tools/list`.
const STANDARD_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Removes `format` keywords outside [`STANDARD_FORMATS`] from a schema
/// and its subschemas (a property *named* `format` is left alone).
pub fn drop_nonstandard_formats(schema: &mut JsonObject) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
    let each = |v: &mut Value| {
        if let Value::Object(sub) = v {
            drop_nonstandard_formats(sub);
        }
    };
    for (keyword, value) in schema.iter_mut() {
        match keyword.as_str() {
            // Maps from names to schemas.
            "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                if let Value::Object(map) = value {
                    map.values_mut().for_each(each);
                }
            }
            // Lists of schemas.
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(list) = value {
                    list.iter_mut().for_each(each);
                }
            }
            // One schema (or, for old-style `items`, a list).
            "items"
            | "additionalProperties"
            | "not"
            | "if"
            | "then"
            | "else"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems"
            | "unevaluatedProperties" => match value {
                Value::Array(list) => list.iter_mut().for_each(each),
                other => each(other),
            },
            // `const`, `enum`, `default`, `examples`... hold data, not schemas.
            _ => {}
        }
    }
}

/// A tool's output schema that admits its actionable failures too:
/// `anyOf` the success schema and `{error: {code, message, hint}, ...}`.
///
/// MCP says structured results conform to the output schema, and clients
/// differ on whether that covers `isError` results: the TypeScript SDK's
/// v1 client validates them too and throws on a mismatch, so with a
/// success-only schema every `lock_denied` would reach such a host as a
/// protocol error instead of the holders and queue position it carries.
pub fn admit_errors(success: &JsonObject) -> JsonObject {
    let mut success = success.clone();
    let mut defs = match success.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let mut error_info = (*rmcp::handler::server::common::schema_for_type::<ErrorInfo>()).clone();
    error_info.remove("$schema");
    // ErrorInfo's own definitions (ErrorCode) are referenced as
    // `#/$defs/...`, from the document root: they move up beside it.
    if let Some(Value::Object(inner)) = error_info.remove("$defs") {
        defs.extend(inner);
    }
    defs.insert("ErrorInfo".into(), Value::Object(error_info));
    defs.insert(
        "ToolError".into(),
        json!({
            "description": "An actionable failure (the result has `isError: true`): `error` says \
                what went wrong and what to do next; details such as holders, diffs or \
                diagnostics sit beside it.",
            "type": "object",
            "properties": {"error": {"$ref": "#/$defs/ErrorInfo"}},
            "required": ["error"]
        }),
    );
    let mut out = Map::new();
    for key in ["$schema", "title"] {
        if let Some(v) = success.remove(key) {
            out.insert(key.into(), v);
        }
    }
    out.insert("type".into(), json!("object"));
    out.insert(
        "anyOf".into(),
        json!([Value::Object(success), {"$ref": "#/$defs/ToolError"}]),
    );
    out.insert("$defs".into(), Value::Object(defs));
    out
}

/// The files for one tool: (file name, pretty JSON with a final newline).
pub fn files_for(tool: &Tool) -> Vec<(String, String)> {
    let pretty = |v: &serde_json::Value| {
        format!(
            "{}\n",
            serde_json::to_string_pretty(v).expect("schema serialises")
        )
    };
    let mut out = vec![(
        format!("{}.input.json", tool.name),
        pretty(&serde_json::Value::Object((*tool.input_schema).clone())),
    )];
    if let Some(schema) = &tool.output_schema {
        out.push((
            format!("{}.output.json", tool.name),
            pretty(&serde_json::Value::Object((**schema).clone())),
        ));
    }
    out
}

/// Every schema file, sorted by name.
pub fn all_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = tool_definitions().iter().flat_map(files_for).collect();
    files.sort();
    files
}

/// Writes every schema file into `dir`, removing stale `*.json` files.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let files = all_files();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.ends_with(".json") && !files.iter().any(|(f, _)| *f == name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::types::ErrorCode;

    #[test]
    fn an_output_schema_admits_the_success_and_the_error_shape() {
        let success = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Out",
            "type": "object",
            "properties": {"view": {"$ref": "#/$defs/View"}},
            "required": ["view"],
            "$defs": {"View": {"type": "string"}}
        });
        let Value::Object(success) = success else {
            unreachable!()
        };
        let out = admit_errors(&success);
        assert_eq!(out["type"], "object");
        assert_eq!(out["title"], "Out");
        assert_eq!(out["$schema"], success["$schema"]);
        // The success branch keeps everything but what moved to the root.
        let branches = out["anyOf"].as_array().unwrap();
        assert_eq!(branches[0]["required"], json!(["view"]));
        assert!(branches[0].get("$defs").is_none());
        assert_eq!(branches[1]["$ref"], "#/$defs/ToolError");
        // Every definition either branch refers to sits at the root.
        let defs = out["$defs"].as_object().unwrap();
        assert_eq!(defs["View"], json!({"type": "string"}));
        assert_eq!(defs["ToolError"]["required"], json!(["error"]));
        let info = &defs["ErrorInfo"];
        assert_eq!(info["required"], json!(["code", "message", "hint"]));
    }

    #[test]
    fn only_nonstandard_format_keywords_are_dropped() {
        let schema = json!({
            "type": "object",
            "properties": {
                "format": {"type": "string", "format": "date-time"},
                "n": {"type": "integer", "format": "uint64", "minimum": 0},
                "list": {"type": "array", "items": {"type": "number", "format": "double"}},
                "either": {"anyOf": [{"type": "integer", "format": "int32"}, {"type": "null"}]}
            },
            "$defs": {"Id": {"type": "integer", "format": "uint32", "default": {"format": "uint8"}}}
        });
        let Value::Object(mut schema) = schema else {
            unreachable!()
        };
        drop_nonstandard_formats(&mut schema);
        let expected = json!({
            "type": "object",
            "properties": {
                "format": {"type": "string", "format": "date-time"},
                "n": {"type": "integer", "minimum": 0},
                "list": {"type": "array", "items": {"type": "number"}},
                "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            },
            "$defs": {"Id": {"type": "integer", "default": {"format": "uint8"}}}
        });
        assert_eq!(Value::Object(schema), expected);
    }

    /// Every `$ref` in `v`, wherever it sits.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_ref_in_every_tool_schema_resolves_at_the_root() {
        for tool in tool_definitions() {
            let output = tool.output_schema.as_deref().expect("every tool has one");
            for (which, schema) in [("input", &*tool.input_schema), ("output", output)] {
                let root = Value::Object(schema.clone());
                let mut found = Vec::new();
                refs(&root, &mut found);
                for r in found {
                    let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| {
                        panic!("{} {which}: `{r}` is not a root definition", tool.name)
                    });
                    assert!(
                        root["$defs"].get(name).is_some(),
                        "{} {which}: `{r}` names no definition at the root",
                        tool.name
                    );
                }
            }
        }
    }

    #[test]
    fn error_codes_are_an_enum_in_every_output_schema() {
        let codes: Vec<Value> = ErrorCode::ALL
            .iter()
            .map(|c| Value::String(c.as_str().into()))
            .collect();
        for tool in tool_definitions() {
            let output = tool.output_schema.as_deref().unwrap();
            assert_eq!(
                output["$defs"]["ErrorCode"]["enum"],
                Value::Array(codes.clone()),
                "{}",
                tool.name
            );
        }
    }
}
