//! Decode limits (T6): a hostile length in every container of the format, in a snapshot
//! whose header and checksums are right so that the decoder reads it, is refused with an
//! error, quickly, and without allocating more than the decode limit (a sequence inside a
//! row included: the size hint serde preallocates from is capped in `src/codec.rs`,
//! and a sequence of zero-sized elements is refused by its count); a large legitimate
//! snapshot whose rows grow 8x in memory still loads.

#[path = "snapshot_support/meter.rs"]
mod meter;
mod snapshot_support;

use std::time::Instant;

use relgraph::snapshot::{self, SnapshotError};
use relgraph::{Kind, ManyToMany, OneToMany, OneToOne, Rules, Schema, Store};
use serde::{Deserialize, Serialize};
use snapshot_support::*;

/// A safety net for any one attempt: an allocation past it aborts the test binary.
const CEILING: usize = 64 << 20;

/// A row with a string and sequences: the growable shapes of row data, and a sequence of
/// zero-sized elements, which take no bytes stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    name: String,
    ids: Vec<u32>,
    marks: Vec<()>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Shape {
    sides: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Circle {
    radius: u32,
}

/// The payload of an item-to-item link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Label {
    text: String,
}

struct Rels {
    circle: Kind<Shape, Circle>,
    tree: OneToMany<Item, Item>,
    twin: OneToOne<Item, Item>,
    links: ManyToMany<Item, Item, Label>,
    held: OneToMany<Shape, Item>,
}

/// Every container of the format appears: tables, a kind, each relation kind, a
/// many-to-many payload, a polymorphic parent end.
fn schema() -> (Schema, Rels) {
    let mut s = Schema::new();
    let items = s.table::<Item>("items");
    let shapes = s.table::<Shape>("shapes");
    let circle = s.kind::<Shape, Circle>(shapes, "circle");
    let holder = s.poly_parent(items, "holder");
    let rels = Rels {
        circle,
        tree: s.one_to_many(items, "children", items, "parent", Rules::new()),
        twin: s.one_to_one(items, "twin", items, "twin_of", Rules::new()),
        links: s.many_to_many_with(items, "links", items, "linked_from", Rules::new()),
        held: s.one_to_many_poly(shapes, "held", holder, Rules::new()),
    };
    (s, rels)
}

const ITEMS: [(&str, &[u32], usize); 3] = [("a", &[1, 2, 3], 2), ("bb", &[7], 0), ("", &[], 1)];
const LABELS: [&str; 2] = ["x", "yy"];

/// The small valid store the hostile snapshots are made from.
fn store() -> Store {
    let (s, r) = schema();
    let mut s = Store::new(s);
    let items: Vec<_> = ITEMS
        .iter()
        .map(|&(name, ids, marks)| {
            s.insert(Item {
                name: name.into(),
                ids: ids.to_vec(),
                marks: vec![(); marks],
            })
        })
        .collect();
    let c0 = s.insert_kind(r.circle, Shape { sides: 0 }, Circle { radius: 5 });
    s.link(r.tree, items[0], items[1]).unwrap();
    s.link(r.tree, items[0], items[2]).unwrap();
    s.link(r.twin, items[0], items[1]).unwrap();
    let label = |i: usize| Label {
        text: LABELS[i].into(),
    };
    s.link_with(r.links, items[0], items[1], label(0)).unwrap();
    s.link_with(r.links, items[1], items[2], label(1)).unwrap();
    s.link(r.held, r.circle.upcast(c0), items[2]).unwrap();
    s
}

/// A hostile value for the length of a string or sequence inside rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// `Item::name` of the first item.
    RowString,
    /// `Item::ids` of the first item.
    RowSequence,
    /// `Item::marks` of the first item: zero-sized elements.
    RowUnits,
    /// `Label::text` of the first link.
    PayloadString,
}

