//! Secondary and unique indexes: declared on a table, a kind and many-to-many payloads;
//! lookups by value, ranges and prefixes; exactness through updates, deletes, cascades,
//! transactions, undo and redo, loads and replicas; unique violations as errors that change
//! nothing; key closures that panic.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use relgraph::{
    DeleteRule, Error, Hashed, Index, IndexError, Key, Kind, ManyToMany, OneToMany, Ordered,
    Schema, Store,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    age: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Post {
    title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Notification {
    at: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Email {
    address: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sms {
    number: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Course {
    code: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Grade(u32);

thread_local! {
    /// Makes the `users_by_email` key closure panic while set (per test thread).
    static EXPLODE: Cell<bool> = const { Cell::new(false) };
}

#[derive(Clone, Copy)]
struct W {
    by_name: Index<Key<User>, String, Ordered>,
    by_email: Index<Key<User>, String, Hashed>,
    by_age: Index<Key<User>, u32, Ordered>,
    by_title: Index<Key<Post>, String, Hashed>,
    by_address: Index<Key<Email>, String, Hashed>,
    by_grade: Index<(Key<User>, Key<Course>), u32, Ordered>,
    seat: Index<(Key<User>, Key<Course>), u32, Hashed>,
    posts: OneToMany<User, Post>,
    enrolled: ManyToMany<User, Course, Grade>,
    email: Kind<Notification, Email>,
    sms: Kind<Notification, Sms>,
}

fn schema(indexes: bool) -> (Schema, Option<W>) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts_t = s.table::<Post>("posts");
    let courses = s.table::<Course>("courses");
    let notes = s.table::<Notification>("notifications");
    let email = s.kind::<Notification, Email>(notes, "email");
    let sms = s.kind::<Notification, Sms>(notes, "sms");
    let posts = s.one_to_many(users, "posts", posts_t, "author", DeleteRule::Cascade);
    let enrolled = s.many_to_many_with(users, "courses", courses, "students", DeleteRule::Nullify);
    if !indexes {
        return (s, None);
    }
    let w = W {
        by_name: s.ordered_index(users, "users_by_name", |u: &User| u.name.clone()),
        by_email: s.unique_index(users, "users_by_email", |u: &User| {
            assert!(!EXPLODE.get(), "the key closure panics");
            u.email.clone()
        }),
        by_age: s.ordered_index(users, "users_by_age", |u: &User| u.age),
        by_title: s.index(posts_t, "posts_by_title", |p: &Post| p.title.clone()),
        by_address: s.unique_index(email, "emails_by_address", |e: &Email| e.address.clone()),
        by_grade: s.ordered_payload_index(enrolled, "enrollments_by_grade", |_, _, g: &Grade| g.0),
        // grades by tens
        seat: s.payload_index(enrolled, "seats", |_, _, g: &Grade| g.0 / 10),
        posts,
        enrolled,
        email,
        sms,
    };
    (s, Some(w))
}

fn world() -> (Store, W) {
    let (s, w) = schema(true);
    (Store::new(s), w.unwrap())
}

fn user(name: &str, email: &str, age: u32) -> User {
    User {
        name: name.into(),
        email: email.into(),
        age,
    }
}

fn check(s: &Store) {
    s.check_integrity().unwrap();
    s.check_indexes().unwrap();
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

// ----- lookups --------------------------------------------------------------------------

#[test]
fn a_row_is_found_by_its_indexed_value_and_no_longer_after_it_changes_or_goes() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let bob = s.insert(user("Bob", "bob@x", 40));
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    assert_eq!(s.find_by(w.by_email, "bob@x"), Some(bob));
    assert_eq!(s.lookup(w.by_email, "eve@x"), None);
    s.update(ann, |u| u.email = "ann@y".into()).unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@x"), None);
    assert_eq!(s.lookup(w.by_email, "ann@y"), Some(ann));
    s.replace(bob, user("Bob", "bob@y", 41)).unwrap();
    assert_eq!(s.lookup(w.by_email, "bob@y"), Some(bob));
    assert_eq!(s.indexed_value(w.by_age, bob), Some(&41));
    s.remove(bob).unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_email, "bob@y"), None);
    assert_eq!(s.count_by(w.by_age, &41), 0);
}

#[test]
fn a_value_held_by_many_rows_finds_them_all_and_counts_them() {
    let (mut s, w) = world();
    let keys = s.insert_all((0..10).map(|i| user(&format!("u{i}"), &format!("{i}@x"), i % 3)));
    check(&s);
    let zeros = sorted(s.lookup_all(w.by_age, &0).collect());
    assert_eq!(zeros, vec![keys[0], keys[3], keys[6], keys[9]]);
    assert_eq!(s.count_by(w.by_age, &1), 3);
    assert_eq!(s.distinct_values(w.by_age), 3);
    let rows: Vec<&str> = s
        .filter_by(w.by_age, &2)
        .map(|(_, u)| u.name.as_str())
        .collect();
    assert_eq!(sorted(rows), ["u2", "u5", "u8"]);
    // the scan finds the same rows
    let scanned = sorted(s.filter::<User>(|u| u.age == 2).map(|(k, _)| k).collect());
    assert_eq!(scanned, sorted(s.lookup_all(w.by_age, &2).collect()));
}

/// A value whose hashes all collide: a hash index must still tell its values apart.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Colliding(u32);

impl std::hash::Hash for Colliding {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

#[test]
fn values_whose_hashes_collide_keep_their_own_holders_through_changes_and_removals() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let by_age = schema.index(users, "users_by_colliding_age", |u: &User| Colliding(u.age));
    let mut s = Store::new(schema);
    let keys = s.insert_all((0..12).map(|i| user(&format!("u{i}"), &format!("{i}@x"), i % 4)));
    check(&s);
    // take out holders from the middle of each value's holders, move one to another value
    for &i in &[5usize, 0, 10] {
        s.remove(keys[i]).unwrap();
        check(&s);
    }
    s.update(keys[1], |u| u.age = 2).unwrap();
    check(&s);
    for age in 0..4 {
        let want: Vec<Key<User>> = s.filter::<User>(|u| u.age == age).map(|(k, _)| k).collect();
        assert_eq!(
            sorted(s.lookup_all(by_age, &Colliding(age)).collect()),
            sorted(want)
        );
    }
    assert_eq!(s.indexed_value(by_age, keys[1]), Some(&Colliding(2)));
    assert_eq!(s.distinct_values(by_age), 4);
}

#[test]
fn unique_ordered_and_unique_payload_indexes_refuse_a_second_holder_and_change_nothing() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let courses = schema.table::<Course>("courses");
    let enrolled =
        schema.many_to_many_with(users, "courses", courses, "students", DeleteRule::Nullify);
    let by_age = schema.unique_ordered_index(users, "users_by_age", |u: &User| u.age);
    // one grade per course: (course, grade) held once
    let rank = schema.unique_payload_index(enrolled, "rank", |_, c, g: &Grade| (c, g.0));
    let ranked = schema.unique_ordered_payload_index(enrolled, "ranked", |_, _, g: &Grade| g.0);
    let mut s = Store::new(schema);
    let ann = s.insert(user("Ann", "ann@x", 30));
    let bob = s.insert(user("Bob", "bob@x", 40));
    let err = s.try_insert(user("Cy", "cy@x", 30)).unwrap_err();
    assert!(err.to_string().contains("users_by_age"), "{err}");
    assert_eq!(s.len::<User>(), 2);
    assert_eq!(
        s.range(by_age, ..).map(|(a, _)| *a).collect::<Vec<_>>(),
        [30, 40]
    );
    let c = s.insert(Course { code: "c".into() });
    s.try_link_with(enrolled, ann, c, Grade(90)).unwrap();
    let err = s.try_link_with(enrolled, bob, c, Grade(90)).unwrap_err();
    assert!(err.to_string().contains("`rank`"), "{err}");
    assert!(!s.linked(enrolled, bob, c));
    assert_eq!(s.lookup(rank, &(c, 90)), Some((ann, c)));
    assert_eq!(s.first(ranked), Some((&90, (ann, c))));
    check(&s);
}

#[test]
fn an_ordered_index_answers_ranges_first_last_and_prefixes_in_order() {
    let (mut s, w) = world();
    for (n, age) in [("Cy", 50), ("Al", 20), ("Abe", 35), ("Bo", 27), ("Ada", 61)] {
        s.insert(user(n, &format!("{n}@x"), age));
    }
    let ages: Vec<u32> = s.range(w.by_age, 25..=50).map(|(a, _)| *a).collect();
    assert_eq!(ages, [27, 35, 50]);
    let down: Vec<u32> = s.range(w.by_age, 30..).rev().map(|(a, _)| *a).collect();
    assert_eq!(down, [61, 50, 35]);
    assert_eq!(s.first(w.by_age).map(|(a, _)| *a), Some(20));
    assert_eq!(s.last(w.by_age).map(|(a, _)| *a), Some(61));
    let a_names: Vec<&str> = s
        .starts_with(w.by_name, "A")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(a_names, ["Abe", "Ada", "Al"]);
    let all: Vec<&str> = s.in_order(w.by_name).map(|(n, _)| n.as_str()).collect();
    assert_eq!(all, ["Abe", "Ada", "Al", "Bo", "Cy"]);
}

#[test]
#[allow(clippy::reversed_empty_ranges)]
fn an_inverted_or_empty_range_holds_nothing_instead_of_panicking() {
    use std::ops::Bound::{Excluded, Included};
    let (mut s, w) = world();
    for (n, age) in [("Al", 20), ("Bo", 30), ("Cy", 40)] {
        s.insert(user(n, &format!("{n}@x"), age));
    }
    assert_eq!(s.range(w.by_age, 40..20).count(), 0);
    assert_eq!(s.range(w.by_age, 40..=20).rev().count(), 0);
    assert_eq!(s.range(w.by_age, (Excluded(30), Excluded(30))).count(), 0);
    assert_eq!(s.range(w.by_age, (Excluded(40), Included(20))).count(), 0);
    assert_eq!(s.range(w.by_age, 30..30).count(), 0);
    let one: Vec<u32> = s.range(w.by_age, 30..=30).map(|(a, _)| *a).collect();
    assert_eq!(one, [30]);
}

#[test]
fn a_range_read_from_both_ends_hands_out_every_holder_of_shared_values_once() {
    let (mut s, w) = world();
    let ages = [0, 1, 1, 2, 3, 3, 3, 4, 4];
    let keys = s.insert_all((0..9).map(|i| user(&format!("u{i}"), &format!("{i}@x"), ages[i])));
    let all: Vec<(u32, Key<User>)> = s.range(w.by_age, ..).map(|(a, k)| (*a, k)).collect();
    assert_eq!(all.iter().map(|p| p.0).collect::<Vec<_>>(), ages);
    assert_eq!(sorted(all.iter().map(|p| p.1).collect()), keys);
    let mut backward: Vec<_> = s.range(w.by_age, ..).rev().map(|(a, k)| (*a, k)).collect();
    backward.reverse();
    assert_eq!(backward, all);
    // every order of reading the 8 holders of 1..=4 from the front and the back
    let want = &all[1..];
    for mask in 0..256u32 {
        let mut it = s.range(w.by_age, 1..=4);
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        for step in 0..8 {
            if mask >> step & 1 == 1 {
                head.push(it.next().map(|(a, k)| (*a, k)).expect("a holder left"));
            } else {
                tail.push(it.next_back().map(|(a, k)| (*a, k)).expect("a holder left"));
            }
        }
        assert!(
            it.next().is_none() && it.next_back().is_none(),
            "order {mask:#b}"
        );
        head.extend(tail.into_iter().rev());
        assert_eq!(head, want, "order {mask:#b}");
    }
}

// ----- unique indexes -------------------------------------------------------------------

#[test]
fn a_unique_violation_is_an_error_naming_the_index_value_and_holder_and_changes_nothing() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let before = s.len::<User>();
    let err = s.try_insert(user("Other", "ann@x", 1)).unwrap_err();
    assert!(matches!(
        &err,
        IndexError::Unique {
            index: "users_by_email",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("unique index `users_by_email`: \"ann@x\" is already held by users[{ann:?}]")
            .replace("Key(", "")
            .replace(")]", "]")
    );
    assert_eq!(s.len::<User>(), before);
    assert_eq!(s.count_by(w.by_name, "Other"), 0);
    check(&s);
    // the panicking form refuses as well, before changing anything
    let r = catch_unwind(AssertUnwindSafe(|| s.insert(user("Other", "ann@x", 1))));
    assert!(r.is_err());
    assert_eq!(s.len::<User>(), before);
    check(&s);
}

#[test]
fn an_update_or_replace_onto_a_held_value_is_refused_and_the_row_keeps_its_value() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let bob = s.insert(user("Bob", "bob@x", 40));
    let err = s.try_update(bob, |u| u.email = "ann@x".into()).unwrap_err();
    assert!(matches!(err, IndexError::Unique { .. }), "{err}");
    assert_eq!(s[bob].email, "bob@x");
    let err = s.try_replace(bob, user("B", "ann@x", 1)).unwrap_err();
    assert!(matches!(err, IndexError::Unique { .. }), "{err}");
    assert_eq!(s[bob], user("Bob", "bob@x", 40));
    // keeping its own value is no violation
    s.try_update(ann, |u| u.age = 31).unwrap();
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    check(&s);
}

#[test]
fn a_unique_violation_inside_a_transaction_rolls_the_cascade_back_with_exact_indexes() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let posts: Vec<Key<Post>> = (0..3)
        .map(|i| {
            s.insert_child(
                w.posts,
                ann,
                Post {
                    title: format!("p{i}"),
                },
            )
            .unwrap()
        })
        .collect();
    let bob = s.insert(user("Bob", "bob@x", 40));
    let r: Result<(), Error> = s.transaction(|s| {
        // the cascade takes Ann's posts
        s.remove(ann)?;
        assert_eq!(s.lookup(w.by_title, "p1"), None);
        s.try_insert(user("Ann 2", "ann2@x", 1))?;
        // Bob takes a taken address: refused, the whole transaction rolls back
        s.try_update(bob, |u| u.email = "ann2@x".into())?;
        Ok(())
    });
    assert!(matches!(r, Err(Error::Index(_))), "{r:?}");
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    assert_eq!(s.lookup(w.by_email, "ann2@x"), None);
    assert_eq!(s.lookup(w.by_title, "p1"), Some(posts[1]));
    assert_eq!(s.lookup(w.by_email, "bob@x"), Some(bob));
}

