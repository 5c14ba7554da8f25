//! Entity tables: insert, get, update, remove, counts, iteration, `rows`, indexing, and
//! generational keys that never resolve to a newer entity.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::*;
use relgraph::{AnyKey, Key, RawKey, Schema, StaleKey, Store};

fn empty() -> (Store, Rels) {
    world(Config::default())
}

#[test]
fn an_inserted_entity_is_found_under_its_key() {
    let (mut s, _) = empty();
    let alice = user(&mut s, "alice");
    check(&s);
    assert_eq!(
        s.get(alice),
        Some(&User {
            name: "alice".into()
        })
    );
    assert!(s.contains(alice));
    assert_eq!(s[alice].name, "alice");
    assert_eq!(s.len::<User>(), 1);
}

#[test]
fn each_insert_gets_a_distinct_key() {
    let (mut s, _) = empty();
    let keys: Vec<Key<User>> = (0..100).map(|i| user(&mut s, &format!("u{i}"))).collect();
    check(&s);
    let distinct: HashSet<Key<User>> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), 100);
    for (i, &k) in keys.iter().enumerate() {
        assert_eq!(s[k].name, format!("u{i}"));
    }
}

#[test]
fn update_changes_the_entity_in_place_and_returns_what_the_closure_returns() {
    let (mut s, _) = empty();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let old = s
        .update(alice, |u| std::mem::replace(&mut u.name, "alicia".into()))
        .unwrap();
    check(&s);
    assert_eq!(old, "alice");
    assert_eq!(s[alice].name, "alicia");
    assert_eq!(s[bob].name, "bob", "another entity is untouched");
    assert_eq!(s.len::<User>(), 2);
}

#[test]
fn update_with_a_stale_key_fails_naming_the_table_and_changes_nothing() {
    let (mut s, r) = empty();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    s.remove(alice).unwrap();
    let before = dump(&s, &r);
    let mut called = false;
    let err = s.update(alice, |u| {
        called = true;
        u.name.clear();
    });
    check(&s);
    assert!(!called, "the closure must not run for a stale key");
    assert_eq!(
        err,
        Err(StaleKey {
            key: AnyKey {
                table: "users",
                key: alice.raw()
            }
        })
    );
    assert_eq!(dump(&s, &r), before);
    assert_eq!(s[bob].name, "bob");
}

#[test]
fn removing_an_entity_makes_its_key_stale() {
    let (mut s, _) = empty();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    s.remove(alice).unwrap();
    check(&s);
    assert_eq!(s.get(alice), None);
    assert!(!s.contains(alice));
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(s[bob].name, "bob");
}

