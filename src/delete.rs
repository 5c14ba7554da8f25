//! Deleting entities: planning a delete through every relation's rules, previewing it,
//! and applying it as a sequence of primitives.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::error::RemoveError;
use crate::key::{AnyKey, RawKey};
use crate::relation::many_to_many::PairHasher;
use crate::relation::RelationStore;
use crate::schema::{DeleteRule, End, RelationName};
use crate::store::Store;

type Set = HashSet<(u32, RawKey), BuildHasherDefault<PairHasher>>;

/// What deleting an entity would do, as reported by
/// [`Store::preview_remove`](crate::Store::preview_remove). Nothing is changed by asking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeletePreview {
    /// Every entity the delete would remove, the requested one first, then cascades in
    /// the order they are reached.
    pub removed: Vec<AnyKey>,
    /// Every link between a removed entity and a surviving one, which the delete would
    /// unlink.
    pub unlinked: Vec<Unlinked>,
    /// Restrict rules that refuse the delete; empty if it would go ahead.
    pub blocked_by: Vec<Blocker>,
}

impl DeletePreview {
    /// Whether the delete would go ahead.
    pub fn allowed(&self) -> bool {
        self.blocked_by.is_empty()
    }
}

/// A link a delete would remove, seen from the removed entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unlinked {
    /// The relation.
    pub relation: RelationName,
    /// The end of the relation at which the removed entity sits (in a self-referential
    /// relation this tells which way the link points).
    pub end: End,
    /// The removed entity.
    pub removed: AnyKey,
    /// The surviving entity it is linked to.
    pub survivor: AnyKey,
}

/// A restrict rule that refuses a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// The relation whose rule refuses.
    pub relation: RelationName,
    /// The entity that would be removed.
    pub key: AnyKey,
    /// The linked entity that would survive and so blocks it.
    pub blocker: AnyKey,
}

type Restriction = (u32, (u32, RawKey), (u32, RawKey));

/// Plans up to this size find their members by a scan of `order`; larger ones keep a
/// hash set. Most deletes (an entity and its children) stay below it.
const SCAN_LIMIT: usize = 32;

/// The entities of a plan, in the order they were reached, and a fast membership test.
#[derive(Default)]
struct Members {
    order: Vec<(u32, RawKey)>,
    set: Option<Set>,
}

impl Members {
    fn contains(&self, k: &(u32, RawKey)) -> bool {
        match &self.set {
            Some(set) => set.contains(k),
            None => self.order.contains(k),
        }
    }

    /// Adds `k`, which the caller knows is not a member.
    #[inline]
    fn push_new(&mut self, k: (u32, RawKey)) {
        if let Some(set) = &mut self.set {
            set.insert(k);
        }
        self.order.push(k);
    }

    /// Past [`SCAN_LIMIT`] members, makes the set (after [`push_new`](Self::push_new)s),
    /// so that membership stays O(1).
    fn index_if_large(&mut self) {
        if self.set.is_none() && self.order.len() > SCAN_LIMIT {
            self.set = Some(self.order.iter().copied().collect());
        }
    }

    /// Adds `k` unless it is a member already; true if it was added.
    fn insert(&mut self, k: (u32, RawKey)) -> bool {
        if self.contains(&k) {
            return false;
        }
        if let Some(set) = &mut self.set {
            set.insert(k);
        } else if self.order.len() >= SCAN_LIMIT {
            let mut set: Set = self.order.iter().copied().collect();
            set.insert(k);
            self.set = Some(set);
        }
        self.order.push(k);
        true
    }
}

/// The entities a delete removes, in order, and the restrict rules it violates.
pub(crate) struct Plan {
    /// The first `roots` entries of `order` are the entities asked for (at most).
    pub roots: usize,
    pub order: Vec<(u32, RawKey)>,
    /// (relation, entity to delete, surviving blocker)
    pub blocked: Vec<Restriction>,
}

