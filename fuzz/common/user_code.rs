//! User code that panics on demand, for the `ops` target: a part of every row and payload
//! that tracks the value's life (made with a fresh serial, dropped once) and whose `Drop`
//! panics while a switch is on (for every other value), and a payload `Default` that
//! panics after a given number of calls.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{catch_unwind, panic_any, resume_unwind, AssertUnwindSafe};

thread_local! {
    /// The serial the next tracked value gets.
    static NEXT_SERIAL: Cell<u64> = const { Cell::new(0) };
    /// The serials of the tracked values alive on this thread.
    static LIVE: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
    /// Drops of a value that was not alive.
    static DOUBLE_DROPS: Cell<u64> = const { Cell::new(0) };
    /// While set, the `Drop` of every value with an even serial panics.
    static BOMBS: Cell<bool> = const { Cell::new(false) };
    /// `Drop`s that panicked.
    static BLASTS: Cell<u64> = const { Cell::new(0) };
    /// The blasts that a panic caught by [`catch`] accounts for.
    static ACCOUNTED: Cell<u64> = const { Cell::new(0) };
    /// A payload's `Default` panics once this many more calls have returned.
    static DEFAULTS_LEFT: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// Tracks the life of the value it is part of. Compares equal to any other.
#[derive(Debug)]
pub struct Life(pub u64);

impl Life {
    pub fn new() -> Life {
        let serial = NEXT_SERIAL.with(|n| n.replace(n.get() + 1));
        LIVE.with(|l| l.borrow_mut().insert(serial));
        Life(serial)
    }
}

impl Default for Life {
    fn default() -> Life {
        Life::new()
    }
}

impl Clone for Life {
    fn clone(&self) -> Life {
        Life::new()
    }
}

impl PartialEq for Life {
    fn eq(&self, _: &Life) -> bool {
        true
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        if !LIVE.with(|l| l.borrow_mut().remove(&self.0)) {
            DOUBLE_DROPS.with(|d| d.set(d.get() + 1));
        }
        // (a panic while unwinding would abort)
        if BOMBS.with(Cell::get) && self.0 % 2 == 0 && !std::thread::panicking() {
            BLASTS.with(|b| b.set(b.get() + 1));
            panic_any(Blast);
        }
    }
}

/// The payload of a panicking `Drop`.
pub struct Blast;

/// The payload of a panicking `Default`.
pub struct Fails;

/// Arms the panicking `Drop`s until dropped (then they are as they were).
pub struct Bombs(bool);

impl Bombs {
    pub fn arm() -> Bombs {
        Bombs(BOMBS.with(|b| b.replace(true)))
    }

    pub fn disarm() -> Bombs {
        Bombs(BOMBS.with(|b| b.replace(false)))
    }
}

impl Drop for Bombs {
    fn drop(&mut self) {
        BOMBS.with(|b| b.set(self.0));
    }
}

pub fn armed() -> bool {
    BOMBS.with(Cell::get)
}

/// Makes the payloads' `Default` panic after `n` more calls, until dropped.
pub struct Defaults(u32);

impl Defaults {
    pub fn fail_after(n: u32) -> Defaults {
        Defaults(DEFAULTS_LEFT.with(|c| c.replace(n)))
    }
}

impl Drop for Defaults {
    fn drop(&mut self) {
        DEFAULTS_LEFT.with(|c| c.set(self.0));
    }
}

/// Called by a payload type's `Default`: panics when the calls allowed are used up.
pub fn count_default() {
    let left = DEFAULTS_LEFT.with(Cell::get);
    if left == 0 {
        panic_any(Fails);
    }
    DEFAULTS_LEFT.with(|c| c.set(left.saturating_sub(1)));
}

/// Starts a run: no value alive, serials from 0, nothing armed.
pub fn reset() {
    LIVE.with(|l| l.borrow_mut().clear());
    NEXT_SERIAL.with(|n| n.set(0));
    DOUBLE_DROPS.with(|d| d.set(0));
    BOMBS.with(|b| b.set(false));
    DEFAULTS_LEFT.with(|c| c.set(u32::MAX));
    ACCOUNTED.with(|a| a.set(BLASTS.with(Cell::get)));
}

pub fn blasts() -> u64 {
    BLASTS.with(Cell::get)
}

/// Runs `f`; a panic with payload `P` becomes `Err`, any other goes on. With `P` =
/// [`Blast`]: a `Blast` must come from a `Drop` that panicked since the last one caught, and
/// a call that returns must leave no panicked `Drop` unaccounted for (a panic came out of
/// an inner call for each, and was caught there).
pub fn catch<P: 'static, R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    let r = catch_unwind(AssertUnwindSafe(f));
    let blast = TypeId::of::<P>() == TypeId::of::<Blast>();
    let (now, accounted) = (blasts(), ACCOUNTED.with(Cell::get));
    match r {
        Ok(r) => {
            if blast {
                assert_eq!(now, accounted, "a Drop panicked but the call returned");
            }
            Ok(r)
        }
        Err(p) if p.is::<P>() => {
            if blast {
                assert!(
                    now > accounted,
                    "a Blast came out of a call but no Drop panicked"
                );
                ACCOUNTED.with(|a| a.set(now));
            }
            Err(())
        }
        Err(p) => resume_unwind(p),
    }
}

/// The tracked values alive are exactly `held` (the serials of what a store holds), and
/// none was dropped twice.
pub fn check_lives(mut held: Vec<u64>, what: &str) {
    let count = held.len();
    held.sort_unstable();
    held.dedup();
    assert_eq!(held.len(), count, "two values share a serial after {what}");
    assert_eq!(
        DOUBLE_DROPS.with(Cell::get),
        0,
        "a value was dropped twice by {what}"
    );
    LIVE.with(|live| {
        let live = live.borrow();
        assert_eq!(live.len(), held.len(), "values alive after {what}");
        for s in &held {
            assert!(live.contains(s), "value {s} held but dropped after {what}");
        }
    });
}

/// Keeps the deliberate panics' messages out of the output.
pub fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            if !(p.is::<Blast>() || p.is::<Fails>()) {
                default(info);
            }
        }));
    });
}
