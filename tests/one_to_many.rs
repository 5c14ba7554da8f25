//! One-to-many relations (`users.posts <-> posts.author`): both ends in step, moves,
//! collection replacement and reordering, order kept through unlinks and compaction.

mod common;

use std::collections::HashMap;

use common::*;
use relgraph::{AnyKey, Key, LinkError, StaleKey};

fn setup() -> (relgraph::Store, Rels) {
    world(Config::default())
}

#[test]
fn linking_a_child_sets_both_ends_at_once() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let guide = post(&mut s, "guide");
    s.link(r.posts, alice, guide).unwrap();
    check(&s);
    assert_eq!(s.parent(r.posts, guide), Some(alice));
    assert_eq!(kids(&s, r.posts, alice), [guide]);
    assert_eq!(sources(&s, r.posts, guide), [alice]);
    assert_eq!(targets(&s, r.posts, alice), [guide]);
    assert!(s.linked(r.posts, alice, guide));
    assert_eq!(s.child_count(r.posts, alice), 1);
    assert_eq!(s.source_count(r.posts, guide), 1);
    assert_eq!(s.link_count(r.posts), 1);
}

#[test]
fn children_keep_the_order_they_were_linked_in() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 5);
    for &p in [ps[3], ps[0], ps[4], ps[1], ps[2]].iter() {
        s.link(r.posts, alice, p).unwrap();
        check(&s);
    }
    assert_eq!(
        kids(&s, r.posts, alice),
        [ps[3], ps[0], ps[4], ps[1], ps[2]]
    );
    let titles: Vec<&str> = s
        .children(r.posts, alice)
        .map(|p| s[p].title.as_str())
        .collect();
    assert_eq!(titles, ["p3", "p0", "p4", "p1", "p2"]);
}

#[test]
fn the_children_iterator_is_exact_size_and_runs_backwards() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 6);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.unlink(r.posts, alice, ps[2]).unwrap();
    check(&s);
    let it = s.children(r.posts, alice);
    assert_eq!(it.len(), 5);
    let back: Vec<Key<Post>> = s.children(r.posts, alice).rev().collect();
    assert_eq!(back, [ps[5], ps[4], ps[3], ps[1], ps[0]]);
    let mut both = s.children(r.posts, alice);
    assert_eq!(both.next(), Some(ps[0]));
    assert_eq!(both.next_back(), Some(ps[5]));
    assert_eq!(both.len(), 3);
    assert_eq!(both.collect::<Vec<_>>(), [ps[1], ps[3], ps[4]]);
}

#[test]
fn moving_a_child_removes_it_from_the_old_parent() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 4);
    for &p in &ps[..3] {
        s.link(r.posts, alice, p).unwrap();
    }
    s.link(r.posts, bob, ps[3]).unwrap();
    s.link(r.posts, bob, ps[1]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[0], ps[2]]);
    assert_eq!(
        kids(&s, r.posts, bob),
        [ps[3], ps[1]],
        "appended last in the new parent"
    );
    assert_eq!(s.parent(r.posts, ps[1]), Some(bob));
    assert!(!s.linked(r.posts, alice, ps[1]));
    assert_eq!(s.link_count(r.posts), 4);
}

#[test]
fn moving_a_child_back_puts_it_last() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.link(r.posts, bob, ps[0]).unwrap();
    s.link(r.posts, alice, ps[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[1], ps[2], ps[0]]);
    assert!(kids(&s, r.posts, bob).is_empty());
}

#[test]
fn linking_a_child_to_its_own_parent_again_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let before = dump(&s, &r);
    s.link(r.posts, alice, ps[0]).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before, "the child is not moved to the end");
}

#[test]
fn unlinking_clears_both_ends_and_keeps_the_others_in_order() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 4);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    assert_eq!(s.unlink(r.posts, alice, ps[1]), Ok(true));
    check(&s);
    assert_eq!(s.parent(r.posts, ps[1]), None);
    assert!(sources(&s, r.posts, ps[1]).is_empty());
    assert_eq!(kids(&s, r.posts, alice), [ps[0], ps[2], ps[3]]);
    assert_eq!(s.link_count(r.posts), 3);
    assert!(s.contains(ps[1]), "nullify: the child survives");
}

