//! Relation, table and kind handles: identity by declaration. Two schemas declared the same
//! way accept each other's handles (a program may build its schema in a `fn schema()` and
//! call it twice); a handle of a schema declared differently, including a clone changed
//! after cloning, panics with a message that names what this store has instead.

use relgraph::{DeleteRule, ManyToMany, OneToMany, Schema, Store};
use serde::{Deserialize, Serialize};

mod common;
use common::panic_message;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User(String);
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Post(String);
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Tag(String);

fn schema() -> (Schema, OneToMany<User, Post>, ManyToMany<Post, Tag>) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let tags = s.table::<Tag>("tags");
    let authorship = s.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    let tagging = s.many_to_many(posts, "tags", tags, "posts", DeleteRule::Nullify);
    (s, authorship, tagging)
}

#[test]
fn two_schemas_declared_the_same_way_accept_each_others_handles() {
    let (first, authorship, tagging) = schema();
    let (second, _, _) = schema();
    drop(first);
    let mut store = Store::new(second);
    let u = store.insert(User("Ann".into()));
    let p = store.insert(Post("Hello".into()));
    let t = store.insert(Tag("news".into()));
    store.link(authorship, u, p).unwrap();
    store.link(tagging, p, t).unwrap();
    assert_eq!(store.parent(authorship, p), Some(u));
    assert_eq!(store.targets(tagging, p).collect::<Vec<_>>(), [t]);
}

#[test]
fn a_handle_of_a_clone_changed_after_cloning_panics_naming_the_relation_here() {
    let (original, authorship, _) = schema();
    // a clone whose relation #0 is declared differently: users.posts joins other tables
    let mut changed = Schema::new();
    let users = changed.table::<User>("users");
    let posts = changed.table::<Post>("posts");
    changed.one_to_many(users, "drafts", posts, "writer", DeleteRule::Nullify);
    let mut same = original.clone();
    same.table::<Tag>("tags"); // registering an existing table again changes nothing
    let mut store = Store::new(changed);
    let u = store.insert(User("Ann".into()));
    let p = store.insert(Post("Hello".into()));
    let msg = panic_message(|| {
        let _ = store.link(authorship, u, p);
    });
    assert!(msg.contains("another schema"), "{msg}");
    assert!(msg.contains("users.drafts <-> posts.writer"), "{msg}");

    // a clone that gained a relation keeps the handles of the original valid
    let (base, authorship, _) = schema();
    let mut grown = base.clone();
    let users = grown.table::<User>("users");
    grown.many_to_many(users, "friends", users, "friend_of", DeleteRule::Nullify);
    let mut store = Store::new(grown);
    let u = store.insert(User("Ann".into()));
    let p = store.insert(Post("Hello".into()));
    store.link(authorship, u, p).unwrap();
    assert_eq!(store.child_count(authorship, u), 1);
}

#[test]
fn a_clone_changed_at_the_same_index_rejects_the_originals_handle() {
    let mut base = Schema::new();
    let users = base.table::<User>("users");
    let posts = base.table::<Post>("posts");
    let mut clone = base.clone();
    let authorship = base.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    // the clone declares another relation at the same index
    let drafts = clone.one_to_many(users, "drafts", posts, "writer", DeleteRule::Cascade);
    let mut store = Store::new(clone);
    let u = store.insert(User("Ann".into()));
    let p = store.insert(Post("Hello".into()));
    let msg = panic_message(|| {
        let _ = store.link(authorship, u, p);
    });
    assert!(msg.contains("users.drafts <-> posts.writer"), "{msg}");
    assert_eq!(
        store.link_count(drafts),
        0,
        "nothing was linked in the other relation"
    );
}

#[test]
fn a_handle_of_a_schema_with_another_payload_type_panics() {
    let (_, _, tagging) = schema();
    let mut other = Schema::new();
    other.table::<User>("users");
    let posts = other.table::<Post>("posts");
    let tags = other.table::<Tag>("tags");
    let users = other.table::<User>("users");
    other.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    other.many_to_many_with::<Post, Tag, u32>(posts, "tags", tags, "posts", DeleteRule::Nullify);
    let mut store = Store::new(other);
    let p = store.insert(Post("Hello".into()));
    let t = store.insert(Tag("news".into()));
    let msg = panic_message(|| {
        let _ = store.link(tagging, p, t);
    });
    assert!(msg.contains("posts.tags <-> tags.posts"), "{msg}");
}

#[test]
fn a_handle_past_the_schemas_relations_panics_saying_so() {
    let (_, _, tagging) = schema();
    let mut small = Schema::new();
    small.table::<Post>("posts");
    small.table::<Tag>("tags");
    let store = Store::new(small);
    let msg = panic_message(|| {
        let _ = store.link_count(tagging);
    });
    assert!(msg.contains("no relation #1"), "{msg}");
}
