//! Polymorphic parent ends (`comments.target`: a comment's parent is a post, a photo or
//! another comment): a child has a parent in at most one relation of the end, linking or
//! replacing a collection moves it from whichever parent had it, back-population on every
//! parent type, delete rules per relation, orphans of moves, the integrity check, and the
//! exact rollback of each operation in a failing transaction.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write;

use common::{check, dump_ends, dump_table, Comment, Post, Rng, User};
use relgraph::{
    AnyKey, DeleteRule, Entity, Key, LinkError, OneToMany, PolyParent, RawKey, RemoveError, Rules,
    Schema, StaleKey, Store,
};
use serde::{Deserialize, Serialize};

use DeleteRule::{Cascade, DeleteOrphan, Restrict};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Photo {
    url: String,
}

/// The rules of every relation of the comment world; the default nullifies.
#[derive(Clone, Copy, Debug, Default)]
struct Config {
    /// posts.comments <-> comments.target (in the polymorphic end)
    post_comments: Rules,
    /// photos.comments <-> comments.target (in the polymorphic end)
    photo_comments: Rules,
    /// comments.replies <-> comments.target (in the polymorphic end, self-referential)
    replies: Rules,
    /// users.comments <-> comments.author (an ordinary relation of the child)
    authored: Rules,
    /// posts.photos <-> photos.post (an ordinary relation between two parent types)
    gallery: Rules,
}

/// The handles of the comment world.
#[derive(Clone, Copy, Debug)]
struct R {
    target: PolyParent<Comment>,
    post_comments: OneToMany<Post, Comment>,
    photo_comments: OneToMany<Photo, Comment>,
    replies: OneToMany<Comment, Comment>,
    authored: OneToMany<User, Comment>,
    gallery: OneToMany<Post, Photo>,
}

fn world(cfg: Config) -> (Store, R) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let photos = s.table::<Photo>("photos");
    let comments = s.table::<Comment>("comments");
    let target = s.poly_parent(comments, "target");
    let r = R {
        target,
        post_comments: s.one_to_many_poly(posts, "comments", target, cfg.post_comments),
        photo_comments: s.one_to_many_poly(photos, "comments", target, cfg.photo_comments),
        replies: s.one_to_many_poly(comments, "replies", target, cfg.replies),
        authored: s.one_to_many(users, "comments", comments, "author", cfg.authored),
        gallery: s.one_to_many(posts, "photos", photos, "post", cfg.gallery),
    };
    (Store::new(s), r)
}

fn post(s: &mut Store, title: &str) -> Key<Post> {
    s.insert(Post {
        title: title.into(),
    })
}

fn photo(s: &mut Store, url: &str) -> Key<Photo> {
    s.insert(Photo { url: url.into() })
}

fn comment(s: &mut Store, text: &str) -> Key<Comment> {
    s.insert(Comment { text: text.into() })
}

fn any<T>(table: &'static str, k: Key<T>) -> AnyKey {
    AnyKey {
        table,
        key: k.raw(),
    }
}

/// A populated comment world.
struct Fx {
    alice: Key<User>,
    /// post with comments c0, c1 and photo f in its gallery
    p: Key<Post>,
    /// post without comments
    q: Key<Post>,
    /// photo with comment c2
    f: Key<Photo>,
    /// photo without comments
    g: Key<Photo>,
    /// c0 (on p, by alice, with reply c3), c1 (on p), c2 (on f, by alice), c3 (reply to
    /// c0), c4 (no parent)
    c: [Key<Comment>; 5],
}

fn populated(cfg: Config) -> (Store, R, Fx) {
    let (mut s, r) = world(cfg);
    let alice = s.insert(User {
        name: "alice".into(),
    });
    let p = post(&mut s, "p");
    let q = post(&mut s, "q");
    let f = photo(&mut s, "f.jpg");
    let g = photo(&mut s, "g.jpg");
    let c = ["c0", "c1", "c2", "c3", "c4"].map(|t| comment(&mut s, t));
    s.link(r.post_comments, p, c[0]).unwrap();
    s.link(r.post_comments, p, c[1]).unwrap();
    s.link(r.photo_comments, f, c[2]).unwrap();
    s.link(r.replies, c[0], c[3]).unwrap();
    s.link(r.authored, alice, c[0]).unwrap();
    s.link(r.authored, alice, c[2]).unwrap();
    s.link(r.gallery, p, f).unwrap();
    check(&s);
    (
        s,
        r,
        Fx {
            alice,
            p,
            q,
            f,
            g,
            c,
        },
    )
}

