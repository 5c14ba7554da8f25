//! The everyday calls: rows through relations, insert-and-link in one step, replacing a
//! row without `Clone`, and panics that say how to fix the mistake.

use relgraph::{DeleteRule, Key, LinkError, ManyToMany, OneToMany, Rules, Schema, StaleKey, Store};
use serde::{Deserialize, Serialize};

mod common;
use common::panic_message;

/// Not `Clone`: `replace` must not need it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
}
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Post {
    title: String,
}
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Course {
    name: String,
}
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Grade(u32);
#[derive(Debug, Serialize, Deserialize)]
struct Unregistered;

struct World {
    s: Store,
    authorship: OneToMany<User, Post>,
    reports: OneToMany<User, User>,
    courses: ManyToMany<User, Course, Grade>,
}

fn world() -> World {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let courses = schema.table::<Course>("courses");
    World {
        authorship: schema.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade),
        reports: schema.one_to_many(
            users,
            "subordinates",
            users,
            "manager",
            Rules::new().acyclic(),
        ),
        courses: schema.many_to_many_with(users, "courses", courses, "students", Rules::new()),
        s: Store::new(schema),
    }
}

fn user(name: &str) -> User {
    User { name: name.into() }
}

fn post(title: &str) -> Post {
    Post {
        title: title.into(),
    }
}

#[test]
fn rows_come_through_every_relation_in_link_order() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let bob = w.s.insert_child(w.reports, alice, user("Bob")).unwrap();
    w.s.insert_child(w.authorship, alice, post("Guide"))
        .unwrap();
    w.s.insert_child(w.authorship, alice, post("ORM")).unwrap();
    let titles: Vec<&str> =
        w.s.children(w.authorship, alice)
            .rows()
            .map(|p| p.title.as_str())
            .collect();
    assert_eq!(titles, ["Guide", "ORM"]);
    assert_eq!(
        w.s.children(w.authorship, alice).rev().len(),
        2,
        "keys still iterate both ways"
    );
    assert_eq!(w.s.parent_row(w.reports, bob), Some(&user("Alice")));
    assert_eq!(w.s.parent_row(w.reports, alice), None);
    let db =
        w.s.insert_target_with(w.courses, bob, Course { name: "DB".into() }, Grade(90))
            .unwrap();
    let taken: Vec<(&Course, &Grade)> = w.s.targets_with(w.courses, bob).rows().collect();
    assert_eq!(taken, [(&Course { name: "DB".into() }, &Grade(90))]);
    let students: Vec<&User> = w.s.sources(w.courses, db).rows().collect();
    assert_eq!(students, [&user("Bob")]);
    let subordinates: Vec<&User> = w.s.targets(w.reports, alice).rows().collect();
    assert_eq!(subordinates, [&user("Bob")]);
}

#[test]
fn relation_iterators_print_their_keys() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let p =
        w.s.insert_child(w.authorship, alice, post("Guide"))
            .unwrap();
    let c =
        w.s.insert_target_with(w.courses, alice, Course { name: "DB".into() }, Grade(7))
            .unwrap();
    assert_eq!(
        format!("{:?}", w.s.children(w.authorship, alice)),
        format!("[{p:?}]")
    );
    assert_eq!(
        format!("{:?}", w.s.targets(w.courses, alice)),
        format!("[{c:?}]")
    );
    assert_eq!(
        format!("{:?}", w.s.targets_with(w.courses, alice)),
        format!("[({c:?}, Grade(7))]")
    );
}

#[test]
fn insert_child_with_a_stale_parent_inserts_nothing() {
    let mut w = world();
    let gone = w.s.insert(user("Gone"));
    w.s.remove(gone).unwrap();
    let err =
        w.s.insert_child(w.authorship, gone, post("Orphan"))
            .unwrap_err();
    assert!(matches!(err, LinkError::Stale(_)), "{err:?}");
    assert_eq!(w.s.len::<Post>(), 0);
    let err =
        w.s.insert_target_with(w.courses, gone, Course { name: "X".into() }, Grade(1))
            .unwrap_err();
    assert!(matches!(err, LinkError::Stale(_)), "{err:?}");
    assert_eq!(w.s.len::<Course>(), 0);
    w.s.check_integrity().unwrap();
}

