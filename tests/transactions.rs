//! Transactions: a closure that returns `Err` or panics is undone exactly (entities, keys,
//! links, payloads, order); transactions nest; keys issued by an undone transaction stay
//! stale for ever.

mod common;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::*;
use relgraph::{DeleteRule, Key, LinkError, Rules, Store};

use DeleteRule::{Cascade, DeleteOrphan, Restrict};

/// A populated world: alice (profile, posts p0..p4 with comments and tags, follows bob),
/// bob (post q), students and courses with grades, an org tree with mentors.
struct Pop {
    alice: Key<User>,
    bob: Key<User>,
    ps: Vec<Key<Post>>,
    q: Key<Post>,
    tags: Vec<Key<Tag>>,
    sts: Vec<Key<Student>>,
    cs: Vec<Key<Course>>,
    es: Vec<Key<Employee>>,
}

fn populated(cfg: Config) -> (Store, Rels, Pop) {
    let (mut s, r) = world(cfg);
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let pa = profile(&mut s, "alice's");
    s.link(r.profile, alice, pa).unwrap();
    s.link(r.follows, alice, bob).unwrap();
    s.link(r.follows, bob, alice).unwrap();
    let ps = posts(&mut s, "p", 5);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let q = post(&mut s, "q");
    s.link(r.posts, bob, q).unwrap();
    for (i, &p) in ps.iter().enumerate() {
        for j in 0..i % 3 {
            let c = comment(&mut s, &format!("c{i}.{j}"));
            s.link(r.comments, p, c).unwrap();
        }
    }
    let tags: Vec<Key<Tag>> = (0..4).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    for (i, &p) in ps.iter().enumerate() {
        s.link(r.tags, p, tags[i % 4]).unwrap();
        s.link(r.tags, p, tags[(i + 1) % 4]).unwrap();
    }
    s.link(r.tags, q, tags[0]).unwrap();
    let sts: Vec<Key<Student>> = (0..3).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..4).map(|i| course(&mut s, &format!("k{i}"))).collect();
    for (i, &st) in sts.iter().enumerate() {
        for (j, &c) in cs.iter().enumerate() {
            if (i + j) % 3 != 0 {
                s.link_with(
                    r.enrollments,
                    st,
                    c,
                    Enrollment {
                        grade: (10 * i + j) as u32,
                    },
                )
                .unwrap();
            }
        }
    }
    let es: Vec<Key<Employee>> = (0..6).map(|i| employee(&mut s, &format!("e{i}"))).collect();
    for (boss, sub) in [(0, 1), (0, 2), (1, 3), (1, 4), (2, 5)] {
        s.link(r.reports, es[boss], es[sub]).unwrap();
    }
    s.link(r.mentors, es[3], es[5]).unwrap();
    check(&s);
    let pop = Pop {
        alice,
        bob,
        ps,
        q,
        tags,
        sts,
        cs,
        es,
    };
    (s, r, pop)
}

/// Runs `f` in a transaction that then fails, and asserts the store is exactly as before.
fn assert_undone(s: &mut Store, r: &Rels, f: impl FnOnce(&mut Store)) {
    let before = dump(s, r);
    let out: Result<(), &str> = s.transaction(|s| {
        f(s);
        check(s);
        assert!(s.in_transaction());
        Err("undo")
    });
    assert_eq!(out, Err("undo"));
    check(s);
    assert!(!s.in_transaction());
    assert_eq!(dump(s, r), before);
}

#[test]
fn a_committed_transaction_keeps_its_changes_and_returns_its_value() {
    let (mut s, r, p) = populated(Config::default());
    let out: Result<Key<User>, LinkError> = s.transaction(|s| {
        let carol = user(s, "carol");
        s.link(r.posts, carol, p.ps[0])?;
        s.update(p.alice, |u| u.name.push('!')).unwrap();
        Ok(carol)
    });
    let carol = out.unwrap();
    check(&s);
    assert!(!s.in_transaction());
    assert_eq!(s.parent(r.posts, p.ps[0]), Some(carol));
    assert_eq!(s[p.alice].name, "alice!");
}

