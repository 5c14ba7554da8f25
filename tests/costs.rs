//! The documented costs hold for every shape: a call that is O(n) takes about 16 times as
//! long for 16 times the input, where a quadratic one takes 256 times as long. Each test
//! times the same work at n and at 16n (the best of five runs each, one test at a time, so
//! that a busy machine's pauses count as little as they can) and requires a ratio below
//! 64: a linear path passes with a factor of 4 to spare for cache effects and noise, a
//! quadratic path fails by as much.
//!
//! These tests check a complexity, not a speed: how fast relgraph is is measured by the
//! criterion benchmarks (`cargo bench -p relgraph-bench`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use relgraph::{DeleteRule, Key, Rules, Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User(u32);
#[derive(Serialize, Deserialize)]
struct Post(u32);
#[derive(Serialize, Deserialize)]
struct Tag(u32);

const N: usize = 1_000;
const FACTOR: usize = 16;
const LIMIT: f64 = 64.0;

/// One timing at a time: the tests of this file run on threads of their own.
static SERIAL: Mutex<()> = Mutex::new(());

/// The best of five timings of `run` on a fresh input from `setup`.
fn best<S>(mut setup: impl FnMut() -> S, mut run: impl FnMut(S)) -> Duration {
    (0..5)
        .map(|_| {
            let input = setup();
            let t = Instant::now();
            run(input);
            t.elapsed()
        })
        .min()
        .expect("three runs")
}

/// Times the work at `N` and `FACTOR * N` and checks the ratio.
fn scales_linearly<S>(what: &str, setup: impl Fn(usize) -> S, run: impl Fn(S)) {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let small = best(|| setup(N), &run);
    let large = best(|| setup(FACTOR * N), &run);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-9);
    println!("{what}: {small:?} at n = {N}, {large:?} at {FACTOR}n: ratio {ratio:.1}");
    assert!(
        ratio < LIMIT,
        "{what}: {FACTOR} times the input took {ratio:.1} times as long ({small:?} -> {large:?})"
    );
}

#[test]
fn set_children_under_delete_orphan_is_linear_in_the_children() {
    let setup = |n: usize| {
        let mut schema = Schema::new();
        let users = schema.table::<User>("users");
        let posts = schema.table::<Post>("posts");
        let rel = schema.one_to_many(users, "posts", posts, "author", DeleteRule::DeleteOrphan);
        let mut s = Store::new(schema);
        let u = s.insert(User(0));
        let old = s.insert_all((0..n as u32).map(Post));
        s.link_all(rel, old.iter().map(|&p| (u, p))).unwrap();
        let new = s.insert_all((0..n as u32).map(Post));
        (s, rel, u, new)
    };
    scales_linearly(
        "set_children replacing n children (delete-orphan)",
        setup,
        |(mut s, rel, u, new)| {
            s.set_children(rel, u, &new).unwrap();
            assert_eq!(s.len::<Post>(), new.len());
        },
    );
}

#[test]
fn set_targets_under_delete_orphan_is_linear_in_the_targets() {
    let setup = |n: usize| {
        let mut schema = Schema::new();
        let posts = schema.table::<Post>("posts");
        let tags = schema.table::<Tag>("tags");
        let rel = schema.many_to_many(posts, "tags", tags, "posts", DeleteRule::DeleteOrphan);
        let mut s = Store::new(schema);
        let p = s.insert(Post(0));
        let old = s.insert_all((0..n as u32).map(Tag));
        s.link_all(rel, old.iter().map(|&t| (p, t))).unwrap();
        let new = s.insert_all((0..n as u32).map(Tag));
        (s, rel, p, new)
    };
    scales_linearly(
        "set_targets replacing n targets (delete-orphan)",
        setup,
        |(mut s, rel, p, new)| {
            s.set_targets(rel, p, &new).unwrap();
            assert_eq!(s.len::<Tag>(), new.len());
        },
    );
}

