//! The CLI's commands on program files (`check`, `run`, `fmt`, `import`):
//! reading a file, reporting its diagnostics, running a function of it,
//! importing it into a store no hub holds.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use cograph::eval::{self, Budget};
use cograph::graph::{FunctionRef, Program, Value, load_program};
use cograph::service::{Hub, HubConfig, HubError, ImportOutcome};
use cograph::store::{StoreError, StoreLocation};
use cograph::verify::verify_all;

pub fn read_program(path: &Path) -> anyhow::Result<Program> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_program(&text).with_context(|| format!("{}", path.display()))
}

pub fn report_diagnostics(source: &Path, program: &Program) -> anyhow::Result<ExitCode> {
    let diagnostics = verify_all(program);
    for d in &diagnostics {
        println!("{}: {d}", source.display());
    }
    if diagnostics.is_empty() {
        eprintln!(
            "{}: {} functions, {} nodes, root {}, no diagnostics",
            source.display(),
            program.len(),
            program.n_nodes(),
            program.root_hash()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} diagnostics", source.display(), diagnostics.len());
        Ok(ExitCode::FAILURE)
    }
}

pub fn run_function(
    path: &Path,
    function: &str,
    args: &[String],
    budget: Budget,
) -> anyhow::Result<ExitCode> {
    let program = read_program(path)?;
    let diagnostics = verify_all(&program);
    if let Some(d) = diagnostics.first() {
        bail!(
            "{} does not verify ({} diagnostics; first: {d}); run `cograph check`",
            path.display(),
            diagnostics.len()
        );
    }
    let function_ref = FunctionRef::parse(function)?;
    let Some(id) = program.lookup(&function_ref) else {
        bail!("{} has no function `{function}`", path.display());
    };
    let f = &program.get(id).expect("looked up").function;
    eval::check_arity(f, args.len())?;
    let signature = &f.signature;
    let values = args
        .iter()
        .zip(&signature.params)
        .map(|(text, p)| {
            Value::parse_as(p.ty, text).map_err(|e| anyhow::anyhow!("argument `{}`: {e}", p.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    match eval::run(&program, id, &values, budget) {
        Ok(out) => {
            println!("{}", out.value);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("runtime error [{}]: {e}", e.code());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `cograph import FILE` when no hub answers for the directory: opens the
/// store here and runs the hub's `import_file`, which the running hub runs
/// too (over its admin socket), so both paths parse, refuse and report
/// alike.
pub fn import_here(
    dir: &Path,
    store: StoreLocation,
    content: &str,
    source: &str,
    replace: bool,
) -> anyhow::Result<ImportOutcome> {
    super::runtime()?.block_on(async {
        let mut config = HubConfig::new(dir);
        config.store = store;
        let hub = match Hub::open(config) {
            Ok(hub) => hub,
            // The store is held, but by no hub that takes imports.
            Err(HubError::Store(StoreError::InUse { path })) => bail!(
                "the data directory {} is in use by a cograph process that takes no imports (`cograph stdio --standalone`, or a hub still starting); try again once it has exited or its hub answers",
                path.display()
            ),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot import")),
        };
        let result = hub.import_file(content, source, replace).await;
        hub.shutdown().await;
        result.map_err(|e| anyhow::anyhow!("{e}"))
    })
}
