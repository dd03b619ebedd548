//! The reduction of `deadlock.rs`: cycles refused with the agents and
//! resources between them, chains queued, and semaphore waits that a
//! holder outside the cycle can satisfy (a wait-for graph's false
//! deadlock) queued.

use std::time::Duration;

use super::super::Admitted;
use super::*;
use crate::locks::state::testing::*;
use crate::locks::types::AcquireError;

fn cycle(result: Result<Admitted, AcquireError>) -> Cycle {
    match result {
        Err(AcquireError::Deadlock { cycle, .. }) => cycle,
        Err(e) => panic!("refused otherwise: {e:?}"),
        Ok(_) => panic!("admitted"),
    }
}

fn names(rs: &[Resource]) -> Vec<String> {
    rs.iter().map(|r| r.to_string()).collect()
}

#[test]
fn a_two_agent_cycle_is_refused_and_nothing_is_revoked() {
    let (mut s, now) = (State::new(0), start());
    s.ask(A, &[(1, W)], now).unwrap();
    s.ask(B, &[(2, W)], now).unwrap();
    s.queue(A, &[(2, W)], now);
    let c = cycle(s.ask_to_wait(B, &[(1, W)], now));
    assert_eq!(c.agents, vec![B, A, B]);
    assert_eq!(names(&c.resources), ["function:#1", "function:#2"]);
    assert_eq!(s.held_by(A, now).len(), 1);
    assert_eq!(s.held_by(B, now).len(), 1);
    assert_eq!(s.n_waiting(), 1, "the refused request was not queued");
}

#[test]
fn a_three_agent_cycle_is_refused_and_a_chain_is_queued() {
    let (mut s, now) = (State::new(0), start());
    for (agent, f) in [(A, 1), (B, 2), (C, 3)] {
        s.ask(agent, &[(f, W)], now).unwrap();
    }
    s.queue(A, &[(2, W)], now);
    s.queue(B, &[(3, R)], now);
    // D waiting for f1 closes no cycle: nobody waits for D.
    s.queue(D, &[(1, R)], now);
    assert_eq!(
        cycle(s.ask_to_wait(C, &[(1, R)], now)).agents,
        vec![C, A, B, C]
    );
}

#[test]
fn upgrading_while_a_writer_waits_is_a_deadlock() {
    // The writer waits for the reader; the reader's upgrade would wait
    // behind the writer.
    let (mut s, now) = (State::new(0), start());
    s.ask(A, &[(1, R)], now).unwrap();
    s.queue(B, &[(1, W)], now);
    assert_eq!(
        cycle(s.ask_to_wait(A, &[(1, W)], now)).agents,
        vec![A, B, A]
    );
}

#[test]
fn a_semaphore_wait_a_holder_outside_the_cycle_can_satisfy_is_no_deadlock() {
    // gpu has 2 permits: A and C hold one each. B waits for f1, which A
    // holds. A asking for one more permit waits for B or C; C waits for
    // nobody, so when C gives its permit back A is granted. A wait-for
    // graph sees the cycle A -> B -> A and refuses it; the reduction
    // does not.
    let (mut s, now) = (State::new(0), start());
    s.take(
        A,
        &[sem("gpu", 1, Some(2)), target("function:#1@m", W)],
        now,
    )
    .unwrap();
    s.take(B, &[sem("gpu", 1, None)], now).unwrap();
    s.take(C, &[target("named:c", W)], now).unwrap();
    s.queue(B, &[(1, W)], now);
    // B holds a permit and waits for A: A's second permit waits for B's
    // permit alone (C holds none), a real deadlock.
    let c = cycle(s.take_to_wait(A, &[sem("gpu", 2, None)], now));
    assert_eq!(c.agents, vec![A, B, A]);
    assert_eq!(names(&c.resources), ["semaphore:gpu", "function:#1"]);
    // With a third permit held by C, who waits for nobody, it is no
    // deadlock: C will give its permit back.
    let (mut s, now) = (State::new(0), start());
    s.take(
        A,
        &[sem("gpu", 1, Some(3)), target("function:#1@m", W)],
        now,
    )
    .unwrap();
    s.take(B, &[sem("gpu", 1, None)], now).unwrap();
    s.take(C, &[sem("gpu", 1, None)], now).unwrap();
    s.queue(B, &[(1, W)], now);
    s.queue_for(A, &[sem("gpu", 2, None)], now);
    s.release(C, None, start());
    s.pump(now);
    assert_eq!(s.n_waiting(), 1, "A got its second permit; B still waits");
}

