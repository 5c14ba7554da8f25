//! History: undo and redo of committed work, built on the transaction log.
//!
//! While history is on, every call records the inverses of its primitives (as a
//! transaction does), and when a top-level transaction commits or a call outside one ends,
//! its log becomes a step. Undoing a step applies its inverses newest first through the
//! one mutation path, which records the inverse of each in turn: that record is the redo
//! step, and redoing it records the undo step again. Every change a call makes (cascades,
//! orphan deletes, kind changes) is a primitive, so every change is undone by construction;
//! removed entities come back under their old keys, links at their old positions, with
//! their payloads.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::arena::ErasedArena;
use crate::feed::Origin;
use crate::grave::Panic;
use crate::path::Undo;
use crate::store::Store;

/// Drops one entry; a value it holds may run user code (`Drop`), whose panic is kept in
/// `first` (entries without a value drop without a guard).
#[inline]
fn drop_quietly(undo: Undo, first: &mut Option<Panic>) {
    match undo {
        // nothing to free: skip the drop glue
        Undo::Remove { .. }
        | Undo::Unlink { .. }
        | Undo::Swap { .. }
        | Undo::Relink { payload: None, .. } => std::mem::forget(undo),
        Undo::Order { .. } => drop(undo),
        _ => drop_guarded(undo, first),
    }
}

#[cold]
#[inline(never)]
fn drop_guarded(undo: Undo, first: &mut Option<Panic>) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| drop(undo))) {
        first.get_or_insert(p);
    }
}

/// The redo steps: their entries end to end, and each step's entry count and label.
#[derive(Default)]
struct RedoSteps {
    entries: Vec<Undo>,
    steps: Vec<(usize, Option<Arc<str>>)>,
}

impl RedoSteps {
    fn clear(&mut self) -> Option<Panic> {
        self.steps.clear();
        let mut first = None;
        for undo in self.entries.drain(..) {
            drop_quietly(undo, &mut first);
        }
        first
    }
}

/// The history of a store. The undo steps' entries stay where they were recorded, at the
/// start of the store's log (`log[..Store::kept]`): closing a step is one push of its
/// start. Steps past the limit are dropped logically at once (no longer undoable) and
/// freed in batches of `slack` (twice the limit) steps, so that dropping costs O(1)
/// amortised per entry (an entry is moved half a time on average when an older batch is
/// freed); at most `limit + slack` steps are held.
pub(crate) struct History {
    limit: usize,
    /// Start in the log and label of every step held, oldest first.
    steps: Vec<(usize, Option<Arc<str>>)>,
    /// Number of the oldest steps that are dropped (not undoable) but not yet freed.
    dropped: usize,
    redo: RedoSteps,
    /// An open group: its label, and whether its step exists yet.
    group: Option<(Option<Arc<str>>, bool)>,
}

impl History {
    fn slack(&self) -> usize {
        (2 * self.limit).max(16)
    }

    /// Makes the log's entries from `start` on a step (or part of the open group's
    /// step), drops the redo branch and, past the limit, the oldest steps. Returns the
    /// first panic of a `Drop` of a dropped value. May free the oldest entries of the
    /// log: the caller then takes the log's new length as the history's end.
    #[inline]
    pub(crate) fn close(
        &mut self,
        log: &mut Vec<Undo>,
        tables: &mut [Box<dyn ErasedArena>],
        start: usize,
        label: Option<Arc<str>>,
    ) -> Option<Panic> {
        let mut first = None;
        if !self.redo.steps.is_empty() {
            first = self.redo.clear();
        }
        match &mut self.group {
            Some((_, true)) => {} // the group's step grows
            Some((group_label, started)) => {
                *started = true;
                let label = group_label.clone().or(label);
                self.steps.push((start, label));
            }
            None => self.steps.push((start, label)),
        }
        if let Some(p) = self.trim(log, tables) {
            first.get_or_insert(p);
        }
        first
    }

