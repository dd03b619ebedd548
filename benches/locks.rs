//! Lock table benchmark. Prints, from one run:
//! - an uncontended try_acquire + release of one function beside a bare
//!   `DashMap<u64, u64>` insert + remove, interleaved round by round, and
//!   their ratio (target: at most 3);
//! - throughput with 2, 8 and 64 concurrent agents (threads) on disjoint
//!   functions and on 4 shared functions, each run bounded in time.
//!
//! Run: `cargo bench --bench locks`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cograph::graph::FunctionId;
use cograph::locks::{
    AgentId, LockConfig, LockMode, LockRequest, LockTable, LockTarget, ModuleName, Resource,
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

fn lock_round(table: &LockTable, requests: &[LockRequest], n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let f = i % 1024;
        black_box(table.try_acquire(&requests[f as usize]).unwrap());
        black_box(table.release(AgentId(1), Some(&[Resource::Function(FunctionId(f))])));
    }
    start.elapsed() / n as u32
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
    lock_round(&table, &requests, 200_000);
    map_round(&map, 200_000);
    let (mut locks, mut maps) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        locks.push(lock_round(&table, &requests, 500_000));
        maps.push(map_round(&map, 500_000));
    }
    let (l, m) = (median(locks), median(maps));
    println!(
        "uncontended acquire+release: {:.0} ns; DashMap insert+remove: {:.0} ns; ratio {:.2} (target <= 3)",
        l.as_nanos() as f64,
        m.as_nanos() as f64,
        l.as_nanos() as f64 / m.as_nanos() as f64
    );
    if std::env::var("COGRAPH_BENCH_ONLY").is_ok_and(|v| v == "uncontended") {
        return;
    }
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
