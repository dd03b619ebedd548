//! The program: every function by id, the name index, and the reverse call
//! index, as persistent maps.
//!
//! Cloning a `Program` is O(1) and changing one function is O(log n), so a
//! commit can prepare its edit on a private copy while readers keep the
//! snapshot they started from. The root hash is O(n) and is computed only
//! when asked, then cached in that snapshot.

use std::sync::{Arc, OnceLock};

use imbl::{OrdMap, OrdSet};

use super::encoding::{function_hash, root_hash};
use super::function::{Function, QualifiedName};
use super::function_ref::FunctionRef;
use super::ids::{ContentHash, FunctionId, Revision};

/// One function's current version with its hash and the revision that made
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionEntry {
    pub function: Arc<Function>,
    pub hash: ContentHash,
    pub revision: Revision,
}

impl FunctionEntry {
    pub fn new(function: Arc<Function>, revision: Revision) -> FunctionEntry {
        let hash = function_hash(&function);
        FunctionEntry {
            function,
            hash,
            revision,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Program {
    functions: OrdMap<FunctionId, FunctionEntry>,
    names: OrdMap<QualifiedName, FunctionId>,
    /// callee → the functions that call it. Maintained on every change so
    /// that finding the callers a signature change affects costs
    /// O(callers), not O(program).
    callers: OrdMap<FunctionId, OrdSet<FunctionId>>,
    next_function: u64,
    revision: Revision,
    root: OnceLock<ContentHash>,
}

impl Default for Program {
    fn default() -> Program {
        Program::new()
    }
}

impl PartialEq for Program {
    /// Programs are equal when they hold the same functions under the same
    /// ids and will hand out the same next id. Revisions are history, not
    /// content, and are not compared.
    fn eq(&self, other: &Program) -> bool {
        self.next_function == other.next_function
            && self.functions.len() == other.functions.len()
            && self
                .functions
                .iter()
                .zip(other.functions.iter())
                .all(|((a_id, a), (b_id, b))| a_id == b_id && a.hash == b.hash)
    }
}

impl Program {
    pub fn new() -> Program {
        Program {
            functions: OrdMap::new(),
            names: OrdMap::new(),
            callers: OrdMap::new(),
            next_function: 1,
            revision: Revision(0),
            root: OnceLock::new(),
        }
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn set_revision(&mut self, revision: Revision) {
        self.revision = revision;
    }

    pub fn len(&self) -> usize {
        self.functions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The id the next created function gets.
    pub fn next_function_id(&self) -> FunctionId {
        FunctionId(self.next_function)
    }

    /// Raises the id counter to at least `next` (used when loading a store
    /// or file whose deleted functions left gaps).
    pub fn reserve_function_ids(&mut self, next: u64) {
        self.next_function = self.next_function.max(next);
    }

    pub fn alloc_function_id(&mut self) -> FunctionId {
        let id = FunctionId(self.next_function);
        self.next_function += 1;
        id
    }

    pub fn get(&self, id: FunctionId) -> Option<&FunctionEntry> {
        self.functions.get(&id)
    }

    pub fn id_of(&self, name: &QualifiedName) -> Option<FunctionId> {
        self.names.get(name).copied()
    }

    pub fn name_of(&self, id: FunctionId) -> Option<QualifiedName> {
        self.functions.get(&id).map(|e| e.function.name.clone())
    }

    /// Finds a function by id or name.
    pub fn lookup(&self, r: &FunctionRef) -> Option<FunctionId> {
        match r {
            FunctionRef::Id(id) => self.functions.contains_key(id).then_some(*id),
            FunctionRef::Name(name) => self.id_of(name),
        }
    }

    /// The qualified names closest to `query` (a misspelt qualified name,
    /// or a bare name like `fib`), best first: for "did you mean". It
    /// scans every name, so call it only on an error path.
    pub fn similar_names(&self, query: &str) -> Vec<QualifiedName> {
        fn bare(name: &str) -> &str {
            name.rsplit("::").next().unwrap_or(name)
        }
        // A query in the wrong module (`other::fib`) matches by its bare
        // name too.
        let queries = [query, bare(query)];
        let keys = |name| vec![name, bare(name)];
        super::suggest::closest(&queries, self.names.keys().map(|n| n.as_str()), keys)
            .into_iter()
            .filter_map(|n| QualifiedName::new(n).ok())
            .collect()
    }

    pub fn functions(&self) -> impl DoubleEndedIterator<Item = (FunctionId, &FunctionEntry)> {
        self.functions.iter().map(|(id, e)| (*id, e))
    }

    /// Functions in name order, starting after `after` when given.
    pub fn names_from(
        &self,
        after: Option<&QualifiedName>,
    ) -> impl Iterator<Item = (&QualifiedName, FunctionId)> {
        let iter: Box<dyn Iterator<Item = (&QualifiedName, &FunctionId)>> = match after {
            Some(a) => Box::new(self.names.range((
                std::ops::Bound::Excluded(a.clone()),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(self.names.iter()),
        };
        iter.map(|(n, id)| (n, *id))
    }

    /// The functions whose bodies call `callee`, in id order.
    pub fn callers_of(&self, callee: FunctionId) -> Vec<FunctionId> {
        self.callers
            .get(&callee)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Inserts or replaces the function with this id, keeping the name and
    /// call indexes right. The caller has checked that the name is free.
    pub fn put(&mut self, id: FunctionId, entry: FunctionEntry) {
        // Only touch the name and call indexes when they change: with many
        // functions, each index update walks cold memory, and an edit of one
        // body should cost the same in a program of any size.
        match self.functions.get(&id) {
            Some(old) => {
                if old.function.name != entry.function.name {
                    self.names.remove(&old.function.name);
                    self.names.insert(entry.function.name.clone(), id);
                }
                let (old_callees, new_callees) = (old.function.callees(), entry.function.callees());
                if old_callees != new_callees {
                    self.unindex_calls(id, &old_callees);
                    self.index_calls(id, &new_callees);
                }
            }
            None => {
                self.names.insert(entry.function.name.clone(), id);
                self.index_calls(id, &entry.function.callees());
            }
        }
        self.next_function = self.next_function.max(id.0 + 1);
        self.functions.insert(id, entry);
        self.root = OnceLock::new();
    }

    /// Removes a function. Its callers keep calling its id, which the
    /// verifier reports as `unknown_callee`.
    pub fn remove(&mut self, id: FunctionId) -> Option<FunctionEntry> {
        let old = self.functions.remove(&id)?;
        self.names.remove(&old.function.name);
        self.unindex_calls(id, &old.function.callees());
        self.root = OnceLock::new();
        Some(old)
    }

    fn index_calls(&mut self, caller: FunctionId, callees: &[FunctionId]) {
        for callee in callees {
            self.callers.entry(*callee).or_default().insert(caller);
        }
    }

    fn unindex_calls(&mut self, caller: FunctionId, callees: &[FunctionId]) {
        for callee in callees {
            if let Some(set) = self.callers.get_mut(callee) {
                set.remove(&caller);
                if set.is_empty() {
                    self.callers.remove(callee);
                }
            }
        }
    }

    /// blake3 over the (function id, content hash) pairs in id order.
    pub fn root_hash(&self) -> ContentHash {
        *self
            .root
            .get_or_init(|| root_hash(self.functions.iter().map(|(id, e)| (*id, &e.hash))))
    }

    /// A name-resolving closure for rendering this program's functions.
    pub fn namer(&self) -> impl Fn(FunctionId) -> Option<QualifiedName> + '_ {
        move |id| self.name_of(id)
    }

    /// A resolving closure for parsing against this program's names.
    pub fn resolver(&self) -> impl Fn(&FunctionRef) -> Option<FunctionId> + '_ {
        move |r| self.lookup(r)
    }

    pub fn n_nodes(&self) -> usize {
        self.functions
            .values()
            .map(|e| e.function.nodes.len())
            .sum()
    }
}
