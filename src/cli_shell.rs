//! The command line for agents that live in shell scripts: `cograph agent
//! start|end`, `lock`, `unlock` and `locks`, over the running hub's admin
//! socket. An agent is a stateless agent of the hub, named by the secret
//! handle `agent start` prints (`--agent HANDLE`, or `COGRAPH_AGENT`).
//!
//! This file carries requests and prints answers (worded by
//! `mcp::admin::text`); the hub decides everything. What it adds is the
//! exit code a script branches on (`EXIT_CODES`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use cograph::mcp::admin::{self, AdminLock, AdminReply, AdminRequest, Refusal, text};
use cograph::service::time::parse_duration;

use super::DEFAULT_DATA;

/// The exit codes of the shell commands, as `--help` states them.
pub const EXIT_CODES: &str = "Exit codes (for scripts):
  0  granted, or done
  1  denied: held by others (and no --wait); the holders are on stderr
  2  bad input (a resource name, a flag)
  3  the --wait ran out; you left the queue
  4  refused: waiting would deadlock; nothing was queued
  5  no hub is running for the data directory
  6  the agent handle is unknown or expired
  7  any other error";

/// The environment variable naming a shell agent by its handle.
pub const AGENT_ENV: &str = "COGRAPH_AGENT";

const GRANTED: u8 = 0;
const DENIED: u8 = 1;
const BAD_INPUT: u8 = 2;
const TIMED_OUT: u8 = 3;
const DEADLOCK: u8 = 4;
pub const NO_HUB: u8 = 5;
const UNKNOWN_AGENT: u8 = 6;
pub const OTHER: u8 = 7;

/// The exit code for a refusal (`None`: done).
pub fn exit_code(refusal: Option<Refusal>) -> u8 {
    match refusal {
        None => GRANTED,
        Some(Refusal::Denied) => DENIED,
        Some(Refusal::Invalid) => BAD_INPUT,
        Some(Refusal::Timeout) => TIMED_OUT,
        Some(Refusal::Deadlock) => DEADLOCK,
        Some(Refusal::UnknownAgent) => UNKNOWN_AGENT,
        Some(Refusal::Failed) => OTHER,
    }
}

