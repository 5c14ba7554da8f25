//! Many-to-many: ordered collections at both ends, one link per pair, a payload per link.
//!
//! The links live in one vector of [`Link`]s, each naming its two endpoints and its
//! positions in their two collections; a link's index in that vector is its payload's
//! index in the payload vector. Removing a link swap-removes both and patches the two list
//! entries of the link that moved into the hole: O(1).
//!
//! Finding a pair: O(min(degree a, degree b)) up to [`SCAN_LIMIT`], then one hash lookup
//! in the shorter end's lazily built partner index. The lookup scans the shorter of the
//! two collections when it has at most [`SCAN_LIMIT`] slots; past that, it asks that
//! collection's [`PartnerIndex`] (partner -> position), built from `&self` on the first
//! such lookup and kept in step by every later change of the collection (it is kept if
//! the collection shrinks again, and dropped with the collection of a removed entity). So
//! an entity's collection is indexed at most once, at O(its length), and the lookup is
//! O(1) amortised. There is no global pair map: a snapshot load builds the collections
//! and the link vector and nothing else.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::error::IntegrityError;
use crate::grave::GraveSlot;
use crate::key::RawKey;
use crate::schema::{End, RelationDef};

use super::list::{HoleList, Iter};
use super::{grow, Alive, ErasedPayloads};

/// A fast hasher for keys and pairs of keys (keys are not attacker-chosen: the store
/// issues them).
#[derive(Default)]
pub(crate) struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        // final avalanche so that the low bits used by the table depend on every input bit
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Collections with at most this many slots (holes included) are scanned to find a
/// partner; longer ones are looked up in their [`PartnerIndex`].
pub(crate) const SCAN_LIMIT: usize = 32;

/// One link: its endpoints and its positions in their collections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    a: RawKey,
    b: RawKey,
    pos_a: u32,
    pos_b: u32,
}

/// What [`ManyToManyStore::detach`] returns: the positions the link had in the two
/// collections, and its payload if asked for.
pub(crate) type Detached = (u32, u32, Option<Box<dyn Any + Send + Sync>>);

/// An entry of a to-many list: the partner, and the link's index.
pub(crate) type Entry = (RawKey, u32);

/// Partner -> position of its live entry in one collection.
type PartnerIndex = HashMap<RawKey, u32, BuildHasherDefault<PairHasher>>;

/// The collection of one entity at one end, with its partner index once a lookup needed
/// it. Every change of the list goes through here, so a built index stays in step.
#[derive(Default)]
struct M2mList {
    list: HoleList<Entry>,
    /// Built on the first lookup in a list longer than [`SCAN_LIMIT`]; `OnceLock` lets a
    /// `&self` lookup build it while the store stays `Send + Sync` without locks.
    index: OnceLock<Box<PartnerIndex>>,
}

impl M2mList {
    /// The position and link index of `partner`'s entry.
    #[inline]
    fn find(&self, partner: RawKey) -> Option<(u32, u32)> {
        let raw = self.list.raw();
        if raw.len() <= SCAN_LIMIT {
            let pos = raw
                .iter()
                .position(|e| matches!(e, Some((p, _)) if *p == partner))?;
            return raw[pos].map(|(_, link)| (pos as u32, link));
        }
        let index = self.index.get_or_init(|| {
            let mut map =
                PartnerIndex::with_capacity_and_hasher(self.list.len(), Default::default());
            map.extend(self.list.iter_pos().map(|(pos, (p, _))| (p, pos)));
            Box::new(map)
        });
        let pos = *index.get(&partner)?;
        self.list.get(pos).map(|(_, link)| (pos, link))
    }

    /// Claims the list for `version`, dropping the index of a previous owner.
    fn claim(&mut self, version: u32) {
        if self.list.owner() != version {
            self.index.take();
        }
        self.list.claim(version);
    }

    /// Appends `e`; returns its position.
    fn push(&mut self, e: Entry) -> u32 {
        let pos = self.list.push(e);
        if let Some(index) = self.index.get_mut() {
            index.insert(e.0, pos);
        }
        pos
    }

    /// Puts `e` back at `pos` (a hole or past the end), undoing a [`remove`](Self::remove).
    fn insert_at(&mut self, pos: u32, e: Entry) {
        self.list.insert_at(pos, e);
        if let Some(index) = self.index.get_mut() {
            index.insert(e.0, pos);
        }
    }

