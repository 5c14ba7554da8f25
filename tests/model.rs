//! Model-based test: random operation sequences applied to a [`Store`] and to a plain
//! std-collections model (`model/reference.rs`, which never calls relgraph), compared in
//! full after every step: integrity, entities and values, every collection in order from
//! both ends, payloads, hierarchy walks, and the result of every call.
//!
//! Operations: insert, `insert_all`, update, remove (checked against `preview_remove`),
//! link, unlink, `link_all` (all or nothing), `link_with`, `update_payload`, `set_children`, `set_targets`, `insert_kind`,
//! `change_kind`, updates and removes through kind keys, and transactions of those (nested
//! ones too) that commit, fail or panic. Keys are mapped from model ids; stale keys
//! (removed entities, inserts rolled back, rows of another kind at a kind-typed end) are
//! used as inputs too. The schema (see `SPECS`) has every relation kind and every delete
//! rule, an acyclic self-referential one-to-many and many-to-many, restrict rules that can
//! refuse orphan deletes, a polymorphic base `Media` with kinds `Photo`, `Video` and
//! `Note` (a relation on the base, a one-to-one between two kinds), and a polymorphic
//! parent end `comments.target` whose parent is a `Post` or a `Photo`. Reads compared
//! after every step include per-kind rows and counts, `downcast`, `get_kind`, `kind_name`
//! and `poly_parent`.
//!
//! A save and load step replaces the store with the one loaded from its snapshot (which
//! must re-save to the same bytes); the model is unchanged, so the full comparison after
//! it checks the load.
//!
//! 512 cases of up to 50 steps by default; `PROPTEST_CASES=10000 cargo test --test model`
//! runs a long campaign.

#[path = "model/reference.rs"]
mod reference;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::Union;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use relgraph::{
    AnyKey, DeleteRule, Entity, Key, KindError, LinkError, ManyToMany, OneToMany, OneToOne,
    PolyParent, RawKey, RelationName, RemoveError, Rules, Schema, Store,
};
use serde::{Deserialize, Serialize};

use reference::{
    Id, Kind, Model, Named, Op, Outcome, Rule, Step, Tb, AUTHORSHIP, BADGE, FOLLOWS, KINDS,
    ON_PHOTOS, ON_POSTS, OWNS, PINS, ROOTS, SPECS, TABLES, TAGGING, THUMB, TREE,
};

// ----- the store under test -----------------------------------------------------------

macro_rules! entities {
    ($($name:ident),*) => {$(
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        struct $name(u32);
        impl Value for $name {
            fn new(v: u32) -> Self {
                $name(v)
            }
            fn get(&self) -> u32 {
                self.0
            }
        }
    )*};
}

trait Value: Entity + Clone {
    fn new(v: u32) -> Self;
    fn get(&self) -> u32;
}

entities!(User, Post, Tag, Node, Badge, Comment, Media, Photo, Video, Note);

/// Runs `$body` with `$ty` naming the entity type of table `$t`.
macro_rules! for_table {
    ($t:expr, |$ty:ident| $body:expr) => {
        match $t {
            Tb::User => {
                type $ty = User;
                $body
            }
            Tb::Post => {
                type $ty = Post;
                $body
            }
            Tb::Tag => {
                type $ty = Tag;
                $body
            }
            Tb::Node => {
                type $ty = Node;
                $body
            }
            Tb::Badge => {
                type $ty = Badge;
                $body
            }
            Tb::Comment => {
                type $ty = Comment;
                $body
            }
            Tb::Media => {
                type $ty = Media;
                $body
            }
            Tb::Photo => {
                type $ty = Photo;
                $body
            }
            Tb::Video => {
                type $ty = Video;
                $body
            }
            Tb::Note => {
                type $ty = Note;
                $body
            }
        }
    };
}

/// Runs `$body` with `$ty` naming the entity type of kind `$t` and `$k` its handle.
macro_rules! for_kind {
    ($hs:expr, $t:expr, |$ty:ident, $k:ident| $body:expr) => {
        match $t {
            Tb::Photo => {
                type $ty = Photo;
                let $k = $hs.photo;
                $body
            }
            Tb::Video => {
                type $ty = Video;
                let $k = $hs.video;
                $body
            }
            Tb::Note => {
                type $ty = Note;
                let $k = $hs.note;
                $body
            }
            t => unreachable!("{t:?} is not a kind"),
        }
    };
}

/// Runs `$body` with `$h` bound to the handle field `$f` of `$hs` for the relation constant
/// `$c` that `$r` equals; the arms of `for_rel` and its narrower forms.
macro_rules! dispatch {
    ($hs:expr, $r:expr, |$h:ident| $body:expr, $what:literal, [$($c:ident => $f:ident),*]) => {
        match $r {
            $($c => {
                let $h = $hs.$f;
                $body
            })*
            r => unreachable!("relation {r}{}", $what),
        }
    };
}

/// Runs `$body` with `$h` bound to the handle of relation `$r` (any kind).
macro_rules! for_rel {
    ($hs:expr, $r:expr, |$h:ident| $body:expr) => {
        dispatch!($hs, $r, |$h| $body, "", [
            AUTHORSHIP => authorship, BADGE => badge, TAGGING => tagging, TREE => tree,
            FOLLOWS => follows, PINS => pins, OWNS => owns, THUMB => thumb,
            ON_POSTS => on_posts, ON_PHOTOS => on_photos
        ])
    };
}

/// As `for_rel`, for the one-to-many relations only.
macro_rules! for_one_to_many {
    ($hs:expr, $r:expr, |$h:ident| $body:expr) => {
        dispatch!($hs, $r, |$h| $body, " is not one-to-many", [
            AUTHORSHIP => authorship, TREE => tree, PINS => pins, OWNS => owns,
            ON_POSTS => on_posts, ON_PHOTOS => on_photos
        ])
    };
}

/// As `for_rel`, for the many-to-many relations only.
macro_rules! for_many_to_many {
    ($hs:expr, $r:expr, |$h:ident| $body:expr) => {
        dispatch!($hs, $r, |$h| $body, " is not many-to-many", [
            TAGGING => tagging, FOLLOWS => follows
        ])
    };
}

