//! Relation storage: one module per relation kind, each the only code that touches its
//! link maps. The stores work on untyped [`RawKey`]s, so cascades, rollback and the
//! integrity check handle every relation alike; the typed API lives in `store/`.

pub(crate) mod list;
pub(crate) mod many_to_many;
pub(crate) mod one_to_many;
pub(crate) mod one_to_one;
pub(crate) mod pool;

use std::any::Any;

use crate::codec::{self, Unloadable};
use crate::error::IntegrityError;
use crate::grave::{self, GraveSlot};
use crate::key::RawKey;
use crate::schema::{End, Entity, RelationDef, RelationKind};

pub(crate) use many_to_many::ManyToManyStore;
pub(crate) use one_to_many::OneToManyStore;
pub(crate) use one_to_one::OneToOneStore;

/// Liveness oracle handed to the integrity checks: is `key` alive in the table at `end`?
pub(crate) type Alive<'a> = &'a dyn Fn(End, RawKey) -> bool;

/// `&mut v[i]`, growing `v` with defaults as needed.
#[inline]
/// Reserves room in `v` for `slots` elements in all.
pub(crate) fn reserve_to<T>(v: &mut Vec<T>, slots: usize) {
    v.reserve(slots.saturating_sub(v.len()));
}

#[inline]
pub(crate) fn grow<T: Default>(v: &mut Vec<T>, i: usize) -> &mut T {
    if i >= v.len() {
        grow_to(v, i);
    }
    &mut v[i]
}

/// The growing half of [`grow`], out of line: the hot path is a bounds check.
#[inline(never)]
fn grow_to<T: Default>(v: &mut Vec<T>, i: usize) {
    if i == v.len() {
        v.push(T::default());
    } else {
        v.resize_with(i + 1, T::default);
    }
}

/// The storage of one relation. An explicit tag byte: a match reads and compares it (a
/// tag hidden in a niche of the first variant took six instructions to decode, on every
/// link).
#[repr(u8)]
pub(crate) enum RelationStore {
    OneToMany(OneToManyStore),
    OneToOne(OneToOneStore),
    ManyToMany(ManyToManyStore),
}

impl RelationStore {
    pub fn new(def: &RelationDef) -> Self {
        match def.kind {
            RelationKind::OneToMany => RelationStore::OneToMany(OneToManyStore::default()),
            RelationKind::OneToOne => RelationStore::OneToOne(OneToOneStore::default()),
            RelationKind::ManyToMany => {
                RelationStore::ManyToMany(ManyToManyStore::new((def.make_payloads)()))
            }
        }
    }

    /// The one-to-many storage, for a caller that checked a one-to-many handle.
    #[inline]
    pub fn one_to_many(&self) -> &OneToManyStore {
        match self {
            RelationStore::OneToMany(r) => r,
            _ => unreachable!("a one-to-many handle names a one-to-many"),
        }
    }

    /// [`one_to_many`](Self::one_to_many), mutable.
    #[inline]
    pub fn one_to_many_mut(&mut self) -> &mut OneToManyStore {
        match self {
            RelationStore::OneToMany(r) => r,
            _ => unreachable!("a one-to-many handle names a one-to-many"),
        }
    }

    /// Whether the list of `key` at `end` has enough holes to be worth compacting (false
    /// where the end keeps no list).
    pub fn wants_compaction(&self, end: End, key: RawKey) -> bool {
        match (self, end) {
            (RelationStore::OneToMany(r), End::A) => r.wants_compaction(key),
            (RelationStore::ManyToMany(r), end) => r.wants_compaction(end, key),
            _ => false,
        }
    }

    pub fn link_count(&self) -> usize {
        match self {
            RelationStore::OneToMany(r) => r.link_count(),
            RelationStore::OneToOne(r) => r.link_count(),
            RelationStore::ManyToMany(r) => r.link_count(),
        }
    }

