//! Declaring tables, relations and their rules.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::arena::{Arena, Column, ErasedArena, KindArena};
use crate::codec::{self, Blob, CodecError};
use crate::key::Key;
use crate::relation::{ErasedPayloads, PayloadVec};
use crate::rows::{load_payloads, load_table, LoadPayloads, LoadTable};

/// What an entity type (and a link payload type) must be: plain owned data that can be
/// shared between threads and written to a snapshot. Implemented for every such type; no
/// derive beyond serde's is needed.
///
/// Snapshots encode rows with bincode, which is not self-describing. These serde features
/// work: structs, tuples, `String`, `Vec`, `Option`, `Box`, maps, enums with the default
/// (external) tagging, `#[serde(rename)]`, `#[serde(skip)]`, `#[serde(default)]`. These do
/// not: `#[serde(tag = "...")]`, `#[serde(untagged)]`, `#[serde(flatten)]`, a `Deserialize`
/// that calls `deserialize_any`, and `#[serde(skip_serializing_if = "...")]` or
/// `#[serde(skip_serializing)]` (the field is read back from the next bytes). A save checks
/// every row and payload by decoding it back and refuses those that would not load, with
/// [`SnapshotError::Unencodable`](crate::snapshot::SnapshotError::Unencodable) naming the
/// table, the key and the cause, before any file is touched.
pub trait Entity: 'static + Send + Sync + Serialize + DeserializeOwned {}
impl<T: 'static + Send + Sync + Serialize + DeserializeOwned> Entity for T {}

/// What happens to the entities linked at the other end when an entity at this end is
/// deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeleteRule {
    /// Unlink them and leave them be (the default). For a one-to-many, the children lose
    /// their parent.
    #[default]
    Nullify,
    /// Delete them too, applying their own rules in turn, through any depth.
    Cascade,
    /// Refuse the delete while any of them would survive it. The delete returns
    /// [`RemoveError::Restricted`](crate::RemoveError::Restricted) and nothing changes.
    Restrict,
    /// Delete the linked entities that are left without any link in this relation (the
    /// orphans): when an entity at this end is deleted, each partner whose every link here
    /// is to a deleted entity goes too (for a one-to-many or one-to-one that is every
    /// partner, as with [`Cascade`](Self::Cascade); for a many-to-many, only those that lose
    /// their last link). Likewise, a partner left with no link by an unlink, a replaced
    /// collection or a one-to-one eviction is deleted. Moving a child to another parent
    /// does not orphan it.
    DeleteOrphan,
}

/// The settings of one relation: a delete rule for each end, and the policies of
/// self-referential relations. `Rules::new()` is the safe default: nullify at both ends,
/// self-links allowed, cycles allowed.
///
/// A [`DeleteRule`] converts into `Rules` with that rule at the first end, so
/// `schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade)` reads as
/// "deleting a user deletes its posts".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rules {
    pub(crate) on_delete_a: DeleteRule,
    pub(crate) on_delete_b: DeleteRule,
    pub(crate) forbid_self_links: bool,
    pub(crate) acyclic: bool,
}

impl Rules {
    /// Nullify at both ends; self-links and cycles allowed.
    pub const fn new() -> Self {
        Rules {
            on_delete_a: DeleteRule::Nullify,
            on_delete_b: DeleteRule::Nullify,
            forbid_self_links: false,
            acyclic: false,
        }
    }

    /// The rule applied to the linked second-end entities when a first-end entity is
    /// deleted (for a one-to-many: what happens to the children when the parent goes).
    pub const fn on_delete(mut self, rule: DeleteRule) -> Self {
        self.on_delete_a = rule;
        self
    }

    /// The rule applied to the linked first-end entities when a second-end entity is
    /// deleted (for a one-to-many: what happens to the parent when a child goes).
    pub const fn on_delete_b(mut self, rule: DeleteRule) -> Self {
        self.on_delete_b = rule;
        self
    }

    /// Rejects linking an entity to itself (self-referential relations only).
    pub const fn forbid_self_links(mut self) -> Self {
        self.forbid_self_links = true;
        self
    }

    /// Rejects any link that would close a cycle (self-referential relations only; implies
    /// [`forbid_self_links`](Self::forbid_self_links)). For a one-to-many or one-to-one
    /// the check walks up from the new parent: O(depth), or O(1) when the new child has no
    /// children of its own (it can then close no cycle). For a many-to-many it searches
    /// what the new target reaches: O(reachable links).
    pub const fn acyclic(mut self) -> Self {
        self.acyclic = true;
        self.forbid_self_links = true;
        self
    }

    /// The rule applied to the second end's entities when a first-end entity is deleted.
    pub const fn delete_rule_a(&self) -> DeleteRule {
        self.on_delete_a
    }

    /// The rule applied to the first end's entities when a second-end entity is deleted.
    pub const fn delete_rule_b(&self) -> DeleteRule {
        self.on_delete_b
    }

    /// Whether linking an entity to itself is refused.
    pub const fn forbids_self_links(&self) -> bool {
        self.forbid_self_links
    }

    /// Whether links that close a cycle are refused.
    pub const fn is_acyclic(&self) -> bool {
        self.acyclic
    }

    /// The rule at the given end.
    pub(crate) fn rule(&self, end: End) -> DeleteRule {
        match end {
            End::A => self.on_delete_a,
            End::B => self.on_delete_b,
        }
    }
}

impl From<DeleteRule> for Rules {
    fn from(rule: DeleteRule) -> Rules {
        Rules::new().on_delete(rule)
    }
}

/// The three shapes of relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// Each second-end entity has at most one first-end partner (its parent); a parent has
    /// an ordered collection of children.
    OneToMany,
    /// Each entity at either end has at most one partner.
    OneToOne,
    /// Ordered collections at both ends, at most one link per pair, a payload per link.
    ManyToMany,
}

/// One of the two ends of a relation. `A` is the first end declared (the parent of a
/// one-to-many), `B` the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// The first end.
    A,
    /// The second end.
    B,
}

impl End {
    /// The other end.
    pub fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }
}

/// How errors and reports name a relation: its two tables and the name of each end,
/// displayed as `users.posts <-> posts.author`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelationName {
    /// Table at the first end.
    pub a_table: &'static str,
    /// Name of the first end's collection (e.g. `posts`).
    pub a_end: &'static str,
    /// Table at the second end.
    pub b_table: &'static str,
    /// Name of the second end (e.g. `author`).
    pub b_end: &'static str,
}

impl fmt::Debug for RelationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} <-> {}.{}",
            self.a_table, self.a_end, self.b_table, self.b_end
        )
    }
}

impl fmt::Display for RelationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a stored row (or payload) of an older version did not load.
pub(crate) enum RowError {
    /// Its bytes do not decode as the old type.
    Codec(CodecError),
    /// The migration returned an error or panicked: its message.
    Migration(String),
}

/// Reads one stored row of a table's type (or one payload of a relation) from bytes: a
/// migration from an older version.
pub(crate) type RowDecoder<T> =
    Box<dyn Fn(&[u8], &Blob) -> Result<(T, usize), RowError> + Send + Sync>;

