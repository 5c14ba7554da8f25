//! One-to-one relations (`users.profile <-> profiles.user`, and the self-referential
//! `employees.mentee <-> employees.mentor`): both ends exclusive, evictions immediate.

mod common;

use std::collections::HashMap;

use common::*;
use relgraph::{Key, LinkError, Rules};

fn setup() -> (relgraph::Store, Rels) {
    world(Config::default())
}

#[test]
fn linking_sets_the_partner_at_both_ends() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    check(&s);
    assert_eq!(s.partner(r.profile, alice), Some(bio));
    assert_eq!(s.partner_of(r.profile, bio), Some(alice));
    assert_eq!(targets(&s, r.profile, alice), [bio]);
    assert_eq!(sources(&s, r.profile, bio), [alice]);
    assert_eq!(s.target_count(r.profile, alice), 1);
    assert_eq!(s.source_count(r.profile, bio), 1);
    assert!(s.linked(r.profile, alice, bio));
    assert_eq!(s.link_count(r.profile), 1);
}

#[test]
fn linking_a_new_profile_evicts_the_users_old_profile() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let old = profile(&mut s, "old");
    let new = profile(&mut s, "new");
    s.link(r.profile, alice, old).unwrap();
    s.link(r.profile, alice, new).unwrap();
    check(&s);
    assert_eq!(s.partner(r.profile, alice), Some(new));
    assert_eq!(s.partner_of(r.profile, new), Some(alice));
    assert_eq!(s.partner_of(r.profile, old), None);
    assert!(s.contains(old), "nullify: the evicted profile survives");
    assert_eq!(s.link_count(r.profile), 1);
}

#[test]
fn linking_a_profile_to_a_new_user_evicts_its_old_user() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    s.link(r.profile, bob, bio).unwrap();
    check(&s);
    assert_eq!(s.partner(r.profile, bob), Some(bio));
    assert_eq!(s.partner_of(r.profile, bio), Some(bob));
    assert_eq!(s.partner(r.profile, alice), None);
    assert!(targets(&s, r.profile, alice).is_empty());
    assert_eq!(s.link_count(r.profile), 1);
}

#[test]
fn linking_two_partnered_entities_evicts_both_previous_partners() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let pa = profile(&mut s, "a");
    let pb = profile(&mut s, "b");
    s.link(r.profile, alice, pa).unwrap();
    s.link(r.profile, bob, pb).unwrap();
    s.link(r.profile, alice, pb).unwrap();
    check(&s);
    assert_eq!(s.partner(r.profile, alice), Some(pb));
    assert_eq!(s.partner_of(r.profile, pb), Some(alice));
    assert_eq!(s.partner(r.profile, bob), None);
    assert_eq!(s.partner_of(r.profile, pa), None);
    assert_eq!(s.link_count(r.profile), 1);
}

#[test]
fn linking_partners_again_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    let before = dump(&s, &r);
    s.link(r.profile, alice, bio).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn unlinking_clears_both_ends() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    assert_eq!(s.unlink(r.profile, alice, bio), Ok(true));
    check(&s);
    assert_eq!(s.partner(r.profile, alice), None);
    assert_eq!(s.partner_of(r.profile, bio), None);
    assert_eq!(s.link_count(r.profile), 0);
    assert!(s.contains(alice) && s.contains(bio));
}

