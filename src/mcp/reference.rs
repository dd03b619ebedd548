//! The language reference agents read as `cograph://docs/language`: the
//! language half from `graph::reference` (types, text form, op table), then
//! how to edit, with every edit op and a JSON example of it in the form
//! `propose_edit` takes. Generated from the code: [`documented`] matches
//! [`EditOpArg`] without a wildcard, so a new edit op does not compile until
//! it has an entry, and the unit tests decode every example through the
//! tool's own argument types. Also the one list of edit-op names that
//! argument errors offer.

use std::sync::LazyLock;

use super::types::EditOpArg;
use crate::graph::reference::language_markdown;

/// What the reference says about one edit op.
#[derive(Clone, Copy, Debug)]
pub struct EditOpDoc {
    /// The op's key in the JSON: `{"add_node": {...}}`.
    pub name: &'static str,
    pub summary: &'static str,
    /// The `ops` of a propose_edit against the worked example `math::fib`
    /// (as the reference shows it): this op last, after any op it needs.
    pub example: &'static str,
}

/// Every edit op, in the reference's order.
pub const EDIT_OPS: [EditOpDoc; 10] = [
    EditOpDoc {
        name: "add_node",
        summary: "Adds a node: `op` as in the text form, `inputs` as node references. `as: \"$x\"` names the new node so later ops of the same request can use it as `\"$x\"`.",
        example: r#"[{"add_node": {"function": "math::fib", "op": "mul", "inputs": ["%8", "%3"], "as": "$product"}}]"#,
    },
    EditOpDoc {
        name: "remove_node",
        summary: "Removes a node that no other node uses. Here after making `%2` compare `n <= 1`, which leaves `%1` (`const 2`) unused.",
        example: r#"[{"set_op": {"function": "math::fib", "node": "%2", "op": "le"}}, {"set_inputs": {"function": "math::fib", "node": "%2", "inputs": ["%0", "%3"]}}, {"remove_node": {"function": "math::fib", "node": "%1"}}]"#,
    },
    EditOpDoc {
        name: "set_inputs",
        summary: "Replaces a node's inputs (all of them, in order). Here the base case returns 1 instead of `n`.",
        example: r#"[{"set_inputs": {"function": "math::fib", "node": "%9", "inputs": ["%2", "%3", "%8"]}}]"#,
    },
    EditOpDoc {
        name: "set_op",
        summary: "Replaces a node's op; its inputs stay. Here the base case becomes `n < 3`.",
        example: r#"[{"set_op": {"function": "math::fib", "node": "%1", "op": "const 3"}}]"#,
    },
    EditOpDoc {
        name: "set_signature",
        summary: "Replaces the parameters and the return type. Callers are verified against the new signature in the same commit.",
        example: r#"[{"set_signature": {"function": "math::fib", "params": [{"name": "k", "type": "i64"}], "returns": "i64"}}]"#,
    },
    EditOpDoc {
        name: "set_doc",
        summary: "Sets the doc string, or clears it with `null`.",
        example: r#"[{"set_doc": {"function": "math::fib", "doc": "Fibonacci numbers, slowly."}}]"#,
    },
    EditOpDoc {
        name: "replace_body",
        summary: "Replaces every node: `text` (node lines, or the whole function with the same header) or `nodes` (`[{\"id\": 0, \"op\": \"param 0\", \"inputs\": []}, ...]`). Ids already in the function keep their identity.",
        example: r#"[{"replace_body": {"function": "math::fib", "text": "%0 = param n\n%1 = return %0"}}]"#,
    },
    EditOpDoc {
        name: "create_function",
        summary: "Creates a function from `text` (a whole function), or from `name`, `params`, `returns` and optional `doc` and `body` (node lines).",
        example: r#"[{"create_function": {"text": "fn math::double(x: i64) -> i64 {\n  %0 = param x\n  %1 = const 2\n  %2 = mul %0, %1\n  %3 = return %2\n}"}}]"#,
    },
    EditOpDoc {
        name: "delete_function",
        summary: "Deletes a function; refused while another function calls it.",
        example: r#"[{"delete_function": {"function": "math::fib"}}]"#,
    },
    EditOpDoc {
        name: "rename_function",
        summary: "Renames or moves a function; its id stays, and callers keep calling it.",
        example: r#"[{"rename_function": {"function": "math::fib", "new_name": "math::fibonacci"}}]"#,
    },
];