#[test]
fn insert_child_inside_a_rolled_back_transaction_leaves_nothing() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let authorship = w.authorship;
    let r: Result<(), LinkError> = w.s.transaction(|s| {
        s.insert_child(authorship, alice, post("Draft"))?;
        Err(LinkError::Stale(StaleKey {
            key: s.preview_remove(alice).unwrap().removed[0],
        }))
    });
    assert!(r.is_err());
    assert_eq!(w.s.len::<Post>(), 0);
    assert_eq!(w.s.child_count(w.authorship, alice), 0);
}

#[test]
fn replace_changes_a_row_that_is_not_clone_and_keeps_its_links() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let p =
        w.s.insert_child(w.authorship, alice, post("Guide"))
            .unwrap();
    w.s.replace(alice, user("Alicia")).unwrap();
    assert_eq!(w.s[alice], user("Alicia"));
    assert_eq!(w.s.parent(w.authorship, p), Some(alice));
    // inside a transaction that fails, the old row comes back
    let r: Result<(), ()> = w.s.transaction(|s| {
        s.replace(alice, user("Al")).unwrap();
        Err(())
    });
    assert!(r.is_err());
    assert_eq!(w.s[alice], user("Alicia"));
    // a stale key changes nothing
    w.s.remove(alice).unwrap();
    let err = w.s.replace(alice, user("Ghost")).unwrap_err();
    assert!(err.to_string().contains("users"), "{err}");
    w.s.check_integrity().unwrap();
}

#[test]
fn using_a_type_that_is_not_a_table_says_how_to_register_it() {
    let w = world();
    let msg = panic_message(|| {
        let _ = w.s.len::<Unregistered>();
    });
    assert!(msg.contains("is not a table of this store"), "{msg}");
    assert!(
        msg.contains("schema.table::<Unregistered>(\"NAME\")"),
        "{msg}"
    );
}

#[test]
fn indexing_with_a_stale_key_says_what_to_use_instead() {
    let mut w = world();
    let gone: Key<User> = w.s.insert(user("Gone"));
    w.s.remove(gone).unwrap();
    let msg = panic_message(|| {
        let _ = &w.s[gone];
    });
    assert!(msg.contains("users"), "{msg}");
    assert!(msg.contains("Store::get"), "{msg}");
}

#[test]
fn a_relation_declared_by_named_ends_names_each_end_on_its_table() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let authorship = schema.relate(users.many("posts"), posts.one("author"));
    let mut s = Store::new(schema);
    let names: Vec<String> = s.schema().relations().map(|(_, n)| n.to_string()).collect();
    assert_eq!(names, ["users.posts <-> posts.author"]);
    // no rule given: deleting the parent leaves its children be
    let alice = s.insert(user("Alice"));
    let guide = s.insert_child(authorship, alice, post("Guide")).unwrap();
    s.remove(alice).unwrap();
    assert!(s.contains(guide));
    assert_eq!(s.parent(authorship, guide), None);
}

#[test]
fn a_one_to_many_declared_child_end_first_has_its_many_end_as_parent() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let authorship: OneToMany<User, Post> = schema.relate(posts.one("author"), users.many("posts"));
    let s = Store::new(schema);
    let names: Vec<String> = s.schema().relations().map(|(_, n)| n.to_string()).collect();
    assert_eq!(names, ["users.posts <-> posts.author"]);
    let _ = authorship;
}

#[test]
fn each_named_end_carries_its_own_delete_rule() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let courses = schema.table::<Course>("courses");
    let authorship = schema.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let enrolment = schema.relate_with(
        users.many("courses"),
        courses.many("students").on_delete(DeleteRule::Restrict),
    );
    let mut s = Store::new(schema);
    let alice = s.insert(user("Alice"));
    let guide = s.insert_child(authorship, alice, post("Guide")).unwrap();
    let sql = s.insert_target_with(enrolment, alice, Course { name: "SQL".into() }, Grade(2));
    let sql = sql.unwrap();
    assert!(
        s.remove(sql).is_err(),
        "a course with students is restricted"
    );
    s.remove(alice).unwrap();
    assert!(!s.contains(guide), "a user's posts go with the user");
    assert!(s.contains(sql));
}