/// A decoder that reads `Old` and converts it with `convert`, its error or panic becoming
/// a [`RowError::Migration`].
fn migration<Old, T, E>(
    convert: impl Fn(Old) -> Result<T, E> + Send + Sync + 'static,
) -> RowDecoder<T>
where
    Old: DeserializeOwned + 'static,
    T: 'static,
    E: fmt::Display,
{
    Box::new(move |bytes, blob| {
        let (old, used) = codec::decode_in::<Old>(bytes, blob).map_err(RowError::Codec)?;
        match catch_unwind(AssertUnwindSafe(|| convert(old))) {
            Ok(Ok(value)) => Ok((value, used)),
            Ok(Err(e)) => Err(RowError::Migration(e.to_string())),
            Err(panic) => Err(RowError::Migration(format!(
                "the migration panicked: {}",
                panic_message(panic.as_ref())
            ))),
        }
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

#[derive(Clone)]
pub(crate) struct TableDef {
    /// Identifies the declaration (see [`tag`]).
    pub tag: u32,
    pub name: &'static str,
    pub type_name: &'static str,
    pub make: fn() -> Box<dyn ErasedArena>,
    /// Loads the table's rows from a snapshot.
    pub load: LoadTable,
    /// Version of the row type (1 unless set).
    pub version: u32,
    /// Migrations by the version they read: each a boxed `RowDecoder<T>`.
    pub migrations: Vec<(u32, Arc<dyn Any + Send + Sync>)>,
    /// The shape fingerprint of the row type (`None`: untraceable, not checked).
    pub shape: Option<u64>,
    /// Traces the row type's named shape (for [`Schema::describe_tables`]).
    pub describe: fn() -> Option<crate::shape::TypeShape>,
    /// For a kind: the base table it belongs to.
    pub base: Option<u32>,
    /// For a base: its kind tables, in declaration order.
    pub kinds: Vec<u32>,
}

/// A polymorphic parent end: several one-to-many relations whose children are the same
/// table share it, and a child has a parent in at most one of them.
#[derive(Clone)]
pub(crate) struct GroupDef {
    /// Identifies the declaration (see [`tag`]).
    pub tag: u32,
    pub child_table: u32,
    pub end: &'static str,
    pub members: Vec<u32>,
}

#[derive(Clone)]
pub(crate) struct RelationDef {
    /// Identifies the declaration (see [`tag`]).
    pub tag: u32,
    pub kind: RelationKind,
    pub a_table: u32,
    pub b_table: u32,
    pub name: RelationName,
    pub rules: Rules,
    pub make_payloads: fn() -> Box<dyn ErasedPayloads>,
    /// Decodes `n` stored payloads.
    pub load_payloads: LoadPayloads,
    /// Version of the payload type (1 unless set).
    pub payload_version: u32,
    /// Payload migrations by the version they read: each a boxed `RowDecoder<W>`.
    pub payload_migrations: Vec<(u32, Arc<dyn Any + Send + Sync>)>,
    /// The shape fingerprint of the payload type (`None`: untraceable, not checked).
    pub payload_shape: Option<u64>,
    /// Traces the payload type's named shape (for [`Schema::describe_relations`]).
    pub describe_payload: fn() -> Option<crate::shape::TypeShape>,
    /// The polymorphic parent group this one-to-many belongs to.
    pub group: Option<u32>,
    /// [`plain_links`](Self::plain_links), worked out once at declaration (a `link` reads
    /// it on every call).
    plain: bool,
    /// [`direct_children`](Self::direct_children), worked out at declaration and again
    /// when a kind is declared on a table.
    direct: bool,
    /// [`forest_links`](Self::forest_links), worked out once at declaration.
    forest: bool,
    /// [`inline_children`](Self::inline_children), worked out with `direct` and again
    /// when an index is declared.
    inline: bool,
}

impl RelationDef {
    pub fn table(&self, end: End) -> u32 {
        match end {
            End::A => self.a_table,
            End::B => self.b_table,
        }
    }

    pub fn self_referential(&self) -> bool {
        self.a_table == self.b_table
    }

    /// Whether a new link needs no check beyond its ends being alive and changes nothing
    /// but the link itself and the child's previous one: no self-link or cycle policy, no
    /// polymorphic parent end, no delete-orphan rule.
    #[inline]
    pub fn plain_links(&self) -> bool {
        self.plain
    }

    /// Whether [`Store::insert_child`](crate::Store::insert_child) makes a new child and
    /// its link directly: a one-to-many whose links are plain or a forest's (a new child
    /// can make no cycle or self-link) into a child table that is neither a base with
    /// kinds nor a kind.
    #[inline]
    pub fn direct_children(&self) -> bool {
        self.direct
    }

    /// [`direct_children`](Self::direct_children), and no index watches the child table:
    /// while nothing records, `insert_child` makes the row and its link inline.
    #[inline]
    pub fn inline_children(&self) -> bool {
        self.inline
    }

    fn work_out_plain_links(&self) -> bool {
        let policy =
            self.self_referential() && (self.rules.forbid_self_links || self.rules.acyclic);
        !policy
            && self.group.is_none()
            && self.rules.on_delete_a != DeleteRule::DeleteOrphan
            && self.rules.on_delete_b != DeleteRule::DeleteOrphan
    }

    /// Whether a new link of this one-to-many needs no check beyond its ends being alive
    /// and its self-referential policy (acyclic, no self-links): a self-referential
    /// one-to-many without a polymorphic parent end or a delete-orphan rule. Worked out
    /// at declaration.
    #[inline]
    pub fn forest_links(&self) -> bool {
        self.forest
    }

    fn work_out_forest_links(&self) -> bool {
        self.self_referential()
            && self.group.is_none()
            && self.rules.on_delete_a != DeleteRule::DeleteOrphan
            && self.rules.on_delete_b != DeleteRule::DeleteOrphan
    }
}

/// Identity hasher for `TypeId` (already a hash): keeps the type lookup of
/// [`Store::insert`](crate::Store::insert) to a few instructions.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl std::hash::Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }
}

/// Table indices by `TypeId`: a direct-mapped array in front of a hash map. Each type
/// owns the bucket its id hashes to unless a type registered earlier took it, so the
/// lookup behind every typed call ([`Store::insert`](crate::Store::insert),
/// [`Store::get`](crate::Store::get), ...) is, for nearly every type, one bucket read and
/// one compare of constants rather than a hash map probe; a type whose bucket is taken goes
/// on to the map. At most a quarter of the buckets are in use.
#[derive(Clone, Default)]
pub(crate) struct TypeMap {
    buckets: Vec<Option<(TypeId, u32)>>,
    /// 64 minus the number of bits of a bucket index (0 while there are no buckets: any
    /// index is then out of range).
    shift: u32,
    map: HashMap<TypeId, u32, std::hash::BuildHasherDefault<TypeIdHasher>>,
}

impl TypeMap {
    #[inline]
    fn bucket(&self, id: &TypeId) -> usize {
        let mut h = TypeIdHasher::default();
        id.hash(&mut h);
        // Fibonacci hashing: the top bits of the product depend on every bit of the id
        (h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    pub(crate) fn get(&self, id: &TypeId) -> Option<&u32> {
        match self.buckets.get(self.bucket(id)) {
            Some(Some((t, index))) if t == id => Some(index),
            _ => self.get_in_map(id),
        }
    }

    /// The map probe of [`get`](Self::get), out of line: the bucket read stays small
    /// enough to inline into a typed call.
    #[inline(never)]
    fn get_in_map(&self, id: &TypeId) -> Option<&u32> {
        self.map.get(id)
    }

    pub(crate) fn contains_key(&self, id: &TypeId) -> bool {
        self.map.contains_key(id)
    }

    pub(crate) fn insert(&mut self, id: TypeId, index: u32) {
        self.map.insert(id, index);
        if self.map.len() * 4 > self.buckets.len() {
            // rebuild, in registration order, with room for four times as many types
            let bits = (self.map.len() * 16).next_power_of_two().trailing_zeros();
            self.buckets = vec![None; 1 << bits];
            self.shift = 64 - bits;
            let mut all: Vec<(TypeId, u32)> = self.map.iter().map(|(&t, &i)| (t, i)).collect();
            all.sort_by_key(|&(_, i)| i);
            for (t, i) in all {
                self.place(t, i);
            }
        } else {
            self.place(id, index);
        }
    }

    fn place(&mut self, id: TypeId, index: u32) {
        let b = self.bucket(&id);
        if self.buckets[b].is_none() {
            self.buckets[b] = Some((id, index));
        }
    }
}

/// The identity of a declaration, carried by its handle: a hash of everything that makes
/// the handle mean the same thing in another schema (its position, names, the Rust types,
/// and the tags of the tables it joins). Two schemas declared the same way give the same
/// tags, so their handles work on each other's stores; a handle used on a schema declared
/// differently is caught, in O(1). Never zero.
pub(crate) fn tag(what: impl Hash) -> u32 {
    let mut h = std::hash::DefaultHasher::new();
    what.hash(&mut h);
    let v = h.finish();
    ((v ^ (v >> 32)) as u32).max(1)
}

/// The declaration of a store's tables and relations, made once at start-up and handed to
/// [`Store::new`](crate::Store::new).
///
/// Declaring returns typed `Copy` handles ([`Table`], [`OneToMany`], [`OneToOne`],
/// [`ManyToMany`]) that carry a dense index: using them costs no name or type lookup.
/// Declaration mistakes (a name used twice, a handle from another schema) are programming
/// errors and panic with a message that names the culprit.
///
/// A handle is identified by its declaration, not by the schema value it came from: two
/// schemas declared the same way (a program that builds its schema in a `fn schema()` and
/// calls it twice, or a clone) accept each other's handles, and a store loaded with
/// `Store::load(store.schema().clone(), path)` takes the handles of the original. A handle
/// used with a schema that declares its index differently (another table, end name, Rust
/// type or order, as in a clone changed after cloning) panics, naming what that schema has
/// there. Cloning is O(tables + relations).
///
/// # Examples
///
/// ```
/// use relgraph::{DeleteRule, Schema, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct User { name: String }
/// #[derive(Serialize, Deserialize)]
/// struct Post { title: String }
///
/// let mut schema = Schema::new();
/// let users = schema.table::<User>("users");
/// let posts = schema.table::<Post>("posts");
/// let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
/// let mut store = Store::new(schema);
///
/// let alice = store.insert(User { name: "Alice".into() });
/// let guide = store.insert(Post { title: "SQLAlchemy Guide".into() });
/// store.link(authorship, alice, guide)?;
/// assert_eq!(store.parent(authorship, guide), Some(alice));
/// store.remove(alice)?; // cascades to the post
/// assert!(!store.contains(guide));
/// # Ok::<(), relgraph::Error>(())
/// ```
#[derive(Clone)]
pub struct Schema {
    pub(crate) tables: Vec<TableDef>,
    pub(crate) relations: Vec<RelationDef>,
    pub(crate) groups: Vec<GroupDef>,
    pub(crate) by_type: TypeMap,
    /// Secondary indexes (`index.rs`): not part of the fingerprint or the snapshot.
    pub(crate) indexes: Vec<crate::index::IndexDef>,
}

impl Default for Schema {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Schema");
        d.field(
            "tables",
            &self.tables.iter().map(|t| t.name).collect::<Vec<_>>(),
        );
        d.field(
            "relations",
            &self
                .relations
                .iter()
                .map(|r| (r.kind, r.name))
                .collect::<Vec<_>>(),
        );
        d.finish()
    }
}

impl Schema {
    /// An empty schema.
    #[track_caller]
    pub fn new() -> Self {
        Schema {
            tables: Vec::new(),
            relations: Vec::new(),
            groups: Vec::new(),
            by_type: TypeMap::default(),
            indexes: Vec::new(),
        }
    }

    /// Registers the entity type `T` under a stable table name and returns its handle.
    /// Registering the same type under the same name again returns the same handle. The
    /// first declaration of a type in a process traces its `Deserialize` once for its shape
    /// fingerprint (microseconds for common types; see [`fingerprint`](Self::fingerprint)).
    ///
    /// # Panics
    ///
    /// If `T` is already registered under another name, or `name` is taken by another type.
    #[track_caller]
    pub fn table<T: Entity>(&mut self, name: &'static str) -> Table<T> {
        if let Some(&index) = self.by_type.get(&TypeId::of::<T>()) {
            let existing = &self.tables[index as usize];
            assert!(
                existing.name == name && existing.base.is_none(),
                "type {} is already registered as table `{}`: a type is one table (or one \
                 kind); declare it once and share the handle, or wrap it in a newtype",
                type_name::<T>(),
                existing.name
            );
            return Table::new(existing.tag, index);
        }
        let index = self.register::<T>(name, None, || {
            Box::new(Column::<T>::Slots(Arena::default()))
        });
        Table::new(self.tables[index as usize].tag, index)
    }

    #[track_caller]
    fn register<T: Entity>(
        &mut self,
        name: &'static str,
        base: Option<u32>,
        make: fn() -> Box<dyn ErasedArena>,
    ) -> u32 {
        if let Some(t) = self.tables.iter().find(|t| t.name == name) {
            panic!(
                "table name `{name}` is already taken by type {}: give each table (and kind) \
                 a name of its own",
                t.type_name
            );
        }
        assert!(
            !self.by_type.contains_key(&TypeId::of::<T>()),
            "type {} is already registered: a type is one table (or one kind); wrap it in a \
             newtype to store it twice",
            type_name::<T>()
        );
        let index = self.tables.len() as u32;
        let base_tag = base.map(|b| self.tables[b as usize].tag);
        self.tables.push(TableDef {
            tag: tag(("table", index, name, TypeId::of::<T>(), base_tag)),
            name,
            type_name: type_name::<T>(),
            make,
            load: load_table::<T>,
            version: 1,
            migrations: Vec::new(),
            shape: crate::shape::fingerprint::<T>(),
            describe: crate::shape::describe::<T>,
            base,
            kinds: Vec::new(),
        });
        self.by_type.insert(TypeId::of::<T>(), index);
        index
    }

    /// Declares `K` as a kind of the polymorphic base `base`, under a stable tag (e.g.
    /// `"email"`, which is also the kind's table name). Every row of the base then has
    /// exactly one kind: rows are inserted with
    /// [`Store::insert_kind`](crate::Store::insert_kind), share the base's key space,
    /// and are found by base (all kinds) or by kind (that kind only, in time proportional
    /// to its rows). Relations may be declared on the base or on a kind.
    ///
    /// # Panics
    ///
    /// If `base` is from another schema or is itself a kind, `K` is already registered, or
    /// `tag` is taken by another table.
    #[track_caller]
    pub fn kind<B: Entity, K: Entity>(&mut self, base: Table<B>, tag: &'static str) -> Kind<B, K> {
        let base = base.check(self);
        assert!(
            self.tables[base as usize].base.is_none(),
            "kinds of kinds are not supported: `{}` is a kind; declare every kind on the base",
            self.tables[base as usize].name
        );
        let index = self.register::<K>(tag, Some(base), || {
            Box::new(Column::<K>::Kind(KindArena::default()))
        });
        self.tables[base as usize].kinds.push(index);
        self.work_out_direct_children();
        Kind::new(self.tables[index as usize].tag, base, index)
    }

    /// Declares the base's own kind, under a stable tag (SQLAlchemy's
    /// `polymorphic_identity` of the base, e.g. `"notification"`): the kind of rows that
    /// have the base's fields only. Rows of it are inserted with a plain
    /// [`Store::insert`](crate::Store::insert) of the base row, and need no kind type of
    /// their own: the kind's type is the zero-sized [`Plain<B>`](crate::Plain). Without
    /// it, every row of a base must be of a declared kind.
    ///
    /// # Examples
    ///
    /// ```
    /// use relgraph::{Schema, Store, Which};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Notification { text: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct Email { address: String }
    ///
    /// let mut schema = Schema::new();
    /// let notifications = schema.table::<Notification>("notifications");
    /// let plain = schema.plain_kind(notifications, "notification");
    /// let email = schema.kind::<Notification, Email>(notifications, "email");
    /// let mut store = Store::new(schema);
    ///
    /// let hello = store.insert(Notification { text: "hello".into() });
    /// assert_eq!(store.kind_name(hello), Some("notification"));
    /// assert!(store.downcast(plain, hello).is_some());
    /// assert!(matches!(store.kind_of(hello, email), Which::Other));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`kind`](Self::kind); also if the base already has its plain kind.
    #[track_caller]
    pub fn plain_kind<B: Entity>(
        &mut self,
        base: Table<B>,
        tag: &'static str,
    ) -> Kind<B, crate::poly::Plain<B>> {
        self.kind::<B, crate::poly::Plain<B>>(base, tag)
    }

    /// Declares a polymorphic parent end named `end` on `child`: each child may have a
    /// parent in any of the one-to-many relations declared into it with
    /// [`one_to_many_poly`](Self::one_to_many_poly) (a `Comment` whose target is a `Post`
    /// or a `Photo`), and in at most one of them. Linking a child in one of them unlinks it
    /// from the others.
    ///
    /// # Panics
    ///
    /// If `child` is from another schema or `end` is already used on its table.
    #[track_caller]
    pub fn poly_parent<C: Entity>(
        &mut self,
        child: impl Into<Table<C>>,
        end: &'static str,
    ) -> PolyParent<C> {
        let child = child.into().check(self);
        self.assert_end_free(child, end);
        let index = self.groups.len() as u32;
        let tag = tag(("group", index, self.tables[child as usize].tag, end));
        self.groups.push(GroupDef {
            tag,
            child_table: child,
            end,
            members: Vec::new(),
        });
        PolyParent::new(tag, index)
    }

    /// Declares a one-to-many from `parent` (its collection named `children_end`) into a
    /// polymorphic parent end. Back-population works on every parent type; delete rules
    /// apply per relation as for [`one_to_many`](Self::one_to_many).
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn one_to_many_poly<P: Entity, C: Entity>(
        &mut self,
        parent: impl Into<Table<P>>,
        children_end: &'static str,
        group: PolyParent<C>,
        rules: impl Into<Rules>,
    ) -> OneToMany<P, C> {
        assert!(
            self.groups.get(group.index as usize).map(|g| g.tag) == Some(group.tag),
            "a PolyParent handle of another schema was used in a declaration: use the handle \
             this schema's poly_parent returned"
        );
        let (child, end) = {
            let g = &self.groups[group.index as usize];
            (g.child_table, g.end)
        };
        let rules = rules.into();
        let parent = parent.into().check(self);
        self.assert_end_free(parent, children_end);
        let index = self.push_relation::<()>(
            RelationKind::OneToMany,
            (parent, children_end),
            (child, end),
            rules,
            Some(group.index),
        );
        self.groups[group.index as usize].members.push(index);
        OneToMany::new(self.relations[index as usize].tag, index)
    }

    /// Declares a one-to-many relation: each `C` has at most one parent `P`
    /// (its `parent_end`, e.g. `author`), each `P` an ordered collection of `C`
    /// (its `children_end`, e.g. `posts`). Use the same table twice for a hierarchy.
    /// [`relate`](Self::relate) declares the same relation with each name on its table:
    /// `schema.relate(users.many("posts"), posts.one("author"))`.
    ///
    /// # Panics
    ///
    /// If a table handle is from another schema, an end name is already used on its
    /// table, or `rules` asks for acyclicity on a relation between two different tables.
    #[track_caller]
    pub fn one_to_many<P: Entity, C: Entity>(
        &mut self,
        parent: impl Into<Table<P>>,
        children_end: &'static str,
        child: impl Into<Table<C>>,
        parent_end: &'static str,
        rules: impl Into<Rules>,
    ) -> OneToMany<P, C> {
        let index = self.declare::<()>(
            RelationKind::OneToMany,
            (parent.into().check(self), children_end),
            (child.into().check(self), parent_end),
            rules.into(),
        );
        OneToMany::new(self.relations[index as usize].tag, index)
    }

    /// Declares a one-to-one relation: each entity at either end has at most one partner.
    /// Linking a new pair evicts the previous partner of each. The same as
    /// `schema.relate(a.one(a_end), b.one(b_end))`.
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn one_to_one<A: Entity, B: Entity>(
        &mut self,
        a: impl Into<Table<A>>,
        a_end: &'static str,
        b: impl Into<Table<B>>,
        b_end: &'static str,
        rules: impl Into<Rules>,
    ) -> OneToOne<A, B> {
        let index = self.declare::<()>(
            RelationKind::OneToOne,
            (a.into().check(self), a_end),
            (b.into().check(self), b_end),
            rules.into(),
        );
        OneToOne::new(self.relations[index as usize].tag, index)
    }

    /// Declares a many-to-many relation without payload. The same as
    /// `schema.relate(a.many(a_end), b.many(b_end))`.
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn many_to_many<A: Entity, B: Entity>(
        &mut self,
        a: impl Into<Table<A>>,
        a_end: &'static str,
        b: impl Into<Table<B>>,
        b_end: &'static str,
        rules: impl Into<Rules>,
    ) -> ManyToMany<A, B> {
        self.many_to_many_with::<A, B, ()>(a, a_end, b, b_end, rules)
    }

    /// Declares a many-to-many relation whose every link carries a payload of type `W`
    /// (an association object: `Enrollment { grade }` between a student and a course).
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn many_to_many_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        a: impl Into<Table<A>>,
        a_end: &'static str,
        b: impl Into<Table<B>>,
        b_end: &'static str,
        rules: impl Into<Rules>,
    ) -> ManyToMany<A, B, W> {
        let index = self.declare::<W>(
            RelationKind::ManyToMany,
            (a.into().check(self), a_end),
            (b.into().check(self), b_end),
            rules.into(),
        );
        ManyToMany::new(self.relations[index as usize].tag, index)
    }

    /// Declares a relation between two named ends, its shape given by how many partners
    /// each end has: `users.many("posts")` (a user has many posts) with
    /// `posts.one("author")` (a post has one author) is a one-to-many, `one` with `one` a
    /// one-to-one, `many` with `many` a many-to-many (with a payload:
    /// [`relate_with`](Self::relate_with)). The call site says which name belongs to which
    /// table and what each end holds; each end carries the [`DeleteRule`] applied from it
    /// ([`Nullify`](DeleteRule::Nullify) unless set with `on_delete`). A one-to-many's
    /// parent is its `many` end, whichever comes first. The same declarations as the
    /// positional [`one_to_many`](Self::one_to_many), [`one_to_one`](Self::one_to_one) and
    /// [`many_to_many`](Self::many_to_many): both forms give equal handles.
    ///
    /// # Examples
    ///
    /// ```
    /// use relgraph::{DeleteRule, Schema, Store};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct User { name: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct Post { title: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct Employee { name: String }
    ///
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// let posts = schema.table::<Post>("posts");
    /// let employees = schema.table::<Employee>("employees");
    /// // deleting a user deletes its posts; deleting a post leaves its author be
    /// let authorship =
    ///     schema.relate(users.many("posts").on_delete(DeleteRule::Cascade), posts.one("author"));
    /// // a manager chain never comes back to where it started
    /// let reports =
    ///     schema.relate(employees.many("subordinates"), employees.one("manager").acyclic());
    /// let store = Store::new(schema);
    /// assert_eq!(
    ///     store.schema().relations().map(|(_, name)| name.to_string()).collect::<Vec<_>>(),
    ///     ["users.posts <-> posts.author", "employees.subordinates <-> employees.manager"]
    /// );
    /// # let _ = (authorship, reports);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn relate<X, Y>(&mut self, a: X, b: Y) -> <(X, Y) as Ends>::Handle
    where
        (X, Y): Ends,
    {
        (a, b).declare(self)
    }

    /// Declares a many-to-many between two named `many` ends whose every link carries a
    /// payload of type `W` (an association object: `Enrollment { grade }`), as
    /// [`relate`](Self::relate) does without one. `W` is usually inferred from the
    /// handle's use (`store.link_with(grades, student, course, Grade(2))`); otherwise name
    /// it: `let grades: ManyToMany<Student, Course, Grade> = schema.relate_with(..)`.
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    #[track_caller]
    pub fn relate_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        a: ManyEnd<A>,
        b: ManyEnd<B>,
    ) -> ManyToMany<A, B, W> {
        let (tag, index) = self.declare_ends::<W, A, B>(RelationKind::ManyToMany, a.0, b.0);
        ManyToMany::new(tag, index)
    }

    /// Declares a relation from two named ends; its handle's tag and index.
    #[track_caller]
    fn declare_ends<W: Entity, A, B>(
        &mut self,
        kind: RelationKind,
        a: NamedEnd<A>,
        b: NamedEnd<B>,
    ) -> (u32, u32) {
        let mut rules = Rules::new().on_delete(a.on_delete).on_delete_b(b.on_delete);
        if a.acyclic || b.acyclic {
            rules = rules.acyclic();
        }
        if a.forbid_self_links || b.forbid_self_links {
            rules = rules.forbid_self_links();
        }
        let ta = (a.table.check(self), a.name);
        let tb = (b.table.check(self), b.name);
        let index = self.declare::<W>(kind, ta, tb, rules);
        (self.relations[index as usize].tag, index)
    }

    #[track_caller]
    fn declare<W: Entity>(
        &mut self,
        kind: RelationKind,
        (a_table, a_end): (u32, &'static str),
        (b_table, b_end): (u32, &'static str),
        rules: Rules,
    ) -> u32 {
        for (table, end) in [(a_table, a_end), (b_table, b_end)] {
            self.assert_end_free(table, end);
        }
        self.push_relation::<W>(kind, (a_table, a_end), (b_table, b_end), rules, None)
    }

    #[track_caller]
    fn assert_end_free(&self, table: u32, end: &'static str) {
        let taken = self.relations.iter().any(|r| {
            (r.a_table == table && r.name.a_end == end)
                || (r.b_table == table && r.name.b_end == end)
        }) || self
            .groups
            .iter()
            .any(|g| g.child_table == table && g.end == end);
        assert!(
            !taken,
            "table `{}` already has a relation end named `{end}`: give each end of a table a \
             name of its own",
            self.tables[table as usize].name
        );
    }

    #[track_caller]
    fn push_relation<W: Entity>(
        &mut self,
        kind: RelationKind,
        (a_table, a_end): (u32, &'static str),
        (b_table, b_end): (u32, &'static str),
        rules: Rules,
        group: Option<u32>,
    ) -> u32 {
        assert!(
            a_table != b_table || a_end != b_end,
            "the two ends of a relation of `{}` are both named `{a_end}`: name each end (e.g. \
             `subordinates` and `manager`)",
            self.tables[a_table as usize].name
        );
        assert!(
            !(rules.acyclic || rules.forbid_self_links) || a_table == b_table,
            "acyclic and forbid_self_links apply to self-referential relations only \
             (`{a_end}` / `{b_end}` join two different tables)"
        );
        let index = self.relations.len() as u32;
        let tag = tag((
            "relation",
            index,
            kind,
            (self.tables[a_table as usize].tag, a_end),
            (self.tables[b_table as usize].tag, b_end),
            TypeId::of::<W>(),
            group.map(|g| self.groups[g as usize].tag),
        ));
        self.relations.push(RelationDef {
            tag,
            kind,
            a_table,
            b_table,
            name: RelationName {
                a_table: self.tables[a_table as usize].name,
                a_end,
                b_table: self.tables[b_table as usize].name,
                b_end,
            },
            rules,
            make_payloads: || Box::<PayloadVec<W>>::default(),
            load_payloads: load_payloads::<W>,
            payload_version: 1,
            payload_migrations: Vec::new(),
            payload_shape: match kind {
                RelationKind::ManyToMany => crate::shape::fingerprint::<W>(),
                _ => None,
            },
            describe_payload: crate::shape::describe::<W>,
            group,
            plain: false,
            direct: false,
            forest: false,
            inline: false,
        });
        let def = self.relations.last_mut().expect("just pushed");
        def.plain = def.work_out_plain_links();
        def.forest = def.kind == RelationKind::OneToMany && def.work_out_forest_links();
        self.work_out_direct_children();
        index
    }

    /// Works out every relation's [`direct_children`](RelationDef::direct_children) and
    /// [`inline_children`](RelationDef::inline_children) (at each relation's, kind's and
    /// index's declaration: O(tables + relations + indexes)).
    pub(crate) fn work_out_direct_children(&mut self) {
        let mut indexed = vec![false; self.tables.len()];
        for ix in &self.indexes {
            if let crate::index::Target::Rows(t) = ix.target {
                indexed[t as usize] = true;
            }
        }
        for def in &mut self.relations {
            let child = &self.tables[def.b_table as usize];
            def.direct = def.kind == RelationKind::OneToMany
                && (def.plain_links() || def.forest_links())
                && child.kinds.is_empty()
                && child.base.is_none();
            def.inline = def.direct && !indexed[def.b_table as usize];
        }
    }

    /// Sets the version of a table's row type (1 when never set). Raise it when the type
    /// changes so that rows saved before no longer decode as the new type (a field added,
    /// removed or retyped), and register a [`migrate`](Self::migrate) from each older
    /// version that saved files may still hold. A snapshot whose table is newer than the
    /// program's is refused with
    /// [`SchemaDifference::VersionTooNew`](crate::snapshot::SchemaDifference).
    ///
    /// # Panics
    ///
    /// If `version` is 0, or not above a version a migration was registered from.
    #[track_caller]
    pub fn set_version<T: Entity>(&mut self, table: impl Into<Table<T>>, version: u32) {
        let t = table.into().check(self) as usize;
        let def = &mut self.tables[t];
        assert!(version > 0, "table `{}`: versions start at 1", def.name);
        assert!(
            def.migrations.iter().all(|&(from, _)| from < version),
            "table `{}`: a migration from a version at or above {version} is registered",
            def.name
        );
        def.version = version;
    }

    /// Registers how rows of `table` saved at version `from` are loaded: each is decoded as
    /// the old row type `Old` (the type as it was at that version) and converted by
    /// `convert`. Loading then costs one conversion per row of such a snapshot; saving
    /// always writes the current version.
    ///
    /// # Examples
    ///
    /// ```
    /// use relgraph::{Schema, Store};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct UserV1 { name: String }
    /// #[derive(Serialize, Deserialize)]
    /// struct User { name: String, level: u32 }
    ///
    /// // last month's build
    /// let mut old = Schema::new();
    /// old.table::<UserV1>("users");
    /// let mut store = Store::new(old);
    /// store.insert(UserV1 { name: "Ann".into() });
    /// let bytes = store.to_snapshot()?;
    ///
    /// // this build: User gained a field
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// schema.set_version(users, 2);
    /// schema.migrate(users, 1, |u: UserV1| User { name: u.name, level: 1 });
    /// let store = Store::from_snapshot(schema, &bytes)?;
    /// let (_, ann) = store.iter::<User>().next().unwrap();
    /// assert_eq!((ann.name.as_str(), ann.level), ("Ann", 1));
    /// # Ok::<(), relgraph::snapshot::SnapshotError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `from` is not below the table's current version (set it first with
    /// [`set_version`](Self::set_version)), or a migration from `from` is already registered.
    #[track_caller]
    pub fn migrate<Old, T>(
        &mut self,
        table: impl Into<Table<T>>,
        from: u32,
        convert: impl Fn(Old) -> T + Send + Sync + 'static,
    ) where
        Old: DeserializeOwned + 'static,
        T: Entity,
    {
        self.try_migrate(table, from, move |old: Old| {
            Ok::<T, std::convert::Infallible>(convert(old))
        });
    }

    /// As [`migrate`](Self::migrate), with a conversion that may refuse a row: its error
    /// stops the load with
    /// [`SnapshotError::Migration`](crate::snapshot::SnapshotError::Migration), naming the
    /// table, the row's key and the message. A conversion that panics is reported the same
    /// way (the load returns the error, it does not panic).
    ///
    /// # Panics
    ///
    /// As [`migrate`](Self::migrate).
    #[track_caller]
    pub fn try_migrate<Old, T, E>(
        &mut self,
        table: impl Into<Table<T>>,
        from: u32,
        convert: impl Fn(Old) -> Result<T, E> + Send + Sync + 'static,
    ) where
        Old: DeserializeOwned + 'static,
        T: Entity,
        E: fmt::Display,
    {
        let t = table.into().check(self) as usize;
        let def = &mut self.tables[t];
        assert!(
            from < def.version,
            "table `{}`: a migration must read a version below the current {} (got {from})",
            def.name,
            def.version
        );
        assert!(
            def.migrations.iter().all(|&(f, _)| f != from),
            "table `{}`: a migration from version {from} is already registered",
            def.name
        );
        def.migrations.push((from, Arc::new(migration(convert))));
    }

    /// Sets the version of a many-to-many's payload type (1 when never set), as
    /// [`set_version`](Self::set_version) does for a table: raise it when the payload type
    /// changes and register a [`migrate_payload`](Self::migrate_payload) from each older
    /// version saved files may hold. A snapshot whose payload version is newer than the
    /// program's is refused.
    ///
    /// # Panics
    ///
    /// If the handle is of another schema, `version` is 0, or not above a version a
    /// payload migration was registered from.
    #[track_caller]
    pub fn set_payload_version<A: Entity, B: Entity, W: Entity>(
        &mut self,
        relation: ManyToMany<A, B, W>,
        version: u32,
    ) {
        let def = self.payload_def(relation);
        assert!(version > 0, "relation {}: versions start at 1", def.name);
        assert!(
            def.payload_migrations
                .iter()
                .all(|&(from, _)| from < version),
            "relation {}: a payload migration from a version at or above {version} is \
             registered",
            def.name
        );
        def.payload_version = version;
    }

    /// Registers how the payloads of `relation` saved at version `from` load: each is
    /// decoded as the old payload type `Old` and converted by `convert`, as
    /// [`migrate`](Self::migrate) does for rows.
    ///
    /// # Panics
    ///
    /// As [`try_migrate_payload`](Self::try_migrate_payload).
    #[track_caller]
    pub fn migrate_payload<Old, A, B, W>(
        &mut self,
        relation: ManyToMany<A, B, W>,
        from: u32,
        convert: impl Fn(Old) -> W + Send + Sync + 'static,
    ) where
        Old: DeserializeOwned + 'static,
        A: Entity,
        B: Entity,
        W: Entity,
    {
        self.try_migrate_payload(relation, from, move |old: Old| {
            Ok::<W, std::convert::Infallible>(convert(old))
        });
    }

    /// As [`migrate_payload`](Self::migrate_payload), with a conversion that may refuse a
    /// payload: its error (or panic) stops the load with
    /// [`SnapshotError::Migration`](crate::snapshot::SnapshotError::Migration), naming the
    /// relation, the link's two keys and the message.
    ///
    /// # Panics
    ///
    /// If the handle is of another schema, `from` is not below the payload's current
    /// version (set it first with [`set_payload_version`](Self::set_payload_version)), or a
    /// payload migration from `from` is already registered.
    #[track_caller]
    pub fn try_migrate_payload<Old, A, B, W, E>(
        &mut self,
        relation: ManyToMany<A, B, W>,
        from: u32,
        convert: impl Fn(Old) -> Result<W, E> + Send + Sync + 'static,
    ) where
        Old: DeserializeOwned + 'static,
        A: Entity,
        B: Entity,
        W: Entity,
        E: fmt::Display,
    {
        let def = self.payload_def(relation);
        assert!(
            from < def.payload_version,
            "relation {}: a payload migration must read a version below the current {} \
             (got {from})",
            def.name,
            def.payload_version
        );
        assert!(
            def.payload_migrations.iter().all(|&(f, _)| f != from),
            "relation {}: a payload migration from version {from} is already registered",
            def.name
        );
        def.payload_migrations
            .push((from, Arc::new(migration(convert))));
    }

    fn payload_def<A: Entity, B: Entity, W: Entity>(
        &mut self,
        relation: ManyToMany<A, B, W>,
    ) -> &mut RelationDef {
        let index = self.relation_index(relation.tag_and_index());
        &mut self.relations[index as usize]
    }

    /// Number of tables declared.
    #[track_caller]
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Number of relations declared.
    #[track_caller]
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// The names of the tables, in declaration order.
    #[track_caller]
    pub fn table_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tables.iter().map(|t| t.name)
    }

    /// The relations, in declaration order: kind and name.
    #[track_caller]
    pub fn relations(&self) -> impl Iterator<Item = (RelationKind, RelationName)> + '_ {
        self.relations.iter().map(|r| (r.kind, r.name))
    }

    /// The index of relation handle `(tag, index)` in this schema.
    ///
    /// # Panics
    ///
    /// If the handle was declared in a schema declared differently, saying which relation
    /// this schema has at that index.
    #[inline]
    #[track_caller]
    pub(crate) fn relation_index(&self, (tag, index): (u32, u32)) -> u32 {
        if self.relations.get(index as usize).map(|d| d.tag) != Some(tag) {
            self.foreign_relation(index);
        }
        index
    }

    /// Panics unless `(tag, index)` is a kind handle of this schema.
    #[inline]
    #[track_caller]
    pub(crate) fn check_table_tag(&self, what: &'static str, (tag, index): (u32, u32)) {
        if self.tables.get(index as usize).map(|d| d.tag) != Some(tag) {
            self.foreign_table(what, index);
        }
    }

    /// Panics unless `(tag, index)` is a polymorphic parent end handle of this schema.
    #[inline]
    #[track_caller]
    pub(crate) fn check_group_tag(&self, (tag, index): (u32, u32)) {
        if self.groups.get(index as usize).map(|g| g.tag) != Some(tag) {
            let here = self.groups.get(index as usize).map(|g| g.end.to_string());
            foreign_handle("polymorphic parent end", index, here);
        }
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn foreign_relation(&self, index: u32) -> ! {
        let here = self
            .relations
            .get(index as usize)
            .map(|d| d.name.to_string());
        foreign_handle("relation", index, here)
    }

    #[cold]
    #[inline(never)]
    #[track_caller]
    fn foreign_table(&self, what: &'static str, index: u32) -> ! {
        let here = self
            .tables
            .get(index as usize)
            .map(|d| format!("table `{}`", d.name));
        foreign_handle(what, index, here)
    }

    /// The index of a table handle of this schema (panics for another schema's).
    #[track_caller]
    pub(crate) fn table_handle_index<T>(&self, table: Table<T>) -> u32 {
        table.check(self)
    }

    pub(crate) fn table_index<T: 'static>(&self) -> Option<u32> {
        self.by_type.get(&TypeId::of::<T>()).copied()
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn foreign_handle(what: &str, index: u32, here: Option<String>) -> ! {
    match here {
        Some(here) => panic!(
            "a {what} handle (#{index}) of another schema was used: this store's schema has \
             {here} at #{index}, declared differently (another table, end name, Rust type or \
             declaration order); use the handles of the schema the store was built from, or \
             declare both schemas the same way"
        ),
        None => panic!(
            "a {what} handle (#{index}) of another schema was used: this store's schema has \
             no {what} #{index}; use the handles of the schema the store was built from"
        ),
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident<$($p:ident),*> $(, $w:ident = $wd:ty)?) => {
        $(#[$doc])*
        pub struct $name<$($p,)* $($w = $wd)?> {
            pub(crate) tag: u32,
            pub(crate) index: u32,
            _types: PhantomData<fn() -> ($($p,)* $($w)?)>,
        }

        impl<$($p,)* $($w)?> $name<$($p,)* $($w)?> {
            pub(crate) fn new(tag: u32, index: u32) -> Self {
                $name { tag, index, _types: PhantomData }
            }
        }

        impl<$($p,)* $($w)?> Clone for $name<$($p,)* $($w)?> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p,)* $($w)?> Copy for $name<$($p,)* $($w)?> {}
        impl<$($p,)* $($w)?> PartialEq for $name<$($p,)* $($w)?> {
            fn eq(&self, other: &Self) -> bool {
                self.tag == other.tag && self.index == other.index
            }
        }
        impl<$($p,)* $($w)?> Eq for $name<$($p,)* $($w)?> {}
        impl<$($p,)* $($w)?> fmt::Debug for $name<$($p,)* $($w)?> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(#{})"), self.index)
            }
        }
    };
}

handle!(
    /// The handle of a table of `T`, returned by [`Schema::table`].
    Table<T>
);
handle!(
    /// A polymorphic parent end of children `C`, returned by [`Schema::poly_parent`].
    PolyParent<C>
);
handle!(
    /// The handle of a one-to-many relation from parent `P` to child `C`, returned by
    /// [`Schema::one_to_many`].
    OneToMany<P, C>
);
handle!(
    /// The handle of a one-to-one relation between `A` and `B`, returned by
    /// [`Schema::one_to_one`].
    OneToOne<A, B>
);
handle!(
    /// The handle of a many-to-many relation between `A` and `B` whose links carry a `W`,
    /// returned by [`Schema::many_to_many`] and [`Schema::many_to_many_with`].
    ManyToMany<A, B>, W = ()
);

/// The handle of a kind `K` of the polymorphic base `B`, returned by [`Schema::kind`].
/// Converts into the kind's [`Table`] for declaring relations on that kind only.
pub struct Kind<B, K> {
    /// The kind table's tag.
    pub(crate) tag: u32,
    pub(crate) base: u32,
    pub(crate) table: u32,
    _types: PhantomData<fn() -> (B, K)>,
}

impl<B, K> Kind<B, K> {
    fn new(tag: u32, base: u32, table: u32) -> Self {
        Kind {
            tag,
            base,
            table,
            _types: PhantomData,
        }
    }

    /// The key of a kind row as a key of its base: free, and always valid (both name the
    /// same row).
    pub fn upcast(self, key: Key<K>) -> Key<B> {
        Key::from_raw(key.raw())
    }

    /// The kind's table handle, for relations on this kind only.
    pub fn table(self) -> Table<K> {
        Table::new(self.tag, self.table)
    }
}

impl<B, K> Clone for Kind<B, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B, K> Copy for Kind<B, K> {}
impl<B, K> fmt::Debug for Kind<B, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kind(#{} of #{})", self.table, self.base)
    }
}
impl<B, K> From<Kind<B, K>> for Table<K> {
    fn from(k: Kind<B, K>) -> Table<K> {
        k.table()
    }
}

impl<T> Table<T> {
    /// Panics unless the handle was declared in `schema` (or one declared the same way).
    #[track_caller]
    fn check(self, schema: &Schema) -> u32 {
        if schema.tables.get(self.index as usize).map(|t| t.tag) != Some(self.tag) {
            panic!(
                "a table handle (#{}) of another schema was used in a declaration: \
                 declare the relation with the handles this schema returned",
                self.index
            );
        }
        self.index
    }
}

/// One named end of a relation being declared, for [`Schema::relate`]: a table, the
/// name of its end (the field a row of that table would have, e.g. `posts` on a user), the
/// [`DeleteRule`] applied to the entities linked at the other end when an entity of this
/// table is deleted, and the policies of a self-referential relation.
struct NamedEnd<T> {
    table: Table<T>,
    name: &'static str,
    on_delete: DeleteRule,
    acyclic: bool,
    forbid_self_links: bool,
}

impl<T> Clone for NamedEnd<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for NamedEnd<T> {}

macro_rules! named_end {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        pub struct $name<T>(NamedEnd<T>);

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $name<T> {}
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!("#{}.", $what, "({:?}), on delete {:?}"),
                    self.0.table.index, self.0.name, self.0.on_delete
                )
            }
        }

        impl<T> $name<T> {
            /// What happens to the entities linked at the other end when an entity of this
            /// table is deleted: `users.many("posts").on_delete(DeleteRule::Cascade)`
            /// deletes a user's posts with the user. [`Nullify`](DeleteRule::Nullify) when
            /// not set.
            pub const fn on_delete(mut self, rule: DeleteRule) -> Self {
                self.0.on_delete = rule;
                self
            }

            /// Rejects any link that would close a cycle (a self-referential relation
            /// only; the policy is the relation's, set from either end); see
            /// [`Rules::acyclic`].
            pub const fn acyclic(mut self) -> Self {
                self.0.acyclic = true;
                self
            }

            /// Rejects linking an entity to itself (a self-referential relation only; the
            /// policy is the relation's, set from either end); see
            /// [`Rules::forbid_self_links`].
            pub const fn forbid_self_links(mut self) -> Self {
                self.0.forbid_self_links = true;
                self
            }
        }
    };
}

