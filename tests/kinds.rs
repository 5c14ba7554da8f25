//! Kinds of a polymorphic base (`Notification` with `Email`, `Sms` and `Push` kinds, see
//! `common::poly`): rows inserted by kind and read by base or by kind, checked downcasts
//! and free upcasts, relations on the base and on one kind under every delete rule, and
//! `preview_remove` naming rows by their kind.

mod common;

use std::collections::BTreeSet;

use common::poly::{
    any, assert_refused, dump, email, n, populated, push, sms, world, Attachment, Cc, Config,
    Email, Label, Notification, Push, Receipt, Sms,
};
use common::{check, User};
use relgraph::{
    AnyKey, DeleteRule, Key, Kind, LinkError, Plain, RawKey, RemoveError, Rules, Schema, StaleKey,
    Store, Which,
};

use DeleteRule::{Cascade, DeleteOrphan, Restrict};

// ----- rows, keys and reads -----------------------------------------------------------

#[test]
fn a_row_inserted_by_kind_is_read_by_its_base_and_by_its_kind() {
    let (mut s, w) = world(Config::default());
    let e = email(&mut s, &w, 7, "a@b");
    check(&s);
    let base = w.email.upcast(e);
    assert_eq!(base.raw(), e.raw(), "both keys name the same row");
    assert_eq!(s[base], n(7));
    assert_eq!(s[e].address, "a@b");
    assert_eq!(s.get(base), Some(&n(7)));
    assert_eq!(
        s.get_kind(w.email, base).map(|e| e.address.as_str()),
        Some("a@b")
    );
    assert_eq!(s.kind_name(base), Some("email"));
    assert_eq!(s.kind_name(e), Some("email"));
    assert_eq!((s.len::<Notification>(), s.len::<Email>()), (1, 1));
    assert_eq!((s.len::<Sms>(), s.len::<Push>()), (0, 0));
    assert!(s.is_empty::<Sms>());
}

#[test]
fn downcast_answers_only_for_the_kind_of_the_row() {
    let (mut s, w) = world(Config::default());
    let e = email(&mut s, &w, 1, "a@b");
    let m = sms(&mut s, &w, 2, "+1");
    let (eb, mb) = (w.email.upcast(e), w.sms.upcast(m));
    assert_eq!(s.downcast(w.email, eb), Some(e));
    assert_eq!(s.downcast(w.sms, eb), None);
    assert_eq!(s.downcast(w.push, eb), None);
    assert_eq!(s.downcast(w.sms, mb), Some(m));
    assert_eq!(s.downcast(w.email, mb), None);
    assert_eq!(s.get_kind(w.sms, eb), None);
    assert_eq!(s.get_kind(w.sms, mb), Some(&Sms { phone: "+1".into() }));
    assert_eq!(s.kind_name(mb), Some("sms"));
    check(&s);
}

#[test]
fn every_read_of_a_removed_row_answers_none() {
    let (mut s, w) = world(Config::default());
    let e = email(&mut s, &w, 1, "a@b");
    let base = w.email.upcast(e);
    s.remove(base).unwrap();
    check(&s);
    assert_eq!(s.get(base), None);
    assert_eq!(s.get(e), None);
    assert!(!s.contains(e) && !s.contains(base));
    assert_eq!(s.downcast(w.email, base), None);
    assert_eq!(s.get_kind(w.email, base), None);
    assert_eq!(s.kind_name(base), None);
    assert_eq!(s.kind_name(e), None);
    assert_eq!((s.len::<Notification>(), s.len::<Email>()), (0, 0));
}

#[test]
fn a_table_without_kinds_has_no_kind_name() {
    let (mut s, _) = world(Config::default());
    let u = s.insert(User { name: "u".into() });
    assert_eq!(s.kind_name(u), None);
}

#[test]
fn a_kind_key_forged_from_a_row_of_another_kind_reads_as_stale() {
    let (mut s, w) = world(Config::default());
    let m = sms(&mut s, &w, 1, "+1");
    let forged: Key<Email> = Key::from_raw(m.raw());
    assert_eq!(s.get(forged), None);
    assert!(!s.contains(forged));
    assert_eq!(s.rows::<Email>().get(forged), None);
    assert_eq!(s.kind_name(forged), None, "a stale kind key names no kind");
    assert_eq!(s.kind_name(m), Some("sms"));
    let stale = StaleKey {
        key: any("email", forged),
    };
    assert_eq!(s.update(forged, |e| e.address.clear()), Err(stale));
    assert_eq!(s.preview_remove(forged), Err(stale));
    let e = assert_refused(&mut s, &w, |s| s.remove(forged));
    assert_eq!(e, RemoveError::Stale(stale));
    assert_eq!(s.len::<Sms>(), 1);
}

#[test]
#[should_panic(expected = "stale key")]
fn indexing_by_a_kind_key_of_another_kind_panics() {
    let (mut s, w) = world(Config::default());
    let m = sms(&mut s, &w, 1, "+1");
    let _ = &s[Key::<Push>::from_raw(m.raw())];
}