/// The parent of `c` through the polymorphic end, asked of each relation in turn, which
/// must agree with `poly_parent` and name at most one parent.
fn parent_of(s: &Store, r: &R, c: Key<Comment>) -> Option<AnyKey> {
    let found: Vec<AnyKey> = [
        s.parent(r.post_comments, c).map(|p| any("posts", p)),
        s.parent(r.photo_comments, c).map(|p| any("photos", p)),
        s.parent(r.replies, c).map(|p| any("comments", p)),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(found.len() <= 1, "{c:?} has two parents: {found:?}");
    assert_eq!(s.poly_parent(r.target, c), found.first().copied());
    found.first().copied()
}

/// Every observable fact of a comment world, one a line: each table in slot order, each
/// relation from both ends, each comment's parent through the polymorphic end.
fn dump(s: &Store, r: &R) -> String {
    let mut out = String::new();
    dump_table::<User>(&mut out, s, "users");
    dump_table::<Post>(&mut out, s, "posts");
    dump_table::<Photo>(&mut out, s, "photos");
    dump_table::<Comment>(&mut out, s, "comments");
    dump_ends(&mut out, s, "post_comments", r.post_comments);
    dump_ends(&mut out, s, "photo_comments", r.photo_comments);
    dump_ends(&mut out, s, "replies", r.replies);
    dump_ends(&mut out, s, "authored", r.authored);
    dump_ends(&mut out, s, "gallery", r.gallery);
    for c in s.keys::<Comment>() {
        writeln!(out, "  target of {c:?} = {:?}", parent_of(s, r, c)).unwrap();
    }
    out
}

fn kids<P: Entity>(s: &Store, rel: OneToMany<P, Comment>, p: Key<P>) -> Vec<Key<Comment>> {
    s.children(rel, p).collect()
}

/// Runs `f` in a transaction that then fails, and asserts the store is exactly as before.
fn assert_undone(s: &mut Store, r: &R, f: impl FnOnce(&mut Store)) {
    let before = dump(s, r);
    let out: Result<(), &str> = s.transaction(|s| {
        f(s);
        check(s);
        Err("undo")
    });
    assert_eq!(out, Err("undo"));
    check(s);
    assert_eq!(dump(s, r), before);
}

/// Asserts that `f` returns an error and leaves the store exactly as it was.
#[track_caller]
fn assert_refused<T: std::fmt::Debug, E>(
    s: &mut Store,
    r: &R,
    f: impl FnOnce(&mut Store) -> Result<T, E>,
) -> E {
    let before = dump(s, r);
    let e = f(s).expect_err("the call should have been refused");
    check(s);
    assert_eq!(dump(s, r), before, "a refused call changed the store");
    e
}

// ----- one parent at a time -----------------------------------------------------------

#[test]
fn a_child_names_its_parent_by_table_whichever_relation_links_it() {
    let (s, r, Fx { p, f, c, .. }) = populated(Config::default());
    assert_eq!(s.poly_parent(r.target, c[0]), Some(any("posts", p)));
    assert_eq!(s.poly_parent(r.target, c[1]), Some(any("posts", p)));
    assert_eq!(s.poly_parent(r.target, c[2]), Some(any("photos", f)));
    assert_eq!(s.poly_parent(r.target, c[3]), Some(any("comments", c[0])));
    assert_eq!(s.poly_parent(r.target, c[4]), None);
    for &k in &c {
        parent_of(&s, &r, k);
    }
}

#[test]
fn linking_a_child_under_another_parent_type_moves_it_there() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config::default());
    s.link(r.photo_comments, f, c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.post_comments, p), [c[1]]);
    assert_eq!(kids(&s, r.photo_comments, f), [c[2], c[0]]);
    assert_eq!(s.parent(r.post_comments, c[0]), None);
    assert_eq!(s.parent(r.photo_comments, c[0]), Some(f));
    assert_eq!(parent_of(&s, &r, c[0]), Some(any("photos", f)));
    // and on to a comment, the third parent type
    s.link(r.replies, c[4], c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, f), [c[2]]);
    assert_eq!(kids(&s, r.replies, c[4]), [c[0]]);
    assert_eq!(parent_of(&s, &r, c[0]), Some(any("comments", c[4])));
    assert_eq!(
        kids(&s, r.replies, c[0]),
        [c[3]],
        "c0 keeps its own replies"
    );
    // and back to a post
    s.link(r.post_comments, p, c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.post_comments, p), [c[1], c[0]]);
    assert_eq!(s.child_count(r.replies, c[4]), 0);
    assert_eq!(
        s.link_count(r.post_comments) + s.link_count(r.photo_comments),
        3
    );
    assert_eq!(s.link_count(r.replies), 1);
}

#[test]
fn linking_under_another_parent_of_the_same_type_is_an_ordinary_move() {
    let (mut s, r, Fx { p, q, c, .. }) = populated(Config::default());
    s.link(r.post_comments, q, c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.post_comments, p), [c[1]]);
    assert_eq!(kids(&s, r.post_comments, q), [c[0]]);
    assert_eq!(parent_of(&s, &r, c[0]), Some(any("posts", q)));
}

#[test]
fn linking_a_child_to_the_parent_it_has_changes_nothing() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config::default());
    let before = dump(&s, &r);
    s.link(r.post_comments, p, c[0]).unwrap();
    check(&s);
    s.link(r.photo_comments, f, c[2]).unwrap();
    check(&s);
    s.link(r.replies, c[0], c[3]).unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), before);
}

#[test]
fn set_children_takes_each_new_child_from_whichever_parent_had_it() {
    let (mut s, r, Fx { p, f, g, c, .. }) = populated(Config::default());
    s.set_children(r.photo_comments, g, &[c[3], c[0], c[2], c[4]])
        .unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, g), [c[3], c[0], c[2], c[4]]);
    assert_eq!(kids(&s, r.post_comments, p), [c[1]]);
    assert_eq!(kids(&s, r.photo_comments, f), []);
    assert_eq!(kids(&s, r.replies, c[0]), []);
    for k in [c[0], c[2], c[3], c[4]] {
        assert_eq!(parent_of(&s, &r, k), Some(any("photos", g)));
    }
    // a comment can take back a reply from a photo, and the order is the one given
    s.set_children(r.replies, c[1], &[c[0], c[3]]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, g), [c[2], c[4]]);
    assert_eq!(kids(&s, r.replies, c[1]), [c[0], c[3]]);
}

