//! Bulk operations and the fast paths behind them: `insert_all`, `link_all` (the sized
//! direct path of a plain one-to-many and the all-or-nothing path of every other
//! relation), `reserve` on a polymorphic base, deletes of leaf tables (a parent's children
//! unlinked at once, exact rollback), plans past the size where membership switches from a
//! scan to a hash set, and the arena's free list (most recently freed slot first).
//!
//! Most checks compare a store against a twin built the same way and changed through the
//! one-at-a-time calls (`link`, `insert`), or against a store of a schema where the fast
//! path does not apply.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::poly::{self, Email, Notification, Push, Sms};
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use relgraph::{
    AnyKey, DeletePreview, DeleteRule, Key, LinkError, Linkable, OneToMany, RawKey, Relation,
    Rules, Schema, StaleKey, Store, Unlinked,
};

use DeleteRule::{Cascade, DeleteOrphan, Nullify, Restrict};

fn named<T>(table: &'static str, k: Key<T>) -> AnyKey {
    AnyKey {
        table,
        key: k.raw(),
    }
}

fn stale<T>(table: &'static str, k: Key<T>) -> LinkError {
    LinkError::Stale(StaleKey {
        key: named(table, k),
    })
}

/// The pairs of a batch for relation `R`.
type Pairs<R> = Vec<(Key<<R as Relation>::A>, Key<<R as Relation>::B>)>;

/// Links each pair with `link`, in order, stopping at the first error.
fn link_each<R: Linkable>(s: &mut Store, rel: R, pairs: &Pairs<R>) -> Result<(), LinkError> {
    for &(a, b) in pairs {
        s.link(rel, a, b)?;
    }
    Ok(())
}

/// Builds a world twice with `build`; links the pairs `batch` names with `link_all` in one
/// and with a loop of `link` in the other. If the loop succeeds, both stores must be the
/// same; if it fails, `link_all` must fail with the same error and change nothing. Returns
/// the `link_all` store and its result. (The pairs must be live at the start: a stale key
/// is reported by `link_all` before anything else.)
fn against_a_loop<K, R: Linkable>(
    cfg: Config,
    build: impl Fn(&mut Store, &Rels) -> K,
    batch: impl Fn(&Rels, &K) -> (R, Pairs<R>),
) -> (Store, Rels, K, Result<(), LinkError>) {
    let (mut s, r) = world(cfg);
    let k = build(&mut s, &r);
    let (mut twin, tr) = world(cfg);
    let tk = build(&mut twin, &tr);
    check(&s);
    let before = dump(&s, &r);
    assert_eq!(before, dump(&twin, &tr), "the twins are built alike");
    let (rel, pairs) = batch(&r, &k);
    let got = s.link_all(rel, pairs);
    let (rel, pairs) = batch(&tr, &tk);
    let want = link_each(&mut twin, rel, &pairs);
    check(&s);
    check(&twin);
    assert_eq!(got, want, "link_all and a loop of link disagree");
    if want.is_ok() {
        assert_eq!(
            dump(&s, &r),
            dump(&twin, &tr),
            "link_all and the loop differ"
        );
    } else {
        assert_eq!(dump(&s, &r), before, "a refused link_all changed the store");
    }
    (s, r, k, got)
}

// ----- insert_all ---------------------------------------------------------------------

#[test]
fn insert_all_returns_keys_in_order_that_read_back_their_values() {
    let (mut s, r) = world(Config::default());
    let first = post(&mut s, "first");
    let keys = s.insert_all((0..50).map(|i| Post {
        title: format!("p{i}"),
    }));
    check(&s);
    assert_eq!(keys.len(), 50);
    assert_eq!(s.len::<Post>(), 51);
    for (i, &k) in keys.iter().enumerate() {
        assert_eq!(s[k].title, format!("p{i}"));
        assert_ne!(k, first);
    }
    let distinct: HashSet<Key<Post>> = keys.iter().copied().collect();
    assert_eq!(distinct.len(), 50);
    // slot order is insertion order in a table without vacant slots
    let listed: Vec<Key<Post>> = s.keys::<Post>().skip(1).collect();
    assert_eq!(listed, keys);
    // an iterator without a size hint, and an empty one
    let odd = s.insert_all((0..10).filter(|i| i % 2 == 1).map(|i| Tag {
        label: format!("t{i}"),
    }));
    assert_eq!(
        odd.iter().map(|&k| s[k].label.clone()).collect::<Vec<_>>(),
        ["t1", "t3", "t5", "t7", "t9"]
    );
    assert!(s.insert_all(Vec::<Tag>::new()).is_empty());
    assert_eq!(s.len::<Tag>(), 5);
    // the new entities link like any other
    let u = user(&mut s, "u");
    s.link_all(r.posts, keys.iter().map(|&p| (u, p))).unwrap();
    assert_eq!(kids(&s, r.posts, u), keys);
    check(&s);
}

#[test]
fn insert_all_issues_the_keys_a_loop_of_insert_would() {
    let build = || {
        let (mut s, r) = world(Config::default());
        let ps = posts(&mut s, "old", 20);
        for &p in ps.iter().step_by(3) {
            s.remove(p).unwrap();
        }
        (s, r)
    };
    let (mut s, r) = build();
    let (mut twin, tr) = build();
    let values: Vec<Post> = (0..30)
        .map(|i| Post {
            title: format!("new{i}"),
        })
        .collect();
    let got = s.insert_all(values.clone());
    let want: Vec<Key<Post>> = values.into_iter().map(|v| twin.insert(v)).collect();
    assert_eq!(got, want, "vacant slots are reused in the same order");
    check(&s);
    assert_eq!(dump(&s, &r), dump(&twin, &tr));
}

#[test]
fn insert_all_in_a_failed_transaction_is_undone_and_its_keys_stay_stale() {
    let (mut s, r) = world(Config::default());
    let alice = user(&mut s, "alice");
    let kept = posts(&mut s, "kept", 3);
    let before = dump(&s, &r);
    let mut inside = Vec::new();
    let out: Result<(), &str> = s.transaction(|s| {
        inside = s.insert_all((0..40).map(|i| Post {
            title: format!("gone{i}"),
        }));
        let users = s.insert_all([User { name: "x".into() }, User { name: "y".into() }]);
        s.link_all(r.posts, inside.iter().map(|&p| (users[0], p)))
            .unwrap();
        s.link(r.posts, alice, inside[0]).unwrap();
        assert_eq!(s.len::<Post>(), 43);
        check(s);
        Err("undo")
    });
    assert_eq!(out, Err("undo"));
    check(&s);
    assert_eq!(s.len::<Post>(), 3);
    assert_eq!(dump(&s, &r), before);
    assert!(inside.iter().all(|&k| !s.contains(k) && s.get(k).is_none()));
    assert_eq!(
        s.link(r.posts, alice, inside[5]),
        Err(stale("posts", inside[5]))
    );
    // new keys reuse the slots, never the keys
    let again = s.insert_all((0..40).map(|i| Post {
        title: format!("again{i}"),
    }));
    let gone: HashSet<Key<Post>> = inside.iter().copied().collect();
    assert!(again.iter().all(|k| !gone.contains(k)));
    assert!(kept.iter().all(|&k| s.contains(k)));
    check(&s);
}

#[test]
fn insert_all_in_a_nested_transaction_that_fails_is_undone_alone() {
    let (mut s, _) = world(Config::default());
    let out: Result<Vec<Key<Tag>>, ()> = s.transaction(|s| {
        let outer = s.insert_all((0..3).map(|i| Tag {
            label: format!("outer{i}"),
        }));
        let inner: Result<(), ()> = s.transaction(|s| {
            s.insert_all((0..5).map(|i| Tag {
                label: format!("inner{i}"),
            }));
            Err(())
        });
        assert!(inner.is_err());
        assert_eq!(s.len::<Tag>(), 3);
        Ok(outer)
    });
    let outer = out.unwrap();
    check(&s);
    assert_eq!(s.len::<Tag>(), 3);
    assert!(outer.iter().all(|&k| s.contains(k)));
    let labels: Vec<String> = s.iter::<Tag>().map(|(_, t)| t.label.clone()).collect();
    assert_eq!(labels, ["outer0", "outer1", "outer2"]);
}

#[test]
fn insert_all_whose_values_panic_midway_in_a_transaction_is_undone() {
    let (mut s, r) = world(Config::default());
    let kept = post(&mut s, "kept");
    let before = dump(&s, &r);
    let out = catch_unwind(AssertUnwindSafe(|| {
        s.transaction(|s| -> Result<(), ()> {
            s.insert(Post {
                title: "first".into(),
            });
            s.insert_all((0..10).map(|i| {
                assert!(i < 5, "the values run out");
                Post {
                    title: format!("p{i}"),
                }
            }));
            unreachable!("insert_all panics");
        })
    }));
    assert!(out.is_err());
    assert!(!s.in_transaction());
    check(&s);
    assert_eq!(
        s.len::<Post>(),
        1,
        "the rows inserted before the panic are undone"
    );
    assert_eq!(dump(&s, &r), before);
    assert!(s.contains(kept));
}

#[test]
#[should_panic(expected = "insert it with Store::insert_kind")]
fn insert_all_into_a_polymorphic_base_panics() {
    let (mut s, _) = poly::world(poly::Config::default());
    s.insert_all([Notification { at: 1 }]);
}

#[test]
#[should_panic(expected = "insert it with Store::insert_kind")]
fn insert_all_into_a_kind_panics() {
    let (mut s, _) = poly::world(poly::Config::default());
    s.insert_all([Email {
        address: "a@b".into(),
    }]);
}

#[test]
#[should_panic(expected = "insert it with Store::insert_kind")]
fn insert_all_of_nothing_into_a_kind_panics_too() {
    let (mut s, _) = poly::world(poly::Config::default());
    s.insert_all(Vec::<Sms>::new());
}

// ----- link_all on a plain one-to-many ------------------------------------------------

/// Three users and ten posts; u0 has p0..p3 with p1 unlinked since (a hole), u1 has p4, p5.
struct Blog {
    u: Vec<Key<User>>,
    p: Vec<Key<Post>>,
}

fn blog(s: &mut Store, r: &Rels) -> Blog {
    let u: Vec<Key<User>> = ["u0", "u1", "u2"].iter().map(|n| user(s, n)).collect();
    let p = posts(s, "p", 10);
    for &x in &p[..4] {
        s.link(r.posts, u[0], x).unwrap();
    }
    s.link(r.posts, u[1], p[4]).unwrap();
    s.link(r.posts, u[1], p[5]).unwrap();
    s.unlink(r.posts, u[0], p[1]).unwrap();
    Blog { u, p }
}

#[test]
fn link_all_on_a_plain_one_to_many_matches_a_loop_of_link() {
    for rules in [
        Rules::new(),
        Cascade.into(),
        Restrict.into(),
        Rules::new().on_delete_b(Cascade),
    ] {
        let cfg = Config {
            posts: rules,
            ..Config::default()
        };
        let (s, r, Blog { u, p }, got) = against_a_loop(cfg, blog, |r, Blog { u, p }| {
            let pairs = vec![
                (u[1], p[0]), // moves from u0
                (u[2], p[6]),
                (u[2], p[6]), // repeated
                (u[0], p[7]),
                (u[1], p[7]), // moved twice within the batch ...
                (u[2], p[7]), // ... and a third time
                (u[0], p[2]), // already its parent: stays in place
                (u[0], p[4]), // from u1 ...
                (u[1], p[4]), // ... and back, last
                (u[2], p[8]),
                (u[0], p[9]),
            ];
            (r.posts, pairs)
        });
        got.unwrap();
        assert_eq!(kids(&s, r.posts, u[0]), [p[2], p[3], p[9]]);
        assert_eq!(kids(&s, r.posts, u[1]), [p[5], p[0], p[4]]);
        assert_eq!(kids(&s, r.posts, u[2]), [p[6], p[7], p[8]]);
        assert_eq!(s.parent(r.posts, p[1]), None);
        assert_eq!(s.parent(r.posts, p[7]), Some(u[2]));
        assert_eq!(s.link_count(r.posts), 9);
    }
}

