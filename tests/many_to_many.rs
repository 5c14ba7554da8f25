//! Many-to-many relations (`students.courses <-> courses.students` with an `Enrollment`
//! payload, `posts.tags <-> tags.posts` without): both ends in step, one link per pair,
//! payloads, collection replacement, order kept through unlinks and compaction.

mod common;

use std::collections::HashMap;

use common::*;
use relgraph::{Key, LinkError};

fn setup() -> (relgraph::Store, Rels) {
    world(Config::default())
}

fn grades(s: &relgraph::Store, r: &Rels, st: Key<Student>) -> Vec<(Key<Course>, u32)> {
    s.targets_with(r.enrollments, st)
        .map(|(c, e)| (c, e.grade))
        .collect()
}

fn grades_of(s: &relgraph::Store, r: &Rels, c: Key<Course>) -> Vec<(Key<Student>, u32)> {
    s.sources_with(r.enrollments, c)
        .map(|(st, e)| (st, e.grade))
        .collect()
}

#[test]
fn linking_adds_the_target_and_the_source_at_once() {
    let (mut s, r) = setup();
    let p = post(&mut s, "p");
    let t = tag(&mut s, "rust");
    s.link(r.tags, p, t).unwrap();
    check(&s);
    assert_eq!(targets(&s, r.tags, p), [t]);
    assert_eq!(sources(&s, r.tags, t), [p]);
    assert!(s.linked(r.tags, p, t));
    assert_eq!(s.target_count(r.tags, p), 1);
    assert_eq!(s.source_count(r.tags, t), 1);
    assert_eq!(s.link_count(r.tags), 1);
    assert_eq!(s.payload(r.tags, p, t), Some(&()));
}

#[test]
fn collections_keep_link_order_at_both_ends() {
    let (mut s, r) = setup();
    let ps = posts(&mut s, "p", 3);
    let ts: Vec<Key<Tag>> = (0..3).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    let order = [
        (ps[1], ts[2]),
        (ps[0], ts[2]),
        (ps[1], ts[0]),
        (ps[2], ts[2]),
        (ps[1], ts[1]),
        (ps[0], ts[0]),
    ];
    for &(p, t) in &order {
        s.link(r.tags, p, t).unwrap();
        check(&s);
    }
    assert_eq!(targets(&s, r.tags, ps[1]), [ts[2], ts[0], ts[1]]);
    assert_eq!(targets(&s, r.tags, ps[0]), [ts[2], ts[0]]);
    assert_eq!(sources(&s, r.tags, ts[2]), [ps[1], ps[0], ps[2]]);
    assert_eq!(sources(&s, r.tags, ts[0]), [ps[1], ps[0]]);
    assert_eq!(sources(&s, r.tags, ts[1]), [ps[1]]);
    assert_eq!(s.link_count(r.tags), 6);
}

#[test]
fn linking_an_existing_pair_keeps_its_position_and_payload() {
    let (mut s, r) = setup();
    let st = student(&mut s, "sam");
    let cs: Vec<Key<Course>> = (0..3).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, &c) in cs.iter().enumerate() {
        s.link_with(
            r.enrollments,
            st,
            c,
            Enrollment {
                grade: i as u32 + 1,
            },
        )
        .unwrap();
    }
    let before = dump(&s, &r);
    s.link(r.enrollments, st, cs[0]).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before, "deduplicated: nothing changes");
    assert_eq!(s.link_count(r.enrollments), 3);
}

#[test]
fn link_gives_a_new_link_the_default_payload() {
    let (mut s, r) = setup();
    let st = student(&mut s, "sam");
    let c = course(&mut s, "c");
    s.link(r.enrollments, st, c).unwrap();
    check(&s);
    assert_eq!(
        s.payload(r.enrollments, st, c),
        Some(&Enrollment::default())
    );
}

#[test]
fn link_with_on_an_existing_pair_replaces_the_payload_and_keeps_positions() {
    let (mut s, r) = setup();
    let sts: Vec<Key<Student>> = (0..3).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..3).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for &st in &sts {
        for &c in &cs {
            s.link_with(r.enrollments, st, c, Enrollment { grade: 10 })
                .unwrap();
        }
    }
    s.link_with(r.enrollments, sts[1], cs[0], Enrollment { grade: 99 })
        .unwrap();
    check(&s);
    assert_eq!(
        grades(&s, &r, sts[1]),
        [(cs[0], 99), (cs[1], 10), (cs[2], 10)]
    );
    assert_eq!(
        grades_of(&s, &r, cs[0]),
        [(sts[0], 10), (sts[1], 99), (sts[2], 10)]
    );
    assert_eq!(s.link_count(r.enrollments), 9);
}

