//! The rules of `state.rs` on every kind of resource, step by step on a
//! clock made by hand: all-or-nothing, refresh and upgrade, overlap through
//! directories and modules, semaphores' permits and capacities, FIFO order
//! of mixed requests, expiry at the instant, operators' breaks.

use super::testing::*;
use super::*;
use crate::graph::FunctionId;
use crate::locks::resource::ResourceName;
use crate::locks::types::{Claim, InvalidRequest, targets};

#[test]
fn readers_share_and_a_writer_is_denied_naming_them() {
    let (mut s, now) = (State::new(0), start());
    s.ask(A, &[(1, R)], now).unwrap();
    s.ask(B, &[(1, R)], now).unwrap();
    let d = s.denied(C, &[(1, W)], now);
    assert_eq!(d.blocked.len(), 1);
    assert_eq!(agents(&d.blocked[0].holders), vec![A, B]);
    assert_eq!(
        (d.blocked[0].queue_position, d.blocked[0].queue_length),
        (1, 0)
    );
}

#[test]
fn a_batch_is_granted_whole_or_not_at_all() {
    let (mut s, now) = (State::new(0), start());
    s.ask(A, &[(2, W)], now).unwrap();
    let d = s.denied(C, &[(1, W), (2, R), (3, W)], now);
    assert_eq!(d.blocked.len(), 1, "only f2 is blocked");
    assert_eq!(d.blocked[0].resource, Resource::Function(FunctionId(2)));
    assert!(s.held_by(C, now).is_empty(), "nothing of the batch is held");
    // What the failed batch asked for is still free for others.
    s.ask(D, &[(1, W), (3, W)], now).unwrap();
}

#[test]
fn a_refresh_skips_the_queue_but_an_upgrade_waits_its_turn() {
    let (mut s, now) = (State::new(0), start());
    let first = s.ask(A, &[(1, R)], now).unwrap();
    s.queue(B, &[(1, W)], now);
    let refreshed = s.ask(A, &[(1, R)], later(now, 10)).unwrap();
    assert!(refreshed.token > first.token);
    assert!(refreshed.locks[0].expires_at > first.locks[0].expires_at);
    let d = s.denied(A, &[(1, W)], now);
    assert!(d.blocked[0].holders.is_empty(), "A is the only holder");
    assert_eq!(d.blocked[0].waiting_ahead[0].agent, B);
}

#[test]
fn a_directory_is_denied_while_a_file_below_it_is_held() {
    let (mut s, now) = (State::new(0), start());
    let g = s.take(A, &[target("path:src/net/tcp.rs", R)], now).unwrap();
    let d = s.refused(B, &[target("path:src/", W)], now);
    let h = &d.blocked[0].holders[0];
    assert_eq!(d.blocked[0].resource.to_string(), "path:src/");
    assert_eq!((h.agent, h.below, h.claim), (A, true, Claim::Read));
    assert_eq!(h.resource.to_string(), "path:src/", "held below src/");
    assert_eq!((h.token, h.expires_at), (g.token, g.locks[0].expires_at));
    // Reading the directory beside a reader below it is fine.
    s.take(B, &[target("path:src/", R)], now).unwrap();
}

#[test]
fn a_file_is_denied_under_a_held_directory_naming_the_directory() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("path:src/", W)], now).unwrap();
    let d = s.refused(B, &[target("path:src/net/tcp.rs", R)], now);
    let h = &d.blocked[0].holders[0];
    assert_eq!((h.agent, h.below), (A, false));
    assert_eq!(h.resource.to_string(), "path:src/");
}

#[test]
fn near_misses_and_siblings_do_not_block() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("path:lib/a", W)], now).unwrap();
    s.take(B, &[target("path:lib/ab", W)], now).unwrap();
    s.take(C, &[target("path:lib/b/", W)], now).unwrap();
    s.take(D, &[target("named:lib/a", W)], now).unwrap();
    let d = s.refused(D, &[target("path:lib/", R)], now);
    assert_eq!(agents(&d.blocked[0].holders), vec![A, B, C]);
}

