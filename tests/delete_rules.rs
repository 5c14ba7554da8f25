//! Delete rules (nullify, cascade, restrict, delete-orphan) on each end of each relation
//! kind, multi-level cascades, restrict blocking a cascade, orphan deletes and their
//! refusal, and `preview_remove`, checked against what `remove` then does and against an
//! independent model of the rules.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use relgraph::{
    AnyKey, DeleteRule, Entity, Key, LinkError, Relation, RemoveError, Rules, StaleKey, Store,
};

use DeleteRule::{Cascade, DeleteOrphan, Nullify, Restrict};

fn any<T>(table: &'static str, k: Key<T>) -> AnyKey {
    AnyKey {
        table,
        key: k.raw(),
    }
}

fn cfg_posts(rules: Rules) -> (Store, Rels) {
    world(Config {
        posts: rules,
        ..Config::default()
    })
}

/// alice with posts p0, p1, p2; bob with post q.
struct Blog {
    alice: Key<User>,
    bob: Key<User>,
    ps: Vec<Key<Post>>,
    q: Key<Post>,
}

fn blog(rules: Rules) -> (Store, Rels, Blog) {
    let (mut s, r) = cfg_posts(rules);
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 3);
    let q = post(&mut s, "q");
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.link(r.posts, bob, q).unwrap();
    check(&s);
    (s, r, Blog { alice, bob, ps, q })
}

// ----- one-to-many --------------------------------------------------------------------

#[test]
fn nullify_on_a_parent_unlinks_its_children_and_keeps_them() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(Nullify.into());
    s.remove(alice).unwrap();
    check(&s);
    assert!(ps
        .iter()
        .all(|&p| s.contains(p) && s.parent(r.posts, p).is_none()));
    assert_eq!(kids(&s, r.posts, bob), [q]);
}

#[test]
fn cascade_on_a_parent_deletes_all_its_children() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(Cascade.into());
    s.remove(alice).unwrap();
    check(&s);
    assert!(ps.iter().all(|&p| !s.contains(p)));
    assert_eq!(s.len::<Post>(), 1);
    assert_eq!(kids(&s, r.posts, bob), [q]);
}

#[test]
fn cascade_on_the_child_end_deletes_the_parent_and_nullifies_its_other_children() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(Rules::new().on_delete_b(Cascade));
    s.remove(ps[1]).unwrap();
    check(&s);
    assert!(!s.contains(alice), "deleting a post deleted its author");
    assert!(s.contains(ps[0]) && s.contains(ps[2]));
    assert_eq!(s.parent(r.posts, ps[0]), None);
    assert_eq!(kids(&s, r.posts, bob), [q]);
    assert!(s.contains(bob));
}

#[test]
fn restrict_on_a_parent_refuses_the_delete_while_it_has_children() {
    let (mut s, r, Blog { alice, ps, .. }) = blog(Restrict.into());
    let before = dump(&s, &r);
    let e = s.remove(alice).unwrap_err();
    check(&s);
    assert_eq!(dump(&s, &r), before);
    match &e {
        RemoveError::Restricted {
            relation,
            key,
            blocker,
        } => {
            assert_eq!(relation.to_string(), "users.posts <-> posts.author");
            assert_eq!(*key, any("users", alice));
            assert_eq!(*blocker, any("posts", ps[0]));
        }
        e => panic!("expected Restricted, got {e:?}"),
    }
    let text = e.to_string();
    assert!(text.contains("users.posts <-> posts.author"), "{text}");
    assert!(text.starts_with("cannot delete users["), "{text}");
    // children may go; then the parent may too
    for &p in &ps {
        s.remove(p).unwrap();
    }
    s.remove(alice).unwrap();
    check(&s);
    assert!(!s.contains(alice));
}

#[test]
fn restrict_on_the_child_end_refuses_deleting_a_child_while_it_has_a_parent() {
    let (mut s, r, Blog { alice, ps, .. }) = blog(Rules::new().on_delete_b(Restrict));
    let lonely = post(&mut s, "lonely");
    let before = dump(&s, &r);
    let e = s.remove(ps[2]).unwrap_err();
    assert!(matches!(e, RemoveError::Restricted { blocker, .. } if blocker.key == alice.raw()));
    check(&s);
    assert_eq!(dump(&s, &r), before);
    s.remove(lonely).unwrap();
    s.unlink(r.posts, alice, ps[2]).unwrap();
    s.remove(ps[2]).unwrap();
    check(&s);
    s.remove(alice).unwrap(); // nullify at the parent end
    check(&s);
    assert_eq!(s.len::<Post>(), 3);
}

#[test]
fn delete_orphan_on_a_parent_deletes_its_children_with_it() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(DeleteOrphan.into());
    s.remove(alice).unwrap();
    check(&s);
    assert!(ps.iter().all(|&p| !s.contains(p)));
    assert_eq!(kids(&s, r.posts, bob), [q]);
}

#[test]
fn delete_orphan_deletes_a_child_unlinked_from_its_parent() {
    let (mut s, r, Blog { alice, ps, .. }) = blog(DeleteOrphan.into());
    assert_eq!(s.unlink(r.posts, alice, ps[1]), Ok(true));
    check(&s);
    assert!(!s.contains(ps[1]));
    assert_eq!(kids(&s, r.posts, alice), [ps[0], ps[2]]);
    assert_eq!(s.len::<Post>(), 3);
}

#[test]
fn delete_orphan_deletes_the_children_set_children_drops() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(DeleteOrphan.into());
    s.set_children(r.posts, alice, &[ps[2], q]).unwrap();
    check(&s);
    assert!(!s.contains(ps[0]) && !s.contains(ps[1]));
    assert_eq!(kids(&s, r.posts, alice), [ps[2], q]);
    assert!(kids(&s, r.posts, bob).is_empty());
    assert!(s.contains(q), "taken from bob: moved, not orphaned");
}

