//! The table's keys, each interned once into a numbered slot that holds its
//! record (`KeyLock`). A key is hashed and compared only to find its slot;
//! from then on the state names the record by its `SlotId`, so an agent's
//! record on a key remembers the slots of the ancestors its own lock's
//! intention stands on (`AncestorSlots`, in `KeyHolder::above`) and the
//! release reaches them without a lookup.
//!
//! A slot lives while its key has a record; an idle record's slot is freed
//! and reused for the next new key. A slot that an installed lock names as
//! an ancestor is never idle (the lock's intention stands on it), so an id
//! a holder record keeps always names the key it was taken for. Nothing
//! here decides anything about locks.

use super::hash::IdMap;
use super::holders::KeyLock;
use super::keys::{Key, KeyRef};
use crate::graph::FunctionId;

/// A key's place in the table, stable while the key has a record.
pub(in crate::locks) type SlotId = u32;

/// The keys and their records.
#[derive(Default)]
pub(in crate::locks) struct Slots {
    index: IdMap<Key, SlotId>,
    /// By `SlotId`; a free slot holds `FREE` and an empty record.
    slots: Vec<(Key, KeyLock)>,
    free: Vec<SlotId>,
}

/// What a free slot holds in place of a key; never in the index.
const FREE: Key = Key::Function(FunctionId(u64::MAX));

impl Slots {
    /// The slot of `key`, if the table has a record of it.
    #[inline]
    pub(in crate::locks) fn find(&self, key: KeyRef<'_>) -> Option<SlotId> {
        self.index.get(key.find()).copied()
    }

    /// The slot of `key`, made (with an empty record) if the table has
    /// none; only then is the key cloned into the table.
    #[inline]
    pub(in crate::locks) fn make(&mut self, key: KeyRef<'_>) -> SlotId {
        if let Some(id) = self.find(key) {
            return id;
        }
        let owned = key.owned();
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = (owned.clone(), KeyLock::default());
                id
            }
            None => {
                self.slots.push((owned.clone(), KeyLock::default()));
                (self.slots.len() - 1) as SlotId
            }
        };
        self.index.insert(owned, id);
        id
    }

    /// Forgets the key of slot `id` and frees the slot.
    pub(in crate::locks) fn remove(&mut self, id: SlotId) {
        let (key, _) = std::mem::replace(&mut self.slots[id as usize], (FREE, KeyLock::default()));
        self.index.remove(&key);
        self.free.push(id);
    }

    #[inline]
    pub(in crate::locks) fn lock(&self, id: SlotId) -> &KeyLock {
        &self.slots[id as usize].1
    }

    #[inline]
    pub(in crate::locks) fn lock_mut(&mut self, id: SlotId) -> &mut KeyLock {
        &mut self.slots[id as usize].1
    }

    /// The key of slot `id`.
    #[inline]
    pub(in crate::locks) fn key(&self, id: SlotId) -> &Key {
        &self.slots[id as usize].0
    }

    /// The record of `key`, if the table has one.
    #[inline]
    pub(in crate::locks) fn get(&self, key: KeyRef<'_>) -> Option<&KeyLock> {
        self.find(key).map(|id| self.lock(id))
    }

    #[inline]
    pub(in crate::locks) fn get_mut(&mut self, key: KeyRef<'_>) -> Option<&mut KeyLock> {
        self.find(key).map(|id| self.lock_mut(id))
    }

    /// The table's own copy of `key` and its record.
    #[inline]
    pub(in crate::locks) fn get_key_value(&self, key: KeyRef<'_>) -> Option<(&Key, &KeyLock)> {
        let (k, l) = &self.slots[self.find(key)? as usize];
        Some((k, l))
    }

    /// Keys with a record.
    #[inline]
    pub(in crate::locks) fn len(&self) -> usize {
        self.index.len()
    }

    /// Every key with a record, and the record, in no order.
    pub(in crate::locks) fn iter(&self) -> impl Iterator<Item = (&Key, &KeyLock)> {
        self.index.values().map(|id| {
            let (k, l) = &self.slots[*id as usize];
            (k, l)
        })
    }
}

/// The most ancestors whose slots a lock keeps; a lock deeper than this
/// finds its ancestors by their keys instead.
const INLINE: usize = 7;

/// The slots of a lock's ancestor keys, outermost first, as its grant found
/// them: where its release takes its intention off.
#[derive(Clone, Copy, Debug)]
pub(in crate::locks) struct AncestorSlots {
    /// How many of `ids` are kept; `UNKEPT` if there were more than fit.
    len: u8,
    ids: [SlotId; INLINE],
}

const UNKEPT: u8 = u8::MAX;

impl AncestorSlots {
    pub(in crate::locks) const NONE: AncestorSlots = AncestorSlots {
        len: 0,
        ids: [0; INLINE],
    };

    #[inline]
    pub(in crate::locks) fn push(&mut self, id: SlotId) {
        match self.len as usize {
            n if n < INLINE => {
                self.ids[n] = id;
                self.len += 1;
            }
            _ => self.len = UNKEPT,
        }
    }

    /// The slots, unless there were too many to keep.
    #[inline]
    pub(in crate::locks) fn kept(&self) -> Option<&[SlotId]> {
        (self.len != UNKEPT).then(|| &self.ids[..self.len as usize])
    }
}