#[test]
fn unlinking_a_pair_that_is_not_linked_returns_false_and_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let p = post(&mut s, "p");
    let lonely = post(&mut s, "lonely");
    s.link(r.posts, alice, p).unwrap();
    let before = dump(&s, &r);
    assert_eq!(
        s.unlink(r.posts, bob, p),
        Ok(false),
        "linked to someone else"
    );
    assert_eq!(
        s.unlink(r.posts, alice, lonely),
        Ok(false),
        "linked to no one"
    );
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

/// `alice` with her post `p`, and the keys of a removed user (`gone`) and a removed post
/// (`dead`): `(alice, gone, p, dead)`.
fn alice_and_stale_keys(
    s: &mut relgraph::Store,
    r: &Rels,
) -> (Key<User>, Key<User>, Key<Post>, Key<Post>) {
    let alice = user(s, "alice");
    let gone = user(s, "gone");
    let p = post(s, "p");
    let dead = post(s, "dead");
    s.link(r.posts, alice, p).unwrap();
    s.remove(gone).unwrap();
    s.remove(dead).unwrap();
    (alice, gone, p, dead)
}

/// The error of a call given `key`, stale in `table`.
fn stale(table: &'static str, key: relgraph::RawKey) -> Result<(), LinkError> {
    Err(LinkError::Stale(StaleKey {
        key: AnyKey { table, key },
    }))
}

#[test]
fn linking_with_a_stale_key_fails_and_changes_nothing() {
    let (mut s, r) = setup();
    let (alice, gone, p, dead) = alice_and_stale_keys(&mut s, &r);
    let before = dump(&s, &r);
    assert_eq!(s.link(r.posts, gone, p), stale("users", gone.raw()));
    assert_eq!(s.link(r.posts, alice, dead), stale("posts", dead.raw()));
    assert!(matches!(
        s.unlink(r.posts, gone, p),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(
        s.unlink(r.posts, alice, dead),
        Err(LinkError::Stale(_))
    ));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

/// A new link's keys are checked parent first, with nothing recording (the inline path,
/// one lookup of the parent's list) as inside a transaction: the same errors, and nothing
/// changed, for a parent with a list, a parent without one, and stale keys whose slots
/// were reused.
#[test]
fn a_new_link_with_stale_keys_names_the_parent_first_recording_or_not() {
    for recording in [false, true] {
        let (mut s, r) = setup();
        let (alice, gone, _, dead) = alice_and_stale_keys(&mut s, &r);
        let bob = user(&mut s, "bob"); // gone's slot, and no list of its own yet
        let q = post(&mut s, "q"); // dead's slot
        let before = dump(&s, &r);
        let links = |s: &mut relgraph::Store| {
            vec![
                s.link(r.posts, gone, dead),
                s.link(r.posts, gone, q),
                s.link(r.posts, alice, dead),
                s.link(r.posts, bob, dead),
            ]
        };
        let outs = if recording {
            // inside a transaction (which then rolls back)
            s.transaction(|s| Err::<(), _>(links(s))).unwrap_err()
        } else {
            links(&mut s)
        };
        let (gone, dead) = (stale("users", gone.raw()), stale("posts", dead.raw()));
        assert_eq!(
            outs,
            [gone.clone(), gone, dead.clone(), dead],
            "recording: {recording}"
        );
        check(&s);
        assert_eq!(dump(&s, &r), before, "recording: {recording}");
        // and the live keys link, bob's first child making his list
        s.link(r.posts, bob, q).unwrap();
        assert_eq!(s.children(r.posts, bob).collect::<Vec<_>>(), [q]);
        check(&s);
    }
}

#[test]
fn removing_a_child_takes_it_out_of_its_parents_collection() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.remove(ps[1]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[0], ps[2]]);
    assert_eq!(s.link_count(r.posts), 2);
    assert!(s.contains(alice));
}

#[test]
fn removing_a_parent_under_nullify_leaves_its_children_without_parent() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.remove(alice).unwrap();
    check(&s);
    for &p in &ps {
        assert!(s.contains(p));
        assert_eq!(s.parent(r.posts, p), None);
    }
    assert_eq!(s.link_count(r.posts), 0);
}