named_end!(
    /// A named end whose entities each have any number of partners (a one-to-many's
    /// parent, either end of a many-to-many): made by [`Table::many`] or [`Kind::many`],
    /// used by [`Schema::relate`].
    ManyEnd,
    "many"
);
named_end!(
    /// A named end whose entities each have at most one partner (a one-to-many's child,
    /// either end of a one-to-one): made by [`Table::one`] or [`Kind::one`], used by
    /// [`Schema::relate`].
    OneEnd,
    "one"
);

impl<T> Table<T> {
    const fn named(self, name: &'static str) -> NamedEnd<T> {
        NamedEnd {
            table: self,
            name,
            on_delete: DeleteRule::Nullify,
            acyclic: false,
            forbid_self_links: false,
        }
    }

    /// This table as a relation end named `name` whose entities each have any number of
    /// partners (`users.many("posts")`), for [`Schema::relate`].
    pub const fn many(self, name: &'static str) -> ManyEnd<T> {
        ManyEnd(self.named(name))
    }

    /// This table as a relation end named `name` whose entities each have at most one
    /// partner (`posts.one("author")`), for [`Schema::relate`].
    pub const fn one(self, name: &'static str) -> OneEnd<T> {
        OneEnd(self.named(name))
    }
}

impl<B, K> Kind<B, K> {
    /// This kind as a relation end with many partners (relations on this kind only); see
    /// [`Table::many`].
    pub fn many(self, name: &'static str) -> ManyEnd<K> {
        self.table().many(name)
    }

