//! Many-to-many: ordered collections at both ends, one link per pair, a payload per link.
//!
//! The links live in one `IndexMap` keyed by the pair, so finding a pair is one hash lookup
//! whatever the fan-out. A link's index in that map is its payload's index in the payload
//! vector; removing a link swap-removes both and patches the two list entries of the link
//! that moved into the hole: O(1).

use std::any::Any;
use std::hash::{BuildHasherDefault, Hasher};

use indexmap::map::Entry as MapEntry;
use indexmap::IndexMap;

use crate::error::IntegrityError;
use crate::key::RawKey;
use crate::schema::{End, RelationDef};

use super::list::{HoleList, Iter};
use super::{grow, Alive, ErasedPayloads};

/// A fast hasher for pairs of keys (keys are not attacker-chosen: the store issues them).
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Positions {
    pos_a: u32,
    pos_b: u32,
}

/// What [`ManyToManyStore::detach`] returns: the positions the link had in the two
/// collections, and its payload if asked for.
pub(crate) type Detached = (u32, u32, Option<Box<dyn Any + Send + Sync>>);

/// An entry of a to-many list: the partner, and the link's index.
pub(crate) type Entry = (RawKey, u32);

pub(crate) struct ManyToManyStore {
    pairs: IndexMap<(RawKey, RawKey), Positions, BuildHasherDefault<PairHasher>>,
    a_lists: Vec<HoleList<Entry>>,
    b_lists: Vec<HoleList<Entry>>,
    pub(crate) payloads: Box<dyn ErasedPayloads>,
}

impl ManyToManyStore {
    pub fn new(payloads: Box<dyn ErasedPayloads>) -> Self {
        ManyToManyStore {
            pairs: IndexMap::default(),
            a_lists: Vec::new(),
            b_lists: Vec::new(),
            payloads,
        }
    }

    pub fn link_count(&self) -> usize {
        self.pairs.len()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.pairs.reserve(additional);
        self.payloads.reserve(additional);
    }

    /// Reserves room for `additional` more pairs (not payloads).
    pub fn reserve_pairs(&mut self, additional: usize) {
        self.pairs.reserve(additional);
    }

