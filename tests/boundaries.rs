//! Architecture checks: the layer rules (which module may name which), the
//! protocol stays in `src/mcp/`, the MCP layer goes through the `Hub`, and
//! the tool schemas in `tool-schemas/` match what the server advertises.

mod common;

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn rel(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

/// The text of a source file without its comments, so that a doc comment
/// naming a module is not an import of it.
fn code_of(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| match line.find("//") {
            Some(idx) => &line[..idx],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `crate::` modules a file names (`crate::graph::...`, `crate::locks`).
fn crate_modules(code: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    for (idx, _) in code.match_indices("crate::") {
        let rest = &code[idx + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        if let Some(braced) = rest.strip_prefix('{') {
            // `use crate::{a, b::c}`: every name at the top of the braces.
            let inner: String = braced.chars().take_while(|c| *c != '}').collect();
            for part in inner.split(',') {
                let head: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    found.insert(head);
                }
            }
        }
    }
    found
}

/// The layer rules of ARCHITECTURE.md: for each module, the cograph modules
/// it may not name. `main.rs` (the CLI) may name any of them.
const LAYERS: [(&str, &[&str]); 7] = [
    (
        "graph",
        &["verify", "eval", "locks", "store", "service", "mcp"],
    ),
    ("verify", &["eval", "locks", "store", "service", "mcp"]),
    ("eval", &["verify", "locks", "store", "service", "mcp"]),
    ("locks", &["verify", "eval", "store", "service", "mcp"]),
    ("store", &["verify", "eval", "locks", "service", "mcp"]),
    ("service", &["mcp"]),
    ("mcp", &[]),
];

macro_rules! layer_tests {
    ($($test:ident: $module:literal;)*) => {$(
        #[test]
        fn $test() {
            let (_, forbidden) = LAYERS.iter().find(|(m, _)| *m == $module).unwrap();
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut files = Vec::new();
            rust_files(&root.join("src").join($module), &mut files);
            assert!(!files.is_empty(), "src/{} has no files", $module);
            let mut offenders = Vec::new();
            for file in &files {
                for used in crate_modules(&code_of(file)) {
                    if forbidden.contains(&used.as_str()) {
                        offenders.push(format!("{} names crate::{used}", rel(root, file)));
                    }
                }
            }
            assert!(offenders.is_empty(), "layer rule broken:\n{}", offenders.join("\n"));
        }
    )*};
}

layer_tests! {
    graph_names_nothing_of_cograph_but_itself: "graph";
    verify_names_only_graph: "verify";
    eval_names_only_graph: "eval";
    locks_name_only_graph: "locks";
    store_names_only_graph: "store";
    service_does_not_name_mcp: "service";
}

#[test]
fn the_layer_table_covers_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut modules: Vec<String> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    modules.sort();
    let mut listed: Vec<String> = LAYERS.iter().map(|(m, _)| m.to_string()).collect();
    listed.sort();
    assert_eq!(
        modules, listed,
        "every module under src/ has a row in LAYERS"
    );
}

#[test]
fn the_checker_sees_braced_and_plain_imports() {
    let code = "use crate::{graph::X, locks};\nlet t = crate::store::open();";
    let found: Vec<String> = crate_modules(code).into_iter().collect();
    assert_eq!(found, ["graph", "locks", "store"]);
    assert!(crate_modules(&code_of_text("// crate::mcp in a comment")).is_empty());
}

fn code_of_text(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(&file, text).unwrap();
    code_of(&file)
}

/// The files of the binary: `src/main.rs` and the modules it declares
/// (`mod cli_shell;` is `src/cli_shell.rs`), which are part of the command
/// line, not of the library's layers.
fn binary_files(root: &Path) -> Vec<String> {
    let main = code_of(&root.join("src/main.rs"));
    let mut files = vec!["src/main.rs".to_string()];
    for line in main.lines() {
        if let Some(name) = line
            .trim()
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
        {
            files.push(format!("src/{name}.rs"));
        }
    }
    files
}

#[test]
fn nothing_but_main_names_mcp() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let binary = binary_files(root);
    let mut offenders = Vec::new();
    for file in &files {
        let rel = rel(root, file);
        if rel.starts_with("src/mcp/") || binary.contains(&rel) || rel == "src/lib.rs" {
            continue;
        }
        let code = code_of(file);
        if crate_modules(&code).contains("mcp") || code.contains("cograph::mcp") {
            offenders.push(rel);
        }
    }
    assert!(
        offenders.is_empty(),
        "outside main, names mcp: {offenders:?}"
    );
}

#[test]
fn main_does_not_borrow_mcp_views_for_formatting() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = binary_files(root);
    assert!(binary.len() > 1, "main.rs declares its modules: {binary:?}");
    for file in binary {
        let code = code_of(&root.join(&file));
        assert!(!code.contains("mcp::views"), "{file} uses mcp::views");
    }
}

