//! What every relation kind shares: handles, link, unlink, targets and sources.

use super::*;
use crate::arena::Bits;
use crate::relation::one_to_many::Regions;

impl Store {
    /// The index of a relation handle of this store's schema.
    #[inline]
    #[track_caller]
    pub(crate) fn rel_index<R: Relation>(&self, rel: R) -> u32 {
        self.schema.relation_index(rel.tag_and_index())
    }

    #[inline]
    #[track_caller]
    pub(crate) fn rel<R: Relation>(&self, rel: R) -> (u32, &RelationDef) {
        let index = self.schema.relation_index(rel.tag_and_index());
        (index, &self.schema.relations[index as usize])
    }

    #[inline]
    pub(crate) fn rel_store(&self, index: u32) -> &RelationStore {
        &self.relations[index as usize]
    }

    pub(crate) fn ends_live<R: Relation>(
        &self,
        index: u32,
        def: &RelationDef,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(RawKey, RawKey), StaleKey> {
        Ok((
            self.live_at(index, End::A, def.a_table, a)?,
            self.live_at(index, End::B, def.b_table, b)?,
        ))
    }

    /// Checks that `key` (at `end` of relation `index`) is alive: first by what the
    /// relation itself stores, which is in cache for the change about to be made, and
    /// only if that proves nothing by its arena.
    #[inline]
    pub(crate) fn live_at<T: Entity>(
        &self,
        index: u32,
        end: End,
        table: u32,
        key: Key<T>,
    ) -> Result<RawKey, StaleKey> {
        if self.relations[index as usize].vouches(end, key.raw()) {
            Ok(key.raw())
        } else {
            self.live(table, key)
        }
    }

    /// Links `a` and `b` in `rel`, updating both ends at once:
    ///
    /// - one-to-many: `b` becomes the last child of `a`, leaving its previous parent;
    /// - one-to-one: the previous partners of `a` and of `b` are unlinked (evicted);
    /// - many-to-many: a new link gets the payload's default; an existing link is kept as it
    ///   is (same position, same payload).
    ///
    /// Linking a pair that is already linked changes nothing. An evicted partner left
    /// without links by a delete-orphan rule is deleted. O(1), plus O(depth) on an acyclic
    /// one-to-many when `b` has children of its own (a childless `b` cannot close a cycle:
    /// a tree built top down is linked in O(1) a link).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::SelfLink`] or
    /// [`LinkError::Cycle`] where the relation forbids the link; [`LinkError::OrphanDelete`] if
    /// an evicted partner would be deleted as an orphan and that delete is refused. Nothing
    /// changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let bob = store.insert(User { name: "Bob".into() });
    /// let guide = store.insert(Post { title: "Guide".into() });
    /// store.link(authorship, alice, guide)?;
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// store.link(authorship, bob, guide)?; // moves the post: it leaves Alice's posts
    /// assert_eq!(store.child_count(authorship, alice), 0);
    /// assert_eq!(store.children(authorship, bob).collect::<Vec<_>>(), [guide]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn link<R: Linkable>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        let out = self.link_inner(rel, a, b);
        // a delete-orphan change (the one path that fills the graves) settles itself
        self.settle_recorded();
        out
    }

