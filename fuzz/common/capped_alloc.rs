//! The capping global allocator every fuzz target installs: it aborts on any single
//! allocation over 256 MiB. With `-s none`, libFuzzer's `-malloc_limit_mb` is not
//! enforced, and a runaway allocation would take the machine down instead of being
//! reported as a crash. (The only `unsafe` code of the fuzz workspace; the relgraph crate
//! forbids `unsafe`.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

pub struct CappedAlloc;

const ALLOC_CAP: usize = 256 << 20;

fn too_big() -> ! {
    let _ = std::io::stderr().write_all(b"allocation over the 256 MiB cap\n");
    std::process::abort()
}

// SAFETY: every call is forwarded unchanged to `System`, after a size check.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big();
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_CAP {
            too_big();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;
