//! Fuzz target: the input bytes are decoded into a sequence of store operations (inserts,
//! updates, removes, previews, links, unlinks, payloads, collection replacement, nested
//! transactions that commit or fail) over a schema with every relation kind and delete
//! rule. After every operation `check_integrity` must hold; a call that returns an error
//! (or `Ok(false)` / `Ok(None)`) and a failed transaction must leave the store exactly as
//! it was: same entities, values, collections in order, payloads, counts.
//!
//! Run: `cd fuzz && cargo fuzz run -s none ops -- -max_total_time=60`.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use relgraph::{
    DeleteRule, Key, ManyToMany, OneToMany, OneToOne, RawKey, Relation, Rules, Schema, Store,
};
use serde::{Deserialize, Serialize};

/// Aborts on any single allocation over 256 MiB. With `-s none`, libFuzzer's
/// `-malloc_limit_mb` is not enforced, and a runaway allocation would take the machine
/// down instead of being reported as a crash.
struct CappedAlloc;

const ALLOC_CAP: usize = 256 << 20;

fn too_big() -> ! {
    let _ = std::io::stderr().write_all(b"allocation over the 256 MiB cap\n");
    std::process::abort()
}

// SAFETY: every call is forwarded unchanged to `System`, after a size check.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big();
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            too_big();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_CAP {
            too_big();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User(u32);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Post(u32);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tag(u32);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Node(u32);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Badge(u32);

const USER: usize = 0;
const POST: usize = 1;
const TAG: usize = 2;
const NODE: usize = 3;
const BADGE: usize = 4;

#[derive(Clone, Copy)]
struct Handles {
    /// users.posts <-> posts.author: cascade
    authorship: OneToMany<User, Post>,
    /// users.badge <-> badges.holder: delete-orphan at A, restrict at B
    badge: OneToOne<User, Badge>,
    /// posts.tags <-> tags.tagged, u32 payload: delete-orphan at A
    tagging: ManyToMany<Post, Tag, u32>,
    /// nodes.kids <-> nodes.up, acyclic: cascade
    tree: OneToMany<Node, Node>,
    /// nodes.follows <-> nodes.followers, acyclic: delete-orphan at B
    follows: ManyToMany<Node, Node>,
    /// tags.pins <-> nodes.pinned_to: restrict at A, delete-orphan at B
    pins: OneToMany<Tag, Node>,
    /// users.friends <-> users.friend_of: cycles and self-links allowed, cascade at B
    friends: ManyToMany<User, User>,
}

fn schema() -> (Schema, Handles) {
    use DeleteRule::*;
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let tags = s.table::<Tag>("tags");
    let nodes = s.table::<Node>("nodes");
    let badges = s.table::<Badge>("badges");
    let h = Handles {
        authorship: s.one_to_many(users, "posts", posts, "author", Cascade),
        badge: s.one_to_one(
            users,
            "badge",
            badges,
            "holder",
            Rules::new().on_delete(DeleteOrphan).on_delete_b(Restrict),
        ),
        tagging: s.many_to_many_with(posts, "tags", tags, "tagged", DeleteOrphan),
        tree: s.one_to_many(
            nodes,
            "kids",
            nodes,
            "up",
            Rules::new().on_delete(Cascade).acyclic(),
        ),
        follows: s.many_to_many(
            nodes,
            "follows",
            nodes,
            "followers",
            Rules::new().on_delete_b(DeleteOrphan).acyclic(),
        ),
        pins: s.one_to_many(
            tags,
            "pins",
            nodes,
            "pinned_to",
            Rules::new().on_delete(Restrict).on_delete_b(DeleteOrphan),
        ),
        friends: s.many_to_many(
            users,
            "friends",
            users,
            "friend_of",
            Rules::new().on_delete_b(Cascade),
        ),
    };
    (s, h)
}

/// The rest of the input, read a byte at a time; reads past the end give `None`.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..8 {
            v = v << 8 | u64::from(self.byte()?);
        }
        Some(v)
    }
}

/// Operations per input, transactions included: keeps each run short.
const MAX_OPS: usize = 400;
const MAX_DEPTH: u32 = 3;
/// Keys issued in a table beyond which inserts are no longer batched.
const MAX_BATCHED: usize = 96;

/// Everything but the store: handles, issued keys, the operation budget.
struct Ctx {
    h: Handles,
    /// Every key ever issued, per table (stale ones included).
    keys: [Vec<RawKey>; 5],
    ops: usize,
}

/// A cheap fingerprint of everything observable: entities with values, every collection
/// of every live entity in order from both ends, payloads.
type Snapshot = Vec<u64>;