#[test]
fn payloads_are_read_and_updated_in_place() {
    let (mut s, r) = setup();
    let st = student(&mut s, "sam");
    let c = course(&mut s, "c");
    let other = course(&mut s, "other");
    s.link_with(r.enrollments, st, c, Enrollment { grade: 3 })
        .unwrap();
    let old = s
        .update_payload(r.enrollments, st, c, |e| std::mem::replace(&mut e.grade, 5))
        .unwrap();
    check(&s);
    assert_eq!(old, Some(3));
    assert_eq!(
        s.payload(r.enrollments, st, c),
        Some(&Enrollment { grade: 5 })
    );
    assert_eq!(s.payload(r.enrollments, st, other), None);
    let before = dump(&s, &r);
    let mut called = false;
    let none = s
        .update_payload(r.enrollments, st, other, |e| {
            called = true;
            e.grade = 1
        })
        .unwrap();
    assert_eq!(none, None, "not linked");
    assert!(!called);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn payload_calls_with_stale_keys_fail_or_answer_none() {
    let (mut s, r) = setup();
    let st = student(&mut s, "sam");
    let c = course(&mut s, "c");
    let gone = course(&mut s, "gone");
    s.link(r.enrollments, st, c).unwrap();
    s.link(r.enrollments, st, gone).unwrap();
    s.remove(gone).unwrap();
    let before = dump(&s, &r);
    assert_eq!(s.payload(r.enrollments, st, gone), None);
    let e = s
        .update_payload(r.enrollments, st, gone, |e| e.grade = 1)
        .unwrap_err();
    assert!(matches!(e, LinkError::Stale(k) if k.key.table == "courses"));
    let e = s
        .link_with(r.enrollments, st, gone, Enrollment { grade: 1 })
        .unwrap_err();
    assert!(matches!(e, LinkError::Stale(_)));
    assert!(matches!(
        s.link(r.enrollments, st, gone),
        Err(LinkError::Stale(_))
    ));
    assert!(matches!(
        s.unlink(r.enrollments, st, gone),
        Err(LinkError::Stale(_))
    ));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn unlinking_keeps_the_other_links_in_order_with_their_payloads() {
    let (mut s, r) = setup();
    let sts: Vec<Key<Student>> = (0..4).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..4).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, &st) in sts.iter().enumerate() {
        for (j, &c) in cs.iter().enumerate() {
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
    // the first link made: its removal moves the last link's payload internally
    assert_eq!(s.unlink(r.enrollments, sts[0], cs[0]), Ok(true));
    check(&s);
    assert_eq!(grades(&s, &r, sts[0]), [(cs[1], 1), (cs[2], 2), (cs[3], 3)]);
    assert_eq!(
        grades(&s, &r, sts[3]),
        [(cs[0], 30), (cs[1], 31), (cs[2], 32), (cs[3], 33)]
    );
    assert_eq!(
        grades_of(&s, &r, cs[0]),
        [(sts[1], 10), (sts[2], 20), (sts[3], 30)]
    );
    assert_eq!(s.unlink(r.enrollments, sts[2], cs[1]), Ok(true));
    assert_eq!(s.unlink(r.enrollments, sts[3], cs[3]), Ok(true));
    check(&s);
    assert_eq!(
        grades_of(&s, &r, cs[1]),
        [(sts[0], 1), (sts[1], 11), (sts[3], 31)]
    );
    assert_eq!(
        grades(&s, &r, sts[3]),
        [(cs[0], 30), (cs[1], 31), (cs[2], 32)]
    );
    assert_eq!(
        s.payload(r.enrollments, sts[1], cs[3]),
        Some(&Enrollment { grade: 13 })
    );
    assert_eq!(
        s.unlink(r.enrollments, sts[2], cs[1]),
        Ok(false),
        "already unlinked"
    );
    assert_eq!(s.link_count(r.enrollments), 13);
}

#[test]
fn removing_an_entity_removes_its_links_from_every_partner() {
    let (mut s, r) = setup();
    let sts: Vec<Key<Student>> = (0..3).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..3).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, &st) in sts.iter().enumerate() {
        for (j, &c) in cs.iter().enumerate() {
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
    s.remove(sts[1]).unwrap();
    check(&s);
    for &c in &cs {
        assert_eq!(sources(&s, r.enrollments, c), [sts[0], sts[2]]);
    }
    s.remove(cs[0]).unwrap();
    check(&s);
    assert_eq!(grades(&s, &r, sts[0]), [(cs[1], 1), (cs[2], 2)]);
    assert_eq!(grades(&s, &r, sts[2]), [(cs[1], 21), (cs[2], 22)]);
    assert_eq!(s.link_count(r.enrollments), 4);
}

#[test]
fn set_targets_replaces_the_collection_keeping_payloads_of_kept_links() {
    let (mut s, r) = setup();
    let st = student(&mut s, "sam");
    let cs: Vec<Key<Course>> = (0..5).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, &c) in cs[..3].iter().enumerate() {
        s.link_with(
            r.enrollments,
            st,
            c,
            Enrollment {
                grade: i as u32 + 1,
            },
        )
        .unwrap();
    }
    s.set_targets(r.enrollments, st, &[cs[4], cs[2], cs[0], cs[3]])
        .unwrap();
    check(&s);
    assert_eq!(
        grades(&s, &r, st),
        [(cs[4], 0), (cs[2], 3), (cs[0], 1), (cs[3], 0)],
        "kept links keep their payload, new ones get the default"
    );
    assert!(sources(&s, r.enrollments, cs[1]).is_empty());
    assert_eq!(s.link_count(r.enrollments), 4);
}

#[test]
fn set_targets_with_a_permutation_only_reorders_this_end() {
    let (mut s, r) = setup();
    let sts: Vec<Key<Student>> = (0..2).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..4).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for &st in &sts {
        for (j, &c) in cs.iter().enumerate() {
            s.link_with(r.enrollments, st, c, Enrollment { grade: j as u32 })
                .unwrap();
        }
    }
    let sources_before: Vec<Vec<Key<Student>>> =
        cs.iter().map(|&c| sources(&s, r.enrollments, c)).collect();
    s.set_targets(r.enrollments, sts[1], &[cs[3], cs[1], cs[2], cs[0]])
        .unwrap();
    check(&s);
    assert_eq!(
        grades(&s, &r, sts[1]),
        [(cs[3], 3), (cs[1], 1), (cs[2], 2), (cs[0], 0)]
    );
    assert_eq!(
        targets(&s, r.enrollments, sts[0]),
        cs,
        "the other source is untouched"
    );
    let sources_after: Vec<Vec<Key<Student>>> =
        cs.iter().map(|&c| sources(&s, r.enrollments, c)).collect();
    assert_eq!(
        sources_after, sources_before,
        "the other end keeps its order"
    );
    assert_eq!(s.link_count(r.enrollments), 8);
}