#[derive(Subcommand)]
pub enum ShellCommand {
    /// Start or end an agent for a shell script.
    #[command(subcommand, after_help = EXIT_CODES)]
    Agent(AgentCommand),
    /// Lock resources for a shell agent, all or none; prints `TOKEN
    /// RESOURCE` lines.
    ///
    /// One line `TOKEN RESOURCE` per resource, all with the grant's one
    /// fencing token (`out=$(cograph lock path:src/ --wait 5m); code=$?;
    /// token=${out%% *}`). A denial prints the holders and your place in
    /// the queue on stderr. Killing a waiting `cograph lock` takes its
    /// request out of the queue; it is never granted.
    #[command(after_help = EXIT_CODES)]
    Lock(LockArgs),
    /// Release the named locks of a shell agent, or all it holds.
    #[command(after_help = EXIT_CODES)]
    Unlock(UnlockArgs),
    /// The lock table: resource, holders with mode or permits, expiry,
    /// waiters in order, purpose.
    #[command(after_help = EXIT_CODES)]
    Locks(LocksArgs),
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Start an agent and print its secret handle, one line:
    /// `export COGRAPH_AGENT=$(cograph agent start ci-bot)`. It ends after
    /// the hub's --agent-idle without a command, or with `cograph agent
    /// end`; its locks go with it.
    Start {
        /// The name others see in lock holders.
        name: String,
        /// What it is for; shown beside its locks.
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// End the agent: its locks and queue places go at once.
    End {
        #[command(flatten)]
        agent: AgentFlag,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
}

/// The agent a command acts for.
#[derive(Args)]
pub struct AgentFlag {
    /// The agent's handle (from `cograph agent start`); default: the
    /// environment variable COGRAPH_AGENT.
    #[arg(long = "agent", value_name = "HANDLE")]
    handle: Option<String>,
}

#[derive(Args)]
pub struct LockArgs {
    /// What to lock: `path:src/net/` (a directory covers everything below
    /// it), `path:src/main.rs`, `module:math`, `named:deploy:staging`,
    /// `semaphore:gpu`, or a function as `math::fib` or `#7`.
    #[arg(required = true, value_name = "RESOURCE")]
    resources: Vec<String>,
    /// Shared (read) locks instead of exclusive (write) ones.
    #[arg(long)]
    read: bool,
    /// Queue for up to this long (`30s`, `5m`; at most 10m) instead of
    /// being denied at once.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    wait: Option<Duration>,
    /// The lease: the locks lapse after this long (`30m`, `1h`; default
    /// 30m, at most 24h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    ttl: Option<Duration>,
    /// Why, shown to agents your locks block.
    #[arg(long)]
    purpose: Option<String>,
    /// Permits of each semaphore named (default 1).
    #[arg(long, value_name = "K")]
    permits: Option<u32>,
    /// The capacity of each semaphore named: fixes it on first use, must
    /// agree after.
    #[arg(long, value_name = "N")]
    capacity: Option<u32>,
    #[command(flatten)]
    agent: AgentFlag,
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
}

#[derive(Args)]
pub struct UnlockArgs {
    /// What to release, named as for `cograph lock`; none: everything.
    #[arg(value_name = "RESOURCE")]
    resources: Vec<String>,
    #[command(flatten)]
    agent: AgentFlag,
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
}

#[derive(Args)]
pub struct LocksArgs {
    /// Only resources of this kind.
    #[arg(long, value_enum)]
    kind: Option<KindFlag>,
    /// Only names starting so (`src/`, `path:src/`, `math::`).
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindFlag {
    Function,
    Module,
    Path,
    Named,
    Semaphore,
}

impl KindFlag {
    fn as_str(self) -> &'static str {
        match self {
            KindFlag::Function => "function",
            KindFlag::Module => "module",
            KindFlag::Path => "path",
            KindFlag::Named => "named",
            KindFlag::Semaphore => "semaphore",
        }
    }
}

impl AgentFlag {
    /// The handle from `--agent` or the environment, or the exit a command
    /// without one takes.
    fn handle(&self) -> Result<String, ExitCode> {
        match self.handle.clone().or_else(agent_from_env) {
            Some(h) => Ok(h),
            None => {
                eprintln!(
                    "error: no agent: pass --agent HANDLE or set {AGENT_ENV} (export {AGENT_ENV}=$(cograph agent start NAME))"
                );
                Err(ExitCode::from(BAD_INPUT))
            }
        }
    }
}

/// The handle in `COGRAPH_AGENT`, if it is set and not empty.
pub fn agent_from_env() -> Option<String> {
    std::env::var(AGENT_ENV)
        .ok()
        .filter(|h| !h.trim().is_empty())
}

/// Runs a shell command and returns its exit code.
pub fn run(command: ShellCommand) -> ExitCode {
    let (data, request) = match request(command) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let shown = match ask(&data, &request) {
        Ok(reply) => text::show(&reply),
        Err(code) => return code,
    };
    print!("{}", shown.stdout);
    eprint!("{}", shown.stderr);
    ExitCode::from(exit_code(shown.refusal))
}

/// The data directory and the request a command sends.
fn request(command: ShellCommand) -> Result<(PathBuf, AdminRequest), ExitCode> {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(match command {
        ShellCommand::Agent(AgentCommand::Start {
            name,
            purpose,
            data,
        }) => (data, AdminRequest::AgentStart { name, purpose }),
        ShellCommand::Agent(AgentCommand::End { agent, data }) => (
            data,
            AdminRequest::AgentEnd {
                agent: agent.handle()?,
            },
        ),
        ShellCommand::Lock(a) => {
            let lock = AdminLock {
                agent: a.agent.handle()?,
                resources: a.resources,
                read: a.read,
                wait_ms: a.wait.map_or(0, millis),
                ttl_ms: a.ttl.map(millis),
                purpose: a.purpose,
                permits: a.permits,
                capacity: a.capacity,
            };
            (a.data, AdminRequest::Lock(lock))
        }
        ShellCommand::Unlock(a) => (
            a.data,
            AdminRequest::Unlock {
                agent: a.agent.handle()?,
                resources: a.resources,
            },
        ),
        ShellCommand::Locks(a) => (
            a.data,
            AdminRequest::Locks {
                kind: a.kind.map(|k| k.as_str().to_string()),
                prefix: a.prefix,
            },
        ),
    })
}

/// Sends `request` to the hub of `data`, showing `waiting` reports on
/// stderr; the exit code when no hub runs or the exchange failed.
pub fn ask(data: &Path, request: &AdminRequest) -> Result<AdminReply, ExitCode> {
    let waiting = |lines: &[String]| eprint!("{}", text::waiting_text(lines));
    match admin::call(data, request, waiting) {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => {
            eprintln!(
                "error: no hub is running for {}; start one with `cograph serve --data {}`",
                data.display(),
                data.display()
            );
            Err(ExitCode::from(NO_HUB))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::from(OTHER))
        }
    }
}
