//! The overlap rule: multi-granularity locking, as database lock managers
//! do it (Gray et al., "Granularity of locks"). A resource expands into a
//! key path, its ancestors and then itself (`parts`):
//!
//! - `path:src/net/tcp.rs` → `src` → `src/net` → `src/net/tcp.rs`
//! - `module:math::linalg` → `math` → `math::linalg`
//! - `function:#7` in module `math` → `math` → `#7`
//! - `named:deploy`, `semaphore:gpu` → themselves (names are flat)
//!
//! A lock takes S (read) or X (write) on its own key and IS or IX on every
//! ancestor key; per key, the standard compatibility matrix (`Modes`)
//! decides. Two resources overlap if and only if one's own key is on the
//! other's path, and then they meet on that key: a directory and a file
//! below it meet on the directory's key (its S or X against the file's IS
//! or IX), a module and its function on the module's key. Siblings meet
//! only on shared ancestors, where intention modes never conflict, so
//! `lib/a` and `lib/ab` (keys `lib` → `lib/a` and `lib` → `lib/ab`) never
//! do. Hence: two claims conflict if and only if their resources overlap
//! and one of them writes, decided on at most one key per ancestor, without
//! looking at any other lock.
//!
//! Semaphores are keys of their own kind that count: a claim there is a
//! number of permits, not a mode (`KeyClaim::Permits`); who fits is
//! `State::each_conflict`'s business.
//!
//! A path's key is its entry (the text without a trailing `/`), so
//! `src/net` and `src/net/` are one key; a module's key is its name; a
//! function's key is its id alone, so two locks on one function meet
//! whatever module each named. Keys borrow the resource's text (`text` and
//! the length of the prefix), so expanding a resource allocates nothing.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::graph::FunctionId;
use crate::locks::resource::Resource;
use crate::locks::types::{Claim, LockMode, LockTarget};

/// The kinds of key named by text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(in crate::locks) enum NameKind {
    Module,
    Path,
    Named,
    Semaphore,
}

/// One key of the table: a function, or `text[..len]` of a module, path,
/// named resource or semaphore (the whole entry for the resource itself,
/// a shorter prefix for one of its ancestors). The table owns its keys
/// (`Key`, the text an `Arc`); a request's key path borrows the resource's
/// text (`KeyRef`), so walking it and looking it up count no references:
/// a key is cloned into the table only where it is new.
#[derive(Clone, Copy)]
pub(in crate::locks) enum Key<S = Arc<str>> {
    Function(FunctionId),
    Name { kind: NameKind, text: S, len: u32 },
}

/// A key that borrows its text.
pub(in crate::locks) type KeyRef<'a> = Key<&'a Arc<str>>;

/// The text a key is cut from: owned or borrowed.
pub(in crate::locks) trait KeyText {
    fn arc(&self) -> &Arc<str>;
}

impl KeyText for Arc<str> {
    #[inline]
    fn arc(&self) -> &Arc<str> {
        self
    }
}

impl KeyText for &Arc<str> {
    #[inline]
    fn arc(&self) -> &Arc<str> {
        self
    }
}

impl<'a> KeyRef<'a> {
    #[inline]
    fn name(kind: NameKind, text: &'a Arc<str>, len: usize) -> KeyRef<'a> {
        Key::Name {
            kind,
            text,
            len: len as u32,
        }
    }

    /// The key of the resource itself (the last of its parts).
    #[inline]
    pub(in crate::locks) fn of(resource: &'a Resource) -> KeyRef<'a> {
        match resource {
            Resource::Function(f) => Key::Function(*f),
            Resource::Module(m) => Key::name(NameKind::Module, m.arc(), m.as_str().len()),
            Resource::Path(p) => Key::name(NameKind::Path, p.arc(), p.entry().len()),
            Resource::Named(n) => Key::name(NameKind::Named, n.arc(), n.as_str().len()),
            Resource::Semaphore(n) => Key::name(NameKind::Semaphore, n.arc(), n.as_str().len()),
        }
    }

    /// The key as the table keeps it.
    #[inline]
    pub(in crate::locks) fn owned(self) -> Key {
        match self {
            Key::Function(f) => Key::Function(f),
            Key::Name { kind, text, len } => Key::Name {
                kind,
                text: text.clone(),
                len,
            },
        }
    }
}

impl<S: KeyText> Key<S> {
    /// The key borrowing its text.
    #[inline]
    pub(in crate::locks) fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Function(f) => Key::Function(*f),
            Key::Name { kind, text, len } => Key::Name {
                kind: *kind,
                text: text.arc(),
                len: *len,
            },
        }
    }