#[test]
fn link_all_of_nothing_changes_nothing() {
    let (s, r, _, got) = against_a_loop(Config::default(), blog, |r, _| (r.posts, vec![]));
    got.unwrap();
    assert_eq!(s.link_count(r.posts), 5);
}

#[test]
fn link_all_builds_large_collections_in_order() {
    let (s, r, b, got) = against_a_loop(
        Config::default(),
        |s, r| {
            let b = blog(s, r);
            // parents in slots far above the first ones
            let late = s.insert_all((0..300).map(|i| User {
                name: format!("late{i}"),
            }));
            let many = posts(s, "m", 1500);
            (b, late, many)
        },
        |r, (b, late, many)| {
            let mut pairs = Vec::new();
            for (i, &m) in many.iter().enumerate() {
                let parent = match i % 5 {
                    0 => b.u[0],
                    1 | 2 => late[299],
                    _ => late[i % 7],
                };
                pairs.push((parent, m));
            }
            // then move every tenth to u1, and an old child to the last late user
            pairs.extend(many.iter().step_by(10).map(|&m| (b.u[1], m)));
            pairs.push((late[299], b.p[0]));
            (r.posts, pairs)
        },
    );
    got.unwrap();
    let (blog, late, many) = b;
    assert_eq!(s.child_count(r.posts, late[299]), 600 + 1);
    assert_eq!(kids(&s, r.posts, late[299]).last(), Some(&blog.p[0]));
    assert_eq!(s.child_count(r.posts, blog.u[1]), 2 + 150);
    assert_eq!(s.link_count(r.posts), 5 + 1500);
    assert!(many.iter().all(|&m| s.parent(r.posts, m).is_some()));
}

#[test]
fn link_all_on_a_leaf_relation_matches_a_loop_of_link() {
    let cfg = Config {
        comments: Cascade.into(),
        ..Config::default()
    };
    let (s, r, (ps, cs), got) = against_a_loop(
        cfg,
        |s, r| {
            let ps = posts(s, "p", 3);
            let cs: Vec<Key<Comment>> = (0..8).map(|i| comment(s, &format!("c{i}"))).collect();
            s.link(r.comments, ps[0], cs[0]).unwrap();
            (ps, cs)
        },
        |r, (ps, cs)| {
            let pairs = (0..8)
                .map(|i| (ps[i % 3], cs[i]))
                .chain([(ps[2], cs[0]), (ps[1], cs[3])])
                .collect();
            (r.comments, pairs)
        },
    );
    got.unwrap();
    assert_eq!(kids(&s, r.comments, ps[0]), [cs[6]]);
    assert_eq!(kids(&s, r.comments, ps[1]), [cs[1], cs[4], cs[7], cs[3]]);
    assert_eq!(kids(&s, r.comments, ps[2]), [cs[2], cs[5], cs[0]]);
}

#[test]
fn link_all_in_a_failed_transaction_is_undone() {
    let (mut s, r) = world(Config::default());
    let b = blog(&mut s, &r);
    let before = dump(&s, &r);
    let bytes = s.to_snapshot().unwrap();
    let mut fresh = Vec::new();
    let out: Result<(), &str> = s.transaction(|s| {
        fresh = s.insert_all([User { name: "v".into() }, User { name: "w".into() }]);
        let pairs = [
            (fresh[0], b.p[0]),
            (b.u[2], b.p[1]),
            (fresh[1], b.p[4]),
            (fresh[0], b.p[9]),
            (b.u[0], b.p[5]),
        ];
        s.link_all(r.posts, pairs).unwrap();
        check(s);
        assert_eq!(kids(s, r.posts, fresh[0]), [b.p[0], b.p[9]]);
        Err("undo")
    });
    assert_eq!(out, Err("undo"));
    check(&s);
    assert_eq!(dump(&s, &r), before);
    // (the snapshot differs: the two users' slots stay issued, so that their keys are
    // never handed out again)
    assert_ne!(s.to_snapshot().unwrap(), bytes);
    // the lists of the rolled-back parents prove nothing alive: their keys stay stale
    for &f in &fresh {
        assert!(!s.contains(f));
        assert_eq!(s.child_count(r.posts, f), 0);
        assert_eq!(s.link(r.posts, f, b.p[0]), Err(stale("users", f)));
    }
    check(&s);
}

#[test]
fn a_parent_inserted_in_an_undone_transaction_stays_stale_for_link_all() {
    let (mut s, r) = world(Config::default());
    let b = blog(&mut s, &r);
    let mut ghost = None;
    let _: Result<(), ()> = s.transaction(|s| {
        let g = user(s, "ghost");
        s.link_all(r.posts, [(g, b.p[6]), (g, b.p[7])]).unwrap();
        ghost = Some(g);
        Err(())
    });
    let ghost = ghost.unwrap();
    check(&s);
    let before = dump(&s, &r);
    assert_eq!(
        s.link_all(r.posts, [(ghost, b.p[8])]),
        Err(stale("users", ghost))
    );
    assert_eq!(s.link(r.posts, ghost, b.p[8]), Err(stale("users", ghost)));
    assert_eq!(s.child_count(r.posts, ghost), 0);
    assert_eq!(dump(&s, &r), before);
    // a new user takes the slot under a new key and a list of its own
    let heir = user(&mut s, "heir");
    assert_eq!(heir.raw().index(), ghost.raw().index());
    assert_ne!(heir, ghost);
    s.link_all(r.posts, [(heir, b.p[8])]).unwrap();
    assert_eq!(kids(&s, r.posts, heir), [b.p[8]]);
    assert_eq!(s.child_count(r.posts, ghost), 0);
    check(&s);
}

/// A random plain one-to-many state and a random batch, linked with `link_all` and with a
/// loop of `link` on twins (optionally inside a transaction that commits or fails).
fn random_batch(
    parents: usize,
    children: usize,
    before: &[(usize, usize)],
    unlinks: &[usize],
    batch: &[(usize, usize)],
    txn: Option<bool>,
) {
    let build = |s: &mut Store, r: &Rels| {
        let u = s.insert_all((0..parents).map(|i| User {
            name: format!("u{i}"),
        }));
        let p = s.insert_all((0..children).map(|i| Post {
            title: format!("p{i}"),
        }));
        for &(a, b) in before {
            s.link(r.posts, u[a % parents], p[b % children]).unwrap();
        }
        for &c in unlinks {
            let c = p[c % children];
            if let Some(a) = s.parent(r.posts, c) {
                s.unlink(r.posts, a, c).unwrap();
            }
        }
        Blog { u, p }
    };
    let pairs = |b: &Blog| -> Vec<(Key<User>, Key<Post>)> {
        batch
            .iter()
            .map(|&(a, c)| (b.u[a % parents], b.p[c % children]))
            .collect()
    };
    let (mut s, r) = world(Config::default());
    let b = build(&mut s, &r);
    let (mut twin, tr) = world(Config::default());
    let tb = build(&mut twin, &tr);
    let before = dump(&s, &r);
    match txn {
        None => {
            s.link_all(r.posts, pairs(&b)).unwrap();
            link_each(&mut twin, tr.posts, &pairs(&tb)).unwrap();
        }
        Some(commit) => {
            let out = s.transaction(|s| {
                s.link_all(r.posts, pairs(&b)).unwrap();
                check(s);
                if commit {
                    Ok(())
                } else {
                    Err(())
                }
            });
            assert_eq!(out.is_ok(), commit);
            if commit {
                link_each(&mut twin, tr.posts, &pairs(&tb)).unwrap();
            }
        }
    }
    check(&s);
    check(&twin);
    let after = dump(&s, &r);
    assert_eq!(after, dump(&twin, &tr));
    if txn == Some(false) {
        assert_eq!(after, before);
    }
    // and both go on alike: the same links again, then a delete of every other parent
    s.link_all(r.posts, pairs(&b)).unwrap();
    link_each(&mut twin, tr.posts, &pairs(&tb)).unwrap();
    for i in (0..parents).step_by(2) {
        s.remove(b.u[i]).unwrap();
        twin.remove(tb.u[i]).unwrap();
    }
    check(&s);
    assert_eq!(dump(&s, &r), dump(&twin, &tr));
    // then lists grow past their room one link at a time (after a batch that laid the
    // lists out again, into the pool's end): every child goes to one remaining parent
    if parents > 1 {
        for (&c, &tc) in b.p.iter().zip(&tb.p) {
            s.link(r.posts, b.u[1], c).unwrap();
            twin.link(tr.posts, tb.u[1], tc).unwrap();
        }
        check(&s);
        assert_eq!(dump(&s, &r), dump(&twin, &tr));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn link_all_matches_a_loop_of_link_on_random_batches(
        parents in 1..6usize,
        children in 1..16usize,
        before in vec((0..6usize, 0..16usize), 0..20),
        unlinks in vec(0..16usize, 0..6),
        batch in vec((0..6usize, 0..16usize), 0..40),
        txn in prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
    ) {
        random_batch(parents, children, &before, &unlinks, &batch, txn);
    }
}

/// A batch into an empty relation that names at least one link a parent slot: its lists
/// take segments laid out in slot order, and those no list took are given back. Refused
/// (a stale key at the end) or interrupted (a panicking input) it changes nothing; linked,
/// it matches a loop of `link`, and the lists go on growing, moving and shrinking alike.
#[test]
fn link_all_into_an_empty_relation_in_slot_order_matches_a_loop_and_undoes_cleanly() {
    let build = |s: &mut Store| {
        let u: Vec<Key<User>> = (0..40).map(|i| user(s, &format!("u{i}"))).collect();
        // a removed user leaves a dead parent slot in the middle
        s.remove(u[17]).unwrap();
        let p = posts(s, "p", 400);
        (u, p)
    };
    let mut rng = common::Rng::new(7);
    // parents named out of slot order, skipping the dead slot and a few live ones
    let batch: Vec<(usize, usize)> = (0..400)
        .map(|c| {
            let mut a = rng.below(40);
            while a == 17 || a % 9 == 4 {
                a = (a + 1) % 40;
            }
            (a, c)
        })
        .collect();
    let pairs = |u: &[Key<User>], p: &[Key<Post>]| -> Vec<(Key<User>, Key<Post>)> {
        batch.iter().map(|&(a, c)| (u[a], p[c])).collect()
    };
    let (mut s, r) = world(Config::default());
    let (u, p) = build(&mut s);
    let (mut twin, tr) = world(Config::default());
    let (tu, tp) = build(&mut twin);
    let before = dump(&s, &r);
    // refused at the last pair, then interrupted midway: nothing changes
    let mut bad = pairs(&u, &p);
    bad.push((u[17], p[0]));
    assert_eq!(s.link_all(r.posts, bad), Err(stale("users", u[17])));
    check(&s);
    assert_eq!(dump(&s, &r), before);
    let half = pairs(&u, &p);
    let out = catch_unwind(AssertUnwindSafe(|| {
        let mut n = 0;
        s.link_all(
            r.posts,
            half.iter().copied().inspect(|_| {
                n += 1;
                assert!(n < 200, "the input fails midway");
            }),
        )
    }));
    assert!(out.is_err());
    check(&s);
    assert_eq!(dump(&s, &r), before);
    // linked: as a loop of link
    s.link_all(r.posts, pairs(&u, &p)).unwrap();
    link_each(&mut twin, tr.posts, &pairs(&tu, &tp)).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), dump(&twin, &tr));
    // then lists outgrow their segments, children move, parents go and come
    for (i, (&c, &tc)) in p.iter().zip(&tp).enumerate().step_by(3) {
        let a = [3, 4, 13, 31][i % 4];
        s.link(r.posts, u[a], c).unwrap();
        twin.link(tr.posts, tu[a], tc).unwrap();
    }
    for i in [0, 5, 22, 39] {
        s.remove(u[i]).unwrap();
        twin.remove(tu[i]).unwrap();
    }
    let nu: Vec<Key<User>> = (0..6).map(|i| user(&mut s, &format!("n{i}"))).collect();
    let ntu: Vec<Key<User>> = (0..6).map(|i| user(&mut twin, &format!("n{i}"))).collect();
    for (i, (&c, &tc)) in p.iter().zip(&tp).enumerate().skip(1).step_by(2) {
        s.link(r.posts, nu[i % 6], c).unwrap();
        twin.link(tr.posts, ntu[i % 6], tc).unwrap();
    }
    check(&s);
    check(&twin);
    assert_eq!(dump(&s, &r), dump(&twin, &tr));
}