#[test]
fn removing_twice_is_a_stale_key_error_that_changes_nothing() {
    let (mut s, r) = empty();
    let alice = user(&mut s, "alice");
    user(&mut s, "bob");
    s.remove(alice).unwrap();
    let before = dump(&s, &r);
    let err = s.remove(alice).unwrap_err();
    check(&s);
    assert_eq!(
        err,
        relgraph::RemoveError::Stale(StaleKey {
            key: AnyKey {
                table: "users",
                key: alice.raw()
            }
        })
    );
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn a_stale_key_error_reads_as_a_sentence_naming_table_and_key() {
    let (mut s, _) = empty();
    let alice = user(&mut s, "alice");
    s.remove(alice).unwrap();
    let err = s.update(alice, |_| ()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("stale key users["), "{text}");
    assert!(text.contains(&alice.raw().to_string()), "{text}");
    let umbrella: relgraph::Error = err.into();
    assert_eq!(umbrella.to_string(), text);
}

#[test]
fn len_and_is_empty_follow_inserts_and_removes() {
    let (mut s, _) = empty();
    assert!(s.is_empty::<User>());
    assert_eq!(s.len::<User>(), 0);
    let keys: Vec<Key<User>> = (0..10).map(|i| user(&mut s, &format!("u{i}"))).collect();
    assert_eq!(s.len::<User>(), 10);
    assert!(!s.is_empty::<User>());
    assert!(s.is_empty::<Post>(), "other tables stay empty");
    for (i, &k) in keys.iter().enumerate() {
        s.remove(k).unwrap();
        check(&s);
        assert_eq!(s.len::<User>(), 9 - i);
    }
    assert!(s.is_empty::<User>());
}

#[test]
fn iteration_lists_every_live_entity_once_in_slot_order() {
    let (mut s, _) = empty();
    let keys: Vec<Key<User>> = (0..6).map(|i| user(&mut s, &format!("u{i}"))).collect();
    s.remove(keys[1]).unwrap();
    s.remove(keys[4]).unwrap();
    check(&s);
    let listed: Vec<(Key<User>, String)> =
        s.iter::<User>().map(|(k, u)| (k, u.name.clone())).collect();
    let expected: Vec<(Key<User>, String)> = [0, 2, 3, 5]
        .iter()
        .map(|&i| (keys[i], format!("u{i}")))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(
        s.keys::<User>().collect::<Vec<_>>(),
        [keys[0], keys[2], keys[3], keys[5]]
    );
}

#[test]
fn a_new_entity_reuses_a_freed_slot_under_a_new_key() {
    let (mut s, _) = empty();
    let keys: Vec<Key<User>> = (0..3).map(|i| user(&mut s, &format!("u{i}"))).collect();
    s.remove(keys[1]).unwrap();
    let newer = user(&mut s, "newer");
    check(&s);
    assert_eq!(
        newer.raw().index(),
        keys[1].raw().index(),
        "the slot is reused"
    );
    assert_ne!(newer, keys[1]);
    assert!(newer.raw().version() > keys[1].raw().version());
    assert_eq!(
        s.keys::<User>().collect::<Vec<_>>(),
        [keys[0], newer, keys[2]],
        "iteration is in slot order"
    );
}

#[test]
fn a_stale_key_never_resolves_to_a_newer_entity_in_the_same_slot() {
    let (mut s, _) = empty();
    let mut dead: Vec<Key<User>> = Vec::new();
    let mut live = user(&mut s, "gen0");
    for gen in 1..=1000 {
        s.remove(live).unwrap();
        dead.push(live);
        live = user(&mut s, &format!("gen{gen}"));
        assert_eq!(live.raw().index(), dead[0].raw().index());
    }
    check(&s);
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(s[live].name, "gen1000");
    for &k in &dead {
        assert_eq!(s.get(k), None, "{k:?} resolved");
        assert!(!s.contains(k));
        assert!(s.update(k, |u| u.name.clear()).is_err());
        assert!(s.remove(k).is_err());
        assert!(!s.rows::<User>().contains(k));
    }
    assert_eq!(s[live].name, "gen1000", "the live entity was not touched");
    let versions: BTreeSet<u32> = dead.iter().map(|k| k.raw().version()).collect();
    assert_eq!(
        versions.len(),
        dead.len(),
        "every generation had its own version"
    );
}

#[test]
fn rows_reads_the_table_like_the_store() {
    let (mut s, _) = empty();
    let a = user(&mut s, "a");
    let b = user(&mut s, "b");
    let c = user(&mut s, "c");
    s.remove(b).unwrap();
    let rows = s.rows::<User>();
    assert_eq!(rows.len(), 2);
    assert!(!rows.is_empty());
    assert_eq!(rows.get(a).map(|u| u.name.as_str()), Some("a"));
    assert_eq!(rows.get(b), None);
    assert!(rows.contains(c));
    assert!(!rows.contains(b));
    assert_eq!(rows[c].name, "c");
    let copy = rows; // Copy
    assert_eq!(
        copy.iter()
            .map(|(k, u)| (k, u.name.clone()))
            .collect::<Vec<_>>(),
        [(a, "a".to_string()), (c, "c".to_string())]
    );
    assert!(s.rows::<Post>().is_empty());
}

#[test]
#[should_panic(expected = "stale key")]
fn indexing_the_store_with_a_stale_key_panics() {
    let (mut s, _) = empty();
    let a = user(&mut s, "a");
    s.remove(a).unwrap();
    user(&mut s, "reuses the slot");
    let _ = &s[a];
}

#[test]
#[should_panic(expected = "stale key")]
fn indexing_rows_with_a_stale_key_panics() {
    let (mut s, _) = empty();
    let a = user(&mut s, "a");
    s.remove(a).unwrap();
    user(&mut s, "reuses the slot");
    let rows = s.rows::<User>();
    let _ = &rows[a];
}

#[test]
fn tables_are_independent_key_spaces() {
    let (mut s, r) = empty();
    let u = user(&mut s, "u");
    let p = post(&mut s, "p");
    assert_eq!(u.raw(), p.raw(), "first keys of two tables coincide");
    s.remove(u).unwrap();
    check(&s);
    assert_eq!(
        s[p].title, "p",
        "removing a user leaves the post with the same raw key"
    );
    assert_eq!(s.len::<Post>(), 1);
    let before = dump(&s, &r);
    assert!(s.remove(u).is_err());
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn keys_are_copy_eq_ord_hash_and_eight_bytes() {
    let (mut s, _) = empty();
    let a = user(&mut s, "a");
    let b = user(&mut s, "b");
    let copy = a;
    assert_eq!(copy, a);
    assert_ne!(a, b);
    assert!(a < b, "keys order by slot");
    let set: HashSet<Key<User>> = [a, b, copy].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(std::mem::size_of::<Key<User>>(), 8);
    assert_eq!(std::mem::size_of::<Option<Key<User>>>(), 8);
    assert_eq!(format!("{a:?}"), format!("Key({:?})", a.raw()));
}

#[test]
fn a_raw_key_round_trips_through_bits_and_back_to_the_same_entity() {
    let (mut s, _) = empty();
    user(&mut s, "filler");
    let a = user(&mut s, "a");
    let raw: RawKey = a.into();
    let bits = raw.to_bits();
    let back = RawKey::from_bits(bits).unwrap();
    assert_eq!(back, raw);
    assert_eq!(Key::<User>::from_raw(back), a);
    assert_eq!(s[Key::<User>::from_raw(back)].name, "a");
    assert_eq!(
        RawKey::from_bits(u64::from(raw.index())),
        None,
        "version zero"
    );
}

#[test]
fn a_forged_key_with_a_wrong_version_or_index_is_stale() {
    let (mut s, _) = empty();
    let a = user(&mut s, "a");
    let raw = a.raw();
    let wrong_version =
        RawKey::from_bits(u64::from(raw.version() + 1) << 32 | u64::from(raw.index())).unwrap();
    let wrong_index = RawKey::from_bits(u64::from(raw.version()) << 32 | 999).unwrap();
    for forged in [wrong_version, wrong_index] {
        let k = Key::<User>::from_raw(forged);
        assert_eq!(s.get(k), None);
        assert!(s.update(k, |u| u.name.clear()).is_err());
        assert!(s.remove(k).is_err());
    }
    check(&s);
    assert_eq!(s[a].name, "a");
}

#[test]
fn reserving_room_changes_nothing_observable() {
    let (mut s, r) = empty();
    user(&mut s, "a");
    let before = dump(&s, &r);
    s.reserve::<User>(1000);
    s.reserve::<Post>(10);
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
#[should_panic(expected = "is not a table of this store")]
fn inserting_an_unregistered_type_panics() {
    let (mut s, _) = empty();
    s.insert(Unregistered);
}

#[test]
#[should_panic(expected = "is not a table of this store")]
fn reading_an_unregistered_type_panics() {
    let (s, _) = empty();
    let _ = s.len::<Unregistered>();
}

#[test]
#[should_panic(expected = "is not a table of this store")]
fn getting_an_unregistered_type_panics() {
    let (s, _) = empty();
    let raw = RawKey::from_bits(1 << 32).unwrap();
    let _ = s.get(Key::<Unregistered>::from_raw(raw));
}

#[test]
fn a_relation_handle_of_a_schema_declared_the_same_way_works() {
    let (mut s, _) = empty();
    let (_, other) = schema(Config::default());
    let u = user(&mut s, "u");
    let p = post(&mut s, "p");
    s.link(other.posts, u, p).unwrap();
    assert_eq!(s.parent(other.posts, p), Some(u));
}

#[test]
fn registering_a_type_again_under_its_name_returns_the_same_table() {
    let mut schema = Schema::new();
    let first = schema.table::<User>("users");
    let again = schema.table::<User>("users");
    assert_eq!(first, again);
    assert_eq!(schema.table_count(), 1);
    assert_eq!(schema.table_names().collect::<Vec<_>>(), ["users"]);
}

#[test]
#[should_panic(expected = "already registered as table `users`")]
fn registering_a_type_under_a_second_name_panics() {
    let mut schema = Schema::new();
    schema.table::<User>("users");
    schema.table::<User>("people");
}

#[test]
#[should_panic(expected = "table name `users` is already taken")]
fn registering_a_second_type_under_a_taken_name_panics() {
    let mut schema = Schema::new();
    schema.table::<User>("users");
    schema.table::<Post>("users");
}

#[test]
fn a_store_of_plain_std_types_works_without_derives() {
    let mut schema = Schema::new();
    schema.table::<String>("names");
    schema.table::<u64>("numbers");
    let mut s = Store::new(schema);
    let name = s.insert("x".to_string());
    let n = s.insert(7u64);
    s.update(n, |v| *v += 1).unwrap();
    check(&s);
    assert_eq!(s[name], "x");
    assert_eq!(s[n], 8);
}

#[test]
fn stores_keys_and_handles_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let (mut s, r) = empty();
    let a = user(&mut s, "a");
    shareable(&s);
    shareable(&a);
    shareable(&r.posts);
    shareable(&r.enrollments);
    let name = std::thread::scope(|scope| scope.spawn(|| s[a].name.clone()).join().unwrap());
    assert_eq!(name, "a");
}
