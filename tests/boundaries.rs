//! Architecture checks: the protocol stays in `src/mcp/`, and the tool
//! schemas in `tool-schemas/` match what the server advertises.

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
        assert!(annotations.read_only_hint.is_some() && annotations.destructive_hint.is_some());
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() < 300),
            "{} description is short",
            tool.name
        );
    }
    assert_eq!(tools.len(), 12);
}
