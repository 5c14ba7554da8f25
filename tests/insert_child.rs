//! `insert_child` against what it stands for, an `insert` and a `link` in one transaction:
//! the same keys, the same state, the same feed batch, one undo step, under every kind of
//! one-to-many rules (plain, delete-orphan, acyclic, no self-links); and a child table
//! whose index key panics leaves nothing behind.

mod common;

use common::*;
use relgraph::{DeleteRule, Entity, Key, LinkError, OneToMany, Rules, Schema, Store, Table};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn configs() -> Vec<(&'static str, Config)> {
    let reports = |rules: Rules| Config {
        reports: rules,
        ..Config::default()
    };
    vec![
        ("plain", Config::default()),
        (
            "cascade",
            Config {
                posts: Rules::new().on_delete(DeleteRule::Cascade),
                ..Config::default()
            },
        ),
        (
            "delete-orphan",
            Config {
                posts: Rules::new().on_delete(DeleteRule::DeleteOrphan),
                reports: Rules::new().on_delete(DeleteRule::DeleteOrphan),
                ..Config::default()
            },
        ),
        ("acyclic", reports(Rules::new().acyclic())),
        ("no self-links", reports(Rules::new().forbid_self_links())),
    ]
}

/// A store with a few users, posts and a three-level hierarchy, some of it removed (so
/// that new rows reuse slots), and the keys to build on.
fn started(cfg: Config) -> (Store, Rels, Vec<Key<User>>, Vec<Key<Employee>>) {
    let (mut s, r) = world(cfg);
    let users: Vec<_> = ["a", "b", "c"].iter().map(|n| user(&mut s, n)).collect();
    let ps = posts(&mut s, "p", 4);
    for (i, &p) in ps.iter().enumerate() {
        s.link(r.posts, users[i % 2], p).unwrap();
    }
    s.remove(ps[1]).unwrap();
    let es: Vec<_> = ["top", "mid", "low", "gone"]
        .iter()
        .map(|n| employee(&mut s, n))
        .collect();
    s.link(r.reports, es[0], es[1]).unwrap();
    s.link(r.reports, es[1], es[2]).unwrap();
    s.remove(es[3]).unwrap();
    (s, r, users, es[..3].to_vec())
}

/// `insert` + `link` in one transaction: what `insert_child` stands for.
fn by_hand<P: Entity, C: Entity>(
    s: &mut Store,
    rel: OneToMany<P, C>,
    parent: Key<P>,
    value: C,
) -> Result<Key<C>, LinkError> {
    s.transaction(|s| {
        let k = s.insert(value);
        s.link(rel, parent, k)?;
        Ok(k)
    })
}

#[test]
fn insert_child_equals_insert_and_link_in_a_transaction_under_every_rule() {
    for (name, cfg) in configs() {
        let (mut a, r, users, es) = started(cfg);
        let (mut b, _, _, _) = started(cfg);
        for s in [&mut a, &mut b] {
            s.enable_history(16);
            s.enable_feed(16);
        }
        let (mut ca, mut cb) = (a.feed_cursor(), b.feed_cursor());
        let before = dump(&a, &r);
        let new_post = || Post {
            title: "new".into(),
        };
        let new_emp = || Employee { name: "new".into() };

        let pa = a.insert_child(r.posts, users[1], new_post()).unwrap();
        let pb = by_hand(&mut b, r.posts, users[1], new_post()).unwrap();
        assert_eq!(pa, pb, "{name}: the same key");
        let ea = a.insert_child(r.reports, es[2], new_emp()).unwrap();
        let eb = by_hand(&mut b, r.reports, es[2], new_emp()).unwrap();
        assert_eq!(ea, eb, "{name}: the same key");
        // a child of a root: the deepest and the shallowest parent both
        let fa = a.insert_child(r.reports, es[0], new_emp()).unwrap();
        let fb = by_hand(&mut b, r.reports, es[0], new_emp()).unwrap();
        assert_eq!(fa, fb, "{name}: the same key");

        assert_eq!(dump(&a, &r), dump(&b, &r), "{name}: the same state");
        assert_eq!(a.parent(r.posts, pa), Some(users[1]), "{name}");
        assert_eq!(a.parent(r.reports, ea), Some(es[2]), "{name}");
        let (batches_a, batches_b) = (read_batches(&a, &mut ca), read_batches(&b, &mut cb));
        assert_eq!(batches_a.len(), 3, "{name}: one batch a call");
        assert_eq!(
            format!("{batches_a:?}"),
            format!("{batches_b:?}"),
            "{name}: the same changes"
        );
        check(&a);

        // one undo step each: the row and its link go together
        for _ in 0..3 {
            a.undo().unwrap();
            b.undo().unwrap();
        }
        assert_eq!(dump(&a, &r), before, "{name}: undone");
        assert_eq!(dump(&b, &r), before, "{name}: undone by hand");
        assert!(
            !a.contains(pa) && !a.contains(ea) && !a.contains(fa),
            "{name}"
        );
        for _ in 0..3 {
            a.redo().unwrap();
            b.redo().unwrap();
        }
        assert_eq!(dump(&a, &r), dump(&b, &r), "{name}: redone");
        assert_eq!(a.parent(r.reports, fa), Some(es[0]), "{name}: redone");
        check(&a);
        check(&b);
    }
}

