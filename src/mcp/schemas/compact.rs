//! Rewrites of schemars' output into the schemas clients see: the same
//! contract in fewer characters, in the portable subset strict checkers
//! (MCP Inspector's `--strict`, single-`type` dialects) accept. The whole
//! `tools/list` is read by a model on every connection, so every keyword
//! that says nothing costs.
//!
//! Each pass keeps what a value must look like; none adds a constraint the
//! server does not hold. They know JSON Schema's keywords, not cograph's
//! types: what a particular type needs is said on the type itself
//! (`#[schemars(...)]` in `mcp/types`).

use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

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

/// Calls `f` on every subschema of `schema`, innermost first, and last on
/// `schema` itself. Keywords that hold data (`const`, `enum`, `default`,
/// `examples`) are not entered, so a property *named* `format` or `title`
/// is left alone.
pub fn visit(schema: &mut JsonObject, f: &mut dyn FnMut(&mut JsonObject)) {
    for (keyword, value) in schema.iter_mut() {
        let mut each = |v: &mut Value| {
            if let Value::Object(sub) = v {
                visit(sub, f);
            }
        };
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
            _ => {}
        }
    }
    f(schema);
}

/// Removes `format` keywords outside [`STANDARD_FORMATS`].
pub fn drop_nonstandard_formats(schema: &mut JsonObject) {
    visit(schema, &mut |s| {
        if let Some(Value::String(format)) = s.get("format")
            && !STANDARD_FORMATS.contains(&format.as_str())
        {
            s.remove("format");
        }
    });
}

/// Removes what restates the obvious: `$schema` (MCP's default dialect is
/// 2020-12), `title` (a Rust type name), `default: null` and `default: []`
/// (an absent optional field is absent), `minimum: 0` (counts and ids; the server
/// refuses a negative one with an error naming the field), and `type:
/// string` beside an `enum` of strings.
pub fn drop_noise(schema: &mut JsonObject) {
    schema.remove("$schema");
    visit(schema, &mut |s| {
        s.remove("title");
        if s.get("default") == Some(&Value::Null) {
            s.remove("default");
        }
        if s.get("minimum") == Some(&json!(0)) {
            s.remove("minimum");
        }
        if s.get("default") == Some(&json!([])) {
            s.remove("default");
        }
        let all_strings = |e: &Value| e.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if s.get("type") == Some(&json!("string")) && s.get("enum").is_some_and(all_strings) {
            s.remove("type");
        }
    });
}

/// Removes `description` and `required` from a result schema. A model
/// reads every tool's output schema on every connection and learns a
/// result from the result itself: the field names and types are what it
/// needs beforehand. The error branch keeps its own `required`.
pub fn drop_prose(schema: &mut JsonObject) {
    visit(schema, &mut |s| {
        s.remove("description");
        s.remove("required");
        // `oneOf` of bare constants (an enum whose variants had docs).
        let consts: Option<Vec<Value>> = match s.get("oneOf") {
            Some(Value::Array(branches)) => branches
                .iter()
                .map(|b| {
                    let b = b.as_object()?;
                    let only_const = b.keys().all(|k| k == "const" || k == "type");
                    only_const.then(|| b.get("const").cloned()).flatten()
                })
                .collect(),
            _ => None,
        };
        if let Some(consts) = consts {
            s.remove("oneOf");
            s.remove("type");
            s.insert("enum".into(), Value::Array(consts));
        }
    });
}

/// A property that need not be present is never null on the wire (the
/// server skips an empty optional result field, and takes an absent
/// argument as null), so its schema drops the `null` alternative:
/// `type: [T, "null"]` becomes `type: T`, `anyOf: [S, {type: null}]`
/// becomes S.
pub fn optional_means_absent(schema: &mut JsonObject) {
    visit(schema, &mut |s| {
        let required: Vec<String> = match s.get("required") {
            Some(Value::Array(r)) => r
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let Some(Value::Object(props)) = s.get_mut("properties") else {
            return;
        };
        for (name, prop) in props.iter_mut() {
            if let Value::Object(p) = prop
                && !required.contains(name)
            {
                drop_null(p);
            }
        }
    });
}

fn drop_null(p: &mut JsonObject) {
    if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            p.insert("type".into(), only);
        }
        return;
    }
    let Some(Value::Array(branches)) = p.get("anyOf") else {
        return;
    };
    let null = json!({"type": "null"});
    if branches.len() != 2 || !branches.contains(&null) {
        return;
    }
    let Some(Value::Array(branches)) = p.remove("anyOf") else {
        return;
    };
    if let Some(Value::Object(other)) = branches.into_iter().find(|b| *b != null) {
        for (k, v) in other {
            p.entry(k).or_insert(v);
        }
    }
}

