//! Secondary indexes: values computed from rows (or many-to-many payloads) mapped back to
//! the entities (or links) holding them, kept exact by the primitives of `path.rs`.
//!
//! Every index keeps, per entity, where its key is (the *side map*: the key's hash in a
//! hash index, the key itself in an ordered index, and the entity's position among the
//! key's holders), so a removal and a rollback never call the key closure (user code)
//! again. A change that adds or changes a key computes it first (`stage`), checks
//! uniqueness, and only then changes anything. With history or a transaction open, each
//! change of an entity's key is logged as `Undo::Index`, the key it replaced, so that
//! rollback, undo and redo set the index back exactly without user code.

use std::any::Any;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use hashbrown::hash_table::{Entry, HashTable};

use crate::error::{LinkError, StaleKey};
use crate::key::{Key, RawKey};
use crate::path::Undo;
use crate::relation::many_to_many::PairHasher;
use crate::relation::RelationStore;
use crate::schema::{Entity, ManyToMany, Schema, Table};
use crate::store::Store;

/// An entity as an index sees it: a row `(key, key)` or a many-to-many link `(a, b)`.
pub(crate) type Ent = (RawKey, RawKey);

type Boxed = Box<dyn Any + Send + Sync>;

/// Marker of a hash (equality) index: [`Schema::index`], [`Schema::unique_index`],
/// [`Schema::payload_index`].
#[derive(Clone, Copy, Debug)]
pub struct Hashed;

/// Marker of an ordered index (ranges, first and last, string prefixes):
/// [`Schema::ordered_index`], [`Schema::ordered_payload_index`].
#[derive(Clone, Copy, Debug)]
pub struct Ordered;

type Types<E, V, S> = PhantomData<fn() -> (E, V, S)>;

/// A key closure, its row type erased: the entity (a link's pair; `None` for a row not
/// inserted yet) and its row or payload.
type KeyFn<V> = Arc<dyn Fn(Option<Ent>, &dyn Any) -> V + Send + Sync>;

/// The handle of a secondary index, returned by the index declarations of [`Schema`]:
/// `E` is what it finds (`Key<T>` for an index on a table or kind, `(Key<A>, Key<B>)`
/// for one on a many-to-many's payloads), `V` the indexed value, `S` [`Hashed`] or
/// [`Ordered`]. `Copy`; using it costs an array index and a tag compare.
pub struct Index<E, V, S = Hashed> {
    pub(crate) tag: u32,
    pub(crate) index: u32,
    _types: Types<E, V, S>,
}

impl<E, V, S> Clone for Index<E, V, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E, V, S> Copy for Index<E, V, S> {}
impl<E, V, S> fmt::Debug for Index<E, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Index(#{})", self.index)
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for crate::Key<T> {}
    impl<A, B> Sealed for (crate::Key<A>, crate::Key<B>) {}
    impl Sealed for super::Hashed {}
    impl Sealed for super::Ordered {}
}

/// What an index finds: a row's key, or a link's pair of keys. Sealed.
pub trait IndexEntity: Copy + sealed::Sealed + 'static {
    #[doc(hidden)]
    fn from_ent(e: (RawKey, RawKey)) -> Self;
}
impl<T: 'static> IndexEntity for Key<T> {
    fn from_ent(e: Ent) -> Self {
        Key::from_raw(e.0)
    }
}
impl<A: 'static, B: 'static> IndexEntity for (Key<A>, Key<B>) {
    fn from_ent(e: Ent) -> Self {
        (Key::from_raw(e.0), Key::from_raw(e.1))
    }
}

/// The structure of an index ([`Hashed`] or [`Ordered`]). Sealed.
pub trait Structure: sealed::Sealed + 'static {
    #[doc(hidden)]
    type Map<V: IndexValue>: KeyMap<V>;
}
impl Structure for Hashed {
    type Map<V: IndexValue> = HashKeys<V>;
}
impl Structure for Ordered {
    type Map<V: IndexValue> = OrderedKeys<V>;
}

/// What an indexed value must be: owned, cloneable (an ordered index keeps it in its map
/// and per entity; a rollback keeps the value it replaces), printable for error messages,
/// and both hashable and ordered (integers, strings, tuples of them, enums deriving
/// these). Implemented for every such type.
pub trait IndexValue: Clone + Eq + Hash + Ord + fmt::Debug + Send + Sync + 'static {}
impl<V: Clone + Eq + Hash + Ord + fmt::Debug + Send + Sync + 'static> IndexValue for V {}

/// The entities holding one value: most values have one. Not for use outside relgraph.
#[derive(Clone, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub enum Bucket {
    One(Ent),
    Many(Holders),
}

/// Two or more holders of one value, each at the position its side entry records:
/// removal by `swap_remove`, O(1), repointing the holder it moves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[doc(hidden)]
pub struct Holders(Vec<Ent>);

impl Bucket {
    fn iter(&self) -> BucketIter<'_> {
        match self {
            Bucket::One(e) => BucketIter::One(Some(*e)),
            Bucket::Many(s) => BucketIter::Many(s.0.iter()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Bucket::One(_) => 1,
            Bucket::Many(s) => s.0.len(),
        }
    }

    /// Whether `e` is the holder at `pos`.
    #[inline]
    fn holds(&self, e: Ent, pos: u32) -> bool {
        match self {
            Bucket::One(o) => *o == e,
            Bucket::Many(s) => s.0.get(pos as usize) == Some(&e),
        }
    }

    fn first(&self) -> Ent {
        match self {
            Bucket::One(e) => *e,
            Bucket::Many(s) => s.0[0],
        }
    }

    /// Adds `e`; its position.
    fn push(&mut self, e: Ent) -> u32 {
        match self {
            Bucket::One(o) => {
                // room for a few more: a value held twice is often held more often
                let mut v = Vec::with_capacity(4);
                v.extend([*o, e]);
                *self = Bucket::Many(Holders(v));
                1
            }
            Bucket::Many(s) => {
                s.0.push(e);
                (s.0.len() - 1) as u32
            }
        }
    }

    /// Removes the holder `e` at `pos`: whether the bucket is left empty, and the holder
    /// moved into `pos` (its side entry must follow).
    fn remove(&mut self, e: Ent, pos: u32) -> (bool, Option<Ent>) {
        match self {
            Bucket::One(o) => {
                debug_assert!(*o == e && pos == 0, "the side entry names the holder");
                (true, None)
            }
            Bucket::Many(s) => {
                let pos = pos as usize;
                debug_assert_eq!(s.0[pos], e, "the side entry names the holder");
                s.0.swap_remove(pos);
                let moved = s.0.get(pos).copied();
                if s.0.len() == 1 {
                    // the one left is at position 0 (moved there, or there already)
                    *self = Bucket::One(s.0[0]);
                }
                (false, moved)
            }
        }
    }

    fn set_eq(&self, other: &Bucket) -> bool {
        let sorted = |b: &Bucket| {
            let mut v: Vec<Ent> = b.iter().collect();
            v.sort_unstable();
            v
        };
        self.len() == other.len() && sorted(self) == sorted(other)
    }
}

/// The holders of one value.
enum BucketIter<'a> {
    One(Option<Ent>),
    Many(std::slice::Iter<'a, Ent>),
}

impl Iterator for BucketIter<'_> {
    type Item = Ent;
    #[inline]
    fn next(&mut self) -> Option<Ent> {
        match self {
            BucketIter::One(e) => e.take(),
            BucketIter::Many(i) => i.next().copied(),
        }
    }
}