#[derive(Clone, Copy)]
struct Handles {
    authorship: OneToMany<User, Post>,
    badge: OneToOne<User, Badge>,
    tagging: ManyToMany<Post, Tag, u32>,
    tree: OneToMany<Node, Node>,
    follows: ManyToMany<Node, Node>,
    pins: OneToMany<Tag, Node>,
    owns: OneToMany<User, Media>,
    thumb: OneToOne<Video, Photo>,
    on_posts: OneToMany<Post, Comment>,
    on_photos: OneToMany<Photo, Comment>,
    target: PolyParent<Comment>,
    photo: relgraph::Kind<Media, Photo>,
    video: relgraph::Kind<Media, Video>,
    note: relgraph::Kind<Media, Note>,
}

fn rules(r: usize) -> Rules {
    let rule = |r| match r {
        Rule::Nullify => DeleteRule::Nullify,
        Rule::Cascade => DeleteRule::Cascade,
        Rule::Restrict => DeleteRule::Restrict,
        Rule::DeleteOrphan => DeleteRule::DeleteOrphan,
    };
    let spec = &SPECS[r];
    let rules = Rules::new()
        .on_delete(rule(spec.on_delete_a))
        .on_delete_b(rule(spec.on_delete_b));
    if spec.acyclic {
        rules.acyclic()
    } else {
        rules
    }
}

fn schema() -> (Schema, Handles) {
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
    // in the order of SPECS: a relation's index is its position there
    let h = Handles {
        authorship: s.one_to_many(users, "posts", posts, "author", rules(AUTHORSHIP)),
        badge: s.one_to_one(users, "badge", badges, "holder", rules(BADGE)),
        tagging: s.many_to_many_with(posts, "tags", tags, "tagged", rules(TAGGING)),
        tree: s.one_to_many(nodes, "kids", nodes, "up", rules(TREE)),
        follows: s.many_to_many(nodes, "follows", nodes, "followers", rules(FOLLOWS)),
        pins: s.one_to_many(tags, "pins", nodes, "pinned_to", rules(PINS)),
        owns: s.one_to_many(users, "media", media, "owner", rules(OWNS)),
        thumb: s.one_to_one(video, "thumb", photo, "thumb_of", rules(THUMB)),
        on_posts: s.one_to_many_poly(posts, "comments", target, rules(ON_POSTS)),
        on_photos: s.one_to_many_poly(photo, "comments", target, rules(ON_PHOTOS)),
        target,
        photo,
        video,
        note,
    };
    (s, h)
}

fn table_named(name: &str) -> Tb {
    ROOTS
        .into_iter()
        .chain(KINDS)
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("unknown table {name}"))
}

/// The store's key of every model id, and back. A row of a kind is known by its base
/// table (both keys hold the same bits).
struct Keys {
    raw: Vec<RawKey>,
    table: Vec<Tb>,
    id_of: HashMap<(Tb, RawKey), Id>,
    relations: Vec<RelationName>,
}

impl Keys {
    fn push(&mut self, table: Tb, raw: RawKey) {
        let fresh = self.id_of.insert((table, raw), self.raw.len()).is_none();
        assert!(fresh, "the store issued {raw:?} in {table:?} twice");
        self.raw.push(raw);
        self.table.push(table);
    }

    fn key<T>(&self, id: Id) -> Key<T> {
        Key::from_raw(self.raw[id])
    }

    fn id(&self, table: Tb, raw: RawKey) -> Id {
        match self.id_of.get(&(table.base(), raw)) {
            Some(&id) => id,
            None => panic!("the store returned a key it never issued: {raw:?} in {table:?}"),
        }
    }

    fn any(&self, key: AnyKey) -> Id {
        self.id(table_named(key.table), key.key)
    }

    /// A reported entity with the table it was named by.
    fn named(&self, key: AnyKey) -> Named {
        (self.any(key), key.table)
    }

    fn rel(&self, name: RelationName) -> usize {
        self.relations
            .iter()
            .position(|&n| n == name)
            .expect("a declared relation")
    }

    fn ids<T>(&self, keys: impl Iterator<Item = Key<T>>, table: Tb) -> Vec<Id> {
        keys.map(|k| self.id(table, k.raw())).collect()
    }
}

struct Sut {
    store: Store,
    h: Handles,
    keys: Keys,
}

/// What a call returned, translated into model ids (with the names reports give).
#[derive(Debug)]
enum Got {
    Done,
    NotLinked,
    Removed {
        previewed: BTreeSet<Named>,
    },
    Stale(Id),
    SelfLink(Id),
    Cycle(Id, Id),
    Duplicate(Id),
    Restricted {
        previewed: BTreeSet<Named>,
        previewed_blockers: BTreeSet<(usize, Named, Named)>,
        reported: (usize, Named, Named),
    },
    OrphanDelete((usize, Named, Named)),
    DeletesEndpoint(Named),
    Linked(usize, Named),
    Unexpected(String),
}

fn agrees(expected: &Outcome, got: &Got) -> bool {
    match (expected, got) {
        (_, Got::Unexpected(e)) => panic!("an error the model never expects: {e}"),
        (Outcome::Done, Got::Done) | (Outcome::NotLinked, Got::NotLinked) => true,
        (Outcome::Removed(set), Got::Removed { previewed }) => set == previewed,
        (Outcome::Stale(a), Got::Stale(b))
        | (Outcome::SelfLink(a), Got::SelfLink(b))
        | (Outcome::Duplicate(a), Got::Duplicate(b)) => a == b,
        (Outcome::DeletesEndpoint(a), Got::DeletesEndpoint(b)) => a == b,
        (Outcome::Cycle(a, b), Got::Cycle(c, d)) => (a, b) == (c, d),
        (
            Outcome::Restricted { removed, blockers },
            Got::Restricted {
                previewed,
                previewed_blockers,
                reported,
            },
        ) => removed == previewed && blockers == previewed_blockers && blockers.contains(reported),
        (Outcome::OrphanDelete(blockers), Got::OrphanDelete(reported)) => {
            blockers.contains(reported)
        }
        (Outcome::Linked(id, rels), Got::Linked(rel, key)) => id == key && rels.contains(rel),
        _ => false,
    }
}

fn restriction(keys: &Keys, e: &RemoveError) -> Option<(usize, Named, Named)> {
    match *e {
        RemoveError::Restricted {
            relation,
            key,
            blocker,
        } => Some((keys.rel(relation), keys.named(key), keys.named(blocker))),
        _ => None,
    }
}

