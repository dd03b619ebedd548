//! The MCP resources cograph serves. Today one, the language reference
//! (`cograph://docs/language`); each resource is a row of [`RESOURCES`]
//! with a function that renders it, so a resource made from live state (a
//! function, the lock table, the log) is one more row whose `read` takes
//! the hub. Unknown URIs are rmcp's resource-not-found error.

use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};
use serde_json::json;

use super::reference::language_reference;
use crate::service::Hub;

/// The URI of the language reference.
pub const LANGUAGE_URI: &str = "cograph://docs/language";

/// One resource: how `resources/list` shows it and how to read it.
struct Entry {
    uri: &'static str,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    mime_type: &'static str,
    read: fn(&Arc<Hub>) -> String,
}

const RESOURCES: [Entry; 1] = [Entry {
    uri: LANGUAGE_URI,
    name: "language",
    title: "The cograph language",
    description: "Ops with arity and typing, the text form with a worked example, and every propose_edit op with a JSON example",
    mime_type: "text/markdown",
    read: |_| language_reference().to_string(),
}];

/// What `resources/list` answers.
pub fn list() -> ListResourcesResult {
    let resources = RESOURCES
        .iter()
        .map(|e| {
            Resource::new(e.uri, e.name)
                .with_title(e.title)
                .with_description(e.description)
                .with_mime_type(e.mime_type)
        })
        .collect();
    ListResourcesResult::with_all_items(resources)
}

/// What `resources/read` answers for `uri`.
pub fn read(hub: &Arc<Hub>, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let Some(entry) = RESOURCES.iter().find(|e| e.uri == uri) else {
        let known: Vec<&str> = RESOURCES.iter().map(|e| e.uri).collect();
        return Err(ErrorData::resource_not_found(
            format!(
                "no resource `{}`; resources/list shows them ({})",
                uri.chars().take(200).collect::<String>(),
                known.join(", ")
            ),
            Some(json!({ "uri": uri })),
        ));
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text((entry.read)(hub), entry.uri).with_mime_type(entry.mime_type),
    ]))
}
