//! The typed storage of one table: a generational slot arena, or for a kind of a
//! polymorphic base a sparse set over the base's slots.
//!
//! The slot arena is the crate's own (rather than `slotmap`'s) because rolling back a
//! removal must bring an entity back under its *old* key: [`Arena::insert_at`].

use std::any::Any;
use std::collections::VecDeque;
use std::mem::needs_drop;
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Serialize;

use crate::codec::{self, Unloadable};
use crate::grave::{Grave, Panic};
use crate::key::RawKey;
use crate::schema::Entity;

struct Slot<T> {
    value: Option<T>,
    /// Version of the current occupant, or of the last one while vacant (0: never used).
    version: u32,
    /// Highest version ever issued for this slot: a fresh insert uses `high + 1`, so a key
    /// handed out once is never reissued, even after a rollback lowered `version`.
    high: u32,
}

/// A stack of slot indices in a chain of small chunks. Unlike one growing `Vec`, it
/// never makes a large allocation while entities are removed: with glibc, allocating or
/// freeing a block of 1 KiB or more first consolidates every small block freed before
/// (the strings of the removed entities), which made deleting many entities several
/// times slower.
#[derive(Default)]
struct FreeStack {
    top: Option<Box<FreeChunk>>,
    len: usize,
}

struct FreeChunk {
    items: Vec<u32>,
    below: Option<Box<FreeChunk>>,
}

/// Indices per chunk: 960 bytes, within glibc's small-block sizes.
const FREE_CHUNK: usize = 240;

impl FreeStack {
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, index: u32) {
        match &mut self.top {
            Some(chunk) if chunk.items.len() < FREE_CHUNK => chunk.items.push(index),
            _ => {
                let mut items = Vec::with_capacity(FREE_CHUNK);
                items.push(index);
                let below = self.top.take();
                self.top = Some(Box::new(FreeChunk { items, below }));
            }
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<u32> {
        let chunk = self.top.as_mut()?;
        let index = chunk.items.pop().expect("chunks are never empty");
        if chunk.items.is_empty() {
            self.top = chunk.below.take();
        }
        self.len -= 1;
        Some(index)
    }

    fn peek(&self) -> Option<u32> {
        self.top.as_ref()?.items.last().copied()
    }

    /// The indices from the top down.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(self.top.as_deref(), |c| c.below.as_deref())
            .flat_map(|c| c.items.iter().rev().copied())
    }
}

impl Drop for FreeStack {
    fn drop(&mut self) {
        // iteratively: a recursive drop of a long chain could overflow the stack
        let mut next = self.top.take();
        while let Some(mut chunk) = next {
            next = chunk.below.take();
        }
    }
}

/// One bit per index (a slot's, mostly), all clear at first; `set` grows it. The
/// arena's free-stack marks, `link_all`'s new children and the regions a bulk link laid
/// out (`Regions`) are each one.
#[derive(Default)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    /// Room for indices `0..len` without growing.
    pub fn with_len(len: usize) -> Bits {
        Bits(vec![0; len.div_ceil(64)])
    }

    #[inline]
    pub fn get(&self, index: u32) -> bool {
        self.0
            .get(index as usize / 64)
            .is_some_and(|w| w >> (index % 64) & 1 != 0)
    }

    #[inline]
    pub fn set(&mut self, index: u32) {
        let word = index as usize / 64;
        match self.0.get_mut(word) {
            Some(w) => *w |= 1 << (index % 64),
            None => self.grow_and_set(index),
        }
    }

    #[cold]
    fn grow_and_set(&mut self, index: u32) {
        self.0.resize(index as usize / 64 + 1, 0);
        self.0[index as usize / 64] |= 1 << (index % 64);
    }

    #[inline]
    pub fn clear(&mut self, index: u32) {
        if let Some(w) = self.0.get_mut(index as usize / 64) {
            *w &= !(1 << (index % 64));
        }
    }

    /// The set indices, ascending.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = w as u32 * 64 + bits.trailing_zeros();
                    bits &= bits - 1;
                    i
                })
            })
        })
    }
}