/// The same store as [`store`], written by hand, with a hostile length in `field` if given.
fn snap(field: Option<(Field, u64)>) -> Snap {
    let hostile = |f: Field, real: usize| match field {
        Some((h, v)) if h == f => v,
        _ => real as u64,
    };
    let mut items = Vec::new();
    for (i, &(name, ids, marks)) in ITEMS.iter().enumerate() {
        let first = i == 0;
        let len = if first {
            hostile(Field::RowString, name.len())
        } else {
            name.len() as u64
        };
        bincode_varint(&mut items, len);
        items.extend_from_slice(name.as_bytes());
        let len = if first {
            hostile(Field::RowSequence, ids.len())
        } else {
            ids.len() as u64
        };
        bincode_varint(&mut items, len);
        for &id in ids {
            bincode_varint(&mut items, u64::from(id));
        }
        let len = if first {
            hostile(Field::RowUnits, marks)
        } else {
            marks as u64
        };
        bincode_varint(&mut items, len);
    }
    let mut payloads = Vec::new();
    for (i, text) in LABELS.iter().enumerate() {
        let len = if i == 0 {
            hostile(Field::PayloadString, text.len())
        } else {
            text.len() as u64
        };
        bincode_varint(&mut payloads, len);
        payloads.extend_from_slice(text.as_bytes());
    }
    let desc = Desc::default()
        .table("items")
        .table("shapes")
        .kind("circle", 1)
        .relation(RelationSpec::new(
            ONE_TO_MANY,
            (0, "children"),
            (0, "parent"),
        ))
        .relation(RelationSpec::new(ONE_TO_ONE, (0, "twin"), (0, "twin_of")))
        .relation(RelationSpec::new(
            MANY_TO_MANY,
            (0, "links"),
            (0, "linked_from"),
        ))
        .relation(RelationSpec::new(ONE_TO_MANY, (1, "held"), (0, "holder")).group(0))
        .poly_parent(0, "holder")
        .shapes_of(&Store::new(schema().0).to_snapshot().unwrap());
    Snap {
        fingerprint: schema().0.fingerprint(),
        desc,
        tables: vec![
            TableSection::Slots {
                slots: vec![Slot::Live(1); 3],
                free: vec![],
                rows: items,
            },
            TableSection::Slots {
                slots: vec![Slot::Live(1)],
                free: vec![],
                rows: vec![0], // Shape { sides: 0 }
            },
            TableSection::Kind {
                keys: vec![0],
                rows: vec![5], // Circle { radius: 5 }
            },
        ],
        relations: vec![
            RelationSection::OneToMany(vec![(0, vec![1, 2])]),
            RelationSection::OneToOne(vec![(0, 1)]),
            RelationSection::ManyToMany {
                a: vec![(0, vec![1]), (1, vec![2])],
                payloads,
                b: vec![(1, vec![0]), (2, vec![1])],
            },
            RelationSection::OneToMany(vec![(0, vec![2])]),
        ],
        entities: None,
        links: None,
    }
}

/// The decode limit of a blob of `len` bytes, as `src/codec.rs` sets it: the
/// smallest power of four, at least 4 KiB, that is at least 16 times the length.
fn decode_limit(len: usize) -> usize {
    let need = (len * 16).max(4096);
    let mut limit = 4096;
    while limit < need {
        limit *= 4;
    }
    limit
}

#[test]
fn the_hand_written_snapshot_is_the_one_the_store_saves() {
    let _serial = meter::serial();
    let saved = store().to_snapshot().unwrap();
    assert_eq!(snap(None).bytes(), saved);
}

/// Where a hostile length is put.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// A length of the payload's structure (read by the snapshot's own reader).
    Structure(Container),
    /// A length inside encoded rows or payloads (read by bincode, under its limit).
    Inside(Field),
}

const TARGETS: [Target; 17] = [
    Target::Structure(Container::TableCount),
    Target::Structure(Container::TableName),
    Target::Structure(Container::RelationCount),
    Target::Structure(Container::EndName),
    Target::Structure(Container::GroupCount),
    Target::Structure(Container::SlotCount),
    Target::Structure(Container::KindKeyCount),
    Target::Structure(Container::RowBlob),
    Target::Structure(Container::ListCount),
    Target::Structure(Container::ListLength),
    Target::Structure(Container::PairCount),
    Target::Structure(Container::PayloadBlob),
    Target::Structure(Container::FreeCount),
    Target::Inside(Field::RowString),
    Target::Inside(Field::RowSequence),
    Target::Inside(Field::RowUnits),
    Target::Inside(Field::PayloadString),
];

const HOSTILE: [u64; 3] = [u32::MAX as u64, 1 << 60, u64::MAX];