/// The reference's entry for `op`. No wildcard: an edit op added to
/// [`EditOpArg`] does not compile until it is documented here.
pub fn documented(op: &EditOpArg) -> &'static EditOpDoc {
    let idx = match op {
        EditOpArg::AddNode { .. } => 0,
        EditOpArg::RemoveNode { .. } => 1,
        EditOpArg::SetInputs { .. } => 2,
        EditOpArg::SetOp { .. } => 3,
        EditOpArg::SetSignature { .. } => 4,
        EditOpArg::SetDoc { .. } => 5,
        EditOpArg::ReplaceBody { .. } => 6,
        EditOpArg::CreateFunction { .. } => 7,
        EditOpArg::DeleteFunction { .. } => 8,
        EditOpArg::RenameFunction { .. } => 9,
    };
    &EDIT_OPS[idx]
}

/// The name of every edit op, in the reference's order.
pub fn edit_op_names() -> impl Iterator<Item = &'static str> {
    EDIT_OPS.iter().map(|d| d.name)
}

/// How to edit, and every edit op with its example, as markdown.
fn editing_markdown() -> String {
    let mut out = String::from(
        "## Editing\n\n\
`propose_edit {\"ops\": [...], \"base\"?, \"on_conflict\"?, \"dry_run\"?}` applies \
its ops in order, all or nothing, possibly across functions. Each op is an \
object with one key, the op's name. Functions are named by `\"module::name\"` \
or by id (`7`, `\"#7\"`); nodes by `\"%3\"` (or `3`) or by an `as` alias \
(`\"$x\"`) given earlier in the same request. Every function you touch is \
checked against your base: the version you last read with `get_function`, \
or the hash given in `base` (`{\"math::fib\": \"<hash>\"}`). If someone \
committed in between, the edit is merged when the changes do not overlap \
(`on_conflict: \"merge\"`, the default), and otherwise refused with \
`conflict`, carrying the diff and the current text to rewrite against. \
`dry_run: true` checks without committing. The examples below are the \
`ops` of a propose_edit against the worked example above.\n\n",
    );
    for doc in &EDIT_OPS {
        let ops: serde_json::Value =
            serde_json::from_str(doc.example).expect("examples are JSON (unit-tested)");
        let args = serde_json::json!({ "ops": ops });
        out.push_str(&format!(
            "### `{}`\n\n{}\n\n```json\n{}\n```\n\n",
            doc.name,
            doc.summary,
            serde_json::to_string_pretty(&args).expect("a JSON value prints")
        ));
    }
    out
}

/// The whole reference, made once.
pub fn language_reference() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "# The cograph language\n\n{}\n{}",
            language_markdown(),
            editing_markdown()
        )
    });
    &TEXT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::op::op_names;

    fn decode(doc: &EditOpDoc) -> Vec<EditOpArg> {
        serde_json::from_str(doc.example)
            .unwrap_or_else(|e| panic!("the {} example does not decode: {e}", doc.name))
    }

    #[test]
    fn every_example_decodes_to_its_own_op_and_converts() {
        for doc in &EDIT_OPS {
            let ops = decode(doc);
            let last = ops.last().expect("an example has an op");
            assert_eq!(documented(last).name, doc.name);
            for (idx, op) in ops.iter().enumerate() {
                let core = super::super::convert::edit_op(idx, op)
                    .unwrap_or_else(|e| panic!("{}: {:?}", doc.name, e.code()));
                assert_eq!(core.kind(), documented(op).name);
            }
        }
    }

    #[test]
    fn the_names_are_the_wire_names() {
        // The schema lists every variant of the wire enum by its key.
        let schema = serde_json::to_value(schemars::schema_for!(EditOpArg)).unwrap();
        let mut keys: Vec<String> = schema["oneOf"]
            .as_array()
            .expect("one schema per edit op")
            .iter()
            .map(|v| v["required"][0].as_str().unwrap().to_string())
            .collect();
        keys.sort();
        let mut names: Vec<&str> = edit_op_names().collect();
        names.sort();
        assert_eq!(keys, names);
    }

    #[test]
    fn the_reference_names_every_op_and_edit_op() {
        let text = language_reference();
        for name in op_names() {
            assert!(text.contains(&format!("`{name}`")), "op {name}");
        }
        for name in edit_op_names() {
            assert!(text.contains(&format!("### `{name}`")), "edit op {name}");
        }
    }
}
