//! No key is ever issued twice: the free list holds each vacant slot once whatever commits
//! and rollbacks happened, a slot at its last version is retired, and a loaded snapshot
//! issues exactly the keys the saved store would have issued.

mod snapshot_support;

use std::collections::HashSet;

use proptest::prelude::*;
use relgraph::{Key, RawKey, Schema, Store};
use serde::{Deserialize, Serialize};
use snapshot_support::*;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Node {
    n: u32,
}

fn schema() -> Schema {
    let mut s = Schema::new();
    s.table::<Node>("nodes");
    s
}

/// A snapshot of one table `nodes` whose slot 0 is vacant with `high` the highest version
/// it issued (listed on the free list), and slot 1 live at version 1.
fn near_exhaustion(high: u32) -> Vec<u8> {
    let schema = schema();
    let desc = Desc::default()
        .table("nodes")
        .shapes_of(&Store::new(schema.clone()).to_snapshot().unwrap());
    let mut rows = Vec::new();
    bincode_varint(&mut rows, 5);
    Snap {
        fingerprint: schema.fingerprint(),
        desc,
        tables: vec![TableSection::Slots {
            slots: vec![Slot::Vacant(high), Slot::Live(1)],
            free: vec![0],
            rows,
        }],
        relations: vec![],
        entities: None,
        links: None,
    }
    .bytes()
}

fn key(index: u32, version: u32) -> Key<Node> {
    Key::from_raw(RawKey::from_bits(u64::from(version) << 32 | u64::from(index)).unwrap())
}

#[test]
fn a_slot_issues_its_last_version_once_and_is_then_retired_for_good() {
    let mut s = Store::from_snapshot(schema(), &near_exhaustion(u32::MAX - 1)).unwrap();
    let last = s.insert(Node { n: 0 });
    assert_eq!(last, key(0, u32::MAX), "the slot's last version");
    s.remove(last).unwrap();
    // retired: the next inserts take fresh slots, and keep doing so across a save
    let fresh = s.insert(Node { n: 1 });
    assert_eq!(fresh, key(2, 1));
    let bytes = s.to_snapshot().unwrap();
    let mut s = Store::from_snapshot(schema(), &bytes).unwrap();
    let mut seen: HashSet<Key<Node>> = [last, fresh].into();
    for i in 0..50 {
        let k = s.insert(Node { n: i });
        assert_ne!(k.raw().index(), 0, "a retired slot was reused");
        assert!(seen.insert(k), "{k:?} issued twice");
        if i % 2 == 0 {
            s.remove(k).unwrap();
        }
        s.check_integrity().unwrap();
    }
}

#[test]
fn a_rolled_back_removal_does_not_list_its_slot_twice() {
    // remove, roll back, remove, then inserts: before, the slot was listed twice, and once
    // it reached its last version the second entry reused it (a version overflow)
    let mut s = Store::from_snapshot(schema(), &near_exhaustion(u32::MAX - 2)).unwrap();
    let k = s.insert(Node { n: 0 });
    assert_eq!(k, key(0, u32::MAX - 1));
    let r: Result<(), ()> = s.transaction(|s| {
        s.remove(k).unwrap();
        Err(())
    });
    assert!(r.is_err());
    s.check_integrity().unwrap();
    s.remove(k).unwrap();
    let mut seen = HashSet::from([k]);
    for i in 0..5 {
        let k = s.insert(Node { n: i });
        assert!(seen.insert(k), "{k:?} issued twice");
        if k.raw().index() == 0 {
            assert_eq!(k, key(0, u32::MAX));
            s.remove(k).unwrap();
        }
        s.check_integrity().unwrap();
    }
    assert!(seen.contains(&key(0, u32::MAX)));
}

#[derive(Clone, Debug)]
enum Op {
    Insert,
    Remove(usize),
    /// A transaction that removes and inserts, then rolls back.
    RolledBack(Vec<Option<usize>>),
    /// The same, committed.
    Committed(Vec<Option<usize>>),
}