#[test]
fn a_store_error_returned_with_question_mark_undoes_the_changes_before_it() {
    let (mut s, r, p) = populated(Config::default());
    let before = dump(&s, &r);
    let gone = user(&mut s, "gone");
    s.remove(gone).unwrap();
    let before_gone = dump(&s, &r);
    assert_eq!(before, before_gone);
    let out: relgraph::Result<()> = s.transaction(|s| {
        s.link(r.posts, p.bob, p.ps[1])?;
        s.remove(p.ps[2])?;
        s.link(r.posts, gone, p.ps[3])?; // stale: fails here
        unreachable!("the link above fails");
    });
    assert!(matches!(
        out,
        Err(relgraph::Error::Link(LinkError::Stale(_)))
    ));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn rollback_undoes_inserts_and_their_keys_stay_stale() {
    let (mut s, r, _) = populated(Config::default());
    let mut issued: Vec<Key<User>> = Vec::new();
    assert_undone(&mut s, &r, |s| {
        for i in 0..5 {
            issued.push(user(s, &format!("temp{i}")));
        }
        post(s, "temp post");
    });
    for &k in &issued {
        assert_eq!(s.get(k), None);
        assert!(!s.contains(k));
    }
    // later inserts reuse the slots under new versions, never the undone keys
    let later: HashSet<Key<User>> = (0..20).map(|i| user(&mut s, &format!("l{i}"))).collect();
    check(&s);
    for k in &issued {
        assert!(!later.contains(k), "{k:?} was issued again");
        assert_eq!(s.get(*k), None);
    }
}

#[test]
fn keys_issued_in_undone_transactions_are_never_issued_again() {
    let (mut s, _) = world(Config::default());
    let mut seen: HashSet<Key<User>> = HashSet::new();
    for round in 0..50 {
        let mut inside = Vec::new();
        let _: Result<(), ()> = s.transaction(|s| {
            for i in 0..=round % 4 {
                inside.push(user(s, &format!("r{round}.{i}")));
            }
            Err(())
        });
        for k in inside {
            assert!(seen.insert(k), "round {round}: {k:?} issued twice");
            assert_eq!(s.get(k), None);
        }
        if round % 3 == 0 {
            let kept = user(&mut s, "kept");
            assert!(seen.insert(kept), "a kept key was issued before");
            if round % 2 == 0 {
                s.remove(kept).unwrap();
            }
        }
        check(&s);
    }
}

#[test]
fn rollback_restores_removed_entities_under_their_keys_with_links_and_positions() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        s.remove(p.ps[2]).unwrap(); // a middle child with comments and tags
        s.remove(p.tags[1]).unwrap(); // a target with several sources
        s.remove(p.cs[2]).unwrap(); // a course with graded students
        s.remove(p.es[1]).unwrap(); // a manager in the middle of the tree
        s.remove(p.alice).unwrap(); // a parent, a partner, a follower
        assert_eq!(s.len::<User>(), 1);
    });
    assert_eq!(kids(&s, r.posts, p.alice), p.ps);
    assert_eq!(s[p.alice].name, "alice");
}

#[test]
fn rollback_after_a_slot_is_reused_restores_the_old_key_and_stales_the_new_one() {
    let (mut s, r, p) = populated(Config::default());
    let before = dump(&s, &r);
    let mut newer = None;
    let _: Result<(), ()> = s.transaction(|s| {
        s.remove(p.ps[1]).unwrap();
        let n = post(s, "takes the slot");
        assert_eq!(n.raw().index(), p.ps[1].raw().index());
        s.link(r.posts, p.bob, n).unwrap();
        s.link(r.tags, n, p.tags[3]).unwrap();
        newer = Some(n);
        Err(())
    });
    check(&s);
    assert_eq!(dump(&s, &r), before);
    let newer = newer.unwrap();
    assert_eq!(s.get(newer), None);
    assert_eq!(s[p.ps[1]].title, "p1");
    // free the slot again: the next entity in it gets a version never handed out before
    s.remove(p.ps[1]).unwrap();
    let again = post(&mut s, "again");
    assert_eq!(again.raw().index(), newer.raw().index());
    assert_ne!(again, newer, "the undone key is not reissued");
    assert_ne!(again, p.ps[1]);
    assert_eq!(s.get(newer), None);
    check(&s);
}

