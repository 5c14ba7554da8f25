//! One-to-many: an ordered collection of children per parent, one parent per child.

use crate::arena::Bits;
use crate::error::IntegrityError;
use crate::key::RawKey;
use crate::schema::{End, RelationDef};

use super::list::Iter;
use super::pool::{segment_for, Pool, PoolList};
use super::{grow, reserve_to, Alive};

/// A child's parent, or no parent at all ([`ParentRef::NONE`]): not an `Option`, so that
/// a parent lookup makes one compare (the child's version against `child_version`, never
/// 0 for a live key) where an `Option` made two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParentRef {
    parent: RawKey,
    /// Version of the child this entry belongs to; 0: the entry is empty, and `parent`
    /// means nothing (an unlink clears this field alone).
    child_version: u32,
}

impl ParentRef {
    const NONE: ParentRef = ParentRef {
        parent: RawKey::new(0, std::num::NonZeroU32::MIN),
        child_version: 0,
    };

    /// The entry of `child` under `parent`.
    #[inline]
    fn of(parent: RawKey, child: RawKey) -> ParentRef {
        ParentRef {
            parent,
            child_version: child.version(),
        }
    }

    /// The entry, if it holds a parent.
    #[inline]
    pub(crate) fn get(self) -> Option<ParentRef> {
        (self.child_version != 0).then_some(self)
    }
}

// 12 bytes, as a hand-kept map of parent keys: W3's random lookups depend on it
const _: () = assert!(std::mem::size_of::<ParentRef>() == 12);

/// The parent of `child` among `entries` (a one-to-many's parent entries by child slot):
/// one bounds check and one compare.
#[inline]
pub(crate) fn parent_in(entries: &[ParentRef], child: RawKey) -> Option<RawKey> {
    match entries.get(child.idx()) {
        Some(r) if r.child_version == child.version() => Some(r.parent),
        _ => None,
    }
}

/// The children list of `parent` among `children` (by parent slot), grown to reach it
/// and claimed for `parent`'s version (a list left by a removed owner is empty).
#[inline(always)]
fn own_list(children: &mut Vec<PoolList>, parent: RawKey) -> &mut PoolList {
    let list = grow(children, parent.idx());
    list.claim(parent.version());
    list
}

impl Default for ParentRef {
    fn default() -> Self {
        ParentRef::NONE
    }
}

/// The segments a bulk link laid out for its parents' lists in slot order
/// ([`OneToManyStore::regions`]): `cap` elements each (0: none), for parent slots
/// `0..count`, a bit set in `taken` for each taken.
#[derive(Default)]
pub(crate) struct Regions {
    cap: u32,
    count: usize,
    taken: Bits,
}

impl Regions {
    /// Whether there are regions.
    pub fn laid(&self) -> bool {
        self.cap > 0
    }
}

/// Both sides of a one-to-many: `children` by parent slot, `parent` by child slot, and
/// by child slot the child's position in its parent's list (meaningful where `parent`
/// has an entry). The positions are a vector of their own so that a parent lookup reads
/// 12 bytes per child, no more than a hand-kept `SecondaryMap` of parent keys: over a
/// million children, the 16 bytes of an entry with the position in it made the
/// table outgrow this machine's cache and random parent lookups 1.5x slower.
#[derive(Default)]
pub(crate) struct OneToManyStore {
    /// The children lists by parent slot, their elements in `pool`.
    children: Vec<PoolList>,
    pool: Pool<RawKey>,
    parent: Vec<ParentRef>,
    pos: Vec<u32>,
    links: usize,
}

impl OneToManyStore {
    pub fn link_count(&self) -> usize {
        self.links
    }

    #[inline]
    pub fn parent_of(&self, child: RawKey) -> Option<RawKey> {
        parent_in(&self.parent, child)
    }

    /// The parent entries by child slot, for a view that looks many up
    /// ([`parent_in`]).
    #[inline]
    pub fn parent_entries(&self) -> &[ParentRef] {
        &self.parent
    }

