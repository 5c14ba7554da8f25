//! Shared fixtures for the integration tests: a small world of entity types, a schema
//! builder whose rules each test chooses, and `dump`, which renders every piece of
//! observable state so that "nothing changed" is one string comparison.

#![allow(dead_code)] // each test file uses a different part of the fixtures

pub mod poly;
pub mod snapshot;

use std::fmt::{Debug, Write};

use relgraph::{
    ChangeBatch, Entity, FeedCursor, Key, ManyToMany, OneToMany, OneToOne, Relation, Rules, Schema,
    Store,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct User {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Post {
    pub title: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Comment {
    pub text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Profile {
    pub bio: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Tag {
    pub label: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Student {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Course {
    pub title: String,
}

/// The payload of a student-course link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Enrollment {
    pub grade: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Employee {
    pub name: String,
}

/// A type that no schema registers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Unregistered;

/// The rules of every relation of the world; `Config::default()` nullifies everywhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// users.posts <-> posts.author (one-to-many)
    pub posts: Rules,
    /// posts.comments <-> comments.post (one-to-many)
    pub comments: Rules,
    /// users.profile <-> profiles.user (one-to-one)
    pub profile: Rules,
    /// posts.tags <-> tags.posts (many-to-many, no payload)
    pub tags: Rules,
    /// students.courses <-> courses.students (many-to-many, `Enrollment` payload)
    pub enrollments: Rules,
    /// employees.subordinates <-> employees.manager (self-referential one-to-many)
    pub reports: Rules,
    /// employees.mentee <-> employees.mentor (self-referential one-to-one)
    pub mentors: Rules,
    /// users.follows <-> users.followers (self-referential many-to-many)
    pub follows: Rules,
}

/// The relation handles of the world.
#[derive(Clone, Copy, Debug)]
pub struct Rels {
    pub posts: OneToMany<User, Post>,
    pub comments: OneToMany<Post, Comment>,
    pub profile: OneToOne<User, Profile>,
    pub tags: ManyToMany<Post, Tag>,
    pub enrollments: ManyToMany<Student, Course, Enrollment>,
    pub reports: OneToMany<Employee, Employee>,
    pub mentors: OneToOne<Employee, Employee>,
    pub follows: ManyToMany<User, User>,
}

/// The schema of the world with the given rules.
pub fn schema(cfg: Config) -> (Schema, Rels) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let comments = s.table::<Comment>("comments");
    let profiles = s.table::<Profile>("profiles");
    let tags = s.table::<Tag>("tags");
    let students = s.table::<Student>("students");
    let courses = s.table::<Course>("courses");
    let employees = s.table::<Employee>("employees");
    let rels = Rels {
        posts: s.one_to_many(users, "posts", posts, "author", cfg.posts),
        comments: s.one_to_many(posts, "comments", comments, "post", cfg.comments),
        profile: s.one_to_one(users, "profile", profiles, "user", cfg.profile),
        tags: s.many_to_many(posts, "tags", tags, "posts", cfg.tags),
        enrollments: s.many_to_many_with(students, "courses", courses, "students", cfg.enrollments),
        reports: s.one_to_many(employees, "subordinates", employees, "manager", cfg.reports),
        mentors: s.one_to_one(employees, "mentee", employees, "mentor", cfg.mentors),
        follows: s.many_to_many(users, "follows", users, "followers", cfg.follows),
    };
    (s, rels)
}

/// An empty store of the world with the given rules.
pub fn world(cfg: Config) -> (Store, Rels) {
    let (s, r) = schema(cfg);
    (Store::new(s), r)
}

/// Panics with the violated invariant unless the store is consistent.
#[track_caller]
pub fn check(store: &Store) {
    if let Err(e) = store.check_integrity() {
        panic!("integrity check failed: {e}");
    }
}

pub fn user(s: &mut Store, name: &str) -> Key<User> {
    s.insert(User { name: name.into() })
}

pub fn post(s: &mut Store, title: &str) -> Key<Post> {
    s.insert(Post {
        title: title.into(),
    })
}

pub fn comment(s: &mut Store, text: &str) -> Key<Comment> {
    s.insert(Comment { text: text.into() })
}

pub fn profile(s: &mut Store, bio: &str) -> Key<Profile> {
    s.insert(Profile { bio: bio.into() })
}

pub fn tag(s: &mut Store, label: &str) -> Key<Tag> {
    s.insert(Tag {
        label: label.into(),
    })
}

pub fn student(s: &mut Store, name: &str) -> Key<Student> {
    s.insert(Student { name: name.into() })
}

pub fn course(s: &mut Store, title: &str) -> Key<Course> {
    s.insert(Course {
        title: title.into(),
    })
}

pub fn employee(s: &mut Store, name: &str) -> Key<Employee> {
    s.insert(Employee { name: name.into() })
}

/// `n` posts titled `{prefix}0`, `{prefix}1`, …
pub fn posts(s: &mut Store, prefix: &str, n: usize) -> Vec<Key<Post>> {
    (0..n).map(|i| post(s, &format!("{prefix}{i}"))).collect()
}

/// The children of `parent`, collected.
pub fn kids<P: Entity, C: Entity>(s: &Store, rel: OneToMany<P, C>, parent: Key<P>) -> Vec<Key<C>> {
    s.children(rel, parent).collect()
}

/// The targets of `a`, collected.
pub fn targets<R: Relation>(s: &Store, rel: R, a: Key<R::A>) -> Vec<Key<R::B>> {
    s.targets(rel, a).collect()
}

/// The sources of `b`, collected.
pub fn sources<R: Relation>(s: &Store, rel: R, b: Key<R::B>) -> Vec<Key<R::A>> {
    s.sources(rel, b).collect()
}

/// Every piece of observable state of a world store, one fact a line: every entity of
/// every table with key and value in slot order, every collection in order from both ends
/// (through every reading call that shows it), every payload, every count.
pub fn dump(s: &Store, r: &Rels) -> String {
    let mut out = String::new();
    dump_table::<User>(&mut out, s, "users");
    dump_table::<Post>(&mut out, s, "posts");
    dump_table::<Comment>(&mut out, s, "comments");
    dump_table::<Profile>(&mut out, s, "profiles");
    dump_table::<Tag>(&mut out, s, "tags");
    dump_table::<Student>(&mut out, s, "students");
    dump_table::<Course>(&mut out, s, "courses");
    dump_table::<Employee>(&mut out, s, "employees");
    one_to_many(&mut out, s, "posts", r.posts);
    one_to_many(&mut out, s, "comments", r.comments);
    one_to_one(&mut out, s, "profile", r.profile);
    many_to_many(&mut out, s, "tags", r.tags);
    many_to_many(&mut out, s, "enrollments", r.enrollments);
    one_to_many(&mut out, s, "reports", r.reports);
    one_to_one(&mut out, s, "mentors", r.mentors);
    many_to_many(&mut out, s, "follows", r.follows);
    out
}

/// Writes every row of table `T` with its key, checking that every reading call agrees.
pub fn dump_table<T: Entity + Debug + PartialEq>(out: &mut String, s: &Store, name: &str) {
    let rows = s.rows::<T>();
    writeln!(out, "table {name}: len {} / {}", s.len::<T>(), rows.len()).unwrap();
    assert_eq!(rows.len(), s.len::<T>(), "{name}: rows and len disagree");
    assert_eq!(
        s.iter::<T>().count(),
        s.len::<T>(),
        "{name}: iter and len disagree"
    );
    for (k, v) in s.iter::<T>() {
        assert_eq!(rows.get(k), Some(v), "rows and store disagree");
        assert!(s.contains(k));
        writeln!(out, "  {k:?} = {v:?}").unwrap();
    }
    let keys: Vec<Key<T>> = s.keys::<T>().collect();
    let from_iter: Vec<Key<T>> = s.iter::<T>().map(|(k, _)| k).collect();
    assert_eq!(keys, from_iter, "keys and iter disagree");
}

/// Both ends through the generic calls, which every relation kind answers.
pub fn dump_ends<R: Relation>(out: &mut String, s: &Store, name: &str, rel: R) {
    writeln!(out, "relation {name}: {} links", s.link_count(rel)).unwrap();
    for a in s.keys::<R::A>() {
        let t = targets(s, rel, a);
        assert_eq!(
            t.len(),
            s.target_count(rel, a),
            "target_count of {a:?} in {name}"
        );
        assert_eq!(
            s.targets(rel, a).len(),
            t.len(),
            "targets is not exact-size"
        );
        if !t.is_empty() {
            writeln!(out, "  A {a:?} -> {t:?}").unwrap();
        }
        for &b in &t {
            assert!(s.linked(rel, a, b), "{a:?} lists {b:?} but linked says no");
        }
    }
    for b in s.keys::<R::B>() {
        let src = sources(s, rel, b);
        assert_eq!(
            src.len(),
            s.source_count(rel, b),
            "source_count of {b:?} in {name}"
        );
        if !src.is_empty() {
            writeln!(out, "  B {b:?} <- {src:?}").unwrap();
        }
    }
}

fn one_to_many<P: Entity + Debug, C: Entity + Debug>(
    out: &mut String,
    s: &Store,
    name: &str,
    rel: OneToMany<P, C>,
) {
    dump_ends(out, s, name, rel);
    for p in s.keys::<P>() {
        let c = kids(s, rel, p);
        assert_eq!(c, targets(s, rel, p), "children and targets disagree");
        assert_eq!(c.len(), s.child_count(rel, p));
        let mut back: Vec<Key<C>> = s.children(rel, p).rev().collect();
        back.reverse();
        assert_eq!(back, c, "children backwards disagree");
    }
    for c in s.keys::<C>() {
        let p = s.parent(rel, c);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), sources(s, rel, c));
        if let Some(p) = p {
            writeln!(out, "  parent of {c:?} = {p:?}").unwrap();
        }
    }
}

fn one_to_one<A: Entity + Debug, B: Entity + Debug>(
    out: &mut String,
    s: &Store,
    name: &str,
    rel: OneToOne<A, B>,
) {
    dump_ends(out, s, name, rel);
    for a in s.keys::<A>() {
        let p = s.partner(rel, a);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), targets(s, rel, a));
        if let Some(p) = p {
            writeln!(out, "  partner of {a:?} = {p:?}").unwrap();
        }
    }
    for b in s.keys::<B>() {
        let p = s.partner_of(rel, b);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), sources(s, rel, b));
    }
}

