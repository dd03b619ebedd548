//! Small things a newcomer tripped over (issue 11, section 8), through the
//! built binary:
//! - three `cograph stdio` started at once each printed "started a hub",
//!   though only one of them did;
//! - `cograph import` against a directory whose hub runs said "stop it
//!   first" twice ("cannot open the store (stop the hub first): the data
//!   directory ... is in use ...; ... or stop it first"), and every error
//!   wrapping another (a parse error in `cograph check`) said it twice.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use common::{EXE, wait_for_hub};
use serde_json::{Value, json};

/// Stops the hub serving `dir`, found through its hub.json.
struct HubGuard(std::path::PathBuf);

impl Drop for HubGuard {
    fn drop(&mut self) {
        if let Some(info) = cograph::mcp::hub::HubInfo::read(&self.0) {
            let _ = Command::new("kill").arg(info.pid.to_string()).status();
        }
    }
}

#[test]
fn of_three_stdio_started_at_once_only_the_one_that_started_the_hub_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let _hub = HubGuard(dir.path().to_path_buf());
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(EXE)
                .args(["stdio", "--data", dir.path().to_str().unwrap()])
                .env("COGRAPH_LOG", "info")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "newcomer", "version": "0"}}});
    for child in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "{initialize}").unwrap();
    }
    // Each one answers through the one hub: all three are connected.
    for child in &mut children {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let reply: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(reply["id"], 1, "{line}");
    }
    let mut started = 0;
    let mut stderrs = Vec::new();
    for mut child in children {
        drop(child.stdin.take());
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        started += stderr.matches("started a hub").count();
        stderrs.push(stderr);
    }
    assert_eq!(started, 1, "{stderrs:#?}");
}

#[test]
fn an_error_against_a_running_hub_says_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut hub = Command::new(EXE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data])
        .env("COGRAPH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_hub(dir.path(), hub.id());
    let program = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/programs/fib.cg");
    for args in [
        vec!["import", program, "--data", data],
        vec!["stdio", "--standalone", "--data", data],
    ] {
        let out = Command::new(EXE)
            .args(&args)
            .env("COGRAPH_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        if out.status.success() {
            continue; // an import that goes through the hub has nothing to say twice
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        for phrase in ["in use", "first", "stop"] {
            assert!(
                stderr.matches(phrase).count() <= 1,
                "`{}` says {phrase:?} more than once: {stderr}",
                args[0]
            );
        }
        assert!(stderr.contains("in use"), "{stderr}");
    }
    let _ = hub.kill();
    let _ = hub.wait();
}

#[test]
fn a_parse_error_in_a_program_file_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.cg");
    std::fs::write(&file, "fn demo::f() -> i64 {\n  %0 = bogus 1\n}\n").unwrap();
    for command in ["check", "fmt"] {
        let out = Command::new(EXE)
            .args([command, file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.matches("line 2, column 8").count(),
            1,
            "`{command}`: {stderr}"
        );
    }
}