// ----- link_all with a stale key ------------------------------------------------------

/// Puts `x` first (`at` 0), in the middle (1) or last (2).
fn put<T>(v: &mut Vec<T>, at: usize, x: T) {
    let i = [0, v.len() / 2, v.len()][at];
    v.insert(i, x);
}

#[test]
fn link_all_with_a_stale_key_anywhere_fails_and_changes_nothing() {
    for rel_kind in 0..4 {
        for at in 0..3 {
            for parent_end in [true, false] {
                let (mut s, r) = world(Config {
                    reports: Rules::new().acyclic(),
                    ..Config::default()
                });
                let b = blog(&mut s, &r);
                let gone_user = user(&mut s, "gone");
                let gone_post = post(&mut s, "gone");
                s.remove(gone_user).unwrap();
                s.remove(gone_post).unwrap();
                // a reused slot: the stale key's index names a live entity now
                let heir = post(&mut s, "heir");
                assert_eq!(heir.raw().index(), gone_post.raw().index());
                let es: Vec<Key<Employee>> =
                    (0..4).map(|i| employee(&mut s, &format!("e{i}"))).collect();
                let gone_emp = es[3];
                s.remove(gone_emp).unwrap();
                let ts: Vec<Key<Tag>> = (0..3).map(|i| tag(&mut s, &format!("t{i}"))).collect();
                let gone_tag = tag(&mut s, "gone");
                s.remove(gone_tag).unwrap();
                check(&s);
                let before = dump(&s, &r);
                let got = match rel_kind {
                    // plain one-to-many
                    0 => {
                        let mut pairs = vec![
                            (b.u[1], b.p[0]),
                            (b.u[2], b.p[6]),
                            (b.u[2], b.p[7]),
                            (b.u[0], b.p[4]),
                        ];
                        let (bad, want) = if parent_end {
                            ((gone_user, b.p[8]), stale("users", gone_user))
                        } else {
                            ((b.u[2], gone_post), stale("posts", gone_post))
                        };
                        put(&mut pairs, at, bad);
                        let got = s.link_all(r.posts, pairs);
                        assert_eq!(got, Err(want));
                        got
                    }
                    // acyclic self-referential one-to-many
                    1 => {
                        let mut pairs = vec![(es[0], es[1]), (es[1], es[2])];
                        let bad = if parent_end {
                            (gone_emp, es[0])
                        } else {
                            (es[2], gone_emp)
                        };
                        put(&mut pairs, at, bad);
                        let got = s.link_all(r.reports, pairs);
                        assert_eq!(got, Err(stale("employees", gone_emp)));
                        got
                    }
                    // many-to-many
                    2 => {
                        let mut pairs = vec![(b.p[0], ts[0]), (b.p[1], ts[1]), (heir, ts[2])];
                        let (bad, want) = if parent_end {
                            ((gone_post, ts[0]), stale("posts", gone_post))
                        } else {
                            ((b.p[2], gone_tag), stale("tags", gone_tag))
                        };
                        put(&mut pairs, at, bad);
                        let got = s.link_all(r.tags, pairs);
                        assert_eq!(got, Err(want));
                        got
                    }
                    // one-to-one
                    _ => {
                        let pr = profile(&mut s, "pr");
                        let gone_pr = profile(&mut s, "gone");
                        s.remove(gone_pr).unwrap();
                        let before_pr = dump(&s, &r);
                        let mut pairs = vec![(b.u[0], pr), (b.u[1], pr)];
                        let (bad, want) = if parent_end {
                            ((gone_user, pr), stale("users", gone_user))
                        } else {
                            ((b.u[2], gone_pr), stale("profiles", gone_pr))
                        };
                        put(&mut pairs, at, bad);
                        let got = s.link_all(r.profile, pairs);
                        assert_eq!(got, Err(want));
                        assert_eq!(dump(&s, &r), before_pr);
                        check(&s);
                        continue;
                    }
                };
                assert!(got.is_err());
                check(&s);
                assert_eq!(
                    dump(&s, &r),
                    before,
                    "relation {rel_kind}, stale key at {at}, parent end {parent_end}"
                );
            }
        }
    }
}

#[test]
fn link_all_reports_the_first_stale_key_in_pair_order() {
    let (mut s, r) = world(Config::default());
    let b = blog(&mut s, &r);
    let (gu, gp) = (user(&mut s, "gu"), post(&mut s, "gp"));
    s.remove(gu).unwrap();
    s.remove(gp).unwrap();
    let before = dump(&s, &r);
    let pairs = [(b.u[0], b.p[9]), (b.u[1], gp), (gu, gp), (gu, b.p[8])];
    assert_eq!(s.link_all(r.posts, pairs), Err(stale("posts", gp)));
    let pairs = [(b.u[0], b.p[9]), (gu, gp), (b.u[1], gp)];
    assert_eq!(s.link_all(r.posts, pairs), Err(stale("users", gu)));
    assert_eq!(dump(&s, &r), before);
    check(&s);
}

// ----- link_all where a link can fail midway ------------------------------------------

fn org(s: &mut Store, r: &Rels) -> Vec<Key<Employee>> {
    let es: Vec<Key<Employee>> = (0..6).map(|i| employee(s, &format!("e{i}"))).collect();
    // e0 -> e1 -> e2, e0 -> e3
    for (boss, sub) in [(0, 1), (1, 2), (0, 3)] {
        s.link(r.reports, es[boss], es[sub]).unwrap();
    }
    es
}

fn acyclic() -> Config {
    Config {
        reports: Rules::new().acyclic(),
        ..Config::default()
    }
}

#[test]
fn link_all_that_would_close_a_cycle_midway_applies_nothing() {
    let (mut s, r) = world(acyclic());
    let es = org(&mut s, &r);
    let before = dump(&s, &r);
    // the first two are fine (e4 joins e2, e3 moves to e1); the third would put e0 under
    // its own descendant e4
    let pairs = [
        (es[2], es[4]),
        (es[1], es[3]),
        (es[4], es[0]),
        (es[3], es[5]),
    ];
    let e = s.link_all(r.reports, pairs).unwrap_err();
    match e {
        LinkError::Cycle { a, b, .. } => assert_eq!((a, b), (es[4].raw(), es[0].raw())),
        e => panic!("expected a cycle, got {e:?}"),
    }
    check(&s);
    assert_eq!(
        dump(&s, &r),
        before,
        "not even the pairs before the failing one"
    );
    assert_eq!(s.parent(r.reports, es[3]), Some(es[0]));
    assert_eq!(s.parent(r.reports, es[4]), None);
    // a self-link in the batch
    let e = s.link_all(r.reports, [(es[4], es[5]), (es[5], es[5])]);
    assert!(matches!(e, Err(LinkError::SelfLink { key, .. }) if key == es[5].raw()));
    assert_eq!(dump(&s, &r), before);
    // a loop of link fails at the same pair (having applied those before it)
    let (.., got) = against_a_loop(acyclic(), org, |r, es| {
        (
            r.reports,
            vec![
                (es[2], es[4]),
                (es[1], es[3]),
                (es[3], es[5]),
                (es[5], es[0]),
            ],
        )
    });
    assert!(matches!(got, Err(LinkError::Cycle { .. })), "{got:?}");
    let (.., got) = against_a_loop(acyclic(), org, |r, es| {
        (
            r.reports,
            vec![
                (es[2], es[4]),
                (es[1], es[3]),
                (es[4], es[5]),
                (es[3], es[1]),
            ],
        )
    });
    assert!(matches!(got, Err(LinkError::Cycle { .. })), "{got:?}");
    // a batch without a cycle goes through, like the loop
    let (s, r, es, got) = against_a_loop(acyclic(), org, |r, es| {
        (
            r.reports,
            vec![
                (es[2], es[4]),
                (es[1], es[3]),
                (es[4], es[5]),
                (es[0], es[1]),
            ],
        )
    });
    got.unwrap();
    assert_eq!(kids(&s, r.reports, es[1]), [es[2], es[3]]);
    assert_eq!(kids(&s, r.reports, es[4]), [es[5]]);
}

#[test]
fn a_failed_link_all_inside_a_transaction_leaves_the_transaction_as_it_was() {
    for commit in [true, false] {
        let (mut s, r) = world(acyclic());
        let es = org(&mut s, &r);
        let before = dump(&s, &r);
        let mut inside = String::new();
        let out: Result<(), ()> = s.transaction(|s| {
            s.link(r.reports, es[3], es[4]).unwrap();
            s.link_all(r.reports, [(es[4], es[5]), (es[2], es[3])])
                .unwrap();
            let mid = dump(s, &r);
            let e = s.link_all(r.reports, [(es[0], es[5]), (es[5], es[1]), (es[2], es[0])]);
            assert!(matches!(e, Err(LinkError::Cycle { .. })), "{e:?}");
            check(s);
            assert_eq!(dump(s, &r), mid, "the failed batch is undone alone");
            assert!(s.in_transaction());
            inside = mid;
            if commit {
                Ok(())
            } else {
                Err(())
            }
        });
        assert_eq!(out.is_ok(), commit);
        check(&s);
        if commit {
            assert_eq!(dump(&s, &r), inside);
            assert_eq!(kids(&s, r.reports, es[2]), [es[3]]);
            assert_eq!(kids(&s, r.reports, es[3]), [es[4]]);
            assert_eq!(kids(&s, r.reports, es[4]), [es[5]]);
        } else {
            assert_eq!(dump(&s, &r), before);
        }
    }
}

#[test]
fn link_all_on_an_acyclic_many_to_many_applies_nothing_on_a_cycle() {
    let cfg = Config {
        follows: Rules::new().acyclic(),
        ..Config::default()
    };
    let build = |s: &mut Store, r: &Rels| {
        let us: Vec<Key<User>> = (0..4).map(|i| user(s, &format!("u{i}"))).collect();
        s.link(r.follows, us[0], us[1]).unwrap();
        us
    };
    let (_, _, _, got) = against_a_loop(cfg, build, |r, us| {
        (
            r.follows,
            vec![
                (us[1], us[2]),
                (us[2], us[3]),
                (us[1], us[2]),
                (us[3], us[0]),
            ],
        )
    });
    assert!(matches!(got, Err(LinkError::Cycle { .. })), "{got:?}");
    let (s, r, us, got) = against_a_loop(cfg, build, |r, us| {
        (
            r.follows,
            vec![
                (us[1], us[2]),
                (us[2], us[3]),
                (us[1], us[2]),
                (us[0], us[3]),
            ],
        )
    });
    got.unwrap();
    assert_eq!(targets(&s, r.follows, us[0]), [us[1], us[3]]);
}