#[test]
fn a_removed_parent_key_shows_no_children_even_after_its_slot_is_reused() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.remove(alice).unwrap();
    let carol = user(&mut s, "carol");
    assert_eq!(carol.raw().index(), alice.raw().index());
    assert!(
        kids(&s, r.posts, carol).is_empty(),
        "the new entity inherits nothing"
    );
    s.link(r.posts, carol, ps[2]).unwrap();
    check(&s);
    assert!(kids(&s, r.posts, alice).is_empty());
    assert_eq!(s.child_count(r.posts, alice), 0);
    assert_eq!(kids(&s, r.posts, carol), [ps[2]]);
    assert!(!s.linked(r.posts, alice, ps[2]));
    assert_eq!(s.parent(r.posts, ps[2]), Some(carol));
}

#[test]
fn a_removed_child_key_shows_no_parent_even_after_its_slot_is_reused() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let p = post(&mut s, "p");
    s.link(r.posts, alice, p).unwrap();
    s.remove(p).unwrap();
    let q = post(&mut s, "q");
    assert_eq!(q.raw().index(), p.raw().index());
    check(&s);
    assert_eq!(s.parent(r.posts, p), None);
    assert_eq!(s.parent(r.posts, q), None);
    assert!(kids(&s, r.posts, alice).is_empty());
}

#[test]
fn set_children_replaces_the_collection_in_the_given_order() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 5);
    for &p in &ps[..3] {
        s.link(r.posts, alice, p).unwrap();
    }
    s.set_children(r.posts, alice, &[ps[4], ps[1], ps[3]])
        .unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[4], ps[1], ps[3]]);
    assert_eq!(s.parent(r.posts, ps[0]), None, "dropped");
    assert_eq!(s.parent(r.posts, ps[2]), None, "dropped");
    assert_eq!(s.parent(r.posts, ps[4]), Some(alice));
    assert_eq!(s.link_count(r.posts), 3);
}

#[test]
fn set_children_with_a_permutation_only_reorders() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 4);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let other = post(&mut s, "bob's");
    s.link(r.posts, bob, other).unwrap();
    s.set_children(r.posts, alice, &[ps[3], ps[1], ps[0], ps[2]])
        .unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[3], ps[1], ps[0], ps[2]]);
    assert_eq!(s.link_count(r.posts), 5);
    assert_eq!(kids(&s, r.posts, bob), [other]);
    // and a second permutation, from the reordered state
    s.set_children(r.posts, alice, &[ps[0], ps[1], ps[2], ps[3]])
        .unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), ps);
}

#[test]
fn set_children_with_the_current_order_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 4);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let before = dump(&s, &r);
    s.set_children(r.posts, alice, &ps).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn set_children_takes_children_away_from_their_other_parents() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 4);
    for &p in &ps {
        s.link(r.posts, bob, p).unwrap();
    }
    s.set_children(r.posts, alice, &[ps[2], ps[0]]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), [ps[2], ps[0]]);
    assert_eq!(kids(&s, r.posts, bob), [ps[1], ps[3]]);
    assert_eq!(s.parent(r.posts, ps[2]), Some(alice));
}

#[test]
fn set_children_to_nothing_unlinks_every_child() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 3);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    s.set_children(r.posts, alice, &[]).unwrap();
    check(&s);
    assert!(kids(&s, r.posts, alice).is_empty());
    assert!(ps
        .iter()
        .all(|&p| s.parent(r.posts, p).is_none() && s.contains(p)));
    assert_eq!(s.link_count(r.posts), 0);
}