fn link_error(keys: &Keys, e: LinkError) -> Got {
    let tables = |relation| {
        let spec = &SPECS[keys.rel(relation)];
        (spec.a, spec.b)
    };
    match e {
        LinkError::Stale(s) => Got::Stale(keys.any(s.key)),
        LinkError::SelfLink { relation, key } => Got::SelfLink(keys.id(tables(relation).0, key)),
        LinkError::Cycle { relation, a, b } => {
            let (ta, tb) = tables(relation);
            Got::Cycle(keys.id(ta, a), keys.id(tb, b))
        }
        LinkError::Duplicate { relation, key } => Got::Duplicate(keys.id(tables(relation).1, key)),
        LinkError::OrphanDelete(ref r) => match restriction(keys, r) {
            Some(r) => Got::OrphanDelete(r),
            None => Got::Unexpected(format!("{e:?}")),
        },
        LinkError::DeletesEndpoint { key, .. } => Got::DeletesEndpoint(keys.named(key)),
        e => Got::Unexpected(format!("{e:?}")),
    }
}

fn linked(keys: &Keys, r: Result<(), LinkError>) -> Got {
    r.map_or_else(|e| link_error(keys, e), |()| Got::Done)
}

fn remove<T: Value>(s: &mut Store, keys: &Keys, id: Id) -> Got {
    let key = keys.key::<T>(id);
    let preview = s.preview_remove(key);
    let removed = |p: &relgraph::DeletePreview| {
        let ids: BTreeSet<Id> = p.removed.iter().map(|&k| keys.any(k)).collect();
        assert_eq!(
            ids.len(),
            p.removed.len(),
            "a preview lists an entity twice"
        );
        p.removed.iter().map(|&k| keys.named(k)).collect()
    };
    match s.remove(key) {
        Ok(()) => {
            let p = preview.expect("a preview of a live key");
            assert!(p.allowed(), "the preview refused a delete that went ahead");
            Got::Removed {
                previewed: removed(&p),
            }
        }
        Err(RemoveError::Stale(e)) => {
            assert!(preview.is_err(), "a preview of a stale key");
            Got::Stale(keys.any(e.key))
        }
        Err(e) => match (restriction(keys, &e), preview) {
            (Some(reported), Ok(p)) => Got::Restricted {
                previewed: removed(&p),
                previewed_blockers: p
                    .blocked_by
                    .iter()
                    .map(|b| {
                        let rel = keys.rel(b.relation);
                        (rel, keys.named(b.key), keys.named(b.blocker))
                    })
                    .collect(),
                reported,
            },
            _ => Got::Unexpected(format!("{e:?}")),
        },
    }
}

/// Applies one operation to the store.
fn run(s: &mut Store, h: &Handles, keys: &mut Keys, op: &Op) -> Got {
    match *op {
        Op::Insert { table, value } => {
            let raw = for_table!(table, |T| s.insert(T::new(value)).raw());
            keys.push(table, raw);
            Got::Done
        }
        Op::InsertAll { table, ref values } => {
            let raws: Vec<RawKey> = for_table!(table, |T| s
                .insert_all(values.iter().map(|&v| T::new(v)))
                .into_iter()
                .map(|k| k.raw())
                .collect());
            assert_eq!(raws.len(), values.len(), "a key per value");
            for raw in raws {
                keys.push(table, raw);
            }
            Got::Done
        }
        Op::InsertKind { kind, base, value } => {
            let raw = for_kind!(h, kind, |K, k| {
                let key = s.insert_kind(k, Media(base), K::new(value));
                assert_eq!(k.upcast(key).raw(), key.raw(), "upcast keeps the key");
                key.raw()
            });
            keys.push(Tb::Media, raw);
            Got::Done
        }
        Op::UpdateKind { kind, id, value } => {
            let r = for_kind!(h, kind, |K, _k| {
                s.update(keys.key::<K>(id), |v| *v = K::new(value))
            });
            r.map_or_else(|e| Got::Stale(keys.any(e.key)), |()| Got::Done)
        }
        Op::RemoveKind { kind, id } => for_kind!(h, kind, |K, _k| remove::<K>(s, keys, id)),
        Op::ChangeKind { id, to, value } => {
            let r = for_kind!(h, to, |K, k| {
                s.change_kind(keys.key::<Media>(id), k, K::new(value))
                    .map(|key| key.raw())
            });
            match r {
                Ok(raw) => {
                    assert_eq!(raw, keys.raw[id], "change_kind keeps the key");
                    Got::Done
                }
                Err(KindError::Stale(e)) => Got::Stale(keys.any(e.key)),
                Err(KindError::Linked { relation, key }) => {
                    Got::Linked(keys.rel(relation), keys.named(key))
                }
                Err(e) => Got::Unexpected(format!("{e:?}")),
            }
        }
        Op::Update { id, value } => {
            let r = for_table!(keys.table[id], |T| {
                s.update(keys.key::<T>(id), |v| *v = T::new(value))
            });
            r.map_or_else(|e| Got::Stale(keys.any(e.key)), |()| Got::Done)
        }
        Op::Remove { id } => for_table!(keys.table[id], |T| remove::<T>(s, keys, id)),
        Op::Link { rel, a, b } => for_rel!(h, rel, |r| {
            linked(keys, s.link(r, keys.key(a), keys.key(b)))
        }),
        Op::LinkAll { rel, ref pairs } => for_rel!(h, rel, |r| {
            let pairs = pairs.iter().map(|&(a, b)| (keys.key(a), keys.key(b)));
            linked(keys, s.link_all(r, pairs))
        }),
        Op::Unlink { rel, a, b } => {
            let r = for_rel!(h, rel, |r| s.unlink(r, keys.key(a), keys.key(b)));
            match r {
                Ok(true) => Got::Done,
                Ok(false) => Got::NotLinked,
                Err(e) => link_error(keys, e),
            }
        }
        Op::LinkWith { rel, a, b, payload } => {
            let (ka, kb) = (keys.key(a), keys.key(b));
            let r = match rel {
                TAGGING => s.link_with(h.tagging, ka, kb, payload),
                FOLLOWS => s.link_with(h.follows, keys.key(a), keys.key(b), ()),
                r => unreachable!("relation {r} has no payload"),
            };
            linked(keys, r)
        }
        Op::UpdatePayload { a, b, value } => {
            match s.update_payload(h.tagging, keys.key(a), keys.key(b), |w| *w = value) {
                Ok(Some(())) => Got::Done,
                Ok(None) => Got::NotLinked,
                Err(e) => link_error(keys, e),
            }
        }
        Op::SetChildren {
            rel,
            parent,
            ref children,
        } => for_one_to_many!(h, rel, |r| {
            let children: Vec<_> = children.iter().map(|&c| keys.key(c)).collect();
            linked(keys, s.set_children(r, keys.key(parent), &children))
        }),
        Op::SetTargets {
            rel,
            a,
            ref targets,
        } => for_many_to_many!(h, rel, |r| {
            let targets: Vec<_> = targets.iter().map(|&b| keys.key(b)).collect();
            linked(keys, s.set_targets(r, keys.key(a), &targets))
        }),
    }
}