/// A generational arena: O(1) insert, lookup and removal; stale keys never resolve.
///
/// The free list: `free` is a stack of slot indices, each at most once (`listed` marks
/// them). Every vacant slot whose versions are not exhausted (`high < u32::MAX`) is listed;
/// a slot at its last version is retired when vacated and never listed again. A listed
/// slot may be occupied: a rollback put a removed value back while its index was below the
/// top of the stack. Such an entry stays where it is and is skipped by `insert` (which
/// unlists it), or serves again when the slot is next vacated. So the stack never holds
/// more entries than there are slots, whatever the history of commits and rollbacks.
pub(crate) struct Arena<T> {
    slots: Vec<Slot<T>>,
    /// Slot indices to reuse, the next one on top.
    free: FreeStack,
    /// Which slots are on `free`.
    listed: Bits,
    /// Vacant slots at their last version (never reused).
    retired: usize,
    len: usize,
    /// Values removed outside a transaction, waiting to be dropped (see `grave.rs`).
    dead: Vec<T>,
    /// Values of recorded removals, oldest first (see `Undo::Vaulted`).
    vault: VecDeque<T>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            free: FreeStack::default(),
            listed: Bits::default(),
            retired: 0,
            len: 0,
            dead: Vec::new(),
            vault: VecDeque::new(),
        }
    }
}

impl<T> Arena<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `additional` inserts without reallocating the slots: the vacant
    /// slots that can be reused count, retired ones do not.
    pub fn reserve(&mut self, additional: usize) {
        let reusable = self.slots.len() - self.len - self.retired;
        if additional > reusable {
            self.slots.reserve(additional - reusable);
        }
    }

    #[inline(always)]
    pub fn insert(&mut self, value: T) -> RawKey {
        // (tested first, inline: most inserts find no free slot; reusing one is out of line
        // so that an insert inlines into the caller's loop)
        if self.free.top.is_some() {
            return self.insert_reusing(value);
        }
        self.push_new(value)
    }

    /// [`insert`](Self::insert) into the vacant slot on top of the free stack, or a new one
    /// if every listed slot was reoccupied by a rollback.
    #[inline(never)]
    fn insert_reusing(&mut self, value: T) -> RawKey {
        while self.free.top.is_some() {
            let index = self.free.pop().expect("a free slot on top");
            self.listed.clear(index);
            let slot = &mut self.slots[index as usize];
            if slot.value.is_some() {
                continue; // reoccupied by a rollback
            }
            debug_assert!(slot.high < u32::MAX, "a retired slot was listed");
            let version = slot.high + 1;
            slot.version = version;
            slot.high = version;
            slot.value = Some(value);
            self.len += 1;
            return RawKey::new(index, nonzero(version));
        }
        self.push_new(value)
    }

    #[inline(always)]
    fn push_new(&mut self, value: T) -> RawKey {
        let index = u32::try_from(self.slots.len()).expect("arena holds at most 2^32 slots");
        self.slots.push(Slot {
            value: Some(value),
            version: 1,
            high: 1,
        });
        self.len += 1;
        RawKey::new(index, NonZeroU32::MIN)
    }

    /// Puts `value` back under `key`. The slot must be vacant (a rollback guarantees it).
    /// If the slot's index is on top of the free stack (the removal being undone pushed
    /// it) it leaves the stack; deeper, it stays listed (see [`Arena`]).
    #[inline]
    pub fn insert_at(&mut self, key: RawKey, value: T) {
        let index = key.idx();
        let old_len = self.slots.len();
        if index >= old_len {
            self.slots.resize_with(index + 1, || Slot {
                value: None,
                version: 0,
                high: 0,
            });
            // the new vacant slots below `index` are listed, the lowest reused first
            for i in (old_len..index).rev() {
                self.push_free(i as u32);
            }
        }
        let slot = &mut self.slots[index];
        assert!(slot.value.is_none(), "insert_at on an occupied slot");
        if slot.high == u32::MAX {
            self.retired -= 1;
        }
        slot.version = key.version();
        slot.high = slot.high.max(key.version());
        slot.value = Some(value);
        self.len += 1;
        if self.free.peek() == Some(key.index()) {
            self.free.pop();
            self.listed.clear(key.index());
        }
    }

    pub fn get(&self, key: RawKey) -> Option<&T> {
        match self.slots.get(key.idx()) {
            Some(slot) if slot.version == key.version() => slot.value.as_ref(),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: RawKey) -> Option<&mut T> {
        match self.slots.get_mut(key.idx()) {
            Some(slot) if slot.version == key.version() => slot.value.as_mut(),
            _ => None,
        }
    }

    // always: a removal outside a transaction (the hot path of deletes) and a recorded
    // one both call it, and a call out of line costs W7 7% more instructions
    #[inline(always)]
    pub fn remove(&mut self, key: RawKey) -> Option<T> {
        let slot = self.slots.get_mut(key.idx())?;
        if slot.version != key.version() {
            return None;
        }
        let value = slot.value.take()?;
        self.len -= 1;
        if slot.high == u32::MAX {
            // the slot's versions are exhausted: retire it
            self.retired += 1;
        } else if !self.listed.get(key.index()) {
            self.push_free(key.index());
        } // else: an entry left by a rollback serves again
        Some(value)
    }

    #[inline]
    fn push_free(&mut self, index: u32) {
        self.free.push(index);
        self.listed.set(index);
    }

    /// An arena with the given slots, each (highest version issued, version of the live
    /// entity or 0 for a vacant slot), and the free list `free` (slot indices, the first
    /// reused first); `next` gives the value of each live slot in order. The caller has
    /// checked the versions and the free list (indices in range, each once, none retired,
    /// every reusable vacant slot listed).
    pub fn from_slots<E>(
        states: &[(u32, u32)],
        free: &[u32],
        mut next: impl FnMut() -> Result<T, E>,
    ) -> Result<Self, E> {
        let mut slots = Vec::with_capacity(states.len());
        let mut len = 0;
        let mut retired = 0;
        for &(high, version) in states {
            let value = if version == 0 {
                retired += usize::from(high == u32::MAX);
                None
            } else {
                len += 1;
                Some(next()?)
            };
            slots.push(Slot {
                value,
                version,
                high,
            });
        }
        let mut arena = Arena {
            slots,
            free: FreeStack::default(),
            listed: Bits::default(),
            retired,
            len,
            dead: Vec::new(),
            vault: VecDeque::new(),
        };
        for &index in free.iter().rev() {
            arena.push_free(index);
        }
        Ok(arena)
    }

    /// The free list, the index reused first first.
    pub fn free_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.free.iter()
    }

    /// Checks the free list's invariant (see [`Arena`]): O(slots).
    pub fn check_free_list(&self) -> Result<(), String> {
        let mut seen = vec![false; self.slots.len()];
        for index in self.free.iter() {
            let Some(slot) = self.slots.get(index as usize) else {
                return Err(format!(
                    "free list names slot {index} of {}",
                    self.slots.len()
                ));
            };
            if std::mem::replace(&mut seen[index as usize], true) {
                return Err(format!("slot {index} is listed twice"));
            }
            if slot.high == u32::MAX {
                return Err(format!("retired slot {index} is listed"));
            }
        }
        let mut retired = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            if seen[i] != self.listed.get(i as u32) {
                return Err(format!(
                    "slot {i}'s listed bit disagrees with the free list"
                ));
            }
            if slot.value.is_none() {
                if slot.high == u32::MAX {
                    retired += 1;
                } else if !seen[i] {
                    return Err(format!("vacant slot {i} is not on the free list"));
                }
            }
        }
        if retired != self.retired {
            return Err(format!("{retired} retired slots, {} counted", self.retired));
        }
        if self.free.len() > self.slots.len() {
            return Err("the free list is longer than the slots".into());
        }
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (RawKey, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let v = slot.value.as_ref()?;
            Some((RawKey::new(i as u32, nonzero(slot.version)), v))
        })
    }
}