    /// Removes the live entry at `pos`, leaving a hole.
    fn remove(&mut self, pos: u32) {
        let (partner, _) = self.list.remove(pos);
        if let Some(index) = self.index.get_mut() {
            index.remove(&partner);
        }
    }

    /// Points the live entry at `pos` to link `link`; its partner and position stay.
    fn set_link(&mut self, pos: u32, link: u32) {
        let (partner, _) = self.list.get(pos).expect("a live entry");
        self.list.set(pos, (partner, link));
    }

    /// Compacts the list if it has too many holes; `moved(e, new_pos)` for every entry
    /// that moved.
    fn compact_if_needed(&mut self, mut moved: impl FnMut(Entry, u32)) {
        if self.list.wants_compaction() {
            let Self { list, index } = self;
            let mut index = index.get_mut();
            list.compact(|e, pos| {
                if let Some(index) = index.as_mut() {
                    index.insert(e.0, pos);
                }
                moved(e, pos);
            });
        }
    }

    /// Replaces the list (holes included) with `items`, the same entries in another
    /// order; `placed(e, pos)` for every live entry.
    fn replace_all(&mut self, items: Vec<Option<Entry>>, mut placed: impl FnMut(Entry, u32)) {
        let Self { list, index } = self;
        let mut index = index.get_mut();
        list.replace_all(items, |e, pos| {
            if let Some(index) = index.as_mut() {
                index.insert(e.0, pos);
            }
            placed(e, pos);
        });
    }

    /// Disowns the list of a removed entity and releases its memory, index included.
    fn forget(&mut self, version: u32) {
        if self.list.owner() == version {
            self.index.take();
        }
        self.list.forget(version);
    }

    /// Whether the partner index, if built, maps exactly the live entries to their
    /// positions.
    fn index_agrees(&self) -> bool {
        let Some(index) = self.index.get() else {
            return true;
        };
        index.len() == self.list.len()
            && self
                .list
                .iter_pos()
                .all(|(pos, (p, _))| index.get(&p) == Some(&pos))
    }
}

/// The links of one many-to-many relation and the collections at both ends.
pub(crate) struct ManyToManyStore {
    /// Every link; a link's index here is its payload's index in `payloads`.
    links: Vec<Link>,
    a_lists: Vec<M2mList>,
    b_lists: Vec<M2mList>,
    pub(crate) payloads: Box<dyn ErasedPayloads>,
}

impl ManyToManyStore {
    pub fn new(payloads: Box<dyn ErasedPayloads>) -> Self {
        ManyToManyStore {
            links: Vec::new(),
            a_lists: Vec::new(),
            b_lists: Vec::new(),
            payloads,
        }
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.links.reserve(additional);
        self.payloads.reserve(additional);
    }

    /// Reserves room for `additional` more links (not payloads).
    pub fn reserve_pairs(&mut self, additional: usize) {
        self.links.reserve(additional);
    }

    /// Claims the collection of `key` at `end` and, if it is empty, gives it room for
    /// `entries` entries: a snapshot load knows every collection's length, so its lists
    /// are allocated once, at their size.
    /// Makes room for the lists of `slots` entities at `end` in all.
    pub fn reserve_slots(&mut self, end: End, slots: usize) {
        match end {
            End::A => super::reserve_to(&mut self.a_lists, slots),
            End::B => super::reserve_to(&mut self.b_lists, slots),
        }
    }

    pub fn reserve_list(&mut self, end: End, key: RawKey, entries: usize) {
        let lists = match end {
            End::A => &mut self.a_lists,
            End::B => &mut self.b_lists,
        };
        let l = grow(lists, key.idx());
        l.claim(key.version());
        if l.list.raw().is_empty() {
            l.replace_all(Vec::with_capacity(entries), |_, _| {});
        }
    }

