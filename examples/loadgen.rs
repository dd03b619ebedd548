//! Load generator: N concurrent agent sessions over streamable HTTP.
//!
//!     cargo run --release --example loadgen -- [--sessions 1,8,64] [--seconds 5] [--hot 4]
//!
//! Starts cograph in a child process (this same binary in server mode, on a
//! fresh store in a temporary directory, listening on 127.0.0.1:0) and
//! drives it over real HTTP with rmcp's client. It prints:
//!
//! 1. the protocol baseline: latency of the read-only tools that do least
//!    (`list_agents`, `lock_status`, `program_overview`) beside
//!    `acquire_locks` and `release_locks` on an uncontended function, called
//!    in turn by one session, and the ratio of a lock call to the cheapest
//!    read-only call;
//! 2. the server's resident memory with 1 and with 64 idle sessions, and
//!    the cost per extra session;
//! 3. for each session count, a bounded run (`--seconds`) where every
//!    session loops over a mix of reads (60%), lock cycles (20%: write lock
//!    with no wait, release when granted) and optimistic edits (20%: read,
//!    then edit one constant against that read) on `--hot` shared
//!    functions: throughput and p50/p99 latency per tool, and the outcome
//!    codes (lock_denied, conflict, ... are expected under contention);
//! 4. one kept-alive connection spoken by hand (plain HTTP/1.1, each
//!    response read to its end, SSE included): `GET /healthz` p50, the
//!    transport floor, beside `lock_status`, `acquire_locks` and
//!    `release_locks` p50 on that same connection, and lock call / floor.
//!    A server whose sockets lack `TCP_NODELAY` shows 40 ms here (Nagle's
//!    algorithm waiting for the client's delayed ACK), which clients that
//!    open a connection per call never see;
//! 5. what watching costs: the mixed load on 8 sessions alone and with the
//!    page's stream open and ten subscribed sessions, alternated twice,
//!    the throughput ratio, and the server's CPU time over 3 idle seconds
//!    with all of them still watching.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cograph::mcp::http::{self, HttpConfig};
use cograph::service::{Hub, HubConfig};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

// The tests' hand-written HTTP/1.1 client: one kept-alive connection,
// each response read to its end (by length or chunked, SSE included).
#[path = "../tests/common/raw.rs"]
mod raw;
use raw::{Raw, mcp_headers};

type Session = RunningService<RoleClient, ()>;

/// Constants per hot function; edits pick one of them.
const N_CONSTS: usize = 8;
/// Upper bound on calls per session per run, beside the time bound.
const MAX_CALLS_PER_SESSION: usize = 200_000;
const BASELINE_ROUNDS: usize = 2_000;
/// Upper bound on rounds on the kept-alive connection, beside the time bound.
const KEEPALIVE_ROUNDS: usize = 2_000;

struct Args {
    sessions: Vec<usize>,
    seconds: f64,
    hot: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        sessions: vec![1, 8, 64],
        seconds: 5.0,
        hot: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sessions" => {
                args.sessions = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--sessions takes a list like 1,8,64")?
            }
            "--seconds" => args.seconds = value.parse().context("--seconds takes a number")?,
            "--hot" => args.hot = value.parse().context("--hot takes a count")?,
            other => bail!("unknown flag {other}; flags: --sessions 1,8,64 --seconds 5 --hot 4"),
        }
    }
    if args.sessions.iter().any(|&n| n == 0 || n > 1024) || args.hot == 0 || args.seconds <= 0.0 {
        bail!("sessions must be 1..=1024, --hot at least 1, --seconds positive");
    }
    args.seconds = args.seconds.min(120.0);
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if argv.get(1).map(String::as_str) == Some("--serve-child") {
        return runtime.block_on(serve_child());
    }
    let args = parse_args()?;
    runtime.block_on(drive(args))
}