/// The slots of an arena, borrowed: a lookup is a bounds check, a version compare and
/// the occupancy check.
pub(crate) struct Slots<'a, T>(&'a [Slot<T>]);

impl<T> Clone for Slots<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Slots<'_, T> {}

impl<T> Default for Slots<'_, T> {
    fn default() -> Self {
        Slots(&[])
    }
}

impl<'a, T> Slots<'a, T> {
    #[inline]
    pub fn get(self, key: RawKey) -> Option<&'a T> {
        match self.0.get(key.idx()) {
            Some(slot) if slot.version == key.version() => slot.value.as_ref(),
            _ => None,
        }
    }
}

#[inline]
fn nonzero(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("live slots have a nonzero version")
}

/// The typed column of table `t` among a store's `tables`: a free function, so that a
/// caller can hold other fields of the store at the same time. Upcast to `dyn Any`, not
/// through `as_any`: one call through the vtable (`type_id`) rather than two.
#[inline]
pub(crate) fn column<T: Entity>(tables: &[Box<dyn ErasedArena>], t: u32) -> &Column<T> {
    let any: &dyn Any = &*tables[t as usize];
    any.downcast_ref().expect("table holds its declared type")
}

/// [`column`], mutable.
#[inline]
pub(crate) fn column_mut<T: Entity>(tables: &mut [Box<dyn ErasedArena>], t: u32) -> &mut Column<T> {
    let any: &mut dyn Any = &mut *tables[t as usize];
    any.downcast_mut().expect("table holds its declared type")
}

