//! Changing the kind of a row of a polymorphic base (`Notification` with `Email`, `Sms`
//! and `Push` kinds, see `common::poly`): what it keeps and what it refuses, the exact
//! rollback of kind operations in a failing transaction, and random kind operations
//! checked against a model and the integrity check.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::poly::{
    any, assert_refused, assert_undone, dump, email, n, populated, push, sms, world, Attachment,
    Cc, Config, Device, Email, Notification, Push, Receipt, Sms, W,
};
use common::{check, Rng, User};
use relgraph::{
    DeleteRule, Error, Key, KindError, LinkError, RawKey, RemoveError, Rules, StaleKey, Store,
};

use DeleteRule::{Cascade, DeleteOrphan, Restrict};

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
    assert!(matches!(as_error, Error::Kind(inner) if inner == e));
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
