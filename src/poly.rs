//! Polymorphism: rows of a base table that each have exactly one kind, and polymorphic
//! parent ends (a child whose parent may be of one of several types).
//!
//! A kind's rows live in a sparse set over the base's slots ([`KindArena`]), under the
//! key of their base row: a `Key<Email>` and the `Key<Notification>` of the same row hold
//! the same bits. Reading by kind touches only that kind's rows; reading by base reads the
//! base arena. The kind of a base key is found by asking each kind's sparse set: O(kinds).
//!
//! [`KindArena`]: crate::arena::KindArena

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::arena::Column;
use crate::error::{KindError, StaleKey};
use crate::key::{AnyKey, Key, RawKey};
use crate::relation::RelationStore;
use crate::schema::{Entity, Kind, OneToMany, PolyParent};
use crate::store::Store;

/// The fields of a row of a base's own kind, declared with
/// [`Schema::plain_kind`](crate::Schema::plain_kind): none beyond the base's. Zero-sized;
/// stored as a unit.
pub struct Plain<B>(PhantomData<fn() -> B>);

impl<B> Default for Plain<B> {
    fn default() -> Self {
        Plain(PhantomData)
    }
}
impl<B> Clone for Plain<B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B> Copy for Plain<B> {}
impl<B> PartialEq for Plain<B> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<B> Eq for Plain<B> {}
impl<B> fmt::Debug for Plain<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plain")
    }
}
impl<B> Serialize for Plain<B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ().serialize(s)
    }
}
impl<'de, B> Deserialize<'de> for Plain<B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Plain::default())
    }
}

/// Which of the kinds asked a row of a polymorphic base is of, with that kind's fields:
/// what [`Store::kind_of`] returns, to read a row by its kind in one `match`. The
/// variants follow the order of the kinds asked (`First` for the first); those beyond
/// the number asked cannot occur and need no arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which<K1, K2 = Infallible, K3 = Infallible, K4 = Infallible, K5 = Infallible> {
    /// Of the first kind asked.
    First(K1),
    /// Of the second kind asked.
    Second(K2),
    /// Of the third kind asked.
    Third(K3),
    /// Of the fourth kind asked.
    Fourth(K4),
    /// Of the fifth kind asked.
    Fifth(K5),
    /// Of none of the kinds asked (a kind not asked, or a stale key).
    Other,
}

/// The kinds [`Store::kind_of`] asks about: one [`Kind`] handle, or a tuple of up to five
/// kinds of the same base. Sealed.
pub trait KindSet<B>: Copy + sealed::Sealed<B> {
    /// What a row reads as: a [`Which`] of references to the kinds' fields.
    type Which<'a>;
    #[doc(hidden)]
    #[track_caller]
    fn which(self, store: &Store, key: RawKey) -> Self::Which<'_>;
}

mod sealed {
    pub trait Sealed<B> {}
}

impl<B: Entity, K1: Entity> sealed::Sealed<B> for Kind<B, K1> {}
impl<B: Entity, K1: Entity> KindSet<B> for Kind<B, K1> {
    type Which<'a> = Which<&'a K1>;
    #[track_caller]
    fn which(self, store: &Store, key: RawKey) -> Self::Which<'_> {
        match store.kind_fields(self, key) {
            Some(k) => Which::First(k),
            None => Which::Other,
        }
    }
}

macro_rules! kind_set {
    ($(($k:ident, $v:ident, $i:tt)),+) => {
        impl<B: Entity, $($k: Entity),+> sealed::Sealed<B> for ($(Kind<B, $k>,)+) {}
        impl<B: Entity, $($k: Entity),+> KindSet<B> for ($(Kind<B, $k>,)+) {
            type Which<'a> = Which<$(&'a $k),+>;
            #[track_caller]
            fn which(self, store: &Store, key: RawKey) -> Self::Which<'_> {
                $(
                    if let Some(k) = store.kind_fields(self.$i, key) {
                        return Which::$v(k);
                    }
                )+
                Which::Other
            }
        }
    };
}

kind_set!((K1, First, 0));
kind_set!((K1, First, 0), (K2, Second, 1));
kind_set!((K1, First, 0), (K2, Second, 1), (K3, Third, 2));
kind_set!(
    (K1, First, 0),
    (K2, Second, 1),
    (K3, Third, 2),
    (K4, Fourth, 3)
);
kind_set!(
    (K1, First, 0),
    (K2, Second, 1),
    (K3, Third, 2),
    (K4, Fourth, 3),
    (K5, Fifth, 4)
);