impl Store {
    /// The table that owns an entity's key space: the base of a kind, else the table.
    #[inline]
    pub(crate) fn root_table(&self, table: u32) -> u32 {
        self.schema.tables[table as usize].base.unwrap_or(table)
    }

    /// The kind table holding the row `key` of the base `table`, if it is a base.
    /// O(kinds).
    pub(crate) fn kind_table_of(&self, table: u32, key: RawKey) -> Option<u32> {
        self.schema.tables[table as usize]
            .kinds
            .iter()
            .copied()
            .find(|&k| self.tables[k as usize].contains(key))
    }

    /// The tables an entity lives in: its root table, and its kind table if it has one.
    pub(crate) fn entity_tables(&self, root: u32, key: RawKey) -> ([u32; 2], usize) {
        match self.kind_table_of(root, key) {
            Some(kind) => ([root, kind], 2),
            None => ([root, root], 1),
        }
    }

    /// Computes the closure of a delete of `roots` (live entities, named by their root
    /// table) under every rule.
    pub(crate) fn plan_remove(&self, roots: &[(u32, RawKey)]) -> Plan {
        let mut set = Members {
            order: Vec::with_capacity(16),
            set: None,
        };
        for &(t, k) in roots {
            set.insert((self.root_table(t), k));
        }
        let single_root = roots.len() == 1;
        let mut restricts = Vec::new();
        // (relation, end, partner) -> its links there not yet known to go to a planned
        // entity, for delete-orphan rules
        let mut orphans: HashMap<(u32, End, RawKey), usize, BuildHasherDefault<PairHasher>> =
            HashMap::default();
        let mut i = 0;
        while i < set.order.len() {
            let (root, key) = set.order[i];
            i += 1;
            if self.leaf[root as usize] {
                continue; // its one rule unlinks it from its parent
            }
            let (tables, n) = self.entity_tables(root, key);
            for &(rel, end) in tables[..n].iter().flat_map(|&t| &self.touching[t as usize]) {
                let def = &self.schema.relations[rel as usize];
                let store = &self.relations[rel as usize];
                let table = root;
                let other = self.root_table(def.table(end.other()));
                match def.rules.rule(end) {
                    DeleteRule::Nullify => {}
                    DeleteRule::Restrict => store.for_each_partner(end, key, |p| {
                        restricts.push((rel, (table, key), (other, p)));
                    }),
                    DeleteRule::Cascade
                        if single_root && set.set.is_none() && self.leaf[other as usize] =>
                    {
                        // leaves are reached from their one parent only: no duplicates
                        store.for_each_partner(end, key, |p| set.push_new((other, p)));
                        set.index_if_large();
                    }
                    DeleteRule::Cascade => store.for_each_partner(end, key, |p| {
                        set.insert((other, p));
                    }),
                    DeleteRule::DeleteOrphan => {
                        // a partner is deleted once every one of its links here is to a
                        // deleted entity: each such link is counted once, when the planned
                        // entity at its other end is examined, and the partner joins the
                        // plan when the count reaches its number of links. O(links).
                        store.for_each_partner(end, key, |p| {
                            if set.contains(&(other, p)) {
                                return;
                            }
                            let left = orphans
                                .entry((rel, end.other(), p))
                                .or_insert_with(|| store.partner_count(end.other(), p));
                            *left -= 1;
                            if *left == 0 {
                                set.insert((other, p));
                            }
                        });
                    }
                }
            }
        }
        let blocked = restricts
            .into_iter()
            .filter(|(_, _, blocker)| !set.contains(blocker))
            .collect();
        Plan {
            roots: roots.len(),
            order: set.order,
            blocked,
        }
    }

    pub(crate) fn any_key(&self, table: u32, key: RawKey) -> AnyKey {
        AnyKey {
            table: self.schema.tables[table as usize].name,
            key,
        }
    }