    /// The non-empty lists at `end`: (owner slot, entries), in slot order.
    pub fn owned_lists(&self, end: End) -> impl Iterator<Item = (u32, &HoleList<Entry>)> + '_ {
        self.lists(end)
            .iter()
            .enumerate()
            .filter(|(_, l)| l.list.len() > 0)
            .map(|(i, l)| (i as u32, &l.list))
    }

    fn lists(&self, end: End) -> &Vec<M2mList> {
        match end {
            End::A => &self.a_lists,
            End::B => &self.b_lists,
        }
    }

    #[inline]
    fn list(&self, end: End, key: RawKey) -> Option<&M2mList> {
        self.lists(end)
            .get(key.idx())
            .filter(|l| l.list.owner() == key.version())
    }

    /// The partners of `key` (at `end`) with link indices, in link order.
    #[inline]
    pub fn entries(&self, end: End, key: RawKey) -> Iter<'_, Entry> {
        self.list(end, key)
            .map_or_else(Iter::empty, |l| l.list.iter())
    }

    pub fn count(&self, end: End, key: RawKey) -> usize {
        self.list(end, key).map_or(0, |l| l.list.len())
    }

    pub fn raw_order(&self, end: End, key: RawKey) -> Vec<Option<Entry>> {
        self.list(end, key)
            .map_or_else(Vec::new, |l| l.list.raw().to_vec())
    }

    /// Every link: its index (its payload's) and its two ends.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, RawKey, RawKey)> + '_ {
        self.links.iter().enumerate().map(|(i, l)| (i, l.a, l.b))
    }

    /// The index of the link between `a` and `b`: a scan of the shorter collection, or a
    /// lookup in its partner index when it is longer than [`SCAN_LIMIT`].
    #[inline]
    pub fn link_index(&self, a: RawKey, b: RawKey) -> Option<usize> {
        let la = self.list(End::A, a)?;
        let lb = self.list(End::B, b)?;
        let found = if la.list.raw().len() <= lb.list.raw().len() {
            la.find(b)
        } else {
            lb.find(a)
        };
        found.map(|(_, link)| link as usize)
    }

    /// Adds the link (a, b) at the end of both lists unless the pair is already linked:
    /// `Ok(index)` of the new link, whose payload the caller must push next, or
    /// `Err(index)` of the existing link.
    pub fn attach(&mut self, a: RawKey, b: RawKey) -> Result<usize, usize> {
        match self.link_index(a, b) {
            Some(index) => Err(index),
            None => Ok(self.push_link_unchecked(a, b)),
        }
    }

    /// Adds the link (a, b) at the end of both lists without looking for the pair, which
    /// the caller knows is not linked (a snapshot load checks for duplicates itself).
    /// Returns the new link's index; the caller must push its payload.
    pub fn push_link_unchecked(&mut self, a: RawKey, b: RawKey) -> usize {
        let index = self.links.len();
        let link = u32::try_from(index).expect("at most 2^32 links per relation");
        let la = grow(&mut self.a_lists, a.idx());
        la.claim(a.version());
        let pos_a = la.push((b, link));
        let lb = grow(&mut self.b_lists, b.idx());
        lb.claim(b.version());
        let pos_b = lb.push((a, link));
        self.links.push(Link { a, b, pos_a, pos_b });
        index
    }

    /// Removes the newest link (the last of `links`), its two list entries and its
    /// payload (into `grave`): the inverse of the append that made it, when nothing has
    /// been removed since. O(1).
    pub fn pop_link(&mut self, grave: &mut GraveSlot) {
        let index = self.links.len() - 1;
        let Link { a, b, pos_a, pos_b } = self.links.pop().expect("a link to pop");
        self.payloads.swap_remove_defer(index, grave);
        self.a_lists[a.idx()].remove(pos_a);
        self.b_lists[b.idx()].remove(pos_b);
    }

    /// Puts a link back at given positions, with its boxed payload.
    pub fn attach_at(
        &mut self,
        a: RawKey,
        b: RawKey,
        pos_a: u32,
        pos_b: u32,
        payload: Box<dyn Any + Send + Sync>,
    ) {
        let link = u32::try_from(self.links.len()).expect("at most 2^32 links per relation");
        self.payloads.push_boxed(payload);
        let la = grow(&mut self.a_lists, a.idx());
        la.claim(a.version());
        la.insert_at(pos_a, (b, link));
        let lb = grow(&mut self.b_lists, b.idx());
        lb.claim(b.version());
        lb.insert_at(pos_b, (a, link));
        self.links.push(Link { a, b, pos_a, pos_b });
    }

    /// Removes the link between `a` and `b`; returns its positions and, if `payload` is
    /// `None`, its boxed payload (else the payload goes to that grave).
    pub fn detach(
        &mut self,
        a: RawKey,
        b: RawKey,
        compact: bool,
        payload: Option<&mut GraveSlot>,
    ) -> Option<Detached> {
        let index = self.link_index(a, b)?;
        let payload = match payload {
            None => Some(self.payloads.swap_remove_boxed(index)),
            Some(grave) => {
                self.payloads.swap_remove_defer(index, grave);
                None
            }
        };
        let (pos_a, pos_b) = self.detach_index(index, a, b, compact);
        Some((pos_a, pos_b, payload))
    }

    /// Removes the link at `index` (between `a` and `b`) whose payload the caller has just
    /// swap-removed at the same index; returns its positions.
    #[inline]
    pub fn detach_index(
        &mut self,
        index: usize,
        a: RawKey,
        b: RawKey,
        compact: bool,
    ) -> (u32, u32) {
        let Link { pos_a, pos_b, .. } = self.links.swap_remove(index);
        self.a_lists[a.idx()].remove(pos_a);
        self.b_lists[b.idx()].remove(pos_b);
        // the last link moved into `index`: repoint its two list entries
        if let Some(m) = self.links.get(index) {
            self.a_lists[m.a.idx()].set_link(m.pos_a, index as u32);
            self.b_lists[m.b.idx()].set_link(m.pos_b, index as u32);
        }
        if compact {
            self.compact(End::A, a);
            self.compact(End::B, b);
        }
        (pos_a, pos_b)
    }

    /// Whether the list of `key` at `end` has enough holes to be worth compacting.
    pub fn wants_compaction(&self, end: End, key: RawKey) -> bool {
        let lists = match end {
            End::A => &self.a_lists,
            End::B => &self.b_lists,
        };
        lists
            .get(key.idx())
            .is_some_and(|l| l.list.owner() == key.version() && l.list.wants_compaction())
    }

    fn compact(&mut self, end: End, key: RawKey) {
        let (lists, links) = match end {
            End::A => (&mut self.a_lists, &mut self.links),
            End::B => (&mut self.b_lists, &mut self.links),
        };
        lists[key.idx()].compact_if_needed(|(_, link), pos| {
            set_pos(links, end, link, pos);
        });
    }

    /// Replaces the list of `key` at `end` (holes included) with `items`, which must hold
    /// exactly its current links.
    pub fn set_order(&mut self, end: End, key: RawKey, items: Vec<Option<Entry>>) {
        let (lists, links) = match end {
            End::A => (&mut self.a_lists, &mut self.links),
            End::B => (&mut self.b_lists, &mut self.links),
        };
        let list = grow(lists, key.idx());
        list.claim(key.version());
        list.replace_all(items, |(_, link), pos| set_pos(links, end, link, pos));
    }

    pub fn forget(&mut self, end: End, key: RawKey) {
        let lists = match end {
            End::A => &mut self.a_lists,
            End::B => &mut self.b_lists,
        };
        if let Some(l) = lists.get_mut(key.idx()) {
            l.forget(key.version());
        }
    }

    /// Whether `key` owns its list at `end`: then it is alive.
    #[inline]
    pub fn owns_list(&self, end: End, key: RawKey) -> bool {
        self.list(end, key).is_some()
    }

    pub fn check(&self, def: &RelationDef, alive: Alive<'_>) -> Result<(), IntegrityError> {
        let relation = def.name;
        if self.payloads.len() != self.links.len() {
            return Err(IntegrityError::CountMismatch {
                what: format!("payloads of {relation}"),
                stored: self.payloads.len(),
                actual: self.links.len(),
            });
        }
        for (index, link) in self.links.iter().enumerate() {
            let (a, b) = (link.a, link.b);
            for (end, key) in [(End::A, a), (End::B, b)] {
                if !alive(end, key) {
                    return Err(IntegrityError::DeadEndpoint { relation, end, key });
                }
            }
            let in_a = self.list(End::A, a).and_then(|l| l.list.get(link.pos_a));
            let in_b = self.list(End::B, b).and_then(|l| l.list.get(link.pos_b));
            let index = index as u32;
            if in_a != Some((b, index)) || in_b != Some((a, index)) {
                return Err(IntegrityError::Disagree {
                    relation,
                    key: a,
                    detail: "link missing from a collection or at the wrong position",
                });
            }
            if def.rules.forbid_self_links && a == b {
                return Err(IntegrityError::SelfLink { relation, key: a });
            }
        }
        for end in [End::A, End::B] {
            let mut listed = 0usize;
            for (i, l) in self.lists(end).iter().enumerate() {
                super::check_owner(def, end, i, l.list.owner(), alive)?;
                let found = l.list.iter_pos().count();
                if found != l.list.len() {
                    return Err(IntegrityError::CountMismatch {
                        what: format!("a collection of {relation}"),
                        stored: l.list.len(),
                        actual: found,
                    });
                }
                if !l.index_agrees() {
                    return Err(IntegrityError::Disagree {
                        relation,
                        key: slot_owner(i, l),
                        detail: "a collection's partner index disagrees with it",
                    });
                }
                listed += found;
            }
            // every listed entry is one of the verified links, and there are as many
            if listed != self.links.len() {
                return Err(IntegrityError::CountMismatch {
                    what: format!("links of {relation} listed at end {end:?}"),
                    stored: self.links.len(),
                    actual: listed,
                });
            }
        }
        // the listed entries are the links, so a pair linked twice lists one partner twice
        // in a first-end collection
        let mut seen = vec![0u32; self.b_lists.len()];
        for (stamp, (i, l)) in (1u32..).zip(self.a_lists.iter().enumerate()) {
            for (b, _) in l.list.iter() {
                match seen.get_mut(b.idx()) {
                    Some(s) if *s != stamp => *s = stamp,
                    _ => {
                        return Err(IntegrityError::Disagree {
                            relation,
                            key: slot_owner(i, l),
                            detail: "a pair linked twice",
                        })
                    }
                }
            }
        }
        if def.rules.acyclic {
            if let Some(key) = self.find_cycle() {
                return Err(IntegrityError::Cycle { relation, key });
            }
        }
        Ok(())
    }

    /// An entity on a cycle of A -> B edges, if there is one: iterative three-colour
    /// depth-first search, O(links).
    pub fn find_cycle(&self) -> Option<RawKey> {
        let n = self.a_lists.len().max(self.b_lists.len());
        let mut colour = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
        for start in 0..self.a_lists.len() {
            if colour[start] != 0 || self.a_lists[start].list.len() == 0 {
                continue;
            }
            let mut stack: Vec<(usize, Iter<'_, Entry>)> =
                vec![(start, self.a_lists[start].list.iter())];
            colour[start] = 1;
            while let Some((node, it)) = stack.last_mut() {
                match it.next() {
                    Some((next, _)) => {
                        let j = next.idx();
                        match colour[j] {
                            1 => return Some(next),
                            0 => {
                                colour[j] = 1;
                                let it = self
                                    .a_lists
                                    .get(j)
                                    .map_or_else(Iter::empty, |l| l.list.iter());
                                stack.push((j, it));
                            }
                            _ => {}
                        }
                    }
                    None => {
                        colour[*node] = 2;
                        stack.pop();
                    }
                }
            }
        }
        None
    }
}

