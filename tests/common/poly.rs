//! The notification world shared by the tests of kinds (`kinds.rs`, `change_kind.rs`):
//! a polymorphic base `Notification` with `Email`, `Sms` and `Push` kinds, relations on
//! the base and on single kinds whose rules each test chooses (`Config`), a populated
//! fixture, and `dump`, which renders every observable fact so that "nothing changed" is
//! one string comparison.

use std::fmt::Write;

use relgraph::{AnyKey, Key, Kind, ManyToMany, OneToMany, OneToOne, Rules, Schema, Store};
use serde::{Deserialize, Serialize};

use super::{check, dump_ends, dump_table, User};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Notification {
    pub at: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Email {
    pub address: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Sms {
    pub phone: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Push {
    pub title: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Device {
    pub model: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Attachment {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Receipt {
    pub code: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Label {
    pub name: String,
}

/// The payload of an email-to-user copy link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Cc {
    pub blind: bool,
}

/// The rules of every relation of the notification world; the default nullifies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// users.notifications <-> notifications.user (on the base)
    pub inbox: Rules,
    /// notifications.labels <-> labels.notifications (on the base, many-to-many)
    pub labels: Rules,
    /// devices.pushes <-> push.device (a kind as the child)
    pub pushes: Rules,
    /// email.attachments <-> attachments.email (a kind as the parent)
    pub attachments: Rules,
    /// sms.receipt <-> receipts.sms (one-to-one on a kind)
    pub receipt: Rules,
    /// email.cc <-> users.cc_on (many-to-many with payload on a kind)
    pub cc: Rules,
    /// email.replies <-> email.reply_to (self-referential on a kind)
    pub replies: Rules,
}

/// The handles of the notification world.
#[derive(Clone, Copy, Debug)]
pub struct W {
    pub email: Kind<Notification, Email>,
    pub sms: Kind<Notification, Sms>,
    pub push: Kind<Notification, Push>,
    pub inbox: OneToMany<User, Notification>,
    pub labels: ManyToMany<Notification, Label>,
    pub pushes: OneToMany<Device, Push>,
    pub attachments: OneToMany<Email, Attachment>,
    pub receipt: OneToOne<Sms, Receipt>,
    pub cc: ManyToMany<Email, User, Cc>,
    pub replies: OneToMany<Email, Email>,
}

pub fn world(cfg: Config) -> (Store, W) {
    let (s, w) = schema(cfg);
    (Store::new(s), w)
}

/// The schema of the notification world with the given rules.
pub fn schema(cfg: Config) -> (Schema, W) {
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
    (s, w)
}

pub fn n(at: u64) -> Notification {
    Notification { at }
}

pub fn email(s: &mut Store, w: &W, at: u64, address: &str) -> Key<Email> {
    let address = address.into();
    s.insert_kind(w.email, n(at), Email { address })
}

pub fn sms(s: &mut Store, w: &W, at: u64, phone: &str) -> Key<Sms> {
    let phone = phone.into();
    s.insert_kind(w.sms, n(at), Sms { phone })
}

pub fn push(s: &mut Store, w: &W, at: u64, title: &str) -> Key<Push> {
    let title = title.into();
    s.insert_kind(w.push, n(at), Push { title })
}

pub fn any<T>(table: &'static str, k: Key<T>) -> AnyKey {
    AnyKey {
        table,
        key: k.raw(),
    }
}

/// A populated notification world.
pub struct Fx {
    pub alice: Key<User>,
    pub bob: Key<User>,
    pub phone: Key<Device>,
    /// alice's email, with attachment `a0`, label `urgent`, bob in copy and reply `e1`
    pub e0: Key<Email>,
    /// bob's email, a reply to `e0`
    pub e1: Key<Email>,
    /// alice's sms, with receipt `r0` and label `urgent`
    pub s0: Key<Sms>,
    /// alice's push, delivered to `phone`
    pub p0: Key<Push>,
    pub a0: Key<Attachment>,
    pub r0: Key<Receipt>,
    pub urgent: Key<Label>,
}

pub fn populated(cfg: Config) -> (Store, W, Fx) {
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
pub fn dump(s: &Store, w: &W) -> String {
    let mut out = String::new();
    dump_table::<User>(&mut out, s, "users");
    dump_table::<Device>(&mut out, s, "devices");
    dump_table::<Attachment>(&mut out, s, "attachments");
    dump_table::<Receipt>(&mut out, s, "receipts");
    dump_table::<Label>(&mut out, s, "labels");
    dump_table::<Notification>(&mut out, s, "notifications");
    dump_table::<Email>(&mut out, s, "email");
    dump_table::<Sms>(&mut out, s, "sms");
    dump_table::<Push>(&mut out, s, "push");
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
    dump_ends(&mut out, s, "inbox", w.inbox);
    dump_ends(&mut out, s, "labels", w.labels);
    dump_ends(&mut out, s, "pushes", w.pushes);
    dump_ends(&mut out, s, "attachments", w.attachments);
    dump_ends(&mut out, s, "receipt", w.receipt);
    dump_ends(&mut out, s, "cc", w.cc);
    dump_ends(&mut out, s, "replies", w.replies);
    for e in s.keys::<Email>() {
        for (u, cc) in s.targets_with(w.cc, e) {
            writeln!(out, "  cc payload {e:?} -> {u:?} = {cc:?}").unwrap();
        }
    }
    out
}

/// Runs `f` in a transaction that then fails, and asserts the store is exactly as before.
pub fn assert_undone(s: &mut Store, w: &W, f: impl FnOnce(&mut Store)) {
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
pub fn assert_refused<T: std::fmt::Debug, E>(
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
