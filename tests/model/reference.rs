//! The reference model: the store's documented semantics in plain std collections.
//!
//! Nothing here calls relgraph. Every entity has a model id (its index in `table_of`);
//! every relation keeps the ordered partner list of each entity at each end. A row of the
//! polymorphic base (`Media`) also has its current kind and that kind's value. `History`
//! keeps undo and redo stacks of whole model states.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A model id: the n-th entity ever inserted, in any table (rolled-back inserts included).
pub type Id = usize;

/// An entity as a report names it: its id, and its most specific table (a row's kind).
pub type Named = (Id, &'static str);

/// A table: a plain one, the polymorphic base `Media`, or one of its kinds. Every id
/// belongs to a root table (never a kind); a relation end may be a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tb {
    User,
    Post,
    Tag,
    Node,
    Badge,
    Comment,
    /// The polymorphic base: every row has exactly one of the kinds below.
    Media,
    Photo,
    Video,
    Note,
}

/// The plain tables (rows inserted with `insert`).
pub const TABLES: [Tb; 6] = [
    Tb::User,
    Tb::Post,
    Tb::Tag,
    Tb::Node,
    Tb::Badge,
    Tb::Comment,
];
/// Every table an id can belong to.
pub const ROOTS: [Tb; 7] = [
    Tb::User,
    Tb::Post,
    Tb::Tag,
    Tb::Node,
    Tb::Badge,
    Tb::Comment,
    Tb::Media,
];
/// The kinds of `Media`.
pub const KINDS: [Tb; 3] = [Tb::Photo, Tb::Video, Tb::Note];

impl Tb {
    /// The table whose key space a row lives in: the base of a kind, else the table.
    pub fn base(self) -> Tb {
        match self {
            Tb::Photo | Tb::Video | Tb::Note => Tb::Media,
            t => t,
        }
    }

    pub fn is_kind(self) -> bool {
        self.base() != self
    }

    /// The name the table (or the kind's tag) is declared under.
    pub fn name(self) -> &'static str {
        match self {
            Tb::User => "users",
            Tb::Post => "posts",
            Tb::Tag => "tags",
            Tb::Node => "nodes",
            Tb::Badge => "badges",
            Tb::Comment => "comments",
            Tb::Media => "media",
            Tb::Photo => "photo",
            Tb::Video => "video",
            Tb::Note => "note",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OneToMany,
    OneToOne,
    ManyToMany,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Nullify,
    Cascade,
    Restrict,
    DeleteOrphan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    A,
    B,
}

impl End {
    fn other(self) -> End {
        match self {
            End::A => End::B,
            End::B => End::A,
        }
    }
}

/// A relation as declared: kind, tables, the rule at each end, policies.
pub struct Spec {
    pub kind: Kind,
    pub a: Tb,
    pub b: Tb,
    /// What happens to the B entities when an A entity is deleted.
    pub on_delete_a: Rule,
    /// What happens to the A entities when a B entity is deleted.
    pub on_delete_b: Rule,
    /// Acyclic (and so no self-links).
    pub acyclic: bool,
    /// A member of the polymorphic parent end `comments.target` (one-to-many only): a
    /// child has a parent in at most one member.
    pub poly: bool,
}

impl Spec {
    fn rule(&self, end: End) -> Rule {
        match end {
            End::A => self.on_delete_a,
            End::B => self.on_delete_b,
        }
    }
}

pub const AUTHORSHIP: usize = 0;
pub const BADGE: usize = 1;
pub const TAGGING: usize = 2;
pub const TREE: usize = 3;
pub const FOLLOWS: usize = 4;
pub const PINS: usize = 5;
pub const OWNS: usize = 6;
pub const THUMB: usize = 7;
pub const ON_POSTS: usize = 8;
pub const ON_PHOTOS: usize = 9;
pub const LIKES: usize = 10;

/// The schema under test: every kind, every rule, both self-referential shapes, a relation
/// on the polymorphic base, relations on its kinds, and a polymorphic parent end.
pub const SPECS: [Spec; 11] = [
    // users.posts <-> posts.author: deleting a user deletes their posts
    Spec {
        kind: Kind::OneToMany,
        a: Tb::User,
        b: Tb::Post,
        on_delete_a: Rule::Cascade,
        on_delete_b: Rule::Nullify,
        acyclic: false,
        poly: false,
    },
    // users.badge <-> badges.holder: a badge that loses its holder is deleted; a held
    // badge can't be deleted
    Spec {
        kind: Kind::OneToOne,
        a: Tb::User,
        b: Tb::Badge,
        on_delete_a: Rule::DeleteOrphan,
        on_delete_b: Rule::Restrict,
        acyclic: false,
        poly: false,
    },
    // posts.tags <-> tags.tagged, with a u32 payload: a tag left without posts is deleted
    Spec {
        kind: Kind::ManyToMany,
        a: Tb::Post,
        b: Tb::Tag,
        on_delete_a: Rule::DeleteOrphan,
        on_delete_b: Rule::Nullify,
        acyclic: false,
        poly: false,
    },
    // nodes.kids <-> nodes.up, acyclic: deleting a node deletes its subtree
    Spec {
        kind: Kind::OneToMany,
        a: Tb::Node,
        b: Tb::Node,
        on_delete_a: Rule::Cascade,
        on_delete_b: Rule::Nullify,
        acyclic: true,
        poly: false,
    },
    // nodes.follows <-> nodes.followers, acyclic: a node left following nothing is deleted
    Spec {
        kind: Kind::ManyToMany,
        a: Tb::Node,
        b: Tb::Node,
        on_delete_a: Rule::Nullify,
        on_delete_b: Rule::DeleteOrphan,
        acyclic: true,
        poly: false,
    },
    // tags.pins <-> nodes.pinned_to: a tag with pins can't be deleted; a tag left without
    // pins is deleted
    Spec {
        kind: Kind::OneToMany,
        a: Tb::Tag,
        b: Tb::Node,
        on_delete_a: Rule::Restrict,
        on_delete_b: Rule::DeleteOrphan,
        acyclic: false,
        poly: false,
    },
    // users.media <-> media.owner, on the base: deleting a user deletes their media, of
    // every kind
    Spec {
        kind: Kind::OneToMany,
        a: Tb::User,
        b: Tb::Media,
        on_delete_a: Rule::Cascade,
        on_delete_b: Rule::Nullify,
        acyclic: false,
        poly: false,
    },
    // video.thumb <-> photo.thumb_of, between two kinds of one base: a thumbnail that loses
    // its video is deleted; a thumbnail in use can't be deleted
    Spec {
        kind: Kind::OneToOne,
        a: Tb::Video,
        b: Tb::Photo,
        on_delete_a: Rule::DeleteOrphan,
        on_delete_b: Rule::Restrict,
        acyclic: false,
        poly: false,
    },
    // posts.comments <-> comments.target (polymorphic): deleting a post deletes its
    // comments
    Spec {
        kind: Kind::OneToMany,
        a: Tb::Post,
        b: Tb::Comment,
        on_delete_a: Rule::Cascade,
        on_delete_b: Rule::Nullify,
        acyclic: false,
        poly: true,
    },
    // photo.comments <-> comments.target (polymorphic, on a kind): a photo left without
    // comments is deleted; deleting a photo leaves its comments without a target
    Spec {
        kind: Kind::OneToMany,
        a: Tb::Photo,
        b: Tb::Comment,
        on_delete_a: Rule::Nullify,
        on_delete_b: Rule::DeleteOrphan,
        acyclic: false,
        poly: true,
    },
    // users.likes <-> posts.liked_by, with a u32 payload and no delete-orphan rule (an
    // unlink deletes nothing)
    Spec {
        kind: Kind::ManyToMany,
        a: Tb::User,
        b: Tb::Post,
        on_delete_a: Rule::Nullify,
        on_delete_b: Rule::Nullify,
        acyclic: false,
        poly: false,
    },
];

/// The expected result of one call. Errors name what the store must report; where the
/// store may pick any of several culprits, the variant holds all acceptable ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success (`Ok(())`, `Ok(true)`, `Ok(Some(_))`).
    Done,
    /// A successful remove, with every entity it deletes.
    Removed(BTreeSet<Named>),
    /// `Ok(false)` from unlink, `Ok(None)` from update_payload.
    NotLinked,
    /// The first stale key, in the order the call checks them.
    Stale(Id),
    SelfLink(Id),
    Cycle(Id, Id),
    Duplicate(Id),
    /// A refused remove: what it would delete, and every (relation, deleted, survivor)
    /// restriction that refuses it.
    Restricted {
        removed: BTreeSet<Named>,
        blockers: BTreeSet<(usize, Named, Named)>,
    },
    /// A refused orphan delete: every restriction that refuses it.
    OrphanDelete(BTreeSet<(usize, Named, Named)>),
    /// A change refused because its orphans' deletes would delete this entity, which the
    /// change links (the first such entity in the order the store checks them).
    DeletesEndpoint(Named),
    /// A refused `change_kind`: the row is linked through these relations of its current
    /// kind (the store names any one of them).
    Linked(Named, BTreeSet<usize>),
    /// User code panicked before the call changed anything; the panic came out of the call.
    Panicked,
    /// `unlink_take` of a linked pair: the payload it handed back (0 where it is `()`).
    Taken(u32),
}