const MARK: u64 = u64::MAX;

fn links<R: Relation>(store: &Store, rel: R, out: &mut Snapshot) {
    for a in store.keys::<R::A>() {
        out.push(a.raw().to_bits());
        out.extend(store.targets(rel, a).map(|b| b.raw().to_bits()));
        out.push(MARK);
    }
    for b in store.keys::<R::B>() {
        out.push(b.raw().to_bits());
        out.extend(store.sources(rel, b).map(|a| a.raw().to_bits()));
        out.push(MARK);
    }
}

impl Ctx {
    fn snapshot(&self, s: &Store) -> Snapshot {
        let mut out = Vec::new();
        macro_rules! table {
            ($t:ty) => {
                for (k, v) in s.iter::<$t>() {
                    out.extend([k.raw().to_bits(), u64::from(v.0)]);
                }
                out.push(MARK);
            };
        }
        table!(User);
        table!(Post);
        table!(Tag);
        table!(Node);
        table!(Badge);
        let h = self.h;
        links(s, h.authorship, &mut out);
        links(s, h.badge, &mut out);
        links(s, h.tagging, &mut out);
        links(s, h.tree, &mut out);
        links(s, h.follows, &mut out);
        links(s, h.pins, &mut out);
        links(s, h.friends, &mut out);
        for p in s.keys::<Post>() {
            out.extend(s.targets_with(h.tagging, p).map(|(_, &w)| u64::from(w)));
        }
        out
    }

    /// Entity count per table, then link count per relation.
    fn counts(&self, s: &Store) -> [usize; 12] {
        let h = self.h;
        [
            s.len::<User>(),
            s.len::<Post>(),
            s.len::<Tag>(),
            s.len::<Node>(),
            s.len::<Badge>(),
            s.link_count(h.authorship),
            s.link_count(h.badge),
            s.link_count(h.tagging),
            s.link_count(h.tree),
            s.link_count(h.follows),
            s.link_count(h.pins),
            s.link_count(h.friends),
        ]
    }

    fn check(&self, s: &Store, what: &str) {
        if let Err(e) = s.check_integrity() {
            panic!("integrity violated after {what}: {e}");
        }
    }

    /// A key of `table`: one issued before (live or stale) chosen by the next byte, or on
    /// 0xff a key forged from the next eight bytes.
    fn pick<T>(&self, input: &mut Input<'_>, table: usize) -> Option<Key<T>> {
        let b = input.byte()?;
        let issued = &self.keys[table];
        let raw = if b == 0xff || issued.is_empty() {
            let bits = if b == 0xff { input.u64()? } else { 1 << 32 };
            RawKey::from_bits(bits).unwrap_or(RawKey::from_bits(1 << 32).expect("nonzero"))
        } else {
            issued[usize::from(b) % issued.len()]
        };
        Some(Key::from_raw(raw))
    }

