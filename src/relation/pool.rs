//! The children lists of a one-to-many, kept in one pool per relation.
//!
//! A [`PoolList`] is an ordered list with holes, as a [`HoleList`](super::list::HoleList)
//! is (appending and removing at a known position are O(1); a removal leaves a hole, so
//! the other elements keep their positions; trailing holes are dropped at once; a list
//! whose holes outnumber its live elements is compacted), but its elements live in a
//! segment of its relation's [`Pool`] instead of an allocation of its own.
//!
//! Why: a store built one link at a time grows every parent's list from nothing, and a
//! list of its own grows through the allocator (`realloc`) three or four times on its way
//! to ten children. A segment holds a power of two of elements (4 at least); a full one
//! is replaced by one twice its size, taken from the pool's free list of that size or
//! from the end of the pool, and goes on its own free list: no allocator call but the
//! pool's own growth. A segment at the end of the pool grows in place, so one long list
//! growing alone is not copied. Freed segments serve the next list that grows to their
//! size; the pool never shrinks but for a segment freed at its end.
//!
//! The free lists are threaded through the free segments themselves (a free segment's
//! first element names the next free segment of its size), so that giving a segment back
//! allocates nothing: a cascade delete that empties many lists makes no allocator call
//! for them. (With a vector of free starts per size, that vector's growth during W7's
//! deletes made glibc consolidate the fast bins the deleted rows had just filled, and
//! the deletes ran at 1.57-1.62 of the baseline instead of 1.17-1.24.)
//!
//! A list sized once for a known length (a snapshot load, `link_all`'s checked path)
//! takes a segment of exactly that length, as a vector sized once would: on release it
//! serves the free list of the largest power of two it holds (a segment of fewer than 4
//! elements, or the rest above that power, is not reused).
//!
//! A list's header is 20 bytes (a vector of its own took 24, and 32 with the list's
//! counts). Offsets are `u32`: a relation's lists hold fewer than 2^32 elements in all,
//! free segments included.

use super::list::{compact, wants_compaction, Iter};
use crate::arena::Bits;
use crate::key::RawKey;
use std::num::NonZeroU32;

/// Size classes of segments: `4 << class` elements, up to 2^31 (class 29).
const CLASSES: usize = 30;

/// The end of a free list.
const NO_SEGMENT: u32 = u32::MAX;

/// An element a free segment can hold the start of the next free segment in.
pub(crate) trait Link: Copy {
    /// The element naming the free segment at `next`.
    fn link(next: u32) -> Self;
    /// The start named by an element made by [`link`](Self::link).
    fn next(self) -> u32;
}

impl Link for RawKey {
    fn link(next: u32) -> Self {
        RawKey::new(next, NonZeroU32::MIN)
    }

    fn next(self) -> u32 {
        self.index()
    }
}

/// The storage of a relation's lists.
pub(crate) struct Pool<E> {
    buf: Vec<Option<E>>,
    /// By size class, the start of the first free segment ([`NO_SEGMENT`]: none); boxed
    /// on the first release, so that a relation that never frees a segment carries 8
    /// bytes for it, not 120 (a store's relations are a vector of their own, and a small
    /// snapshot's load counts their bytes against its decode limit).
    free: Option<Box<[u32; CLASSES]>>,
}

impl<E> Default for Pool<E> {
    fn default() -> Self {
        Pool {
            buf: Vec::new(),
            free: None,
        }
    }
}

/// The segment a list of `len` elements sized at once takes (0: none).
pub(crate) fn segment_for(len: usize) -> usize {
    match len {
        0 => 0,
        n => n.next_power_of_two().max(4),
    }
}

/// Panics unless a pool of `end` elements keeps its offsets in `u32`.
#[inline]
fn check_end(end: usize) {
    assert!(
        end < NO_SEGMENT as usize,
        "at most 2^32 list elements in one relation"
    );
}

/// The size class of `cap` elements (4 at least): that of the largest power of two it
/// holds. A segment of a power of two takes its own class; a released exact segment
/// serves the class below its size.
#[inline]
fn class(cap: u32) -> usize {
    debug_assert!(cap >= 4);
    (cap.ilog2() - 2) as usize
}

impl<E: Link> Pool<E> {
    /// Makes room for segments of `elements` elements in all at the pool's end (a bulk
    /// link or a snapshot load sizes its lists at once: the pool grows once).
    pub fn reserve(&mut self, elements: usize) {
        self.buf.reserve(elements);
    }

