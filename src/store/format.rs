//! The stored forms of the two things the store keeps that are not plain
//! columns: a commit's edit ops (`commits.ops`, serde JSON of
//! `Vec<EditOp>`) and a function version (`versions.body`, the canonical
//! encoding of `graph::encoding`, keyed by its blake3 hash).
//!
//! Both are durable formats: a store written by one version of cograph must
//! read in every later one. The JSON of every edit-op shape is pinned by
//! the golden files in `tests/golden/edit_ops/` (`tests/store_formats.rs`),
//! the canonical encoding by the golden hashes in `tests/graph_props.rs`.
//! Changing either means a new schema version with a migration (see
//! `schema.rs`), never a silent edit.
//!
//! This file does no IO.

use super::StoreError;
use crate::graph::{ContentHash, EditOp, Function, encode_function};

/// The text the store writes in `commits.ops` for a commit's ops: compact
/// JSON, one array, each op externally tagged (`{"set_op": {...}}`).
pub fn encode_ops(ops: &[EditOp]) -> Result<String, StoreError> {
    serde_json::to_string(ops).map_err(|e| StoreError::Corrupt(format!("ops do not encode: {e}")))
}

/// Reads back what [`encode_ops`] wrote.
pub fn decode_ops(text: &str) -> Result<Vec<EditOp>, serde_json::Error> {
    serde_json::from_str(text)
}

/// A version's row in `versions`: its content hash and canonical bytes.
pub(crate) fn version_row(f: &Function) -> (ContentHash, Vec<u8>) {
    let body = encode_function(f);
    (ContentHash(*blake3::hash(&body).as_bytes()), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{FunctionId, FunctionRef, QualifiedName, Signature, Type, function_hash};

    #[test]
    fn ops_round_trip_through_their_stored_text() {
        let ops = vec![
            EditOp::DeleteFunction {
                function: FunctionRef::Id(FunctionId(3)),
            },
            EditOp::RenameFunction {
                function: FunctionRef::Name(QualifiedName::new("a::b").unwrap()),
                new_name: QualifiedName::new("a::c").unwrap(),
            },
        ];
        let text = encode_ops(&ops).unwrap();
        assert_eq!(
            text,
            r#"[{"delete_function":{"function":3}},{"rename_function":{"function":"a::b","new_name":"a::c"}}]"#
        );
        assert_eq!(decode_ops(&text).unwrap(), ops);
    }

    #[test]
    fn an_empty_op_list_is_an_empty_array() {
        assert_eq!(encode_ops(&[]).unwrap(), "[]");
        assert!(decode_ops("[]").unwrap().is_empty());
    }

    #[test]
    fn ops_that_are_not_a_list_do_not_decode() {
        assert!(decode_ops(r#"{"delete_function":{"function":3}}"#).is_err());
        assert!(decode_ops(r#"[{"no_such_op":{}}]"#).is_err());
    }

    #[test]
    fn a_version_row_is_keyed_by_the_function_hash() {
        let f = Function::new(
            QualifiedName::new("m::f").unwrap(),
            Signature {
                params: vec![],
                returns: Type::Unit,
            },
        );
        let (hash, body) = version_row(&f);
        assert_eq!(hash, function_hash(&f));
        assert_eq!(body, encode_function(&f));
    }
}
