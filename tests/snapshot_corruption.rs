//! Corrupted snapshots (T5): a corpus made from valid snapshots — every header bit flipped,
//! thousands of payload bit flips, truncation at every length, zeroed sectors, appended
//! garbage, random files, wrong magic, version and fingerprint — goes through
//! `Store::from_snapshot` and `snapshot::verify`. Neither may panic, no changed file may be
//! accepted, and the memory a load takes stays under a bound set by the input's size.

mod common;
#[path = "snapshot_support/meter.rs"]
mod meter;
mod snapshot_support;

use std::collections::BTreeMap;

use common::*;
use relgraph::snapshot::{self, Invariant, SnapshotError, FORMAT_VERSION, HEADER_LEN, MAGIC};
use relgraph::{Rules, Schema, Store};
use snapshot_support::{header_of, with_header, with_payload};

/// A safety net for any one attempt: an allocation past it aborts the test binary.
const CEILING: usize = 256 << 20;

fn busy_world(seed: u64) -> Store {
    common::snapshot::busy_world(seed, 1).0
}

/// A valid snapshot and the schema it loads into.
struct Original {
    name: &'static str,
    schema: Schema,
    bytes: Vec<u8>,
}

fn originals() -> Vec<Original> {
    let of = |name, s: Store| Original {
        name,
        schema: s.schema().clone(),
        bytes: s.to_snapshot().unwrap(),
    };
    vec![
        of("busy world 1", busy_world(1)),
        of("busy world 2", busy_world(2)),
        of("notifications", poly::populated(poly::Config::default()).0),
        of("empty world", world(Config::default()).0),
    ]
}

/// The name of an error's variant (with the invariant, for an invalid graph).
fn variant(e: &SnapshotError) -> String {
    match e {
        SnapshotError::Invalid(g) => format!("Invalid({:?})", g.invariant),
        e => {
            let debug = format!("{e:?}");
            let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
            debug[..end].to_string()
        }
    }
}

/// What the corpus found.
#[derive(Default)]
struct Tally {
    files: usize,
    changed: usize,
    accepted_when_changed: Vec<String>,
    /// Unchanged files met (a zeroed sector that was zero already, ...): each must load
    /// and re-save to the same bytes.
    unchanged: usize,
    errors: BTreeMap<String, usize>,
    largest_input: usize,
    peak: usize,
    peak_file: String,
}