#[test]
fn set_targets_with_the_current_order_changes_nothing() {
    let (mut s, r) = setup();
    let p = post(&mut s, "p");
    let ts: Vec<Key<Tag>> = (0..3).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    for &t in &ts {
        s.link(r.tags, p, t).unwrap();
    }
    let before = dump(&s, &r);
    s.set_targets(r.tags, p, &ts).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn set_targets_with_a_duplicate_or_a_stale_key_fails_and_changes_nothing() {
    let (mut s, r) = setup();
    let p = post(&mut s, "p");
    let ts: Vec<Key<Tag>> = (0..4).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    s.link(r.tags, p, ts[0]).unwrap();
    s.link(r.tags, p, ts[1]).unwrap();
    s.remove(ts[3]).unwrap();
    let before = dump(&s, &r);
    let e = s
        .set_targets(r.tags, p, &[ts[2], ts[0], ts[2]])
        .unwrap_err();
    match e {
        LinkError::Duplicate { relation, key } => {
            assert_eq!(relation.to_string(), "posts.tags <-> tags.posts");
            assert_eq!(key, ts[2].raw());
        }
        e => panic!("expected Duplicate, got {e:?}"),
    }
    check(&s);
    assert_eq!(dump(&s, &r), before);
    let e = s.set_targets(r.tags, p, &[ts[2], ts[3]]).unwrap_err();
    assert!(matches!(e, LinkError::Stale(k) if k.key.key == ts[3].raw()));
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn set_targets_to_nothing_unlinks_every_target() {
    let (mut s, r) = setup();
    let p = post(&mut s, "p");
    let q = post(&mut s, "q");
    let ts: Vec<Key<Tag>> = (0..3).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    for &t in &ts {
        s.link(r.tags, p, t).unwrap();
        s.link(r.tags, q, t).unwrap();
    }
    s.set_targets(r.tags, p, &[]).unwrap();
    check(&s);
    assert!(targets(&s, r.tags, p).is_empty());
    for &t in &ts {
        assert_eq!(sources(&s, r.tags, t), [q]);
    }
}

#[test]
fn unlinking_one_target_out_of_a_hundred_thousand_keeps_the_order() {
    let (mut s, r) = setup();
    let p = post(&mut s, "p");
    let n = 100_000;
    s.reserve::<Tag>(n);
    s.reserve_links(r.tags, n);
    let ts: Vec<Key<Tag>> = (0..n).map(|i| tag(&mut s, &i.to_string())).collect();
    for &t in &ts {
        s.link(r.tags, p, t).unwrap();
    }
    check(&s);
    let victim = ts[n / 3];
    assert_eq!(s.unlink(r.tags, p, victim), Ok(true));
    check(&s);
    let expected: Vec<Key<Tag>> = ts.iter().copied().filter(|&t| t != victim).collect();
    assert_eq!(targets(&s, r.tags, p), expected);
    assert!(sources(&s, r.tags, victim).is_empty());
    assert_eq!(s.link_count(r.tags), n - 1);
}

#[test]
fn unlinking_one_source_out_of_a_hundred_thousand_keeps_the_order() {
    let (mut s, r) = setup();
    let c = course(&mut s, "big");
    let n = 100_000;
    let sts: Vec<Key<Student>> = (0..n).map(|i| student(&mut s, &i.to_string())).collect();
    for (i, &st) in sts.iter().enumerate() {
        s.link_with(r.enrollments, st, c, Enrollment { grade: i as u32 })
            .unwrap();
    }
    check(&s);
    // the first link: the last link's payload moves into its place internally
    let victim = sts[0];
    assert_eq!(s.unlink(r.enrollments, victim, c), Ok(true));
    check(&s);
    let expected: Vec<(Key<Student>, u32)> = sts
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, &st)| (st, i as u32))
        .collect();
    assert_eq!(grades_of(&s, &r, c), expected);
}