/// With nothing recording and no index on the child table, `insert_child` takes its
/// inline path (one lookup of the parent's list, no savepoint): the same keys and state as
/// `insert` + `link`, for a parent with children, a parent with none yet, a parent in a
/// reused slot (its list left by the removed owner), children in reused slots, and a
/// stale parent in a reused slot.
#[test]
fn insert_child_when_nothing_records_equals_insert_and_link_under_every_rule() {
    for (name, cfg) in configs() {
        let (mut a, r, users, es) = started(cfg);
        let (mut b, _, _, _) = started(cfg);
        let new_post = |t: &str| Post { title: t.into() };
        let new_emp = || Employee { name: "new".into() };
        let same = |a: &Store, b: &Store, what: &str| {
            assert_eq!(dump(a, &r), dump(b, &r), "{name}: {what}");
            check(a);
        };

        // users[0] has children, users[2] none (no list yet); the first new post reuses
        // the slot of the removed post
        for (i, &u) in [users[0], users[2], users[2], users[0]].iter().enumerate() {
            let t = format!("n{i}");
            let pa = a.insert_child(r.posts, u, new_post(&t)).unwrap();
            let pb = by_hand(&mut b, r.posts, u, new_post(&t)).unwrap();
            assert_eq!(pa, pb, "{name}: the same key");
            assert_eq!(a.parent(r.posts, pa), Some(u), "{name}");
        }
        same(&a, &b, "children of a parent with and without a list");

        // a removed user's slot goes to a new user: the old list (emptied) is not theirs,
        // and the removed key is stale while the new one is not
        let gone = users[1];
        for s in [&mut a, &mut b] {
            s.remove(gone).unwrap();
        }
        let (na, nb) = (user(&mut a, "new"), user(&mut b, "new"));
        assert_eq!(na, nb);
        let err = a.insert_child(r.posts, gone, new_post("x")).unwrap_err();
        assert!(matches!(err, LinkError::Stale(_)), "{name}: {err:?}");
        same(&a, &b, "a stale parent in a reused slot inserts nothing");
        let pa = a.insert_child(r.posts, na, new_post("y")).unwrap();
        let pb = by_hand(&mut b, r.posts, nb, new_post("y")).unwrap();
        assert_eq!(pa, pb, "{name}");
        assert_eq!(a.children(r.posts, na).collect::<Vec<_>>(), [pa], "{name}");
        same(&a, &b, "a child of the slot's new owner");

        // the self-referential hierarchy: under a leaf, a root and a reused slot
        for &e in &[es[2], es[0], es[1]] {
            let ea = a.insert_child(r.reports, e, new_emp()).unwrap();
            let eb = by_hand(&mut b, r.reports, e, new_emp()).unwrap();
            assert_eq!(ea, eb, "{name}: the same key");
        }
        same(&a, &b, "the hierarchy");
        check(&b);
    }
}

