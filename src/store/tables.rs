//! Entities: insert, get, update, replace, remove, iterate.

use super::*;

impl Store {
    #[inline]
    #[track_caller]
    pub(crate) fn table_of<T: Entity>(&self) -> u32 {
        match self.schema.table_index::<T>() {
            Some(t) => t,
            None => not_a_table(type_name::<T>(), short_type_name::<T>()),
        }
    }

    #[inline]
    #[track_caller]
    pub(crate) fn arena<T: Entity>(&self) -> &Column<T> {
        self.arena_at(self.table_of::<T>())
    }

    #[track_caller]
    pub(crate) fn stale<T: Entity>(&self, key: Key<T>) -> StaleKey {
        StaleKey {
            key: self.any_key(self.table_of::<T>(), key.raw()),
        }
    }

    #[track_caller]
    pub(crate) fn live<T: Entity>(&self, table: u32, key: Key<T>) -> Result<RawKey, StaleKey> {
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
    #[inline(always)]
    #[track_caller]
    pub fn insert<T: Entity>(&mut self, value: T) -> Key<T> {
        let table = self.table_of::<T>();
        let def = &self.schema.tables[table as usize];
        if !(def.kinds.is_empty() && def.base.is_none()) {
            return self.insert_plain_kind(table, value);
        }
        let key = self.p_insert(table, value);
        self.settle_recorded();
        Key::from_raw(key)
    }

    /// Inserts a row of a base of its plain kind, or panics saying how to insert it.
    #[cold]
    #[inline(never)]
    #[track_caller]
    pub(crate) fn insert_plain_kind<T: Entity>(&mut self, table: u32, value: T) -> Key<T> {
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
    pub(crate) fn plain_table_of<T: Entity>(&self) -> u32 {
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
    pub(crate) fn not_plain(&self, table: u32) -> ! {
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
    /// reused), or `None`. A scan: O(slots) at worst; for lookups by value declare an
    /// index ([`Schema::index`]) and use [`find_by`](Self::find_by), O(1).
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
        Rows::new(self.arena::<T>())
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
        // a base with a plain kind, or an indexed table: one row at a time, all or nothing
        let table = match self.schema.table_index::<crate::poly::Plain<T>>() {
            Some(_) => None,
            None => Some(self.plain_table_of::<T>()),
        };
        let Some(table) = table.filter(|&t| !self.ix.on_table(t)) else {
            return self.atomic_or_panic(|s| values.map(|v| s.insert(v)).collect());
        };
        let hint = values.size_hint().0;
        self.reserve_at::<T>(table, hint);
        let recording = self.recording();
        if recording {
            self.log.reserve(hint);
        }
        let arena = crate::arena::column_mut::<T>(&mut self.tables, table)
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
        self.ix_reserve(table, additional);
    }

    /// [`reserve`](Self::reserve) of the table at index `table`.
    pub(crate) fn reserve_at<T: Entity>(&mut self, table: u32, additional: usize) {
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
}

/// The panic of a typed call with a type that is not a table, out of line.
#[cold]
#[inline(never)]
#[track_caller]
fn not_a_table(type_name: &str, short: &str) -> ! {
    panic!(
        "type {type_name} is not a table of this store: register it with \
         `schema.table::<{short}>(\"NAME\")` (or `schema.kind`) before building the store"
    )
}