/// Records that link `link` sits at `pos` in its collection at `end`.
#[inline]
fn set_pos(links: &mut [Link], end: End, link: u32, pos: u32) {
    if let Some(l) = links.get_mut(link as usize) {
        match end {
            End::A => l.pos_a = pos,
            End::B => l.pos_b = pos,
        }
    }
}

/// The key of the owner of the list at slot `i`, for error reports (version 1 if the list
/// has no owner).
fn slot_owner(i: usize, l: &M2mList) -> RawKey {
    RawKey::at(i, l.list.owner().max(1)).expect("nonzero version")
}

#[cfg(test)]
mod tests {
    //! The lazy partner indices: built by lookups in long collections (or forced), then
    //! kept in step by links, unlinks, compaction, reorders, rollbacks, removals and slot
    //! reuse. `check_integrity` verifies every built index against its collection, and
    //! every lookup is compared with a model.

    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::relation::RelationStore;
    use crate::{Key, ManyToMany, Rules, Schema, Store};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Student(u32);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Course(u32);

    type Rel = ManyToMany<Student, Course, u32>;

    /// The targets of every live student and the sources of every live course, in order.
    type Orders = (Vec<Vec<Key<Course>>>, Vec<Vec<Key<Student>>>);

    fn schema() -> (Schema, Rel) {
        let mut schema = Schema::new();
        let students = schema.table::<Student>("students");
        let courses = schema.table::<Course>("courses");
        let rel = schema.many_to_many_with(students, "courses", courses, "students", Rules::new());
        (schema, rel)
    }

