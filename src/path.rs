//! The one mutation path.
//!
//! Every change to a store is one of the primitives below (insert, remove, update, link,
//! unlink, set payload, reorder). Each applies its change to the arenas and relation
//! indexes and, while a transaction is open, records its inverse in the log. Public
//! operations validate first and then call primitives; a cascade is a sequence of
//! primitives; rollback replays inverses in reverse order. No other code mutates storage.

use std::panic::resume_unwind;

use crate::arena::Column;
use crate::feed::Origin;
use crate::grave::{Boxed, Grave, Panic};
use crate::index::{Ids, IndexError};
use crate::key::RawKey;
use crate::relation::RelationStore;
use crate::schema::{End, Entity};
use crate::store::Store;

/// An open savepoint: the store it was opened on, its depth, and the log position to roll
/// back to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Savepoint {
    instance: u64,
    depth: u32,
    mark: usize,
}

/// The inverse of one primitive, as recorded in the transaction log.
pub(crate) enum Undo {
    /// Undoes an insert.
    Remove { table: u32, key: RawKey },
    /// Undoes a remove whose value waits in the table's vault (`ErasedArena::remove_vault`):
    /// the vault's values are in the order of these entries in the log, so the newest
    /// entry's value is the vault's newest.
    Vaulted { table: u32, key: RawKey },
    /// Undoes a remove: the value goes back under its old key.
    Restore {
        table: u32,
        key: RawKey,
        value: Boxed,
    },
    /// Undoes an update.
    Replace {
        table: u32,
        key: RawKey,
        value: Boxed,
    },
    /// Undoes a link. `at`: the link was put at given positions (an undo or redo of an
    /// unlink), not appended, so the order of its lists changed too.
    Unlink {
        rel: u32,
        a: RawKey,
        b: RawKey,
        at: bool,
    },
    /// Undoes an unlink: the link goes back at its old positions, with its payload.
    Relink {
        rel: u32,
        a: RawKey,
        b: RawKey,
        pos_a: u32,
        pos_b: u32,
        payload: Option<Boxed>,
    },
    /// Undoes a swap of a kind's row at `pos` with its last row (a swap is its own
    /// inverse): the second half of putting a removed kind row back in its old place
    /// when an undo or redo is recorded (inserted last, then swapped).
    Swap { table: u32, pos: u32 },
    /// Undoes a payload change.
    Payload {
        rel: u32,
        a: RawKey,
        b: RawKey,
        value: Boxed,
    },
    /// Undoes a change of an entity's key in a secondary index: the key it had (`None`:
    /// none). Logged after the primitive's own inverse, so applied before it.
    Index {
        index: u32,
        ent: crate::index::Ent,
        key: Option<Boxed>,
    },
    /// Undoes a reorder: the partners of `key` at `end`, holes included, as they were.
    /// `logical`: the order of the partners changed (false for a compaction, which only
    /// closes holes).
    Order {
        rel: u32,
        end: End,
        key: RawKey,
        partners: Vec<Option<RawKey>>,
        logical: bool,
    },
}

impl Store {
    /// Whether inverses are being recorded: a transaction is open, or the store keeps a
    /// history or a change feed (then every call records, and its log becomes a history
    /// step and a feed batch when it ends). While they are recorded, a list is compacted
    /// only through [`p_compact`](Self::p_compact), which logs the holes it closes, so
    /// that an inverse finds every position as it left it.
    #[inline]
    pub(crate) fn recording(&self) -> bool {
        self.rec
    }

    /// Whether the log is kept past the end of each call (history or feed on).
    #[inline]
    pub(crate) fn tracking(&self) -> bool {
        self.history.is_some() || self.feed.is_some()
    }

    #[inline]
    fn record(&mut self, undo: impl FnOnce() -> Undo) {
        if self.rec {
            self.log.push(undo());
        }
    }

    /// Recomputes [`recording`](Self::recording) after the depth or the tracking changed.
    pub(crate) fn update_recording(&mut self) {
        self.rec = self.depth > 0 || self.tracking();
    }

    #[inline]
    pub(crate) fn arena_at<T: Entity>(&self, table: u32) -> &Column<T> {
        crate::arena::column(&self.tables, table)
    }

    #[inline]
    pub(crate) fn arena_at_mut<T: Entity>(&mut self, table: u32) -> &mut Column<T> {
        crate::arena::column_mut(&mut self.tables, table)
    }