#[test]
fn many_unlinks_compact_both_ends_and_keep_order_payloads_and_integrity() {
    let (mut s, r) = setup();
    let sts: Vec<Key<Student>> = (0..3).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let cs: Vec<Key<Course>> = (0..60).map(|i| course(&mut s, &format!("c{i}"))).collect();
    let grade = |i: usize, j: usize| (1000 * i + j) as u32;
    for (i, &st) in sts.iter().enumerate() {
        for (j, &c) in cs.iter().enumerate() {
            s.link_with(r.enrollments, st, c, Enrollment { grade: grade(i, j) })
                .unwrap();
        }
    }
    let mut model: Vec<Vec<usize>> = vec![(0..60).collect(); 3];
    let mut rng = Rng::new(3);
    for _ in 0..150 {
        let i = rng.below(3);
        if model[i].is_empty() {
            continue;
        }
        let at = rng.below(model[i].len());
        let j = model[i].remove(at);
        assert_eq!(s.unlink(r.enrollments, sts[i], cs[j]), Ok(true));
        check(&s);
        for (i, &st) in sts.iter().enumerate() {
            let expected: Vec<(Key<Course>, u32)> =
                model[i].iter().map(|&j| (cs[j], grade(i, j))).collect();
            assert_eq!(grades(&s, &r, st), expected);
        }
        for (j, &c) in cs.iter().enumerate() {
            let expected: Vec<(Key<Student>, u32)> = (0..3)
                .filter(|&i| model[i].contains(&j))
                .map(|i| (sts[i], grade(i, j)))
                .collect();
            assert_eq!(grades_of(&s, &r, c), expected);
        }
    }
    // relink an unlinked pair: appended last at both ends
    let j = (0..60).find(|j| !model[0].contains(j)).unwrap();
    s.link_with(r.enrollments, sts[0], cs[j], Enrollment { grade: 7 })
        .unwrap();
    check(&s);
    assert_eq!(grades(&s, &r, sts[0]).last(), Some(&(cs[j], 7)));
    assert_eq!(grades_of(&s, &r, cs[j]).last(), Some(&(sts[0], 7)));
}

