//! Traversal of self-referential one-to-many relations (hierarchies): ancestors,
//! descendants breadth-first and depth-first with depth, root, siblings.
//!
//! On a relation declared [`acyclic`](crate::Rules::acyclic) the walks keep no visited set.
//! On any other self-referential relation they remember what they visited, so a cycle ends
//! the walk instead of looping.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;

use crate::index::{Index, IndexValue, Structure};
use crate::key::{Key, RawKey};
use crate::relation::many_to_many::PairHasher;
use crate::relation::{OneToManyStore, RelationStore};
use crate::schema::{Entity, OneToMany, Relation};
use crate::store::Store;

type Seen = Option<HashSet<RawKey, BuildHasherDefault<PairHasher>>>;

impl Store {
    #[track_caller]
    fn tree<T: Entity>(&self, rel: OneToMany<T, T>) -> (&OneToManyStore, Seen) {
        let index = self.schema.relation_index(rel.tag_and_index());
        let acyclic = self.schema.relations[index as usize].rules.acyclic;
        match &self.relations[index as usize] {
            RelationStore::OneToMany(r) => (r, (!acyclic).then(Default::default)),
            _ => unreachable!("a OneToMany handle names a one-to-many"),
        }
    }

    /// The parent, grandparent, … of `node`, nearest first. O(1) per step.
    #[track_caller]
    pub fn ancestors<T: Entity>(&self, rel: OneToMany<T, T>, node: Key<T>) -> Ancestors<'_, T> {
        let (tree, mut seen) = self.tree(rel);
        if let Some(seen) = &mut seen {
            seen.insert(node.raw());
        }
        Ancestors {
            tree,
            at: node.raw(),
            seen,
            _type: PhantomData,
        }
    }

    /// The topmost ancestor of `node` (`node` itself if it has no parent). O(depth).
    /// On a cycle (possible only where the relation is not acyclic) it is the last
    /// ancestor before the walk would repeat.
    #[track_caller]
    pub fn root<T: Entity>(&self, rel: OneToMany<T, T>, node: Key<T>) -> Key<T> {
        self.ancestors(rel, node).last().unwrap_or(node)
    }

    /// Number of ancestors of `node` (0 for a root). O(depth).
    #[track_caller]
    pub fn depth<T: Entity>(&self, rel: OneToMany<T, T>, node: Key<T>) -> usize {
        self.ancestors(rel, node).count()
    }

    /// Whether `ancestor` is a proper ancestor of `node`. O(depth).
    #[track_caller]
    pub fn is_ancestor<T: Entity>(
        &self,
        rel: OneToMany<T, T>,
        ancestor: Key<T>,
        node: Key<T>,
    ) -> bool {
        self.ancestors(rel, node).any(|a| a == ancestor)
    }

    /// The other children of `node`'s parent, in link order (none for a root).
    #[track_caller]
    pub fn siblings<T: Entity>(
        &self,
        rel: OneToMany<T, T>,
        node: Key<T>,
    ) -> impl Iterator<Item = Key<T>> + '_ {
        let parent = self.parent(rel, node);
        parent
            .into_iter()
            .flat_map(move |p| self.children(rel, p))
            .filter(move |&k| k != node)
    }

    /// Every descendant of `node` with its depth below `node` (children at 1),
    /// breadth-first, each level in link order. `node` itself is not included.
    /// O(1) per step; keeps a queue of one level.
    #[track_caller]
    pub fn descendants<T: Entity>(&self, rel: OneToMany<T, T>, node: Key<T>) -> Descendants<'_, T> {
        let (tree, mut seen) = self.tree(rel);
        if let Some(seen) = &mut seen {
            seen.insert(node.raw());
        }
        Descendants {
            tree,
            order: Order::Breadth {
                level: Vec::new(),
                next: Vec::new(),
                at: 0,
                depth: 1,
                children: tree.raw_children(node.raw()).iter(),
            },
            seen,
            _type: PhantomData,
        }
    }

    /// Every descendant of `node` with its depth below `node`, depth-first in pre-order
    /// (a child, then its whole subtree, then the next child). O(1) per step; keeps a
    /// stack of pending siblings.
    #[track_caller]
    pub fn descendants_depth_first<T: Entity>(
        &self,
        rel: OneToMany<T, T>,
        node: Key<T>,
    ) -> Descendants<'_, T> {
        let mut d = self.descendants(rel, node);
        d.order = Order::Depth {
            stack: vec![(node.raw(), 0)],
        };
        d
    }

    /// The entities of `T` without a parent in `rel`, in slot order. O(entities).
    #[track_caller]
    pub fn roots<T: Entity>(&self, rel: OneToMany<T, T>) -> impl Iterator<Item = Key<T>> + '_ {
        self.keys::<T>()
            .filter(move |&k| self.parent(rel, k).is_none())
    }

    /// The descendants of `node` that have no children, breadth-first (`node` itself if
    /// it has none; nothing if `node` is stale). O(subtree).
    #[track_caller]
    pub fn leaves<T: Entity>(
        &self,
        rel: OneToMany<T, T>,
        node: Key<T>,
    ) -> impl Iterator<Item = Key<T>> + '_ {
        let alone = (self.contains(node) && self.child_count(rel, node) == 0).then_some(node);
        alone.into_iter().chain(
            self.descendants(rel, node)
                .map(|(k, _)| k)
                .filter(move |&k| self.child_count(rel, k) == 0),
        )
    }

    /// Number of entities in the subtree of `node`, `node` included (0 if `node` is
    /// stale). O(subtree), as a plain loop over the levels.
    #[track_caller]
    pub fn subtree_size<T: Entity>(&self, rel: OneToMany<T, T>, node: Key<T>) -> usize {
        if !self.contains(node) {
            return 0;
        }
        1 + self.descendants(rel, node).count()
    }

    /// The lowest common ancestor of `a` and `b`: the deepest entity that is `a` or one of
    /// its ancestors and `b` or one of its ancestors (`a` itself if it is an ancestor of
    /// `b`); `None` if they are in different trees or either is stale. O(depth of a +
    /// depth of b).
    #[track_caller]
    pub fn lowest_common_ancestor<T: Entity>(
        &self,
        rel: OneToMany<T, T>,
        a: Key<T>,
        b: Key<T>,
    ) -> Option<Key<T>> {
        if !(self.contains(a) && self.contains(b)) {
            return None;
        }
        let above_a: crate::KeySet<T> = std::iter::once(a).chain(self.ancestors(rel, a)).collect();
        std::iter::once(b)
            .chain(self.ancestors(rel, b))
            .find(|&k| above_a.contains(k))
    }

    /// The ancestors of `node`, nearest first, whose value in the index `idx` (an index
    /// on `T`'s rows) is `value`: "every manager above X in the sales department". Reads
    /// the values the index keeps: O(depth), no key closure called.
    #[track_caller]
    pub fn ancestors_where<'a, T: Entity, V: IndexValue, S: Structure>(
        &'a self,
        rel: OneToMany<T, T>,
        node: Key<T>,
        idx: Index<Key<T>, V, S>,
        value: &'a V,
    ) -> impl Iterator<Item = Key<T>> + 'a {
        self.ancestors(rel, node)
            .filter(move |&k| self.indexed_value(idx, k) == Some(value))
    }

    /// The descendants of `node` (breadth-first, with their depth) whose value in the
    /// index `idx` is `value`. O(subtree), no key closure called.
    #[track_caller]
    pub fn descendants_where<'a, T: Entity, V: IndexValue, S: Structure>(
        &'a self,
        rel: OneToMany<T, T>,
        node: Key<T>,
        idx: Index<Key<T>, V, S>,
        value: &'a V,
    ) -> impl Iterator<Item = (Key<T>, usize)> + 'a {
        self.descendants(rel, node)
            .filter(move |&(k, _)| self.indexed_value(idx, k) == Some(value))
    }
}

