//! Undo and redo of committed work, and the change feed.

mod common;

use common::poly;
use common::*;
use relgraph::{Change, DeleteRule, FeedError, HistoryError, Key, Origin, Rules, Store};

fn cascading() -> Config {
    Config {
        posts: Rules::new().on_delete(DeleteRule::Cascade),
        comments: Rules::new().on_delete(DeleteRule::Cascade),
        ..Config::default()
    }
}

/// A world with two users, posts with comments, tags and follows, built before history.
fn blog(s: &mut Store, r: &Rels) -> (Key<User>, Key<User>, Vec<Key<Post>>) {
    let alice = user(s, "alice");
    let bob = user(s, "bob");
    let ps = posts(s, "p", 4);
    for (i, &p) in ps.iter().enumerate() {
        let owner = if i % 2 == 0 { alice } else { bob };
        s.link(r.posts, owner, p).unwrap();
        let c = comment(s, &format!("c{i}"));
        s.link(r.comments, p, c).unwrap();
    }
    let t = tag(s, "rust");
    s.link(r.tags, ps[2], t).unwrap();
    s.link(r.tags, ps[0], t).unwrap();
    s.link(r.follows, bob, alice).unwrap();
    s.link(r.follows, alice, bob).unwrap();
    (alice, bob, ps)
}

#[test]
fn undo_of_a_cascade_delete_restores_every_list_in_its_old_order() {
    let (mut s, r) = world(cascading());
    let (alice, bob, _) = blog(&mut s, &r);
    // a student with graded courses, to see payloads come back
    let st = student(&mut s, "sam");
    let (c1, c2) = (course(&mut s, "math"), course(&mut s, "art"));
    s.link_with(r.enrollments, st, c1, Enrollment { grade: 90 })
        .unwrap();
    s.link_with(r.enrollments, st, c2, Enrollment { grade: 70 })
        .unwrap();
    s.enable_history(100);
    let before = dump(&s, &r);
    s.step("Delete alice", |s| s.remove(alice)).unwrap();
    s.remove(st).unwrap();
    assert!(!s.contains(alice));
    let after = dump(&s, &r);
    assert_eq!(
        s.undo_label(),
        Some(None),
        "a call outside a transaction has no label"
    );
    s.undo().unwrap();
    let step = s.undo().unwrap();
    assert_eq!(step.label.as_deref(), Some("Delete alice"));
    check(&s);
    assert_eq!(dump(&s, &r), before);
    assert_eq!(s.targets(r.follows, bob).collect::<Vec<_>>(), [alice]);
    assert_eq!(
        s.payload(r.enrollments, st, c2),
        Some(&Enrollment { grade: 70 })
    );
    // redo: the same keys are gone again
    s.redo().unwrap();
    s.redo().unwrap();
    check(&s);
    assert_eq!(dump(&s, &r), after);
    assert_eq!(s.redo(), Err(HistoryError::NothingToRedo));
}

#[test]
fn keys_a_step_created_are_stale_after_undo_and_come_back_on_redo() {
    let (mut s, r) = world(Config::default());
    s.enable_history(10);
    let a = user(&mut s, "a");
    let p = post(&mut s, "p");
    s.link(r.posts, a, p).unwrap();
    s.undo().unwrap(); // the link
    s.undo().unwrap(); // p
    assert!(!s.contains(p));
    s.redo().unwrap();
    assert_eq!(
        s[p].title, "p",
        "redo brings the row back under its old key"
    );
    s.undo().unwrap();
    // new work drops the redo branch and never reuses p's key
    let q = post(&mut s, "q");
    assert_ne!(q, p);
    assert!(!s.contains(p));
    assert_eq!(s.redo(), Err(HistoryError::NothingToRedo));
    assert_eq!(s.redo_steps(), 0);
    check(&s);
}

#[test]
fn undo_and_redo_are_refused_inside_a_transaction_or_when_off() {
    let (mut s, _) = world(Config::default());
    assert_eq!(s.undo(), Err(HistoryError::Off));
    s.enable_history(10);
    assert_eq!(s.undo(), Err(HistoryError::NothingToUndo));
    user(&mut s, "a");
    let r: Result<(), HistoryError> = s.transaction(|s| s.undo().map(|_| ()));
    assert_eq!(r, Err(HistoryError::InTransaction));
    assert_eq!(s.undo_steps(), 1, "the refused undo changed nothing");
    let e: relgraph::Error = HistoryError::InTransaction.into();
    assert!(e.to_string().contains("commit or roll back first"), "{e}");
}