    /// A replacement collection for `owner`, whose current one is `current`: picked keys
    /// (duplicates and stale keys possible), every live key of the table but `owner`
    /// rotated, or `current` thinned out (large drops make the store compact its lists).
    fn collection<T: relgraph::Entity>(
        &self,
        s: &Store,
        input: &mut Input<'_>,
        table: usize,
        owner: RawKey,
        current: Vec<Key<T>>,
    ) -> Option<Vec<Key<T>>> {
        let mode = input.byte()?;
        let k = usize::from(input.byte()?);
        Some(match mode % 4 {
            0 | 1 => {
                let n = mode / 4 % 16;
                (0..n)
                    .map(|_| self.pick(input, table))
                    .collect::<Option<_>>()?
            }
            2 => {
                let mut all: Vec<Key<T>> = s.keys::<T>().filter(|x| x.raw() != owner).collect();
                let len = all.len().max(1);
                all.rotate_left(k % len);
                all
            }
            _ => {
                let m = k % 4 + 2;
                let keep = k / 4 % m;
                current
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| i % m == keep)
                    .map(|(_, x)| x)
                    .collect()
            }
        })
    }

    /// Decodes and applies operations until the input ends or `count` are done.
    fn run(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        depth: u32,
        count: usize,
    ) -> Option<()> {
        for _ in 0..count {
            if self.ops >= MAX_OPS {
                return None;
            }
            self.ops += 1;
            let op = input.byte()?;
            let before = self.snapshot(s);
            let changed_nothing = self.step(s, op, input, depth)?;
            self.check(s, "an operation");
            if changed_nothing {
                assert_eq!(
                    before,
                    self.snapshot(s),
                    "a refused call (op {op}) changed the store"
                );
            }
        }
        Some(())
    }

    /// Applies one operation; returns whether it must have changed nothing.
    fn step(&mut self, s: &mut Store, op: u8, input: &mut Input<'_>, depth: u32) -> Option<bool> {
        let h = self.h;
        Some(match op % 16 {
            0 | 1 => {
                let table = usize::from(input.byte()?) % 5;
                let v = u32::from(input.byte()?);
                // op 1 inserts a batch, so that large collections are cheap to reach; tables
                // stay small enough to keep each run fast
                let batch = op % 16 == 1 && self.keys[table].len() < MAX_BATCHED;
                let n = if batch { v % 32 + 1 } else { 1 };
                for _ in 0..n {
                    let raw = match table {
                        USER => s.insert(User(v)).raw(),
                        POST => s.insert(Post(v)).raw(),
                        TAG => s.insert(Tag(v)).raw(),
                        NODE => s.insert(Node(v)).raw(),
                        _ => s.insert(Badge(v)).raw(),
                    };
                    self.keys[table].push(raw);
                }
                false
            }
            2 => {
                let table = usize::from(input.byte()?) % 5;
                let v = u32::from(input.byte()?);
                let r = match table {
                    USER => self.update::<User>(s, input, table, move |x| x.0 = v)?,
                    POST => self.update::<Post>(s, input, table, move |x| x.0 = v)?,
                    TAG => self.update::<Tag>(s, input, table, move |x| x.0 = v)?,
                    NODE => self.update::<Node>(s, input, table, move |x| x.0 = v)?,
                    _ => self.update::<Badge>(s, input, table, move |x| x.0 = v)?,
                };
                r.is_err()
            }
            3 | 4 => match usize::from(input.byte()?) % 5 {
                USER => self.remove::<User>(s, input, USER)?,
                POST => self.remove::<Post>(s, input, POST)?,
                TAG => self.remove::<Tag>(s, input, TAG)?,
                NODE => self.remove::<Node>(s, input, NODE)?,
                _ => self.remove::<Badge>(s, input, BADGE)?,
            },
            5 | 6 => {
                let rel = input.byte()? % 7;
                let r = match rel {
                    0 => self.link(s, input, h.authorship, USER, POST)?,
                    1 => self.link(s, input, h.badge, USER, BADGE)?,
                    2 => self.link(s, input, h.tagging, POST, TAG)?,
                    3 => self.link(s, input, h.tree, NODE, NODE)?,
                    4 => self.link(s, input, h.follows, NODE, NODE)?,
                    5 => self.link(s, input, h.pins, TAG, NODE)?,
                    _ => self.link(s, input, h.friends, USER, USER)?,
                };
                r.is_err()
            }
            7 | 8 => {
                let rel = input.byte()? % 7;
                let r = match rel {
                    0 => self.unlink(s, input, h.authorship, USER, POST)?,
                    1 => self.unlink(s, input, h.badge, USER, BADGE)?,
                    2 => self.unlink(s, input, h.tagging, POST, TAG)?,
                    3 => self.unlink(s, input, h.tree, NODE, NODE)?,
                    4 => self.unlink(s, input, h.follows, NODE, NODE)?,
                    5 => self.unlink(s, input, h.pins, TAG, NODE)?,
                    _ => self.unlink(s, input, h.friends, USER, USER)?,
                };
                r != Ok(true)
            }
            9 => {
                let (a, b) = (self.pick(input, POST)?, self.pick(input, TAG)?);
                let w = u32::from(input.byte()?);
                if w % 2 == 0 {
                    s.link_with(h.tagging, a, b, w).is_err()
                } else {
                    let r = s.update_payload(h.tagging, a, b, |p| *p = w);
                    !matches!(r, Ok(Some(())))
                }
            }
            10 => {
                let rel = input.byte()? % 3;
                let r = match rel {
                    0 => self.set_children(s, input, h.authorship, USER, POST)?,
                    1 => self.set_children(s, input, h.tree, NODE, NODE)?,
                    _ => self.set_children(s, input, h.pins, TAG, NODE)?,
                };
                r.is_err()
            }
            11 => {
                let rel = input.byte()? % 3;
                let r = match rel {
                    0 => self.set_targets(s, input, h.tagging, POST, TAG)?,
                    1 => self.set_targets(s, input, h.follows, NODE, NODE)?,
                    _ => self.set_targets(s, input, h.friends, USER, USER)?,
                };
                r.is_err()
            }
            12 => {
                let node = self.pick::<Node>(input, NODE)?;
                let n = s.len::<Node>();
                let up = s.ancestors(h.tree, node).take(n + 1).count();
                let down = s.descendants(h.tree, node).take(n + 1).count();
                let dfs = s.descendants_depth_first(h.tree, node).take(n + 1);
                assert!(
                    up <= n && down <= n && dfs.count() == down,
                    "a walk of an acyclic tree"
                );
                true
            }
            _ if depth < MAX_DEPTH => {
                let count = usize::from(input.byte()? % 8) + 1;
                let commit = input.byte()? % 2 == 0;
                let before = (self.snapshot(s), self.counts(s));
                let mut ended = false;
                let r = s.transaction(|s| {
                    ended = self.run(s, input, depth + 1, count).is_none();
                    assert!(s.in_transaction());
                    if commit {
                        Ok(())
                    } else {
                        Err(())
                    }
                });
                assert_eq!(r.is_ok(), commit);
                if !commit {
                    self.check(s, "a failed transaction");
                    assert_eq!(
                        before.1,
                        self.counts(s),
                        "counts after a failed transaction"
                    );
                    assert_eq!(
                        before.0,
                        self.snapshot(s),
                        "a failed transaction left changes"
                    );
                }
                if ended {
                    return None;
                }
                !commit
            }
            _ => true,
        })
    }

    fn update<T: relgraph::Entity + Clone>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        table: usize,
        f: impl FnOnce(&mut T),
    ) -> Option<Result<(), relgraph::StaleKey>> {
        let k = self.pick::<T>(input, table)?;
        Some(s.update(k, f))
    }

    fn remove<T: relgraph::Entity>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        table: usize,
    ) -> Option<bool> {
        let k = self.pick::<T>(input, table)?;
        let preview = s.preview_remove(k);
        let r = s.remove(k);
        match (&preview, &r) {
            (Ok(p), Ok(())) if p.allowed() => {
                for gone in &p.removed {
                    assert!(!contains_any(s, gone.table, gone.key), "{gone} survived");
                }
            }
            (Ok(p), Err(relgraph::RemoveError::Restricted { .. })) if !p.allowed() => {}
            (Err(_), Err(relgraph::RemoveError::Stale(_))) => {}
            _ => panic!("preview {preview:?} disagrees with remove {r:?}"),
        }
        Some(r.is_err())
    }

    fn link<R: relgraph::Linkable>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        rel: R,
        ta: usize,
        tb: usize,
    ) -> Option<Result<(), relgraph::LinkError>> {
        let (a, b) = (self.pick(input, ta)?, self.pick(input, tb)?);
        Some(s.link(rel, a, b))
    }

    fn unlink<R: Relation>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        rel: R,
        ta: usize,
        tb: usize,
    ) -> Option<Result<bool, relgraph::LinkError>> {
        let (a, b) = (self.pick(input, ta)?, self.pick(input, tb)?);
        Some(s.unlink(rel, a, b))
    }

    fn set_children<P: relgraph::Entity, C: relgraph::Entity>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        rel: OneToMany<P, C>,
        tp: usize,
        tc: usize,
    ) -> Option<Result<(), relgraph::LinkError>> {
        let p = self.pick(input, tp)?;
        let current = s.children(rel, p).collect();
        let children = self.collection(s, input, tc, p.raw(), current)?;
        Some(s.set_children(rel, p, &children))
    }

    fn set_targets<A: relgraph::Entity, B: relgraph::Entity, W: relgraph::Entity + Default>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        rel: ManyToMany<A, B, W>,
        ta: usize,
        tb: usize,
    ) -> Option<Result<(), relgraph::LinkError>> {
        let a = self.pick(input, ta)?;
        let current = s.targets(rel, a).collect();
        let targets = self.collection(s, input, tb, a.raw(), current)?;
        Some(s.set_targets(rel, a, &targets))
    }
}

fn contains_any(s: &Store, table: &str, key: RawKey) -> bool {
    match table {
        "users" => s.contains(Key::<User>::from_raw(key)),
        "posts" => s.contains(Key::<Post>::from_raw(key)),
        "tags" => s.contains(Key::<Tag>::from_raw(key)),
        "nodes" => s.contains(Key::<Node>::from_raw(key)),
        _ => s.contains(Key::<Badge>::from_raw(key)),
    }
}

fuzz_target!(|data: &[u8]| {
    let (schema, h) = schema();
    let mut store = Store::new(schema);
    let mut ctx = Ctx {
        h,
        keys: Default::default(),
        ops: 0,
    };
    let mut input = Input(data);
    let _ = ctx.run(&mut store, &mut input, 0, usize::MAX);
    ctx.check(&store, "the last operation");
});