#[test]
fn a_unique_violation_in_a_nested_transaction_rolls_back_only_what_it_is_carried_out_of() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let r: Result<(), Error> = s.transaction(|s| {
        let carl = s.try_insert(user("Carl", "carl@x", 20))?;
        let inner: Result<(), Error> = s.transaction(|s| {
            s.try_update(carl, |u| u.name = "Carlos".into())?;
            s.try_insert(user("Dup", "ann@x", 1))?;
            Ok(())
        });
        assert!(matches!(inner, Err(Error::Index(_))));
        // the inner rollback put Carl's name back and left his insert
        assert_eq!(s.lookup(w.by_name, "Carl"), Some(carl));
        assert_eq!(s.lookup(w.by_name, "Carlos"), None);
        s.check_indexes().unwrap();
        Ok(())
    });
    r.unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    assert!(s.lookup(w.by_email, "carl@x").is_some());
}

// ----- kinds and payloads ---------------------------------------------------------------

#[test]
fn an_index_on_a_kind_sees_that_kinds_rows_only_and_follows_change_kind() {
    let (mut s, w) = world();
    let e = s.insert_kind(
        w.email,
        Notification { at: 1 },
        Email {
            address: "a@b".into(),
        },
    );
    s.insert_kind(
        w.sms,
        Notification { at: 2 },
        Sms {
            number: "555".into(),
        },
    );
    check(&s);
    assert_eq!(s.lookup(w.by_address, "a@b"), Some(e));
    let err = s
        .try_insert_kind(
            w.email,
            Notification { at: 3 },
            Email {
                address: "a@b".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        IndexError::Unique {
            index: "emails_by_address",
            ..
        }
    ));
    assert_eq!(
        s.len::<Notification>(),
        2,
        "the base row was not inserted either"
    );
    let base = w.email.upcast(e);
    s.change_kind(
        base,
        w.sms,
        Sms {
            number: "556".into(),
        },
    )
    .unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_address, "a@b"), None);
    s.change_kind(
        base,
        w.email,
        Email {
            address: "c@d".into(),
        },
    )
    .unwrap();
    assert_eq!(
        s.lookup(w.by_address, "c@d").map(|k| k.raw()),
        Some(e.raw())
    );
    s.remove(base).unwrap();
    check(&s);
    assert_eq!(s.distinct_values(w.by_address), 0);
}

