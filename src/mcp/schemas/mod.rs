//! The tools' JSON schemas as clients see them: schemars' output with each
//! output schema admitting the tool's failures and their details
//! (`errors.rs`), compacted into a portable subset (`compact.rs`). The
//! whole `tools/list` is read by a model on every connection, so it stays
//! within [`TOOLS_LIST_BUDGET`] characters.
//!
//! `cograph schemas --out tool-schemas` writes `<tool>.input.json` and
//! `<tool>.output.json` for each tool, from the same definitions the
//! server advertises in `tools/list`.

use std::path::Path;
use std::sync::Arc;

use rmcp::model::Tool;

use super::server::tool_definitions;

mod compact;
mod errors;

pub use errors::codes_of;

/// Most characters the whole `tools/list` result may take (DESIGN.md
/// section 8), as the server sends it.
pub const TOOLS_LIST_BUDGET: usize = 24_000;

/// Makes a tool's schemas what clients see: the output schema admits the
/// tool's failures (`errors.rs`), and both are compacted (`compact.rs`).
pub fn advertise(tool: &mut Tool) {
    let mut input = (*tool.input_schema).clone();
    compact::compact(&mut input);
    tool.input_schema = Arc::new(input);
    if let Some(success) = &tool.output_schema {
        let mut output = errors::admit_errors(success, codes_of(&tool.name));
        compact::compact(&mut output);
        tool.output_schema = Some(Arc::new(output));
    }
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
    use serde_json::Value;

    use super::*;

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
    fn each_tool_declares_its_own_error_codes() {
        for tool in tool_definitions() {
            let output = tool.output_schema.as_deref().unwrap();
            let codes: Vec<Value> = codes_of(&tool.name)
                .iter()
                .map(|c| Value::String(c.as_str().into()))
                .collect();
            let error = &output["anyOf"][1]["properties"]["error"];
            assert_eq!(
                error["properties"]["code"]["enum"],
                Value::Array(codes),
                "{}",
                tool.name
            );
        }
    }

    /// Every subschema position of `v` that holds a boolean (`true` or
    /// `false` as a schema) or a schema without any keyword that validates.
    fn bare_schemas(v: &Value, path: &str, out: &mut Vec<String>) {
        let Value::Object(map) = v else { return };
        for (k, sub) in map {
            let here = format!("{path}.{k}");
            match k.as_str() {
                "properties" | "$defs" => {
                    for (name, s) in sub.as_object().into_iter().flatten() {
                        check_schema(s, &format!("{here}.{name}"), out);
                    }
                }
                "anyOf" | "oneOf" | "allOf" => {
                    for (i, s) in sub.as_array().into_iter().flatten().enumerate() {
                        check_schema(s, &format!("{here}[{i}]"), out);
                    }
                }
                "items" | "additionalProperties" if !sub.is_boolean() || k == "items" => {
                    check_schema(sub, &here, out)
                }
                _ => {}
            }
        }
    }

    fn check_schema(s: &Value, path: &str, out: &mut Vec<String>) {
        const VALIDATING: [&str; 8] = [
            "type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "not",
        ];
        match s {
            Value::Bool(_) => out.push(format!("{path}: a boolean schema")),
            Value::Object(m) if !m.keys().any(|k| VALIDATING.contains(&k.as_str())) => {
                out.push(format!("{path}: no validation keyword"))
            }
            _ => {}
        }
        bare_schemas(s, path, out);
    }

    #[test]
    fn no_schema_is_a_bare_boolean_or_accepts_anything() {
        let mut found = Vec::new();
        for tool in tool_definitions() {
            let output = tool.output_schema.as_deref().unwrap();
            for (which, schema) in [("input", &*tool.input_schema), ("output", output)] {
                bare_schemas(
                    &Value::Object(schema.clone()),
                    &format!("{} {which}", tool.name),
                    &mut found,
                );
            }
        }
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn no_schema_has_a_type_array() {
        for (name, text) in all_files() {
            assert!(!text.contains("\"type\": ["), "{name} has a `type` array");
        }
    }
}