// ----- link_all on relations that take the general path -------------------------------

#[test]
fn link_all_under_a_delete_orphan_rule_matches_a_loop_of_link() {
    // a post moved away from its author is not orphaned; one left behind by nothing is
    let (s, r, b, got) = against_a_loop(
        Config {
            posts: DeleteOrphan.into(),
            ..Config::default()
        },
        blog,
        |r, Blog { u, p }| {
            (
                r.posts,
                vec![
                    (u[1], p[0]),
                    (u[2], p[6]),
                    (u[2], p[0]),
                    (u[0], p[5]),
                    (u[0], p[5]),
                ],
            )
        },
    );
    got.unwrap();
    assert_eq!(kids(&s, r.posts, b.u[2]), [b.p[6], b.p[0]]);
    assert_eq!(s.len::<Post>(), 9, "p1, unlinked while building, is gone");
    // a user left without posts is deleted (the child end's rule)
    let cfg = Config {
        posts: Rules::new().on_delete_b(DeleteOrphan),
        ..Config::default()
    };
    let (s, r, b, got) = against_a_loop(cfg, blog, |r, Blog { u, p }| {
        (r.posts, vec![(u[2], p[4]), (u[2], p[5]), (u[0], p[6])])
    });
    got.unwrap();
    assert!(!s.contains(b.u[1]), "u1 lost both its posts");
    assert_eq!(kids(&s, r.posts, b.u[2]), [b.p[4], b.p[5]]);
    // ... and then a later pair names it: the batch fails as the loop does, and the
    // orphan delete of the first pair is undone with it
    let (s, r, b, got) = against_a_loop(cfg, blog, |r, Blog { u, p }| {
        (r.posts, vec![(u[2], p[4]), (u[2], p[5]), (u[1], p[7])])
    });
    assert_eq!(got, Err(stale("users", b.u[1])));
    assert!(s.contains(b.u[1]));
    assert_eq!(kids(&s, r.posts, b.u[1]), [b.p[4], b.p[5]]);
}

#[test]
fn link_all_refused_by_an_orphan_delete_applies_nothing() {
    // u1 left without posts would be deleted, but its profile restricts that
    let cfg = Config {
        posts: Rules::new().on_delete_b(DeleteOrphan),
        profile: Restrict.into(),
        ..Config::default()
    };
    let build = |s: &mut Store, r: &Rels| {
        let b = blog(s, r);
        let pr = profile(s, "u1's");
        s.link(r.profile, b.u[1], pr).unwrap();
        b
    };
    let (_, _, _, got) = against_a_loop(cfg, build, |r, Blog { u, p }| {
        (r.posts, vec![(u[2], p[7]), (u[2], p[4]), (u[2], p[5])])
    });
    assert!(matches!(got, Err(LinkError::OrphanDelete(_))), "{got:?}");
}

#[test]
fn link_all_on_a_one_to_one_evicts_like_a_loop_of_link() {
    let build = |s: &mut Store, r: &Rels| {
        let us: Vec<Key<User>> = (0..3).map(|i| user(s, &format!("u{i}"))).collect();
        let prs: Vec<Key<Profile>> = (0..4).map(|i| profile(s, &format!("pr{i}"))).collect();
        s.link(r.profile, us[0], prs[0]).unwrap();
        s.link(r.profile, us[1], prs[1]).unwrap();
        (us, prs)
    };
    let batch = |r: &Rels, (us, prs): &(Vec<Key<User>>, Vec<Key<Profile>>)| {
        let pairs = vec![
            (us[0], prs[1]), // evicts pr0 from u0 and u1 from pr1
            (us[1], prs[2]),
            (us[1], prs[2]), // repeated
            (us[2], prs[0]),
            (us[2], prs[3]), // evicts pr0 again
            (us[0], prs[1]), // already partners
        ];
        (r.profile, pairs)
    };
    let (s, r, (us, prs), got) = against_a_loop(Config::default(), build, batch);
    got.unwrap();
    assert_eq!(s.partner(r.profile, us[0]), Some(prs[1]));
    assert_eq!(s.partner(r.profile, us[1]), Some(prs[2]));
    assert_eq!(s.partner(r.profile, us[2]), Some(prs[3]));
    assert_eq!(s.partner_of(r.profile, prs[0]), None);
    // under delete-orphan the evicted profile is deleted
    let cfg = Config {
        profile: DeleteOrphan.into(),
        ..Config::default()
    };
    let (_, _, _, got) = against_a_loop(cfg, build, |r, (us, prs)| {
        (r.profile, vec![(us[0], prs[1]), (us[2], prs[3])])
    });
    got.unwrap();
    // ... and a later pair that names it fails the whole batch
    let (s, _, (_, prs), got) = against_a_loop(cfg, build, batch);
    assert_eq!(got, Err(stale("profiles", prs[0])));
    assert!(s.contains(prs[0]));
}

#[test]
fn link_all_on_a_many_to_many_matches_a_loop_of_link() {
    let build = |s: &mut Store, r: &Rels| {
        let ps = posts(s, "p", 3);
        let ts: Vec<Key<Tag>> = (0..4).map(|i| tag(s, &format!("t{i}"))).collect();
        s.link(r.tags, ps[0], ts[0]).unwrap();
        s.link(r.tags, ps[1], ts[0]).unwrap();
        s.unlink(r.tags, ps[0], ts[0]).unwrap();
        let sts: Vec<Key<Student>> = (0..3).map(|i| student(s, &format!("s{i}"))).collect();
        let cs: Vec<Key<Course>> = (0..3).map(|i| course(s, &format!("c{i}"))).collect();
        s.link_with(r.enrollments, sts[0], cs[0], Enrollment { grade: 7 })
            .unwrap();
        (ps, ts, sts, cs)
    };
    let (s, r, (ps, ts, ..), got) = against_a_loop(Config::default(), build, |r, (ps, ts, ..)| {
        let pairs = vec![
            (ps[0], ts[1]),
            (ps[0], ts[0]),
            (ps[1], ts[0]), // linked already: stays first
            (ps[2], ts[3]),
            (ps[0], ts[1]), // repeated
            (ps[2], ts[0]),
        ];
        (r.tags, pairs)
    });
    got.unwrap();
    assert_eq!(targets(&s, r.tags, ps[0]), [ts[1], ts[0]]);
    assert_eq!(sources(&s, r.tags, ts[0]), [ps[1], ps[0], ps[2]]);
    assert_eq!(s.link_count(r.tags), 5);
    // with a payload: existing links keep theirs, new ones get the default
    let (s, r, (_, _, sts, cs), got) =
        against_a_loop(Config::default(), build, |r, (_, _, sts, cs)| {
            let pairs = vec![
                (sts[0], cs[0]),
                (sts[0], cs[1]),
                (sts[2], cs[0]),
                (sts[0], cs[1]),
            ];
            (r.enrollments, pairs)
        });
    got.unwrap();
    assert_eq!(
        s.payload(r.enrollments, sts[0], cs[0]),
        Some(&Enrollment { grade: 7 })
    );
    assert_eq!(
        s.payload(r.enrollments, sts[0], cs[1]),
        Some(&Enrollment { grade: 0 })
    );
    assert_eq!(targets(&s, r.enrollments, sts[0]), [cs[0], cs[1]]);
    // under delete-orphan: nothing is unlinked by linking, so nothing is deleted
    let cfg = Config {
        tags: DeleteOrphan.into(),
        ..Config::default()
    };
    let (s, _, (ps, ts, ..), got) = against_a_loop(cfg, build, |r, (ps, ts, ..)| {
        (r.tags, vec![(ps[2], ts[2]), (ps[0], ts[2]), (ps[0], ts[0])])
    });
    got.unwrap();
    assert!(ps.iter().all(|&p| s.contains(p)));
    assert!(ts.iter().all(|&t| s.contains(t)));
}

// ----- reserve ------------------------------------------------------------------------

#[test]
fn reserve_on_a_polymorphic_base_then_many_rows_of_every_kind() {
    let (mut s, w) = poly::world(poly::Config::default());
    let alice = s.insert(User {
        name: "alice".into(),
    });
    // some vacant base slots first
    let early: Vec<Key<Email>> = (0..10).map(|i| poly::email(&mut s, &w, i, "x")).collect();
    for &e in &early[..6] {
        s.remove(w.email.upcast(e)).unwrap();
    }
    s.reserve::<Notification>(3000);
    s.reserve::<Notification>(0);
    let mut bases = Vec::new();
    for i in 0..3000u64 {
        let base = match i % 3 {
            0 => w.email.upcast(poly::email(&mut s, &w, i, &format!("e{i}"))),
            1 => w.sms.upcast(poly::sms(&mut s, &w, i, &format!("s{i}"))),
            _ => w.push.upcast(poly::push(&mut s, &w, i, &format!("p{i}"))),
        };
        bases.push(base);
    }
    s.link_all(w.inbox, bases.iter().map(|&b| (alice, b)))
        .unwrap();
    check(&s);
    assert_eq!(s.len::<Notification>(), 3004);
    assert_eq!(
        (s.len::<Email>(), s.len::<Sms>(), s.len::<Push>()),
        (1004, 1000, 1000)
    );
    assert_eq!(s.child_count(w.inbox, alice), 3000);
    for (i, &b) in bases.iter().enumerate() {
        assert_eq!(s[b].at, i as u64);
        let (e, m, p) = (
            s.downcast(w.email, b),
            s.downcast(w.sms, b),
            s.downcast(w.push, b),
        );
        match i % 3 {
            0 => {
                assert_eq!(s.kind_name(b), Some("email"));
                assert_eq!(s[e.unwrap()].address, format!("e{i}"));
                assert!(m.is_none() && p.is_none());
            }
            1 => {
                assert_eq!(s.kind_name(b), Some("sms"));
                assert_eq!(s.get_kind(w.sms, b).unwrap().phone, format!("s{i}"));
                assert!(e.is_none() && p.is_none());
            }
            _ => {
                assert_eq!(s.kind_name(b), Some("push"));
                assert_eq!(s[p.unwrap()].title, format!("p{i}"));
                assert!(e.is_none() && m.is_none());
            }
        }
    }
    // the first reused slots went to the most recently removed rows' slots
    let reused: Vec<u32> = bases[..6].iter().map(|b| b.raw().index()).collect();
    let freed: Vec<u32> = early[..6].iter().rev().map(|e| e.raw().index()).collect();
    assert_eq!(reused, freed);
    // reserving through a kind, then a kind-typed relation
    s.reserve::<Push>(500);
    let device = s.insert(poly::Device {
        model: "pixel".into(),
    });
    let pushes: Vec<Key<Push>> = (0..500)
        .map(|i| poly::push(&mut s, &w, i, "more"))
        .collect();
    s.link_all(w.pushes, pushes.iter().map(|&p| (device, p)))
        .unwrap();
    assert_eq!(s.len::<Push>(), 1500);
    assert_eq!(s.child_count(w.pushes, device), 500);
    check(&s);
    // a removed base takes its kind row with it
    s.remove(bases[2]).unwrap();
    assert_eq!(s.len::<Push>(), 1499);
    assert_eq!(s.child_count(w.inbox, alice), 2999);
    check(&s);
}