    /// A store with one many-to-many, and the links it should hold: (student, course) by
    /// position in `s` and `c` (removed keys stay there, stale) -> payload.
    struct World {
        store: Store,
        rel: Rel,
        s: Vec<Key<Student>>,
        c: Vec<Key<Course>>,
        model: BTreeMap<(usize, usize), u32>,
    }

    impl World {
        /// `ns` students, `nc` courses, every pair linked (student by student).
        fn complete(ns: usize, nc: usize) -> World {
            let (schema, rel) = schema();
            let mut store = Store::new(schema);
            let s = (0..ns as u32).map(|i| store.insert(Student(i))).collect();
            let c = (0..nc as u32).map(|j| store.insert(Course(j))).collect();
            let mut w = World {
                store,
                rel,
                s,
                c,
                model: BTreeMap::new(),
            };
            for i in 0..ns {
                for j in 0..nc {
                    w.link(i, j);
                }
            }
            w.store.check_integrity().unwrap();
            w
        }

        fn m2m(&self) -> &ManyToManyStore {
            match &self.store.relations[0] {
                RelationStore::ManyToMany(r) => r,
                _ => unreachable!("the only relation is a many-to-many"),
            }
        }

        /// Builds the partner index of every collection longer than the scan limit.
        fn index_all(&self) {
            let r = self.m2m();
            for l in r.a_lists.iter().chain(&r.b_lists) {
                if l.list.raw().len() > SCAN_LIMIT {
                    let nobody = RawKey::from_bits(u64::MAX).unwrap();
                    assert_eq!(l.find(nobody), None);
                    assert!(l.index.get().is_some());
                }
            }
        }