/// `type: [T, U]` becomes `anyOf: [{type: T, ...}, {type: U}]`: legal
/// JSON Schema, but single-`type` dialects (the OpenAPI subset some model
/// providers use) reject the array form. Type-specific keywords go to the
/// branch of their type; annotations stay outside.
pub fn one_type_per_schema(schema: &mut JsonObject) {
    visit(schema, &mut |s| {
        let Some(Value::Array(types)) = s.get("type").cloned() else {
            return;
        };
        s.remove("type");
        let mut rest = Map::new();
        for key in s.keys().cloned().collect::<Vec<_>>() {
            if !matches!(key.as_str(), "description" | "default" | "examples") {
                rest.insert(key.clone(), s.remove(&key).unwrap_or(Value::Null));
            }
        }
        let branches: Vec<Value> = types
            .into_iter()
            .map(|t| {
                let mut branch = Map::new();
                if t != "null" {
                    branch.extend(rest.clone());
                }
                branch.insert("type".into(), t);
                Value::Object(branch)
            })
            .collect();
        s.insert("anyOf".into(), Value::Array(branches));
    });
}

/// An externally tagged enum, which schemars writes as `oneOf` one
/// single-key object per variant, becomes one object whose properties are
/// the variants and which holds exactly one of them. Same values, a
/// fraction of the text; each variant's description moves onto its key.
pub fn one_key_objects(schema: &mut JsonObject) {
    visit(schema, &mut |s| {
        let Some(Value::Array(branches)) = s.get("oneOf") else {
            return;
        };
        let mut variants = Map::new();
        for b in branches {
            let Some((key, mut inner)) = single_key_object(b) else {
                return;
            };
            if let Some(d) = b.get("description") {
                inner.insert("description".into(), d.clone());
            }
            if variants.insert(key, Value::Object(inner)).is_some() {
                return;
            }
        }
        s.remove("oneOf");
        s.insert("type".into(), json!("object"));
        s.insert("properties".into(), Value::Object(variants));
        s.insert("additionalProperties".into(), json!(false));
        s.insert("minProperties".into(), json!(1));
        s.insert("maxProperties".into(), json!(1));
    });
}

/// `{type: object, properties: {k: S}, required: [k], additionalProperties:
/// false}` (and at most a description beside): the key and S.
fn single_key_object(b: &Value) -> Option<(String, JsonObject)> {
    let b = b.as_object()?;
    let props = b.get("properties")?.as_object()?;
    let (key, inner) = props.iter().next().filter(|_| props.len() == 1)?;
    let shaped = b.get("type") == Some(&json!("object"))
        && b.get("required") == Some(&json!([key]))
        && b.get("additionalProperties") == Some(&json!(false))
        && b.keys().all(|k| {
            matches!(
                k.as_str(),
                "type" | "properties" | "required" | "additionalProperties" | "description"
            )
        });
    shaped.then(|| (key.clone(), inner.as_object().cloned().unwrap_or_default()))
}

/// Every `$ref` target name in `v`, with repeats.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                out.push(name.to_string());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// A definition at most this long (`{"enum":["read","write"]}`) costs
/// less written out at each use than named and referred to.
const SMALL_DEF: usize = 32;