#[test]
fn an_acyclic_chain_linked_top_down_one_link_at_a_time_is_linear() {
    // each new node is linked under the last before it has children of its own: no
    // link can close a cycle, and none walks up the chain (a walk per link would make
    // the chain quadratic in its depth)
    let setup = |n: usize| {
        let mut schema = Schema::new();
        let users = schema.table::<User>("users");
        let rel = schema.one_to_many(users, "reports", users, "manager", Rules::new().acyclic());
        let mut s = Store::new(schema);
        let keys = s.insert_all((0..n as u32).map(User));
        (s, rel, keys)
    };
    scales_linearly(
        "an acyclic chain of n, linked top down",
        setup,
        |(mut s, rel, keys)| {
            for w in keys.windows(2) {
                s.link(rel, w[0], w[1]).unwrap();
            }
            assert_eq!(s.depth(rel, keys[keys.len() - 1]), keys.len() - 1);
        },
    );
}

/// A user with `n` posts (cascade), each post tagged with 4 of 16 tags that another
/// user's posts share too (so a tag has about n / 2 posts), under `rules` at the post end.
fn tagged_posts(n: usize, rules: Rules) -> (Store, Key<User>) {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let tags = schema.table::<Tag>("tags");
    let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    let tagging = schema.many_to_many(posts, "tags", tags, "posts", rules);
    let mut s = Store::new(schema);
    let u = s.insert(User(0));
    let other = s.insert(User(1));
    let t = s.insert_all((0..16).map(Tag));
    let mine = s.insert_all((0..n as u32).map(Post));
    let theirs = s.insert_all((0..n as u32).map(Post));
    s.link_all(authorship, mine.iter().map(|&p| (u, p)))
        .unwrap();
    s.link_all(authorship, theirs.iter().map(|&p| (other, p)))
        .unwrap();
    for (i, (&a, &b)) in mine.iter().zip(&theirs).enumerate() {
        for k in 0..4 {
            let tag = t[(i + k * 5) % t.len()];
            s.link(tagging, a, tag).unwrap();
            s.link(tagging, b, tag).unwrap();
        }
    }
    (s, u)
}

/// A user with `n` posts (cascade; posts sit in no other relation, so a delete reaches
/// them without a rule walk) and `n / 10` tags it follows, which another user follows too,
/// under `rules` at the user's end of the follows relation.
fn followed_tags(n: usize, rules: Rules) -> (Store, Key<User>) {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let tags = schema.table::<Tag>("tags");
    let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    let follows = schema.many_to_many(users, "follows", tags, "followers", rules);
    let mut s = Store::new(schema);
    let u = s.insert(User(0));
    let other = s.insert(User(1));
    let posts = s.insert_all((0..n as u32).map(Post));
    s.link_all(authorship, posts.iter().map(|&p| (u, p)))
        .unwrap();
    let t = s.insert_all((0..(n / 10) as u32).map(Tag));
    s.link_all(follows, t.iter().flat_map(|&t| [(u, t), (other, t)]))
        .unwrap();
    (s, u)
}

#[test]
fn a_cascade_into_posts_whose_orphan_rule_tags_survive_is_linear() {
    scales_linearly(
        "remove of a user with n tagged posts (delete-orphan tags shared)",
        |n| tagged_posts(n, Rules::new().on_delete(DeleteRule::DeleteOrphan)),
        |(mut s, u)| {
            let tags = s.len::<Tag>();
            s.remove(u).unwrap();
            assert_eq!(s.len::<Tag>(), tags, "every tag keeps another user's posts");
        },
    );
}

#[test]
fn a_delete_reaching_many_leaf_children_and_surviving_orphan_rule_partners_is_linear() {
    scales_linearly(
        "remove of a user with n posts and n / 10 shared tags (delete-orphan)",
        |n| followed_tags(n, Rules::new().on_delete(DeleteRule::DeleteOrphan)),
        |(mut s, u)| {
            let tags = s.len::<Tag>();
            s.remove(u).unwrap();
            assert_eq!(s.len::<Tag>(), tags, "every tag keeps its other follower");
            assert_eq!(s.len::<Post>(), 0);
        },
    );
}

#[test]
fn a_refused_delete_reaching_many_leaf_children_and_restrict_partners_is_linear() {
    scales_linearly(
        "a refused remove of a user with n posts and n / 10 restricting tags",
        |n| followed_tags(n, Rules::new().on_delete(DeleteRule::Restrict)),
        |(mut s, u)| {
            let posts = s.len::<Post>();
            assert!(s.remove(u).is_err(), "a followed tag restricts the delete");
            assert_eq!(s.len::<Post>(), posts);
        },
    );
}
