//! Worlds for the snapshot tests: a busy one with every kind of state a snapshot must
//! keep, and a plain one whose size is set by its post count and title length.

use relgraph::{Rules, Store};

use super::*;

/// A world with every relation kind, holes in the arenas and in the lists (vacant and
/// reused slots), and second-end orders unlike the first end's. `n` scales it: 2 gives
/// about 250 entities and 300 links, 1 about half of that.
pub fn busy_world(seed: u64, n: usize) -> (Store, Rels) {
    let cfg = Config {
        reports: Rules::new().acyclic(),
        ..Config::default()
    };
    let (mut s, r) = world(cfg);
    let mut rng = Rng::new(seed);
    let users: Vec<_> = (0..10 * n)
        .map(|i| user(&mut s, &format!("u{i}")))
        .collect();
    let posts: Vec<_> = (0..30 * n)
        .map(|i| post(&mut s, &format!("p{i}")))
        .collect();
    let tags: Vec<_> = (0..2 + 3 * n)
        .map(|i| tag(&mut s, &format!("t{i}")))
        .collect();
    let students: Vec<_> = (0..1 + 7 * n)
        .map(|i| student(&mut s, &format!("s{i}")))
        .collect();
    let courses: Vec<_> = (0..2 + 2 * n)
        .map(|i| course(&mut s, &format!("c{i}")))
        .collect();
    let emps: Vec<_> = (0..1 + 12 * n)
        .map(|i| employee(&mut s, &format!("e{i}")))
        .collect();
    for &p in &posts {
        s.link(r.posts, rng.pick(&users), p).unwrap();
        for _ in 0..1 + n {
            let _ = s.link(r.tags, p, rng.pick(&tags));
        }
    }
    for i in 0..20 * n {
        let c = comment(&mut s, &format!("c{i}"));
        s.link(r.comments, rng.pick(&posts), c).unwrap();
    }
    for &u in users.iter().step_by(3) {
        let pr = profile(&mut s, "bio");
        s.link(r.profile, u, pr).unwrap();
    }
    for &st in &students {
        for _ in 0..2 + n {
            let grade = rng.below(100) as u32;
            let _ = s.link_with(r.enrollments, st, rng.pick(&courses), Enrollment { grade });
        }
    }
    for (i, &e) in emps.iter().enumerate().skip(1) {
        s.link(r.reports, emps[rng.below(i)], e).unwrap();
    }
    for w in emps.chunks(2) {
        if let [a, b] = w {
            s.link(r.mentors, *a, *b).unwrap();
        }
    }
    for _ in 0..25 * n {
        let _ = s.link(r.follows, rng.pick(&users), rng.pick(&users));
    }
    // holes: removed entities (vacant slots, reused slots), unlinks inside lists
    for &p in posts.iter().step_by(7) {
        s.remove(p).unwrap();
    }
    for &u in users.iter().skip(5).step_by(6) {
        s.remove(u).unwrap();
    }
    let reused = user(&mut s, "reused");
    s.link(r.follows, reused, users[0]).unwrap();
    // second-end orders unlike the first end's: relink some enrollments, last student first
    for &st in students.iter().rev().step_by(2) {
        let first: Vec<_> = s.targets(r.enrollments, st).take(2).collect();
        for c in first {
            let grade = s.payload(r.enrollments, st, c).unwrap().clone();
            s.unlink(r.enrollments, st, c).unwrap();
            s.link_with(r.enrollments, st, c, grade).unwrap();
        }
    }
    let mut order: Vec<_> = s.children(r.posts, users[0]).collect();
    order.reverse();
    s.set_children(r.posts, users[0], &order).unwrap();
    check(&s);
    (s, r)
}

/// A world with every relation kind, `posts_n` posts with titles of about `title_len`
/// bytes; different seeds give different states.
pub fn state(seed: u64, posts_n: usize, title_len: usize) -> Store {
    let (mut s, r) = world(Config::default());
    let mut rng = Rng::new(seed);
    let users: Vec<_> = (0..6)
        .map(|i| user(&mut s, &format!("u{seed}-{i}")))
        .collect();
    let tags: Vec<_> = (0..4).map(|i| tag(&mut s, &format!("t{i}"))).collect();
    let filler = "x".repeat(title_len);
    for i in 0..posts_n {
        let p = post(&mut s, &format!("p{seed}-{i}-{filler}"));
        s.link(r.posts, rng.pick(&users), p).unwrap();
        let _ = s.link(r.tags, p, rng.pick(&tags));
    }
    let st = student(&mut s, "s");
    let c = course(&mut s, "c");
    let grade = seed as u32;
    s.link_with(r.enrollments, st, c, Enrollment { grade })
        .unwrap();
    let pr = profile(&mut s, "bio");
    s.link(r.profile, users[0], pr).unwrap();
    let boss = employee(&mut s, "boss");
    let e = employee(&mut s, "e");
    s.link(r.reports, boss, e).unwrap();
    s.link(r.follows, users[1], users[2]).unwrap();
    check(&s);
    s
}