impl DoubleEndedIterator for BucketIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Ent> {
        match self {
            BucketIter::One(e) => e.take(),
            BucketIter::Many(i) => i.next_back().copied(),
        }
    }
}

/// The `(value, holder)` pairs of an ordered map's entries, in order: a single holder is
/// handed out straight from its bucket (no inner iterator to set up), so a range of
/// single-holder values costs what the map's own range costs.
struct Flat<'a, V, I> {
    outer: I,
    front: Option<(&'a V, std::slice::Iter<'a, Ent>)>,
    back: Option<(&'a V, std::slice::Iter<'a, Ent>)>,
}

impl<'a, V, I> Flat<'a, V, I> {
    fn new(outer: I) -> Self {
        Flat {
            outer,
            front: None,
            back: None,
        }
    }
}

impl<'a, V: 'a, I: Iterator<Item = (&'a V, &'a Bucket)>> Iterator for Flat<'a, V, I> {
    type Item = (&'a V, Ent);
    #[inline]
    fn next(&mut self) -> Option<(&'a V, Ent)> {
        if let Some((v, it)) = &mut self.front {
            if let Some(e) = it.next() {
                return Some((v, *e));
            }
            self.front = None;
        }
        match self.outer.next() {
            Some((v, Bucket::One(e))) => Some((v, *e)),
            Some((v, Bucket::Many(h))) => {
                let mut it = h.0.iter();
                let e = *it.next().expect("a shared value has holders");
                self.front = Some((v, it));
                Some((v, e))
            }
            None => {
                let (v, it) = self.back.as_mut()?;
                let (v, e) = (*v, it.next().copied());
                if e.is_none() {
                    self.back = None;
                }
                e.map(|e| (v, e))
            }
        }
    }
}

impl<'a, V: 'a, I: DoubleEndedIterator<Item = (&'a V, &'a Bucket)>> DoubleEndedIterator
    for Flat<'a, V, I>
{
    #[inline]
    fn next_back(&mut self) -> Option<(&'a V, Ent)> {
        if let Some((v, it)) = &mut self.back {
            if let Some(e) = it.next_back() {
                return Some((v, *e));
            }
            self.back = None;
        }
        match self.outer.next_back() {
            Some((v, Bucket::One(e))) => Some((v, *e)),
            Some((v, Bucket::Many(h))) => {
                let mut it = h.0.iter();
                let e = *it.next_back().expect("a shared value has holders");
                self.back = Some((v, it));
                Some((v, e))
            }
            None => {
                let (v, it) = self.front.as_mut()?;
                let (v, e) = (*v, it.next_back().copied());
                if e.is_none() {
                    self.front = None;
                }
                e.map(|e| (v, e))
            }
        }
    }
}

/// The value -> entities map of an index. Not for use outside relgraph.
#[doc(hidden)]
pub trait KeyMap<V>: Default + Send + Sync + 'static {
    fn get<Q: ?Sized + Hash + Ord>(&self, v: &Q) -> Option<&Bucket>
    where
        V: Borrow<Q>;
    /// What an entity's side entry keeps: enough to find its key and its place among
    /// the key's holders without hashing.
    type At: Send + Sync + 'static;
    /// Adds `e` as a holder of `v` (one lookup); its side entry.
    fn add(&mut self, v: V, e: Ent) -> Self::At;
    /// The key the side entry `at` of `e` names.
    fn key<'a>(&'a self, at: &'a Self::At, e: Ent) -> &'a V;
    /// The holder's position among its key's holders.
    fn pos(at: &Self::At) -> u32;
    /// Sets the holder's position (a removal moved it).
    fn set_pos(at: &mut Self::At, pos: u32);
    /// Takes `e` (whose side entry `at` was taken out of `side`) out of its key's holders,
    /// and the key out when it has none left, repointing the side entries of the holders
    /// this moves; returns the key when `record`.
    fn remove(
        &mut self,
        at: Self::At,
        e: Ent,
        side: &mut Side<Self::At>,
        record: bool,
    ) -> Option<V>;
    fn reserve(&mut self, additional: usize);
    fn len(&self) -> usize;
    fn iter(&self) -> Box<dyn Iterator<Item = (&V, &Bucket)> + '_>;
}

/// A hash index's map: a `HashTable` of `(value, holders)`, hashed with foldhash (keyed
/// per map). A side entry keeps the value's hash: a removal finds the entry by its holder,
/// without hashing or comparing the value, and moves no other entry.
#[doc(hidden)]
pub struct HashKeys<V> {
    table: HashTable<(V, Bucket)>,
    hasher: foldhash::fast::RandomState,
}
impl<V> Default for HashKeys<V> {
    fn default() -> Self {
        HashKeys {
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// A hash index's side entry: the value's hash and the holder's position among its
/// holders (plus one: 16 bytes with the `Option` of the side map). Not for use outside
/// relgraph.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct HashAt {
    hash: u64,
    pos1: NonZeroU32,
}

const _: () = assert!(std::mem::size_of::<Option<HashAt>>() == 16);

impl HashAt {
    #[inline]
    fn new(hash: u64, pos: u32) -> Self {
        let pos1 = NonZeroU32::new(pos.wrapping_add(1)).expect("fewer than 2^32 holders");
        HashAt { hash, pos1 }
    }
    #[inline]
    fn pos(&self) -> u32 {
        self.pos1.get() - 1
    }
}

impl<V: IndexValue> HashKeys<V> {
    /// The entry holding `e` at `at.pos`.
    #[inline]
    fn entry_of(&self, at: &HashAt, e: Ent) -> &(V, Bucket) {
        self.table
            .find(at.hash, |(_, b)| b.holds(e, at.pos()))
            .expect("a side entry names an entry")
    }
}

impl<V: IndexValue> KeyMap<V> for HashKeys<V> {
    #[inline]
    fn get<Q: ?Sized + Hash + Ord>(&self, v: &Q) -> Option<&Bucket>
    where
        V: IndexValue + Borrow<Q>,
    {
        let hash = self.hasher.hash_one(v);
        self.table
            .find(hash, |(k, _)| k.borrow() == v)
            .map(|(_, b)| b)
    }
    type At = HashAt;
    #[inline]
    fn add(&mut self, v: V, e: Ent) -> HashAt {
        let hash = self.hasher.hash_one(&v);
        let hasher = &self.hasher;
        let entry = self
            .table
            .entry(hash, |(k, _)| *k == v, |(k, _)| hasher.hash_one(k));
        let pos = match entry {
            Entry::Occupied(mut o) => o.get_mut().1.push(e),
            Entry::Vacant(x) => {
                x.insert((v, Bucket::One(e)));
                0
            }
        };
        HashAt::new(hash, pos)
    }
    fn key<'a>(&'a self, at: &'a HashAt, e: Ent) -> &'a V {
        &self.entry_of(at, e).0
    }
    fn pos(at: &HashAt) -> u32 {
        at.pos()
    }
    fn set_pos(at: &mut HashAt, pos: u32) {
        *at = HashAt::new(at.hash, pos);
    }
    #[inline]
    fn remove(&mut self, at: HashAt, e: Ent, side: &mut Side<HashAt>, record: bool) -> Option<V> {
        let pos = at.pos();
        let Ok(mut o) = self.table.find_entry(at.hash, |(_, b)| b.holds(e, pos)) else {
            unreachable!("a side entry names an entry")
        };
        let (empty, moved) = o.get_mut().1.remove(e, pos);
        if let Some(m) = moved {
            Self::set_pos(side.get_mut(m).expect("a holder has a side entry"), pos);
        }
        if empty {
            let ((key, _), _) = o.remove();
            record.then_some(key)
        } else {
            record.then(|| o.get().0.clone())
        }
    }
    fn reserve(&mut self, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |(k, _)| hasher.hash_one(k));
    }
    fn len(&self) -> usize {
        self.table.len()
    }
    fn iter(&self) -> Box<dyn Iterator<Item = (&V, &Bucket)> + '_> {
        Box::new(self.table.iter().map(|(k, b)| (k, b)))
    }
}

