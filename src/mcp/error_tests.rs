//! One named case per `ServiceError` variant (and per `AcquireError`
//! variant inside `ServiceError::Lock`): the code an agent sees, words
//! its message and hint must carry, and the detail fields beside
//! `error`. JSON-RPC cases name the JSON-RPC error code instead.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rmcp::model::ErrorCode as RpcCode;

use super::*;
use crate::eval::RuntimeError;
use crate::graph::{
    ContentHash, EditError, EditErrorKind, FunctionDiff, FunctionId, FunctionRef, QualifiedName,
};
use crate::locks::{
    AgentId, Blocked, Claim, Cycle, FencingToken, HolderView, InvalidRequest, Resource, WaiterView,
};
use crate::service::{FunctionConflict, HubConfig, LockedFunction};
use crate::verify::{DiagCode, Diagnostic};

enum Expect {
    Tool {
        code: ErrorCode,
        message: &'static str,
        hint: &'static str,
        details: &'static [&'static str],
    },
    Rpc(RpcCode, &'static str),
}

fn hub() -> (tempfile::TempDir, Arc<Hub>) {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(HubConfig::new(dir.path())).unwrap();
    (dir, hub)
}

fn name() -> QualifiedName {
    QualifiedName::new("demo::f").unwrap()
}

fn holder() -> HolderView {
    HolderView {
        agent: AgentId(7),
        resource: Resource::Function(FunctionId(1)),
        claim: Claim::Write,
        below: false,
        purpose: Some("refactor".into()),
        since: SystemTime::UNIX_EPOCH,
        expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(60),
        token: FencingToken(3),
    }
}

fn denial() -> Denial {
    Denial {
        blocked: vec![Blocked {
            resource: Resource::Function(FunctionId(1)),
            holders: vec![holder()],
            waiting_ahead: vec![WaiterView {
                agent: AgentId(8),
                resource: Resource::Function(FunctionId(1)),
                claim: Claim::Read,
                position: 1,
                since: SystemTime::UNIX_EPOCH,
                purpose: None,
            }],
            queue_position: 2,
            queue_length: 2,
            semaphore: None,
        }],
    }
}

fn a_conflict() -> FunctionConflict {
    FunctionConflict {
        function: FunctionId(1),
        name: name(),
        base: ContentHash([1; 32]),
        current: Some(ContentHash([2; 32])),
        commits: Vec::new(),
        diff: FunctionDiff::default(),
        current_function: None,
        current_revision: None,
        overlaps: Vec::new(),
    }
}

fn check(e: ServiceError, expect: Expect) {
    let (_dir, hub) = hub();
    let failure = from_service(e, &hub.snapshot(), &hub);
    match (failure, expect) {
        (
            ToolFailure::Actionable { info, details, .. },
            Expect::Tool {
                code,
                message,
                hint,
                details: fields,
            },
        ) => {
            assert_eq!(info.code, code);
            assert!(
                info.message.contains(message),
                "message {:?} lacks {message:?}",
                info.message
            );
            assert!(
                info.hint.contains(hint),
                "hint {:?} lacks {hint:?}",
                info.hint
            );
            let mut keys: Vec<&str> = details.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, fields, "detail fields");
            for key in keys {
                assert!(
                    code.details().contains(&key),
                    "`{key}` is sent with {code} but ErrorCode::details does not declare it"
                );
            }
        }
        (ToolFailure::Rpc(e), Expect::Rpc(code, message)) => {
            assert_eq!(e.code, code);
            assert!(
                e.message.contains(message),
                "{:?} lacks {message:?}",
                e.message
            );
        }
        (ToolFailure::Actionable { info, .. }, Expect::Rpc(..)) => {
            panic!("expected a JSON-RPC error, got tool error {:?}", info.code)
        }
        (ToolFailure::Rpc(e), Expect::Tool { code, .. }) => {
            panic!("expected tool error {code:?}, got JSON-RPC error {e:?}")
        }
    }
}

macro_rules! cases {
    ($($test:ident: $error:expr => $expect:expr;)*) => {$(
        #[tokio::test]
        async fn $test() {
            check($error, $expect);
        }
    )*};
}

use Expect::{Rpc, Tool};

