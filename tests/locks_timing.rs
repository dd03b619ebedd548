//! Lock table behaviour in time, on tokio's paused clock: leases that
//! lapse (on functions, below directories, of semaphores' permits),
//! waiters granted from the queue, fairness to writers, deadlock refusal,
//! and waiters that leave (timeout, cancel, drop, agent end).

#[path = "common/locks.rs"]
mod locks_support;

use std::sync::Arc;
use std::time::Duration;

use cograph::graph::FunctionId;
use cograph::locks::{
    AcquireError, AgentId, Claim, LeaseCheck, LockConfig, LockMode, LockRequest, LockTable,
    LockTarget, Resource, ResourceName, ResourcePath,
};
use locks_support::{fun, module, req, req_for, settle};
use tokio_util::sync::CancellationToken;

const W: LockMode = LockMode::Write;
const R: LockMode = LockMode::Read;

fn table() -> Arc<LockTable> {
    LockTable::new(LockConfig::default())
}

type Waiting = tokio::task::JoinHandle<Result<cograph::locks::Grant, AcquireError>>;

fn spawn_wait(t: &Arc<LockTable>, r: LockRequest, wait_ms: u64) -> Waiting {
    spawn_cancellable(t, r, wait_ms, &CancellationToken::new())
}

fn spawn_cancellable(
    t: &Arc<LockTable>,
    r: LockRequest,
    wait_ms: u64,
    cancel: &CancellationToken,
) -> Waiting {
    let (t, cancel) = (t.clone(), cancel.clone());
    tokio::spawn(async move {
        t.acquire(r, Duration::from_millis(wait_ms), &cancel, None)
            .await
    })
}

/// Asks to wait a minute for `r`, which must be refused at once as a
/// deadlock; the cycle it names.
async fn refused_as_deadlock(t: &LockTable, r: LockRequest) -> Vec<AgentId> {
    let err = t
        .acquire(r, Duration::from_secs(60), &CancellationToken::new(), None)
        .await
        .unwrap_err();
    let AcquireError::Deadlock { cycle, .. } = err else {
        panic!("{err:?}")
    };
    cycle.agents
}