/// An ordered index's map: a `BTreeMap`.
#[doc(hidden)]
pub struct OrderedKeys<V>(BTreeMap<V, Bucket>);
impl<V> Default for OrderedKeys<V> {
    fn default() -> Self {
        OrderedKeys(BTreeMap::new())
    }
}

impl<V: IndexValue> KeyMap<V> for OrderedKeys<V> {
    #[inline]
    fn get<Q: ?Sized + Hash + Ord>(&self, v: &Q) -> Option<&Bucket>
    where
        V: IndexValue + Borrow<Q>,
    {
        self.0.get(v)
    }
    /// The key (a B-tree has no positions) and the holder's position.
    type At = (V, u32);
    fn add(&mut self, v: V, e: Ent) -> (V, u32) {
        let pos = match self.0.entry(v.clone()) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut().push(e),
            std::collections::btree_map::Entry::Vacant(x) => {
                x.insert(Bucket::One(e));
                0
            }
        };
        (v, pos)
    }
    fn key<'a>(&'a self, at: &'a (V, u32), _: Ent) -> &'a V {
        &at.0
    }
    fn pos(at: &(V, u32)) -> u32 {
        at.1
    }
    fn set_pos(at: &mut (V, u32), pos: u32) {
        at.1 = pos;
    }
    fn remove(
        &mut self,
        (v, pos): (V, u32),
        e: Ent,
        side: &mut Side<(V, u32)>,
        record: bool,
    ) -> Option<V> {
        let std::collections::btree_map::Entry::Occupied(mut o) = self.0.entry(v) else {
            unreachable!("every side entry is in the map")
        };
        let (empty, moved) = o.get_mut().remove(e, pos);
        if let Some(m) = moved {
            Self::set_pos(side.get_mut(m).expect("a holder has a side entry"), pos);
        }
        if empty {
            let (key, _) = o.remove_entry();
            record.then_some(key)
        } else {
            record.then(|| o.key().clone())
        }
    }
    fn reserve(&mut self, _: usize) {}
    fn len(&self) -> usize {
        self.0.len()
    }
    fn iter(&self) -> Box<dyn Iterator<Item = (&V, &Bucket)> + '_> {
        Box::new(self.0.iter())
    }
}

/// Each entity's side entry: by slot for rows, by pair for links. Not for use outside
/// relgraph.
#[doc(hidden)]
pub struct Side<V>(SideOf<V>);

enum SideOf<V> {
    Slots(Vec<Option<V>>),
    Pairs(HashMap<Ent, V, BuildHasherDefault<PairHasher>>),
}

impl<V> Side<V> {
    fn new(target: Target) -> Self {
        Side(match target {
            Target::Rows(_) => SideOf::Slots(Vec::new()),
            Target::Payloads(_) => SideOf::Pairs(HashMap::default()),
        })
    }
    fn reserve(&mut self, additional: usize) {
        if let SideOf::Slots(s) = &mut self.0 {
            s.reserve(additional);
        }
    }
    fn get(&self, e: Ent) -> Option<&V> {
        match &self.0 {
            SideOf::Slots(s) => s.get(e.0.idx()).and_then(Option::as_ref),
            SideOf::Pairs(p) => p.get(&e),
        }
    }
    fn set(&mut self, e: Ent, v: V) -> Option<V> {
        match &mut self.0 {
            SideOf::Slots(s) => {
                let i = e.0.idx();
                if i < s.len() {
                    s[i].replace(v)
                } else {
                    // (a fresh slot is usually the next one)
                    s.resize_with(i, || None);
                    s.push(Some(v));
                    None
                }
            }
            SideOf::Pairs(p) => p.insert(e, v),
        }
    }
    fn get_mut(&mut self, e: Ent) -> Option<&mut V> {
        match &mut self.0 {
            SideOf::Slots(s) => s.get_mut(e.0.idx()).and_then(Option::as_mut),
            SideOf::Pairs(p) => p.get_mut(&e),
        }
    }
    fn take(&mut self, e: Ent) -> Option<V> {
        match &mut self.0 {
            SideOf::Slots(s) => s.get_mut(e.0.idx()).and_then(Option::take),
            SideOf::Pairs(p) => p.remove(&e),
        }
    }
    fn len(&self) -> usize {
        match &self.0 {
            SideOf::Slots(s) => s.iter().flatten().count(),
            SideOf::Pairs(p) => p.len(),
        }
    }
}

/// What an index is declared on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The rows of a table (or kind).
    Rows(u32),
    /// The payloads of a many-to-many relation.
    Payloads(u32),
}

/// Calls `f` for every entity of the target with its row (or payload).
type Scan = fn(&Store, Target, &mut dyn FnMut(Ent, &dyn Any));

/// The declaration of an index, kept in the [`Schema`] (not in its fingerprint: indexes
/// are not part of the snapshot).
#[derive(Clone)]
pub(crate) struct IndexDef {
    pub tag: u32,
    pub name: &'static str,
    pub target: Target,
    pub make: Arc<dyn Fn() -> Box<dyn ErasedIndex> + Send + Sync>,
}

/// One index, its value type erased.
pub(crate) trait ErasedIndex: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    /// Computes the key of `value` (user code: may panic, before anything changed) and
    /// checks it against the entities holding it but `exclude`; keeps it for `commit`.
    /// On a unique violation, the value (`Debug`) and its holder.
    fn stage(&mut self, value: &dyn Any, exclude: Option<Ent>) -> Result<(), (String, Ent)>;
    fn unstage(&mut self);
    /// Makes the staged key `e`'s. `None` if nothing changed (the same key); else the key
    /// it replaced, boxed when `record`.
    fn commit(&mut self, e: Ent, record: bool) -> Option<Option<Boxed>>;
    /// Sets `e`'s key to `key` (`None`: no key), returning the key it had, boxed when
    /// `record`. No user code beyond the key type's `Hash`, `Eq` and `Ord`.
    fn set(&mut self, e: Ent, key: Option<Boxed>, record: bool) -> Option<Option<Boxed>>;
    /// `set(e, None, record)`: takes `e` out (a removal), no key to compare.
    fn remove(&mut self, e: Ent, record: bool) -> Option<Option<Boxed>>;
    /// Makes room for `additional` more entities.
    fn reserve(&mut self, additional: usize);
    /// Recomputes every key from the store (a load).
    fn rebuild(&mut self, store: &Store) -> Result<(), (String, Ent)>;
    /// Compares with an index rebuilt from the store.
    fn check(&self, store: &Store) -> Result<(), String>;
}

struct Typed<V: IndexValue, M: KeyMap<V>> {
    name: &'static str,
    target: Target,
    unique: bool,
    key: KeyFn<V>,
    scan: Scan,
    /// Each entity's side entry: its key (or where the map keeps it) and its position
    /// among the key's holders.
    side: Side<M::At>,
    map: M,
    staged: Option<V>,
}