/// The type-erased face of an arena, for code that works on any table (cascades, rollback,
/// integrity checks).
pub(crate) trait ErasedArena: Any + Send + Sync {
    fn len(&self) -> usize;
    fn contains(&self, key: RawKey) -> bool;
    /// The live keys. In debug builds it also checks the free list's invariant (this is
    /// how `Store::check_integrity` reaches it in tests).
    fn keys(&self) -> Vec<RawKey>;
    /// Checks the free list of a plain table or base (see `Arena::check_free_list`).
    fn check_free_list(&self) -> Result<(), String>;
    /// Whether dropping a row runs code (else a removed one needs no grave).
    fn needs_drop(&self) -> bool;
    /// Removes the value and keeps it, to be dropped by [`bury`](Self::bury) once the
    /// store is consistent again (see `grave.rs`).
    fn remove_defer(&mut self, key: RawKey) -> bool;
    /// Drops the values [`remove_defer`](Self::remove_defer) kept, each once; keeps the
    /// first panic of their `Drop` in `first`.
    fn bury(&mut self, first: &mut Option<Panic>);
    /// Removes the value and returns it boxed, for a rollback log.
    fn remove_boxed(&mut self, key: RawKey) -> Option<Box<dyn Any + Send + Sync>>;
    /// Puts a boxed value made by `remove_boxed` back under its key. For a kind row put
    /// back before the end of its kind's order (inserted last, then swapped with the row
    /// that took its place), returns that position.
    fn restore_boxed(&mut self, key: RawKey, value: Box<dyn Any + Send + Sync>) -> Option<u32>;
    /// For a kind: swaps its row at `pos` with its last row (its own inverse).
    fn swap_last(&mut self, pos: usize);
    /// Swaps the value under `key` with a boxed one, returning the old value boxed.
    fn replace_boxed(
        &mut self,
        key: RawKey,
        value: Box<dyn Any + Send + Sync>,
    ) -> Box<dyn Any + Send + Sync>;
    /// Slots of a plain table or base; rows of a kind.
    fn slot_count(&self) -> usize;
    /// For a kind, makes room in its index by base slot for `slots` base slots in all.
    fn reserve_slots(&mut self, slots: usize);
    /// For a plain table or base, (highest version issued, live version or 0) of every
    /// slot; for a kind, (slot index, version) of every row in the kind's order.
    fn layout(&self, f: &mut dyn FnMut(u32, u32));
    /// For a plain table or base, its free list, the slot reused first first (nothing
    /// for a kind).
    fn free_order(&self, f: &mut dyn FnMut(u32));
    /// Appends the encoding of every row, in the order of `layout` (and of `keys`), and
    /// checks that the rows load back (`codec::encode_checked`).
    fn encode_rows(&self, out: &mut Vec<u8>) -> Result<(), Unloadable>;
    /// Removes the value into the back of the table's vault, where a recorded removal
    /// keeps it (`Undo::Vaulted`): no allocation, unlike `remove_boxed`.
    fn remove_vault(&mut self, key: RawKey) -> bool;
    /// Puts the newest vaulted value back under `key`; as `restore_boxed` for a kind row
    /// put back before the end of its kind's order.
    fn restore_vault(&mut self, key: RawKey) -> Option<u32>;
    /// Drops the oldest vaulted value, keeping the first panic of its `Drop` in `first`.
    fn drop_vault_front(&mut self, first: &mut Option<Panic>);
    /// Drops every vaulted value, each once, keeping the first panic in `first`.
    fn clear_vault(&mut self, first: &mut Option<Panic>);
    /// Number of vaulted values.
    fn vault_len(&self) -> usize;
    /// The encoding of the vaulted value `back` places before the newest.
    fn encode_vaulted(&self, back: usize) -> Result<Vec<u8>, String>;
    /// The encoding of the live row under `key` (for the change feed).
    fn encode_row(&self, key: RawKey) -> Result<Vec<u8>, String>;
    /// The encoding of a value boxed by `remove_boxed` or `replace_boxed`.
    fn encode_boxed(&self, value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, String>;
    /// Decodes a row and puts it under `key`, whose slot must be vacant (a replica
    /// applying the change feed).
    fn insert_encoded(&mut self, key: RawKey, bytes: &[u8]) -> Result<(), String>;
    /// Decodes a row, boxed as `replace_boxed` takes it.
    fn decode_boxed(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send + Sync>, String>;
}

impl<T: Entity> ErasedArena for Column<T> {
    fn len(&self) -> usize {
        Column::len(self)
    }
    fn contains(&self, key: RawKey) -> bool {
        Column::contains(self, key)
    }
    fn keys(&self) -> Vec<RawKey> {
        self.iter().map(|(k, _)| k).collect()
    }
    fn needs_drop(&self) -> bool {
        needs_drop::<T>()
    }
    fn check_free_list(&self) -> Result<(), String> {
        match self {
            Column::Slots(a) => a.check_free_list(),
            Column::Kind(_) => Ok(()),
        }
    }
    #[inline]
    fn remove_defer(&mut self, key: RawKey) -> bool {
        let (value, dead) = match self {
            Column::Slots(a) => (a.remove(key), &mut a.dead),
            Column::Kind(k) => (k.remove(key), &mut k.dead),
        };
        match value {
            Some(v) => {
                if needs_drop::<T>() {
                    dead.push(v);
                }
                true
            }
            None => false,
        }
    }
    fn bury(&mut self, first: &mut Option<Panic>) {
        let dead = match self {
            Column::Slots(a) => &mut a.dead,
            Column::Kind(k) => &mut k.dead,
        };
        if !dead.is_empty() {
            dead.bury(first);
        }
    }
    fn remove_boxed(&mut self, key: RawKey) -> Option<Box<dyn Any + Send + Sync>> {
        match self {
            Column::Slots(a) => a
                .remove(key)
                .map(|v| Box::new(v) as Box<dyn Any + Send + Sync>),
            Column::Kind(k) => k
                .remove_at(key)
                .map(|(pos, value)| Box::new(RemovedKindRow { pos, value }) as _),
        }
    }
    fn restore_boxed(&mut self, key: RawKey, value: Box<dyn Any + Send + Sync>) -> Option<u32> {
        match self {
            Column::Slots(a) => {
                let value = value
                    .downcast::<T>()
                    .expect("restored value has the table's type");
                a.insert_at(key, *value);
                None
            }
            Column::Kind(k) => {
                let row = value
                    .downcast::<RemovedKindRow<T>>()
                    .expect("restored value has the table's type");
                k.restore(key, row.pos, row.value).map(|pos| pos as u32)
            }
        }
    }
    fn swap_last(&mut self, pos: usize) {
        match self {
            Column::Slots(_) => unreachable!("the rows of a plain table have no order to swap"),
            Column::Kind(k) => k.swap_last(pos),
        }
    }
    fn replace_boxed(
        &mut self,
        key: RawKey,
        value: Box<dyn Any + Send + Sync>,
    ) -> Box<dyn Any + Send + Sync> {
        let value = value
            .downcast::<T>()
            .expect("replacement has the table's type");
        let slot = self.get_mut(key).expect("replaced entity is live");
        Box::new(std::mem::replace(slot, *value))
    }
    fn reserve_slots(&mut self, slots: usize) {
        if let Column::Kind(k) = self {
            k.sparse.reserve(slots.saturating_sub(k.sparse.len()));
        }
    }
    fn slot_count(&self) -> usize {
        match self {
            Column::Slots(a) => a.slots.len(),
            Column::Kind(k) => k.dense.len(),
        }
    }
    fn free_order(&self, f: &mut dyn FnMut(u32)) {
        if let Column::Slots(a) = self {
            a.free_order().for_each(f);
        }
    }
    fn layout(&self, f: &mut dyn FnMut(u32, u32)) {
        match self {
            Column::Slots(a) => {
                for slot in &a.slots {
                    let live = if slot.value.is_some() {
                        slot.version
                    } else {
                        0
                    };
                    f(slot.high, live);
                }
            }
            Column::Kind(k) => {
                for (key, _) in &k.dense {
                    f(key.index(), key.version());
                }
            }
        }
    }
    #[inline]
    fn remove_vault(&mut self, key: RawKey) -> bool {
        match self {
            Column::Slots(a) => match a.remove(key) {
                Some(v) => {
                    a.vault.push_back(v);
                    true
                }
                None => false,
            },
            Column::Kind(k) => match k.remove_at(key) {
                Some(row) => {
                    k.vault.push_back(row);
                    true
                }
                None => false,
            },
        }
    }
    fn restore_vault(&mut self, key: RawKey) -> Option<u32> {
        match self {
            Column::Slots(a) => {
                let value = a.vault.pop_back().expect("a vaulted value");
                a.insert_at(key, value);
                None
            }
            Column::Kind(k) => {
                let (pos, value) = k.vault.pop_back().expect("a vaulted value");
                k.restore(key, pos, value).map(|pos| pos as u32)
            }
        }
    }
    fn drop_vault_front(&mut self, first: &mut Option<Panic>) {
        let r = catch_unwind(AssertUnwindSafe(|| match self {
            Column::Slots(a) => drop(a.vault.pop_front()),
            Column::Kind(k) => drop(k.vault.pop_front()),
        }));
        if let Err(p) = r {
            first.get_or_insert(p);
        }
    }
    fn clear_vault(&mut self, first: &mut Option<Panic>) {
        while self.vault_len() > 0 {
            self.drop_vault_front(first);
        }
    }
    fn vault_len(&self) -> usize {
        match self {
            Column::Slots(a) => a.vault.len(),
            Column::Kind(k) => k.vault.len(),
        }
    }
    fn encode_vaulted(&self, back: usize) -> Result<Vec<u8>, String> {
        match self {
            Column::Slots(a) => encode_value(&a.vault[a.vault.len() - 1 - back]),
            Column::Kind(k) => encode_value(&k.vault[k.vault.len() - 1 - back].1),
        }
    }
    fn encode_row(&self, key: RawKey) -> Result<Vec<u8>, String> {
        let value = self.get(key).expect("encoding a live row");
        encode_value(value)
    }
    fn encode_boxed(&self, value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, String> {
        if let Some(v) = value.downcast_ref::<T>() {
            encode_value(v)
        } else {
            let row = value
                .downcast_ref::<RemovedKindRow<T>>()
                .expect("boxed value has the table's type");
            encode_value(&row.value)
        }
    }
    fn insert_encoded(&mut self, key: RawKey, bytes: &[u8]) -> Result<(), String> {
        let value = codec::decode_one::<T>(bytes)?;
        let taken = match self {
            Column::Slots(a) => a.slots.get(key.idx()).is_some_and(|s| s.value.is_some()),
            Column::Kind(k) => k.sparse.get(key.idx()).is_some_and(|&i| i != NONE),
        };
        if taken {
            return Err(format!("slot {} is taken", key.index()));
        }
        self.insert_at(key, value);
        Ok(())
    }
    fn decode_boxed(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send + Sync>, String> {
        let value = codec::decode_one::<T>(bytes)?;
        Ok(Box::new(value))
    }
    fn encode_rows(&self, out: &mut Vec<u8>) -> Result<(), Unloadable> {
        match self {
            Column::Slots(a) => {
                codec::encode_checked(a.len, a.slots.iter().filter_map(|s| s.value.as_ref()), out)
            }
            Column::Kind(k) => {
                codec::encode_checked(k.dense.len(), k.dense.iter().map(|(_, v)| v), out)
            }
        }
    }
}

/// Encodes one value for the change feed. A `Serialize` that panics is reported as an
/// error (the store is consistent whatever it does: the call it reports on is complete).
pub(crate) fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match catch_unwind(AssertUnwindSafe(|| codec::encode(value, &mut out))) {
        Ok(Ok(())) => Ok(out),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("its Serialize panicked".to_string()),
    }
}

/// The rows of one kind of a polymorphic base: a sparse set over the base's slots.
/// Each row lives under its base row's key. Lookup, insert and removal are O(1);
/// iteration and counting touch only this kind's rows (dense, in insertion order except
/// that a removal moves the last row into the hole).
pub(crate) struct KindArena<T> {
    dense: Vec<(RawKey, T)>,
    /// By base slot index: position in `dense`, or `NONE`.
    sparse: Vec<u32>,
    /// Values removed outside a transaction, waiting to be dropped (see `grave.rs`).
    dead: Vec<T>,
    /// Values of recorded removals with their dense positions, oldest first (see
    /// `Undo::Vaulted`).
    vault: VecDeque<(usize, T)>,
}

const NONE: u32 = u32::MAX;

impl<T> Default for KindArena<T> {
    fn default() -> Self {
        KindArena {
            dense: Vec::new(),
            sparse: Vec::new(),
            dead: Vec::new(),
            vault: VecDeque::new(),
        }
    }
}

impl<T> KindArena<T> {
    #[inline]
    fn position(&self, key: RawKey) -> Option<usize> {
        let i = *self.sparse.get(key.idx())?;
        (i != NONE && self.dense[i as usize].0 == key).then_some(i as usize)
    }

    /// The row of `key`, a live key of the base: the slot index alone answers, since a
    /// kind row lives under the key of its (live) base row and leaves with it. Reads the
    /// kind's fields only if the caller uses the reference.
    #[inline]
    pub fn row_of_live(&self, key: RawKey) -> Option<&T> {
        let i = *self.sparse.get(key.idx())?;
        if i == NONE {
            return None;
        }
        debug_assert!(
            self.dense[i as usize].0 == key,
            "a kind row under its base key"
        );
        Some(&self.dense[i as usize].1)
    }

    /// A kind with the rows under `keys` (distinct live base keys, checked by the caller),
    /// in that order; `next` gives each row's value.
    pub fn from_keys<E>(
        keys: impl ExactSizeIterator<Item = RawKey>,
        slots: usize,
        mut next: impl FnMut() -> Result<T, E>,
    ) -> Result<Self, E> {
        let mut k = KindArena {
            dense: Vec::with_capacity(keys.len()),
            sparse: vec![NONE; slots],
            dead: Vec::new(),
            vault: VecDeque::new(),
        };
        for key in keys {
            let value = next()?;
            k.insert_at(key, value);
        }
        Ok(k)
    }

    pub fn insert_at(&mut self, key: RawKey, value: T) {
        let position = self.dense.len() as u32;
        match key.idx().cmp(&self.sparse.len()) {
            // the newest base slot: the common case of a bulk insert
            std::cmp::Ordering::Equal => self.sparse.push(position),
            std::cmp::Ordering::Greater => {
                self.sparse.resize(key.idx(), NONE);
                self.sparse.push(position);
            }
            std::cmp::Ordering::Less => {
                let at = &mut self.sparse[key.idx()];
                assert!(*at == NONE, "kind row already present");
                *at = position;
            }
        }
        self.dense.push((key, value));
    }

    pub fn remove(&mut self, key: RawKey) -> Option<T> {
        self.remove_at(key).map(|(_, value)| value)
    }

    /// Removes a row and returns the dense position it held, for [`restore`](Self::restore).
    fn remove_at(&mut self, key: RawKey) -> Option<(usize, T)> {
        let i = self.position(key)?;
        let (_, value) = self.dense.swap_remove(i);
        self.sparse[key.idx()] = NONE;
        if let Some((moved, _)) = self.dense.get(i) {
            self.sparse[moved.idx()] = i as u32;
        }
        Some((i, value))
    }

    /// Undoes [`remove_at`](Self::remove_at) (the rows being as it left them): the row
    /// goes back to position `pos` and the row moved into that hole goes back to the end,
    /// so that a rollback restores the kind's iteration order exactly. Returns `pos` if
    /// the row did not go back last.
    fn restore(&mut self, key: RawKey, pos: usize, value: T) -> Option<usize> {
        self.insert_at(key, value);
        let last = self.dense.len() - 1;
        (pos < last).then(|| {
            self.swap_last(pos);
            pos
        })
    }

    /// Swaps the row at `pos` with the last row.
    fn swap_last(&mut self, pos: usize) {
        let last = self.dense.len() - 1;
        if pos < last {
            self.dense.swap(pos, last);
            self.sparse[self.dense[pos].0.idx()] = pos as u32;
            self.sparse[self.dense[last].0.idx()] = last as u32;
        }
    }
}

/// A kind row removed inside a transaction, kept in the log with its dense position.
struct RemovedKindRow<T> {
    pos: usize,
    value: T,
}

/// The typed storage of one table: a slot arena for a plain table or a polymorphic base,
/// a sparse set for a kind of a base. An explicit tag byte, as `RelationStore`'s.
#[repr(u8)]
pub(crate) enum Column<T> {
    Slots(Arena<T>),
    Kind(KindArena<T>),
}

impl<T> Column<T> {
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Column::Slots(a) => a.len(),
            Column::Kind(k) => k.dense.len(),
        }
    }

    #[inline]
    pub fn get(&self, key: RawKey) -> Option<&T> {
        match self {
            Column::Slots(a) => a.get(key),
            Column::Kind(k) => k.position(key).map(|i| &k.dense[i].1),
        }
    }

    #[inline]
    pub fn get_mut(&mut self, key: RawKey) -> Option<&mut T> {
        match self {
            Column::Slots(a) => a.get_mut(key),
            Column::Kind(k) => k.position(key).map(|i| &mut k.dense[i].1),
        }
    }

    #[inline]
    pub fn contains(&self, key: RawKey) -> bool {
        self.get(key).is_some()
    }

    #[cfg(test)]
    pub fn remove(&mut self, key: RawKey) -> Option<T> {
        match self {
            Column::Slots(a) => a.remove(key),
            Column::Kind(k) => k.remove(key),
        }
    }

    pub fn insert_at(&mut self, key: RawKey, value: T) {
        match self {
            Column::Slots(a) => a.insert_at(key, value),
            Column::Kind(k) => k.insert_at(key, value),
        }
    }

    pub fn reserve(&mut self, additional: usize) {
        match self {
            Column::Slots(a) => a.reserve(additional),
            Column::Kind(k) => k.dense.reserve(additional),
        }
    }

    /// The slots of a plain table or base, for lookups in a hot loop.
    #[inline]
    pub fn slots(&self) -> Option<Slots<'_, T>> {
        match self {
            Column::Slots(a) => Some(Slots(&a.slots)),
            Column::Kind(_) => None,
        }
    }

