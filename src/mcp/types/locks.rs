//! Arguments and results of acquire_locks, release_locks and lock_status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;

// ---------------------------------------------------------------------------
// acquire_locks / release_locks / lock_status

// One lock target, only in its documented object form: exactly one of
// `function`, `module`, `path`, `named`, `semaphore`, with `mode` (not for
// a semaphore) or `permits` and `capacity` (a semaphore only). serde would
// also take a tuple, which no schema shows. (Comments, not docs: docs
// become schema descriptions, which every connection pays for.)
#[derive(Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockArg {
    #[serde(default)]
    pub function: Option<FunctionArg>,
    #[serde(default)]
    pub module: Option<String>,
    /// Relative; `dir/` covers all below it.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub named: Option<String>,
    #[serde(default)]
    pub semaphore: Option<String>,
    /// `read` (shared) or `write` (exclusive, the default).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Semaphore permits (default 1); its `capacity` is set by first use.
    #[serde(default)]
    pub permits: Option<u32>,
    #[serde(default)]
    pub capacity: Option<u32>,
}

impl<'de> Deserialize<'de> for LockArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            #[serde(default)]
            function: Option<FunctionArg>,
            #[serde(default)]
            module: Option<String>,
            #[serde(default)]
            path: Option<String>,
            #[serde(default)]
            named: Option<String>,
            #[serde(default)]
            semaphore: Option<String>,
            #[serde(default)]
            mode: Option<Mode>,
            #[serde(default)]
            permits: Option<u32>,
            #[serde(default)]
            capacity: Option<u32>,
        }
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = LockArg;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a lock target as an object, e.g. {"function": "module::name", "mode": "write"}, {"path": "src/net/"} or {"semaphore": "gpu", "permits": 1, "capacity": 4}"#)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<LockArg, A::Error> {
                let f = Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(LockArg {
                    function: f.function,
                    module: f.module,
                    path: f.path,
                    named: f.named,
                    semaphore: f.semaphore,
                    mode: f.mode,
                    permits: f.permits,
                    capacity: f.capacity,
                })
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

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct GrantedView {
    /// `math::fib`, `module:math`, `path:src/net/`, `named:deploy`,
    /// `semaphore:gpu`.
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permits: Option<u32>,
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
    /// Functions to release; omit both to release all your locks.
    #[serde(default)]
    pub functions: Option<Vec<FunctionArg>>,
    /// Other resources: `module:math`, `path:src/`, `semaphore:gpu`.
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReleasedView {
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permits: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReleaseLocksResult {
    pub released: Vec<ReleasedView>,
    /// How many locks you still hold (lock_status lists them).
    pub n_still_held: usize,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockStatusArgs {
    /// Only this function's lock.
    #[serde(default)]
    pub function: Option<FunctionArg>,
    #[serde(default)]
    pub kind: Option<KindArg>,
    /// Only names starting so (`src/`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Is this fencing token live: for what, until when.
    #[serde(default)]
    pub token: Option<u64>,
    // Explained by register_agent and the server's instructions, not
    // repeated in every tool's schema.
    #[serde(default)]
    pub session: SessionArg,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct LockView {
    pub resource: String,
    pub holders: Vec<HolderView>,
    pub waiters: Vec<WaiterView>,
    /// A semaphore's capacity and the permits held of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_use: Option<u32>,
}

/// Whether a fencing token is live (`lock_status` with `token`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub token: u64,
    pub live: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// `alice (ag_…)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LockStatusResult {
    pub locks: Vec<LockView>,
    /// The locks the caller holds (empty without an identity).
    pub yours: Vec<GrantedView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenView>,
}
