//! Kinds of a polymorphic base (`Notification` with `Email`, `Sms` and `Push` kinds): rows
//! inserted by kind and read by base or by kind, checked downcasts and free upcasts,
//! relations on the base and on one kind under every delete rule, changing a row's kind,
//! the integrity check, and the exact rollback of each of these in a failing transaction.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{check, Rng, User};
use relgraph::{
    AnyKey, DeleteRule, Entity, Error, Key, Kind, KindError, LinkError, ManyToMany, OneToMany,
    OneToOne, RawKey, Relation, RemoveError, Rules, Schema, StaleKey, Store,
};
use serde::{Deserialize, Serialize};

use DeleteRule::{Cascade, DeleteOrphan, Restrict};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Notification {
    at: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Email {
    address: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Sms {
    phone: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Push {
    title: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Device {
    model: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Attachment {
    name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Receipt {
    code: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Label {
    name: String,
}

/// The payload of an email-to-user copy link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
struct Cc {
    blind: bool,
}

/// The rules of every relation of the notification world; the default nullifies.
#[derive(Clone, Copy, Debug, Default)]
struct Config {
    /// users.notifications <-> notifications.user (on the base)
    inbox: Rules,
    /// notifications.labels <-> labels.notifications (on the base, many-to-many)
    labels: Rules,
    /// devices.pushes <-> push.device (a kind as the child)
    pushes: Rules,
    /// email.attachments <-> attachments.email (a kind as the parent)
    attachments: Rules,
    /// sms.receipt <-> receipts.sms (one-to-one on a kind)
    receipt: Rules,
    /// email.cc <-> users.cc_on (many-to-many with payload on a kind)
    cc: Rules,
    /// email.replies <-> email.reply_to (self-referential on a kind)
    replies: Rules,
}

/// The handles of the notification world.
#[derive(Clone, Copy, Debug)]
struct W {
    email: Kind<Notification, Email>,
    sms: Kind<Notification, Sms>,
    push: Kind<Notification, Push>,
    inbox: OneToMany<User, Notification>,
    labels: ManyToMany<Notification, Label>,
    pushes: OneToMany<Device, Push>,
    attachments: OneToMany<Email, Attachment>,
    receipt: OneToOne<Sms, Receipt>,
    cc: ManyToMany<Email, User, Cc>,
    replies: OneToMany<Email, Email>,
}

fn world(cfg: Config) -> (Store, W) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let devices = s.table::<Device>("devices");
    let attachments = s.table::<Attachment>("attachments");
    let receipts = s.table::<Receipt>("receipts");
    let labels = s.table::<Label>("labels");
    let notifications = s.table::<Notification>("notifications");
    let email = s.kind::<Notification, Email>(notifications, "email");
    let sms = s.kind::<Notification, Sms>(notifications, "sms");
    let push = s.kind::<Notification, Push>(notifications, "push");
    let w = W {
        email,
        sms,
        push,
        inbox: s.one_to_many(users, "notifications", notifications, "user", cfg.inbox),
        labels: s.many_to_many(notifications, "labels", labels, "notifications", cfg.labels),
        pushes: s.one_to_many(devices, "pushes", push, "device", cfg.pushes),
        attachments: s.one_to_many(email, "attachments", attachments, "email", cfg.attachments),
        receipt: s.one_to_one(sms.table(), "receipt", receipts, "sms", cfg.receipt),
        cc: s.many_to_many_with(email, "cc", users, "cc_on", cfg.cc),
        replies: s.one_to_many(email, "replies", email, "reply_to", cfg.replies),
    };
    (Store::new(s), w)
}

fn n(at: u64) -> Notification {
    Notification { at }
}

fn email(s: &mut Store, w: &W, at: u64, address: &str) -> Key<Email> {
    let address = address.into();
    s.insert_kind(w.email, n(at), Email { address })
}

fn sms(s: &mut Store, w: &W, at: u64, phone: &str) -> Key<Sms> {
    let phone = phone.into();
    s.insert_kind(w.sms, n(at), Sms { phone })
}

fn push(s: &mut Store, w: &W, at: u64, title: &str) -> Key<Push> {
    let title = title.into();
    s.insert_kind(w.push, n(at), Push { title })
}

fn any<T>(table: &'static str, k: Key<T>) -> AnyKey {
    AnyKey {
        table,
        key: k.raw(),
    }
}

/// A populated notification world.
struct Fx {
    alice: Key<User>,
    bob: Key<User>,
    phone: Key<Device>,
    /// alice's email, with attachment `a0`, label `urgent`, bob in copy and reply `e1`
    e0: Key<Email>,
    /// bob's email, a reply to `e0`
    e1: Key<Email>,
    /// alice's sms, with receipt `r0` and label `urgent`
    s0: Key<Sms>,
    /// alice's push, delivered to `phone`
    p0: Key<Push>,
    a0: Key<Attachment>,
    r0: Key<Receipt>,
    urgent: Key<Label>,
}

fn populated(cfg: Config) -> (Store, W, Fx) {
    let (mut s, w) = world(cfg);
    let alice = s.insert(User {
        name: "alice".into(),
    });
    let bob = s.insert(User { name: "bob".into() });
    let phone = s.insert(Device {
        model: "pixel".into(),
    });
    let e0 = email(&mut s, &w, 1, "alice@a");
    let s0 = sms(&mut s, &w, 2, "+1");
    let p0 = push(&mut s, &w, 3, "hello");
    let e1 = email(&mut s, &w, 4, "bob@b");
    let a0 = s.insert(Attachment {
        name: "a0.pdf".into(),
    });
    let r0 = s.insert(Receipt { code: 200 });
    let urgent = s.insert(Label {
        name: "urgent".into(),
    });
    for k in [w.email.upcast(e0), w.sms.upcast(s0), w.push.upcast(p0)] {
        s.link(w.inbox, alice, k).unwrap();
    }
    s.link(w.inbox, bob, w.email.upcast(e1)).unwrap();
    s.link(w.labels, w.email.upcast(e0), urgent).unwrap();
    s.link(w.labels, w.sms.upcast(s0), urgent).unwrap();
    s.link(w.pushes, phone, p0).unwrap();
    s.link(w.attachments, e0, a0).unwrap();
    s.link(w.receipt, s0, r0).unwrap();
    s.link_with(w.cc, e0, bob, Cc { blind: true }).unwrap();
    s.link(w.replies, e0, e1).unwrap();
    check(&s);
    let fx = Fx {
        alice,
        bob,
        phone,
        e0,
        e1,
        s0,
        p0,
        a0,
        r0,
        urgent,
    };
    (s, w, fx)
}

/// Every observable fact of a notification world, one a line: each table in iteration
/// order (kinds included, so an order change shows), each base row's kind as seen by
/// every reading call, each relation from both ends, each payload.
fn dump(s: &Store, w: &W) -> String {
    let mut out = String::new();
    table::<User>(&mut out, s, "users");
    table::<Device>(&mut out, s, "devices");
    table::<Attachment>(&mut out, s, "attachments");
    table::<Receipt>(&mut out, s, "receipts");
    table::<Label>(&mut out, s, "labels");
    table::<Notification>(&mut out, s, "notifications");
    table::<Email>(&mut out, s, "email");
    table::<Sms>(&mut out, s, "sms");
    table::<Push>(&mut out, s, "push");
    for k in s.keys::<Notification>() {
        let name = s.kind_name(k);
        let e = s.downcast(w.email, k);
        let m = s.downcast(w.sms, k);
        let p = s.downcast(w.push, k);
        assert_eq!(e.map(|e| &s[e]), s.get_kind(w.email, k));
        assert_eq!(m.map(|m| &s[m]), s.get_kind(w.sms, k));
        assert_eq!(p.map(|p| &s[p]), s.get_kind(w.push, k));
        let found = [e.is_some(), m.is_some(), p.is_some()];
        assert_eq!(
            found.iter().filter(|&&f| f).count(),
            1,
            "{k:?} has one kind"
        );
        writeln!(out, "  kind of {k:?} = {name:?}").unwrap();
    }
    relation(&mut out, s, "inbox", w.inbox);
    relation(&mut out, s, "labels", w.labels);
    relation(&mut out, s, "pushes", w.pushes);
    relation(&mut out, s, "attachments", w.attachments);
    relation(&mut out, s, "receipt", w.receipt);
    relation(&mut out, s, "cc", w.cc);
    relation(&mut out, s, "replies", w.replies);
    for e in s.keys::<Email>() {
        for (u, cc) in s.targets_with(w.cc, e) {
            writeln!(out, "  cc payload {e:?} -> {u:?} = {cc:?}").unwrap();
        }
    }
    out
}

fn table<T: Entity + std::fmt::Debug + PartialEq>(out: &mut String, s: &Store, name: &str) {
    writeln!(out, "table {name}: len {}", s.len::<T>()).unwrap();
    let rows = s.rows::<T>();
    assert_eq!(rows.len(), s.len::<T>());
    assert_eq!(
        s.iter::<T>().count(),
        s.len::<T>(),
        "{name}: iter and len disagree"
    );
    for (k, v) in s.iter::<T>() {
        assert_eq!(rows.get(k), Some(v));
        assert!(s.contains(k));
        writeln!(out, "  {k:?} = {v:?}").unwrap();
    }
}

fn relation<R: Relation>(out: &mut String, s: &Store, name: &str, rel: R) {
    writeln!(out, "relation {name}: {} links", s.link_count(rel)).unwrap();
    for a in s.keys::<R::A>() {
        let t: Vec<Key<R::B>> = s.targets(rel, a).collect();
        assert_eq!(t.len(), s.target_count(rel, a));
        if !t.is_empty() {
            writeln!(out, "  {a:?} -> {t:?}").unwrap();
        }
    }
    for b in s.keys::<R::B>() {
        let f: Vec<Key<R::A>> = s.sources(rel, b).collect();
        assert_eq!(f.len(), s.source_count(rel, b));
        if !f.is_empty() {
            writeln!(out, "  {b:?} <- {f:?}").unwrap();
        }
    }
}

/// Runs `f` in a transaction that then fails, and asserts the store is exactly as before.
fn assert_undone(s: &mut Store, w: &W, f: impl FnOnce(&mut Store)) {
    let before = dump(s, w);
    let out: Result<(), &str> = s.transaction(|s| {
        f(s);
        check(s);
        Err("undo")
    });
    assert_eq!(out, Err("undo"));
    check(s);
    assert_eq!(dump(s, w), before);
}

/// Asserts that `f` returns an error and leaves the store exactly as it was.
#[track_caller]
fn assert_refused<T: std::fmt::Debug, E>(
    s: &mut Store,
    w: &W,
    f: impl FnOnce(&mut Store) -> Result<T, E>,
) -> E {
    let before = dump(s, w);
    let e = f(s).expect_err("the call should have been refused");
    check(s);
    assert_eq!(dump(s, w), before, "a refused call changed the store");
    e
}

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
fn a_kind_handle_of_another_schema_panics() {
    let (mut s, _) = world(Config::default());
    let (_, other) = world(Config::default());
    email(&mut s, &other, 1, "a@b");
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

#[test]
fn a_kind_key_left_behind_by_change_kind_is_refused_as_stale() {
    let (mut s, w) = world(Config::default());
    let phone = s.insert(Device { model: "m".into() });
    let p = push(&mut s, &w, 1, "t");
    let base = w.push.upcast(p);
    let m = s
        .change_kind(base, w.sms, Sms { phone: "+1".into() })
        .unwrap();
    check(&s);
    assert_eq!(m.raw(), p.raw());
    let e = assert_refused(&mut s, &w, |s| s.link(w.pushes, phone, p));
    assert_eq!(
        e,
        LinkError::Stale(StaleKey {
            key: any("push", p)
        })
    );
    assert_eq!(s.get(p), None);
    assert_eq!(s.kind_name(p), None, "the old kind key is stale");
    assert_eq!(s.kind_name(m), Some("sms"));
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

// ----- changing kind ------------------------------------------------------------------

#[test]
fn change_kind_keeps_the_key_the_base_fields_and_the_base_links() {
    let (mut s, w, f) = populated(Config::default());
    s.unlink(w.receipt, f.s0, f.r0).unwrap();
    check(&s);
    let base = w.sms.upcast(f.s0);
    let e = s
        .change_kind(
            base,
            w.email,
            Email {
                address: "was sms".into(),
            },
        )
        .unwrap();
    check(&s);
    assert_eq!(e.raw(), f.s0.raw());
    assert_eq!(w.email.upcast(e), base);
    assert_eq!(s[base], n(2));
    assert_eq!(s[e].address, "was sms");
    assert_eq!(s.kind_name(base), Some("email"));
    assert_eq!(s.downcast(w.sms, base), None);
    assert_eq!(s.downcast(w.email, base), Some(e));
    assert!(!s.contains(f.s0), "the old kind key is stale");
    assert_eq!(
        (s.len::<Notification>(), s.len::<Email>(), s.len::<Sms>()),
        (4, 3, 0)
    );
    assert_eq!(s.parent(w.inbox, base), Some(f.alice));
    let inbox: Vec<Key<Notification>> = s.children(w.inbox, f.alice).collect();
    assert_eq!(
        inbox[1], base,
        "the row keeps its position among alice's notifications"
    );
    assert!(s.linked(w.labels, base, f.urgent));
    // and it can now be linked through the new kind's relations
    s.link(w.replies, f.e0, e).unwrap();
    check(&s);
    assert_eq!(s.children(w.replies, f.e0).collect::<Vec<_>>(), [f.e1, e]);
}

#[test]
fn change_kind_is_refused_at_either_end_of_every_relation_on_the_old_kind() {
    let (mut s, w, f) = populated(Config::default());
    let name = |i: usize| s.schema().relations().nth(i).unwrap().1;
    let (pushes, attachments, receipt, cc, replies) = (name(2), name(3), name(4), name(5), name(6));
    let sms_value = || Sms { phone: "x".into() };
    let to_email = || Email {
        address: "x".into(),
    };
    // e0 is the parent of an attachment, copies bob and has a reply: the first relation
    // of its kind is named
    let e0 = w.email.upcast(f.e0);
    let e = assert_refused(&mut s, &w, |s| s.change_kind(e0, w.sms, sms_value()));
    assert_eq!(
        e,
        KindError::Linked {
            relation: attachments,
            key: any("email", f.e0)
        }
    );
    // e1 is a reply: the child end of a self-referential kind relation
    let e1 = w.email.upcast(f.e1);
    let e = assert_refused(&mut s, &w, |s| {
        s.change_kind(e1, w.push, Push { title: "t".into() })
    });
    assert_eq!(
        e,
        KindError::Linked {
            relation: replies,
            key: any("email", f.e1)
        }
    );
    // s0 has a receipt (one-to-one)
    let s0 = w.sms.upcast(f.s0);
    let e = assert_refused(&mut s, &w, |s| s.change_kind(s0, w.email, to_email()));
    assert_eq!(
        e,
        KindError::Linked {
            relation: receipt,
            key: any("sms", f.s0)
        }
    );
    // p0 is the child of a device
    let p0 = w.push.upcast(f.p0);
    let e = assert_refused(&mut s, &w, |s| s.change_kind(p0, w.email, to_email()));
    assert_eq!(
        e,
        KindError::Linked {
            relation: pushes,
            key: any("push", f.p0)
        }
    );
    // the last kind link of e0 is cc (many-to-many)
    s.unlink(w.attachments, f.e0, f.a0).unwrap();
    check(&s);
    s.unlink(w.replies, f.e0, f.e1).unwrap();
    check(&s);
    let e = assert_refused(&mut s, &w, |s| s.change_kind(e0, w.sms, sms_value()));
    assert_eq!(
        e,
        KindError::Linked {
            relation: cc,
            key: any("email", f.e0)
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "cannot change the kind of email[{}]: it is linked through relation \
             email.cc <-> users.cc_on of its current kind",
            f.e0.raw()
        )
    );
    s.unlink(w.cc, f.e0, f.bob).unwrap();
    check(&s);
    let m = s.change_kind(e0, w.sms, sms_value()).unwrap();
    check(&s);
    assert_eq!(s.parent(w.inbox, e0), Some(f.alice), "base links stay");
    assert!(s.linked(w.labels, e0, f.urgent));
    assert_eq!(s.get(m), Some(&sms_value()));
    // and the other rows, once unlinked, change too
    s.unlink(w.receipt, f.s0, f.r0).unwrap();
    check(&s);
    s.unlink(w.pushes, f.phone, f.p0).unwrap();
    check(&s);
    s.change_kind(e1, w.push, Push { title: "t".into() })
        .unwrap();
    check(&s);
    s.change_kind(s0, w.email, to_email()).unwrap();
    check(&s);
    s.change_kind(p0, w.email, to_email()).unwrap();
    check(&s);
    assert_eq!(
        (s.len::<Email>(), s.len::<Sms>(), s.len::<Push>()),
        (2, 1, 1)
    );
}

#[test]
fn change_kind_to_the_same_kind_replaces_the_value_and_keeps_kind_links() {
    let (mut s, w, f) = populated(Config::default());
    let base = w.email.upcast(f.e0);
    let keys_before: Vec<Key<Email>> = s.keys::<Email>().collect();
    let e = s
        .change_kind(
            base,
            w.email,
            Email {
                address: "new".into(),
            },
        )
        .unwrap();
    check(&s);
    assert_eq!(e, f.e0);
    assert_eq!(s[f.e0].address, "new");
    assert_eq!(s.keys::<Email>().collect::<Vec<_>>(), keys_before);
    assert_eq!(s.parent(w.attachments, f.a0), Some(f.e0));
    assert_eq!(s.parent(w.replies, f.e1), Some(f.e0));
    assert_eq!(s.payload(w.cc, f.e0, f.bob), Some(&Cc { blind: true }));
}

#[test]
fn change_kind_of_a_stale_key_is_refused_and_changes_nothing() {
    let (mut s, w, f) = populated(Config::default());
    let gone = w.sms.upcast(f.s0);
    s.remove(gone).unwrap();
    check(&s);
    let e = assert_refused(&mut s, &w, |s| {
        s.change_kind(gone, w.push, Push { title: "t".into() })
    });
    assert_eq!(
        e,
        KindError::Stale(StaleKey {
            key: any("notifications", gone)
        })
    );
    let as_error: Error = e.clone().into();
    assert_eq!(as_error, Error::Kind(e));
}

#[test]
fn a_row_changed_to_another_kind_and_back_is_found_by_its_kind_each_time() {
    let (mut s, w) = world(Config::default());
    let others: Vec<Key<Sms>> = (0..3).map(|i| sms(&mut s, &w, i, "o")).collect();
    let e = email(&mut s, &w, 9, "e");
    let base = w.email.upcast(e);
    let mut last_sms = None;
    for round in 0..3 {
        let m = s
            .change_kind(
                base,
                w.sms,
                Sms {
                    phone: format!("{round}"),
                },
            )
            .unwrap();
        check(&s);
        assert_eq!(s.len::<Sms>(), 4);
        assert_eq!(s.len::<Email>(), 0);
        assert_eq!(s.iter::<Sms>().filter(|&(k, _)| k == m).count(), 1);
        last_sms = Some(m);
        let e2 = s
            .change_kind(
                base,
                w.email,
                Email {
                    address: format!("{round}"),
                },
            )
            .unwrap();
        check(&s);
        assert_eq!(e2, e);
        assert_eq!(s[e].address, format!("{round}"));
        assert_eq!(
            s.keys::<Sms>().collect::<BTreeSet<_>>(),
            others.iter().copied().collect()
        );
    }
    assert_eq!(s.get(last_sms.unwrap()), None);
    assert_eq!(s.len::<Notification>(), 4);
}

#[test]
fn the_umbrella_error_takes_kind_errors_with_the_question_mark() {
    fn go(s: &mut Store, w: &W, k: Key<Notification>) -> relgraph::Result<Key<Sms>> {
        Ok(s.change_kind(k, w.sms, Sms { phone: "p".into() })?)
    }
    let (mut s, w, f) = populated(Config::default());
    let e = go(&mut s, &w, w.email.upcast(f.e0)).unwrap_err();
    assert!(matches!(e, Error::Kind(KindError::Linked { .. })), "{e:?}");
    assert!(std::error::Error::source(&e).is_some());
    assert!(
        go(&mut s, &w, w.push.upcast(f.p0)).is_err(),
        "p0 has a device"
    );
    s.unlink(w.pushes, f.phone, f.p0).unwrap();
    check(&s);
    assert!(go(&mut s, &w, w.push.upcast(f.p0)).is_ok());
    check(&s);
}

// ----- transactions -------------------------------------------------------------------

#[test]
fn insert_kind_in_a_failed_transaction_is_undone_and_its_keys_are_never_reissued() {
    let (mut s, w, f) = populated(Config::default());
    let mut undone: Vec<RawKey> = Vec::new();
    let before = dump(&s, &w);
    let out: Result<(), ()> = s.transaction(|s| {
        let e = email(s, &w, 10, "gone");
        let m = sms(s, &w, 11, "gone");
        s.link(w.inbox, f.bob, w.sms.upcast(m)).unwrap();
        check(s);
        s.link(w.replies, f.e0, e).unwrap();
        check(s);
        undone.extend([e.raw(), m.raw()]);
        check(s);
        Err(())
    });
    assert!(out.is_err());
    check(&s);
    assert_eq!(dump(&s, &w), before);
    for &k in &undone {
        let base: Key<Notification> = Key::from_raw(k);
        assert!(!s.contains(base));
        assert_eq!(s.downcast(w.email, base), None);
        assert_eq!(s.downcast(w.sms, base), None);
        assert_eq!(s.kind_name(base), None);
        assert_eq!(s.get(Key::<Email>::from_raw(k)), None);
        assert_eq!(s.get(Key::<Sms>::from_raw(k)), None);
    }
    let mut issued = BTreeSet::new();
    for i in 0..50 {
        let k = match i % 3 {
            0 => email(&mut s, &w, i, "new").raw(),
            1 => sms(&mut s, &w, i, "new").raw(),
            _ => push(&mut s, &w, i, "new").raw(),
        };
        assert!(
            !undone.contains(&k),
            "a rolled-back key {k:?} was issued again"
        );
        assert!(issued.insert(k));
        check(&s);
    }
}

#[test]
fn change_kind_in_a_failed_transaction_is_undone_exactly() {
    let (mut s, w, f) = populated(Config::default());
    let extra: Vec<Key<Email>> = (0..3).map(|i| email(&mut s, &w, 20 + i, "x")).collect();
    s.unlink(w.receipt, f.s0, f.r0).unwrap();
    check(&s);
    // e1 is not the last email row: undoing its kind change must put it back in its place
    s.unlink(w.replies, f.e0, f.e1).unwrap();
    check(&s);
    let e1 = w.email.upcast(f.e1);
    assert_undone(&mut s, &w, |s| {
        s.change_kind(e1, w.push, Push { title: "t".into() })
            .unwrap();
        check(s);
    });
    assert_undone(&mut s, &w, |s| {
        let m = s.change_kind(e1, w.sms, Sms { phone: "p".into() }).unwrap();
        check(s);
        s.change_kind(w.sms.upcast(f.s0), w.push, Push { title: "q".into() })
            .unwrap();
        check(s);
        s.change_kind(
            w.sms.upcast(m),
            w.email,
            Email {
                address: "b".into(),
            },
        )
        .unwrap();
        check(s);
    });
    assert_undone(&mut s, &w, |s| {
        s.change_kind(
            w.email.upcast(f.e0),
            w.email,
            Email {
                address: "same".into(),
            },
        )
        .unwrap();
        check(s);
        s.change_kind(w.email.upcast(extra[0]), w.sms, Sms { phone: "s".into() })
            .unwrap();
        check(s);
    });
    assert_eq!(s.keys::<Email>().collect::<Vec<_>>()[..2], [f.e0, f.e1]);
}

#[test]
fn removing_kind_rows_in_a_failed_transaction_is_undone_exactly() {
    let cfg = Config {
        inbox: Cascade.into(),
        attachments: Cascade.into(),
        receipt: Cascade.into(),
        replies: Cascade.into(),
        labels: DeleteOrphan.into(),
        ..Config::default()
    };
    let (mut s, w, f) = populated(cfg);
    for i in 0..4 {
        let e = email(&mut s, &w, 30 + i, "late");
        s.link(w.inbox, f.bob, w.email.upcast(e)).unwrap();
        check(&s);
    }
    check(&s);
    assert_undone(&mut s, &w, |s| s.remove(f.e0).unwrap());
    assert_undone(&mut s, &w, |s| s.remove(w.sms.upcast(f.s0)).unwrap());
    assert_undone(&mut s, &w, |s| s.remove(f.alice).unwrap());
    assert_undone(&mut s, &w, |s| s.remove(f.bob).unwrap());
    assert_undone(&mut s, &w, |s| {
        s.remove(f.phone).unwrap();
        check(s);
        s.remove(f.a0).unwrap();
        check(s);
        let keys: Vec<Key<Email>> = s.keys::<Email>().collect();
        for e in keys.into_iter().rev().step_by(2) {
            let _ = s.remove(e);
            check(s);
        }
    });
}

#[test]
fn links_through_kind_relations_in_a_failed_transaction_are_undone_exactly() {
    let (mut s, w, f) = populated(Config {
        pushes: DeleteOrphan.into(),
        receipt: DeleteOrphan.into(),
        ..Config::default()
    });
    let p1 = push(&mut s, &w, 9, "p1");
    s.link(w.pushes, f.phone, p1).unwrap();
    check(&s);
    assert_undone(&mut s, &w, |s| {
        s.set_children(w.pushes, f.phone, &[p1]).unwrap();
        check(s);
        assert!(!s.contains(f.p0), "p0 was orphaned");
    });
    assert_undone(&mut s, &w, |s| {
        let r1 = s.insert(Receipt { code: 9 });
        s.link(w.receipt, f.s0, r1).unwrap();
        check(s);
        assert!(!s.contains(f.r0));
    });
    assert_undone(&mut s, &w, |s| {
        s.link_with(w.cc, f.e1, f.alice, Cc { blind: false })
            .unwrap();
        check(s);
        s.update_payload(w.cc, f.e0, f.bob, |c| c.blind = false)
            .unwrap();
        check(s);
        s.set_targets(w.cc, f.e0, &[f.alice]).unwrap();
        check(s);
        s.unlink(w.replies, f.e0, f.e1).unwrap();
        check(s);
        s.link(w.replies, f.e1, f.e0).unwrap();
        check(s);
        s.set_children(w.attachments, f.e1, &[f.a0]).unwrap();
        check(s);
    });
}

#[test]
fn updates_of_base_and_kind_fields_in_a_failed_transaction_are_undone() {
    let (mut s, w, f) = populated(Config::default());
    assert_undone(&mut s, &w, |s| {
        s.update(f.e0, |e| e.address = "changed".into()).unwrap();
        check(s);
        s.update(w.email.upcast(f.e0), |b| b.at = 1000).unwrap();
        check(s);
        s.update(f.p0, |p| p.title.clear()).unwrap();
        check(s);
    });
}

#[test]
fn a_panicking_transaction_undoes_its_kind_changes() {
    let (mut s, w, f) = populated(Config::default());
    let before = dump(&s, &w);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), ()> = s.transaction(|s| {
            s.remove(f.s0).unwrap();
            check(s);
            email(s, &w, 50, "x");
            s.unlink(w.pushes, f.phone, f.p0).unwrap();
            check(s);
            s.change_kind(w.push.upcast(f.p0), w.sms, Sms { phone: "y".into() })
                .unwrap();
            check(s);
            panic!("boom");
        });
    }));
    assert!(r.is_err());
    check(&s);
    assert!(!s.in_transaction());
    assert_eq!(dump(&s, &w), before);
}

#[test]
fn a_committed_transaction_keeps_its_kind_changes() {
    let (mut s, w, f) = populated(Config::default());
    let out: Result<Key<Sms>, KindError> = s.transaction(|s| {
        s.unlink(w.pushes, f.phone, f.p0).unwrap();
        check(s);
        s.change_kind(w.push.upcast(f.p0), w.sms, Sms { phone: "y".into() })
    });
    let m = out.unwrap();
    check(&s);
    assert_eq!(s.kind_name(m), Some("sms"));
    assert_eq!(s.len::<Push>(), 0);
    // a failing inner transaction undoes only itself
    let out: Result<(), KindError> = s.transaction(|s| {
        let inner: Result<(), KindError> = s.transaction(|s| {
            s.change_kind(
                w.sms.upcast(m),
                w.email,
                Email {
                    address: "z".into(),
                },
            )?;
            check(s);
            s.change_kind(w.email.upcast(f.e0), w.sms, Sms { phone: "z".into() })?;
            check(s);
            Ok(())
        });
        assert!(matches!(inner, Err(KindError::Linked { .. })));
        Ok(())
    });
    out.unwrap();
    check(&s);
    assert_eq!(
        s.kind_name(m),
        Some("sms"),
        "the inner change of kind was undone"
    );
}

// ----- model -----------------------------------------------------------------------------

/// Random sequences of kind operations, checked after every step against a plain model
/// (each row's kind and base value) and the integrity check; failing transactions of the
/// same operations must leave the store exactly as it was.
#[test]
fn random_kind_operations_agree_with_a_model_and_keep_every_invariant() {
    for seed in 1..=12 {
        let cfg = Config {
            inbox: if seed % 2 == 0 {
                Cascade.into()
            } else {
                Rules::new()
            },
            pushes: if seed % 3 == 0 {
                DeleteOrphan.into()
            } else {
                Cascade.into()
            },
            attachments: Restrict.into(),
            ..Config::default()
        };
        let (mut s, w) = world(cfg);
        let users: Vec<Key<User>> = (0..3)
            .map(|i| {
                s.insert(User {
                    name: format!("u{i}"),
                })
            })
            .collect();
        for i in 0..2 {
            s.insert(Device {
                model: format!("d{i}"),
            });
        }
        let mut model: BTreeMap<RawKey, (&'static str, u64)> = BTreeMap::new();
        let mut rng = Rng::new(seed);
        for step in 0..400u64 {
            let in_txn = rng.below(8) == 0;
            let before = in_txn.then(|| dump(&s, &w));
            let mut shadow = model.clone();
            let target = if in_txn { &mut shadow } else { &mut model };
            let out: Result<(), ()> = s.transaction(|s| {
                for _ in 0..if in_txn { 4 } else { 1 } {
                    random_op(s, &w, &mut rng, target, &users, step);
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
                assert_eq!(dump(&s, &w), before, "seed {seed} step {step}: rollback");
            }
            agree(&s, &model);
        }
    }
}

fn random_op(
    s: &mut Store,
    w: &W,
    rng: &mut Rng,
    model: &mut BTreeMap<RawKey, (&'static str, u64)>,
    users: &[Key<User>],
    step: u64,
) {
    let devices: Vec<Key<Device>> = s.keys::<Device>().collect();
    let rows: Vec<RawKey> = model.keys().copied().collect();
    let row = (!rows.is_empty()).then(|| Key::<Notification>::from_raw(rng.pick(&rows)));
    match (rng.below(9), row) {
        (0..=2, _) | (_, None) => {
            let k = match rng.below(3) {
                0 => ("email", email(s, w, step, "e").raw()),
                1 => ("sms", sms(s, w, step, "s").raw()),
                _ => ("push", push(s, w, step, "p").raw()),
            };
            model.insert(k.1, (k.0, step));
            s.link(w.inbox, rng.pick(users), Key::from_raw(k.1))
                .unwrap();
            if let (Some(p), false) = (s.downcast(w.push, Key::from_raw(k.1)), devices.is_empty()) {
                s.link(w.pushes, rng.pick(&devices), p).unwrap();
            }
        }
        (3, Some(k)) => {
            let to = rng.below(3);
            let before = dump(s, w);
            let out = match to {
                0 => s
                    .change_kind(
                        k,
                        w.email,
                        Email {
                            address: "c".into(),
                        },
                    )
                    .map(|_| "email"),
                1 => s
                    .change_kind(k, w.sms, Sms { phone: "c".into() })
                    .map(|_| "sms"),
                _ => s
                    .change_kind(k, w.push, Push { title: "c".into() })
                    .map(|_| "push"),
            };
            match out {
                Ok(kind) => model.get_mut(&k.raw()).unwrap().0 = kind,
                Err(KindError::Linked { .. }) => assert_eq!(dump(s, w), before),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        (4, Some(k)) => {
            if let Some(p) = s.downcast(w.push, k) {
                if let Some(d) = s.parent(w.pushes, p) {
                    s.unlink(w.pushes, d, p).unwrap();
                    forget_removed(s, model); // under delete-orphan the push goes
                }
            }
            if let Some(e) = s.downcast(w.email, k) {
                let kids: Vec<Key<Attachment>> = s.children(w.attachments, e).collect();
                for a in kids {
                    s.remove(a).unwrap();
                }
            }
        }
        (5, Some(k)) => {
            if let Some(e) = s.downcast(w.email, k) {
                let a = s.insert(Attachment { name: "a".into() });
                s.link(w.attachments, e, a).unwrap();
            }
        }
        (6, Some(k)) => {
            s.update(k, |v| v.at += 1000).unwrap();
            model.get_mut(&k.raw()).unwrap().1 += 1000;
        }
        (7, Some(k)) => {
            let before = dump(s, w);
            let by_kind = rng.below(2) == 0;
            let out = match s.kind_name(k) {
                Some("email") if by_kind => s.remove(s.downcast(w.email, k).unwrap()),
                Some("push") if by_kind => s.remove(s.downcast(w.push, k).unwrap()),
                _ => s.remove(k),
            };
            match out {
                Ok(()) => {
                    model.remove(&k.raw());
                    forget_removed(s, model);
                }
                Err(RemoveError::Restricted { .. }) => assert_eq!(dump(s, w), before),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        (_, Some(_)) => {
            // a device goes (taking or orphaning its pushes) and a new one comes
            if !devices.is_empty() {
                s.remove(rng.pick(&devices)).unwrap();
                forget_removed(s, model);
            }
            s.insert(Device {
                model: "new".into(),
            });
        }
    }
}

/// Drops from the model the rows a cascade took with it.
fn forget_removed(s: &Store, model: &mut BTreeMap<RawKey, (&'static str, u64)>) {
    model.retain(|&k, _| s.contains(Key::<Notification>::from_raw(k)));
}

fn agree(s: &Store, model: &BTreeMap<RawKey, (&'static str, u64)>) {
    assert_eq!(s.len::<Notification>(), model.len());
    for tag in ["email", "sms", "push"] {
        let expected: BTreeSet<RawKey> = model
            .iter()
            .filter(|(_, v)| v.0 == tag)
            .map(|(&k, _)| k)
            .collect();
        let actual: BTreeSet<RawKey> = match tag {
            "email" => s.keys::<Email>().map(Key::raw).collect(),
            "sms" => s.keys::<Sms>().map(Key::raw).collect(),
            _ => s.keys::<Push>().map(Key::raw).collect(),
        };
        assert_eq!(actual, expected, "rows of kind {tag}");
    }
    for (&k, &(tag, at)) in model {
        let base = Key::<Notification>::from_raw(k);
        assert_eq!(s.kind_name(base), Some(tag));
        assert_eq!(s[base].at, at);
    }
}