    /// Calls `f` with every partner of `key`, which sits at `end`, in link order.
    pub fn for_each_partner(&self, end: End, key: RawKey, mut f: impl FnMut(RawKey)) {
        match (self, end) {
            (RelationStore::OneToMany(r), End::A) => r.children_of(key).for_each(f),
            (RelationStore::OneToMany(r), End::B) => {
                if let Some(p) = r.parent_of(key) {
                    f(p)
                }
            }
            (RelationStore::OneToOne(r), end) => {
                if let Some(p) = r.partner(end, key) {
                    f(p)
                }
            }
            (RelationStore::ManyToMany(r), end) => r.entries(end, key).for_each(|(p, _)| f(p)),
        }
    }

    /// The partners of `key` at `end`, collected.
    pub fn partners(&self, end: End, key: RawKey) -> Vec<RawKey> {
        let mut v = Vec::new();
        self.for_each_partner(end, key, |p| v.push(p));
        v
    }

    /// How many links `key` (at `end`) has.
    pub fn partner_count(&self, end: End, key: RawKey) -> usize {
        match (self, end) {
            (RelationStore::OneToMany(r), End::A) => r.child_count(key),
            (RelationStore::OneToMany(r), End::B) => usize::from(r.parent_of(key).is_some()),
            (RelationStore::OneToOne(r), end) => usize::from(r.partner(end, key).is_some()),
            (RelationStore::ManyToMany(r), end) => r.count(end, key),
        }
    }

    /// Whether `a` and `b` are linked.
    pub fn linked(&self, a: RawKey, b: RawKey) -> bool {
        match self {
            RelationStore::OneToMany(r) => r.parent_of(b) == Some(a),
            RelationStore::OneToOne(r) => r.partner(End::A, a) == Some(b),
            RelationStore::ManyToMany(r) => r.link_index(a, b).is_some(),
        }
    }

    /// Whether this relation's storage proves `key` (at `end`) alive, without consulting
    /// its arena: every per-entity entry (a list owned by the key's version, a parent
    /// reference, a partner) is cleared or disowned when its entity is removed, so one that
    /// names the key's version belongs to a live entity. `false` proves nothing. O(1).
    #[inline]
    pub fn vouches(&self, end: End, key: RawKey) -> bool {
        match (self, end) {
            (RelationStore::OneToMany(r), End::A) => r.owns_list(key),
            (RelationStore::OneToMany(r), End::B) => r.parent_of(key).is_some(),
            (RelationStore::OneToOne(r), end) => r.partner(end, key).is_some(),
            (RelationStore::ManyToMany(r), end) => r.owns_list(end, key),
        }
    }

    /// Makes room for per-entity entries at `end` up to `slots` slot indices, so that
    /// linking the entities of a bulk insert does not regrow them.
    pub fn reserve_slots(&mut self, end: End, slots: usize) {
        match self {
            RelationStore::OneToMany(r) => r.reserve_slots(end, slots),
            RelationStore::OneToOne(r) => r.reserve_slots(end, slots),
            RelationStore::ManyToMany(r) => r.reserve_slots(end, slots),
        }
    }

    pub fn forget(&mut self, end: End, key: RawKey) {
        match self {
            RelationStore::OneToMany(r) => r.forget(end, key),
            RelationStore::OneToOne(_) => {}
            RelationStore::ManyToMany(r) => r.forget(end, key),
        }
    }

    pub fn check(&self, def: &RelationDef, alive: Alive<'_>) -> Result<(), IntegrityError> {
        match self {
            RelationStore::OneToMany(r) => r.check(def, alive),
            RelationStore::OneToOne(r) => r.check(def, alive),
            RelationStore::ManyToMany(r) => r.check(def, alive),
        }
    }
}

/// Checks that a list owned by version `owner` (0: no owner) at slot `slot` belongs to a
/// live entity, so that ownership proves liveness (see [`RelationStore::vouches`]).
pub(crate) fn check_owner(
    def: &RelationDef,
    end: End,
    slot: usize,
    owner: u32,
    alive: Alive<'_>,
) -> Result<(), IntegrityError> {
    match RawKey::at(slot, owner) {
        Some(key) if !alive(end, key) => Err(IntegrityError::DeadEndpoint {
            relation: def.name,
            end,
            key,
        }),
        _ => Ok(()),
    }
}

