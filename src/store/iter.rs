//! Read-only views and iterators: `Rows`, `Children`, `Linked`, `WithPayload`.

use super::*;

/// A read-only view of one table, from [`Store::rows`]. Indexing costs no type lookup.
pub struct Rows<'a, T> {
    pub(crate) arena: &'a Column<T>,
    /// The slots of a plain table or base (none for a kind), held apart so that a lookup
    /// in a hot loop reads them from registers rather than through `arena`.
    pub(crate) slots: Slots<'a, T>,
}

impl<T> Clone for Rows<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Rows<'_, T> {}

impl<'a, T> Rows<'a, T> {
    #[inline]
    pub(crate) fn new(arena: &'a Column<T>) -> Self {
        Rows {
            arena,
            slots: arena.slots().unwrap_or_default(),
        }
    }

    /// The entity under `key`, or `None` if the key is stale. O(1).
    #[inline]
    pub fn get(&self, key: Key<T>) -> Option<&'a T> {
        match self.slots.get(key.raw()) {
            Some(v) => Some(v),
            // a kind's rows are not in `slots`
            None => match self.arena {
                Column::Kind(_) => self.arena.get(key.raw()),
                Column::Slots(_) => None,
            },
        }
    }

    /// Whether `key` names a live entity. O(1).
    pub fn contains(&self, key: Key<T>) -> bool {
        self.get(key).is_some()
    }

    /// Number of live entities. O(1).
    pub fn len(&self) -> usize {
        self.arena.len()
    }

    /// Whether the table is empty. O(1).
    pub fn is_empty(&self) -> bool {
        self.arena.len() == 0
    }

    /// The entities with their keys, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Key<T>, &'a T)> + 'a {
        self.arena.iter().map(|(k, v)| (Key::from_raw(k), v))
    }
}

impl<T> Index<Key<T>> for Rows<'_, T> {
    type Output = T;

    /// # Panics
    ///
    /// If the key is stale.
    #[inline]
    #[track_caller]
    fn index(&self, key: Key<T>) -> &T {
        match self.get(key) {
            Some(v) => v,
            None => panic!(
                "stale key {:?}: the entity was removed (use `Rows::get` for an Option)",
                key.raw()
            ),
        }
    }
}

/// A read-only view of one one-to-many relation's back references (child to parent),
/// from [`Store::parents`]: what [`Rows`] is to a table. The relation handle is checked
/// once, when the view is taken, so a lookup is one bounds check and one compare, as in
/// a hand-kept `SecondaryMap` of parent keys; use it for many lookups in a loop.
pub struct Parents<'a, P, C> {
    entries: &'a [ParentRef],
    rows: Rows<'a, P>,
    _child: PhantomData<fn(Key<C>)>,
}

impl<P, C> Clone for Parents<'_, P, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, C> Copy for Parents<'_, P, C> {}

impl<'a, P, C> Parents<'a, P, C> {
    /// The parent of `child`, if it has one (`None` also for a stale key), as
    /// [`Store::parent`]. O(1).
    #[inline]
    pub fn get(&self, child: Key<C>) -> Option<Key<P>> {
        parent_in(self.entries, child.raw()).map(Key::from_raw)
    }

    /// The parent's row of `child`, if it has a parent, as [`Store::parent_row`]. O(1).
    #[inline]
    pub fn row(&self, child: Key<C>) -> Option<&'a P> {
        self.get(child).and_then(|p| self.rows.get(p))
    }
}

impl<P, C> fmt::Debug for Parents<'_, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let linked = self.entries.iter().filter(|r| r.get().is_some()).count();
        f.debug_struct("Parents").field("linked", &linked).finish()
    }
}

impl Store {
    /// A read-only view of `rel`'s back references, for hot loops: `get` and `row` cost
    /// no handle check and no table lookup (taking the view costs one of each).
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { score: u32 }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post;
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { score: 3 });
    /// let hello = store.insert_child(authorship, alice, Post)?;
    /// let draft = store.insert(Post);
    /// let authors = store.parents(authorship);
    /// assert_eq!(authors.get(hello), Some(alice));
    /// assert_eq!(authors.get(draft), None);
    /// let total: u32 = [hello, draft].iter().filter_map(|&p| authors.row(p)).map(|u| u.score).sum();
    /// assert_eq!(total, 3);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `rel` is not a relation of this store's schema.
    #[track_caller]
    pub fn parents<P: Entity, C: Entity>(&self, rel: OneToMany<P, C>) -> Parents<'_, P, C> {
        Parents {
            entries: self.otm(rel).parent_entries(),
            rows: Rows::new(self.parent_table(rel)),
            _child: PhantomData,
        }
    }
}

/// The last segment of a type's path (`Post` for `my_game::model::Post`).
pub(crate) fn short_type_name<T>() -> &'static str {
    let full = type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    &full[base.rfind("::").map_or(0, |i| i + 2)..]
}

/// The children of a parent in a one-to-many, in link order, from [`Store::children`]:
/// their keys, or with [`rows`](Self::rows) the rows themselves.
pub struct Children<'a, C> {
    pub(crate) inner: Iter<'a, RawKey>,
    pub(crate) store: &'a Store,
    pub(crate) _type: PhantomData<fn() -> C>,
}