    /// Inserts into a plain table or a polymorphic base: a fresh key. Always inlined, as
    /// [`p_attach`](Self::p_attach).
    #[inline(always)]
    pub(crate) fn p_insert<T: Entity>(&mut self, table: u32, value: T) -> RawKey {
        if self.ix.on_table(table) {
            return self.p_insert_indexed(table, value);
        }
        let key = self
            .arena_at_mut::<T>(table)
            .slots_mut()
            .expect("a kind row is inserted under its base row's key")
            .insert(value);
        self.record(|| Undo::Remove { table, key });
        key
    }

    /// [`p_insert`](Self::p_insert) into an indexed table: the keys are staged (and
    /// checked) before the row goes in. Out of line, so that the plain path stays as it
    /// was.
    #[inline(never)]
    fn p_insert_indexed<T: Entity>(&mut self, table: u32, value: T) -> RawKey {
        self.ix_stage_or_panic(Ids::Rows(table), &value, None);
        let key = self
            .arena_at_mut::<T>(table)
            .slots_mut()
            .expect("a kind row is inserted under its base row's key")
            .insert(value);
        self.record(|| Undo::Remove { table, key });
        self.ix_commit(Ids::Rows(table), (key, key));
        key
    }

    /// Inserts a kind row under its base row's (new) key.
    #[inline]
    pub(crate) fn p_insert_at<T: Entity>(&mut self, table: u32, key: RawKey, value: T) {
        if self.ix.on_table(table) {
            return self.p_insert_at_indexed(table, key, value);
        }
        self.arena_at_mut::<T>(table).insert_at(key, value);
        self.record(|| Undo::Remove { table, key });
    }

    /// [`p_insert_at`](Self::p_insert_at) into an indexed kind, out of line.
    #[inline(never)]
    fn p_insert_at_indexed<T: Entity>(&mut self, table: u32, key: RawKey, value: T) {
        self.ix_stage_or_panic(Ids::Rows(table), &value, None);
        self.arena_at_mut::<T>(table).insert_at(key, value);
        self.record(|| Undo::Remove { table, key });
        self.ix_commit(Ids::Rows(table), (key, key));
    }

    /// Removes an entity that has no links left. Outside a transaction its value waits in
    /// the table's grave until the call ends (see `grave.rs`).
    pub(crate) fn p_remove(&mut self, table: u32, key: RawKey) {
        if self.recording() {
            let removed = self.tables[table as usize].remove_vault(key);
            debug_assert!(removed, "removing a live entity");
            self.log.push(Undo::Vaulted { table, key });
        } else {
            let t = &mut self.tables[table as usize];
            self.graves.dirty |= t.needs_drop();
            t.remove_defer(key);
        }
        if !self.leaf[table as usize] {
            // (a leaf's one relation keeps nothing at its child end)
            self.forget_lists(table, key);
        }
        if self.ix.on_table(table) {
            self.ix_remove(Ids::Rows(table), (key, key));
        }
    }

    /// Disowns the (empty) relation lists of a removed entity.
    fn forget_lists(&mut self, table: u32, key: RawKey) {
        for &(rel, end) in &self.touching[table as usize] {
            self.relations[rel as usize].forget(end, key);
        }
    }

    /// Replaces the value under `key`; the old one is kept boxed for a rollback.
    pub(crate) fn p_replace<T: Entity>(&mut self, table: u32, key: RawKey, value: T) {
        if self.ix.on_table(table) {
            self.ix_stage_or_panic(Ids::Rows(table), &value, Some((key, key)));
        }
        let old = self.tables[table as usize].replace_boxed(key, Box::new(value));
        if self.recording() {
            self.log.push(Undo::Replace {
                table,
                key,
                value: old,
            });
        }
        if self.ix.on_table(table) {
            self.ix_commit(Ids::Rows(table), (key, key));
        }
    }

    /// Replaces the value under `key` with a boxed one of the table's type.
    pub(crate) fn p_replace_boxed(&mut self, table: u32, key: RawKey, value: Boxed) {
        let indexed = self.ix.on_table(table);
        if indexed {
            self.ix_stage_or_panic(Ids::Rows(table), &*value, Some((key, key)));
        }
        self.swap_boxed(table, key, value, self.recording());
        if indexed {
            self.ix_commit(Ids::Rows(table), (key, key));
        }
    }

