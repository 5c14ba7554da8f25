//! An ordered list with holes: the collection at a to-many end.
//!
//! Appending is O(1). Removing the element at a known position is O(1): it leaves a hole,
//! so the other elements keep their positions and their back-pointers stay valid. Trailing
//! holes are dropped at once; when holes outnumber live elements the list is compacted
//! (amortised O(1) per removal) and the caller is told every element's new position.
//! Iteration skips holes, so it costs O(live + holes) = O(live) amortised.

/// Holes tolerated before compaction is considered.
const MIN_HOLES_TO_COMPACT: usize = 8;

#[derive(Clone, Debug)]
pub(crate) struct HoleList<E> {
    items: Vec<Option<E>>,
    live: u32,
    /// Version of the entity that owns this list; 0 when no entity has used it yet.
    /// A lookup with another version sees an empty list.
    owner: u32,
}

impl<E> Default for HoleList<E> {
    fn default() -> Self {
        HoleList {
            items: Vec::new(),
            live: 0,
            owner: 0,
        }
    }
}

impl<E: Copy + PartialEq> HoleList<E> {
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Claims the list for the entity with `version`. The list must be empty when it
    /// changes hands (the store empties the lists of an entity before removing it).
    #[inline]
    pub fn claim(&mut self, version: u32) {
        if self.owner != version {
            debug_assert_eq!(self.live, 0, "list of a removed entity still has links");
            self.items.clear();
            self.owner = version;
        }
    }

    pub fn len(&self) -> usize {
        self.live as usize
    }

    pub fn raw(&self) -> &[Option<E>] {
        &self.items
    }

    pub fn get(&self, pos: u32) -> Option<E> {
        self.items.get(pos as usize).copied().flatten()
    }

    #[inline]
    pub fn push(&mut self, e: E) -> u32 {
        let pos = u32::try_from(self.items.len()).expect("at most 2^32 links per entity");
        self.items.push(Some(e));
        self.live += 1;
        pos
    }

    /// Overwrites the live element at `pos`.
    pub fn set(&mut self, pos: u32, e: E) {
        let slot = &mut self.items[pos as usize];
        debug_assert!(slot.is_some());
        *slot = Some(e);
    }

    /// Puts `e` back at `pos`, which must be a hole or past the end (a rollback of
    /// [`remove`](Self::remove) guarantees it).
    pub fn insert_at(&mut self, pos: u32, e: E) {
        let pos = pos as usize;
        if pos >= self.items.len() {
            self.items.resize(pos, None);
            self.items.push(Some(e));
        } else {
            debug_assert!(self.items[pos].is_none(), "insert_at over a live element");
            self.items[pos] = Some(e);
        }
        self.live += 1;
    }

    /// Removes the element at `pos`, leaving a hole.
    pub fn remove(&mut self, pos: u32) -> E {
        let e = self.items[pos as usize]
            .take()
            .expect("removing a live position");
        self.live -= 1;
        while let Some(None) = self.items.last() {
            self.items.pop();
        }
        e
    }

    /// Whether holes outnumber live elements enough to make compaction worthwhile.
    pub fn wants_compaction(&self) -> bool {
        wants_compaction(self.items.len(), self.live as usize)
    }

    /// Closes every hole, keeping order; `moved(e, new_pos)` is called for each element
    /// whose position changed.
    pub fn compact(&mut self, moved: impl FnMut(E, u32)) {
        let write = compact(&mut self.items, moved);
        self.items.truncate(write);
        if self.items.capacity() > 4 * write.max(4) {
            self.items.shrink_to_fit();
        }
    }

    /// Replaces the whole content (holes included) with `items`; `placed(e, pos)` is called
    /// for every live element.
    pub fn replace_all(&mut self, items: Vec<Option<E>>, mut placed: impl FnMut(E, u32)) {
        self.live = 0;
        for (pos, e) in items.iter().enumerate() {
            if let Some(e) = *e {
                self.live += 1;
                placed(e, pos as u32);
            }
        }
        self.items = items;
    }

