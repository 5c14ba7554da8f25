//! The change feed: what each committed transaction or call changed, as a batch of events.
//!
//! A batch is derived from the log of inverses when the call or transaction ends: each
//! inverse names one primitive the call made (an `Unlink` entry is a link made, a
//! `Restore` a removal), walked newest first so that each event carries the value it
//! wrote (the value a later inverse in the same log kept, or the store's current one).
//! Nothing is recorded besides the log, and no user code runs inside a mutation: batches
//! wait in the store until consumers pull them, each through its own [`FeedCursor`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::grave::Boxed;
use crate::key::{AnyKey, Key, RawKey};
use crate::path::Undo;
use crate::relation::{ManyToManyStore, RelationStore};
use crate::schema::{End, Relation, RelationKind, RelationName, Table};
use crate::store::Store;
use crate::umbrella::Error;

/// Where a batch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A committed transaction or a changing call outside one.
    Commit,
    /// [`Store::undo`].
    Undo,
    /// [`Store::redo`].
    Redo,
}

/// A table named in a change: its name and its place in the schema.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableRef {
    name: &'static str,
    index: u32,
}

impl TableRef {
    /// The table's name, as declared.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The table's place in the schema ([`TableDescription::index`](crate::TableDescription)).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Whether this is the table `table` (of the same schema).
    pub fn is<T>(self, table: Table<T>) -> bool {
        self.index == table.index
    }
}

impl fmt::Debug for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// An entity named in a change: its table and key. Prints as `users[0v1]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityRef {
    /// The table the key belongs to (for a kind row, the kind's table).
    pub table: TableRef,
    /// The key within that table.
    pub key: RawKey,
}

impl EntityRef {
    /// The key as a key of `table`, if the entity belongs to it.
    pub fn key_in<T>(self, table: Table<T>) -> Option<Key<T>> {
        self.table.is(table).then(|| Key::from_raw(self.key))
    }

    /// The table's name and the key.
    pub fn any(self) -> AnyKey {
        AnyKey {
            table: self.table.name,
            key: self.key,
        }
    }
}

impl fmt::Debug for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{:?}]", self.table.name, self.key)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A relation named in a change.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelationRef {
    name: RelationName,
    index: u32,
}

impl RelationRef {
    /// How the relation is named (`users.posts <-> posts.author`).
    pub fn name(self) -> RelationName {
        self.name
    }

    /// The relation's place in the schema
    /// ([`RelationDescription::index`](crate::RelationDescription)).
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// Whether this is the relation `rel` (of the same schema).
    pub fn is<R: Relation>(self, rel: R) -> bool {
        self.index == rel.tag_and_index().1
    }
}

impl fmt::Debug for RelationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

/// A row or payload value as a change carries it: its snapshot encoding (the store's
/// types are not known to a feed's consumer). Decode it with [`Encoded::decode`].
#[derive(Clone, PartialEq, Eq)]
pub struct Encoded(Result<Vec<u8>, String>);

impl Encoded {
    /// Decodes the value as a `T` (the row type of the table, or the relation's payload
    /// type).
    ///
    /// # Errors
    ///
    /// A message if the value could not be encoded when the batch was made (its
    /// `Serialize` failed or panicked) or its bytes do not decode as a `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let bytes = self.0.as_ref().map_err(Clone::clone)?;
        crate::codec::decode_one(bytes)
    }

    /// The encoded bytes, or why the value could not be encoded.
    pub fn bytes(&self) -> Result<&[u8], &str> {
        self.0.as_deref().map_err(String::as_str)
    }
}

impl fmt::Debug for Encoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(b) => write!(f, "{} bytes", b.len()),
            Err(e) => write!(f, "unencodable: {e}"),
        }
    }
}