#[test]
fn rollback_restores_updates() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        s.update(p.alice, |u| u.name = "changed".into()).unwrap();
        s.update(p.alice, |u| u.name.push_str(" twice")).unwrap();
        s.update(p.ps[0], |x| x.title.clear()).unwrap();
        let e = s.insert(Employee { name: "new".into() });
        s.update(e, |x| x.name.push('!')).unwrap();
    });
}

#[test]
fn rollback_restores_links_moves_and_evictions() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        s.link(r.posts, p.bob, p.ps[0]).unwrap(); // move
        s.link(r.posts, p.bob, p.ps[3]).unwrap();
        s.link(r.posts, p.alice, p.ps[0]).unwrap(); // and back, now last
        let pb = profile(s, "bob's");
        s.link(r.profile, p.alice, pb).unwrap(); // evicts alice's profile
        s.link(r.profile, p.bob, pb).unwrap(); // evicts alice
        s.link(r.mentors, p.es[3], p.es[4]).unwrap();
        s.link(r.mentors, p.es[0], p.es[5]).unwrap();
        s.link(r.tags, p.q, p.tags[2]).unwrap();
        s.link(r.enrollments, p.sts[0], p.cs[0]).unwrap();
        s.link(r.reports, p.es[5], p.es[1]).unwrap(); // subtree move
    });
}

#[test]
fn rollback_restores_unlinks_at_their_old_positions() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        for &x in &p.ps[..4] {
            s.unlink(r.posts, p.alice, x).unwrap();
        }
        s.unlink(r.tags, p.ps[0], p.tags[0]).unwrap();
        s.unlink(r.tags, p.q, p.tags[0]).unwrap();
        s.unlink(r.enrollments, p.sts[1], p.cs[0]).unwrap();
        s.unlink(r.enrollments, p.sts[0], p.cs[1]).unwrap();
        s.unlink(r.follows, p.alice, p.bob).unwrap();
        s.unlink(r.reports, p.es[0], p.es[1]).unwrap();
        s.unlink(r.mentors, p.es[3], p.es[5]).unwrap();
        s.link(r.posts, p.alice, p.ps[1]).unwrap(); // relinked: now last
    });
}

#[test]
fn rollback_restores_payloads() {
    let (mut s, r, p) = populated(Config::default());
    let (st, c) = (p.sts[1], p.cs[0]);
    let grade = s.payload(r.enrollments, st, c).cloned();
    assert!(grade.is_some());
    assert_undone(&mut s, &r, |s| {
        s.link_with(r.enrollments, st, c, Enrollment { grade: 77 })
            .unwrap();
        s.update_payload(r.enrollments, st, c, |e| e.grade += 1)
            .unwrap();
        s.update_payload(r.enrollments, p.sts[2], p.cs[1], |e| e.grade = 0)
            .unwrap();
        s.unlink(r.enrollments, st, c).unwrap();
        s.link_with(r.enrollments, st, c, Enrollment { grade: 5 })
            .unwrap();
    });
    assert_eq!(s.payload(r.enrollments, st, c).cloned(), grade);
}

#[test]
fn rollback_restores_orders_changed_by_set_children_and_set_targets() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        let mut rev = p.ps.clone();
        rev.reverse();
        s.set_children(r.posts, p.alice, &rev).unwrap();
        s.set_children(r.posts, p.bob, &[p.ps[0], p.q]).unwrap();
        s.set_targets(r.enrollments, p.sts[1], &[p.cs[3], p.cs[0]])
            .unwrap();
        s.set_targets(r.tags, p.ps[3], &[p.tags[0], p.tags[3]])
            .unwrap();
        s.set_children(r.reports, p.es[0], &[p.es[5], p.es[2]])
            .unwrap();
    });
}

