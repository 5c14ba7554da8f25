//! Fuzz target: the input bytes are decoded into a sequence of store operations (inserts,
//! updates, removes, previews, links, unlinks, payloads, collection replacement, kind
//! inserts and changes, nested transactions that commit or fail) over a schema with every
//! relation kind and delete rule, a polymorphic base with three kinds (relations on the
//! base, between two kinds, from a kind to the base) and a polymorphic parent end. After
//! every operation `check_integrity` must hold, and the reads of kinds and polymorphic
//! parents must agree with each other; a call that returns an error (or `Ok(false)` /
//! `Ok(None)`) and a failed transaction must leave the store exactly as it was: same
//! entities, values, kinds, collections in order, payloads, counts.
//!
//! Op bytes 218 and 238 save and load: the store is saved with `to_snapshot`, loaded with
//! `Store::from_snapshot(store.schema().clone(), ..)`, must equal the original in all of the
//! above, passes `snapshot::verify`, re-saves to the same bytes, and replaces the original
//! (later operations run on the loaded store). Inside a transaction, `to_snapshot` must
//! refuse. Every input ends with such a save and load.
//!
//! User code panics on demand (`common/user_code.rs`). Op bytes 118, 138 and 158 run the
//! next operation with the payloads' `Default` panicking after a few calls (`tagging` and
//! `follows` have such payloads): if it panics, the store must be exactly as before the
//! operation. Op bytes 178 and 198 run the next operation (a transaction too: its calls, nested
//! rollbacks, commit or rollback) with the `Drop` of every other row and payload
//! panicking: a call must panic exactly when such a `Drop` did, and its change must be
//! complete. Every row and payload is tracked from creation to drop: outside transactions
//! the values alive are exactly those the store holds. If a `Drop` panicked, the input is
//! run again with no `Drop` panicking, and the store must go through the same states
//! before every operation of both runs.
//!
//! Run: `cd fuzz && cargo fuzz run -s none ops -- -max_total_time=60`.

#![no_main]

#[path = "../common/capped_alloc.rs"]
mod capped_alloc;
#[path = "../common/user_code.rs"]
mod user_code;

use libfuzzer_sys::fuzz_target;
use relgraph::snapshot::{self, SnapshotError};
use relgraph::{
    DeleteRule, Entity, Key, Kind, KindError, ManyToMany, OneToMany, OneToOne, PolyParent, RawKey,
    Relation, Rules, Schema, Store,
};
use serde::{Deserialize, Serialize};
use user_code::{Blast, Bombs, Defaults, Fails, Life};

/// The value of an entity, whatever its type.
trait Value: Entity + Clone {
    fn new(v: u32) -> Self;
    fn get(&self) -> u32;
    /// Changes the value in place (nothing is dropped).
    fn set(&mut self, v: u32);
    fn serial(&self) -> u64;
}

/// Row types: a number and a tracked life.
macro_rules! rows {
    ($($t:ident),*) => {$(
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        struct $t(u32, #[serde(skip)] Life);
        impl Value for $t {
            fn new(v: u32) -> Self {
                $t(v, Life::new())
            }
            fn get(&self) -> u32 {
                self.0
            }
            fn set(&mut self, v: u32) {
                self.0 = v;
            }
            fn serial(&self) -> u64 {
                self.1 .0
            }
        }
    )*};
}
// `Media` is the polymorphic base; its kinds are `Photo`, `Video` and `Note`
rows!(User, Post, Tag, Node, Badge, Comment, Media, Photo, Video, Note);

/// The payload of `tagging`: a number; its `Default` may panic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Grade {
    value: u32,
    #[serde(skip)]
    life: Life,
}

impl Grade {
    fn new(value: u32) -> Grade {
        Grade {
            value,
            life: Life::new(),
        }
    }
}

impl Default for Grade {
    fn default() -> Grade {
        user_code::count_default();
        Grade::new(0)
    }
}

/// The payload of `follows`: nothing but its life; its `Default` may panic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Mark {
    #[serde(skip)]
    life: Life,
}

impl Default for Mark {
    fn default() -> Mark {
        user_code::count_default();
        Mark { life: Life::new() }
    }
}