// ----- comparison ---------------------------------------------------------------------

fn compare_table<T: Value>(sut: &Sut, m: &Model, table: Tb) {
    let ids = m.ids(table);
    let live = ids.iter().filter(|&&id| m.alive(id)).count();
    assert_eq!(sut.store.len::<T>(), live, "number of {table:?}");
    for id in ids {
        let got = sut.store.get(sut.keys.key::<T>(id)).map(Value::get);
        assert_eq!(
            got,
            m.values.get(&id).copied(),
            "value of #{id} ({table:?})"
        );
    }
    for (k, v) in sut.store.iter::<T>() {
        let id = sut.keys.id(table, k.raw());
        assert_eq!(m.values.get(&id), Some(&v.get()), "listed entity #{id}");
    }
}

fn compare_links<R: relgraph::Relation>(sut: &Sut, m: &Model, r: usize, rel: R) {
    let (store, keys, spec, links) = (&sut.store, &sut.keys, &SPECS[r], &m.rels[r]);
    assert_eq!(store.link_count(rel), links.len(), "links of relation {r}");
    for a in m.ids(spec.a) {
        let got = keys.ids(store.targets(rel, keys.key(a)), spec.b);
        assert_eq!(got, links.targets(a), "relation {r}: targets of #{a}");
        assert_eq!(store.target_count(rel, keys.key(a)), got.len());
    }
    for b in m.ids(spec.b) {
        let got = keys.ids(store.sources(rel, keys.key(b)), spec.a);
        assert_eq!(got, links.sources(b), "relation {r}: sources of #{b}");
        assert_eq!(store.source_count(rel, keys.key(b)), got.len());
    }
    for (a, b) in links.pairs() {
        assert!(store.linked(rel, keys.key(a), keys.key(b)), "{a} -> {b}");
    }
}

fn compare_one_to_many<P: Entity, C: Entity>(sut: &Sut, m: &Model, r: usize, rel: OneToMany<P, C>) {
    let (store, keys, spec, links) = (&sut.store, &sut.keys, &SPECS[r], &m.rels[r]);
    for p in m.ids(spec.a) {
        let got = keys.ids(store.children(rel, keys.key(p)), spec.b);
        assert_eq!(got, links.targets(p), "relation {r}: children of #{p}");
        let back = keys.ids(store.children(rel, keys.key(p)).rev(), spec.b);
        assert!(back.iter().rev().eq(&got), "children of #{p} backwards");
        assert_eq!(store.child_count(rel, keys.key(p)), got.len());
    }
    for c in m.ids(spec.b) {
        let got = store
            .parent(rel, keys.key(c))
            .map(|k| keys.id(spec.a, k.raw()));
        assert_eq!(
            got,
            links.sources(c).first().copied(),
            "relation {r}: parent of #{c}"
        );
    }
}

/// Ancestors and breadth-first descendants of every live node of the tree.
fn compare_tree(sut: &Sut, m: &Model) {
    let (store, keys, links) = (&sut.store, &sut.keys, &m.rels[TREE]);
    for n in m.ids(Tb::Node).into_iter().filter(|&n| m.alive(n)) {
        let mut up = Vec::new();
        let mut at = n;
        while let Some(&p) = links.sources(at).first() {
            up.push(p);
            at = p;
        }
        let got = keys.ids(store.ancestors(sut.h.tree, keys.key(n)), Tb::Node);
        assert_eq!(got, up, "ancestors of #{n}");
        let mut down = Vec::new();
        let mut level = vec![n];
        let mut depth = 0;
        while !level.is_empty() {
            depth += 1;
            let next: Vec<Id> = level
                .iter()
                .flat_map(|&k| links.targets(k).to_vec())
                .collect();
            down.extend(next.iter().map(|&k| (k, depth)));
            level = next;
        }
        let got: Vec<(Id, usize)> = store
            .descendants(sut.h.tree, keys.key(n))
            .map(|(k, d)| (keys.id(Tb::Node, k.raw()), d))
            .collect();
        assert_eq!(got, down, "descendants of #{n}");
    }
}

fn compare_one_to_one<A: Entity, B: Entity>(sut: &Sut, m: &Model, r: usize, rel: OneToOne<A, B>) {
    let (store, keys, spec, links) = (&sut.store, &sut.keys, &SPECS[r], &m.rels[r]);
    for a in m.ids(spec.a) {
        let got = store.partner(rel, keys.key(a));
        let got = got.map(|k| keys.id(spec.b, k.raw()));
        assert_eq!(
            got,
            links.targets(a).first().copied(),
            "relation {r}: partner of #{a}"
        );
    }
    for b in m.ids(spec.b) {
        let got = store.partner_of(rel, keys.key(b));
        let got = got.map(|k| keys.id(spec.a, k.raw()));
        assert_eq!(
            got,
            links.sources(b).first().copied(),
            "relation {r}: partner of #{b}"
        );
    }
}