#[test]
fn a_payload_index_follows_set_targets_update_payload_and_deletes() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let cs = s.insert_all((0..4).map(|i| Course {
        code: format!("c{i}"),
    }));
    s.link_with(w.enrolled, ann, cs[0], Grade(95)).unwrap();
    s.link_with(w.enrolled, ann, cs[1], Grade(70)).unwrap();
    check(&s);
    let top: Vec<_> = s.range(w.by_grade, 90..).map(|(g, p)| (*g, p)).collect();
    assert_eq!(top, [(95, (ann, cs[0]))]);
    // set_targets keeps cs[1] (and its grade), drops cs[0], links cs[2] and cs[3] with
    // the default grade
    s.set_targets(w.enrolled, ann, &[cs[1], cs[2], cs[3]])
        .unwrap();
    check(&s);
    assert_eq!(s.count_by(w.by_grade, &95), 0);
    assert_eq!(s.count_by(w.by_grade, &0), 2);
    assert_eq!(s.lookup(w.by_grade, &70), Some((ann, cs[1])));
    s.update_payload(w.enrolled, ann, cs[2], |g| g.0 = 99)
        .unwrap();
    check(&s);
    assert_eq!(s.last(w.by_grade), Some((&99, (ann, cs[2]))));
    assert_eq!(s.count_by(w.seat, &9), 1);
    s.unlink(w.enrolled, ann, cs[2]).unwrap();
    check(&s);
    assert_eq!(s.count_by(w.by_grade, &99), 0);
    s.remove(cs[1]).unwrap();
    check(&s);
    assert_eq!(s.count_by(w.by_grade, &70), 0);
}