/// A slot on a cycle of `up` (a slot's single "parent" slot), if there is one: O(slots).
pub(crate) fn find_functional_cycle(
    slots: usize,
    up: impl Fn(usize) -> Option<usize>,
) -> Option<usize> {
    let mut state = vec![0u8; slots]; // 0 new, 1 on the current path, 2 known to end at a root
    let mut path = Vec::new();
    for start in 0..slots {
        let mut node = Some(start);
        while let Some(i) = node {
            match state.get(i).copied().unwrap_or(2) {
                0 => {
                    state[i] = 1;
                    path.push(i);
                    node = up(i);
                }
                1 => return Some(i),
                _ => node = None,
            }
        }
        for i in path.drain(..) {
            state[i] = 2;
        }
    }
    None
}

/// The payloads of a many-to-many, type-erased.
pub(crate) trait ErasedPayloads: Any + Send + Sync {
    fn len(&self) -> usize;
    fn reserve(&mut self, additional: usize);
    fn push_boxed(&mut self, value: Box<dyn Any + Send + Sync>);
    fn swap_remove_boxed(&mut self, index: usize) -> Box<dyn Any + Send + Sync>;
    /// Removes the payload at `index` (swap-remove) into `grave`, to be dropped once the
    /// store is consistent again.
    fn swap_remove_defer(&mut self, index: usize, grave: &mut GraveSlot);
    /// Whether dropping a payload runs code (else a removed one needs no grave).
    fn needs_drop(&self) -> bool;
    fn replace_boxed(
        &mut self,
        index: usize,
        value: Box<dyn Any + Send + Sync>,
    ) -> Box<dyn Any + Send + Sync>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Appends the encodings of the payloads at `indices` (`n` of them), end to end, and
    /// checks that they load back (`codec::encode_checked`).
    fn encode_in(
        &self,
        n: usize,
        indices: &mut dyn Iterator<Item = usize>,
        out: &mut Vec<u8>,
    ) -> Result<(), Unloadable>;
    /// The encoding of the payload at `index` (for the change feed).
    fn encode_at(&self, index: usize) -> Result<Vec<u8>, String>;
    /// The encoding of a boxed payload.
    fn encode_boxed(&self, value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, String>;
    /// Decodes a payload, boxed.
    fn decode_boxed(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send + Sync>, String>;
}

/// Payloads of type `W`, indexed like the links.
pub(crate) struct PayloadVec<W>(pub Vec<W>);

impl<W> Default for PayloadVec<W> {
    fn default() -> Self {
        PayloadVec(Vec::new())
    }
}

impl<W: Entity> ErasedPayloads for PayloadVec<W> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional)
    }
    fn push_boxed(&mut self, value: Box<dyn Any + Send + Sync>) {
        let value = value
            .downcast::<W>()
            .expect("payload of the relation's type");
        self.0.push(*value);
    }
    fn swap_remove_boxed(&mut self, index: usize) -> Box<dyn Any + Send + Sync> {
        Box::new(self.0.swap_remove(index))
    }
    fn swap_remove_defer(&mut self, index: usize, grave: &mut GraveSlot) {
        grave::defer(grave, self.0.swap_remove(index));
    }
    fn needs_drop(&self) -> bool {
        std::mem::needs_drop::<W>()
    }
    fn replace_boxed(
        &mut self,
        index: usize,
        value: Box<dyn Any + Send + Sync>,
    ) -> Box<dyn Any + Send + Sync> {
        let value = value
            .downcast::<W>()
            .expect("payload of the relation's type");
        Box::new(std::mem::replace(&mut self.0[index], *value))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn encode_in(
        &self,
        n: usize,
        indices: &mut dyn Iterator<Item = usize>,
        out: &mut Vec<u8>,
    ) -> Result<(), Unloadable> {
        codec::encode_checked(n, indices.map(|i| &self.0[i]), out)
    }
    fn encode_at(&self, index: usize) -> Result<Vec<u8>, String> {
        crate::arena::encode_value(&self.0[index])
    }
    fn encode_boxed(&self, value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>, String> {
        let value = value
            .downcast_ref::<W>()
            .expect("payload of the relation's type");
        crate::arena::encode_value(value)
    }
    fn decode_boxed(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send + Sync>, String> {
        let value = codec::decode_one::<W>(bytes)?;
        Ok(Box::new(value))
    }
}