/// The rows of one kind, listed and counted by kind, and every `Media` id read through a
/// key of the kind, `get_kind` and `downcast`.
fn compare_kind<K: Value>(sut: &Sut, m: &Model, kind: Tb, handle: relgraph::Kind<Media, K>) {
    let (store, keys) = (&sut.store, &sut.keys);
    let want: BTreeMap<Id, u32> = m
        .kinds
        .iter()
        .filter(|&(_, &(k, _))| k == kind)
        .map(|(&id, &(_, v))| (id, v))
        .collect();
    assert_eq!(store.len::<K>(), want.len(), "number of {kind:?}");
    assert_eq!(store.rows::<K>().len(), want.len(), "rows of {kind:?}");
    let listed: Vec<(Id, u32)> = store
        .iter::<K>()
        .map(|(k, v)| (keys.id(kind, k.raw()), v.get()))
        .collect();
    assert_eq!(listed.len(), want.len(), "{kind:?} rows listed");
    let got: BTreeMap<Id, u32> = listed.into_iter().collect();
    assert_eq!(got, want, "{kind:?} rows (in any order)");
    let got: BTreeSet<Id> = keys.ids(store.keys::<K>(), kind).into_iter().collect();
    assert!(got.iter().eq(want.keys()), "keys of {kind:?}");
    for id in m.ids(Tb::Media) {
        let (base, key) = (keys.key::<Media>(id), keys.key::<K>(id));
        let value = want.get(&id).copied();
        assert_eq!(store.get(key).map(Value::get), value, "#{id} as {kind:?}");
        assert_eq!(store.contains(key), value.is_some(), "#{id} is a {kind:?}");
        let got = store.get_kind(handle, base).map(Value::get);
        assert_eq!(got, value, "get_kind {kind:?} of #{id}");
        let got = store.downcast(handle, base).map(|k| k.raw());
        assert_eq!(
            got,
            value.map(|_| keys.raw[id]),
            "downcast of #{id} to {kind:?}"
        );
        // a key of the kind is stale unless the row is of that kind
        let got = store.kind_name(key);
        assert_eq!(
            got,
            value.map(|_| kind.name()),
            "kind_name of #{id} as {kind:?}"
        );
    }
}

/// The kind of every `Media` row, then each kind's rows.
fn compare_kinds(sut: &Sut, m: &Model) {
    let (store, keys) = (&sut.store, &sut.keys);
    for id in m.ids(Tb::Media) {
        let want = m.kind_of(id).map(Tb::name);
        assert_eq!(
            store.kind_name(keys.key::<Media>(id)),
            want,
            "kind of #{id}"
        );
    }
    for kind in KINDS {
        for_kind!(sut.h, kind, |K, k| compare_kind::<K>(sut, m, kind, k));
    }
}

/// The target of every comment through the polymorphic end, named by its most specific
/// table (a photo's kind, not `media`).
fn compare_targets(sut: &Sut, m: &Model) {
    let (store, keys) = (&sut.store, &sut.keys);
    for c in m.ids(Tb::Comment) {
        let parents: Vec<(usize, Id)> = [ON_POSTS, ON_PHOTOS]
            .into_iter()
            .filter_map(|r| m.rels[r].sources(c).first().map(|&p| (r, p)))
            .collect();
        assert!(parents.len() <= 1, "the model gave #{c} two targets");
        let want = parents
            .first()
            .map(|&(r, p)| (m.kind_of(p).unwrap_or(SPECS[r].a).name(), p));
        let got = store.poly_parent(sut.h.target, keys.key(c));
        let got = got.map(|k| (k.table, keys.any(k)));
        assert_eq!(got, want, "target of #{c}");
        assert_eq!(
            store.kind_name(keys.key::<Comment>(c)),
            None,
            "a plain table"
        );
    }
}

fn compare_payloads(sut: &Sut, m: &Model) {
    let (store, keys, links, rel) = (&sut.store, &sut.keys, &m.rels[TAGGING], sut.h.tagging);
    let with = |a: Id, b: Id| links.payload[&(a, b)];
    for p in m.ids(Tb::Post) {
        let got: Vec<(Id, u32)> = store
            .targets_with(rel, keys.key(p))
            .map(|(k, &w)| (keys.id(Tb::Tag, k.raw()), w))
            .collect();
        let want: Vec<(Id, u32)> = links.targets(p).iter().map(|&t| (t, with(p, t))).collect();
        assert_eq!(got, want, "tags of #{p} with payloads");
    }
    for t in m.ids(Tb::Tag) {
        let got: Vec<(Id, u32)> = store
            .sources_with(rel, keys.key(t))
            .map(|(k, &w)| (keys.id(Tb::Post, k.raw()), w))
            .collect();
        let want: Vec<(Id, u32)> = links.sources(t).iter().map(|&p| (p, with(p, t))).collect();
        assert_eq!(got, want, "posts of #{t} with payloads");
    }
    for ((a, b), &w) in &links.payload {
        assert_eq!(store.payload(rel, keys.key(*a), keys.key(*b)), Some(&w));
    }
}

/// Everything observable, compared: integrity, entities and values, every collection in
/// order from both ends, partners, payloads, hierarchy walks, kinds, polymorphic targets.
fn compare(sut: &Sut, m: &Model) {
    if let Err(e) = sut.store.check_integrity() {
        panic!("integrity violated: {e}");
    }
    for t in ROOTS {
        for_table!(t, |T| compare_table::<T>(sut, m, t));
    }
    for r in 0..SPECS.len() {
        for_rel!(sut.h, r, |rel| compare_links(sut, m, r, rel));
    }
    for r in [AUTHORSHIP, TREE, PINS, OWNS, ON_POSTS, ON_PHOTOS] {
        for_one_to_many!(sut.h, r, |rel| compare_one_to_many(sut, m, r, rel));
    }
    compare_tree(sut, m);
    compare_one_to_one(sut, m, BADGE, sut.h.badge);
    compare_one_to_one(sut, m, THUMB, sut.h.thumb);
    compare_payloads(sut, m);
    compare_kinds(sut, m);
    compare_targets(sut, m);
}

// ----- the state machine --------------------------------------------------------------

#[derive(Clone, Debug)]
enum Transition {
    Op(Op),
    Transaction {
        steps: Vec<Step>,
        end: TxnEnd,
    },
    /// The store is saved with `to_snapshot` and replaced by the store loaded from the
    /// bytes; the model does not change, so the comparison after it checks the load.
    SaveLoad,
}

/// How a transaction's closure ends: `Ok`, `Err`, or a panic (which must roll back too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxnEnd {
    Commit,
    Fail,
    Panic,
}

/// The payload of the panic that abandons a transaction.
struct Abandon;

/// Keeps the default panic message out of the output for the deliberate panics.
fn quiet_abandon_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Abandon>() {
                default(info);
            }
        }));
    });
}

struct ModelMachine;