#[test]
fn try_insert_all_refuses_a_batch_with_a_taken_or_repeated_unique_value_whole() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    // a value already held
    let err = s
        .try_insert_all([user("Bo", "bo@x", 20), user("Ann 2", "ann@x", 21)])
        .unwrap_err();
    assert!(err.to_string().contains("users_by_email"), "{err}");
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(s.lookup(w.by_email, "bo@x"), None);
    // a value repeated inside the batch
    let err = s
        .try_insert_all([user("Cy", "cy@x", 20), user("Cy 2", "cy@x", 21)])
        .unwrap_err();
    assert!(err.to_string().contains("\"cy@x\""), "{err}");
    assert_eq!(s.len::<User>(), 1);
    check(&s);
    let keys = s
        .try_insert_all([user("Bo", "bo@x", 20), user("Cy", "cy@x", 21)])
        .unwrap();
    assert_eq!(s.lookup(w.by_email, "cy@x"), Some(keys[1]));
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    check(&s);
}

#[test]
fn unlink_take_drops_the_links_keys_from_every_payload_index() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let c = s.insert(Course { code: "c".into() });
    s.link_with(w.enrolled, ann, c, Grade(95)).unwrap();
    assert_eq!(s.count_by(w.by_grade, &95), 1);
    let r: Result<(), Error> = s.transaction(|s| {
        assert_eq!(s.unlink_take(w.enrolled, ann, c)?, Some(Grade(95)));
        check(s);
        assert_eq!(s.count_by(w.by_grade, &95), 0);
        assert_eq!(s.count_by(w.seat, &9), 0);
        // a taken address: refused, the transaction rolls back
        s.try_insert(user("Ann 2", "ann@x", 1))?;
        Ok(())
    });
    assert!(matches!(r, Err(Error::Index(_))), "{r:?}");
    // rolled back, the link and its keys are back
    check(&s);
    assert_eq!(s.lookup(w.by_grade, &95), Some((ann, c)));
    assert_eq!(s.unlink_take(w.enrolled, ann, c).unwrap(), Some(Grade(95)));
    check(&s);
    assert_eq!(s.distinct_values(w.by_grade), 0);
}