/// Ancestors of a node, nearest first, from [`Store::ancestors`].
pub struct Ancestors<'a, T> {
    tree: &'a OneToManyStore,
    at: RawKey,
    seen: Seen,
    _type: PhantomData<fn() -> T>,
}

impl<T> Iterator for Ancestors<'_, T> {
    type Item = Key<T>;

    fn next(&mut self) -> Option<Key<T>> {
        let parent = self.tree.parent_of(self.at)?;
        if let Some(seen) = &mut self.seen {
            if !seen.insert(parent) {
                return None;
            }
        }
        self.at = parent;
        Some(Key::from_raw(parent))
    }
}

/// Descendants of a node with their depth, from [`Store::descendants`] and
/// [`Store::descendants_depth_first`].
pub struct Descendants<'a, T> {
    tree: &'a OneToManyStore,
    order: Order<'a>,
    seen: Seen,
    _type: PhantomData<fn() -> T>,
}

enum Order<'a> {
    /// Level by level: the children of `level[..at]` have been yielded, those of the node
    /// before `at` are being yielded from `children`; `next` collects the level below.
    Breadth {
        level: Vec<RawKey>,
        next: Vec<RawKey>,
        at: usize,
        /// Depth of the nodes being yielded.
        depth: usize,
        /// The rest of a children list, holes included.
        children: std::slice::Iter<'a, Option<RawKey>>,
    },
    /// Nodes whose children are still to be pushed; the root is the first entry and is
    /// not yielded.
    Depth { stack: Vec<(RawKey, usize)> },
}

