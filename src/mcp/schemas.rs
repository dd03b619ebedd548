//! The tools' JSON schemas as files: `cograph schemas --out tool-schemas`
//! writes `<tool>.input.json` and `<tool>.output.json` for each tool, from
//! the same definitions the server advertises in `tools/list`.

use std::path::Path;

use rmcp::model::Tool;

use super::server::tool_definitions;

/// The files for one tool: (file name, pretty JSON with a final newline).
pub fn files_for(tool: &Tool) -> Vec<(String, String)> {
    let pretty = |v: &serde_json::Value| {
        format!(
            "{}\n",
            serde_json::to_string_pretty(v).expect("schema serialises")
        )
    };
    let mut out = vec![(
        format!("{}.input.json", tool.name),
        pretty(&serde_json::Value::Object((*tool.input_schema).clone())),
    )];
    if let Some(schema) = &tool.output_schema {
        out.push((
            format!("{}.output.json", tool.name),
            pretty(&serde_json::Value::Object((**schema).clone())),
        ));
    }
    out
}

/// Every schema file, sorted by name.
pub fn all_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = tool_definitions().iter().flat_map(files_for).collect();
    files.sort();
    files
}

/// Writes every schema file into `dir`, removing stale `*.json` files.
pub fn write_all(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let files = all_files();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if name.ends_with(".json") && !files.iter().any(|(f, _)| *f == name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, text) in &files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(files.len())
}