    /// The key's text, for a named key.
    #[inline]
    pub(in crate::locks) fn text(&self) -> &str {
        match self {
            Key::Function(_) => "",
            Key::Name { text, len, .. } => &text.arc()[..*len as usize],
        }
    }

    /// Returns true if and only if this is a semaphore's key.
    #[cfg(test)]
    pub(in crate::locks) fn is_semaphore(&self) -> bool {
        matches!(
            self,
            Key::Name {
                kind: NameKind::Semaphore,
                ..
            }
        )
    }

    /// The resource this key is, as people read it: an ancestor path shows
    /// as the directory it is (`src/net/`).
    pub(in crate::locks) fn resource(&self) -> Resource {
        use crate::locks::resource::{ModuleName, ResourceName, ResourcePath};
        let parsed = match self {
            Key::Function(f) => return Resource::Function(*f),
            Key::Name { kind, text, len } => {
                let text = text.arc();
                let whole = *len as usize == text.len();
                match kind {
                    NameKind::Module => ModuleName::parse(self.text()).map(Resource::Module),
                    NameKind::Path if whole => ResourcePath::parse(text).map(Resource::Path),
                    NameKind::Path => {
                        ResourcePath::parse(&format!("{}/", self.text())).map(Resource::Path)
                    }
                    NameKind::Named => ResourceName::parse(self.text()).map(Resource::Named),
                    NameKind::Semaphore => {
                        ResourceName::parse_semaphore(self.text()).map(Resource::Semaphore)
                    }
                }
            }
        };
        // Every key is cut from a parsed resource at a separator, and a
        // prefix of a valid name at a separator is valid.
        parsed.expect("a key is a valid resource")
    }
}

impl<S: KeyText, T: KeyText> PartialEq<Key<T>> for Key<S> {
    #[inline]
    fn eq(&self, other: &Key<T>) -> bool {
        match (self, other) {
            (Key::Function(a), Key::Function(b)) => a == b,
            (
                Key::Name {
                    kind: a, len: m, ..
                },
                Key::Name {
                    kind: b, len: n, ..
                },
            ) => a == b && m == n && self.text() == other.text(),
            _ => false,
        }
    }
}

impl<S: KeyText> Eq for Key<S> {}

impl<S: KeyText> Hash for Key<S> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Key::Function(f) => state.write_u64(f.0),
            Key::Name { kind, .. } => {
                state.write_u8(*kind as u8);
                state.write(self.text().as_bytes());
            }
        }
    }
}

impl<S: KeyText, T: KeyText> PartialOrd<Key<T>> for Key<S> {
    #[inline]
    fn partial_cmp(&self, other: &Key<T>) -> Option<Ordering> {
        Some(match (self, other) {
            (Key::Function(a), Key::Function(b)) => a.cmp(b),
            (Key::Function(_), Key::Name { .. }) => Ordering::Less,
            (Key::Name { .. }, Key::Function(_)) => Ordering::Greater,
            (Key::Name { kind: a, .. }, Key::Name { kind: b, .. }) => {
                a.cmp(b).then_with(|| self.text().cmp(other.text()))
            }
        })
    }
}

impl<S: KeyText> Ord for Key<S> {
    #[inline]
    fn cmp(&self, other: &Key<S>) -> Ordering {
        self.partial_cmp(other).expect("keys are totally ordered")
    }
}

impl<S: KeyText> std::fmt::Debug for Key<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Function(id) => write!(f, "#{}", id.0),
            Key::Name { kind, .. } => write!(f, "{kind:?}:{}", self.text()),
        }
    }
}

/// Any key, as the table's maps look it up: an owned key borrows as one,
/// so a `KeyRef` finds its entry without being cloned (`KeyRef::find`).
pub(in crate::locks) trait AnyKey {
    fn key(&self) -> KeyRef<'_>;
}

impl<S: KeyText> AnyKey for Key<S> {
    #[inline]
    fn key(&self) -> KeyRef<'_> {
        self.as_ref()
    }
}

impl PartialEq for dyn AnyKey + '_ {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn AnyKey + '_ {}

impl Hash for dyn AnyKey + '_ {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl<'a> Borrow<dyn AnyKey + 'a> for Key {
    #[inline]
    fn borrow(&self) -> &(dyn AnyKey + 'a) {
        self
    }
}