#[test]
fn rollback_restores_self_links_and_cycles() {
    let (mut s, r) = world(Config {
        reports: Cascade.into(),
        mentors: Cascade.into(),
        follows: Cascade.into(),
        ..Config::default()
    });
    let es: Vec<Key<Employee>> = (0..4).map(|i| employee(&mut s, &format!("e{i}"))).collect();
    for (a, b) in [(0, 1), (1, 2), (2, 0), (3, 3)] {
        s.link(r.reports, es[a], es[b]).unwrap();
    }
    s.link(r.mentors, es[3], es[3]).unwrap();
    s.link(r.mentors, es[0], es[2]).unwrap();
    let us: Vec<Key<User>> = (0..3).map(|i| user(&mut s, &format!("u{i}"))).collect();
    for (a, b) in [(0, 0), (0, 1), (1, 0), (2, 1), (1, 2)] {
        s.link(r.follows, us[a], us[b]).unwrap();
    }
    check(&s);
    assert_undone(&mut s, &r, |s| {
        s.remove(es[1]).unwrap(); // the whole cycle
        s.remove(es[3]).unwrap(); // self-linked twice
        s.remove(us[2]).unwrap(); // follows cascade through everybody
        assert_eq!(s.len::<Employee>(), 0);
        assert_eq!(s.len::<User>(), 0);
    });
    assert_undone(&mut s, &r, |s| {
        s.unlink(r.follows, us[0], us[0]).unwrap();
        s.unlink(r.reports, es[3], es[3]).unwrap();
        s.set_targets(r.follows, us[1], &[us[2], us[1], us[0]])
            .unwrap();
    });
}

#[test]
fn rollback_undoes_a_whole_cascade_with_orphans() {
    let cfg = Config {
        posts: Cascade.into(),
        comments: Cascade.into(),
        profile: Cascade.into(),
        tags: DeleteOrphan.into(),
        enrollments: DeleteOrphan.into(),
        reports: Rules::new().acyclic().on_delete(DeleteOrphan),
        ..Config::default()
    };
    let (mut s, r, p) = populated(cfg);
    assert_undone(&mut s, &r, |s| {
        s.remove(p.alice).unwrap();
        assert_eq!(s.len::<Post>(), 1);
        s.remove(p.sts[0]).unwrap();
        s.unlink(r.reports, p.es[0], p.es[1]).unwrap(); // prunes a subtree
        s.set_targets(r.enrollments, p.sts[2], &[]).unwrap();
        s.remove(p.bob).unwrap();
        assert_eq!(s.len::<Post>(), 0);
    });
    assert_eq!(s.len::<Post>(), 6);
}

#[test]
fn a_refused_call_inside_a_transaction_changes_nothing_and_the_transaction_goes_on() {
    let cfg = Config {
        posts: DeleteOrphan.into(),
        comments: Restrict.into(),
        ..Config::default()
    };
    let (mut s, r, p) = populated(cfg);
    let out: Result<(), ()> = s.transaction(|s| {
        s.update(p.bob, |u| u.name = "robert".into()).unwrap();
        let before = dump(s, &r);
        // p1 has a comment, so deleting it as an orphan is refused
        let e = s.unlink(r.posts, p.alice, p.ps[1]).unwrap_err();
        assert!(matches!(e, LinkError::OrphanDelete(_)));
        let e = s.set_children(r.posts, p.alice, &[p.ps[0]]).unwrap_err();
        assert!(matches!(e, LinkError::OrphanDelete(_)));
        check(s);
        assert_eq!(dump(s, &r), before);
        assert!(s.in_transaction());
        s.unlink(r.posts, p.alice, p.ps[0]).unwrap(); // p0 has no comment: deleted
        Ok(())
    });
    assert_eq!(out, Ok(()));
    check(&s);
    assert_eq!(s[p.bob].name, "robert");
    assert!(!s.contains(p.ps[0]));
    assert!(s.contains(p.ps[1]));
    assert_eq!(kids(&s, r.posts, p.alice), &p.ps[1..]);
}