#[test]
fn a_cycle_through_a_directory_and_a_semaphore_is_refused_naming_both() {
    let (mut s, now) = (State::new(0), start());
    s.take(A, &[target("path:src/net/tcp.rs", W)], now).unwrap();
    s.take(B, &[sem("build", 1, Some(1))], now).unwrap();
    s.queue_for(A, &[sem("build", 1, None)], now);
    let c = cycle(s.take_to_wait(B, &[target("path:src/", R)], now));
    assert_eq!(c.agents, vec![B, A, B]);
    assert_eq!(names(&c.resources), ["path:src/", "semaphore:build"]);
}

#[test]
fn a_cycle_through_an_earlier_waiter_is_refused() {
    // A waits for f1 behind nobody but its holder C, who waits for
    // nothing; B holds f2 and waits for f1 behind A.
    let (mut s, now) = (State::new(0), start());
    s.ask(C, &[(1, W)], now).unwrap();
    s.ask(B, &[(2, W)], now).unwrap();
    s.queue(A, &[(1, W)], now);
    s.queue(B, &[(1, W)], now);
    // A asking for f2 now closes A -> B -> A (B waits behind A).
    assert_eq!(
        cycle(s.ask_to_wait(A, &[(2, W)], now)).agents,
        vec![A, B, A]
    );
}

#[test]
fn lowering_a_capacity_into_a_deadlock_is_refused() {
    let (mut s, now) = (State::new(0), start());
    let name = crate::locks::resource::ResourceName::parse("gpu").unwrap();
    s.take(
        A,
        &[sem("gpu", 1, Some(3)), target("function:#1@m", W)],
        now,
    )
    .unwrap();
    s.take(B, &[sem("gpu", 1, None)], now).unwrap();
    s.take(C, &[target("function:#9@m", W)], now).unwrap();
    s.queue(B, &[(1, W)], now);
    let both = [sem("gpu", 2, None), target("function:#9@m", W)];
    s.queue_for(A, &both, now);
    // With 3 permits A's second fits once C gives f9 back; with 2 it would
    // wait for B, who waits for A.
    let e = s.set_capacity(&name, 2, now).unwrap_err();
    assert!(e.to_string().contains("would deadlock"), "{e}");
    assert_eq!(s.capacity(&name), Some(3));
}

#[test]
fn a_request_behind_a_cycle_no_request_closed_is_refused_with_the_path_to_it() {
    // A waits for f3, which it reads (a refresh), and for f4. Its lease on
    // f3 lapses: from then on it queues behind B's write of f3, and B
    // waits for A's lock on the module above f3. No request closed that
    // cycle. D asking for f3 would wait behind it for ever.
    let (mut s, t0) = (State::new(0), start());
    let short = Duration::from_millis(70);
    let f3 = |mode| target("function:#3@m::sub", mode);
    s.try_acquire(A, &[f3(R)], short, None, t0).unwrap();
    s.take(A, &[target("module:m::sub", R)], t0).unwrap();
    s.try_acquire(C, &[target("function:#4@n", R)], short, None, t0)
        .unwrap();
    s.queue_for(B, &[f3(W)], t0);
    s.queue_for(A, &[f3(R), target("function:#4@n", W)], t0);
    let t = later(t0, 70);
    s.sweep(t);
    assert_eq!(s.n_waiting(), 2, "both wait, for each other");
    let c = cycle(s.take_to_wait(D, &[f3(R)], t));
    assert_eq!(c.agents, vec![D, B, A, B]);
    assert_eq!(names(&c.resources), ["function:#3"; 3]);
}
