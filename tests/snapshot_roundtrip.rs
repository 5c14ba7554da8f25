//! Snapshot round trips (T1): every table, kind, relation, payload and order comes back
//! under the same keys; re-saving gives the same bytes; a loaded store keeps working.

mod common;

use common::poly;
use common::*;
use relgraph::{DeleteRule, Rules, Store};

fn busy_world(seed: u64) -> (Store, Rels) {
    common::snapshot::busy_world(seed, 2)
}

fn reload(s: &Store) -> Store {
    let bytes = s.to_snapshot().unwrap();
    let loaded = Store::from_snapshot(s.schema().clone(), &bytes).unwrap();
    check(&loaded);
    loaded
}

fn cfg() -> Config {
    Config {
        reports: Rules::new().acyclic(),
        ..Config::default()
    }
}

#[test]
fn a_round_trip_gives_back_every_entity_link_payload_and_order_under_the_same_keys() {
    for seed in 1..=20 {
        let (s, r) = busy_world(seed);
        let loaded = reload(&s);
        assert_eq!(dump(&loaded, &r), dump(&s, &r), "seed {seed}");
    }
}

#[test]
fn re_saving_a_loaded_store_gives_the_same_bytes() {
    for seed in 1..=20 {
        let (s, _) = busy_world(seed);
        let bytes = s.to_snapshot().unwrap();
        let loaded = reload(&s);
        assert_eq!(loaded.to_snapshot().unwrap(), bytes, "seed {seed}");
    }
}

#[test]
fn a_loaded_store_keeps_working_and_never_reissues_a_key() {
    let (mut s, r) = busy_world(7);
    let removed = user(&mut s, "gone");
    s.remove(removed).unwrap();
    let mut loaded = reload(&s);
    // the same operations on both give the same state
    for st in [&mut s, &mut loaded] {
        let fresh: Vec<_> = (0..10).map(|i| user(st, &format!("new{i}"))).collect();
        for &k in &fresh {
            assert_ne!(k, removed, "a removed key came back");
        }
        let p = post(st, "after");
        st.link(r.posts, fresh[0], p).unwrap();
        let first = st.keys::<User>().next().unwrap();
        st.remove(first).unwrap();
        check(st);
    }
    assert!(!loaded.contains(removed));
    assert_eq!(
        dump(&loaded, &r).lines().count(),
        dump(&s, &r).lines().count()
    );
}

#[test]
fn an_empty_store_round_trips() {
    let (s, r) = world(cfg());
    let loaded = reload(&s);
    assert_eq!(dump(&loaded, &r), dump(&s, &r));
    assert_eq!(loaded.to_snapshot().unwrap(), s.to_snapshot().unwrap());
}

#[test]
fn polymorphic_rows_kinds_and_poly_parents_round_trip() {
    let (s, w, _) = poly::populated(poly::Config::default());
    let bytes = s.to_snapshot().unwrap();
    let loaded = Store::from_snapshot(s.schema().clone(), &bytes).unwrap();
    check(&loaded);
    assert_eq!(poly::dump(&loaded, &w), poly::dump(&s, &w));
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
}

#[test]
fn a_schema_built_again_by_the_same_code_loads_the_snapshot() {
    let (s, old) = busy_world(3);
    let bytes = s.to_snapshot().unwrap();
    let (schema, r) = schema(cfg());
    assert_eq!(schema.fingerprint(), s.schema().fingerprint());
    let loaded = Store::from_snapshot(schema, &bytes).unwrap();
    check(&loaded);
    assert_eq!(loaded.link_count(r.posts), s.link_count(old.posts));
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
}

#[test]
fn delete_rules_apply_after_a_load() {
    let cfg = Config {
        posts: DeleteRule::Cascade.into(),
        ..cfg()
    };
    let (mut s, r) = world(cfg);
    let u = user(&mut s, "u");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, u, p).unwrap();
    }
    let mut loaded = reload(&s);
    loaded.remove(u).unwrap();
    assert_eq!(loaded.len::<Post>(), 0);
}

#[test]
fn a_snapshot_cannot_be_taken_inside_a_transaction() {
    let (mut s, _) = world(cfg());
    let r: Result<(), relgraph::snapshot::SnapshotError> = s.transaction(|s| {
        user(s, "u");
        match s.to_snapshot() {
            Err(e) => Err(e),
            Ok(_) => panic!("a snapshot was taken inside a transaction"),
        }
    });
    assert!(matches!(
        r,
        Err(relgraph::snapshot::SnapshotError::InTransaction)
    ));
}

#[path = "../bench/src/lib.rs"]
mod workloads;

#[test]
fn the_w1_and_w5_state_round_trips_through_a_file_with_no_temp_left() {
    use workloads::*;
    let scale = Scale::from_env(0.01);
    let state = rg_w9_state(BlogData::new(&scale), SchoolData::new(&scale));
    let sum = rg_w9_checksum(&state);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w1w5.rlg");
    let mut saves = 0;
    let start = std::time::Instant::now();
    state.store.save(&path).unwrap();
    saves += 1;
    let saved_in = start.elapsed();
    let bytes = std::fs::read(&path).unwrap();
    let start = std::time::Instant::now();
    let loaded = Store::load(state.store.schema().clone(), &path).unwrap();
    let loaded_in = start.elapsed();
    check(&loaded);
    let loaded = RgW9 {
        store: loaded,
        ..state
    };
    assert_eq!(rg_w9_checksum(&loaded), sum);
    // a second save over the first: the same bytes, and only the file itself in the folder
    loaded.store.save(&path).unwrap();
    saves += 1;
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count() - 1;
    assert_eq!(leftovers, 0);
    println!(
        "T1: saves {saves}, bytes {}, save {saved_in:?}, load {loaded_in:?} (debug build), \
         leftovers {leftovers}",
        bytes.len()
    );
}

#[test]
fn rows_with_hash_maps_load_whatever_order_their_entries_were_saved_in() {
    use std::collections::HashMap;
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Inventory {
        counts: HashMap<String, u32>,
    }
    let mut schema = relgraph::Schema::new();
    schema.table::<Inventory>("inventories");
    let mut s = Store::new(schema);
    let counts: HashMap<String, u32> = (0..50).map(|i| (format!("item{i}"), i)).collect();
    let k = s.insert(Inventory { counts });
    let loaded = Store::from_snapshot(s.schema().clone(), &s.to_snapshot().unwrap()).unwrap();
    assert_eq!(loaded.get(k), s.get(k));
}

#[test]
fn snapshot_errors_convert_into_the_crate_error_for_question_marks() {
    fn save_and_load(dir: &std::path::Path) -> relgraph::Result<usize> {
        let mut schema = relgraph::Schema::new();
        schema.table::<String>("names");
        let mut store = relgraph::Store::new(schema.clone());
        store.insert("Ann".to_string());
        let path = dir.join("names.rlg");
        store.save(&path)?;
        let loaded = relgraph::Store::load(schema.clone(), &path)?;
        relgraph::Store::load(schema, dir.join("missing.rlg"))?;
        Ok(loaded.len::<String>())
    }
    let dir = tempfile::tempdir().unwrap();
    let err = save_and_load(dir.path()).expect_err("the missing file fails the load");
    assert!(matches!(err, relgraph::Error::Snapshot(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}