/// One change of a batch. Applied in order to a copy of the store as it was before the
/// batch (with [`Store::apply_changes`]), the changes of a batch make it equal to the
/// store after the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// An entity was inserted (a kind row: into the kind's table, under its base key).
    Inserted {
        /// The new entity.
        entity: EntityRef,
        /// Its value.
        row: Encoded,
    },
    /// An entity was removed (every link of it was removed before, as changes of the
    /// same batch).
    Removed {
        /// The removed entity.
        entity: EntityRef,
    },
    /// An entity's value changed.
    Updated {
        /// The entity.
        entity: EntityRef,
        /// Its new value.
        row: Encoded,
    },
    /// A row of a polymorphic base changed its kind: its row of kind `from` was removed
    /// and `row` became its row of kind `to`, under the same key.
    KindChanged {
        /// The row, as a key of its base table.
        entity: EntityRef,
        /// The old kind's table.
        from: TableRef,
        /// The new kind's table.
        to: TableRef,
        /// The new kind's row.
        row: Encoded,
    },
    /// A link was made. It is appended to both ends' lists (a later
    /// [`Reordered`](Change::Reordered) of the same batch says where it belongs when it
    /// was put back in place by an undo or a redo).
    Linked {
        /// The relation.
        relation: RelationRef,
        /// The entity at the first end (the parent of a one-to-many).
        a: EntityRef,
        /// The entity at the second end.
        b: EntityRef,
        /// The link's payload (many-to-many; empty for `()`), else `None`.
        payload: Option<Encoded>,
    },
    /// A link was removed.
    Unlinked {
        /// The relation.
        relation: RelationRef,
        /// The entity at the first end.
        a: EntityRef,
        /// The entity at the second end.
        b: EntityRef,
    },
    /// The entity at the second end of a one-to-many (a child) or one-to-one moved from
    /// one partner to another: one event for an unlink and a link.
    Moved {
        /// The relation.
        relation: RelationRef,
        /// The entity that moved (second end).
        child: EntityRef,
        /// Its old partner (first end).
        from: EntityRef,
        /// Its new partner (first end); the link is appended to its list.
        to: EntityRef,
    },
    /// The order of a list changed: `order` is every partner of `owner` at `end`, in
    /// their new order. Reported once per list and batch, after the batch's links.
    Reordered {
        /// The relation.
        relation: RelationRef,
        /// The end whose list changed (`End::A`: a parent's children).
        end: End,
        /// The entity owning the list.
        owner: EntityRef,
        /// The partners' keys, in order.
        order: Vec<RawKey>,
    },
    /// The order a kind's rows are listed in changed: its row at `position` and its last
    /// row swapped places. An undo or redo puts a removed kind row back in its old place
    /// this way, right after inserting it (last).
    KindRowsSwapped {
        /// The kind's table.
        kind: TableRef,
        /// The position (from 0) of the row that swapped with the last one.
        position: u32,
    },
    /// The payload of a many-to-many link changed.
    PayloadChanged {
        /// The relation.
        relation: RelationRef,
        /// The entity at the first end.
        a: EntityRef,
        /// The entity at the second end.
        b: EntityRef,
        /// The new payload.
        payload: Encoded,
    },
}

impl Change {
    /// Whether the change concerns an entity of the table `index` (either end of a link,
    /// the owner of a list).
    fn touches_table(&self, index: u32) -> bool {
        match self {
            Change::Inserted { entity, .. }
            | Change::Removed { entity }
            | Change::Updated { entity, .. } => entity.table.index == index,
            Change::KindChanged {
                entity, from, to, ..
            } => [entity.table, *from, *to].iter().any(|t| t.index == index),
            Change::Linked { a, b, .. }
            | Change::Unlinked { a, b, .. }
            | Change::PayloadChanged { a, b, .. } => {
                a.table.index == index || b.table.index == index
            }
            Change::Moved {
                child, from, to, ..
            } => [child, from, to].iter().any(|e| e.table.index == index),
            Change::Reordered { owner, .. } => owner.table.index == index,
            Change::KindRowsSwapped { kind, .. } => kind.index == index,
        }
    }

    /// The relation the change is about, if any.
    pub fn relation(&self) -> Option<RelationRef> {
        match self {
            Change::Linked { relation, .. }
            | Change::Unlinked { relation, .. }
            | Change::Moved { relation, .. }
            | Change::Reordered { relation, .. }
            | Change::PayloadChanged { relation, .. } => Some(*relation),
            _ => None,
        }
    }
}

