//! The canonical byte encoding of a function, its content hash, and the
//! program root hash.
//!
//! The encoding is versioned and fixed: the same function gives the same
//! bytes on every machine and in every run, so the blake3 of those bytes is
//! the function's identity of content. The store keeps function versions as
//! these bytes and checks their hash when it loads them, so decoding is here
//! too. Golden vectors in the tests pin the format; changing it means a new
//! version tag, never an edit of this one.
//!
//! Layout (integers little-endian; `str` is a u32 byte length then UTF-8):
//!
//! ```text
//! "cograph/function/v1"
//! str name
//! u8 has_doc, [str doc]
//! u32 n_params, n_params × (str name, u8 type)
//! u8 return type
//! u32 next_node
//! u32 n_nodes, n_nodes × (u32 id, u8 opcode, payload, u32 n_inputs, n_inputs × u32)
//!   payload: const → u8 type, u64 bits; param → u32 index; call → u64 id; else nothing
//! ```

use std::collections::BTreeMap;

use super::function::{Function, Node, Param, QualifiedName, Signature};
use super::ids::{ContentHash, FunctionId, NodeId};
use super::op::Op;
use super::types::{Type, Value};

const FUNCTION_TAG: &[u8] = b"cograph/function/v1";
const ROOT_TAG: &[u8] = b"cograph/root/v1";

/// The canonical bytes of `f`.
pub fn encode_function(f: &Function) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + f.nodes.len() * 16);
    out.extend_from_slice(FUNCTION_TAG);
    put_str(&mut out, f.name.as_str());
    match &f.doc {
        None => out.push(0),
        Some(doc) => {
            out.push(1);
            put_str(&mut out, doc);
        }
    }
    put_u32(&mut out, f.signature.params.len() as u32);
    for p in &f.signature.params {
        put_str(&mut out, &p.name);
        out.push(p.ty.tag());
    }
    out.push(f.signature.returns.tag());
    put_u32(&mut out, f.next_node);
    put_u32(&mut out, f.nodes.len() as u32);
    for (id, node) in &f.nodes {
        put_u32(&mut out, id.0);
        out.push(node.op.opcode());
        match node.op {
            Op::Const(v) => {
                out.push(v.ty().tag());
                out.extend_from_slice(&v.payload_bits().to_le_bytes());
            }
            Op::Param(idx) => put_u32(&mut out, idx),
            Op::Call(callee) => out.extend_from_slice(&callee.0.to_le_bytes()),
            _ => {}
        }
        put_u32(&mut out, node.inputs.len() as u32);
        for input in &node.inputs {
            put_u32(&mut out, input.0);
        }
    }
    out
}

/// The content hash of `f`: blake3 of its canonical bytes.
pub fn function_hash(f: &Function) -> ContentHash {
    ContentHash(*blake3::hash(&encode_function(f)).as_bytes())
}

/// The program root hash: blake3 over the (function id, content hash) pairs
/// in id order.
pub fn root_hash<'a>(
    functions: impl Iterator<Item = (FunctionId, &'a ContentHash)>,
) -> ContentHash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(ROOT_TAG);
    for (id, hash) in functions {
        hasher.update(&id.0.to_le_bytes());
        hasher.update(&hash.0);
    }
    ContentHash(*hasher.finalize().as_bytes())
}

/// Why bytes are not a function's canonical encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt function encoding at byte {offset}: {what}")]
pub struct DecodeError {
    pub offset: usize,
    pub what: String,
}

/// Decodes canonical bytes. Anything that `encode_function` would not have
/// written (trailing bytes, unknown tags, nodes out of order) is refused.
pub fn decode_function(bytes: &[u8]) -> Result<Function, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(FUNCTION_TAG.len())? != FUNCTION_TAG {
        return Err(r.error("unknown format tag"));
    }
    let name = r.str()?;
    let name = QualifiedName::new(&name).map_err(|e| r.error(&e))?;
    let doc = match r.u8()? {
        0 => None,
        1 => Some(r.str()?),
        _ => return Err(r.error("bad doc flag")),
    };
    let n_params = r.u32()? as usize;
    let mut params = Vec::with_capacity(n_params.min(1024));
    for _ in 0..n_params {
        let name = r.str()?;
        let ty = r.ty()?;
        params.push(Param { name, ty });
    }
    let returns = r.ty()?;
    let next_node = r.u32()?;
    let n_nodes = r.u32()? as usize;
    let mut nodes = BTreeMap::new();
    let mut last: Option<u32> = None;
    for _ in 0..n_nodes {
        let id = r.u32()?;
        if last.is_some_and(|l| l >= id) {
            return Err(r.error("node ids out of order"));
        }
        last = Some(id);
        let opcode = r.u8()?;
        let op = match opcode {
            1 => {
                let ty = r.ty()?;
                let bits = r.u64()?;
                Op::Const(match ty {
                    Type::I64 => Value::I64(bits as i64),
                    Type::F64 => Value::F64(f64::from_bits(bits)),
                    Type::Bool if bits <= 1 => Value::Bool(bits == 1),
                    Type::Unit if bits == 0 => Value::Unit,
                    _ => return Err(r.error("bad constant payload")),
                })
            }
            2 => Op::Param(r.u32()?),
            22 => Op::Call(FunctionId(r.u64()?)),
            code => Op::simple_from_opcode(code).ok_or_else(|| r.error("unknown opcode"))?,
        };
        let n_inputs = r.u32()? as usize;
        let mut inputs = Vec::with_capacity(n_inputs.min(1024));
        for _ in 0..n_inputs {
            inputs.push(NodeId(r.u32()?));
        }
        nodes.insert(NodeId(id), Node { op, inputs });
    }
    if r.pos != bytes.len() {
        return Err(r.error("trailing bytes"));
    }
    Ok(Function {
        name,
        doc,
        signature: Signature { params, returns },
        nodes,
        next_node,
    })
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what: what.to_string(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.error("unexpected end"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.error("invalid utf-8"))
    }

    fn ty(&mut self) -> Result<Type, DecodeError> {
        let tag = self.u8()?;
        Type::from_tag(tag).ok_or_else(|| self.error("unknown type tag"))
    }
}