#[test]
fn many_unlinks_compact_a_targets_sources_and_keep_their_order_and_payloads() {
    let (mut s, r) = setup();
    let c = course(&mut s, "popular");
    let other = course(&mut s, "other");
    let sts: Vec<Key<Student>> = (0..50).map(|i| student(&mut s, &format!("s{i}"))).collect();
    for (i, &st) in sts.iter().enumerate() {
        s.link_with(
            r.enrollments,
            st,
            other,
            Enrollment {
                grade: 500 + i as u32,
            },
        )
        .unwrap();
        s.link_with(r.enrollments, st, c, Enrollment { grade: i as u32 })
            .unwrap();
    }
    let mut model: Vec<usize> = (0..50).collect();
    let mut rng = Rng::new(17);
    while model.len() > 3 {
        let i = model.remove(rng.below(model.len()));
        assert_eq!(s.unlink(r.enrollments, sts[i], c), Ok(true));
        check(&s);
        let expected: Vec<(Key<Student>, u32)> =
            model.iter().map(|&i| (sts[i], i as u32)).collect();
        assert_eq!(grades_of(&s, &r, c), expected);
        assert_eq!(targets(&s, r.enrollments, sts[i]), [other]);
    }
    let all: Vec<(Key<Student>, u32)> = (0..50).map(|i| (sts[i], 500 + i as u32)).collect();
    assert_eq!(
        grades_of(&s, &r, other),
        all,
        "the other course is untouched"
    );
    // the compacted survivors can still be unlinked one by one
    for &i in &model.clone() {
        s.unlink(r.enrollments, sts[i], c).unwrap();
        check(&s);
    }
    assert!(sources(&s, r.enrollments, c).is_empty());
}

#[test]
fn a_self_referential_many_to_many_keeps_both_ends_apart() {
    let (mut s, r) = setup();
    let a = user(&mut s, "a");
    let b = user(&mut s, "b");
    let c = user(&mut s, "c");
    s.link(r.follows, a, b).unwrap();
    s.link(r.follows, b, a).unwrap();
    s.link(r.follows, c, a).unwrap();
    s.link(r.follows, a, a).unwrap();
    check(&s);
    assert_eq!(targets(&s, r.follows, a), [b, a], "a follows");
    assert_eq!(sources(&s, r.follows, a), [b, c, a], "a's followers");
    s.remove(b).unwrap();
    check(&s);
    assert_eq!(targets(&s, r.follows, a), [a]);
    assert_eq!(sources(&s, r.follows, a), [c, a]);
    s.unlink(r.follows, a, a).unwrap();
    check(&s);
    assert_eq!(sources(&s, r.follows, a), [c]);
    assert_eq!(s.link_count(r.follows), 1);
}