#[test]
fn iterating_a_kind_yields_only_its_rows_and_iterating_the_base_yields_all() {
    let (mut s, w) = world(Config::default());
    let es: Vec<Key<Email>> = (0..5).map(|i| email(&mut s, &w, i, "e")).collect();
    let ms: Vec<Key<Sms>> = (0..3).map(|i| sms(&mut s, &w, 10 + i, "m")).collect();
    let ps: Vec<Key<Push>> = (0..2).map(|i| push(&mut s, &w, 20 + i, "p")).collect();
    check(&s);
    assert_eq!(s.keys::<Email>().collect::<Vec<_>>(), es);
    assert_eq!(s.keys::<Sms>().collect::<Vec<_>>(), ms);
    assert_eq!(s.keys::<Push>().collect::<Vec<_>>(), ps);
    let all: Vec<RawKey> = s.keys::<Notification>().map(Key::raw).collect();
    let mut expected: Vec<RawKey> = es.iter().map(|k| k.raw()).collect();
    expected.extend(ms.iter().map(|k| k.raw()));
    expected.extend(ps.iter().map(|k| k.raw()));
    assert_eq!(all, expected, "the base yields every row, in slot order");
    let ats: Vec<u64> = s.iter::<Notification>().map(|(_, v)| v.at).collect();
    assert_eq!(ats, [0, 1, 2, 3, 4, 10, 11, 12, 20, 21]);
    for (k, v) in s.iter::<Sms>() {
        assert_eq!(v.phone, "m");
        assert_eq!(s.kind_name(k), Some("sms"));
    }
}

#[test]
fn reading_one_kind_visits_as_many_rows_as_the_kind_holds() {
    let (mut s, w) = world(Config::default());
    let mut es = Vec::new();
    let mut ms = BTreeSet::new();
    for i in 0..3000u64 {
        es.push(email(&mut s, &w, i, "e"));
        if i % 1000 == 999 {
            ms.insert(sms(&mut s, &w, i, "m"));
        }
        if i % 3 == 0 {
            push(&mut s, &w, i, "p");
        }
    }
    check(&s);
    let count = |s: &Store| {
        let visited = s.iter::<Sms>().count();
        assert_eq!(visited, s.len::<Sms>());
        assert_eq!(s.rows::<Sms>().iter().count(), visited);
        let keys: BTreeSet<Key<Sms>> = s.keys::<Sms>().collect();
        assert!(keys.iter().all(
            |&k| s.kind_name(k) == Some("sms") && s.downcast(w.sms, w.sms.upcast(k)) == Some(k)
        ));
        (visited, keys)
    };
    assert_eq!(count(&s), (3, ms.clone()));
    assert_eq!(s.len::<Notification>(), 3000 + 3 + 1000);
    assert_eq!(s.iter::<Notification>().count(), 4003);
    for &e in es.iter().step_by(2) {
        s.remove(e).unwrap();
    }
    check(&s);
    assert_eq!(count(&s), (3, ms.clone()));
    assert_eq!(s.iter::<Email>().count(), 1500);
    let extra = sms(&mut s, &w, 0, "m");
    ms.insert(extra);
    assert_eq!(count(&s), (4, ms));
    assert_eq!(s.iter::<Notification>().count(), 1500 + 4 + 1000);
}

#[test]
#[should_panic(expected = "every row of `notifications` has a kind")]
fn inserting_a_base_row_without_a_kind_panics() {
    let (mut s, _) = world(Config::default());
    s.insert(n(1));
}

#[test]
#[should_panic(expected = "every row of `email` has a kind")]
fn inserting_a_kind_row_without_its_base_panics() {
    let (mut s, _) = world(Config::default());
    s.insert(Email {
        address: "a@b".into(),
    });
}

#[test]
#[should_panic(expected = "another schema")]
fn a_kind_handle_of_a_schema_declared_differently_panics() {
    let (mut s, _) = world(Config::default());
    // the same types, with the kinds declared in another order
    let mut other = Schema::new();
    other.table::<User>("users");
    let notifications = other.table::<Notification>("notifications");
    let _sms = other.kind::<_, Sms>(notifications, "sms");
    let email = other.kind::<_, Email>(notifications, "email");
    s.insert_kind(
        email,
        n(1),
        Email {
            address: "a@b".into(),
        },
    );
}

#[test]
#[should_panic(expected = "kinds of kinds are not supported")]
fn declaring_a_kind_of_a_kind_panics() {
    let mut schema = Schema::new();
    let notifications = schema.table::<Notification>("notifications");
    let email = schema.kind::<Notification, Email>(notifications, "email");
    schema.kind::<Email, Sms>(email.table(), "sms");
}

#[test]
#[should_panic(expected = "table name `users` is already taken")]
fn a_kind_tag_that_names_another_table_panics() {
    let mut schema = Schema::new();
    schema.table::<User>("users");
    let notifications = schema.table::<Notification>("notifications");
    schema.kind::<Notification, Email>(notifications, "users");
}

#[test]
#[should_panic(expected = "is already registered as table `email`")]
fn registering_a_kind_type_as_a_plain_table_panics() {
    let mut schema = Schema::new();
    let notifications = schema.table::<Notification>("notifications");
    schema.kind::<Notification, Email>(notifications, "email");
    schema.table::<Email>("email");
}