impl KeyRef<'_> {
    /// The key as a map's lookup takes it.
    #[inline]
    pub(in crate::locks) fn find(&self) -> &(dyn AnyKey + '_) {
        self
    }
}

/// A set of the four modes of multi-granularity locking, as bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::locks) struct Modes(u8);

impl Modes {
    pub(in crate::locks) const NONE: Modes = Modes(0);
    /// Intention shared: the holder reads something below.
    pub(in crate::locks) const IS: Modes = Modes(1);
    /// Intention exclusive: the holder writes something below.
    pub(in crate::locks) const IX: Modes = Modes(2);
    /// Shared: the holder reads this resource and all below it.
    pub(in crate::locks) const S: Modes = Modes(4);
    /// Exclusive: the holder writes this resource and all below it.
    pub(in crate::locks) const X: Modes = Modes(8);

    /// The mode a lock takes on its own key.
    #[inline]
    pub(in crate::locks) fn own(mode: LockMode) -> Modes {
        match mode {
            LockMode::Read => Modes::S,
            LockMode::Write => Modes::X,
        }
    }

    /// The mode a lock takes on each of its ancestors' keys.
    #[inline]
    pub(in crate::locks) fn intent(mode: LockMode) -> Modes {
        match mode {
            LockMode::Read => Modes::IS,
            LockMode::Write => Modes::IX,
        }
    }

    #[inline]
    pub(in crate::locks) fn union(self, other: Modes) -> Modes {
        Modes(self.0 | other.0)
    }

    #[inline]
    pub(in crate::locks) fn intersect(self, other: Modes) -> Modes {
        Modes(self.0 & other.0)
    }

    #[inline]
    pub(in crate::locks) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Returns true if and only if the set holds S or X: a lock on this
    /// very key, not only below it.
    #[inline]
    pub(in crate::locks) fn is_own(self) -> bool {
        self.0 & (Modes::S.0 | Modes::X.0) != 0
    }

    /// Every mode that conflicts with some mode of the set.
    #[inline]
    pub(in crate::locks) fn conflicting(self) -> Modes {
        Modes(CONFLICTS[self.0 as usize])
    }

    /// Returns true if and only if some mode of `self` conflicts with some
    /// mode of `other`.
    #[inline]
    pub(in crate::locks) fn conflicts(self, other: Modes) -> bool {
        !self.conflicting().intersect(other).is_empty()
    }
}

/// For each set of modes (as its bits), the modes that conflict with one of
/// them. The standard matrix: IS conflicts with X; IX with S and X; S with
/// IX and X; X with everything. So intentions never conflict with each
/// other, and two locks on one key conflict unless both read.
const CONFLICTS: [u8; 16] = {
    let (is, ix, s, x) = (Modes::IS.0, Modes::IX.0, Modes::S.0, Modes::X.0);
    let single = [x, s | x, ix | x, is | ix | s | x];
    let mut table = [0u8; 16];
    let mut set = 0;
    while set < 16 {
        let mut bit = 0;
        while bit < 4 {
            if set & (1 << bit) != 0 {
                table[set] |= single[bit];
            }
            bit += 1;
        }
        set += 1;
    }
    table
};

/// What a request takes on one key: modes, or a semaphore's permits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::locks) enum KeyClaim {
    Modes(Modes),
    Permits(u32),
}

impl KeyClaim {
    /// Both claims on one key together (one request's several targets
    /// meeting on an ancestor, or a target's own key).
    #[inline]
    pub(in crate::locks) fn merge(self, other: KeyClaim) -> KeyClaim {
        match (self, other) {
            (KeyClaim::Modes(a), KeyClaim::Modes(b)) => KeyClaim::Modes(a.union(b)),
            (KeyClaim::Permits(a), KeyClaim::Permits(b)) => KeyClaim::Permits(a.max(b)),
            // A key is a semaphore's or not, so the two kinds never meet.
            (a, _) => a,
        }
    }

    /// Returns true if and only if two requests' claims on one key conflict
    /// pairwise. Permits are not pairwise: they count (see
    /// `State::each_conflict`), so this is false for them.
    #[inline]
    pub(in crate::locks) fn conflicts(self, other: KeyClaim) -> bool {
        match (self, other) {
            (KeyClaim::Modes(a), KeyClaim::Modes(b)) => a.conflicts(b),
            _ => false,
        }
    }

    #[inline]
    pub(in crate::locks) fn permits(self) -> u32 {
        match self {
            KeyClaim::Permits(n) => n,
            KeyClaim::Modes(_) => 0,
        }
    }

