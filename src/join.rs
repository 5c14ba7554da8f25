//! Relations composed with lookups: key sets for semi-joins, the parents of a set of
//! children, the children of one kind, every pair of a relation.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;

use crate::key::{Key, RawKey};
use crate::relation::many_to_many::PairHasher;
use crate::relation::RelationStore;
use crate::schema::{Entity, OneToMany, Relation};
use crate::store::Store;

/// A set of keys of one table: the result of a lookup or walk, to test membership in
/// O(1) (a semi-join: "the posts whose author is in this set"). Built with `collect()`
/// from any iterator of keys.
pub struct KeySet<T> {
    keys: HashSet<RawKey, BuildHasherDefault<PairHasher>>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Default for KeySet<T> {
    fn default() -> Self {
        KeySet {
            keys: HashSet::default(),
            _type: PhantomData,
        }
    }
}

impl<T> Clone for KeySet<T> {
    fn clone(&self) -> Self {
        KeySet {
            keys: self.keys.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for KeySet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.iter()).finish()
    }
}

impl<T> FromIterator<Key<T>> for KeySet<T> {
    fn from_iter<I: IntoIterator<Item = Key<T>>>(iter: I) -> Self {
        KeySet {
            keys: iter.into_iter().map(Key::raw).collect(),
            _type: PhantomData,
        }
    }
}

impl<T> Extend<Key<T>> for KeySet<T> {
    fn extend<I: IntoIterator<Item = Key<T>>>(&mut self, iter: I) {
        self.keys.extend(iter.into_iter().map(Key::raw));
    }
}

impl<T> KeySet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `key` is in the set. O(1).
    pub fn contains(&self, key: Key<T>) -> bool {
        self.keys.contains(&key.raw())
    }

    /// Adds `key`; false if it was there.
    pub fn insert(&mut self, key: Key<T>) -> bool {
        self.keys.insert(key.raw())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Key<T>> + '_ {
        self.keys.iter().map(|&k| Key::from_raw(k))
    }

    /// The keys of `keys` that are in the set, in the order given (a semi-join).
    pub fn retain_in<'a, I: IntoIterator<Item = Key<T>> + 'a>(
        &'a self,
        keys: I,
    ) -> impl Iterator<Item = Key<T>> + 'a {
        keys.into_iter().filter(move |&k| self.contains(k))
    }

    /// The keys in both sets.
    pub fn intersection(&self, other: &KeySet<T>) -> KeySet<T> {
        let (small, large) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.iter().filter(|&k| large.contains(k)).collect()
    }
}

impl Store {
    /// The distinct parents of `children` in `rel`, in the order first met (children
    /// without a parent are skipped): "the users with a post titled X" is
    /// `store.parents_of(authorship, store.lookup_all(by_title, "X"))`. O(1) per child.
    #[track_caller]
    pub fn parents_of<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        children: impl IntoIterator<Item = Key<C>>,
    ) -> Vec<Key<P>> {
        let mut seen = KeySet::new();
        let parents = self.parents(rel);
        children
            .into_iter()
            .filter_map(|c| parents.get(c))
            .filter(|&p| seen.insert(p))
            .collect()
    }

    /// Every `(a, b)` pair of `rel`: for a one-to-many every (parent, child), in child
    /// slot order; for a one-to-one every pair; for a many-to-many every link, in link
    /// order. O(links) (one-to-many: O(child slots)).
    #[track_caller]
    pub fn link_pairs<R: Relation>(&self, rel: R) -> LinkPairs<'_, R::A, R::B> {
        let index = self.schema.relation_index(rel.tag_and_index());
        let inner: Box<dyn Iterator<Item = (RawKey, RawKey)> + '_> =
            match &self.relations[index as usize] {
                RelationStore::OneToMany(r) => Box::new(
                    r.linked_children()
                        .filter_map(move |c| r.parent_of(c).map(|p| (p, c))),
                ),
                RelationStore::OneToOne(r) => Box::new(r.pairs()),
                RelationStore::ManyToMany(r) => Box::new(r.pairs().map(|(_, a, b)| (a, b))),
            };
        LinkPairs {
            inner,
            _types: PhantomData,
        }
    }
}

/// Every pair of a relation, from [`Store::link_pairs`].
pub struct LinkPairs<'a, A, B> {
    inner: Box<dyn Iterator<Item = (RawKey, RawKey)> + 'a>,
    _types: PhantomData<fn() -> (A, B)>,
}

impl<A, B> Iterator for LinkPairs<'_, A, B> {
    type Item = (Key<A>, Key<B>);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|(a, b)| (Key::from_raw(a), Key::from_raw(b)))
    }
}