#[test]
fn history_keeps_at_most_its_limit_and_a_group_is_one_step() {
    let (mut s, _) = world(Config::default());
    s.enable_history(3);
    for i in 0..5 {
        user(&mut s, &format!("u{i}"));
    }
    assert_eq!(s.undo_steps(), 3);
    while s.undo().is_ok() {}
    assert_eq!(s.len::<User>(), 2, "the two oldest steps were dropped");
    let (mut s, _) = world(Config::default());
    s.enable_history(10);
    s.begin_group("Add three").unwrap();
    for i in 0..3 {
        s.transaction(|s| Ok::<_, ()>(user(s, &format!("u{i}"))))
            .unwrap();
    }
    assert_eq!(s.undo(), Err(HistoryError::InGroup));
    assert!(s.end_group().unwrap());
    assert_eq!(s.undo_steps(), 1);
    assert_eq!(s.undo_label(), Some(Some("Add three")));
    s.undo().unwrap();
    assert_eq!(s.len::<User>(), 0);
}

#[test]
fn a_rolled_back_transaction_makes_no_step_and_no_batch() {
    let (mut s, _) = world(Config::default());
    s.enable_history(10);
    s.enable_feed(10);
    let mut cursor = s.feed_cursor();
    let r: Result<(), ()> = s.step("nothing", |s| {
        user(s, "a");
        Err(())
    });
    assert!(r.is_err());
    assert_eq!(s.undo_steps(), 0);
    assert!(s.read_feed(&mut cursor).unwrap().is_empty());
    // the label does not leak into the next step
    user(&mut s, "b");
    assert_eq!(s.undo_label(), Some(None));
}

#[test]
fn undo_of_a_kind_change_brings_the_old_kind_back() {
    let (mut s, w) = poly::world(poly::Config::default());
    let e = poly::email(&mut s, &w, 1, "a@b");
    s.enable_history(10);
    let before = poly::dump(&s, &w);
    let n = w.email.upcast(e);
    s.change_kind(
        n,
        w.sms,
        poly::Sms {
            phone: "555".into(),
        },
    )
    .unwrap();
    assert_eq!(s.downcast(w.email, n), None);
    s.undo().unwrap();
    assert_eq!(poly::dump(&s, &w), before);
    assert_eq!(
        s.get_kind(w.email, n).map(|e| e.address.as_str()),
        Some("a@b")
    );
    s.redo().unwrap();
    assert_eq!(s.get_kind(w.sms, n).map(|x| x.phone.as_str()), Some("555"));
    check(&s);
}

#[test]
fn redo_after_a_snapshot_round_trip_is_refused() {
    let (mut s, r) = world(Config::default());
    s.enable_history(10);
    let a = user(&mut s, "a");
    s.remove(a).unwrap();
    s.undo().unwrap();
    let bytes = s.to_snapshot().unwrap();
    let (schema, _) = common::schema(Config::default());
    let mut loaded = Store::from_snapshot(schema, &bytes).unwrap();
    // history is not saved: the loaded store starts without one
    assert_eq!(loaded.redo(), Err(HistoryError::Off));
    loaded.enable_history(10);
    assert_eq!(loaded.redo(), Err(HistoryError::NothingToRedo));
    assert_eq!(dump(&loaded, &r), dump(&s, &r));
}

#[test]
fn many_unlinks_with_history_on_compact_their_lists_and_undo_exactly() {
    let (mut s, r) = world(Config::default());
    let u = user(&mut s, "u");
    let ps = posts(&mut s, "p", 40);
    s.link_all(r.posts, ps.iter().map(|&p| (u, p))).unwrap();
    s.enable_history(1000);
    let before = dump(&s, &r);
    for &p in ps.iter().step_by(2).chain(ps.iter().skip(1).step_by(4)) {
        s.unlink(r.posts, u, p).unwrap();
    }
    let after = dump(&s, &r);
    while s.undo().is_ok() {}
    assert_eq!(dump(&s, &r), before);
    while s.redo().is_ok() {}
    assert_eq!(dump(&s, &r), after);
    check(&s);
}

#[test]
fn the_feed_of_set_children_is_one_unlink_and_the_orphans_removal() {
    let cfg = Config {
        posts: Rules::new().on_delete(DeleteRule::DeleteOrphan),
        ..Config::default()
    };
    let (mut s, r) = world(cfg);
    let u = user(&mut s, "u");
    let ps = posts(&mut s, "p", 3);
    s.link_all(r.posts, ps.iter().map(|&p| (u, p))).unwrap();
    s.enable_feed(10);
    let mut c = s.feed_cursor();
    s.set_children(r.posts, u, &ps[..2]).unwrap();
    let batches = read_batches(&s, &mut c);
    assert_eq!(batches.len(), 1);
    let changes = &batches[0].changes;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        matches!(&changes[0], Change::Unlinked { a, b, .. }
            if a.key == u.raw() && a.table.name() == "users" && b.key == ps[2].raw()),
        "{changes:?}"
    );
    assert!(matches!(&changes[1], Change::Removed { entity } if entity.key == ps[2].raw()));
    // linking a child to its current parent again: no batch
    s.link(r.posts, u, ps[0]).unwrap();
    assert!(read_batches(&s, &mut c).is_empty());
}