#[test]
fn reserve_on_a_plain_table_then_bulk_insert_and_link() {
    let (mut s, r) = world(Config::default());
    let u = user(&mut s, "u");
    s.reserve::<Post>(2000);
    s.reserve::<Comment>(2000);
    let ps = s.insert_all((0..2000).map(|i| Post {
        title: format!("p{i}"),
    }));
    s.link_all(r.posts, ps.iter().map(|&p| (u, p))).unwrap();
    let cs = s.insert_all((0..2000).map(|i| Comment {
        text: format!("c{i}"),
    }));
    s.link_all(r.comments, cs.iter().zip(&ps).map(|(&c, &p)| (p, c)))
        .unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, u), ps);
    assert!(ps
        .iter()
        .zip(&cs)
        .all(|(&p, &c)| kids(&s, r.comments, p) == [c]));
}

// ----- deletes of leaf tables ---------------------------------------------------------

/// A post with `n` comments, another post with 3, and a third without any; the first
/// post's author is alice, and it has a tag.
struct Thread {
    alice: Key<User>,
    big: Key<Post>,
    small: Key<Post>,
    lone: Key<Post>,
    many: Vec<Key<Comment>>,
    few: Vec<Key<Comment>>,
    label: Key<Tag>,
}

fn thread(s: &mut Store, r: &Rels, n: usize) -> Thread {
    let alice = user(s, "alice");
    let big = post(s, "big");
    let small = post(s, "small");
    let lone = post(s, "lone");
    let label = tag(s, "label");
    s.link(r.posts, alice, big).unwrap();
    s.link(r.tags, big, label).unwrap();
    let many = s.insert_all((0..n).map(|i| Comment {
        text: format!("m{i}"),
    }));
    let few = s.insert_all((0..3).map(|i| Comment {
        text: format!("f{i}"),
    }));
    s.link_all(r.comments, many.iter().map(|&c| (big, c)))
        .unwrap();
    s.link_all(r.comments, few.iter().map(|&c| (small, c)))
        .unwrap();
    Thread {
        alice,
        big,
        small,
        lone,
        many,
        few,
        label,
    }
}

fn cascading_comments() -> Config {
    Config {
        comments: Cascade.into(),
        ..Config::default()
    }
}

#[test]
fn removing_a_parent_cascades_to_its_leaf_children() {
    for n in [1, 5, 31, 32, 33, 100] {
        let (mut s, r) = world(cascading_comments());
        let t = thread(&mut s, &r, n);
        let preview = s.preview_remove(t.big).unwrap();
        let mut removed = vec![named("posts", t.big)];
        removed.extend(t.many.iter().map(|&c| named("comments", c)));
        assert_eq!(
            preview.removed, removed,
            "the post, then its comments in order"
        );
        assert_eq!(
            preview.unlinked,
            [
                Unlinked {
                    relation: s.schema().relations().next().unwrap().1,
                    end: relgraph::End::B,
                    removed: named("posts", t.big),
                    survivor: named("users", t.alice),
                },
                Unlinked {
                    relation: s.schema().relations().nth(3).unwrap().1,
                    end: relgraph::End::A,
                    removed: named("posts", t.big),
                    survivor: named("tags", t.label),
                }
            ]
        );
        assert!(preview.allowed());
        s.remove(t.big).unwrap();
        check(&s);
        assert!(t.many.iter().all(|&c| !s.contains(c)));
        assert!(!s.contains(t.big));
        assert_eq!(s.len::<Comment>(), 3);
        assert_eq!(s.link_count(r.comments), 3);
        assert_eq!(kids(&s, r.comments, t.small), t.few);
        assert_eq!(s.child_count(r.posts, t.alice), 0);
        assert_eq!(s.source_count(r.tags, t.label), 0);
        assert!(s.contains(t.label) && s.contains(t.lone));
        // stale keys stay stale after their slots are reused
        let fresh = s.insert_all((0..n).map(|i| Comment {
            text: format!("fresh{i}"),
        }));
        assert!(fresh.iter().all(|k| !t.many.contains(k)));
        assert!(t.many.iter().all(|&c| s.get(c).is_none()));
        assert_eq!(
            s.link(r.comments, t.small, t.many[0]),
            Err(stale("comments", t.many[0]))
        );
        check(&s);
    }
}

#[test]
fn removing_a_user_cascades_through_posts_to_their_leaf_comments() {
    let (mut s, r) = world(Config {
        posts: Cascade.into(),
        comments: Cascade.into(),
        ..Config::default()
    });
    let t = thread(&mut s, &r, 40);
    s.link(r.posts, t.alice, t.small).unwrap();
    let other = user(&mut s, "other");
    s.link(r.posts, other, t.lone).unwrap();
    let c = comment(&mut s, "on lone");
    s.link(r.comments, t.lone, c).unwrap();
    let preview = s.preview_remove(t.alice).unwrap();
    assert_eq!(preview.removed.len(), 1 + 2 + 40 + 3);
    s.remove(t.alice).unwrap();
    check(&s);
    assert_eq!(s.len::<Post>(), 1);
    assert_eq!(s.len::<Comment>(), 1);
    assert_eq!(s.link_count(r.comments), 1);
    assert_eq!(kids(&s, r.comments, t.lone), [c]);
    assert_eq!(kids(&s, r.posts, other), [t.lone]);
}

#[test]
fn removing_a_leaf_unlinks_it_from_its_parent_and_keeps_the_rest_in_order() {
    let (mut s, r) = world(cascading_comments());
    let t = thread(&mut s, &r, 10);
    s.unlink(r.comments, t.big, t.many[2]).unwrap(); // a hole before the removed one
    let preview = s.preview_remove(t.many[4]).unwrap();
    assert_eq!(
        preview,
        DeletePreview {
            removed: vec![named("comments", t.many[4])],
            unlinked: vec![Unlinked {
                relation: s.schema().relations().nth(1).unwrap().1,
                end: relgraph::End::B,
                removed: named("comments", t.many[4]),
                survivor: named("posts", t.big),
            }],
            blocked_by: vec![],
        }
    );
    s.remove(t.many[4]).unwrap();
    check(&s);
    let mut want = t.many.clone();
    want.retain(|&c| c != t.many[2] && c != t.many[4]);
    assert_eq!(kids(&s, r.comments, t.big), want);
    assert_eq!(s.link_count(r.comments), 8 + 3);
    // the last child, then one without a parent
    s.remove(t.many[9]).unwrap();
    s.remove(t.many[2]).unwrap();
    check(&s);
    want.pop();
    assert_eq!(kids(&s, r.comments, t.big), want);
    assert_eq!(s.len::<Comment>(), 13 - 3);
    // and a new child goes last
    let c = comment(&mut s, "new");
    s.link(r.comments, t.big, c).unwrap();
    want.push(c);
    assert_eq!(kids(&s, r.comments, t.big), want);
    check(&s);
}

#[test]
fn a_rolled_back_leaf_cascade_restores_every_child_at_its_position() {
    for nested in [false, true] {
        let (mut s, r) = world(cascading_comments());
        let t = thread(&mut s, &r, 20);
        // holes: unlinked in the middle and at the front (kept: too few to compact)
        for i in [0, 3, 7, 8, 15] {
            s.unlink(r.comments, t.big, t.many[i]).unwrap();
        }
        let (mut twin, tr) = world(cascading_comments());
        let tt = thread(&mut twin, &tr, 20);
        for i in [0, 3, 7, 8, 15] {
            twin.unlink(tr.comments, tt.big, tt.many[i]).unwrap();
        }
        let before = dump(&s, &r);
        let bytes = s.to_snapshot().unwrap();
        let order = kids(&s, r.comments, t.big);
        let out: Result<(), ()> = s.transaction(|s| {
            // a hole made inside the transaction too
            s.unlink(r.comments, t.big, t.many[19]).unwrap();
            s.unlink(r.comments, t.big, t.many[10]).unwrap();
            if nested {
                let inner: Result<(), ()> = s.transaction(|s| {
                    s.remove(t.big).unwrap();
                    Ok(())
                });
                inner.unwrap();
            } else {
                s.remove(t.big).unwrap();
            }
            s.remove(t.small).unwrap();
            assert_eq!(s.len::<Comment>(), 5 + 2);
            check(s);
            Err(())
        });
        assert!(out.is_err());
        check(&s);
        assert_eq!(dump(&s, &r), before);
        assert_eq!(kids(&s, r.comments, t.big), order);
        assert_eq!(kids(&s, r.comments, t.small), t.few);
        assert_eq!(s.to_snapshot().unwrap(), bytes);
        // every child is back under its old key at its old position: unlinking and
        // linking from here gives what the twin that never removed anything gives
        for i in [1, 2, 4, 5, 6, 9, 10, 11] {
            s.unlink(r.comments, t.big, t.many[i]).unwrap();
            twin.unlink(tr.comments, tt.big, tt.many[i]).unwrap();
            check(&s);
            assert_eq!(dump(&s, &r), dump(&twin, &tr));
        }
        for i in [3, 1, 0] {
            s.link(r.comments, t.big, t.many[i]).unwrap();
            twin.link(tr.comments, tt.big, tt.many[i]).unwrap();
        }
        s.remove(t.many[12]).unwrap();
        twin.remove(tt.many[12]).unwrap();
        check(&s);
        assert_eq!(dump(&s, &r), dump(&twin, &tr));
        // and the removal undone goes through for real now
        s.remove(t.big).unwrap();
        twin.remove(tt.big).unwrap();
        check(&s);
        assert_eq!(dump(&s, &r), dump(&twin, &tr));
    }
}

#[test]
fn a_rolled_back_delete_of_a_leaf_root_puts_it_back_in_its_place() {
    let (mut s, r) = world(cascading_comments());
    let t = thread(&mut s, &r, 6);
    s.unlink(r.comments, t.big, t.many[1]).unwrap();
    let before = dump(&s, &r);
    let out: Result<(), ()> = s.transaction(|s| {
        s.remove(t.many[3]).unwrap();
        s.remove(t.many[5]).unwrap();
        s.remove(t.many[0]).unwrap();
        assert_eq!(kids(s, r.comments, t.big), [t.many[2], t.many[4]]);
        Err(())
    });
    assert!(out.is_err());
    check(&s);
    assert_eq!(dump(&s, &r), before);
    assert_eq!(
        kids(&s, r.comments, t.big),
        [t.many[0], t.many[2], t.many[3], t.many[4], t.many[5]]
    );
}

#[test]
fn a_restricted_parent_of_leaves_is_refused_and_changes_nothing() {
    let (mut s, r) = world(Config {
        comments: Restrict.into(),
        ..Config::default()
    });
    let t = thread(&mut s, &r, 40);
    let before = dump(&s, &r);
    assert!(s.remove(t.big).is_err());
    assert_eq!(s.preview_remove(t.big).unwrap().blocked_by.len(), 40);
    check(&s);
    assert_eq!(dump(&s, &r), before);
    // the leaves themselves may go
    s.remove(t.many[0]).unwrap();
    check(&s);
}

#[test]
fn nullify_on_a_parent_of_leaves_keeps_them_unlinked() {
    let (mut s, r) = world(Config::default());
    let t = thread(&mut s, &r, 40);
    s.remove(t.big).unwrap();
    check(&s);
    assert_eq!(s.len::<Comment>(), 43);
    assert!(t.many.iter().all(|&c| s.parent(r.comments, c).is_none()));
    s.link_all(r.comments, t.many.iter().map(|&c| (t.small, c)))
        .unwrap();
    assert_eq!(s.child_count(r.comments, t.small), 43);
    check(&s);
}

// A schema where `comments` is a leaf, or (with `extra`) is not: an unused relation
// touches it too. Both must behave the same.

#[derive(Clone, Copy)]
struct Thin {
    posts: OneToMany<User, Post>,
    comments: OneToMany<Post, Comment>,
    tags: relgraph::ManyToMany<Post, Tag>,
}

