//! An allocation meter for one test binary: the global allocator is `cap::Cap`, which counts
//! the bytes allocated and can refuse allocations past a limit (no `unsafe` on our side).
//! Include with `#[path = "snapshot_support/meter.rs"] mod meter;`.
//!
//! The allocator is process-wide, so the tests of a binary that measures take [`serial`]
//! first: one measurement at a time.

#![allow(dead_code)] // each test file uses a different part

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};

use cap::Cap;

/// The process-wide safety net: an allocation past it fails, which aborts the test binary
/// ("memory allocation of N bytes failed") rather than exhausting the machine. Fixed for
/// the life of the process: `cap` raises or lowers a limit in two steps, and a thread that
/// allocates between them records a bogus high-water mark of about the difference, which
/// would spoil every later [`peak`].
const LIMIT: usize = 4 << 30;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, LIMIT);

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the other measuring tests of this binary off until dropped.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes allocated now.
pub fn allocated() -> usize {
    ALLOC.allocated()
}

/// Runs `f` and returns its result and its peak: the most bytes it held allocated at once
/// beyond what was allocated when it started. A peak past `ceiling` bytes fails the test
/// (after `f`; the process-wide [`LIMIT`] is the safety net while it runs); tests assert
/// their own, tighter bounds on the peak.
///
/// `cap` keeps only a high-water mark for the whole process. To read the peak of `f`
/// alone, a ballast raises the bytes allocated to that mark first, so that any byte `f`
/// allocates beyond its start raises the mark; the ballast is never touched, so it costs
/// address space, not memory.
pub fn peak<R>(ceiling: usize, f: impl FnOnce() -> R) -> (R, usize) {
    let gap = ALLOC.max_allocated().saturating_sub(ALLOC.allocated());
    let ballast: Vec<u8> = std::hint::black_box(Vec::with_capacity(gap));
    let start = ALLOC.allocated();
    let out = f();
    let peak = ALLOC.max_allocated().saturating_sub(start);
    drop(ballast);
    assert!(
        peak <= ceiling,
        "peak {peak} bytes is past the ceiling of {ceiling}"
    );
    (out, peak)
}

/// Bytes `make` leaves allocated in the value it returns (e.g. the size of a loaded store).
pub fn retained<R>(make: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOC.allocated();
    let out = make();
    (out, ALLOC.allocated().saturating_sub(before))
}
