//! # relgraph
//!
//! An embedded, in-memory object graph store: plain Rust structs in typed arenas, and
//! relations between them that keep both ends in step — what an ORM's relationship
//! patterns give a program, with no database.
//!
//! - one-to-many with back-population (`User.posts` <-> `Post.author`), one-to-one
//! - many-to-many with an optional payload per link (`Student.courses` <->
//!   `Course.students`, each enrollment with a grade)
//! - self-referential relations and hierarchies, with traversal and optional acyclicity
//! - delete rules per relation end: nullify, cascade, restrict, delete-orphan; a preview
//! - all-or-nothing transactions, also when user code panics inside a call; an integrity
//!   check of every invariant
//! - [`SharedStore`]: many readers and one writing transaction at a time across threads
//! - [snapshots](snapshot): an atomic save, a validated load, table versions and
//!   migrations; `relgraph inspect | verify | dot` on the command line
//!
//! ```
//! use relgraph::{DeleteRule, Schema, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct User { name: String }
//! #[derive(Serialize, Deserialize)]
//! struct Post { title: String }
//!
//! let mut schema = Schema::new();
//! let users = schema.table::<User>("users");
//! let posts = schema.table::<Post>("posts");
//! let authorship = schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
//! let mut store = Store::new(schema);
//!
//! let alice = store.insert(User { name: "Alice".into() });
//! let guide = store.insert(Post { title: "SQLAlchemy Guide".into() });
//! let orm = store.insert(Post { title: "Advanced ORM Techniques".into() });
//! store.link(authorship, alice, guide)?;
//! store.link(authorship, alice, orm)?; // both ends updated at once
//!
//! assert_eq!(store.parent(authorship, orm), Some(alice));
//! let titles: Vec<&str> =
//!     store.children(authorship, alice).map(|p| store[p].title.as_str()).collect();
//! assert_eq!(titles, ["SQLAlchemy Guide", "Advanced ORM Techniques"]);
//!
//! store.remove(alice)?; // cascades to both posts
//! assert_eq!(store.len::<Post>(), 0);
//! # Ok::<(), relgraph::Error>(())
//! ```
//!
//! See `docs/design.md` in the repository for the data model and its invariants.

mod arena;
mod checksum;
mod codec;
mod delete;
mod dot;
mod error;
mod grave;
mod hierarchy;
mod key;
mod path;
mod poly;
mod relation;
mod rows;
mod schema;
mod shape;
mod shared;
pub mod snapshot;
mod store;
mod umbrella;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use delete::{Blocker, DeletePreview, Unlinked};
pub use dot::DotLabels;
pub use error::{IntegrityError, KindError, LinkError, RemoveError, StaleKey};
pub use hierarchy::{Ancestors, Descendants};
pub use key::{AnyKey, Key, RawKey};
pub use schema::{
    DeleteRule, End, Entity, Kind, Linkable, ManyToMany, OneToMany, OneToOne, PolyParent, Relation,
    RelationKind, RelationName, Rules, Schema, Table,
};
pub use shared::SharedStore;
pub use store::{Children, Linked, Rows, Store, WithPayload};
pub use umbrella::{Error, Result};
