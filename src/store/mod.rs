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
use crate::relation::one_to_many::{parent_in, ParentRef};
use crate::relation::{OneToManyStore, RelationStore};
use crate::schema::{
    DeleteRule, End, Entity, Linkable, ManyToMany, OneToMany, OneToOne, Relation, RelationDef,
    RelationKind, Schema,
};
use crate::DeletePreview;

mod integrity;
mod iter;
mod many_to_many;
mod one_to_many;
mod one_to_one;
mod relations;
mod tables;
mod transactions;

pub(crate) use iter::short_type_name;
pub use iter::{Children, Linked, Parents, Rows, WithPayload};
pub(crate) use relations::{endpoints, NewCollection};

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
    /// Secondary indexes (`index.rs`), kept by the primitives.
    pub(crate) ix: crate::index::Indexes,
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
        let ix = crate::index::Indexes::new(&schema);
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
            ix,
        }
    }

    /// The schema the store was built from.
    #[track_caller]
    pub fn schema(&self) -> &Schema {
        &self.schema
    }
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