/// Definitions used once, or small, are written where they are used;
/// unused ones are dropped. A shared definition pays for its name twice,
/// a single use only costs. Definitions that refer to themselves stay.
pub fn inline_single_use_defs(schema: &mut JsonObject) {
    // Each round inlines what is used once now; inlining can leave a
    // nested definition used once, so repeat, at most once per definition.
    let n_defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    for _ in 0..=n_defs {
        let Some(Value::Object(defs)) = schema.remove("$defs") else {
            return;
        };
        let mut uses = Vec::new();
        refs(&Value::Object(schema.clone()), &mut uses);
        refs(&Value::Object(defs.clone()), &mut uses);
        let count = |name: &str| uses.iter().filter(|u| *u == name).count();
        let mut kept = Map::new();
        let mut inline = Map::new();
        for (name, def) in defs {
            let mut own = Vec::new();
            refs(&def, &mut own);
            let small = serde_json::to_string(&def).is_ok_and(|t| t.len() <= SMALL_DEF);
            match count(&name) {
                0 => {}
                _ if own.contains(&name) => {
                    kept.insert(name, def);
                }
                n if n == 1 || small => {
                    inline.insert(name, def);
                }
                _ => {
                    kept.insert(name, def);
                }
            }
        }
        let changed = !inline.is_empty();
        let mut root = Value::Object(std::mem::take(schema));
        let mut kept = Value::Object(kept);
        replace_refs(&mut root, &inline);
        replace_refs(&mut kept, &inline);
        let (Value::Object(root), Value::Object(kept)) = (root, kept) else {
            return;
        };
        *schema = root;
        if !kept.is_empty() {
            schema.insert("$defs".into(), Value::Object(kept));
        }
        if !changed {
            return;
        }
    }
}