/// One line a change: `removed posts[1v1]`, `unlinked users[0v1] -> posts[1v1] (users.posts
/// <-> posts.author)`, `moved posts[1v1] from users[0v1] to users[2v1] (..)`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Inserted { entity, .. } => write!(f, "inserted {entity}"),
            Change::Removed { entity } => write!(f, "removed {entity}"),
            Change::Updated { entity, .. } => write!(f, "updated {entity}"),
            Change::KindChanged {
                entity, from, to, ..
            } => write!(f, "changed {entity} from kind {from:?} to {to:?}"),
            Change::Linked { relation, a, b, .. } => write!(f, "linked {a} -> {b} ({relation:?})"),
            Change::Unlinked { relation, a, b } => {
                write!(f, "unlinked {a} -> {b} ({relation:?})")
            }
            Change::Moved {
                relation,
                child,
                from,
                to,
            } => write!(f, "moved {child} from {from} to {to} ({relation:?})"),
            Change::Reordered {
                relation,
                end,
                owner,
                order,
            } => write!(
                f,
                "reordered the {} list of {owner} ({relation:?}): {order:?}",
                match end {
                    End::A => relation.name.a_end,
                    End::B => relation.name.b_end,
                }
            ),
            Change::PayloadChanged { relation, a, b, .. } => {
                write!(f, "changed the payload of {a} -> {b} ({relation:?})")
            }
            Change::KindRowsSwapped { kind, position } => {
                write!(f, "swapped {kind:?} row {position} with the last one")
            }
        }
    }
}

/// What one committed transaction, call, undo or redo changed.
#[derive(Clone, Debug)]
pub struct ChangeBatch {
    /// The batch's number: consecutive, from 1, per store.
    pub seq: u64,
    /// What made the batch.
    pub origin: Origin,
    /// The step's label ([`Store::step`]), if it has one.
    pub label: Option<Arc<str>>,
    /// The changes, in the order they were made (then the batch's reorders).
    pub changes: Vec<Change>,
}

/// Which changes a [`FeedCursor`] reads: those touching one of its tables or relations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Filter {
    tables: Vec<u32>,
    relations: Vec<u32>,
}

impl Filter {
    fn admits(&self, c: &Change) -> bool {
        (self.tables.is_empty() && self.relations.is_empty())
            || self.tables.iter().any(|&t| c.touches_table(t))
            || c.relation()
                .is_some_and(|r| self.relations.contains(&r.index))
    }
}

/// A consumer's place in a store's change feed: the number of the next batch it reads,
/// and what it reads. Each consumer keeps its own, so consumers never take each other's
/// batches. Made by [`Store::feed_cursor`]; read with [`Store::read_feed`].
#[derive(Clone, Debug)]
pub struct FeedCursor {
    next: u64,
    filter: Arc<Filter>,
}

impl FeedCursor {
    /// Reads only changes that touch an entity of `table` (added to any tables and
    /// relations named before).
    pub fn table<T>(mut self, table: Table<T>) -> Self {
        Arc::make_mut(&mut self.filter).tables.push(table.index);
        self
    }

    /// Reads only changes of the relation `rel` (added to any tables and relations named
    /// before).
    pub fn relation<R: Relation>(mut self, rel: R) -> Self {
        Arc::make_mut(&mut self.filter)
            .relations
            .push(rel.tag_and_index().1);
        self
    }

    /// The number of the next batch this cursor reads.
    pub fn position(&self) -> u64 {
        self.next
    }
}

/// A batch as a cursor reads it: only the changes its filter admits.
#[derive(Clone, Debug)]
pub struct BatchView<'a> {
    batch: &'a ChangeBatch,
    filter: Arc<Filter>,
}

impl<'a> BatchView<'a> {
    /// The whole batch, unfiltered.
    pub fn batch(&self) -> &'a ChangeBatch {
        self.batch
    }

    /// The batch's number.
    pub fn seq(&self) -> u64 {
        self.batch.seq
    }

    /// What made the batch.
    pub fn origin(&self) -> Origin {
        self.batch.origin
    }

    /// The step's label, if any.
    pub fn label(&self) -> Option<&'a str> {
        self.batch.label.as_deref()
    }

    /// The changes the cursor reads, in order.
    pub fn changes(&self) -> impl Iterator<Item = &'a Change> + '_ {
        self.batch.changes.iter().filter(|c| self.filter.admits(c))
    }
}

/// Why [`Store::read_feed`] or [`Store::apply_changes`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedError {
    /// The feed is off: switch it on with [`Store::enable_feed`].
    Off,
    /// The cursor fell behind: `missed` batches were dropped (the feed keeps at most the
    /// number given to [`Store::enable_feed`]) before it read them. The cursor now
    /// points at the oldest batch kept; a replica must be rebuilt from a snapshot.
    Lagged {
        /// Batches the cursor will never see.
        missed: u64,
    },
    /// A change does not fit this store (another schema, a key that is taken or stale,
    /// a value that does not decode); the batch was not applied.
    Mismatch(String),
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::Off => {
                f.write_str("the change feed is off: switch it on with Store::enable_feed")
            }
            FeedError::Lagged { missed } => write!(
                f,
                "the feed cursor fell behind: {missed} batches were dropped before it read \
                 them (raise the capacity given to Store::enable_feed or read more often)"
            ),
            FeedError::Mismatch(m) => write!(f, "a change does not fit this store: {m}"),
        }
    }
}

