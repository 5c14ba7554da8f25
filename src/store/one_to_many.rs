//! One-to-many relations: parents, children, insert-as-child, set_children.

use super::*;

impl Store {
    #[inline]
    #[track_caller]
    pub(crate) fn otm<P, C>(&self, rel: OneToMany<P, C>) -> &OneToManyStore
    where
        P: Entity,
        C: Entity,
    {
        self.rel_store(self.rel_index(rel)).one_to_many()
    }

    /// The parent table of `rel`, taken from the relation, not by `TypeId` (the caller
    /// checked the handle).
    #[inline]
    pub(crate) fn parent_table<P: Entity, C: Entity>(&self, rel: OneToMany<P, C>) -> &Column<P> {
        self.arena_at::<P>(self.schema.relations[rel.index as usize].a_table)
    }

    /// The parent of `child`, if it has one. O(1).
    ///
    /// `None` also for a stale key. [`parent_row`](Self::parent_row) reads the parent's row.
    /// For many lookups in a loop, take the relation's view once with
    /// [`parents`](Self::parents): each lookup then skips the handle check (W3 of the
    /// README: 1.4x the time of a hand-kept map by `parent`, 1.1x by the view).
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
    /// let draft = store.insert(Post { title: "Draft".into() });
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// assert_eq!(store.parent_row(authorship, guide).map(|u| u.name.as_str()), Some("Alice"));
    /// assert_eq!(store.parent(authorship, draft), None);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn parent<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        child: Key<C>,
    ) -> Option<Key<P>> {
        self.otm(rel).parent_of(child.raw()).map(Key::from_raw)
    }

    /// The parent's row of `child`, if it has a parent: `employee.manager` is
    /// `store.parent_row(reports, employee)`. O(1), with a checked downcast of the
    /// parent's table on every call: in a loop, [`Parents::row`](crate::Parents::row) of a
    /// view taken once with [`parents`](Self::parents) costs half as much.
    #[inline]
    #[track_caller]
    pub fn parent_row<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        child: Key<C>,
    ) -> Option<&P> {
        let parent = self.otm(rel).parent_of(child.raw())?;
        self.parent_table(rel).get(parent)
    }

    /// Inserts `value` as the last child of `parent`, in one step: the row and its link
    /// both, or neither (`Post { author: user, .. }` in an ORM). O(1) amortised.
    ///
    /// The cheapest way to add one child at a time: a new row cannot make a cycle or a
    /// self-link and has no parent to leave, so unless the child table has kinds or the
    /// relation a polymorphic parent end or a delete-orphan rule, the row and its link are
    /// made directly, without the savepoint and the checks of [`link`](Self::link)
    /// (W1 of the README).
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `parent` is stale; nothing is inserted.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    ///
    /// # Examples
    ///
    /// ```
    /// # use relgraph::{DeleteRule, Schema, Store};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct User;
    /// # #[derive(Serialize, Deserialize)] struct Post { title: String }
    /// # let mut schema = Schema::new();
    /// # let users = schema.table::<User>("users");
    /// # let posts = schema.table::<Post>("posts");
    /// # let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User);
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// assert_eq!(store.parent(authorship, guide), Some(alice));
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[inline(always)]
    #[track_caller]
    pub fn insert_child<P: Entity, C: Entity>(
        &mut self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
        value: C,
    ) -> Result<Key<C>, LinkError> {
        let (index, def) = self.rel(rel);
        let (inline, a_table, table) = (def.inline_children(), def.a_table, def.b_table);
        // a fresh child has no parent, no children and a key no live entity has: no
        // cycle, self-link or evicted partner can refuse the link, so the row and its
        // link are made directly, as one call, with no savepoint. Inline where nothing
        // records and no index watches the table; the relation and the table are then
        // borrowed apart, so that the link reuses the relation found for the check.
        if !inline || self.rec {
            return self.insert_child_hooked(rel, parent, value);
        }
        let r = self.relations[index as usize].one_to_many_mut();
        let child = r.attach_new(
            &mut self.tables[..],
            parent.raw(),
            |tables| tables[a_table as usize].contains(parent.raw()),
            |tables| {
                crate::arena::column_mut::<C>(tables, table)
                    .slots_mut()
                    .expect("a child table with direct links has no kinds")
                    .insert(value)
            },
        );
        match child {
            Some(child) => Ok(Key::from_raw(child)),
            None => Err(self.stale_parent(rel, parent)),
        }
    }

    /// The error of [`insert_child`](Self::insert_child) for a stale parent, out of line
    /// (taking the handle, not the table: the inlined caller then keeps one value fewer
    /// live through its loop).
    #[cold]
    #[inline(never)]
    fn stale_parent<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
    ) -> LinkError {
        let (_, def) = self.rel(rel);
        self.stale_at(def.a_table, parent.raw()).into()
    }

    /// [`insert_child`](Self::insert_child) while something records (a transaction,
    /// history, the feed) or an index watches the child table, or where a rule may refuse
    /// the link: out of line.
    #[inline(never)]
    #[track_caller]
    fn insert_child_hooked<P: Entity, C: Entity>(
        &mut self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
        value: C,
    ) -> Result<Key<C>, LinkError> {
        let (index, def) = self.rel(rel);
        let (direct, table) = (def.direct_children(), def.b_table);
        self.live_at(index, End::A, def.a_table, parent)?;
        if !direct {
            // a rule may refuse the link: `insert` and `link` in a savepoint
            return self.atomic(|s| {
                let child = s.insert(value);
                s.link(rel, parent, child)?;
                Ok(child)
            });
        }
        let child = self.p_insert(table, value);
        self.p_attach(index, parent.raw(), child);
        self.settle_recorded();
        Ok(Key::from_raw(child))
    }

    /// Inserts `value` and links it as the last target of `a` with `payload`, in one
    /// step: the row and its link both, or neither. O(1) amortised.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `a` is stale; nothing is inserted.
    ///
    /// # Panics
    ///
    /// As [`insert`](Self::insert).
    #[track_caller]
    pub fn insert_target_with<A: Entity, B: Entity, W: Entity>(
        &mut self,
        rel: ManyToMany<A, B, W>,
        a: Key<A>,
        value: B,
        payload: W,
    ) -> Result<Key<B>, LinkError> {
        let (index, def) = self.rel(rel);
        self.live_at(index, End::A, def.a_table, a)?;
        self.atomic(|s| {
            let b = s.insert(value);
            s.link_with(rel, a, b, payload)?;
            Ok(b)
        })
    }

    /// The children of `parent`, in link order. O(1) per step.
    ///
    /// Empty for a stale key. The iterator yields keys; its `rows()` yields the rows.
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
    /// for title in ["Guide", "ORM"] {
    ///     store.insert_child(authorship, alice, Post { title: title.into() })?;
    /// }
    /// let titles: Vec<&str> =
    ///     store.children(authorship, alice).rows().map(|p| p.title.as_str()).collect();
    /// assert_eq!(titles, ["Guide", "ORM"]);
    /// assert_eq!(store.children(authorship, alice).len(), 2);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn children<P: Entity, C: Entity>(
        &self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
    ) -> Children<'_, C> {
        Children {
            inner: self.otm(rel).children_of(parent.raw()),
            store: self,
            _type: PhantomData,
        }
    }

    /// Number of children of `parent`. O(1).
    #[track_caller]
    pub fn child_count<P: Entity, C: Entity>(&self, rel: OneToMany<P, C>, parent: Key<P>) -> usize {
        self.otm(rel).child_count(parent.raw())
    }

    /// Replaces the children of `parent` with `children`, in that order. Only the
    /// difference is unlinked and linked: children kept keep their link, new ones leave
    /// their previous parent, dropped ones lose their parent (and are deleted under a
    /// delete-orphan rule). A permutation of the current children just reorders them.
    /// All or nothing. O(old + new children), plus O(depth) per new child that has
    /// children of its own on an acyclic relation.
    ///
    /// # Errors
    ///
    /// [`LinkError::Stale`] if `parent` or a child names no live entity;
    /// [`LinkError::Duplicate`] if `children` names an entity twice; [`LinkError::Cycle`] or
    /// [`LinkError::SelfLink`] where the relation forbids a link; [`LinkError::OrphanDelete`] or
    /// [`LinkError::DeletesEndpoint`] if a dropped child's delete is refused or would delete an
    /// entity the change links. Nothing changes.
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
    /// let [a, b, c] = ["a", "b", "c"].map(|t| store.insert(Post { title: t.into() }));
    /// store.set_children(authorship, alice, &[a, b])?;
    /// store.set_children(authorship, alice, &[c, a])?; // b loses its parent; c is linked
    /// assert_eq!(store.children(authorship, alice).collect::<Vec<_>>(), [c, a]);
    /// assert_eq!(store.parent(authorship, b), None);
    /// # Ok::<(), relgraph::LinkError>(())
    /// ```
    #[track_caller]
    pub fn set_children<P: Entity, C: Entity>(
        &mut self,
        rel: OneToMany<P, C>,
        parent: Key<P>,
        children: &[Key<C>],
    ) -> Result<(), LinkError> {
        let index = self.rel_index(rel);
        let NewCollection {
            owner: p,
            order,
            dropped,
        } = self.new_collection(index, parent, children)?;
        let otm = self.otm(rel);
        // each new child with its previous parent, in this relation or elsewhere in its
        // polymorphic parent end
        let added: Vec<(RawKey, Option<(u32, RawKey)>)> = order
            .iter()
            .filter(|&&c| otm.parent_of(c) != Some(p))
            .map(|&c| {
                let old = otm.parent_of(c).map(|o| (index, o));
                (c, old.or_else(|| self.parent_elsewhere(index, c)))
            })
            .collect();
        for &(c, _) in &added {
            self.check_new_link(index, p, c)?;
        }
        let mut lost: Vec<(u32, End, RawKey)> =
            dropped.iter().map(|&c| (index, End::B, c)).collect();
        lost.extend(
            added
                .iter()
                .filter_map(|&(_, old)| old.map(|(r, o)| (r, End::A, o))),
        );
        if !dropped.is_empty() {
            lost.push((index, End::A, p));
        }
        let keep = endpoints(p, &order);
        self.change_with_orphans(index, &lost, &keep, |s| {
            for &c in &dropped {
                s.p_unlink(index, p, c);
            }
            for &(c, old) in &added {
                if let Some((r, old)) = old {
                    s.p_unlink(r, old, c);
                }
                s.p_attach(index, p, c);
            }
            let now: Vec<RawKey> = s.otm(rel).children_of(p).collect();
            if now != order {
                s.p_reorder(index, End::A, p, &order);
            }
        })
    }

    /// Validates the input of `set_children` / `set_targets`: the owner and every member
    /// alive, no member twice. Returns them with the current members the new collection
    /// drops.
    pub(crate) fn new_collection<A: Entity, B: Entity>(
        &self,
        index: u32,
        owner: Key<A>,
        members: &[Key<B>],
    ) -> Result<NewCollection, LinkError> {
        let def = &self.schema.relations[index as usize];
        let owner = self.live_at(index, End::A, def.a_table, owner)?;
        let mut wanted = KeySet::default();
        let mut order = Vec::with_capacity(members.len());
        for &m in members {
            let m = self.live_at(index, End::B, def.b_table, m)?;
            if !wanted.insert(m) {
                return Err(LinkError::Duplicate {
                    relation: def.name,
                    key: m,
                });
            }
            order.push(m);
        }
        let mut dropped = Vec::new();
        self.rel_store(index).for_each_partner(End::A, owner, |m| {
            if !wanted.contains(&m) {
                dropped.push(m);
            }
        });
        Ok(NewCollection {
            owner,
            order,
            dropped,
        })
    }
}