#[test]
fn a_failed_inner_transaction_undoes_only_its_own_changes() {
    let (mut s, r, p) = populated(Config::default());
    let out: Result<(), ()> = s.transaction(|s| {
        s.update(p.alice, |u| u.name = "outer".into()).unwrap();
        s.link(r.posts, p.bob, p.ps[0]).unwrap();
        let mid = dump(s, &r);
        let inner: Result<(), &str> = s.transaction(|s| {
            s.remove(p.bob).unwrap();
            s.update(p.alice, |u| u.name = "inner".into()).unwrap();
            Err("inner fails")
        });
        assert_eq!(inner, Err("inner fails"));
        check(s);
        assert_eq!(dump(s, &r), mid);
        assert!(s.in_transaction(), "the outer one is still open");
        Ok(())
    });
    assert_eq!(out, Ok(()));
    check(&s);
    assert_eq!(s[p.alice].name, "outer");
    assert_eq!(s.parent(r.posts, p.ps[0]), Some(p.bob));
}

#[test]
fn a_failed_outer_transaction_undoes_its_committed_inner_ones() {
    let (mut s, r, p) = populated(Config::default());
    assert_undone(&mut s, &r, |s| {
        let inner: Result<(), ()> = s.transaction(|s| {
            s.remove(p.alice).unwrap();
            s.link(r.posts, p.bob, p.ps[4]).unwrap();
            Ok(())
        });
        assert_eq!(inner, Ok(()));
        let inner: Result<(), ()> = s.transaction(|s| {
            s.set_children(r.posts, p.bob, &[p.ps[0], p.q]).unwrap();
            Ok(())
        });
        assert_eq!(inner, Ok(()));
    });
}

#[test]
fn deeply_nested_transactions_undo_exactly_the_failed_levels() {
    let (mut s, r, p) = populated(Config::default());
    fn level(s: &mut Store, r: &Rels, p: &Pop, depth: usize, dumps: &mut Vec<String>) {
        if depth == 8 {
            return;
        }
        dumps.push(dump(s, r));
        let fails = depth % 3 == 1;
        let out: Result<(), usize> = s.transaction(|s| {
            let x = post(s, &format!("d{depth}"));
            s.link(r.posts, p.bob, x).unwrap();
            s.unlink(r.posts, p.alice, p.ps[depth % 5]).unwrap();
            level(s, r, p, depth + 1, dumps);
            if fails {
                Err(depth)
            } else {
                Ok(())
            }
        });
        check(s);
        let before = dumps.pop().unwrap();
        if fails {
            assert_eq!(out, Err(depth));
            assert_eq!(dump(s, r), before, "level {depth} undone exactly");
        } else {
            assert_eq!(out, Ok(()));
            assert_ne!(dump(s, r), before);
        }
    }
    let mut dumps = Vec::new();
    let before = dump(&s, &r);
    level(&mut s, &r, &p, 0, &mut dumps);
    assert!(!s.in_transaction());
    assert_ne!(dump(&s, &r), before, "level 0 committed");
    let bob_posts: Vec<String> = s
        .children(r.posts, p.bob)
        .map(|x| s[x].title.clone())
        .collect();
    assert_eq!(
        bob_posts,
        ["q", "d0"],
        "levels 1.. sit under the failed level 1"
    );
}

#[test]
fn a_panic_inside_the_closure_rolls_everything_back() {
    let (mut s, r, p) = populated(Config::default());
    let before = dump(&s, &r);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), ()> = s.transaction(|s| {
            s.remove(p.alice).unwrap();
            user(s, "temp");
            s.link(r.tags, p.q, p.tags[3]).unwrap();
            panic!("boom");
        });
    }));
    assert!(caught.is_err());
    check(&s);
    assert!(!s.in_transaction());
    assert_eq!(dump(&s, &r), before);
    // the store keeps working, in and out of transactions
    let out: Result<(), ()> = s.transaction(|s| {
        s.remove(p.ps[0]).unwrap();
        Ok(())
    });
    assert_eq!(out, Ok(()));
    check(&s);
    assert!(!s.contains(p.ps[0]));
}