#[test]
fn updating_kind_fields_or_base_fields_changes_only_that_side() {
    let (mut s, w, f) = populated(Config::default());
    let base = w.email.upcast(f.e0);
    s.update(f.e0, |e| e.address.push_str(".org")).unwrap();
    check(&s);
    assert_eq!(s[f.e0].address, "alice@a.org");
    assert_eq!(s[base], n(1));
    s.update(base, |b| b.at = 99).unwrap();
    check(&s);
    assert_eq!(s[base], n(99));
    assert_eq!(s[f.e0].address, "alice@a.org");
    assert_eq!(s.kind_name(base), Some("email"));
}

#[test]
fn reserving_room_for_a_kind_changes_nothing_observable() {
    let (mut s, w, _) = populated(Config::default());
    let before = dump(&s, &w);
    s.reserve::<Sms>(100);
    s.reserve::<Notification>(100);
    check(&s);
    assert_eq!(dump(&s, &w), before);
}

// ----- relations on the base and on a kind --------------------------------------------

#[test]
fn a_relation_on_the_base_links_rows_of_every_kind() {
    let (s, w, f) = populated(Config::default());
    let inbox: Vec<Key<Notification>> = s.children(w.inbox, f.alice).collect();
    let kinds: Vec<Option<&str>> = inbox.iter().map(|&k| s.kind_name(k)).collect();
    assert_eq!(kinds, [Some("email"), Some("sms"), Some("push")]);
    assert_eq!(inbox[0].raw(), f.e0.raw());
    assert_eq!(s.parent(w.inbox, w.push.upcast(f.p0)), Some(f.alice));
    let emails: Vec<Key<Email>> = inbox
        .iter()
        .filter_map(|&k| s.downcast(w.email, k))
        .collect();
    assert_eq!(emails, [f.e0]);
    let labelled: Vec<Key<Notification>> = s.sources(w.labels, f.urgent).collect();
    assert_eq!(labelled, [w.email.upcast(f.e0), w.sms.upcast(f.s0)]);
}

#[test]
fn a_relation_on_a_kind_keeps_both_ends_in_step() {
    let (mut s, w, f) = populated(Config::default());
    assert_eq!(s.parent(w.pushes, f.p0), Some(f.phone));
    assert_eq!(s.children(w.pushes, f.phone).collect::<Vec<_>>(), [f.p0]);
    assert_eq!(s.parent(w.attachments, f.a0), Some(f.e0));
    assert_eq!(s.partner(w.receipt, f.s0), Some(f.r0));
    assert_eq!(s.partner_of(w.receipt, f.r0), Some(f.s0));
    assert_eq!(s.payload(w.cc, f.e0, f.bob), Some(&Cc { blind: true }));
    assert_eq!(s.sources(w.cc, f.bob).collect::<Vec<_>>(), [f.e0]);
    assert_eq!(s.parent(w.replies, f.e1), Some(f.e0));
    let p1 = push(&mut s, &w, 9, "again");
    s.link(w.pushes, f.phone, p1).unwrap();
    check(&s);
    assert_eq!(
        s.children(w.pushes, f.phone).collect::<Vec<_>>(),
        [f.p0, p1]
    );
    s.set_children(w.pushes, f.phone, &[p1]).unwrap();
    check(&s);
    assert_eq!(s.parent(w.pushes, f.p0), None);
    let r1 = s.insert(Receipt { code: 404 });
    s.link(w.receipt, f.s0, r1).unwrap();
    check(&s);
    assert_eq!(
        s.partner_of(w.receipt, f.r0),
        None,
        "the old receipt is evicted"
    );
    s.set_targets(w.cc, f.e0, &[f.alice, f.bob]).unwrap();
    check(&s);
    assert_eq!(s.payload(w.cc, f.e0, f.alice), Some(&Cc::default()));
    assert_eq!(s.payload(w.cc, f.e0, f.bob), Some(&Cc { blind: true }));
    assert!(s.unlink(w.replies, f.e0, f.e1).unwrap());
    check(&s);
    assert_eq!(s.parent(w.replies, f.e1), None);
}

#[test]
fn a_kind_end_refuses_a_row_of_another_kind_as_stale() {
    let (mut s, w, f) = populated(Config::default());
    let forged_push: Key<Push> = Key::from_raw(f.e1.raw());
    let e = assert_refused(&mut s, &w, |s| s.link(w.pushes, f.phone, forged_push));
    let stale = StaleKey {
        key: any("push", forged_push),
    };
    assert_eq!(e, LinkError::Stale(stale));
    assert_eq!(
        e.to_string(),
        format!("stale key push[{}]: no such entity", f.e1.raw())
    );
    let e = assert_refused(&mut s, &w, |s| {
        s.set_children(w.pushes, f.phone, &[forged_push])
    });
    assert_eq!(e, LinkError::Stale(stale));
    let forged_email: Key<Email> = Key::from_raw(f.s0.raw());
    let stale = LinkError::Stale(StaleKey {
        key: any("email", forged_email),
    });
    let a1 = s.insert(Attachment { name: "x".into() });
    let e = assert_refused(&mut s, &w, |s| s.link(w.attachments, forged_email, a1));
    assert_eq!(e, stale);
    let e = assert_refused(&mut s, &w, |s| s.link(w.replies, f.e0, forged_email));
    assert_eq!(e, stale);
    let e = assert_refused(&mut s, &w, |s| {
        s.link_with(w.cc, forged_email, f.bob, Cc::default())
    });
    assert_eq!(e, stale);
    let e = assert_refused(&mut s, &w, |s| s.unlink(w.cc, forged_email, f.bob));
    assert_eq!(e, stale);
    assert_eq!(s.children(w.attachments, forged_email).count(), 0);
    assert!(!s.linked(w.replies, f.e0, forged_email));
    // the base end takes the same row under its base key
    s.link(w.inbox, f.bob, w.sms.upcast(f.s0)).unwrap();
    check(&s);
    assert_eq!(s.parent(w.inbox, w.sms.upcast(f.s0)), Some(f.bob));
}