impl<V: IndexValue, M: KeyMap<V>> Typed<V, M> {
    fn new(def: &Decl<V>) -> Self {
        Typed {
            name: def.name,
            target: def.target,
            unique: def.unique,
            key: def.key.clone(),
            scan: def.scan,
            side: Side::new(def.target),
            map: M::default(),
            staged: None,
        }
    }

    fn add(&mut self, e: Ent, v: V) {
        let at = self.map.add(v, e);
        self.side.set(e, at);
    }

    /// The key `e` holds.
    fn key_of(&self, e: Ent) -> Option<&V> {
        self.side.get(e).map(|at| self.map.key(at, e))
    }

    /// Takes `e` out; returns the key it had (`record`) or drops it.
    fn drop_entry(&mut self, e: Ent, record: bool) -> Option<Option<V>> {
        let at = self.side.take(e)?;
        Some(self.map.remove(at, e, &mut self.side, record))
    }

    fn held_by_other(&self, v: &V, exclude: Option<Ent>) -> Option<Ent> {
        let b = self.map.get(v)?;
        b.iter().find(|&h| Some(h) != exclude)
    }
}

impl<V: IndexValue, M: KeyMap<V>> ErasedIndex for Typed<V, M> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn stage(&mut self, value: &dyn Any, exclude: Option<Ent>) -> Result<(), (String, Ent)> {
        let v = (self.key)(exclude, value);
        if self.unique {
            if let Some(h) = self.held_by_other(&v, exclude) {
                return Err((format!("{v:?}"), h));
            }
        }
        self.staged = Some(v);
        Ok(())
    }

    fn unstage(&mut self) {
        self.staged = None;
    }

    fn commit(&mut self, e: Ent, record: bool) -> Option<Option<Boxed>> {
        let v = self.staged.take().expect("a key staged before the commit");
        let Some(at) = self.side.get(e) else {
            // a new entity (an insert): one side access
            self.add(e, v);
            return Some(None);
        };
        if self.map.key(at, e) == &v {
            return None;
        }
        let old = self.drop_entry(e, record).flatten();
        self.add(e, v);
        Some(old.map(|o| Box::new(o) as Boxed))
    }

    fn remove(&mut self, e: Ent, record: bool) -> Option<Option<Boxed>> {
        let old = self.drop_entry(e, record)?;
        Some(old.map(|o| Box::new(o) as Boxed))
    }

    fn set(&mut self, e: Ent, key: Option<Boxed>, record: bool) -> Option<Option<Boxed>> {
        let new = key.map(|k| *k.downcast::<V>().expect("a key of the index's type"));
        if self.key_of(e) == new.as_ref() {
            return None;
        }
        let old = self.drop_entry(e, record).flatten();
        if let Some(v) = new {
            self.add(e, v);
        }
        Some(old.map(|o| Box::new(o) as Boxed))
    }

    fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
        self.side.reserve(additional);
    }

    fn rebuild(&mut self, store: &Store) -> Result<(), (String, Ent)> {
        self.map = M::default();
        self.side = Side::new(self.target);
        let n = match self.target {
            Target::Rows(t) => store.tables[t as usize].len(),
            Target::Payloads(r) => store.relations[r as usize].link_count(),
        };
        self.reserve(n);
        let mut err = None;
        let key = self.key.clone();
        (self.scan)(store, self.target, &mut |e, value| {
            if err.is_some() {
                return;
            }
            let v = key(Some(e), value);
            if self.unique {
                if let Some(h) = self.held_by_other(&v, None) {
                    err = Some((format!("{v:?}"), h));
                    return;
                }
            }
            self.add(e, v);
        });
        err.map_or(Ok(()), Err)
    }

    fn check(&self, store: &Store) -> Result<(), String> {
        let mut fresh = Typed::<V, M> {
            name: self.name,
            target: self.target,
            unique: self.unique,
            key: self.key.clone(),
            scan: self.scan,
            side: Side::new(self.target),
            map: M::default(),
            staged: None,
        };
        fresh
            .rebuild(store)
            .map_err(|(v, _)| format!("index `{}`: {v} is held twice", self.name))?;
        let name = self.name;
        if self.staged.is_some() {
            return Err(format!("index `{name}`: a key is left staged"));
        }
        if fresh.map.len() != self.map.len() || fresh.side.len() != self.side.len() {
            return Err(format!(
                "index `{name}`: {} values for {} entities, rebuilt: {} for {}",
                self.map.len(),
                self.side.len(),
                fresh.map.len(),
                fresh.side.len()
            ));
        }
        for (v, b) in fresh.map.iter() {
            match self.map.get(v) {
                Some(mine) if mine.set_eq(b) => {}
                other => {
                    return Err(format!(
                        "index `{name}`: {v:?} is held by {other:?}, rebuilt: {b:?}"
                    ))
                }
            }
            for e in b.iter() {
                if self.key_of(e) != Some(v) {
                    return Err(format!("index `{name}`: the side entry of {e:?} is wrong"));
                }
            }
        }
        for (v, b) in self.map.iter() {
            for (i, e) in b.iter().enumerate() {
                if self.side.get(e).map(|at| M::pos(at) as usize) != Some(i) {
                    return Err(format!(
                        "index `{name}`: {e:?} is holder #{i} of {v:?}, its side entry says \
                         otherwise"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The typed parts of a declaration, from which every store builds its index.
struct Decl<V> {
    name: &'static str,
    target: Target,
    unique: bool,
    key: KeyFn<V>,
    scan: Scan,
}

fn scan_rows<T: Entity>(store: &Store, target: Target, f: &mut dyn FnMut(Ent, &dyn Any)) {
    let Target::Rows(t) = target else {
        unreachable!("a row index")
    };
    for (k, v) in store.arena_at::<T>(t).iter() {
        f((k, k), v);
    }
}

fn scan_payloads<W: Entity>(store: &Store, target: Target, f: &mut dyn FnMut(Ent, &dyn Any)) {
    let Target::Payloads(rel) = target else {
        unreachable!("a payload index")
    };
    let RelationStore::ManyToMany(r) = &store.relations[rel as usize] else {
        unreachable!("a payload index is on a many-to-many")
    };
    let payloads = crate::path::payloads::<W>(r);
    for (i, a, b) in r.pairs() {
        f((a, b), &payloads[i]);
    }
}

/// The indexes of a store: by index id, and which ones each table and relation has.
/// With no index declared every `Vec` is empty, so a primitive pays one length test.
#[derive(Default)]
pub(crate) struct Indexes {
    pub list: Vec<Box<dyn ErasedIndex>>,
    /// By table: its row indexes (empty when the schema declares none at all).
    pub rows: Vec<Vec<u32>>,
    /// By relation: its payload indexes.
    pub links: Vec<Vec<u32>>,
}

impl Indexes {
    pub fn new(schema: &Schema) -> Indexes {
        if schema.indexes.is_empty() {
            return Indexes::default();
        }
        let mut ix = Indexes {
            list: Vec::new(),
            rows: vec![Vec::new(); schema.tables.len()],
            links: vec![Vec::new(); schema.relations.len()],
        };
        for (i, def) in schema.indexes.iter().enumerate() {
            ix.list.push((def.make)());
            match def.target {
                Target::Rows(t) => ix.rows[t as usize].push(i as u32),
                Target::Payloads(r) => ix.links[r as usize].push(i as u32),
            }
        }
        ix
    }

    /// Whether table `t` has a row index.
    #[inline(always)]
    pub fn on_table(&self, t: u32) -> bool {
        !self.rows.is_empty() && !self.rows[t as usize].is_empty()
    }

    /// Whether relation `r` has a payload index.
    #[inline(always)]
    pub fn on_rel(&self, r: u32) -> bool {
        !self.links.is_empty() && !self.links[r as usize].is_empty()
    }
}

/// Why an indexed change was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexError {
    /// A unique index already holds the value, for another entity (or link).
    Unique {
        /// The index's name.
        index: &'static str,
        /// The value, as `Debug` prints it.
        value: String,
        /// The entity holding it (`users[0v1]`), or the link (`students[0v1] ->
        /// courses[1v1]`).
        holder: String,
    },
    /// A key is stale.
    Stale(StaleKey),
    /// A link was refused.
    Link(LinkError),
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::Unique {
                index,
                value,
                holder,
            } => write!(
                f,
                "unique index `{index}`: {value} is already held by {holder}"
            ),
            IndexError::Stale(e) => e.fmt(f),
            IndexError::Link(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for IndexError {}

impl From<StaleKey> for IndexError {
    fn from(e: StaleKey) -> Self {
        IndexError::Stale(e)
    }
}

impl From<LinkError> for IndexError {
    fn from(e: LinkError) -> Self {
        IndexError::Link(e)
    }
}

#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn refused(e: IndexError) -> ! {
    panic!("{e} (use the try_ form of the call to get an error instead)")
}

impl Schema {
    fn declare_index<V: IndexValue, S: Structure>(&mut self, decl: Decl<V>) -> u32 {
        assert!(
            self.indexes.iter().all(|d| d.name != decl.name),
            "index name `{}` is already taken: give each index a name of its own",
            decl.name
        );
        let index = self.indexes.len() as u32;
        let target_tag = match decl.target {
            Target::Rows(t) => self.tables[t as usize].tag,
            Target::Payloads(r) => self.relations[r as usize].tag,
        };
        let tag = crate::schema::tag((
            "index",
            index,
            decl.name,
            target_tag,
            decl.unique,
            std::any::TypeId::of::<(V, S)>(),
        ));
        let name = decl.name;
        let target = decl.target;
        let decl = Arc::new(decl);
        self.indexes.push(IndexDef {
            tag,
            name,
            target,
            make: Arc::new(move || Box::new(Typed::<V, S::Map<V>>::new(&decl))),
        });
        self.work_out_direct_children();
        index
    }

    #[track_caller]
    fn row_index<T: Entity, V: IndexValue, S: Structure>(
        &mut self,
        table: Table<T>,
        name: &'static str,
        unique: bool,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Index<Key<T>, V, S> {
        let t = self.table_handle_index(table);
        let key =
            Arc::new(move |_: Option<Ent>, x: &dyn Any| key(x.downcast_ref::<T>().expect("a row")));
        let index = self.declare_index::<V, S>(Decl {
            name,
            target: Target::Rows(t),
            unique,
            key,
            scan: scan_rows::<T>,
        });
        Index {
            tag: self.indexes[index as usize].tag,
            index,
            _types: PhantomData,
        }
    }

    #[track_caller]
    fn link_index<A: Entity, B: Entity, W: Entity, V: IndexValue, S: Structure>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        name: &'static str,
        unique: bool,
        key: impl Fn(Key<A>, Key<B>, &W) -> V + Send + Sync + 'static,
    ) -> Index<(Key<A>, Key<B>), V, S> {
        let r = self.relation_index((rel.tag, rel.index));
        let key = Arc::new(move |e: Option<Ent>, x: &dyn Any| {
            let (a, b) = e.expect("a link's key is computed with its pair");
            let w = x.downcast_ref::<W>().expect("a payload");
            key(Key::from_raw(a), Key::from_raw(b), w)
        });
        let index = self.declare_index::<V, S>(Decl {
            name,
            target: Target::Payloads(r),
            unique,
            key,
            scan: scan_payloads::<W>,
        });
        Index {
            tag: self.indexes[index as usize].tag,
            index,
            _types: PhantomData,
        }
    }

    /// Declares a hash (equality) index on the rows of `table` (a table or a kind): the
    /// value `key` computes from each row. Lookups by value ([`Store::lookup`]) are O(1)
    /// plus the entities found; each insert, replace and update of a row computes its key
    /// once and costs one hash-map change (nothing when the key stays the same). The
    /// closure must be a pure function of the row; it may panic (the change is then
    /// refused, nothing changed). Indexes are not part of the snapshot or of the schema
    /// fingerprint: a store saved with indexes loads in a program declaring none, and a
    /// load rebuilds the indexes the program declares.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// let by_name = schema.index(users, "users_by_name", |u: &User| u.name.clone());
    /// let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// assert_eq!(store.lookup(by_name, "Alice"), Some(alice));
    /// ```
    ///
    /// # Panics
    ///
    /// If `table` is of another schema or `name` is taken by another index.
    #[track_caller]
    pub fn index<T: Entity, V: IndexValue>(
        &mut self,
        table: impl Into<Table<T>>,
        name: &'static str,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Index<Key<T>, V, Hashed> {
        self.row_index(table.into(), name, false, key)
    }

    /// Declares a unique hash index: as [`index`](Self::index), and no two rows may hold
    /// the same value. A change that would break it is refused before anything changes:
    /// with [`IndexError::Unique`] from the `try_` calls ([`Store::try_insert`],
    /// [`Store::try_update`], ..), with a panic naming the index, the value and its holder
    /// from the others (`insert`, `update`, ..).
    ///
    /// # Panics
    ///
    /// As [`index`](Self::index).
    #[track_caller]
    pub fn unique_index<T: Entity, V: IndexValue>(
        &mut self,
        table: impl Into<Table<T>>,
        name: &'static str,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Index<Key<T>, V, Hashed> {
        self.row_index(table.into(), name, true, key)
    }

    /// Declares an ordered index on the rows of `table`: as [`index`](Self::index), in a
    /// B-tree, so that lookups also take ranges ([`Store::range`]), the first and last
    /// values ([`Store::first`], [`Store::last`]) and string prefixes
    /// ([`Store::starts_with`]). O(log n) per change and lookup.
    ///
    /// # Panics
    ///
    /// As [`index`](Self::index).
    #[track_caller]
    pub fn ordered_index<T: Entity, V: IndexValue>(
        &mut self,
        table: impl Into<Table<T>>,
        name: &'static str,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Index<Key<T>, V, Ordered> {
        self.row_index(table.into(), name, false, key)
    }

    /// Declares a unique ordered index: as [`ordered_index`](Self::ordered_index), and no
    /// two rows may hold the same value, as for [`unique_index`](Self::unique_index).
    ///
    /// # Panics
    ///
    /// As [`index`](Self::index).
    #[track_caller]
    pub fn unique_ordered_index<T: Entity, V: IndexValue>(
        &mut self,
        table: impl Into<Table<T>>,
        name: &'static str,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Index<Key<T>, V, Ordered> {
        self.row_index(table.into(), name, true, key)
    }

    /// Declares a hash index on the payloads of a many-to-many (every enrollment with
    /// grade 90): it finds links, `(Key<A>, Key<B>)`. `key` computes the value from the
    /// link's two keys and its payload, so that a value may name an end: `(course,
    /// grade)` finds the students of one course by grade. Kept exact by every link,
    /// unlink, payload change and delete.
    ///
    /// # Panics
    ///
    /// If `rel` is of another schema or `name` is taken by another index.
    #[track_caller]
    pub fn payload_index<A: Entity, B: Entity, W: Entity, V: IndexValue>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        name: &'static str,
        key: impl Fn(Key<A>, Key<B>, &W) -> V + Send + Sync + 'static,
    ) -> Index<(Key<A>, Key<B>), V, Hashed> {
        self.link_index(rel, name, false, key)
    }

    /// Declares a unique hash index on the payloads of a many-to-many: as
    /// [`payload_index`](Self::payload_index), and no two links may hold the same value
    /// (one seat number per course: `|_, course, w| (course, w.seat)`).
    ///
    /// # Panics
    ///
    /// As [`payload_index`](Self::payload_index).
    #[track_caller]
    pub fn unique_payload_index<A: Entity, B: Entity, W: Entity, V: IndexValue>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        name: &'static str,
        key: impl Fn(Key<A>, Key<B>, &W) -> V + Send + Sync + 'static,
    ) -> Index<(Key<A>, Key<B>), V, Hashed> {
        self.link_index(rel, name, true, key)
    }

    /// Declares an ordered index on the payloads of a many-to-many (every enrollment with
    /// grade at least 90, in grade order): as [`payload_index`](Self::payload_index), in a
    /// B-tree.
    ///
    /// # Panics
    ///
    /// As [`payload_index`](Self::payload_index).
    #[track_caller]
    pub fn ordered_payload_index<A: Entity, B: Entity, W: Entity, V: IndexValue>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        name: &'static str,
        key: impl Fn(Key<A>, Key<B>, &W) -> V + Send + Sync + 'static,
    ) -> Index<(Key<A>, Key<B>), V, Ordered> {
        self.link_index(rel, name, false, key)
    }

    /// Declares a unique ordered index on the payloads of a many-to-many: as
    /// [`ordered_payload_index`](Self::ordered_payload_index), and no two links may hold
    /// the same value.
    ///
    /// # Panics
    ///
    /// As [`payload_index`](Self::payload_index).
    #[track_caller]
    pub fn unique_ordered_payload_index<A: Entity, B: Entity, W: Entity, V: IndexValue>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        name: &'static str,
        key: impl Fn(Key<A>, Key<B>, &W) -> V + Send + Sync + 'static,
    ) -> Index<(Key<A>, Key<B>), V, Ordered> {
        self.link_index(rel, name, true, key)
    }
}

impl Store {
    /// The index's typed storage.
    #[track_caller]
    fn typed<E, V: IndexValue, S: Structure>(&self, idx: Index<E, V, S>) -> &Typed<V, S::Map<V>> {
        let def = self.schema.indexes.get(idx.index as usize);
        if def.map(|d| d.tag) != Some(idx.tag) {
            panic!(
                "an index handle (#{}) of another schema was used: use the handles of the \
                 schema the store was built from",
                idx.index
            );
        }
        self.ix.list[idx.index as usize]
            .as_any()
            .downcast_ref()
            .expect("an index of the handle's types")
    }

    /// The first entity holding `value` in the index (for a unique index: the one), or
    /// `None`. O(1) for a hash index, O(log n) for an ordered one.
    #[track_caller]
    pub fn lookup<E: IndexEntity, V, S: Structure, Q>(
        &self,
        idx: Index<E, V, S>,
        value: &Q,
    ) -> Option<E>
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.typed(idx)
            .map
            .get(value)
            .map(|b| E::from_ent(b.first()))
    }

    /// Every entity holding `value` in the index, in no particular order. O(1) (hash) or
    /// O(log n) (ordered), plus O(1) per entity.
    #[track_caller]
    pub fn lookup_all<E: IndexEntity, V, S: Structure, Q>(
        &self,
        idx: Index<E, V, S>,
        value: &Q,
    ) -> impl Iterator<Item = E> + '_
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.typed(idx)
            .map
            .get(value)
            .into_iter()
            .flat_map(|b| b.iter().map(E::from_ent))
    }

    /// How many entities hold `value` in the index. O(1) (hash) or O(log n) (ordered).
    #[track_caller]
    pub fn count_by<E: IndexEntity, V, S: Structure, Q>(
        &self,
        idx: Index<E, V, S>,
        value: &Q,
    ) -> usize
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.typed(idx).map.get(value).map_or(0, Bucket::len)
    }

    /// The value the index holds for `entity` (a row's key, or a link's pair), without
    /// calling the key closure; `None` for a stale key or an unlinked pair. O(1).
    #[track_caller]
    pub fn indexed_value<E: IndexEntity + Into<EntOf>, V: IndexValue, S: Structure>(
        &self,
        idx: Index<E, V, S>,
        entity: E,
    ) -> Option<&V> {
        let ix = self.typed(idx);
        let e = entity.into().0;
        // a row's side entry is found by slot alone: a stale key must not read the entry
        // of the row that took its slot
        if let Target::Rows(t) = ix.target {
            if !self.tables[t as usize].contains(e.0) {
                return None;
            }
        }
        ix.key_of(e)
    }

    /// Number of distinct values in the index. O(1).
    #[track_caller]
    pub fn distinct_values<E, V: IndexValue, S: Structure>(&self, idx: Index<E, V, S>) -> usize {
        self.typed(idx).map.len()
    }

    /// The entities whose value lies in `range`, in value order (equal values in no
    /// particular order), with their values. O(log n) plus O(1) per entity. A range whose
    /// start lies after its end (`5..3`) holds nothing.
    #[track_caller]
    pub fn range<E: IndexEntity, V, Q, R>(
        &self,
        idx: Index<E, V, Ordered>,
        range: R,
    ) -> impl DoubleEndedIterator<Item = (&V, E)> + '_
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Ord,
        R: RangeBounds<Q>,
    {
        let map = &self.typed(idx).map.0;
        let found = (!inverted(&range)).then(|| Flat::new(map.range::<Q, R>(range)));
        found
            .into_iter()
            .flatten()
            .map(|(v, e)| (v, E::from_ent(e)))
    }

    /// Every entity in value order, with its value: `range(idx, ..)`.
    #[track_caller]
    pub fn in_order<E: IndexEntity, V: IndexValue>(
        &self,
        idx: Index<E, V, Ordered>,
    ) -> impl DoubleEndedIterator<Item = (&V, E)> + '_ {
        Flat::new(self.typed(idx).map.0.iter()).map(|(v, e)| (v, E::from_ent(e)))
    }

    /// The smallest value and an entity holding it. O(log n).
    #[track_caller]
    pub fn first<E: IndexEntity, V: IndexValue>(
        &self,
        idx: Index<E, V, Ordered>,
    ) -> Option<(&V, E)> {
        let (v, b) = self.typed(idx).map.0.first_key_value()?;
        Some((v, E::from_ent(b.first())))
    }

    /// The largest value and an entity holding it. O(log n).
    #[track_caller]
    pub fn last<E: IndexEntity, V: IndexValue>(
        &self,
        idx: Index<E, V, Ordered>,
    ) -> Option<(&V, E)> {
        let (v, b) = self.typed(idx).map.0.last_key_value()?;
        Some((v, E::from_ent(b.first())))
    }

    /// The entities whose string value starts with `prefix`, in value order. O(log n)
    /// plus O(1) per entity.
    #[track_caller]
    pub fn starts_with<'a, E: IndexEntity + 'a>(
        &'a self,
        idx: Index<E, String, Ordered>,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, E)> + 'a {
        self.typed(idx)
            .map
            .0
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(v, _)| v.starts_with(prefix))
            .flat_map(|(v, b)| b.iter().map(move |e| (v, E::from_ent(e))))
    }

    /// The key of a row of `T` whose indexed value is `value`: [`lookup`](Self::lookup)
    /// under the name the article's `filter_by(..).first()` reads as. Uses the index:
    /// never a scan (for a predicate without an index, [`find`](Self::find) scans).
    #[track_caller]
    pub fn find_by<T: Entity, V, S: Structure, Q>(
        &self,
        idx: Index<Key<T>, V, S>,
        value: &Q,
    ) -> Option<Key<T>>
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        self.lookup(idx, value)
    }

    /// The rows of `T` whose indexed value is `value`, with their keys: the article's
    /// `filter_by`. Uses the index; [`filter`](Self::filter) is the scan for a predicate.
    #[track_caller]
    pub fn filter_by<'a, T: Entity, V, S: Structure, Q>(
        &'a self,
        idx: Index<Key<T>, V, S>,
        value: &Q,
    ) -> impl Iterator<Item = (Key<T>, &'a T)> + 'a
    where
        V: IndexValue + Borrow<Q>,
        Q: ?Sized + Hash + Ord,
    {
        let rows = self.rows::<T>();
        self.lookup_all(idx, value)
            .filter_map(move |k| rows.get(k).map(|v| (k, v)))
    }

    /// The rows of `T` that `pred` accepts, with their keys. A scan: O(slots); declare an
    /// index and use [`filter_by`](Self::filter_by) for lookups by value.
    #[track_caller]
    pub fn filter<'a, T: Entity>(
        &'a self,
        mut pred: impl FnMut(&T) -> bool + 'a,
    ) -> impl Iterator<Item = (Key<T>, &'a T)> + 'a {
        self.iter::<T>().filter(move |(_, v)| pred(v))
    }

    /// Checks every index against one rebuilt from the store: the same values, held by
    /// the same entities. O(entities). For tests.
    ///
    /// # Errors
    ///
    /// A message naming the index and the first difference.
    #[doc(hidden)]
    pub fn check_indexes(&self) -> Result<(), String> {
        for ix in &self.ix.list {
            ix.check(self)?;
        }
        Ok(())
    }

    /// Rebuilds every index from the rows and payloads (after a load).
    pub(crate) fn rebuild_indexes(&mut self) -> Result<(), IndexError> {
        let mut list = std::mem::take(&mut self.ix.list);
        let mut out = Ok(());
        for (i, ix) in list.iter_mut().enumerate() {
            if let Err((value, holder)) = ix.rebuild(self) {
                out = Err(self.unique_error(i as u32, value, holder));
                break;
            }
        }
        self.ix.list = list;
        out
    }

    fn unique_error(&self, index: u32, value: String, holder: Ent) -> IndexError {
        let def = &self.schema.indexes[index as usize];
        let holder = match def.target {
            Target::Rows(t) => self.any_key(t, holder.0).to_string(),
            Target::Payloads(r) => {
                let d = &self.schema.relations[r as usize];
                format!(
                    "{} -> {}",
                    self.any_key(d.a_table, holder.0),
                    self.any_key(d.b_table, holder.1)
                )
            }
        };
        IndexError::Unique {
            index: def.name,
            value,
            holder,
        }
    }

    /// Computes and checks the keys of `value` for the indexes in `ids` (`exclude`: the
    /// entity whose key it replaces); keeps them staged for [`ix_commit`](Self::ix_commit).
    /// On an error or a panic of a key closure, nothing is staged and nothing changed.
    pub(crate) fn ix_stage(
        &mut self,
        ids: Ids,
        value: &dyn Any,
        exclude: Option<Ent>,
    ) -> Result<(), IndexError> {
        struct Unstage<'a> {
            list: &'a mut [Box<dyn ErasedIndex>],
            ids: &'a [u32],
            done: usize,
        }
        impl Drop for Unstage<'_> {
            fn drop(&mut self) {
                for &i in &self.ids[..self.done] {
                    self.list[i as usize].unstage();
                }
            }
        }
        let Indexes { list, rows, links } = &mut self.ix;
        let ids = match ids {
            Ids::Rows(t) => &rows[t as usize],
            Ids::Links(r) => &links[r as usize],
        };
        let mut g = Unstage { list, ids, done: 0 };
        let mut failed = None;
        for &i in g.ids {
            if let Err((v, h)) = g.list[i as usize].stage(value, exclude) {
                failed = Some((i, v, h));
                break;
            }
            g.done += 1;
        }
        match failed {
            None => {
                g.done = 0;
                Ok(())
            }
            Some((i, v, h)) => {
                drop(g);
                Err(self.unique_error(i, v, h))
            }
        }
    }

    /// [`ix_stage`](Self::ix_stage) for the calls that have no error to return it in:
    /// a refused key panics (before anything changed).
    #[track_caller]
    pub(crate) fn ix_stage_or_panic(&mut self, ids: Ids, value: &dyn Any, exclude: Option<Ent>) {
        if let Err(e) = self.ix_stage(ids, value, exclude) {
            refused(e);
        }
    }

    /// Checks that `value` would be accepted as `exclude`'s (or a new entity's) value,
    /// changing nothing.
    pub(crate) fn ix_check(
        &mut self,
        ids: Ids,
        value: &dyn Any,
        exclude: Option<Ent>,
    ) -> Result<(), IndexError> {
        self.ix_stage(ids, value, exclude)?;
        self.ix_unstage(ids);
        Ok(())
    }

    /// Makes room in the row indexes of `table` for `additional` more rows.
    pub(crate) fn ix_reserve(&mut self, table: u32, additional: usize) {
        if self.ix.on_table(table) {
            let Indexes { list, rows, .. } = &mut self.ix;
            for &i in &rows[table as usize] {
                list[i as usize].reserve(additional);
            }
        }
    }

    /// Drops the staged keys (the change did not happen).
    pub(crate) fn ix_unstage(&mut self, ids: Ids) {
        let Indexes { list, rows, links } = &mut self.ix;
        let ids = match ids {
            Ids::Rows(t) => &rows[t as usize],
            Ids::Links(r) => &links[r as usize],
        };
        for &i in ids {
            list[i as usize].unstage();
        }
    }

    /// Makes the staged keys `e`'s, logging the keys they replace while recording.
    pub(crate) fn ix_commit(&mut self, ids: Ids, e: Ent) {
        let rec = self.rec;
        let Indexes { list, rows, links } = &mut self.ix;
        let ids = match ids {
            Ids::Rows(t) => &rows[t as usize],
            Ids::Links(r) => &links[r as usize],
        };
        for &index in ids {
            if let Some(key) = list[index as usize].commit(e, rec) {
                if rec {
                    self.log.push(Undo::Index { index, ent: e, key });
                }
            }
        }
    }

    /// Takes `e` out of the indexes in `ids` (it was removed or unlinked), logging the
    /// keys it had while recording. No user code.
    pub(crate) fn ix_remove(&mut self, ids: Ids, e: Ent) {
        let rec = self.rec;
        let Indexes { list, rows, links } = &mut self.ix;
        let ids = match ids {
            Ids::Rows(t) => &rows[t as usize],
            Ids::Links(r) => &links[r as usize],
        };
        for &index in ids {
            if let Some(key) = list[index as usize].remove(e, rec) {
                if rec {
                    self.log.push(Undo::Index { index, ent: e, key });
                }
            }
        }
    }

    /// Applies an `Undo::Index`: `e`'s key in `index` goes back to `key`; with `record`,
    /// logs the inverse.
    pub(crate) fn ix_revert(&mut self, index: u32, e: Ent, key: Option<Boxed>, record: bool) {
        if let Some(cur) = self.ix.list[index as usize].set(e, key, record) {
            if record {
                self.log.push(Undo::Index {
                    index,
                    ent: e,
                    key: cur,
                });
            }
        }
    }
}