#[test]
fn set_children_with_a_duplicate_fails_and_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let ps = posts(&mut s, "p", 4);
    s.link(r.posts, alice, ps[0]).unwrap();
    s.link(r.posts, bob, ps[1]).unwrap();
    let before = dump(&s, &r);
    let err = s
        .set_children(r.posts, alice, &[ps[1], ps[2], ps[3], ps[2]])
        .unwrap_err();
    check(&s);
    match err {
        LinkError::Duplicate { relation, key } => {
            assert_eq!(relation.to_string(), "users.posts <-> posts.author");
            assert_eq!(key, ps[2].raw());
        }
        e => panic!("expected Duplicate, got {e:?}"),
    }
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn set_children_with_a_stale_key_fails_and_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 4);
    s.link(r.posts, alice, ps[0]).unwrap();
    s.remove(ps[3]).unwrap();
    let before = dump(&s, &r);
    let err = s
        .set_children(r.posts, alice, &[ps[1], ps[2], ps[3]])
        .unwrap_err();
    check(&s);
    assert!(matches!(err, LinkError::Stale(e) if e.key.key == ps[3].raw()));
    assert_eq!(dump(&s, &r), before);
    let gone = user(&mut s, "gone");
    s.remove(gone).unwrap();
    let before = dump(&s, &r);
    assert!(matches!(
        s.set_children(r.posts, gone, &[ps[1]]),
        Err(LinkError::Stale(_))
    ));
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn unlinking_one_child_out_of_a_hundred_thousand_keeps_the_order() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let n = 100_000;
    s.reserve::<Post>(n);
    let ps: Vec<Key<Post>> = (0..n).map(|i| post(&mut s, &i.to_string())).collect();
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    check(&s);
    let victim = ps[n / 2 + 17];
    assert_eq!(s.unlink(r.posts, alice, victim), Ok(true));
    check(&s);
    let expected: Vec<Key<Post>> = ps.iter().copied().filter(|&p| p != victim).collect();
    assert_eq!(kids(&s, r.posts, alice), expected);
    assert_eq!(s.child_count(r.posts, alice), n - 1);
    assert_eq!(s.parent(r.posts, victim), None);
    // and the first and the last too
    s.unlink(r.posts, alice, ps[0]).unwrap();
    s.unlink(r.posts, alice, ps[n - 1]).unwrap();
    check(&s);
    let expected: Vec<Key<Post>> = expected[1..expected.len() - 1].to_vec();
    assert_eq!(kids(&s, r.posts, alice), expected);
    assert_eq!(s.children(r.posts, alice).next_back(), Some(ps[n - 2]));
}

#[test]
fn many_unlinks_compact_the_collection_and_keep_order_and_integrity() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 200);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    let mut model = ps.clone();
    // drop three of every four, front to back, checking after each step
    for (i, &p) in ps.iter().enumerate() {
        if i % 4 != 0 {
            s.unlink(r.posts, alice, p).unwrap();
            model.retain(|&q| q != p);
            check(&s);
            assert_eq!(kids(&s, r.posts, alice), model);
        }
    }
    // the survivors' positions were rewritten by compaction: unlinking each still works
    let more = posts(&mut s, "more", 10);
    for &p in &more {
        s.link(r.posts, alice, p).unwrap();
        model.push(p);
    }
    for &p in model.clone().iter().rev().step_by(3) {
        s.unlink(r.posts, alice, p).unwrap();
        model.retain(|&q| q != p);
        check(&s);
        assert_eq!(kids(&s, r.posts, alice), model);
    }
    // moving compacted children elsewhere and back
    let bob = user(&mut s, "bob");
    for &p in model.clone().iter().step_by(2) {
        s.link(r.posts, bob, p).unwrap();
        model.retain(|&q| q != p);
        check(&s);
    }
    assert_eq!(kids(&s, r.posts, alice), model);
    for p in kids(&s, r.posts, bob) {
        assert_eq!(s.parent(r.posts, p), Some(bob));
    }
}

#[test]
fn removing_children_after_compaction_finds_each_at_its_new_position() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 64);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    for &p in &ps[..48] {
        s.remove(p).unwrap();
    }
    check(&s);
    let mut model: Vec<Key<Post>> = ps[48..].to_vec();
    assert_eq!(kids(&s, r.posts, alice), model);
    while let Some(p) = model.pop() {
        s.remove(p).unwrap();
        check(&s);
        assert_eq!(kids(&s, r.posts, alice), model);
    }
    assert_eq!(s.link_count(r.posts), 0);
}

#[test]
fn reordering_a_compacted_collection_keeps_every_child_reachable() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let ps = posts(&mut s, "p", 40);
    for &p in &ps {
        s.link(r.posts, alice, p).unwrap();
    }
    for &p in ps.iter().skip(1).step_by(2) {
        s.unlink(r.posts, alice, p).unwrap();
    }
    let mut order: Vec<Key<Post>> = ps.iter().copied().step_by(2).rev().collect();
    s.set_children(r.posts, alice, &order).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.posts, alice), order);
    while let Some(p) = order.pop() {
        s.unlink(r.posts, alice, p).unwrap();
        check(&s);
        assert_eq!(kids(&s, r.posts, alice), order);
    }
}

/// A plain model of a one-to-many: each child's parent, and each parent's children.
#[derive(Default)]
struct Model {
    parent: HashMap<Key<Post>, Key<User>>,
    children: HashMap<Key<User>, Vec<Key<Post>>>,
}