/// The snapshot with `value` as the length of `target`, header and checksums right.
fn hostile(target: Target, value: u64) -> Vec<u8> {
    match target {
        Target::Structure(c) => snap(None).bytes_with(Some((c, value))),
        Target::Inside(f) => snap(Some((f, value))).bytes(),
    }
}

/// The decode limit that applies to `target`: for a length in the structure, the limit of
/// the whole payload; inside rows or payloads, the limit of the blob they are in.
fn limit_for(target: Target) -> usize {
    let valid = snap(None);
    match target {
        Target::Structure(_) => decode_limit(valid.payload().len()),
        Target::Inside(Field::RowString | Field::RowSequence | Field::RowUnits) => {
            match &valid.tables[0] {
                TableSection::Slots { rows, .. } => decode_limit(rows.len()),
                TableSection::Kind { .. } => unreachable!(),
            }
        }
        Target::Inside(Field::PayloadString) => match &valid.relations[2] {
            RelationSection::ManyToMany { payloads, .. } => decode_limit(payloads.len()),
            _ => unreachable!(),
        },
    }
}

/// Loads `bytes`; returns the outcome, the time it took and its peak allocation. The
/// meter counts every thread's allocations, and the test harness may format the result of
/// the test that ran before on another thread meanwhile: of three loads (the same work),
/// the smallest peak and time count.
fn load(bytes: &[u8]) -> (Result<Store, SnapshotError>, u128, usize) {
    let mut best: Option<(Result<Store, SnapshotError>, u128, usize)> = None;
    for _ in 0..3 {
        let schema = schema().0;
        let ((loaded, micros), peak) = meter::peak(CEILING, || {
            let start = Instant::now();
            let loaded = Store::from_snapshot(schema, bytes);
            (loaded, start.elapsed().as_micros())
        });
        best = Some(match best {
            Some((_, m, p)) => (loaded, m.min(micros), p.min(peak)),
            None => (loaded, micros, peak),
        });
    }
    best.expect("three loads")
}

#[test]
fn a_hostile_length_in_any_container_is_refused_within_the_decode_limit() {
    let _serial = meter::serial();
    let valid = snap(None).bytes();
    let (loaded, micros, baseline) = load(&valid);
    assert!(loaded.is_ok(), "the valid snapshot loads");
    println!(
        "valid snapshot: {} bytes, loads in {micros} us, peak {baseline} bytes",
        valid.len()
    );
    let mut over = Vec::new();
    for target in TARGETS {
        let limit = limit_for(target);
        for value in HOSTILE {
            let bytes = hostile(target, value);
            assert_ne!(bytes, valid);
            let (loaded, micros, peak) = load(&bytes);
            let error = match loaded {
                Err(e @ SnapshotError::Malformed { .. }) => e,
                Err(SnapshotError::LimitExceeded {
                    section,
                    limit: got,
                }) => {
                    assert_eq!(
                        got as usize, limit,
                        "{target:?} = {value}: the limit reported"
                    );
                    SnapshotError::LimitExceeded {
                        section,
                        limit: got,
                    }
                }
                Err(e) => panic!("{target:?} = {value}: {e:?}"),
                Ok(_) => panic!("{target:?} = {value}: accepted"),
            };
            let kind = if matches!(error, SnapshotError::Malformed { .. }) {
                "Malformed"
            } else {
                "LimitExceeded"
            };
            // verify reads the structure but not rows or payloads, which need their types
            let verified = snapshot::verify(&bytes);
            match target {
                Target::Structure(_) => assert!(
                    matches!(verified, Err(SnapshotError::Malformed { .. })),
                    "{target:?} = {value}: verify gave {verified:?}"
                ),
                Target::Inside(_) => assert!(verified.is_ok(), "{target:?} = {value}"),
            }
            println!(
                "{:<28} {value:>20}: {kind:<13} in {micros:>5} us, peak {peak:>7} bytes \
                 (limit {limit}); {error}",
                format!("{target:?}")
            );
            // a sequence of zero-sized elements is refused by its count, not by the limit
            if let Target::Inside(Field::RowUnits) = target {
                assert_eq!(kind, "Malformed", "{target:?} = {value}: {error}");
            }
            // the whole attempt, not only the decoder, within the limit
            if peak > limit {
                over.push(format!("{target:?} = {value}: peak {peak}"));
            }
        }
    }
    assert!(over.is_empty(), "over the decode limit: {over:?}");
}

