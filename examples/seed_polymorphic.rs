//! SQLAlchemy's polymorphic relationship example, written with relgraph: a `Notification` base
//! whose own rows are of kind `notification`, and an `email` kind with its own field.
//!
//! The Python declares the models only; this program also stores a plain notification and an email
//! notification and reads each by its kind in one `match`, printing `notification` and `email to
//! alice@example.com`. Lines (non-blank, non-comment, imports and printing impls left out, rustfmt
//! defaults): the models and their schema, Rust 10 (the structs and the four schema lines), Python
//! 10 (its two classes), 1.00x; the whole program, Rust 22, Python 18 with the same query written
//! as
//!
//! ```text
//! session = SessionLocal()
//! session.add_all([Notification(), EmailNotification(email="alice@example.com")])
//! session.commit()
//! for n in session.query(Notification).all():
//!     if isinstance(n, EmailNotification):
//!         print("email to", n.email)
//!     else:
//!         print(n.type)
//! ```
//!
//! 1.22x.
//!
//! Run with `cargo run --example seed_polymorphic`.

use relgraph::{Schema, Store, Which};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Notification;

#[derive(Serialize, Deserialize)]
struct Email {
    email: String,
}

fn main() {
    let mut schema = Schema::new();
    let notifications = schema.table::<Notification>("notifications");
    schema.plain_kind(notifications, "notification"); // the base's polymorphic_identity
    let email = schema.kind::<Notification, Email>(notifications, "email");
    let mut store = Store::new(schema);

    store.insert(Notification); // a plain notification: no kind type of its own
    let address = "alice@example.com".to_string();
    store.insert_kind(email, Notification, Email { email: address });
    for n in store.keys::<Notification>() {
        match store.kind_of(n, email) {
            Which::First(e) => println!("email to {}", e.email),
            Which::Other => println!("{}", store.kind_name(n).unwrap()),
        }
    }
}