    /// Makes the log's entries from `start` on a step, as [`close`](Self::close) does,
    /// when that needs nothing but a push: no redo steps to drop and no group open.
    /// Returns false (nothing done) otherwise. The caller frees dropped steps when
    /// [`needs_free`](Self::needs_free) says so.
    #[inline]
    pub(crate) fn push_quick(&mut self, start: usize) -> bool {
        if !self.redo.steps.is_empty() || self.group.is_some() {
            return false;
        }
        self.steps.push((start, None));
        self.drop_past_limit();
        true
    }

    /// Marks the steps past the limit dropped (no longer undoable).
    #[inline]
    fn drop_past_limit(&mut self) {
        if self.steps.len() - self.dropped > self.limit {
            self.dropped = self.steps.len() - self.limit;
        }
    }

    /// Whether enough dropped steps wait to be freed.
    #[inline]
    pub(crate) fn needs_free(&self) -> bool {
        self.dropped > self.slack()
    }

    /// Drops the steps past the limit; frees them when enough are waiting.
    #[inline]
    fn trim(&mut self, log: &mut Vec<Undo>, tables: &mut [Box<dyn ErasedArena>]) -> Option<Panic> {
        self.drop_past_limit();
        if !self.needs_free() {
            return None;
        }
        self.free_dropped(log, tables)
    }

    #[cold]
    pub(crate) fn free_dropped(
        &mut self,
        log: &mut Vec<Undo>,
        tables: &mut [Box<dyn ErasedArena>],
    ) -> Option<Panic> {
        let n = self.steps[self.dropped].0;
        let mut first = None;
        for undo in log.drain(..n) {
            match undo {
                // the oldest entries hold the oldest vaulted values
                Undo::Vaulted { table, .. } => tables[table as usize].drop_vault_front(&mut first),
                undo => drop_quietly(undo, &mut first),
            }
        }
        self.steps.drain(..self.dropped);
        for step in &mut self.steps {
            step.0 -= n;
        }
        self.dropped = 0;
        first
    }

    fn undoable(&self) -> usize {
        self.steps.len() - self.dropped
    }
}

/// Why [`Store::undo`] or [`Store::redo`] did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HistoryError {
    /// History is off: switch it on with [`Store::enable_history`].
    Off,
    /// A transaction is open: undo and redo act on committed steps only, so commit or
    /// roll back first.
    InTransaction,
    /// A group is open ([`Store::begin_group`]): end it first.
    InGroup,
    /// There is no step to undo.
    NothingToUndo,
    /// There is no step to redo (new work after an undo drops the redo steps).
    NothingToRedo,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HistoryError::Off => "history is off: switch it on with Store::enable_history",
            HistoryError::InTransaction => {
                "undo and redo are refused inside a transaction: commit or roll back first"
            }
            HistoryError::InGroup => "a history group is open: end it with Store::end_group",
            HistoryError::NothingToUndo => "nothing to undo",
            HistoryError::NothingToRedo => "nothing to redo",
        })
    }
}

impl std::error::Error for HistoryError {}

/// A step that [`Store::undo`] or [`Store::redo`] applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The label given when the step was made ([`Store::step`], [`Store::begin_group`]).
    pub label: Option<Arc<str>>,
    /// Number of primitive changes the step made (inserts, removals, updates, links,
    /// unlinks, payload changes, reorders).
    pub changes: usize,
}