/// Server mode: a hub on a temporary store, HTTP on 127.0.0.1:0; prints
/// `LISTEN addr` and serves until stdin closes.
async fn serve_child() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let hub = Hub::open(HubConfig::new(dir.path()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "LISTEN {}", listener.local_addr()?)?;
    stdout.flush()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
        stop.cancel();
    });
    http::serve(hub, listener, HttpConfig::default(), shutdown).await?;
    Ok(())
}

struct Child {
    process: std::process::Child,
    url: String,
}

impl Child {
    fn start() -> anyhow::Result<Child> {
        let mut process = std::process::Command::new(std::env::current_exe()?)
            .arg("--serve-child")
            .env("COGRAPH_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(process.stdout.take().context("child stdout")?).read_line(&mut line)?;
        let addr = line
            .strip_prefix("LISTEN ")
            .with_context(|| format!("the server child said {line:?}"))?
            .trim();
        Ok(Child {
            url: format!("http://{addr}/mcp"),
            process,
        })
    }

    /// User and system CPU time of the server process so far, in ms.
    fn cpu_ms(&self) -> anyhow::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.id()))?;
        // Fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the line, in clock ticks (100 a second).
        let rest = stat.rsplit_once(')').context("a /proc/PID/stat line")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(ticks * 10)
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }
}

impl Drop for Child {
    /// Closing stdin asks the server to stop; it gets 5 s before a kill.
    fn drop(&mut self) {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Latencies and outcomes per tool.
#[derive(Default)]
struct Stats {
    tools: BTreeMap<&'static str, ToolStats>,
}

#[derive(Default)]
struct ToolStats {
    latencies: Vec<Duration>,
    outcomes: BTreeMap<String, u64>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (tool, s) in other.tools {
            let mine = self.tools.entry(tool).or_default();
            mine.latencies.extend(s.latencies);
            for (code, n) in s.outcomes {
                *mine.outcomes.entry(code).or_default() += n;
            }
        }
    }

    fn p(&self, tool: &str, q: f64) -> Duration {
        self.tools
            .get(tool)
            .map(|s| percentile(&s.latencies, q))
            .unwrap_or_default()
    }
}

fn percentile(latencies: &[Duration], q: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Calls a tool, recording its latency and outcome (`ok` or the error code).
async fn call(
    session: &Session,
    stats: &mut Stats,
    tool: &'static str,
    args: Value,
) -> anyhow::Result<(bool, Value)> {
    let Value::Object(args) = args else {
        bail!("arguments must be an object")
    };
    let start = Instant::now();
    let r = session
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .with_context(|| format!("{tool} failed at the protocol level"))?;
    let elapsed = start.elapsed();
    let content = r.structured_content.unwrap_or(Value::Null);
    let failed = r.is_error == Some(true);
    let outcome = if failed {
        content["error"]["code"]
            .as_str()
            .unwrap_or("error")
            .to_string()
    } else {
        "ok".to_string()
    };
    let s = stats.tools.entry(tool).or_default();
    s.latencies.push(elapsed);
    *s.outcomes.entry(outcome).or_default() += 1;
    Ok((failed, content))
}

fn hot_function(i: usize) -> String {
    let mut text = format!("fn load::hot{i}() -> i64 {{\n");
    for k in 0..N_CONSTS {
        text.push_str(&format!("  %{k} = const {k}\n"));
    }
    let mut acc = 0;
    let mut next = N_CONSTS;
    for k in 1..N_CONSTS {
        text.push_str(&format!("  %{next} = add %{acc}, %{k}\n"));
        acc = next;
        next += 1;
    }
    text.push_str(&format!("  %{next} = return %{acc}\n}}\n"));
    text
}

async fn connect(url: &str, name: String) -> anyhow::Result<Session> {
    let session = ().serve(StreamableHttpClientTransport::from_uri(url)).await?;
    let mut scratch = Stats::default();
    call(
        &session,
        &mut scratch,
        "register_agent",
        json!({"name": name}),
    )
    .await?;
    Ok(session)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One session's loop in a mixed run, bounded by `deadline` and a count.
/// Every session of `sessions` runs `mixed` for `seconds`; the merged
/// stats and the seconds it took.
async fn mixed_run(
    sessions: &[Arc<Session>],
    hot: usize,
    seconds: f64,
) -> anyhow::Result<(Stats, f64)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(k, s)| {
            tokio::spawn(mixed(
                s.clone(),
                0x9e37_79b9 * (k as u64 + 1),
                hot,
                deadline,
            ))
        })
        .collect();
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await??);
    }
    Ok((stats, start.elapsed().as_secs_f64()))
}