#[test]
fn a_move_is_one_event_and_undo_batches_are_marked() {
    let (mut s, r) = world(Config::default());
    let (a, b) = (user(&mut s, "a"), user(&mut s, "b"));
    let p = post(&mut s, "p");
    s.link(r.posts, a, p).unwrap();
    s.enable_history(10);
    s.enable_feed(10);
    let mut c = s.feed_cursor();
    s.link(r.posts, b, p).unwrap();
    s.undo().unwrap();
    s.redo().unwrap();
    let batches = read_batches(&s, &mut c);
    let origins: Vec<Origin> = batches.iter().map(|b| b.origin).collect();
    assert_eq!(origins, [Origin::Commit, Origin::Undo, Origin::Redo]);
    let Change::Moved {
        from, to, child, ..
    } = &batches[0].changes[0]
    else {
        panic!("{:?}", batches[0].changes)
    };
    assert_eq!((from.key, to.key, child.key), (a.raw(), b.raw(), p.raw()));
    assert_eq!(batches[0].changes.len(), 1);
    assert!(matches!(&batches[1].changes[0], Change::Moved { to, .. } if to.key == a.raw()));
    assert_eq!(format!("{child}"), format!("posts[{:?}]", p.raw()));
}

#[test]
fn cursors_are_independent_filtered_and_told_when_they_fall_behind() {
    let (mut s, r) = world(Config::default());
    s.enable_feed(3);
    let mut ui = s.feed_cursor();
    let mut posts_only = s.feed_cursor().relation(r.posts);
    let u = user(&mut s, "u");
    let p = post(&mut s, "p");
    s.link(r.posts, u, p).unwrap();
    assert_eq!(read_batches(&s, &mut ui).len(), 3);
    let views = s.read_feed(&mut posts_only).unwrap();
    let seen: Vec<&Change> = views.iter().flat_map(|v| v.changes()).collect();
    assert_eq!(seen.len(), 1, "only the link: {seen:?}");
    assert!(matches!(seen[0], Change::Linked { .. }));
    for i in 0..5 {
        user(&mut s, &format!("x{i}"));
    }
    assert_eq!(
        s.read_feed(&mut ui).unwrap_err(),
        FeedError::Lagged { missed: 2 }
    );
    assert_eq!(
        read_batches(&s, &mut ui).len(),
        3,
        "the cursor moved to the oldest batch kept"
    );
}

#[test]
fn a_replica_fed_the_batches_of_a_cascade_and_its_undo_stays_equal() {
    let (mut s, r) = world(cascading());
    let (alice, bob, ps) = blog(&mut s, &r);
    // the replica starts as a copy: the same calls give the same keys
    let (mut replica, _) = world(cascading());
    blog(&mut replica, &r);
    assert_eq!(dump(&replica, &r), dump(&s, &r));
    s.enable_history(10);
    s.enable_feed(100);
    let mut c = s.feed_cursor();
    s.remove(alice).unwrap();
    s.set_children(r.posts, bob, &[ps[3], ps[1]]).unwrap();
    s.undo().unwrap();
    s.undo().unwrap();
    s.redo().unwrap();
    for b in read_batches(&s, &mut c) {
        replica.apply_changes(&b).unwrap();
        check(&replica);
    }
    assert_eq!(dump(&replica, &r), dump(&s, &r));
}

#[test]
fn a_long_session_keeps_exactly_the_newest_steps_undoable() {
    let (mut s, r) = world(Config::default());
    s.enable_history(5);
    let u = user(&mut s, "u");
    let mut states = Vec::new();
    for i in 0..200 {
        // the state before every step
        states.push(dump(&s, &r));
        let p = post(&mut s, &format!("p{i}"));
        if i % 3 == 0 {
            states.push(dump(&s, &r));
            s.link(r.posts, u, p).unwrap();
            states.push(dump(&s, &r));
            s.remove(p).unwrap();
        }
    }
    assert_eq!(s.undo_steps(), 5);
    for expected in states.iter().rev().take(5) {
        s.undo().unwrap();
        assert_eq!(&dump(&s, &r), expected);
    }
    assert_eq!(s.undo(), Err(HistoryError::NothingToUndo));
    assert_eq!(s.redo_steps(), 5);
    s.enable_history(2);
    assert_eq!(s.undo_steps(), 0);
    check(&s);
}