    /// The pool's length in elements, free segments included (for tests).
    #[cfg(test)]
    pub fn buf_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the pool holds no segment (no list has one).
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Lays out, in an empty pool, `count` regions of `cap` elements, the `i`th at
    /// `i * cap`: the segments of the lists of parent slots `0..count`, in slot order
    /// (see [`Regions`](super::one_to_many::Regions)).
    pub fn lay_regions(&mut self, count: usize, cap: u32) {
        debug_assert!(self.buf.is_empty());
        let end = count.saturating_mul(cap as usize);
        // a quarter more room, for the lists that outgrow their regions: without it the
        // first to move would copy the whole pool
        self.buf.reserve(end.saturating_add(end / 4));
        self.grow_end(end);
    }

    /// Gives back the regions of [`lay_regions`](Self::lay_regions) that `taken` (one
    /// bit a region) does not mark, the last first, so that those at the pool's end
    /// shorten it.
    pub fn release_regions(&mut self, count: usize, cap: u32, taken: &Bits) {
        for i in (0..count as u32).rev() {
            if !taken.get(i) {
                self.release(i * cap, cap);
            }
        }
    }

    /// The first segment on the free list of `cap`'s class, taken off it.
    #[inline]
    fn take_free(&mut self, cap: u32) -> Option<u32> {
        let head = &mut self.free.as_mut()?[class(cap)];
        if *head == NO_SEGMENT {
            return None;
        }
        let start = *head;
        *head = self.buf[start as usize]
            .expect("a free segment's link")
            .next();
        Some(start)
    }

    /// Grows the pool to `end` elements (a new segment or one at the end growing).
    fn grow_end(&mut self, end: usize) {
        check_end(end);
        self.buf.resize(end, None);
    }

    /// Gives back the segment of `cap` elements at `start`.
    fn release(&mut self, start: u32, cap: u32) {
        if start as usize + cap as usize == self.buf.len() {
            self.buf.truncate(start as usize);
        } else if cap >= 4 {
            let free = self
                .free
                .get_or_insert_with(|| Box::new([NO_SEGMENT; CLASSES]));
            let head = &mut free[class(cap)];
            self.buf[start as usize] = Some(E::link(*head));
            *head = start;
        }
    }
}

/// One list: its segment in the pool, its length (holes included), its live elements
/// and its owner.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PoolList {
    /// Offset of the segment in [`Pool::buf`]; 0 for a list without one.
    start: u32,
    /// Elements, holes included.
    len: u32,
    /// Capacity of the segment; 0 for none.
    cap: u32,
    live: u32,
    /// Version of the entity that owns this list; 0 when no entity has used it yet.
    /// A lookup with another version sees an empty list.
    owner: u32,
}

const _: () = assert!(std::mem::size_of::<PoolList>() == 20);

impl PoolList {
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Live elements.
    pub fn len(&self) -> usize {
        self.live as usize
    }

    /// Gives a list without a segment the one of `cap` elements at `start` (a region of
    /// [`Pool::lay_regions`]).
    pub fn take_region(&mut self, start: u32, cap: u32) {
        debug_assert_eq!(self.cap, 0, "a list with a segment takes no region");
        self.start = start;
        self.cap = cap;
    }

    /// Whether the list has a segment (a new element may still need more).
    pub fn has_room(&self) -> bool {
        self.cap > 0
    }