#[test]
fn insert_kind_all_into_an_indexed_kind_keeps_the_index_exact_or_changes_nothing() {
    let (mut s, w) = world();
    let mail = |a: &str| (Notification { at: 1 }, Email { address: a.into() });
    let keys = s.insert_kind_all(w.email, [mail("a@b"), mail("c@d")]);
    check(&s);
    assert_eq!(s.lookup(w.by_address, "c@d"), Some(keys[1]));
    // a batch whose last row breaks the unique index panics before changing anything
    let before = s.len::<Notification>();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.insert_kind_all(w.email, [mail("e@f"), mail("a@b")])
    }))
    .unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(msg.contains("emails_by_address"), "{msg}");
    check(&s);
    assert_eq!(s.len::<Notification>(), before);
    assert_eq!(s.lookup(w.by_address, "e@f"), None);
    assert_eq!(s.lookup(w.by_address, "a@b"), Some(keys[0]));
}

// ----- user code that panics ------------------------------------------------------------

#[test]
fn a_panicking_key_closure_leaves_the_store_and_every_index_unchanged() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    EXPLODE.set(true);
    let r1 = catch_unwind(AssertUnwindSafe(|| s.insert(user("Bob", "bob@x", 40))));
    let r2 = catch_unwind(AssertUnwindSafe(|| s.update(ann, |u| u.age = 99)));
    let r3 = catch_unwind(AssertUnwindSafe(|| {
        s.transaction(|s| {
            s.insert(user("Cy", "cy@x", 1));
            Ok::<(), Error>(())
        })
    }));
    EXPLODE.set(false);
    assert!(r1.is_err() && r2.is_err() && r3.is_err());
    check(&s);
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(
        s[ann].age, 30,
        "the update's clone was dropped, the row kept"
    );
    assert_eq!(s.lookup(w.by_age, &30), Some(ann));
    assert_eq!(
        s.count_by(w.by_name, "Bob") + s.count_by(w.by_name, "Cy"),
        0
    );
}