        /// How many collections have a built index, at each end.
        fn indexed(&self) -> (usize, usize) {
            let r = self.m2m();
            let count =
                |lists: &[M2mList]| lists.iter().filter(|l| l.index.get().is_some()).count();
            (count(&r.a_lists), count(&r.b_lists))
        }

        fn link(&mut self, i: usize, j: usize) {
            let w = (i * 1000 + j) as u32;
            self.store
                .link_with(self.rel, self.s[i], self.c[j], w)
                .unwrap();
            self.model.insert((i, j), w);
        }

        fn unlink(&mut self, i: usize, j: usize) {
            let was = self.store.unlink(self.rel, self.s[i], self.c[j]).unwrap();
            assert_eq!(was, self.model.remove(&(i, j)).is_some());
        }

        /// Integrity, then every pair's lookup against the model.
        fn verify(&self) {
            self.store.check_integrity().unwrap();
            assert_eq!(self.store.link_count(self.rel), self.model.len());
            for (i, &a) in self.s.iter().enumerate() {
                for (j, &b) in self.c.iter().enumerate() {
                    let want = self.model.get(&(i, j));
                    assert_eq!(self.store.payload(self.rel, a, b), want, "pair ({i}, {j})");
                    assert_eq!(self.store.linked(self.rel, a, b), want.is_some());
                }
            }
        }

        /// Every collection's partners, in order, at both ends.
        fn orders(&self) -> Orders {
            let live_s = self.s.iter().filter(|&&k| self.store.contains(k));
            let live_c = self.c.iter().filter(|&&k| self.store.contains(k));
            (
                live_s
                    .map(|&k| self.store.targets(self.rel, k).collect())
                    .collect(),
                live_c
                    .map(|&k| self.store.sources(self.rel, k).collect())
                    .collect(),
            )
        }
    }