    /// The slot arena of a plain table or base.
    pub fn slots_mut(&mut self) -> Option<&mut Arena<T>> {
        match self {
            Column::Slots(a) => Some(a),
            Column::Kind(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (RawKey, &T)> + '_ {
        let (slots, dense) = match self {
            Column::Slots(a) => (Some(a.iter()), None),
            Column::Kind(k) => (None, Some(k.dense.iter().map(|(key, v)| (*key, v)))),
        };
        slots
            .into_iter()
            .flatten()
            .chain(dense.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_report_the_indices_set_ascending_across_words() {
        let mut b = Bits::with_len(130);
        for i in [129, 0, 63, 64, 5, 200] {
            b.set(i);
        }
        b.clear(5);
        assert_eq!(b.ones().collect::<Vec<_>>(), [0, 63, 64, 129, 200]);
        assert!(b.get(200) && b.get(64) && !b.get(5) && !b.get(1000));
        assert_eq!(Bits::default().ones().count(), 0);
    }

    #[test]
    fn a_kind_arena_keeps_its_rows_dense_and_checks_versions() {
        let mut base = Arena::default();
        let keys: Vec<RawKey> = (0..4).map(|i| base.insert(i)).collect();
        let mut k = Column::Kind(KindArena::default());
        for &key in &keys[1..] {
            k.insert_at(key, key.index());
        }
        assert_eq!(k.len(), 3);
        assert_eq!(k.get(keys[0]), None);
        assert_eq!(k.remove(keys[1]), Some(1));
        assert_eq!(k.get(keys[3]), Some(&3), "the moved row is still found");
        let stale = RawKey::new(3, NonZeroU32::new(9).unwrap());
        assert_eq!(k.get(stale), None);
        assert_eq!(k.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![3, 2]);
    }

    #[test]
    fn rollbacks_in_any_order_keep_each_slot_listed_once() {
        let mut a = Arena::default();
        let keys: Vec<RawKey> = (0..3).map(|i| a.insert(i)).collect();
        for _ in 0..100_000 {
            // a rollback in another order than the removals: `k0` is put back while it is
            // below the top of the stack, and stays listed
            a.remove(keys[0]);
            a.remove(keys[1]);
            a.insert_at(keys[0], 0);
            a.insert_at(keys[1], 1);
            assert!(a.free.len() <= a.slots.len());
        }
        assert_eq!(a.check_free_list(), Ok(()));
        // the stale entry serves again when its slot is vacated
        a.remove(keys[0]);
        assert_eq!(a.free.len(), 1);
        let k = a.insert(9);
        assert_eq!((k.index(), k.version()), (0, 2));
        assert_eq!(a.insert(10).index(), 3);
        assert_eq!(a.check_free_list(), Ok(()));
    }

    #[test]
    fn reserve_counts_reusable_vacant_slots_not_stack_entries() {
        // slots: 0 vacant, 1 live, 2 retired, 3 vacant; a stale entry for slot 1
        let states = [(1, 0), (1, 1), (u32::MAX, 0), (2, 0)];
        let mut a = Arena::from_slots(&states, &[1, 3, 0], || Ok::<_, ()>(7)).unwrap();
        assert_eq!(a.check_free_list(), Ok(()));
        a.reserve(20);
        let capacity = a.slots.capacity();
        assert!(capacity >= 4 + 18, "two slots to reuse, eighteen to add");
        let keys: Vec<RawKey> = (0..20).map(|i| a.insert(i)).collect();
        assert_eq!(a.slots.capacity(), capacity, "no reallocation");
        let indices: Vec<u32> = keys.iter().take(5).map(|k| k.index()).collect();
        assert_eq!(
            indices,
            [3, 0, 4, 5, 6],
            "the free list's order; slot 2 never"
        );
        assert_eq!(a.check_free_list(), Ok(()));
    }

    #[test]
    fn a_removed_key_is_never_reissued_even_after_restore() {
        let mut a = Arena::default();
        let k1 = a.insert("a");
        assert_eq!(a.remove(k1), Some("a"));
        let k2 = a.insert("b");
        assert_eq!(k1.index(), k2.index());
        assert_ne!(k1, k2);
        assert_eq!(a.get(k1), None);
        // roll back: remove b, restore a under k1
        a.remove(k2);
        a.insert_at(k1, "a");
        assert_eq!(a.get(k1), Some(&"a"));
        assert_eq!(a.get(k2), None);
        a.remove(k1);
        let k3 = a.insert("c");
        assert_ne!(
            k3, k2,
            "a version handed out before the rollback is not reused"
        );
        assert_ne!(k3, k1);
        assert_eq!(a.len(), 1);
    }
}