    /// Disowns the list of a removed entity (whose links are all gone) and releases its
    /// memory. Afterwards `owner == version` proves an entity alive: see
    /// [`RelationStore::vouches`](super::RelationStore::vouches).
    pub fn forget(&mut self, version: u32) {
        if self.owner == version {
            debug_assert_eq!(self.live, 0, "forgetting a list that still has links");
            self.items = Vec::new();
            self.owner = 0;
        }
    }

    pub fn iter(&self) -> Iter<'_, E> {
        Iter::new(&self.items, self.live as usize)
    }

    /// (position, element) for every live element, in order.
    pub fn iter_pos(&self) -> impl Iterator<Item = (u32, E)> + '_ {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i as u32, e)))
    }
}

/// Whether a list of `len` elements, `live` of them live, has holes enough to be worth
/// compacting.
pub(crate) fn wants_compaction(len: usize, live: usize) -> bool {
    let holes = len - live;
    holes >= MIN_HOLES_TO_COMPACT && holes > live
}

/// Moves the live elements of `items` to its front, keeping order; `moved(e, new_pos)` is
/// called for each element whose position changed. Returns their number.
pub(crate) fn compact<E: Copy>(items: &mut [Option<E>], mut moved: impl FnMut(E, u32)) -> usize {
    let mut write = 0usize;
    for read in 0..items.len() {
        if let Some(e) = items[read] {
            if read != write {
                items[write] = Some(e);
                moved(e, write as u32);
            }
            write += 1;
        }
    }
    write
}

/// Iterator over the live elements of a list with holes, exact in length.
#[derive(Clone, Debug)]
pub(crate) struct Iter<'a, E> {
    inner: std::slice::Iter<'a, Option<E>>,
    left: usize,
}

impl<'a, E: Copy> Iter<'a, E> {
    /// The live elements of `items`, `live` of them.
    pub fn new(items: &'a [Option<E>], live: usize) -> Self {
        Iter {
            inner: items.iter(),
            left: live,
        }
    }

    pub fn empty() -> Self {
        Iter {
            inner: [].iter(),
            left: 0,
        }
    }
}

impl<E: Copy> Iterator for Iter<'_, E> {
    type Item = E;

    #[inline]
    fn next(&mut self) -> Option<E> {
        // no early exit on `left == 0`: a list never ends with a hole, so the slice ends
        // with the last live element
        for e in self.inner.by_ref() {
            if let Some(e) = *e {
                self.left -= 1;
                return Some(e);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<E: Copy> ExactSizeIterator for Iter<'_, E> {}

impl<E: Copy> DoubleEndedIterator for Iter<'_, E> {
    fn next_back(&mut self) -> Option<E> {
        if self.left == 0 {
            return None;
        }
        while let Some(e) = self.inner.next_back() {
            if let Some(e) = *e {
                self.left -= 1;
                return Some(e);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_keeps_order_and_compaction_reports_moves() {
        let mut l = HoleList::default();
        for i in 0..40u32 {
            assert_eq!(l.push(i), i);
        }
        for i in (0..40).filter(|i| i % 4 != 0) {
            l.remove(i);
        }
        assert_eq!(l.len(), 10);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            (0..40).step_by(4).collect::<Vec<_>>()
        );
        assert!(l.wants_compaction());
        let mut moves = Vec::new();
        l.compact(|e, pos| moves.push((e, pos)));
        assert_eq!(l.raw().len(), 10);
        assert_eq!(moves.len(), 9);
        assert!(moves.iter().all(|&(e, pos)| l.get(pos) == Some(e)));
    }

    #[test]
    fn insert_at_undoes_remove_exactly() {
        let mut l = HoleList::default();
        for i in 0..5u32 {
            l.push(i);
        }
        let before = l.raw().to_vec();
        let e4 = l.remove(4);
        let e2 = l.remove(2);
        l.insert_at(2, e2);
        l.insert_at(4, e4);
        assert_eq!(l.raw(), &before[..]);
        assert_eq!(l.iter().rev().collect::<Vec<_>>(), vec![4, 3, 2, 1, 0]);
    }
}