fn op() -> impl Strategy<Value = Op> {
    let step = proptest::option::of(0..64usize);
    prop_oneof![
        3 => Just(Op::Insert),
        2 => (0..64usize).prop_map(Op::Remove),
        2 => proptest::collection::vec(step.clone(), 1..6).prop_map(Op::RolledBack),
        1 => proptest::collection::vec(step, 1..6).prop_map(Op::Committed),
    ]
}

/// Applies `op`: `None` inserts, `Some(i)` removes the `i`-th live key (modulo).
fn apply(s: &mut Store, op: &Op) {
    fn step(s: &mut Store, step: Option<usize>) {
        match step {
            None => {
                s.insert(Node { n: 0 });
            }
            Some(i) => {
                let live: Vec<Key<Node>> = s.keys::<Node>().collect();
                if !live.is_empty() {
                    s.remove(live[i % live.len()]).unwrap();
                }
            }
        }
    }
    match op {
        Op::Insert => step(s, None),
        Op::Remove(i) => step(s, Some(*i)),
        Op::RolledBack(steps) | Op::Committed(steps) => {
            let commit = matches!(op, Op::Committed(_));
            let _ = s.transaction(|s| {
                for &st in steps {
                    step(s, st);
                }
                if commit {
                    Ok(())
                } else {
                    Err(())
                }
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_loaded_store_issues_the_same_keys_as_the_store_it_was_saved_from(
        history in proptest::collection::vec(op(), 0..60),
        after in proptest::collection::vec(op(), 0..30),
    ) {
            let mut original = Store::new(schema());
        for op in &history {
            apply(&mut original, op);
        }
        original.check_integrity().unwrap();
        let bytes = original.to_snapshot().unwrap();
        let mut loaded = Store::from_snapshot(schema(), &bytes).unwrap();
        prop_assert_eq!(loaded.to_snapshot().unwrap(), bytes);
        // the same further history gives the same keys, and the next inserts too
        for op in &after {
            apply(&mut original, op);
            apply(&mut loaded, op);
        }
        let next = |s: &mut Store| (0..8).map(|n| s.insert(Node { n })).collect::<Vec<_>>();
        prop_assert_eq!(next(&mut loaded), next(&mut original));
        prop_assert_eq!(loaded.to_snapshot().unwrap(), original.to_snapshot().unwrap());
        loaded.check_integrity().unwrap();
    }
}

#[test]
fn a_version_1_file_reuses_its_vacant_slots_lowest_first() {
    use relgraph::snapshot::{checksum, Header};
    // version 1 kept no free list: slots 0, 2 and 3 vacant, slot 1 live
    let mut payload = Vec::new();
    varint(&mut payload, 1); // one table
    varint(&mut payload, 5);
    payload.extend_from_slice(b"nodes");
    varint(&mut payload, 1); // version
    varint(&mut payload, 0); // not a kind
    varint(&mut payload, 0); // no relations
    varint(&mut payload, 0); // no polymorphic parent ends
    varint(&mut payload, 4); // slots
    for state in [1 << 2, 1 << 2 | 1, 3 << 2, 1 << 2] {
        varint(&mut payload, state);
    }
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.push(5); // the row of slot 1
    let header = Header {
        version: 1,
        flags: 0,
        fingerprint: checksum(b"relgraph schema 1\ntable nodes v1\n"),
        payload_len: payload.len() as u64,
        entities: 1,
        links: 0,
        payload_checksum: checksum(&payload),
    };
    let mut bytes = header.to_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    let mut s = Store::from_snapshot(schema(), &bytes).unwrap();
    assert_eq!(s.get(key(1, 1)), Some(&Node { n: 5 }));
    let keys: Vec<_> = (0..4).map(|n| s.insert(Node { n })).collect();
    assert_eq!(keys, [key(0, 2), key(2, 4), key(3, 2), key(4, 1)]);
    s.check_integrity().unwrap();
}
