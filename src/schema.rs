//! Declaring tables, relations and their rules.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::arena::{Arena, Column, ErasedArena, KindArena};
use crate::key::Key;
use crate::relation::{ErasedPayloads, PayloadVec};
use crate::snapshot::codec::{self, Blob, CodecError};
use crate::snapshot::load::{load_payloads, load_table, LoadPayloads, LoadTable};

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
    /// the check walks up from the new parent: O(depth). For a many-to-many it searches
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

/// Reads one stored row of a table's type from bytes: a migration from an older version.
pub(crate) type RowDecoder<T> =
    Box<dyn Fn(&[u8], &Blob) -> Result<(T, usize), CodecError> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct TableDef {
    pub name: &'static str,
    pub type_name: &'static str,
    pub make: fn() -> Box<dyn ErasedArena>,
    /// Loads the table's rows from a snapshot.
    pub load: LoadTable,
    /// Version of the row type (1 unless set).
    pub version: u32,
    /// Migrations by the version they read: each a boxed `RowDecoder<T>`.
    pub migrations: Vec<(u32, Arc<dyn Any + Send + Sync>)>,
    /// For a kind: the base table it belongs to.
    pub base: Option<u32>,
    /// For a base: its kind tables, in declaration order.
    pub kinds: Vec<u32>,
}

/// A polymorphic parent end: several one-to-many relations whose children are the same
/// table share it, and a child has a parent in at most one of them.
#[derive(Clone)]
pub(crate) struct GroupDef {
    pub child_table: u32,
    pub end: &'static str,
    pub members: Vec<u32>,
}

#[derive(Clone)]
pub(crate) struct RelationDef {
    pub kind: RelationKind,
    pub a_table: u32,
    pub b_table: u32,
    pub name: RelationName,
    pub rules: Rules,
    pub make_payloads: fn() -> Box<dyn ErasedPayloads>,
    /// Decodes `n` stored payloads.
    pub load_payloads: LoadPayloads,
    /// The polymorphic parent group this one-to-many belongs to.
    pub group: Option<u32>,
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
        let policy =
            self.self_referential() && (self.rules.forbid_self_links || self.rules.acyclic);
        !policy
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

pub(crate) type TypeMap = HashMap<TypeId, u32, std::hash::BuildHasherDefault<TypeIdHasher>>;

static NEXT_SCHEMA_ID: AtomicU32 = AtomicU32::new(1);

/// The declaration of a store's tables and relations, made once at start-up and handed to
/// [`Store::new`](crate::Store::new).
///
/// Declaring returns typed `Copy` handles ([`Table`], [`OneToMany`], [`OneToOne`],
/// [`ManyToMany`]) that carry a dense index: using them costs no name or type lookup.
/// Declaration mistakes (a name used twice, a handle from another schema) are programming
/// errors and panic with a message that names the culprit.
///
/// A clone of a schema is the same schema: the handles declared on either work with every
/// store built from either (for example a store loaded from a snapshot with
/// `Store::load(store.schema().clone(), path)`). Cloning is O(tables + relations).
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
    pub(crate) id: u32,
    pub(crate) tables: Vec<TableDef>,
    pub(crate) relations: Vec<RelationDef>,
    pub(crate) groups: Vec<GroupDef>,
    pub(crate) by_type: TypeMap,
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
    pub fn new() -> Self {
        Schema {
            id: NEXT_SCHEMA_ID.fetch_add(1, Ordering::Relaxed),
            tables: Vec::new(),
            relations: Vec::new(),
            groups: Vec::new(),
            by_type: TypeMap::default(),
        }
    }

    /// Registers the entity type `T` under a stable table name and returns its handle.
    /// Registering the same type under the same name again returns the same handle.
    ///
    /// # Panics
    ///
    /// If `T` is already registered under another name, or `name` is taken by another type.
    pub fn table<T: Entity>(&mut self, name: &'static str) -> Table<T> {
        if let Some(&index) = self.by_type.get(&TypeId::of::<T>()) {
            let existing = &self.tables[index as usize];
            assert!(
                existing.name == name && existing.base.is_none(),
                "type {} is already registered as table `{}`",
                type_name::<T>(),
                existing.name
            );
            return Table::new(self.id, index);
        }
        let index = self.register::<T>(name, None, || {
            Box::new(Column::<T>::Slots(Arena::default()))
        });
        Table::new(self.id, index)
    }