/// The page's stream and ten subscribed sessions, for as long as it lives.
struct Watchers {
    page: tokio::task::JoinHandle<()>,
    frames: Arc<std::sync::atomic::AtomicUsize>,
    subscribers: Vec<Session>,
}

/// Subscribers subscribe to a hot function each, to what they read and to
/// their locks, so each edit of a hot function notifies some of them.
const N_SUBSCRIBERS: usize = 10;

impl Watchers {
    async fn open(url: &str, addr: &str, hot: usize) -> anyhow::Result<Watchers> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(
            format!(
                "GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
        let frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = frames.clone();
        let page = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let needle = b"event: view";
            while let Ok(n) = tcp.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                let k = buf[..n]
                    .windows(needle.len())
                    .filter(|w| w == needle)
                    .count();
                counted.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let mut subscribers = Vec::with_capacity(N_SUBSCRIBERS);
        for k in 0..N_SUBSCRIBERS {
            let s = connect(url, format!("watcher{k}")).await?;
            for uri in [
                format!("cograph://function/load::hot{}", k % hot),
                "cograph://reads".to_string(),
                "cograph://locks/mine".to_string(),
            ] {
                // Sessions speak the legacy resources/subscribe, as the
                // hosts that keep protocol sessions do.
                #[allow(deprecated)]
                s.subscribe(rmcp::model::SubscribeRequestParams::new(uri))
                    .await?;
            }
            subscribers.push(s);
        }
        Ok(Watchers {
            page,
            frames,
            subscribers,
        })
    }

    fn frames(&self) -> usize {
        self.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn close(self) {
        self.page.abort();
        for s in self.subscribers {
            let _ = s.cancel().await;
        }
    }
}

/// Section 5: the mixed load on 8 sessions without watchers and with the
/// page's stream open and ten subscribers, alternated twice so a noisy
/// neighbour moves both; then the server's CPU time over 3 idle seconds
/// with everyone still watching.
async fn watching_cost(
    child: &Child,
    addr: &str,
    sessions: &[Arc<Session>],
    hot: usize,
    seconds: f64,
) -> anyhow::Result<()> {
    println!(
        "\n## Watching: {} sessions of mixed load, without watchers and with the page's stream and {N_SUBSCRIBERS} subscribers, alternated",
        sessions.len()
    );
    println!(
        "{:<10} {:>9} {:>12} {:>12} {:>8}",
        "run", "calls/s", "get p50 µs", "edit p50 µs", "frames"
    );
    let mut rates = [0.0f64; 2];
    for round in 0..2 {
        for (side, watched) in [false, true].into_iter().enumerate() {
            let watchers = match watched {
                true => Some(Watchers::open(&child.url, addr, hot).await?),
                false => None,
            };
            let (stats, elapsed) = mixed_run(sessions, hot, seconds).await?;
            let total: usize = stats.tools.values().map(|s| s.latencies.len()).sum();
            let rate = total as f64 / elapsed;
            rates[side] += rate;
            let frames = watchers.as_ref().map_or(0, Watchers::frames);
            println!(
                "{:<10} {rate:>9.0} {:>12.1} {:>12.1} {:>8}",
                format!("{}{}", if watched { "watched" } else { "alone" }, round + 1),
                us(stats.p("get_function", 0.5)),
                us(stats.p("propose_edit", 0.5)),
                frames
            );
            if let Some(w) = watchers {
                w.close().await;
            }
        }
    }
    println!(
        "throughput watched / alone = {:.3} (target: within 5%)",
        rates[1] / rates[0]
    );
    let watchers = Watchers::open(&child.url, addr, hot).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, frames0) = (child.cpu_ms()?, watchers.frames());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu1, frames1) = (child.cpu_ms()?, watchers.frames());
    println!(
        "idle 3 s with the page open and {N_SUBSCRIBERS} subscribers: server CPU {} ms, {} frames pushed",
        cpu1 - cpu0,
        frames1 - frames0
    );
    watchers.close().await;
    Ok(())
}

