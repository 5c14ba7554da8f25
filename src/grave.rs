//! Values a call removed, dropped only once the store is consistent again.
//!
//! A row's or payload's `Drop` is user code and may panic. Were it run where the value is
//! taken out (in the middle of a cascade, a rollback or a replaced collection), a panic
//! would stop the call halfway: an entity removed but still owning its lists, a rollback
//! half applied. So removed values wait here, typed (no allocation per value), and
//! [`Graves::bury`] drops them when the call has finished its change. Each is dropped
//! once; a panic from one `Drop` does not stop the others, and the first is handed back
//! to be resumed after every value is gone.

use std::any::Any;
use std::mem::needs_drop;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::arena::ErasedArena;

/// The payload of a caught panic.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// A boxed value of a table or a payload type, as the transaction log keeps it.
pub(crate) type Boxed = Box<dyn Any + Send + Sync>;

/// The removed values of one type.
pub(crate) trait Grave: Any + Send + Sync {
    /// Drops every value, each once, keeping the first panic in `first`.
    fn bury(&mut self, first: &mut Option<Panic>);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Send + Sync + 'static> Grave for Vec<T> {
    fn bury(&mut self, first: &mut Option<Panic>) {
        // values are popped one at a time inside the guard: a `Drop` that panics has
        // already been taken out, so the loop resumes with the next one
        while !self.is_empty() {
            let r = catch_unwind(AssertUnwindSafe(|| {
                while let Some(v) = self.pop() {
                    drop(v);
                }
            }));
            if let Err(p) = r {
                first.get_or_insert(p);
            }
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The grave of one table or one relation's payloads: made on first use.
pub(crate) type GraveSlot = Option<Box<dyn Grave>>;

/// Puts `value` in the grave `slot` (made on first use), or drops it at once if its type
/// has no drop code (no user code can run then).
#[inline]
pub(crate) fn defer<T: Send + Sync + 'static>(slot: &mut GraveSlot, value: T) {
    if !needs_drop::<T>() {
        return;
    }
    let grave = slot.get_or_insert_with(|| Box::new(Vec::<T>::new()));
    grave
        .as_any_mut()
        .downcast_mut::<Vec<T>>()
        .expect("a grave holds its slot's type")
        .push(value);
}

/// The graves of a store kept apart from its tables (whose removed rows wait in their own
/// arenas): one per relation's payloads, and boxed values (from the transaction log).
#[derive(Default)]
pub(crate) struct Graves {
    pub payloads: Vec<GraveSlot>,
    pub boxed: Vec<Boxed>,
    /// Whether any grave may hold a value (a fast exit for [`bury`](Self::bury)).
    pub dirty: bool,
}

impl Graves {
    pub fn new(relations: usize) -> Graves {
        Graves {
            payloads: (0..relations).map(|_| None).collect(),
            boxed: Vec::new(),
            dirty: false,
        }
    }

    /// The grave of the payloads of relation `r`; marked as possibly holding values if
    /// `drops` (the payload type has drop code: a value without any is dropped at once).
    #[inline]
    pub fn payloads(&mut self, r: u32, drops: bool) -> &mut GraveSlot {
        self.dirty |= drops;
        &mut self.payloads[r as usize]
    }

    /// Keeps a boxed value to drop later.
    pub fn boxed(&mut self, value: Boxed) {
        self.dirty = true;
        self.boxed.push(value);
    }

    /// Drops every value held here and in `tables`; returns the first panic a `Drop`
    /// raised, if any.
    pub fn bury(&mut self, tables: &mut [Box<dyn ErasedArena>]) -> Option<Panic> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let mut first = None;
        for table in tables {
            table.bury(&mut first);
        }
        for grave in self.payloads.iter_mut().flatten() {
            grave.bury(&mut first);
        }
        self.boxed.bury(&mut first);
        first
    }
}

/// Drops every value of `values`, each once, whatever their `Drop` does; returns the
/// first panic.
pub(crate) fn drop_all<T: Send + Sync + 'static>(mut values: Vec<T>) -> Option<Panic> {
    let mut first = None;
    values.bury(&mut first);
    first
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);

    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
            if self.0 {
                panic!("bomb");
            }
        }
    }

    #[test]
    fn every_value_is_dropped_once_even_when_two_drops_panic() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut g = Graves::new(1);
        for i in 0..10 {
            defer(g.payloads(0, true), Bomb(i == 3 || i == 7));
        }
        let before = DROPS.load(Ordering::SeqCst);
        let first = g.bury(&mut []);
        std::panic::set_hook(prev);
        assert_eq!(DROPS.load(Ordering::SeqCst) - before, 10);
        assert_eq!(
            first.and_then(|p| p.downcast_ref::<&str>().copied()),
            Some("bomb")
        );
        assert!(g.bury(&mut []).is_none(), "nothing is dropped twice");
    }
}
