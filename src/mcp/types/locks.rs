//! Arguments and results of acquire_locks, release_locks and lock_status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;

// ---------------------------------------------------------------------------
// acquire_locks / release_locks / lock_status

// One lock target, only in its documented object form
// `{"function": ..., "mode": ...}`: serde would also take the tuple
// `[function, mode]`, which no schema shows. (A comment, not a doc: docs
// become schema descriptions, which every connection pays for.)
#[derive(Debug, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockArg {
    pub function: FunctionArg,
    /// `read` (shared) or `write` (exclusive).
    pub mode: Mode,
}

impl<'de> Deserialize<'de> for LockArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            function: FunctionArg,
            mode: Mode,
        }
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = LockArg;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a lock target as an object {"function": "module::name" or id, "mode": "read" or "write"}"#)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LockArg, A::Error> {
                let Fields { function, mode } =
                    Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(LockArg { function, mode })
            }
        }
        d.deserialize_map(ObjectOnly)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireLocksArgs {
    /// All granted together or none.
    pub locks: Vec<LockArg>,
    /// Queue up to this long (ms; default 0, at most 600000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// Lease in ms (default 30 min).
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// Shown to agents your locks block.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Unique id: a resend returns the first outcome.
    #[serde(default)]
    pub request_id: Option<String>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GrantedView {
    pub function: String,
    pub mode: Mode,
    pub fencing_token: u64,
    pub expires_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AcquireLocksResult {
    pub granted: Vec<GrantedView>,
    pub fencing_token: u64,
    pub waited_ms: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLocksArgs {
    /// Functions to release; omit to release all your locks.
    #[serde(default)]
    pub functions: Option<Vec<FunctionArg>>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleasedView {
    pub function: String,
    pub mode: Mode,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleaseLocksResult {
    pub released: Vec<ReleasedView>,
    /// What you still hold.
    pub still_held: Vec<GrantedView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockStatusArgs {
    /// Only this function; omit for every locked function.
    #[serde(default)]
    pub function: Option<FunctionArg>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LockView {
    pub function: String,
    pub holders: Vec<HolderView>,
    pub waiters: Vec<WaiterView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LockStatusResult {
    pub locks: Vec<LockView>,
    /// The locks the caller holds (empty without an identity).
    pub yours: Vec<GrantedView>,
}