impl<C> Clone for Children<'_, C> {
    fn clone(&self) -> Self {
        Children {
            inner: self.inner.clone(),
            store: self.store,
            _type: PhantomData,
        }
    }
}

impl<C> fmt::Debug for Children<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.inner.clone().map(Key::<C>::from_raw))
            .finish()
    }
}

impl<'a, C: Entity> Children<'a, C> {
    /// The children's rows instead of their keys, in the same order: `user.posts` is
    /// `store.children(authorship, user).rows()`. O(1) per step (one table lookup when
    /// called).
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize, Debug, PartialEq)] struct Post(String);
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User);
    /// store.insert_child(authorship, alice, Post("Hello".into()))?;
    /// let posts: Vec<&Post> = store.children(authorship, alice).rows().collect();
    /// assert_eq!(posts, [&Post("Hello".into())]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    pub fn rows(self) -> impl DoubleEndedIterator<Item = &'a C> + ExactSizeIterator + 'a {
        let rows = self.store.rows::<C>();
        self.map(move |k| rows.get(k).expect("a linked entity is live"))
    }
}

impl<C> Iterator for Children<'_, C> {
    type Item = Key<C>;

    #[inline]
    fn next(&mut self) -> Option<Key<C>> {
        self.inner.next().map(Key::from_raw)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<C> ExactSizeIterator for Children<'_, C> {}

impl<C> DoubleEndedIterator for Children<'_, C> {
    fn next_back(&mut self) -> Option<Key<C>> {
        self.inner.next_back().map(Key::from_raw)
    }
}

/// The entities linked to one entity, in link order, from [`Store::targets`] and
/// [`Store::sources`].
pub struct Linked<'a, T> {
    pub(crate) inner: LinkedInner<'a>,
    pub(crate) store: &'a Store,
    pub(crate) _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Linked<'_, T> {
    fn clone(&self) -> Self {
        Linked {
            inner: self.inner.clone(),
            store: self.store,
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Linked<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<'a, T: Entity> Linked<'a, T> {
    /// The linked rows instead of their keys, in the same order. O(1) per step (one table
    /// lookup when called).
    pub fn rows(self) -> impl ExactSizeIterator<Item = &'a T> + 'a {
        let rows = self.store.rows::<T>();
        self.map(move |k| rows.get(k).expect("a linked entity is live"))
    }
}

#[derive(Clone)]
pub(crate) enum LinkedInner<'a> {
    List(Iter<'a, RawKey>),
    Entries(Iter<'a, Entry>),
    One(Option<RawKey>),
}

impl<'a, T> Linked<'a, T> {
    pub(crate) fn new(owner: &'a Store, store: &'a RelationStore, end: End, key: RawKey) -> Self {
        let inner = match (store, end) {
            (RelationStore::OneToMany(r), End::A) => LinkedInner::List(r.children_of(key)),
            (RelationStore::OneToMany(r), End::B) => LinkedInner::One(r.parent_of(key)),
            (RelationStore::OneToOne(r), end) => LinkedInner::One(r.partner(end, key)),
            (RelationStore::ManyToMany(r), end) => LinkedInner::Entries(r.entries(end, key)),
        };
        Linked {
            inner,
            store: owner,
            _type: PhantomData,
        }
    }
}

impl<T> Iterator for Linked<'_, T> {
    type Item = Key<T>;

    #[inline]
    fn next(&mut self) -> Option<Key<T>> {
        let raw = match &mut self.inner {
            LinkedInner::List(it) => it.next(),
            LinkedInner::Entries(it) => it.next().map(|(k, _)| k),
            LinkedInner::One(k) => k.take(),
        };
        raw.map(Key::from_raw)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            LinkedInner::List(it) => it.size_hint(),
            LinkedInner::Entries(it) => it.size_hint(),
            LinkedInner::One(k) => (usize::from(k.is_some()), Some(usize::from(k.is_some()))),
        }
    }
}

impl<T> ExactSizeIterator for Linked<'_, T> {}

/// Linked entities with the payload of each link, from [`Store::targets_with`] and
/// [`Store::sources_with`].
pub struct WithPayload<'a, T, W> {
    pub(crate) entries: Iter<'a, Entry>,
    pub(crate) payloads: &'a [W],
    pub(crate) store: &'a Store,
    pub(crate) _type: PhantomData<fn() -> T>,
}

impl<T, W> Clone for WithPayload<'_, T, W> {
    fn clone(&self) -> Self {
        WithPayload {
            entries: self.entries.clone(),
            payloads: self.payloads,
            store: self.store,
            _type: PhantomData,
        }
    }
}

impl<T, W: fmt::Debug> fmt::Debug for WithPayload<'_, T, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl<'a, T: Entity, W> WithPayload<'a, T, W> {
    /// The linked rows with each link's payload, instead of keys. O(1) per step (one table
    /// lookup when called).
    pub fn rows(self) -> impl ExactSizeIterator<Item = (&'a T, &'a W)> + 'a
    where
        W: 'a,
    {
        let rows = self.store.rows::<T>();
        self.map(move |(k, w)| (rows.get(k).expect("a linked entity is live"), w))
    }
}

impl<'a, T, W> Iterator for WithPayload<'a, T, W> {
    type Item = (Key<T>, &'a W);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .next()
            .map(|(k, link)| (Key::from_raw(k), &self.payloads[link as usize]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl<T, W> ExactSizeIterator for WithPayload<'_, T, W> {}