impl Store {
    #[track_caller]
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
    #[track_caller]
    pub fn insert_kind<B: Entity, K: Entity>(
        &mut self,
        kind: Kind<B, K>,
        base: B,
        value: K,
    ) -> Key<K> {
        self.kind_check(kind);
        if self.ix.on_table(kind.table) {
            // the kind row's keys are checked before the base row goes in
            let ids = crate::index::Ids::Rows(kind.table);
            if let Err(e) = self.ix_check(ids, &value, None) {
                crate::index::refused(e);
            }
        }
        let key = self.p_insert(kind.base, base);
        self.p_insert_at(kind.table, key, value);
        self.settle();
        Key::from_raw(key)
    }

    /// Inserts a row of kind `K` for every `(base fields, kind fields)` of `rows`, in
    /// order, and returns their kind keys: the same as calling
    /// [`insert_kind`](Self::insert_kind) for each, with the handle checked and room
    /// reserved once (from the input's size hint: base slots, the kind's rows, the
    /// relations' entries), and no key to upcast to link the rows in bulk
    /// ([`Kind::upcast`] is free). O(rows). If `rows` panics, the rows inserted before
    /// are taken out again (their keys stay unused): the call changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Notification { created_at: u64 }
    /// # #[derive(Serialize, Deserialize)] struct Email { address: String }
    /// let mut schema = Schema::new();
    /// let notifications = schema.table::<Notification>("notifications");
    /// let email = schema.kind::<Notification, Email>(notifications, "email");
    /// let mut store = Store::new(schema);
    /// let keys = store.insert_kind_all(
    ///     email,
    ///     (0..3).map(|i| (Notification { created_at: i }, Email { address: format!("{i}@b") })),
    /// );
    /// assert_eq!(store.len::<Email>(), 3);
    /// assert_eq!(store[email.upcast(keys[2])].created_at, 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If the kind handle is of a schema declared differently.
    #[track_caller]
    pub fn insert_kind_all<B: Entity, K: Entity>(
        &mut self,
        kind: Kind<B, K>,
        rows: impl IntoIterator<Item = (B, K)>,
    ) -> Vec<Key<K>> {
        self.kind_check(kind);
        let rows = rows.into_iter();
        if self.ix.on_table(kind.base) || self.ix.on_table(kind.table) {
            // indexed: one row at a time through the indexed primitives, all or nothing
            return self
                .atomic_or_panic(|s| rows.map(|(b, k)| s.insert_kind(kind, b, k)).collect());
        }
        let hint = rows.size_hint().0;
        self.reserve_at::<B>(kind.base, hint);
        self.arena_at_mut::<K>(kind.table).reserve(hint);
        if self.recording() {
            self.log.reserve(2 * hint);
        }
        // if `rows` panics midway, the rows inserted before the panic are taken out again,
        // newest first (and their log entries with them), as `insert_all` does
        struct Guard<'a, K> {
            store: &'a mut Store,
            tables: (u32, u32),
            mark: usize,
            keys: Vec<Key<K>>,
        }
        impl<K> Drop for Guard<'_, K> {
            fn drop(&mut self) {
                // only reached while unwinding (the keys are taken out on success)
                let s = &mut *self.store;
                s.log.truncate(self.mark);
                let (base, table) = self.tables;
                for k in self.keys.iter().rev() {
                    s.tables[table as usize].remove_defer(k.raw());
                    s.tables[base as usize].remove_defer(k.raw());
                }
                // (`bury` drops only what a removal marked; a panicking `Drop` of one of
                // them must not abort the unwinding)
                s.graves.dirty = true;
                let _ = s.graves.bury(&mut s.tables);
            }
        }
        let mark = self.log.len();
        let mut guard = Guard {
            store: self,
            tables: (kind.base, kind.table),
            mark,
            keys: Vec::with_capacity(hint),
        };
        for (base, value) in rows {
            let s = &mut *guard.store;
            let key = s.p_insert(kind.base, base);
            s.p_insert_at(kind.table, key, value);
            guard.keys.push(Key::from_raw(key));
        }
        let keys = std::mem::take(&mut guard.keys);
        std::mem::forget(guard);
        self.settle();
        keys
    }

    /// The children of `parent` in `rel` that are rows of kind `K`, in link order, with
    /// that kind's fields: the same as filtering [`children`](Self::children) with
    /// [`downcast`](Self::downcast), without a handle check and a table lookup per child.
    /// O(1) per child (the kind's slot index is read for each child; the kind's fields
    /// only when used).
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Rules, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize)] struct Notification;
    /// # #[derive(Serialize, Deserialize, Debug, PartialEq)] struct Email { address: String }
    /// # #[derive(Serialize, Deserialize)] struct Sms;
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// let notifications = schema.table::<Notification>("notifications");
    /// let email = schema.kind::<Notification, Email>(notifications, "email");
    /// let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    /// let inbox = schema.relate(users.many("notifications"), notifications.one("user"));
    /// let mut store = Store::new(schema);
    /// let u = store.insert(User);
    /// let e = store.insert_kind(email, Notification, Email { address: "a@b".into() });
    /// let s = store.insert_kind(sms, Notification, Sms);
    /// store.link_all(inbox, [(u, sms.upcast(s)), (u, email.upcast(e))])?;
    /// let emails: Vec<_> = store.children_of_kind(inbox, u, email).collect();
    /// assert_eq!(emails, [(e, &Email { address: "a@b".into() })]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If a handle is of a schema declared differently.
    #[track_caller]
    pub fn children_of_kind<P: Entity, B: Entity, K: Entity>(
        &self,
        rel: OneToMany<P, B>,
        parent: Key<P>,
        kind: Kind<B, K>,
    ) -> impl Iterator<Item = (Key<K>, &K)> + '_ {
        self.kind_check(kind);
        let Column::Kind(rows) = self.arena_at::<K>(kind.table) else {
            unreachable!("a kind handle names a kind")
        };
        self.otm(rel)
            .children_of(parent.raw())
            .filter_map(move |c| rows.row_of_live(c).map(|v| (Key::from_raw(c), v)))
    }

    /// The same row as a key of kind `K`, if the row is of that kind; `None` if it is of
    /// another kind or the key is stale. O(1).
    #[track_caller]
    pub fn downcast<B: Entity, K: Entity>(&self, kind: Kind<B, K>, key: Key<B>) -> Option<Key<K>> {
        self.kind_check(kind);
        self.arena_at::<K>(kind.table)
            .contains(key.raw())
            .then(|| Key::from_raw(key.raw()))
    }

    /// The kind's fields of a row given by its base key, if it is of kind `K`. O(1).
    #[track_caller]
    pub fn get_kind<B: Entity, K: Entity>(&self, kind: Kind<B, K>, key: Key<B>) -> Option<&K> {
        self.kind_check(kind);
        self.arena_at::<K>(kind.table).get(key.raw())
    }

    /// The kind's fields of a row, by its raw base key.
    #[inline]
    #[track_caller]
    pub(crate) fn kind_fields<B: Entity, K: Entity>(
        &self,
        kind: Kind<B, K>,
        key: RawKey,
    ) -> Option<&K> {
        self.kind_check(kind);
        self.arena_at::<K>(kind.table).get(key)
    }

    /// Which of `kinds` the row `key` is of, with that kind's fields, to read a row by its
    /// kind in one `match`: `kinds` is one kind handle or a tuple of up to five, and the
    /// answer's variants follow their order ([`Which::First`] for the first). O(kinds
    /// asked).
    ///
    /// # Examples
    ///
    /// ```
    /// use relgraph::{Schema, Store, Which};
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
    /// schema.plain_kind(notifications, "notification");
    /// let email = schema.kind::<Notification, Email>(notifications, "email");
    /// let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    /// let mut store = Store::new(schema);
    /// store.insert(Notification { created_at: 1 });
    /// store.insert_kind(email, Notification { created_at: 2 }, Email { address: "a@b".into() });
    /// store.insert_kind(sms, Notification { created_at: 3 }, Sms { phone: "+1".into() });
    ///
    /// let read: Vec<String> = store
    ///     .keys::<Notification>()
    ///     .map(|n| match store.kind_of(n, (email, sms)) {
    ///         Which::First(e) => format!("email to {}", e.address),
    ///         Which::Second(s) => format!("sms to {}", s.phone),
    ///         Which::Other => format!("plain at {}", store[n].created_at),
    ///     })
    ///     .collect();
    /// assert_eq!(read, ["plain at 1", "email to a@b", "sms to +1"]);
    /// ```
    ///
    /// # Panics
    ///
    /// If a kind handle is of a schema declared differently.
    #[track_caller]
    pub fn kind_of<B: Entity, S: KindSet<B>>(&self, key: Key<B>, kinds: S) -> S::Which<'_> {
        kinds.which(self, key.raw())
    }

    /// The tag of the kind of a row (e.g. `"email"`), or `None` if the key is stale or its
    /// table has no kinds. O(kinds).
    ///
    /// # Panics
    ///
    /// If `B` is not a table of the store's schema.
    #[track_caller]
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
    ///
    /// # Errors
    ///
    /// [`KindError::Stale`] if `key` names no live row; [`KindError::Linked`] while the
    /// row is linked through a relation on its current kind. Nothing changes.
    #[track_caller]
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
            if self.ix.on_table(to.table) {
                // the new kind row's keys are checked before the old one goes
                let ids = crate::index::Ids::Rows(to.table);
                if let Err(e) = self.ix_check(ids, &value, None) {
                    crate::index::refused(e);
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
    #[track_caller]
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
