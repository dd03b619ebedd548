//! The git guard on a real repository: `cograph guard install` writes the
//! pre-commit hook, and a real `git commit` is refused when it changes a
//! path another agent holds a lock on (read or write; on the file or a
//! directory above it; either side of a rename), naming the path, the
//! holder, its mode, purpose and lease end, and allowed for the holder
//! itself. `--require-lock` also wants the committer's write lock. With
//! no hub running the commit is refused, unless the hook was installed
//! with `--allow-no-hub`. A hook that is not ours is kept unless
//! `--force`. Each repository is a temporary directory with its own git
//! configuration; the hub is a `cograph serve` of the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::EXE;
use common::served::Served;

/// A git repository in a temporary directory, with one commit of
/// `src/net/tcp.rs`, `src/lib.rs`, `docs/old.md` and `README.md`.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git_ok(&["init", "-q", "-b", "main"]);
        repo.git_ok(&["config", "user.name", "Test Person"]);
        repo.git_ok(&["config", "user.email", "test@example.com"]);
        repo.git_ok(&["config", "commit.gpgsign", "false"]);
        for file in ["src/net/tcp.rs", "src/lib.rs", "docs/old.md", "README.md"] {
            repo.write(file, "first\n");
        }
        repo.git_ok(&["add", "-A"]);
        repo.git_ok(&["commit", "-q", "-m", "first"]);
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// git with no global or system configuration, as `agent` (the
    /// handle in COGRAPH_AGENT) if given.
    fn git_as(&self, agent: Option<&str>, args: &[&str]) -> Output {
        let mut git = Command::new("git");
        git.args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("COGRAPH_LOG", "warn")
            .env_remove("COGRAPH_AGENT");
        if let Some(handle) = agent {
            git.env("COGRAPH_AGENT", handle);
        }
        git.output().unwrap()
    }

    fn git_ok(&self, args: &[&str]) -> String {
        let out = self.git_as(None, args);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// Changes `file`, stages everything and commits as `agent`; returns
    /// whether the commit was made and git's stderr (the hook's).
    fn commit_as(&self, agent: Option<&str>, file: &str) -> (bool, String) {
        self.write(file, &format!("changed {}\n", self.n_commits()));
        self.git_ok(&["add", "-A"]);
        self.try_commit(agent)
    }

    /// Commits what is staged as `agent`.
    fn try_commit(&self, agent: Option<&str>) -> (bool, String) {
        let before = self.n_commits();
        let out = self.git_as(agent, &["commit", "-q", "-m", "change"]);
        let made = self.n_commits() == before + 1;
        assert_eq!(made, out.status.success(), "{}", text(&out.stderr));
        (made, text(&out.stderr))
    }

    fn n_commits(&self) -> usize {
        self.git_ok(&["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .unwrap()
    }

    /// Drops what is staged and changed, back to the last commit.
    fn reset(&self) {
        self.git_ok(&["reset", "-q", "--hard"]);
    }

    /// `cograph guard install ARGS --data DATA`, run in the repository.
    fn install(&self, data: &Path, args: &[&str]) -> Output {
        Command::new(EXE)
            .args(["guard", "install"])
            .args(args)
            .arg("--data")
            .arg(data)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    }

    fn install_ok(&self, data: &Path, args: &[&str]) {
        let out = self.install(data, args);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn hook(&self) -> PathBuf {
        self.path().join(".git/hooks/pre-commit")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts a shell agent and returns its handle.
fn agent(s: &Served, name: &str) -> String {
    let started = s.cli(&["agent", "start", name]);
    assert_eq!(started.code, Some(0), "{started:?}");
    started.stdout.trim().to_string()
}

fn lock(s: &Served, agent: &str, args: &[&str]) {
    let locked = s.cli_as(agent, args);
    assert_eq!(locked.code, Some(0), "{locked:?}");
}

#[test]
fn the_hook_refuses_a_commit_on_a_path_another_agent_locks_and_lets_the_holder_commit() {
    let s = Served::start(&[]);
    let repo = Repo::new();
    repo.install_ok(s.data(), &[]);
    let hook = std::fs::read_to_string(repo.hook()).unwrap();
    assert!(hook.starts_with("#!/bin/sh\n"), "{hook}");
    assert!(
        hook.contains(&format!(
            "'{}' guard --data '",
            std::fs::canonicalize(EXE).unwrap().display()
        )),
        "the binary by its absolute path: {hook}"
    );
    let mode = std::fs::metadata(repo.hook()).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable");

    let alice = agent(&s, "alice");
    let bob = agent(&s, "bob");
    // A lock on a directory above the file.
    lock(
        &s,
        &alice,
        &["lock", "path:src/net/", "--purpose", "rewrite tcp"],
    );

    let (made, stderr) = repo.commit_as(Some(&bob), "src/net/tcp.rs");
    assert!(!made, "{stderr}");
    for says in [
        "refusing the commit (committer: bob): 1 of 1 staged path refused",
        "src/net/tcp.rs: held by alice (ag_",
        "write on path:src/net/: rewrite tcp",
        ", until 20",
    ] {
        assert!(stderr.contains(says), "{says:?} in {stderr}");
    }
    // Without a committer, the lock refuses as well.
    let (made, stderr) = repo.try_commit(None);
    assert!(
        !made && stderr.contains("no committer: set COGRAPH_AGENT"),
        "{stderr}"
    );
    // The holder itself may commit it.
    let (made, stderr) = repo.try_commit(Some(&alice));
    assert!(made, "{stderr}");

    // Paths nobody locks go through, for anyone.
    let (made, stderr) = repo.commit_as(Some(&bob), "src/lib.rs");
    assert!(made, "{stderr}");
    let (made, stderr) = repo.commit_as(None, "README.md");
    assert!(made, "{stderr}");

    // Once the lock goes, Bob's commit of the file goes through.
    lock(&s, &alice, &["unlock"]);
    let (made, stderr) = repo.commit_as(Some(&bob), "src/net/tcp.rs");
    assert!(made, "{stderr}");

    // An unknown handle is refused as such.
    let (made, stderr) = repo.commit_as(Some("not-a-handle"), "README.md");
    assert!(!made && stderr.contains("unknown or expired"), "{stderr}");
}

#[test]
fn a_read_lock_refuses_too_and_a_rename_is_checked_on_both_sides() {
    let s = Served::start(&[]);
    let repo = Repo::new();
    repo.install_ok(s.data(), &[]);
    let alice = agent(&s, "alice");
    let bob = agent(&s, "bob");
    lock(
        &s,
        &alice,
        &[
            "lock",
            "path:docs/old.md",
            "--read",
            "--purpose",
            "reading it",
        ],
    );
    lock(
        &s,
        &alice,
        &["lock", "path:lib/", "--purpose", "new layout"],
    );

    // The old side of a rename is locked (for reading).
    repo.git_ok(&["mv", "docs/old.md", "notes.md"]);
    let (made, stderr) = repo.try_commit(Some(&bob));
    assert!(!made, "{stderr}");
    assert!(stderr.contains("1 of 2 staged paths refused"), "{stderr}");
    assert!(
        stderr.contains("docs/old.md: held by alice (ag_") && stderr.contains("read: reading it"),
        "{stderr}"
    );
    repo.reset();

    // The new side of a rename is below a locked directory.
    std::fs::create_dir(repo.path().join("lib")).unwrap();
    repo.git_ok(&["mv", "src/lib.rs", "lib/lib.rs"]);
    let (made, stderr) = repo.try_commit(Some(&bob));
    assert!(!made, "{stderr}");
    assert!(
        stderr.contains("lib/lib.rs: held by alice")
            && stderr.contains("write on path:lib/: new layout"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("  src/lib.rs:"),
        "the old side is free: {stderr}"
    );
    repo.reset();

    // A deletion is a change too.
    repo.git_ok(&["rm", "-q", "docs/old.md"]);
    let (made, stderr) = repo.try_commit(Some(&bob));
    assert!(!made && stderr.contains("docs/old.md"), "{stderr}");
}

#[test]
fn require_lock_wants_the_committers_write_lock_on_the_path_or_a_directory_above() {
    let s = Served::start(&[]);
    let repo = Repo::new();
    repo.install_ok(s.data(), &["--require-lock"]);
    assert!(
        std::fs::read_to_string(repo.hook())
            .unwrap()
            .contains(" --require-lock")
    );
    let bob = agent(&s, "bob");

    let (made, stderr) = repo.commit_as(Some(&bob), "README.md");
    assert!(!made, "{stderr}");
    assert!(
        stderr.contains("README.md: you hold no write lock on it or a directory above it"),
        "{stderr}"
    );
    assert!(stderr.contains("committer: bob"), "{stderr}");
    lock(&s, &bob, &["lock", "path:README.md", "--read"]);
    let (made, stderr) = repo.try_commit(Some(&bob));
    assert!(!made, "a read lock is not enough: {stderr}");
    lock(&s, &bob, &["lock", "path:README.md"]);
    let (made, stderr) = repo.try_commit(Some(&bob));
    assert!(made, "{stderr}");

    // A directory lock covers the files below it; others still are not.
    lock(&s, &bob, &["lock", "path:src/"]);
    let (made, stderr) = repo.commit_as(Some(&bob), "src/net/tcp.rs");
    assert!(made, "{stderr}");
    repo.write("docs/old.md", "changed\n");
    let (made, stderr) = repo.commit_as(Some(&bob), "src/lib.rs");
    assert!(
        !made && stderr.contains("1 of 2 staged paths refused"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  docs/old.md: you hold no write lock"),
        "{stderr}"
    );
}

#[test]
fn without_a_hub_the_commit_is_refused_unless_the_hook_allows_it() {
    let nowhere = tempfile::tempdir().unwrap();
    let repo = Repo::new();
    repo.install_ok(nowhere.path(), &[]);
    let (made, stderr) = repo.commit_as(None, "README.md");
    assert!(!made, "{stderr}");
    assert!(
        stderr.contains("refusing the commit: no hub is running for"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-no-hub"), "{stderr}");

    // Reinstalling over our own hook needs no --force.
    repo.install_ok(nowhere.path(), &["--allow-no-hub"]);
    let (made, stderr) = repo.try_commit(None);
    assert!(made, "{stderr}");
    assert!(
        stderr.contains("warning: no hub is running")
            && stderr.contains("letting the commit through"),
        "{stderr}"
    );
}

#[test]
fn install_keeps_a_hook_that_is_not_ours_unless_forced() {
    let repo = Repo::new();
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(repo.hook().parent().unwrap()).unwrap();
    std::fs::write(repo.hook(), "#!/bin/sh\necho mine\n").unwrap();
    let refused = repo.install(data.path(), &[]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("was not written by `cograph guard install`") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.hook()).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    repo.install_ok(data.path(), &["--force"]);
    assert!(
        std::fs::read_to_string(repo.hook())
            .unwrap()
            .contains("# cograph guard hook")
    );
}