// ----- deletes ------------------------------------------------------------------------

#[test]
fn removing_a_row_by_its_base_key_removes_its_kind_row_and_every_link() {
    let (mut s, w, f) = populated(Config::default());
    s.remove(w.email.upcast(f.e0)).unwrap();
    check(&s);
    assert!(!s.contains(f.e0) && !s.contains(w.email.upcast(f.e0)));
    assert_eq!((s.len::<Notification>(), s.len::<Email>()), (3, 1));
    let inbox: Vec<RawKey> = s.children(w.inbox, f.alice).map(Key::raw).collect();
    assert_eq!(inbox, [f.s0.raw(), f.p0.raw()]);
    assert_eq!(s.sources(w.labels, f.urgent).count(), 1);
    assert_eq!(s.parent(w.attachments, f.a0), None);
    assert!(s.contains(f.a0), "nullify keeps the attachment");
    assert_eq!(s.sources(w.cc, f.bob).count(), 0);
    assert_eq!(s.parent(w.replies, f.e1), None);
    assert_eq!(s.link_count(w.cc), 0);
}

#[test]
fn removing_a_row_by_its_kind_key_removes_its_base_row() {
    let (mut s, w, f) = populated(Config::default());
    s.remove(f.s0).unwrap();
    check(&s);
    assert!(!s.contains(w.sms.upcast(f.s0)));
    assert_eq!((s.len::<Notification>(), s.len::<Sms>()), (3, 0));
    assert_eq!(s.partner_of(w.receipt, f.r0), None);
    assert_eq!(s.child_count(w.inbox, f.alice), 2);
    assert_eq!(
        s.sources(w.labels, f.urgent).collect::<Vec<_>>(),
        [w.email.upcast(f.e0)]
    );
}

#[test]
fn a_cascade_through_a_base_relation_applies_the_rules_of_kind_relations() {
    let (mut s, w, f) = populated(Config {
        inbox: Cascade.into(),
        attachments: Cascade.into(),
        receipt: Cascade.into(),
        ..Config::default()
    });
    s.remove(f.alice).unwrap();
    check(&s);
    assert_eq!(s.len::<Notification>(), 1, "only bob's email is left");
    assert_eq!(s.keys::<Email>().collect::<Vec<_>>(), [f.e1]);
    assert_eq!((s.len::<Sms>(), s.len::<Push>()), (0, 0));
    assert!(!s.contains(f.a0), "the email's attachment went with it");
    assert!(!s.contains(f.r0), "the sms's receipt went with it");
    assert!(s.contains(f.urgent) && s.contains(f.phone));
    assert_eq!(s.child_count(w.pushes, f.phone), 0);
    assert_eq!(s.parent(w.replies, f.e1), None);
    assert_eq!(s.link_count(w.labels), 0);
}

#[test]
fn a_cascade_from_a_kind_relation_reaches_the_base_row_and_its_base_links() {
    let (mut s, w, f) = populated(Config {
        pushes: Cascade.into(),
        labels: Rules::new().on_delete(DeleteOrphan),
        ..Config::default()
    });
    let p1 = push(&mut s, &w, 8, "p1");
    let lonely = s.insert(Label { name: "l".into() });
    s.link(w.pushes, f.phone, p1).unwrap();
    check(&s);
    s.link(w.labels, w.push.upcast(p1), lonely).unwrap();
    check(&s);
    s.link(w.inbox, f.bob, w.push.upcast(p1)).unwrap();
    check(&s);
    s.remove(f.phone).unwrap();
    check(&s);
    assert!(!s.contains(w.push.upcast(f.p0)) && !s.contains(w.push.upcast(p1)));
    assert_eq!((s.len::<Notification>(), s.len::<Push>()), (3, 0));
    assert_eq!(s.child_count(w.inbox, f.alice), 2);
    assert_eq!(s.child_count(w.inbox, f.bob), 1);
    assert!(
        !s.contains(lonely),
        "the label orphaned at the base level is deleted"
    );
    assert!(s.contains(f.urgent));
}

#[test]
fn a_cascade_into_a_kind_from_its_child_deletes_the_whole_row() {
    let (mut s, w, f) = populated(Config {
        attachments: Rules::new().on_delete_b(Cascade),
        ..Config::default()
    });
    s.remove(f.a0).unwrap();
    check(&s);
    assert!(!s.contains(f.e0) && !s.contains(w.email.upcast(f.e0)));
    assert_eq!(s.child_count(w.inbox, f.alice), 2);
}

