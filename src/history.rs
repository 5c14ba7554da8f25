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

use std::collections::VecDeque;
use std::fmt;
use std::panic::resume_unwind;
use std::sync::Arc;

use crate::feed::Origin;
use crate::grave::Panic;
use crate::path::{DrainQuietly, Undo};
use crate::store::Store;

/// Steps, oldest first: their entries end to end, and each step's entry count and label.
#[derive(Default)]
struct Steps {
    entries: VecDeque<Undo>,
    steps: VecDeque<(usize, Option<Arc<str>>)>,
}

impl Steps {
    fn push(&mut self, log: &mut Vec<Undo>, label: Option<Arc<str>>) {
        self.steps.push_back((log.len(), label));
        self.entries.extend(log.drain(..));
    }

    /// Takes the newest step out: its entries in the order they were recorded.
    fn pop(&mut self) -> Option<(Vec<Undo>, Option<Arc<str>>)> {
        let (n, label) = self.steps.pop_back()?;
        let at = self.entries.len() - n;
        Some((self.entries.drain(at..).collect(), label))
    }

    /// Drops the oldest step; returns the first panic of a `Drop` of its values.
    fn drop_oldest(&mut self) -> Option<Panic> {
        let (n, _) = self.steps.pop_front()?;
        let mut gone: Vec<Undo> = self.entries.drain(..n).collect();
        gone.drain_quietly()
    }

    fn clear(&mut self) -> Option<Panic> {
        self.steps.clear();
        let mut gone: Vec<Undo> = self.entries.drain(..).collect();
        gone.drain_quietly()
    }

    fn label(&self) -> Option<Option<&str>> {
        self.steps.back().map(|(_, l)| l.as_deref())
    }
}

/// The undo and redo steps of a store with history on.
pub(crate) struct History {
    limit: usize,
    undo: Steps,
    redo: Steps,
    /// An open group: its label, and whether its step exists yet.
    group: Option<(Option<Arc<str>>, bool)>,
}

impl History {
    /// Adds a committed log as a step (or to the open group's step), drops the redo
    /// branch and, past the limit, the oldest steps. Returns the first panic of a `Drop`
    /// of a dropped value.
    pub(crate) fn record(&mut self, log: &mut Vec<Undo>, label: Option<Arc<str>>) -> Option<Panic> {
        let mut first = self.redo.clear();
        match &mut self.group {
            Some((_, true)) => {
                let last = self.undo.steps.back_mut().expect("the group's step");
                last.0 += log.len();
                self.undo.entries.extend(log.drain(..));
            }
            Some((group_label, started)) => {
                *started = true;
                let label = group_label.clone().or(label);
                self.undo.push(log, label);
            }
            None => self.undo.push(log, label),
        }
        while self.undo.steps.len() > self.limit {
            if let Some(p) = self.undo.drop_oldest() {
                first.get_or_insert(p);
            }
        }
        first
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
/// bytes plus any value it takes out: a removed row, a replaced row's old value, an
/// unlinked payload), and the log moves into the history when the call ends. Relation
/// lists are compacted as without history; the compaction is logged too. Memory grows with
/// the steps kept: [`enable_history`](Store::enable_history) bounds their number.
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
                let mut first = None;
                while h.undo.steps.len() > limit {
                    if let Some(p) = h.undo.drop_oldest() {
                        first.get_or_insert(p);
                    }
                }
                first
            }
            None => {
                self.history = Some(Box::new(History {
                    limit,
                    undo: Steps::default(),
                    redo: Steps::default(),
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
        let mut first = h.undo.clear();
        if let Some(p) = h.redo.clear() {
            first.get_or_insert(p);
        }
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
        self.history.as_ref().map_or(0, |h| h.undo.steps.len())
    }

    /// Number of steps [`redo`](Self::redo) can bring back.
    pub fn redo_steps(&self) -> usize {
        self.history.as_ref().map_or(0, |h| h.redo.steps.len())
    }

    /// The label of the step [`undo`](Self::undo) would take back: `None` if there is no
    /// such step, `Some(None)` if it has no label. For an editor's "Undo ..." menu item.
    pub fn undo_label(&self) -> Option<Option<&str>> {
        self.history.as_ref().and_then(|h| h.undo.label())
    }

    /// The label of the step [`redo`](Self::redo) would bring back, as
    /// [`undo_label`](Self::undo_label).
    pub fn redo_label(&self) -> Option<Option<&str>> {
        self.history.as_ref().and_then(|h| h.redo.label())
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

    fn history_ready(&self) -> Result<(), HistoryError> {
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
        let (entries, label) = h.undo.pop().ok_or(HistoryError::NothingToUndo)?;
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
        let (entries, label) = h.redo.pop().ok_or(HistoryError::NothingToRedo)?;
        Ok(self.replay(entries, label, Origin::Redo))
    }

    /// Applies a step's inverses newest first, recording the inverse of each: the step
    /// that takes this one back, which goes on the other stack.
    fn replay(&mut self, entries: Vec<Undo>, label: Option<Arc<str>>, origin: Origin) -> Step {
        debug_assert!(self.log.is_empty() && self.rec);
        let changes = entries.len();
        // no user code runs here: values move between the store and the log boxed
        for undo in entries.into_iter().rev() {
            self.revert(undo, true);
        }
        if self.feed.is_some() {
            let batch = crate::feed::derive(self, &self.log, origin, label.clone());
            self.feed.as_deref_mut().expect("feed on").push(batch);
        }
        let mut log = std::mem::take(&mut self.log);
        let h = self.history.as_deref_mut().expect("history on");
        match origin {
            Origin::Undo => h.redo.push(&mut log, label.clone()),
            _ => h.undo.push(&mut log, label.clone()),
        }
        self.log = log;
        self.settle();
        Step { label, changes }
    }
}