#[test]
fn insert_child_with_a_stale_parent_inserts_nothing_under_every_rule() {
    for (name, cfg) in configs() {
        let (mut s, r, users, es) = started(cfg);
        s.remove(users[2]).unwrap();
        s.remove(es[2]).unwrap();
        let before = dump(&s, &r);
        let err = s
            .insert_child(r.posts, users[2], Post { title: "x".into() })
            .unwrap_err();
        assert!(matches!(err, LinkError::Stale(_)), "{name}: {err:?}");
        let err = s
            .insert_child(r.reports, es[2], Employee { name: "x".into() })
            .unwrap_err();
        assert!(matches!(err, LinkError::Stale(_)), "{name}: {err:?}");
        assert_eq!(dump(&s, &r), before, "{name}: nothing changed");
        check(&s);
    }
}

#[test]
fn insert_child_inside_a_transaction_rolls_back_with_it() {
    for (name, cfg) in configs() {
        let (mut s, r, users, es) = started(cfg);
        let before = dump(&s, &r);
        let out: Result<(), &str> = s.transaction(|s| {
            s.insert_child(r.posts, users[0], Post { title: "t".into() })
                .unwrap();
            s.insert_child(r.reports, es[1], Employee { name: "t".into() })
                .unwrap();
            Err("roll back")
        });
        assert!(out.is_err());
        assert_eq!(dump(&s, &r), before, "{name}: rolled back");
        check(&s);
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Note {
    text: String,
}

fn note(text: &str) -> Note {
    Note { text: text.into() }
}

/// A store of users and their notes (a cascading one-to-many) with history on and one
/// user, and the index `declare` puts on the notes.
fn users_and_notes<I>(
    declare: impl FnOnce(&mut Schema, Table<Note>) -> I,
) -> (Store, OneToMany<User, Note>, Key<User>, I) {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let notes = schema.table::<Note>("notes");
    let rel = schema.one_to_many(users, "notes", notes, "user", DeleteRule::Cascade);
    let index = declare(&mut schema, notes);
    let mut s = Store::new(schema);
    s.enable_history(8);
    let u = s.insert(User { name: "u".into() });
    (s, rel, u, index)
}

#[test]
fn a_child_whose_index_key_panics_is_not_inserted_and_the_store_goes_on() {
    let (mut s, rel, u, by_text) = users_and_notes(|schema, notes| {
        schema.index(notes, "notes_by_text", |n: &Note| {
            assert!(n.text != "boom", "the key function fails");
            n.text.clone()
        })
    });
    let kept = s.insert_child(rel, u, note("kept")).unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| s.insert_child(rel, u, note("boom"))));
    assert!(panicked.is_err());
    assert_eq!(s.len::<Note>(), 1);
    assert_eq!(s.children(rel, u).collect::<Vec<_>>(), [kept]);
    assert_eq!(s.lookup_all(by_text, "boom").count(), 0);
    check(&s);
    // the store goes on: a new child, and undo takes back the last step only
    let next = s.insert_child(rel, u, note("next")).unwrap();
    assert_eq!(s.lookup(by_text, "next"), Some(next));
    s.undo().unwrap();
    assert_eq!(s.children(rel, u).collect::<Vec<_>>(), [kept]);
    assert_eq!(s.lookup(by_text, "next"), None);
    check(&s);
}

#[test]
fn a_child_of_a_kind_parent_is_made_as_by_hand_and_a_parent_of_another_kind_is_stale() {
    use common::poly::{self, Attachment, Sms};
    let cascade = poly::Config {
        attachments: Rules::new().on_delete(DeleteRule::Cascade),
        ..poly::Config::default()
    };
    for cfg in [poly::Config::default(), cascade] {
        let (mut a, w, fx) = poly::populated(cfg);
        let (mut b, _, _) = poly::populated(cfg);
        for s in [&mut a, &mut b] {
            s.enable_history(16);
            s.enable_feed(16);
        }
        let (mut ca, mut cb) = (a.feed_cursor(), b.feed_cursor());
        let before = poly::dump(&a, &w);
        let file = || Attachment { name: "x".into() };
        let ka = a.insert_child(w.attachments, fx.e1, file()).unwrap();
        let kb = by_hand(&mut b, w.attachments, fx.e1, file()).unwrap();
        assert_eq!(ka, kb);
        assert_eq!(poly::dump(&a, &w), poly::dump(&b, &w));
        assert_eq!(
            format!("{:?}", read_batches(&a, &mut ca)),
            format!("{:?}", read_batches(&b, &mut cb))
        );
        assert_eq!(
            a.parents(w.attachments).row(ka),
            a.parent_row(w.attachments, ka)
        );
        a.undo().unwrap();
        b.undo().unwrap();
        assert_eq!(poly::dump(&a, &w), before);
        assert_eq!(poly::dump(&b, &w), before);
        a.redo().unwrap();
        b.redo().unwrap();
        assert_eq!(poly::dump(&a, &w), poly::dump(&b, &w));
        check(&a);
        // e0 becomes an SMS: as a parent of attachments (emails only) it is stale
        a.unlink(w.attachments, fx.e0, fx.a0).unwrap();
        a.unlink(w.replies, fx.e0, fx.e1).unwrap();
        a.unlink(w.cc, fx.e0, fx.bob).unwrap();
        let sms = Sms { phone: "p".into() };
        a.change_kind(w.email.upcast(fx.e0), w.sms, sms).unwrap();
        let n = a.len::<Attachment>();
        let err = a
            .insert_child(w.attachments, fx.e0, Attachment { name: "y".into() })
            .unwrap_err();
        assert!(matches!(err, LinkError::Stale(_)), "{err:?}");
        assert_eq!(a.len::<Attachment>(), n);
        check(&a);
    }
}