    /// This kind as a relation end with at most one partner (relations on this kind
    /// only); see [`Table::one`].
    pub fn one(self, name: &'static str) -> OneEnd<K> {
        self.table().one(name)
    }
}

/// Two named ends that [`Schema::relate`] declares a relation between: `many` with `one`
/// (either order) a one-to-many whose parent is the `many` end, `one` with `one` a
/// one-to-one, `many` with `many` a many-to-many without payload, and `many` with a
/// [`PolyParent`] a one-to-many into that polymorphic parent end (as
/// [`Schema::one_to_many_poly`]). Sealed.
pub trait Ends: ends::Sealed {
    /// The relation handle the declaration returns.
    type Handle;
    #[doc(hidden)]
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> Self::Handle;
}

mod ends {
    pub trait Sealed {}
    impl<A, B> Sealed for (super::ManyEnd<A>, super::OneEnd<B>) {}
    impl<A, B> Sealed for (super::OneEnd<A>, super::ManyEnd<B>) {}
    impl<A, B> Sealed for (super::OneEnd<A>, super::OneEnd<B>) {}
    impl<A, B> Sealed for (super::ManyEnd<A>, super::ManyEnd<B>) {}
    impl<P, C> Sealed for (super::ManyEnd<P>, super::PolyParent<C>) {}
}