#[test]
fn random_links_unlinks_payloads_and_replacements_match_a_plain_model() {
    let (mut s, r) = setup();
    let mut rng = Rng::new(5);
    let mut sts: Vec<Key<Student>> = (0..5).map(|i| student(&mut s, &format!("s{i}"))).collect();
    let mut cs: Vec<Key<Course>> = (0..6).map(|i| course(&mut s, &format!("c{i}"))).collect();
    // the model: links in order of creation per student and per course
    let mut a: HashMap<Key<Student>, Vec<Key<Course>>> = HashMap::new();
    let mut b: HashMap<Key<Course>, Vec<Key<Student>>> = HashMap::new();
    let mut w: HashMap<(Key<Student>, Key<Course>), u32> = HashMap::new();
    fn unlink_model(
        a: &mut HashMap<Key<Student>, Vec<Key<Course>>>,
        b: &mut HashMap<Key<Course>, Vec<Key<Student>>>,
        w: &mut HashMap<(Key<Student>, Key<Course>), u32>,
        st: Key<Student>,
        c: Key<Course>,
    ) {
        a.entry(st).or_default().retain(|&x| x != c);
        b.entry(c).or_default().retain(|&x| x != st);
        w.remove(&(st, c));
    }
    for step in 0..3000u32 {
        let st = rng.pick(&sts);
        let c = rng.pick(&cs);
        let linked = w.contains_key(&(st, c));
        match rng.below(12) {
            0..=2 => {
                s.link_with(r.enrollments, st, c, Enrollment { grade: step })
                    .unwrap();
                if !linked {
                    a.entry(st).or_default().push(c);
                    b.entry(c).or_default().push(st);
                }
                w.insert((st, c), step);
            }
            3 => {
                s.link(r.enrollments, st, c).unwrap();
                if !linked {
                    a.entry(st).or_default().push(c);
                    b.entry(c).or_default().push(st);
                    w.insert((st, c), 0);
                }
            }
            4..=6 => {
                assert_eq!(s.unlink(r.enrollments, st, c), Ok(linked), "step {step}");
                unlink_model(&mut a, &mut b, &mut w, st, c);
            }
            7 => {
                let out = s.update_payload(r.enrollments, st, c, |e| {
                    e.grade += 1;
                    e.grade
                });
                let expected = w.get_mut(&(st, c)).map(|g| {
                    *g += 1;
                    *g
                });
                assert_eq!(out, Ok(expected), "step {step}");
            }
            8 => {
                let mut wanted: Vec<Key<Course>> = Vec::new();
                for _ in 0..rng.below(5) {
                    let c = rng.pick(&cs);
                    if !wanted.contains(&c) {
                        wanted.push(c);
                    }
                }
                s.set_targets(r.enrollments, st, &wanted).unwrap();
                for old in a.get(&st).cloned().unwrap_or_default() {
                    if !wanted.contains(&old) {
                        unlink_model(&mut a, &mut b, &mut w, st, old);
                    }
                }
                for &c in &wanted {
                    if let std::collections::hash_map::Entry::Vacant(e) = w.entry((st, c)) {
                        e.insert(0);
                        b.entry(c).or_default().push(st);
                    }
                }
                a.insert(st, wanted);
            }
            9 => {
                s.remove(c).unwrap();
                for &x in &sts {
                    unlink_model(&mut a, &mut b, &mut w, x, c);
                }
                b.remove(&c);
                cs.retain(|&x| x != c);
                cs.push(course(&mut s, &format!("c{step}")));
            }
            10 => {
                s.remove(st).unwrap();
                for &x in &cs {
                    unlink_model(&mut a, &mut b, &mut w, st, x);
                }
                a.remove(&st);
                sts.retain(|&x| x != st);
                sts.push(student(&mut s, &format!("s{step}")));
            }
            _ => {
                let mut current = a.get(&st).cloned().unwrap_or_default();
                current.reverse();
                s.set_targets(r.enrollments, st, &current).unwrap();
                a.insert(st, current);
            }
        }
        check(&s);
        for &st in &sts {
            let expected: Vec<(Key<Course>, u32)> = a
                .get(&st)
                .map(|v| v.iter().map(|&c| (c, w[&(st, c)])).collect())
                .unwrap_or_default();
            assert_eq!(
                grades(&s, &r, st),
                expected,
                "student {st:?} at step {step}"
            );
        }
        for &c in &cs {
            let expected: Vec<(Key<Student>, u32)> = b
                .get(&c)
                .map(|v| v.iter().map(|&st| (st, w[&(st, c)])).collect())
                .unwrap_or_default();
            assert_eq!(
                grades_of(&s, &r, c),
                expected,
                "course {c:?} at step {step}"
            );
        }
        assert_eq!(s.link_count(r.enrollments), w.len());
    }
}

// ----- unlink handing back the payload --------------------------------------------------

/// A student linked to eight courses with grades 10, 20, ...; returns the store, the
/// student and the courses.
fn graded() -> (relgraph::Store, Rels, Key<Student>, Vec<Key<Course>>) {
    let (mut s, r) = setup();
    let st = student(&mut s, "s");
    let cs: Vec<Key<Course>> = (0..8).map(|i| course(&mut s, &format!("c{i}"))).collect();
    for (i, &c) in cs.iter().enumerate() {
        let grade = 10 * (i as u32 + 1);
        s.link_with(r.enrollments, st, c, Enrollment { grade })
            .unwrap();
    }
    (s, r, st, cs)
}