/// A live id of `table` (for a kind: a live row of that kind) 19 times in 20, else a stale
/// one; for a kind, also sometimes a live row of another kind (stale for that kind).
fn pick(m: &Model, table: Tb) -> Option<BoxedStrategy<Id>> {
    let (live, rest): (Vec<Id>, Vec<Id>) = m
        .ids(table)
        .into_iter()
        .partition(|&i| m.alive_as(i, table));
    let (other, dead): (Vec<Id>, Vec<Id>) = rest.into_iter().partition(|&i| m.alive(i));
    let arms: Vec<(u32, BoxedStrategy<Id>)> = [(19, live), (2, other), (1, dead)]
        .into_iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(w, ids)| (w, select(ids).boxed()))
        .collect();
    (!arms.is_empty()).then(|| Union::new_weighted(arms).boxed())
}

fn union(arms: Vec<(u32, BoxedStrategy<Op>)>) -> Option<(u32, BoxedStrategy<Op>)> {
    let weight = arms.iter().map(|(w, _)| w).sum();
    (!arms.is_empty()).then(|| (weight, Union::new_weighted(arms).boxed()))
}

/// An entity and a collection for it.
type Owned = (Id, Vec<Id>);

/// Replacement collections for `a`: random (duplicates and stale keys included), a large
/// shuffled set of live entities, a shuffle of a current collection, or a current
/// collection with some dropped (large drops make the store compact its lists).
fn collections(
    m: &Model,
    r: usize,
    pa: &BoxedStrategy<Id>,
    pb: &BoxedStrategy<Id>,
) -> Vec<(u32, BoxedStrategy<Owned>)> {
    let mut arms = vec![(2, (pa.clone(), vec(pb.clone(), 0..5)).boxed())];
    let live: Vec<Id> = m
        .ids(SPECS[r].b)
        .into_iter()
        .filter(|&b| m.alive_as(b, SPECS[r].b))
        .collect();
    let many = pa.clone().prop_flat_map(move |a| {
        let pool: Vec<Id> = live.iter().copied().filter(|&b| b != a).collect();
        let n = pool.len();
        (Just(a), subsequence(pool, n / 2..=n).prop_shuffle())
    });
    arms.push((2, many.boxed()));
    let current: Vec<(Id, Vec<Id>)> = m.rels[r]
        .fwd
        .iter()
        .filter(|&(&a, _)| m.alive(a))
        .map(|(&a, l)| (a, l.clone()))
        .collect();
    if !current.is_empty() {
        let shuffled = select(current.clone())
            .prop_flat_map(|(a, l)| (Just(a), Just(l).prop_shuffle()))
            .boxed();
        arms.push((1, shuffled));
        let thinned = select(current)
            .prop_flat_map(|(a, l)| {
                let n = l.len();
                (Just(a), subsequence(l, 0..=n))
            })
            .boxed();
        arms.push((2, thinned));
    }
    arms
}

fn op_strategy(m: &Model) -> BoxedStrategy<Op> {
    let mut groups = Vec::new();
    let insert = (select(TABLES.to_vec()), 0..100u32)
        .prop_map(|(table, value)| Op::Insert { table, value })
        .boxed();
    groups.push((20, insert));
    let insert_all = (select(TABLES.to_vec()), vec(0..100u32, 0..6))
        .prop_map(|(table, values)| Op::InsertAll { table, values })
        .boxed();
    groups.push((2, insert_all));
    groups.push((8, insert_kind().boxed()));
    let ids: Vec<BoxedStrategy<Id>> = ROOTS.iter().filter_map(|&t| pick(m, t)).collect();
    if !ids.is_empty() {
        let any_id = Union::new(ids);
        groups.push((10, any_id.clone().prop_map(|id| Op::Remove { id }).boxed()));
        let update = (any_id, 0..100u32).prop_map(|(id, value)| Op::Update { id, value });
        groups.push((3, update.boxed()));
    }
    if let Some(media) = pick(m, Tb::Media) {
        let change = (media, select(KINDS.to_vec()), 0..100u32)
            .prop_map(|(id, to, value)| Op::ChangeKind { id, to, value });
        groups.push((6, change.boxed()));
    }
    for kind in KINDS {
        let Some(id) = pick(m, kind) else { continue };
        let remove = id.clone().prop_map(move |id| Op::RemoveKind { kind, id });
        groups.push((1, remove.boxed()));
        let update =
            (id, 0..100u32).prop_map(move |(id, value)| Op::UpdateKind { kind, id, value });
        groups.push((1, update.boxed()));
    }
    let (mut links, mut unlinks, mut sets, mut payloads) = (vec![], vec![], vec![], vec![]);
    let mut link_alls = vec![];
    for (r, spec) in SPECS.iter().enumerate() {
        let (Some(pa), Some(pb)) = (pick(m, spec.a), pick(m, spec.b)) else {
            continue;
        };
        let pairs = m.rels[r].pairs();
        let link = (pa.clone(), pb.clone()).prop_map(move |(a, b)| Op::Link { rel: r, a, b });
        links.push((1, link.boxed()));
        // batches over a few entities, so that they repeat pairs and move children twice;
        // on a self-referential relation both ends from one pool, so that a batch can
        // close a cycle (self-links dropped half the time, or they would fail most)
        let self_ref = spec.a == spec.b;
        let few = (vec(pa.clone(), 1..4), vec(pb.clone(), 1..4), any::<bool>());
        let batch = few.prop_flat_map(move |(a, b, self_links)| {
            let b = if self_ref { a.clone() } else { b };
            vec((select(a), select(b)), 0..6).prop_map(move |mut pairs| {
                if self_ref && !self_links {
                    pairs.retain(|(a, b)| a != b);
                }
                Op::LinkAll { rel: r, pairs }
            })
        });
        link_alls.push((1, batch.boxed()));
        let unlink = (pa.clone(), pb.clone()).prop_map(move |(a, b)| Op::Unlink { rel: r, a, b });
        unlinks.push((1, unlink.boxed()));
        if !pairs.is_empty() {
            let unlink = select(pairs.clone()).prop_map(move |(a, b)| Op::Unlink { rel: r, a, b });
            unlinks.push((2, unlink.boxed()));
        }
        for (w, s) in collections(m, r, &pa, &pb) {
            let set = match spec.kind {
                Kind::OneToMany => s
                    .prop_map(move |(parent, children)| Op::SetChildren {
                        rel: r,
                        parent,
                        children,
                    })
                    .boxed(),
                Kind::ManyToMany => s
                    .prop_map(move |(a, targets)| Op::SetTargets { rel: r, a, targets })
                    .boxed(),
                Kind::OneToOne => continue,
            };
            sets.push((w, set));
        }
        if spec.kind == Kind::ManyToMany {
            let ends = if pairs.is_empty() {
                (pa, pb).boxed()
            } else {
                prop_oneof![(pa, pb), select(pairs)].boxed()
            };
            let with = (ends.clone(), 0..100u32).prop_map(move |((a, b), payload)| Op::LinkWith {
                rel: r,
                a,
                b,
                payload,
            });
            payloads.push((2, with.boxed()));
            if r == TAGGING {
                let update =
                    (ends, 0..100u32).prop_map(|((a, b), value)| Op::UpdatePayload { a, b, value });
                payloads.push((1, update.boxed()));
            }
        }
    }
    for (weight, arms) in [
        (30, links),
        (8, link_alls),
        (12, unlinks),
        (10, sets),
        (5, payloads),
    ] {
        if let Some((_, s)) = union(arms) {
            groups.push((weight, s));
        }
    }
    Union::new_weighted(groups).boxed()
}

