//! SQLAlchemy's one-to-many relationship example, written with relgraph: `User.posts` <->
//! `Post.author`.
//!
//! Prints `[Post(title='SQLAlchemy Guide'), Post(title='Advanced ORM Techniques')]`, as the Python
//! does. Lines (non-blank, non-comment, imports and printing impls left out, rustfmt defaults; the
//! Python with its models and its query): Rust 25, Python 21, 1.19x.
//!
//! Run with `cargo run --example seed_one_to_many`.

use std::fmt;

use relgraph::{Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct User {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Post {
    title: String,
}

impl fmt::Debug for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Post(title='{}')", self.title)
    }
}

fn main() -> relgraph::Result<()> {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let authorship = schema.relate(users.many("posts"), posts.one("author"));
    let mut store = Store::new(schema);

    // create a user
    let user = store.insert(User {
        name: "Alice".into(),
    });
    // add posts for the user: each inserted and linked at once
    for t in ["SQLAlchemy Guide", "Advanced ORM Techniques"] {
        store.insert_child(authorship, user, Post { title: t.into() })?;
    }

    // fetch the user's posts
    let user = store.find::<User>(|u| u.name == "Alice").unwrap();
    let posts: Vec<&Post> = store.children(authorship, user).rows().collect();
    println!("{posts:?}");
    Ok(())
}