cases! {
    not_found: ServiceError::NotFound { what: "no function `demo::g`".into() } => Tool {
        code: ErrorCode::NotFound, message: "demo::g", hint: "program_overview", details: &[],
    };
    unknown_function: ServiceError::UnknownFunction {
        what: "no function `demo::g`".into(),
        suggestions: vec![name()],
    } => Tool {
        code: ErrorCode::NotFound, message: "did you mean `demo::f`?", hint: "program_overview",
        details: &[],
    };
    lock_denied_by_holders: ServiceError::LockDenied {
        locked: vec![LockedFunction { name: name(), blocked: denial().blocked.remove(0) }],
    } => Tool {
        code: ErrorCode::LockDenied, message: "`demo::f` is locked", hint: "wait_ms", details: &["blocked"],
    };
    lock_denied_on_acquire: ServiceError::Lock(AcquireError::Denied(denial())) => Tool {
        code: ErrorCode::LockDenied, message: "nothing was granted", hint: "wait_ms", details: &["blocked"],
    };
    lock_timeout: ServiceError::Lock(AcquireError::Timeout(denial())) => Tool {
        code: ErrorCode::LockTimeout, message: "wait_ms ran out", hint: "longer wait_ms", details: &["blocked"],
    };
    deadlock: ServiceError::Lock(AcquireError::Deadlock {
        cycle: Cycle {
            agents: vec![AgentId(7), AgentId(8), AgentId(7)],
            resources: vec![Resource::Function(FunctionId(1)), Resource::Function(FunctionId(2))],
        },
        denial: denial(),
    }) => Tool {
        code: ErrorCode::Deadlock, message: "would deadlock", hint: "release_locks", details: &["blocked", "cycle"],
    };
    cancelled: ServiceError::Lock(AcquireError::Cancelled) => Tool {
        code: ErrorCode::Cancelled, message: "cancelled", hint: "acquire_locks again", details: &[],
    };
    agent_ended: ServiceError::Lock(AcquireError::AgentEnded) => Tool {
        code: ErrorCode::Cancelled, message: "session ended", hint: "reconnect", details: &[],
    };
    invalid_lock_request: ServiceError::Lock(AcquireError::Invalid(InvalidRequest::ZeroTtl)) =>
        Rpc(RpcCode::INVALID_PARAMS, "`locks`: a lease needs a ttl above zero");
    lock_expired: ServiceError::LockExpired {
        function: FunctionId(1),
        name: name(),
        token: FencingToken(9),
        expired_at: Some(SystemTime::UNIX_EPOCH),
    } => Tool {
        code: ErrorCode::LockExpired, message: "fencing token 9", hint: "acquire the lock again",
        details: &["expired_at", "fencing_token", "function"],
    };
    conflict: ServiceError::Conflict { conflicts: vec![a_conflict()] } => Tool {
        code: ErrorCode::Conflict, message: "`demo::f` is", hint: "counts as your read", details: &["conflicts"],
    };
    too_many_conflicts: ServiceError::TooManyConflicts { n_conflicts: 5, conflict: Box::new(a_conflict()) } => Tool {
        code: ErrorCode::TooManyConflicts, message: "5 conflicts in a row", hint: "write lock",
        details: &["conflicts", "n_conflicts"],
    };
    read_required: ServiceError::ReadRequired { functions: vec![(FunctionId(1), name())] } => Tool {
        code: ErrorCode::ReadRequired, message: "`demo::f`", hint: "get_function", details: &["functions"],
    };
    verification_failed: ServiceError::VerificationFailed {
        diagnostics: vec![Diagnostic {
            function: FunctionId(1),
            function_name: name(),
            node: None,
            code: DiagCode::MissingReturn,
            message: "no return".into(),
            hint: "add one".into(),
        }],
    } => Tool {
        code: ErrorCode::VerificationFailed, message: "1 diagnostics", hint: "dry_run", details: &["diagnostics"],
    };
    invalid_edit: ServiceError::InvalidEdit(EditError {
        index: 2,
        kind: "set_op",
        reason: EditErrorKind::UnknownFunction(FunctionRef::Id(FunctionId(9))),
    }) => Tool {
        code: ErrorCode::InvalidEdit, message: "#9", hint: "fix op 2 (set_op)", details: &["op", "op_index"],
    };
    invalid_request: ServiceError::InvalidRequest("`base`: bad".into()) =>
        Rpc(RpcCode::INVALID_PARAMS, "`base`: bad");
    runtime_error: ServiceError::Runtime(RuntimeError::BadArgument("two args".into())) => Tool {
        code: ErrorCode::RuntimeError, message: "two args", hint: "one argument per parameter",
        details: &["runtime_code"],
    };
    unavailable: ServiceError::Unavailable("store poisoned".into()) =>
        Rpc(RpcCode::INTERNAL_ERROR, "the server is stopping: store poisoned");
    internal: ServiceError::Internal("boom".into()) => Rpc(RpcCode::INTERNAL_ERROR, "boom");
}

#[test]
fn error_codes_spell_as_serde_does() {
    for code in ErrorCode::ALL {
        assert_eq!(
            serde_json::to_value(code).unwrap(),
            serde_json::Value::String(code.as_str().into())
        );
    }
}