    /// Replaces the value under `key` with a boxed one; the old value is logged (with
    /// `record`) or goes to the graves.
    fn swap_boxed(&mut self, table: u32, key: RawKey, value: Boxed, record: bool) {
        let old = self.tables[table as usize].replace_boxed(key, value);
        if record {
            self.log.push(Undo::Replace {
                table,
                key,
                value: old,
            });
        } else {
            self.graves.boxed(old);
        }
    }

    /// Swaps a kind's row at `pos` with its last row (a replica putting a row back in
    /// its old place, as the undo or redo it follows did).
    pub(crate) fn p_swap(&mut self, table: u32, pos: u32) {
        self.tables[table as usize].swap_last(pos as usize);
        self.record(|| Undo::Swap { table, pos });
    }

    /// Logs the insert of a row put in place by other means (a replica's decoded row).
    pub(crate) fn log_insert(&mut self, table: u32, key: RawKey) {
        self.record(|| Undo::Remove { table, key });
    }

    /// Replaces the payload of the existing many-to-many link (a, b) with a boxed one.
    pub(crate) fn p_set_payload_boxed(&mut self, rel: u32, a: RawKey, b: RawKey, w: Boxed) {
        let indexed = self.ix.on_rel(rel);
        if indexed {
            self.ix_stage_or_panic(Ids::Links(rel), &*w, Some((a, b)));
        }
        self.swap_payload_boxed(rel, a, b, w, self.recording());
        if indexed {
            self.ix_commit(Ids::Links(rel), (a, b));
        }
    }

    /// Replaces the payload of the link (a, b) with a boxed one; the old payload is logged
    /// (with `record`) or goes to the graves.
    fn swap_payload_boxed(&mut self, rel: u32, a: RawKey, b: RawKey, w: Boxed, record: bool) {
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        let index = r.link_index(a, b).expect("the link exists");
        let old = r.payloads.replace_boxed(index, w);
        if record {
            self.log.push(Undo::Payload {
                rel,
                a,
                b,
                value: old,
            });
        } else {
            self.graves.boxed(old);
        }
    }

    /// Logs the inverse of putting a removed row back: its removal, and the swap that put
    /// a kind row back before the end of its kind's order (`placed`).
    fn log_restored(&mut self, table: u32, key: RawKey, placed: Option<u32>) {
        self.log.push(Undo::Remove { table, key });
        if let Some(pos) = placed {
            self.log.push(Undo::Swap { table, pos });
        }
    }

    /// Drops every vaulted value: at depth 0 with history off (or switched off), they all
    /// belong to the log just closed.
    pub(crate) fn clear_vaults(&mut self, first: &mut Option<Panic>) {
        for t in &mut self.tables {
            if t.vault_len() > 0 {
                t.clear_vault(first);
            }
        }
    }

    pub(crate) fn p_update<T: Entity + Clone, R>(
        &mut self,
        table: u32,
        key: RawKey,
        f: impl FnOnce(&mut T) -> R,
    ) -> Option<R> {
        if self.ix.on_table(table) {
            return self
                .p_update_indexed(table, key, f)
                .unwrap_or_else(|e| crate::index::refused(e));
        }
        let recording = self.recording();
        let value = crate::arena::column_mut::<T>(&mut self.tables, table).get_mut(key)?;
        // logged before `f` runs, so that a rollback after a panic inside `f` undoes
        // whatever `f` changed before it panicked
        if recording {
            self.log.push(Undo::Replace {
                table,
                key,
                value: Box::new(value.clone()),
            });
        }
        Some(f(value))
    }