async fn mixed(
    session: Arc<Session>,
    seed: u64,
    hot: usize,
    deadline: Instant,
) -> anyhow::Result<Stats> {
    let mut stats = Stats::default();
    let mut rng = Rng(seed | 1);
    let mut n = 0;
    while Instant::now() < deadline && n < MAX_CALLS_PER_SESSION {
        let f = format!("load::hot{}", rng.below(hot));
        match rng.below(10) {
            0..=5 => {
                call(&session, &mut stats, "get_function", json!({"function": f})).await?;
            }
            6 | 7 => {
                let lock = json!({"locks": [{"function": f, "mode": "write"}]});
                let (denied, _) = call(&session, &mut stats, "acquire_locks", lock).await?;
                if !denied {
                    call(&session, &mut stats, "release_locks", json!({})).await?;
                }
            }
            _ => {
                let (_, read) =
                    call(&session, &mut stats, "get_function", json!({"function": f})).await?;
                let node = format!("%{}", rng.below(N_CONSTS));
                let op = format!("const {}", rng.below(1000));
                call(
                    &session,
                    &mut stats,
                    "propose_edit",
                    json!({
                        "ops": [{"set_op": {"function": f, "node": node, "op": op}}],
                        "base": {f.clone(): read["hash"]},
                    }),
                )
                .await?;
            }
        }
        n += 1;
    }
    Ok(stats)
}

