//! A polymorphic association: a `Comment` whose target is a `Post` or a `Photo`, with
//! back-population on both (`Post.comments`, `Photo.comments`), delete rules, and no
//! dangling reference: the integrity a generic foreign key gives up.
//!
//! Run with `cargo run --example comments`.

use std::fmt;

use relgraph::{DeleteRule, Schema, Store};
use serde::{Deserialize, Serialize};

/// A blog post.
#[derive(Clone, Serialize, Deserialize)]
struct Post {
    title: String,
}

/// A photo.
#[derive(Clone, Serialize, Deserialize)]
struct Photo {
    caption: String,
}

/// A comment on a post or a photo.
#[derive(Clone, Serialize, Deserialize)]
struct Comment {
    text: String,
}

impl fmt::Debug for Comment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Comment(text='{}')", self.text)
    }
}

/// Runs the polymorphic association pattern and prints what it shows.
pub fn run() -> relgraph::Result<()> {
    println!("== polymorphic association: Comment.target is a Post or a Photo ==");
    let mut schema = Schema::new();
    let posts = schema.table::<Post>("posts");
    let photos = schema.table::<Photo>("photos");
    let comments = schema.table::<Comment>("comments");
    let target = schema.poly_parent(comments, "target");
    let on_posts = schema.relate(
        posts.many("comments").on_delete(DeleteRule::Cascade),
        target,
    );
    let on_photos = schema.relate(photos.many("comments"), target);
    let mut store = Store::new(schema);

    let post = store.insert(Post {
        title: "SQLAlchemy Guide".into(),
    });
    let photo = store.insert(Photo {
        caption: "Sunset".into(),
    });
    let c = |s: &mut Store, text: &str| s.insert(Comment { text: text.into() });
    let great = c(&mut store, "Great article");
    let nice = c(&mut store, "Nice colours");
    let wow = c(&mut store, "Wow");
    store.link(on_posts, post, great)?;
    store.link(on_photos, photo, nice)?;
    store.link(on_posts, post, wow)?;

    let on_post: Vec<&Comment> = store.children(on_posts, post).map(|k| &store[k]).collect();
    println!("the post's comments: {on_post:?}");
    println!(
        "target of 'Nice colours': {:?}",
        store.poly_parent(target, nice)
    );

    // a comment has one target: linking it to the photo moves it off the post
    store.link(on_photos, photo, wow)?;
    let on_photo: Vec<&Comment> = store
        .children(on_photos, photo)
        .map(|k| &store[k])
        .collect();
    println!(
        "after moving 'Wow' to the photo: post has {}, photo has {on_photo:?}",
        store.child_count(on_posts, post)
    );

    // deleting the photo nullifies its comments; deleting the post cascades to its own
    store.remove(photo)?;
    println!(
        "after deleting the photo: 'Wow' kept with target {:?}",
        store.poly_parent(target, wow)
    );
    store.remove(post)?;
    println!(
        "after deleting the post: 'Great article' alive: {}; {} comments left",
        store.contains(great),
        store.len::<Comment>()
    );
    store.check_integrity()?;
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
