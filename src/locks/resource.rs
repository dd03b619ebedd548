//! What a lock names: a `Resource`, one of five kinds, and the one parser
//! of each kind's name (`ModuleName::parse`, `ResourcePath::parse`,
//! `ResourceName::parse`, and `Resource::parse` for the `kind:name` text
//! form). A parsed name is normalised and checked, so the lock table never
//! sees a path with `..` or an empty segment; a refused one gets a
//! `ResourceError` that names what was wrong.
//!
//! This file only names things. Which resources overlap, and how a lock on
//! one meets a lock on another, is the lock table's (`state/keys.rs`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::graph::function::is_identifier;
use crate::graph::{FunctionId, QualifiedName};

/// The longest path, module or name the table accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// The most segments a path or module may have: every one is a key a lock
/// on it takes, so depth is what a lock costs.
pub const MAX_DEPTH: usize = 64;

/// The kinds of thing a lock can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    Function,
    Module,
    Path,
    Named,
    Semaphore,
}

impl ResourceKind {
    /// Every kind, in the order `Resource` sorts them.
    pub const ALL: [ResourceKind; 5] = [
        ResourceKind::Function,
        ResourceKind::Module,
        ResourceKind::Path,
        ResourceKind::Named,
        ResourceKind::Semaphore,
    ];

    /// `function`, `module`, `path`, `named` or `semaphore`: the prefix of
    /// the text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Function => "function",
            ResourceKind::Module => "module",
            ResourceKind::Path => "path",
            ResourceKind::Named => "named",
            ResourceKind::Semaphore => "semaphore",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a resource's name was refused. Each variant names the text and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("{} cannot be empty", phrase(.kind))]
    Empty { kind: ResourceKind },
    #[error("{} is at most {max} bytes; this one has {len}", phrase(.kind))]
    TooLong {
        kind: ResourceKind,
        len: usize,
        max: usize,
    },
    #[error("a {kind} is at most {max} levels deep; `{text}` has {depth}")]
    TooDeep {
        kind: ResourceKind,
        text: String,
        depth: usize,
        max: usize,
    },
    #[error("`{text}` holds a control character; names are printable text")]
    ControlCharacter { kind: ResourceKind, text: String },
    #[error("path `{path}` is absolute; give it relative to the repository root")]
    AbsolutePath { path: String },
    #[error("path `{path}` uses `\\`; separate segments with `/`")]
    Backslash { path: String },
    #[error("path `{path}` has an empty segment (`//`)")]
    EmptySegment { path: String },
    #[error("path `{path}` has a `.` segment; name the path without it")]
    DotSegment { path: String },
    #[error("path `{path}` has a `..` segment; paths stay inside the repository")]
    DotDotSegment { path: String },
    #[error("module `{module}`: `{segment}` is not an identifier")]
    BadModule { module: String, segment: String },
    #[error("`{given}` is not a function: expected `#` and its id, as in `function:#7`")]
    BadFunction { given: String },
    #[error(
        "`{given}` names no resource: expected `function:#7`, `module:math`, `path:src/net/`, `named:deploy` or `semaphore:gpu`"
    )]
    UnknownKind { given: String },
}

/// How an error names what it checked: `a path`, `a semaphore name`.
fn phrase(kind: &ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Function => "a function id",
        ResourceKind::Module => "a module name",
        ResourceKind::Path => "a path",
        ResourceKind::Named => "a resource name",
        ResourceKind::Semaphore => "a semaphore name",
    }
}

/// Checks what every kind's name shares: not empty, not too long, no
/// control characters.
fn check_text(kind: ResourceKind, text: &str) -> Result<(), ResourceError> {
    if text.is_empty() {
        return Err(ResourceError::Empty { kind });
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(ResourceError::TooLong {
            kind,
            len: text.len(),
            max: MAX_NAME_BYTES,
        });
    }
    if text.chars().any(char::is_control) {
        return Err(ResourceError::ControlCharacter {
            kind,
            text: text.into(),
        });
    }
    Ok(())
}