fn insert_kind() -> impl Strategy<Value = Op> {
    (select(KINDS.to_vec()), 0..100u32, 0..100u32).prop_map(|(kind, base, value)| Op::InsertKind {
        kind,
        base,
        value,
    })
}

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        let insert = (select(TABLES.to_vec()), 0..100u32)
            .prop_map(|(table, value)| Op::Insert { table, value });
        vec(prop_oneof![3 => insert, 1 => insert_kind()], 0..64)
            .prop_map(|inserts| {
                let mut m = Model::default();
                for op in inserts {
                    m.apply(&op);
                }
                m
            })
            .boxed()
    }

    fn transitions(m: &Model) -> BoxedStrategy<Transition> {
        let op = op_strategy(m);
        let step = prop_oneof![
            4 => op.clone().prop_map(Step::Op),
            1 => (vec(op.clone(), 1..3), any::<bool>())
                .prop_map(|(ops, commit)| Step::Nested { ops, commit }),
        ];
        let end = prop_oneof![
            Just(TxnEnd::Commit),
            Just(TxnEnd::Fail),
            Just(TxnEnd::Panic)
        ];
        prop_oneof![
            18 => op.prop_map(Transition::Op),
            2 => (vec(step, 1..5), end)
                .prop_map(|(steps, end)| Transition::Transaction { steps, end }),
            1 => Just(Transition::SaveLoad),
        ]
        .boxed()
    }

    fn preconditions(m: &Model, t: &Transition) -> bool {
        match t {
            Transition::Op(op) => m.accepts(op),
            Transition::Transaction { steps, .. } => steps.iter().all(|s| match s {
                Step::Op(op) => m.accepts(op),
                Step::Nested { ops, .. } => ops.iter().all(|op| m.accepts(op)),
            }),
            Transition::SaveLoad => true,
        }
    }

    fn apply(mut m: Model, t: &Transition) -> Model {
        let mut out = Vec::new();
        match t {
            Transition::Op(op) => out.push(m.apply(op)),
            Transition::Transaction { steps, end } => {
                m.transaction(steps, *end == TxnEnd::Commit, &mut out)
            }
            Transition::SaveLoad => {}
        }
        m.last = out;
        m
    }
}

/// The store loaded from a snapshot of `store`, which must re-save to the same bytes.
fn save_and_load(store: &Store) -> Store {
    let bytes = store
        .to_snapshot()
        .expect("a snapshot outside transactions");
    let loaded = match Store::from_snapshot(store.schema().clone(), &bytes) {
        Ok(loaded) => loaded,
        Err(e) => panic!("a saved snapshot does not load: {e}"),
    };
    let again = loaded.to_snapshot().expect("a loaded store saves");
    assert!(
        again == bytes,
        "re-saving a loaded store gave other bytes ({} instead of {})",
        again.len(),
        bytes.len()
    );
    loaded
}

struct StoreTest;

impl StateMachineTest for StoreTest {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(m: &Model) -> Sut {
        let (schema, h) = schema();
        let relations = schema.relations().map(|(_, name)| name).collect();
        let mut sut = Sut {
            store: Store::new(schema),
            h,
            keys: Keys {
                raw: Vec::new(),
                table: Vec::new(),
                id_of: HashMap::new(),
                relations,
            },
        };
        for (id, &table) in m.table_of.iter().enumerate() {
            let value = m.values[&id];
            let op = match m.kinds.get(&id) {
                Some(&(kind, kind_value)) => Op::InsertKind {
                    kind,
                    base: value,
                    value: kind_value,
                },
                None => Op::Insert { table, value },
            };
            run(&mut sut.store, &h, &mut sut.keys, &op);
        }
        sut
    }

    fn apply(mut sut: Sut, m: &Model, t: Transition) -> Sut {
        let mut got = Vec::new();
        let Sut { store, h, keys } = &mut sut;
        match &t {
            Transition::Op(op) => got.push(run(store, h, keys, op)),
            Transition::Transaction { steps, end } => {
                let body = |s: &mut Store| {
                    for step in steps {
                        match step {
                            Step::Op(op) => got.push(run(s, h, keys, op)),
                            Step::Nested { ops, commit } => {
                                let r = s.transaction(|s| {
                                    for op in ops {
                                        got.push(run(s, h, keys, op));
                                    }
                                    if *commit {
                                        Ok(())
                                    } else {
                                        Err(())
                                    }
                                });
                                assert_eq!(r.is_ok(), *commit);
                            }
                        }
                    }
                    assert!(s.in_transaction());
                    match end {
                        TxnEnd::Commit => Ok(()),
                        TxnEnd::Fail => Err(()),
                        TxnEnd::Panic => std::panic::panic_any(Abandon),
                    }
                };
                if *end == TxnEnd::Panic {
                    quiet_abandon_panics();
                    let r = catch_unwind(AssertUnwindSafe(|| store.transaction(body)));
                    match r {
                        Err(p) if p.is::<Abandon>() => {}
                        Err(p) => resume_unwind(p),
                        Ok(_) => unreachable!("the transaction panics"),
                    }
                } else {
                    let r = store.transaction(body);
                    assert_eq!(r.is_ok(), *end == TxnEnd::Commit);
                }
                assert!(!store.in_transaction());
            }
            Transition::SaveLoad => *store = save_and_load(store),
        }
        assert_eq!(got.len(), m.last.len(), "number of calls");
        for (i, (want, got)) in m.last.iter().zip(&got).enumerate() {
            assert!(
                agrees(want, got),
                "call {i}: the model expects {want:?}, the store gave {got:?}"
            );
        }
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        compare(sut, m);
    }
}