const USER: usize = 0;
const POST: usize = 1;
const TAG: usize = 2;
const NODE: usize = 3;
const BADGE: usize = 4;
const COMMENT: usize = 5;
/// Every key of the polymorphic base, of any kind.
const MEDIA: usize = 6;
/// The keys ever issued to (or changed into) a kind: kind-typed picks draw from these
/// mostly, and from every base key sometimes (a row of another kind, stale for the kind).
const PHOTO: usize = 7;
const VIDEO: usize = 8;
const NOTE: usize = 9;
/// Tables in which `insert` picks; then the key lists of the kinds.
const TABLES: usize = 7;
const KEY_LISTS: usize = 10;

#[derive(Clone, Copy)]
struct Handles {
    /// users.posts <-> posts.author: cascade
    authorship: OneToMany<User, Post>,
    /// users.badge <-> badges.holder: delete-orphan at A, restrict at B
    badge: OneToOne<User, Badge>,
    /// posts.tags <-> tags.tagged, u32 payload: delete-orphan at A
    tagging: ManyToMany<Post, Tag, Grade>,
    /// nodes.kids <-> nodes.up, acyclic: cascade
    tree: OneToMany<Node, Node>,
    /// nodes.follows <-> nodes.followers, acyclic: delete-orphan at B
    follows: ManyToMany<Node, Node, Mark>,
    /// tags.pins <-> nodes.pinned_to: restrict at A, delete-orphan at B
    pins: OneToMany<Tag, Node>,
    /// users.friends <-> users.friend_of: cycles and self-links allowed, cascade at B
    friends: ManyToMany<User, User>,
    /// users.media <-> media.owner, on the base: cascade
    owns: OneToMany<User, Media>,
    /// video.thumb <-> photo.thumb_of, between two kinds: delete-orphan at A, restrict at B
    thumb: OneToOne<Video, Photo>,
    /// posts.comments <-> comments.target, polymorphic: cascade
    on_posts: OneToMany<Post, Comment>,
    /// photo.comments <-> comments.target, polymorphic, on a kind: delete-orphan at B
    on_photos: OneToMany<Photo, Comment>,
    /// note.refs <-> media.cited_by, from a kind to its own base (a note may cite itself):
    /// cascade at B
    refs: ManyToMany<Note, Media>,
    target: PolyParent<Comment>,
    photo: Kind<Media, Photo>,
    video: Kind<Media, Video>,
    note: Kind<Media, Note>,
}