/// Which indexes a hook is about: a table's row indexes or a relation's payload indexes.
#[derive(Clone, Copy)]
pub(crate) enum Ids {
    Rows(u32),
    Links(u32),
}

/// A row key or link pair, as [`Store::indexed_value`] takes it.
#[doc(hidden)]
pub struct EntOf(Ent);
impl<T> From<Key<T>> for EntOf {
    fn from(k: Key<T>) -> Self {
        EntOf((k.raw(), k.raw()))
    }
}
impl<A, B> From<(Key<A>, Key<B>)> for EntOf {
    fn from((a, b): (Key<A>, Key<B>)) -> Self {
        EntOf((a.raw(), b.raw()))
    }
}

/// The calls that return a unique index's refusal as an error rather than a panic.
impl Store {
    /// [`insert`](Self::insert), refused with [`IndexError::Unique`] when a unique index
    /// already holds one of the row's values (then nothing changed, and `value` is
    /// dropped). Computes the row's keys twice (check, then insert) on an indexed table.
    ///
    /// # Errors
    ///
    /// [`IndexError::Unique`], naming the index, the value and the row holding it.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert); a panic of a key closure changes nothing.
    #[track_caller]
    pub fn try_insert<T: Entity>(&mut self, value: T) -> Result<Key<T>, IndexError> {
        let table = self.table_of::<T>();
        if self.ix.on_table(table) {
            self.ix_check(Ids::Rows(table), &value, None)?;
        }
        Ok(self.insert(value))
    }