#[test]
fn moving_a_child_under_delete_orphan_does_not_delete_it() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(DeleteOrphan.into());
    s.link(r.posts, bob, ps[0]).unwrap();
    check(&s);
    assert!(s.contains(ps[0]));
    assert_eq!(kids(&s, r.posts, bob), [q, ps[0]]);
    assert_eq!(kids(&s, r.posts, alice), [ps[1], ps[2]]);
    assert_eq!(s.len::<Post>(), 4);
}

#[test]
fn delete_orphan_on_the_child_end_deletes_a_parent_left_without_children() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(Rules::new().on_delete_b(DeleteOrphan));
    s.unlink(r.posts, alice, ps[0]).unwrap();
    s.unlink(r.posts, alice, ps[1]).unwrap();
    check(&s);
    assert!(s.contains(alice), "still has a post");
    assert!(
        s.contains(ps[0]),
        "the child end's rule does not touch children"
    );
    s.unlink(r.posts, alice, ps[2]).unwrap();
    check(&s);
    assert!(!s.contains(alice), "left without posts");
    // moving bob's only post away leaves bob without posts too
    let carol = user(&mut s, "carol");
    s.link(r.posts, carol, q).unwrap();
    check(&s);
    assert!(!s.contains(bob));
    assert_eq!(kids(&s, r.posts, carol), [q]);
}

#[test]
fn delete_orphan_on_the_child_end_deletes_a_parent_that_set_children_empties() {
    let (mut s, r, Blog { alice, bob, ps, q }) = blog(Rules::new().on_delete_b(DeleteOrphan));
    // replacing alice's posts with bob's only post: alice keeps a child, bob has none left
    s.set_children(r.posts, alice, &[q]).unwrap();
    check(&s);
    assert!(s.contains(alice));
    assert!(!s.contains(bob), "bob lost his last post to alice");
    assert!(ps
        .iter()
        .all(|&p| s.contains(p) && s.parent(r.posts, p).is_none()));
    // emptying alice's posts leaves her an orphan of the post end, as unlink would
    s.set_children(r.posts, alice, &[]).unwrap();
    check(&s);
    assert!(
        !s.contains(alice),
        "set_children agrees with unlink and set_targets"
    );
    assert!(s.contains(q));
}

// ----- one-to-one ---------------------------------------------------------------------

fn profiles(rules: Rules) -> (Store, Rels, Key<User>, Key<Profile>) {
    let (mut s, r) = world(Config {
        profile: rules,
        ..Config::default()
    });
    let alice = user(&mut s, "alice");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    (s, r, alice, bio)
}

#[test]
fn nullify_on_a_one_to_one_keeps_the_partner() {
    let (mut s, r, alice, bio) = profiles(Nullify.into());
    s.remove(alice).unwrap();
    check(&s);
    assert!(s.contains(bio));
    assert_eq!(s.partner_of(r.profile, bio), None);
}

#[test]
fn cascade_on_a_one_to_one_deletes_the_partner_from_either_end() {
    let (mut s, _, alice, bio) = profiles(Cascade.into());
    s.remove(alice).unwrap();
    check(&s);
    assert!(!s.contains(bio));

    let (mut s, _, alice, bio) = profiles(Rules::new().on_delete_b(Cascade));
    s.remove(bio).unwrap();
    check(&s);
    assert!(!s.contains(alice));
}