fn schema() -> (Schema, Handles) {
    use DeleteRule::*;
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let tags = s.table::<Tag>("tags");
    let nodes = s.table::<Node>("nodes");
    let badges = s.table::<Badge>("badges");
    let comments = s.table::<Comment>("comments");
    let media = s.table::<Media>("media");
    let photo = s.kind::<Media, Photo>(media, "photo");
    let video = s.kind::<Media, Video>(media, "video");
    let note = s.kind::<Media, Note>(media, "note");
    let target = s.poly_parent(comments, "target");
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
        follows: s.many_to_many_with(
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
        owns: s.one_to_many(users, "media", media, "owner", Cascade),
        thumb: s.one_to_one(
            video,
            "thumb",
            photo,
            "thumb_of",
            Rules::new().on_delete(DeleteOrphan).on_delete_b(Restrict),
        ),
        on_posts: s.one_to_many_poly(posts, "comments", target, Cascade),
        on_photos: s.one_to_many_poly(
            photo,
            "comments",
            target,
            Rules::new().on_delete_b(DeleteOrphan),
        ),
        refs: s.many_to_many(
            note,
            "refs",
            media,
            "cited_by",
            Rules::new().on_delete_b(Cascade),
        ),
        target,
        photo,
        video,
        note,
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

/// Op bytes that save the store and replace it with the loaded snapshot.
const SAVE_LOAD: [u8; 2] = [218, 238];
/// Op bytes that run the next operation with payload `Default`s that panic.
const FAILING_DEFAULT: [u8; 3] = [118, 138, 158];
/// Op bytes that run the next operation with `Drop`s that panic.
const BOMBS: [u8; 2] = [178, 198];

/// Operations per input, transactions included: keeps each run short.
const MAX_OPS: usize = 400;
const MAX_DEPTH: u32 = 3;
/// Keys issued in a table beyond which inserts are no longer batched.
const MAX_BATCHED: usize = 96;

/// Everything but the store: handles, issued keys, the operation budget.
struct Ctx {
    h: Handles,
    /// Every key ever issued, per table (stale ones included).
    keys: [Vec<RawKey>; KEY_LISTS],
    ops: usize,
    /// Whether `Drop`s panic on the op bytes that ask for it.
    bombs: bool,
    /// A hash of the store's observable state before every operation.
    trace: Vec<u64>,
}

/// A cheap fingerprint of everything observable: entities with values in listing order
/// (a kind's order too), every collection of every live entity in order from both ends,
/// payloads.
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

fn rows<T: Value>(store: &Store, out: &mut Snapshot) {
    for (k, v) in store.iter::<T>() {
        out.extend([k.raw().to_bits(), u64::from(v.get())]);
    }
    out.push(MARK);
}

impl Ctx {
    fn snapshot(&self, s: &Store) -> Snapshot {
        let mut out = Vec::new();
        rows::<User>(s, &mut out);
        rows::<Post>(s, &mut out);
        rows::<Tag>(s, &mut out);
        rows::<Node>(s, &mut out);
        rows::<Badge>(s, &mut out);
        rows::<Comment>(s, &mut out);
        rows::<Media>(s, &mut out);
        rows::<Photo>(s, &mut out);
        rows::<Video>(s, &mut out);
        rows::<Note>(s, &mut out);
        let h = self.h;
        links(s, h.authorship, &mut out);
        links(s, h.badge, &mut out);
        links(s, h.tagging, &mut out);
        links(s, h.tree, &mut out);
        links(s, h.follows, &mut out);
        links(s, h.pins, &mut out);
        links(s, h.friends, &mut out);
        links(s, h.owns, &mut out);
        links(s, h.thumb, &mut out);
        links(s, h.on_posts, &mut out);
        links(s, h.on_photos, &mut out);
        links(s, h.refs, &mut out);
        for p in s.keys::<Post>() {
            out.extend(
                s.targets_with(h.tagging, p)
                    .map(|(_, w)| u64::from(w.value)),
            );
        }
        out
    }

    /// Entity count per table and kind, then link count per relation.
    fn counts(&self, s: &Store) -> [usize; 22] {
        let h = self.h;
        [
            s.len::<User>(),
            s.len::<Post>(),
            s.len::<Tag>(),
            s.len::<Node>(),
            s.len::<Badge>(),
            s.len::<Comment>(),
            s.len::<Media>(),
            s.len::<Photo>(),
            s.len::<Video>(),
            s.len::<Note>(),
            s.link_count(h.authorship),
            s.link_count(h.badge),
            s.link_count(h.tagging),
            s.link_count(h.tree),
            s.link_count(h.follows),
            s.link_count(h.pins),
            s.link_count(h.friends),
            s.link_count(h.owns),
            s.link_count(h.thumb),
            s.link_count(h.on_posts),
            s.link_count(h.on_photos),
            s.link_count(h.refs),
        ]
    }

    fn check(&self, s: &Store, what: &str) {
        if let Err(e) = s.check_integrity() {
            panic!("integrity violated after {what}: {e}");
        }
        self.check_reads(s, what);
    }

    /// The public reads of kinds and polymorphic parents agree with each other: every base
    /// row is of exactly one kind (by `downcast`, `get_kind`, the kind's rows and
    /// `kind_name`), the kinds' counts add up to the base's, and `poly_parent` names the
    /// one parent a comment has in either relation of its polymorphic end.
    fn check_reads(&self, s: &Store, what: &str) {
        let h = self.h;
        let by_kind = [s.len::<Photo>(), s.len::<Video>(), s.len::<Note>()];
        assert_eq!(
            s.len::<Media>(),
            by_kind.iter().sum::<usize>(),
            "kinds' counts after {what}"
        );
        assert_eq!(
            s.iter::<Photo>().count(),
            by_kind[0],
            "photo rows after {what}"
        );
        assert_eq!(
            s.iter::<Video>().count(),
            by_kind[1],
            "video rows after {what}"
        );
        assert_eq!(
            s.iter::<Note>().count(),
            by_kind[2],
            "note rows after {what}"
        );
        for m in s.keys::<Media>() {
            let of = [
                kind_of(s, h.photo, m, "photo"),
                kind_of(s, h.video, m, "video"),
                kind_of(s, h.note, m, "note"),
            ];
            let mut tags = of.iter().flatten();
            let tag = tags.next().copied();
            assert!(
                tags.next().is_none() && tag.is_some() && s.kind_name(m) == tag,
                "{m:?} has kinds {of:?} but kind_name {:?} after {what}",
                s.kind_name(m)
            );
        }
        for c in s.keys::<Comment>() {
            let want = match (s.parent(h.on_posts, c), s.parent(h.on_photos, c)) {
                (None, None) => None,
                (Some(p), None) => Some(("posts", p.raw())),
                (None, Some(p)) => Some(("photo", p.raw())),
                (Some(_), Some(_)) => panic!("{c:?} has two targets after {what}"),
            };
            let got = s.poly_parent(h.target, c).map(|k| (k.table, k.key));
            assert_eq!(got, want, "target of {c:?} after {what}");
        }
    }

    /// A key of `table`: one issued before (live or stale) chosen by the next byte, or on
    /// 0xff a key forged from the next eight bytes. For a kind, on a byte under 0x30 a key
    /// of any kind.
    fn pick<T>(&self, input: &mut Input<'_>, table: usize) -> Option<Key<T>> {
        let b = input.byte()?;
        let table = if table >= PHOTO && b < 0x30 {
            MEDIA
        } else {
            table
        };
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
    fn collection<T: Entity>(
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
            self.trace.push(hash(&before));
            // with `Drop`s armed (a transaction run by a bombs op), a call that panics from
            // a `Drop` has made its change (or its rollback): the transaction goes on
            let changed_nothing = match user_code::armed() {
                false => self.step(s, op, input, depth)?,
                true => match user_code::catch::<Blast, _>(|| self.step(s, op, input, depth)) {
                    Ok(r) => r?,
                    Err(()) => false,
                },
            };
            self.check(s, "an operation");
            assert_eq!(
                s.in_transaction(),
                depth > 0,
                "transaction depth after op {op}"
            );
            if depth == 0 {
                self.check_lives(s, "an operation");
            }
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

    /// Every tracked value alive is a row or payload `s` holds (outside a transaction).
    fn check_lives(&self, s: &Store, what: &str) {
        let mut held = Vec::new();
        serials::<User>(s, &mut held);
        serials::<Post>(s, &mut held);
        serials::<Tag>(s, &mut held);
        serials::<Node>(s, &mut held);
        serials::<Badge>(s, &mut held);
        serials::<Comment>(s, &mut held);
        serials::<Media>(s, &mut held);
        serials::<Photo>(s, &mut held);
        serials::<Video>(s, &mut held);
        serials::<Note>(s, &mut held);
        for p in s.keys::<Post>() {
            held.extend(s.targets_with(self.h.tagging, p).map(|(_, w)| w.life.0));
        }
        for n in s.keys::<Node>() {
            held.extend(s.targets_with(self.h.follows, n).map(|(_, w)| w.life.0));
        }
        user_code::check_lives(held, what);
    }

    /// Applies one operation; returns whether it must have changed nothing.
    fn step(&mut self, s: &mut Store, op: u8, input: &mut Input<'_>, depth: u32) -> Option<bool> {
        let h = self.h;
        // seven of the twelve bytes of the third transaction code (op % 20 == 18), so that
        // the inputs saved before these steps existed mostly keep their meaning
        if FAILING_DEFAULT.contains(&op) {
            let n = u32::from(input.byte()? % 3);
            let next = input.byte()?;
            let before = (self.snapshot(s), self.counts(s));
            let r = {
                let _fails = Defaults::fail_after(n);
                user_code::catch::<Fails, _>(|| self.step(s, next, input, depth))
            };
            return match r {
                Ok(r) => r,
                Err(()) => {
                    self.check(s, "a panicking Default");
                    assert_eq!(s.in_transaction(), depth > 0, "a panicking Default");
                    assert_eq!(before.1, self.counts(s), "counts after a panicking Default");
                    assert_eq!(
                        before.0,
                        self.snapshot(s),
                        "a panicking Default changed the store"
                    );
                    Some(true)
                }
            };
        }
        if BOMBS.contains(&op) {
            let next = input.byte()?;
            if !self.bombs {
                return self.step(s, next, input, depth);
            }
            let _armed = Bombs::arm();
            return match user_code::catch::<Blast, _>(|| self.step(s, next, input, depth)) {
                Ok(r) => r,
                Err(()) => Some(false),
            };
        }
        if SAVE_LOAD.contains(&op) {
            if depth > 0 {
                let r = s.to_snapshot();
                assert!(
                    matches!(r, Err(SnapshotError::InTransaction)),
                    "a snapshot inside a transaction gave {r:?}"
                );
            } else {
                // (dropping a whole store is not a call: its `Drop`s do not panic)
                let _calm = Bombs::disarm();
                *s = self.save_load(s, "a save and load");
            }
            return Some(true);
        }
        Some(match op % 20 {
            0 | 1 | 19 => {
                let table = usize::from(input.byte()?) % TABLES;
                let v = u32::from(input.byte()?);
                // a row of the base gets a kind from the next byte
                let kind = if table == MEDIA { input.byte()? % 3 } else { 0 };
                let kind_list = PHOTO + usize::from(kind);
                // op 1 inserts a batch, so that large collections are cheap to reach; tables
                // stay small enough to keep each run fast
                let batch = op % 20 == 1 && self.keys[table].len() < MAX_BATCHED;
                let n = if batch { v % 32 + 1 } else { 1 };
                for _ in 0..n {
                    let raw = match table {
                        USER => s.insert(User::new(v)).raw(),
                        POST => s.insert(Post::new(v)).raw(),
                        TAG => s.insert(Tag::new(v)).raw(),
                        NODE => s.insert(Node::new(v)).raw(),
                        BADGE => s.insert(Badge::new(v)).raw(),
                        COMMENT => s.insert(Comment::new(v)).raw(),
                        _ => match kind {
                            0 => insert_kind(s, h.photo, v),
                            1 => insert_kind(s, h.video, v),
                            _ => insert_kind(s, h.note, v),
                        },
                    };
                    self.keys[table].push(raw);
                    if table == MEDIA {
                        self.keys[kind_list].push(raw);
                    }
                }
                false
            }
            2 => {
                let table = input.byte()? % 10;
                let v = u32::from(input.byte()?);
                let r = match table {
                    0 => self.update::<User>(s, input, USER, v)?,
                    1 => self.update::<Post>(s, input, POST, v)?,
                    2 => self.update::<Tag>(s, input, TAG, v)?,
                    3 => self.update::<Node>(s, input, NODE, v)?,
                    4 => self.update::<Badge>(s, input, BADGE, v)?,
                    5 => self.update::<Comment>(s, input, COMMENT, v)?,
                    6 => self.update::<Media>(s, input, MEDIA, v)?,
                    // through a key of a kind: stale unless the row is of that kind
                    7 => self.update::<Photo>(s, input, PHOTO, v)?,
                    8 => self.update::<Video>(s, input, VIDEO, v)?,
                    _ => self.update::<Note>(s, input, NOTE, v)?,
                };
                r.is_err()
            }
            3 | 4 => match input.byte()? % 10 {
                0 => self.remove::<User>(s, input, USER)?,
                1 => self.remove::<Post>(s, input, POST)?,
                2 => self.remove::<Tag>(s, input, TAG)?,
                3 => self.remove::<Node>(s, input, NODE)?,
                4 => self.remove::<Badge>(s, input, BADGE)?,
                5 => self.remove::<Comment>(s, input, COMMENT)?,
                6 => self.remove::<Media>(s, input, MEDIA)?,
                7 => self.remove::<Photo>(s, input, PHOTO)?,
                8 => self.remove::<Video>(s, input, VIDEO)?,
                _ => self.remove::<Note>(s, input, NOTE)?,
            },
            5..=7 => {
                let rel = input.byte()? % 12;
                let r = match rel {
                    0 => self.link(s, input, h.authorship, USER, POST)?,
                    1 => self.link(s, input, h.badge, USER, BADGE)?,
                    2 => self.link(s, input, h.tagging, POST, TAG)?,
                    3 => self.link(s, input, h.tree, NODE, NODE)?,
                    4 => self.link(s, input, h.follows, NODE, NODE)?,
                    5 => self.link(s, input, h.pins, TAG, NODE)?,
                    6 => self.link(s, input, h.friends, USER, USER)?,
                    7 => self.link(s, input, h.owns, USER, MEDIA)?,
                    8 => self.link(s, input, h.thumb, VIDEO, PHOTO)?,
                    9 => self.link(s, input, h.on_posts, POST, COMMENT)?,
                    10 => self.link(s, input, h.on_photos, PHOTO, COMMENT)?,
                    _ => self.link(s, input, h.refs, NOTE, MEDIA)?,
                };
                r.is_err()
            }
            8 | 9 => {
                let rel = input.byte()? % 12;
                let r = match rel {
                    0 => self.unlink(s, input, h.authorship, USER, POST)?,
                    1 => self.unlink(s, input, h.badge, USER, BADGE)?,
                    2 => self.unlink(s, input, h.tagging, POST, TAG)?,
                    3 => self.unlink(s, input, h.tree, NODE, NODE)?,
                    4 => self.unlink(s, input, h.follows, NODE, NODE)?,
                    5 => self.unlink(s, input, h.pins, TAG, NODE)?,
                    6 => self.unlink(s, input, h.friends, USER, USER)?,
                    7 => self.unlink(s, input, h.owns, USER, MEDIA)?,
                    8 => self.unlink(s, input, h.thumb, VIDEO, PHOTO)?,
                    9 => self.unlink(s, input, h.on_posts, POST, COMMENT)?,
                    10 => self.unlink(s, input, h.on_photos, PHOTO, COMMENT)?,
                    _ => self.unlink(s, input, h.refs, NOTE, MEDIA)?,
                };
                r != Ok(true)
            }
            10 => {
                let (a, b) = (self.pick(input, POST)?, self.pick(input, TAG)?);
                let w = u32::from(input.byte()?);
                if w % 2 == 0 {
                    s.link_with(h.tagging, a, b, Grade::new(w)).is_err()
                } else {
                    let r = s.update_payload(h.tagging, a, b, |p| p.value = w);
                    !matches!(r, Ok(Some(())))
                }
            }
            11 => {
                let rel = input.byte()? % 6;
                let r = match rel {
                    0 => self.set_children(s, input, h.authorship, USER, POST)?,
                    1 => self.set_children(s, input, h.tree, NODE, NODE)?,
                    2 => self.set_children(s, input, h.pins, TAG, NODE)?,
                    3 => self.set_children(s, input, h.owns, USER, MEDIA)?,
                    4 => self.set_children(s, input, h.on_posts, POST, COMMENT)?,
                    _ => self.set_children(s, input, h.on_photos, PHOTO, COMMENT)?,
                };
                r.is_err()
            }
            12 => {
                let rel = input.byte()? % 4;
                let r = match rel {
                    0 => self.set_targets(s, input, h.tagging, POST, TAG)?,
                    1 => self.set_targets(s, input, h.follows, NODE, NODE)?,
                    2 => self.set_targets(s, input, h.friends, USER, USER)?,
                    _ => self.set_targets(s, input, h.refs, NOTE, MEDIA)?,
                };
                r.is_err()
            }
            13 => {
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
            14 | 15 => {
                let key = self.pick::<Media>(input, MEDIA)?;
                let v = u32::from(input.byte()?);
                let to = v % 3;
                let unchanged = match to {
                    0 => change_kind(s, key, h.photo, v),
                    1 => change_kind(s, key, h.video, v),
                    _ => change_kind(s, key, h.note, v),
                };
                if !unchanged {
                    self.keys[PHOTO + to as usize].push(key.raw());
                }
                unchanged
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

    /// Saves `s`, loads the snapshot into a store of the same schema, and checks that the
    /// loaded store equals `s` in everything observable and re-saves to the same bytes.
    fn save_load(&self, s: &Store, what: &str) -> Store {
        let bytes = match s.to_snapshot() {
            Ok(b) => b,
            Err(e) => panic!("saving failed before {what}: {e}"),
        };
        let loaded = match Store::from_snapshot(s.schema().clone(), &bytes) {
            Ok(l) => l,
            Err(e) => panic!("a saved snapshot failed to load in {what}: {e}"),
        };
        self.check(&loaded, what);
        assert_eq!(self.counts(s), self.counts(&loaded), "counts after {what}");
        assert_eq!(
            self.snapshot(s),
            self.snapshot(&loaded),
            "the loaded store differs from the saved one in {what}"
        );
        if let Err(e) = snapshot::verify(&bytes) {
            panic!("verify refused a saved snapshot in {what}: {e}");
        }
        let again = loaded.to_snapshot().expect("a loaded store saves");
        assert!(
            again == bytes,
            "re-saving a loaded store changed the bytes in {what}"
        );
        loaded
    }

    fn update<T: Value>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        table: usize,
        v: u32,
    ) -> Option<Result<(), relgraph::StaleKey>> {
        let k = self.pick::<T>(input, table)?;
        Some(s.update(k, |x| x.set(v)))
    }

    fn remove<T: Entity>(
        &mut self,
        s: &mut Store,
        input: &mut Input<'_>,
        table: usize,
    ) -> Option<bool> {
        let k = self.pick::<T>(input, table)?;
        let preview = s.preview_remove(k);
        // a `Drop` that panics: the remove has taken effect
        let r = completed(|| s.remove(k), Ok(()));
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

    fn set_children<P: Entity, C: Entity>(
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

    fn set_targets<A: Entity, B: Entity, W: Entity + Default>(
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

/// Runs a call; if `Drop`s are armed and one makes the call panic, returns `done`, the
/// call's result on success (the call's change is complete).
fn completed<R>(f: impl FnOnce() -> R, done: R) -> R {
    match user_code::armed() {
        false => f(),
        true => user_code::catch::<Blast, _>(f).unwrap_or(done),
    }
}

fn serials<T: Value>(s: &Store, out: &mut Vec<u64>) {
    out.extend(s.iter::<T>().map(|(_, v)| v.serial()));
}

fn hash(snapshot: &Snapshot) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    snapshot.hash(&mut h);
    h.finish()
}

fn contains_any(s: &Store, table: &str, key: RawKey) -> bool {
    match table {
        "users" => s.contains(Key::<User>::from_raw(key)),
        "posts" => s.contains(Key::<Post>::from_raw(key)),
        "tags" => s.contains(Key::<Tag>::from_raw(key)),
        "nodes" => s.contains(Key::<Node>::from_raw(key)),
        "badges" => s.contains(Key::<Badge>::from_raw(key)),
        "comments" => s.contains(Key::<Comment>::from_raw(key)),
        "media" => s.contains(Key::<Media>::from_raw(key)),
        "photo" => s.contains(Key::<Photo>::from_raw(key)),
        "video" => s.contains(Key::<Video>::from_raw(key)),
        "note" => s.contains(Key::<Note>::from_raw(key)),
        other => panic!("a preview named an unknown table `{other}`"),
    }
}

/// Inserts a row of a kind; its kind key and base key hold the same bits.
fn insert_kind<K: Value>(s: &mut Store, kind: Kind<Media, K>, v: u32) -> RawKey {
    let k = s.insert_kind(kind, Media::new(v), K::new(v.wrapping_add(1)));
    let base = kind.upcast(k);
    assert_eq!(base.raw(), k.raw(), "upcast keeps the key");
    assert_eq!(s.downcast(kind, base), Some(k), "a new row is of its kind");
    k.raw()
}

/// The tag of `kind` if `m` is of that kind, checking that the kind's reads agree.
fn kind_of<K: Value>(
    s: &Store,
    kind: Kind<Media, K>,
    m: Key<Media>,
    tag: &'static str,
) -> Option<&'static str> {
    let k = s.downcast(kind, m);
    let by_kind = k.and_then(|k| s.get(k)).map(Value::get);
    assert_eq!(
        s.get_kind(kind, m).map(Value::get),
        by_kind,
        "get_kind of {m:?}"
    );
    assert_eq!(
        k.is_some(),
        by_kind.is_some(),
        "a downcast key reads its row"
    );
    k.map(|_| tag)
}

/// `change_kind`, checked; returns whether it must have changed nothing.
fn change_kind<K: Value>(s: &mut Store, key: Key<Media>, to: Kind<Media, K>, v: u32) -> bool {
    let live = s.contains(key);
    let kind = s.kind_name(key);
    let value = s.get(key).map(Value::get);
    let r = match user_code::armed() {
        false => s.change_kind(key, to, K::new(v)),
        true => match user_code::catch::<Blast, _>(|| s.change_kind(key, to, K::new(v))) {
            Ok(r) => r,
            // a `Drop` panicked: of the old kind's row once the change took effect, or of
            // the new value, refused
            Err(()) => {
                let k = Key::from_raw(key.raw());
                if live && s.get(k).map(Value::get) == Some(v) {
                    Ok(k)
                } else {
                    assert_eq!(
                        s.kind_name(key),
                        kind,
                        "a refused change_kind changed the kind"
                    );
                    assert_eq!(s.get(key).map(Value::get), value, "a refused change_kind");
                    return true;
                }
            }
        },
    };
    match r {
        Ok(k) => {
            assert!(live && k.raw() == key.raw(), "change_kind keeps the key");
            assert_eq!(
                s.get(key).map(Value::get),
                value,
                "change_kind keeps base fields"
            );
            assert_eq!(s.get(k).map(Value::get), Some(v), "the new kind's value");
            false
        }
        Err(KindError::Stale(e)) => {
            assert!(!live && kind.is_none() && e.key.key == key.raw(), "{e}");
            true
        }
        Err(KindError::Linked { key: named, .. }) => {
            assert!(live && named.key == key.raw() && Some(named.table) == kind);
            assert_ne!(s.downcast(to, key), Some(Key::from_raw(key.raw())));
            true
        }
        Err(e) => panic!("an unexpected error from change_kind: {e:?}"),
    }
}

/// Runs the whole input on a new store; returns the context and the store's final state.
fn run_input(data: &[u8], bombs: bool) -> (Ctx, Snapshot) {
    user_code::reset();
    let (schema, h) = schema();
    let mut store = Store::new(schema);
    let mut ctx = Ctx {
        h,
        keys: Default::default(),
        ops: 0,
        bombs,
        trace: Vec::new(),
    };
    let mut input = Input(data);
    let _ = ctx.run(&mut store, &mut input, 0, usize::MAX);
    ctx.check(&store, "the last operation");
    assert!(!store.in_transaction(), "a transaction is left open");
    ctx.check_lives(&store, "the last operation");
    let loaded = ctx.save_load(&store, "the final save and load");
    drop(store);
    ctx.check_lives(&loaded, "the final save and load");
    let last = ctx.snapshot(&loaded);
    drop(loaded);
    user_code::check_lives(Vec::new(), "dropping the store");
    (ctx, last)
}

fuzz_target!(|data: &[u8]| {
    user_code::quiet();
    let blasts = user_code::blasts();
    let (ctx, last) = run_input(data, true);
    if user_code::blasts() > blasts {
        // the same input with no panicking `Drop`: a `Drop` that panics must change nothing
        // in what the store does
        let (clean, clean_last) = run_input(data, false);
        let at = ctx.trace.iter().zip(&clean.trace).position(|(a, b)| a != b);
        assert_eq!(
            at, None,
            "before operation {at:?} the store differs from a run without panicking Drops"
        );
        assert_eq!(ctx.trace.len(), clean.trace.len(), "operations run");
        assert_eq!(ctx.keys, clean.keys, "keys issued");
        assert_eq!(last, clean_last, "the final store");
    }
});
