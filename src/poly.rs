//! Polymorphism: rows of a base table that each have exactly one kind, and polymorphic
//! parent ends (a child whose parent may be of one of several types).
//!
//! A kind's rows live in a sparse set over the base's slots ([`KindArena`]), under the
//! key of their base row: a `Key<Email>` and the `Key<Notification>` of the same row hold
//! the same bits. Reading by kind touches only that kind's rows; reading by base reads the
//! base arena. The kind of a base key is found by asking each kind's sparse set: O(kinds).
//!
//! [`KindArena`]: crate::arena::KindArena

use crate::error::{KindError, StaleKey};
use crate::key::{AnyKey, Key};
use crate::relation::RelationStore;
use crate::schema::{Entity, Kind, PolyParent};
use crate::store::Store;

impl Store {
    fn kind_check<B, K>(&self, kind: Kind<B, K>) {
        self.schema.check_table_tag("kind", (kind.tag, kind.table));
    }

    /// Inserts a row of kind `K`: its base fields and its kind's fields. Returns the kind
    /// key; [`Kind::upcast`] gives the base key of the same row. O(1).
    ///
    /// # Examples
    ///
    /// ```
    /// use relgraph::{Schema, Store};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Notification { created_at: u64 }
    /// #[derive(Serialize, Deserialize)]
    /// struct Email { address: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct Sms { phone: String }
    ///
    /// let mut schema = Schema::new();
    /// let notifications = schema.table::<Notification>("notifications");
    /// let email = schema.kind::<Notification, Email>(notifications, "email");
    /// let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    /// let mut store = Store::new(schema);
    ///
    /// let e = store.insert_kind(
    ///     email,
    ///     Notification { created_at: 1 },
    ///     Email { address: "a@b".into() },
    /// );
    /// let n = email.upcast(e); // Key<Notification>: the same row
    /// assert_eq!(store[n].created_at, 1);
    /// assert_eq!(store[e].address, "a@b");
    /// assert_eq!(store.kind_name(n), Some("email"));
    /// assert_eq!(store.downcast(sms, n), None);
    /// assert_eq!(store.len::<Notification>(), 1);
    /// assert_eq!(store.len::<Sms>(), 0);
    /// ```
    pub fn insert_kind<B: Entity, K: Entity>(
        &mut self,
        kind: Kind<B, K>,
        base: B,
        value: K,
    ) -> Key<K> {
        self.kind_check(kind);
        let key = self.p_insert(kind.base, base);
        self.p_insert_at(kind.table, key, value);
        self.settle();
        Key::from_raw(key)
    }

    /// The same row as a key of kind `K`, if the row is of that kind; `None` if it is of
    /// another kind or the key is stale. O(1).
    pub fn downcast<B: Entity, K: Entity>(&self, kind: Kind<B, K>, key: Key<B>) -> Option<Key<K>> {
        self.kind_check(kind);
        self.arena_at::<K>(kind.table)
            .contains(key.raw())
            .then(|| Key::from_raw(key.raw()))
    }

    /// The kind's fields of a row given by its base key, if it is of kind `K`. O(1).
    pub fn get_kind<B: Entity, K: Entity>(&self, kind: Kind<B, K>, key: Key<B>) -> Option<&K> {
        self.kind_check(kind);
        self.arena_at::<K>(kind.table).get(key.raw())
    }

    /// The tag of the kind of a row (e.g. `"email"`), or `None` if the key is stale or its
    /// table has no kinds. O(kinds).
    ///
    /// # Panics
    ///
    /// If `B` is not a table of the store's schema.
    pub fn kind_name<B: Entity>(&self, key: Key<B>) -> Option<&'static str> {
        let table = self.table_of::<B>();
        let root = self.root_table(table);
        let kind = self.kind_table_of(root, key.raw())?;
        // a key typed by a kind is stale unless the row is of that kind
        (table == root || table == kind).then(|| self.schema.tables[kind as usize].name)
    }

    /// Changes the kind of a row: its fields of the current kind are dropped, `value`
    /// becomes its fields of kind `K`, and its key, base fields and links through
    /// relations on the base are kept. A key of the old kind no longer finds the row.
    ///
    /// Refused with [`KindError::Linked`] while the row is linked through a relation
    /// declared on its current kind (those links could not follow it); nothing changes.
    /// O(relations on the old kind + kinds).
    pub fn change_kind<B: Entity, K: Entity>(
        &mut self,
        key: Key<B>,
        to: Kind<B, K>,
        value: K,
    ) -> Result<Key<K>, KindError> {
        self.kind_check(to);
        let raw = key.raw();
        if !self.tables[to.base as usize].contains(raw) {
            return Err(KindError::Stale(StaleKey {
                key: self.any_key(to.base, raw),
            }));
        }
        let old = self.kind_table_of(to.base, raw);
        if old == Some(to.table) {
            self.p_replace(to.table, raw, value);
            self.settle();
            return Ok(Key::from_raw(raw));
        }
        if let Some(old) = old {
            for &(rel, end) in &self.touching[old as usize] {
                if self.relations[rel as usize].partner_count(end, raw) > 0 {
                    return Err(KindError::Linked {
                        relation: self.schema.relations[rel as usize].name,
                        key: self.any_key(old, raw),
                    });
                }
            }
            self.p_remove(old, raw);
        }
        self.p_insert_at(to.table, raw, value);
        self.settle();
        Ok(Key::from_raw(raw))
    }

    /// The parent of `child` through a polymorphic parent end, whichever relation of the
    /// end links it, named by table and key. O(relations of the end).
    pub fn poly_parent<C: Entity>(&self, end: PolyParent<C>, child: Key<C>) -> Option<AnyKey> {
        self.schema.check_group_tag((end.tag, end.index));
        let group = &self.schema.groups[end.index as usize];
        group
            .members
            .iter()
            .find_map(|&m| match &self.relations[m as usize] {
                RelationStore::OneToMany(r) => r.parent_of(child.raw()).map(|p| {
                    let table = self.schema.relations[m as usize].a_table;
                    self.entity_name(self.root_table(table), p)
                }),
                _ => None,
            })
    }
}