    #[test]
    fn lookups_in_long_collections_use_partner_indices() {
        let mut w = World::complete(100, 100);
        // linking (i, j) looked for the pair in the shorter collection: once both ends
        // were past the scan limit, one of them was indexed
        let (a, b) = w.indexed();
        assert!(a > 0 && b > 0 && a + b < 200, "{a} + {b} indices");
        w.verify();
        // ties look at the first end
        assert_eq!(w.indexed().0, 100);
        // empties the corner (i < 60, j < 60): both ends compact
        for step in 0..60 * 60 {
            let (i, j) = (step / 60, step % 60);
            w.unlink(i, j);
            if step % 97 == 0 {
                w.store.check_integrity().unwrap();
            }
        }
        w.verify();
        // (i >= 60, j < 60) looks in the shorter course collections
        let r = w.m2m();
        assert!(r.b_lists[..60].iter().all(|l| l.index.get().is_some()));
        assert!(
            r.b_lists[..60].iter().all(|l| l.list.raw().len() < 100),
            "compacted"
        );
        // links again into indexed collections
        for i in (0..100).step_by(3) {
            for j in (0..60).step_by(7) {
                w.link(i, j);
            }
        }
        w.verify();
    }

    #[test]
    fn compaction_moves_entries_in_indexed_collections() {
        let mut w = World::complete(48, 48);
        w.index_all();
        assert_eq!(w.indexed(), (48, 48));
        for i in 0..48 {
            for j in (0..48).filter(|j| (i + j) % 4 != 0) {
                w.unlink(i, j);
                if j % 5 == 0 {
                    w.store.check_integrity().unwrap();
                }
            }
            w.store.check_integrity().unwrap();
        }
        w.verify();
        // every collection was compacted at least once
        let r = w.m2m();
        for l in r.a_lists.iter().chain(&r.b_lists) {
            assert_eq!(l.list.len(), 12);
            assert!(l.list.raw().len() < 40 && l.index.get().is_some());
        }
        for i in 0..48 {
            for j in (0..48).filter(|j| (i + j) % 4 == 1) {
                w.link(i, j);
            }
        }
        w.verify();
    }

    #[test]
    fn reorders_keep_partner_indices() {
        let mut w = World::complete(50, 50);
        w.index_all();
        // reversed order, same links
        for i in (0..50).step_by(2) {
            let mut order: Vec<Key<Course>> = w.store.targets(w.rel, w.s[i]).collect();
            order.reverse();
            w.store.set_targets(w.rel, w.s[i], &order).unwrap();
            assert_eq!(w.store.targets(w.rel, w.s[i]).collect::<Vec<_>>(), order);
            w.store.check_integrity().unwrap();
        }
        w.verify();
        // drops every third target and reorders the rest: kept links keep their payload
        for i in (1..50).step_by(2) {
            let order: Vec<Key<Course>> = (0..50)
                .rev()
                .filter(|j| j % 3 != 0)
                .map(|j| w.c[j])
                .collect();
            w.store.set_targets(w.rel, w.s[i], &order).unwrap();
            for j in (0..50).filter(|j| j % 3 == 0) {
                w.model.remove(&(i, j));
            }
            assert_eq!(w.store.targets(w.rel, w.s[i]).collect::<Vec<_>>(), order);
            w.store.check_integrity().unwrap();
        }
        w.verify();
        // adds targets back (default payload) in a new order
        let order: Vec<Key<Course>> = (0..50).map(|j| w.c[(j * 7) % 50]).collect();
        w.store.set_targets(w.rel, w.s[1], &order).unwrap();
        for j in (0..50).filter(|j| j % 3 == 0) {
            w.model.insert((1, j), 0);
        }
        assert_eq!(w.store.targets(w.rel, w.s[1]).collect::<Vec<_>>(), order);
        w.verify();
    }

    #[test]
    fn rollback_restores_indexed_collections() {
        let mut w = World::complete(50, 50);
        for i in 0..50 {
            w.unlink(i, (i * 3) % 50);
        }
        w.index_all();
        w.verify();
        let (before, model) = (w.orders(), w.model.clone());
        let (rel, s, c) = (w.rel, w.s.clone(), w.c.clone());
        let r: Result<(), ()> = w.store.transaction(|st| {
            // unlinks leave holes (no compaction inside a transaction)
            for (i, &a) in s.iter().enumerate() {
                for j in (0..50).filter(|j| (i + j) % 3 != 0) {
                    st.unlink(rel, a, c[j]).unwrap();
                }
            }
            st.check_integrity().unwrap();
            // links back, some of them the pairs unlinked before the transaction
            for (i, &a) in s.iter().enumerate() {
                st.link_with(rel, a, c[(i * 3) % 50], 7).unwrap();
                st.link_with(rel, a, c[(i + 1) % 50], 8).unwrap();
            }
            let mut order: Vec<Key<Course>> = st.targets(rel, s[4]).collect();
            order.rotate_left(5);
            st.set_targets(rel, s[4], &order).unwrap();
            st.remove(s[7]).unwrap();
            st.remove(c[9]).unwrap();
            let new = st.insert(Student(99));
            for &b in &c[10..50] {
                st.link_with(rel, new, b, 9).unwrap();
            }
            st.check_integrity().unwrap();
            Err(())
        });
        assert!(r.is_err());
        w.store.check_integrity().unwrap();
        assert_eq!(w.orders(), before);
        assert_eq!(w.model, model);
        w.verify();
        w.index_all();
        w.verify();
    }