fn queue(t: &LockTable, f: u64) -> Vec<u64> {
    t.status()
        .into_iter()
        .find(|v| v.resource == fun(f))
        .map(|v| v.waiters.iter().map(|w| w.agent.0).collect())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_neither_blocks_nor_authorises_before_any_sweep() {
    // No sweeper runs in this test.
    let t = table();
    t.try_acquire(&req(1, &[(1, W)], Some(100))).unwrap();
    assert!(matches!(t.lease(AgentId(1), &fun(1)), LeaseCheck::Live(_)));
    assert!(t.try_acquire(&req(2, &[(1, R)], None)).is_err());
    tokio::time::advance(Duration::from_millis(99)).await;
    assert!(
        t.try_acquire(&req(2, &[(1, R)], None)).is_err(),
        "still live 1 ms before expiry"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    // The instant it expires: no authority, no blocking.
    assert!(matches!(
        t.lease(AgentId(1), &fun(1)),
        LeaseCheck::Expired { .. }
    ));
    assert!(
        t.conflicting_holders(
            AgentId(2),
            &LockTarget::function(FunctionId(1), module(), W)
        )
        .is_empty()
    );
    t.try_acquire(&req(2, &[(1, W)], None)).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_granted_when_the_holders_lease_expires() {
    let t = table();
    let _sweeper = t.spawn_sweeper(CancellationToken::new());
    t.try_acquire(&req(1, &[(1, W)], Some(100))).unwrap();
    let waiter = spawn_wait(&t, req(2, &[(1, W)], None), 10_000);
    settle().await;
    assert_eq!(queue(&t, 1), vec![2]);
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let grant = waiter.await.unwrap().unwrap();
    assert_eq!(grant.locks[0].resource, fun(1));
    assert!(matches!(
        t.lease(AgentId(1), &fun(1)),
        LeaseCheck::Expired { .. }
    ));
    assert!(matches!(t.lease(AgentId(2), &fun(1)), LeaseCheck::Live(_)));
}

#[tokio::test(start_paused = true)]
async fn continuously_arriving_readers_do_not_starve_a_waiting_writer() {
    let t = table();
    t.try_acquire(&req(1, &[(1, R)], None)).unwrap();
    let writer = spawn_wait(&t, req(100, &[(1, W)], None), 60_000);
    settle().await;
    // Readers keep arriving while the first one still reads: each is held
    // back behind the writer, and told it would be second in line.
    for reader in 2..20 {
        let err = t.try_acquire(&req(reader, &[(1, R)], None)).unwrap_err();
        let AcquireError::Denied(d) = err else {
            panic!("{err:?}")
        };
        assert_eq!(d.blocked[0].queue_position, 2);
        assert_eq!(d.blocked[0].waiting_ahead[0].agent, AgentId(100));
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    t.release(AgentId(1), None);
    settle().await;
    assert_eq!(writer.await.unwrap().unwrap().locks[0].claim, Claim::Write);
}

#[tokio::test(start_paused = true)]
async fn two_and_three_agent_cycles_are_refused_without_revoking_locks() {
    let t = table();
    // Two agents: 1 holds f1 and waits for f2; 2 holds f2 and asks for f1.
    t.try_acquire(&req(1, &[(1, W)], None)).unwrap();
    t.try_acquire(&req(2, &[(2, W)], None)).unwrap();
    let w1 = spawn_wait(&t, req(1, &[(2, W)], None), 60_000);
    settle().await;
    let cycle = refused_as_deadlock(&t, req(2, &[(1, W)], None)).await;
    assert_eq!(cycle, vec![AgentId(2), AgentId(1), AgentId(2)]);
    assert_eq!(t.held_by(AgentId(1)).len(), 1);
    assert_eq!(t.held_by(AgentId(2)).len(), 1);
    assert_eq!(
        queue(&t, 1),
        Vec::<u64>::new(),
        "the refused request was not queued"
    );

    // Three agents: 3 holds f3 and waits for f1 (held by 1, who waits for
    // f2 held by 2); 2 asking for f3 closes 2 -> 3 -> 1 -> 2.
    t.try_acquire(&req(3, &[(3, W)], None)).unwrap();
    let w3 = spawn_wait(&t, req(3, &[(1, W)], None), 60_000);
    settle().await;
    let cycle = refused_as_deadlock(&t, req(2, &[(3, R)], None)).await;
    assert_eq!(cycle, vec![AgentId(2), AgentId(3), AgentId(1), AgentId(2)]);
    for a in 1..=3 {
        assert_eq!(t.held_by(AgentId(a)).len(), 1, "agent {a} kept its lock");
    }
    // Without waiting, the same request is simply denied.
    assert!(matches!(
        t.try_acquire(&req(2, &[(3, R)], None)),
        Err(AcquireError::Denied(_))
    ));
    t.release(AgentId(2), None);
    settle().await;
    assert!(w1.await.unwrap().is_ok());
    t.release(AgentId(1), None);
    settle().await;
    assert!(w3.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn waiters_that_time_out_or_are_cancelled_leave_and_those_behind_move_up() {
    let t = table();
    t.try_acquire(&req(1, &[(1, W)], None)).unwrap();
    let a = spawn_wait(&t, req(2, &[(1, W)], None), 100);
    settle().await;
    let cancel = CancellationToken::new();
    let b = spawn_cancellable(&t, req(3, &[(1, W)], None), 60000, &cancel);
    settle().await;
    let c = spawn_wait(&t, req(4, &[(1, R)], None), 60_000);
    settle().await;
    assert_eq!(queue(&t, 1), vec![2, 3, 4]);
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let AcquireError::Timeout(d) = a.await.unwrap().unwrap_err() else {
        panic!()
    };
    assert_eq!(d.blocked[0].queue_position, 1);
    assert_eq!(queue(&t, 1), vec![3, 4]);
    cancel.cancel();
    settle().await;
    assert_eq!(b.await.unwrap().unwrap_err(), AcquireError::Cancelled);
    assert_eq!(queue(&t, 1), vec![4]);
    // Dropping a waiting future leaves the queue too.
    c.abort();
    settle().await;
    assert_eq!(queue(&t, 1), Vec::<u64>::new());
    assert_eq!(t.n_waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn ending_an_agent_releases_its_locks_and_wakes_its_waiters() {
    let t = table();
    t.try_acquire(&req(1, &[(1, W)], None)).unwrap();
    t.try_acquire(&req(2, &[(2, W)], None)).unwrap();
    let mine = spawn_wait(&t, req(2, &[(1, W)], None), 60_000);
    let other = spawn_wait(&t, req(3, &[(2, W)], None), 60_000);
    settle().await;
    let ended = t.end_agent(AgentId(2));
    assert_eq!(ended.released, vec![(fun(2), Claim::Write)]);
    assert_eq!(ended.n_dequeued, 1);
    settle().await;
    assert_eq!(mine.await.unwrap().unwrap_err(), AcquireError::AgentEnded);
    // The waiter for what agent 2 held is granted at once.
    assert!(other.await.unwrap().is_ok());
    assert!(t.held_by(AgentId(2)).is_empty());
}

#[tokio::test(start_paused = true)]
async fn fencing_tokens_rise_and_start_above_the_base() {
    let t = LockTable::new(LockConfig {
        fencing_base: 7 << 40,
        ..LockConfig::default()
    });
    let g1 = t.try_acquire(&req(1, &[(1, W)], None)).unwrap();
    let g2 = t.try_acquire(&req(1, &[(1, W)], None)).unwrap();
    let g3 = t.try_acquire(&req(2, &[(2, R)], None)).unwrap();
    assert!(g1.token.0 > 7 << 40);
    assert!(g1.token < g2.token && g2.token < g3.token);
    assert_eq!(t.fencing_high_water(), g3.token.0);
}

/// A grant the pump makes at the moment the waiter is cancelled is undone:
/// the caller is gone and would never learn it holds the lock. An upgrade
/// abandoned that way restores the old lease exactly (mode, token, expiry).
#[tokio::test(start_paused = true)]
async fn a_grant_racing_a_cancel_is_undone_exactly() {
    let t = table();
    let f = LockTarget::function(FunctionId(1), module(), R);
    // Agent 2 reads f; agent 1 also reads, so 2's upgrade must wait.
    t.try_acquire(&req(1, &[(1, R)], None)).unwrap();
    let before = t.try_acquire(&req(2, &[(1, R)], Some(60_000))).unwrap();
    let cancel = CancellationToken::new();
    let upgrade = spawn_cancellable(&t, req(2, &[(1, W)], Some(600_000)), 60000, &cancel);
    settle().await;
    assert_eq!(queue(&t, 1), vec![2]);
    // In one step, with no await between: 1 releases (the pump grants 2's
    // upgrade) and 2's call is cancelled.
    t.release(AgentId(1), None);
    cancel.cancel();
    assert_eq!(upgrade.await.unwrap().unwrap_err(), AcquireError::Cancelled);
    let holders = t.holders(&f);
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].agent, AgentId(2));
    assert_eq!(
        holders[0].claim,
        Claim::Read,
        "the abandoned upgrade was kept"
    );
    assert_eq!(holders[0].token, before.token, "the old lease was replaced");
    assert_eq!(holders[0].expires_at, before.locks[0].expires_at);

    // A fresh grant racing a cancel leaves nothing held.
    let cancel = CancellationToken::new();
    let waiter = spawn_cancellable(&t, req(3, &[(1, W)], None), 60000, &cancel);
    settle().await;
    t.release(AgentId(2), None);
    cancel.cancel();
    assert_eq!(waiter.await.unwrap().unwrap_err(), AcquireError::Cancelled);
    assert!(t.holders(&f).is_empty());
    assert_eq!(t.n_waiting(), 0);
}

fn path(p: &str, mode: LockMode) -> LockTarget {
    LockTarget::new(Resource::Path(ResourcePath::parse(p).unwrap()), mode)
}

fn permits(name: &str, n: u32, capacity: Option<u32>) -> LockTarget {
    LockTarget::permits(ResourceName::parse(name).unwrap(), n, capacity)
}

#[tokio::test(start_paused = true)]
async fn a_waiter_for_a_directory_is_granted_when_the_lease_below_lapses() {
    let t = table();
    let _sweeper = t.spawn_sweeper(CancellationToken::new());
    t.try_acquire(&req_for(1, vec![path("src/net/tcp.rs", W)], Some(100)))
        .unwrap();
    let dir = spawn_wait(&t, req_for(2, vec![path("src/", R)], None), 10_000);
    settle().await;
    assert_eq!(t.n_waiting(), 1);
    tokio::time::advance(Duration::from_millis(100)).await;
    settle().await;
    let grant = dir.await.unwrap().unwrap();
    assert_eq!(grant.locks[0].resource.to_string(), "path:src/");
}

/// A rate limit: permits held with the window as their lease and never
/// released. The next caller waits for the oldest permit's window to end.
#[tokio::test(start_paused = true)]
async fn permits_held_for_a_window_free_themselves_at_its_end() {
    let t = table();
    let _sweeper = t.spawn_sweeper(CancellationToken::new());
    for (agent, at_ms) in [(1, 0), (2, 400)] {
        tokio::time::advance(Duration::from_millis(at_ms)).await;
        t.try_acquire(&req_for(
            agent,
            vec![permits("api", 1, Some(2))],
            Some(1000),
        ))
        .unwrap();
    }
    let third = spawn_wait(
        &t,
        req_for(3, vec![permits("api", 1, None)], Some(1000)),
        10_000,
    );
    settle().await;
    tokio::time::advance(Duration::from_millis(599)).await;
    settle().await;
    assert!(!third.is_finished(), "both windows still open");
    tokio::time::advance(Duration::from_millis(1)).await;
    settle().await;
    let grant = third.await.unwrap().unwrap();
    assert_eq!(grant.locks[0].claim, Claim::Permits(1));
    let name = ResourceName::parse("api").unwrap();
    assert_eq!(t.capacity(&name), Some(2));
}
