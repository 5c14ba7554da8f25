//! Polymorphism: a `Notification` base with `Email`, `Sms` and `Push` kinds, stored as
//! type-tagged rows that share the base's key space.
//!
//! Queried by base (every row, with its tag and base fields) and by kind (only that
//! kind's rows); a checked downcast from a base key to a kind key and a free upcast back;
//! a relation on the base (`User.notifications`) and one on a single kind
//! (`Push.device`); changing a row's kind.
//!
//! Run with `cargo run --example notifications`.

use relgraph::{DeleteRule, Key, Schema, Store, Which};
use serde::{Deserialize, Serialize};

/// A user who receives notifications.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    name: String,
}

/// The base: what every notification has.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Notification {
    created_at: u64,
}

/// The email kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Email {
    address: String,
}

/// The SMS kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Sms {
    phone: String,
}

/// The push kind; each push notification goes to a device.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Push {
    title: String,
}

/// A device that receives push notifications.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Device {
    model: String,
}

/// Runs the notification pattern and prints what it shows.
pub fn run() -> relgraph::Result<()> {
    println!("== polymorphism: Notification with Email, Sms and Push kinds ==");
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let devices = schema.table::<Device>("devices");
    let notifications = schema.table::<Notification>("notifications");
    let email = schema.kind::<Notification, Email>(notifications, "email");
    let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    let push = schema.kind::<Notification, Push>(notifications, "push");
    // a relation on the base: a user's notifications of every kind
    let inbox = schema.relate(
        users.many("notifications").on_delete(DeleteRule::Cascade),
        notifications.one("user"),
    );
    // a relation on one kind: only push notifications have a device
    let delivery = schema.relate(
        devices.many("pushes").on_delete(DeleteRule::Cascade),
        push.one("device"),
    );
    let mut store = Store::new(schema);

    let alice = store.insert(User {
        name: "Alice".into(),
    });
    let phone = store.insert(Device {
        model: "Pixel".into(),
    });
    let at = |t| Notification { created_at: t };
    let e1 = store.insert_kind(
        email,
        at(100),
        Email {
            address: "alice@example.com".into(),
        },
    );
    let s1 = store.insert_kind(
        sms,
        at(101),
        Sms {
            phone: "+1-555-0100".into(),
        },
    );
    let p1 = store.insert_kind(
        push,
        at(102),
        Push {
            title: "New follower".into(),
        },
    );
    let e2 = store.insert_kind(
        email,
        at(103),
        Email {
            address: "alice@work.example".into(),
        },
    );
    for n in [
        email.upcast(e1),
        sms.upcast(s1),
        push.upcast(p1),
        email.upcast(e2),
    ] {
        store.link(inbox, alice, n)?;
    }
    store.link(delivery, phone, p1)?;

    // by base: every row, with its tag and base fields
    let all: Vec<(&str, u64)> = store
        .children(inbox, alice)
        .map(|n| (store.kind_name(n).unwrap_or("?"), store[n].created_at))
        .collect();
    println!("Alice's notifications (by base): {all:?}");

    // by kind: only that kind's rows, without touching the others
    let addresses: Vec<&str> = store
        .iter::<Email>()
        .map(|(_, e)| e.address.as_str())
        .collect();
    println!("email rows (by kind): {addresses:?}");
    println!(
        "counts by kind: email {}, sms {}, push {}; all {}",
        store.len::<Email>(),
        store.len::<Sms>(),
        store.len::<Push>(),
        store.len::<Notification>()
    );

    // one match by kind
    for n in store.children(inbox, alice) {
        let line = match store.kind_of(n, (email, sms, push)) {
            Which::First(e) => format!("email to {}", e.address),
            Which::Second(s) => format!("sms to {}", s.phone),
            Which::Third(p) => format!("push '{}'", p.title),
            Which::Other => format!("{} (no kind)", store.show(n)),
        };
        println!("  {line}");
    }

    // checked downcast and free upcast
    let first: Key<Notification> = store.children(inbox, alice).next().expect("a notification");
    println!(
        "first notification as email: {:?}; as sms: {:?}",
        store.get_kind(email, first).map(|e| e.address.as_str()),
        store.downcast(sms, first)
    );
    let device = store.parent(delivery, p1).map(|d| store[d].model.as_str());
    println!("the push notification goes to: {device:?}");

    // a row changes kind: key, base fields and base-level links are kept
    let s1_base = sms.upcast(s1);
    let changed = store.change_kind(
        s1_base,
        email,
        Email {
            address: "alice@sms-gateway.example".into(),
        },
    )?;
    println!(
        "after changing the SMS to an email: kind {:?}, still Alice's: {}, sms rows {}",
        store.kind_name(s1_base),
        store.parent(inbox, s1_base) == Some(alice),
        store.len::<Sms>()
    );
    assert_eq!(email.upcast(changed), s1_base);
    // a push notification with a device can't change kind while the device link exists
    if let Err(e) = store.change_kind(push.upcast(p1), sms, Sms { phone: "-".into() }) {
        println!("changing the push notification: refused: {e}");
    }

    store.remove(alice)?;
    println!(
        "after deleting Alice (cascade): {} notifications, {} email rows, device keeps {} push(es)",
        store.len::<Notification>(),
        store.len::<Email>(),
        store.child_count(delivery, phone)
    );
    store.check_integrity()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