#[test]
fn set_children_dropping_a_child_leaves_it_without_a_parent() {
    let (mut s, r, Fx { p, c, .. }) = populated(Config::default());
    s.set_children(r.post_comments, p, &[c[1]]).unwrap();
    check(&s);
    assert_eq!(parent_of(&s, &r, c[0]), None);
    assert!(s.contains(c[0]));
    s.set_children(r.post_comments, p, &[]).unwrap();
    check(&s);
    assert_eq!(parent_of(&s, &r, c[1]), None);
    assert_eq!(s.link_count(r.post_comments), 0);
}

#[test]
fn unlinking_through_a_relation_that_does_not_hold_the_child_changes_nothing() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config::default());
    let before = dump(&s, &r);
    assert!(!s.unlink(r.photo_comments, f, c[0]).unwrap());
    assert!(!s.unlink(r.replies, c[1], c[0]).unwrap());
    check(&s);
    assert_eq!(dump(&s, &r), before);
    assert!(s.unlink(r.post_comments, p, c[0]).unwrap());
    check(&s);
    assert_eq!(parent_of(&s, &r, c[0]), None);
}

#[test]
fn every_parent_type_lists_its_own_children_from_both_ends() {
    let (s, r, Fx { p, q, f, g, c, .. }) = populated(Config::default());
    assert_eq!(kids(&s, r.post_comments, p), [c[0], c[1]]);
    assert_eq!(
        s.targets(r.post_comments, p).collect::<Vec<_>>(),
        [c[0], c[1]]
    );
    assert_eq!(s.sources(r.post_comments, c[1]).collect::<Vec<_>>(), [p]);
    assert_eq!(s.sources(r.photo_comments, c[1]).count(), 0);
    assert_eq!(kids(&s, r.photo_comments, f), [c[2]]);
    assert_eq!(kids(&s, r.replies, c[0]), [c[3]]);
    assert_eq!(
        (
            s.child_count(r.post_comments, q),
            s.child_count(r.photo_comments, g)
        ),
        (0, 0)
    );
    assert!(s.linked(r.photo_comments, f, c[2]));
    assert!(!s.linked(r.post_comments, p, c[2]));
    assert_eq!(s.source_count(r.replies, c[3]), 1);
    assert_eq!(s.source_count(r.post_comments, c[3]), 0);
}

#[test]
fn a_move_between_parent_types_keeps_the_childs_other_relations() {
    let (mut s, r, Fx { alice, f, c, .. }) = populated(Config::default());
    s.link(r.photo_comments, f, c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.authored, alice), [c[0], c[2]]);
    assert_eq!(s.parent(r.authored, c[0]), Some(alice));
}

#[test]
fn stale_keys_are_refused_and_change_nothing() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config::default());
    let gone_c = comment(&mut s, "gone");
    s.remove(gone_c).unwrap();
    check(&s);
    let gone_f = photo(&mut s, "gone");
    s.remove(gone_f).unwrap();
    check(&s);
    let stale_c = LinkError::Stale(StaleKey {
        key: any("comments", gone_c),
    });
    let e = assert_refused(&mut s, &r, |s| s.link(r.photo_comments, f, gone_c));
    assert_eq!(e, stale_c);
    let e = assert_refused(&mut s, &r, |s| s.link(r.replies, gone_c, c[0]));
    assert_eq!(e, stale_c);
    let e = assert_refused(&mut s, &r, |s| {
        s.set_children(r.post_comments, p, &[c[0], gone_c])
    });
    assert_eq!(e, stale_c);
    let e = assert_refused(&mut s, &r, |s| s.link(r.photo_comments, gone_f, c[0]));
    assert_eq!(
        e,
        LinkError::Stale(StaleKey {
            key: any("photos", gone_f)
        })
    );
    assert_eq!(s.poly_parent(r.target, gone_c), None);
}

#[test]
fn a_duplicate_in_a_new_collection_is_refused_and_changes_nothing() {
    let (mut s, r, Fx { f, c, .. }) = populated(Config::default());
    let e = assert_refused(&mut s, &r, |s| {
        s.set_children(r.photo_comments, f, &[c[0], c[2], c[0]])
    });
    assert!(
        matches!(e, LinkError::Duplicate { key, .. } if key == c[0].raw()),
        "{e:?}"
    );
}

// ----- deletes ------------------------------------------------------------------------

#[test]
fn deleting_a_parent_applies_its_own_relations_rule_to_its_children() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        post_comments: Cascade.into(),
        ..Config::default()
    });
    s.remove(f).unwrap();
    check(&s);
    assert!(s.contains(c[2]), "photos nullify their comments");
    assert_eq!(parent_of(&s, &r, c[2]), None);
    s.remove(p).unwrap();
    check(&s);
    assert!(
        !s.contains(c[0]) && !s.contains(c[1]),
        "posts cascade to their comments"
    );
    assert!(s.contains(c[3]), "replies nullify");
    assert_eq!(parent_of(&s, &r, c[3]), None);
    assert_eq!(s.len::<Comment>(), 3);
    assert_eq!(s.link_count(r.post_comments), 0);
}

#[test]
fn a_cascade_through_the_end_follows_replies_to_any_depth() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        post_comments: Cascade.into(),
        replies: Cascade.into(),
        ..Config::default()
    });
    let c5 = comment(&mut s, "c5");
    s.link(r.replies, c[3], c5).unwrap();
    check(&s);
    // c2 moves under c5: deleting the post reaches it through three levels
    s.link(r.replies, c5, c[2]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, f), []);
    s.remove(p).unwrap();
    check(&s);
    assert_eq!(s.keys::<Comment>().collect::<Vec<_>>(), [c[4]]);
    assert_eq!(s.link_count(r.replies), 0);
}