fn thin(extra: bool, on_post_delete: DeleteRule) -> (Store, Thin) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let comments = s.table::<Comment>("comments");
    let tags = s.table::<Tag>("tags");
    let h = Thin {
        posts: s.one_to_many(users, "posts", posts, "author", Cascade),
        comments: s.one_to_many(posts, "comments", comments, "post", on_post_delete),
        tags: s.many_to_many(posts, "tags", tags, "posts", Rules::new()),
    };
    if extra {
        let _pins = s.one_to_many(tags, "pinned", comments, "pin", Rules::new());
    }
    (Store::new(s), h)
}

fn thin_dump(s: &Store, h: &Thin) -> String {
    let mut out = String::new();
    dump_table::<User>(&mut out, s, "users");
    dump_table::<Post>(&mut out, s, "posts");
    dump_table::<Comment>(&mut out, s, "comments");
    dump_table::<Tag>(&mut out, s, "tags");
    dump_ends(&mut out, s, "posts", h.posts);
    dump_ends(&mut out, s, "comments", h.comments);
    dump_ends(&mut out, s, "tags", h.tags);
    for c in s.keys::<Comment>() {
        if let Some(p) = s.parent(h.comments, c) {
            out.push_str(&format!("parent of {c:?} = {p:?}\n"));
        }
    }
    out
}

#[derive(Clone, Debug)]
enum ThinOp {
    Link(usize, usize),
    Unlink(usize),
    RemovePost(usize),
    RemoveComment(usize),
    RemoveUser(usize),
    Tag(usize, usize),
}

fn thin_op() -> impl Strategy<Value = ThinOp> {
    prop_oneof![
        6 => (0..6usize, 0..60usize).prop_map(|(p, c)| ThinOp::Link(p, c)),
        2 => (0..60usize).prop_map(ThinOp::Unlink),
        2 => (0..6usize).prop_map(ThinOp::RemovePost),
        2 => (0..60usize).prop_map(ThinOp::RemoveComment),
        1 => (0..3usize).prop_map(ThinOp::RemoveUser),
        1 => (0..6usize, 0..2usize).prop_map(|(p, t)| ThinOp::Tag(p, t)),
    ]
}

type ThinKeys = (
    Vec<Key<User>>,
    Vec<Key<Post>>,
    Vec<Key<Comment>>,
    Vec<Key<Tag>>,
);

/// Applies `op`; returns what it reported (errors and previews as text).
fn thin_apply(s: &mut Store, h: &Thin, (us, ps, cs, ts): &ThinKeys, op: &ThinOp) -> String {
    fn removed<T: relgraph::Entity>(s: &mut Store, k: Key<T>) -> String {
        let preview = s.preview_remove(k);
        let got = s.remove(k);
        if let (Ok(p), Ok(())) = (&preview, &got) {
            assert!(p.allowed());
        }
        format!("{preview:?} {got:?}")
    }
    match *op {
        ThinOp::Link(p, c) => format!("{:?}", s.link(h.comments, ps[p], cs[c])),
        ThinOp::Unlink(c) => match s.parent(h.comments, cs[c]) {
            Some(p) => format!("{:?}", s.unlink(h.comments, p, cs[c])),
            None => "none".into(),
        },
        ThinOp::RemovePost(p) => removed(s, ps[p]),
        ThinOp::RemoveComment(c) => removed(s, cs[c]),
        ThinOp::RemoveUser(u) => removed(s, us[u]),
        ThinOp::Tag(p, t) => format!("{:?}", s.link(h.tags, ps[p], ts[t])),
    }
}