    /// Returns true if and only if this claims the key's own resource (S,
    /// X or permits), not only something below it.
    #[inline]
    pub(in crate::locks) fn is_own(self) -> bool {
        match self {
            KeyClaim::Modes(m) => m.is_own(),
            KeyClaim::Permits(_) => true,
        }
    }
}

/// The claim a target makes on its own key.
#[inline]
fn own_claim(claim: Claim) -> KeyClaim {
    match claim.mode() {
        Some(mode) => KeyClaim::Modes(Modes::own(mode)),
        None => KeyClaim::Permits(claim.permits().unwrap_or(0)),
    }
}

/// The claim a target makes on each of its ancestors.
#[inline]
fn intent_claim(claim: Claim) -> KeyClaim {
    KeyClaim::Modes(Modes::intent(claim.mode().unwrap_or(LockMode::Write)))
}

/// The key path of a target, ancestors first, each with what the target
/// takes there; the last part is the target's own key.
#[inline]
pub(in crate::locks) fn parts(target: &LockTarget) -> Parts<'_> {
    walk(target, true)
}

/// The key path of a target without its own key: its ancestors.
#[inline]
pub(in crate::locks) fn ancestors(target: &LockTarget) -> Parts<'_> {
    walk(target, false)
}

#[inline]
fn walk(target: &LockTarget, with_own: bool) -> Parts<'_> {
    let walk = match &target.resource {
        Resource::Function(_) => target
            .module
            .as_ref()
            .map(|m| (NameKind::Module, m.arc(), m.as_str().len(), "::")),
        Resource::Module(m) => Some((NameKind::Module, m.arc(), m.as_str().len(), "::")),
        Resource::Path(p) => Some((NameKind::Path, p.arc(), p.entry().len(), "/")),
        Resource::Named(_) | Resource::Semaphore(_) => None,
    };
    Parts {
        target,
        walk,
        from: 0,
        with_own,
        stage: if walk.is_some() {
            Stage::Ancestors
        } else {
            Stage::Own
        },
    }
}

/// The key of the target itself: the last of its parts.
#[inline]
pub(in crate::locks) fn own_key(target: &LockTarget) -> KeyRef<'_> {
    KeyRef::of(&target.resource)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Walking the separators of a module's or path's text.
    Ancestors,
    /// The resource's own key next.
    Own,
    Done,
}

/// The iterator `parts` returns.
pub(in crate::locks) struct Parts<'t> {
    target: &'t LockTarget,
    /// The hierarchical name walked: its kind, text, entry length and
    /// separator. For a function, its module, every level of which is an
    /// ancestor.
    walk: Option<(NameKind, &'t Arc<str>, usize, &'static str)>,
    /// Where the search for the next separator starts.
    from: usize,
    /// Whether the own key ends the walk (`parts`) or not (`ancestors`).
    with_own: bool,
    stage: Stage,
}

impl<'t> Iterator for Parts<'t> {
    type Item = (KeyRef<'t>, KeyClaim);

    #[inline(always)]
    fn next(&mut self) -> Option<(KeyRef<'t>, KeyClaim)> {
        let claim = self.target.claim;
        if self.stage == Stage::Ancestors {
            let (kind, text, entry_len, sep) = self.walk.expect("walking a name");
            if let Some(offset) = find_separator(&text.as_bytes()[self.from..entry_len], sep) {
                let len = self.from + offset;
                self.from = len + sep.len();
                return Some((KeyRef::name(kind, text, len), intent_claim(claim)));
            }
            self.stage = Stage::Own;
            if matches!(self.target.resource, Resource::Function(_)) {
                // The function's module itself is one more ancestor.
                return Some((KeyRef::name(kind, text, entry_len), intent_claim(claim)));
            }
        }
        if self.stage == Stage::Own && self.with_own {
            self.stage = Stage::Done;
            return Some((own_key(self.target), own_claim(claim)));
        }
        self.stage = Stage::Done;
        None
    }
}

/// The offset of the first `sep` (`/` or `::`) in `bytes`. A byte scan:
/// `str::find` with a string pattern builds a two-way searcher on every
/// call, which cost more than the rest of a key path's walk.
#[inline]
fn find_separator(bytes: &[u8], sep: &str) -> Option<usize> {
    let sep = sep.as_bytes();
    let first = sep[0];
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == first) {
        let at = from + offset;
        if bytes[at..].starts_with(sep) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