#[test]
fn unlinking_a_pair_that_is_not_partnered_returns_false_and_changes_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let bio = profile(&mut s, "bio");
    let other = profile(&mut s, "other");
    s.link(r.profile, alice, bio).unwrap();
    let before = dump(&s, &r);
    assert_eq!(s.unlink(r.profile, bob, bio), Ok(false));
    assert_eq!(s.unlink(r.profile, alice, other), Ok(false));
    assert_eq!(s.unlink(r.profile, bob, other), Ok(false));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn stale_keys_are_refused_and_change_nothing() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let gone = user(&mut s, "gone");
    let bio = profile(&mut s, "bio");
    let dead = profile(&mut s, "dead");
    s.link(r.profile, alice, bio).unwrap();
    s.remove(gone).unwrap();
    s.remove(dead).unwrap();
    let before = dump(&s, &r);
    let e = s.link(r.profile, gone, bio).unwrap_err();
    assert!(matches!(e, LinkError::Stale(k) if k.key.table == "users"));
    let e = s.link(r.profile, alice, dead).unwrap_err();
    assert!(matches!(e, LinkError::Stale(k) if k.key.table == "profiles"));
    assert!(matches!(
        s.unlink(r.profile, alice, dead),
        Err(LinkError::Stale(_))
    ));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn removing_either_partner_unlinks_the_other() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bob = user(&mut s, "bob");
    let pa = profile(&mut s, "a");
    let pb = profile(&mut s, "b");
    s.link(r.profile, alice, pa).unwrap();
    s.link(r.profile, bob, pb).unwrap();
    s.remove(alice).unwrap();
    check(&s);
    assert_eq!(s.partner_of(r.profile, pa), None);
    assert!(s.contains(pa));
    s.remove(pb).unwrap();
    check(&s);
    assert_eq!(s.partner(r.profile, bob), None);
    assert!(s.contains(bob));
    assert_eq!(s.link_count(r.profile), 0);
}

#[test]
fn a_reused_slot_inherits_no_partner() {
    let (mut s, r) = setup();
    let alice = user(&mut s, "alice");
    let bio = profile(&mut s, "bio");
    s.link(r.profile, alice, bio).unwrap();
    s.remove(bio).unwrap();
    let fresh = profile(&mut s, "fresh");
    assert_eq!(fresh.raw().index(), bio.raw().index());
    check(&s);
    assert_eq!(s.partner_of(r.profile, fresh), None);
    assert_eq!(s.partner(r.profile, alice), None);
    assert_eq!(s.partner_of(r.profile, bio), None);
}

#[test]
fn a_self_referential_one_to_one_links_an_entity_to_another_of_its_table() {
    let (mut s, r) = setup();
    let ann = employee(&mut s, "ann");
    let ben = employee(&mut s, "ben");
    let cat = employee(&mut s, "cat");
    s.link(r.mentors, ann, ben).unwrap();
    s.link(r.mentors, ben, cat).unwrap();
    check(&s);
    assert_eq!(s.partner(r.mentors, ann), Some(ben), "ann mentors ben");
    assert_eq!(s.partner_of(r.mentors, ben), Some(ann));
    assert_eq!(s.partner(r.mentors, ben), Some(cat), "ben also mentors cat");
    // cat now mentors ann: a cycle, allowed by default, and it evicts nobody
    s.link(r.mentors, cat, ann).unwrap();
    check(&s);
    assert_eq!(s.link_count(r.mentors), 3);
    // ann mentors cat instead: evicts ben (ann's mentee) and ben (cat's mentor)
    s.link(r.mentors, ann, cat).unwrap();
    check(&s);
    assert_eq!(s.partner(r.mentors, ann), Some(cat));
    assert_eq!(s.partner_of(r.mentors, cat), Some(ann));
    assert_eq!(s.partner_of(r.mentors, ben), None);
    assert_eq!(s.partner(r.mentors, ben), None);
    assert_eq!(s.partner(r.mentors, cat), Some(ann));
}