async fn drive(args: Args) -> anyhow::Result<()> {
    let child = Child::start()?;
    println!(
        "cograph server child pid {} at {}",
        child.process.id(),
        child.url
    );
    let max_sessions = args.sessions.iter().copied().max().unwrap_or(1).max(64);

    // Setup: hot functions and one private function per session.
    let setup = connect(&child.url, "setup".into()).await?;
    let mut ops: Vec<Value> = (0..args.hot)
        .map(|i| json!({"create_function": {"text": hot_function(i)}}))
        .collect();
    ops.push(json!({"create_function": {"text": "fn load::own() -> i64 {\n  %0 = const 0\n  %1 = return %0\n}\n"}}));
    let (failed, r) = call(
        &setup,
        &mut Stats::default(),
        "propose_edit",
        json!({"ops": ops}),
    )
    .await?;
    if failed {
        bail!("setup failed: {r:#}");
    }

    // 1. Protocol baseline, one session, calls in turn.
    let mut base = Stats::default();
    for _ in 0..BASELINE_ROUNDS {
        call(&setup, &mut base, "list_agents", json!({})).await?;
        call(
            &setup,
            &mut base,
            "lock_status",
            json!({"function": "load::own"}),
        )
        .await?;
        call(&setup, &mut base, "program_overview", json!({"limit": 1})).await?;
        let (denied, r) = call(
            &setup,
            &mut base,
            "acquire_locks",
            json!({"locks": [{"function": "load::own", "mode": "write"}]}),
        )
        .await?;
        if denied {
            bail!("an uncontended lock was denied: {r:#}");
        }
        call(&setup, &mut base, "release_locks", json!({})).await?;
    }
    println!("\n## Protocol baseline: one session, {BASELINE_ROUNDS} rounds, calls in turn");
    println!(
        "{:<18} {:>9} {:>9} {:>9}",
        "tool", "calls/s", "p50 µs", "p99 µs"
    );
    for tool in [
        "list_agents",
        "lock_status",
        "program_overview",
        "acquire_locks",
        "release_locks",
    ] {
        // Calls/s of this tool alone: its calls over the time spent in them.
        let spent: Duration = base.tools[tool].latencies.iter().sum();
        println!(
            "{tool:<18} {:>9.0} {:>9.1} {:>9.1}",
            base.tools[tool].latencies.len() as f64 / spent.as_secs_f64(),
            us(base.p(tool, 0.5)),
            us(base.p(tool, 0.99))
        );
    }
    let (cheapest, cheapest_p50) = ["list_agents", "lock_status", "program_overview"]
        .into_iter()
        .map(|t| (t, base.p(t, 0.5)))
        .min_by_key(|(_, d)| *d)
        .expect("three tools");
    println!(
        "cheapest read-only call: {cheapest}; acquire_locks / {cheapest} p50 = {:.2}, release_locks / {cheapest} p50 = {:.2}",
        us(base.p("acquire_locks", 0.5)) / us(cheapest_p50),
        us(base.p("release_locks", 0.5)) / us(cheapest_p50),
    );

    // 2. Memory per session.
    let mut sessions = vec![Arc::new(connect(&child.url, "agent0".into()).await?)];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_1 = child.rss_kib()?;
    for k in 1..max_sessions {
        sessions.push(Arc::new(connect(&child.url, format!("agent{k}")).await?));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_n = child.rss_kib()?;
    println!("\n## Server memory");
    println!(
        "RSS with 1 session {rss_1} KiB, with {max_sessions} sessions {rss_n} KiB: {:.1} KiB per extra session",
        (rss_n as f64 - rss_1 as f64) / (max_sessions - 1) as f64
    );

    // 3. Mixed load.
    for &n in &args.sessions {
        let (stats, elapsed) = mixed_run(&sessions[..n], args.hot, args.seconds).await?;
        let total: usize = stats.tools.values().map(|s| s.latencies.len()).sum();
        println!(
            "\n## {n} session(s), {} hot functions, {elapsed:.1} s: {total} calls, {:.0} calls/s",
            args.hot,
            total as f64 / elapsed
        );
        println!(
            "{:<15} {:>8} {:>9} {:>9} {:>9}  outcomes",
            "tool", "calls", "calls/s", "p50 µs", "p99 µs"
        );
        for (tool, s) in &stats.tools {
            let outcomes: Vec<String> =
                s.outcomes.iter().map(|(c, k)| format!("{c} {k}")).collect();
            println!(
                "{tool:<15} {:>8} {:>9.0} {:>9.1} {:>9.1}  {}",
                s.latencies.len(),
                s.latencies.len() as f64 / elapsed,
                us(percentile(&s.latencies, 0.5)),
                us(percentile(&s.latencies, 0.99)),
                outcomes.join(", ")
            );
        }
    }

    // 4. One kept-alive connection, spoken by hand.
    let addr = child
        .url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/mcp"))
        .context("the child's url")?
        .to_string();
    keepalive(&addr, args.seconds.max(1.0)).await?;

    // 5. What watching costs.
    watching_cost(&child, &addr, &sessions[..8], args.hot, args.seconds).await?;

    // The program is still whole after the runs.
    let (_, verified) = call(&setup, &mut Stats::default(), "verify_all", json!({})).await?;
    println!(
        "\nverify_all after the runs: ok = {}, revision {}",
        verified["ok"], verified["revision"]
    );
    if verified["ok"] != true {
        bail!("the program does not verify after the load");
    }
    for s in sessions {
        if let Ok(s) = Arc::try_unwrap(s) {
            let _ = s.cancel().await;
        }
    }
    let _ = setup.cancel().await;
    Ok(())
}

/// Section 4: rounds of `GET /healthz`, `lock_status`, `acquire_locks` and
/// `release_locks` on one kept-alive connection (one protocol session),
/// bounded by `seconds` and `KEEPALIVE_ROUNDS`.
async fn keepalive(addr: &str, seconds: f64) -> anyhow::Result<()> {
    let mut conn = Raw::connect(addr).await;
    let session = conn.open_session().await;
    let mcp = mcp_headers(Some(&session));
    let mut lat: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut id = 0u64;
    let mut rounds = 0;
    while Instant::now() < deadline && rounds < KEEPALIVE_ROUNDS {
        let start = Instant::now();
        conn.request("GET", "/healthz", &[], "").await;
        let health = conn.response().await.map_err(anyhow::Error::msg)?;
        lat.entry("GET /healthz").or_default().push(start.elapsed());
        if health.status != 200 {
            bail!("/healthz answered {}", health.status);
        }
        // MCP's own floor: a JSON-RPC `ping` through the same session,
        // framing and SSE answer as a tool call, with no tool behind it.
        id += 1;
        let start = Instant::now();
        let ping = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let pong = conn.exchange("POST", "/mcp", &mcp, &ping).await;
        lat.entry("ping").or_default().push(start.elapsed());
        if pong.status != 200 || !pong.body.contains(r#""result""#) {
            bail!(
                "ping on the kept-alive connection answered {}: {}",
                pong.status,
                pong.body
            );
        }
        for (tool, args) in [
            ("lock_status", json!({"function": "load::own"})),
            (
                "acquire_locks",
                json!({"locks": [{"function": "load::own", "mode": "write"}]}),
            ),
            ("release_locks", json!({})),
        ] {
            id += 1;
            let start = Instant::now();
            let answer = conn.call_tool(&session, id, tool, args).await;
            lat.entry(tool).or_default().push(start.elapsed());
            if answer.status != 200
                || !answer.body.contains(r#""result""#)
                || answer.body.contains(r#""isError":true"#)
            {
                bail!(
                    "{tool} on the kept-alive connection answered {}: {}",
                    answer.status,
                    answer.body
                );
            }
        }
        rounds += 1;
    }
    conn.request("DELETE", "/mcp", &mcp, "").await;
    conn.response().await.map_err(anyhow::Error::msg)?;
    println!("\n## One kept-alive HTTP/1.1 connection, {rounds} rounds, calls in turn");
    println!("{:<18} {:>9} {:>9}", "request", "p50 µs", "p99 µs");
    for (what, l) in &lat {
        println!(
            "{what:<18} {:>9.1} {:>9.1}",
            us(percentile(l, 0.5)),
            us(percentile(l, 0.99))
        );
    }
    let floor = us(percentile(&lat["GET /healthz"], 0.5));
    let ping = us(percentile(&lat["ping"], 0.5));
    println!(
        "transport floor GET /healthz p50 {floor:.1} µs; lock_status / floor = {:.2}, acquire_locks / floor = {:.2}, release_locks / floor = {:.2} (target <= 2)",
        us(percentile(&lat["lock_status"], 0.5)) / floor,
        us(percentile(&lat["acquire_locks"], 0.5)) / floor,
        us(percentile(&lat["release_locks"], 0.5)) / floor,
    );
    println!(
        "MCP floor ping p50 {ping:.1} µs = {:.2} x GET /healthz; lock_status / ping = {:.2}, acquire_locks / ping = {:.2}, release_locks / ping = {:.2}",
        ping / floor,
        us(percentile(&lat["lock_status"], 0.5)) / ping,
        us(percentile(&lat["acquire_locks"], 0.5)) / ping,
        us(percentile(&lat["release_locks"], 0.5)) / ping,
    );
    Ok(())
}