#[test]
fn named_ends_and_positional_ends_declare_the_same_schema() {
    let mut named = Schema::new();
    let users = named.table::<User>("users");
    let courses = named.table::<Course>("courses");
    let reports = named.relate(users.many("subordinates"), users.one("manager").acyclic());
    let _ = named.relate(users.one("mentor"), users.one("mentee"));
    let _ = named.relate(users.many("courses"), courses.many("students"));
    let _: ManyToMany<User, Course, Grade> =
        named.relate_with(users.many("taught"), courses.many("teachers"));
    let mut positional = Schema::new();
    let users = positional.table::<User>("users");
    let courses = positional.table::<Course>("courses");
    let _ = positional.one_to_many(
        users,
        "subordinates",
        users,
        "manager",
        Rules::new().acyclic(),
    );
    let _ = positional.one_to_one(users, "mentor", users, "mentee", Rules::new());
    let _ = positional.many_to_many(users, "courses", courses, "students", Rules::new());
    let _ = positional.many_to_many_with::<_, _, Grade>(
        users,
        "taught",
        courses,
        "teachers",
        Rules::new(),
    );
    assert_eq!(named.fingerprint(), positional.fingerprint());
    // a handle of the one works on a store of the other
    let mut s = Store::new(positional);
    let alice = s.insert(user("Alice"));
    let bob = s.insert_child(reports, alice, user("Bob")).unwrap();
    assert_eq!(s.parent_row(reports, bob), Some(&user("Alice")));
}

#[test]
fn an_acyclic_relation_declared_by_named_ends_refuses_a_cycle() {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let reports = schema.relate(users.many("subordinates").acyclic(), users.one("manager"));
    let mut s = Store::new(schema);
    let alice = s.insert(user("Alice"));
    let bob = s.insert_child(reports, alice, user("Bob")).unwrap();
    assert!(matches!(
        s.link(reports, bob, alice),
        Err(LinkError::Cycle { .. })
    ));
    assert!(matches!(
        s.link(reports, bob, bob),
        Err(LinkError::SelfLink { .. })
    ));
}

#[test]
fn a_key_shown_through_its_store_names_its_table() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let guide =
        w.s.insert_child(w.authorship, alice, post("Guide"))
            .unwrap();
    assert_eq!(w.s.show(alice).to_string(), "users[0v1]");
    assert_eq!(format!("{:?}", w.s.show(guide)), "posts[0v1]");
    w.s.remove(guide).unwrap();
    let again = w.s.insert(post("Again"));
    assert_eq!(w.s.show(again).to_string(), "posts[0v2]");
}

#[test]
fn find_answers_the_first_match_in_slot_order() {
    let mut w = world();
    let alice = w.s.insert(user("Alice"));
    let bob = w.s.insert(user("Bob"));
    let ann = w.s.insert(user("Ann"));
    assert_eq!(w.s.find::<User>(|u| u.name.starts_with('A')), Some(alice));
    assert_eq!(w.s.find::<User>(|u| u.name == "Bob"), Some(bob));
    // a freed slot is reused: the newer row comes first
    w.s.remove(alice).unwrap();
    let amy = w.s.insert(user("Amy"));
    assert_eq!(w.s.find::<User>(|u| u.name.starts_with('A')), Some(amy));
    assert_eq!(w.s.find::<User>(|u| u.name == "Zed"), None);
    let _ = ann;
}

/// The file and line a panic of `f` reports.
fn panic_location(f: impl FnOnce()) -> String {
    use std::cell::RefCell;
    use std::sync::Once;
    thread_local!(static AT: RefCell<Option<String>> = const { RefCell::new(None) });
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            AT.with(|a| *a.borrow_mut() = at);
            previous(info);
        }));
    });
    let _ = panic_message(f);
    AT.with(|a| a.borrow_mut().take())
        .expect("the hook saw the panic")
}

#[test]
fn a_misuse_panics_at_the_callers_line() {
    let mut w = world();
    let gone = w.s.insert(user("Gone"));
    w.s.remove(gone).unwrap();
    let here = |line: u32| format!("tests/everyday_api.rs:{line}");
    let at = panic_location(|| {
        let _ = &w.s[gone];
    });
    assert_eq!(at, here(line!() - 2));
    let at = panic_location(|| {
        let _ = w.s.len::<Unregistered>();
    });
    assert_eq!(at, here(line!() - 2));
    let mut other = Schema::new();
    let users = other.table::<User>("users");
    let foreign = other.relate(users.many("friends"), users.one("friend_of"));
    let at = panic_location(|| {
        let _ = w.s.children(foreign, gone).count();
    });
    assert_eq!(at, here(line!() - 2));
    let at = panic_location(|| {
        w.s.insert(Unregistered);
    });
    assert_eq!(at, here(line!() - 2));
}