impl Tally {
    /// Loads and verifies `bytes`, made from `original` by `how`.
    fn try_file(&mut self, original: &Original, bytes: &[u8], how: &str) {
        self.files += 1;
        self.largest_input = self.largest_input.max(bytes.len());
        let changed = bytes != original.bytes.as_slice();
        let schema = original.schema.clone();
        let ((loaded, verified), peak) = meter::peak(CEILING, || {
            let loaded = Store::from_snapshot(schema, bytes).map(|s| s.to_snapshot().unwrap());
            (loaded, snapshot::verify(bytes).map(|_| ()))
        });
        if peak > self.peak {
            self.peak = peak;
            self.peak_file = format!("{} ({how}, {} bytes)", original.name, bytes.len());
        }
        if changed {
            self.changed += 1;
        } else {
            self.unchanged += 1;
        }
        match (&loaded, changed) {
            (Ok(_), true) => self
                .accepted_when_changed
                .push(format!("{}: {how} (from_snapshot)", original.name)),
            (Ok(resaved), false) => assert_eq!(resaved.as_slice(), bytes, "{how}: re-save"),
            (Err(e), _) => *self.errors.entry(variant(e)).or_default() += 1,
        }
        match (&verified, changed) {
            (Ok(()), true) => self
                .accepted_when_changed
                .push(format!("{}: {how} (verify)", original.name)),
            (Ok(()), false) => {}
            (Err(e), _) => assert_eq!(
                loaded.as_ref().err().map(variant),
                Some(variant(e)),
                "{}: {how}: verify and from_snapshot disagree",
                original.name
            ),
        }
        if !changed {
            assert!(
                loaded.is_ok() && verified.is_ok(),
                "{how}: original refused"
            );
        }
    }
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// The corpus, file by file, into `tally`.
fn run_corpus(originals: &[Original], tally: &mut Tally) {
    let mut rng = Rng::new(5);
    // every bit of the header
    for o in originals {
        for bit in 0..HEADER_LEN * 8 {
            tally.try_file(o, &flip(&o.bytes, bit), &format!("header bit {bit}"));
        }
    }
    // payload bits, spread over the originals by their payload sizes
    let payload_bits: Vec<usize> = originals
        .iter()
        .map(|o| (o.bytes.len() - HEADER_LEN) * 8)
        .collect();
    let total: usize = payload_bits.iter().sum();
    for _ in 0..10_000 {
        let mut k = rng.below(total);
        let i = payload_bits.iter().position(|&n| {
            k < n || {
                k -= n;
                false
            }
        });
        let o = &originals[i.unwrap()];
        let bit = HEADER_LEN * 8 + k;
        tally.try_file(o, &flip(&o.bytes, bit), &format!("payload bit {bit}"));
    }
    // truncation at every length
    for o in originals {
        for len in 0..o.bytes.len() {
            tally.try_file(o, &o.bytes[..len], &format!("truncated to {len}"));
        }
    }
    // zeroed 512-byte sectors (the last one partial)
    for o in originals {
        for (i, start) in (0..o.bytes.len()).step_by(512).enumerate() {
            let mut b = o.bytes.clone();
            let end = (start + 512).min(b.len());
            b[start..end].fill(0);
            tally.try_file(o, &b, &format!("sector {i} zeroed"));
        }
    }
    // appended garbage: zeros, random bytes, the file again
    for o in originals {
        for n in (1..=64).chain([100, 511, 512, 4096]) {
            let mut zeros = o.bytes.clone();
            zeros.resize(o.bytes.len() + n, 0);
            tally.try_file(o, &zeros, &format!("{n} zero bytes appended"));
            let mut random = o.bytes.clone();
            random.extend(random_bytes(&mut rng, n));
            tally.try_file(o, &random, &format!("{n} random bytes appended"));
        }
        let twice = [o.bytes.as_slice(), o.bytes.as_slice()].concat();
        tally.try_file(o, &twice, "the file twice");
    }
    // random files: anything, then behind the right magic, then behind a whole valid
    // header (payload length and checksum recomputed, so the decoder reads them)
    let o = &originals[0];
    for i in 0..1_500 {
        let len = rng.below(2_000);
        tally.try_file(o, &random_bytes(&mut rng, len), &format!("random file {i}"));
    }
    for i in 0..1_500 {
        let len = rng.below(2_000);
        let b = [&MAGIC[..], &random_bytes(&mut rng, len)].concat();
        tally.try_file(o, &b, &format!("magic then random {i}"));
    }
    for o in originals {
        for i in 0..500 {
            let len = rng.below(2_000);
            let b = with_payload(&o.bytes, &random_bytes(&mut rng, len));
            tally.try_file(o, &b, &format!("valid header, random payload {i}"));
        }
    }
    // wrong magic, version, flags, fingerprint, lengths and counts, header checksum
    // recomputed each time (a flip alone is caught by the header checksum)
    for o in originals {
        for (i, what) in wrong_headers(&o.bytes).into_iter().enumerate() {
            tally.try_file(o, &what, &format!("wrong header field {i}"));
        }
    }
}

/// Headers with a wrong magic (caught before the header checksum), and headers with a
/// wrong version, flags, fingerprint, length, count or payload checksum whose header
/// checksum is recomputed, so that each field's own check is what refuses them.
fn wrong_headers(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..MAGIC.len() {
        for x in [0x01, 0x20, 0x80, 0xff] {
            let mut b = bytes.to_vec();
            b[i] ^= x;
            out.push(b);
        }
    }
    // the transfers the magic is there to catch: 7-bit, CRLF to LF, LF to CRLF
    let mut seven_bit = bytes.to_vec();
    seven_bit[0] &= 0x7f;
    out.push(seven_bit);
    out.push([&bytes[..4], &bytes[5..]].concat());
    out.push([&bytes[..7], b"\r", &bytes[7..]].concat());
    for version in [0, FORMAT_VERSION + 1, 0x0100_0000, u32::MAX] {
        out.push(with_header(bytes, |h| h.version = version));
    }
    for flags in [1, 0x8000_0000, u32::MAX] {
        out.push(with_header(bytes, |h| h.flags = flags));
    }
    let other = schema(Config {
        posts: Rules::new().on_delete(relgraph::DeleteRule::Cascade),
        ..Config::default()
    })
    .0
    .fingerprint();
    let own = header_of(bytes).fingerprint;
    for fingerprint in [0, 1, u64::MAX, own ^ 1, own.rotate_left(32), other] {
        out.push(with_header(bytes, |h| h.fingerprint = fingerprint));
    }
    for delta in [1, 2, 1 << 20] {
        out.push(with_header(bytes, |h| {
            h.entities = h.entities.wrapping_add(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.entities = h.entities.wrapping_sub(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.links = h.links.wrapping_add(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.links = h.links.wrapping_sub(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.payload_len = h.payload_len.wrapping_add(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.payload_len = h.payload_len.wrapping_sub(delta)
        }));
        out.push(with_header(bytes, |h| {
            h.payload_checksum = h.payload_checksum.wrapping_add(delta)
        }));
    }
    // header length and reserved field, which `Header` does not expose
    for (at, value) in [(16, 64u32), (16, 80), (16, 0), (20, 1), (20, u32::MAX)] {
        let mut b = bytes.to_vec();
        b[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let sum = snapshot::checksum(&b[..64]);
        b[64..72].copy_from_slice(&sum.to_le_bytes());
        out.push(b);
    }
    out
}

#[test]
fn no_corrupted_file_is_accepted_and_none_makes_a_load_panic_or_overallocate() {
    let _serial = meter::serial();
    let originals = originals();
    // what a clean load of each original takes: the loaded store, and the load's peak
    let mut store_bytes = 0;
    for o in &originals {
        let (store, size) =
            meter::retained(|| Store::from_snapshot(o.schema.clone(), &o.bytes).unwrap());
        store_bytes = store_bytes.max(size);
        drop(store);
        let (_, peak) = meter::peak(CEILING, || {
            Store::from_snapshot(o.schema.clone(), &o.bytes).unwrap()
        });
        println!(
            "{}: {} bytes, loaded store {size} bytes, clean load peak {peak} bytes",
            o.name,
            o.bytes.len()
        );
    }
    let mut tally = Tally::default();
    run_corpus(&originals, &mut tally);
    let bound = 64 * tally.largest_input + store_bytes;
    println!(
        "files tried: {} ({} changed, {} unchanged)",
        tally.files, tally.changed, tally.unchanged
    );
    println!("panics: 0");
    println!(
        "accepted-when-changed: {}",
        tally.accepted_when_changed.len()
    );
    println!(
        "peak allocation: {} bytes, at {}; bound {bound} bytes (64 x the largest input of {} \
         bytes + the largest loaded store, {store_bytes} bytes)",
        tally.peak, tally.peak_file, tally.largest_input
    );
    println!("errors: {:?}", tally.errors);
    assert!(tally.files >= 20_000, "only {} files tried", tally.files);
    assert!(
        tally.accepted_when_changed.is_empty(),
        "changed files accepted: {:?}",
        tally.accepted_when_changed
    );
    assert!(tally.peak <= bound, "peak {} over {bound}", tally.peak);
}

#[test]
fn each_kind_of_header_damage_gives_its_own_error() {
    let _serial = meter::serial();
    let o = &originals()[0];
    let load = |bytes: &[u8]| {
        let a = Store::from_snapshot(o.schema.clone(), bytes)
            .map(|_| ())
            .unwrap_err();
        let b = snapshot::verify(bytes).map(|_| ()).unwrap_err();
        assert_eq!(variant(&a), variant(&b));
        a
    };
    let mut bad_magic = o.bytes.clone();
    bad_magic[3] = b'X';
    assert!(matches!(load(&bad_magic), SnapshotError::NotASnapshot));
    assert!(matches!(load(b"hello"), SnapshotError::NotASnapshot));
    assert!(matches!(load(&[]), SnapshotError::Truncated { .. }));
    assert!(matches!(
        load(&o.bytes[..HEADER_LEN - 1]),
        SnapshotError::Truncated { expected: 72, .. }
    ));
    let e = load(&with_header(&o.bytes, |h| h.version = FORMAT_VERSION + 1));
    assert!(matches!(
        e,
        SnapshotError::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION
        } if found == FORMAT_VERSION + 1
    ));
    let e = load(&with_header(&o.bytes, |h| h.flags = 4));
    assert!(matches!(e, SnapshotError::UnknownFlags { flags: 4 }));
    let e = load(&with_header(&o.bytes, |h| h.fingerprint ^= 1));
    assert!(matches!(e, SnapshotError::Invalid(g) if g.invariant == Invariant::Fingerprint));
    let e = load(&with_header(&o.bytes, |h| h.entities += 1));
    assert!(matches!(e, SnapshotError::Invalid(g) if g.invariant == Invariant::Counts));
    let e = load(&flip(&o.bytes, 64 * 8));
    assert!(matches!(e, SnapshotError::HeaderCorrupt { .. }));
    let e = load(&flip(&o.bytes, o.bytes.len() * 8 - 1));
    assert!(matches!(e, SnapshotError::ChecksumMismatch { .. }));
    let short = &o.bytes[..o.bytes.len() - 1];
    let e = load(short);
    assert!(matches!(e, SnapshotError::Truncated { expected, found }
        if expected == o.bytes.len() as u64 && found == expected - 1));
    let long = [o.bytes.as_slice(), &[0]].concat();
    assert!(matches!(
        load(&long),
        SnapshotError::TrailingBytes { extra: 1 }
    ));
}

#[test]
fn payload_bit_flips_that_pass_the_checksum_never_panic_and_what_loads_is_canonical() {
    // The checksum recomputed after each flip, so that every flip reaches the decoder and
    // the validator: a flip may then be harmless (a character of a name), but anything
    // accepted must re-save to exactly its own bytes.
    let _serial = meter::serial();
    let originals = originals();
    let mut rng = Rng::new(11);
    let (mut tried, mut accepted, mut verified) = (0, 0, 0);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut peak_max = 0;
    for o in &originals {
        let payload = &o.bytes[HEADER_LEN..];
        let bits = payload.len() * 8;
        let n = 2_000.min(bits);
        for k in 0..n {
            let bit = if n == bits { k } else { rng.below(bits) };
            let flipped = with_payload(&o.bytes, &flip(payload, bit));
            tried += 1;
            let ((loaded, verify), peak) = meter::peak(CEILING, || {
                let loaded = Store::from_snapshot(o.schema.clone(), &flipped)
                    .map(|s| s.to_snapshot().unwrap());
                (loaded, snapshot::verify(&flipped).map(|_| ()))
            });
            peak_max = peak_max.max(peak);
            match loaded {
                Ok(resaved) => {
                    accepted += 1;
                    assert!(
                        resaved == flipped,
                        "{}: payload bit {bit}: accepted but re-saves differently",
                        o.name
                    );
                }
                Err(e) => *errors.entry(variant(&e)).or_default() += 1,
            }
            verified += usize::from(verify.is_ok());
        }
    }
    println!(
        "checksum-recomputed payload flips: {tried} tried, {accepted} loaded (each re-saves \
         to its own bytes), {verified} verified; peak allocation {peak_max} bytes"
    );
    println!("errors: {errors:?}");
    assert!(tried >= 4_000);
}
