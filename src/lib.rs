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
//! ## Start here
//!
//! The calls in the order a program meets them:
//!
//! 1. **Schema**: [`Schema::table`] registers a row type under a table name;
//!    [`Schema::relate`] declares a relation between two named ends, each saying how many
//!    partners it has ([`Table::many`], [`Table::one`]) and, with `on_delete`, its
//!    [`DeleteRule`].
//! 2. **Store**: [`Store::new`] builds an empty store of a schema.
//! 3. **Insert and get**: [`Store::insert`] returns a typed [`Key`]; [`Store::get`] and
//!    `store[key]` read a row, [`Store::update`] and [`Store::replace`] change it,
//!    [`Store::find`] finds one, [`Store::show`] prints a key with its table.
//! 4. **Link and read**: [`Store::link`] (both ends updated at once),
//!    [`Store::insert_child`] (insert and link in one step), [`Store::children`] and
//!    [`Store::parent`] for a one-to-many, [`Store::partner`] for a one-to-one,
//!    [`Store::targets`] and [`Store::sources`] for a many-to-many; `.rows()` on those
//!    and [`Store::parent_row`] read the rows instead of the keys. For hot loops,
//!    [`Store::rows`] and [`Store::parents`] are views that check the type or handle once.
//! 5. **Delete rules**: [`Store::remove`] applies each relation's [`DeleteRule`]
//!    (nullify, cascade, restrict, delete-orphan); [`Store::preview_remove`] says what a
//!    remove would do.
//! 6. **Transactions**: [`Store::transaction`] runs a closure all or nothing.
//! 7. **Then the rest**: payloads on many-to-many links ([`Schema::relate_with`],
//!    [`Store::link_with`]), polymorphism ([`Schema::kind`], [`Schema::plain_kind`],
//!    [`Store::insert_kind`], [`Store::kind_of`]), hierarchies ([`Store::ancestors`],
//!    [`Store::descendants`]), bulk calls ([`Store::insert_all`], [`Store::link_all`],
//!    [`Store::link_all_with`], [`Store::insert_kind_all`]), [`Store::children_of_kind`],
//!    [`Store::unlink_take`],
//!    [`SharedStore`] across threads, [snapshots](snapshot), [`Store::check_integrity`].
//!
//! Iterating a table ([`Store::iter`], [`Store::keys`], [`Store::find`]) follows slot
//! order, not insertion order: a slot freed by a remove is reused by a later insert.
//! Relation collections keep link order.
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
//! // a user has many posts, a post one author; deleting a user deletes its posts
//! let authorship =
//!     schema.relate(users.many("posts").on_delete(DeleteRule::Cascade), posts.one("author"));
//! let mut store = Store::new(schema);
//!
//! let alice = store.insert(User { name: "Alice".into() });
//! let guide = store.insert(Post { title: "SQLAlchemy Guide".into() });
//! store.link(authorship, alice, guide)?; // both ends updated at once
//! store.insert_child(authorship, alice, Post { title: "Advanced ORM Techniques".into() })?;
//!
//! assert_eq!(store.parent(authorship, guide), Some(alice));
//! let titles: Vec<&str> =
//!     store.children(authorship, alice).rows().map(|p| p.title.as_str()).collect();
//! assert_eq!(titles, ["SQLAlchemy Guide", "Advanced ORM Techniques"]);
//!
//! store.remove(alice)?; // cascades to both posts
//! assert_eq!(store.len::<Post>(), 0);
//! # Ok::<(), relgraph::Error>(())
//! ```
//!
//! See `docs/design.md` in the repository for the data model and its invariants.

// first: rustdoc lists `Store`'s methods in module order, and these are the everyday ones
mod store;

mod arena;
mod checksum;
mod codec;
mod delete;
mod describe;
mod dot;
mod error;
mod feed;
mod grave;
mod hierarchy;
mod history;
mod index;
mod join;
mod key;
mod path;
mod poly;
mod relation;
mod rows;
mod schema;
mod shape;
mod shared;
pub mod snapshot;
mod umbrella;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use delete::{Blocker, DeletePreview, Unlinked};
pub use describe::{PolyParentDescription, RelationDescription, TableDescription};
pub use dot::DotLabels;
pub use error::{IntegrityError, KindError, LinkError, RemoveError, StaleKey};
pub use feed::{
    BatchView, Change, ChangeBatch, Encoded, EntityRef, FeedCursor, FeedError, Origin, RelationRef,
    TableRef,
};
pub use hierarchy::{Ancestors, Descendants};
pub use history::{HistoryError, Step};
pub use index::{Hashed, Index, IndexEntity, IndexError, IndexValue, Ordered, Structure};
pub use join::{KeySet, LinkPairs};
pub use key::{AnyKey, Key, RawKey};
pub use poly::{KindSet, Plain, Which};
pub use schema::{
    DeleteRule, End, Ends, Entity, Kind, Linkable, ManyEnd, ManyToMany, OneEnd, OneToMany,
    OneToOne, PolyParent, Relation, RelationKind, RelationName, Rules, Schema, Table,
};
pub use shape::TypeShape;
pub use shared::SharedStore;
pub use store::{Children, Linked, Parents, Rows, Store, WithPayload};
pub use umbrella::{Error, Result};