/// User code that panics inside a call, before the call changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The payload type's `Default` returns `n` times, then panics (a link, `link_all` or
    /// `set_targets` on a many-to-many).
    Default(u32),
    /// The input iterator of `insert_all`, `insert_kind_all` or `link_all` panics instead
    /// of yielding its item `n`.
    Input(usize),
}

/// One operation, as applied to both the model and the store.
#[derive(Clone, Debug)]
pub enum Op {
    Insert {
        table: Tb,
        value: u32,
    },
    /// `insert_all` into a plain table: the same as an `Insert` of each value, in order.
    InsertAll {
        table: Tb,
        values: Vec<u32>,
    },
    /// `insert_kind`: a row of the base with its base value and its kind's value.
    InsertKind {
        kind: Tb,
        base: u32,
        value: u32,
    },
    /// `insert_kind_all`: the same as an `InsertKind` of each row (base value, kind's
    /// value), in order.
    InsertKindAll {
        kind: Tb,
        rows: Vec<(u32, u32)>,
    },
    /// `update` through a key of the kind (stale unless the row is of that kind).
    UpdateKind {
        kind: Tb,
        id: Id,
        value: u32,
    },
    /// `remove` through a key of the kind (stale unless the row is of that kind).
    RemoveKind {
        kind: Tb,
        id: Id,
    },
    /// `change_kind` of a row given by its base key.
    ChangeKind {
        id: Id,
        to: Tb,
        value: u32,
    },
    Update {
        id: Id,
        value: u32,
    },
    Remove {
        id: Id,
    },
    Link {
        rel: usize,
        a: Id,
        b: Id,
    },
    Unlink {
        rel: usize,
        a: Id,
        b: Id,
    },
    /// `unlink_take` on a many-to-many: the payload read, then an `Unlink`.
    UnlinkTake {
        rel: usize,
        a: Id,
        b: Id,
    },
    /// `link_all`: the `Link` of every pair in order, all or nothing.
    LinkAll {
        rel: usize,
        pairs: Vec<(Id, Id)>,
    },
    /// `link_with` on a many-to-many (the payload is ignored where it is `()`).
    LinkWith {
        rel: usize,
        a: Id,
        b: Id,
        payload: u32,
    },
    /// `update_payload` on the tagging relation.
    UpdatePayload {
        a: Id,
        b: Id,
        value: u32,
    },
    SetChildren {
        rel: usize,
        parent: Id,
        children: Vec<Id>,
    },
    /// `insert_child` on a one-to-many whose child table is a plain table: an `Insert`
    /// into the child table and a `Link` to `parent`, both or neither (a stale parent:
    /// nothing).
    InsertChild {
        rel: usize,
        parent: Id,
        value: u32,
    },
    SetTargets {
        rel: usize,
        a: Id,
        targets: Vec<Id>,
    },
    /// `op` with user code that may panic before the call changes anything: if the fault
    /// is reached, the call panics and nothing changes, else `op` runs as usual.
    Failing {
        fault: Fault,
        op: Box<Op>,
    },
}