#[test]
fn a_panic_inside_an_update_closure_rolls_back_the_partial_change() {
    let (mut s, r, p) = populated(Config::default());
    let before = dump(&s, &r);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), ()> = s.transaction(|s| {
            s.update(p.bob, |u| u.name.push_str(" (edited)")).unwrap();
            s.update(p.alice, |u| {
                u.name.push_str(" half-done");
                panic!("boom in the middle of an update");
            })
            .unwrap();
            Ok(())
        });
    }));
    assert!(caught.is_err());
    check(&s);
    assert_eq!(s[p.alice].name, "alice", "the half-done update is undone");
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn a_panic_inside_a_payload_update_closure_rolls_back_the_partial_change() {
    let (mut s, r, p) = populated(Config::default());
    let before = dump(&s, &r);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), ()> = s.transaction(|s| {
            s.update_payload(r.enrollments, p.sts[1], p.cs[0], |e| {
                e.grade = 1000;
                panic!("boom in the middle of a payload update");
            })
            .unwrap();
            Ok(())
        });
    }));
    assert!(caught.is_err());
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn a_panicking_inner_transaction_caught_by_the_outer_one_undoes_only_itself() {
    let (mut s, r, p) = populated(Config::default());
    let out: Result<(), ()> = s.transaction(|s| {
        s.update(p.alice, |u| u.name = "kept".into()).unwrap();
        let mid = dump(s, &r);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _: Result<(), ()> = s.transaction(|s| {
                s.remove(p.bob).unwrap();
                panic!("inner boom");
            });
        }));
        assert!(caught.is_err());
        check(s);
        assert_eq!(dump(s, &r), mid);
        assert!(s.in_transaction());
        Ok(())
    });
    assert_eq!(out, Ok(()));
    check(&s);
    assert_eq!(s[p.alice].name, "kept");
    assert!(s.contains(p.bob));
    assert!(!s.in_transaction());
}

#[test]
fn many_unlinks_undone_then_redone_outside_keep_order_and_integrity() {
    let (mut s, r) = world(Config::default());
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 100);
    let st = student(&mut s, "st");
    let cs: Vec<Key<Course>> = (0..100).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, (&p, &c)) in ps.iter().zip(&cs).enumerate() {
        s.link(r.posts, alice, p).unwrap();
        s.link_with(r.enrollments, st, c, Enrollment { grade: i as u32 })
            .unwrap();
    }
    // inside a transaction lists keep their holes; after the rollback they are whole
    assert_undone(&mut s, &r, |s| {
        for (i, (&p, &c)) in ps.iter().zip(&cs).enumerate() {
            if i % 5 != 0 {
                s.unlink(r.posts, alice, p).unwrap();
                s.unlink(r.enrollments, st, c).unwrap();
            }
        }
    });
    // the same unlinks outside a transaction compact the lists
    let mut model: Vec<usize> = (0..100).collect();
    for i in (0..100).filter(|i| i % 5 != 0) {
        s.unlink(r.posts, alice, ps[i]).unwrap();
        s.unlink(r.enrollments, st, cs[i]).unwrap();
        model.retain(|&j| j != i);
        check(&s);
    }
    let expected: Vec<Key<Post>> = model.iter().map(|&i| ps[i]).collect();
    assert_eq!(kids(&s, r.posts, alice), expected);
    let grades: Vec<(Key<Course>, u32)> = s
        .targets_with(r.enrollments, st)
        .map(|(c, e)| (c, e.grade))
        .collect();
    let expected: Vec<(Key<Course>, u32)> = model.iter().map(|&i| (cs[i], i as u32)).collect();
    assert_eq!(grades, expected);
    // and a transaction over compacted lists undoes exactly too
    assert_undone(&mut s, &r, |s| {
        for &i in &model[..10] {
            s.unlink(r.posts, alice, ps[i]).unwrap();
            s.remove(cs[i]).unwrap();
        }
        s.link(r.posts, alice, ps[1]).unwrap();
    });
}

