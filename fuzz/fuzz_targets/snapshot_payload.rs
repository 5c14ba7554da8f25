//! Fuzz target: the input is a snapshot payload (what follows the 72-byte header). The
//! target builds a valid header around it (payload length, payload checksum, the
//! fingerprint of the fixed schema, entity and link counts from the first 16 input bytes,
//! or zero for a shorter input), so that the checksum is bypassed and every input reaches
//! the structure decoder, the row decoder and the graph validator. The file then goes
//! through the same checks as in `snapshot_bytes` (`common/snapshot_check.rs`).
//!
//! The counts are checked last among the graph checks, so wrong counts still reach those;
//! but a load with wrong counts never succeeds (and rows are decoded after the counts are
//! checked). So when `inspect` parses the file and its counts differ from the header's,
//! the file is built again with the payload's own counts and checked again: a payload that
//! is valid but for the counts then loads, and the success path (integrity, byte-identical
//! re-save) is reached. When it loads, the file with the wrong counts must have been refused
//! with the `Counts` invariant, by `verify` and by the load.
//!
//! Run: `cd fuzz && cargo fuzz run -s none snapshot_payload corpus/snapshot_payload
//! seeds/snapshot_payload -- -max_total_time=60`.

#![no_main]

#[path = "../common/capped_alloc.rs"]
mod capped_alloc;
#[path = "../common/snapshot_check.rs"]
mod snapshot_check;
#[path = "../common/snapshot_schema.rs"]
mod snapshot_schema;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use relgraph::snapshot::{
    self, checksum, Header, Invariant, SnapshotError, FORMAT_VERSION, HEADER_LEN,
};

fn fingerprint() -> u64 {
    static FINGERPRINT: OnceLock<u64> = OnceLock::new();
    *FINGERPRINT.get_or_init(|| snapshot_schema::schema().0.fingerprint())
}

/// The payload behind a valid header with the given entity and link counts.
fn file(payload: &[u8], (entities, links): (u64, u64)) -> Vec<u8> {
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        fingerprint: fingerprint(),
        payload_len: payload.len() as u64,
        entities,
        links,
        payload_checksum: checksum(payload),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(payload);
    out
}

fn is_counts(e: &SnapshotError) -> bool {
    matches!(e, SnapshotError::Invalid(g) if g.invariant == Invariant::Counts)
}

fuzz_target!(|payload: &[u8]| {
    let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().expect("8 bytes"));
    let counts = if payload.len() >= 16 {
        (u64_at(0), u64_at(8))
    } else {
        (0, 0)
    };
    let first = file(payload, counts);
    let loaded = snapshot_check::check_file(&first);

    // the payload's own counts, as the sections hold them
    let Ok(info) = snapshot::inspect(&first) else {
        return;
    };
    let entities = info
        .tables
        .iter()
        .filter(|t| t.kind_of.is_none())
        .map(|t| t.rows)
        .sum();
    let links = info.relations.iter().map(|r| r.links).sum();
    let own = (entities, links);
    if own == counts {
        return;
    }
    if loaded.is_ok() {
        panic!("a snapshot with wrong counts {counts:?} (not {own:?}) loaded");
    }
    let second = file(payload, own);
    if snapshot_check::check_file(&second).is_ok() {
        let loaded = loaded.expect_err("refused above");
        assert!(is_counts(&loaded), "wrong counts gave {loaded:?}");
        let verified = snapshot::verify(&first).err();
        assert!(
            verified.as_ref().is_some_and(is_counts),
            "verify with wrong counts gave {verified:?}"
        );
    }
});