    /// A one-to-many's plain or leaf link inline, in the caller's loop, and its other
    /// links out of line ([`link_general_out`](Self::link_general_out)); the other kinds
    /// of relation by [`link_general`](Self::link_general). At a tenth of W1's size the
    /// split took W1 by `insert` + `link` from 40.6M to 39.0M instructions and W4's
    /// moves from 3.76M to 3.49M, with `link_inner` a call of its own before.
    #[inline(always)]
    fn link_inner<R: Linkable>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        if R::KIND != RelationKind::OneToMany {
            return self.link_general(rel, index, a, b);
        }
        if def.plain_links() || def.forest_links() && self.leaf_link(index, a.raw(), b.raw()) {
            return self.link_plain_checked(index, def.a_table, def.b_table, a.raw(), b.raw());
        }
        self.link_general_out(rel, index, a, b)
    }

    /// [`link_general`](Self::link_general) out of line, for a one-to-many's links that
    /// are neither plain nor a hierarchy's leaf link (a non-leaf link in an acyclic
    /// hierarchy, a polymorphic parent end, a delete-orphan rule): kept out of the loops
    /// that link one-to-manys the common way. (Not `#[cold]`: for some relations every
    /// link comes here, and the attribute changed no count.)
    #[inline(never)]
    fn link_general_out<R: Linkable>(
        &mut self,
        rel: R,
        index: u32,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        self.link_general(rel, index, a, b)
    }

    /// [`link`](Self::link) on any relation, by the relation's policy: the ends' liveness,
    /// an existing link, the relation's checks, then the link.
    #[inline]
    fn link_general<R: Linkable>(
        &mut self,
        rel: R,
        index: u32,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<(), LinkError> {
        let def = &self.schema.relations[index as usize];
        let (a, b) = self.ends_live::<R>(index, def, a, b)?;
        if R::KIND == RelationKind::ManyToMany && !self.has_link_policy(index) {
            // an existing pair is left as it is
            self.p_attach_boxed(index, a, b, rel.default_payload());
            return Ok(());
        }
        if self.rel_store(index).linked(a, b) {
            return Ok(());
        }
        self.check_new_link(index, a, b)?;
        match R::KIND {
            RelationKind::ManyToMany => {
                self.p_attach_boxed(index, a, b, rel.default_payload());
                Ok(())
            }
            _ => self.link_exclusive(index, a, b),
        }
    }

    /// Whether linking `b` under `a` in the self-referential one-to-many `index` can make
    /// neither a self-link nor a cycle: `a` is not `b`, and `b` has no children (a cycle
    /// through the new link would run from `b` down to `a`). A hierarchy built top down,
    /// each node linked under its parent before it has children, links this way: as a
    /// plain one-to-many, with no walk.
    #[inline]
    fn leaf_link(&self, index: u32, a: RawKey, b: RawKey) -> bool {
        a != b && self.relations[index as usize].one_to_many().child_count(b) == 0
    }

    /// [`link_plain`](Self::link_plain) after checking both keys, reading the child's
    /// parent entry once: it proves the child alive, and a link to `a` proves `a` alive.
    #[inline(always)]
    fn link_plain_checked(
        &mut self,
        index: u32,
        ta: u32,
        tb: u32,
        a: RawKey,
        b: RawKey,
    ) -> Result<(), LinkError> {
        let r = self.relations[index as usize].one_to_many_mut();
        let tables = &self.tables[..];
        // (one call through the table's vtable, no downcast)
        let alive = |table: u32, key: RawKey| {
            move |t: &[Box<dyn ErasedArena>]| t[table as usize].contains(key)
        };
        match r.parent_of(b) {
            Some(old) if old == a => Ok(()),
            // a new link and nothing records: the relation found above checks and takes it
            None if !self.rec => match r.attach_checked(tables, a, b, alive(ta, a), alive(tb, b)) {
                Ok(()) => Ok(()),
                Err(End::A) => Err(self.stale_at(ta, a).into()),
                Err(End::B) => Err(self.stale_at(tb, b).into()),
            },
            old => {
                if !r.owns_list(a) && !alive(ta, a)(tables) {
                    return Err(self.stale_at(ta, a).into());
                }
                if old.is_none() && !alive(tb, b)(tables) {
                    return Err(self.stale_at(tb, b).into());
                }
                if let Some(old) = old {
                    self.p_unlink(index, old, b);
                }
                self.p_attach(index, a, b);
                Ok(())
            }
        }
    }

    /// The error for `key`, stale in `table`: out of line.
    #[cold]
    #[inline(never)]
    pub(crate) fn stale_at(&self, table: u32, key: RawKey) -> StaleKey {
        StaleKey {
            key: self.any_key(table, key),
        }
    }

    /// Links `a` and `b` in the one-to-many `index` whose links are
    /// [plain](crate::schema::RelationDef::plain_links): `b` at most leaves its old parent.
    #[inline]
    pub(crate) fn link_plain(&mut self, index: u32, a: RawKey, b: RawKey) {
        let old = self.relations[index as usize].one_to_many().parent_of(b);
        match old {
            Some(old) if old == a => {}
            Some(old) => {
                self.p_unlink(index, old, b);
                self.p_attach(index, a, b);
            }
            None => self.p_attach(index, a, b),
        }
    }

    /// Links every pair of `pairs` in `rel`, in order: the same result as calling
    /// [`link`](Self::link) for each, but all or nothing (on an error nothing is linked),
    /// and cheaper in bulk:
    ///
    /// - on a one-to-many whose links need no policy check (not an acyclic or
    ///   self-link-free hierarchy, no polymorphic parent end, no delete-orphan rule),
    ///   outside a transaction and with history and feed off, each pair is linked as it
    ///   comes: O(pairs), holding one bit per child slot and no copy of the pairs; into
    ///   an empty relation, a batch of at least two pairs a parent slot lays out every
    ///   parent's collection in slot order first (room for the batch's average per
    ///   parent, rounded up to a power of two; the room of parents the batch does not
    ///   name is given back), so that a walk of every parent's children reads memory
    ///   front to back whatever order the pairs came in (O(pairs + parent slots));
    ///   otherwise the pairs are checked first and each parent's collection grows once,
    ///   to its final size, in slot order (O(pairs + parent slots));
    /// - on an acyclic or self-link-free hierarchy (a self-referential one-to-many without
    ///   a polymorphic parent end or delete-orphan rule) whose children have no parent yet
    ///   and appear once, the whole batch is checked in one pass (a union-find over the
    ///   table's slots: O(pairs) in practice, instead of a walk up per link) and then
    ///   linked directly, O(pairs + slots);
    /// - on any other relation the pairs are linked one at a time in a savepoint.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize)] struct Post(u32);
    /// let mut schema = Schema::new();
    /// let users = schema.table::<User>("users");
    /// let posts = schema.table::<Post>("posts");
    /// let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    /// let mut store = Store::new(schema);
    /// let u = store.insert_all([User, User]);
    /// let p = store.insert_all((0..5).map(Post));
    /// store.link_all(authorship, p.iter().enumerate().map(|(i, &p)| (u[i % 2], p)))?;
    /// assert_eq!(store.child_count(authorship, u[0]), 3);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`link`](Self::link), for the first pair refused; then nothing is linked.
    #[track_caller]
    pub fn link_all<R: Linkable>(
        &mut self,
        rel: R,
        pairs: impl IntoIterator<Item = (Key<R::A>, Key<R::B>)>,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        let (ta, tb) = (def.a_table, def.b_table);
        let plain = R::KIND == RelationKind::OneToMany && def.plain_links();
        if plain && !self.recording() {
            return self.link_all_streamed::<R::A, R::B>(index, ta, tb, pairs.into_iter());
        }
        let forest = R::KIND == RelationKind::OneToMany && def.forest_links();
        let (arena_a, arena_b) = (self.arena_at::<R::A>(ta), self.arena_at::<R::B>(tb));
        let pairs = pairs.into_iter();
        // sized by the iterator's hint: a `collect` into `Result` sees no hint and grows
        let mut checked: Vec<(RawKey, RawKey)> = Vec::with_capacity(pairs.size_hint().0);
        for (a, b) in pairs {
            let (a, b) = (a.raw(), b.raw());
            if !arena_a.contains(a) {
                return Err(self.stale_at(ta, a).into());
            }
            if !arena_b.contains(b) {
                return Err(self.stale_at(tb, b).into());
            }
            checked.push((a, b));
        }
        let pairs = checked;
        // an acyclic hierarchy built in bulk: checked at once, then linked directly
        let forest = forest
            && match self.forest_batch(index, &pairs) {
                Some(checked) => checked.map(|()| true)?,
                None => false,
            };
        if plain || forest {
            let recording = self.recording();
            if let RelationStore::OneToMany(r) = &mut self.relations[index as usize] {
                r.reserve_links(&pairs);
                if forest && !recording {
                    // every child is new and parentless, and nothing records: one tight loop
                    r.attach_reserved(&pairs);
                    self.settle();
                    return Ok(());
                }
            }
            for (a, b) in pairs {
                if forest {
                    // (every child of the batch is new and parentless)
                    self.p_attach(index, a, b);
                } else {
                    self.link_plain(index, a, b);
                }
            }
            self.settle();
            return Ok(());
        }
        self.atomic(|s| {
            for (a, b) in pairs {
                s.link(rel, Key::from_raw(a), Key::from_raw(b))?;
            }
            Ok(())
        })
    }

    /// [`link_all`](Self::link_all) on a plain one-to-many while nothing records: each
    /// pair is checked and linked as it comes, holding one bit per child slot (the
    /// children linked while they had no parent) instead of a copy of the pairs. A stale
    /// key, or a panicking input, takes the links back: the moves (a child that had a
    /// parent) run in a savepoint opened at the first one and are rolled back, then the
    /// marked children are detached, which leaves every list as it was.
    fn link_all_streamed<A: Entity, B: Entity>(
        &mut self,
        index: u32,
        ta: u32,
        tb: u32,
        pairs: impl Iterator<Item = (Key<A>, Key<B>)>,
    ) -> Result<(), LinkError> {
        struct Guard<'a> {
            store: &'a mut Store,
            index: u32,
            fresh: Bits,
            regions: Regions,
            sp: Option<crate::path::Savepoint>,
            armed: bool,
        }
        impl Guard<'_> {
            fn undo(&mut self) {
                self.armed = false;
                if let Some(sp) = self.sp.take() {
                    // the savepoint holds links only: its rollback drops no value
                    let _ = self.store.rollback(sp);
                }
                let r = self.store.relations[self.index as usize].one_to_many_mut();
                for i in self.fresh.ones() {
                    r.detach_slot(i as usize);
                }
                r.release_regions(&self.regions);
            }
        }
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if self.armed {
                    self.undo();
                }
            }
        }
        // (keys of a kind index the slots of its base)
        let slots_b = self.tables[self.root_table(tb) as usize].slot_count();
        // a new list gets room for the power of two at or above the average number of new
        // children a parent: most lists never grow, where doubling from nothing grows them
        // thrice (and the room is what doubling would have given)
        let hint = pairs.size_hint().0;
        let expected = hint
            .div_ceil(self.tables[ta as usize].len().max(1))
            .next_power_of_two();
        let mut regions = Regions::default();
        if hint > 0 {
            // room for every parent's list and every child's parent entry, once; a batch
            // for half the child slots or more gets its parent entries at once
            let slots_a = self.tables[self.root_table(ta) as usize].slot_count();
            let r = self.relations[index as usize].one_to_many_mut();
            r.reserve_slots(End::A, slots_a);
            r.reserve_slots(End::B, slots_b);
            // the new lists' segments, once: in slot order into an empty relation, else at
            // most one a pair or a parent
            regions = r.regions(slots_a, hint, expected);
            if !regions.laid() {
                r.reserve_segments(hint.min(slots_a), expected);
            }
            if hint >= slots_b / 2 {
                r.size_parents(slots_b);
            }
        }
        let mut g = Guard {
            store: self,
            index,
            fresh: Bits::with_len(slots_b),
            regions,
            sp: None,
            armed: true,
        };
        let mut pairs = pairs.map(|(a, b)| (a.raw(), b.raw()));
        // new links of children without a parent, while nothing records: appended in a
        // tight loop, the typed arenas at hand (no primitive to log or settle: the only
        // changes `p_attach` would make); the first move ends it
        let mut stale = None;
        let mut first_move = None;
        {
            let Guard {
                store,
                fresh,
                regions,
                ..
            } = &mut g;
            let Store {
                tables, relations, ..
            } = &mut **store;
            let arena_a = crate::arena::column::<A>(tables, ta);
            let arena_b = crate::arena::column::<B>(tables, tb);
            let r = relations[index as usize].one_to_many_mut();
            for (a, b) in pairs.by_ref() {
                if !r.owns_list(a) && !arena_a.contains(a) {
                    stale = Some((ta, a));
                    break;
                }
                match r.parent_of(b) {
                    None if !arena_b.contains(b) => {
                        stale = Some((tb, b));
                        break;
                    }
                    None => {
                        r.presize(a, expected, regions);
                        r.attach(a, b);
                        fresh.set(b.index());
                    }
                    Some(old) if old == a => {}
                    Some(_) => {
                        first_move = Some((a, b));
                        break;
                    }
                }
            }
        }
        if let Some((a, b)) = first_move {
            // from the first move on, a savepoint records the changes
            g.sp = Some(g.store.begin());
            g.store.link_plain(index, a, b);
            for (a, b) in pairs {
                let s = &mut *g.store;
                let r = s.relations[index as usize].one_to_many();
                if !r.owns_list(a) && !s.tables[ta as usize].contains(a) {
                    stale = Some((ta, a));
                    break;
                }
                if !r.vouches_child(b) && !s.tables[tb as usize].contains(b) {
                    stale = Some((tb, b));
                    break;
                }
                s.link_plain(index, a, b);
            }
        }
        if let Some((table, key)) = stale {
            g.undo();
            let key = g.store.any_key(table, key);
            return Err(LinkError::Stale(StaleKey { key }));
        }
        g.armed = false;
        let store = &mut *g.store;
        store.relations[index as usize]
            .one_to_many_mut()
            .release_regions(&g.regions);
        if let Some(sp) = g.sp.take() {
            if let Some(p) = store.commit(sp) {
                std::panic::resume_unwind(p);
            }
        }
        store.settle();
        Ok(())
    }

    /// For a batch of new links of a self-referential one-to-many with a policy
    /// (acyclic, no self-links; no polymorphic parent end or delete-orphan rule): the
    /// first link a loop of [`link`](Self::link) would refuse, found in one pass over the
    /// batch, or `Ok` if there is none. `None` if some child of the batch has a parent
    /// already or is given twice (then a loop of `link` decides).
    ///
    /// Every child of such a batch is a root when its link is made, so the link makes a
    /// cycle exactly when the child is the root of the parent's tree: a union-find over the
    /// table's slots (each slot pointing at an ancestor, compressed on the way up) answers
    /// that in amortised O(log n), O(pairs) in practice, instead of a walk up per link.
    /// O(slots) memory for the pointers.
    pub(crate) fn forest_batch(
        &self,
        index: u32,
        pairs: &[(RawKey, RawKey)],
    ) -> Option<Result<(), LinkError>> {
        const UNSET: u32 = u32::MAX;
        let def = &self.schema.relations[index as usize];
        let RelationStore::OneToMany(r) = self.rel_store(index) else {
            return None;
        };
        // up[i]: a slot on the way from i to its root (i itself at a root); UNSET: not
        // looked at yet (then the relation's parent entry says)
        let slots = self.tables[self.root_table(def.a_table) as usize].slot_count();
        let mut up = vec![UNSET; slots];
        for &(_, c) in pairs {
            let i = c.idx();
            if up[i] != UNSET || r.parent_slot(i).is_some() {
                return None;
            }
            up[i] = i as u32;
        }
        let root_of = |up: &mut [u32], x: usize| {
            let mut root = x;
            loop {
                let mut u = up[root];
                if u == UNSET {
                    u = r.parent_slot(root).unwrap_or(root) as u32;
                    up[root] = u;
                }
                if u as usize == root {
                    break;
                }
                root = u as usize;
            }
            let mut at = x;
            while at != root {
                let next = up[at] as usize;
                up[at] = root as u32;
                at = next;
            }
            root
        };
        for &(p, c) in pairs {
            if def.rules.forbid_self_links && p == c {
                return Some(Err(LinkError::SelfLink {
                    relation: def.name,
                    key: p,
                }));
            }
            if def.rules.acyclic && root_of(&mut up, p.idx()) == c.idx() {
                return Some(Err(LinkError::Cycle {
                    relation: def.name,
                    a: p,
                    b: c,
                }));
            }
            up[c.idx()] = p.idx() as u32;
        }
        Some(Ok(()))
    }

    /// Whether new links of relation `index` must pass [`check_new_link`]: a
    /// self-referential relation that forbids self-links or cycles.
    ///
    /// [`check_new_link`]: Self::check_new_link
    #[inline]
    pub(crate) fn has_link_policy(&self, index: u32) -> bool {
        let def = &self.schema.relations[index as usize];
        def.self_referential() && (def.rules.forbid_self_links || def.rules.acyclic)
    }

    /// Rejects a new link that a policy forbids: self-links, cycles.
    pub(crate) fn check_new_link(&self, index: u32, a: RawKey, b: RawKey) -> Result<(), LinkError> {
        let def = &self.schema.relations[index as usize];
        if !def.self_referential() {
            return Ok(());
        }
        if def.rules.forbid_self_links && a == b {
            return Err(LinkError::SelfLink {
                relation: def.name,
                key: a,
            });
        }
        if def.rules.acyclic && self.reaches(index, b, a) {
            return Err(LinkError::Cycle {
                relation: def.name,
                a,
                b,
            });
        }
        Ok(())
    }

    /// Whether `to` can be reached from `from` following A -> B links (`from` reaches
    /// itself). On a one-to-many or one-to-one this walks up from `to`: O(depth), and
    /// O(1) when `from` has no links from it (it then reaches itself alone: a hierarchy
    /// built top down, each new node linked under its parent before it has children of
    /// its own, never walks).
    pub(crate) fn reaches(&self, index: u32, from: RawKey, to: RawKey) -> bool {
        match self.rel_store(index) {
            RelationStore::OneToMany(r) if r.child_count(from) == 0 => from == to,
            RelationStore::OneToOne(r) if r.partner(End::A, from).is_none() => from == to,
            RelationStore::OneToMany(r) => {
                let mut at = Some(to);
                while let Some(k) = at {
                    if k == from {
                        return true;
                    }
                    at = r.parent_of(k);
                }
                false
            }
            RelationStore::OneToOne(r) => {
                let mut at = Some(to);
                while let Some(k) = at {
                    if k == from {
                        return true;
                    }
                    at = r.partner(End::B, k);
                }
                false
            }
            RelationStore::ManyToMany(r) => {
                let mut seen = KeySet::default();
                let mut stack = vec![from];
                while let Some(k) = stack.pop() {
                    if k == to {
                        return true;
                    }
                    if seen.insert(k) {
                        stack.extend(r.entries(End::A, k).map(|(p, _)| p));
                    }
                }
                false
            }
        }
    }

    /// Links `a` and `b` in a one-to-many or one-to-one, unlinking what exclusivity
    /// requires first, and deleting whatever that orphans under a delete-orphan rule.
    pub(crate) fn link_exclusive(
        &mut self,
        index: u32,
        a: RawKey,
        b: RawKey,
    ) -> Result<(), LinkError> {
        // the previous parent (or partner) of `b`, in this relation or (for a polymorphic
        // parent end) in another relation of the group; and `a`'s previous partner
        let (old_a, old_b) = match self.rel_store(index) {
            RelationStore::OneToMany(r) => (r.parent_of(b), None),
            RelationStore::OneToOne(r) => (r.partner(End::B, b), r.partner(End::A, a)),
            RelationStore::ManyToMany(_) => unreachable!("many-to-many links are not exclusive"),
        };
        let old_a = match old_a {
            Some(old) => Some((index, old)),
            None => self.parent_elsewhere(index, b),
        };
        let mut lost = [(index, End::A, a); 2];
        let mut n = 0;
        if let Some((rel, old)) = old_a {
            lost[n] = (rel, End::A, old);
            n += 1;
        }
        if let Some(old) = old_b {
            lost[n] = (index, End::B, old);
            n += 1;
        }
        self.change_with_orphans(index, &lost[..n], &[(End::A, a), (End::B, b)], |s| {
            if let Some((rel, old)) = old_a {
                s.p_unlink(rel, old, b);
            }
            if let Some(old) = old_b {
                s.p_unlink(index, a, old);
            }
            s.p_attach(index, a, b);
        })
    }

    /// The parent of `child` in another one-to-many of the polymorphic parent end that
    /// relation `index` belongs to. O(relations in the group).
    pub(crate) fn parent_elsewhere(&self, index: u32, child: RawKey) -> Option<(u32, RawKey)> {
        let group = self.schema.relations[index as usize].group?;
        self.schema.groups[group as usize]
            .members
            .iter()
            .filter(|&&m| m != index)
            .find_map(|&m| match self.rel_store(m) {
                RelationStore::OneToMany(r) => r.parent_of(child).map(|p| (m, p)),
                _ => None,
            })
    }

    /// Runs `change` (primitives on relation `index`), then deletes the entities of
    /// `lost` (each at its end) that the change left without links where the other end's
    /// rule is delete-orphan. If such a delete is refused, or would delete one of `keep`
    /// (the endpoints of the links the change makes or keeps), everything is rolled back.
    pub(crate) fn change_with_orphans(
        &mut self,
        index: u32,
        lost: &[(u32, End, RawKey)],
        keep: &[(End, RawKey)],
        change: impl FnOnce(&mut Store),
    ) -> Result<(), LinkError> {
        let orphan_rule = |s: &Store, rel: u32, end: End| {
            s.schema.relations[rel as usize].rules.rule(end.other()) == DeleteRule::DeleteOrphan
        };
        if !lost
            .iter()
            .any(|&(rel, end, _)| orphan_rule(self, rel, end))
        {
            change(self);
            self.settle();
            return Ok(());
        }
        self.atomic(|s| {
            change(s);
            let mut roots = Vec::new();
            let mut seen = PairSet::default();
            for &(rel, end, key) in lost {
                let table = s.schema.relations[rel as usize].table(end);
                let orphan = orphan_rule(s, rel, end)
                    && s.tables[table as usize].contains(key)
                    && s.rel_store(rel).partner_count(end, key) == 0;
                let root = (s.root_table(table), key);
                if orphan && seen.insert(root) {
                    roots.push(root);
                }
            }
            let plan = s.plan_remove(&roots);
            if let Some(e) = s.first_blocker(&plan) {
                return Err(LinkError::OrphanDelete(e));
            }
            if !plan.order.is_empty() && !keep.is_empty() {
                let def = &s.schema.relations[index as usize];
                let planned: PairSet = plan.order.iter().copied().collect();
                let hit = keep
                    .iter()
                    .map(|&(end, key)| (s.root_table(def.table(end)), key))
                    .find(|k| planned.contains(k));
                if let Some((table, key)) = hit {
                    let key = s.entity_name(table, key);
                    return Err(LinkError::DeletesEndpoint {
                        relation: def.name,
                        key,
                    });
                }
            }
            s.apply_plan(&plan);
            Ok(())
        })
    }

    /// Unlinks `a` and `b` in `rel`; `Ok(false)` if they were not linked. Under a
    /// delete-orphan rule, the end left without links is deleted (with its cascades); if
    /// that delete is refused, nothing changes. O(1) (amortised: a collection may be
    /// compacted).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::OrphanDelete`] if
    /// the orphan it leaves would be deleted and that delete is refused. Nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct User { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.relate(users.many("posts"), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// assert!(store.unlink(authorship, alice, guide)?);
    /// assert_eq!(store.parent(authorship, guide), None);
    /// assert!(!store.unlink(authorship, alice, guide)?, "no longer linked");
    /// assert!(store.contains(guide), "unlinking deletes nothing without delete-orphan");
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn unlink<R: Relation>(
        &mut self,
        rel: R,
        a: Key<R::A>,
        b: Key<R::B>,
    ) -> Result<bool, LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<R>(index, def, a, b)?;
        let orphaning =
            [def.rules.on_delete_a, def.rules.on_delete_b].contains(&DeleteRule::DeleteOrphan);
        if !orphaning {
            let unlinked = self.p_unlink(index, a, b);
            self.settle();
            return Ok(unlinked);
        }
        if !self.rel_store(index).linked(a, b) {
            return Ok(false);
        }
        let lost = [(index, End::A, a), (index, End::B, b)];
        self.change_with_orphans(index, &lost, &[], |s| {
            s.p_unlink(index, a, b);
        })?;
        Ok(true)
    }

    /// Whether `a` and `b` are linked in `rel`. O(1).
    #[track_caller]
    pub fn linked<R: Relation>(&self, rel: R, a: Key<R::A>, b: Key<R::B>) -> bool {
        let index = self.rel_index(rel);
        self.rel_store(index).linked(a.raw(), b.raw())
    }

    /// The second-end entities linked to `a`, in link order: the children of a
    /// one-to-many, the partner of a one-to-one, the targets of a many-to-many.
    /// O(1) per step.
    #[track_caller]
    pub fn targets<R: Relation>(&self, rel: R, a: Key<R::A>) -> Linked<'_, R::B> {
        let index = self.rel_index(rel);
        Linked::new(self, self.rel_store(index), End::A, a.raw())
    }

    /// The first-end entities linked to `b`, in link order: the parent of a one-to-many
    /// child, the partner of a one-to-one, the sources of a many-to-many. O(1) per step.
    #[track_caller]
    pub fn sources<R: Relation>(&self, rel: R, b: Key<R::B>) -> Linked<'_, R::A> {
        let index = self.rel_index(rel);
        Linked::new(self, self.rel_store(index), End::B, b.raw())
    }

    /// Number of second-end entities linked to `a`. O(1).
    #[track_caller]
    pub fn target_count<R: Relation>(&self, rel: R, a: Key<R::A>) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).partner_count(End::A, a.raw())
    }

    /// Number of first-end entities linked to `b`. O(1).
    #[track_caller]
    pub fn source_count<R: Relation>(&self, rel: R, b: Key<R::B>) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).partner_count(End::B, b.raw())
    }

    /// Number of links in `rel`. O(1).
    #[track_caller]
    pub fn link_count<R: Relation>(&self, rel: R) -> usize {
        let index = self.rel_index(rel);
        self.rel_store(index).link_count()
    }
}

/// A validated replacement collection: its owner, its members in order, and the current
/// members it drops.
pub(crate) struct NewCollection {
    pub(crate) owner: RawKey,
    pub(crate) order: Vec<RawKey>,
    pub(crate) dropped: Vec<RawKey>,
}

/// The endpoints of the links a replaced collection will hold: the owner (if it keeps any
/// link) and every member.
pub(crate) fn endpoints(owner: RawKey, members: &[RawKey]) -> Vec<(End, RawKey)> {
    if members.is_empty() {
        return Vec::new();
    }
    let mut v = vec![(End::A, owner)];
    v.extend(members.iter().map(|&m| (End::B, m)));
    v
}