#[test]
fn unlink_take_hands_back_the_payload_and_leaves_what_read_then_unlink_leaves() {
    let (mut s, r, st, cs) = graded();
    let (mut twin, tr, tst, tcs) = graded();
    for i in [3, 0, 7, 3, 5] {
        let read = twin.payload(tr.enrollments, tst, tcs[i]).cloned();
        let unlinked = twin.unlink(tr.enrollments, tst, tcs[i]).unwrap();
        let taken = s.unlink_take(r.enrollments, st, cs[i]).unwrap();
        assert_eq!(taken, read, "course {i}");
        assert_eq!(taken.is_some(), unlinked);
        check(&s);
        assert_eq!(dump(&s, &r), dump(&twin, &tr));
    }
    assert_eq!(
        grades(&s, &r, st),
        [(cs[1], 20), (cs[2], 30), (cs[4], 50), (cs[6], 70)]
    );
    // stale keys are refused, as by unlink
    let gone = course(&mut s, "gone");
    s.remove(gone).unwrap();
    let e = s.unlink_take(r.enrollments, st, gone).unwrap_err();
    assert_eq!(Err(e), s.unlink(r.enrollments, st, gone).map(|_| ()));
}

#[test]
fn unlink_take_in_a_failed_transaction_and_under_history_is_undone_with_its_payload() {
    let (mut s, r, st, cs) = graded();
    let before = dump(&s, &r);
    let out = s.transaction(|s| {
        assert_eq!(
            s.unlink_take(r.enrollments, st, cs[2]).unwrap(),
            Some(Enrollment { grade: 30 })
        );
        check(s);
        Err::<(), ()>(())
    });
    assert!(out.is_err());
    check(&s);
    assert_eq!(dump(&s, &r), before);
    s.enable_history(8);
    let taken = s.unlink_take(r.enrollments, st, cs[5]).unwrap();
    assert_eq!(taken, Some(Enrollment { grade: 60 }));
    let after = dump(&s, &r);
    s.undo().unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before);
    assert_eq!(
        s.payload(r.enrollments, st, cs[5]),
        Some(&Enrollment { grade: 60 })
    );
    s.redo().unwrap();
    assert_eq!(dump(&s, &r), after);
}

#[test]
fn unlink_take_under_delete_orphan_deletes_the_orphan_or_changes_nothing() {
    let cfg = Config {
        enrollments: relgraph::Rules::new().on_delete(relgraph::DeleteRule::DeleteOrphan),
        ..Config::default()
    };
    let (mut s, r) = world(cfg);
    let st = student(&mut s, "s");
    let c = course(&mut s, "c");
    s.link_with(r.enrollments, st, c, Enrollment { grade: 4 })
        .unwrap();
    let taken = s.unlink_take(r.enrollments, st, c).unwrap();
    assert_eq!(taken, Some(Enrollment { grade: 4 }));
    check(&s);
    assert!(
        !s.contains(c),
        "the course left without students is deleted"
    );
    assert!(s.contains(st));
}

thread_local! {
    /// Makes `Fragile::clone` panic while set (per test thread).
    static CLONE_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Fragile(u32);

impl Clone for Fragile {
    fn clone(&self) -> Self {
        assert!(!CLONE_PANICS.get(), "the payload's clone panics");
        Fragile(self.0)
    }
}

#[test]
fn unlink_take_whose_payload_clone_panics_in_a_transaction_leaves_the_link_in_place() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Left;
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Right;
    let mut schema = relgraph::Schema::new();
    let left = schema.table::<Left>("left");
    let right = schema.table::<Right>("right");
    let rel = schema.many_to_many_with::<_, _, Fragile>(
        left,
        "rights",
        right,
        "lefts",
        relgraph::Rules::new(),
    );
    let mut s = relgraph::Store::new(schema);
    let (a, b) = (s.insert(Left), s.insert(Right));
    s.link_with(rel, a, b, Fragile(7)).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.transaction(|s| {
            CLONE_PANICS.set(true);
            let taken = s.unlink_take(rel, a, b);
            CLONE_PANICS.set(false);
            taken.map(|_| ())
        })
    }));
    CLONE_PANICS.set(false);
    assert!(r.is_err(), "the clone's panic propagates");
    s.check_integrity().unwrap();
    assert!(!s.in_transaction());
    assert_eq!(
        s.payload(rel, a, b),
        Some(&Fragile(7)),
        "the rollback keeps the link"
    );
}