/// Applies one random operation to the world; a refused one must change nothing.
fn random_op(s: &mut Store, r: &Rels, rng: &mut Rng) {
    fn pick<T: relgraph::Entity>(s: &Store, rng: &mut Rng) -> Option<Key<T>> {
        let keys: Vec<Key<T>> = s.keys::<T>().collect();
        (!keys.is_empty()).then(|| rng.pick(&keys))
    }
    let before = dump(s, r);
    let refused = match rng.below(16) {
        0 => {
            user(s, "u");
            false
        }
        1 => {
            post(s, "p");
            comment(s, "c");
            tag(s, "t");
            false
        }
        2 => {
            employee(s, "e");
            student(s, "s");
            course(s, "k");
            profile(s, "f");
            false
        }
        3 => match (pick::<User>(s, rng), pick::<Post>(s, rng)) {
            (Some(u), Some(p)) => s.link(r.posts, u, p).is_err(),
            _ => false,
        },
        4 => match (pick::<Post>(s, rng), pick::<Comment>(s, rng)) {
            (Some(p), Some(c)) => s.link(r.comments, p, c).is_err(),
            _ => false,
        },
        5 => match (pick::<User>(s, rng), pick::<Profile>(s, rng)) {
            (Some(u), Some(f)) => s.link(r.profile, u, f).is_err(),
            _ => false,
        },
        6 => match (pick::<Post>(s, rng), pick::<Tag>(s, rng)) {
            (Some(p), Some(t)) if rng.below(2) == 0 => s.link(r.tags, p, t).is_err(),
            (Some(p), Some(t)) => s.unlink(r.tags, p, t).is_err(),
            _ => false,
        },
        7 => match (pick::<Student>(s, rng), pick::<Course>(s, rng)) {
            (Some(a), Some(b)) => {
                let g = rng.below(100) as u32;
                s.link_with(r.enrollments, a, b, Enrollment { grade: g })
                    .is_err()
            }
            _ => false,
        },
        8 => match (pick::<Student>(s, rng), pick::<Course>(s, rng)) {
            (Some(a), Some(b)) => s
                .update_payload(r.enrollments, a, b, |e| e.grade += 1)
                .is_err(),
            _ => false,
        },
        9 => match (pick::<Employee>(s, rng), pick::<Employee>(s, rng)) {
            (Some(a), Some(b)) if rng.below(2) == 0 => s.link(r.reports, a, b).is_err(),
            (Some(a), Some(b)) => s.link(r.mentors, a, b).is_err(),
            _ => false,
        },
        10 => match (pick::<User>(s, rng), pick::<User>(s, rng)) {
            (Some(a), Some(b)) => s.link(r.follows, a, b).is_err(),
            _ => false,
        },
        11 => match pick::<User>(s, rng) {
            Some(u) => {
                let mut kids: Vec<Key<Post>> = s.children(r.posts, u).collect();
                kids.reverse();
                if let Some(p) = pick::<Post>(s, rng) {
                    if !kids.contains(&p) {
                        kids.insert(rng.below(kids.len() + 1), p);
                    }
                }
                if rng.below(3) == 0 && !kids.is_empty() {
                    kids.remove(rng.below(kids.len()));
                }
                s.set_children(r.posts, u, &kids).is_err()
            }
            None => false,
        },
        12 => match pick::<Student>(s, rng) {
            Some(st) => {
                let mut ts: Vec<Key<Course>> = s.targets(r.enrollments, st).collect();
                if !ts.is_empty() {
                    ts.rotate_left(1);
                }
                if let Some(c) = pick::<Course>(s, rng) {
                    if !ts.contains(&c) {
                        ts.push(c);
                    }
                }
                if rng.below(3) == 0 && !ts.is_empty() {
                    ts.remove(0);
                }
                s.set_targets(r.enrollments, st, &ts).is_err()
            }
            None => false,
        },
        13 => match (pick::<User>(s, rng), pick::<Post>(s, rng)) {
            (Some(u), Some(p)) => s.unlink(r.posts, u, p).is_err(),
            _ => false,
        },
        14 => match pick::<User>(s, rng) {
            Some(u) => s.update(u, |x| x.name.push('+')).is_err(),
            None => false,
        },
        _ => match rng.below(6) {
            0 => pick::<User>(s, rng).is_some_and(|k| s.remove(k).is_err()),
            1 => pick::<Post>(s, rng).is_some_and(|k| s.remove(k).is_err()),
            2 => pick::<Tag>(s, rng).is_some_and(|k| s.remove(k).is_err()),
            3 => pick::<Course>(s, rng).is_some_and(|k| s.remove(k).is_err()),
            4 => pick::<Employee>(s, rng).is_some_and(|k| s.remove(k).is_err()),
            _ => pick::<Profile>(s, rng).is_some_and(|k| s.remove(k).is_err()),
        },
    };
    check(s);
    if refused {
        assert_eq!(dump(s, r), before, "a refused operation changed the store");
    }
}