impl<T> Iterator for Descendants<'_, T> {
    type Item = (Key<T>, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let tree = self.tree;
        let seen = &mut self.seen;
        match &mut self.order {
            Order::Breadth {
                level,
                next,
                at,
                depth,
                children,
            } => loop {
                for &c in children.by_ref() {
                    let Some(c) = c else { continue };
                    // an acyclic relation keeps no visited set
                    if seen.as_mut().is_none_or(|s| s.insert(c)) {
                        next.push(c);
                        return Some((Key::from_raw(c), *depth));
                    }
                }
                if let Some(&node) = level.get(*at) {
                    *at += 1;
                    *children = tree.raw_children(node).iter();
                    continue;
                }
                if next.is_empty() {
                    return None;
                }
                std::mem::swap(level, next);
                next.clear();
                *at = 0;
                *depth += 1;
            },
            Order::Depth { stack } => loop {
                let (node, depth) = stack.pop()?;
                for c in tree.children_of(node).rev() {
                    if seen.as_mut().is_none_or(|s| s.insert(c)) {
                        stack.push((c, depth + 1));
                    }
                }
                if depth > 0 {
                    return Some((Key::from_raw(node), depth));
                }
            },
        }
    }

    /// Internal iteration (`count`, `sum`, `for_each`, `collect`...): breadth-first
    /// without a visited set runs as two plain loops over the levels.
    fn fold<B, F>(mut self, init: B, mut f: F) -> B
    where
        F: FnMut(B, Self::Item) -> B,
    {
        let mut acc = init;
        if self.seen.is_some() {
            // (a `for` loop steps with `next`, not with this `fold`)
            for item in self.by_ref() {
                acc = f(acc, item);
            }
            return acc;
        }
        let tree = self.tree;
        match self.order {
            Order::Breadth {
                mut level,
                mut next,
                mut at,
                mut depth,
                children,
            } => {
                for &c in children.flatten() {
                    next.push(c);
                    acc = f(acc, (Key::from_raw(c), depth));
                }
                loop {
                    for &node in &level[at..] {
                        for &c in tree.raw_children(node).iter().flatten() {
                            next.push(c);
                            acc = f(acc, (Key::from_raw(c), depth));
                        }
                    }
                    if next.is_empty() {
                        return acc;
                    }
                    std::mem::swap(&mut level, &mut next);
                    next.clear();
                    at = 0;
                    depth += 1;
                }
            }
            Order::Depth { .. } => {
                for item in self {
                    acc = f(acc, item);
                }
                acc
            }
        }
    }
}