fn many_to_many<A: Entity + Debug, B: Entity + Debug, W: Entity + Debug + PartialEq>(
    out: &mut String,
    s: &Store,
    name: &str,
    rel: ManyToMany<A, B, W>,
) {
    dump_ends(out, s, name, rel);
    for a in s.keys::<A>() {
        let with: Vec<(Key<B>, &W)> = s.targets_with(rel, a).collect();
        assert_eq!(
            with.iter().map(|&(b, _)| b).collect::<Vec<_>>(),
            targets(s, rel, a)
        );
        for &(b, w) in &with {
            assert_eq!(s.payload(rel, a, b), Some(w), "payload of {a:?} -> {b:?}");
            writeln!(out, "  payload {a:?} -> {b:?} = {w:?}").unwrap();
        }
    }
    for b in s.keys::<B>() {
        let with: Vec<(Key<A>, &W)> = s.sources_with(rel, b).collect();
        assert_eq!(
            with.iter().map(|&(a, _)| a).collect::<Vec<_>>(),
            sources(s, rel, b)
        );
        for &(a, w) in &with {
            assert_eq!(s.payload(rel, a, b), Some(w), "payload of {a:?} -> {b:?}");
        }
    }
}

/// A small deterministic pseudo-random generator (xorshift), so that the model tests
/// need no seed handling and fail the same way every time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The message of the panic of `f`, which must panic.
pub fn panic_message(f: impl FnOnce()) -> String {
    let err =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("the call panics");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The changes of every batch of the change feed the cursor reads.
pub fn read_batches(s: &Store, cursor: &mut FeedCursor) -> Vec<ChangeBatch> {
    s.read_feed(cursor)
        .unwrap()
        .iter()
        .map(|b| b.batch().clone())
        .collect()
}
