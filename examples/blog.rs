//! One-to-many with back-population, and one-to-one: `User.posts` <-> `Post.author`,
//! `User.profile` <-> `Profile.user`.
//!
//! Linking a post to a user updates both ends at once; moving a post to another author
//! removes it from the first author's collection; deleting a user cascades to its posts
//! (a preview shows what would go first); a user has at most one profile.
//!
//! Run with `cargo run --example blog`.

use std::fmt;

use relgraph::{DeleteRule, Key, OneToMany, OneToOne, Schema, Store};
use serde::{Deserialize, Serialize};

/// A user of the blog.
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    name: String,
}

/// A post, written by at most one user.
#[derive(Clone, Serialize, Deserialize)]
pub struct Post {
    title: String,
}

/// A user's profile: one per user.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    bio: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "User(name='{}')", self.name)
    }
}

impl fmt::Debug for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Post(title='{}')", self.title)
    }
}

/// The blog's relations, declared once.
pub struct Blog {
    store: Store,
    authorship: OneToMany<User, Post>,
    profile: OneToOne<User, Profile>,
}

/// Declares the schema: deleting a user deletes its posts and its profile.
pub fn blog() -> Blog {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let profiles = schema.table::<Profile>("profiles");
    let authorship = schema.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let profile = schema.relate(
        users.one("profile").on_delete(DeleteRule::Cascade),
        profiles.one("user"),
    );
    Blog {
        store: Store::new(schema),
        authorship,
        profile,
    }
}

fn titles(store: &Store, rel: OneToMany<User, Post>, user: Key<User>) -> Vec<&Post> {
    store.children(rel, user).rows().collect()
}

/// Runs the blog pattern and prints what it shows.
pub fn run() -> relgraph::Result<()> {
    println!("== one-to-many: User.posts <-> Post.author ==");
    let Blog {
        mut store,
        authorship,
        profile,
    } = blog();

    let alice = store.insert(User {
        name: "Alice".into(),
    });
    let bob = store.insert(User { name: "Bob".into() });
    let guide = store.insert(Post {
        title: "SQLAlchemy Guide".into(),
    });
    let orm = store.insert(Post {
        title: "Advanced ORM Techniques".into(),
    });
    store.link(authorship, alice, guide)?;
    store.link(authorship, alice, orm)?;

    println!("Alice's posts: {:?}", titles(&store, authorship, alice));
    let author = store.parent_row(authorship, guide);
    println!("author of 'SQLAlchemy Guide': {author:?}");

    // moving a post: one call, both ends updated
    store.link(authorship, bob, orm)?;
    println!("after moving 'Advanced ORM Techniques' to Bob:");
    println!("  Alice's posts: {:?}", titles(&store, authorship, alice));
    println!("  Bob's posts:   {:?}", titles(&store, authorship, bob));

    println!("== one-to-one: User.profile <-> Profile.user ==");
    let p1 = store.insert(Profile {
        bio: "writes about ORMs".into(),
    });
    let p2 = store.insert(Profile {
        bio: "writes about databases".into(),
    });
    store.link(profile, alice, p1)?;
    store.link(profile, alice, p2)?; // evicts p1
    let bio = store.partner(profile, alice).map(|p| store[p].bio.as_str());
    println!("Alice's profile: {bio:?}");
    println!(
        "the first profile's user after eviction: {:?}",
        store.partner_of(profile, p1).map(|u| &store[u])
    );

    println!("== cascade delete ==");
    let preview = store.preview_remove(alice)?;
    println!(
        "deleting Alice would remove {} entities: {:?}",
        preview.removed.len(),
        preview.removed
    );
    store.remove(alice)?;
    println!(
        "after deleting Alice: {} user(s), {} post(s), {} profile(s); guide alive: {}",
        store.len::<User>(),
        store.len::<Post>(),
        store.len::<Profile>(),
        store.contains(guide)
    );

    println!("== in bulk: insert_all, link_all ==");
    // one table lookup for all the rows; each author's collection grows once; all or
    // nothing (a stale key anywhere links none of them)
    let drafts = store.insert_all(["Draft 1", "Draft 2"].map(|t| Post { title: t.into() }));
    store.link_all(authorship, drafts.iter().map(|&d| (bob, d)))?;
    println!("Bob's posts: {:?}", titles(&store, authorship, bob));
    // one child at a time: insert_child makes the row and its link in one step
    let tip = store.insert_child(
        authorship,
        bob,
        Post {
            title: "Tip".into(),
        },
    )?;
    // in a hot loop, the relation's back references taken once: no handle check a lookup
    // (the guide went with Alice: a removed post has no author)
    let authors = store.parents(authorship);
    let by: Vec<&str> = [orm, guide, tip]
        .iter()
        .filter_map(|&p| authors.row(p))
        .map(|u| u.name.as_str())
        .collect();
    println!("authors by the parents view: {by:?}");
    store.check_integrity()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