    /// The elements, holes included.
    #[inline]
    pub fn raw<'p, E>(&self, pool: &'p Pool<E>) -> &'p [Option<E>] {
        // (a list without a segment has start and length 0: an empty slice of the pool;
        // in `usize`, as a `u32` sum would be checked for overflow)
        let start = self.start as usize;
        &pool.buf[start..start + self.len as usize]
    }

    #[inline]
    fn raw_mut<'p, E>(&self, pool: &'p mut Pool<E>) -> &'p mut [Option<E>] {
        let start = self.start as usize;
        &mut pool.buf[start..start + self.len as usize]
    }

    pub fn get<E: Copy>(&self, pool: &Pool<E>, pos: u32) -> Option<E> {
        self.raw(pool).get(pos as usize).copied().flatten()
    }

    pub fn iter<'p, E: Copy>(&self, pool: &'p Pool<E>) -> Iter<'p, E> {
        Iter::new(self.raw(pool), self.len())
    }

    /// (position, element) for every live element, in order.
    pub fn iter_pos<'p, E: Copy>(&self, pool: &'p Pool<E>) -> impl Iterator<Item = (u32, E)> + 'p {
        (self.raw(pool).iter().enumerate()).filter_map(|(i, e)| e.map(|e| (i as u32, e)))
    }

    /// Claims the list for the entity with `version`. The list must be empty when it
    /// changes hands (the store empties the lists of an entity before removing it).
    #[inline]
    pub fn claim(&mut self, version: u32) {
        if self.owner != version {
            debug_assert_eq!(self.live, 0, "list of a removed entity still has links");
            self.len = 0;
            self.owner = version;
        }
    }

    /// Appends `e`; returns its position. O(1) amortised.
    #[inline]
    pub fn push<E: Link>(&mut self, pool: &mut Pool<E>, e: E) -> u32 {
        let pos = self.len;
        if pos < self.cap {
            pool.buf[(self.start + pos) as usize] = Some(e);
        } else {
            self.push_slow(pool, e);
        }
        self.len = pos + 1;
        self.live += 1;
        pos
    }

    /// [`push`](Self::push) onto a full segment (or none).
    #[cold]
    #[inline(never)]
    fn push_slow<E: Link>(&mut self, pool: &mut Pool<E>, e: E) {
        debug_assert_eq!(self.len, self.cap, "only a full list grows");
        let len = self.len;
        let cap =
            u32::try_from(segment_for(len as usize + 1)).expect("at most 2^31 links per entity");
        self.relocate(pool, cap, false);
        pool.buf[(self.start + len) as usize] = Some(e);
    }

    /// Gives the list a segment of the size class for `need` elements (at least its
    /// length), or of exactly `need` if `exact`.
    fn move_to<E: Link>(&mut self, pool: &mut Pool<E>, need: usize, exact: bool) {
        debug_assert!(need >= self.len as usize);
        let cap = if exact {
            need.max(1)
        } else {
            segment_for(need.max(1))
        };
        let cap = u32::try_from(cap).expect("at most 2^32 links per entity");
        if cap != self.cap {
            self.relocate(pool, cap, exact);
        }
    }

    /// Gives the list a segment of `cap` elements (at least its length, not its own
    /// size): in place if its segment ends the pool, else a free segment of that size
    /// (unless `at_end`: an exact segment is not a size class's) or a new one at the
    /// pool's end, its elements copied, its old segment given back. At the end the
    /// elements are copied first and the rest of the segment filled after, so nothing is
    /// written twice; a list without elements copies nothing (no call to `memmove`).
    #[inline(always)]
    fn relocate<E: Link>(&mut self, pool: &mut Pool<E>, cap: u32, at_end: bool) {
        let (old, len) = (self.start as usize, self.len as usize);
        if self.cap > 0 && old + self.cap as usize == pool.buf.len() {
            // the last segment: grown or shrunk where it is
            pool.grow_end(old + cap as usize);
        } else {
            let free = if at_end { None } else { pool.take_free(cap) };
            let start = match free {
                Some(start) => {
                    if len > 0 {
                        pool.buf.copy_within(old..old + len, start as usize);
                    }
                    start
                }
                None => {
                    let start = pool.buf.len();
                    check_end(start + cap as usize);
                    if len > 0 {
                        pool.buf.extend_from_within(old..old + len);
                    }
                    pool.grow_end(start + cap as usize);
                    start as u32
                }
            };
            if self.cap > 0 {
                pool.release(self.start, self.cap);
            }
            self.start = start;
        }
        self.cap = cap;
    }

    /// Makes room for `additional` more elements (a segment of their size class).
    pub fn reserve<E: Link>(&mut self, pool: &mut Pool<E>, additional: usize) {
        let need = self.len as usize + additional;
        if need > self.cap as usize {
            self.move_to(pool, need, false);
        }
    }

    /// Makes room for exactly `additional` more elements, for a list whose final length
    /// is known (a load, a bulk link).
    pub fn reserve_exact<E: Link>(&mut self, pool: &mut Pool<E>, additional: usize) {
        let need = self.len as usize + additional;
        if need > self.cap as usize {
            self.move_to(pool, need, true);
        }
    }

    /// Puts `e` back at `pos`, which must be a hole or past the end (a rollback of
    /// [`remove`](Self::remove) guarantees it).
    pub fn insert_at<E: Link>(&mut self, pool: &mut Pool<E>, pos: u32, e: E) {
        if pos >= self.len {
            self.reserve(pool, (pos + 1 - self.len) as usize);
            let from = self.len as usize;
            self.len = pos + 1;
            let items = self.raw_mut(pool);
            items[from..].fill(None);
            items[pos as usize] = Some(e);
        } else {
            let slot = &mut self.raw_mut(pool)[pos as usize];
            debug_assert!(slot.is_none(), "insert_at over a live element");
            *slot = Some(e);
        }
        self.live += 1;
    }

    /// Removes the element at `pos`, leaving a hole.
    #[inline(always)]
    pub fn remove<E: Copy>(&mut self, pool: &mut Pool<E>, pos: u32) -> E {
        debug_assert!(pos < self.len);
        let e = pool.buf[(self.start + pos) as usize]
            .take()
            .expect("removing a live position");
        self.live -= 1;
        if pos + 1 == self.len {
            self.drop_trailing_holes(pool);
        }
        e
    }

    /// Shortens the list to its last live element.
    #[inline(never)]
    fn drop_trailing_holes<E: Copy>(&mut self, pool: &Pool<E>) {
        let len = self.raw(pool).iter().rposition(Option::is_some);
        self.len = len.map_or(0, |i| i as u32 + 1);
    }

    /// Empties the list (it keeps its owner and its segment), calling `each(e, pos)` for
    /// every live element, last first.
    pub fn drain_rev<E: Copy>(&mut self, pool: &Pool<E>, mut each: impl FnMut(E, u32)) {
        for (pos, e) in self.raw(pool).iter().enumerate().rev() {
            if let Some(e) = *e {
                each(e, pos as u32);
            }
        }
        self.len = 0;
        self.live = 0;
    }

    /// Whether holes outnumber live elements enough to make compaction worthwhile.
    pub fn wants_compaction(&self) -> bool {
        wants_compaction(self.len as usize, self.live as usize)
    }

    /// Closes every hole, keeping order; `moved(e, new_pos)` is called for each element
    /// whose position changed. A segment four times larger than needed is given back
    /// for a smaller one.
    pub fn compact<E: Link>(&mut self, pool: &mut Pool<E>, moved: impl FnMut(E, u32)) {
        let write = compact(self.raw_mut(pool), moved);
        self.len = write as u32;
        if self.cap as usize > 4 * write.max(4) {
            self.move_to(pool, write, false);
        }
    }

    /// Replaces the whole content (holes included) with `items`; `placed(e, pos)` is called
    /// for every live element.
    pub fn replace_all<E: Link>(
        &mut self,
        pool: &mut Pool<E>,
        items: Vec<Option<E>>,
        mut placed: impl FnMut(E, u32),
    ) {
        let len = u32::try_from(items.len()).expect("at most 2^32 links per entity");
        self.len = 0;
        self.reserve(pool, items.len());
        self.len = len;
        self.raw_mut(pool).copy_from_slice(&items);
        self.live = 0;
        for (pos, e) in items.iter().enumerate() {
            if let Some(e) = *e {
                self.live += 1;
                placed(e, pos as u32);
            }
        }
    }

    /// Disowns the list of a removed entity (whose links are all gone) and gives its
    /// segment back to the pool. Afterwards `owner == version` proves an entity alive: see
    /// [`RelationStore::vouches`](super::RelationStore::vouches).
    pub fn forget<E: Link>(&mut self, pool: &mut Pool<E>, version: u32) {
        if self.owner == version {
            debug_assert_eq!(self.live, 0, "forgetting a list that still has links");
            if self.cap > 0 {
                pool.release(self.start, self.cap);
            }
            *self = PoolList::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Link for u32 {
        fn link(next: u32) -> Self {
            next
        }

        fn next(self) -> u32 {
            self
        }
    }

    #[test]
    fn a_key_carries_any_segment_start() {
        for start in [0, 4, 12345, NO_SEGMENT - 1] {
            assert_eq!(RawKey::link(start).next(), start);
        }
    }

    /// A list owned by version `owner`, `items` pushed onto it in order.
    fn list_of(pool: &mut Pool<u32>, owner: u32, items: impl IntoIterator<Item = u32>) -> PoolList {
        let mut l = PoolList::default();
        l.claim(owner);
        for e in items {
            l.push(pool, e);
        }
        l
    }

    /// A list checked against a vector of the same operations.
    fn agree(l: &PoolList, pool: &Pool<u32>, model: &[Option<u32>]) {
        assert_eq!(l.raw(pool), model);
        assert_eq!(l.len(), model.iter().flatten().count());
        assert_eq!(
            l.iter(pool).collect::<Vec<_>>(),
            model.iter().flatten().copied().collect::<Vec<_>>()
        );
    }

    /// The elements in the pool's free segments, by walking each free list.
    fn free_elements(pool: &Pool<u32>) -> u32 {
        let mut n = 0;
        let Some(free) = &pool.free else { return 0 };
        for (class, &head) in free.iter().enumerate() {
            let mut at = head;
            while at != NO_SEGMENT {
                n += 4 << class;
                at = pool.buf[at as usize].expect("a link").next();
            }
        }
        n
    }

    #[test]
    fn lists_grow_through_the_classes_in_place_or_by_a_copy_and_shrink_back() {
        let mut pool = Pool::default();
        let mut a = PoolList::default();
        let mut b = PoolList::default();
        a.claim(1);
        b.claim(1);
        let (mut ma, mut mb) = (Vec::new(), Vec::new());
        for i in 0..3000u32 {
            assert_eq!(a.push(&mut pool, i), i);
            ma.push(Some(i));
            if i % 3 == 0 {
                b.push(&mut pool, i);
                mb.push(Some(i));
            }
        }
        agree(&a, &pool, &ma);
        agree(&b, &pool, &mb);
        assert_eq!((a.cap, b.cap), (4096, 1024));
        // every element of the pool is in one of the two lists' segments or a free one
        assert_eq!(
            pool.buf.len(),
            (free_elements(&pool) + a.cap + b.cap) as usize
        );
        // remove all but a few: compaction brings the list down to a small segment
        for i in 0..3000u32 {
            if i % 500 != 0 {
                a.remove(&mut pool, i);
                ma[i as usize] = None;
            }
        }
        while ma.last() == Some(&None) {
            ma.pop();
        }
        agree(&a, &pool, &ma);
        assert!(a.wants_compaction());
        let mut moves = Vec::new();
        a.compact(&mut pool, |e, pos| moves.push((e, pos)));
        ma.retain(Option::is_some);
        agree(&a, &pool, &ma);
        assert_eq!(a.cap, 8);
        assert!(moves.iter().all(|&(e, pos)| a.get(&pool, pos) == Some(e)));
        agree(&b, &pool, &mb);
    }

    #[test]
    fn freed_segments_serve_the_next_list_and_hold_nothing_stale() {
        let mut pool = Pool::default();
        let mut a = list_of(&mut pool, 1, 0..6);
        // `a`'s segment of 8 grew in place from its 4: nothing freed yet
        assert_eq!(pool.buf.len(), 8);
        let b = list_of(&mut pool, 3, [100]);
        assert_eq!(pool.buf.len(), 12);
        agree(&b, &pool, &[Some(100)]);
        // `a` grows to 16 by a copy (`b` ends the pool) and leaves its 8 free
        for i in 6..9u32 {
            a.push(&mut pool, i);
        }
        assert_eq!(pool.buf.len(), 28);
        // a removed entity's segment goes back; its slot's next owner starts empty
        a.drain_rev(&pool, |_, _| {});
        a.forget(&mut pool, 1);
        assert_eq!(pool.buf.len(), 12, "the segment at the end is cut off");
        let mut c = PoolList::default();
        c.claim(5);
        // (the free segment of 8 `a` left, its old elements still in it)
        c.insert_at(&mut pool, 6, 7);
        agree(&c, &pool, &[None, None, None, None, None, None, Some(7)]);
        assert_eq!((c.start, pool.buf.len()), (0, 12));
        agree(&b, &pool, &[Some(100)]);
    }

    #[test]
    fn a_full_list_moves_to_the_next_power_of_two() {
        // the segments a list holds on its way to 40 elements, pushed one at a time
        let mut pool = Pool::default();
        let mut l = list_of(&mut pool, 1, []);
        let mut caps = Vec::new();
        for i in 0..40u32 {
            l.push(&mut pool, i);
            if caps.last() != Some(&l.cap) {
                caps.push(l.cap);
            }
        }
        assert_eq!(caps, [4, 8, 16, 32, 64]);
        // a full exact segment (a loaded list of one) moves to a free segment of 4,
        // its element copied
        let mut pool = Pool::default();
        let mut gone = list_of(&mut pool, 1, 0..4);
        let mut one = PoolList::default();
        one.claim(1);
        one.reserve_exact(&mut pool, 1);
        one.push(&mut pool, 5);
        let after = list_of(&mut pool, 1, [9]);
        gone.drain_rev(&pool, |_, _| {});
        gone.forget(&mut pool, 1);
        one.push(&mut pool, 6);
        assert_eq!((one.start, one.cap), (0, 4));
        agree(&one, &pool, &[Some(5), Some(6)]);
        agree(&after, &pool, &[Some(9)]);
    }

    #[test]
    fn free_lists_chain_segments_of_one_size() {
        let mut pool = Pool::default();
        let mut lists: Vec<PoolList> = (0..4).map(|i| list_of(&mut pool, 1, [i])).collect();
        let guard = list_of(&mut pool, 1, [99]);
        for l in &mut lists {
            l.drain_rev(&pool, |_, _| {});
            l.forget(&mut pool, 1);
        }
        // four free segments of 4, taken back last freed first, the pool not growing
        let len = pool.buf.len();
        let mut starts = Vec::new();
        for _ in 0..4 {
            starts.push(list_of(&mut pool, 2, [7]).start);
        }
        assert_eq!(starts, [12, 8, 4, 0]);
        assert_eq!(pool.buf.len(), len);
        agree(&guard, &pool, &[Some(99)]);
    }

    #[test]
    fn regions_serve_lists_in_slot_order_and_the_untaken_go_back() {
        let mut pool = Pool::default();
        assert!(pool.is_empty());
        pool.lay_regions(6, 4);
        assert_eq!(pool.buf.len(), 24);
        // lists of slots 4, 1 and 2 take theirs, in that order; slot 2's outgrows it
        let mut lists: Vec<PoolList> = (0..6).map(|_| PoolList::default()).collect();
        let mut taken = Bits::default();
        for i in [4usize, 1, 2] {
            lists[i].claim(1);
            lists[i].take_region(i as u32 * 4, 4);
            taken.set(i as u32);
        }
        let mut model: Vec<Vec<Option<u32>>> = vec![Vec::new(); 6];
        for e in 0..3u32 {
            for i in [4usize, 1, 2] {
                lists[i].push(&mut pool, 10 * i as u32 + e);
                model[i].push(Some(10 * i as u32 + e));
            }
        }
        for e in 3..6u32 {
            lists[2].push(&mut pool, 20 + e);
            model[2].push(Some(20 + e));
        }
        assert_eq!((lists[1].start, lists[4].start), (4, 16));
        assert_eq!((lists[2].start, lists[2].cap), (24, 8), "moved to the end");
        // slot 5's region ended the laid pool but slot 2's list now does: it goes on the
        // free list with slots 0 and 3's; slot 2's own went there when it moved
        pool.release_regions(6, 4, &taken);
        assert_eq!(pool.buf.len(), 32);
        assert_eq!(free_elements(&pool), 16);
        for (l, m) in lists.iter().zip(&model) {
            agree(l, &pool, m);
        }
        // the freed regions serve new lists, the pool not growing
        let fresh: Vec<PoolList> = (0..4).map(|i| list_of(&mut pool, 2, [90 + i])).collect();
        assert_eq!(pool.buf.len(), 32);
        let mut starts: Vec<u32> = fresh.iter().map(|l| l.start).collect();
        starts.sort_unstable();
        assert_eq!(starts, [0, 8, 12, 20]);
        for (l, m) in lists.iter().zip(&model) {
            agree(l, &pool, m);
        }
    }

    #[test]
    fn insert_at_undoes_remove_and_replace_all_places_everything() {
        let mut pool = Pool::default();
        let mut l = list_of(&mut pool, 1, 0..5);
        let before = l.raw(&pool).to_vec();
        let e4 = l.remove(&mut pool, 4);
        let e2 = l.remove(&mut pool, 2);
        l.insert_at(&mut pool, 2, e2);
        l.insert_at(&mut pool, 4, e4);
        agree(&l, &pool, &before);
        let items: Vec<Option<u32>> = (0..2000).map(|i| (i % 7 != 0).then_some(i)).collect();
        let mut placed = 0;
        l.drain_rev(&pool, |_, _| {});
        l.replace_all(&mut pool, items.clone(), |e, pos| {
            assert_eq!(Some(e), items[pos as usize]);
            placed += 1;
        });
        assert_eq!(placed, l.len());
        agree(&l, &pool, &items);
    }
}