    /// [`p_update`](Self::p_update) of a row of an indexed table: `f` changes a clone,
    /// whose keys are computed and checked before it replaces the row. A panic in `f` or
    /// a key closure, or a refused key, leaves the row and the indexes as they were.
    pub(crate) fn p_update_indexed<T: Entity + Clone, R>(
        &mut self,
        table: u32,
        key: RawKey,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<Option<R>, IndexError> {
        let Some(value) = self.arena_at::<T>(table).get(key) else {
            return Ok(None);
        };
        let mut new = value.clone();
        let r = f(&mut new);
        self.ix_stage(Ids::Rows(table), &new, Some((key, key)))?;
        let slot = self
            .arena_at_mut::<T>(table)
            .get_mut(key)
            .expect("the row is live");
        let old = std::mem::replace(slot, new);
        if self.rec {
            self.log.push(Undo::Replace {
                table,
                key,
                value: Box::new(old),
            });
            self.ix_commit(Ids::Rows(table), (key, key));
        } else {
            self.ix_commit(Ids::Rows(table), (key, key));
            // the change is complete: a panic of this `Drop` propagates after it
            drop(old);
        }
        Ok(Some(r))
    }

    /// Links `a` and `b` in a one-to-many or one-to-one whose ends are free (`b` has no
    /// parent; for a one-to-one, neither has a partner). Always inlined: a call and its
    /// frame cost as much as the link (W1 one call at a time: 50.0M -> 45.7M instructions
    /// with the arena's insert and `set_parent` inlined too).
    #[inline(always)]
    pub(crate) fn p_attach(&mut self, rel: u32, a: RawKey, b: RawKey) {
        match &mut self.relations[rel as usize] {
            RelationStore::OneToMany(r) => {
                r.attach(a, b);
            }
            RelationStore::OneToOne(r) => r.attach(a, b),
            RelationStore::ManyToMany(_) => unreachable!("many-to-many links carry a payload"),
        }
        self.record(|| Undo::Unlink {
            rel,
            a,
            b,
            at: false,
        });
    }

    /// Adds the many-to-many link (a, b) with a typed payload; if the pair is linked
    /// already, replaces its payload instead. One pair lookup either way.
    pub(crate) fn p_attach_with<W: Entity>(&mut self, rel: u32, a: RawKey, b: RawKey, w: W) {
        if self.ix.on_rel(rel) {
            self.ix_stage_or_panic(Ids::Links(rel), &w, Some((a, b)));
            self.p_attach_with_inner(rel, a, b, w);
            self.ix_commit(Ids::Links(rel), (a, b));
        } else {
            self.p_attach_with_inner(rel, a, b, w);
        }
    }

    #[inline]
    fn p_attach_with_inner<W: Entity>(&mut self, rel: u32, a: RawKey, b: RawKey, w: W) {
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        match r.attach(a, b) {
            Ok(_) => {
                payloads_mut::<W>(r).push(w);
                self.record(|| Undo::Unlink {
                    rel,
                    a,
                    b,
                    at: false,
                });
            }
            Err(index) => {
                let old = std::mem::replace(&mut payloads_mut::<W>(r)[index], w);
                if self.recording() {
                    self.log.push(Undo::Payload {
                        rel,
                        a,
                        b,
                        value: Box::new(old),
                    });
                } else {
                    // dropped when the call ends, not in the middle of a bulk link
                    let grave = self.graves.payloads(rel, std::mem::needs_drop::<W>());
                    crate::grave::defer(grave, old);
                }
            }
        }
    }

    /// Adds the many-to-many link (a, b) with a boxed payload unless the pair is linked
    /// already (then nothing changes). One pair lookup either way.
    pub(crate) fn p_attach_boxed(&mut self, rel: u32, a: RawKey, b: RawKey, w: Boxed) {
        // an indexed relation stages the new link's key first (a linked pair keeps its
        // payload: nothing to stage)
        let indexed = self.ix.on_rel(rel) && !self.relations[rel as usize].linked(a, b);
        if indexed {
            self.ix_stage_or_panic(Ids::Links(rel), &*w, Some((a, b)));
        }
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        if r.attach(a, b).is_ok() {
            r.payloads.push_boxed(w);
            self.record(|| Undo::Unlink {
                rel,
                a,
                b,
                at: false,
            });
            if indexed {
                self.ix_commit(Ids::Links(rel), (a, b));
            }
        } else if self.recording() && !w.is::<()>() {
            // the unused payload's `Drop` is user code: inside a savepoint (`link_all`, a
            // transaction) it waits for the savepoint's end, so that it cannot stop the
            // call halfway; outside, nothing changed and it is dropped here
            self.graves.boxed(w);
        }
    }

    /// Unlinks `a` and `b`; false if they were not linked.
    pub(crate) fn p_unlink(&mut self, rel: u32, a: RawKey, b: RawKey) -> bool {
        let recording = self.recording();
        let undo = match &mut self.relations[rel as usize] {
            RelationStore::OneToMany(r) => {
                if r.parent_of(b) != Some(a) {
                    return false;
                }
                let (_, pos) = r.detach(b, !recording).expect("child has a parent");
                (pos, 0, None)
            }
            RelationStore::OneToOne(r) => {
                if !r.detach(a, b) {
                    return false;
                }
                (0, 0, None)
            }
            RelationStore::ManyToMany(r) => {
                let drops = r.payloads.needs_drop();
                let grave = (!recording).then(|| self.graves.payloads(rel, drops));
                match r.detach(a, b, !recording, grave) {
                    Some(undo) => undo,
                    None => return false,
                }
            }
        };
        if self.ix.on_rel(rel) {
            self.ix_remove(Ids::Links(rel), (a, b));
        }
        if recording {
            self.log.push(Undo::Relink {
                rel,
                a,
                b,
                pos_a: undo.0,
                pos_b: undo.1,
                payload: undo.2,
            });
            self.p_compact(rel, End::A, a);
            if let RelationStore::ManyToMany(_) = &self.relations[rel as usize] {
                self.p_compact(rel, End::B, b);
            }
        }
        true
    }

    /// Unlinks the many-to-many pair (a, b) and hands back its payload (one pair lookup);
    /// `None` if they were not linked. While recording, the log keeps a clone of it.
    pub(crate) fn p_unlink_take<W: Entity + Clone>(
        &mut self,
        rel: u32,
        a: RawKey,
        b: RawKey,
    ) -> Option<W> {
        let recording = self.recording();
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        let index = r.link_index(a, b)?;
        // the clone is user code: made before anything changes, so that its panic leaves
        // the link in place
        let kept = recording.then(|| payloads::<W>(r)[index].clone());
        let w = payloads_mut::<W>(r).swap_remove(index);
        let (pos_a, pos_b) = r.detach_index(index, a, b, !recording);
        if self.ix.on_rel(rel) {
            self.ix_remove(Ids::Links(rel), (a, b));
        }
        if let Some(payload) = kept {
            self.log.push(Undo::Relink {
                rel,
                a,
                b,
                pos_a,
                pos_b,
                payload: Some(Box::new(payload)),
            });
            self.p_compact(rel, End::A, a);
            self.p_compact(rel, End::B, b);
        }
        Some(w)
    }

    /// Closes the holes of the list of `key` at `end` when they outnumber its links,
    /// logging the list as it was (holes included). Only while recording: otherwise
    /// `detach` compacts by itself. Amortised O(1) per unlink, as unlogged compaction.
    fn p_compact(&mut self, rel: u32, end: End, key: RawKey) {
        if !self.relations[rel as usize].wants_compaction(end, key) {
            return;
        }
        let old = self.raw_order(rel, end, key);
        let packed = old.iter().flatten().map(|&k| Some(k)).collect();
        self.set_raw_order(rel, end, key, packed);
        self.log.push(Undo::Order {
            rel,
            end,
            key,
            partners: old,
            logical: false,
        });
    }

    /// Unlinks every child of `parent` in the one-to-many `rel` at once (the list keeps
    /// its owner and is left empty). The same as unlinking them one by one, last first.
    pub(crate) fn p_unlink_children(&mut self, rel: u32, parent: RawKey) {
        let r = self.relations[rel as usize].one_to_many_mut();
        let recording = self.rec;
        let log = &mut self.log;
        r.detach_all(parent, |child, pos| {
            if recording {
                log.push(Undo::Relink {
                    rel,
                    a: parent,
                    b: child,
                    pos_a: pos,
                    pos_b: 0,
                    payload: None,
                });
            }
        });
    }

    /// Changes the payload of an existing many-to-many link in place.
    pub(crate) fn p_update_payload<W: Entity + Clone, R>(
        &mut self,
        rel: u32,
        a: RawKey,
        b: RawKey,
        f: impl FnOnce(&mut W) -> R,
    ) -> Option<R> {
        if self.ix.on_rel(rel) {
            return self
                .p_update_payload_indexed(rel, a, b, f)
                .unwrap_or_else(|e| crate::index::refused(e));
        }
        let recording = self.recording();
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        let index = r.link_index(a, b)?;
        let w = &mut payloads_mut::<W>(r)[index];
        // logged before `f` runs, as in `p_update`
        if recording {
            self.log.push(Undo::Payload {
                rel,
                a,
                b,
                value: Box::new(w.clone()),
            });
        }
        Some(f(w))
    }

    /// [`p_update_payload`](Self::p_update_payload) on an indexed relation: as
    /// [`p_update_indexed`](Self::p_update_indexed), for the payload.
    pub(crate) fn p_update_payload_indexed<W: Entity + Clone, R>(
        &mut self,
        rel: u32,
        a: RawKey,
        b: RawKey,
        f: impl FnOnce(&mut W) -> R,
    ) -> Result<Option<R>, IndexError> {
        let RelationStore::ManyToMany(r) = &self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        let Some(index) = r.link_index(a, b) else {
            return Ok(None);
        };
        let mut new = payloads::<W>(r)[index].clone();
        let out = f(&mut new);
        self.ix_stage(Ids::Links(rel), &new, Some((a, b)))?;
        let RelationStore::ManyToMany(r) = &mut self.relations[rel as usize] else {
            unreachable!("payload on a relation that is not many-to-many")
        };
        let old = std::mem::replace(&mut payloads_mut::<W>(r)[index], new);
        if self.rec {
            self.log.push(Undo::Payload {
                rel,
                a,
                b,
                value: Box::new(old),
            });
            self.ix_commit(Ids::Links(rel), (a, b));
        } else {
            self.ix_commit(Ids::Links(rel), (a, b));
            drop(old);
        }
        Ok(Some(out))
    }

    /// Rewrites the order of the partners of `key` (at `end`) to `order`, which must be a
    /// permutation of them.
    pub(crate) fn p_reorder(&mut self, rel: u32, end: End, key: RawKey, order: &[RawKey]) {
        let old = self.raw_order(rel, end, key);
        let items = order.iter().map(|&k| Some(k)).collect();
        self.set_raw_order(rel, end, key, items);
        self.record(|| Undo::Order {
            rel,
            end,
            key,
            partners: old,
            logical: true,
        });
    }

    fn raw_order(&self, rel: u32, end: End, key: RawKey) -> Vec<Option<RawKey>> {
        match &self.relations[rel as usize] {
            RelationStore::OneToMany(r) => r.raw_order(key),
            RelationStore::ManyToMany(r) => r
                .raw_order(end, key)
                .into_iter()
                .map(|e| e.map(|(p, _)| p))
                .collect(),
            RelationStore::OneToOne(_) => unreachable!("one-to-one ends have no order"),
        }
    }

    fn set_raw_order(&mut self, rel: u32, end: End, key: RawKey, items: Vec<Option<RawKey>>) {
        match &mut self.relations[rel as usize] {
            RelationStore::OneToMany(r) => r.set_order(key, items),
            RelationStore::ManyToMany(r) => {
                let entries = items
                    .into_iter()
                    .map(|p| {
                        p.map(|p| {
                            let (a, b) = if end == End::A { (key, p) } else { (p, key) };
                            (p, r.link_index(a, b).expect("reordered link exists") as u32)
                        })
                    })
                    .collect();
                r.set_order(end, key, entries);
            }
            RelationStore::OneToOne(_) => unreachable!("one-to-one ends have no order"),
        }
    }

    /// Opens a savepoint.
    pub(crate) fn begin(&mut self) -> Savepoint {
        self.depth += 1;
        self.rec = true;
        Savepoint {
            instance: self.instance,
            depth: self.depth,
            mark: self.log.len(),
        }
    }

    /// Whether `sp` is the innermost open savepoint of this store: false if the store was
    /// replaced (`*store = other`) since it was opened.
    fn owns(&self, sp: Savepoint) -> bool {
        self.instance == sp.instance && self.depth == sp.depth && self.log.len() >= sp.mark
    }

    /// Keeps the changes since the savepoint and closes it; the outermost commit drops the
    /// values the log kept. Returns the first panic of such a `Drop` (the commit has taken
    /// effect). Does nothing if the store was replaced since `sp` was opened.
    pub(crate) fn commit(&mut self, sp: Savepoint) -> Option<Panic> {
        if !self.owns(sp) {
            return None;
        }
        self.depth -= 1;
        if self.depth > 0 {
            return None;
        }
        self.update_recording();
        let mut first = self.close_log();
        if let Some(p) = self.graves.bury(&mut self.tables) {
            first.get_or_insert(p);
        }
        first
    }

    /// Undoes every change since the savepoint and closes it. The values the undone
    /// changes removed are dropped after the whole rollback; returns the first panic of
    /// such a `Drop` (the rollback is complete). Does nothing if the store was replaced
    /// since `sp` was opened.
    pub(crate) fn rollback(&mut self, sp: Savepoint) -> Option<Panic> {
        if !self.owns(sp) {
            return None;
        }
        while self.log.len() > sp.mark {
            let undo = self.log.pop().expect("log longer than mark");
            self.revert(undo, false);
        }
        self.depth -= 1;
        if self.depth == 0 {
            self.update_recording();
            self.label = None;
        }
        self.graves.bury(&mut self.tables)
    }

    /// Runs `f` in a savepoint that only a panic rolls back (a bulk call going one
    /// primitive at a time, all or nothing).
    pub(crate) fn atomic_or_panic<R>(&mut self, f: impl FnOnce(&mut Store) -> R) -> R {
        let Ok(out) = self.atomic(|s| Ok::<R, std::convert::Infallible>(f(s)));
        out
    }

    /// Runs `f` in a savepoint: commits if it returns `Ok`, rolls back if it returns `Err`
    /// or panics. The savepoint is closed whatever happens, so the store's transaction
    /// depth is right after a panic too.
    pub(crate) fn atomic<R, E>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, E>,
    ) -> Result<R, E> {
        struct Guard<'a> {
            store: &'a mut Store,
            sp: Savepoint,
            armed: bool,
        }
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if self.armed {
                    // unwinding already: a panic of a `Drop` during the rollback is dropped
                    let _ = self.store.rollback(self.sp);
                }
            }
        }
        let sp = self.begin();
        let mut guard = Guard {
            store: self,
            sp,
            armed: true,
        };
        let out = f(&mut *guard.store);
        guard.armed = false;
        let panic = match &out {
            Ok(_) => guard.store.commit(sp),
            Err(_) => guard.store.rollback(sp),
        };
        if let Some(p) = panic {
            resume_unwind(p);
        }
        out
    }

    /// Drops the values removed by the call that is ending (outside a transaction they wait
    /// in the graves until the store is consistent), and resumes the first panic of their
    /// `Drop`.
    /// Outside a transaction, also closes the call's log (history or feed on): it becomes
    /// a history step and a feed batch. Every public call that changes the store ends here.
    #[inline]
    pub(crate) fn settle(&mut self) {
        // inside a transaction, values wait for the outermost commit or rollback
        if self.depth != 0 {
            return;
        }
        if self.log.len() > self.kept {
            self.close_call();
        } else if self.graves.dirty {
            self.settle_slow();
        }
    }

    /// Closes the log of a call (history or feed on). The common case with history on, a
    /// step that needs nothing but a push, takes a few instructions.
    #[inline]
    fn close_call(&mut self) {
        if !self.graves.dirty && self.feed.is_none() && self.label.is_none() {
            if let Some(h) = self.history.as_deref_mut() {
                if h.push_quick(self.kept) {
                    self.kept = self.log.len();
                    if h.needs_free() {
                        self.free_history();
                    }
                    return;
                }
            }
        }
        self.settle_slow();
    }

    /// [`settle`](Self::settle) for a call that puts nothing in the graves unless it
    /// records (`insert`, `link`): one flag to test when history and feed are off.
    #[inline(always)]
    pub(crate) fn settle_recorded(&mut self) {
        if self.rec {
            self.settle();
        }
    }

    /// Frees the history's dropped steps, resuming the first panic of a `Drop`.
    #[cold]
    #[inline(never)]
    fn free_history(&mut self) {
        let h = self.history.as_deref_mut().expect("history on");
        let first = h.free_dropped(&mut self.log, &mut self.tables);
        self.kept = self.log.len();
        if let Some(p) = first {
            resume_unwind(p);
        }
    }

    #[cold]
    fn settle_slow(&mut self) {
        let mut first = None;
        if self.log.len() > self.kept {
            first = self.close_log();
        }
        if self.graves.dirty {
            if let Some(p) = self.graves.bury(&mut self.tables) {
                first.get_or_insert(p);
            }
        }
        if let Some(p) = first {
            resume_unwind(p);
        }
    }

    /// Ends the log of a committed top-level transaction or call: a history step and a
    /// feed batch when those are on, else its kept values are dropped. Returns the first
    /// panic of a `Drop`.
    #[inline]
    pub(crate) fn close_log(&mut self) -> Option<Panic> {
        let label = self.label.take();
        let start = self.kept;
        if self.log.len() == start {
            return None;
        }
        if self.feed.is_some() {
            let batch =
                crate::feed::derive(self, &self.log[start..], Origin::Commit, label.clone());
            self.feed.as_deref_mut().expect("feed on").push(batch);
        }
        match self.history.as_deref_mut() {
            // the entries stay in the log: they are the new step
            Some(h) => {
                let first = h.close(&mut self.log, &mut self.tables, start, label);
                self.kept = self.log.len();
                first
            }
            None => {
                let mut log = std::mem::take(&mut self.log);
                let mut first = log.drain_quietly();
                self.log = log;
                self.clear_vaults(&mut first);
                first
            }
        }
    }

    /// Applies one inverse. With `record`, logs the inverse of what it does (so that an
    /// undone history step yields its redo step, and a redone one its undo step) and keeps
    /// every value it takes out in that log; without, values go to the graves (rollback).
    pub(crate) fn revert(&mut self, undo: Undo, record: bool) {
        match undo {
            Undo::Remove { table, key } => {
                if record {
                    // the entity was inserted by the step: its lists are empty again
                    let value = self.tables[table as usize]
                        .remove_boxed(key)
                        .expect("reverting an insert of a live entity");
                    self.log.push(Undo::Restore { table, key, value });
                } else {
                    let t = &mut self.tables[table as usize];
                    self.graves.dirty |= t.needs_drop();
                    t.remove_defer(key);
                }
                self.forget_lists(table, key);
            }
            Undo::Restore { table, key, value } => {
                let placed = self.tables[table as usize].restore_boxed(key, value);
                if record {
                    self.log_restored(table, key, placed);
                }
            }
            Undo::Vaulted { table, key } => {
                let placed = self.tables[table as usize].restore_vault(key);
                if record {
                    self.log_restored(table, key, placed);
                }
            }
            Undo::Swap { table, pos } => {
                self.tables[table as usize].swap_last(pos as usize);
                if record {
                    self.log.push(Undo::Swap { table, pos });
                }
            }
            Undo::Replace { table, key, value } => self.swap_boxed(table, key, value, record),
            Undo::Unlink { rel, a, b, .. } if record => {
                let unlinked = self.p_unlink(rel, a, b);
                debug_assert!(unlinked, "reverting a link that exists");
            }
            Undo::Unlink { rel, a, b, .. } => match &mut self.relations[rel as usize] {
                RelationStore::OneToMany(r) => {
                    r.detach(b, false);
                }
                RelationStore::OneToOne(r) => {
                    r.detach(a, b);
                }
                RelationStore::ManyToMany(r) => {
                    let drops = r.payloads.needs_drop();
                    r.detach(a, b, false, Some(self.graves.payloads(rel, drops)));
                }
            },
            Undo::Relink {
                rel,
                a,
                b,
                pos_a,
                pos_b,
                payload,
            } => {
                match &mut self.relations[rel as usize] {
                    RelationStore::OneToMany(r) => r.attach_at(a, b, pos_a),
                    RelationStore::OneToOne(r) => r.attach(a, b),
                    RelationStore::ManyToMany(r) => {
                        let payload = payload.expect("many-to-many unlink keeps its payload");
                        r.attach_at(a, b, pos_a, pos_b, payload)
                    }
                }
                if record {
                    self.log.push(Undo::Unlink {
                        rel,
                        a,
                        b,
                        at: true,
                    });
                }
            }
            Undo::Payload { rel, a, b, value } => self.swap_payload_boxed(rel, a, b, value, record),
            Undo::Index { index, ent, key } => self.ix_revert(index, ent, key, record),
            Undo::Order {
                rel,
                end,
                key,
                partners,
                logical,
            } => {
                if record {
                    let old = self.raw_order(rel, end, key);
                    self.log.push(Undo::Order {
                        rel,
                        end,
                        key,
                        partners: old,
                        logical,
                    });
                }
                self.set_raw_order(rel, end, key, partners)
            }
        }
    }
}

pub(crate) fn payloads<W: Entity>(r: &crate::relation::ManyToManyStore) -> &Vec<W> {
    &r.payloads
        .as_any()
        .downcast_ref::<crate::relation::PayloadVec<W>>()
        .expect("payloads of the relation's type")
        .0
}

pub(crate) fn payloads_mut<W: Entity>(r: &mut crate::relation::ManyToManyStore) -> &mut Vec<W> {
    &mut r
        .payloads
        .as_any_mut()
        .downcast_mut::<crate::relation::PayloadVec<W>>()
        .expect("payloads of the relation's type")
        .0
}

/// Dropping the log's entries (which hold removed rows and payloads) one by one, whatever
/// their `Drop` does.
trait DrainQuietly {
    /// Empties the log, keeping its capacity; returns the first panic of a `Drop`.
    fn drain_quietly(&mut self) -> Option<Panic>;
}

impl DrainQuietly for Vec<Undo> {
    fn drain_quietly(&mut self) -> Option<Panic> {
        if self.is_empty() {
            return None;
        }
        let mut first = None;
        self.bury(&mut first);
        first
    }
}