/// 512 cases unless `PROPTEST_CASES` says otherwise; failures are saved next to this file
/// (`tests/model.proptest-regressions`) and replayed first.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

prop_state_machine! {
    #![proptest_config(config())]

    #[test]
    fn the_store_behaves_like_the_model_after_every_step(sequential 1..=50 => StoreTest);
}

/// Runs a fixed sequence through the same comparison as the random cases. A kind in
/// `inserts` inserts a row of that kind.
fn replay(inserts: &[Tb], transitions: Vec<Transition>) {
    let mut m = Model::default();
    for &table in inserts {
        m.apply(&match table.is_kind() {
            true => Op::InsertKind {
                kind: table,
                base: 7,
                value: 7,
            },
            false => Op::Insert { table, value: 7 },
        });
    }
    StoreTest::test_sequential(config(), m, transitions, None);
}

#[test]
fn emptying_a_parent_with_set_children_deletes_it_under_a_b_end_delete_orphan_rule() {
    // found by the model: set_children left the emptied tag alive, unlike unlink and
    // set_targets
    replay(
        &[Tb::Tag, Tb::Node],
        vec![
            Transition::Op(Op::Link {
                rel: PINS,
                a: 0,
                b: 1,
            }),
            Transition::Op(Op::SetChildren {
                rel: PINS,
                parent: 0,
                children: vec![],
            }),
        ],
    );
}

#[test]
fn removing_a_parent_of_many_children_survives_list_compaction() {
    let mut inserts = vec![Tb::User];
    inserts.extend([Tb::Post; 12]);
    let children = (1..=12).collect();
    replay(
        &inserts,
        vec![
            Transition::Op(Op::SetChildren {
                rel: AUTHORSHIP,
                parent: 0,
                children,
            }),
            Transition::Op(Op::SetChildren {
                rel: AUTHORSHIP,
                parent: 0,
                children: vec![12, 3],
            }),
            Transition::Op(Op::Remove { id: 0 }),
        ],
    );
}

/// The model's outcomes of single operations applied in order after `inserts` (plain
/// tables only), to pin down what a replay expects.
fn model_outcomes(inserts: &[Tb], ops: &[Op]) -> Vec<Outcome> {
    let mut m = Model::default();
    for &table in inserts {
        m.apply(&Op::Insert { table, value: 7 });
    }
    ops.iter().map(|op| m.apply(op)).collect()
}

#[test]
fn a_link_all_whose_orphan_delete_makes_a_later_key_stale_applies_nothing() {
    // moving node 2 to tag 1 leaves tag 0 without pins, which deletes it; the next pair
    // names tag 0
    let ops = [
        Op::Link {
            rel: PINS,
            a: 0,
            b: 2,
        },
        Op::LinkAll {
            rel: PINS,
            pairs: vec![(1, 2), (0, 3)],
        },
    ];
    let inserts = [Tb::Tag, Tb::Tag, Tb::Node, Tb::Node];
    assert_eq!(
        model_outcomes(&inserts, &ops),
        [Outcome::Done, Outcome::Stale(0)]
    );
    replay(
        &[Tb::Tag, Tb::Tag, Tb::Node, Tb::Node],
        vec![
            Transition::Op(Op::Link {
                rel: PINS,
                a: 0,
                b: 2,
            }),
            Transition::Op(Op::LinkAll {
                rel: PINS,
                pairs: vec![(1, 2), (0, 3)],
            }),
            Transition::Op(Op::LinkAll {
                rel: PINS,
                pairs: vec![(0, 3), (1, 2)],
            }),
        ],
    );
}

#[test]
fn a_link_all_that_closes_a_cycle_midway_applies_nothing() {
    let ops = [
        Op::LinkAll {
            rel: TREE,
            pairs: vec![(0, 1), (1, 2), (2, 0)],
        },
        Op::LinkAll {
            rel: TREE,
            pairs: vec![(1, 2), (2, 0)],
        },
    ];
    assert_eq!(
        model_outcomes(&[Tb::Node; 3], &ops),
        [Outcome::Cycle(2, 0), Outcome::Done]
    );
    replay(
        &[Tb::Node, Tb::Node, Tb::Node],
        vec![
            Transition::Op(Op::LinkAll {
                rel: TREE,
                pairs: vec![(0, 1), (1, 2), (2, 0)],
            }),
            Transition::Transaction {
                steps: vec![
                    Step::Op(Op::LinkAll {
                        rel: TREE,
                        pairs: vec![(0, 1), (1, 2)],
                    }),
                    Step::Op(Op::LinkAll {
                        rel: TREE,
                        pairs: vec![(2, 1), (0, 2), (2, 0)],
                    }),
                ],
                end: TxnEnd::Commit,
            },
        ],
    );
}

#[test]
fn link_all_moves_children_between_parents_and_polymorphic_ends() {
    replay(
        &[Tb::Post, Tb::Photo, Tb::Comment, Tb::Comment],
        vec![
            Transition::Op(Op::InsertAll {
                table: Tb::User,
                values: vec![1, 2],
            }),
            Transition::Op(Op::InsertAll {
                table: Tb::Post,
                values: vec![3, 4, 5],
            }),
            // ids: users 4, 5; posts 6, 7, 8
            Transition::Op(Op::LinkAll {
                rel: AUTHORSHIP,
                pairs: vec![(4, 0), (4, 6), (5, 0), (5, 7), (4, 7), (4, 7), (5, 8)],
            }),
            Transition::Op(Op::LinkAll {
                rel: ON_PHOTOS,
                pairs: vec![(1, 2), (1, 3)],
            }),
            // comment 2 moves to the post while the photo keeps comment 3; then comment 3
            // moves too, and the photo, left without comments, is deleted
            Transition::Op(Op::LinkAll {
                rel: ON_POSTS,
                pairs: vec![(0, 2), (6, 3), (0, 3)],
            }),
            Transition::Op(Op::LinkAll {
                rel: ON_PHOTOS,
                pairs: vec![(1, 2)],
            }),
            Transition::Op(Op::Remove { id: 4 }),
        ],
    );
}
