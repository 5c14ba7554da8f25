//! Deletes (the preview and the plan's callers) and transactions.

use super::*;

impl Store {
    /// Deletes the entity under `key`, applying the delete rule of every relation that
    /// touches it (cascades through any depth), and unlinking every link of every deleted
    /// entity. All or nothing: a restrict rule that refuses, or a stale key, changes
    /// nothing. O(deleted entities + their links).
    ///
    /// # Errors
    ///
    /// [`RemoveError::Stale`] if `key` names no live entity, [`RemoveError::Restricted`]
    /// if a restrict rule refuses (naming the relation and the entity that blocks);
    /// nothing changes.
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
    /// # let authorship =
    /// #     schema.relate(users.many("posts").on_delete(DeleteRule::Cascade), posts.one("author"));
    /// # let mut store = Store::new(schema);
    /// let alice = store.insert(User { name: "Alice".into() });
    /// let guide = store.insert_child(authorship, alice, Post { title: "Guide".into() })?;
    /// store.remove(alice)?; // deleting a user deletes its posts (cascade)
    /// assert!(!store.contains(guide));
    /// assert!(store.remove(alice).is_err(), "a key is stale once its entity is removed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[track_caller]
    pub fn remove<T: Entity>(&mut self, key: Key<T>) -> Result<(), RemoveError> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        let plan = self.plan_remove(&[(table, raw)]);
        if let Some(e) = self.first_blocker(&plan) {
            return Err(e);
        }
        self.apply_plan(&plan);
        self.settle();
        Ok(())
    }

    /// What [`remove`](Self::remove) would delete and unlink, or what blocks it, without
    /// changing anything.
    ///
    /// # Errors
    ///
    /// [`StaleKey`] if `key` names no live entity. A delete that a restrict rule would
    /// refuse is not an error here: the preview lists its blockers.
    #[track_caller]
    pub fn preview_remove<T: Entity>(&self, key: Key<T>) -> Result<DeletePreview, StaleKey> {
        let table = self.table_of::<T>();
        let raw = self.live(table, key)?;
        Ok(self.describe_plan(&self.plan_remove(&[(table, raw)])))
    }

    // ----- transactions ---------------------------------------------------------------

    /// Runs `f` as one all-or-nothing unit: if it returns `Err` (or panics), every change
    /// it made is undone, restoring every entity, key, link, payload and order exactly.
    /// Transactions nest: an inner one that fails undoes only its own changes.
    ///
    /// Inside a transaction every change records its inverse (a removed entity is kept
    /// boxed, an update clones the old value), and to-many collections are not compacted
    /// until it ends.
    ///
    /// # Panics
    ///
    /// A panic in `f` rolls the transaction back (every change undone, the transaction
    /// closed) and then propagates. Values the transaction removed are dropped when the
    /// outermost transaction commits (or, for values it inserted, when it rolls back),
    /// after the store is complete again: if such a `Drop` panics, every other value is
    /// still dropped, exactly once, the commit or rollback has taken effect, and the first
    /// panic then propagates out of `transaction`.
    ///
    /// If `f` replaces `*store` with another store (`*s = Store::load(..)?`, to go back to
    /// the last save), the transaction ends with the store it was opened on: the new store
    /// is kept as `f` leaves it, whether `f` returns `Ok` or `Err`, and is not in a
    /// transaction. A store that `f` moves out of `*store` (`std::mem::swap`) stays in the
    /// transaction for good: do not move a store out of a transaction.
    ///
    /// ```
    /// # use relgraph::{Schema, Store};
    /// # let mut schema = Schema::new();
    /// # let _ = schema.table::<String>("names");
    /// # let mut store = Store::new(schema);
    /// let kept = store.insert("kept".to_string());
    /// let r: Result<(), &str> = store.transaction(|s| {
    ///     s.insert("gone".to_string());
    ///     s.remove(kept).unwrap();
    ///     Err("changed my mind")
    /// });
    /// assert!(r.is_err());
    /// assert_eq!(store.len::<String>(), 1);
    /// assert!(store.contains(kept));
    /// ```
    ///
    /// # Errors
    ///
    /// The `Err` that `f` returns, after every change it made is undone.
    #[track_caller]
    pub fn transaction<R, E>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, E>,
    ) -> Result<R, E> {
        self.atomic(f)
    }

    /// Whether a transaction is open.
    #[track_caller]
    pub fn in_transaction(&self) -> bool {
        self.depth > 0
    }
}
