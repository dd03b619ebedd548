//! A JSON Schema checker for the subset cograph's tool schemas use, strict
//! where a general validator is lenient: an object may hold only the keys
//! its schema declares (so every detail the server sends is one the schema
//! names), and a keyword it does not know is a failure, not a pass.

use serde_json::Value;

/// Keywords that describe and never constrain.
const ANNOTATIONS: [&str; 5] = ["description", "default", "examples", "$schema", "format"];

/// Why `value` does not match the schema `root` (empty if it does).
pub fn violations(root: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(root, root, value, "$", &mut out, 0);
    out
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>, depth: u32) {
    if depth > 64 {
        out.push(format!("{at}: schema nests deeper than 64"));
        return;
    }
    let Value::Object(s) = schema else {
        out.push(format!("{at}: schema is not an object: {schema}"));
        return;
    };
    for (keyword, arg) in s {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$defs" => {}
            "$ref" => {
                let name = arg.as_str().and_then(|r| r.strip_prefix("#/$defs/"));
                match name.and_then(|n| root["$defs"].get(n)) {
                    Some(def) => check(root, def, value, at, out, depth + 1),
                    None => out.push(format!("{at}: unresolved $ref {arg}")),
                }
            }
            "type" => {
                let Some(t) = arg.as_str() else {
                    out.push(format!("{at}: `type` is not one string: {arg}"));
                    continue;
                };
                let fits = match t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "null" => value.is_null(),
                    "integer" => value.is_u64() || value.is_i64(),
                    "number" => value.is_number(),
                    other => {
                        out.push(format!("{at}: unknown type {other}"));
                        true
                    }
                };
                if !fits {
                    out.push(format!("{at}: expected {t}, got {value}"));
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|a| a.contains(value)) {
                    out.push(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != value {
                    out.push(format!("{at}: {value} is not {arg}"));
                }
            }
            "minimum" => {
                if let (Some(min), Some(v)) = (arg.as_f64(), value.as_f64())
                    && v < min
                {
                    out.push(format!("{at}: {v} is below {min}"));
                }
            }
            "anyOf" | "oneOf" => {
                let branches = arg.as_array().cloned().unwrap_or_default();
                let results: Vec<Vec<String>> = branches
                    .iter()
                    .map(|b| {
                        let mut o = Vec::new();
                        check(root, b, value, at, &mut o, depth + 1);
                        o
                    })
                    .collect();
                let n_ok = results.iter().filter(|r| r.is_empty()).count();
                let fits = if keyword == "anyOf" {
                    n_ok >= 1
                } else {
                    n_ok == 1
                };
                if !fits {
                    out.push(format!(
                        "{at}: {keyword} matched {n_ok} branches; {:?}",
                        results
                    ));
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    check(root, arg, item, &format!("{at}[{i}]"), out, depth + 1);
                }
            }
            "required" => {
                for key in arg.as_array().into_iter().flatten() {
                    let key = key.as_str().unwrap_or_default();
                    if value.is_object() && value.get(key).is_none() {
                        out.push(format!("{at}: `{key}` is required"));
                    }
                }
            }
            "minProperties" | "maxProperties" => {
                if let (Some(n), Some(obj)) = (arg.as_u64(), value.as_object()) {
                    let len = obj.len() as u64;
                    if (keyword == "minProperties" && len < n)
                        || (keyword == "maxProperties" && len > n)
                    {
                        out.push(format!("{at}: {len} properties breaks {keyword} {n}"));
                    }
                }
            }
            "properties" | "additionalProperties" => {}
            other => out.push(format!("{at}: unknown keyword `{other}`")),
        }
    }
    // Objects: declared properties are checked; any other key must be
    // admitted by `additionalProperties` (a schema, or `true`), else it is
    // undeclared, which this checker refuses even where JSON Schema allows.
    if let Some(obj) = value.as_object()
        && (s.contains_key("properties") || s.contains_key("additionalProperties"))
    {
        let props = s.get("properties").and_then(Value::as_object);
        for (key, v) in obj {
            let here = format!("{at}.{key}");
            match (
                props.and_then(|p| p.get(key)),
                s.get("additionalProperties"),
            ) {
                (Some(p), _) => check(root, p, v, &here, out, depth + 1),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(extra @ Value::Object(_))) => {
                    check(root, extra, v, &here, out, depth + 1)
                }
                (None, _) => out.push(format!("{here}: not declared in the schema")),
            }
        }
    }
}