fn mixed_rules() -> Config {
    Config {
        posts: Rules::new().on_delete(Cascade),
        comments: Restrict.into(),
        profile: Rules::new().on_delete(DeleteOrphan).on_delete_b(Restrict),
        tags: DeleteOrphan.into(),
        enrollments: Rules::new().on_delete_b(DeleteOrphan),
        reports: Rules::new().acyclic().on_delete(DeleteOrphan),
        mentors: Rules::new().acyclic().on_delete_b(Restrict),
        follows: Rules::new().forbid_self_links(),
    }
}

#[test]
fn random_operations_in_a_failed_transaction_are_undone_exactly() {
    let (mut s, r, _) = populated(mixed_rules());
    let mut rng = Rng::new(99);
    for round in 0..60 {
        let n = 1 + rng.below(25);
        let fail = round % 2 == 0;
        let before = dump(&s, &r);
        let out: Result<(), ()> = s.transaction(|s| {
            for _ in 0..n {
                if rng.below(8) == 0 {
                    // a nested savepoint that fails half the time
                    let mid = dump(s, &r);
                    let inner_fails = rng.below(2) == 0;
                    let inner: Result<(), ()> = s.transaction(|s| {
                        for _ in 0..rng.below(6) {
                            random_op(s, &r, &mut rng);
                        }
                        if inner_fails {
                            Err(())
                        } else {
                            Ok(())
                        }
                    });
                    if inner.is_err() {
                        assert_eq!(dump(s, &r), mid, "round {round}: inner undo");
                    }
                } else {
                    random_op(s, &r, &mut rng);
                }
            }
            if fail {
                Err(())
            } else {
                Ok(())
            }
        });
        check(&s);
        assert_eq!(out.is_err(), fail);
        if fail {
            assert_eq!(dump(&s, &r), before, "round {round}: undo");
        }
    }
}

#[test]
fn random_operations_in_a_committed_transaction_match_the_same_operations_outside() {
    let (mut inside, r, _) = populated(mixed_rules());
    let (mut outside, r2, _) = populated(mixed_rules());
    let mut rng_in = Rng::new(1234);
    let mut rng_out = Rng::new(1234);
    for round in 0..40 {
        let n = 1 + round % 20;
        let out: Result<(), ()> = inside.transaction(|s| {
            for _ in 0..n {
                random_op(s, &r, &mut rng_in);
            }
            Ok(())
        });
        assert_eq!(out, Ok(()));
        for _ in 0..n {
            random_op(&mut outside, &r2, &mut rng_out);
        }
        check(&inside);
        assert_eq!(dump(&inside, &r), dump(&outside, &r2), "round {round}");
    }
}

#[test]
fn an_entity_that_gained_links_in_an_undone_transaction_stays_stale_for_every_relation() {
    let (mut s, r) = world(Config::default());
    let alice = user(&mut s, "alice");
    let keep = post(&mut s, "keep");
    let t = tag(&mut s, "t");
    let mut made = None;
    let out: Result<(), &str> = s.transaction(|s| {
        // the new user owns a children list and a many-to-many list, the new post a
        // parent reference and a list: all of it must be forgotten by the rollback
        let ghost = user(s, "ghost");
        let p = post(s, "p");
        s.link(r.posts, ghost, p).unwrap();
        s.link(r.follows, ghost, alice).unwrap();
        s.link(r.tags, p, t).unwrap();
        made = Some((ghost, p));
        Err("undo")
    });
    assert!(out.is_err());
    let (ghost, p) = made.unwrap();
    check(&s);
    assert!(matches!(
        s.link(r.posts, ghost, keep),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(
        s.link(r.follows, ghost, alice),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(
        s.link(r.follows, alice, ghost),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(
        s.link(r.posts, alice, p),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(s.link(r.tags, p, t), Err(LinkError::Stale(_))));
    assert!(matches!(
        s.set_children(r.posts, ghost, &[]),
        Err(LinkError::Stale(_))
    ));
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(s.child_count(r.posts, alice), 0);
    check(&s);
}