impl<P: Entity, C: Entity> Ends for (ManyEnd<P>, OneEnd<C>) {
    type Handle = OneToMany<P, C>;
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> OneToMany<P, C> {
        let (tag, index) =
            schema.declare_ends::<(), P, C>(RelationKind::OneToMany, self.0 .0, self.1 .0);
        OneToMany::new(tag, index)
    }
}

impl<C: Entity, P: Entity> Ends for (OneEnd<C>, ManyEnd<P>) {
    type Handle = OneToMany<P, C>;
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> OneToMany<P, C> {
        (self.1, self.0).declare(schema)
    }
}

impl<A: Entity, B: Entity> Ends for (OneEnd<A>, OneEnd<B>) {
    type Handle = OneToOne<A, B>;
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> OneToOne<A, B> {
        let (tag, index) =
            schema.declare_ends::<(), A, B>(RelationKind::OneToOne, self.0 .0, self.1 .0);
        OneToOne::new(tag, index)
    }
}

impl<P: Entity, C: Entity> Ends for (ManyEnd<P>, PolyParent<C>) {
    type Handle = OneToMany<P, C>;
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> OneToMany<P, C> {
        let a = self.0 .0;
        let mut rules = Rules::new().on_delete(a.on_delete);
        if a.acyclic {
            rules = rules.acyclic();
        }
        if a.forbid_self_links {
            rules = rules.forbid_self_links();
        }
        schema.one_to_many_poly(a.table, a.name, self.1, rules)
    }
}