impl Model {
    fn unlink(&mut self, c: Key<Post>) {
        if let Some(p) = self.parent.remove(&c) {
            self.children.get_mut(&p).unwrap().retain(|&x| x != c);
        }
    }
    fn link(&mut self, p: Key<User>, c: Key<Post>) {
        if self.parent.get(&c) == Some(&p) {
            return;
        }
        self.unlink(c);
        self.parent.insert(c, p);
        self.children.entry(p).or_default().push(c);
    }
}

#[test]
fn random_links_moves_unlinks_and_replacements_match_a_plain_model() {
    let (mut s, r) = setup();
    let mut rng = Rng::new(7);
    let mut users: Vec<Key<User>> = (0..4).map(|i| user(&mut s, &format!("u{i}"))).collect();
    let mut ps: Vec<Key<Post>> = posts(&mut s, "p", 30);
    let mut m = Model::default();
    for step in 0..3000 {
        let u = rng.pick(&users);
        let p = rng.pick(&ps);
        match rng.below(10) {
            0..=3 => {
                s.link(r.posts, u, p).unwrap();
                m.link(u, p);
            }
            4 | 5 => {
                let was = m.parent.get(&p) == Some(&u);
                assert_eq!(s.unlink(r.posts, u, p), Ok(was), "step {step}");
                if was {
                    m.unlink(p);
                }
            }
            6 => {
                let mut wanted: Vec<Key<Post>> = Vec::new();
                for _ in 0..rng.below(6) {
                    let c = rng.pick(&ps);
                    if !wanted.contains(&c) {
                        wanted.push(c);
                    }
                }
                s.set_children(r.posts, u, &wanted).unwrap();
                for c in m.children.get(&u).cloned().unwrap_or_default() {
                    m.unlink(c);
                }
                for &c in &wanted {
                    m.link(u, c);
                }
            }
            7 => {
                let mut current = m.children.get(&u).cloned().unwrap_or_default();
                if current.len() > 1 {
                    let i = rng.below(current.len());
                    current.swap(0, i);
                    current.reverse();
                }
                s.set_children(r.posts, u, &current).unwrap();
                m.children.insert(u, current);
            }
            8 => {
                s.remove(p).unwrap();
                m.unlink(p);
                ps.retain(|&x| x != p);
                ps.push(post(&mut s, &format!("p{step}")));
            }
            _ => {
                s.remove(u).unwrap();
                for c in m.children.remove(&u).unwrap_or_default() {
                    m.parent.remove(&c);
                }
                users.retain(|&x| x != u);
                users.push(user(&mut s, &format!("u{step}")));
            }
        }
        check(&s);
        for &u in &users {
            let expected = m.children.get(&u).cloned().unwrap_or_default();
            assert_eq!(
                kids(&s, r.posts, u),
                expected,
                "children of {u:?} at step {step}"
            );
        }
        for &p in &ps {
            assert_eq!(
                s.parent(r.posts, p),
                m.parent.get(&p).copied(),
                "step {step}"
            );
        }
        assert_eq!(s.link_count(r.posts), m.parent.len());
    }
}

#[test]
fn the_relation_is_named_by_its_tables_and_ends() {
    let (_, r) = setup();
    let (declared, _) = schema(Config::default());
    let names: Vec<String> = declared.relations().map(|(_, n)| n.to_string()).collect();
    assert_eq!(names[0], "users.posts <-> posts.author");
    assert_eq!(format!("{:?}", r.posts), "OneToMany(#0)");
    let (kind, _) = declared.relations().next().unwrap();
    assert_eq!(kind, relgraph::RelationKind::OneToMany);
}

#[test]
#[should_panic(expected = "already has a relation end named `posts`")]
fn declaring_an_end_name_twice_on_a_table_panics() {
    let mut schema = relgraph::Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let comments = schema.table::<Comment>("comments");
    schema.one_to_many(users, "posts", posts, "author", relgraph::Rules::new());
    schema.one_to_many(users, "posts", comments, "writer", relgraph::Rules::new());
}