#[test]
fn a_unique_index_refusal_inside_a_transaction_leaves_the_rest_of_it() {
    let (mut s, rel, u, by_text) = users_and_notes(|schema, notes| {
        schema.unique_index(notes, "notes_by_text", |n: &Note| n.text.clone())
    });
    s.enable_feed(8);
    let mut cursor = s.feed_cursor();
    let out: Result<(), ()> = s.transaction(|s| {
        let first = s.insert_child(rel, u, note("a")).unwrap();
        // the second "a" is refused (a panic: insert_child has no index error to return)
        let refused = catch_unwind(AssertUnwindSafe(|| s.insert_child(rel, u, note("a"))));
        assert!(refused.is_err());
        assert_eq!(s.children(rel, u).collect::<Vec<_>>(), [first]);
        s.insert_child(rel, u, note("b")).unwrap();
        Ok(())
    });
    out.unwrap();
    assert_eq!(s.child_count(rel, u), 2);
    assert!(s.lookup(by_text, "b").is_some());
    assert_eq!(
        read_batches(&s, &mut cursor).len(),
        1,
        "one batch for the transaction"
    );
    check(&s);
    s.undo().unwrap();
    assert_eq!(s.len::<Note>(), 0);
    check(&s);
    s.redo().unwrap();
    assert_eq!(s.child_count(rel, u), 2);
    check(&s);
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Node(u32);

#[test]
fn an_acyclic_tree_built_by_insert_child_through_removals_rollbacks_and_reused_slots() {
    let mut schema = Schema::new();
    let nodes = schema.table::<Node>("nodes");
    let rules = Rules::new().acyclic().on_delete(DeleteRule::Cascade);
    let tree = schema.one_to_many(nodes, "kids", nodes, "up", rules);
    let mut s = Store::new(schema);
    let root = s.insert(Node(0));
    let mut keys = vec![root];
    for i in 1..50u32 {
        let p = keys[(i as usize * 7) % keys.len()];
        keys.push(s.insert_child(tree, p, Node(i)).unwrap());
    }
    check(&s);
    // a subtree goes; new children reuse its slots, first in a rolled-back transaction
    s.remove(keys[3]).unwrap();
    let _: Result<(), ()> = s.transaction(|s| {
        for i in 0..10 {
            s.insert_child(tree, root, Node(100 + i)).unwrap();
        }
        Err(())
    });
    check(&s);
    for i in 0..20 {
        let k = s.insert_child(tree, root, Node(200 + i)).unwrap();
        assert_eq!(s.parent(tree, k), Some(root));
    }
    let view = s.parents(tree);
    for &k in &keys {
        assert_eq!(view.get(k), s.parent(tree, k));
        assert_eq!(view.row(k), s.parent_row(tree, k));
    }
    check(&s);
    // every node descends from the root: removing it removes all, and it is then stale
    s.remove(root).unwrap();
    assert_eq!(s.len::<Node>(), 0);
    assert!(matches!(
        s.insert_child(tree, root, Node(9)),
        Err(LinkError::Stale(_))
    ));
    assert_eq!(s.len::<Node>(), 0);
    check(&s);
}