#[test]
fn a_redone_one_to_one_link_is_a_link_event_without_a_reorder() {
    let (mut s, r) = world(Config::default());
    let u = user(&mut s, "u");
    let p = profile(&mut s, "bio");
    let (mut replica, _) = world(Config::default());
    user(&mut replica, "u");
    profile(&mut replica, "bio");
    s.enable_history(10);
    s.enable_feed(10);
    let mut c = s.feed_cursor();
    s.link(r.profile, u, p).unwrap();
    s.undo().unwrap();
    s.redo().unwrap();
    let batches = read_batches(&s, &mut c);
    let redo = &batches[2].changes;
    assert_eq!(redo.len(), 1, "{redo:?}");
    assert!(matches!(&redo[0], Change::Linked { a, b, .. }
        if a.key == u.raw() && b.key == p.raw()));
    for b in &batches {
        replica.apply_changes(b).unwrap();
    }
    check(&replica);
    assert_eq!(dump(&replica, &r), dump(&s, &r));
}

#[test]
fn a_reorder_of_a_one_to_one_end_is_refused_as_a_mismatch() {
    let (mut s, r) = world(Config::default());
    let u = user(&mut s, "u");
    let ps = posts(&mut s, "p", 2);
    let pr = profile(&mut s, "bio");
    s.link_all(r.posts, ps.iter().map(|&p| (u, p))).unwrap();
    s.enable_feed(10);
    let mut c = s.feed_cursor();
    s.link(r.profile, u, pr).unwrap();
    s.set_children(r.posts, u, &[ps[1], ps[0]]).unwrap();
    let batches = read_batches(&s, &mut c);
    let Change::Linked { relation, .. } = batches[0].changes[0] else {
        panic!("{:?}", batches[0].changes)
    };
    // the reorder of the user's posts, made to name the one-to-one relation
    let mut bad = batches[1].clone();
    let Change::Reordered { relation: rel, .. } = &mut bad.changes[0] else {
        panic!("{:?}", bad.changes)
    };
    *rel = relation;
    let before = dump(&s, &r);
    let e = s.apply_changes(&bad).unwrap_err();
    assert!(e.to_string().contains("its ends have no order"), "{e}");
    assert!(e.to_string().contains("users.profile"), "{e}");
    assert_eq!(dump(&s, &r), before, "nothing changed");
    check(&s);
}

#[test]
fn redo_after_the_limit_was_lowered_keeps_at_most_the_limit() {
    let (mut s, _) = world(Config::default());
    s.enable_history(10);
    let us: Vec<Key<User>> = (0..3).map(|i| user(&mut s, &format!("u{i}"))).collect();
    for _ in 0..3 {
        s.undo().unwrap();
    }
    s.enable_history(2);
    assert_eq!(s.redo_steps(), 3, "undone steps can still be redone");
    while s.redo().is_ok() {}
    assert_eq!(s.len::<User>(), 3);
    assert_eq!(s.undo_steps(), 2, "the oldest step was dropped");
    s.undo().unwrap();
    s.undo().unwrap();
    assert_eq!(s.undo(), Err(HistoryError::NothingToUndo));
    assert!(s.contains(us[0]) && !s.contains(us[1]));
    check(&s);
}

#[test]
fn a_replica_lists_a_kinds_rows_in_the_order_an_undo_puts_them_back_in() {
    let (mut s, w) = poly::world(poly::Config::default());
    let es: Vec<Key<poly::Email>> = (0..3)
        .map(|i| poly::email(&mut s, &w, i, &format!("e{i}")))
        .collect();
    let (schema, _) = poly::schema(poly::Config::default());
    let mut replica = Store::from_snapshot(schema, &s.to_snapshot().unwrap()).unwrap();
    s.enable_history(10);
    s.enable_feed(10);
    let mut c = s.feed_cursor();
    // removing the first email moves the last into its place; undo puts both back
    s.remove(es[0]).unwrap();
    let n = w.email.upcast(es[1]);
    s.change_kind(n, w.sms, poly::Sms { phone: "1".into() })
        .unwrap();
    s.undo().unwrap();
    s.undo().unwrap();
    let order: Vec<Key<poly::Email>> = s.keys::<poly::Email>().collect();
    assert_eq!(order, es, "undo restores the kind's order");
    let batches = read_batches(&s, &mut c);
    assert!(
        batches[3].changes.iter().any(
            |c| matches!(c, Change::KindRowsSwapped { kind, position: 0 } if kind.name() == "email")
        ),
        "{:?}",
        batches[3].changes
    );
    for b in &batches {
        replica.apply_changes(b).unwrap();
        check(&replica);
    }
    assert_eq!(poly::dump(&replica, &w), poly::dump(&s, &w));
    // the redo batches too
    s.redo().unwrap();
    s.redo().unwrap();
    for b in read_batches(&s, &mut c) {
        replica.apply_changes(&b).unwrap();
    }
    assert_eq!(poly::dump(&replica, &w), poly::dump(&s, &w));
}