/// A step of a transaction: an operation, or a nested transaction.
#[derive(Clone, Debug)]
pub enum Step {
    Op(Op),
    Nested { ops: Vec<Op>, commit: bool },
}

/// One relation: the ordered partners of every entity at each end, and link payloads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Links {
    /// A entity -> its B partners, in order.
    pub fwd: BTreeMap<Id, Vec<Id>>,
    /// B entity -> its A partners, in order.
    pub back: BTreeMap<Id, Vec<Id>>,
    pub payload: BTreeMap<(Id, Id), u32>,
}

impl Links {
    pub fn targets(&self, a: Id) -> &[Id] {
        self.fwd.get(&a).map_or(&[], Vec::as_slice)
    }

    pub fn sources(&self, b: Id) -> &[Id] {
        self.back.get(&b).map_or(&[], Vec::as_slice)
    }

    fn partners(&self, end: End, k: Id) -> &[Id] {
        match end {
            End::A => self.targets(k),
            End::B => self.sources(k),
        }
    }

    pub fn linked(&self, a: Id, b: Id) -> bool {
        self.payload.contains_key(&(a, b))
    }

    pub fn len(&self) -> usize {
        self.payload.len()
    }

    pub fn pairs(&self) -> Vec<(Id, Id)> {
        self.payload.keys().copied().collect()
    }

    /// Appends the link at the end of both collections.
    fn attach(&mut self, a: Id, b: Id, payload: u32) {
        assert!(self.payload.insert((a, b), payload).is_none());
        self.fwd.entry(a).or_default().push(b);
        self.back.entry(b).or_default().push(a);
    }

    /// Removes the link, keeping the order of what remains.
    fn detach(&mut self, a: Id, b: Id) {
        assert!(self.payload.remove(&(a, b)).is_some());
        remove_from(&mut self.fwd, a, b);
        remove_from(&mut self.back, b, a);
    }

    /// Sets the order of `a`'s partners (a permutation of them).
    fn reorder(&mut self, a: Id, order: &[Id]) {
        if order.is_empty() {
            self.fwd.remove(&a);
        } else {
            self.fwd.insert(a, order.to_vec());
        }
    }

    /// Whether `to` is reachable from `from` along A -> B links (`from` reaches itself).
    fn reaches(&self, from: Id, to: Id) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(k) = stack.pop() {
            if k == to {
                return true;
            }
            if seen.insert(k) {
                stack.extend_from_slice(self.targets(k));
            }
        }
        false
    }
}

fn remove_from(map: &mut BTreeMap<Id, Vec<Id>>, key: Id, item: Id) {
    let list = map.get_mut(&key).expect("listed");
    let at = list.iter().position(|&x| x == item).expect("listed");
    list.remove(at);
    if list.is_empty() {
        map.remove(&key);
    }
}

/// The whole reference state.
#[derive(Clone, Default)]
pub struct Model {
    /// The table of every id ever issued.
    pub table_of: Vec<Tb>,
    /// The live entities and their values (a `Media` row: its base value).
    pub values: BTreeMap<Id, u32>,
    /// Every live `Media` row: its kind and that kind's value.
    pub kinds: BTreeMap<Id, (Tb, u32)>,
    pub rels: [Links; 11],
    /// The outcomes of the last transition's calls, in the order they are made.
    pub last: Vec<Outcome>,
}