#[test]
fn restrict_on_a_one_to_one_refuses_while_partnered() {
    let (mut s, r, alice, bio) = profiles(Restrict.into());
    let before = dump(&s, &r);
    let e = s.remove(alice).unwrap_err();
    assert!(
        matches!(e, RemoveError::Restricted { blocker, .. } if blocker == any("profiles", bio))
    );
    assert_eq!(dump(&s, &r), before);
    s.remove(bio).unwrap(); // nullify at the other end
    s.remove(alice).unwrap();
    check(&s);

    let (mut s, r, alice, bio) = profiles(Rules::new().on_delete_b(Restrict));
    let before = dump(&s, &r);
    let e = s.remove(bio).unwrap_err();
    assert!(matches!(e, RemoveError::Restricted { blocker, .. } if blocker == any("users", alice)));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn delete_orphan_on_a_one_to_one_deletes_an_evicted_or_unlinked_partner() {
    let (mut s, r, alice, bio) = profiles(DeleteOrphan.into());
    let newer = profile(&mut s, "newer");
    s.link(r.profile, alice, newer).unwrap();
    check(&s);
    assert!(!s.contains(bio), "evicted, so orphaned");
    assert_eq!(s.partner(r.profile, alice), Some(newer));
    s.unlink(r.profile, alice, newer).unwrap();
    check(&s);
    assert!(!s.contains(newer));
    assert_eq!(s.len::<Profile>(), 0);
}

#[test]
fn delete_orphan_on_a_one_to_one_does_not_delete_a_partner_that_moves() {
    let (mut s, r, alice, bio) = profiles(DeleteOrphan.into());
    let bob = user(&mut s, "bob");
    s.link(r.profile, bob, bio).unwrap();
    check(&s);
    assert!(s.contains(bio));
    assert!(s.contains(alice), "the user end's rule is nullify");
    assert_eq!(s.partner_of(r.profile, bio), Some(bob));
}

// ----- many-to-many -------------------------------------------------------------------

/// p1 tagged t1, t2; p2 tagged t2, t3.
struct Tagged {
    p1: Key<Post>,
    p2: Key<Post>,
    t1: Key<Tag>,
    t2: Key<Tag>,
    t3: Key<Tag>,
}

fn tagged(rules: Rules) -> (Store, Rels, Tagged) {
    let (mut s, r) = world(Config {
        tags: rules,
        ..Config::default()
    });
    let t = Tagged {
        p1: post(&mut s, "p1"),
        p2: post(&mut s, "p2"),
        t1: tag(&mut s, "t1"),
        t2: tag(&mut s, "t2"),
        t3: tag(&mut s, "t3"),
    };
    for (p, g) in [(t.p1, t.t1), (t.p1, t.t2), (t.p2, t.t2), (t.p2, t.t3)] {
        s.link(r.tags, p, g).unwrap();
    }
    check(&s);
    (s, r, t)
}

#[test]
fn nullify_on_a_many_to_many_unlinks_only() {
    let (mut s, r, t) = tagged(Nullify.into());
    s.remove(t.p1).unwrap();
    check(&s);
    assert_eq!(s.len::<Tag>(), 3);
    assert!(sources(&s, r.tags, t.t1).is_empty());
    assert_eq!(sources(&s, r.tags, t.t2), [t.p2]);
}

#[test]
fn cascade_on_a_many_to_many_deletes_every_target_even_shared_ones() {
    let (mut s, r, t) = tagged(Cascade.into());
    s.remove(t.p1).unwrap();
    check(&s);
    assert!(!s.contains(t.t1) && !s.contains(t.t2));
    assert_eq!(targets(&s, r.tags, t.p2), [t.t3]);

    let (mut s, r, t) = tagged(Rules::new().on_delete_b(Cascade));
    s.remove(t.t2).unwrap();
    check(&s);
    assert!(!s.contains(t.p1) && !s.contains(t.p2));
    assert!(s.contains(t.t1) && s.contains(t.t3));
    assert_eq!(s.link_count(r.tags), 0);
}

#[test]
fn restrict_on_a_many_to_many_refuses_while_any_link_exists() {
    let (mut s, r, t) = tagged(Restrict.into());
    let before = dump(&s, &r);
    let e = s.remove(t.p2).unwrap_err();
    match e {
        RemoveError::Restricted {
            relation,
            key,
            blocker,
        } => {
            assert_eq!(relation.to_string(), "posts.tags <-> tags.posts");
            assert_eq!(key, any("posts", t.p2));
            assert_eq!(blocker, any("tags", t.t2), "the first linked target");
        }
        e => panic!("expected Restricted, got {e:?}"),
    }
    check(&s);
    assert_eq!(dump(&s, &r), before);
    s.remove(t.t1).unwrap(); // nullify at the tag end
    check(&s);
}

#[test]
fn delete_orphan_on_a_many_to_many_deletes_targets_left_without_sources() {
    let (mut s, r, t) = tagged(DeleteOrphan.into());
    s.remove(t.p1).unwrap();
    check(&s);
    assert!(!s.contains(t.t1), "t1 had no other post");
    assert!(s.contains(t.t2), "t2 is still on p2");
    assert_eq!(sources(&s, r.tags, t.t2), [t.p2]);
    s.unlink(r.tags, t.p2, t.t3).unwrap();
    check(&s);
    assert!(!s.contains(t.t3));
    assert_eq!(s.len::<Tag>(), 1);
}

#[test]
fn delete_orphan_on_a_many_to_many_spares_a_target_with_another_source() {
    let (mut s, r, t) = tagged(DeleteOrphan.into());
    s.unlink(r.tags, t.p1, t.t2).unwrap();
    check(&s);
    assert!(s.contains(t.t2));
    assert_eq!(sources(&s, r.tags, t.t2), [t.p2]);
}

#[test]
fn delete_orphan_on_a_many_to_many_deletes_what_set_targets_drops() {
    let (mut s, r, t) = tagged(DeleteOrphan.into());
    let t4 = tag(&mut s, "t4");
    s.set_targets(r.tags, t.p1, &[t4, t.t3]).unwrap();
    check(&s);
    assert!(!s.contains(t.t1), "dropped and left without posts");
    assert!(s.contains(t.t2), "dropped but still on p2");
    assert_eq!(targets(&s, r.tags, t.p1), [t4, t.t3]);
    assert_eq!(sources(&s, r.tags, t.t3), [t.p2, t.p1]);
}

#[test]
fn delete_orphan_at_the_target_end_deletes_a_source_left_without_targets() {
    let (mut s, r, t) = tagged(Rules::new().on_delete_b(DeleteOrphan));
    s.set_targets(r.tags, t.p1, &[t.t2]).unwrap();
    check(&s);
    assert!(s.contains(t.p1) && s.contains(t.t1));
    // emptying a post's tags leaves the post an orphan of the tag end
    s.set_targets(r.tags, t.p1, &[]).unwrap();
    check(&s);
    assert!(!s.contains(t.p1));
    s.remove(t.t3).unwrap();
    check(&s);
    assert!(s.contains(t.p2), "p2 still has t2");
    s.remove(t.t2).unwrap();
    check(&s);
    assert!(!s.contains(t.p2));
}

#[test]
fn deleting_a_student_under_delete_orphan_keeps_shared_courses_and_their_grades() {
    let (mut s, r) = world(Config {
        enrollments: DeleteOrphan.into(),
        ..Config::default()
    });
    let ann = student(&mut s, "ann");
    let ben = student(&mut s, "ben");
    let solo = course(&mut s, "solo");
    let shared = course(&mut s, "shared");
    s.link_with(r.enrollments, ann, solo, Enrollment { grade: 1 })
        .unwrap();
    s.link_with(r.enrollments, ann, shared, Enrollment { grade: 2 })
        .unwrap();
    s.link_with(r.enrollments, ben, shared, Enrollment { grade: 3 })
        .unwrap();
    s.remove(ann).unwrap();
    check(&s);
    assert!(!s.contains(solo));
    assert_eq!(
        s.payload(r.enrollments, ben, shared),
        Some(&Enrollment { grade: 3 })
    );
    assert_eq!(sources(&s, r.enrollments, shared), [ben]);
}

// ----- across relations ---------------------------------------------------------------

#[test]
fn a_cascade_runs_through_every_level_and_relation_kind() {
    let (mut s, r) = world(Config {
        posts: Cascade.into(),
        comments: Cascade.into(),
        profile: Cascade.into(),
        tags: DeleteOrphan.into(),
        ..Config::default()
    });
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let pa = profile(&mut s, "alice's");
    let pb = profile(&mut s, "bob's");
    s.link(r.profile, alice, pa).unwrap();
    s.link(r.profile, bob, pb).unwrap();
    let p1 = post(&mut s, "p1");
    let p2 = post(&mut s, "p2");
    let q = post(&mut s, "bob's post");
    s.link(r.posts, alice, p1).unwrap();
    s.link(r.posts, alice, p2).unwrap();
    s.link(r.posts, bob, q).unwrap();
    let c1 = comment(&mut s, "c1");
    let c2 = comment(&mut s, "c2");
    let c3 = comment(&mut s, "c3");
    let cq = comment(&mut s, "cq");
    s.link(r.comments, p1, c1).unwrap();
    s.link(r.comments, p1, c2).unwrap();
    s.link(r.comments, p2, c3).unwrap();
    s.link(r.comments, q, cq).unwrap();
    let shared = tag(&mut s, "shared");
    let own = tag(&mut s, "own");
    s.link(r.tags, p1, shared).unwrap();
    s.link(r.tags, p1, own).unwrap();
    s.link(r.tags, q, shared).unwrap();
    s.link(r.follows, bob, alice).unwrap();
    check(&s);

    let preview = s.preview_remove(alice).unwrap();
    let removed: BTreeSet<AnyKey> = preview.removed.iter().copied().collect();
    let expected: BTreeSet<AnyKey> = [
        any("users", alice),
        any("profiles", pa),
        any("posts", p1),
        any("posts", p2),
        any("comments", c1),
        any("comments", c2),
        any("comments", c3),
        any("tags", own),
    ]
    .into_iter()
    .collect();
    assert_eq!(removed, expected);
    assert_eq!(
        preview.removed.len(),
        expected.len(),
        "no entity listed twice"
    );
    assert_eq!(
        preview.removed[0],
        any("users", alice),
        "the requested one first"
    );
    let unlinked: BTreeSet<(String, AnyKey, AnyKey)> = preview
        .unlinked
        .iter()
        .map(|u| (u.relation.to_string(), u.removed, u.survivor))
        .collect();
    let expected_unlinked: BTreeSet<(String, AnyKey, AnyKey)> = [
        (
            "posts.tags <-> tags.posts".to_string(),
            any("posts", p1),
            any("tags", shared),
        ),
        (
            "users.follows <-> users.followers".to_string(),
            any("users", alice),
            any("users", bob),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(unlinked, expected_unlinked);
    assert_eq!(preview.unlinked.len(), 2);
    assert!(preview.allowed());

    s.remove(alice).unwrap();
    check(&s);
    for k in &expected {
        assert!(!alive(&s).contains(k), "{k:?} survived");
    }
    assert_eq!(s.len::<User>(), 1);
    assert_eq!(s.len::<Post>(), 1);
    assert_eq!(s.len::<Comment>(), 1);
    assert_eq!(s.len::<Profile>(), 1);
    assert_eq!(s.len::<Tag>(), 1);
    assert_eq!(sources(&s, r.tags, shared), [q]);
    assert_eq!(kids(&s, r.comments, q), [cq]);
    assert!(targets(&s, r.follows, bob).is_empty());
}

/// ceo > cto > (dev1 > intern, dev2); ceo > cfo > acct
fn org(cfg: Config) -> (Store, Rels, HashMap<&'static str, Key<Employee>>) {
    let (mut s, r) = world(cfg);
    let mut e = HashMap::new();
    for name in ["ceo", "cto", "cfo", "dev1", "dev2", "intern", "acct"] {
        e.insert(name, employee(&mut s, name));
    }
    for (boss, sub) in [
        ("ceo", "cto"),
        ("ceo", "cfo"),
        ("cto", "dev1"),
        ("cto", "dev2"),
        ("dev1", "intern"),
        ("cfo", "acct"),
    ] {
        s.link(r.reports, e[boss], e[sub]).unwrap();
    }
    check(&s);
    (s, r, e)
}

#[test]
fn a_cascade_runs_down_a_self_referential_tree() {
    let (mut s, r, e) = org(Config {
        reports: Rules::new().acyclic().on_delete(Cascade),
        ..Config::default()
    });
    s.remove(e["cto"]).unwrap();
    check(&s);
    for gone in ["cto", "dev1", "dev2", "intern"] {
        assert!(!s.contains(e[gone]), "{gone}");
    }
    assert_eq!(kids(&s, r.reports, e["ceo"]), [e["cfo"]]);
    assert_eq!(s.len::<Employee>(), 3);
}

#[test]
fn a_cascade_up_a_self_referential_tree_deletes_every_manager_above() {
    let (mut s, r, e) = org(Config {
        reports: Rules::new().on_delete_b(Cascade),
        ..Config::default()
    });
    s.remove(e["intern"]).unwrap();
    check(&s);
    for gone in ["intern", "dev1", "cto", "ceo"] {
        assert!(!s.contains(e[gone]), "{gone}");
    }
    assert_eq!(s.parent(r.reports, e["cfo"]), None);
    assert_eq!(s.parent(r.reports, e["dev2"]), None);
    assert_eq!(kids(&s, r.reports, e["cfo"]), [e["acct"]]);
}

#[test]
fn a_cascade_through_a_cycle_terminates_and_deletes_the_whole_cycle() {
    let (mut s, r) = world(Config {
        reports: Cascade.into(),
        ..Config::default()
    });
    let a = employee(&mut s, "a");
    let b = employee(&mut s, "b");
    let c = employee(&mut s, "c");
    let d = employee(&mut s, "d");
    s.link(r.reports, a, b).unwrap();
    s.link(r.reports, b, c).unwrap();
    s.link(r.reports, c, a).unwrap();
    s.link(r.reports, d, d).unwrap();
    s.remove(b).unwrap();
    s.remove(d).unwrap();
    check(&s);
    assert_eq!(s.len::<Employee>(), 0);
}

#[test]
fn a_restrict_deep_in_a_cascade_refuses_the_whole_delete() {
    let (mut s, r) = world(Config {
        posts: Cascade.into(),
        comments: Restrict.into(),
        profile: Cascade.into(),
        ..Config::default()
    });
    let alice = user(&mut s, "alice");
    let pa = profile(&mut s, "pa");
    s.link(r.profile, alice, pa).unwrap();
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let c = comment(&mut s, "keeps p2");
    s.link(r.comments, ps[2], c).unwrap();
    check(&s);
    let before = dump(&s, &r);
    let preview = s.preview_remove(alice).unwrap();
    assert!(!preview.allowed());
    assert_eq!(preview.blocked_by.len(), 1);
    let e = s.remove(alice).unwrap_err();
    check(&s);
    assert_eq!(dump(&s, &r), before, "all or nothing");
    let expected = RemoveError::Restricted {
        relation: preview.blocked_by[0].relation,
        key: any("posts", ps[2]),
        blocker: any("comments", c),
    };
    assert_eq!(e, expected);
    assert_eq!(
        preview.blocked_by[0].relation.to_string(),
        "posts.comments <-> comments.post"
    );
    assert!(e.to_string().contains("posts.comments <-> comments.post"));
    let umbrella: relgraph::Error = e.clone().into();
    assert!(matches!(umbrella, relgraph::Error::Remove(inner) if inner == e));
    // once the comment is gone the cascade goes through
    s.remove(c).unwrap();
    s.remove(alice).unwrap();
    check(&s);
    assert_eq!(s.len::<Post>(), 0);
    assert_eq!(s.len::<Profile>(), 0);
}

#[test]
fn a_restrict_does_not_block_when_its_blocker_dies_in_the_same_cascade() {
    let cfg = Config {
        reports: Cascade.into(),
        mentors: Rules::new().on_delete(Restrict).on_delete_b(Restrict),
        ..Config::default()
    };
    let (mut s, r, e) = org(cfg);
    s.link(r.mentors, e["dev1"], e["intern"]).unwrap();
    s.link(r.mentors, e["intern"], e["dev2"]).unwrap();
    check(&s);
    assert!(s.preview_remove(e["cto"]).unwrap().allowed());
    s.remove(e["cto"]).unwrap();
    check(&s);
    assert_eq!(s.len::<Employee>(), 3);

    let (mut s, r, e) = org(cfg);
    s.link(r.mentors, e["acct"], e["dev2"]).unwrap();
    let before = dump(&s, &r);
    let err = s.remove(e["cto"]).unwrap_err();
    check(&s);
    assert_eq!(dump(&s, &r), before);
    match err {
        RemoveError::Restricted { key, blocker, .. } => {
            assert_eq!(key, any("employees", e["dev2"]));
            assert_eq!(blocker, any("employees", e["acct"]));
        }
        err => panic!("expected Restricted, got {err:?}"),
    }
    assert!(
        s.preview_remove(e["ceo"]).unwrap().allowed(),
        "acct goes too from the top"
    );
}

#[test]
fn delete_orphan_prunes_a_whole_subtree() {
    let (mut s, r, e) = org(Config {
        reports: Rules::new().acyclic().on_delete(DeleteOrphan),
        ..Config::default()
    });
    s.unlink(r.reports, e["ceo"], e["cto"]).unwrap();
    check(&s);
    for gone in ["cto", "dev1", "dev2", "intern"] {
        assert!(!s.contains(e[gone]), "{gone}");
    }
    assert_eq!(s.len::<Employee>(), 3);
    // set_children dropping cfo prunes cfo and acct; the new subordinate stays
    let new = employee(&mut s, "new");
    s.set_children(r.reports, e["ceo"], &[new]).unwrap();
    check(&s);
    assert!(!s.contains(e["cfo"]) && !s.contains(e["acct"]));
    assert_eq!(kids(&s, r.reports, e["ceo"]), [new]);
}

#[test]
fn delete_orphan_does_not_prune_a_subtree_that_moves() {
    let (mut s, r, e) = org(Config {
        reports: Rules::new().acyclic().on_delete(DeleteOrphan),
        ..Config::default()
    });
    s.link(r.reports, e["acct"], e["cto"]).unwrap();
    s.set_children(r.reports, e["cfo"], &[e["acct"], e["dev1"]])
        .unwrap();
    check(&s);
    assert_eq!(s.len::<Employee>(), 7);
    assert_eq!(kids(&s, r.reports, e["cto"]), [e["dev2"]]);
    assert_eq!(s.depth(r.reports, e["intern"]), 3);
}

#[test]
fn an_orphan_delete_refused_by_a_restrict_fails_the_unlink_and_changes_nothing() {
    let (mut s, r) = world(Config {
        posts: DeleteOrphan.into(),
        comments: Restrict.into(),
        ..Config::default()
    });
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let c = comment(&mut s, "keeps p1");
    s.link(r.comments, ps[1], c).unwrap();
    check(&s);
    let before = dump(&s, &r);
    let expected = LinkError::OrphanDelete(RemoveError::Restricted {
        relation: s.schema().relations().nth(1).unwrap().1,
        key: any("posts", ps[1]),
        blocker: any("comments", c),
    });
    assert_eq!(s.unlink(r.posts, alice, ps[1]), Err(expected.clone()));
    check(&s);
    assert_eq!(dump(&s, &r), before, "the post is still linked to alice");
    assert!(expected.to_string().contains("deleting the orphan failed"));
    assert_eq!(
        s.set_children(r.posts, alice, &[ps[2], ps[0]]),
        Err(expected.clone())
    );
    check(&s);
    assert_eq!(dump(&s, &r), before, "set_children is all or nothing");
    // the unblocked orphans of the same call were not deleted either
    assert!(s.contains(ps[0]) && s.contains(ps[2]));
    s.remove(c).unwrap();
    s.unlink(r.posts, alice, ps[1]).unwrap();
    check(&s);
    assert!(!s.contains(ps[1]));
}

#[test]
fn an_orphan_delete_refused_during_an_eviction_fails_the_link_and_changes_nothing() {
    let (mut s, r) = world(Config {
        mentors: DeleteOrphan.into(),
        reports: Restrict.into(),
        ..Config::default()
    });
    let ann = employee(&mut s, "ann");
    let ben = employee(&mut s, "ben");
    let carl = employee(&mut s, "carl");
    let dan = employee(&mut s, "dan");
    s.link(r.mentors, ann, ben).unwrap();
    s.link(r.reports, ben, carl).unwrap();
    check(&s);
    let before = dump(&s, &r);
    let e = s.link(r.mentors, ann, dan).unwrap_err();
    assert!(
        matches!(&e, LinkError::OrphanDelete(RemoveError::Restricted { key, .. })
            if *key == any("employees", ben)),
        "{e:?}"
    );
    check(&s);
    assert_eq!(dump(&s, &r), before, "ann still mentors ben");
    s.unlink(r.reports, ben, carl).unwrap();
    s.link(r.mentors, ann, dan).unwrap();
    check(&s);
    assert!(!s.contains(ben), "evicted ben is now deleted");
    assert_eq!(s.partner(r.mentors, ann), Some(dan));
}

#[test]
fn an_orphan_delete_refused_while_moving_a_child_fails_the_link() {
    let (mut s, r) = world(Config {
        posts: Rules::new().on_delete_b(DeleteOrphan),
        profile: Restrict.into(),
        ..Config::default()
    });
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let pa = profile(&mut s, "pa");
    s.link(r.profile, alice, pa).unwrap();
    let p = post(&mut s, "p");
    s.link(r.posts, alice, p).unwrap();
    let before = dump(&s, &r);
    let e = s.link(r.posts, bob, p).unwrap_err();
    assert!(matches!(e, LinkError::OrphanDelete(_)), "{e:?}");
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

// ----- preview ------------------------------------------------------------------------

#[test]
fn preview_of_a_stale_key_is_an_error() {
    let (mut s, _) = world(Config::default());
    let a = user(&mut s, "a");
    s.remove(a).unwrap();
    assert_eq!(
        s.preview_remove(a),
        Err(StaleKey {
            key: any("users", a)
        })
    );
}

#[test]
fn preview_of_a_lonely_entity_removes_just_it() {
    let (mut s, r) = world(Config::default());
    let a = user(&mut s, "a");
    let before = dump(&s, &r);
    let preview = s.preview_remove(a).unwrap();
    assert_eq!(preview.removed, [any("users", a)]);
    assert!(preview.unlinked.is_empty());
    assert!(preview.blocked_by.is_empty());
    assert!(preview.allowed());
    assert_eq!(dump(&s, &r), before);
}

/// Every live entity of the world, as `AnyKey`s.
fn alive(s: &Store) -> BTreeSet<AnyKey> {
    fn add<T: Entity>(out: &mut BTreeSet<AnyKey>, s: &Store, table: &'static str) {
        out.extend(s.keys::<T>().map(|k| any(table, k)));
    }
    let mut out = BTreeSet::new();
    add::<User>(&mut out, s, "users");
    add::<Post>(&mut out, s, "posts");
    add::<Comment>(&mut out, s, "comments");
    add::<Profile>(&mut out, s, "profiles");
    add::<Tag>(&mut out, s, "tags");
    add::<Student>(&mut out, s, "students");
    add::<Course>(&mut out, s, "courses");
    add::<Employee>(&mut out, s, "employees");
    out
}

/// Relation names in declaration order (that of `common::schema`).
const NAMES: [&str; 8] = [
    "users.posts <-> posts.author",
    "posts.comments <-> comments.post",
    "users.profile <-> profiles.user",
    "posts.tags <-> tags.posts",
    "students.courses <-> courses.students",
    "employees.subordinates <-> employees.manager",
    "employees.mentee <-> employees.mentor",
    "users.follows <-> users.followers",
];

type Link = (String, AnyKey, AnyKey);

/// The table named by the start of `end` (`"posts.author"` -> `"posts"`).
fn table_of(end: &str) -> &'static str {
    const TABLES: [&str; 8] = [
        "users",
        "posts",
        "comments",
        "profiles",
        "tags",
        "students",
        "courses",
        "employees",
    ];
    let name = end.split('.').next().unwrap();
    TABLES.into_iter().find(|&t| t == name).unwrap()
}

/// Every link of the world in a stable order: relation, source, target.
fn links(s: &Store, r: &Rels) -> Vec<Link> {
    fn add<R: Relation>(out: &mut Vec<Link>, s: &Store, rel: R, i: usize) {
        let (at, bt) = NAMES[i].split_once(" <-> ").unwrap();
        let (at, bt) = (table_of(at), table_of(bt));
        for a in s.keys::<R::A>() {
            for b in s.targets(rel, a) {
                out.push((NAMES[i].to_string(), any(at, a), any(bt, b)));
            }
        }
    }
    let mut out = Vec::new();
    add(&mut out, s, r.posts, 0);
    add(&mut out, s, r.comments, 1);
    add(&mut out, s, r.profile, 2);
    add(&mut out, s, r.tags, 3);
    add(&mut out, s, r.enrollments, 4);
    add(&mut out, s, r.reports, 5);
    add(&mut out, s, r.mentors, 6);
    add(&mut out, s, r.follows, 7);
    out
}

/// An independent model of a delete: the closure of `root` under the rules, and the
/// restrict violations (relation, entity deleted, surviving blocker).
fn model_delete(
    root: AnyKey,
    links: &[Link],
    rules: &[(DeleteRule, DeleteRule); 8],
) -> (BTreeSet<AnyKey>, Vec<Link>) {
    let rule = |name: &str| rules[NAMES.iter().position(|n| *n == name).unwrap()];
    let mut removed: BTreeSet<AnyKey> = [root].into_iter().collect();
    loop {
        let mut grew = false;
        for (name, a, b) in links {
            let (at_a, at_b) = rule(name);
            let mut add = |k: AnyKey, removed: &mut BTreeSet<AnyKey>| grew |= removed.insert(k);
            if removed.contains(a) {
                let orphan = links
                    .iter()
                    .filter(|(n, _, y)| n == name && y == b)
                    .all(|(_, x, _)| removed.contains(x));
                if at_a == Cascade || (at_a == DeleteOrphan && orphan) {
                    add(*b, &mut removed);
                }
            }
            if removed.contains(b) {
                let orphan = links
                    .iter()
                    .filter(|(n, x, _)| n == name && x == a)
                    .all(|(_, _, y)| removed.contains(y));
                if at_b == Cascade || (at_b == DeleteOrphan && orphan) {
                    add(*a, &mut removed);
                }
            }
        }
        if !grew {
            break;
        }
    }
    let mut blocked = Vec::new();
    for (name, a, b) in links {
        let (at_a, at_b) = rule(name);
        if at_a == Restrict && removed.contains(a) && !removed.contains(b) {
            blocked.push((name.clone(), *a, *b));
        }
        if at_b == Restrict && removed.contains(b) && !removed.contains(a) {
            blocked.push((name.clone(), *b, *a));
        }
    }
    blocked.sort();
    (removed, blocked)
}

/// Previews the delete of `key`, compares the preview with the model, removes, and
/// compares the outcome with both.
fn preview_then_remove<T: Entity>(
    s: &mut Store,
    r: &Rels,
    rules: &[(DeleteRule, DeleteRule); 8],
    key: Key<T>,
    table: &'static str,
) {
    let root = any(table, key);
    let before = dump(s, r);
    let alive_before = alive(s);
    let links_before = links(s, r);
    let (expected_removed, expected_blocked) = model_delete(root, &links_before, rules);

    let preview = s.preview_remove(key).unwrap();
    assert_eq!(dump(s, r), before, "a preview changes nothing");
    assert_eq!(preview.removed[0], root);
    let listed: BTreeSet<AnyKey> = preview.removed.iter().copied().collect();
    assert_eq!(
        listed.len(),
        preview.removed.len(),
        "an entity listed twice"
    );
    assert_eq!(
        listed, expected_removed,
        "removed set of {root:?} under {rules:?}"
    );
    let mut blocked: Vec<Link> = preview
        .blocked_by
        .iter()
        .map(|b| (b.relation.to_string(), b.key, b.blocker))
        .collect();
    blocked.sort();
    assert_eq!(
        blocked, expected_blocked,
        "blockers of {root:?} under {rules:?}"
    );
    let mut unlinked: Vec<Link> = preview
        .unlinked
        .iter()
        .map(|u| (u.relation.to_string(), u.removed, u.survivor))
        .collect();
    unlinked.sort();
    let mut expected_unlinked: Vec<Link> = Vec::new();
    for (name, a, b) in &links_before {
        match (listed.contains(a), listed.contains(b)) {
            (true, false) => expected_unlinked.push((name.clone(), *a, *b)),
            (false, true) => expected_unlinked.push((name.clone(), *b, *a)),
            _ => {}
        }
    }
    expected_unlinked.sort();
    assert_eq!(unlinked, expected_unlinked, "unlinked by {root:?}");

    let result = s.remove(key);
    check(s);
    if preview.allowed() {
        assert_eq!(result, Ok(()));
        let gone: BTreeSet<AnyKey> = alive_before.difference(&alive(s)).copied().collect();
        assert_eq!(gone, listed, "remove did what the preview said");
        let kept: Vec<Link> = links_before
            .into_iter()
            .filter(|(_, a, b)| !listed.contains(a) && !listed.contains(b))
            .collect();
        assert_eq!(links(s, r), kept, "every other link kept, in order");
    } else {
        let b = preview.blocked_by[0];
        assert_eq!(
            result,
            Err(RemoveError::Restricted {
                relation: b.relation,
                key: b.key,
                blocker: b.blocker
            })
        );
        assert_eq!(dump(s, r), before, "a refused delete changes nothing");
    }
}

fn random_rule(rng: &mut Rng) -> DeleteRule {
    // nullify twice as likely, so that graphs are not always wiped out
    [Nullify, Nullify, Cascade, Restrict, DeleteOrphan][rng.below(5)]
}

#[test]
fn preview_and_remove_agree_with_a_model_of_the_rules_on_random_graphs() {
    let mut rng = Rng::new(2024);
    for round in 0..300 {
        let mut rules = [(Nullify, Nullify); 8];
        for rule in rules.iter_mut() {
            *rule = (random_rule(&mut rng), random_rule(&mut rng));
        }
        let rl = |i: usize| Rules::new().on_delete(rules[i].0).on_delete_b(rules[i].1);
        let (mut s, r) = world(Config {
            posts: rl(0),
            comments: rl(1),
            profile: rl(2),
            tags: rl(3),
            enrollments: rl(4),
            reports: rl(5),
            mentors: rl(6),
            follows: rl(7),
        });
        let us: Vec<Key<User>> = (0..5).map(|i| user(&mut s, &format!("u{i}"))).collect();
        let ps = posts(&mut s, "p", 7);
        let cs: Vec<Key<Comment>> = (0..7).map(|i| comment(&mut s, &format!("c{i}"))).collect();
        let prs: Vec<Key<Profile>> = (0..4).map(|i| profile(&mut s, &format!("f{i}"))).collect();
        let ts: Vec<Key<Tag>> = (0..5).map(|i| tag(&mut s, &format!("t{i}"))).collect();
        let sts: Vec<Key<Student>> = (0..4).map(|i| student(&mut s, &format!("s{i}"))).collect();
        let crs: Vec<Key<Course>> = (0..4).map(|i| course(&mut s, &format!("k{i}"))).collect();
        let es: Vec<Key<Employee>> = (0..7).map(|i| employee(&mut s, &format!("e{i}"))).collect();
        // links made without moves or evictions, so that no orphan rule fires while building
        for &p in &ps {
            if rng.below(4) > 0 {
                s.link(r.posts, rng.pick(&us), p).unwrap();
            }
        }
        for &c in &cs {
            if rng.below(4) > 0 {
                s.link(r.comments, rng.pick(&ps), c).unwrap();
            }
        }
        for (i, &u) in us.iter().enumerate().take(prs.len()) {
            if rng.below(3) > 0 {
                s.link(r.profile, u, prs[(i + round) % prs.len()]).unwrap();
            }
        }
        for _ in 0..8 {
            s.link(r.tags, rng.pick(&ps), rng.pick(&ts)).unwrap();
            s.link(r.enrollments, rng.pick(&sts), rng.pick(&crs))
                .unwrap();
            s.link(r.follows, rng.pick(&us), rng.pick(&us)).unwrap();
        }
        for &e in &es {
            if rng.below(4) > 0 {
                s.link(r.reports, rng.pick(&es), e).unwrap(); // cycles and self-links too
            }
        }
        let mut free: Vec<Key<Employee>> = es.clone();
        for &e in &es {
            if rng.below(2) == 0 && !free.is_empty() {
                let mentee = free.remove(rng.below(free.len()));
                s.link(r.mentors, e, mentee).unwrap();
            }
        }
        check(&s);
        match rng.below(8) {
            0 => preview_then_remove(&mut s, &r, &rules, rng.pick(&us), "users"),
            1 => preview_then_remove(&mut s, &r, &rules, rng.pick(&ps), "posts"),
            2 => preview_then_remove(&mut s, &r, &rules, rng.pick(&cs), "comments"),
            3 => preview_then_remove(&mut s, &r, &rules, rng.pick(&prs), "profiles"),
            4 => preview_then_remove(&mut s, &r, &rules, rng.pick(&ts), "tags"),
            5 => preview_then_remove(&mut s, &r, &rules, rng.pick(&sts), "students"),
            6 => preview_then_remove(&mut s, &r, &rules, rng.pick(&crs), "courses"),
            _ => preview_then_remove(&mut s, &r, &rules, rng.pick(&es), "employees"),
        }
    }
}

#[test]
fn a_change_whose_orphans_would_cascade_into_its_own_endpoints_is_refused() {
    // a user left without posts is deleted, and deleting a user deletes whom it follows
    let (mut s, r) = world(Config {
        posts: Rules::new().on_delete_b(DeleteOrphan),
        follows: Rules::new().on_delete(Cascade),
        ..Config::default()
    });
    let (u1, u2) = (user(&mut s, "u1"), user(&mut s, "u2"));
    let p = post(&mut s, "p");
    s.link(r.posts, u1, p).unwrap();
    s.link(r.follows, u1, u2).unwrap();
    let before = dump(&s, &r);

    // moving p to u2 orphans u1, whose delete would cascade to u2: the move undoes itself
    let e = s.link(r.posts, u2, p).unwrap_err();
    assert!(
        matches!(e, LinkError::DeletesEndpoint { key, .. } if key == any("users", u2)),
        "{e:?}"
    );
    assert!(e.to_string().contains("users["), "{e}");
    assert_eq!(dump(&s, &r), before);
    let e = s.set_children(r.posts, u2, &[p]).unwrap_err();
    assert!(matches!(e, LinkError::DeletesEndpoint { .. }), "{e:?}");
    assert_eq!(dump(&s, &r), before);
    check(&s);

    // without the follow link the same move goes ahead and deletes the orphaned u1
    s.unlink(r.follows, u1, u2).unwrap();
    s.link(r.posts, u2, p).unwrap();
    assert!(!s.contains(u1));
    assert_eq!(s.parent(r.posts, p), Some(u2));
    check(&s);
}
