//! `cograph guard`, the git pre-commit hook, and `cograph guard install`,
//! which writes it. The guard reads the paths a commit changes from git
//! (both sides of a rename), asks the running hub in one request whether
//! the committer (`COGRAPH_AGENT`) may change them, and refuses the commit
//! (exit 1) naming each path and the locks in its way. The decision is
//! the hub's (`Hub::check_paths`); this file is the git plumbing.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use cograph::mcp::admin::{self, AdminReply, AdminRequest, text};

use super::DEFAULT_DATA;
use super::cli_shell::{self, NO_HUB, OTHER};

/// The guard's exit codes, as `--help` states them.
pub const EXIT_CODES: &str = "Exit codes (git refuses the commit on any but 0):
  0  the commit may go (or no hub runs, with --allow-no-hub)
  1  refused: a path is locked by another agent (or, with --require-lock, not by you)
  5  no hub is running for the data directory
  6  COGRAPH_AGENT holds an unknown or expired handle
  7  any other error (git failed, the hub did not answer)";

/// Marks a hook as written by `cograph guard install`, which may then
/// replace it without `--force`.
const MARKER: &str = "# cograph guard hook";

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GuardArgs {
    #[command(subcommand)]
    install: Option<GuardCommand>,
    #[command(flatten)]
    check: CheckArgs,
}

#[derive(Subcommand)]
enum GuardCommand {
    /// Write `.git/hooks/pre-commit` (where `git rev-parse --git-path
    /// hooks` says) to run this guard with these flags, by this binary's
    /// absolute path and the data directory's, from wherever git runs it.
    Install {
        /// Replace a pre-commit hook that `cograph guard install` did not
        /// write.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        check: CheckArgs,
    },
}

#[derive(Args)]
struct CheckArgs {
    /// Also refuse paths the committer holds no write lock on (on the path
    /// or a directory above it).
    #[arg(long)]
    require_lock: bool,
    /// When no hub runs, warn and let the commit through (default: refuse
    /// it, since nobody's locks can be checked).
    #[arg(long)]
    allow_no_hub: bool,
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
}

/// Runs `cograph guard` or `cograph guard install`.
pub fn run(args: GuardArgs) -> ExitCode {
    let result = match args.install {
        Some(GuardCommand::Install { force, check }) => install(force, &check),
        None => check(&args.check),
    };
    result.unwrap_or_else(|e| {
        eprintln!("cograph guard: error: {e:#}");
        ExitCode::from(OTHER)
    })
}

/// The guard itself: exit 0 to let the commit through, 1 to refuse it.
fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let paths = staged_paths()?;
    if paths.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let request = AdminRequest::CheckPaths {
        agent: cli_shell::agent_from_env(),
        paths,
        require_lock: args.require_lock,
    };
    let reply = match admin::call(&args.data, &request, |_| {}) {
        Ok(Some(reply)) => reply,
        Ok(None) if args.allow_no_hub => {
            eprintln!(
                "cograph guard: warning: no hub is running for {}, so no locks were checked; letting the commit through (--allow-no-hub)",
                args.data.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Ok(None) => {
            eprintln!(
                "cograph guard: refusing the commit: no hub is running for {}, so nobody's locks can be checked (start one with `cograph serve --data {}`; `cograph guard install --allow-no-hub` lets commits through when none runs; `git commit --no-verify` skips the guard)",
                args.data.display(),
                args.data.display()
            );
            return Ok(ExitCode::from(NO_HUB));
        }
        Err(e) => {
            eprintln!("cograph guard: refusing the commit: {e:#}");
            return Ok(ExitCode::from(OTHER));
        }
    };
    let shown = text::show(&reply);
    eprint!("{}", shown.stderr);
    if let AdminReply::Error { .. } = reply {
        eprintln!("cograph guard: refusing the commit");
    }
    Ok(ExitCode::from(cli_shell::exit_code(shown.refusal)))
}

/// The paths the staged commit adds, changes or deletes, relative to the
/// repository's root; a rename counts as its deletion and its addition,
/// so both sides are checked.
fn staged_paths() -> anyhow::Result<Vec<String>> {
    let out = git(&[
        "diff",
        "--cached",
        "--name-only",
        "-z",
        "--no-renames",
        "--no-relative",
        "--diff-filter=ACDMRT",
    ])?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}

/// Runs git with `args` and returns its stdout, or its stderr as the
/// error.
fn git(args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// Writes the pre-commit hook.
fn install(force: bool, check: &CheckArgs) -> anyhow::Result<ExitCode> {
    let hooks = git(&["rev-parse", "--git-path", "hooks"])?;
    let hooks = std::path::absolute(String::from_utf8_lossy(&hooks).trim())
        .context("cannot resolve the hooks directory")?;
    let hook = hooks.join("pre-commit");
    if let Ok(existing) = std::fs::read_to_string(&hook)
        && !existing.contains(MARKER)
        && !force
    {
        eprintln!(
            "cograph guard: {} exists and was not written by `cograph guard install`; not replacing it (--force replaces it; or call `{}` from it)",
            hook.display(),
            guard_command(check)?
        );
        return Ok(ExitCode::FAILURE);
    }
    std::fs::create_dir_all(&hooks)
        .with_context(|| format!("cannot create {}", hooks.display()))?;
    let script = format!(
        "#!/bin/sh\n{MARKER}: refuses a commit that changes paths other agents have locked.\n# Written by `cograph guard install`; run it again to change it. The committer is $COGRAPH_AGENT.\nexec {}\n",
        guard_command(check)?
    );
    let mut file =
        std::fs::File::create(&hook).with_context(|| format!("cannot write {}", hook.display()))?;
    file.write_all(script.as_bytes())?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", hook.display()))?;
    eprintln!(
        "installed the cograph guard as {} (hub data directory {}); set COGRAPH_AGENT to the committer's handle",
        hook.display(),
        absolute(&check.data)?.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The command the hook runs: this binary and the data directory by
/// absolute paths (git runs hooks from the work tree's root), with the
/// flags given.
fn guard_command(check: &CheckArgs) -> anyhow::Result<String> {
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .context("cannot find this cograph binary")?;
    let data = absolute(&check.data)?;
    let mut command = format!("{} guard --data {}", shell_quote(&exe), shell_quote(&data));
    if check.require_lock {
        command.push_str(" --require-lock");
    }
    if check.allow_no_hub {
        command.push_str(" --allow-no-hub");
    }
    Ok(command)
}

/// `path` from the root: resolved if it exists (a data directory may not
/// yet; the hub creates it).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// A path as one word of `sh`: single-quoted, each `'` written `'\''`.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}