fn leaf_and_non_leaf_agree(rule: DeleteRule, setup: &[(usize, usize)], ops: &[(ThinOp, u8)]) {
    let build = |extra| {
        let (mut s, h) = thin(extra, rule);
        let us = s.insert_all((0..3).map(|i| User {
            name: format!("u{i}"),
        }));
        let ps = s.insert_all((0..6).map(|i| Post {
            title: format!("p{i}"),
        }));
        let cs = s.insert_all((0..60).map(|i| Comment {
            text: format!("c{i}"),
        }));
        let ts = s.insert_all((0..2).map(|i| Tag {
            label: format!("t{i}"),
        }));
        s.link_all(h.posts, ps.iter().enumerate().map(|(i, &p)| (us[i % 3], p)))
            .unwrap();
        // the first post gets comments 0..40 (a plan past the scan limit)
        s.link_all(h.comments, cs[..40].iter().map(|&c| (ps[0], c)))
            .unwrap();
        for &(p, c) in setup {
            s.link(h.comments, ps[p], cs[c]).unwrap();
        }
        (s, h, (us, ps, cs, ts))
    };
    let (mut leaf, lh, lk) = build(false);
    let (mut other, oh, ok) = build(true);
    for (op, mode) in ops {
        // mode: 0 plain, 1 in a transaction that commits, 2 in one that fails
        let (mut a, mut b) = (String::new(), String::new());
        let before = thin_dump(&leaf, &lh);
        let run = |s: &mut Store, h: &Thin, k: &ThinKeys, out: &mut String| match mode % 3 {
            0 => *out = thin_apply(s, h, k, op),
            m => {
                let r: Result<(), ()> = s.transaction(|s| {
                    *out = thin_apply(s, h, k, op);
                    check(s);
                    if m == 1 {
                        Ok(())
                    } else {
                        Err(())
                    }
                });
                assert_eq!(r.is_ok(), m == 1);
            }
        };
        run(&mut leaf, &lh, &lk, &mut a);
        run(&mut other, &oh, &ok, &mut b);
        check(&leaf);
        check(&other);
        assert_eq!(a, b, "{op:?} reported otherwise");
        let after = thin_dump(&leaf, &lh);
        assert_eq!(after, thin_dump(&other, &oh), "{op:?} left other states");
        if mode % 3 == 2 {
            assert_eq!(after, before, "{op:?} in a failed transaction");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn deletes_of_a_leaf_table_match_those_of_the_same_table_when_not_a_leaf(
        rule in prop_oneof![Just(Cascade), Just(Nullify), Just(Restrict), Just(DeleteOrphan)],
        setup in vec((0..6usize, 0..60usize), 0..30),
        ops in vec((thin_op(), any::<u8>()), 1..25),
    ) {
        leaf_and_non_leaf_agree(rule, &setup, &ops);
    }
}

#[test]
fn a_plan_past_the_scan_limit_of_a_leaf_parent_with_a_shared_tag() {
    // the post's 40 comments fill the plan past the scan limit before the tag is reached
    // from two posts
    let cfg = Config {
        posts: Cascade.into(),
        comments: Cascade.into(),
        tags: Cascade.into(),
        ..Config::default()
    };
    let (mut s, r) = world(cfg);
    let t = thread(&mut s, &r, 40);
    s.link(r.posts, t.alice, t.small).unwrap();
    s.link(r.tags, t.small, t.label).unwrap();
    let spare = tag(&mut s, "spare");
    let preview = s.preview_remove(t.alice).unwrap();
    let set: BTreeSet<AnyKey> = preview.removed.iter().copied().collect();
    assert_eq!(set.len(), preview.removed.len(), "no entity twice");
    assert_eq!(preview.removed.len(), 1 + 2 + 40 + 1 + 3);
    s.remove(t.alice).unwrap();
    check(&s);
    assert_eq!(s.len::<Comment>(), 0);
    assert_eq!(s.len::<Tag>(), 1);
    assert!(s.contains(spare) && s.contains(t.lone));
    assert_eq!(s.link_count(r.tags), 0);
}

// ----- tables that are not leaves -----------------------------------------------------

#[test]
fn a_lone_self_referential_one_to_many_cascades_through_its_tree() {
    let mut sc = Schema::new();
    let employees = sc.table::<Employee>("employees");
    let reports = sc.one_to_many(employees, "subordinates", employees, "manager", Cascade);
    let mut s = Store::new(sc);
    let es = s.insert_all((0..40).map(|i| Employee {
        name: format!("e{i}"),
    }));
    // a chain e0 -> e1 -> ... -> e19, and e20..e39 under e5
    s.link_all(reports, (1..20).map(|i| (es[i - 1], es[i])))
        .unwrap();
    s.link_all(reports, es[20..].iter().map(|&e| (es[5], e)))
        .unwrap();
    let preview = s.preview_remove(es[3]).unwrap();
    assert_eq!(preview.removed.len(), 17 + 20);
    let out: Result<(), ()> = s.transaction(|s| {
        s.remove(es[3]).unwrap();
        Err(())
    });
    assert!(out.is_err());
    check(&s);
    assert_eq!(s.len::<Employee>(), 40);
    assert_eq!(s.child_count(reports, es[5]), 21);
    s.remove(es[3]).unwrap();
    check(&s);
    assert_eq!(s.len::<Employee>(), 3);
    assert_eq!(s.child_count(reports, es[2]), 0);
}

#[test]
fn a_lone_relation_on_a_polymorphic_base_removes_the_kind_rows() {
    let mut sc = Schema::new();
    let users = sc.table::<User>("users");
    let notifications = sc.table::<Notification>("notifications");
    let email = sc.kind::<Notification, Email>(notifications, "email");
    let sms = sc.kind::<Notification, Sms>(notifications, "sms");
    let inbox = sc.one_to_many(users, "notifications", notifications, "user", Cascade);
    let mut s = Store::new(sc);
    let u = s.insert(User { name: "u".into() });
    let mut bases = Vec::new();
    for i in 0..40 {
        let b = if i % 2 == 0 {
            let e = s.insert_kind(
                email,
                Notification { at: i },
                Email {
                    address: "a".into(),
                },
            );
            email.upcast(e)
        } else {
            sms.upcast(s.insert_kind(sms, Notification { at: i }, Sms { phone: "1".into() }))
        };
        bases.push(b);
    }
    s.link_all(inbox, bases.iter().map(|&b| (u, b))).unwrap();
    // removed directly, then by the cascade
    s.remove(bases[0]).unwrap();
    s.remove(bases[1]).unwrap();
    check(&s);
    assert_eq!((s.len::<Email>(), s.len::<Sms>()), (19, 19));
    assert_eq!(s.child_count(inbox, u), 38);
    let out: Result<(), ()> = s.transaction(|s| {
        s.remove(u).unwrap();
        check(s);
        Err(())
    });
    assert!(out.is_err());
    assert_eq!(s.len::<Notification>(), 38);
    s.remove(u).unwrap();
    check(&s);
    assert_eq!(s.len::<Notification>(), 0);
    assert_eq!((s.len::<Email>(), s.len::<Sms>()), (0, 0));
    assert!(bases.iter().all(|&b| s.kind_name(b).is_none()));
}

#[test]
fn a_lone_child_end_whose_own_rule_acts_is_not_a_leaf() {
    for rule in [Cascade, Restrict, DeleteOrphan] {
        let mut sc = Schema::new();
        let users = sc.table::<User>("users");
        let posts = sc.table::<Post>("posts");
        let rules = Rules::new().on_delete(Cascade).on_delete_b(rule);
        let rel = sc.one_to_many(users, "posts", posts, "author", rules);
        let mut s = Store::new(sc);
        let us = s.insert_all((0..2).map(|i| User {
            name: format!("u{i}"),
        }));
        let ps = s.insert_all((0..40).map(|i| Post {
            title: format!("p{i}"),
        }));
        s.link_all(rel, ps.iter().enumerate().map(|(i, &p)| (us[i % 2], p)))
            .unwrap();
        let lonely = post(&mut s, "lonely");
        let got = s.remove(ps[0]);
        check(&s);
        match rule {
            // deleting a post deletes its author, and with it the author's other posts
            Cascade => {
                got.unwrap();
                assert!(!s.contains(us[0]));
                assert_eq!(s.len::<Post>(), 21);
                assert_eq!(s.child_count(rel, us[1]), 20);
            }
            Restrict => {
                assert!(got.is_err());
                assert_eq!(s.len::<Post>(), 41);
            }
            // the author keeps other posts; the last one's removal deletes it
            _ => {
                got.unwrap();
                assert!(s.contains(us[0]));
                for &p in ps.iter().step_by(2).skip(1) {
                    s.remove(p).unwrap();
                }
                check(&s);
                assert!(!s.contains(us[0]));
                assert_eq!(s.len::<Post>(), 21);
            }
        }
        s.remove(lonely).unwrap();
        check(&s);
    }
}

#[test]
fn a_table_at_the_child_end_of_two_cascades_is_deleted_once_in_a_large_plan() {
    #[derive(Clone, Copy)]
    struct H {
        posts: OneToMany<User, Post>,
        drafts: OneToMany<User, Post>,
    }
    for n in [3usize, 15, 16, 17, 30, 31, 32, 40] {
        let mut sc = Schema::new();
        let users = sc.table::<User>("users");
        let posts = sc.table::<Post>("posts");
        let h = H {
            posts: sc.one_to_many(users, "posts", posts, "author", Cascade),
            drafts: sc.one_to_many(users, "drafts", posts, "drafter", Cascade),
        };
        let mut s = Store::new(sc);
        let us = s.insert_all((0..3).map(|i| User {
            name: format!("u{i}"),
        }));
        let ps = s.insert_all((0..n).map(|i| Post {
            title: format!("p{i}"),
        }));
        let other = post(&mut s, "other");
        s.link_all(h.posts, ps.iter().map(|&p| (us[0], p))).unwrap();
        // every post drafted by u0 too, some by u1 (moved there) instead
        s.link_all(h.drafts, ps.iter().map(|&p| (us[0], p)))
            .unwrap();
        s.link_all(h.drafts, ps.iter().step_by(4).map(|&p| (us[1], p)))
            .unwrap();
        s.link(h.posts, us[2], other).unwrap();
        s.link(h.drafts, us[0], other).unwrap();
        check(&s);
        let preview = s.preview_remove(us[0]).unwrap();
        let set: BTreeSet<AnyKey> = preview.removed.iter().copied().collect();
        assert_eq!(set.len(), preview.removed.len(), "n = {n}: no entity twice");
        assert_eq!(preview.removed.len(), 1 + n + 1);
        s.remove(us[0]).unwrap();
        check(&s);
        assert_eq!(s.len::<Post>(), 0);
        assert_eq!(s.len::<User>(), 2);
        assert_eq!(s.link_count(h.posts) + s.link_count(h.drafts), 0);
        assert_eq!(s.child_count(h.drafts, us[1]), 0);
        assert_eq!(s.child_count(h.posts, us[2]), 0);
    }
}

#[test]
fn a_large_plan_reaching_entities_through_a_many_to_many_deletes_each_once() {
    // user -> 40 posts (cascade) -> shared tags (cascade), with comments below
    for rolled_back in [false, true] {
        let cfg = Config {
            posts: Cascade.into(),
            comments: Cascade.into(),
            tags: Cascade.into(),
            ..Config::default()
        };
        let (mut s, r) = world(cfg);
        let u = user(&mut s, "u");
        let ps = posts(&mut s, "p", 40);
        let ts: Vec<Key<Tag>> = (0..5).map(|i| tag(&mut s, &format!("t{i}"))).collect();
        s.link_all(r.posts, ps.iter().map(|&p| (u, p))).unwrap();
        for (i, &p) in ps.iter().enumerate() {
            s.link_all(r.tags, [(p, ts[i % 5]), (p, ts[(i + 1) % 5])])
                .unwrap();
            let cs = s.insert_all((0..i % 3).map(|j| Comment {
                text: format!("c{i}.{j}"),
            }));
            s.link_all(r.comments, cs.iter().map(|&c| (p, c))).unwrap();
        }
        let keep = post(&mut s, "keep");
        let c = comment(&mut s, "kept");
        s.link(r.comments, keep, c).unwrap();
        check(&s);
        let comments = s.len::<Comment>() - 1;
        let before = dump(&s, &r);
        let preview = s.preview_remove(u).unwrap();
        let set: BTreeSet<AnyKey> = preview.removed.iter().copied().collect();
        assert_eq!(set.len(), preview.removed.len(), "no entity twice");
        assert_eq!(preview.removed.len(), 1 + 40 + 5 + comments);
        if rolled_back {
            let out: Result<(), ()> = s.transaction(|s| {
                s.remove(u).unwrap();
                check(s);
                Err(())
            });
            assert!(out.is_err());
            check(&s);
            assert_eq!(dump(&s, &r), before);
        } else {
            s.remove(u).unwrap();
            check(&s);
            assert_eq!(s.len::<Post>(), 1);
            assert_eq!(s.len::<Tag>(), 0);
            assert_eq!(s.len::<Comment>(), 1);
            assert_eq!(kids(&s, r.comments, keep), [c]);
        }
    }
}

#[test]
fn a_kind_at_the_child_end_is_not_a_leaf() {
    let (mut s, w) = poly::world(poly::Config {
        pushes: Cascade.into(),
        ..poly::Config::default()
    });
    let alice = s.insert(User {
        name: "alice".into(),
    });
    let device = s.insert(poly::Device {
        model: "pixel".into(),
    });
    let other = s.insert(poly::Device {
        model: "other".into(),
    });
    let pushes: Vec<Key<Push>> = (0..40).map(|i| poly::push(&mut s, &w, i, "p")).collect();
    s.link_all(w.pushes, pushes.iter().map(|&p| (device, p)))
        .unwrap();
    s.link_all(w.inbox, pushes.iter().map(|&p| (alice, w.push.upcast(p))))
        .unwrap();
    let kept = poly::push(&mut s, &w, 99, "kept");
    s.link(w.pushes, other, kept).unwrap();
    let before = poly::dump(&s, &w);
    poly::assert_undone(&mut s, &w, |s| s.remove(device).unwrap());
    assert_eq!(poly::dump(&s, &w), before);
    let preview = s.preview_remove(device).unwrap();
    assert_eq!(preview.removed.len(), 41);
    assert_eq!(preview.removed[1].table, "push", "named by their kind");
    s.remove(device).unwrap();
    check(&s);
    assert_eq!(s.len::<Push>(), 1);
    assert_eq!(s.len::<Notification>(), 1);
    assert_eq!(s.child_count(w.inbox, alice), 0);
    assert!(pushes.iter().all(|&p| !s.contains(w.push.upcast(p))));
}

#[test]
fn a_leaf_whose_parent_is_a_kind_cascades_with_it() {
    let (mut s, w) = poly::world(poly::Config {
        attachments: Cascade.into(),
        inbox: Cascade.into(),
        ..poly::Config::default()
    });
    let alice = s.insert(User {
        name: "alice".into(),
    });
    let es: Vec<Key<Email>> = (0..3).map(|i| poly::email(&mut s, &w, i, "e")).collect();
    s.link_all(w.inbox, es.iter().map(|&e| (alice, w.email.upcast(e))))
        .unwrap();
    let atts = s.insert_all((0..50).map(|i| poly::Attachment {
        name: format!("a{i}"),
    }));
    s.link_all(
        w.attachments,
        atts.iter().enumerate().map(|(i, &a)| (es[i % 3], a)),
    )
    .unwrap();
    poly::assert_undone(&mut s, &w, |s| s.remove(alice).unwrap());
    s.remove(es[1]).unwrap();
    check(&s);
    assert_eq!(s.len::<poly::Attachment>(), 50 - 17);
    s.remove(alice).unwrap();
    check(&s);
    assert_eq!(s.len::<poly::Attachment>(), 0);
    assert_eq!(s.len::<Notification>(), 0);
}

#[test]
fn a_self_referential_table_is_not_a_leaf() {
    let (mut s, r) = world(Config {
        reports: Cascade.into(),
        ..Config::default()
    });
    let es: Vec<Key<Employee>> = (0..50)
        .map(|i| employee(&mut s, &format!("e{i}")))
        .collect();
    // a binary tree: e{i} reports to e{(i-1)/2}
    s.link_all(r.reports, (1..50).map(|i| (es[(i - 1) / 2], es[i])))
        .unwrap();
    let spare = employee(&mut s, "spare");
    s.link(r.mentors, es[40], spare).unwrap();
    let before = dump(&s, &r);
    let out: Result<(), ()> = s.transaction(|s| {
        s.remove(es[0]).unwrap();
        Err(())
    });
    assert!(out.is_err());
    assert_eq!(dump(&s, &r), before);
    s.remove(es[1]).unwrap();
    check(&s);
    // e1's subtree: 1, 3, 4, 7..10, 15..22, 31..46
    assert_eq!(s.len::<Employee>(), 51 - (1 + 2 + 4 + 8 + 16));
    assert_eq!(s.partner_of(r.mentors, spare), None);
    s.remove(es[0]).unwrap();
    check(&s);
    assert_eq!(s.len::<Employee>(), 1);
}

// ----- the free list ------------------------------------------------------------------

fn tags_only() -> Store {
    let mut s = Schema::new();
    s.table::<Tag>("tags");
    Store::new(s)
}

fn t(i: usize) -> Tag {
    Tag {
        label: format!("t{i}"),
    }
}

#[test]
fn the_most_recently_freed_slot_is_reused_first() {
    for bulk in [false, true] {
        let mut s = tags_only();
        let first = s.insert_all((0..10_000).map(t));
        assert!(first
            .iter()
            .enumerate()
            .all(|(i, k)| k.raw().index() == i as u32 && k.raw().version() == 1));
        // removed in a scrambled order
        let mut order: Vec<Key<Tag>> = first.clone();
        let mut rng = common::Rng::new(7);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for &k in &order {
            s.remove(k).unwrap();
        }
        assert!(s.is_empty::<Tag>());
        let second: Vec<Key<Tag>> = if bulk {
            s.insert_all((0..10_000).map(t))
        } else {
            (0..10_000).map(|i| s.insert(t(i))).collect()
        };
        let want: Vec<(u32, u32)> = order
            .iter()
            .rev()
            .map(|k| (k.raw().index(), k.raw().version() + 1))
            .collect();
        let got: Vec<(u32, u32)> = second
            .iter()
            .map(|k| (k.raw().index(), k.raw().version()))
            .collect();
        assert_eq!(got, want, "last freed, first reused");
        let old: HashSet<RawKey> = first.iter().map(|k| k.raw()).collect();
        assert!(second.iter().all(|k| !old.contains(&k.raw())));
        assert!(first.iter().all(|&k| !s.contains(k)));
        // every slot reused: the next one is new
        let next = s.insert(t(0));
        assert_eq!((next.raw().index(), next.raw().version()), (10_000, 1));
        assert_eq!(s.len::<Tag>(), 10_001);
        check(&s);
    }
}

/// A reference arena: a `Vec` stack of free slots.
#[derive(Default)]
struct RefArena {
    /// (occupied, version, highest version issued)
    slots: Vec<(bool, u32, u32)>,
    free: Vec<u32>,
}

impl RefArena {
    fn insert(&mut self) -> (u32, u32) {
        while let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            if slot.0 {
                continue;
            }
            *slot = (true, slot.2 + 1, slot.2 + 1);
            return (i, slot.1);
        }
        self.slots.push((true, 1, 1));
        (self.slots.len() as u32 - 1, 1)
    }

    fn remove(&mut self, (i, _): (u32, u32)) {
        self.slots[i as usize].0 = false;
        self.free.push(i);
    }

    fn restore(&mut self, (i, v): (u32, u32)) {
        let slot = &mut self.slots[i as usize];
        *slot = (true, v, slot.2.max(v));
    }
}

/// A step of the free-list test.
#[derive(Clone, Debug)]
enum ArenaOp {
    /// Insert `n` entities, with `insert_all` if the flag is set.
    Insert(usize, bool),
    /// Remove `n` live entities, from position `at` of the live list on.
    Remove(usize, usize),
    /// Steps (insert?, n, at) in a transaction that commits if the flag is set.
    Txn(Vec<(bool, usize, usize)>, bool),
}

fn arena_op() -> impl Strategy<Value = ArenaOp> {
    prop_oneof![
        3 => (1..600usize, any::<bool>()).prop_map(|(n, bulk)| ArenaOp::Insert(n, bulk)),
        3 => (1..600usize, any::<usize>()).prop_map(|(n, at)| ArenaOp::Remove(n, at)),
        1 => (vec((any::<bool>(), 1..300usize, any::<usize>()), 1..4), any::<bool>())
            .prop_map(|(steps, commit)| ArenaOp::Txn(steps, commit)),
    ]
}

fn bits(k: Key<Tag>) -> (u32, u32) {
    (k.raw().index(), k.raw().version())
}

/// Inserts `n` (with `insert_all` or one by one), checking every key against the model.
fn arena_insert(
    s: &mut Store,
    m: &mut RefArena,
    live: &mut Vec<Key<Tag>>,
    issued: &mut HashSet<(u32, u32)>,
    n: usize,
    bulk: bool,
    undo: &mut Vec<(bool, (u32, u32))>,
) {
    let keys: Vec<Key<Tag>> = if bulk {
        s.insert_all((0..n).map(t))
    } else {
        (0..n).map(|i| s.insert(t(i))).collect()
    };
    for k in keys {
        let want = m.insert();
        assert_eq!(bits(k), want);
        assert!(issued.insert(want), "key {want:?} issued twice");
        undo.push((true, want));
        live.push(k);
    }
}

/// Removes `n` live entities from position `at` on (cyclically).
fn arena_remove(
    s: &mut Store,
    m: &mut RefArena,
    live: &mut Vec<Key<Tag>>,
    n: usize,
    at: usize,
    undo: &mut Vec<(bool, (u32, u32))>,
) {
    for _ in 0..n.min(live.len()) {
        let k = live.remove(at % live.len());
        s.remove(k).unwrap();
        assert!(!s.contains(k));
        m.remove(bits(k));
        undo.push((false, bits(k)));
    }
}

fn free_list_matches_a_vec_stack(ops: &[ArenaOp]) {
    let mut s = tags_only();
    let mut m = RefArena::default();
    let mut live = Vec::new();
    let mut issued = HashSet::new();
    for op in ops {
        match op {
            ArenaOp::Insert(n, bulk) => arena_insert(
                &mut s,
                &mut m,
                &mut live,
                &mut issued,
                *n,
                *bulk,
                &mut vec![],
            ),
            ArenaOp::Remove(n, at) => arena_remove(&mut s, &mut m, &mut live, *n, *at, &mut vec![]),
            ArenaOp::Txn(steps, commit) => {
                let mut undo = Vec::new();
                let live_before = live.clone();
                let out: Result<(), ()> = s.transaction(|s| {
                    for &(insert, n, at) in steps {
                        if insert {
                            arena_insert(
                                s,
                                &mut m,
                                &mut live,
                                &mut issued,
                                n,
                                at % 2 == 0,
                                &mut undo,
                            );
                        } else {
                            arena_remove(s, &mut m, &mut live, n, at, &mut undo);
                        }
                    }
                    if *commit {
                        Ok(())
                    } else {
                        Err(())
                    }
                });
                assert_eq!(out.is_ok(), *commit);
                if !*commit {
                    // the rollback: inserts removed, removes restored, last first
                    for &(inserted, k) in undo.iter().rev() {
                        if inserted {
                            m.remove(k);
                        } else {
                            m.restore(k);
                        }
                    }
                    live = live_before;
                }
            }
        }
        assert_eq!(s.len::<Tag>(), live.len());
        assert!(live.iter().all(|&k| s.contains(k)));
    }
    check(&s);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_free_list_behaves_as_a_stack(ops in vec(arena_op(), 1..12)) {
        free_list_matches_a_vec_stack(&ops);
    }
}

#[test]
fn the_free_list_across_chunk_boundaries() {
    // pushes and pops straddling multiples of the chunk size
    let ops = vec![
        ArenaOp::Insert(1000, true),
        ArenaOp::Remove(240, 0),
        ArenaOp::Insert(1, false),
        ArenaOp::Remove(2, 500),
        ArenaOp::Insert(3, true),
        ArenaOp::Remove(481, 17),
        ArenaOp::Insert(480, false),
        ArenaOp::Txn(vec![(false, 300, 3), (true, 250, 0)], false),
        ArenaOp::Insert(600, true),
        ArenaOp::Remove(1000, 0),
        ArenaOp::Txn(vec![(true, 241, 1), (false, 100, 0)], true),
        ArenaOp::Insert(2000, true),
    ];
    free_list_matches_a_vec_stack(&ops);
}

// ----- link_all on a hierarchy checked in one pass ------------------------------------

/// Employees `n`, linked first by `before` (pairs that would close a cycle or self-link
/// are skipped), then a `link_all` of `batch` against a loop of `link`, under `rules`.
fn hierarchy_batch(
    rules: Rules,
    n: usize,
    before: &[(usize, usize)],
    batch: &[(usize, usize)],
) -> Result<(), LinkError> {
    let cfg = Config {
        reports: rules,
        ..Config::default()
    };
    let build = |s: &mut Store, r: &Rels| {
        let es: Vec<Key<Employee>> = (0..n).map(|i| employee(s, &format!("e{i}"))).collect();
        for &(a, b) in before {
            let _ = s.link(r.reports, es[a % n], es[b % n]);
        }
        es
    };
    let (.., got) = against_a_loop(cfg, build, |r, es| {
        let pairs = batch.iter().map(|&(a, b)| (es[a % n], es[b % n]));
        (r.reports, pairs.collect())
    });
    got
}

#[test]
fn link_all_on_an_acyclic_hierarchy_of_new_children_reports_the_loops_first_error() {
    let acyclic = Rules::new().acyclic();
    // a chain built in bulk, top down and bottom up: no cycle
    let chain: Vec<(usize, usize)> = (0..9).map(|i| (i, i + 1)).collect();
    hierarchy_batch(acyclic, 10, &[], &chain).unwrap();
    let reversed: Vec<_> = chain.iter().rev().copied().collect();
    hierarchy_batch(acyclic, 10, &[], &reversed).unwrap();
    // closing the chain on itself, through links made earlier in the same batch
    let mut closed = chain[..8].to_vec();
    closed.push((8, 0));
    let e = hierarchy_batch(acyclic, 10, &[], &closed).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    // through links made before the batch: e0 -> e1 exists, the batch puts e0 under e1's
    // new child e2
    let e = hierarchy_batch(acyclic, 4, &[(0, 1)], &[(1, 2), (2, 0)]).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
    // a self-link (an acyclic relation forbids them too)
    let e = hierarchy_batch(acyclic, 3, &[], &[(0, 1), (2, 2)]).unwrap_err();
    assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
    let both = Rules::new().acyclic().forbid_self_links();
    let e = hierarchy_batch(both, 3, &[], &[(0, 1), (2, 2)]).unwrap_err();
    assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
    let no_self = Rules::new().forbid_self_links();
    hierarchy_batch(no_self, 3, &[], &[(0, 1), (1, 0)]).unwrap();
    let e = hierarchy_batch(no_self, 3, &[], &[(0, 1), (1, 1)]).unwrap_err();
    assert!(matches!(e, LinkError::SelfLink { .. }), "{e:?}");
}

#[test]
fn link_all_builds_a_large_acyclic_hierarchy_as_a_loop_of_link_does() {
    let mut rng = 7u64;
    let mut next = |n: usize| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as usize % n
    };
    // employee i > 0 under a random j < i, in shuffled order
    let mut batch: Vec<(usize, usize)> = (1..2000).map(|i| (next(i), i)).collect();
    for i in (1..batch.len()).rev() {
        batch.swap(i, next(i + 1));
    }
    hierarchy_batch(Rules::new().acyclic(), 2000, &[], &batch).unwrap();
    // every employee descends from e0: putting e0 under any of them closes a cycle
    batch.push((next(1999) + 1, 0));
    let e = hierarchy_batch(Rules::new().acyclic(), 2000, &[], &batch).unwrap_err();
    assert!(matches!(e, LinkError::Cycle { .. }), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn link_all_on_a_hierarchy_matches_a_loop_of_link_on_random_batches(
        rules in prop_oneof![
            Just(Rules::new().acyclic()),
            Just(Rules::new().forbid_self_links()),
            Just(Rules::new().acyclic().forbid_self_links()),
        ],
        n in 1..12usize,
        before in vec((0..12usize, 0..12usize), 0..10),
        batch in vec((0..12usize, 0..12usize), 0..16),
    ) {
        let _ = hierarchy_batch(rules, n, &before, &batch);
    }
}

// ----- link_all on a plain one-to-many, linked as the pairs come -----------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_streamed_link_all_with_a_stale_key_or_a_panic_midway_changes_nothing(
        before in vec((0..4usize, 0..10usize), 0..12),
        batch in vec((0..4usize, 0..10usize), 1..24),
        at in 0..24usize,
        panic in any::<bool>(),
    ) {
        let (mut s, r) = world(Config::default());
        let u = s.insert_all((0..4).map(|i| User { name: format!("u{i}") }));
        let p = s.insert_all((0..10).map(|i| Post { title: format!("p{i}") }));
        let before_links = before;
        for &(a, b) in &before_links {
            s.link(r.posts, u[a], p[b]).unwrap();
        }
        let gone = s.insert(Post { title: "gone".into() });
        s.remove(gone).unwrap();
        let before = dump(&s, &r);
        let at = at % batch.len();
        let pairs = batch.iter().enumerate().map(|(i, &(a, b))| {
            if i == at {
                assert!(!panic, "the input panics");
                (u[a], gone)
            } else {
                (u[a], p[b])
            }
        });
        let got = catch_unwind(AssertUnwindSafe(|| s.link_all(r.posts, pairs)));
        match got {
            Ok(e) => prop_assert_eq!(e, Err(stale("posts", gone))),
            Err(_) => prop_assert!(panic),
        }
        check(&s);
        prop_assert_eq!(dump(&s, &r), before);
        // and the store goes on as its twin, built alike, does with a loop of link
        let (mut twin, tr) = world(Config::default());
        let tu = twin.insert_all((0..4).map(|i| User { name: format!("u{i}") }));
        let tp = twin.insert_all((0..10).map(|i| Post { title: format!("p{i}") }));
        for &(a, b) in &before_links {
            twin.link(tr.posts, tu[a], tp[b]).unwrap();
        }
        let gone = twin.insert(Post { title: "gone".into() });
        twin.remove(gone).unwrap();
        prop_assert_eq!(dump(&twin, &tr), dump(&s, &r));
        s.link_all(r.posts, batch.iter().map(|&(a, b)| (u[a], p[b]))).unwrap();
        for &(a, b) in &batch {
            twin.link(tr.posts, tu[a], tp[b]).unwrap();
        }
        check(&s);
        prop_assert_eq!(dump(&s, &r), dump(&twin, &tr));
    }
}