    pub(crate) fn first_blocker(&self, plan: &Plan) -> Option<RemoveError> {
        plan.blocked
            .first()
            .map(|&(rel, (t, k), (bt, b))| RemoveError::Restricted {
                relation: self.schema.relations[rel as usize].name,
                key: self.entity_name(t, k),
                blocker: self.entity_name(bt, b),
            })
    }

    /// The most specific name of an entity: its kind if it has one.
    pub(crate) fn entity_name(&self, root: u32, key: RawKey) -> AnyKey {
        let (tables, n) = self.entity_tables(root, key);
        self.any_key(tables[n - 1], key)
    }

    /// Describes a plan for a preview.
    pub(crate) fn describe_plan(&self, plan: &Plan) -> DeletePreview {
        let removed_set: Set = plan.order.iter().copied().collect();
        let mut unlinked = Vec::new();
        for &(root, key) in &plan.order {
            let (tables, n) = self.entity_tables(root, key);
            for &(rel, end) in tables[..n].iter().flat_map(|&t| &self.touching[t as usize]) {
                let def = &self.schema.relations[rel as usize];
                let other = def.table(end.other());
                self.relations[rel as usize].for_each_partner(end, key, |p| {
                    if !removed_set.contains(&(self.root_table(other), p)) {
                        unlinked.push(Unlinked {
                            relation: def.name,
                            end,
                            removed: self.entity_name(root, key),
                            survivor: self.entity_name(self.root_table(other), p),
                        });
                    }
                });
            }
        }
        DeletePreview {
            removed: plan
                .order
                .iter()
                .map(|&(t, k)| self.entity_name(t, k))
                .collect(),
            unlinked,
            blocked_by: plan
                .blocked
                .iter()
                .map(|&(rel, (t, k), (bt, b))| Blocker {
                    relation: self.schema.relations[rel as usize].name,
                    key: self.entity_name(t, k),
                    blocker: self.entity_name(bt, b),
                })
                .collect(),
        }
    }

    /// Applies a plan that is not blocked: unlinks every link of every planned entity,
    /// then removes it (its kind row first). Infallible.
    pub(crate) fn apply_plan(&mut self, plan: &Plan) {
        for (i, &(root, key)) in plan.order.iter().enumerate() {
            if self.leaf[root as usize] {
                // a leaf reached by a cascade was unlinked with its parent's children
                if i < plan.roots {
                    self.unlink_everything(root, key);
                }
                self.p_remove(root, key);
                continue;
            }
            let (tables, n) = self.entity_tables(root, key);
            for &table in &tables[..n] {
                self.unlink_everything(table, key);
            }
            for &table in tables[..n].iter().rev() {
                self.p_remove(table, key);
            }
        }
    }

    /// Unlinks every link of a row of `table` (not of its kind table), in every relation,
    /// whatever the rules.
    pub(crate) fn unlink_everything(&mut self, table: u32, key: RawKey) {
        for i in 0..self.touching[table as usize].len() {
            let (rel, end) = self.touching[table as usize][i];
            // a one-to-many parent's children go at once, other partners link by link
            let partner = match (&self.relations[rel as usize], end) {
                (RelationStore::OneToMany(_), End::A) => {
                    self.p_unlink_children(rel, key);
                    continue;
                }
                (RelationStore::OneToMany(r), End::B) => r.parent_of(key),
                (RelationStore::OneToOne(r), end) => r.partner(end, key),
                (many, end) => {
                    for p in many.partners(end, key) {
                        self.p_unlink_at(rel, end, key, p);
                    }
                    continue;
                }
            };
            if let Some(p) = partner {
                self.p_unlink_at(rel, end, key, p);
            }
        }
    }

    /// Unlinks `key`, which sits at `end` of relation `rel`, from its partner `p`.
    fn p_unlink_at(&mut self, rel: u32, end: End, key: RawKey, p: RawKey) {
        let (a, b) = match end {
            End::A => (key, p),
            End::B => (p, key),
        };
        self.p_unlink(rel, a, b);
    }
}
