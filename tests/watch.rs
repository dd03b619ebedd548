//! `cograph status --watch` (issue 13): the built binary follows a running
//! hub and redraws when an agent takes and releases locks through MCP,
//! with no polling of its own; without a hub it says so.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::served::Served;
use common::*;
use serde_json::json;

/// Frames of a piped `status --watch` (each ends with a line `--`).
struct Frames(mpsc::Receiver<String>);

impl Frames {
    fn follow(child: &mut std::process::Child) -> Frames {
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut frame = String::new();
            for line in out.lines() {
                let Ok(line) = line else { return };
                if line == "--" {
                    if tx.send(std::mem::take(&mut frame)).is_err() {
                        return;
                    }
                } else {
                    frame.push_str(&line);
                    frame.push('\n');
                }
            }
        });
        Frames(rx)
    }

    /// Frames until one satisfies `want`, within a generous bound.
    fn until(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(f) if want(&f) => return f,
                Ok(_) => {}
                Err(_) => panic!("no frame with {what} within 20 s"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_redraws_as_locks_are_taken_and_released() {
    let served = Served::start(&[]);
    let mut child = served.spawn(&["status", "--watch"]);
    let frames = Frames::follow(&mut child);
    let first = frames.until("the first frame", |f| f.contains("LOCKS"));
    assert!(first.contains("(nothing is locked)"), "{first}");

    let alice = served.session_client().await;
    ok(&call(
        &alice,
        "register_agent",
        json!({"name": "alice", "purpose": "net work"}),
    )
    .await);
    ok(&call(
        &alice,
        "acquire_locks",
        json!({"locks": [{"path": "src/net/", "mode": "write"}, {"semaphore": "gpu", "permits": 2, "capacity": 4}],
               "purpose": "rewriting tcp"}),
    )
    .await);
    let held = frames.until("alice's locks", |f| {
        f.contains("path:src/net/") && f.contains("semaphore:gpu")
    });
    assert!(held.contains("held  alice (write)"), "{held}");
    assert!(held.contains(": rewriting tcp"), "{held}");
    assert!(held.contains("[2/4 permits]"), "{held}");
    assert!(held.contains("left"), "the lease's time left shows: {held}");
    assert!(
        held.contains("alice") && held.contains("net work"),
        "{held}"
    );

    ok(&call(&alice, "release_locks", json!({})).await);
    let free = frames.until("the release", |f| f.contains("(nothing is locked)"));
    assert!(
        free.contains("released path:src/net/"),
        "the release shows in the events: {free}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn watch_without_a_hub_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let run = common::served::cli(&["status", "--watch"], dir.path());
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no hub is running"), "{run:?}");
}