#[test]
fn a_cascade_along_a_self_referential_kind_relation_takes_every_reply() {
    let (mut s, w, f) = populated(Config {
        replies: Cascade.into(),
        ..Config::default()
    });
    let e2 = email(&mut s, &w, 5, "re: re:");
    s.link(w.replies, f.e1, e2).unwrap();
    check(&s);
    s.remove(w.email.upcast(f.e0)).unwrap();
    check(&s);
    assert_eq!(s.len::<Email>(), 0);
    assert_eq!(s.len::<Notification>(), 2);
    assert_eq!(s.child_count(w.inbox, f.bob), 0);
}

#[test]
fn restrict_on_a_kind_relation_blocks_a_cascade_from_the_base() {
    let (mut s, w, f) = populated(Config {
        inbox: Cascade.into(),
        attachments: Restrict.into(),
        ..Config::default()
    });
    let e = assert_refused(&mut s, &w, |s| s.remove(f.alice));
    let relation = s.schema().relations().nth(3).unwrap().1;
    assert_eq!(
        relation.to_string(),
        "email.attachments <-> attachments.email"
    );
    assert_eq!(
        e,
        RemoveError::Restricted {
            relation,
            key: any("email", f.e0),
            blocker: any("attachments", f.a0),
        }
    );
    let preview = s.preview_remove(f.alice).unwrap();
    assert!(!preview.allowed());
    assert_eq!(preview.blocked_by.len(), 1);
    assert_eq!(preview.blocked_by[0].key, any("email", f.e0));
    // once the attachment is gone the cascade goes ahead
    s.remove(f.a0).unwrap();
    check(&s);
    s.remove(f.alice).unwrap();
    check(&s);
    assert_eq!(s.len::<Notification>(), 1);
}

#[test]
fn restrict_on_a_base_relation_blocks_a_cascade_from_a_kind() {
    let (mut s, w, f) = populated(Config {
        inbox: Rules::new().on_delete_b(Restrict),
        pushes: Cascade.into(),
        ..Config::default()
    });
    let e = assert_refused(&mut s, &w, |s| s.remove(f.phone));
    let RemoveError::Restricted { key, blocker, .. } = e else {
        panic!("expected a restrict, got {e:?}");
    };
    assert_eq!(
        key,
        any("push", f.p0),
        "the blocked row is named by its kind"
    );
    assert_eq!(blocker, any("users", f.alice));
    s.unlink(w.inbox, f.alice, w.push.upcast(f.p0)).unwrap();
    check(&s);
    s.remove(f.phone).unwrap();
    check(&s);
    assert_eq!(s.len::<Push>(), 0);
}

#[test]
fn a_kind_restrict_does_not_block_a_cascade_that_also_deletes_the_blocker() {
    let (mut s, w, f) = populated(Config {
        inbox: Cascade.into(),
        cc: Restrict.into(),
        ..Config::default()
    });
    s.unlink(w.cc, f.e0, f.bob).unwrap();
    check(&s);
    s.link(w.cc, f.e0, f.alice).unwrap();
    check(&s);
    // e0 copies alice: deleting e0 alone is refused while alice survives it...
    let e = assert_refused(&mut s, &w, |s| s.remove(w.email.upcast(f.e0)));
    assert!(
        matches!(e, RemoveError::Restricted { blocker, .. } if blocker == any("users", f.alice))
    );
    // ...but deleting alice takes e0 with her
    s.remove(f.alice).unwrap();
    check(&s);
    assert!(!s.contains(f.e0));
    assert_eq!(s.len::<Notification>(), 1);
}

#[test]
fn delete_orphan_on_a_kind_relation_deletes_the_orphan_row_with_its_base() {
    let (mut s, w, f) = populated(Config {
        pushes: DeleteOrphan.into(),
        ..Config::default()
    });
    assert!(s.unlink(w.pushes, f.phone, f.p0).unwrap());
    check(&s);
    assert!(!s.contains(w.push.upcast(f.p0)));
    assert_eq!(s.len::<Notification>(), 3);
    assert_eq!(s.child_count(w.inbox, f.alice), 2);
}

#[test]
fn delete_orphan_on_a_base_relation_counts_links_of_every_kind() {
    let (mut s, _, f) = populated(Config {
        labels: DeleteOrphan.into(),
        ..Config::default()
    });
    s.remove(f.e0).unwrap();
    check(&s);
    assert!(s.contains(f.urgent), "the sms still carries the label");
    s.remove(f.s0).unwrap();
    check(&s);
    assert!(!s.contains(f.urgent));
}

#[test]
fn delete_orphan_on_a_kind_one_to_one_deletes_the_evicted_partner() {
    let (mut s, w, f) = populated(Config {
        receipt: DeleteOrphan.into(),
        ..Config::default()
    });
    let m = sms(&mut s, &w, 9, "+2");
    let r1 = s.insert(Receipt { code: 1 });
    s.link(w.receipt, m, r1).unwrap();
    check(&s);
    s.link(w.receipt, f.s0, r1).unwrap();
    check(&s);
    assert!(!s.contains(f.r0), "s0's old receipt is orphaned");
    assert!(s.contains(m), "the evicted sms end has no orphan rule");
    assert_eq!(s.partner(w.receipt, m), None);
}