    /// The non-empty lists at `end`: (owner slot, entries), in slot order.
    pub fn owned_lists(&self, end: End) -> impl Iterator<Item = (u32, &HoleList<Entry>)> + '_ {
        self.lists(end)
            .iter()
            .enumerate()
            .filter(|(_, l)| l.len() > 0)
            .map(|(i, l)| (i as u32, l))
    }

    fn lists(&self, end: End) -> &Vec<HoleList<Entry>> {
        match end {
            End::A => &self.a_lists,
            End::B => &self.b_lists,
        }
    }

    #[inline]
    fn list(&self, end: End, key: RawKey) -> Option<&HoleList<Entry>> {
        self.lists(end)
            .get(key.idx())
            .filter(|l| l.owner() == key.version())
    }

    /// The partners of `key` (at `end`) with link indices, in link order.
    #[inline]
    pub fn entries(&self, end: End, key: RawKey) -> Iter<'_, Entry> {
        self.list(end, key).map_or_else(Iter::empty, HoleList::iter)
    }

    pub fn count(&self, end: End, key: RawKey) -> usize {
        self.list(end, key).map_or(0, HoleList::len)
    }

    pub fn raw_order(&self, end: End, key: RawKey) -> Vec<Option<Entry>> {
        self.list(end, key)
            .map_or_else(Vec::new, |l| l.raw().to_vec())
    }

    /// The index of the link between `a` and `b`.
    #[inline]
    pub fn link_index(&self, a: RawKey, b: RawKey) -> Option<usize> {
        self.pairs.get_index_of(&(a, b))
    }

    /// Adds the link (a, b) at the end of both lists unless the pair is already linked,
    /// with one hash lookup: `Ok(index)` of the new link, whose payload the caller must
    /// push next, or `Err(index)` of the existing link.
    pub fn attach(&mut self, a: RawKey, b: RawKey) -> Result<usize, usize> {
        let Self {
            pairs,
            a_lists,
            b_lists,
            ..
        } = self;
        match pairs.entry((a, b)) {
            MapEntry::Occupied(e) => Err(e.index()),
            MapEntry::Vacant(v) => {
                let index = v.index();
                let link = u32::try_from(index).expect("at most 2^32 links per relation");
                let la = grow(a_lists, a.idx());
                la.claim(a.version());
                let pos_a = la.push((b, link));
                let lb = grow(b_lists, b.idx());
                lb.claim(b.version());
                let pos_b = lb.push((a, link));
                v.insert(Positions { pos_a, pos_b });
                Ok(index)
            }
        }
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
        let link = self.pairs.len() as u32;
        self.payloads.push_boxed(payload);
        let la = grow(&mut self.a_lists, a.idx());
        la.claim(a.version());
        la.insert_at(pos_a, (b, link));
        let lb = grow(&mut self.b_lists, b.idx());
        lb.claim(b.version());
        lb.insert_at(pos_b, (a, link));
        self.pairs.insert((a, b), Positions { pos_a, pos_b });
    }

    /// Removes the link between `a` and `b`; returns its positions and, if `keep_payload`,
    /// its boxed payload.
    pub fn detach(
        &mut self,
        a: RawKey,
        b: RawKey,
        compact: bool,
        keep_payload: bool,
    ) -> Option<Detached> {
        let (index, _, p) = self.pairs.swap_remove_full(&(a, b))?;
        let payload = if keep_payload {
            Some(self.payloads.swap_remove_boxed(index))
        } else {
            self.payloads.swap_remove_drop(index);
            None
        };
        self.a_lists[a.idx()].remove(p.pos_a);
        self.b_lists[b.idx()].remove(p.pos_b);
        // the last link moved into `index`: repoint its two list entries
        if let Some((&(ma, mb), mp)) = self.pairs.get_index(index) {
            self.a_lists[ma.idx()].set(mp.pos_a, (mb, index as u32));
            self.b_lists[mb.idx()].set(mp.pos_b, (ma, index as u32));
        }
        if compact {
            self.compact(End::A, a);
            self.compact(End::B, b);
        }
        Some((p.pos_a, p.pos_b, payload))
    }

    fn compact(&mut self, end: End, key: RawKey) {
        let (lists, pairs) = match end {
            End::A => (&mut self.a_lists, &mut self.pairs),
            End::B => (&mut self.b_lists, &mut self.pairs),
        };
        let list = &mut lists[key.idx()];
        if list.wants_compaction() {
            list.compact(|(_, link), new_pos| {
                if let Some((_, p)) = pairs.get_index_mut(link as usize) {
                    match end {
                        End::A => p.pos_a = new_pos,
                        End::B => p.pos_b = new_pos,
                    }
                }
            });
        }
    }

    /// Replaces the list of `key` at `end` (holes included) with `items`, which must hold
    /// exactly its current links.
    pub fn set_order(&mut self, end: End, key: RawKey, items: Vec<Option<Entry>>) {
        let (lists, pairs) = match end {
            End::A => (&mut self.a_lists, &mut self.pairs),
            End::B => (&mut self.b_lists, &mut self.pairs),
        };
        let list = grow(lists, key.idx());
        list.claim(key.version());
        list.replace_all(items, |(_, link), pos| {
            if let Some((_, p)) = pairs.get_index_mut(link as usize) {
                match end {
                    End::A => p.pos_a = pos,
                    End::B => p.pos_b = pos,
                }
            }
        });
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
        if self.payloads.len() != self.pairs.len() {
            return Err(IntegrityError::CountMismatch {
                what: format!("payloads of {relation}"),
                stored: self.payloads.len(),
                actual: self.pairs.len(),
            });
        }
        for (index, (&(a, b), p)) in self.pairs.iter().enumerate() {
            for (end, key) in [(End::A, a), (End::B, b)] {
                if !alive(end, key) {
                    return Err(IntegrityError::DeadEndpoint { relation, end, key });
                }
            }
            let link = index as u32;
            let in_a = self.list(End::A, a).and_then(|l| l.get(p.pos_a));
            let in_b = self.list(End::B, b).and_then(|l| l.get(p.pos_b));
            if in_a != Some((b, link)) || in_b != Some((a, link)) {
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
            for (i, list) in self.lists(end).iter().enumerate() {
                super::check_owner(def, end, i, list.owner(), alive)?;
                let found = list.iter_pos().count();
                if found != list.len() {
                    return Err(IntegrityError::CountMismatch {
                        what: format!("a collection of {relation}"),
                        stored: list.len(),
                        actual: found,
                    });
                }
                listed += found;
            }
            // every listed entry is one of the verified links, and there are as many
            if listed != self.pairs.len() {
                return Err(IntegrityError::CountMismatch {
                    what: format!("links of {relation} listed at end {end:?}"),
                    stored: self.pairs.len(),
                    actual: listed,
                });
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
            if colour[start] != 0 || self.a_lists[start].len() == 0 {
                continue;
            }
            let mut stack: Vec<(usize, Iter<'_, Entry>)> =
                vec![(start, self.a_lists[start].iter())];
            colour[start] = 1;
            while let Some((node, it)) = stack.last_mut() {
                match it.next() {
                    Some((next, _)) => {
                        let j = next.idx();
                        match colour[j] {
                            1 => return Some(next),
                            0 => {
                                colour[j] = 1;
                                let it = self.a_lists.get(j).map_or_else(Iter::empty, |l| l.iter());
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
