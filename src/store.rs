//! `Store`: the entities, the relations, and every public operation on them.

use std::any::type_name;
use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::marker::PhantomData;
use std::ops::Index;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::arena::{Arena, Column, ErasedArena, Slots};
use crate::error::{IntegrityError, LinkError, RemoveError, StaleKey};
use crate::grave::{self, Graves};
use crate::key::{AnyKey, Key, RawKey};
use crate::path::{payloads, Undo};
use crate::relation::list::Iter;
use crate::relation::many_to_many::{Entry, PairHasher};
use crate::relation::{OneToManyStore, RelationStore};
use crate::schema::{
    DeleteRule, End, Entity, Linkable, ManyToMany, OneToMany, OneToOne, Relation, RelationDef,
    RelationKind, Schema,
};
use crate::DeletePreview;

/// An in-memory object graph: typed entity tables and the relations between them.
///
/// `&Store` reads, `&mut Store` writes; no locks. Every public call leaves every relation
/// consistent in both directions at once, and a call that returns an error has changed
/// nothing.
///
/// Reads by key and by relation are O(1) per step. Calls that take a [`Key<T>`] find the
/// table of `T` with one small hash lookup of its `TypeId`; in a hot loop take
/// [`rows`](Self::rows) once and index it. Calls that take a relation handle use its
/// dense index directly.
///
/// # Panics
///
/// Using a type that is not a table of the store's schema, or a handle of a schema declared
/// differently, is a programming error and panics. A panic in user code that a call runs
/// (a payload's `Default`, an input iterator, a row's `Drop`) leaves the store consistent:
/// see [`transaction`](Self::transaction) and `docs/design.md`, "When user code panics".
pub struct Store {
    pub(crate) schema: Schema,
    pub(crate) tables: Vec<Box<dyn ErasedArena>>,
    pub(crate) relations: Vec<RelationStore>,
    /// Per table: every (relation, end) at which the table sits.
    pub(crate) touching: Vec<Vec<(u32, End)>>,
    /// By table: whether its entities are leaves for deletes: plain rows (no kinds) at the
    /// child end of exactly one one-to-many (from another table), whose rule for a deleted
    /// child is to unlink it. Such an entity is reached by a cascade from its one parent
    /// only, and deleting it affects nothing else.
    pub(crate) leaf: Vec<bool>,
    /// The inverses recorded: with history on, `log[..kept]` are the undo steps and the
    /// rest belongs to the open transaction or call.
    pub(crate) log: Vec<Undo>,
    /// Number of log entries that belong to history steps (0 with history off).
    pub(crate) kept: usize,
    pub(crate) depth: u32,
    /// Whether primitives log their inverse: `depth > 0`, or history or feed on.
    pub(crate) rec: bool,
    /// Undo and redo steps, when switched on.
    pub(crate) history: Option<Box<crate::history::History>>,
    /// The change feed, when switched on.
    pub(crate) feed: Option<Box<crate::feed::Feed>>,
    /// The label of the step being built (see [`Store::step`]).
    pub(crate) label: Option<std::sync::Arc<str>>,
    /// Distinguishes this store from any other built in the process, so that a savepoint
    /// notices when the store it was opened on has been replaced.
    pub(crate) instance: u64,
    /// Values removed outside a transaction, dropped when the call ends.
    pub(crate) graves: Graves,
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Store");
        for (t, def) in self.tables.iter().zip(&self.schema.tables) {
            d.field(def.name, &t.len());
        }
        for (r, def) in self.relations.iter().zip(&self.schema.relations) {
            d.field(def.name.a_end, &r.link_count());
        }
        d.finish()
    }
}

type KeySet = HashSet<RawKey, BuildHasherDefault<PairHasher>>;
/// Entities named by (root table, key).
type PairSet = HashSet<(u32, RawKey), BuildHasherDefault<PairHasher>>;

impl Store {
    /// An empty store with the tables and relations of `schema`.
    #[track_caller]
    pub fn new(schema: Schema) -> Store {
        let tables = schema.tables.iter().map(|t| (t.make)()).collect();
        let relations = schema.relations.iter().map(RelationStore::new).collect();
        Store::from_parts(schema, tables, relations)
    }

    /// A store of `schema` holding the given tables and relations (in schema order).
    pub(crate) fn from_parts(
        schema: Schema,
        tables: Vec<Box<dyn ErasedArena>>,
        relations: Vec<RelationStore>,
    ) -> Store {
        let mut touching = vec![Vec::new(); schema.tables.len()];
        for (i, r) in schema.relations.iter().enumerate() {
            touching[r.a_table as usize].push((i as u32, End::A));
            touching[r.b_table as usize].push((i as u32, End::B));
        }
        let schema_relations = schema.relations.len();
        let leaf = (0..schema.tables.len())
            .map(|t| {
                let def = &schema.tables[t];
                let [(rel, End::B)] = touching[t][..] else {
                    return false;
                };
                let r = &schema.relations[rel as usize];
                def.kinds.is_empty()
                    && def.base.is_none()
                    && r.kind == RelationKind::OneToMany
                    && r.a_table != t as u32
                    && r.rules.rule(End::B) == DeleteRule::Nullify
            })
            .collect();
        Store {
            schema,
            tables,
            relations,
            touching,
            leaf,
            log: Vec::new(),
            kept: 0,
            depth: 0,
            rec: false,
            history: None,
            feed: None,
            label: None,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            graves: Graves::new(schema_relations),
        }
    }

    /// The schema the store was built from.
    #[track_caller]
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    // ----- tables ---------------------------------------------------------------------

    #[inline]
    #[track_caller]
    pub(crate) fn table_of<T: Entity>(&self) -> u32 {
        match self.schema.table_index::<T>() {
            Some(t) => t,
            None => panic!(
                "type {} is not a table of this store: register it with \
                 `schema.table::<{}>(\"NAME\")` (or `schema.kind`) before building the store",
                type_name::<T>(),
                short_type_name::<T>()
            ),
        }
    }

    #[inline]
    #[track_caller]
    fn arena<T: Entity>(&self) -> &Column<T> {
        self.arena_at(self.table_of::<T>())
    }

    #[track_caller]
    fn stale<T: Entity>(&self, key: Key<T>) -> StaleKey {
        StaleKey {
            key: self.any_key(self.table_of::<T>(), key.raw()),
        }
    }

    #[track_caller]
    fn live<T: Entity>(&self, table: u32, key: Key<T>) -> Result<RawKey, StaleKey> {
        if self.arena_at::<T>(table).contains(key.raw()) {
            Ok(key.raw())
        } else {
            Err(StaleKey {
                key: self.any_key(table, key.raw()),
            })
        }
    }

    /// Inserts an entity and returns its key. O(1) amortised.
    ///
    /// # Panics
    ///
    /// If `T` is not a table of the store's schema, or is a polymorphic base without a
    /// [plain kind](Schema::plain_kind) or a kind (rows of those are inserted with
    /// [`insert_kind`](Self::insert_kind)).
    #[track_caller]
    pub fn insert<T: Entity>(&mut self, value: T) -> Key<T> {
        let table = self.table_of::<T>();
        let def = &self.schema.tables[table as usize];
        if !(def.kinds.is_empty() && def.base.is_none()) {
            return self.insert_plain_kind(table, value);
        }
        let key = self.p_insert(table, value);
        self.settle();
        Key::from_raw(key)
    }