#[test]
fn a_module_is_refused_while_one_of_its_functions_is_held() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("function:#7@math::linalg", W)], now)
        .unwrap();
    for module in ["module:math", "module:math::linalg"] {
        let d = s.refused(B, &[target(module, R)], now);
        let h = &d.blocked[0].holders[0];
        assert_eq!((h.agent, h.below, h.claim), (A, true, Claim::Write));
        assert_eq!(h.resource.to_string(), module);
    }
    s.take(B, &[target("module:math::other", W)], now).unwrap();
    s.take(B, &[target("module:mathematics", W)], now).unwrap();
}

#[test]
fn a_function_is_refused_inside_a_held_module() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("module:math", R)], now).unwrap();
    s.take(B, &[target("function:#7@math", R)], now).unwrap();
    let d = s.refused(B, &[target("function:#8@math::linalg", W)], now);
    let h = &d.blocked[0].holders[0];
    assert_eq!((h.agent, h.resource.to_string()), (A, "module:math".into()));
}

#[test]
fn a_lock_below_stops_blocking_at_its_instant_before_any_purge() {
    let (mut s, t0) = (State::new(0), start());
    let file = target("path:src/a.rs", W);
    let ttl = Duration::from_millis(100);
    s.try_acquire(A, &[file], ttl, None, t0).unwrap();
    let dir = [target("path:src/", W)];
    assert!(!s.grantable(B, &dir, None, later(t0, 99)));
    assert!(s.grantable(B, &dir, None, later(t0, 100)));
}

#[test]
fn releasing_a_file_frees_the_directory_above_it() {
    let (mut s, now) = (State::new(0), start());
    s.take(
        A,
        &[target("path:src/a/b.rs", W), target("path:src/c.rs", R)],
        now,
    )
    .unwrap();
    let released = s.release(
        A,
        Some(&[Resource::parse("path:src/a/b.rs").unwrap()]),
        start(),
    );
    assert_eq!(released.len(), 1);
    s.take(B, &[target("path:src/a/", W)], now).unwrap();
    assert!(
        s.take(B, &[target("path:src/", W)], now).is_err(),
        "c.rs is held"
    );
    s.release(A, None, start());
    s.take(C, &[target("path:src/", R)], now).unwrap_err();
    s.release(B, None, start());
    s.take(C, &[target("path:src/", W)], now).unwrap();
}

#[test]
fn named_resources_are_plain_read_write_locks() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("named:deploy:staging", R)], now)
        .unwrap();
    s.take(B, &[target("named:deploy:staging", R)], now)
        .unwrap();
    s.refused(C, &[target("named:deploy:staging", W)], now);
    s.take(C, &[target("named:deploy:prod", W)], now).unwrap();
}

#[test]
fn a_semaphore_grants_permits_up_to_its_capacity_and_no_more() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[sem("gpu", 2, Some(3))], now).unwrap();
    s.take(B, &[sem("gpu", 1, Some(3))], now).unwrap();
    let d = s.refused(C, &[sem("gpu", 1, None)], now);
    let b = &d.blocked[0];
    assert_eq!(agents(&b.holders), vec![A, B]);
    let used = b.semaphore.expect("a semaphore's use");
    assert_eq!((used.capacity, used.in_use), (3, 3));
    s.release(B, None, start());
    s.take(C, &[sem("gpu", 1, None)], now).unwrap();
}

#[test]
fn a_semaphore_capacity_is_fixed_at_first_use_and_a_disagreeing_one_is_refused() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[sem("gpu", 1, Some(4))], now).unwrap();
    let e = s.take(B, &[sem("gpu", 1, Some(8))], now).unwrap_err();
    let AcquireError::Invalid(InvalidRequest::CapacityMismatch {
        capacity, asked, ..
    }) = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((capacity, asked), (4, 8));
    assert_eq!(
        e.to_string(),
        "semaphore:gpu has capacity 4, not 8",
        "the message names both"
    );
    let e = s.take(B, &[sem("gpu", 5, None)], now).unwrap_err();
    assert!(matches!(
        e,
        AcquireError::Invalid(InvalidRequest::PermitsOverCapacity { .. })
    ));
    assert!(s.held_by(B, now).is_empty());
}