#[test]
fn the_parents_view_agrees_with_parent_and_parent_row_for_every_child() {
    let (mut s, r) = setup();
    let users: Vec<_> = (0..4).map(|i| user(&mut s, &format!("u{i}"))).collect();
    let ps = posts(&mut s, "p", 12);
    for (i, &p) in ps.iter().enumerate().skip(1) {
        s.link(r.posts, users[i % 4], p).unwrap();
    }
    s.link(r.posts, users[3], ps[4]).unwrap(); // a move
    assert!(s.unlink(r.posts, users[2], ps[6]).unwrap());
    s.remove(ps[7]).unwrap(); // a stale child key
    s.remove(users[1]).unwrap(); // its posts lose their parent (nullify)
    let reused = post(&mut s, "reused"); // takes a freed slot under a new version
    s.link(r.posts, users[0], reused).unwrap();
    let mut all = ps.clone();
    all.push(reused);
    let view = s.parents(r.posts);
    let mut linked = 0;
    for &p in &all {
        assert_eq!(view.get(p), s.parent(r.posts, p), "{p:?}");
        assert_eq!(view.row(p), s.parent_row(r.posts, p), "{p:?}");
        linked += usize::from(view.get(p).is_some());
    }
    assert_eq!(view.get(ps[0]), None, "never linked");
    assert_eq!(view.get(ps[4]), Some(users[3]), "moved");
    assert_eq!(view.get(ps[6]), None, "unlinked");
    assert_eq!(view.get(ps[7]), None, "removed");
    assert_eq!(view.get(ps[5]), None, "parent removed");
    assert_eq!(view.row(reused).map(|u| u.name.as_str()), Some("u0"));
    assert_eq!(linked, s.link_count(r.posts));
    assert_eq!(
        format!("{view:?}"),
        format!("Parents {{ linked: {linked} }}")
    );

    // a self-referential hierarchy
    let es: Vec<_> = (0..3).map(|i| employee(&mut s, &format!("e{i}"))).collect();
    s.link(r.reports, es[0], es[1]).unwrap();
    s.link(r.reports, es[1], es[2]).unwrap();
    let bosses = s.parents(r.reports);
    assert_eq!(
        es.iter().map(|&e| bosses.get(e)).collect::<Vec<_>>(),
        [None, Some(es[0]), Some(es[1])]
    );
    assert_eq!(bosses.row(es[2]).map(|e| e.name.as_str()), Some("e1"));
}

/// Lists grow through several segment sizes, shrink by compaction, are emptied by their
/// parents' removal and their segments taken by new parents' lists, in one relation:
/// after each round every parent's children are exactly a plain model's, in order.
#[test]
fn children_lists_stay_exact_while_their_storage_is_freed_and_reused() {
    let (mut s, r) = setup();
    let ps = posts(&mut s, "p", 400);
    let mut model: Vec<(Key<User>, Vec<Key<Post>>)> = Vec::new();
    let mut rng = Rng::new(12345);
    let mut next = |n: usize| rng.below(n);
    for round in 0..6 {
        // new parents, some of them in the slots of the parents removed last round
        while model.len() < 12 {
            let u = user(&mut s, &format!("u{round}"));
            model.push((u, Vec::new()));
        }
        // links and moves: lists of 0 to ~80 children, so segments of 4 up to 128
        for _ in 0..300 {
            let (p, to) = (ps[next(ps.len())], next(model.len()));
            // (a link to the parent the child has already changes nothing)
            if !model[to].1.contains(&p) {
                for (_, linked) in &mut model {
                    linked.retain(|&k| k != p);
                }
                model[to].1.push(p);
            }
            s.link(r.posts, model[to].0, p).unwrap();
        }
        // unlinks leave holes; enough of them compact a list
        for _ in 0..120 {
            let (u, linked) = &mut model[next(12)];
            if !linked.is_empty() {
                let p = linked.remove(next(linked.len()));
                assert!(s.unlink(r.posts, *u, p).unwrap());
            }
        }
        check(&s);
        for (u, expected) in &model {
            assert_eq!(&kids(&s, r.posts, *u), expected, "round {round}");
        }
        // a third of the parents removed: their children lose their parent (nullify)
        for _ in 0..4 {
            let (u, linked) = model.remove(next(model.len()));
            s.remove(u).unwrap();
            for p in linked {
                assert_eq!(s.parent(r.posts, p), None);
            }
        }
        check(&s);
    }
    assert_eq!(
        s.link_count(r.posts),
        model.iter().map(|(_, k)| k.len()).sum::<usize>()
    );
}