// ----- history, snapshots, replicas -----------------------------------------------------

#[test]
fn undo_and_redo_put_every_index_back_exactly() {
    let (mut s, w) = world();
    s.enable_history(16);
    let ann = s.insert(user("Ann", "ann@x", 30));
    s.update(ann, |u| u.email = "ann@y".into()).unwrap();
    let p = s
        .insert_child(w.posts, ann, Post { title: "t".into() })
        .unwrap();
    s.remove(ann).unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_title, "t"), None);
    s.undo().unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_title, "t"), Some(p));
    assert_eq!(s.lookup(w.by_email, "ann@y"), Some(ann));
    s.undo().unwrap();
    s.undo().unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@x"), Some(ann));
    s.redo().unwrap();
    s.redo().unwrap();
    s.redo().unwrap();
    check(&s);
    assert_eq!(s.lookup(w.by_email, "ann@y"), None);
}

#[test]
fn a_load_rebuilds_the_indexes_and_a_program_without_them_loads_the_same_snapshot() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let cs = s.insert(Course { code: "c".into() });
    s.link_with(w.enrolled, ann, cs, Grade(80)).unwrap();
    let bytes = s.to_snapshot().unwrap();
    let (indexed, _) = schema(true);
    let loaded = Store::from_snapshot(indexed, &bytes).unwrap();
    check(&loaded);
    assert_eq!(loaded.lookup(w.by_email, "ann@x"), Some(ann));
    assert_eq!(loaded.lookup(w.by_grade, &80), Some((ann, cs)));
    // the fingerprint ignores indexes: a program without them loads the file
    let (plain, _) = schema(false);
    assert_eq!(plain.fingerprint(), s.schema().fingerprint());
    let without = Store::from_snapshot(plain, &bytes).unwrap();
    assert_eq!(without.len::<User>(), 1);
    // and saves the same bytes
    assert_eq!(without.to_snapshot().unwrap(), bytes);
}

#[test]
fn a_snapshot_whose_rows_break_a_unique_index_is_refused_by_the_load_naming_it() {
    let (plain, _) = schema(false);
    let mut s = Store::new(plain);
    s.insert(user("Ann", "same@x", 30));
    s.insert(user("Bob", "same@x", 40));
    let bytes = s.to_snapshot().unwrap();
    let (indexed, _) = schema(true);
    let err = Store::from_snapshot(indexed, &bytes).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("users_by_email") && msg.contains("same@x"),
        "{msg}"
    );
}

#[test]
fn a_replica_fed_by_the_change_feed_keeps_its_indexes_exact() {
    let (mut s, w) = world();
    s.enable_feed(64);
    let bytes = s.to_snapshot().unwrap();
    let mut cursor = s.feed_cursor();
    let (indexed, _) = schema(true);
    let mut rep = Store::from_snapshot(indexed, &bytes).unwrap();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let c = s.insert(Course { code: "c".into() });
    s.link_with(w.enrolled, ann, c, Grade(42)).unwrap();
    s.update(ann, |u| u.name = "Anna".into()).unwrap();
    s.update_payload(w.enrolled, ann, c, |g| g.0 = 43).unwrap();
    for b in s.read_feed(&mut cursor).unwrap() {
        rep.apply_changes(b.batch()).unwrap();
    }
    check(&rep);
    assert_eq!(rep.lookup(w.by_name, "Anna"), Some(ann));
    assert_eq!(rep.lookup(w.by_grade, &43), Some((ann, c)));
}

// ----- joins ----------------------------------------------------------------------------