#[test]
fn a_semaphore_without_a_capacity_needs_one_and_a_denied_request_fixes_none() {
    let (mut s, now) = (State::new(0), start());
    let e = s.take(A, &[sem("slots", 1, None)], now).unwrap_err();
    assert!(matches!(
        e,
        AcquireError::Invalid(InvalidRequest::CapacityUnknown { .. })
    ));
    s.ask(B, &[(1, W)], now).unwrap();
    let batch = [sem("slots", 1, Some(2)), targets(&[(1, W)])[0].clone()];
    s.refused(A, &batch, now);
    let name = ResourceName::parse("slots").unwrap();
    assert_eq!(s.capacity(&name), None, "a denied request fixes nothing");
    s.take(A, &[sem("slots", 1, Some(5))], now).unwrap();
    assert_eq!(s.capacity(&name), Some(5));
}

#[test]
fn a_large_semaphore_request_at_the_head_is_not_overtaken_by_small_ones() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[sem("gpu", 2, Some(4))], now).unwrap();
    let big = s.queue_for(B, &[sem("gpu", 3, None)], now);
    // One permit is free, but B's three are reserved ahead of C.
    let d = s.refused(C, &[sem("gpu", 1, None)], now);
    assert_eq!(d.blocked[0].waiting_ahead[0].agent, B);
    let small = s.queue_for(C, &[sem("gpu", 1, None)], now);
    s.release(A, None, start());
    s.pump(now);
    assert!(s.collect(big).expect("B first").is_ok());
    assert!(s.collect(small).expect("then C").is_ok());
}

#[test]
fn semaphore_permits_upgrade_in_turn_and_a_smaller_ask_keeps_them() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[sem("gpu", 1, Some(3))], now).unwrap();
    let g = s.take(A, &[sem("gpu", 3, None)], now).unwrap();
    assert_eq!(g.locks[0].claim, Claim::Permits(3));
    let g = s.take(A, &[sem("gpu", 1, None)], now).unwrap();
    assert_eq!(
        g.locks[0].claim,
        Claim::Permits(3),
        "an agent holds it once"
    );
    s.refused(B, &[sem("gpu", 1, None)], now);
}

#[test]
fn a_mixed_batch_takes_nothing_when_one_resource_is_blocked() {
    let (mut s, now) = (State::new(0), start());
    s.take(B, &[target("named:deploy", W)], now).unwrap();
    let batch = [
        target("path:src/", W),
        sem("gpu", 2, Some(2)),
        target("function:#3@m", W),
        target("named:deploy", R),
    ];
    let d = s.refused(A, &batch, now);
    assert_eq!(d.blocked.len(), 1);
    assert!(s.held_by(A, now).is_empty());
    s.take(C, &[sem("gpu", 2, Some(2)), target("path:src/x", W)], now)
        .unwrap();
}

#[test]
fn fifo_holds_across_kinds_a_file_waits_behind_a_waiting_directory() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("path:src/a.rs", R)], now).unwrap();
    let dir = s.queue_for(B, &[target("path:src/", W)], now);
    // src/b.rs is free, but it lies under the directory B waits for.
    let d = s.refused(C, &[target("path:src/b.rs", R)], now);
    let w = &d.blocked[0].waiting_ahead[0];
    assert_eq!((w.agent, w.resource.to_string()), (B, "path:src/".into()));
    assert_eq!(d.blocked[0].queue_position, 2);
    // A sibling tree is not behind it.
    s.take(C, &[target("path:lib/b.rs", W)], now).unwrap();
    s.release(A, None, start());
    s.pump(now);
    assert!(s.collect(dir).expect("granted").is_ok());
}

#[test]
fn status_lists_each_resource_with_its_own_holders_and_waiters() {
    let (mut s, now) = (State::new(0), start());
    s.take(
        A,
        &[target("path:src/a.rs", W), sem("gpu", 1, Some(2))],
        now,
    )
    .unwrap();
    s.queue_for(B, &[target("path:src/", R)], now);
    let status = s.status(now);
    let names: Vec<String> = status.iter().map(|v| v.resource.to_string()).collect();
    assert_eq!(names, ["path:src/", "path:src/a.rs", "semaphore:gpu"]);
    assert!(status[0].holders.is_empty());
    assert_eq!(status[0].waiters[0].position, 1);
    let used = status[2].semaphore.unwrap();
    assert_eq!((used.capacity, used.in_use), (2, 1));
}

