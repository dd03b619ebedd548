//! Lock table benchmark. Prints, from one run:
//! - an uncontended try_acquire + release of one function beside a bare
//!   `DashMap<u64, u64>` insert + remove, interleaved round by round, and
//!   their ratio (target: at most 3);
//! - a path lock at depth 6 (`d0/e0/f0/g0/h0/mine7.rs`) taken and released
//!   while 100,000 other paths are held, many under the same directories,
//!   beside the function lock (target: at most 3);
//! - a module lock refused while 10,000 of its functions are held, beside a
//!   function lock refused (target: at most 2, which shows the refusal
//!   does not scan the functions below the module);
//! - a semaphore's permit taken and released, beside the function lock;
//! - throughput with 2, 8 and 64 concurrent agents (threads) on disjoint
//!   functions and on 4 shared functions, each run bounded in time.
//!
//! Each comparison interleaves its two sides round by round and reports
//! the medians of 9 rounds, so a noisy neighbour moves both sides.
//!
//! Run: `cargo bench --bench locks`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cograph::graph::FunctionId;
use cograph::locks::{
    AcquireError, AgentId, LockConfig, LockMode, LockRequest, LockTable, LockTarget, ModuleName,
    Resource, ResourceName, ResourcePath,
};
use dashmap::DashMap;

fn request(agent: u64, function: u64) -> LockRequest {
    LockRequest {
        agent: AgentId(agent),
        targets: vec![LockTarget::function(
            FunctionId(function),
            ModuleName::parse("bench").unwrap(),
            LockMode::Write,
        )],
        ttl: None,
        purpose: None,
    }
}

/// One request per function, built before timing: constructing the
/// request is the caller's work, not the table's, just as the map side
/// times only its insert and remove.
fn requests() -> Vec<LockRequest> {
    (0..1024).map(|f| request(1, f)).collect()
}

/// Takes and releases each request in turn (agent 1's), `n` times in all;
/// the time of one acquire + release.
fn lock_round(table: &LockTable, requests: &[LockRequest], n: u64) -> Duration {
    let resources: Vec<Resource> = requests
        .iter()
        .map(|r| r.targets[0].resource.clone())
        .collect();
    let start = Instant::now();
    for i in 0..n {
        let idx = (i % requests.len() as u64) as usize;
        black_box(table.try_acquire(&requests[idx]).unwrap());
        black_box(table.release(AgentId(1), Some(std::slice::from_ref(&resources[idx]))));
    }
    start.elapsed() / n as u32
}

/// Asks for each request in turn, `n` times in all, each refused; the time
/// of one refusal.
fn refusal_round(table: &LockTable, requests: &[LockRequest], n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let idx = (i % requests.len() as u64) as usize;
        let refused = table.try_acquire(&requests[idx]);
        assert!(matches!(refused, Err(AcquireError::Denied(_))));
        black_box(refused.err());
    }
    start.elapsed() / n as u32
}

fn one(agent: u64, target: LockTarget) -> LockRequest {
    LockRequest {
        agent: AgentId(agent),
        targets: vec![target],
        ttl: None,
        purpose: None,
    }
}

fn path(text: &str) -> Resource {
    Resource::Path(ResourcePath::parse(text).unwrap())
}

/// A table where agent 2 holds write locks on 100,000 files at depth 6,
/// spread over 10,000 directories (`d0/e0/f0/g0/h0/` holds ten of them),
/// and agent 1's requests for 1,024 other files in `d0/e0/f0/g0/h0/`.
fn held_paths() -> (Arc<LockTable>, Vec<LockRequest>) {
    let table = LockTable::new(LockConfig::default());
    for i in 0..100_000u64 {
        let text = format!(
            "d{}/e{}/f{}/g{}/h{}/x{i}.rs",
            i % 10,
            i / 10 % 10,
            i / 100 % 10,
            i / 1000 % 10,
            i / 10_000
        );
        let req = one(2, LockTarget::new(path(&text), LockMode::Write));
        table.try_acquire(&req).unwrap();
    }
    let mine = (0..1024)
        .map(|k| {
            let text = format!("d0/e0/f0/g0/h0/mine{k}.rs");
            one(1, LockTarget::new(path(&text), LockMode::Write))
        })
        .collect();
    (table, mine)
}

/// A table where agent 2 holds write locks on 10,000 functions of module
/// `big`; agent 1's requests for the module (all refused), and for 1,024
/// of those functions (all refused).
fn held_module() -> (Arc<LockTable>, Vec<LockRequest>, Vec<LockRequest>) {
    let table = LockTable::new(LockConfig::default());
    let big = ModuleName::parse("big").unwrap();
    for f in 0..10_000u64 {
        let req = one(
            2,
            LockTarget::function(FunctionId(f), big.clone(), LockMode::Write),
        );
        table.try_acquire(&req).unwrap();
    }
    let module = vec![one(
        1,
        LockTarget::new(Resource::Module(big.clone()), LockMode::Write),
    )];
    let functions = (0..1024)
        .map(|f| {
            one(
                1,
                LockTarget::function(FunctionId(f), big.clone(), LockMode::Write),
            )
        })
        .collect();
    (table, module, functions)
}