#[test]
fn the_parents_of_indexed_children_are_found_once_each_in_order_first_met() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    let bob = s.insert(user("Bob", "bob@x", 40));
    let _cy = s.insert(user("Cy", "cy@x", 50));
    for (u, t) in [(ann, "X"), (bob, "Y"), (ann, "X"), (bob, "X")] {
        s.insert_child(w.posts, u, Post { title: t.into() })
            .unwrap();
    }
    let mut with_x = s.parents_of(w.posts, s.lookup_all(w.by_title, "X"));
    with_x.sort();
    assert_eq!(with_x, sorted(vec![ann, bob]));
    // a semi-join by key set: the posts of users over 35
    let older: relgraph::KeySet<User> = s.range(w.by_age, 36..).map(|(_, u)| u).collect();
    let titles: Vec<&str> = s
        .link_pairs(w.posts)
        .filter(|&(u, _)| older.contains(u))
        .map(|(_, p)| s[p].title.as_str())
        .collect();
    assert_eq!(sorted(titles), ["X", "Y"]);
    assert_eq!(s.link_pairs(w.posts).count(), 4);
}

#[test]
fn children_of_one_kind_are_listed_in_link_order_with_their_rows() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let notes = schema.table::<Notification>("notifications");
    let email = schema.kind::<Notification, Email>(notes, "email");
    let sms = schema.kind::<Notification, Sms>(notes, "sms");
    let inbox = schema.one_to_many(users, "inbox", notes, "user", DeleteRule::Cascade);
    let mut s = Store::new(schema);
    let ann = s.insert(user("Ann", "ann@x", 30));
    let mut emails = Vec::new();
    for i in 0..3 {
        let e = s.insert_kind(
            email,
            Notification { at: i },
            Email {
                address: format!("{i}@x"),
            },
        );
        s.link(inbox, ann, email.upcast(e)).unwrap();
        emails.push(e);
        let m = s.insert_kind(sms, Notification { at: i }, Sms { number: "1".into() });
        s.link(inbox, ann, sms.upcast(m)).unwrap();
    }
    let got: Vec<_> = s
        .children_of_kind(inbox, ann, email)
        .map(|(k, e)| (k, e.address.clone()))
        .collect();
    assert_eq!(
        got,
        emails
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, format!("{i}@x")))
            .collect::<Vec<_>>()
    );
    assert_eq!(s.children_of_kind(inbox, ann, sms).count(), 3);
}

#[test]
fn ancestors_and_descendants_are_filtered_by_the_values_an_index_keeps() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let tree = schema.one_to_many(users, "reports", users, "manager", DeleteRule::Nullify);
    let dept = schema.index(users, "users_by_dept", |u: &User| u.age / 10);
    let mut s = Store::new(schema);
    let top = s.insert(user("Top", "t", 10));
    let mid = s.insert_child(tree, top, user("Mid", "m", 20)).unwrap();
    let low = s.insert_child(tree, mid, user("Low", "l", 11)).unwrap();
    let leaf = s.insert_child(tree, low, user("Leaf", "f", 12)).unwrap();
    let ones: Vec<_> = s.ancestors_where(tree, leaf, dept, &1).collect();
    assert_eq!(ones, [low, top]);
    let below: Vec<_> = s.descendants_where(tree, top, dept, &1).collect();
    assert_eq!(below, [(low, 2), (leaf, 3)]);
    s.update(low, |u| u.age = 25).unwrap();
    assert_eq!(
        s.ancestors_where(tree, leaf, dept, &1).collect::<Vec<_>>(),
        [top]
    );
}

#[test]
fn bulk_inserts_and_links_into_indexed_tables_keep_every_index_exact() {
    let (mut s, w) = world();
    let us = s.insert_all((0..5).map(|i| user(&format!("u{i}"), &format!("{i}@x"), i)));
    let cs = s.insert_all((0..3).map(|i| Course {
        code: format!("c{i}"),
    }));
    s.link_all_with(
        w.enrolled,
        us.iter()
            .zip(cs.iter().cycle())
            .map(|(&u, &c)| (u, c, Grade(50))),
    )
    .unwrap();
    check(&s);
    assert_eq!(s.count_by(w.by_grade, &50), 5);
    assert_eq!(s.lookup(w.by_email, "3@x"), Some(us[3]));
    // a duplicate inside a bulk insert refuses the whole call: nothing of it stays
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.insert_all([user("a", "new@x", 1), user("b", "0@x", 2)])
    }));
    assert!(r.is_err());
    check(&s);
    assert_eq!((s.len::<User>(), s.lookup(w.by_email, "new@x")), (5, None));
}