impl std::error::Error for FeedError {}

impl From<FeedError> for Error {
    fn from(e: FeedError) -> Self {
        Error::Feed(e)
    }
}

/// The batches a store keeps for its consumers.
pub(crate) struct Feed {
    batches: VecDeque<ChangeBatch>,
    capacity: usize,
    next_seq: u64,
}

impl Feed {
    pub(crate) fn push(&mut self, mut batch: ChangeBatch) {
        if batch.changes.is_empty() {
            return;
        }
        batch.seq = self.next_seq;
        self.next_seq += 1;
        if self.batches.len() == self.capacity {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

/// A value some later primitive of the same log saw (or none: the current value).
enum After<'l> {
    /// Before this point the entity or link did not exist.
    Gone,
    Boxed(&'l Boxed),
    /// The value in the table's vault this many places before its newest.
    Vaulted(usize),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Row(u32, RawKey),
    Pair(u32, RawKey, RawKey),
}

/// The batch of changes the primitives logged in `log` made, as seen from the store now.
pub(crate) fn derive(
    store: &Store,
    log: &[Undo],
    origin: Origin,
    label: Option<Arc<str>>,
) -> ChangeBatch {
    let table = |t: u32| TableRef {
        name: store.schema.tables[t as usize].name,
        index: t,
    };
    let entity = |t: u32, key: RawKey| EntityRef {
        table: table(t),
        key,
    };
    let relation = |r: u32| RelationRef {
        name: store.schema.relations[r as usize].name,
        index: r,
    };
    let ends = |r: u32, a: RawKey, b: RawKey| {
        let def = &store.schema.relations[r as usize];
        (entity(def.a_table, a), entity(def.b_table, b))
    };
    let mut after = Afters::new(log.len());
    let mut dirty: Vec<(u32, End, RawKey)> = Vec::new();
    let mut out = Vec::with_capacity(log.len());
    let row_after = |after: &Afters<'_>, t: u32, key: RawKey| {
        let arena = &store.tables[t as usize];
        Encoded(match after.get(&Place::Row(t, key)) {
            None => arena.encode_row(key),
            Some(After::Boxed(v)) => arena.encode_boxed(&***v),
            Some(After::Vaulted(back)) => arena.encode_vaulted(*back),
            Some(After::Gone) => Err("the row was inserted twice".to_string()),
        })
    };
    let payload_after = |after: &Afters<'_>, r: &ManyToManyStore, rel: u32, a, b| {
        Encoded(match after.get(&Place::Pair(rel, a, b)) {
            None => {
                let i = r
                    .link_index(a, b)
                    .expect("a link the batch made or changed");
                r.payloads.encode_at(i)
            }
            Some(After::Boxed(v)) => r.payloads.encode_boxed(&***v),
            Some(After::Gone) => Err("the link did not exist then".to_string()),
            Some(After::Vaulted(_)) => unreachable!("payloads are not vaulted"),
        })
    };
    // per table: the vaulted values met so far (the log's newest first, as the vault's)
    let mut vaulted: Vec<usize> = Vec::new();
    for undo in log.iter().rev() {
        match undo {
            Undo::Vaulted { table: t, key } => {
                let t = *t as usize;
                if vaulted.len() <= t {
                    vaulted.resize(t + 1, 0);
                }
                after.insert(Place::Row(t as u32, *key), After::Vaulted(vaulted[t]));
                vaulted[t] += 1;
                out.push(Change::Removed {
                    entity: entity(t as u32, *key),
                });
            }
            Undo::Remove { table: t, key } => {
                let row = row_after(&after, *t, *key);
                after.insert(Place::Row(*t, *key), After::Gone);
                out.push(Change::Inserted {
                    entity: entity(*t, *key),
                    row,
                });
            }
            Undo::Restore {
                table: t,
                key,
                value,
            } => {
                after.insert(Place::Row(*t, *key), After::Boxed(value));
                out.push(Change::Removed {
                    entity: entity(*t, *key),
                });
            }
            Undo::Replace {
                table: t,
                key,
                value,
            } => {
                let row = row_after(&after, *t, *key);
                after.insert(Place::Row(*t, *key), After::Boxed(value));
                out.push(Change::Updated {
                    entity: entity(*t, *key),
                    row,
                });
            }
            Undo::Unlink { rel, a, b, at } => {
                let payload = match &store.relations[*rel as usize] {
                    RelationStore::ManyToMany(r) => Some(payload_after(&after, r, *rel, *a, *b)),
                    _ => None,
                };
                if payload.is_some() {
                    after.insert(Place::Pair(*rel, *a, *b), After::Gone);
                }
                // a one-to-one end has no order to report
                let ordered = !matches!(store.relations[*rel as usize], RelationStore::OneToOne(_));
                if *at && ordered {
                    dirty.push((*rel, End::A, *a));
                    if payload.is_some() {
                        dirty.push((*rel, End::B, *b));
                    }
                }
                let (a, b) = ends(*rel, *a, *b);
                out.push(Change::Linked {
                    relation: relation(*rel),
                    a,
                    b,
                    payload,
                });
            }
            Undo::Relink {
                rel, a, b, payload, ..
            } => {
                if let Some(p) = payload {
                    after.insert(Place::Pair(*rel, *a, *b), After::Boxed(p));
                }
                let (a, b) = ends(*rel, *a, *b);
                out.push(Change::Unlinked {
                    relation: relation(*rel),
                    a,
                    b,
                });
            }
            Undo::Payload { rel, a, b, value } => {
                let RelationStore::ManyToMany(r) = &store.relations[*rel as usize] else {
                    unreachable!("payload on a relation that is not many-to-many")
                };
                let payload = payload_after(&after, r, *rel, *a, *b);
                after.insert(Place::Pair(*rel, *a, *b), After::Boxed(value));
                let (a, b) = ends(*rel, *a, *b);
                out.push(Change::PayloadChanged {
                    relation: relation(*rel),
                    a,
                    b,
                    payload,
                });
            }
            Undo::Swap { table: t, pos } => out.push(Change::KindRowsSwapped {
                kind: table(*t),
                position: *pos,
            }),
            // indexes are derived: a replica keeps its own
            Undo::Index { .. } => {}
            Undo::Order {
                rel,
                end,
                key,
                logical,
                ..
            } => {
                if *logical {
                    dirty.push((*rel, *end, *key));
                }
            }
        }
    }
    out.reverse();
    coalesce(&mut out);
    let mut changes = out;
    // the final order of every list whose order is not that of appends
    let mut seen = HashSet::new();
    for (rel, end, key) in dirty.into_iter().rev() {
        if !seen.insert((rel, end, key)) {
            continue;
        }
        let def = &store.schema.relations[rel as usize];
        let t = def.table(end);
        if !store.tables[t as usize].contains(key) {
            continue;
        }
        let order = store.relations[rel as usize].partners(end, key);
        if order.len() < 2 {
            continue; // any order of one is the appended order
        }
        changes.push(Change::Reordered {
            relation: relation(rel),
            end,
            owner: entity(t, key),
            order,
        });
    }
    ChangeBatch {
        seq: 0,
        origin,
        label,
        changes,
    }
}

/// Joins an unlink and a link of the same child into a move, and a kind row's removal
/// and its new kind's insert into a kind change, in place.
fn coalesce(v: &mut Vec<Change>) {
    let mut w = 0;
    for r in 0..v.len() {
        if w > 0 {
            if let Some(j) = join(&v[w - 1], &v[r]) {
                v[w - 1] = j;
                continue;
            }
        }
        v.swap(w, r);
        w += 1;
    }
    v.truncate(w);
}

fn join(last: &Change, next: &Change) -> Option<Change> {
    match (last, next) {
        (
            Change::Unlinked {
                relation: r1,
                a: from,
                b: c1,
            },
            Change::Linked {
                relation: r2,
                a: to,
                b: c2,
                payload: None,
            },
        ) if r1 == r2 && c1 == c2 => Some(Change::Moved {
            relation: *r1,
            child: *c1,
            from: *from,
            to: *to,
        }),
        (Change::Removed { entity: old }, Change::Inserted { entity: new, row })
            if old.key == new.key && old.table != new.table =>
        {
            Some(Change::KindChanged {
                entity: *new,
                from: old.table,
                to: new.table,
                row: row.clone(),
            })
        }
        _ => None,
    }
}

/// The value each row or link had after a point of the log, for the entries walked so
/// far (newest first): a short list for the log of one call, a map for a long one.
enum Afters<'l> {
    Few(Vec<(Place, After<'l>)>),
    Many(HashMap<Place, After<'l>>),
}

impl<'l> Afters<'l> {
    fn new(entries: usize) -> Self {
        if entries <= 16 {
            Afters::Few(Vec::new())
        } else {
            Afters::Many(HashMap::with_capacity(entries))
        }
    }

    fn get(&self, p: &Place) -> Option<&After<'l>> {
        match self {
            Afters::Few(v) => v.iter().rev().find(|(q, _)| q == p).map(|(_, a)| a),
            Afters::Many(m) => m.get(p),
        }
    }

    fn insert(&mut self, p: Place, a: After<'l>) {
        match self {
            Afters::Few(v) => v.push((p, a)),
            Afters::Many(m) => {
                m.insert(p, a);
            }
        }
    }
}

/// # Change feed
///
/// Off by default (and then free). With the feed on, every committed top-level
/// transaction, changing call outside a transaction, undo and redo leaves a
/// [`ChangeBatch`] in the store; consumers pull them through their own [`FeedCursor`]s,
/// so no user code runs inside a mutation and one consumer never takes another's events.
/// A rolled-back transaction leaves nothing.
///
/// Cost while on: each change logs its inverse (as in a transaction), and when the call
/// ends the log is turned into events, encoding every inserted or updated row and every
/// new payload (as a snapshot does): O(changes) time and the encoded bytes in memory. The
/// store keeps the last `capacity` batches; a cursor that falls further behind gets
/// [`FeedError::Lagged`].
impl Store {
    /// Switches the change feed on, keeping the last `capacity` batches (at least 1). If
    /// it is on already, only the capacity changes (dropping the oldest batches).
    ///
    /// # Panics
    ///
    /// Inside a transaction.
    pub fn enable_feed(&mut self, capacity: usize) {
        assert!(
            self.depth == 0,
            "enable_feed inside a transaction: switch the feed on between transactions"
        );
        let capacity = capacity.max(1);
        match &mut self.feed {
            Some(f) => {
                f.capacity = capacity;
                while f.batches.len() > capacity {
                    f.batches.pop_front();
                }
            }
            None => {
                self.feed = Some(Box::new(Feed {
                    batches: VecDeque::new(),
                    capacity,
                    next_seq: 1,
                }))
            }
        }
        self.update_recording();
    }

    /// Switches the change feed off and drops its batches.
    ///
    /// # Panics
    ///
    /// Inside a transaction.
    pub fn disable_feed(&mut self) {
        assert!(
            self.depth == 0,
            "disable_feed inside a transaction: switch the feed off between transactions"
        );
        self.feed = None;
        self.update_recording();
    }

    /// A cursor that reads every batch made from now on. Narrow it with
    /// [`FeedCursor::table`] and [`FeedCursor::relation`].
    pub fn feed_cursor(&self) -> FeedCursor {
        FeedCursor {
            next: self.feed.as_ref().map_or(1, |f| f.next_seq),
            filter: Arc::default(),
        }
    }

    /// The batches `cursor` has not read yet, oldest first; the cursor moves past them.
    /// O(batches returned).
    ///
    /// # Errors
    ///
    /// [`FeedError::Off`]; [`FeedError::Lagged`] if batches the cursor had not read were
    /// dropped (the cursor then moves to the oldest batch kept, so the next read
    /// succeeds).
    pub fn read_feed(&self, cursor: &mut FeedCursor) -> Result<Vec<BatchView<'_>>, FeedError> {
        let feed = self.feed.as_deref().ok_or(FeedError::Off)?;
        let oldest = feed.batches.front().map_or(feed.next_seq, |b| b.seq);
        if cursor.next < oldest {
            let missed = oldest - cursor.next;
            cursor.next = oldest;
            return Err(FeedError::Lagged { missed });
        }
        let skip = (cursor.next - oldest) as usize;
        cursor.next = feed.next_seq;
        Ok(feed
            .batches
            .iter()
            .skip(skip)
            .map(|batch| BatchView {
                batch,
                filter: cursor.filter.clone(),
            })
            .collect())
    }

    /// Applies a batch read from another store's feed to this store, all or nothing: a
    /// replica kept in step. Applied to a store equal to the source before the batch
    /// (same schema, same keys, same values, same order of every list), it makes this
    /// store equal to the source after the batch. O(changes), plus O(list) per
    /// [`Change::Reordered`].
    ///
    /// # Errors
    ///
    /// [`FeedError::Mismatch`] if a change does not fit (another schema, a stale or taken
    /// key, a value that does not decode); nothing changes.
    pub fn apply_changes(&mut self, batch: &ChangeBatch) -> Result<(), FeedError> {
        let out = self.atomic(|s| {
            for c in &batch.changes {
                s.apply_change(c)?;
            }
            Ok(())
        });
        self.settle();
        out
    }

    fn check_table(&self, t: TableRef) -> Result<u32, FeedError> {
        match self.schema.tables.get(t.index as usize) {
            Some(def) if def.name == t.name => Ok(t.index),
            _ => Err(FeedError::Mismatch(format!(
                "this store has no table {} at #{}",
                t.name, t.index
            ))),
        }
    }

    fn check_relation(&self, r: RelationRef) -> Result<u32, FeedError> {
        match self.schema.relations.get(r.index as usize) {
            Some(def) if def.name == r.name => Ok(r.index),
            _ => Err(FeedError::Mismatch(format!(
                "this store has no relation {} at #{}",
                r.name, r.index
            ))),
        }
    }

    fn live_ref(&self, e: EntityRef) -> Result<(u32, RawKey), FeedError> {
        let t = self.check_table(e.table)?;
        if self.tables[t as usize].contains(e.key) {
            Ok((t, e.key))
        } else {
            Err(FeedError::Mismatch(format!("{e} is not live")))
        }
    }

    fn apply_change(&mut self, c: &Change) -> Result<(), FeedError> {
        let bad = |m: String| FeedError::Mismatch(m);
        match c {
            Change::Inserted { entity, row } => {
                let t = self.check_table(entity.table)?;
                self.insert_row(t, entity, row)?;
            }
            Change::Removed { entity } => {
                let (t, key) = self.live_ref(*entity)?;
                if self.touching[t as usize]
                    .iter()
                    .any(|&(r, end)| self.relations[r as usize].partner_count(end, key) > 0)
                {
                    return Err(bad(format!("{entity} still has links")));
                }
                self.p_remove(t, key);
            }
            Change::Updated { entity, row } => {
                let (t, key) = self.live_ref(*entity)?;
                let bytes = row.bytes().map_err(|e| bad(format!("{entity}: {e}")))?;
                let value = self.tables[t as usize]
                    .decode_boxed(bytes)
                    .map_err(|e| bad(format!("{entity}: {e}")))?;
                if self.ix.on_table(t) {
                    self.ix_check(crate::index::Ids::Rows(t), &*value, Some((key, key)))
                        .map_err(|e| bad(format!("{entity}: {e}")))?;
                }
                self.p_replace_boxed(t, key, value);
            }
            Change::KindChanged {
                entity,
                from,
                to,
                row,
            } => {
                let from = self.check_table(*from)?;
                let key = entity.key;
                if !self.tables[from as usize].contains(key) {
                    return Err(bad(format!(
                        "{entity} is not of kind {}",
                        self.schema.tables[from as usize].name
                    )));
                }
                self.p_remove(from, key);
                let to_ref = EntityRef { table: *to, key };
                let t = self.check_table(*to)?;
                self.insert_row(t, &to_ref, row)?;
            }
            Change::Linked {
                relation,
                a,
                b,
                payload,
            } => {
                let rel = self.check_relation(*relation)?;
                let (_, a) = self.live_ref(*a)?;
                let (_, b) = self.live_ref(*b)?;
                self.link_raw(rel, a, b, payload.as_ref())?;
            }
            Change::Unlinked { relation, a, b } => {
                let rel = self.check_relation(*relation)?;
                if !self.p_unlink(rel, a.key, b.key) {
                    return Err(bad(format!("{a} and {b} are not linked by {relation:?}")));
                }
            }
            Change::Moved {
                relation,
                child,
                from,
                to,
            } => {
                let rel = self.check_relation(*relation)?;
                if !self.p_unlink(rel, from.key, child.key) {
                    return Err(bad(format!(
                        "{from} and {child} are not linked by {relation:?}"
                    )));
                }
                let (_, to) = self.live_ref(*to)?;
                self.link_raw(rel, to, child.key, None)?;
            }
            Change::Reordered {
                relation,
                end,
                owner,
                order,
            } => {
                let rel = self.check_relation(*relation)?;
                if let RelationStore::OneToOne(_) = &self.relations[rel as usize] {
                    return Err(bad(format!(
                        "{relation:?} is one-to-one: its ends have no order"
                    )));
                }
                let (_, key) = self.live_ref(*owner)?;
                let mut now = self.relations[rel as usize].partners(*end, key);
                let mut want = order.clone();
                now.sort_unstable();
                want.sort_unstable();
                if now != want {
                    return Err(bad(format!(
                        "the new order of {owner}'s list is not a permutation of it"
                    )));
                }
                self.p_reorder(rel, *end, key, order);
            }
            Change::KindRowsSwapped { kind, position } => {
                let t = self.check_table(*kind)?;
                if self.schema.tables[t as usize].base.is_none()
                    || *position as usize >= self.tables[t as usize].len()
                {
                    return Err(bad(format!(
                        "{kind:?} has no kind row at {position} to swap with its last"
                    )));
                }
                self.p_swap(t, *position);
            }
            Change::PayloadChanged {
                relation,
                a,
                b,
                payload,
            } => {
                let rel = self.check_relation(*relation)?;
                let RelationStore::ManyToMany(r) = &self.relations[rel as usize] else {
                    return Err(bad(format!("{relation:?} has no payloads")));
                };
                let bytes = payload
                    .bytes()
                    .map_err(|e| bad(format!("payload of {a}, {b}: {e}")))?;
                let value = r
                    .payloads
                    .decode_boxed(bytes)
                    .map_err(|e| bad(format!("payload of {a}, {b}: {e}")))?;
                if r.link_index(a.key, b.key).is_none() {
                    return Err(bad(format!("{a} and {b} are not linked by {relation:?}")));
                }
                if self.ix.on_rel(rel) {
                    let pair = Some((a.key, b.key));
                    self.ix_check(crate::index::Ids::Links(rel), &*value, pair)
                        .map_err(|e| bad(format!("payload of {a}, {b}: {e}")))?;
                }
                self.p_set_payload_boxed(rel, a.key, b.key, value);
            }
        }
        Ok(())
    }

    fn insert_row(&mut self, t: u32, entity: &EntityRef, row: &Encoded) -> Result<(), FeedError> {
        let bad = |m: String| FeedError::Mismatch(m);
        let bytes = row.bytes().map_err(|e| bad(format!("{entity}: {e}")))?;
        if let Some(base) = self.schema.tables[t as usize].base {
            if !self.tables[base as usize].contains(entity.key) {
                return Err(bad(format!("{entity} has no base row")));
            }
        }
        self.tables[t as usize]
            .insert_encoded(entity.key, bytes)
            .map_err(|e| bad(format!("{entity}: {e}")))?;
        self.log_insert(t, entity.key);
        if self.ix.on_table(t) {
            // the stored row is decoded once more for its keys; a refusal rolls the batch
            // back, the row's insert with it
            let value = self.tables[t as usize]
                .decode_boxed(bytes)
                .map_err(|e| bad(format!("{entity}: {e}")))?;
            let ids = crate::index::Ids::Rows(t);
            self.ix_stage(ids, &*value, None)
                .map_err(|e| bad(format!("{entity}: {e}")))?;
            self.ix_commit(ids, (entity.key, entity.key));
        }
        Ok(())
    }

    fn link_raw(
        &mut self,
        rel: u32,
        a: RawKey,
        b: RawKey,
        payload: Option<&Encoded>,
    ) -> Result<(), FeedError> {
        let bad = |m: String| FeedError::Mismatch(m);
        let kind = self.schema.relations[rel as usize].kind;
        let linked = match &self.relations[rel as usize] {
            RelationStore::OneToMany(r) => r.parent_of(b).is_some(),
            RelationStore::OneToOne(r) => {
                r.partner(End::A, a).is_some() || r.partner(End::B, b).is_some()
            }
            RelationStore::ManyToMany(r) => r.link_index(a, b).is_some(),
        };
        if linked {
            return Err(bad(format!("{a:?}, {b:?}: already linked")));
        }
        match kind {
            RelationKind::ManyToMany => {
                let RelationStore::ManyToMany(r) = &self.relations[rel as usize] else {
                    unreachable!("a many-to-many relation")
                };
                let bytes = payload
                    .ok_or_else(|| bad("a many-to-many link without a payload".into()))?
                    .bytes()
                    .map_err(|e| bad(format!("payload: {e}")))?;
                let w = r
                    .payloads
                    .decode_boxed(bytes)
                    .map_err(|e| bad(format!("payload: {e}")))?;
                if self.ix.on_rel(rel) {
                    self.ix_check(crate::index::Ids::Links(rel), &*w, Some((a, b)))
                        .map_err(|e| bad(format!("{a:?}, {b:?}: {e}")))?;
                }
                self.p_attach_boxed(rel, a, b, w);
            }
            _ => self.p_attach(rel, a, b),
        }
        Ok(())
    }
}