    /// [`insert_all`](Self::insert_all), refused with [`IndexError::Unique`] when a row
    /// breaks a unique index (one already stored, or an earlier row of `values`): all or
    /// nothing, so then no row is inserted. On a table without indexes it is
    /// `Ok(insert_all(values))`; on an indexed one the rows go in one at a time in a
    /// savepoint, each checked as [`try_insert`](Self::try_insert) checks. O(values).
    ///
    /// # Errors
    ///
    /// [`IndexError::Unique`] for the first row refused; nothing changed.
    ///
    /// # Panics
    ///
    /// As [`insert_all`](Self::insert_all); a panic of a key closure or of `values`
    /// changes nothing.
    #[track_caller]
    pub fn try_insert_all<T: Entity>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> Result<Vec<Key<T>>, IndexError> {
        let table = self.table_of::<T>();
        if !self.ix.on_table(table) {
            return Ok(self.insert_all(values));
        }
        self.atomic(|s| values.into_iter().map(|v| s.try_insert(v)).collect())
    }

    /// [`insert_kind`](Self::insert_kind), refused with [`IndexError::Unique`] when a
    /// unique index on the base or the kind already holds one of the row's values.
    ///
    /// # Errors
    ///
    /// [`IndexError::Unique`]; nothing changed.
    ///
    /// # Panics
    ///
    /// As [`insert_kind`](Self::insert_kind).
    #[track_caller]
    pub fn try_insert_kind<B: Entity, K: Entity>(
        &mut self,
        kind: crate::schema::Kind<B, K>,
        base: B,
        value: K,
    ) -> Result<Key<K>, IndexError> {
        if self.ix.on_table(kind.base) {
            self.ix_check(Ids::Rows(kind.base), &base, None)?;
        }
        if self.ix.on_table(kind.table) {
            self.ix_check(Ids::Rows(kind.table), &value, None)?;
        }
        Ok(self.insert_kind(kind, base, value))
    }