#[test]
fn preview_remove_names_rows_by_their_kind_table() {
    let (mut s, w, f) = populated(Config {
        pushes: Cascade.into(),
        ..Config::default()
    });
    let p1 = push(&mut s, &w, 9, "p1");
    s.link(w.pushes, f.phone, p1).unwrap();
    check(&s);
    let before = dump(&s, &w);
    let preview = s.preview_remove(f.phone).unwrap();
    assert_eq!(dump(&s, &w), before, "a preview changes nothing");
    assert!(preview.allowed());
    assert_eq!(
        preview.removed,
        [any("devices", f.phone), any("push", f.p0), any("push", p1)]
    );
    // the survivors: alice (inbox of p0); p1 has no base links
    let survivors: Vec<RawKey> = preview.unlinked.iter().map(|u| u.survivor.key).collect();
    assert_eq!(survivors, [f.alice.raw()]);
    assert_eq!(preview.unlinked[0].removed.key, f.p0.raw());
    assert_eq!(
        preview.unlinked[0].relation.to_string(),
        "users.notifications <-> notifications.user"
    );
    let by_base = s.preview_remove(w.push.upcast(f.p0)).unwrap();
    let by_kind = s.preview_remove(f.p0).unwrap();
    assert_eq!(by_base, by_kind);
    assert_eq!(by_kind.removed, [any("push", f.p0)]);
    assert_eq!(by_kind.unlinked.len(), 2, "inbox and pushes");
    s.remove(f.phone).unwrap();
    check(&s);
    assert_eq!(s.len::<Notification>(), 3);
}

#[test]
fn preview_remove_names_unlinked_rows_by_their_kind_at_either_end() {
    let (s, w, f) = populated(Config::default());
    // alice's rows survive her delete: each is named by its kind, though the relation is
    // declared on the base
    let preview = s.preview_remove(f.alice).unwrap();
    let survivors: Vec<AnyKey> = preview.unlinked.iter().map(|u| u.survivor).collect();
    assert!(survivors.contains(&any("email", f.e0)), "{survivors:?}");
    assert!(survivors.contains(&any("sms", f.s0)), "{survivors:?}");
    assert!(survivors.contains(&any("push", f.p0)), "{survivors:?}");
    assert!(
        !survivors.iter().any(|k| k.table == "notifications"),
        "{survivors:?}"
    );
    // a removed row is named alike in `removed` and in every link it loses
    let preview = s.preview_remove(w.email.upcast(f.e0)).unwrap();
    assert_eq!(preview.removed, [any("email", f.e0)]);
    assert_eq!(
        preview.unlinked.len(),
        5,
        "inbox, labels, attachments, cc, replies"
    );
    for u in &preview.unlinked {
        assert_eq!(u.removed, any("email", f.e0), "{}", u.relation);
    }
    let replies = preview
        .unlinked
        .iter()
        .find(|u| u.relation.a_end == "replies");
    assert_eq!(replies.map(|u| u.survivor), Some(any("email", f.e1)));
}

#[test]
fn preview_remove_names_a_blocked_row_by_its_kind_table() {
    let (s, _, f) = populated(Config {
        inbox: Cascade.into(),
        receipt: Restrict.into(),
        ..Config::default()
    });
    let preview = s.preview_remove(f.alice).unwrap();
    assert_eq!(preview.removed[0], any("users", f.alice));
    let removed: BTreeSet<AnyKey> = preview.removed[1..].iter().copied().collect();
    let expected: BTreeSet<AnyKey> = [any("email", f.e0), any("sms", f.s0), any("push", f.p0)]
        .into_iter()
        .collect();
    assert_eq!(removed, expected);
    assert_eq!(preview.blocked_by.len(), 1);
    assert_eq!(preview.blocked_by[0].key, any("sms", f.s0));
    assert_eq!(preview.blocked_by[0].blocker, any("receipts", f.r0));
}

// ----- the base's own kind, and reading a row by its kind ---------------------------------

type PlainWorld<S> = (
    S,
    Kind<Notification, Plain<Notification>>,
    Kind<Notification, Email>,
    Kind<Notification, Sms>,
);

/// A base with its own (plain) kind and two kinds with fields.
fn plain_schema() -> PlainWorld<Schema> {
    let mut schema = Schema::new();
    let notifications = schema.table::<Notification>("notifications");
    let plain = schema.plain_kind(notifications, "notification");
    let email = schema.kind::<Notification, Email>(notifications, "email");
    let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    (schema, plain, email, sms)
}

fn plain_world() -> PlainWorld<Store> {
    let (schema, plain, email, sms) = plain_schema();
    (Store::new(schema), plain, email, sms)
}

fn read(s: &Store, email: Kind<Notification, Email>, sms: Kind<Notification, Sms>) -> Vec<String> {
    s.keys::<Notification>()
        .map(|k| match s.kind_of(k, (email, sms)) {
            Which::First(e) => format!("{} email {}", s[k].at, e.address),
            Which::Second(m) => format!("{} sms {}", s[k].at, m.phone),
            Which::Other => format!("{} {}", s[k].at, s.kind_name(k).unwrap()),
        })
        .collect()
}