    fn register<T: Entity>(
        &mut self,
        name: &'static str,
        base: Option<u32>,
        make: fn() -> Box<dyn ErasedArena>,
    ) -> u32 {
        if let Some(t) = self.tables.iter().find(|t| t.name == name) {
            panic!(
                "table name `{name}` is already taken by type {}",
                t.type_name
            );
        }
        assert!(
            !self.by_type.contains_key(&TypeId::of::<T>()),
            "type {} is already registered",
            type_name::<T>()
        );
        let index = self.tables.len() as u32;
        self.tables.push(TableDef {
            name,
            type_name: type_name::<T>(),
            make,
            load: load_table::<T>,
            version: 1,
            migrations: Vec::new(),
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
    pub fn kind<B: Entity, K: Entity>(&mut self, base: Table<B>, tag: &'static str) -> Kind<B, K> {
        let base = base.check(self.id);
        assert!(
            self.tables[base as usize].base.is_none(),
            "kinds of kinds are not supported: `{}` is a kind",
            self.tables[base as usize].name
        );
        let index = self.register::<K>(tag, Some(base), || {
            Box::new(Column::<K>::Kind(KindArena::default()))
        });
        self.tables[base as usize].kinds.push(index);
        Kind::new(self.id, base, index)
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
    pub fn poly_parent<C: Entity>(
        &mut self,
        child: impl Into<Table<C>>,
        end: &'static str,
    ) -> PolyParent<C> {
        let child = child.into().check(self.id);
        self.assert_end_free(child, end);
        self.groups.push(GroupDef {
            child_table: child,
            end,
            members: Vec::new(),
        });
        PolyParent::new(self.id, self.groups.len() as u32 - 1)
    }

    /// Declares a one-to-many from `parent` (its collection named `children_end`) into a
    /// polymorphic parent end. Back-population works on every parent type; delete rules
    /// apply per relation as for [`one_to_many`](Self::one_to_many).
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
    pub fn one_to_many_poly<P: Entity, C: Entity>(
        &mut self,
        parent: impl Into<Table<P>>,
        children_end: &'static str,
        group: PolyParent<C>,
        rules: impl Into<Rules>,
    ) -> OneToMany<P, C> {
        assert!(
            group.schema == self.id,
            "a PolyParent handle of another schema was used"
        );
        let (child, end) = {
            let g = &self.groups[group.index as usize];
            (g.child_table, g.end)
        };
        let rules = rules.into();
        let parent = parent.into().check(self.id);
        self.assert_end_free(parent, children_end);
        let index = self.push_relation::<()>(
            RelationKind::OneToMany,
            (parent, children_end),
            (child, end),
            rules,
            Some(group.index),
        );
        self.groups[group.index as usize].members.push(index);
        OneToMany::new(self.id, index)
    }

    /// Declares a one-to-many relation: each `C` has at most one parent `P`
    /// (its `parent_end`, e.g. `author`), each `P` an ordered collection of `C`
    /// (its `children_end`, e.g. `posts`). Use the same table twice for a hierarchy.
    ///
    /// # Panics
    ///
    /// If a table handle is from another schema, an end name is already used on its
    /// table, or `rules` asks for acyclicity on a relation between two different tables.
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
            (parent.into().check(self.id), children_end),
            (child.into().check(self.id), parent_end),
            rules.into(),
        );
        OneToMany::new(self.id, index)
    }

    /// Declares a one-to-one relation: each entity at either end has at most one partner.
    /// Linking a new pair evicts the previous partner of each.
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
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
            (a.into().check(self.id), a_end),
            (b.into().check(self.id), b_end),
            rules.into(),
        );
        OneToOne::new(self.id, index)
    }

