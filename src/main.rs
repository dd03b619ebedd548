//! The `cograph` command line: the server (`serve`, `stdio`), operator
//! tools (`status`, `log`, `agents`, `end-agent`, `break-lock`,
//! `set-capacity`, `verify`, `import`, `export`, `schemas`), the commands
//! for shell scripts (`agent`, `lock`, `unlock`, `locks`, in
//! `cli_shell.rs`) and the git guard (`guard`, in `cli_guard.rs`), and
//! program-file tools that need no server (`check`, `run`, `fmt`).
//! Logs go to stderr; stdout carries only results (and, for `stdio`, only
//! protocol messages).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use cograph::eval::Budget;
use cograph::graph::{program_to_json, render_program};
use cograph::mcp::admin::{self, AdminImport, AdminRequest};
use cograph::mcp::http::{self, HttpConfig, StatusReport};
use cograph::mcp::hub::{self, Connections, HubInfo};
use cograph::service::{Hub, HubConfig};
use cograph::store::StoreReader;

mod cli_guard;
mod cli_shell;
mod cli_watch;
mod program_files;

use program_files::{read_program, report_diagnostics, run_function};

const DEFAULT_DATA: &str = ".cograph";

#[derive(Parser)]
#[command(
    name = "cograph",
    version,
    about = "A shared program graph for many LLM agents, over MCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve over streamable HTTP (/mcp, /healthz) and the hub socket.
    Serve {
        /// Address to listen on; non-loopback addresses need --token-file.
        #[arg(long, default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
        /// Data directory (created if missing).
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// File holding the bearer token clients must send.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Extra Host names to accept when listening beyond loopback.
        #[arg(long)]
        allow_host: Vec<String>,
        /// Exit after this many seconds with no sessions (for hubs started
        /// by `cograph stdio`).
        #[arg(long)]
        idle_exit: Option<u64>,
        /// Close HTTP protocol sessions idle this many seconds (never while
        /// a call of theirs is waiting for a lock).
        #[arg(long, default_value_t = 1800)]
        session_idle: u64,
        /// Close a connection whose request head has not arrived within
        /// this many milliseconds (hidden: for tests).
        #[arg(long, default_value_t = 10_000, hide = true)]
        header_timeout_ms: u64,
        /// Refuse (408) a request whose body has not arrived within this
        /// many milliseconds (hidden: for tests).
        #[arg(long, default_value_t = 30_000, hide = true)]
        body_timeout_ms: u64,
        /// End stateless (register_agent) agents idle this long: 90s, 30m, 2h.
        #[arg(long, default_value = "30m", value_parser = cograph::service::time::parse_duration)]
        agent_idle: Duration,
        /// Most stateless agents alive at once; register_agent past it is refused.
        #[arg(long, default_value_t = cograph::service::DEFAULT_MAX_STATELESS)]
        max_agents: usize,
        /// Milliseconds a closed response stream may stay unresumed before
        /// its request is abandoned (for tests).
        #[arg(long, hide = true)]
        stream_grace_ms: Option<u64>,
    },
    /// Speak MCP on stdin/stdout as one agent of the shared hub for the
    /// data directory (started in the background if none runs).
    Stdio {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// Serve in this process instead of joining a hub (one agent).
        #[arg(long)]
        standalone: bool,
    },
    /// Show agents, locks and recent commits.
    Status {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Stay, redrawing live: agents, locks and queues, commits, events.
        #[arg(long)]
        watch: bool,
    },
    /// Show the commit log, newest first.
    Log {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Who is connected to the running hub: id, name, transport, since,
    /// last activity, locks held and waited for.
    Agents {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// End an agent of the running hub (by id or name): its locks and queue
    /// places go at once. Recorded in the log.
    EndAgent {
        /// The agent's id (`ag_…`) or its name, if only one has it.
        agent: String,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Break every lock on a resource of the running hub: its holders'
    /// tokens stop authorising, waiters are granted. Recorded in the log.
    BreakLock {
        /// The resource: a function as `module::name` or its id, anything
        /// else as `kind:name` (`path:src/net/`, `module:math`,
        /// `named:deploy:staging`, `semaphore:gpu`). Locks above or below
        /// it stay.
        resource: String,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Set the capacity of a semaphore of the running hub (used or not);
    /// refused below the permits in use. Waiters a larger one lets in are
    /// granted.
    SetCapacity {
        /// The semaphore: `gpu` or `semaphore:gpu`.
        semaphore: String,
        /// Its capacity, at least 1.
        capacity: u32,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    #[command(flatten)]
    Shell(cli_shell::ShellCommand),
    /// The git pre-commit guard; `cograph guard install` writes the hook.
    ///
    /// Refuses a commit that changes a path another agent holds a lock on
    /// (read or write; or a directory above it), naming each path and
    /// holder. The committer is the agent whose handle is COGRAPH_AGENT.
    #[command(after_help = cli_guard::EXIT_CODES)]
    Guard(cli_guard::GuardArgs),
    /// Verify the stored program.
    Verify {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Add the functions of a program file (text or JSON) in one commit;
    /// into an empty store, ids and counters are kept exactly.
    Import {
        file: PathBuf,
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// Replace functions that exist already (by name) instead of
        /// refusing the import.
        #[arg(long)]
        replace: bool,
    },
    /// Print the stored program.
    Export {
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        #[arg(long, value_enum, default_value_t = ExportFormat::Text)]
        format: ExportFormat,
    },
    /// Write each tool's input and output JSON schema to a directory.
    Schemas {
        #[arg(long, default_value = "tool-schemas")]
        out: PathBuf,
    },
    /// Verify a program file and print its diagnostics (exit 1 if any).
    Check { file: PathBuf },
    /// Run a function of a program file and print its value.
    Run {
        file: PathBuf,
        /// The function, as `module::name`.
        function: String,
        /// Arguments, one per parameter: `20`, `2.5`, `true`, `()`.
        args: Vec<String>,
        /// Node evaluations allowed.
        #[arg(long, default_value_t = Budget::default().fuel)]
        fuel: u64,
        /// Nested calls allowed.
        #[arg(long, default_value_t = Budget::default().max_depth)]
        max_depth: usize,
    },
    /// Print a program file in the canonical text form.
    Fmt { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("COGRAPH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // rmcp logs whole requests and results at debug level, and they carry
    // secret `session` handles: whatever the filter, rmcp stays at info or
    // above.
    if filter
        .max_level_hint()
        .is_none_or(|l| l > tracing_subscriber::filter::LevelFilter::INFO)
    {
        filter = filter.add_directive("rmcp=info".parse().expect("a valid directive"));
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            listen,
            data,
            token_file,
            allow_host,
            idle_exit,
            session_idle,
            header_timeout_ms,
            body_timeout_ms,
            agent_idle,
            max_agents,
            stream_grace_ms,
        } => {
            if max_agents == 0 {
                bail!("--max-agents must be at least 1");
            }
            if agent_idle.is_zero() {
                bail!("--agent-idle must be above 0 (for example 30m)");
            }
            let token = read_token(token_file.as_deref())?;
            if !http::is_loopback(&listen) && token.is_none() {
                bail!(
                    "refusing to listen on {listen} without --token-file: anyone who can reach it could edit the program"
                );
            }
            let config = HttpConfig {
                token,
                loopback: http::is_loopback(&listen),
                allowed_hosts: allow_host,
                session_idle: Duration::from_secs(session_idle),
                header_read_timeout: Duration::from_millis(header_timeout_ms),
                body_read_timeout: Duration::from_millis(body_timeout_ms),
                stream_grace: stream_grace_ms
                    .map_or(cograph::mcp::delivery::STREAM_GRACE, Duration::from_millis),
            };
            let agents = AgentLimits {
                idle: agent_idle,
                max: max_agents,
            };
            runtime()?.block_on(serve(
                listen,
                &data,
                config,
                agents,
                idle_exit.map(Duration::from_secs),
            ))
        }
        Command::Stdio { data, standalone } => {
            let dir = data_dir(&data)?;
            let rt = runtime()?;
            let result = if standalone {
                rt.block_on(stdio_standalone(&dir))
            } else {
                rt.block_on(hub::bridge(&dir))
            };
            // Do not wait for the blocking stdin reader thread.
            rt.shutdown_timeout(Duration::from_millis(100));
            result.map(|()| ExitCode::SUCCESS)
        }
        Command::Status {
            data,
            token_file,
            watch: false,
        } => status(&data, read_token(token_file.as_deref())?),
        Command::Status {
            data,
            token_file,
            watch: true,
        } => {
            let Some(info) = HubInfo::read(&data) else {
                bail!("no hub is running for {}", data.display());
            };
            cli_watch::watch(&info.http, read_token(token_file.as_deref())?.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Log { data, limit } => {
            let reader = StoreReader::open(&data)?;
            // Commits newest first, with the operator events among them by
            // time.
            let mut events = reader.events(None, limit)?;
            let commits = reader.history(None, None, limit)?;
            if commits.is_empty() && events.is_empty() {
                eprintln!(
                    "the store in {} has no commits yet (load a program with `cograph import FILE --data {}`)",
                    data.display(),
                    data.display()
                );
            }
            for c in commits {
                while events.last().is_some_and(|e| e.time_ms > c.time_ms) {
                    println!("{}", admin::log_line(&events.pop().expect("checked")));
                }
                println!(
                    "r{} {} {} ({}){}: {}",
                    c.revision.0,
                    cograph::service::time::rfc3339_ms(c.time_ms),
                    c.agent_name,
                    c.agent_id,
                    c.purpose.map(|p| format!(" [{p}]")).unwrap_or_default(),
                    c.summary
                );
            }
            for e in events.iter().rev() {
                println!("{}", admin::log_line(e));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Agents { data } => operator(&data, AdminRequest::Agents),
        Command::EndAgent { agent, data } => operator(&data, AdminRequest::EndAgent { agent }),
        Command::BreakLock { resource, data } => {
            operator(&data, AdminRequest::BreakLock { resource })
        }
        Command::SetCapacity {
            semaphore,
            capacity,
            data,
        } => operator(
            &data,
            AdminRequest::SetCapacity {
                semaphore,
                capacity,
            },
        ),
        Command::Shell(command) => Ok(cli_shell::run(command)),
        Command::Guard(args) => Ok(cli_guard::run(args)),
        Command::Verify { data } => {
            let program = StoreReader::open(&data)?.program()?;
            report_diagnostics(&data, &program)
        }
        Command::Import {
            file,
            data,
            replace,
        } => import(&file, &data, replace),
        Command::Export { data, format } => {
            let program = StoreReader::open(&data)?.program()?;
            if program.is_empty() {
                eprintln!(
                    "the store in {} holds no functions yet: nothing to export (load a program with `cograph import FILE --data {}`)",
                    data.display(),
                    data.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            match format {
                ExportFormat::Text => print!("{}", render_program(&program)),
                ExportFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&program_to_json(&program))?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schemas { out } => {
            let written = cograph::mcp::schemas::write_all(&out)?;
            eprintln!("wrote {written} schema files to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { file } => {
            let program = read_program(&file)?;
            report_diagnostics(&file, &program)
        }
        Command::Run {
            file,
            function,
            args,
            fuel,
            max_depth,
        } => run_function(&file, &function, &args, Budget { fuel, max_depth }),
        Command::Fmt { file } => {
            let program = read_program(&file)?;
            print!("{}", render_program(&program));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `cograph import FILE`: through the hub of `data` when one answers on its
/// admin socket (one commit its agents see at once), else into the store
/// opened here.
fn import(file: &Path, data: &Path, replace: bool) -> anyhow::Result<ExitCode> {
    let content =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let dir = data_dir(data)?;
    let source = file.display().to_string();
    let summary = match admin::import(&dir, content.clone(), &source, replace)? {
        Some(done) => done.summary(&source, true),
        None => {
            let done = program_files::import_here(&dir, &content, &source, replace)?;
            AdminImport::from(&done).summary(&source, false)
        }
    };
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// An operator command sent to the running hub; its answer on stdout.
fn operator(data: &Path, command: AdminRequest) -> anyhow::Result<ExitCode> {
    print!("{}", admin::run(data, command)?);
    Ok(ExitCode::SUCCESS)
}

fn read_token(path: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    let token = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?
        .trim()
        .to_string();
    if token.len() < 16 {
        bail!(
            "the token in {} is shorter than 16 characters",
            path.display()
        );
    }
    Ok(Some(token))
}

/// Creates the data directory (0700) and returns its absolute path.
fn data_dir(data: &Path) -> anyhow::Result<PathBuf> {
    cograph::store::private::create_dir(data)
        .with_context(|| format!("cannot create {}", data.display()))?;
    data.canonicalize()
        .with_context(|| format!("cannot resolve {}", data.display()))
}

/// `serve`'s limits on stateless agents (`--agent-idle`, `--max-agents`).
struct AgentLimits {
    idle: Duration,
    max: usize,
}

async fn serve(
    listen: SocketAddr,
    data: &Path,
    config: HttpConfig,
    agents: AgentLimits,
    idle_exit: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let dir = data_dir(data)?;
    let mut hub_config = HubConfig::new(&dir);
    hub_config.stateless_idle = agents.idle;
    hub_config.max_stateless = agents.max;
    let hub = Hub::open(hub_config)?;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let socket = hub::bind_socket(&dir)?;
    let admin_socket = admin::bind(&dir)?;
    let connections = Arc::new(Connections::default());
    HubInfo {
        pid: std::process::id(),
        socket: dir.join(hub::SOCKET_FILE),
        http: addr.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .write(&dir)
    .context("cannot write hub.json")?;
    tracing::info!(%addr, dir = %dir.display(), "serving: http://{addr}/mcp and the hub socket");
    if hub.snapshot().is_empty() {
        tracing::info!(
            "the program is empty: agents can create functions with propose_edit, or load a program file with `cograph import FILE --data {}`",
            dir.display()
        );
    }
    let http_task = tokio::spawn(http::serve(hub.clone(), listener, config, shutdown.clone()));
    let admin_task = tokio::spawn(admin::serve(hub.clone(), admin_socket, shutdown.clone()));
    let socket_task = tokio::spawn(hub::serve_socket(
        hub.clone(),
        socket,
        connections.clone(),
        shutdown.clone(),
    ));

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let idle = async {
        let Some(limit) = idle_exit else {
            return std::future::pending::<()>().await;
        };
        let mut idle_since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if connections.live() > 0 || hub.n_agents() > 0 {
                idle_since = tokio::time::Instant::now();
            } else if idle_since.elapsed() >= limit {
                tracing::info!("no sessions for {}s; exiting", limit.as_secs());
                return;
            }
        }
    };
    let mut failed = false;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        _ = sigterm.recv() => tracing::info!("terminated; stopping"),
        _ = idle => {}
        _ = must_stop(&hub) => failed = true,
    }
    // Also when a signal came during the grace after a store failure.
    let code = if failed || hub.fatal().borrow().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    shutdown.cancel();
    if HubInfo::read(&dir).is_some_and(|i| i.pid == std::process::id()) {
        let _ = std::fs::remove_file(dir.join(hub::INFO_FILE));
        let _ = std::fs::remove_file(dir.join(hub::SOCKET_FILE));
        let _ = std::fs::remove_file(dir.join(admin::ADMIN_SOCKET_FILE));
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), socket_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), admin_task).await;
    hub.shutdown().await;
    Ok(code)
}

/// How long a server that must stop (its store failed, or a mutex of the
/// hub was poisoned) goes on answering before it stops, so that calls in flight, the failed commit's among them, get
/// their error answers out rather than a cut connection. The store refuses
/// every commit from a failure on, and a poisoned tip refuses them, so
/// nothing is acknowledged meanwhile.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Resolves, with the reason, a grace period after `hub` said it must stop
/// (`Hub::fatal`: a store failure or a poisoned mutex).
async fn must_stop(hub: &Hub) -> String {
    let mut fatal = hub.fatal();
    let reason = fatal
        .wait_for(|f| f.is_some())
        .await
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_else(|| "the store writer stopped".into());
    tracing::error!(%reason, "the hub must stop; stopping");
    tokio::time::sleep(STOP_GRACE).await;
    reason
}

async fn stdio_standalone(dir: &Path) -> anyhow::Result<()> {
    let hub = Hub::open(HubConfig::new(dir)).context("cannot serve standalone")?;
    // As in `serve`: a store that cannot write stops the server rather
    // than let it answer on a program that is not durable.
    let result = tokio::select! {
        r = hub::serve_stdio(hub.clone()) => r,
        reason = must_stop(&hub) => Err(anyhow::anyhow!("the hub must stop: {reason}")),
    };
    // Also when the client left during the grace after a store failure.
    let failure = hub.fatal().borrow().clone();
    hub.shutdown().await;
    match failure {
        Some(reason) if result.is_ok() => Err(anyhow::anyhow!("the hub must stop: {reason}")),
        _ => result,
    }
}

fn status(data: &Path, token: Option<String>) -> anyhow::Result<ExitCode> {
    match HubInfo::read(data) {
        Some(info) => match fetch_status(&info.http, token.as_deref()) {
            Ok(report) => {
                println!(
                    "hub pid {} at http://{}/mcp: r{}, {} functions, root {}",
                    info.pid,
                    info.http,
                    report.revision,
                    report.n_functions,
                    &report.root_hash[..12]
                );
                println!("agents ({}):", report.agents.len());
                for a in &report.agents {
                    println!(
                        "  {} {} [{}] since {}, active {}{}",
                        a.agent_id,
                        a.name,
                        a.transport,
                        a.connected_since,
                        a.last_active,
                        a.purpose
                            .as_ref()
                            .map(|p| format!(": {p}"))
                            .unwrap_or_default()
                    );
                }
                println!("locks ({}):", report.locks.len());
                for l in &report.locks {
                    println!("  {}: {}", l.function, l.holders.join(", "));
                    for w in &l.waiters {
                        println!("    waiting {w}");
                    }
                }
            }
            Err(e) => println!(
                "hub.json names pid {} at {}, but it does not answer: {e:#}",
                info.pid, info.http
            ),
        },
        None => println!("no hub is running for {}", data.display()),
    }
    if let Ok(reader) = StoreReader::open(data) {
        let commits = reader.history(None, None, 5)?;
        println!("recent commits:");
        for c in commits {
            println!(
                "  r{} {} {}: {}",
                c.revision.0,
                cograph::service::time::rfc3339_ms(c.time_ms),
                c.agent_name,
                c.summary
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A plain HTTP/1.1 GET of the hub's `/status` (loopback, no TLS).
fn fetch_status(addr: &str, token: Option<&str>) -> anyhow::Result<StatusReport> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{}", head.lines().next().unwrap_or(""));
    }
    Ok(serde_json::from_str(body)?)
}
