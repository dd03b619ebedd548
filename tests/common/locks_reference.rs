//! The plain reference model `locks_model.rs` checks the lock table
//! against. It knows nothing of keys, intention modes or queues: overlap is
//! decided by brute force on the resources' names (a path is a prefix of
//! another at a `/`, a function's module is a module or below one at a
//! `::`), every pair of holds is compared, and the FIFO rule, semaphores'
//! counting and the deadlock reduction are written out over lists.

use std::collections::BTreeMap;

use cograph::graph::FunctionId;
use cograph::locks::{Claim, LockTarget, ModuleName, Resource, ResourceName, ResourcePath};

/// A resource of the model: a function (with its module), a module, a path
/// as written, a named resource or a semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Res {
    Function(u64, &'static str),
    Module(&'static str),
    Path(&'static str),
    Named(&'static str),
    Semaphore(&'static str),
}

/// Returns true if and only if `inner` is `outer` or below it, `sep`
/// separating levels.
fn at_or_below(inner: &str, outer: &str, sep: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with(sep))
}

impl Res {
    /// Which lock it is: a path by its entry (without a trailing `/`).
    pub fn id(&self) -> String {
        match self {
            Res::Function(f, _) => format!("f#{f}"),
            Res::Module(m) => format!("m:{m}"),
            Res::Path(p) => format!("p:{}", p.strip_suffix('/').unwrap_or(p)),
            Res::Named(n) => format!("n:{n}"),
            Res::Semaphore(s) => format!("s:{s}"),
        }
    }

    pub fn is_semaphore(&self) -> bool {
        matches!(self, Res::Semaphore(_))
    }

    /// Returns true if and only if locks on the two meet: the same thing,
    /// or one inside the other.
    pub fn overlaps(&self, other: &Res) -> bool {
        let entry = |p: &'static str| p.strip_suffix('/').unwrap_or(p);
        match (*self, *other) {
            (Res::Function(a, _), Res::Function(b, _)) => a == b,
            (Res::Function(_, fm), Res::Module(m)) | (Res::Module(m), Res::Function(_, fm)) => {
                at_or_below(fm, m, "::")
            }
            (Res::Module(a), Res::Module(b)) => at_or_below(a, b, "::") || at_or_below(b, a, "::"),
            (Res::Path(a), Res::Path(b)) => {
                at_or_below(entry(a), entry(b), "/") || at_or_below(entry(b), entry(a), "/")
            }
            (Res::Named(a), Res::Named(b)) | (Res::Semaphore(a), Res::Semaphore(b)) => a == b,
            _ => false,
        }
    }

    pub fn resource(&self) -> Resource {
        match *self {
            Res::Function(f, _) => Resource::Function(FunctionId(f)),
            Res::Module(m) => Resource::Module(ModuleName::parse(m).unwrap()),
            Res::Path(p) => Resource::Path(ResourcePath::parse(p).unwrap()),
            Res::Named(n) => Resource::Named(ResourceName::parse(n).unwrap()),
            Res::Semaphore(s) => Resource::Semaphore(ResourceName::parse(s).unwrap()),
        }
    }
}

/// The model's identity of a table resource, for comparing views.
pub fn id_of(r: &Resource) -> String {
    match r {
        Resource::Function(f) => format!("f#{}", f.0),
        Resource::Module(m) => format!("m:{m}"),
        Resource::Path(p) => format!("p:{}", p.entry()),
        Resource::Named(n) => format!("n:{n}"),
        Resource::Semaphore(s) => format!("s:{s}"),
    }
}

/// One resource as a request asks for it.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    pub res: Res,
    pub claim: Claim,
    pub capacity: Option<u32>,
}

impl Ask {
    pub fn target(&self) -> LockTarget {
        let resource = self.res.resource();
        let module = match self.res {
            Res::Function(_, m) => Some(ModuleName::parse(m).unwrap()),
            _ => None,
        };
        LockTarget {
            resource,
            claim: self.claim,
            module,
            capacity: self.capacity,
        }
    }
}

fn permits(c: Claim) -> u64 {
    c.permits().unwrap_or(0) as u64
}

/// Returns true if and only if holding `held` gives all `asked` asks.
fn covers(held: Claim, asked: Claim) -> bool {
    match (held, asked) {
        (Claim::Permits(h), Claim::Permits(a)) => h >= a,
        (h, a) => h >= a,
    }
}

/// Returns true if and only if two read/write claims on overlapping
/// resources exclude each other.
fn excludes(a: Claim, b: Claim) -> bool {
    a == Claim::Write || b == Claim::Write
}

#[derive(Clone, Debug)]
pub struct Pending {
    pub seq: u64,
    pub agent: u64,
    pub targets: Vec<Ask>,
    pub ttl: u64,
    pub deadline: u64,
}

#[derive(Clone, Debug)]
pub struct Hold {
    pub res: Res,
    pub claim: Claim,
    pub expires: u64,
}

#[derive(Default)]
pub struct Model {
    pub now: u64,
    /// (agent, resource id) → its hold.
    pub held: BTreeMap<(u64, String), Hold>,
    /// In arrival order.
    pub pending: Vec<Pending>,
    pub capacities: BTreeMap<&'static str, u32>,
    pub max_token: u64,
}

/// One per resource, the stronger claim; `None` if the table must refuse
/// the request as malformed.
pub fn normalise(asks: &[Ask]) -> Option<Vec<Ask>> {
    let fits = |a: &Ask| match (a.claim, a.capacity) {
        (Claim::Permits(k), Some(c)) => k <= c,
        _ => true,
    };
    if !asks.iter().all(fits) {
        return None;
    }
    let mut by_id: BTreeMap<String, Ask> = BTreeMap::new();
    for a in asks {
        match by_id.get_mut(&a.res.id()) {
            None => {
                by_id.insert(a.res.id(), *a);
            }
            Some(into) => {
                into.claim = std::cmp::max(into.claim, a.claim);
                match (into.capacity, a.capacity) {
                    (Some(x), Some(y)) if x != y => return None,
                    (None, given) => into.capacity = given,
                    _ => {}
                }
            }
        }
    }
    let merged: Vec<Ask> = by_id.into_values().collect();
    merged.iter().all(fits).then_some(merged)
}

impl Model {
    pub fn expire(&mut self) {
        let now = self.now;
        self.held.retain(|_, h| h.expires > now);
    }

    fn name(res: Res) -> &'static str {
        match res {
            Res::Semaphore(s) => s,
            _ => "",
        }
    }

    /// Returns true if and only if the semaphores' capacities admit the
    /// request: a given one agrees with the set one, the permits fit, and
    /// an unset one is given.
    pub fn capacities_admit(&self, asks: &[Ask]) -> bool {
        asks.iter().filter(|a| a.res.is_semaphore()).all(|a| {
            match (self.capacities.get(Model::name(a.res)), a.capacity) {
                (Some(set), Some(given)) if *set != given => false,
                (Some(set), _) => permits(a.claim) <= *set as u64,
                (None, given) => given.is_some(),
            }
        })
    }

    pub fn fix_capacities(&mut self, asks: &[Ask]) {
        for a in asks {
            if let (Res::Semaphore(s), Some(c)) = (a.res, a.capacity) {
                self.capacities.entry(s).or_insert(c);
            }
        }
    }

    /// Returns true if and only if `ask` of `agent`'s request (waiting as
    /// `before`, or new) is kept back, counting only agents for which
    /// `counts` holds: by a conflicting holder, or (unless it refreshes
    /// what the agent holds) by an earlier conflicting waiter; for a
    /// semaphore, by holders' and earlier waiters' permits that leave too
    /// few.
    fn kept_back(
        &self,
        agent: u64,
        ask: &Ask,
        before: Option<u64>,
        counts: &dyn Fn(u64) -> bool,
    ) -> bool {
        let live = |h: &Hold| h.expires > self.now;
        let refresh = self
            .held
            .get(&(agent, ask.res.id()))
            .is_some_and(|h| live(h) && covers(h.claim, ask.claim));
        let earlier = self.pending.iter().filter(|p| {
            before.is_none_or(|s| p.seq < s) && p.agent != agent && counts(p.agent) && !refresh
        });
        let holders = self
            .held
            .iter()
            .filter(|((a, _), h)| *a != agent && counts(*a) && live(h));
        if ask.res.is_semaphore() {
            let capacity = self
                .capacities
                .get(Model::name(ask.res))
                .copied()
                .or(ask.capacity)
                .unwrap_or(0) as u64;
            let same = |r: &Res| r.id() == ask.res.id();
            let held: u64 = holders
                .filter(|(_, h)| same(&h.res))
                .map(|(_, h)| permits(h.claim))
                .sum();
            let reserved: u64 = earlier
                .flat_map(|p| p.targets.iter())
                .filter(|t| same(&t.res))
                .map(|t| permits(t.claim))
                .sum();
            return held + reserved + permits(ask.claim) > capacity;
        }
        let meets = |r: &Res, c: Claim| r.overlaps(&ask.res) && excludes(c, ask.claim);
        holders.into_iter().any(|(_, h)| meets(&h.res, h.claim))
            || earlier
                .flat_map(|p| p.targets.iter())
                .any(|t| meets(&t.res, t.claim))
    }

    /// The FIFO rule over every agent.
    pub fn grantable(&self, agent: u64, asks: &[Ask], before: Option<u64>) -> bool {
        asks.iter()
            .all(|a| !self.kept_back(agent, a, before, &|_| true))
    }

    /// Returns true if and only if a new blocking request of `agent` could
    /// never be granted: the reduction (agents without a waiting request
    /// finish; a waiting request free among the unfinished is reached; an
    /// agent all of whose requests are reached finishes) never reaches it.
    pub fn deadlocks(&self, agent: u64, asks: &[Ask]) -> bool {
        let mut unfinished: BTreeMap<u64, usize> = BTreeMap::new();
        for p in &self.pending {
            *unfinished.entry(p.agent).or_default() += 1;
        }
        *unfinished.entry(agent).or_default() += 1;
        let mut reached: Vec<u64> = Vec::new();
        loop {
            let counts = |a: u64| unfinished.contains_key(&a);
            if asks
                .iter()
                .all(|a| !self.kept_back(agent, a, None, &counts))
            {
                return false;
            }
            let newly: Vec<(u64, u64)> = self
                .pending
                .iter()
                .filter(|p| !reached.contains(&p.seq) && counts(p.agent))
                .filter(|p| {
                    p.targets
                        .iter()
                        .all(|a| !self.kept_back(p.agent, a, Some(p.seq), &counts))
                })
                .map(|p| (p.seq, p.agent))
                .collect();
            if newly.is_empty() {
                return true;
            }
            for (seq, a) in newly {
                reached.push(seq);
                let left = unfinished.get_mut(&a).unwrap();
                *left -= 1;
                if *left == 0 {
                    unfinished.remove(&a);
                }
            }
        }
    }

    pub fn grant(&mut self, agent: u64, asks: &[Ask], ttl: u64) {
        self.fix_capacities(asks);
        for a in asks {
            let expires = self.now + ttl;
            let e = self.held.entry((agent, a.res.id())).or_insert(Hold {
                res: a.res,
                claim: a.claim,
                expires,
            });
            e.claim = std::cmp::max(e.claim, a.claim);
            e.expires = expires;
        }
    }

    pub fn holdings(&self, agent: u64) -> BTreeMap<String, Claim> {
        self.held
            .iter()
            .filter(|((a, _), _)| *a == agent)
            .map(|((_, id), h)| (id.clone(), h.claim))
            .collect()
    }

    pub fn release(&mut self, agent: u64, ids: Option<&[String]>) {
        self.held
            .retain(|(a, id), _| *a != agent || ids.is_some_and(|ids| !ids.contains(id)));
    }

    /// Checks that no two live holds conflict: read/write holds of
    /// different agents on overlapping resources, at most one writing;
    /// semaphores within their capacity.
    pub fn check_no_conflicting_holders(&self) {
        let holds: Vec<(&(u64, String), &Hold)> = self.held.iter().collect();
        for (i, ((a, _), h)) in holds.iter().enumerate() {
            for ((b, _), g) in &holds[i + 1..] {
                if a != b && !h.res.is_semaphore() && h.res.overlaps(&g.res) {
                    assert!(
                        !excludes(h.claim, g.claim),
                        "{a} and {b} hold {:?} and {:?} at once",
                        h,
                        g
                    );
                }
            }
        }
        for (name, capacity) in &self.capacities {
            let used: u64 = self
                .held
                .values()
                .filter(|h| h.res == Res::Semaphore(name))
                .map(|h| permits(h.claim))
                .sum();
            assert!(used <= *capacity as u64, "semaphore {name} over capacity");
        }
    }
}
