//! A store shared between threads: many readers at once, one writing transaction at a
//! time.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::snapshot::SnapshotError;
use crate::{HistoryError, Step, Store};

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The shared stores whose lock this thread holds (through `read` or `write`).
    static HELD: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// A [`Store`] behind a [`parking_lot::RwLock`], for programs that read it from several
/// threads while one system writes: cloning the handle is cheap (an `Arc`), every clone
/// reaches the same store.
///
/// - [`read`](Self::read) runs a closure with `&Store`; readers run at the same time.
/// - [`write`](Self::write) runs a closure as one [`transaction`](Store::transaction) with
///   the lock held for all of it: readers never see a change half applied, and a closure
///   that fails or panics changes nothing. There is no poisoning: after a panic the store
///   is as it was before the transaction, and usable.
/// - [`save`](Self::save) encodes the snapshot under a read lock (other readers go on;
///   writers wait only for the encoding) and writes the file with no lock held.
/// - [`undo`](Self::undo) and [`redo`](Self::redo) take a history step back or forward
///   under the write lock (outside a transaction, as [`Store::undo`] requires).
///
/// The lock is only ever held for the duration of a closure, so a guard cannot be kept by
/// mistake. Calling `read`, `write` or `save` on the same store from inside one of its
/// own closures would wait for the lock this thread already holds: that panics with a
/// message instead of deadlocking.
///
/// # Examples
///
/// ```
/// use relgraph::{Schema, SharedStore, Store};
///
/// let mut schema = Schema::new();
/// schema.table::<String>("names");
/// let shared = SharedStore::new(Store::new(schema));
///
/// let writer = shared.clone();
/// std::thread::spawn(move || {
///     writer.write(|s| {
///         s.insert("from a thread".to_string());
///         Ok::<(), ()>(())
///     })
/// })
/// .join()
/// .unwrap()
/// .unwrap();
/// assert_eq!(shared.read(|s| s.len::<String>()), 1);
/// ```
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<RwLock<Store>>,
    id: u64,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("handles", &Arc::strong_count(&self.inner))
            .finish_non_exhaustive()
    }
}

/// Marks this thread as holding the lock of store `id` while alive.
struct Held(u64);

impl Held {
    #[track_caller]
    fn enter(id: u64, call: &str) -> Held {
        if HELD.with(|h| h.borrow().contains(&id)) {
            panic!(
                "SharedStore::{call} called from inside a read or write closure of the same \
                 store: it would wait for the lock this thread holds; use the `&Store` or \
                 `&mut Store` the closure was given"
            );
        }
        HELD.with(|h| h.borrow_mut().push(id));
        Held(id)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|&x| x == self.0) {
                h.remove(i);
            }
        });
    }
}

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: Store) -> SharedStore {
        SharedStore {
            inner: Arc::new(RwLock::new(store)),
            id: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Runs `f` with the store, under a read lock: other readers run at the same time,
    /// writers wait. Returns what `f` returns.
    ///
    /// # Panics
    ///
    /// If called from inside a closure of this store's `read` or `write` (that would
    /// deadlock); a panic in `f` releases the lock and propagates.
    #[track_caller]
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        let _held = Held::enter(self.id, "read");
        let guard = self.inner.read();
        f(&guard)
    }

    /// Runs `f` as one transaction under the write lock: all of it or none of it, and no
    /// reader sees it half done. If `f` returns `Err` or panics, every change it made is
    /// rolled back (see [`Store::transaction`]) before the lock is released.
    ///
    /// # Errors
    ///
    /// What `f` returns.
    ///
    /// # Panics
    ///
    /// If called from inside a closure of this store's `read` or `write` (that would
    /// deadlock); a panic in `f` rolls back, releases the lock and propagates.
    #[track_caller]
    pub fn write<R, E>(&self, f: impl FnOnce(&mut Store) -> Result<R, E>) -> Result<R, E> {
        let _held = Held::enter(self.id, "write");
        let mut guard = self.inner.write();
        guard.transaction(f)
    }

    /// Takes back the newest history step under the write lock (see [`Store::undo`]):
    /// readers see the store before or after it, never halfway. O(the step's changes).
    ///
    /// # Errors
    ///
    /// As [`Store::undo`]: history off, a group open, nothing to undo.
    ///
    /// # Panics
    ///
    /// If called from inside a closure of this store's `read` or `write`.
    #[track_caller]
    pub fn undo(&self) -> Result<Step, HistoryError> {
        let _held = Held::enter(self.id, "undo");
        self.inner.write().undo()
    }

    /// Brings back the newest undone history step under the write lock (see
    /// [`Store::redo`]). O(the step's changes).
    ///
    /// # Errors
    ///
    /// As [`Store::redo`]: history off, a group open, nothing to redo.
    ///
    /// # Panics
    ///
    /// If called from inside a closure of this store's `read` or `write`; as
    /// [`Store::redo`] if the `Drop` of a value of a dropped step panics (the lock is
    /// released, the redo complete).
    #[track_caller]
    pub fn redo(&self) -> Result<Step, HistoryError> {
        let _held = Held::enter(self.id, "redo");
        self.inner.write().redo()
    }

    /// Saves the store to `path` atomically (as [`Store::save`]): the snapshot is encoded
    /// under a read lock, the file written with no lock held. O(entities + links) under the
    /// lock.
    ///
    /// # Errors
    ///
    /// As [`Store::save`].
    ///
    /// # Panics
    ///
    /// If called from inside a closure of this store's `read` or `write`.
    #[track_caller]
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
        let bytes = self.read(|s| s.to_snapshot())?;
        crate::snapshot::write_file_atomic(path.as_ref(), &bytes)
    }

    /// The store, if this is the last handle to it; else the handle back.
    ///
    /// # Errors
    ///
    /// `Err(self)` while other clones of the handle exist.
    pub fn try_into_inner(self) -> Result<Store, SharedStore> {
        let id = self.id;
        Arc::try_unwrap(self.inner)
            .map(RwLock::into_inner)
            .map_err(|inner| SharedStore { inner, id })
    }
}