#[test]
fn breaking_a_directory_lock_ends_that_lease_alone() {
    let (mut s, now) = (State::new(0), start());
    s.take(
        A,
        &[target("path:src/", R), target("path:src/a.rs", R)],
        now,
    )
    .unwrap();
    let broken = s.break_lock(&Resource::parse("path:src/").unwrap(), now);
    assert_eq!(broken.len(), 1);
    let left: Vec<String> = s
        .held_by(A, now)
        .iter()
        .map(|l| l.resource.to_string())
        .collect();
    assert_eq!(left, ["path:src/a.rs"]);
    let lease = s.lease(A, &Resource::parse("path:src").unwrap(), now);
    assert!(matches!(lease, crate::locks::LeaseCheck::Expired { .. }));
}

#[test]
fn breaking_a_semaphore_ends_every_holders_permits_and_grants_the_waiter() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[sem("gpu", 1, Some(2))], now).unwrap();
    s.take(B, &[sem("gpu", 1, None)], now).unwrap();
    let waiting = s.queue_for(C, &[sem("gpu", 2, None)], now);
    let broken = s.break_lock(&Resource::parse("semaphore:gpu").unwrap(), now);
    assert_eq!(
        broken
            .iter()
            .map(|b| (b.agent, b.claim))
            .collect::<Vec<_>>(),
        [(A, Claim::Permits(1)), (B, Claim::Permits(1))]
    );
    assert!(s.collect(waiting).expect("granted").is_ok());
    let lease = s.lease(A, &Resource::parse("semaphore:gpu").unwrap(), now);
    assert!(matches!(lease, crate::locks::LeaseCheck::Expired { .. }));
}

#[test]
fn an_operator_raises_a_capacity_for_waiters_and_may_not_lower_it_below_use() {
    let (mut s, now) = (State::new(0), start());
    let name = ResourceName::parse("gpu").unwrap();
    s.take(A, &[sem("gpu", 2, Some(2))], now).unwrap();
    let waiting = s.queue_for(B, &[sem("gpu", 1, None)], now);
    assert!(s.set_capacity(&name, 1, now).is_err(), "two in use");
    assert_eq!(s.set_capacity(&name, 3, now), Ok(Some(2)));
    assert!(s.collect(waiting).expect("granted").is_ok());
}

#[test]
fn ending_an_agent_releases_every_kind() {
    let (mut s, now) = (State::new(0), start());
    let batch = [
        target("path:src/", W),
        sem("gpu", 1, Some(1)),
        target("module:m", R),
        target("named:deploy", W),
    ];
    s.take(A, &batch, now).unwrap();
    let ended = s.end_agent(A, now);
    assert_eq!(ended.released.len(), 4);
    s.take(B, &batch, now).unwrap();
}

#[test]
fn slots_let_go_when_idle_are_reused_and_a_lock_still_finds_its_ancestors() {
    // Past IDLE_ENTRIES keys, idle records go and their slots are reused
    // for new keys; the locks that keep slots of their ancestors must
    // still take their intentions off the right keys.
    let (mut s, now) = (State::new(0), start());
    let n = IDLE_ENTRIES + 100;
    let file = |i: usize| target(&format!("path:d{}/e{i}/f.rs", i % 7), W);
    for i in 0..n {
        s.take(A, &[file(i)], now).unwrap();
    }
    // B holds a file deep in the tree while A lets everything go: the
    // slots of A's keys are freed, B's ancestors' are not.
    s.take(B, &[target("path:d1/e1/g/h/i/j/k/l/m.rs", W)], now)
        .unwrap();
    s.take(B, &[target("function:#9@x::y", R)], now).unwrap();
    s.release(A, None, now);
    assert_eq!(s.keys.len(), IDLE_ENTRIES, "idle keys go past the bound");
    // New keys take the freed slots; the tree above B's file still meets.
    for i in 0..n {
        s.take(C, &[target(&format!("path:z{i}/q.rs"), W)], now)
            .unwrap();
    }
    s.refused(D, &[target("path:d1/e1/g/", W)], now);
    s.refused(D, &[target("module:x", W)], now);
    s.release(B, None, now);
    s.take(D, &[target("path:d1/e1/g/", W)], now).unwrap();
    s.take(D, &[target("module:x", W)], now).unwrap();
    s.release(C, None, now);
    s.release(D, None, now);
    assert_eq!(s.keys.len(), IDLE_ENTRIES, "idle keys go past the bound");
    assert!(s.status(now).is_empty());
}
