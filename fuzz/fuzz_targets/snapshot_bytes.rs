//! Fuzz target: the input is a whole snapshot file (header checksum and payload checksum
//! enforced). It is read by `snapshot::inspect`, `snapshot::verify`,
//! `snapshot::dot(.., &DotScope::All)` and `Store::from_snapshot` into a fixed schema with
//! every relation kind, a polymorphic base with kinds, a polymorphic parent end, acyclic
//! self-referential relations, and rows with `String`, `Vec`, `Option` and enum fields
//! (`common/snapshot_schema.rs`). None may panic or abort, and they must agree; a snapshot
//! that loads must pass `check_integrity`, re-save to exactly the input bytes, and keep
//! working (`common/snapshot_check.rs`).
//!
//! Run: `cd fuzz && cargo fuzz run -s none snapshot_bytes corpus/snapshot_bytes
//! seeds/snapshot_bytes -- -max_total_time=60`.

#![no_main]

#[path = "../common/capped_alloc.rs"]
mod capped_alloc;
#[path = "../common/snapshot_check.rs"]
mod snapshot_check;
#[path = "../common/snapshot_schema.rs"]
mod snapshot_schema;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = snapshot_check::check_file(data);
});