/// # History: undo and redo
///
/// Off by default (and then free). With history on, every committed top-level
/// transaction, and every changing call made outside a transaction, is a step:
/// [`undo`](Store::undo) takes the store back to exactly where it was before the step
/// (the same keys, versions, collection orders and payloads), [`redo`](Store::redo) forward
/// again under the same keys. Keys a step created are stale while it is undone; no key is
/// ever issued twice.
///
/// Cost while on: each change logs its inverse (the same entry a transaction logs, 48
/// bytes, plus any value it takes out: a removed row waits in its table's vault, a
/// replaced row's old value and an unlinked payload are boxed), and the log stays where it
/// is as the call's step (one push). Relation lists are compacted as without history; the
/// compaction is logged too. Memory grows with the steps kept:
/// [`enable_history`](Store::enable_history) bounds their number (steps past the limit
/// are freed in batches: at most three times the limit are held). On the benchmarks, one
/// call at a time with each call a step costs 1.26x (W1 built by `insert` and `link`) and
/// 1.31x (W7's cascade deletes) the instructions of the same calls with history off.
impl Store {
    /// Switches history on, keeping at most `max_steps` undo steps (at least 1; the oldest
    /// are dropped). If it is on already, only the limit changes. O(1), or the cost of
    /// dropping steps past the new limit.
    ///
    /// # Panics
    ///
    /// Inside a transaction (the open transaction's work would be half recorded).
    pub fn enable_history(&mut self, max_steps: usize) {
        assert!(
            self.depth == 0,
            "enable_history inside a transaction: switch history on between transactions"
        );
        let limit = max_steps.max(1);
        let first = match &mut self.history {
            Some(h) => {
                h.limit = limit;
                let first = h.trim(&mut self.log, &mut self.tables);
                self.kept = self.log.len();
                first
            }
            None => {
                self.history = Some(Box::new(History {
                    limit,
                    steps: Vec::new(),
                    dropped: 0,
                    redo: RedoSteps::default(),
                    group: None,
                }));
                None
            }
        };
        self.update_recording();
        if let Some(p) = first {
            resume_unwind(p);
        }
    }

    /// Switches history off and drops every step. O(steps' entries).
    ///
    /// # Panics
    ///
    /// Inside a transaction. A panic of a dropped value's `Drop` is resumed after history
    /// is off.
    pub fn disable_history(&mut self) {
        assert!(
            self.depth == 0,
            "disable_history inside a transaction: switch history off between transactions"
        );
        let Some(mut h) = self.history.take() else {
            return;
        };
        self.update_recording();
        let mut first = h.redo.clear();
        for undo in self.log.drain(..self.kept) {
            drop_quietly(undo, &mut first);
        }
        self.kept = 0;
        self.clear_vaults(&mut first);
        if let Some(p) = first {
            resume_unwind(p);
        }
    }

    /// Whether history is on.
    pub fn history_enabled(&self) -> bool {
        self.history.is_some()
    }