/// Agent 1's requests for one permit of each of 1,024 semaphores of
/// capacity 8.
fn semaphore_requests() -> Vec<LockRequest> {
    (0..1024)
        .map(|k| {
            let name = ResourceName::parse_semaphore(&format!("slots{k}")).unwrap();
            one(1, LockTarget::permits(name, 1, Some(8)))
        })
        .collect()
}

/// Runs `a` and `b` alternately, 9 rounds of `n` after a warm-up, and
/// prints their medians and ratio.
fn side_by_side(
    what: &str,
    target: &str,
    n: u64,
    mut a: impl FnMut(u64) -> Duration,
    mut b: impl FnMut(u64) -> Duration,
    b_name: &str,
) {
    a(n / 4);
    b(n / 4);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        xs.push(a(n));
        ys.push(b(n));
    }
    let (x, y) = (median(xs), median(ys));
    println!(
        "{what}: {:.0} ns; {b_name}: {:.0} ns; ratio {:.2} (target {target})",
        x.as_nanos() as f64,
        y.as_nanos() as f64,
        x.as_nanos() as f64 / y.as_nanos() as f64
    );
}

fn map_round(map: &DashMap<u64, u64>, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let f = i % 1024;
        map.insert(black_box(f), i);
        black_box(map.remove(&f));
    }
    start.elapsed() / n as u32
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `agents` threads for `limit`: each takes and releases a write lock on
/// its own function (disjoint) or on one of 4 shared ones. Returns
/// (attempts/s, grants/s).
fn throughput(agents: u64, shared: bool, limit: Duration) -> (f64, f64) {
    let table = LockTable::new(LockConfig::default());
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let grants = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..agents)
        .map(|a| {
            let (table, stop, attempts, grants) = (
                table.clone(),
                stop.clone(),
                attempts.clone(),
                grants.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut ok = 0u64;
                let mut x = a * 7919 + 1;
                // Bounded in count as well as time.
                while n < 5_000_000 && !stop.load(Ordering::Relaxed) {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let f = if shared { 1 + (x >> 33) % 4 } else { 1000 + a };
                    if table.try_acquire(&request(a + 1, f)).is_ok() {
                        table.release(AgentId(a + 1), Some(&[Resource::Function(FunctionId(f))]));
                        ok += 1;
                    }
                    n += 1;
                }
                attempts.fetch_add(n, Ordering::Relaxed);
                grants.fetch_add(ok, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(limit);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    (
        attempts.load(Ordering::Relaxed) as f64 / secs,
        grants.load(Ordering::Relaxed) as f64 / secs,
    )
}

fn main() {
    let table = LockTable::new(LockConfig::default());
    let map: DashMap<u64, u64> = DashMap::new();
    let requests = requests();
    side_by_side(
        "uncontended function lock acquire+release",
        "<= 3",
        500_000,
        |n| lock_round(&table, &requests, n),
        |n| map_round(&map, n),
        "DashMap insert+remove",
    );
    if std::env::var("COGRAPH_BENCH_ONLY").is_ok_and(|v| v == "uncontended") {
        return;
    }
    let (paths, mine) = held_paths();
    side_by_side(
        "path lock at depth 6, 100,000 other paths held",
        "<= 3",
        200_000,
        |n| lock_round(&paths, &mine, n),
        |n| lock_round(&table, &requests, n),
        "function lock",
    );
    drop(paths);
    let (modules, module, functions) = held_module();
    side_by_side(
        "module lock refused, 10,000 of its functions held",
        "<= 2",
        200_000,
        |n| refusal_round(&modules, &module, n),
        |n| refusal_round(&modules, &functions, n),
        "function lock refused",
    );
    drop(modules);
    let semaphores = semaphore_requests();
    side_by_side(
        "semaphore permit acquire+release",
        "none",
        500_000,
        |n| lock_round(&table, &semaphores, n),
        |n| lock_round(&table, &requests, n),
        "function lock",
    );
    for agents in [2, 8, 64] {
        for shared in [false, true] {
            let (attempts, grants) = throughput(agents, shared, Duration::from_millis(500));
            println!(
                "{agents:>2} agents, {}: {:.2} M acquire attempts/s, {:.2} M grants/s",
                if shared {
                    "4 shared functions"
                } else {
                    "disjoint functions"
                },
                attempts / 1e6,
                grants / 1e6
            );
        }
    }
}