impl<A: Entity, B: Entity> Ends for (ManyEnd<A>, ManyEnd<B>) {
    type Handle = ManyToMany<A, B>;
    #[track_caller]
    fn declare(self, schema: &mut Schema) -> ManyToMany<A, B> {
        schema.relate_with::<A, B, ()>(self.0, self.1)
    }
}

mod sealed {
    pub trait Sealed {}
    impl<P, C> Sealed for super::OneToMany<P, C> {}
    impl<A, B> Sealed for super::OneToOne<A, B> {}
    impl<A, B, W> Sealed for super::ManyToMany<A, B, W> {}
}

/// What every relation handle offers: its two entity types and its identity.
/// Implemented by [`OneToMany`], [`OneToOne`] and [`ManyToMany`]; sealed.
pub trait Relation: Copy + sealed::Sealed {
    /// The entity type at the first end.
    type A: Entity;
    /// The entity type at the second end.
    type B: Entity;
    /// The kind of relation.
    const KIND: RelationKind;
    #[doc(hidden)]
    fn tag_and_index(self) -> (u32, u32);
}

impl<P: Entity, C: Entity> Relation for OneToMany<P, C> {
    type A = P;
    type B = C;
    const KIND: RelationKind = RelationKind::OneToMany;
    fn tag_and_index(self) -> (u32, u32) {
        (self.tag, self.index)
    }
}