#[test]
fn an_orphan_delete_takes_the_orphans_out_of_their_indexes() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let rel = schema.one_to_many(users, "posts", posts, "author", DeleteRule::DeleteOrphan);
    let by_title = schema.index(posts, "posts_by_title", |p: &Post| p.title.clone());
    let mut s = Store::new(schema);
    let ann = s.insert(user("Ann", "a", 1));
    let p = s
        .insert_child(
            rel,
            ann,
            Post {
                title: "gone".into(),
            },
        )
        .unwrap();
    assert_eq!(s.lookup(by_title, "gone"), Some(p));
    s.unlink(rel, ann, p).unwrap();
    check(&s);
    assert!(!s.contains(p));
    assert_eq!(s.lookup(by_title, "gone"), None);
}

#[test]
fn an_index_handle_used_on_a_store_without_that_index_panics_naming_it() {
    let (_, w) = schema(true);
    let (plain, _) = schema(false);
    let s = Store::new(plain);
    let r = catch_unwind(AssertUnwindSafe(|| s.lookup(w.unwrap().by_email, "a")));
    let msg = r.unwrap_err();
    let msg = msg
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("an index handle (#1) of another schema"),
        "{msg}"
    );
}

#[test]
fn a_replica_whose_own_unique_index_a_batch_breaks_refuses_the_batch_whole() {
    // the source has no index; the replica declares a unique one on the users' email
    let (plain, _) = schema(false);
    let mut s = Store::new(plain);
    s.enable_feed(16);
    let bytes = s.to_snapshot().unwrap();
    let mut cursor = s.feed_cursor();
    let (indexed, w) = schema(true);
    let w = w.unwrap();
    let mut rep = Store::from_snapshot(indexed, &bytes).unwrap();
    s.insert(user("Ann", "same@x", 1));
    let bob = s.insert(user("Bob", "bob@x", 2));
    s.transaction(|s| {
        s.insert(user("Cy", "cy@x", 3));
        s.update(bob, |u| u.email = "same@x".into())
    })
    .unwrap();
    let batches: Vec<_> = s.read_feed(&mut cursor).unwrap();
    rep.apply_changes(batches[0].batch()).unwrap();
    rep.apply_changes(batches[1].batch()).unwrap();
    let err = rep.apply_changes(batches[2].batch()).unwrap_err();
    assert!(err.to_string().contains("users_by_email"), "{err}");
    check(&rep);
    assert_eq!(
        rep.len::<User>(),
        2,
        "Cy's insert was rolled back with the batch"
    );
    assert_eq!(rep.lookup(w.by_email, "bob@x"), Some(bob));
}

#[test]
fn a_set_targets_whose_default_payloads_break_a_unique_index_changes_nothing() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let courses = schema.table::<Course>("courses");
    let enrolled =
        schema.many_to_many_with(users, "courses", courses, "students", DeleteRule::Nullify);
    let ranked = schema.unique_ordered_payload_index(enrolled, "ranked", |_, _, g: &Grade| g.0);
    let mut s = Store::new(schema);
    let ann = s.insert(user("Ann", "ann@x", 30));
    let cs = s.insert_all((0..3).map(|i| Course {
        code: format!("c{i}"),
    }));
    s.link_with(enrolled, ann, cs[0], Grade(90)).unwrap();
    // cs[0] is dropped, then two links with the default grade: the second is refused
    let r = catch_unwind(AssertUnwindSafe(|| {
        s.set_targets(enrolled, ann, &[cs[1], cs[2]])
    }));
    assert!(r.is_err(), "a second default grade breaks `ranked`");
    check(&s);
    assert_eq!(s.targets(enrolled, ann).collect::<Vec<_>>(), [cs[0]]);
    assert_eq!(s.lookup(ranked, &90), Some((ann, cs[0])));
    assert_eq!(s.lookup(ranked, &0), None);
}

#[test]
fn the_indexed_value_of_a_stale_key_is_none_even_when_its_slot_holds_a_new_row() {
    let (mut s, w) = world();
    let ann = s.insert(user("Ann", "ann@x", 30));
    s.remove(ann).unwrap();
    assert_eq!(s.indexed_value(w.by_email, ann), None);
    let bob = s.insert(user("Bob", "bob@x", 40));
    assert_eq!(bob.raw().index(), ann.raw().index(), "bob takes ann's slot");
    check(&s);
    let hashed = catch_unwind(AssertUnwindSafe(|| {
        s.indexed_value(w.by_email, ann).cloned()
    }));
    assert_eq!(hashed.ok(), Some(None), "a hash index");
    assert_eq!(s.indexed_value(w.by_age, ann), None, "an ordered index");
    assert_eq!(s.indexed_value(w.by_age, bob), Some(&40));
}