    #[test]
    fn a_removed_entity_takes_its_index_and_its_slot_starts_afresh() {
        let mut w = World::complete(50, 50);
        w.index_all();
        w.store.remove(w.s[0]).unwrap();
        w.store.remove(w.c[1]).unwrap();
        w.model.retain(|&(i, j), _| i != 0 && j != 1);
        assert!(w.m2m().a_lists[0].index.get().is_none());
        assert!(w.m2m().b_lists[1].index.get().is_none());
        w.verify();
        // the new entities reuse the slots with a new version
        let s = w.store.insert(Student(50));
        let c = w.store.insert(Course(50));
        assert_eq!((s.raw().index(), c.raw().index()), (0, 1));
        w.s.push(s);
        w.c.push(c);
        for j in (2..w.c.len()).rev() {
            w.link(50, j);
        }
        for i in 1..w.s.len() {
            w.link(i, 50);
        }
        w.verify();
        w.index_all();
        w.verify();
        // the stale keys see nothing, through the scan and through the index
        let (old_s, old_c) = (w.s[0], w.c[1]);
        assert_eq!(w.store.payload(w.rel, old_s, w.c[2]), None);
        assert_eq!(w.store.payload(w.rel, w.s[2], old_c), None);
        assert_eq!(w.store.payload(w.rel, s, c), Some(&50_050));
    }

    #[test]
    fn a_loaded_snapshot_indexes_lazily_and_saves_the_same_bytes() {
        let mut w = World::complete(40, 45);
        for i in 0..40 {
            for j in (0..45).filter(|j| (i * j) % 5 == 1) {
                w.unlink(i, j);
            }
        }
        w.verify();
        let bytes = w.store.to_snapshot().unwrap();
        let (schema, rel) = schema();
        let loaded = Store::from_snapshot(schema, &bytes).unwrap();
        let mut v = World {
            store: loaded,
            rel,
            s: w.s.clone(),
            c: w.c.clone(),
            model: w.model.clone(),
        };
        assert_eq!(v.indexed(), (0, 0));
        assert_eq!(v.orders(), w.orders());
        v.verify();
        v.index_all();
        for i in 0..40 {
            v.unlink(i, (i + 2) % 45);
        }
        v.verify();
        w.store.check_integrity().unwrap();
        for i in 0..40 {
            w.unlink(i, (i + 2) % 45);
        }
        assert_eq!(
            v.store.to_snapshot().unwrap(),
            w.store.to_snapshot().unwrap()
        );
    }

    #[test]
    fn the_check_finds_a_pair_linked_twice_and_a_stale_index() {
        let mut w = World::complete(3, 40);
        let (a, b) = (w.s[1].raw(), w.c[2].raw());
        let RelationStore::ManyToMany(r) = &mut w.store.relations[0] else {
            unreachable!("the only relation is a many-to-many")
        };
        r.push_link_unchecked(a, b);
        r.payloads.push_boxed(Box::new(0u32));
        let e = w.store.check_integrity().unwrap_err();
        assert!(format!("{e:?}").contains("a pair linked twice"), "{e:?}");

        let w = World::complete(3, 40);
        w.index_all();
        let mut store = w.store;
        let RelationStore::ManyToMany(r) = &mut store.relations[0] else {
            unreachable!("the only relation is a many-to-many")
        };
        let index = r.a_lists[0].index.get_mut().expect("built");
        *index.get_mut(&w.c[5].raw()).expect("listed") = 6;
        let e = store.check_integrity().unwrap_err();
        assert!(format!("{e:?}").contains("partner index"), "{e:?}");
    }
}