impl<A: Entity, B: Entity> Relation for OneToOne<A, B> {
    type A = A;
    type B = B;
    const KIND: RelationKind = RelationKind::OneToOne;
    fn tag_and_index(self) -> (u32, u32) {
        (self.tag, self.index)
    }
}

impl<A: Entity, B: Entity, W: Entity> Relation for ManyToMany<A, B, W> {
    type A = A;
    type B = B;
    const KIND: RelationKind = RelationKind::ManyToMany;
    fn tag_and_index(self) -> (u32, u32) {
        (self.tag, self.index)
    }
}

/// Relations whose [`Store::link`](crate::Store::link) needs no payload: every
/// one-to-many and one-to-one, and a many-to-many whose payload has a default.
pub trait Linkable: Relation {
    #[doc(hidden)]
    fn default_payload(self) -> Box<dyn Any + Send + Sync>;
}
impl<P: Entity, C: Entity> Linkable for OneToMany<P, C> {
    fn default_payload(self) -> Box<dyn Any + Send + Sync> {
        Box::new(())
    }
}
impl<A: Entity, B: Entity> Linkable for OneToOne<A, B> {
    fn default_payload(self) -> Box<dyn Any + Send + Sync> {
        Box::new(())
    }
}
impl<A: Entity, B: Entity, W: Entity + Default> Linkable for ManyToMany<A, B, W> {
    fn default_payload(self) -> Box<dyn Any + Send + Sync> {
        Box::new(W::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N<const I: usize>;

    macro_rules! ids {
        ($($i:literal)*) => { vec![$(TypeId::of::<N<$i>>()),*] };
    }

    fn many() -> Vec<TypeId> {
        ids!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
             30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56
             57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83
             84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99)
    }

    #[test]
    fn type_map_finds_every_type_as_it_grows() {
        let ids = many();
        let mut map = TypeMap::default();
        assert_eq!(map.get(&ids[0]), None);
        for (i, &id) in ids.iter().enumerate() {
            map.insert(id, i as u32);
            for (j, id) in ids.iter().enumerate() {
                let want = (j <= i).then_some(j as u32);
                assert_eq!(map.get(id).copied(), want, "type {j} after {i} inserts");
                assert_eq!(map.contains_key(id), j <= i);
            }
        }
        assert!(map.buckets.len() >= 4 * ids.len());
        assert_eq!(map.get(&TypeId::of::<String>()), None);
    }

    #[test]
    fn type_map_falls_back_to_the_map_when_a_bucket_is_not_its_own() {
        let ids = many();
        let mut map = TypeMap::default();
        for (i, &id) in ids.iter().enumerate() {
            map.insert(id, i as u32);
        }
        // a type whose bucket is empty, or held by another type, is still found
        let (a, b) = (map.bucket(&ids[3]), map.bucket(&ids[7]));
        map.buckets[a] = None;
        map.buckets[b] = Some((ids[9], 9));
        assert_eq!(map.get(&ids[3]), Some(&3));
        assert_eq!(map.get(&ids[7]), Some(&7));
        assert_eq!(map.get(&ids[9]), Some(&9));
        // and a bucket's own type is found there
        let in_buckets = ids
            .iter()
            .filter(|id| map.buckets[map.bucket(id)].is_some_and(|(t, _)| t == **id))
            .count();
        assert!(
            in_buckets > ids.len() / 2,
            "{in_buckets} of {} in buckets",
            ids.len()
        );
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Owner;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Item;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Special;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Node;

    #[test]
    fn direct_children_follow_the_rules_and_kinds_and_indexes_declared_later() {
        let mut s = Schema::new();
        let owners = s.table::<Owner>("owners");
        let items = s.table::<Item>("items");
        let nodes = s.table::<Node>("nodes");
        let plain = s.one_to_many(owners, "items", items, "owner", Rules::new());
        let orphans = s.one_to_many(
            owners,
            "kept",
            items,
            "keeper",
            Rules::new().on_delete(DeleteRule::DeleteOrphan),
        );
        let tree = s.one_to_many(nodes, "kids", nodes, "up", Rules::new().acyclic());
        let direct = |s: &Schema, i: u32| s.relations[i as usize].direct_children();
        assert!(direct(&s, plain.index));
        assert!(!direct(&s, orphans.index), "delete-orphan");
        assert!(
            direct(&s, tree.index),
            "a forest: a new child makes no cycle"
        );
        let inline = |s: &Schema, i: u32| s.relations[i as usize].inline_children();
        assert!(inline(&s, plain.index) && inline(&s, tree.index));
        assert!(!inline(&s, orphans.index), "not direct");
        // an index declared on a child table later keeps the direct path, not the inline one
        s.index(nodes, "by_depth", |_: &Node| 0u32);
        assert!(
            direct(&s, tree.index) && !inline(&s, tree.index),
            "an indexed child table"
        );
        assert!(inline(&s, plain.index), "another table");
        // a kind declared on the child table after the relation turns it off
        s.kind::<Item, Special>(items, "special");
        assert!(!direct(&s, plain.index), "the child table has kinds");
        assert!(!inline(&s, plain.index), "the child table has kinds");
        assert!(direct(&s, tree.index), "another table");
    }
}