    /// Declares a many-to-many relation without payload.
    ///
    /// # Panics
    ///
    /// As [`one_to_many`](Self::one_to_many).
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
            (a.into().check(self.id), a_end),
            (b.into().check(self.id), b_end),
            rules.into(),
        );
        ManyToMany::new(self.id, index)
    }

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
            "table `{}` already has a relation end named `{end}`",
            self.tables[table as usize].name
        );
    }

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
            "the two ends of a relation need different names"
        );
        assert!(
            !(rules.acyclic || rules.forbid_self_links) || a_table == b_table,
            "acyclic and forbid_self_links apply to self-referential relations only \
             (`{a_end}` / `{b_end}` join two different tables)"
        );
        let index = self.relations.len() as u32;
        self.relations.push(RelationDef {
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
            group,
        });
        index
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
    pub fn set_version<T: Entity>(&mut self, table: impl Into<Table<T>>, version: u32) {
        let t = table.into().check(self.id) as usize;
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
    pub fn migrate<Old, T>(
        &mut self,
        table: impl Into<Table<T>>,
        from: u32,
        convert: impl Fn(Old) -> T + Send + Sync + 'static,
    ) where
        Old: DeserializeOwned + 'static,
        T: Entity,
    {
        let t = table.into().check(self.id) as usize;
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
        let decoder: RowDecoder<T> = Box::new(move |bytes, blob| {
            codec::decode_in::<Old>(bytes, blob).map(|(old, used)| (convert(old), used))
        });
        def.migrations.push((from, Arc::new(decoder)));
    }

    /// The schema's fingerprint: the format's [`checksum`](crate::snapshot::checksum) of
    /// its canonical text (tables with versions and kinds, relations with ends and rules,
    /// polymorphic parent ends, in declaration order). Snapshots record it; two schemas
    /// with the same fingerprint load each other's snapshots without comparison.
    pub fn fingerprint(&self) -> u64 {
        crate::snapshot::image::SchemaDesc::of(self).fingerprint()
    }

    /// Number of tables declared.
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    /// Number of relations declared.
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// The names of the tables, in declaration order.
    pub fn table_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tables.iter().map(|t| t.name)
    }

    /// The relations, in declaration order: kind and name.
    pub fn relations(&self) -> impl Iterator<Item = (RelationKind, RelationName)> + '_ {
        self.relations.iter().map(|r| (r.kind, r.name))
    }

    pub(crate) fn table_index<T: 'static>(&self) -> Option<u32> {
        self.by_type.get(&TypeId::of::<T>()).copied()
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident<$($p:ident),*> $(, $w:ident = $wd:ty)?) => {
        $(#[$doc])*
        pub struct $name<$($p,)* $($w = $wd)?> {
            pub(crate) schema: u32,
            pub(crate) index: u32,
            _types: PhantomData<fn() -> ($($p,)* $($w)?)>,
        }

        impl<$($p,)* $($w)?> $name<$($p,)* $($w)?> {
            pub(crate) fn new(schema: u32, index: u32) -> Self {
                $name { schema, index, _types: PhantomData }
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
                self.schema == other.schema && self.index == other.index
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
    pub(crate) schema: u32,
    pub(crate) base: u32,
    pub(crate) table: u32,
    _types: PhantomData<fn() -> (B, K)>,
}

impl<B, K> Kind<B, K> {
    fn new(schema: u32, base: u32, table: u32) -> Self {
        Kind {
            schema,
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
        Table::new(self.schema, self.table)
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
    /// Panics unless the handle was declared in the schema with id `schema`.
    fn check(self, schema: u32) -> u32 {
        assert!(
            self.schema == schema,
            "a table handle of another schema was used in a relation declaration"
        );
        self.index
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
    fn schema_and_index(self) -> (u32, u32);
}

impl<P: Entity, C: Entity> Relation for OneToMany<P, C> {
    type A = P;
    type B = C;
    const KIND: RelationKind = RelationKind::OneToMany;
    fn schema_and_index(self) -> (u32, u32) {
        (self.schema, self.index)
    }
}

impl<A: Entity, B: Entity> Relation for OneToOne<A, B> {
    type A = A;
    type B = B;
    const KIND: RelationKind = RelationKind::OneToOne;
    fn schema_and_index(self) -> (u32, u32) {
        (self.schema, self.index)
    }
}

impl<A: Entity, B: Entity, W: Entity> Relation for ManyToMany<A, B, W> {
    type A = A;
    type B = B;
    const KIND: RelationKind = RelationKind::ManyToMany;
    fn schema_and_index(self) -> (u32, u32) {
        (self.schema, self.index)
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
