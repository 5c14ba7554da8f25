//! Many-to-many relations: payloads, link_with, bulk links, set_targets.

use super::*;

impl Store {
    #[track_caller]
    pub(crate) fn m2m<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
    ) -> &crate::relation::ManyToManyStore {
        let index = self.rel_index(rel);
        match self.rel_store(index) {
            RelationStore::ManyToMany(r) => r,
            _ => unreachable!("a ManyToMany handle names a many-to-many"),
        }
    }

    /// Links `a` and `b` with `payload`. If they are already linked, the link keeps its
    /// position in both collections and its payload is replaced. O(1).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if either key names no live entity; [`LinkError::SelfLink`] or
    /// [`LinkError::Cycle`] where the relation forbids the link. Nothing changes, and `payload`
    /// is dropped.
    #[track_caller]
    pub fn link_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        payload: W,
    ) -> Result<(), LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<ManyToMany<A, B, W>>(index, def, a, b)?;
        if self.has_link_policy(index) && !self.rel_store(index).linked(a, b) {
            self.check_new_link(index, a, b)?;
        }
        // links a new pair, or replaces the payload of an existing one
        self.p_attach_with(index, a, b, payload);
        self.settle();
        Ok(())
    }

    /// Links every `(a, b, payload)` of `links` in `rel`, in order: the same result as
    /// calling [`link_with`](Self::link_with) for each (a pair given twice keeps its first
    /// position and takes the last payload), but all or nothing: a stale key anywhere (or
    /// a panicking input) takes back the links made before it, newest first, and puts back
    /// the payloads replaced, leaving the relation as it was. O(links), in one pass that
    /// holds nothing but the replaced payloads; the link and payload vectors are sized from
    /// the input's size hint. On the W5 workload (2M graded links) it is as fast as
    /// `reserve` and a loop of `link_with` (`cargo run --release -p relgraph-bench --example ratios -- 7 W5`).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] for the first stale key, and on a self-referential relation
    /// that forbids self-links or cycles the first link it refuses; nothing is linked.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Rules, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Student;
    /// # #[derive(Serialize, Deserialize)] struct Course;
    /// let mut schema = Schema::new();
    /// let students = schema.table::<Student>("students");
    /// let courses = schema.table::<Course>("courses");
    /// let grades = schema.many_to_many_with::<_, _, u8>(students, "courses", courses, "students", Rules::new());
    /// let mut store = Store::new(schema);
    /// let s = store.insert_all([Student, Student]);
    /// let c = store.insert(Course);
    /// store.link_all_with(grades, [(s[0], c, 90), (s[1], c, 75)])?;
    /// assert_eq!(store.payload(grades, s[1], c), Some(&75));
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn link_all_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        links: impl IntoIterator<Item = (Key<A>, Key<B>, W)>,
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let links = links.into_iter();
        if self.recording() || self.has_link_policy(index) || self.ix.on_rel(index) {
            // inside a transaction every link is logged anyway; a policy checks each link
            return self.atomic(|s| {
                for (a, b, w) in links {
                    s.link_with(rel, a, b, w)?;
                }
                Ok(())
            });
        }
        // one pass: links are appended as they come; on a stale key (or a panicking
        // input) the appended links are popped again, newest first, and the payloads this
        // call replaced are put back, which leaves the relation as it was
        struct Undo<'a, W: Entity> {
            store: &'a mut Store,
            index: u32,
            start: usize,
            replaced: Vec<(usize, W)>,
            armed: bool,
        }
        impl<W: Entity> Undo<'_, W> {
            fn undo(&mut self) {
                let RelationStore::ManyToMany(r) = &mut self.store.relations[self.index as usize]
                else {
                    unreachable!("a ManyToMany handle names a many-to-many")
                };
                let grave = self
                    .store
                    .graves
                    .payloads(self.index, r.payloads.needs_drop());
                // payloads first: a pair given twice replaced the payload of a link this
                // call appended, which the pops then take away
                for (i, old) in self.replaced.drain(..).rev() {
                    let new = std::mem::replace(&mut crate::path::payloads_mut::<W>(r)[i], old);
                    crate::grave::defer(grave, new);
                }
                while r.link_count() > self.start {
                    r.pop_link(grave);
                }
            }
        }
        impl<W: Entity> Drop for Undo<'_, W> {
            fn drop(&mut self) {
                if self.armed {
                    // unwinding already: a panic of a `Drop` here is dropped
                    self.undo();
                    let _ = self.store.graves.bury(&mut self.store.tables);
                }
            }
        }
        let (ta, tb) = {
            let def = &self.schema.relations[index as usize];
            (def.a_table, def.b_table)
        };
        if let RelationStore::ManyToMany(r) = &mut self.relations[index as usize] {
            r.reserve(links.size_hint().0);
        }
        let start = self.relations[index as usize].link_count();
        let mut undo = Undo::<W> {
            store: self,
            index,
            start,
            replaced: Vec::new(),
            armed: true,
        };
        for (a, b, w) in links {
            let s = &mut *undo.store;
            let (a, b) = (a.raw(), b.raw());
            let stale = if !s.relations[index as usize].vouches(End::A, a)
                && !s.arena_at::<A>(ta).contains(a)
            {
                Some(s.any_key(ta, a))
            } else if !s.relations[index as usize].vouches(End::B, b)
                && !s.arena_at::<B>(tb).contains(b)
            {
                Some(s.any_key(tb, b))
            } else {
                None
            };
            if let Some(key) = stale {
                undo.undo();
                undo.armed = false;
                undo.store.settle();
                return Err(LinkError::Stale(StaleKey { key }));
            }
            let RelationStore::ManyToMany(r) = &mut s.relations[index as usize] else {
                unreachable!("a ManyToMany handle names a many-to-many")
            };
            match r.attach(a, b) {
                Ok(_) => crate::path::payloads_mut::<W>(r).push(w),
                Err(i) => {
                    let old = std::mem::replace(&mut crate::path::payloads_mut::<W>(r)[i], w);
                    undo.replaced.push((i, old));
                }
            }
        }
        undo.armed = false;
        let replaced = std::mem::take(&mut undo.replaced);
        let store = &mut *undo.store;
        // the payloads replaced go when the call ends, after every link is made
        let RelationStore::ManyToMany(r) = &store.relations[index as usize] else {
            unreachable!("a ManyToMany handle names a many-to-many")
        };
        let drops = r.payloads.needs_drop();
        let grave = store.graves.payloads(index, drops);
        for (_, old) in replaced {
            crate::grave::defer(grave, old);
        }
        store.settle();
        Ok(())
    }

    /// Unlinks `a` and `b` and hands back the link's payload: `Ok(None)` if they were not
    /// linked. The same as reading [`payload`](Self::payload) and then calling
    /// [`unlink`](Self::unlink), in one pair lookup, and the payload is moved out, not
    /// cloned (inside a transaction, or with history or the change feed on, the log keeps
    /// a clone to put back). Under a delete-orphan rule, the end left without links is
    /// deleted as by `unlink`. O(1) amortised.
    ///
    /// # Errors
    ///
    /// As [`unlink`](Self::unlink): [`LinkError::Stale`] if either key names no live
    /// entity; [`LinkError::OrphanDelete`] if the orphan it leaves would be deleted and that
    /// delete is refused. Nothing changes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{Rules, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Student;
    /// # #[derive(Serialize, Deserialize)] struct Course;
    /// let mut schema = Schema::new();
    /// let students = schema.table::<Student>("students");
    /// let courses = schema.table::<Course>("courses");
    /// let grades = schema.many_to_many_with::<_, _, u8>(students, "courses", courses, "students", Rules::new());
    /// let mut store = Store::new(schema);
    /// let (s, c) = (store.insert(Student), store.insert(Course));
    /// store.link_with(grades, s, c, 90)?;
    /// assert_eq!(store.unlink_take(grades, s, c)?, Some(90));
    /// assert_eq!(store.unlink_take(grades, s, c)?, None, "no longer linked");
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn unlink_take<A: Entity, B: Entity, W: Entity + Clone>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
    ) -> Result<Option<W>, LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<ManyToMany<A, B, W>>(index, def, a, b)?;
        let orphaning =
            [def.rules.on_delete_a, def.rules.on_delete_b].contains(&DeleteRule::DeleteOrphan);
        if !orphaning {
            let taken = self.p_unlink_take(index, a, b);
            self.settle();
            return Ok(taken);
        }
        if !self.rel_store(index).linked(a, b) {
            return Ok(None);
        }
        let mut taken = None;
        let lost = [(index, End::A, a), (index, End::B, b)];
        // on an error the rollback puts back the log's clone, and `taken` is dropped
        self.change_with_orphans(index, &lost, &[], |s| {
            taken = s.p_unlink_take(index, a, b);
        })?;
        Ok(taken)
    }

    /// The payload of the link between `a` and `b`, if they are linked. O(1).
    #[track_caller]
    pub fn payload<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
    ) -> Option<&W> {
        let r = self.m2m(rel);
        r.link_index(a.raw(), b.raw()).map(|i| &payloads::<W>(r)[i])
    }

    /// Changes the payload of the link between `a` and `b` in place. Inside a transaction
    /// the old payload is cloned first. Returns `Ok(None)` if they are not linked.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if a key is stale; nothing changes.
    ///
    /// # Panics
    ///
    /// As [`update`](Self::update): a panic in `f` leaves the payload as `f` left it.
    #[track_caller]
    pub fn update_payload<A: Entity, B: Entity, W: Entity + Clone, R>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        b: Key<B>,
        f: impl FnOnce(&mut W) -> R,
    ) -> Result<Option<R>, LinkError> {
        let (index, def) = self.rel(rel);
        let (a, b) = self.ends_live::<ManyToMany<A, B, W>>(index, def, a, b)?;
        if self.depth == 0 && self.tracking() {
            // one history step: a panic in `f` rolls the payload back
            return self.atomic(|s| Ok(s.p_update_payload(index, a, b, f)));
        }
        Ok(self.p_update_payload(index, a, b, f))
    }

    /// The targets of `a` with the payload of each link, in link order. O(1) per step.
    ///
    /// Empty for a stale key; `rows()` yields each target's row with the payload.
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{ManyToMany, Schema, Store};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Student { name: String }
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct Course { name: String }
    /// let mut schema = Schema::new();
    /// let students = schema.table::<Student>("students");
    /// let courses = schema.table::<Course>("courses");
    /// let grades: ManyToMany<Student, Course, u8> =
    ///     schema.relate_with(students.many("courses"), courses.many("students"));
    /// let mut store = Store::new(schema);
    /// let john = store.insert(Student { name: "John".into() });
    /// for (name, grade) in [("Python", 90), ("Databases", 85)] {
    ///     store.insert_target_with(grades, john, Course { name: name.into() }, grade)?;
    /// }
    /// let report: Vec<(&str, u8)> =
    ///     store.targets_with(grades, john).rows().map(|(c, &g)| (c.name.as_str(), g)).collect();
    /// assert_eq!(report, [("Python", 90), ("Databases", 85)]);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn targets_with<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
    ) -> WithPayload<'_, B, W> {
        let r = self.m2m(rel);
        WithPayload {
            entries: r.entries(End::A, a.raw()),
            payloads: payloads::<W>(r),
            store: self,
            _type: PhantomData,
        }
    }

    /// The sources of `b` with the payload of each link, in link order. O(1) per step.
    #[track_caller]
    pub fn sources_with<A: Entity, B: Entity, W: Entity>(
        &self,
        rel: ManyToMany<A, B, W>,
        b: Key<B>,
    ) -> WithPayload<'_, A, W> {
        let r = self.m2m(rel);
        WithPayload {
            entries: r.entries(End::B, b.raw()),
            payloads: payloads::<W>(r),
            store: self,
            _type: PhantomData,
        }
    }

    /// Replaces the targets of `a` with `targets`, in that order. Only the difference is
    /// unlinked and linked: kept links keep their payload, new links get the default
    /// payload, dropped targets are unlinked (and deleted under a delete-orphan rule).
    /// All or nothing. O(old + new targets).
    ///
    /// # Errors
    ///
    /// As [`set_children`](Self::set_children): a stale key, a target named twice, a refused
    /// link, or a dropped target's refused delete. Nothing changes.
    #[track_caller]
    pub fn set_targets<A: Entity, B: Entity, W: Entity + Default>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        targets: &[Key<B>],
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let NewCollection {
            owner: a,
            order,
            dropped,
        } = self.new_collection(index, a, targets)?;
        let r = self.m2m(rel);
        let added: Vec<RawKey> = order
            .iter()
            .copied()
            .filter(|&b| r.link_index(a, b).is_none())
            .collect();
        for &b in &added {
            self.check_new_link(index, a, b)?;
        }
        let mut lost: Vec<(u32, End, RawKey)> =
            dropped.iter().map(|&b| (index, End::B, b)).collect();
        if !dropped.is_empty() {
            lost.push((index, End::A, a));
        }
        let keep = endpoints(a, &order);
        // user code runs before anything changes: a panicking `default` changes nothing
        let payloads: Vec<W> = added.iter().map(|_| W::default()).collect();
        let change = |s: &mut Store| {
            for &b in &dropped {
                s.p_unlink(index, a, b);
            }
            for (&b, w) in added.iter().zip(payloads) {
                s.p_attach_with(index, a, b, w);
            }
            let r = s.m2m(rel);
            let now: Vec<RawKey> = r.entries(End::A, a).map(|(b, _)| b).collect();
            if now != order {
                s.p_reorder(index, End::A, a, &order);
            }
        };
        if self.ix.on_rel(index) && !added.is_empty() {
            // a unique payload index refusing a new link's payload panics midway: in a
            // savepoint, so that the links changed before are put back
            return self.atomic(|s| s.change_with_orphans(index, &lost, &keep, change));
        }
        self.change_with_orphans(index, &lost, &keep, change)
    }

    /// Reserves room for `additional` more links in a many-to-many.
    #[track_caller]
    pub fn reserve_links<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        additional: usize,
    ) {
        let index = self.rel_index(rel);
        if let RelationStore::ManyToMany(r) = &mut self.relations[index as usize] {
            r.reserve(additional);
        }
    }
}