#[test]
fn restrict_on_one_relation_of_the_end_blocks_only_that_parent_type() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        photo_comments: Restrict.into(),
        ..Config::default()
    });
    let e = assert_refused(&mut s, &r, |s| s.remove(f));
    let relation = s.schema().relations().nth(1).unwrap().1;
    assert_eq!(relation.to_string(), "photos.comments <-> comments.target");
    assert_eq!(
        e,
        RemoveError::Restricted {
            relation,
            key: any("photos", f),
            blocker: any("comments", c[2]),
        }
    );
    s.remove(p).unwrap();
    check(&s);
    // once its comment has moved to another type the photo can go
    let q = post(&mut s, "q2");
    s.link(r.post_comments, q, c[2]).unwrap();
    check(&s);
    s.remove(f).unwrap();
    check(&s);
    assert_eq!(parent_of(&s, &r, c[2]), Some(any("posts", q)));
}

#[test]
fn the_child_end_rule_is_the_one_of_the_relation_that_holds_the_child() {
    let (mut s, r, Fx { p, g, c, .. }) = populated(Config {
        post_comments: Rules::new().on_delete_b(Restrict),
        ..Config::default()
    });
    let e = assert_refused(&mut s, &r, |s| s.remove(c[0]));
    assert!(matches!(e, RemoveError::Restricted { blocker, .. } if blocker == any("posts", p)));
    s.link(r.photo_comments, g, c[0]).unwrap();
    check(&s);
    s.remove(c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, g), []);
    assert_eq!(parent_of(&s, &r, c[3]), None);
}

#[test]
fn deleting_a_child_removes_it_from_whichever_parent_holds_it() {
    let (mut s, r, Fx { alice, p, f, c, .. }) = populated(Config::default());
    s.remove(c[2]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.photo_comments, f), []);
    s.remove(c[0]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.post_comments, p), [c[1]]);
    assert_eq!(parent_of(&s, &r, c[3]), None);
    assert_eq!(s.child_count(r.authored, alice), 0);
    s.remove(c[3]).unwrap();
    check(&s);
    assert_eq!(s.link_count(r.replies), 0);
}

#[test]
fn preview_remove_of_a_parent_lists_the_children_its_relation_takes() {
    let (mut s, r, Fx { alice, p, f, c, .. }) = populated(Config {
        post_comments: Cascade.into(),
        ..Config::default()
    });
    let before = dump(&s, &r);
    let preview = s.preview_remove(p).unwrap();
    assert_eq!(dump(&s, &r), before);
    assert!(preview.allowed());
    assert_eq!(
        preview.removed,
        [
            any("posts", p),
            any("comments", c[0]),
            any("comments", c[1])
        ]
    );
    let survivors: Vec<AnyKey> = preview.unlinked.iter().map(|u| u.survivor).collect();
    assert_eq!(survivors.len(), 3, "{survivors:?}");
    for s in [any("photos", f), any("comments", c[3]), any("users", alice)] {
        assert!(survivors.contains(&s), "{s} survives");
    }
    s.remove(p).unwrap();
    check(&s);
    assert_eq!(s.len::<Comment>(), 3);
    assert_eq!(parent_of(&s, &r, c[3]), None);
}

// ----- orphans of a move --------------------------------------------------------------

#[test]
fn delete_orphan_on_the_child_end_deletes_the_old_parent_its_last_child_leaves() {
    let (mut s, r, Fx { p, f, g, c, .. }) = populated(Config {
        photo_comments: Rules::new().on_delete_b(DeleteOrphan),
        ..Config::default()
    });
    s.link(r.photo_comments, g, c[0]).unwrap();
    check(&s);
    // moving c2, f's only comment, to a post deletes f
    s.link(r.post_comments, p, c[2]).unwrap();
    check(&s);
    assert!(!s.contains(f));
    assert_eq!(s.child_count(r.gallery, p), 0);
    assert_eq!(kids(&s, r.post_comments, p), [c[1], c[2]]);
    // and moving g's only comment by replacing a collection deletes g
    s.set_children(r.replies, c[4], &[c[0]]).unwrap();
    check(&s);
    assert!(!s.contains(g));
    assert_eq!(s.len::<Photo>(), 0);
}

#[test]
fn delete_orphan_on_the_parent_end_keeps_a_child_that_moves_to_another_type() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        post_comments: DeleteOrphan.into(),
        ..Config::default()
    });
    s.link(r.photo_comments, f, c[0]).unwrap();
    check(&s);
    assert!(s.contains(c[0]), "a move does not orphan the child");
    s.set_children(r.replies, c[2], &[c[1]]).unwrap();
    check(&s);
    assert!(s.contains(c[1]));
    assert_eq!(s.child_count(r.post_comments, p), 0);
    // an unlink from the post does orphan
    s.link(r.post_comments, p, c[4]).unwrap();
    check(&s);
    s.unlink(r.post_comments, p, c[4]).unwrap();
    check(&s);
    assert!(!s.contains(c[4]));
}