#[test]
fn mcp_reads_locks_and_agents_through_the_hub() {
    // The service is the façade: the MCP layer asks `Hub`, never the lock
    // table or the agent registry directly, so a second lock backend
    // changes one layer.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/mcp"), &mut files);
    let mut offenders = Vec::new();
    for file in &files {
        let code = code_of(file);
        for needle in [".locks()", ".agents()", "LockTable", "AgentRegistry"] {
            if code.contains(needle) {
                offenders.push(format!("{}: {needle}", rel(root, file)));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "src/mcp reaches past the Hub:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn only_src_mcp_knows_the_protocol() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut offenders = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("src/mcp/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for needle in ["rmcp::", "axum::", "schemars::", "JsonSchema"] {
                if line.contains(needle) {
                    offenders.push(format!("{rel}:{}: {needle}", n + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "protocol code outside src/mcp/:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn graph_does_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/graph"), &mut files);
    rust_files(&root.join("src/verify"), &mut files);
    rust_files(&root.join("src/eval"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in [
            "std::fs",
            "std::net",
            "tokio::",
            "rusqlite",
            "std::io::Write",
            "println!",
        ] {
            assert!(!text.contains(needle), "{} uses {needle}", file.display());
        }
    }
}

#[test]
fn tool_schemas_on_disk_match_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tool-schemas");
    let expected = cograph::mcp::schemas::all_files();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        on_disk, names,
        "run `cargo run -- schemas --out tool-schemas`"
    );
    for (name, text) in &expected {
        let disk = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(
            &disk, text,
            "{name} differs; run `cargo run -- schemas --out tool-schemas`"
        );
    }
    assert_eq!(
        names.len(),
        24,
        "an input and an output schema for each of the 12 tools"
    );
}

#[tokio::test]
async fn tool_schemas_match_what_a_client_is_sent() {
    let s = common::Server::start().await;
    let client = s.in_process("schema-check").await;
    let tools = client.list_all_tools().await.unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tool-schemas");
    for tool in &tools {
        let input: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{}.input.json", tool.name))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            input,
            serde_json::Value::Object((*tool.input_schema).clone()),
            "{}",
            tool.name
        );
        let output: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{}.output.json", tool.name))).unwrap(),
        )
        .unwrap();
        let sent = tool
            .output_schema
            .as_ref()
            .expect("every tool has an output schema");
        assert_eq!(
            output,
            serde_json::Value::Object((**sent).clone()),
            "{}",
            tool.name
        );
        assert_eq!(
            output["type"], "object",
            "{} output is rooted at an object",
            tool.name
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        // An absent hint means MCP's default (not read-only, destructive,
        // not idempotent, open world); tools/list leaves out what is the
        // default or meaningless (destructive/idempotent of a read-only
        // tool). Open world is never true here, so it is always given.
        assert_eq!(annotations.open_world_hint, Some(false), "{}", tool.name);
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() < 300),
            "{} description is short",
            tool.name
        );
    }
    assert_eq!(tools.len(), 12);
}

#[test]
fn no_file_in_src_is_over_700_lines() {
    // A file holds one idea; past 700 lines it is holding several.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 700).then(|| format!("{}: {n} lines", rel(root, f)))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}