/// Compact, for failure reports: `#id:Table=value` per live entity (`#id:Table` for a
/// stale id), then every non-empty collection of every relation.
impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Model {{ entities: [")?;
        for (id, t) in self.table_of.iter().enumerate() {
            match (self.values.get(&id), self.kinds.get(&id)) {
                (Some(v), Some((k, w))) => write!(f, " #{id}:{t:?}={v}/{k:?}={w}")?,
                (Some(v), None) => write!(f, " #{id}:{t:?}={v}")?,
                (None, _) => write!(f, " #{id}:{t:?}")?,
            }
        }
        write!(f, " ]")?;
        for (r, links) in self.rels.iter().enumerate() {
            if links.len() > 0 {
                write!(f, ", rel {r}: {:?} payloads {:?}", links.fwd, links.payload)?;
            }
        }
        write!(f, " }}")
    }
}

/// Whether a successful `op` writes a value even when it leaves the state as it was.
fn writes_in_place(op: &Op, outcome: &Outcome) -> bool {
    match op {
        Op::Update { .. }
        | Op::UpdateKind { .. }
        | Op::ChangeKind { .. }
        | Op::UpdatePayload { .. }
        | Op::LinkWith { .. } => *outcome == Outcome::Done,
        Op::Failing { op, .. } => *outcome != Outcome::Panicked && writes_in_place(op, outcome),
        _ => false,
    }
}

/// A history step as the model keeps it: its number (unique in a run), the state to go
/// back to (before the step on the undo stack, after it on the redo stack), its label.
#[derive(Clone)]
pub struct Saved {
    pub serial: u64,
    pub state: Model,
    pub label: Option<&'static str>,
}

/// Undo and redo as documented: a committed change is a step (the redo steps are
/// dropped, and the oldest step past the limit); undo goes back to the state before the
/// newest step, redo forward again.
#[derive(Clone)]
pub struct History {
    pub limit: usize,
    /// Oldest first.
    pub undo: Vec<Saved>,
    /// The newest undone step last.
    pub redo: Vec<Saved>,
}

impl History {
    pub fn new(limit: usize) -> History {
        History {
            limit: limit.max(1),
            undo: Vec::new(),
            redo: Vec::new(),
        }
    }

    /// A new step, from the state `before` it.
    pub fn record(&mut self, serial: u64, before: &Model, label: Option<&'static str>) {
        self.redo.clear();
        self.push_undo(Saved {
            serial,
            state: before.snapshot(),
            label,
        });
    }

    fn push_undo(&mut self, saved: Saved) {
        self.undo.push(saved);
        self.trim();
    }

    /// Drops the oldest steps past the limit.
    pub fn trim(&mut self) {
        let over = self.undo.len().saturating_sub(self.limit);
        self.undo.drain(..over);
    }

    /// Takes `now` back to the state before the newest step; returns the step's number
    /// and label, or `None` if there is none.
    pub fn undo(&mut self, now: &mut Model) -> Option<(u64, Option<&'static str>)> {
        let saved = self.undo.pop()?;
        let (serial, label) = (saved.serial, saved.label);
        self.redo.push(Saved {
            serial,
            state: now.snapshot(),
            label,
        });
        now.restore(&saved.state);
        Some((serial, label))
    }

    /// Takes `now` forward to the state after the newest undone step.
    pub fn redo(&mut self, now: &mut Model) -> Option<(u64, Option<&'static str>)> {
        let saved = self.redo.pop()?;
        let (serial, label) = (saved.serial, saved.label);
        self.push_undo(Saved {
            serial,
            state: now.snapshot(),
            label,
        });
        now.restore(&saved.state);
        Some((serial, label))
    }
}

/// The result of a delete's planning: what goes, and what refuses it.
struct Plan {
    removed: BTreeSet<Id>,
    blockers: BTreeSet<(usize, Id, Id)>,
}

impl Model {
    /// A copy of the state, without the outcomes of the last transition.
    fn snapshot(&self) -> Model {
        Model {
            last: Vec::new(),
            ..self.clone()
        }
    }

    pub fn alive(&self, id: Id) -> bool {
        self.values.contains_key(&id)
    }

    /// Whether `id` is live as a row of `table`: live, and of that kind if it is a kind.
    pub fn alive_as(&self, id: Id, table: Tb) -> bool {
        self.alive(id) && (!table.is_kind() || self.kind_of(id) == Some(table))
    }

    /// The current kind of a live `Media` row.
    pub fn kind_of(&self, id: Id) -> Option<Tb> {
        self.kinds.get(&id).map(|&(k, _)| k)
    }

    /// A live entity as reports name it: a row of the base by its kind.
    pub fn named(&self, id: Id) -> Named {
        (id, self.kind_of(id).unwrap_or(self.table_of[id]).name())
    }

    /// A plan's deleted entities and restrictions, named as reports name them.
    fn describe(&self, plan: &Plan) -> (BTreeSet<Named>, BTreeSet<(usize, Named, Named)>) {
        let removed = plan.removed.iter().map(|&x| self.named(x)).collect();
        let blockers = plan
            .blockers
            .iter()
            .map(|&(r, x, p)| (r, self.named(x), self.named(p)))
            .collect();
        (removed, blockers)
    }

    /// Every id issued in `table` (for a kind: in its base), live or not.
    pub fn ids(&self, table: Tb) -> Vec<Id> {
        (0..self.table_of.len())
            .filter(|&i| self.table_of[i] == table.base())
            .collect()
    }

    /// The parent of `child` in another relation of the polymorphic parent end `rel`
    /// belongs to.
    fn parent_elsewhere(&self, rel: usize, child: Id) -> Option<(usize, Id)> {
        if !SPECS[rel].poly {
            return None;
        }
        (0..SPECS.len())
            .filter(|&r| r != rel && SPECS[r].poly)
            .find_map(|r| self.rels[r].sources(child).first().map(|&p| (r, p)))
    }

    /// Whether the op only names ids that exist and sit in the right tables.
    pub fn accepts(&self, op: &Op) -> bool {
        let is = |id: Id, t: Tb| self.table_of.get(id) == Some(&t.base());
        match op {
            Op::Insert { table, .. } | Op::InsertAll { table, .. } => TABLES.contains(table),
            Op::InsertKind { kind, .. } | Op::InsertKindAll { kind, .. } => kind.is_kind(),
            Op::UpdateKind { kind, id, .. } | Op::RemoveKind { kind, id } => {
                kind.is_kind() && is(*id, *kind)
            }
            Op::ChangeKind { id, to, .. } => to.is_kind() && is(*id, *to),
            Op::Update { id, .. } | Op::Remove { id } => *id < self.table_of.len(),
            Op::Link { rel, a, b } | Op::Unlink { rel, a, b } => {
                is(*a, SPECS[*rel].a) && is(*b, SPECS[*rel].b)
            }
            Op::LinkAll { rel, pairs } => pairs
                .iter()
                .all(|&(a, b)| is(a, SPECS[*rel].a) && is(b, SPECS[*rel].b)),
            Op::LinkWith { rel, a, b, .. } | Op::UnlinkTake { rel, a, b } => {
                SPECS[*rel].kind == Kind::ManyToMany
                    && is(*a, SPECS[*rel].a)
                    && is(*b, SPECS[*rel].b)
            }
            Op::UpdatePayload { a, b, .. } => is(*a, Tb::Post) && is(*b, Tb::Tag),
            Op::InsertChild { rel, parent, .. } => {
                SPECS[*rel].kind == Kind::OneToMany
                    && TABLES.contains(&SPECS[*rel].b)
                    && is(*parent, SPECS[*rel].a)
            }
            Op::SetChildren {
                rel,
                parent,
                children,
            } => {
                SPECS[*rel].kind == Kind::OneToMany
                    && is(*parent, SPECS[*rel].a)
                    && children.iter().all(|&c| is(c, SPECS[*rel].b))
            }
            Op::SetTargets { rel, a, targets } => {
                SPECS[*rel].kind == Kind::ManyToMany
                    && is(*a, SPECS[*rel].a)
                    && targets.iter().all(|&b| is(b, SPECS[*rel].b))
            }
            Op::Failing { fault, op } => {
                let fits = match (fault, &**op) {
                    (
                        Fault::Input(_),
                        Op::InsertAll { .. } | Op::InsertKindAll { .. } | Op::LinkAll { .. },
                    ) => true,
                    (
                        Fault::Default(_),
                        Op::Link { rel, .. } | Op::LinkAll { rel, .. } | Op::SetTargets { rel, .. },
                    ) => SPECS[*rel].kind == Kind::ManyToMany,
                    _ => false,
                };
                fits && self.accepts(op)
            }
        }
    }

    /// How many payloads `op` (a link, `link_all` or `set_targets`) makes with `Default`
    /// before it changes anything: one per new many-to-many link, once the call's checks
    /// pass (stale keys, duplicates, cycles). A many-to-many without a link policy (no
    /// cycle check) makes it before it looks the pair up, so a link of a linked pair makes
    /// one too; `link_all` makes them pair by pair and stops at the first failing pair.
    fn default_calls(&self, op: &Op) -> u32 {
        match *op {
            Op::Link { rel, a, b } => self.link_defaults(rel, a, b),
            Op::LinkAll { rel, ref pairs } => {
                if pairs
                    .iter()
                    .any(|&(a, b)| self.stale_ends(rel, a, b).is_some())
                {
                    return 0;
                }
                let mut next = self.clone();
                let mut calls = 0;
                for &(a, b) in pairs {
                    calls += next.link_defaults(rel, a, b);
                    if next.link(rel, a, b, 0, false) != Outcome::Done {
                        break;
                    }
                }
                calls
            }
            Op::SetTargets {
                rel,
                a,
                ref targets,
            } => {
                let spec = &SPECS[rel];
                let mut wanted = BTreeSet::new();
                let valid = self.alive_as(a, spec.a)
                    && targets
                        .iter()
                        .all(|&b| self.alive_as(b, spec.b) && wanted.insert(b));
                if !valid {
                    return 0;
                }
                let added: Vec<Id> = targets
                    .iter()
                    .copied()
                    .filter(|&b| !self.rels[rel].linked(a, b))
                    .collect();
                match added
                    .iter()
                    .all(|&b| self.check_new_link(rel, a, b).is_none())
                {
                    true => added.len() as u32,
                    false => 0,
                }
            }
            _ => 0,
        }
    }

    /// The payload defaults a `link` of (a, b) makes (see `default_calls`).
    fn link_defaults(&self, rel: usize, a: Id, b: Id) -> u32 {
        if SPECS[rel].kind != Kind::ManyToMany || self.stale_ends(rel, a, b).is_some() {
            return 0;
        }
        if !SPECS[rel].acyclic {
            return 1;
        }
        let new = !self.rels[rel].linked(a, b) && self.check_new_link(rel, a, b).is_none();
        u32::from(new)
    }

    /// Applies one operation; an error leaves the model unchanged.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Insert { table, value } => {
                self.table_of.push(table);
                self.values.insert(self.table_of.len() - 1, value);
                Outcome::Done
            }
            Op::InsertAll { table, ref values } => {
                for &value in values {
                    self.apply(&Op::Insert { table, value });
                }
                Outcome::Done
            }
            Op::InsertKind { kind, base, value } => {
                self.table_of.push(Tb::Media);
                let id = self.table_of.len() - 1;
                self.values.insert(id, base);
                self.kinds.insert(id, (kind, value));
                Outcome::Done
            }
            Op::Update { id, value } => match self.values.get_mut(&id) {
                Some(v) => {
                    *v = value;
                    Outcome::Done
                }
                None => Outcome::Stale(id),
            },
            Op::InsertKindAll { kind, ref rows } => {
                for &(base, value) in rows {
                    self.apply(&Op::InsertKind { kind, base, value });
                }
                Outcome::Done
            }
            Op::UpdateKind { kind, id, value } => {
                if !self.alive_as(id, kind) {
                    return Outcome::Stale(id);
                }
                self.kinds.insert(id, (kind, value));
                Outcome::Done
            }
            Op::Remove { id } => self.remove(id),
            Op::RemoveKind { kind, id } => {
                if !self.alive_as(id, kind) {
                    return Outcome::Stale(id);
                }
                self.remove(id)
            }
            Op::ChangeKind { id, to, value } => self.change_kind(id, to, value),
            Op::Link { rel, a, b } => self.link(rel, a, b, 0, false),
            Op::LinkAll { rel, ref pairs } => self.link_all(rel, pairs),
            Op::LinkWith { rel, a, b, payload } => {
                let payload = if rel == FOLLOWS { 0 } else { payload };
                self.link(rel, a, b, payload, true)
            }
            Op::Unlink { rel, a, b } => self.unlink(rel, a, b),
            Op::UnlinkTake { rel, a, b } => {
                let payload = self.rels[rel].payload.get(&(a, b)).copied();
                match (self.unlink(rel, a, b), payload) {
                    (Outcome::Done, Some(w)) => Outcome::Taken(w),
                    (outcome, _) => outcome,
                }
            }
            Op::UpdatePayload { a, b, value } => {
                if let Some(e) = self.stale(&[a, b]) {
                    return e;
                }
                match self.rels[TAGGING].payload.get_mut(&(a, b)) {
                    Some(p) => {
                        *p = value;
                        Outcome::Done
                    }
                    None => Outcome::NotLinked,
                }
            }
            Op::SetChildren {
                rel,
                parent,
                ref children,
            } => self.set_collection(rel, parent, children),
            Op::InsertChild { rel, parent, value } => {
                let spec = &SPECS[rel];
                if !self.alive_as(parent, spec.a) {
                    return Outcome::Stale(parent);
                }
                self.apply(&Op::Insert {
                    table: spec.b,
                    value,
                });
                let child = self.table_of.len() - 1;
                // a new child: no rule can refuse its link
                let linked = self.link(rel, parent, child, 0, false);
                assert_eq!(linked, Outcome::Done, "the link of a new child");
                Outcome::Done
            }
            Op::SetTargets {
                rel,
                a,
                ref targets,
            } => self.set_collection(rel, a, targets),
            Op::Failing { fault, ref op } => {
                let reached = match (fault, &**op) {
                    (Fault::Default(n), op) => self.default_calls(op) > n,
                    (Fault::Input(n), Op::InsertAll { values, .. }) => n < values.len(),
                    (Fault::Input(n), Op::InsertKindAll { rows, .. }) => n < rows.len(),
                    // the input is read pair by pair, each checked for stale keys: a stale
                    // key before item `n` ends the call first
                    (Fault::Input(n), Op::LinkAll { rel, pairs }) => {
                        n < pairs.len()
                            && pairs[..n]
                                .iter()
                                .all(|&(a, b)| self.stale_ends(*rel, a, b).is_none())
                    }
                    (Fault::Input(_), op) => unreachable!("an input fault on {op:?}"),
                };
                if reached {
                    Outcome::Panicked
                } else {
                    self.apply(op)
                }
            }
        }
    }

    /// Runs a transaction: its steps in order (a failed call changes nothing and the
    /// transaction goes on), then keeps everything or nothing. Ids issued inside a
    /// rolled-back transaction stay issued (the store's keys for them are stale). Returns
    /// whether it committed a change (see `apply_logged`): then it is a history step and a
    /// feed batch.
    pub fn transaction(&mut self, steps: &[Step], commit: bool, out: &mut Vec<Outcome>) -> bool {
        let mut inner = self.clone();
        let mut logged = false;
        for step in steps {
            match step {
                Step::Op(op) => {
                    let (outcome, changed) = inner.apply_logged(op);
                    out.push(outcome);
                    logged |= changed;
                }
                Step::Nested { ops, commit } => {
                    let steps: Vec<Step> = ops.iter().cloned().map(Step::Op).collect();
                    logged |= inner.transaction(&steps, *commit, out);
                }
            }
        }
        if commit {
            *self = inner;
        } else {
            self.table_of = inner.table_of;
        }
        commit && logged
    }

    /// Applies `op`, and tells whether the call changes anything: the state, or a value
    /// written in place (an update, a kind change, a payload set, even to the value it
    /// had). A call that changes nothing (a failed one, a link of a linked pair, a
    /// collection set to what it is) makes no history step and no feed batch.
    pub fn apply_logged(&mut self, op: &Op) -> (Outcome, bool) {
        let before = self.clone();
        let outcome = self.apply(op);
        let logged = !self.same_state(&before)
            || writes_in_place(op, &outcome)
            || (outcome == Outcome::Done && before.links_change(op));
        (outcome, logged)
    }

    fn same_state(&self, other: &Model) -> bool {
        self.values == other.values && self.kinds == other.kinds && self.rels == other.rels
    }

    /// Whether a `link_all` that succeeds changes something on the way, even if it ends
    /// where it started (a child moved away and back).
    fn links_change(&self, op: &Op) -> bool {
        match op {
            Op::LinkAll { rel, pairs } => {
                let mut next = self.clone();
                pairs.iter().any(|&(a, b)| {
                    let was = next.clone();
                    next.link(*rel, a, b, 0, false);
                    !next.same_state(&was)
                })
            }
            Op::Failing { op, .. } => self.links_change(op),
            _ => false,
        }
    }

    /// Takes the live state of `saved` (values, kinds, links); ids issued since stay
    /// issued.
    pub fn restore(&mut self, saved: &Model) {
        self.values = saved.values.clone();
        self.kinds = saved.kinds.clone();
        self.rels = saved.rels.clone();
    }

    fn stale(&self, ids: &[Id]) -> Option<Outcome> {
        ids.iter()
            .find(|&&id| !self.alive(id))
            .map(|&id| Outcome::Stale(id))
    }

    /// The first of the two ends of a link in `rel` that is not live as a row of its
    /// end's table.
    fn stale_ends(&self, rel: usize, a: Id, b: Id) -> Option<Outcome> {
        if !self.alive_as(a, SPECS[rel].a) {
            return Some(Outcome::Stale(a));
        }
        (!self.alive_as(b, SPECS[rel].b)).then_some(Outcome::Stale(b))
    }

    /// The relation ends a live entity sits at: those of its table, and of its kind.
    fn touching(&self, id: Id) -> Vec<(usize, End)> {
        let tables = [Some(self.table_of[id]), self.kind_of(id)];
        let mut v = Vec::new();
        for (r, spec) in SPECS.iter().enumerate() {
            if tables.contains(&Some(spec.a)) {
                v.push((r, End::A));
            }
            if tables.contains(&Some(spec.b)) {
                v.push((r, End::B));
            }
        }
        v
    }

    /// The least set containing `roots` closed under cascade (every partner) and
    /// delete-orphan (a partner all of whose partners on this side are in the set), and
    /// the restrictions it violates (a restrict partner outside the set).
    fn plan(&self, roots: &[Id]) -> Plan {
        let mut removed: BTreeSet<Id> = roots.iter().copied().collect();
        loop {
            let mut grown = false;
            for x in removed.clone() {
                for (r, end) in self.touching(x) {
                    let links = &self.rels[r];
                    for &p in links.partners(end, x) {
                        let goes = match SPECS[r].rule(end) {
                            Rule::Cascade => true,
                            Rule::DeleteOrphan => links
                                .partners(end.other(), p)
                                .iter()
                                .all(|q| removed.contains(q)),
                            Rule::Nullify | Rule::Restrict => false,
                        };
                        if goes && removed.insert(p) {
                            grown = true;
                        }
                    }
                }
            }
            if !grown {
                break;
            }
        }
        let mut blockers = BTreeSet::new();
        for &x in &removed {
            for (r, end) in self.touching(x) {
                if SPECS[r].rule(end) == Rule::Restrict {
                    for &p in self.rels[r].partners(end, x) {
                        if !removed.contains(&p) {
                            blockers.insert((r, x, p));
                        }
                    }
                }
            }
        }
        Plan { removed, blockers }
    }

    /// Deletes every entity of `set` with all its links (and its kind).
    fn delete_all(&mut self, set: &BTreeSet<Id>) {
        for &x in set {
            for (r, end) in self.touching(x) {
                let links = &mut self.rels[r];
                for p in links.partners(end, x).to_vec() {
                    match end {
                        End::A => links.detach(x, p),
                        End::B => links.detach(p, x),
                    }
                }
            }
            self.values.remove(&x);
            self.kinds.remove(&x);
        }
    }

    fn remove(&mut self, id: Id) -> Outcome {
        if !self.alive(id) {
            return Outcome::Stale(id);
        }
        let plan = self.plan(&[id]);
        let (removed, blockers) = self.describe(&plan);
        if !blockers.is_empty() {
            return Outcome::Restricted { removed, blockers };
        }
        self.delete_all(&plan.removed);
        Outcome::Removed(removed)
    }

    /// A row keeps its id, base value and links through relations on the base; it may
    /// leave its kind only while it has no link through a relation on that kind. Changing
    /// to its own kind replaces the kind's value.
    fn change_kind(&mut self, id: Id, to: Tb, value: u32) -> Outcome {
        let Some(from) = self.kind_of(id) else {
            return Outcome::Stale(id);
        };
        if from != to {
            let linked: BTreeSet<usize> = (0..SPECS.len())
                .filter(|&r| {
                    (SPECS[r].a == from && !self.rels[r].targets(id).is_empty())
                        || (SPECS[r].b == from && !self.rels[r].sources(id).is_empty())
                })
                .collect();
            if !linked.is_empty() {
                return Outcome::Linked(self.named(id), linked);
            }
        }
        self.kinds.insert(id, (to, value));
        Outcome::Done
    }

    /// The policy check of a new link: self-links and cycles on acyclic relations.
    fn check_new_link(&self, rel: usize, a: Id, b: Id) -> Option<Outcome> {
        if !SPECS[rel].acyclic {
            return None;
        }
        if a == b {
            return Some(Outcome::SelfLink(a));
        }
        self.rels[rel].reaches(b, a).then_some(Outcome::Cycle(a, b))
    }

    /// Applies `change` to a copy; then every entity of `lost` (relation, end, entity) left
    /// without links in that relation, where the other end's rule is delete-orphan, is
    /// deleted with its cascades. If a restriction refuses that delete, or it would delete
    /// one of `keep` (the endpoints of the links the change makes or keeps), nothing
    /// changes.
    fn change_with_orphans(
        &mut self,
        lost: &[(usize, End, Id)],
        keep: &[Id],
        change: impl FnOnce(&mut [Links]),
    ) -> Outcome {
        let mut next = self.clone();
        change(&mut next.rels);
        let roots: Vec<Id> = lost
            .iter()
            .filter(|&&(r, end, k)| {
                let spec = &SPECS[r];
                let table = match end {
                    End::A => spec.a,
                    End::B => spec.b,
                };
                spec.rule(end.other()) == Rule::DeleteOrphan
                    && next.alive_as(k, table)
                    && next.rels[r].partners(end, k).is_empty()
            })
            .map(|&(_, _, k)| k)
            .collect();
        if !roots.is_empty() {
            let plan = next.plan(&roots);
            if !plan.blockers.is_empty() {
                return Outcome::OrphanDelete(next.describe(&plan).1);
            }
            if let Some(&k) = keep.iter().find(|k| plan.removed.contains(k)) {
                return Outcome::DeletesEndpoint(next.named(k));
            }
            next.delete_all(&plan.removed);
        }
        *self = next;
        Outcome::Done
    }

    /// The previous parent of `child` before it joins a one-to-many `rel`: in `rel`, or
    /// elsewhere in its polymorphic parent end.
    fn previous_parent(&self, rel: usize, child: Id) -> Option<(usize, Id)> {
        match self.rels[rel].sources(child).first() {
            Some(&p) => Some((rel, p)),
            None => self.parent_elsewhere(rel, child),
        }
    }

    fn link(&mut self, rel: usize, a: Id, b: Id, payload: u32, replace: bool) -> Outcome {
        if let Some(e) = self.stale_ends(rel, a, b) {
            return e;
        }
        let links = &mut self.rels[rel];
        if links.linked(a, b) {
            if replace {
                links.payload.insert((a, b), payload);
            }
            return Outcome::Done;
        }
        if let Some(e) = self.check_new_link(rel, a, b) {
            return e;
        }
        let links = &self.rels[rel];
        match SPECS[rel].kind {
            Kind::ManyToMany => {
                self.rels[rel].attach(a, b, payload);
                Outcome::Done
            }
            Kind::OneToMany | Kind::OneToOne => {
                // the child (or partner) leaves its previous parent, in this relation or
                // another of its polymorphic parent end; in a one-to-one the previous
                // partner of `a` is evicted too
                let old_a = self.previous_parent(rel, b);
                let old_b = match SPECS[rel].kind {
                    Kind::OneToOne => links.targets(a).first().copied(),
                    _ => None,
                };
                let mut lost = Vec::new();
                lost.extend(old_a.map(|(r, o)| (r, End::A, o)));
                lost.extend(old_b.map(|o| (rel, End::B, o)));
                self.change_with_orphans(&lost, &[a, b], |l| {
                    if let Some((r, o)) = old_a {
                        l[r].detach(o, b);
                    }
                    if let Some(o) = old_b {
                        l[rel].detach(a, o);
                    }
                    l[rel].attach(a, b, 0);
                })
            }
        }
    }

    /// Every key is checked first (the first stale one, in pair order, is reported); then
    /// the pairs are linked one by one on a copy, which is kept only if every link
    /// succeeds (a link's orphan delete may make a later pair's key stale: that fails the
    /// batch too).
    fn link_all(&mut self, rel: usize, pairs: &[(Id, Id)]) -> Outcome {
        if let Some(e) = pairs.iter().find_map(|&(a, b)| self.stale_ends(rel, a, b)) {
            return e;
        }
        let mut next = self.clone();
        for &(a, b) in pairs {
            let out = next.link(rel, a, b, 0, false);
            if out != Outcome::Done {
                return out;
            }
        }
        *self = next;
        Outcome::Done
    }

    fn unlink(&mut self, rel: usize, a: Id, b: Id) -> Outcome {
        if let Some(e) = self.stale_ends(rel, a, b) {
            return e;
        }
        if !self.rels[rel].linked(a, b) {
            return Outcome::NotLinked;
        }
        let lost = [(rel, End::A, a), (rel, End::B, b)];
        self.change_with_orphans(&lost, &[], |l| l[rel].detach(a, b))
    }

    /// `set_children` (one-to-many) and `set_targets` (many-to-many): `a`'s partners
    /// become `order`; only the difference is unlinked and linked.
    fn set_collection(&mut self, rel: usize, a: Id, order: &[Id]) -> Outcome {
        if !self.alive_as(a, SPECS[rel].a) {
            return Outcome::Stale(a);
        }
        let mut wanted = BTreeSet::new();
        for &b in order {
            if !self.alive_as(b, SPECS[rel].b) {
                return Outcome::Stale(b);
            }
            if !wanted.insert(b) {
                return Outcome::Duplicate(b);
            }
        }
        let links = &self.rels[rel];
        let dropped: Vec<Id> = links
            .targets(a)
            .iter()
            .copied()
            .filter(|b| !wanted.contains(b))
            .collect();
        // each new partner with its previous parent (one-to-many only)
        let added: Vec<(Id, Option<(usize, Id)>)> = order
            .iter()
            .filter(|&&b| !links.linked(a, b))
            .map(|&b| match SPECS[rel].kind {
                Kind::OneToMany => (b, self.previous_parent(rel, b)),
                _ => (b, None),
            })
            .collect();
        for &(b, _) in &added {
            if let Some(e) = self.check_new_link(rel, a, b) {
                return e;
            }
        }
        let mut lost: Vec<(usize, End, Id)> = dropped.iter().map(|&b| (rel, End::B, b)).collect();
        lost.extend(
            added
                .iter()
                .filter_map(|&(_, old)| old.map(|(r, o)| (r, End::A, o))),
        );
        if !dropped.is_empty() {
            lost.push((rel, End::A, a));
        }
        let keep: Vec<Id> = if order.is_empty() {
            Vec::new()
        } else {
            std::iter::once(a).chain(order.iter().copied()).collect()
        };
        self.change_with_orphans(&lost, &keep, |l| {
            for &b in &dropped {
                l[rel].detach(a, b);
            }
            for &(b, old) in &added {
                if let Some((r, o)) = old {
                    l[r].detach(o, b);
                }
                l[rel].attach(a, b, 0);
            }
            l[rel].reorder(a, order);
        })
    }
}

#[test]
fn the_model_plans_orphans_of_a_many_to_many_only_when_every_partner_goes() {
    let mut m = Model::default();
    let insert = |m: &mut Model, table| {
        m.apply(&Op::Insert { table, value: 0 });
        m.table_of.len() - 1
    };
    let (p1, p2, t) = (
        insert(&mut m, Tb::Post),
        insert(&mut m, Tb::Post),
        insert(&mut m, Tb::Tag),
    );
    for p in [p1, p2] {
        m.apply(&Op::Link {
            rel: TAGGING,
            a: p,
            b: t,
        });
    }
    assert_eq!(
        m.apply(&Op::Remove { id: p1 }),
        Outcome::Removed([(p1, "posts")].into())
    );
    assert_eq!(
        m.apply(&Op::Remove { id: p2 }),
        Outcome::Removed([(p2, "posts"), (t, "tags")].into())
    );
}
