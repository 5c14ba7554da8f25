//! An editor's undo/redo and change feed: deleting a user cascades to its posts and their
//! comments; undo brings every one of them back under its old key, in its old place;
//! redo deletes them again. A UI reads what changed from the feed through its own cursor,
//! and a replica (another store, as a network peer would hold) stays equal to the store by
//! applying the same batches.
//!
//! Run with `cargo run --example editor`.

use std::fmt;

use relgraph::{DeleteRule, Origin, Schema, Store};
use serde::{Deserialize, Serialize};

/// A user of the blog.
#[derive(Serialize, Deserialize)]
pub struct User {
    name: String,
}

/// A post, written by one user.
#[derive(Serialize, Deserialize)]
pub struct Post {
    title: String,
}

/// A comment on a post.
#[derive(Serialize, Deserialize)]
pub struct Comment {
    text: String,
}

impl fmt::Debug for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Post(title='{}')", self.title)
    }
}

/// Runs the editor session and prints what each step shows.
pub fn run() -> relgraph::Result<()> {
    println!("== an editor: undo, redo, the change feed ==");
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let comments = schema.table::<Comment>("comments");
    let authorship = schema.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let thread = schema.relate(
        posts.many("comments").on_delete(DeleteRule::Cascade),
        comments.one("post"),
    );
    let mut store = Store::new(schema);
    let alice = store.insert(User {
        name: "Alice".into(),
    });
    let bob = store.insert(User { name: "Bob".into() });
    for (author, title) in [(alice, "Hello"), (bob, "Hi"), (alice, "Second")] {
        let post = store.insert_child(
            authorship,
            author,
            Post {
                title: title.into(),
            },
        )?;
        store.insert_child(
            thread,
            post,
            Comment {
                text: format!("re: {title}"),
            },
        )?;
    }
    // a peer's replica starts as a copy, from a snapshot
    let mut replica = Store::from_snapshot(store.schema().clone(), &store.to_snapshot()?)?;

    store.enable_history(100);
    store.enable_feed(1000);
    let mut ui = store.feed_cursor();
    let mut peer = store.feed_cursor();
    let before: Vec<_> = store.children(authorship, alice).collect();

    store.step("Delete user Alice", |s| s.remove(alice))?;
    println!(
        "deleted Alice: {} users, {} posts, {} comments left",
        store.len::<User>(),
        store.len::<Post>(),
        store.len::<Comment>()
    );

    if let Some(label) = store.undo_label() {
        println!("Undo: {}", label.unwrap_or("(unnamed)"));
    }
    store.undo()?;
    let after: Vec<_> = store.children(authorship, alice).collect();
    println!(
        "after undo: Alice's posts {:?} under the same keys: {}",
        store
            .children(authorship, alice)
            .rows()
            .collect::<Vec<&Post>>(),
        before == after
    );
    if let Some(label) = store.redo_label() {
        println!("Redo: {}", label.unwrap_or("(unnamed)"));
    }
    store.redo()?;
    println!(
        "after redo: Alice gone: {}, posts left: {}",
        !store.contains(alice),
        store.len::<Post>()
    );

    // what a UI consumes: one batch per step, undo and redo marked
    for view in store.read_feed(&mut ui)? {
        let origin = match view.origin() {
            Origin::Commit => "commit",
            Origin::Undo => "undo",
            Origin::Redo => "redo",
        };
        println!(
            "batch {} ({origin}, {:?}): {} changes",
            view.seq(),
            view.label().unwrap_or(""),
            view.changes().count()
        );
        for change in view.changes() {
            println!("  {change}");
        }
    }
    // the peer applies the same batches to its replica
    for view in store.read_feed(&mut peer)? {
        replica.apply_changes(view.batch())?;
    }
    replica.check_integrity()?;
    let same = store.to_snapshot()? == replica.to_snapshot()?;
    println!("replica in step: {same}");
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