#[test]
fn an_entity_may_be_its_own_partner_unless_self_links_are_forbidden() {
    let (mut s, r) = setup();
    let ann = employee(&mut s, "ann");
    s.link(r.mentors, ann, ann).unwrap();
    check(&s);
    assert_eq!(s.partner(r.mentors, ann), Some(ann));
    s.remove(ann).unwrap();
    check(&s);
    assert_eq!(s.link_count(r.mentors), 0);

    let (mut s, r) = world(Config {
        mentors: Rules::new().forbid_self_links(),
        ..Config::default()
    });
    let ann = employee(&mut s, "ann");
    let before = dump(&s, &r);
    let e = s.link(r.mentors, ann, ann).unwrap_err();
    check(&s);
    match e {
        LinkError::SelfLink { relation, key } => {
            assert_eq!(
                relation.to_string(),
                "employees.mentee <-> employees.mentor"
            );
            assert_eq!(key, ann.raw());
        }
        e => panic!("expected SelfLink, got {e:?}"),
    }
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn an_acyclic_one_to_one_refuses_a_chain_that_closes_on_itself() {
    let (mut s, r) = world(Config {
        mentors: Rules::new().acyclic(),
        ..Config::default()
    });
    let es: Vec<Key<Employee>> = (0..6).map(|i| employee(&mut s, &format!("e{i}"))).collect();
    for w in es.windows(2) {
        s.link(r.mentors, w[0], w[1]).unwrap();
    }
    check(&s);
    let before = dump(&s, &r);
    for (a, b) in [
        (es[1], es[0]),
        (es[5], es[0]),
        (es[3], es[2]),
        (es[4], es[1]),
    ] {
        let e = s.link(r.mentors, a, b).unwrap_err();
        assert!(
            matches!(e, LinkError::Cycle { a: x, b: y, .. } if x == a.raw() && y == b.raw()),
            "{e:?}"
        );
        check(&s);
        assert_eq!(dump(&s, &r), before, "a refused cycle changes nothing");
    }
    // a link that evicts but closes no cycle is fine: e5 mentors a fresh employee
    let fresh = employee(&mut s, "fresh");
    s.link(r.mentors, es[5], fresh).unwrap();
    // e0 taking e3 evicts e1 (e0's mentee) and e2 (e3's mentor): no cycle
    s.link(r.mentors, es[0], es[3]).unwrap();
    check(&s);
    assert_eq!(s.partner(r.mentors, es[0]), Some(es[3]));
    assert_eq!(s.partner(r.mentors, es[2]), None);
    assert_eq!(s.partner_of(r.mentors, es[1]), None);
}

#[test]
fn random_links_and_unlinks_match_a_plain_model() {
    let (mut s, r) = setup();
    let mut rng = Rng::new(11);
    let users: Vec<Key<User>> = (0..8).map(|i| user(&mut s, &format!("u{i}"))).collect();
    let mut profiles: Vec<Key<Profile>> =
        (0..8).map(|i| profile(&mut s, &format!("p{i}"))).collect();
    let mut of_user: HashMap<Key<User>, Key<Profile>> = HashMap::new();
    for step in 0..2000 {
        let u = rng.pick(&users);
        let p = rng.pick(&profiles);
        match rng.below(6) {
            0..=2 => {
                s.link(r.profile, u, p).unwrap();
                of_user.retain(|_, &mut q| q != p);
                of_user.insert(u, p);
            }
            3 | 4 => {
                let was = of_user.get(&u) == Some(&p);
                assert_eq!(s.unlink(r.profile, u, p), Ok(was), "step {step}");
                if was {
                    of_user.remove(&u);
                }
            }
            _ => {
                s.remove(p).unwrap();
                of_user.retain(|_, &mut q| q != p);
                profiles.retain(|&q| q != p);
                profiles.push(profile(&mut s, &format!("p{step}")));
            }
        }
        check(&s);
        for &u in &users {
            assert_eq!(
                s.partner(r.profile, u),
                of_user.get(&u).copied(),
                "step {step}"
            );
        }
        for &p in &profiles {
            let owner = of_user.iter().find(|&(_, &q)| q == p).map(|(&u, _)| u);
            assert_eq!(s.partner_of(r.profile, p), owner, "step {step}");
        }
        assert_eq!(s.link_count(r.profile), of_user.len());
    }
}