    /// Inserts a row of a base of its plain kind, or panics saying how to insert it.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn insert_plain_kind<T: Entity>(&mut self, table: u32, value: T) -> Key<T> {
        match self.schema.table_index::<crate::poly::Plain<T>>() {
            Some(plain) if self.schema.tables[table as usize].base.is_none() => {
                let key = self.p_insert(table, value);
                self.p_insert_at(plain, key, crate::poly::Plain::<T>::default());
                self.settle();
                Key::from_raw(key)
            }
            _ => self.not_plain(table),
        }
    }

    /// The table of `T`, which must be a plain table (not a polymorphic base or kind).
    #[inline]
    #[track_caller]
    fn plain_table_of<T: Entity>(&self) -> u32 {
        let table = self.table_of::<T>();
        let def = &self.schema.tables[table as usize];
        if !(def.kinds.is_empty() && def.base.is_none()) {
            self.not_plain(table);
        }
        table
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn not_plain(&self, table: u32) -> ! {
        let def = &self.schema.tables[table as usize];
        match def.base {
            Some(base) => panic!(
                "every row of `{}` has a kind: insert it with Store::insert_kind(kind, \
                 base_row, row) with its base row, `{}` being a kind of `{}`",
                def.name, def.name, self.schema.tables[base as usize].name
            ),
            None => panic!(
                "every row of `{}` has a kind: insert it with Store::insert_kind, or declare \
                 the base's own kind with `schema.plain_kind({}, \"TAG\")` to insert rows \
                 with the base's fields only",
                def.name, def.name
            ),
        }
    }

    /// The entity under `key`, or `None` if the key is stale. O(1).
    #[inline]
    #[track_caller]
    pub fn get<T: Entity>(&self, key: Key<T>) -> Option<&T> {
        self.arena::<T>().get(key.raw())
    }

    /// Whether `key` names a live entity. O(1).
    #[track_caller]
    pub fn contains<T: Entity>(&self, key: Key<T>) -> bool {
        self.arena::<T>().contains(key.raw())
    }

    /// The key with its table's name, for printing: displays as `users[0v1]` (a `Key`
    /// alone prints as `Key(0v1)`, its table unknown without the store). The key need not
    /// be live. O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// let mut schema = Schema::new();
    /// schema.table::<User>("users");
    /// let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// assert_eq!(store.show(alice).to_string(), "users[0v1]");
    /// assert_eq!(format!("{alice:?}"), "Key(0v1)");
    /// ```
    ///
    /// # Panics
    ///
    /// If `T` is not a table of the store's schema.
    #[track_caller]
    pub fn show<T: Entity>(&self, key: Key<T>) -> AnyKey {
        self.any_key(self.table_of::<T>(), key.raw())
    }

    /// Changes the entity under `key` in place through `f`, and returns what `f` returns.
    /// Inside a transaction the old value is cloned first, so that a rollback can put it
    /// back (that is why `T` must be `Clone`).
    ///
    /// # Errors
    ///
    /// [`StaleKey`] if `key` names no live entity; nothing changes.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic propagates and the row is as `f` left it (its links and
    /// every invariant of the store are untouched); inside a transaction, the
    /// transaction's rollback restores the row.
    ///
    /// [`replace`](Self::replace) changes a row whose type is not `Clone`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let old = store.update(alice, |u| std::mem::replace(&mut u.name, "Alicia".into()))?;
    /// assert_eq!((old.as_str(), store[alice].name.as_str()), ("Alice", "Alicia"));
    /// # Ok::<(), relgraph::StaleKey>(())
    /// ```
    #[track_caller]
    pub fn update<T: Entity + Clone, R>(
        &mut self,
        key: Key<T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, StaleKey> {
        let table = self.table_of::<T>();
        if self.depth == 0 && self.tracking() {
            // one history step: a panic in `f` rolls the row back
            return self
                .atomic(|s| s.p_update(table, key.raw(), f).ok_or(()))
                .map_err(|()| self.stale(key));
        }
        match self.p_update(table, key.raw(), f) {
            Some(r) => Ok(r),
            None => Err(self.stale(key)),
        }
    }

    /// Replaces the entity under `key` with `value`; its links stay. Needs no `Clone`
    /// (inside a transaction the old value is kept for a rollback; outside it is dropped).
    /// O(1) plus one small allocation.
    ///
    /// # Errors
    ///
    /// [`StaleKey`] if `key` names no live entity; `value` is dropped, nothing changes.
    #[track_caller]
    pub fn replace<T: Entity>(&mut self, key: Key<T>, value: T) -> Result<(), StaleKey> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        self.p_replace(table, raw, value);
        self.settle();
        Ok(())
    }

    /// Number of live entities of type `T`. O(1).
    #[track_caller]
    pub fn len<T: Entity>(&self) -> usize {
        self.arena::<T>().len()
    }

    /// Whether there is no entity of type `T`. O(1).
    #[track_caller]
    pub fn is_empty<T: Entity>(&self) -> bool {
        self.len::<T>() == 0
    }

    /// The entities of type `T` with their keys: in slot order, O(slots), for a plain
    /// table or a base; for a kind, in its rows' dense order, O(rows of that kind). Slot
    /// order is not insertion order: an insert reuses the slot of the latest remove.
    #[track_caller]
    pub fn iter<T: Entity>(&self) -> impl Iterator<Item = (Key<T>, &T)> + '_ {
        self.arena::<T>().iter().map(|(k, v)| (Key::from_raw(k), v))
    }

    /// The key of the first entity of type `T` that `pred` accepts, in the order of
    /// [`iter`](Self::iter) (slot order, not insertion order: a slot freed by a remove is
    /// reused), or `None`. A scan: O(slots) at worst.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # let mut schema = Schema::new();
    /// # schema.table::<User>("users");
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// assert_eq!(store.find::<User>(|u| u.name == "Alice"), Some(alice));
    /// assert_eq!(store.find::<User>(|u| u.name == "Bob"), None);
    /// ```
    ///
    /// # Panics
    ///
    /// If `T` is not a table of the store's schema.
    #[track_caller]
    pub fn find<T: Entity>(&self, mut pred: impl FnMut(&T) -> bool) -> Option<Key<T>> {
        self.iter::<T>().find(|(_, v)| pred(v)).map(|(k, _)| k)
    }

    /// The keys of the entities of type `T`, in the order of [`iter`](Self::iter).
    #[track_caller]
    pub fn keys<T: Entity>(&self) -> impl Iterator<Item = Key<T>> + '_ {
        self.arena::<T>().iter().map(|(k, _)| Key::from_raw(k))
    }

    /// A read-only view of the table of `T`: indexing it costs no type lookup, for hot
    /// loops.
    #[track_caller]
    pub fn rows<T: Entity>(&self) -> Rows<'_, T> {
        let arena = self.arena::<T>();
        Rows {
            arena,
            slots: arena.slots().unwrap_or_default(),
        }
    }

    /// Inserts every value of `values`, in order, and returns their keys: the same as
    /// calling [`insert`](Self::insert) for each, with the table looked up and room
    /// reserved once. O(values).
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    #[track_caller]
    pub fn insert_all<T: Entity>(&mut self, values: impl IntoIterator<Item = T>) -> Vec<Key<T>> {
        let values = values.into_iter();
        if self.schema.table_index::<crate::poly::Plain<T>>().is_some() {
            // a base with a plain kind: one row at a time, all or nothing
            let keys = self.atomic(|s| {
                Ok::<_, std::convert::Infallible>(values.map(|v| s.insert(v)).collect())
            });
            let Ok(keys) = keys;
            return keys;
        }
        let table = self.plain_table_of::<T>();
        let hint = values.size_hint().0;
        self.reserve_at::<T>(table, hint);
        let recording = self.recording();
        if recording {
            self.log.reserve(hint);
        }
        let arena = self.tables[table as usize]
            .as_any_mut()
            .downcast_mut::<Column<T>>()
            .expect("table holds its declared type")
            .slots_mut()
            .expect("a plain table has slots");
        // if `values` panics midway, the rows inserted before the panic are taken out
        // again (and their log entries with them), newest first, so that the free slots
        // are as they were: the call changes nothing
        struct Guard<'a, T: Send + Sync + 'static> {
            arena: &'a mut Arena<T>,
            log: &'a mut Vec<Undo>,
            mark: usize,
            keys: Vec<Key<T>>,
        }
        impl<T: Send + Sync + 'static> Drop for Guard<'_, T> {
            fn drop(&mut self) {
                // only reached while unwinding (the keys are taken out on success)
                self.log.truncate(self.mark);
                let removed: Vec<T> = self
                    .keys
                    .iter()
                    .rev()
                    .filter_map(|k| self.arena.remove(k.raw()))
                    .collect();
                // a panicking `Drop` of one of them must not abort the unwinding
                let _ = grave::drop_all(removed);
            }
        }
        let mark = self.log.len();
        let mut guard = Guard {
            arena,
            log: &mut self.log,
            mark,
            keys: Vec::with_capacity(hint),
        };
        for v in values {
            let key = guard.arena.insert(v);
            if recording {
                guard.log.push(Undo::Remove { table, key });
            }
            guard.keys.push(Key::from_raw(key));
        }
        let keys = std::mem::take(&mut guard.keys);
        std::mem::forget(guard);
        self.settle();
        keys
    }

    /// Reserves room for `additional` more entities of type `T`, and for their entries in
    /// the relations that touch `T` (and, for a polymorphic base, in its kinds' slot
    /// indexes), so that a bulk insert does not regrow them. O(additional) memory.
    #[track_caller]
    pub fn reserve<T: Entity>(&mut self, additional: usize) {
        let table = self.table_of::<T>();
        self.reserve_at::<T>(table, additional);
    }

    /// [`reserve`](Self::reserve) of the table at index `table`.
    fn reserve_at<T: Entity>(&mut self, table: u32, additional: usize) {
        self.arena_at_mut::<T>(table).reserve(additional);
        let root = self.root_table(table);
        let slots = self.tables[root as usize].slot_count() + additional;
        if table != root {
            self.tables[table as usize].reserve_slots(slots);
        }
        for &kind in &self.schema.tables[table as usize].kinds {
            self.tables[kind as usize].reserve_slots(slots);
        }
        for &(rel, end) in &self.touching[table as usize] {
            self.relations[rel as usize].reserve_slots(end, slots);
        }
    }

    // ----- relations: common ----------------------------------------------------------

    /// The index of a relation handle of this store's schema.
    #[inline]
    #[track_caller]
    fn rel_index<R: Relation>(&self, rel: R) -> u32 {
        self.schema.relation_index(rel.tag_and_index())
    }

    #[inline]
    #[track_caller]
    fn rel<R: Relation>(&self, rel: R) -> (u32, &RelationDef) {
        let index = self.schema.relation_index(rel.tag_and_index());
        (index, &self.schema.relations[index as usize])
    }

    #[inline]
    fn rel_store(&self, index: u32) -> &RelationStore {
        &self.relations[index as usize]
    }

    fn ends_live<R: Relation>(
        &self,
        index: u32,
        def: &RelationDef,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(RawKey, RawKey), StaleKey> {
        Ok((
            self.live_at(index, End::A, def.a_table, a)?,
            self.live_at(index, End::B, def.b_table, b)?,
        ))
    }

    /// Checks that `key` (at `end` of relation `index`) is alive: first by what the
    /// relation itself stores, which is in cache for the change about to be made, and
    /// only if that proves nothing by its arena.
    #[inline]
    fn live_at<T: Entity>(
        &self,
        index: u32,
        end: End,
        table: u32,
        key: Key<T>,
    ) -> Result<RawKey, StaleKey> {
        if self.relations[index as usize].vouches(end, key.raw()) {
            Ok(key.raw())
        } else {
            self.live(table, key)
        }
    }

    /// Links `a` and `b` in `rel`, updating both ends at once:
    ///
    /// - one-to-many: `b` becomes the last child of `a`, leaving its previous parent;
    /// - one-to-one: the previous partners of `a` and of `b` are unlinked (evicted);
    /// - many-to-many: a new link gets the payload's default; an existing link is kept as it
    ///   is (same position, same payload).
    ///
    /// Linking a pair that is already linked changes nothing. An evicted partner left
    /// without links by a delete-orphan rule is deleted. O(1), plus O(depth) on an acyclic
    /// one-to-many.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::SelfLink`] or
    /// [`LinkError::Cycle`] where the relation forbids the link; [`LinkError::OrphanDelete`] if
    /// an evicted partner would be deleted as an orphan and that delete is refused. Nothing
    /// changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let bob = store.insert(User { name: "Bob".into() });
    /// let guide = store.insert(Post { title: "Guide".into() });
    /// store.link(authorship, alice, guide)?;
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// store.link(authorship, bob, guide)?; // moves the post: it leaves Alice's posts
    /// assert_eq!(store.child_count(authorship, alice), 0);
    /// assert_eq!(store.children(authorship, bob).collect::<Vec<_>>(), [guide]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn link<R: Linkable>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        let out = self.link_inner(rel, a, b);
        self.settle();
        out
    }

    #[inline]
    fn link_inner<R: Linkable>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<R>(index, def, a, b)?;
        if R::KIND == RelationKind::OneToMany && def.plain_links() {
            self.link_plain(index, a, b);
            return Ok(());
        }
        if R::KIND == RelationKind::ManyToMany && !self.has_link_policy(index) {
            // an existing pair is left as it is
            self.p_attach_boxed(index, a, b, rel.default_payload());
            return Ok(());
        }
        if self.rel_store(index).linked(a, b) {
            return Ok(());
        }
        self.check_new_link(index, a, b)?;
        match R::KIND {
            RelationKind::ManyToMany => {
                self.p_attach_boxed(index, a, b, rel.default_payload());
                Ok(())
            }
            _ => self.link_exclusive(index, a, b),
        }
    }

    /// Links `a` and `b` in the one-to-many `index` whose links are
    /// [plain](crate::schema::RelationDef::plain_links): `b` at most leaves its old parent.
    #[inline]
    fn link_plain(&mut self, index: u32, a: RawKey, b: RawKey) {
        let old = match &self.relations[index as usize] {
            RelationStore::OneToMany(r) => r.parent_of(b),
            _ => unreachable!("a one-to-many handle names a one-to-many"),
        };
        match old {
            Some(old) if old == a => {}
            Some(old) => {
                self.p_unlink(index, old, b);
                self.p_attach(index, a, b);
            }
            None => self.p_attach(index, a, b),
        }
    }

    /// Links every pair of `pairs` in `rel`, in order: the same result as calling
    /// [`link`](Self::link) for each, but all or nothing (on an error nothing is linked),
    /// and cheaper in bulk: on a one-to-many whose links need no policy check (not an
    /// acyclic or self-link-free hierarchy, no polymorphic parent end, no delete-orphan
    /// rule) each parent's collection grows once, to its final size.
    ///
    /// O(pairs), plus O(parent slots) for the sizing pass of a one-to-many.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize)] struct Post(u32);
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// let posts = schema.table::<Post>("posts");
    /// let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    /// let mut store = Store::new(schema);
    /// let u = store.insert_all([User, User]);
    /// let p = store.insert_all((0..5).map(Post));
    /// store.link_all(authorship, p.iter().enumerate().map(|(i, &p)| (u[i % 2], p)))?;
    /// assert_eq!(store.child_count(authorship, u[0]), 3);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`link`](Self::link), for the first pair refused; then nothing is linked.
    #[track_caller]
    pub fn link_all<R: Linkable>(
        &mut self,
        rel: R,
        pairs: impl IntoIterator<Item = (Key<R::A>, Key<R::B>)>,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        let (ta, tb) = (def.a_table, def.b_table);
        let plain = R::KIND == RelationKind::OneToMany && def.plain_links();
        let (arena_a, arena_b) = (self.arena_at::<R::A>(ta), self.arena_at::<R::B>(tb));
        let pairs: Vec<(RawKey, RawKey)> = pairs
            .into_iter()
            .map(|(a, b)| {
                let (a, b) = (a.raw(), b.raw());
                if !arena_a.contains(a) {
                    return Err(StaleKey {
                        key: self.any_key(ta, a),
                    });
                }
                if !arena_b.contains(b) {
                    return Err(StaleKey {
                        key: self.any_key(tb, b),
                    });
                }
                Ok((a, b))
            })
            .collect::<Result<_, _>>()?;
        if plain {
            if let RelationStore::OneToMany(r) = &mut self.relations[index as usize] {
                r.reserve_links(&pairs);
            }
            for (a, b) in pairs {
                self.link_plain(index, a, b);
            }
            self.settle();
            return Ok(());
        }
        self.atomic(|s| {
            for (a, b) in pairs {
                s.link(rel, Key::from_raw(a), Key::from_raw(b))?;
            }
            Ok(())
        })
    }

    /// Whether new links of relation `index` must pass [`check_new_link`]: a
    /// self-referential relation that forbids self-links or cycles.
    ///
    /// [`check_new_link`]: Self::check_new_link
    #[inline]
    fn has_link_policy(&self, index: u32) -> bool {
        let def = &self.schema.relations[index as usize];
        def.self_referential() && (def.rules.forbid_self_links || def.rules.acyclic)
    }

    /// Rejects a new link that a policy forbids: self-links, cycles.
    fn check_new_link(&self, index: u32, a: RawKey, b: RawKey) -> Result<(), LinkError> {
        let def = &self.schema.relations[index as usize];
        if !def.self_referential() {
            return Ok(());
        }
        if def.rules.forbid_self_links && a == b {
            return Err(LinkError::SelfLink {
                relation: def.name,
                key: a,
            });
        }
        if def.rules.acyclic && self.reaches(index, b, a) {
            return Err(LinkError::Cycle {
                relation: def.name,
                a,
                b,
            });
        }
        Ok(())
    }

    /// Whether `to` can be reached from `from` following A -> B links (`from` reaches
    /// itself). On a one-to-many or one-to-one this walks up from `to`: O(depth).
    fn reaches(&self, index: u32, from: RawKey, to: RawKey) -> bool {
        match self.rel_store(index) {
            RelationStore::OneToMany(r) => {
                let mut at = Some(to);
                while let Some(k) = at {
                    if k == from {
                        return true;
                    }
                    at = r.parent_of(k);
                }
                false
            }
            RelationStore::OneToOne(r) => {
                let mut at = Some(to);
                while let Some(k) = at {
                    if k == from {
                        return true;
                    }
                    at = r.partner(End::B, k);
                }
                false
            }
            RelationStore::ManyToMany(r) => {
                let mut seen = KeySet::default();
                let mut stack = vec![from];
                while let Some(k) = stack.pop() {
                    if k == to {
                        return true;
                    }
                    if seen.insert(k) {
                        stack.extend(r.entries(End::A, k).map(|(p, _)| p));
                    }
                }
                false
            }
        }
    }

    /// Links `a` and `b` in a one-to-many or one-to-one, unlinking what exclusivity
    /// requires first, and deleting whatever that orphans under a delete-orphan rule.
    fn link_exclusive(&mut self, index: u32, a: RawKey, b: RawKey) -> Result<(), LinkError> {
        // the previous parent (or partner) of `b`, in this relation or (for a polymorphic
        // parent end) in another relation of the group; and `a`'s previous partner
        let (old_a, old_b) = match self.rel_store(index) {
            RelationStore::OneToMany(r) => (r.parent_of(b), None),
            RelationStore::OneToOne(r) => (r.partner(End::B, b), r.partner(End::A, a)),
            RelationStore::ManyToMany(_) => unreachable!("many-to-many links are not exclusive"),
        };
        let old_a = match old_a {
            Some(old) => Some((index, old)),
            None => self.parent_elsewhere(index, b),
        };
        let mut lost = [(index, End::A, a); 2];
        let mut n = 0;
        if let Some((rel, old)) = old_a {
            lost[n] = (rel, End::A, old);
            n += 1;
        }
        if let Some(old) = old_b {
            lost[n] = (index, End::B, old);
            n += 1;
        }
        self.change_with_orphans(index, &lost[..n], &[(End::A, a), (End::B, b)], |s| {
            if let Some((rel, old)) = old_a {
                s.p_unlink(rel, old, b);
            }
            if let Some(old) = old_b {
                s.p_unlink(index, a, old);
            }
            s.p_attach(index, a, b);
        })
    }

    /// The parent of `child` in another one-to-many of the polymorphic parent end that
    /// relation `index` belongs to. O(relations in the group).
    fn parent_elsewhere(&self, index: u32, child: RawKey) -> Option<(u32, RawKey)> {
        let group = self.schema.relations[index as usize].group?;
        self.schema.groups[group as usize]
            .members
            .iter()
            .filter(|&&m| m != index)
            .find_map(|&m| match self.rel_store(m) {
                RelationStore::OneToMany(r) => r.parent_of(child).map(|p| (m, p)),
                _ => None,
            })
    }

    /// Runs `change` (primitives on relation `index`), then deletes the entities of
    /// `lost` (each at its end) that the change left without links where the other end's
    /// rule is delete-orphan. If such a delete is refused, or would delete one of `keep`
    /// (the endpoints of the links the change makes or keeps), everything is rolled back.
    fn change_with_orphans(
        &mut self,
        index: u32,
        lost: &[(u32, End, RawKey)],
        keep: &[(End, RawKey)],
        change: impl FnOnce(&mut Store),
    ) -> Result<(), LinkError> {
        let orphan_rule = |s: &Store, rel: u32, end: End| {
            s.schema.relations[rel as usize].rules.rule(end.other()) == DeleteRule::DeleteOrphan
        };
        if !lost
            .iter()
            .any(|&(rel, end, _)| orphan_rule(self, rel, end))
        {
            change(self);
            self.settle();
            return Ok(());
        }
        self.atomic(|s| {
            change(s);
            let mut roots = Vec::new();
            let mut seen = PairSet::default();
            for &(rel, end, key) in lost {
                let table = s.schema.relations[rel as usize].table(end);
                let orphan = orphan_rule(s, rel, end)
                    && s.tables[table as usize].contains(key)
                    && s.rel_store(rel).partner_count(end, key) == 0;
                let root = (s.root_table(table), key);
                if orphan && seen.insert(root) {
                    roots.push(root);
                }
            }
            let plan = s.plan_remove(&roots);
            if let Some(e) = s.first_blocker(&plan) {
                return Err(LinkError::OrphanDelete(e));
            }
            if !plan.order.is_empty() && !keep.is_empty() {
                let def = &s.schema.relations[index as usize];
                let planned: PairSet = plan.order.iter().copied().collect();
                let hit = keep
                    .iter()
                    .map(|&(end, key)| (s.root_table(def.table(end)), key))
                    .find(|k| planned.contains(k));
                if let Some((table, key)) = hit {
                    let key = s.entity_name(table, key);
                    return Err(LinkError::DeletesEndpoint {
                        relation: def.name,
                        key,
                    });
                }
            }
            s.apply_plan(&plan);
            Ok(())
        })
    }

    /// Unlinks `a` and `b` in `rel`; `Ok(false)` if they were not linked. Under a
    /// delete-orphan rule, the end left without links is deleted (with its cascades); if
    /// that delete is refused, nothing changes. O(1) (amortised: a collection may be
    /// compacted).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::OrphanDelete`] if
    /// the orphan it leaves would be deleted and that delete is refused. Nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// assert!(store.unlink(authorship, alice, guide)?);
    /// assert_eq!(store.parent(authorship, guide), None);
    /// assert!(!store.unlink(authorship, alice, guide)?, "no longer linked");
    /// assert!(store.contains(guide), "unlinking deletes nothing without delete-orphan");
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn unlink<R: Relation>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<bool, LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<R>(index, def, a, b)?;
        let orphaning =
            [def.rules.on_delete_a, def.rules.on_delete_b].contains(&DeleteRule::DeleteOrphan);
        if !orphaning {
            let unlinked = self.p_unlink(index, a, b);
            self.settle();
            return Ok(unlinked);
        }
        if !self.rel_store(index).linked(a, b) {
            return Ok(false);
        }
        let lost = [(index, End::A, a), (index, End::B, b)];
        self.change_with_orphans(index, &lost, &[], |s| {
            s.p_unlink(index, a, b);
        })?;
        Ok(true)
    }

    /// Whether `a` and `b` are linked in `rel`. O(1).
    #[track_caller]
    pub fn linked<R: Relation>(&self, rel: R, a: Key<R::A>, b: Key<R::B>) -> bool {
        let index = self.rel_index(rel);
        self.rel_store(index).linked(a.raw(), b.raw())
    }

    /// The second-end entities linked to `a`, in link order: the children of a
    /// one-to-many, the partner of a one-to-one, the targets of a many-to-many.
    /// O(1) per step.
    #[track_caller]
    pub fn targets<R: Relation>(&self, rel: R, a: Key<R::A>) -> Linked<'_, R::B> {
        let index = self.rel_index(rel);
        Linked::new(self, self.rel_store(index), End::A, a.raw())
    }

    /// The first-end entities linked to `b`, in link order: the parent of a one-to-many
    /// child, the partner of a one-to-one, the sources of a many-to-many. O(1) per step.
    #[track_caller]
    pub fn sources<R: Relation>(&self, rel: R, b: Key<R::B>) -> Linked<'_, R::A> {
        let index = self.rel_index(rel);
        Linked::new(self, self.rel_store(index), End::B, b.raw())
    }

    /// Number of second-end entities linked to `a`. O(1).
    #[track_caller]
    pub fn target_count<R: Relation>(&self, rel: R, a: Key<R::A>) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).partner_count(End::A, a.raw())
    }

    /// Number of first-end entities linked to `b`. O(1).
    #[track_caller]
    pub fn source_count<R: Relation>(&self, rel: R, b: Key<R::B>) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).partner_count(End::B, b.raw())
    }

    /// Number of links in `rel`. O(1).
    #[track_caller]
    pub fn link_count<R: Relation>(&self, rel: R) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).link_count()
    }

    // ----- one-to-many ----------------------------------------------------------------

    #[inline]
    #[track_caller]
    fn otm<P, C>(&self, rel: OneToMany<P, C>) -> &OneToManyStore
    where
        P: Entity,
        C: Entity,
    {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::OneToMany(r) => r,
            _ => unreachable!("a OneToMany handle names a one-to-many"),
        }
    }

    /// The parent of `child`, if it has one. O(1).
    ///
    /// `None` also for a stale key. [`parent_row`](Self::parent_row) reads the parent's row.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// let draft = store.insert(Post { title: "Draft".into() });
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// assert_eq!(store.parent_row(authorship, guide).map(|u| u.name.as_str()), Some("Alice"));
    /// assert_eq!(store.parent(authorship, draft), None);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn parent<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        child: Key<C>,
    ) -> Option<Key<P>> {
        self.otm(rel).parent_of(child.raw()).map(Key::from_raw)
    }

    /// The parent's row of `child`, if it has a parent: `employee.manager` is
    /// `store.parent_row(reports, employee)`. O(1).
    #[track_caller]
    pub fn parent_row<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        child: Key<C>,
    ) -> Option<&P> {
        self.parent(rel, child).and_then(|p| self.get(p))
    }

    /// Inserts `value` as the last child of `parent`, in one step: the row and its link
    /// both, or neither (`Post { author: user, .. }` in an ORM). O(1) amortised.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `parent` is stale; nothing is inserted.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize)] struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User);
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn insert_child<P: Entity, C: Entity>(
        &mut self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
        value: C,
    ) -> Result<Key<C>, LinkError> {
        let (index, def) = self.rel(rel);
        self.live_at(index, End::A, def.a_table, parent)?;
        self.atomic(|s| {
            let child = s.insert(value);
            s.link(rel, parent, child)?;
            Ok(child)
        })
    }

    /// Inserts `value` and links it as the last target of `a` with `payload`, in one
    /// step: the row and its link both, or neither. O(1) amortised.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `a` is stale; nothing is inserted.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    #[track_caller]
    pub fn insert_target_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        value: B,
        payload: W,
    ) -> Result<Key<B>, LinkError> {
        let (index, def) = self.rel(rel);
        self.live_at(index, End::A, def.a_table, a)?;
        self.atomic(|s| {
            let b = s.insert(value);
            s.link_with(rel, a, b, payload)?;
            Ok(b)
        })
    }

    /// The children of `parent`, in link order. O(1) per step.
    ///
    /// Empty for a stale key. The iterator yields keys; its `rows()` yields the rows.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// for title in ["Guide", "ORM"] {
    ///     store.insert_child(authorship, alice, Post { title: title.into() })?;
    /// }
    /// let titles: Vec<&str> =
    ///     store.children(authorship, alice).rows().map(|p| p.title.as_str()).collect();
    /// assert_eq!(titles, ["Guide", "ORM"]);
    /// assert_eq!(store.children(authorship, alice).len(), 2);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn children<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
    ) -> Children<'_, C> {
        Children {
            inner: self.otm(rel).children_of(parent.raw()),
            store: self,
            _type: PhantomData,
        }
    }

    /// Number of children of `parent`. O(1).
    #[track_caller]
    pub fn child_count<P: Entity, C: Entity>(&self, rel: OneToMany<P, C>, parent: Key<P>) -> usize {
        self.otm(rel).child_count(parent.raw())
    }

    /// Replaces the children of `parent` with `children`, in that order. Only the
    /// difference is unlinked and linked: children kept keep their link, new ones leave
    /// their previous parent, dropped ones lose their parent (and are deleted under a
    /// delete-orphan rule). A permutation of the current children just reorders them.
    /// All or nothing. O(old + new children), plus O(depth) per new child on an acyclic
    /// relation.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `parent` or a child names no live entity;
    /// [`LinkError::Duplicate`] if `children` names an entity twice; [`LinkError::Cycle`] or
    /// [`LinkError::SelfLink`] where the relation forbids a link; [`LinkError::OrphanDelete`] or
    /// [`LinkError::DeletesEndpoint`] if a dropped child's delete is refused or would delete an
    /// entity the change links. Nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let [a, b, c] = ["a", "b", "c"].map(|t| store.insert(Post { title: t.into() }));
    /// store.set_children(authorship, alice, &[a, b])?;
    /// store.set_children(authorship, alice, &[c, a])?; // b loses its parent; c is linked
    /// assert_eq!(store.children(authorship, alice).collect::<Vec<_>>(), [c, a]);
    /// assert_eq!(store.parent(authorship, b), None);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn set_children<P: Entity, C: Entity>(
        &mut self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
        children: &[Key<C>],
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let NewCollection {
            owner: p,
            order,
            dropped,
        } = self.new_collection(index, parent, children)?;
        let otm = self.otm(rel);
        // each new child with its previous parent, in this relation or elsewhere in its
        // polymorphic parent end
        let added: Vec<(RawKey, Option<(u32, RawKey)>)> = order
            .iter()
            .filter(|&&c| otm.parent_of(c) != Some(p))
            .map(|&c| {
                let old = otm.parent_of(c).map(|o| (index, o));
                (c, old.or_else(|| self.parent_elsewhere(index, c)))
            })
            .collect();
        for &(c, _) in &added {
            self.check_new_link(index, p, c)?;
        }
        let mut lost: Vec<(u32, End, RawKey)> =
            dropped.iter().map(|&c| (index, End::B, c)).collect();
        lost.extend(
            added
                .iter()
                .filter_map(|&(_, old)| old.map(|(r, o)| (r, End::A, o))),
        );
        if !dropped.is_empty() {
            lost.push((index, End::A, p));
        }
        let keep = endpoints(p, &order);
        self.change_with_orphans(index, &lost, &keep, |s| {
            for &c in &dropped {
                s.p_unlink(index, p, c);
            }
            for &(c, old) in &added {
                if let Some((r, old)) = old {
                    s.p_unlink(r, old, c);
                }
                s.p_attach(index, p, c);
            }
            let now: Vec<RawKey> = s.otm(rel).children_of(p).collect();
            if now != order {
                s.p_reorder(index, End::A, p, &order);
            }
        })
    }

    /// Validates the input of `set_children` / `set_targets`: the owner and every member
    /// alive, no member twice. Returns them with the current members the new collection
    /// drops.
    fn new_collection<A: Entity, B: Entity>(
        &self,
        index: u32,
        owner: Key<A>,
        members: &[Key<B>],
    ) -> Result<NewCollection, LinkError> {
        let def = &self.schema.relations[index as usize];
        let owner = self.live_at(index, End::A, def.a_table, owner)?;
        let mut wanted = KeySet::default();
        let mut order = Vec::with_capacity(members.len());
        for &m in members {
            let m = self.live_at(index, End::B, def.b_table, m)?;
            if !wanted.insert(m) {
                return Err(LinkError::Duplicate {
                    relation: def.name,
                    key: m,
                });
            }
            order.push(m);
        }
        let mut dropped = Vec::new();
        self.rel_store(index).for_each_partner(End::A, owner, |m| {
            if !wanted.contains(&m) {
                dropped.push(m);
            }
        });
        Ok(NewCollection {
            owner,
            order,
            dropped,
        })
    }

    // ----- one-to-one -----------------------------------------------------------------

    /// The partner of `a` (the first-end entity) in a one-to-one. O(1).
    #[track_caller]
    pub fn partner<A: Entity, B: Entity>(&self, rel: OneToOne<A, B>, a: Key<A>) -> Option<Key<B>> {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::OneToOne(r) => r.partner(End::A, a.raw()).map(Key::from_raw),
            _ => unreachable!("a OneToOne handle names a one-to-one"),
        }
    }

    /// The partner of `b` (the second-end entity) in a one-to-one. O(1).
    #[track_caller]
    pub fn partner_of<A: Entity, B: Entity>(
        &self,
        rel: OneToOne<A, B>,
        b: Key<B>,
    ) -> Option<Key<A>> {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::OneToOne(r) => r.partner(End::B, b.raw()).map(Key::from_raw),
            _ => unreachable!("a OneToOne handle names a one-to-one"),
        }
    }

    // ----- many-to-many ---------------------------------------------------------------

    #[track_caller]
    fn m2m<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
    ) -> &crate::relation::ManyToManyStore {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::ManyToMany(r) => r,
            _ => unreachable!("a ManyToMany handle names a many-to-many"),
        }
    }

    /// Links `a` and `b` with `payload`. If they are already linked, the link keeps its
    /// position in both collections and its payload is replaced. O(1).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::SelfLink`] or
    /// [`LinkError::Cycle`] where the relation forbids the link. Nothing changes, and `payload`
    /// is dropped.
    #[track_caller]
    pub fn link_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        payload: W,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<ManyToMany<A, B, W>>(index, def, a, b)?;
        if self.has_link_policy(index) && !self.rel_store(index).linked(a, b) {
            self.check_new_link(index, a, b)?;
        }
        // links a new pair, or replaces the payload of an existing one
        self.p_attach_with(index, a, b, payload);
        self.settle();
        Ok(())
    }

    /// Links every `(a, b, payload)` of `links` in `rel`, in order: the same result as
    /// calling [`link_with`](Self::link_with) for each (a pair given twice keeps its first
    /// position and takes the last payload), but all or nothing: a stale key anywhere (or
    /// a panicking input) takes back the links made before it, newest first, and puts back
    /// the payloads replaced, leaving the relation as it was. O(links), in one pass that
    /// holds nothing but the replaced payloads; the link and payload vectors are sized from
    /// the input's size hint. On the W5 workload (2M graded links) it is as fast as
    /// `reserve` and a loop of `link_with` (`cargo run --release --example ratios -- 7 W5`).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] for the first stale key, and on a self-referential relation
    /// that forbids self-links or cycles the first link it refuses; nothing is linked.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Rules, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Student;
    /// # #[derive(Serialize, Deserialize)] struct Course;
    /// let mut schema = Schema::new();
    /// let students = schema.table::<Student>("students");
    /// let courses = schema.table::<Course>("courses");
    /// let grades = schema.many_to_many_with::<_, _, u8>(students, "courses", courses, "students", Rules::new());
    /// let mut store = Store::new(schema);
    /// let s = store.insert_all([Student, Student]);
    /// let c = store.insert(Course);
    /// store.link_all_with(grades, [(s[0], c, 90), (s[1], c, 75)])?;
    /// assert_eq!(store.payload(grades, s[1], c), Some(&75));
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn link_all_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        links: impl IntoIterator<Item = (Key<A>, Key<B>, W)>,
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let links = links.into_iter();
        if self.recording() || self.has_link_policy(index) {
            // inside a transaction every link is logged anyway; a policy checks each link
            return self.atomic(|s| {
                for (a, b, w) in links {
                    s.link_with(rel, a, b, w)?;
                }
                Ok(())
            });
        }
        // one pass: links are appended as they come; on a stale key (or a panicking
        // input) the appended links are popped again, newest first, and the payloads this
        // call replaced are put back, which leaves the relation as it was
        struct Undo<'a, W: Entity> {
            store: &'a mut Store,
            index: u32,
            start: usize,
            replaced: Vec<(usize, W)>,
            armed: bool,
        }
        impl<W: Entity> Undo<'_, W> {
            fn undo(&mut self) {
                let RelationStore::ManyToMany(r) = &mut self.store.relations[self.index as usize]
                else {
                    unreachable!("a ManyToMany handle names a many-to-many")
                };
                let grave = self
                    .store
                    .graves
                    .payloads(self.index, r.payloads.needs_drop());
                // payloads first: a pair given twice replaced the payload of a link this
                // call appended, which the pops then take away
                for (i, old) in self.replaced.drain(..).rev() {
                    let new = std::mem::replace(&mut crate::path::payloads_mut::<W>(r)[i], old);
                    crate::grave::defer(grave, new);
                }
                while r.link_count() > self.start {
                    r.pop_link(grave);
                }
            }
        }
        impl<W: Entity> Drop for Undo<'_, W> {
            fn drop(&mut self) {
                if self.armed {
                    // unwinding already: a panic of a `Drop` here is dropped
                    self.undo();
                    let _ = self.store.graves.bury(&mut self.store.tables);
                }
            }
        }
        let (ta, tb) = {
            let def = &self.schema.relations[index as usize];
            (def.a_table, def.b_table)
        };
        if let RelationStore::ManyToMany(r) = &mut self.relations[index as usize] {
            r.reserve(links.size_hint().0);
        }
        let start = self.relations[index as usize].link_count();
        let mut undo = Undo::<W> {
            store: self,
            index,
            start,
            replaced: Vec::new(),
            armed: true,
        };
        for (a, b, w) in links {
            let s = &mut *undo.store;
            let (a, b) = (a.raw(), b.raw());
            let stale = if !s.relations[index as usize].vouches(End::A, a)
                && !s.arena_at::<A>(ta).contains(a)
            {
                Some(s.any_key(ta, a))
            } else if !s.relations[index as usize].vouches(End::B, b)
                && !s.arena_at::<B>(tb).contains(b)
            {
                Some(s.any_key(tb, b))
            } else {
                None
            };
            if let Some(key) = stale {
                undo.undo();
                undo.armed = false;
                undo.store.settle();
                return Err(LinkError::Stale(StaleKey { key }));
            }
            let RelationStore::ManyToMany(r) = &mut s.relations[index as usize] else {
                unreachable!("a ManyToMany handle names a many-to-many")
            };
            match r.attach(a, b) {
                Ok(_) => crate::path::payloads_mut::<W>(r).push(w),
                Err(i) => {
                    let old = std::mem::replace(&mut crate::path::payloads_mut::<W>(r)[i], w);
                    undo.replaced.push((i, old));
                }
            }
        }
        undo.armed = false;
        let replaced = std::mem::take(&mut undo.replaced);
        let store = &mut *undo.store;
        // the payloads replaced go when the call ends, after every link is made
        let RelationStore::ManyToMany(r) = &store.relations[index as usize] else {
            unreachable!("a ManyToMany handle names a many-to-many")
        };
        let drops = r.payloads.needs_drop();
        let grave = store.graves.payloads(index, drops);
        for (_, old) in replaced {
            crate::grave::defer(grave, old);
        }
        store.settle();
        Ok(())
    }

    /// The payload of the link between `a` and `b`, if they are linked. O(1).
    #[track_caller]
    pub fn payload<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
    ) -> Option<&W> {
        let r = self.m2m(rel);
        r.link_index(a.raw(), b.raw()).map(|i| &payloads::<W>(r)[i])
    }

    /// Changes the payload of the link between `a` and `b` in place. Inside a transaction
    /// the old payload is cloned first. Returns `Ok(None)` if they are not linked.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if a key is stale; nothing changes.
    ///
    /// # Panics
    ///
    /// As [`update`](Self::update): a panic in `f` leaves the payload as `f` left it.
    #[track_caller]
    pub fn update_payload<A: Entity, B: Entity, W: Entity + Clone, R>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        f: impl FnOnce(&mut W) -> R,
    ) -> Result<Option<R>, LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<ManyToMany<A, B, W>>(index, def, a, b)?;
        if self.depth == 0 && self.tracking() {
            // one history step: a panic in `f` rolls the payload back
            return self.atomic(|s| Ok(s.p_update_payload(index, a, b, f)));
        }
        Ok(self.p_update_payload(index, a, b, f))
    }

    /// The targets of `a` with the payload of each link, in link order. O(1) per step.
    ///
    /// Empty for a stale key; `rows()` yields each target's row with the payload.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{ManyToMany, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Student { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Course { name: String }
    /// let mut schema = Schema::new();
    /// let students = schema.table::<Student>("students");
    /// let courses = schema.table::<Course>("courses");
    /// let grades: ManyToMany<Student, Course, u8> =
    ///     schema.relate_with(students.many("courses"), courses.many("students"));
    /// let mut store = Store::new(schema);
    /// let john = store.insert(Student { name: "John".into() });
    /// for (name, grade) in [("Python", 90), ("Databases", 85)] {
    ///     store.insert_target_with(grades, john, Course { name: name.into() }, grade)?;
    /// }
    /// let report: Vec<(&str, u8)> =
    ///     store.targets_with(grades, john).rows().map(|(c, &g)| (c.name.as_str(), g)).collect();
    /// assert_eq!(report, [("Python", 90), ("Databases", 85)]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn targets_with<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
    ) -> WithPayload<'_, B, W> {
        let r = self.m2m(rel);
        WithPayload {
            entries: r.entries(End::A, a.raw()),
            payloads: payloads::<W>(r),
            store: self,
            _type: PhantomData,
        }
    }

    /// The sources of `b` with the payload of each link, in link order. O(1) per step.
    #[track_caller]
    pub fn sources_with<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        b: Key<B>,
    ) -> WithPayload<'_, A, W> {
        let r = self.m2m(rel);
        WithPayload {
            entries: r.entries(End::B, b.raw()),
            payloads: payloads::<W>(r),
            store: self,
            _type: PhantomData,
        }
    }

    /// Replaces the targets of `a` with `targets`, in that order. Only the difference is
    /// unlinked and linked: kept links keep their payload, new links get the default
    /// payload, dropped targets are unlinked (and deleted under a delete-orphan rule).
    /// All or nothing. O(old + new targets).
    ///
    /// # Errors
    ///
    /// As [`set_children`](Self::set_children): a stale key, a target named twice, a refused
    /// link, or a dropped target's refused delete. Nothing changes.
    #[track_caller]
    pub fn set_targets<A: Entity, B: Entity, W: Entity + Default>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        targets: &[Key<B>],
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let NewCollection {
            owner: a,
            order,
            dropped,
        } = self.new_collection(index, a, targets)?;
        let r = self.m2m(rel);
        let added: Vec<RawKey> = order
            .iter()
            .copied()
            .filter(|&b| r.link_index(a, b).is_none())
            .collect();
        for &b in &added {
            self.check_new_link(index, a, b)?;
        }
        let mut lost: Vec<(u32, End, RawKey)> =
            dropped.iter().map(|&b| (index, End::B, b)).collect();
        if !dropped.is_empty() {
            lost.push((index, End::A, a));
        }
        let keep = endpoints(a, &order);
        // user code runs before anything changes: a panicking `default` changes nothing
        let payloads: Vec<W> = added.iter().map(|_| W::default()).collect();
        self.change_with_orphans(index, &lost, &keep, |s| {
            for &b in &dropped {
                s.p_unlink(index, a, b);
            }
            for (&b, w) in added.iter().zip(payloads) {
                s.p_attach_with(index, a, b, w);
            }
            let r = s.m2m(rel);
            let now: Vec<RawKey> = r.entries(End::A, a).map(|(b, _)| b).collect();
            if now != order {
                s.p_reorder(index, End::A, a, &order);
            }
        })
    }

    /// Reserves room for `additional` more links in a many-to-many.
    #[track_caller]
    pub fn reserve_links<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        additional: usize,
    ) {
        let index = self.rel_index(rel);
        if let RelationStore::ManyToMany(r) = &mut self.relations[index as usize] {
            r.reserve(additional);
        }
    }

    // ----- deletes --------------------------------------------------------------------

    /// Deletes the entity under `key`, applying the delete rule of every relation that
    /// touches it (cascades through any depth), and unlinking every link of every deleted
    /// entity. All or nothing: a restrict rule that refuses, or a stale key, changes
    /// nothing. O(deleted entities + their links).
    ///
    /// # Errors
    ///
    /// [`RemoveError::Stale`] if `key` names no live entity, [`RemoveError::Restricted`]
    /// if a restrict rule refuses (naming the relation and the entity that blocks);
    /// nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship =
    /// #     schema.relate(users.many("posts").on_delete(DeleteRule::Cascade), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// store.remove(alice)?; // deleting a user deletes its posts (cascade)
    /// assert!(!store.contains(guide));
    /// assert!(store.remove(alice).is_err(), "a key is stale once its entity is removed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn remove<T: Entity>(&mut self, key: Key<T>) -> Result<(), RemoveError> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        let plan = self.plan_remove(&[(table, raw)]);
        if let Some(e) = self.first_blocker(&plan) {
            return Err(e);
        }
        self.apply_plan(&plan);
        self.settle();
        Ok(())
    }

    /// What [`remove`](Self::remove) would delete and unlink, or what blocks it, without
    /// changing anything.
    ///
    /// # Errors
    ///
    /// [`StaleKey`] if `key` names no live entity. A delete that a restrict rule would
    /// refuse is not an error here: the preview lists its blockers.
    #[track_caller]
    pub fn preview_remove<T: Entity>(&self, key: Key<T>) -> Result<DeletePreview, StaleKey> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        Ok(self.describe_plan(&self.plan_remove(&[(table, raw)])))
    }

    // ----- transactions ---------------------------------------------------------------

    /// Runs `f` as one all-or-nothing unit: if it returns `Err` (or panics), every change
    /// it made is undone, restoring every entity, key, link, payload and order exactly.
    /// Transactions nest: an inner one that fails undoes only its own changes.
    ///
    /// Inside a transaction every change records its inverse (a removed entity is kept
    /// boxed, an update clones the old value), and to-many collections are not compacted
    /// until it ends.
    ///
    /// # Panics
    ///
    /// A panic in `f` rolls the transaction back (every change undone, the transaction
    /// closed) and then propagates. Values the transaction removed are dropped when the
    /// outermost transaction commits (or, for values it inserted, when it rolls back),
    /// after the store is complete again: if such a `Drop` panics, every other value is
    /// still dropped, exactly once, the commit or rollback has taken effect, and the first
    /// panic then propagates out of `transaction`.
    ///
    /// If `f` replaces `*store` with another store (`*s = Store::load(..)?`, to go back to
    /// the last save), the transaction ends with the store it was opened on: the new store
    /// is kept as `f` leaves it, whether `f` returns `Ok` or `Err`, and is not in a
    /// transaction. A store that `f` moves out of `*store` (`std::mem::swap`) stays in the
    /// transaction for good: do not move a store out of a transaction.
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # let mut schema = Schema::new();
    /// # let _ = schema.table::<String>("names");
    /// # let mut store = Store::new(schema);
    /// let kept = store.insert("kept".to_string());
    /// let r: Result<(), &str> = store.transaction(|s| {
    ///     s.insert("gone".to_string());
    ///     s.remove(kept).unwrap();
    ///     Err("changed my mind")
    /// });
    /// assert!(r.is_err());
    /// assert_eq!(store.len::<String>(), 1);
    /// assert!(store.contains(kept));
    /// ```
    ///
    /// # Errors
    ///
    /// The `Err` that `f` returns, after every change it made is undone.
    #[track_caller]
    pub fn transaction<R, E>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, E>,
    ) -> Result<R, E> {
        self.atomic(f)
    }

    /// Whether a transaction is open.
    #[track_caller]
    pub fn in_transaction(&self) -> bool {
        self.depth > 0
    }

    // ----- integrity ------------------------------------------------------------------

    /// Verifies every invariant of the whole store and reports the first violation: each
    /// table's free slots listed exactly once (no key can be issued twice), every link's
    /// endpoints alive, both sides of every relation in agreement, stored counts
    /// true, cardinalities held, no self-link where forbidden, no cycle where declared
    /// acyclic. O(entities + links).
    ///
    /// # Errors
    ///
    /// The first violation found, as an [`IntegrityError`] naming the table, relation and key.
    /// A store changed only through this API never reports one.
    #[track_caller]
    pub fn check_integrity(&self) -> Result<(), IntegrityError> {
        for (def, arena) in self.schema.tables.iter().zip(&self.tables) {
            arena
                .check_free_list()
                .map_err(|detail| IntegrityError::FreeList {
                    table: def.name,
                    detail,
                })?;
            let keys = arena.keys().len();
            if keys != arena.len() {
                return Err(IntegrityError::CountMismatch {
                    what: format!("table {}", def.name),
                    stored: arena.len(),
                    actual: keys,
                });
            }
        }
        self.check_kinds()?;
        for (def, store) in self.schema.relations.iter().zip(&self.relations) {
            let alive = |end: End, k: RawKey| self.tables[def.table(end) as usize].contains(k);
            store.check(def, &alive)?;
        }
        self.check_poly_parents()
    }

    /// Every row of a base has exactly one kind; every kind row has its base row.
    fn check_kinds(&self) -> Result<(), IntegrityError> {
        for (t, def) in self.schema.tables.iter().enumerate() {
            if let Some(base) = def.base {
                for key in self.tables[t].keys() {
                    if !self.tables[base as usize].contains(key) {
                        return Err(IntegrityError::Kind {
                            table: def.name,
                            key,
                            detail: "kind row without a base row",
                        });
                    }
                }
            }
            if def.kinds.is_empty() {
                continue;
            }
            for key in self.tables[t].keys() {
                let kinds = def
                    .kinds
                    .iter()
                    .filter(|&&k| self.tables[k as usize].contains(key))
                    .count();
                if kinds != 1 {
                    return Err(IntegrityError::Kind {
                        table: def.name,
                        key,
                        detail: if kinds == 0 {
                            "row without a kind"
                        } else {
                            "row of two kinds"
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// A child has a parent in at most one relation of a polymorphic parent end.
    fn check_poly_parents(&self) -> Result<(), IntegrityError> {
        for group in &self.schema.groups {
            let mut seen = KeySet::default();
            for &m in &group.members {
                let RelationStore::OneToMany(r) = self.rel_store(m) else {
                    continue;
                };
                for child in r.linked_children() {
                    if !seen.insert(child) {
                        return Err(IntegrityError::TwoParents {
                            table: self.schema.tables[group.child_table as usize].name,
                            end: group.end,
                            key: child,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// A validated replacement collection: its owner, its members in order, and the current
/// members it drops.
struct NewCollection {
    owner: RawKey,
    order: Vec<RawKey>,
    dropped: Vec<RawKey>,
}

/// The endpoints of the links a replaced collection will hold: the owner (if it keeps any
/// link) and every member.
fn endpoints(owner: RawKey, members: &[RawKey]) -> Vec<(End, RawKey)> {
    if members.is_empty() {
        return Vec::new();
    }
    let mut v = vec![(End::A, owner)];
    v.extend(members.iter().map(|&m| (End::B, m)));
    v
}

impl<T: Entity> Index<Key<T>> for Store {
    type Output = T;

    /// # Panics
    ///
    /// If the key is stale; use [`Store::get`] to get an `Option`.
    #[track_caller]
    fn index(&self, key: Key<T>) -> &T {
        match self.get(key) {
            Some(v) => v,
            None => panic!(
                "{}: the entity was removed (use `Store::get` for an Option)",
                self.stale(key)
            ),
        }
    }
}

/// A read-only view of one table, from [`Store::rows`]. Indexing costs no type lookup.
pub struct Rows<'a, T> {
    arena: &'a Column<T>,
    /// The slots of a plain table or base (none for a kind), held apart so that a lookup
    /// in a hot loop reads them from registers rather than through `arena`.
    slots: Slots<'a, T>,
}

impl<T> Clone for Rows<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Rows<'_, T> {}

impl<'a, T> Rows<'a, T> {
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

/// The last segment of a type's path (`Post` for `my_game::model::Post`).
fn short_type_name<T>() -> &'static str {
    let full = type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    &full[base.rfind("::").map_or(0, |i| i + 2)..]
}

/// The children of a parent in a one-to-many, in link order, from [`Store::children`]:
/// their keys, or with [`rows`](Self::rows) the rows themselves.
pub struct Children<'a, C> {
    inner: Iter<'a, RawKey>,
    store: &'a Store,
    _type: PhantomData<fn() -> C>,
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
    inner: LinkedInner<'a>,
    store: &'a Store,
    _type: PhantomData<fn() -> T>,
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
enum LinkedInner<'a> {
    List(Iter<'a, RawKey>),
    Entries(Iter<'a, Entry>),
    One(Option<RawKey>),
}

impl<'a, T> Linked<'a, T> {
    fn new(owner: &'a Store, store: &'a RelationStore, end: End, key: RawKey) -> Self {
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
    entries: Iter<'a, Entry>,
    payloads: &'a [W],
    store: &'a Store,
    _type: PhantomData<fn() -> T>,
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
