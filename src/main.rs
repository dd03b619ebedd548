//! The `cograph` command line: program-file tools that need no server
//! (`check`, `run`, `fmt`) and, later, the server and its operator tools.
//! Logs go to stderr; stdout carries only results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use cograph::eval::{self, Budget};
use cograph::graph::{Program, Value, load_program, render_program};
use cograph::verify::verify_all;

#[derive(Parser)]
#[command(
    name = "cograph",
    version,
    about = "A shared program graph for many LLM agents, over MCP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a program file and print its diagnostics (exit 1 if any).
    Check { file: PathBuf },
    /// Run a function of a program file and print its value.
    Run {
        file: PathBuf,
        /// The function, as `module::name`.
        function: String,
        /// Arguments, one per parameter: `20`, `2.5`, `true`, `()`.
        args: Vec<String>,
        /// Node evaluations allowed.
        #[arg(long, default_value_t = Budget::default().fuel)]
        fuel: u64,
        /// Nested calls allowed.
        #[arg(long, default_value_t = Budget::default().max_depth)]
        max_depth: usize,
    },
    /// Print a program file in the canonical text form.
    Fmt { file: PathBuf },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COGRAPH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Run {
            file,
            function,
            args,
            fuel,
            max_depth,
        } => run_function(&file, &function, &args, Budget { fuel, max_depth }),
        Command::Fmt { file } => {
            let program = read_program(&file)?;
            print!("{}", render_program(&program));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_program(path: &Path) -> anyhow::Result<Program> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    load_program(&text).with_context(|| format!("{}", path.display()))
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let program = read_program(path)?;
    let diagnostics = verify_all(&program);
    for d in &diagnostics {
        println!("{}: {d}", path.display());
    }
    if diagnostics.is_empty() {
        eprintln!(
            "{}: {} functions, {} nodes, no diagnostics",
            path.display(),
            program.len(),
            program.n_nodes()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: {} diagnostics", path.display(), diagnostics.len());
        Ok(ExitCode::FAILURE)
    }
}

fn run_function(
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
    let Some(id) = program.lookup_str(function) else {
        bail!("{} has no function `{function}`", path.display());
    };
    let signature = &program.get(id).expect("looked up").function.signature;
    if args.len() != signature.params.len() {
        bail!(
            "`{function}` takes {} argument(s) {signature}, got {}",
            signature.params.len(),
            args.len()
        );
    }
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