    /// The slot of the parent of the live entity at child slot `child`. Every parent
    /// entry belongs to a live child (an unlink or a removal clears it), so the slot alone
    /// names the child.
    #[inline]
    pub fn parent_slot(&self, child: usize) -> Option<usize> {
        self.parent
            .get(child)
            .and_then(|r| r.get())
            .map(|r| r.parent.idx())
    }

    /// Whether `child` has a parent: then it is alive.
    #[inline]
    pub fn vouches_child(&self, child: RawKey) -> bool {
        self.parent_of(child).is_some()
    }

    /// The parent and the child's position in the parent's list.
    pub fn parent_pos(&self, child: RawKey) -> Option<(RawKey, u32)> {
        parent_in(&self.parent, child).map(|p| (p, self.pos[child.idx()]))
    }

    #[inline]
    fn list(&self, parent: RawKey) -> Option<&PoolList> {
        self.children
            .get(parent.idx())
            .filter(|l| l.owner() == parent.version())
    }

    #[inline]
    pub fn children_of(&self, parent: RawKey) -> Iter<'_, RawKey> {
        // a stale key or a parent without a list reads an empty list: one slice of the
        // pool either way, no branch to an empty iterator
        let list = self.list(parent).copied().unwrap_or_default();
        list.iter(&self.pool)
    }

    /// The children list of `parent` with its holes (empty for a stale key).
    #[inline]
    pub fn raw_children(&self, parent: RawKey) -> &[Option<RawKey>] {
        self.list(parent).map_or(&[], |l| l.raw(&self.pool))
    }

    pub fn child_count(&self, parent: RawKey) -> usize {
        self.list(parent).map_or(0, PoolList::len)
    }

    /// Every child that has a parent. O(child slots).
    pub fn linked_children(&self) -> impl Iterator<Item = RawKey> + '_ {
        (self.parent.iter().enumerate()).filter_map(|(i, r)| RawKey::at(i, r.child_version))
    }

    /// The raw list of a parent, holes included (for exact restoration of an order).
    pub fn raw_order(&self, parent: RawKey) -> Vec<Option<RawKey>> {
        self.raw_children(parent).to_vec()
    }

    /// Makes room for `slots` parents (at `End::A`) or children (at `End::B`) in all.
    pub fn reserve_slots(&mut self, end: End, slots: usize) {
        match end {
            End::A => reserve_to(&mut self.children, slots),
            End::B => {
                reserve_to(&mut self.parent, slots);
                reserve_to(&mut self.pos, slots);
            }
        }
    }

    /// Appends `children` (live keys) to `parent`'s list, grown once, for a snapshot load:
    /// each must have no parent yet (else it is returned, and the links of this call up to
    /// it are made), and the parent vector must already reach every child's slot
    /// ([`size_parents`](Self::size_parents)). A tight loop, so that the random accesses to
    /// the children's entries overlap.
    pub fn attach_list(&mut self, parent: RawKey, children: &[RawKey]) -> Result<(), RawKey> {
        let pool = &mut self.pool;
        let list = own_list(&mut self.children, parent);
        list.reserve_exact(pool, children.len());
        let start = list.raw(pool).len() as u32;
        for (pos, &c) in (start..).zip(children) {
            let slot = &mut self.parent[c.idx()];
            if slot.get().is_some() {
                return Err(c);
            }
            *slot = ParentRef::of(parent, c);
            self.pos[c.idx()] = pos;
            list.push(pool, c);
            self.links += 1;
        }
        Ok(())
    }

    /// Makes room in the pool for new lists of `lens` elements (a snapshot load or a
    /// checked bulk link sizes the pool once, then each list exactly).
    pub fn reserve_lists(&mut self, lens: impl Iterator<Item = usize>) {
        self.pool.reserve(lens.sum());
    }

    /// Makes room in the pool for `lists` new lists of `each` elements (a bulk link
    /// sizing each new list for the batch's average), and a quarter more for the lists
    /// that outgrow the average: without it the first of those moved the whole pool
    /// (a `realloc` copy of every list so far). Room not used is never written, so it
    /// takes address space, not memory.
    pub fn reserve_segments(&mut self, lists: usize, each: usize) {
        let room = lists.saturating_mul(segment_for(each));
        self.pool.reserve(room.saturating_add(room / 4));
    }

    /// Makes the parent vector reach `slots` child slots (entries without a parent).
    pub fn size_parents(&mut self, slots: usize) {
        if self.parent.len() < slots {
            self.parent.resize(slots, ParentRef::NONE);
            self.pos.resize(slots, 0);
        }
    }

    /// Makes room for the links `pairs` (live keys, about to be linked in order): every
    /// parent's list grows once, to hold its new children, and the parent vector reaches
    /// every child's slot. Lists are sized in slot order, so that lists read in slot order
    /// lie in allocation order. O(pairs + parent slots).
    pub fn reserve_links(&mut self, pairs: &[(RawKey, RawKey)]) {
        let Some(top) = pairs.iter().map(|(p, _)| p.idx()).max() else {
            return;
        };
        // (links, version) by parent slot
        let mut count = vec![(0u32, 0u32); top + 1];
        for (p, _) in pairs {
            let c = &mut count[p.idx()];
            c.0 += 1;
            c.1 = p.version();
        }
        if top >= self.children.len() {
            self.children.resize_with(top + 1, PoolList::default);
        }
        self.reserve_lists(count.iter().map(|&(n, _)| n as usize));
        for ((n, version), list) in count.into_iter().zip(&mut self.children) {
            if n > 0 {
                list.claim(version);
                list.reserve_exact(&mut self.pool, n as usize);
            }
        }
        if let Some(last) = pairs.iter().map(|(_, c)| c.idx()).max() {
            self.size_parents(last + 1);
        }
    }

    /// Appends each child of `pairs` (parentless, each once) to its parent's list, after
    /// [`reserve_links`](Self::reserve_links) made room for exactly these pairs: no growth
    /// check per link. O(pairs).
    pub fn attach_reserved(&mut self, pairs: &[(RawKey, RawKey)]) {
        for &(parent, child) in pairs {
            let list = &mut self.children[parent.idx()];
            debug_assert_eq!(list.owner(), parent.version());
            let pos = list.push(&mut self.pool, child);
            let slot = &mut self.parent[child.idx()];
            debug_assert!(slot.get().is_none(), "a reserved child has no parent");
            *slot = ParentRef::of(parent, child);
            self.pos[child.idx()] = pos;
        }
        self.links += pairs.len();
    }

    /// Gives `parent`'s list room for `expected` children if it has no room at all yet (a
    /// bulk link that cannot count the children of each parent first): its region, if
    /// `regions` has one for it, else a segment of the pool.
    #[inline]
    pub fn presize(&mut self, parent: RawKey, expected: usize, regions: &mut Regions) {
        match self.children.get(parent.idx()) {
            Some(l) if l.owner() == parent.version() && l.has_room() => {}
            _ => self.presize_new(parent, expected, regions),
        }
    }

    /// [`presize`](Self::presize) of a list that has no room yet: out of line, once per
    /// parent of a batch.
    #[inline(never)]
    fn presize_new(&mut self, parent: RawKey, expected: usize, regions: &mut Regions) {
        let list = own_list(&mut self.children, parent);
        let i = parent.idx();
        if regions.cap > 0 && i < regions.count && !list.has_room() {
            list.take_region(i as u32 * regions.cap, regions.cap);
            regions.taken.set(parent.index());
        } else {
            list.reserve(&mut self.pool, expected);
        }
    }

    /// The regions of a bulk link of `hint` pairs into an empty relation: in an empty
    /// pool, every parent slot's list gets a segment of `cap` elements at `slot * cap`
    /// (`cap` the batch's average per parent, `expected`, rounded up to a power of two),
    /// taken when the batch first names the parent; the rest are given back afterwards
    /// ([`release_regions`](Self::release_regions)). So the lists lie in slot order, and
    /// a walk of every parent's children reads the pool front to back, whatever order
    /// the pairs came in. None (`cap` 0) if the pool holds segments (every link lies in
    /// one), or if the regions would take more than two elements a pair (or more than
    /// the pool's offsets reach).
    pub fn regions(&mut self, slots: usize, hint: usize, expected: usize) -> Regions {
        let cap = segment_for(expected);
        let room = slots.saturating_mul(cap);
        let too_much = room > hint.saturating_mul(2) || room >= u32::MAX as usize;
        if !self.pool.is_empty() || slots == 0 || too_much {
            return Regions::default();
        }
        self.pool.lay_regions(slots, cap as u32);
        Regions {
            cap: cap as u32,
            count: slots,
            taken: Bits::with_len(slots),
        }
    }

    /// Gives back the regions no list took.
    pub fn release_regions(&mut self, regions: &Regions) {
        if regions.cap > 0 {
            self.pool
                .release_regions(regions.count, regions.cap, &regions.taken);
        }
    }

    /// Appends `child` (which has no parent) to `parent`'s children.
    #[inline(always)]
    pub fn attach(&mut self, parent: RawKey, child: RawKey) -> u32 {
        let list = own_list(&mut self.children, parent);
        let pos = list.push(&mut self.pool, child);
        self.set_parent(child, parent, pos);
        pos
    }

    /// Appends a new child, made by `make` once `parent` is known to be alive, to
    /// `parent`'s children: one lookup of the parent's list serves as the liveness check
    /// and as the place to push. A parent whose list does not prove it alive is asked of
    /// `alive`; `None` (and `make` not called) if that fails. `cx` is what both closures
    /// work on (the tables), so that they can borrow it in turn. The new child's slot must
    /// have no parent entry (a key no entity has had).
    #[inline(always)]
    pub fn attach_new<X: ?Sized>(
        &mut self,
        cx: &mut X,
        parent: RawKey,
        alive: impl FnOnce(&X) -> bool,
        make: impl FnOnce(&mut X) -> RawKey,
    ) -> Option<RawKey> {
        let list = match self.children.get_mut(parent.idx()) {
            Some(l) if l.owner() == parent.version() => l,
            _ => {
                if !alive(cx) {
                    return None;
                }
                own_list(&mut self.children, parent)
            }
        };
        let child = make(cx);
        let pos = list.push(&mut self.pool, child);
        self.set_parent(child, parent, pos);
        Some(child)
    }

    /// Links `child`, which has no parent, as the last child of `parent`, after checking
    /// both alive: `parent` by its list if that proves it, else by `alive_parent`, then
    /// `child` by `alive_child`. One lookup of the parent's list serves as the check and
    /// as the place to push. On a failed check nothing changes, and the end that failed is
    /// returned (the parent's first). The same walk as [`attach_new`](Self::attach_new)
    /// with a key to check instead of a row to make: one function for both (the child
    /// given by a closure returning a `Result`) cost `insert_child` 35 instructions a row
    /// more (W1 at a tenth of full size: 31.3M -> 35.2M).
    #[inline(always)]
    pub fn attach_checked<X: ?Sized>(
        &mut self,
        cx: &X,
        parent: RawKey,
        child: RawKey,
        alive_parent: impl FnOnce(&X) -> bool,
        alive_child: impl FnOnce(&X) -> bool,
    ) -> Result<(), End> {
        let list = match self.children.get_mut(parent.idx()) {
            Some(l) if l.owner() == parent.version() => {
                if !alive_child(cx) {
                    return Err(End::B);
                }
                l
            }
            _ => {
                if !alive_parent(cx) {
                    return Err(End::A);
                }
                if !alive_child(cx) {
                    return Err(End::B);
                }
                own_list(&mut self.children, parent)
            }
        };
        let pos = list.push(&mut self.pool, child);
        self.set_parent(child, parent, pos);
        Ok(())
    }

    /// Puts `child` (which has no parent) back at `pos` of `parent`'s list.
    pub fn attach_at(&mut self, parent: RawKey, child: RawKey, pos: u32) {
        let list = own_list(&mut self.children, parent);
        list.insert_at(&mut self.pool, pos, child);
        self.set_parent(child, parent, pos);
    }

    #[inline(always)]
    fn set_parent(&mut self, child: RawKey, parent: RawKey, pos: u32) {
        let i = child.idx();
        // (the two vectors always have the same length)
        debug_assert_eq!(self.parent.len(), self.pos.len());
        let entry = ParentRef::of(parent, child);
        if i == self.parent.len() {
            // the next slot (entities linked as they are inserted): pushed inline
            self.parent.push(entry);
            self.pos.push(pos);
        } else {
            if i > self.parent.len() {
                grow(&mut self.parent, i);
                grow(&mut self.pos, i);
            }
            let slot = &mut self.parent[i];
            debug_assert!(slot.child_version != child.version());
            *slot = entry;
            self.pos[i] = pos;
        }
        self.links += 1;
    }

    /// Whether `parent`'s list has enough holes to be worth compacting.
    pub fn wants_compaction(&self, parent: RawKey) -> bool {
        self.children
            .get(parent.idx())
            .is_some_and(|l| l.owner() == parent.version() && l.wants_compaction())
    }

    /// Unlinks `child` from its parent; returns the parent and the position it had.
    /// Compacts the parent's list when worthwhile and `compact` allows it.
    pub fn detach(&mut self, child: RawKey, compact: bool) -> Option<(RawKey, u32)> {
        let (parent, pos) = self.parent_pos(child)?;
        self.parent[child.idx()].child_version = 0;
        self.links -= 1;
        let list = &mut self.children[parent.idx()];
        list.remove(&mut self.pool, pos);
        if compact && list.wants_compaction() {
            let positions = &mut self.pos;
            list.compact(&mut self.pool, |c, new_pos| positions[c.idx()] = new_pos);
        }
        Some((parent, pos))
    }

    /// Unlinks the child at slot `child` (which has a parent) from its parent, leaving a
    /// hole (trailing holes are dropped): undoes an append when the appends after it are
    /// undone too.
    pub fn detach_slot(&mut self, child: usize) {
        let r = std::mem::take(&mut self.parent[child])
            .get()
            .expect("child has a parent");
        self.links -= 1;
        self.children[r.parent.idx()].remove(&mut self.pool, self.pos[child]);
    }

    /// Unlinks every child of `parent`, calling `each(child, position)` for each, last
    /// first (so that putting them back in the order reported restores the list).
    pub fn detach_all(&mut self, parent: RawKey, mut each: impl FnMut(RawKey, u32)) {
        let Some(list) = self
            .children
            .get_mut(parent.idx())
            .filter(|l| l.owner() == parent.version())
        else {
            return;
        };
        let parents = &mut self.parent;
        let mut gone = 0;
        list.drain_rev(&self.pool, |child, pos| {
            parents[child.idx()].child_version = 0;
            gone += 1;
            each(child, pos);
        });
        self.links -= gone;
    }

    /// Replaces `parent`'s list (holes included) with `items`, which must hold exactly the
    /// parent's current children.
    pub fn set_order(&mut self, parent: RawKey, items: Vec<Option<RawKey>>) {
        let list = own_list(&mut self.children, parent);
        let positions = &mut self.pos;
        list.replace_all(&mut self.pool, items, |c, pos| positions[c.idx()] = pos);
    }

    /// Releases the storage of a removed entity (all its links are already gone).
    pub fn forget(&mut self, end: End, key: RawKey) {
        if end == End::A {
            if let Some(l) = self.children.get_mut(key.idx()) {
                l.forget(&mut self.pool, key.version());
            }
        }
    }

    /// Whether `parent` owns its children list: then it is alive.
    #[inline]
    pub fn owns_list(&self, parent: RawKey) -> bool {
        self.list(parent).is_some()
    }

    /// A parent on a cycle of a self-referential relation, if there is one. O(slots).
    pub fn find_cycle(&self) -> Option<RawKey> {
        let i = super::find_functional_cycle(self.parent.len(), |i| {
            self.parent[i].get().map(|r| r.parent.idx())
        })?;
        self.parent[i].get().map(|r| r.parent)
    }

    /// The non-empty children lists: (parent slot, children), in slot order.
    pub fn lists(&self) -> impl Iterator<Item = (u32, Iter<'_, RawKey>)> + '_ {
        self.children
            .iter()
            .enumerate()
            .filter(|(_, l)| l.len() > 0)
            .map(|(i, l)| (i as u32, l.iter(&self.pool)))
    }

    pub fn check(&self, def: &RelationDef, alive: Alive<'_>) -> Result<(), IntegrityError> {
        let relation = def.name;
        let mut counted = 0usize;
        for (i, list) in self.children.iter().enumerate() {
            super::check_owner(def, End::A, i, list.owner(), alive)?;
            if list.len() == 0 {
                continue;
            }
            let Some(owner) = RawKey::at(i, list.owner()) else {
                return Err(IntegrityError::Disagree {
                    relation,
                    key: RawKey::at(i, 1).expect("nonzero"),
                    detail: "children list without an owner",
                });
            };
            if !alive(End::A, owner) {
                return Err(IntegrityError::DeadEndpoint {
                    relation,
                    end: End::A,
                    key: owner,
                });
            }
            let found = list.iter_pos(&self.pool).count();
            if found != list.len() {
                return Err(IntegrityError::CountMismatch {
                    what: format!("children of {owner} in {relation}"),
                    stored: list.len(),
                    actual: found,
                });
            }
            for (pos, child) in list.iter_pos(&self.pool) {
                counted += 1;
                if !alive(End::B, child) {
                    return Err(IntegrityError::DeadEndpoint {
                        relation,
                        end: End::B,
                        key: child,
                    });
                }
                if self.parent_pos(child) != Some((owner, pos)) {
                    return Err(IntegrityError::Disagree {
                        relation,
                        key: child,
                        detail: "child listed under a parent it does not point back to",
                    });
                }
                if def.rules.forbid_self_links && child == owner {
                    return Err(IntegrityError::SelfLink {
                        relation,
                        key: child,
                    });
                }
            }
        }
        let mut pointing = 0usize;
        for (i, r) in self.parent.iter().enumerate() {
            let Some(r) = r.get() else { continue };
            pointing += 1;
            let child = RawKey::at(i, r.child_version);
            let listed = child.is_some_and(|c| {
                self.list(r.parent)
                    .and_then(|l| l.get(&self.pool, self.pos[i]))
                    == Some(c)
                    && alive(End::B, c)
            });
            if !listed {
                return Err(IntegrityError::Disagree {
                    relation,
                    key: child.unwrap_or(r.parent),
                    detail: "child points to a parent that does not list it",
                });
            }
        }
        if counted != self.links || pointing != self.links {
            return Err(IntegrityError::CountMismatch {
                what: format!("links of {relation}"),
                stored: self.links,
                actual: counted.max(pointing),
            });
        }
        if def.rules.acyclic {
            if let Some(key) = self.find_cycle() {
                return Err(IntegrityError::Cycle { relation, key });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_laid_only_into_an_empty_relation_and_at_two_elements_a_pair_at_most() {
        // 100 parent slots, 1000 pairs: 10 a parent, regions of 16 (1600 <= 2000)
        let mut r = OneToManyStore::default();
        let regions = r.regions(100, 1000, 16);
        assert!(regions.laid());
        assert_eq!(r.pool.buf_len(), 1600);
        r.release_regions(&regions);
        assert_eq!(
            r.pool.buf_len(),
            0,
            "untaken regions at the end shorten the pool"
        );
        // one live parent among 1000 slots, 1000 pairs: regions of 1024 would take
        // a thousand times the batch
        let mut r = OneToManyStore::default();
        assert!(!r.regions(1000, 1000, 1024).laid());
        assert_eq!(r.pool.buf_len(), 0);
        // one pair a parent slot: regions of 4 would take four elements a pair
        assert!(!r.regions(100, 100, 1).laid());
        // a relation with a link keeps its layout
        let mut r = OneToManyStore::default();
        let (p, c) = (RawKey::at(0, 1).unwrap(), RawKey::at(0, 1).unwrap());
        r.size_parents(1);
        r.attach(p, c);
        assert!(!r.regions(100, 1000, 16).laid());
    }
}