    /// [`replace`](Self::replace), refused with [`IndexError::Unique`] when a unique index
    /// holds one of `value`'s values for another row.
    ///
    /// # Errors
    ///
    /// [`IndexError::Stale`] if `key` names no live row; [`IndexError::Unique`]. Nothing
    /// changed.
    #[track_caller]
    pub fn try_replace<T: Entity>(&mut self, key: Key<T>, value: T) -> Result<(), IndexError> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        if self.ix.on_table(table) {
            self.ix_check(Ids::Rows(table), &value, Some((raw, raw)))?;
        }
        Ok(self.replace(key, value)?)
    }

    /// [`update`](Self::update), refused with [`IndexError::Unique`] when the updated
    /// row's value is held by another row in a unique index. On an indexed table `f` runs
    /// on a clone of the row, which replaces it once its keys are accepted: a refusal (or
    /// a panic in `f` or a key closure) leaves the row as it was.
    ///
    /// # Errors
    ///
    /// [`IndexError::Stale`] if `key` names no live row; [`IndexError::Unique`].
    #[track_caller]
    pub fn try_update<T: Entity + Clone, R>(
        &mut self,
        key: Key<T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, IndexError> {
        let table = self.table_of::<T>();
        if !self.ix.on_table(table) {
            return Ok(self.update(key, f)?);
        }
        let stale = self.stale(key);
        let run = |s: &mut Store| match s.p_update_indexed(table, key.raw(), f) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(IndexError::Stale(stale)),
            Err(e) => Err(e),
        };
        if self.depth == 0 && self.tracking() {
            // one history step
            return self.atomic(run);
        }
        run(self)
    }

    /// [`link_with`](Self::link_with), refused with [`IndexError::Unique`] when a unique
    /// payload index holds the payload's value for another link.
    ///
    /// # Errors
    ///
    /// [`IndexError::Link`] for the errors of `link_with`; [`IndexError::Unique`].
    /// Nothing changed.
    #[track_caller]
    pub fn try_link_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        payload: W,
    ) -> Result<(), IndexError> {
        let r = self.schema.relation_index((rel.tag, rel.index));
        if self.ix.on_rel(r) && self.contains(a) && self.contains(b) {
            self.ix_check(Ids::Links(r), &payload, Some((a.raw(), b.raw())))?;
        }
        Ok(self.link_with(rel, a, b, payload)?)
    }

    /// [`update_payload`](Self::update_payload), refused with [`IndexError::Unique`] when
    /// the updated payload's value is held by another link in a unique payload index; `f`
    /// then changed a clone only.
    ///
    /// # Errors
    ///
    /// [`IndexError::Link`] if a key is stale; [`IndexError::Unique`].
    #[track_caller]
    pub fn try_update_payload<A: Entity, B: Entity, W: Entity + Clone, R>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        f: impl FnOnce(&mut W) -> R,
    ) -> Result<Option<R>, IndexError> {
        let r = self.schema.relation_index((rel.tag, rel.index));
        if !self.ix.on_rel(r) {
            return Ok(self.update_payload(rel, a, b, f)?);
        }
        if !self.contains(a) {
            return Err(IndexError::Stale(self.stale(a)));
        }
        if !self.contains(b) {
            return Err(IndexError::Stale(self.stale(b)));
        }
        let (a, b) = (a.raw(), b.raw());
        if self.depth == 0 && self.tracking() {
            return self.atomic(|s| s.p_update_payload_indexed(r, a, b, f));
        }
        self.p_update_payload_indexed(r, a, b, f)
    }
}

/// Whether `range` starts after it ends (or at its end, both ends excluded): a range a
/// `BTreeMap` refuses with a panic, and one that holds nothing.
fn inverted<Q: ?Sized + Ord>(range: &impl RangeBounds<Q>) -> bool {
    use std::ops::Bound::{Excluded, Included};
    match (range.start_bound(), range.end_bound()) {
        (Included(s) | Excluded(s), Included(e)) | (Included(s), Excluded(e)) => s > e,
        (Excluded(s), Excluded(e)) => s >= e,
        _ => false,
    }
}