#[test]
fn a_move_whose_orphaned_old_parent_cannot_be_deleted_is_refused() {
    let (mut s, r, Fx { p, q, f, c, .. }) = populated(Config {
        photo_comments: Rules::new().on_delete_b(DeleteOrphan),
        gallery: Rules::new().on_delete_b(Restrict),
        ..Config::default()
    });
    let gallery = s.schema().relations().nth(4).unwrap().1;
    let expected = LinkError::OrphanDelete(RemoveError::Restricted {
        relation: gallery,
        key: any("photos", f),
        blocker: any("posts", p),
    });
    let e = assert_refused(&mut s, &r, |s| s.link(r.post_comments, q, c[2]));
    assert_eq!(e, expected);
    let e = assert_refused(&mut s, &r, |s| s.set_children(r.post_comments, q, &[c[2]]));
    assert_eq!(e, expected);
    let e = assert_refused(&mut s, &r, |s| s.link(r.replies, c[4], c[2]));
    assert_eq!(e, expected);
    assert_eq!(parent_of(&s, &r, c[2]), Some(any("photos", f)));
    // outside the gallery the same move goes ahead and deletes the photo
    s.unlink(r.gallery, p, f).unwrap();
    check(&s);
    s.link(r.post_comments, q, c[2]).unwrap();
    check(&s);
    assert!(!s.contains(f));
}

#[test]
fn a_move_whose_orphaned_old_parent_would_delete_the_new_parent_is_refused() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        post_comments: Rules::new().on_delete_b(DeleteOrphan),
        gallery: Cascade.into(),
        ..Config::default()
    });
    s.link(r.replies, c[4], c[1]).unwrap();
    check(&s);
    assert_eq!(kids(&s, r.post_comments, p), [c[0]]);
    // moving c0, p's last comment, to f orphans p, whose delete cascades to f
    let photo_comments = s.schema().relations().nth(1).unwrap().1;
    let expected = LinkError::DeletesEndpoint {
        relation: photo_comments,
        key: any("photos", f),
    };
    let e = assert_refused(&mut s, &r, |s| s.link(r.photo_comments, f, c[0]));
    assert_eq!(e, expected);
    let e = assert_refused(&mut s, &r, |s| {
        s.set_children(r.photo_comments, f, &[c[2], c[0]])
    });
    assert_eq!(e, expected);
    // to a photo outside p's gallery the move goes ahead, and p goes (with f)
    let g = photo(&mut s, "g2");
    s.link(r.photo_comments, g, c[0]).unwrap();
    check(&s);
    assert!(!s.contains(p) && !s.contains(f));
    assert_eq!(parent_of(&s, &r, c[2]), None);
}

// ----- schema and handles -------------------------------------------------------------

#[test]
#[should_panic(expected = "already has a relation end named `target`")]
fn the_end_name_cannot_be_reused_on_the_child_table() {
    let mut s = Schema::new();
    let posts = s.table::<Post>("posts");
    let comments = s.table::<Comment>("comments");
    s.poly_parent(comments, "target");
    s.one_to_many(posts, "comments", comments, "target", Rules::new());
}

#[test]
#[should_panic(expected = "already has a relation end named `comments`")]
fn a_parent_end_name_cannot_be_reused_on_the_parent_table() {
    let mut s = Schema::new();
    let posts = s.table::<Post>("posts");
    let comments = s.table::<Comment>("comments");
    let target = s.poly_parent(comments, "target");
    s.one_to_many_poly(posts, "comments", target, Rules::new());
    s.one_to_many_poly(posts, "comments", target, Rules::new());
}

#[test]
#[should_panic(expected = "PolyParent handle of another schema")]
fn declaring_into_an_end_of_another_schema_panics() {
    let (_, other) = world(Config::default());
    let mut s = Schema::new();
    let posts = s.table::<Post>("posts");
    s.one_to_many_poly(posts, "comments", other.target, Rules::new());
}

#[test]
#[should_panic(expected = "another schema")]
fn asking_a_store_about_an_end_of_a_schema_declared_differently_panics() {
    let (mut s, _) = world(Config::default());
    // the end declared on another table order: not the same declaration
    let mut other = Schema::new();
    let comments = other.table::<Comment>("comments");
    other.table::<User>("users");
    let target = other.poly_parent(comments, "target");
    let c = comment(&mut s, "c");
    s.poly_parent(target, c);
}

#[test]
fn asking_a_store_about_an_end_of_a_schema_declared_the_same_way_works() {
    let (mut s, r) = world(Config::default());
    let (_, same) = world(Config::default());
    let p = post(&mut s, "p");
    let c = comment(&mut s, "c");
    s.link(r.post_comments, p, c).unwrap();
    assert_eq!(s.poly_parent(same.target, c), s.poly_parent(r.target, c));
    assert!(s.poly_parent(same.target, c).is_some());
}