    /// Number of steps [`undo`](Self::undo) can take back.
    pub fn undo_steps(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.undoable())
    }

    /// Number of steps [`redo`](Self::redo) can bring back.
    pub fn redo_steps(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.redo.steps.len())
    }

    /// The label of the step [`undo`](Self::undo) would take back: `None` if there is no
    /// such step, `Some(None)` if it has no label. For an editor's "Undo ..." menu item.
    pub fn undo_label(&self) -> Option<Option<&str>> {
        let h = self.history.as_ref()?;
        (h.undoable() > 0).then(|| h.steps.last().and_then(|(_, l)| l.as_deref()))
    }

    /// The label of the step [`redo`](Self::redo) would bring back, as
    /// [`undo_label`](Self::undo_label).
    pub fn redo_label(&self) -> Option<Option<&str>> {
        let h = self.history.as_ref()?;
        h.redo.steps.last().map(|(_, l)| l.as_deref())
    }

    /// Runs `f` as a transaction (see [`transaction`](Self::transaction)) whose step is
    /// labelled `label` ("Delete 3 users"), for the history and the change feed. Inside a
    /// transaction it labels the enclosing top-level transaction, if that has no label
    /// yet.
    ///
    /// # Errors
    ///
    /// What `f` returns; the transaction is then rolled back and no step is made.
    pub fn step<R, E>(
        &mut self,
        label: &str,
        f: impl FnOnce(&mut Store) -> Result<R, E>,
    ) -> Result<R, E> {
        if self.label.is_none() {
            self.label = Some(Arc::from(label));
        }
        self.transaction(f)
    }

    /// Opens a group: every step committed until [`end_group`](Self::end_group) becomes
    /// one step labelled `label` (an editor's drag made of many transactions, one per
    /// frame). The change feed still reports each transaction as its own batch.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Off`], [`HistoryError::InTransaction`], or
    /// [`HistoryError::InGroup`] if a group is open already.
    pub fn begin_group(&mut self, label: &str) -> Result<(), HistoryError> {
        self.history_ready()?;
        let h = self.history.as_deref_mut().expect("history on");
        h.group = Some((Some(Arc::from(label)), false));
        Ok(())
    }

    /// Closes the open group. Returns whether it made a step (false if nothing was
    /// committed while it was open, or no group was open).
    ///
    /// # Errors
    ///
    /// [`HistoryError::InTransaction`]: a transaction is open.
    pub fn end_group(&mut self) -> Result<bool, HistoryError> {
        if self.depth > 0 {
            return Err(HistoryError::InTransaction);
        }
        Ok(self
            .history
            .as_deref_mut()
            .and_then(|h| h.group.take())
            .is_some_and(|(_, started)| started))
    }

    fn history_ready(&mut self) -> Result<(), HistoryError> {
        if self.depth == 0 && self.log.len() > self.kept {
            // a call that panicked outside a transaction left its changes unclosed
            self.settle();
        }
        match &self.history {
            None => Err(HistoryError::Off),
            Some(_) if self.depth > 0 => Err(HistoryError::InTransaction),
            Some(h) if h.group.is_some() => Err(HistoryError::InGroup),
            Some(_) => Ok(()),
        }
    }

    /// Takes back the newest step: the store is again exactly as before it (entities it
    /// removed are back under their old keys, in their old place in every list, with
    /// their links and payloads; entities it created are gone and their keys stale). The
    /// step moves to the redo steps; the change feed reports a batch marked
    /// [`Origin::Undo`]. O(the step's changes).
    ///
    /// # Errors
    ///
    /// [`HistoryError`]: history off, a transaction or group open, nothing to undo;
    /// nothing changes.
    pub fn undo(&mut self) -> Result<Step, HistoryError> {
        self.history_ready()?;
        let h = self.history.as_deref_mut().expect("history on");
        if h.undoable() == 0 {
            return Err(HistoryError::NothingToUndo);
        }
        let (start, label) = h.steps.pop().expect("an undoable step");
        let entries: Vec<Undo> = self.log.drain(start..).collect();
        self.kept = start;
        Ok(self.replay(entries, label, Origin::Undo))
    }

    /// Brings back the newest undone step, under the same keys. The step moves back to
    /// the undo steps; the change feed reports a batch marked [`Origin::Redo`].
    /// O(the step's changes).
    ///
    /// # Errors
    ///
    /// [`HistoryError`]: history off, a transaction or group open, nothing to redo;
    /// nothing changes.
    pub fn redo(&mut self) -> Result<Step, HistoryError> {
        self.history_ready()?;
        let h = self.history.as_deref_mut().expect("history on");
        let (n, label) = h.redo.steps.pop().ok_or(HistoryError::NothingToRedo)?;
        let at = h.redo.entries.len() - n;
        let entries = h.redo.entries.split_off(at);
        Ok(self.replay(entries, label, Origin::Redo))
    }

    /// Applies a step's inverses newest first, recording the inverse of each after the
    /// history's end: the step that takes this one back, which goes on the other stack.
    fn replay(&mut self, entries: Vec<Undo>, label: Option<Arc<str>>, origin: Origin) -> Step {
        debug_assert!(self.log.len() == self.kept && self.rec);
        let start = self.kept;
        let changes = entries.len();
        // no user code runs here: values move between the store and the log boxed
        for undo in entries.into_iter().rev() {
            self.revert(undo, true);
        }
        if self.feed.is_some() {
            let batch = crate::feed::derive(self, &self.log[start..], origin, label.clone());
            self.feed.as_deref_mut().expect("feed on").push(batch);
        }
        let h = self.history.as_deref_mut().expect("history on");
        let mut first = None;
        match origin {
            Origin::Undo => {
                h.redo.steps.push((self.log.len() - start, label.clone()));
                h.redo.entries.extend(self.log.drain(start..));
            }
            _ => {
                h.steps.push((start, label.clone()));
                first = h.trim(&mut self.log, &mut self.tables);
            }
        }
        self.kept = self.log.len();
        if let Some(p) = first {
            resume_unwind(p);
        }
        self.settle();
        Step { label, changes }
    }
}