/// A row whose sequence grows 8x from disk to memory: small `u64`s take one byte stored.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Wide {
    name: String,
    values: Vec<u64>,
}

fn wide(i: usize) -> Wide {
    Wide {
        name: format!("row {i:06} {}", "x".repeat(40)),
        values: (0..24).map(|k| ((i + k) % 200) as u64).collect(),
    }
}

#[test]
fn a_large_legitimate_snapshot_whose_rows_grow_8x_in_memory_loads() {
    let _serial = meter::serial();
    const ROWS: usize = 200_000;
    let schema = || {
        let mut s = Schema::new();
        s.table::<Wide>("wide");
        s
    };
    let mut store = Store::new(schema());
    let keys: Vec<_> = (0..ROWS).map(|i| store.insert(wide(i))).collect();
    let bytes = store.to_snapshot().unwrap();
    let info = snapshot::inspect(&bytes).unwrap();
    let row_bytes = info.tables[0].row_bytes as usize;
    let start = Instant::now();
    let ((loaded, retained), peak) = meter::peak(1 << 30, || {
        meter::retained(|| Store::from_snapshot(schema(), &bytes))
    });
    let ms = start.elapsed().as_millis();
    let loaded = loaded.unwrap();
    let heap_values = ROWS * 24 * 8;
    println!(
        "{ROWS} rows: {} bytes ({row_bytes} of rows, decode limit {}); loaded in {ms} ms; \
         store {retained} bytes in memory ({:.1}x the rows stored; the sequences alone \
         {heap_values} bytes); load peak {peak} bytes",
        bytes.len(),
        decode_limit(row_bytes),
        retained as f64 / row_bytes as f64
    );
    assert_eq!(loaded.len::<Wide>(), ROWS);
    for i in [0, 1, ROWS / 2, ROWS - 1] {
        assert_eq!(loaded.get(keys[i]), Some(&wide(i)));
    }
    assert!(retained > 2 * row_bytes, "the rows grew in memory");
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
}

/// The densest row bincode stores: `u128` zeros, one byte each stored, sixteen counted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Dense {
    values: Vec<u128>,
}

#[test]
fn a_row_at_the_limits_worst_ratio_of_memory_to_bytes_still_loads() {
    let _serial = meter::serial();
    let schema = || {
        let mut s = Schema::new();
        s.table::<Dense>("dense");
        s
    };
    // 253 and 65,533 values (a 3-byte length) make blobs of 256 and 65,536 bytes, whose
    // limits are exactly 16 times their length
    for (n, blob) in [(0, 1), (1, 2), (253, 256), (65_533, 65_536)] {
        let mut store = Store::new(schema());
        let k = store.insert(Dense { values: vec![0; n] });
        let bytes = store.to_snapshot().unwrap();
        assert_eq!(snapshot::inspect(&bytes).unwrap().tables[0].row_bytes, blob);
        let loaded = Store::from_snapshot(schema(), &bytes).unwrap();
        assert_eq!(loaded.get(k).map(|d| d.values.len()), Some(n));
    }
}

#[test]
fn the_allocation_meter_reports_the_peak_of_what_runs_inside_it_only() {
    let _serial = meter::serial();
    let held = std::hint::black_box(vec![1u8; 1 << 20]);
    // the median of five measures, within a few kilobytes: the harness's own threads (its
    // output capture) may allocate or free a little meanwhile
    let median = |mut v: Vec<usize>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let peaks = (0..5)
        .map(|_| {
            let (len, peak) = meter::peak(CEILING, || {
                drop(std::hint::black_box(vec![0u8; 300_000]));
                std::hint::black_box(vec![0u8; 100_000]).len()
            });
            assert_eq!(len, 100_000);
            peak
        })
        .collect();
    let peak = median(peaks);
    assert!((296_000..304_000).contains(&peak), "peak {peak}");
    // below the high-water mark left by the megabyte and the first peak
    let small = median(
        (0..5)
            .map(|_| meter::peak(CEILING, || std::hint::black_box(vec![0u8; 1_000]).len()).1)
            .collect(),
    );
    assert!((500..6_000).contains(&small), "peak {small}");
    let (kept, size) = meter::retained(|| std::hint::black_box(vec![0u8; 5_000]));
    assert_eq!((kept.len(), size), (5_000, 5_000));
    drop(held);
}