#[test]
fn two_relations_from_one_parent_table_into_the_end_exclude_each_other() {
    let mut schema = Schema::new();
    let posts = schema.table::<Post>("posts");
    let comments = schema.table::<Comment>("comments");
    let target = schema.poly_parent(comments, "target");
    let thread = schema.one_to_many_poly(posts, "comments", target, Rules::new());
    let pinned = schema.one_to_many_poly(posts, "pinned", target, Rules::new());
    let mut s = Store::new(schema);
    let p = post(&mut s, "p");
    let c = comment(&mut s, "c");
    s.link(thread, p, c).unwrap();
    check(&s);
    s.link(pinned, p, c).unwrap();
    check(&s);
    assert_eq!(s.child_count(thread, p), 0);
    assert_eq!(s.children(pinned, p).collect::<Vec<_>>(), [c]);
    assert_eq!(s.poly_parent(target, c), Some(any("posts", p)));
    s.set_children(thread, p, &[c]).unwrap();
    check(&s);
    assert_eq!(s.child_count(pinned, p), 0);
    assert_eq!(s.parent(thread, c), Some(p));
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Media {
    bytes: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Still {
    px: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Clip {
    secs: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Feedback {
    at: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Note {
    text: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Vote {
    up: bool,
}

#[test]
fn kinds_can_be_the_parents_and_the_children_of_a_polymorphic_end() {
    let mut schema = Schema::new();
    let media = schema.table::<Media>("media");
    let still = schema.kind::<Media, Still>(media, "still");
    let clip = schema.kind::<Media, Clip>(media, "clip");
    let feedback = schema.table::<Feedback>("feedback");
    let note = schema.kind::<Feedback, Note>(feedback, "note");
    let vote = schema.kind::<Feedback, Vote>(feedback, "vote");
    let on = schema.poly_parent(note, "on");
    let still_notes = schema.one_to_many_poly(still, "notes", on, Cascade);
    let clip_notes = schema.one_to_many_poly(clip, "notes", on, Rules::new());
    let mut s = Store::new(schema);
    let st = s.insert_kind(still, Media { bytes: 1 }, Still { px: 64 });
    let cl = s.insert_kind(clip, Media { bytes: 2 }, Clip { secs: 3 });
    let n0 = s.insert_kind(note, Feedback { at: 0 }, note_of("n0"));
    let n1 = s.insert_kind(note, Feedback { at: 1 }, note_of("n1"));
    let v = s.insert_kind(vote, Feedback { at: 2 }, Vote { up: true });
    s.link(still_notes, st, n0).unwrap();
    check(&s);
    s.link(still_notes, st, n1).unwrap();
    check(&s);
    assert_eq!(
        s.poly_parent(on, n0),
        Some(any("still", st)),
        "named by its kind"
    );
    // a vote is not a note: the end refuses it as stale
    let forged: Key<Note> = Key::from_raw(v.raw());
    assert!(matches!(
        s.link(clip_notes, cl, forged),
        Err(LinkError::Stale(_))
    ));
    assert_eq!(s.poly_parent(on, forged), None);
    // the still's notes hold it to its kind, and a note to its kind
    let st_base = still.upcast(st);
    let e = s.change_kind(st_base, clip, Clip { secs: 1 }).unwrap_err();
    check(&s);
    assert!(matches!(e, relgraph::KindError::Linked { .. }), "{e:?}");
    let e = s
        .change_kind(note.upcast(n0), vote, Vote { up: false })
        .unwrap_err();
    assert!(matches!(e, relgraph::KindError::Linked { .. }), "{e:?}");
    check(&s);
    // moving n0 to the clip
    s.link(clip_notes, cl, n0).unwrap();
    check(&s);
    assert_eq!(s.poly_parent(on, n0), Some(any("clip", cl)));
    assert_eq!(s.children(still_notes, st).collect::<Vec<_>>(), [n1]);
    // deleting the still by its base key cascades to its remaining note, base row too
    s.remove(st_base).unwrap();
    check(&s);
    assert!(!s.contains(note.upcast(n1)));
    assert_eq!(
        (s.len::<Feedback>(), s.len::<Note>(), s.len::<Media>()),
        (2, 1, 1)
    );
    // deleting a note by its base key removes it from the clip
    s.remove(note.upcast(n0)).unwrap();
    check(&s);
    assert_eq!(s.child_count(clip_notes, cl), 0);
    assert_eq!(s.len::<Feedback>(), 1);
}

#[test]
fn a_refused_move_names_a_parent_of_a_kind_by_its_kind() {
    // a still's last note leaving it deletes the still, which cascades to its clips
    let mut schema = Schema::new();
    let media = schema.table::<Media>("media");
    let still = schema.kind::<Media, Still>(media, "still");
    let clip = schema.kind::<Media, Clip>(media, "clip");
    let notes = schema.table::<Note>("notes");
    let on = schema.poly_parent(notes, "on");
    let orphan_parent = Rules::new().on_delete_b(DeleteOrphan);
    let still_notes = schema.one_to_many_poly(still, "notes", on, orphan_parent);
    let clip_notes = schema.one_to_many_poly(clip, "notes", on, Rules::new());
    let cuts = schema.one_to_many(still, "cuts", clip, "from", Cascade);
    let mut s = Store::new(schema);
    let st = s.insert_kind(still, Media { bytes: 1 }, Still { px: 64 });
    let cl = s.insert_kind(clip, Media { bytes: 2 }, Clip { secs: 3 });
    let n = s.insert(note_of("n"));
    s.link(still_notes, st, n).unwrap();
    check(&s);
    s.link(cuts, st, cl).unwrap();
    check(&s);
    let e = s.link(clip_notes, cl, n).unwrap_err();
    check(&s);
    let LinkError::DeletesEndpoint { key, .. } = e else {
        panic!("expected DeletesEndpoint, got {e:?}");
    };
    assert_eq!(
        key,
        any("clip", cl),
        "named by its kind, as every report does"
    );
    assert_eq!(s.poly_parent(on, n), Some(any("still", st)));
    assert_eq!(s.children(cuts, st).collect::<Vec<_>>(), [cl]);
}

fn note_of(text: &str) -> Note {
    Note { text: text.into() }
}

// ----- transactions -------------------------------------------------------------------

#[test]
fn every_move_in_a_failed_transaction_is_undone_exactly() {
    let (mut s, r, Fx { p, q, f, g, c, .. }) = populated(Config::default());
    assert_undone(&mut s, &r, |s| s.link(r.photo_comments, f, c[0]).unwrap());
    assert_undone(&mut s, &r, |s| s.link(r.replies, c[4], c[1]).unwrap());
    assert_undone(&mut s, &r, |s| s.link(r.post_comments, q, c[3]).unwrap());
    assert_undone(&mut s, &r, |s| {
        s.set_children(r.photo_comments, g, &[c[3], c[0], c[2]])
            .unwrap()
    });
    assert_undone(&mut s, &r, |s| {
        s.set_children(r.post_comments, p, &[c[1]]).unwrap()
    });
    assert_undone(&mut s, &r, |s| {
        assert!(s.unlink(r.replies, c[0], c[3]).unwrap());
    });
    assert_undone(&mut s, &r, |s| {
        // a long chain of moves, every child ending somewhere else
        for (i, &k) in c.iter().enumerate() {
            match i % 3 {
                0 => s.link(r.photo_comments, g, k).unwrap(),
                1 => s.link(r.post_comments, q, k).unwrap(),
                _ => s.link(r.replies, c[4], k).unwrap(),
            }
        }
        s.set_children(r.post_comments, p, &c[..2]).unwrap();
        check(s);
    });
}

#[test]
fn deletes_through_the_end_in_a_failed_transaction_are_undone_exactly() {
    let (mut s, r, Fx { p, f, c, .. }) = populated(Config {
        post_comments: Cascade.into(),
        photo_comments: Rules::new().on_delete_b(DeleteOrphan),
        replies: Cascade.into(),
        ..Config::default()
    });
    assert_undone(&mut s, &r, |s| s.remove(p).unwrap());
    assert_undone(&mut s, &r, |s| s.remove(f).unwrap());
    assert_undone(&mut s, &r, |s| s.remove(c[0]).unwrap());
    assert_undone(&mut s, &r, |s| {
        s.remove(c[2]).unwrap();
        check(s);
        assert!(!s.contains(f), "f lost its last comment");
    });
    assert_undone(&mut s, &r, |s| {
        s.link(r.post_comments, p, c[2]).unwrap();
        check(s);
        assert!(!s.contains(f), "f lost its last comment to a move");
        s.remove(p).unwrap();
        check(s);
    });
}

#[test]
fn a_committed_transaction_keeps_its_moves() {
    let (mut s, r, Fx { f, c, .. }) = populated(Config::default());
    let out: Result<(), LinkError> = s.transaction(|s| {
        s.link(r.photo_comments, f, c[0])?;
        check(s);
        s.link(r.replies, c[0], c[1])?;
        check(s);
        Ok(())
    });
    out.unwrap();
    check(&s);
    assert_eq!(parent_of(&s, &r, c[0]), Some(any("photos", f)));
    assert_eq!(parent_of(&s, &r, c[1]), Some(any("comments", c[0])));
}

// ----- model -----------------------------------------------------------------------------

/// Which relation of the end: 0 posts, 1 photos, 2 replies.
type Member = usize;

/// A plain model of the end: each parent's children in order, each child's parent.
#[derive(Clone, Default)]
struct Model {
    lists: BTreeMap<(Member, RawKey), Vec<RawKey>>,
    parent: BTreeMap<RawKey, (Member, RawKey)>,
}

impl Model {
    fn detach(&mut self, c: RawKey) {
        if let Some(at) = self.parent.remove(&c) {
            self.lists.get_mut(&at).unwrap().retain(|&k| k != c);
        }
    }

    fn link(&mut self, at: (Member, RawKey), c: RawKey) {
        if self.parent.get(&c) == Some(&at) {
            return;
        }
        self.detach(c);
        self.lists.entry(at).or_default().push(c);
        self.parent.insert(c, at);
    }

    fn set(&mut self, at: (Member, RawKey), cs: &[RawKey]) {
        let old = self.lists.get(&at).cloned().unwrap_or_default();
        for c in old {
            self.detach(c);
        }
        for &c in cs {
            self.detach(c);
            self.parent.insert(c, at);
        }
        self.lists.insert(at, cs.to_vec());
    }

    /// A parent goes: its children lose their parent (every rule nullifies).
    fn remove_parent(&mut self, at: (Member, RawKey)) {
        for c in self.lists.remove(&at).unwrap_or_default() {
            self.parent.remove(&c);
        }
    }
}

const TABLES: [&str; 3] = ["posts", "photos", "comments"];

/// Random links, moves, replaced collections, unlinks and deletes through the end, with
/// failing transactions among them, checked after every step against the model and the
/// integrity check.
#[test]
fn random_operations_on_the_end_agree_with_a_model() {
    for seed in 1..=10 {
        let (mut s, r) = world(Config::default());
        let mut m = Model::default();
        let mut rng = Rng::new(seed);
        for _ in 0..3 {
            post(&mut s, "p");
            photo(&mut s, "f");
        }
        for _ in 0..6 {
            comment(&mut s, "c");
        }
        for step in 0..500 {
            let in_txn = rng.below(10) == 0;
            let before = in_txn.then(|| dump(&s, &r));
            let mut shadow = m.clone();
            let model = if in_txn { &mut shadow } else { &mut m };
            let out: Result<(), ()> = s.transaction(|s| {
                for _ in 0..if in_txn { 5 } else { 1 } {
                    random_op(s, &r, &mut rng, model);
                    check(s);
                }
                if in_txn {
                    Err(())
                } else {
                    Ok(())
                }
            });
            assert_eq!(out.is_err(), in_txn);
            check(&s);
            if let Some(before) = before {
                assert_eq!(dump(&s, &r), before, "seed {seed} step {step}: rollback");
            }
            agree(&s, &r, &m);
        }
    }
}

fn random_op(s: &mut Store, r: &R, rng: &mut Rng, m: &mut Model) {
    let posts: Vec<Key<Post>> = s.keys::<Post>().collect();
    let photos: Vec<Key<Photo>> = s.keys::<Photo>().collect();
    let comments: Vec<Key<Comment>> = s.keys::<Comment>().collect();
    if posts.is_empty() || photos.is_empty() || comments.len() < 2 {
        post(s, "p");
        photo(s, "f");
        comment(s, "c");
        comment(s, "c");
        return;
    }
    let member = rng.below(3);
    let at: RawKey = match member {
        0 => rng.pick(&posts).raw(),
        1 => rng.pick(&photos).raw(),
        _ => rng.pick(&comments).raw(),
    };
    let c = rng.pick(&comments);
    match rng.below(10) {
        0..=3 => {
            match member {
                0 => s.link(r.post_comments, Key::from_raw(at), c),
                1 => s.link(r.photo_comments, Key::from_raw(at), c),
                _ => s.link(r.replies, Key::from_raw(at), c),
            }
            .unwrap();
            m.link((member, at), c.raw());
        }
        4 | 5 => {
            let mut cs: Vec<Key<Comment>> = Vec::new();
            for _ in 0..rng.below(4) {
                let k = rng.pick(&comments);
                if !cs.contains(&k) {
                    cs.push(k);
                }
            }
            match member {
                0 => s.set_children(r.post_comments, Key::from_raw(at), &cs),
                1 => s.set_children(r.photo_comments, Key::from_raw(at), &cs),
                _ => s.set_children(r.replies, Key::from_raw(at), &cs),
            }
            .unwrap();
            let raw: Vec<RawKey> = cs.iter().map(|k| k.raw()).collect();
            m.set((member, at), &raw);
        }
        6 => {
            let linked = match member {
                0 => s.unlink(r.post_comments, Key::from_raw(at), c),
                1 => s.unlink(r.photo_comments, Key::from_raw(at), c),
                _ => s.unlink(r.replies, Key::from_raw(at), c),
            }
            .unwrap();
            assert_eq!(linked, m.parent.get(&c.raw()) == Some(&(member, at)));
            if linked {
                m.detach(c.raw());
            }
        }
        7 => {
            match member {
                0 => s.remove(Key::<Post>::from_raw(at)).unwrap(),
                1 => s.remove(Key::<Photo>::from_raw(at)).unwrap(),
                _ => {
                    m.detach(at);
                    s.remove(Key::<Comment>::from_raw(at)).unwrap();
                }
            }
            m.remove_parent((member, at));
        }
        8 => match rng.below(3) {
            0 => drop(post(s, "p")),
            1 => drop(photo(s, "f")),
            _ => drop(comment(s, "c")),
        },
        _ => {
            // reading the end changes nothing
            let before = dump(s, r);
            for &k in &comments {
                s.poly_parent(r.target, k);
            }
            assert_eq!(dump(s, r), before);
        }
    }
}

fn agree(s: &Store, r: &R, m: &Model) {
    for c in s.keys::<Comment>() {
        let expected = m.parent.get(&c.raw()).map(|&(member, at)| AnyKey {
            table: TABLES[member],
            key: at,
        });
        assert_eq!(parent_of(s, r, c), expected, "target of {c:?}");
    }
    assert_eq!(
        m.parent.len(),
        s.link_count(r.post_comments) + s.link_count(r.photo_comments) + s.link_count(r.replies)
    );
    for (&(member, at), list) in &m.lists {
        let actual: Vec<RawKey> = match member {
            0 => s
                .children(r.post_comments, Key::from_raw(at))
                .map(Key::raw)
                .collect(),
            1 => s
                .children(r.photo_comments, Key::from_raw(at))
                .map(Key::raw)
                .collect(),
            _ => s
                .children(r.replies, Key::from_raw(at))
                .map(Key::raw)
                .collect(),
        };
        assert_eq!(&actual, list, "children of {}[{at:?}]", TABLES[member]);
    }
}

#[test]
fn a_poly_parent_relation_declared_by_a_named_end_is_the_positional_one() {
    let mut named = Schema::new();
    let posts = named.table::<Post>("posts");
    let users = named.table::<User>("users");
    let comments = named.table::<Comment>("comments");
    let target = named.poly_parent(comments, "target");
    let on_posts = named.relate(posts.many("comments").on_delete(Cascade), target);
    let on_users = named.relate(users.many("comments"), target);
    let mut positional = Schema::new();
    let posts = positional.table::<Post>("posts");
    let users = positional.table::<User>("users");
    let comments = positional.table::<Comment>("comments");
    let target = positional.poly_parent(comments, "target");
    positional.one_to_many_poly(posts, "comments", target, Cascade);
    positional.one_to_many_poly(users, "comments", target, Rules::new());
    assert_eq!(named.fingerprint(), positional.fingerprint());

    let mut s = Store::new(named);
    let p = post(&mut s, "p");
    let u = s.insert(User { name: "u".into() });
    let text = |t: &str| Comment { text: t.into() };
    let c = s.insert_child(on_posts, p, text("c")).unwrap();
    s.link(on_users, u, c).unwrap(); // a move: one parent across the end
    assert_eq!(s.parent(on_posts, c), None);
    assert_eq!(s.parent(on_users, c), Some(u));
    let d = s.insert_child(on_posts, p, text("d")).unwrap();
    s.remove(p).unwrap();
    assert!(!s.contains(d), "deleting a post deletes its comments");
    check(&s);
}