fn check_depth(kind: ResourceKind, text: &str, depth: usize) -> Result<(), ResourceError> {
    if depth > MAX_DEPTH {
        return Err(ResourceError::TooDeep {
            kind,
            text: text.into(),
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(())
}

/// A module of the program: identifiers joined by `::` (`math`,
/// `math::linalg`). A module contains its submodules: `math` covers
/// `math::linalg` and every function of either.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModuleName(Arc<str>);

impl ModuleName {
    pub fn parse(text: &str) -> Result<ModuleName, ResourceError> {
        check_text(ResourceKind::Module, text)?;
        let mut depth = 0;
        for segment in text.split("::") {
            if !is_identifier(segment) {
                return Err(ResourceError::BadModule {
                    module: text.into(),
                    segment: segment.into(),
                });
            }
            depth += 1;
        }
        check_depth(ResourceKind::Module, text, depth)?;
        Ok(ModuleName(Arc::from(text)))
    }

    /// The module a function of this qualified name belongs to: everything
    /// before its last `::`.
    pub fn of(function: &QualifiedName) -> ModuleName {
        ModuleName(Arc::from(function.module()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A file or directory of a repository, relative to its root and
/// `/`-separated: `src/net/tcp.rs`, `src/net/`. A lock on a path covers the
/// entry and everything below it, so a directory covers its whole tree.
///
/// A trailing `/` says "directory" to people and is kept as written, but
/// `src/net` and `src/net/` are the same entry (a path cannot be a file
/// and a directory at once): they are equal, hash alike and lock the same
/// thing. Equality, order and hashing look at `entry()`, the text without
/// the trailing `/`.
#[derive(Clone)]
pub struct ResourcePath(Arc<str>);

impl ResourcePath {
    /// Checks a path: relative, `/`-separated, no empty, `.` or `..`
    /// segment, no `\`. Nothing is rewritten: a path that would need
    /// rewriting is refused, with what to change.
    pub fn parse(text: &str) -> Result<ResourcePath, ResourceError> {
        check_text(ResourceKind::Path, text)?;
        let path = || text.to_string();
        if text.starts_with('/') {
            return Err(ResourceError::AbsolutePath { path: path() });
        }
        if text.contains('\\') {
            return Err(ResourceError::Backslash { path: path() });
        }
        let entry = text.strip_suffix('/').unwrap_or(text);
        let mut depth = 0;
        for segment in entry.split('/') {
            match segment {
                "" => return Err(ResourceError::EmptySegment { path: path() }),
                "." => return Err(ResourceError::DotSegment { path: path() }),
                ".." => return Err(ResourceError::DotDotSegment { path: path() }),
                _ => depth += 1,
            }
        }
        check_depth(ResourceKind::Path, text, depth)?;
        Ok(ResourcePath(Arc::from(text)))
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The entry it names: the text without a trailing `/`.
    pub fn entry(&self) -> &str {
        self.0.strip_suffix('/').unwrap_or(&self.0)
    }

    /// Returns true if and only if it was written as a directory (with a
    /// trailing `/`).
    pub fn is_dir(&self) -> bool {
        self.0.ends_with('/')
    }

    pub(super) fn arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl PartialEq for ResourcePath {
    fn eq(&self, other: &ResourcePath) -> bool {
        self.entry() == other.entry()
    }
}

impl Eq for ResourcePath {}

impl PartialOrd for ResourcePath {
    fn partial_cmp(&self, other: &ResourcePath) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ResourcePath {
    fn cmp(&self, other: &ResourcePath) -> Ordering {
        self.entry().cmp(other.entry())
    }
}

impl Hash for ResourcePath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.entry().hash(state);
    }
}

impl fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourcePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The name of a named resource or a semaphore: any non-empty printable
/// text (`deploy:staging`, `gpu`). Names are flat: `deploy` and
/// `deploy:staging` are two unrelated resources.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceName(Arc<str>);

impl ResourceName {
    pub fn parse(text: &str) -> Result<ResourceName, ResourceError> {
        ResourceName::parse_as(ResourceKind::Named, text)
    }

    /// Parses a semaphore's name; the same rule, with errors that say
    /// "semaphore".
    pub fn parse_semaphore(text: &str) -> Result<ResourceName, ResourceError> {
        ResourceName::parse_as(ResourceKind::Semaphore, text)
    }

    fn parse_as(kind: ResourceKind, text: &str) -> Result<ResourceName, ResourceError> {
        check_text(kind, text)?;
        Ok(ResourceName(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(super) fn arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A thing a lock names: its identity. What a request adds to it (a
/// function's module, a semaphore's capacity) travels beside it in
/// `LockTarget`, because it is not part of which lock it is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// A function of the program, by id.
    Function(FunctionId),
    /// A module: all its functions and submodules, present and future.
    Module(ModuleName),
    /// A file or directory of a repository.
    Path(ResourcePath),
    /// Anything else agents share, as a plain read/write lock.
    Named(ResourceName),
    /// A name with a capacity; holders take permits.
    Semaphore(ResourceName),
}

impl Resource {
    pub fn kind(&self) -> ResourceKind {
        match self {
            Resource::Function(_) => ResourceKind::Function,
            Resource::Module(_) => ResourceKind::Module,
            Resource::Path(_) => ResourceKind::Path,
            Resource::Named(_) => ResourceKind::Named,
            Resource::Semaphore(_) => ResourceKind::Semaphore,
        }
    }

    /// The function, if this is one.
    pub fn function(&self) -> Option<FunctionId> {
        match self {
            Resource::Function(f) => Some(*f),
            _ => None,
        }
    }

    /// Parses the text form `kind:name`: `function:#7`, `module:math`,
    /// `path:src/net/`, `named:deploy:staging`, `semaphore:gpu`. Everything
    /// after the first `:` is the name, so a named resource may hold `:`.
    pub fn parse(text: &str) -> Result<Resource, ResourceError> {
        let unknown = || ResourceError::UnknownKind { given: text.into() };
        let (kind, name) = text.split_once(':').ok_or_else(unknown)?;
        match kind {
            "function" => name
                .strip_prefix('#')
                .and_then(|id| id.parse().ok())
                .map(|id| Resource::Function(FunctionId(id)))
                .ok_or_else(|| ResourceError::BadFunction { given: name.into() }),
            "module" => ModuleName::parse(name).map(Resource::Module),
            "path" => ResourcePath::parse(name).map(Resource::Path),
            "named" => ResourceName::parse(name).map(Resource::Named),
            "semaphore" => ResourceName::parse_semaphore(name).map(Resource::Semaphore),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Function(id) => write!(f, "function:#{}", id.0),
            Resource::Module(m) => write!(f, "module:{m}"),
            Resource::Path(p) => write!(f, "path:{p}"),
            Resource::Named(n) => write!(f, "named:{n}"),
            Resource::Semaphore(n) => write!(f, "semaphore:{n}"),
        }
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
#[path = "resource_tests.rs"]
mod tests;