#[test]
fn a_base_with_a_plain_kind_takes_rows_without_a_kind_type() {
    let (mut s, plain, email, _) = plain_world();
    let k = s.insert(n(1));
    let e = s.insert_kind(
        email,
        n(2),
        Email {
            address: "a@b".into(),
        },
    );
    let more = s.insert_all([n(3), n(4)]);
    check(&s);
    assert_eq!(s.kind_name(k), Some("notification"));
    assert_eq!(s.downcast(plain, k).map(|p| p.raw()), Some(k.raw()));
    assert_eq!(s.downcast(plain, email.upcast(e)), None);
    assert_eq!(
        (s.len::<Notification>(), s.len::<Plain<Notification>>()),
        (4, 3)
    );
    assert_eq!(more.len(), 2);
    s.remove(k).unwrap();
    assert_eq!(s.len::<Plain<Notification>>(), 2);
    check(&s);
}

#[test]
fn a_row_is_read_by_its_kind_in_one_match() {
    let (mut s, _, email, sms) = plain_world();
    s.insert(n(1));
    s.insert_kind(
        email,
        n(2),
        Email {
            address: "a@b".into(),
        },
    );
    s.insert_kind(sms, n(3), Sms { phone: "+1".into() });
    assert_eq!(
        read(&s, email, sms),
        ["1 notification", "2 email a@b", "3 sms +1"]
    );
    // one kind alone, and a stale key
    let gone = s.insert(n(4));
    s.remove(gone).unwrap();
    assert!(matches!(s.kind_of(gone, email), Which::Other));
}

#[test]
fn plain_rows_survive_a_snapshot_round_trip() {
    let (mut s, _, email, sms) = plain_world();
    s.insert(n(1));
    s.insert_kind(
        email,
        n(2),
        Email {
            address: "a@b".into(),
        },
    );
    let bytes = s.to_snapshot().unwrap();
    let (schema, _, email2, sms2) = plain_schema();
    let loaded = Store::from_snapshot(schema, &bytes).unwrap();
    check(&loaded);
    assert_eq!(read(&loaded, email2, sms2), read(&s, email, sms));
}

#[test]
fn inserting_a_base_row_without_a_plain_kind_says_how_to_declare_one() {
    let (mut s, _) = world(Config::default());
    let msg = common::panic_message(|| {
        s.insert(n(1));
    });
    assert!(msg.contains("schema.plain_kind(notifications"), "{msg}");
}

// ----- kinds in bulk and per kind -------------------------------------------------------

#[test]
fn insert_kind_all_gives_the_rows_and_keys_a_loop_of_insert_kind_gives() {
    let (mut s, w) = world(Config::default());
    let (mut twin, tw) = world(Config::default());
    // a vacant slot first, so that the free list is used too
    let gone = sms(&mut s, &w, 0, "+0");
    s.remove(w.sms.upcast(gone)).unwrap();
    let tgone = sms(&mut twin, &tw, 0, "+0");
    twin.remove(tw.sms.upcast(tgone)).unwrap();
    let rows = |i: u64| {
        (
            n(i),
            Email {
                address: format!("{i}@b"),
            },
        )
    };
    let bulk = s.insert_kind_all(w.email, (1..6).map(rows));
    let each: Vec<Key<Email>> = (1..6)
        .map(|i| {
            let (b, e) = rows(i);
            twin.insert_kind(tw.email, b, e)
        })
        .collect();
    assert_eq!(bulk, each, "the same keys");
    assert_eq!(
        bulk[0].raw().index(),
        gone.raw().index(),
        "the vacant slot reused"
    );
    check(&s);
    assert_eq!(dump(&s, &w), dump(&twin, &tw));
    assert_eq!(s[w.email.upcast(bulk[4])], n(5));
    assert_eq!(s.kind_name(w.email.upcast(bulk[2])), Some("email"));
    assert!(s.insert_kind_all(w.sms, std::iter::empty()).is_empty());
}

#[test]
fn insert_kind_all_whose_rows_panic_midway_changes_nothing() {
    for txn in [false, true] {
        let (mut s, w) = world(Config::default());
        email(&mut s, &w, 0, "kept@b");
        let before = dump(&s, &w);
        let rows = (1..6u64).map(|i| {
            assert!(i < 4, "the input panics");
            (
                n(i),
                Sms {
                    phone: format!("+{i}"),
                },
            )
        });
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if txn {
                let _ = s.transaction(|s| {
                    s.insert_kind_all(w.sms, rows);
                    Ok::<(), ()>(())
                });
            } else {
                s.insert_kind_all(w.sms, rows);
            }
        }));
        assert!(got.is_err());
        check(&s);
        assert_eq!(dump(&s, &w), before, "in a transaction: {txn}");
        assert_eq!(s.len::<Sms>(), 0);
        assert!(!s.in_transaction());
    }
}