/// Replaces each `{"$ref": "#/$defs/N", ...siblings}` whose N is in
/// `inline` with the definition (siblings such as a description win).
fn replace_refs(v: &mut Value, inline: &Map<String, Value>) {
    match v {
        Value::Object(map) => {
            map.values_mut().for_each(|v| replace_refs(v, inline));
            let target = match map.get("$ref") {
                Some(Value::String(r)) => r.strip_prefix("#/$defs/").and_then(|n| inline.get(n)),
                _ => None,
            };
            if let Some(Value::Object(def)) = target.cloned() {
                map.remove("$ref");
                let mut def = Value::Object(def);
                replace_refs(&mut def, inline);
                if let Value::Object(def) = def {
                    for (k, v) in def {
                        map.entry(k).or_insert(v);
                    }
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(|v| replace_refs(v, inline)),
        _ => {}
    }
}

/// `additionalProperties: false` stays on the root of an input schema and
/// on one-key objects (where it says which keys exist); nested argument
/// objects lose it. The server still refuses an unknown field anywhere,
/// with an error naming it; the schema need not repeat that at every
/// level.
pub fn closed_at_the_root_only(schema: &mut JsonObject) {
    let root_closed = schema.get("additionalProperties") == Some(&json!(false));
    visit(schema, &mut |s| {
        if s.get("additionalProperties") == Some(&json!(false))
            && s.get("maxProperties") != Some(&json!(1))
        {
            s.remove("additionalProperties");
        }
    });
    if root_closed {
        schema.insert("additionalProperties".into(), json!(false));
    }
}

/// Every pass, in order, on one advertised schema.
pub fn compact(schema: &mut JsonObject) {
    drop_nonstandard_formats(schema);
    drop_noise(schema);
    optional_means_absent(schema);
    one_type_per_schema(schema);
    one_key_objects(schema);
    closed_at_the_root_only(schema);
    inline_single_use_defs(schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn only_nonstandard_format_keywords_are_dropped() {
        let mut schema = obj(json!({
            "type": "object",
            "properties": {
                "format": {"type": "string", "format": "date-time"},
                "n": {"type": "integer", "format": "uint64", "minimum": 0},
                "list": {"type": "array", "items": {"type": "number", "format": "double"}},
                "either": {"anyOf": [{"type": "integer", "format": "int32"}, {"type": "null"}]}
            },
            "$defs": {"Id": {"type": "integer", "format": "uint32", "default": {"format": "uint8"}}}
        }));
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

    #[test]
    fn schema_titles_null_defaults_minimums_and_enum_types_are_noise() {
        let mut schema = obj(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Out",
            "properties": {
                "title": {"type": "string", "default": null},
                "n": {"type": "integer", "minimum": 0, "default": 3},
                "m": {"type": "string", "enum": ["read", "write"]}
            }
        }));
        drop_noise(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({"properties": {
                "title": {"type": "string"},
                "n": {"type": "integer", "default": 3},
                "m": {"enum": ["read", "write"]}
            }})
        );
    }

    #[test]
    fn a_result_schema_loses_its_prose_and_documented_enums_become_enums() {
        let mut schema = obj(json!({
            "description": "d",
            "properties": {"status": {"oneOf": [
                {"const": "a", "type": "string", "description": "A"},
                {"const": "b", "type": "string"}
            ]}},
            "required": ["status"]
        }));
        drop_prose(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({"properties": {"status": {"enum": ["a", "b"]}}})
        );
    }

    #[test]
    fn an_optional_property_loses_null_and_a_required_one_keeps_it() {
        let mut schema = obj(json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}], "description": "d"},
                "c": {"type": ["string", "null"]}
            },
            "required": ["c"]
        }));
        optional_means_absent(&mut schema);
        assert_eq!(schema["properties"]["a"], json!({"type": "string"}));
        assert_eq!(
            schema["properties"]["b"],
            json!({"$ref": "#/$defs/X", "description": "d"})
        );
        assert_eq!(
            schema["properties"]["c"],
            json!({"type": ["string", "null"]})
        );
        one_type_per_schema(&mut schema);
        assert_eq!(
            schema["properties"]["c"],
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
        );
    }

    #[test]
    fn a_type_array_splits_with_its_keywords_in_their_branch() {
        let mut schema = obj(json!({
            "type": ["array", "null"], "items": {"type": "string"}, "description": "d"
        }));
        one_type_per_schema(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({"description": "d", "anyOf": [
                {"type": "array", "items": {"type": "string"}}, {"type": "null"}
            ]})
        );
    }

    #[test]
    fn an_externally_tagged_enum_becomes_one_object_with_one_key() {
        let mut schema = obj(json!({"oneOf": [
            {"type": "object", "description": "first", "properties": {"a": {"type": "object"}},
             "required": ["a"], "additionalProperties": false},
            {"type": "object", "properties": {"b": {"type": "object", "description": "inner"}},
             "required": ["b"], "additionalProperties": false}
        ]}));
        one_key_objects(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "object", "description": "first"},
                    "b": {"type": "object", "description": "inner"}
                },
                "additionalProperties": false, "minProperties": 1, "maxProperties": 1
            })
        );
        // Any other oneOf is left as it is.
        let other = json!({"oneOf": [{"const": "a"}, {"const": "b"}]});
        let mut s = obj(other.clone());
        one_key_objects(&mut s);
        assert_eq!(Value::Object(s), other);
    }

    #[test]
    fn only_the_root_and_one_key_objects_stay_closed() {
        let mut schema = obj(json!({
            "additionalProperties": false,
            "properties": {
                "arg": {"type": "object", "additionalProperties": false},
                "op": {"type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1},
                "map": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        }));
        closed_at_the_root_only(&mut schema);
        assert_eq!(schema["additionalProperties"], false);
        assert!(
            schema["properties"]["arg"]
                .get("additionalProperties")
                .is_none()
        );
        assert_eq!(schema["properties"]["op"]["additionalProperties"], false);
        assert_eq!(
            schema["properties"]["map"]["additionalProperties"],
            json!({"type": "string"})
        );
    }

    #[test]
    fn definitions_used_once_are_inlined_and_shared_ones_stay() {
        let mut schema = obj(json!({
            "properties": {
                "once": {"$ref": "#/$defs/Once", "description": "here"},
                "a": {"$ref": "#/$defs/Twice"},
                "b": {"$ref": "#/$defs/Twice"},
                "tree": {"$ref": "#/$defs/Tree"},
                "m1": {"$ref": "#/$defs/Small"},
                "m2": {"$ref": "#/$defs/Small"}
            },
            "$defs": {
                "Once": {"type": "object", "properties": {"n": {"$ref": "#/$defs/Inner"}}},
                "Inner": {"type": "integer"},
                "Twice": {"type": "string", "description": "shared, and long enough to name"},
                "Tree": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
                "Unused": {"type": "null"},
                "Small": {"enum": ["read", "write"]}
            }
        }));
        inline_single_use_defs(&mut schema);
        assert_eq!(
            Value::Object(schema),
            json!({
                "properties": {
                    "once": {"type": "object", "description": "here",
                             "properties": {"n": {"type": "integer"}}},
                    "a": {"$ref": "#/$defs/Twice"},
                    "b": {"$ref": "#/$defs/Twice"},
                    "tree": {"$ref": "#/$defs/Tree"},
                    "m1": {"enum": ["read", "write"]},
                    "m2": {"enum": ["read", "write"]}
                },
                "$defs": {
                    "Twice": {"type": "string", "description": "shared, and long enough to name"},
                    "Tree": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}
                }
            })
        );
    }
}
