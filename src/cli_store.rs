//! Where the commands find the store (`--data`, `--store`), and the
//! commands that only read it: `log`, `export`, `verify`, and the recent
//! commits `status` shows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use cograph::graph::{program_to_json, render_program};
use cograph::mcp::admin;
use cograph::store::{STORE_ENV, StoreLocation, StoreReader};

use crate::program_files::report_diagnostics;

pub const DEFAULT_DATA: &str = ".cograph";

/// The data directory and, if not SQLite in it, the store.
#[derive(Args, Clone)]
pub struct At {
    /// Data directory (created if missing): the hub's sockets and
    /// hub.json, and the SQLite store unless --store names another.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Keep the store in this PostgreSQL database instead:
    /// postgres://USER[:PASSWORD]@HOST:PORT/DATABASE.
    #[arg(long, env = STORE_ENV, hide_env_values = true)]
    pub store: Option<String>,
}

impl At {
    pub fn location(&self) -> anyhow::Result<StoreLocation> {
        Ok(StoreLocation::choose(self.store.as_deref(), &self.data)?)
    }

    /// The store, for reading beside a hub that may own it.
    fn reader(&self) -> anyhow::Result<StoreReader> {
        Ok(StoreReader::open_at(&self.location()?)?)
    }

    /// How the commands' hints name this store: `--data DIR`, or
    /// `--store URL` (password left out).
    fn hint(&self) -> anyhow::Result<String> {
        Ok(match self.location()? {
            StoreLocation::Dir(dir) => format!("--data {}", dir.display()),
            StoreLocation::Postgres(url) => format!("--store {url}"),
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Text,
    Json,
}

/// `cograph log`: commits newest first, with the operator events among
/// them by time.
pub fn log(at: &At, limit: usize) -> anyhow::Result<ExitCode> {
    let reader = at.reader()?;
    let mut events = reader.events(None, limit)?;
    let commits = reader.history(None, None, limit)?;
    if commits.is_empty() && events.is_empty() {
        eprintln!(
            "the store {} has no commits yet (load a program with `cograph import FILE {}`)",
            at.location()?,
            at.hint()?
        );
    }
    for c in commits {
        while events.last().is_some_and(|e| e.time_ms > c.time_ms) {
            println!("{}", admin::log_line(&events.pop().expect("checked")));
        }
        println!(
            "r{} {} {} ({}){}: {}",
            c.revision.0,
            cograph::service::time::rfc3339_ms(c.time_ms),
            c.agent_name,
            c.agent_id,
            c.purpose.map(|p| format!(" [{p}]")).unwrap_or_default(),
            c.summary
        );
    }
    for e in events.iter().rev() {
        println!("{}", admin::log_line(e));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cograph export`: the stored program, as text or JSON.
pub fn export(at: &At, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let program = at.reader()?.program()?;
    if program.is_empty() {
        eprintln!(
            "the store {} holds no functions yet: nothing to export (load a program with `cograph import FILE {}`)",
            at.location()?,
            at.hint()?
        );
        return Ok(ExitCode::SUCCESS);
    }
    match format {
        ExportFormat::Text => print!("{}", render_program(&program)),
        ExportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&program_to_json(&program))?
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `cograph verify`: the stored program's diagnostics.
pub fn verify(at: &At) -> anyhow::Result<ExitCode> {
    let program = at.reader()?.program()?;
    let source = match at.location()? {
        StoreLocation::Dir(dir) => dir,
        StoreLocation::Postgres(url) => PathBuf::from(url.to_string()),
    };
    report_diagnostics(&source, &program)
}

/// The last five commits, for `cograph status` (nothing if there is no
/// store to read).
pub fn recent_commits(at: &At) -> anyhow::Result<()> {
    let Ok(reader) = at.reader() else {
        return Ok(());
    };
    let commits = reader.history(None, None, 5)?;
    println!("recent commits:");
    for c in commits {
        println!(
            "  r{} {} {}: {}",
            c.revision.0,
            cograph::service::time::rfc3339_ms(c.time_ms),
            c.agent_name,
            c.summary
        );
    }
    Ok(())
}

/// The data directory, absolute; created (0700) if missing.
pub fn data_dir(data: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    cograph::store::private::create_dir(data)
        .with_context(|| format!("cannot create {}", data.display()))?;
    data.canonicalize()
        .with_context(|| format!("cannot resolve {}", data.display()))
}