#[test]
fn insert_kind_all_whose_rows_panic_midway_drops_the_rows_it_took_back() {
    use std::sync::atomic::{AtomicIsize, Ordering};
    // (the schema makes and drops a value of its own when it reads the type's shape)
    static ALIVE: AtomicIsize = AtomicIsize::new(0);
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Tracked(u8);
    impl Tracked {
        fn new() -> Tracked {
            ALIVE.fetch_add(1, Ordering::SeqCst);
            Tracked(1)
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            ALIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let mut schema = Schema::new();
    let base = schema.table::<Notification>("notifications");
    let tracked = schema.kind::<Notification, Tracked>(base, "tracked");
    let mut s = Store::new(schema);
    let alive = ALIVE.load(Ordering::SeqCst);
    let rows = (0..5u64).map(|i| {
        assert!(i < 3, "the input panics");
        (n(i), Tracked::new())
    });
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.insert_kind_all(tracked, rows);
    }));
    assert!(got.is_err());
    check(&s);
    assert_eq!(s.len::<Tracked>(), 0);
    assert_eq!(
        ALIVE.load(Ordering::SeqCst),
        alive,
        "the rows taken back are dropped"
    );
}

#[test]
fn insert_kind_all_in_a_failed_transaction_is_undone() {
    let (mut s, w) = world(Config::default());
    let before = dump(&s, &w);
    let mut keys = Vec::new();
    let out = s.transaction(|s| {
        keys = s.insert_kind_all(w.push, (0..3).map(|i| (n(i), Push { title: "t".into() })));
        Err::<(), ()>(())
    });
    assert!(out.is_err());
    check(&s);
    assert_eq!(dump(&s, &w), before);
    assert!(
        keys.iter().all(|&k| s.get(k).is_none()),
        "its keys stay stale"
    );
}

#[test]
fn children_of_kind_lists_what_filtering_children_by_downcast_lists() {
    let (mut s, w) = world(Config::default());
    let u = s.insert(User { name: "u".into() });
    let other = s.insert(User { name: "o".into() });
    let mut made = Vec::new();
    for i in 0..30u64 {
        let k = match i % 3 {
            0 => w.email.upcast(email(&mut s, &w, i, &format!("{i}@b"))),
            1 => w.sms.upcast(sms(&mut s, &w, i, "+1")),
            _ => w.push.upcast(push(&mut s, &w, i, "t")),
        };
        made.push(k);
    }
    s.link_all(
        w.inbox,
        made.iter()
            .map(|&k| (if k.raw().index() % 4 == 0 { other } else { u }, k)),
    )
    .unwrap();
    // holes in the list, a removed row, a kind changed, a row moved to the other user
    s.unlink(w.inbox, u, made[3]).unwrap();
    s.remove(made[6]).unwrap();
    s.change_kind(made[9], w.sms, Sms { phone: "+9".into() })
        .unwrap();
    s.link(w.inbox, other, made[15]).unwrap();
    check(&s);
    for user in [u, other] {
        let by_filter: Vec<(Key<Email>, &Email)> = s
            .children(w.inbox, user)
            .filter_map(|k| s.downcast(w.email, k))
            .map(|e| (e, &s[e]))
            .collect();
        let by_kind: Vec<(Key<Email>, &Email)> =
            s.children_of_kind(w.inbox, user, w.email).collect();
        assert_eq!(by_kind, by_filter);
        let sms_kind = s.children_of_kind(w.inbox, user, w.sms).count();
        let sms_filter = s
            .children(w.inbox, user)
            .filter(|&k| s.downcast(w.sms, k).is_some());
        assert_eq!(sms_kind, sms_filter.count());
    }
    assert!(s.children_of_kind(w.inbox, u, w.email).count() > 0);
    s.remove(u).unwrap();
    assert_eq!(
        s.children_of_kind(w.inbox, u, w.email).count(),
        0,
        "a stale parent"
    );
}

#[test]
fn the_parents_view_reads_kind_parents_and_kind_children() {
    let (mut s, w, fx) = populated(Config::default());
    // the parent end a kind (an email's attachments), the child end a kind (a device's
    // pushes), both a kind (replies), the child end a base (a user's notifications)
    let by_email = s.parents(w.attachments);
    assert_eq!(by_email.get(fx.a0), Some(fx.e0));
    assert_eq!(
        by_email.row(fx.a0),
        Some(&Email {
            address: "alice@a".into()
        })
    );
    let by_device = s.parents(w.pushes);
    assert_eq!(by_device.get(fx.p0), Some(fx.phone));
    assert_eq!(by_device.row(fx.p0), s.parent_row(w.pushes, fx.p0));
    let replied_to = s.parents(w.replies);
    assert_eq!(replied_to.get(fx.e1), Some(fx.e0));
    assert_eq!(replied_to.get(fx.e0), None);
    let inbox = s.parents(w.inbox);
    assert_eq!(inbox.get(w.sms.upcast(fx.s0)), Some(fx.alice));
    assert_eq!(
        inbox.row(w.email.upcast(fx.e1)).map(|u| u.name.as_str()),
        Some("bob")
    );
    // after the parent's kind row goes, the view says no parent, as `parent` does
    s.remove(w.email.upcast(fx.e0)).unwrap();
    let by_email = s.parents(w.attachments);
    assert_eq!(by_email.get(fx.a0), s.parent(w.attachments, fx.a0));
    assert_eq!(by_email.row(fx.a0), None);
    check(&s);
}
