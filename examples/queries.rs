//! Lookups by value and joins: secondary and unique indexes declared in the schema, then
//! composed with relations: users with a post titled X, the students of a course above a
//! grade in grade order, the email notifications of users whose name starts with "A",
//! the children of one kind, every pair of a relation, semi-joins by key sets, and an org
//! chart's leaves, lowest common ancestor, subtree sizes and managers by department.
//!
//! Run with `cargo run --example queries`.

use relgraph::{DeleteRule, Key, KeySet, Schema, Store};
use serde::{Deserialize, Serialize};

/// A user of the blog.
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    name: String,
    email: String,
    age: u32,
}

/// A post, written by one user.
#[derive(Clone, Serialize, Deserialize)]
pub struct Post {
    title: String,
}

/// A course students enroll in.
#[derive(Clone, Serialize, Deserialize)]
pub struct Course {
    name: String,
}

/// The payload of an enrollment.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Enrollment {
    grade: u32,
}

/// A notification sent to a user: every one is an email or an SMS.
#[derive(Clone, Serialize, Deserialize)]
pub struct Notification {
    text: String,
}

/// An email notification's own fields.
#[derive(Clone, Serialize, Deserialize)]
pub struct Email {
    address: String,
}

/// An SMS notification's own fields.
#[derive(Clone, Serialize, Deserialize)]
pub struct Sms {
    number: String,
}

/// An employee of the org chart.
#[derive(Clone, Serialize, Deserialize)]
pub struct Employee {
    name: String,
    department: String,
}

/// Builds the store and runs every query, printing one line each.
pub fn run() -> relgraph::Result<()> {
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let courses = schema.table::<Course>("courses");
    let notifications = schema.table::<Notification>("notifications");
    let email = schema.kind::<Notification, Email>(notifications, "email");
    let sms = schema.kind::<Notification, Sms>(notifications, "sms");
    let employees = schema.table::<Employee>("employees");
    let authorship = schema.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let enrolled =
        schema.relate_with::<_, _, Enrollment>(users.many("courses"), courses.many("students"));
    let inbox = schema.relate(users.many("notifications"), notifications.one("user"));
    let reports = schema.relate(
        employees.many("reports"),
        employees.one("manager").acyclic(),
    );
    // the indexes: declared once, kept exact by every change
    let by_name = schema.ordered_index(users, "users_by_name", |u: &User| u.name.clone());
    let by_email = schema.unique_index(users, "users_by_email", |u: &User| u.email.clone());
    let by_age = schema.ordered_index(users, "users_by_age", |u: &User| u.age);
    let by_title = schema.index(posts, "posts_by_title", |p: &Post| p.title.clone());
    // (course, grade): the students of one course, in grade order
    let by_course_grade =
        schema.ordered_payload_index(enrolled, "grades_by_course", |_, c, e| (c, e.grade));
    let by_department = schema.index(employees, "employees_by_department", |e: &Employee| {
        e.department.clone()
    });
    let mut store = Store::new(schema);

    let person = |name: &str, age| User {
        name: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        age,
    };
    let alice = store.insert(person("Alice", 34));
    let bob = store.insert(person("Bob", 28));
    let anna = store.insert(person("Anna", 41));
    let carol = store.insert(person("Carol", 25));
    for (who, title) in [
        (alice, "Hello"),
        (alice, "Indexes"),
        (bob, "Joins"),
        (carol, "Hello"),
    ] {
        store.insert_child(
            authorship,
            who,
            Post {
                title: title.into(),
            },
        )?;
    }

    // users with a post titled "Hello": an index lookup, then each post's author
    let hello = store.parents_of(authorship, store.lookup_all(by_title, "Hello"));
    let names: Vec<&str> = hello.iter().map(|&u| store[u].name.as_str()).collect();
    println!("users with a post titled 'Hello': {names:?}");

    // the article's filter_by(..).first(): by a unique index
    let found = store.find_by(by_email, "bob@example.com");
    println!(
        "find_by email bob@example.com: {}",
        store[found.unwrap()].name
    );

    // students of a course with a grade above 80, ordered by grade
    let db = store.insert(Course {
        name: "Databases".into(),
    });
    let py = store.insert(Course {
        name: "Python".into(),
    });
    for (who, course, grade) in [
        (alice, db, 91),
        (bob, db, 78),
        (anna, db, 85),
        (carol, db, 99),
        (alice, py, 88),
    ] {
        store.link_with(enrolled, who, course, Enrollment { grade })?;
    }
    let above: Vec<String> = store
        .range(by_course_grade, (db, 81)..=(db, u32::MAX))
        .map(|(&(_, g), (s, _))| format!("{} {g}", store[s].name))
        .collect();
    println!("Databases students above 80, by grade: {above:?}");

    // email notifications of users whose name starts with "A": an index prefix, then each
    // user's notifications of one kind, without a downcast per child
    for (who, text) in [(alice, "welcome"), (anna, "digest"), (bob, "reset")] {
        let n = store.insert_kind(
            email,
            Notification { text: text.into() },
            Email {
                address: store[who].email.clone(),
            },
        );
        store.link(inbox, who, email.upcast(n))?;
    }
    let s = store.insert_kind(
        sms,
        Notification {
            text: "code 1234".into(),
        },
        Sms {
            number: "555-0100".into(),
        },
    );
    store.link(inbox, alice, sms.upcast(s))?;
    let mut mails = Vec::new();
    for (_, u) in store.starts_with(by_name, "A") {
        for (k, e) in store.children_of_kind(inbox, u, email) {
            mails.push(format!("{} ({})", e.address, store[email.upcast(k)].text));
        }
    }
    println!("email notifications of users named A*: {mails:?}");
    println!(
        "Alice's notifications: {}, of which emails: {}",
        store.child_count(inbox, alice),
        store.children_of_kind(inbox, alice, email).count()
    );

    // every (author, post) pair of a relation
    let pairs: Vec<String> = store
        .link_pairs(authorship)
        .map(|(u, p)| format!("{}: {}", store[u].name, store[p].title))
        .collect();
    println!("(author, post) pairs: {}", pairs.len());

    // semi-join: the posts whose author is over 30, by a key set from an ordered range
    let over_30: KeySet<User> = store.range(by_age, 31..).map(|(_, u)| u).collect();
    let mut titles: Vec<&str> = store
        .link_pairs(authorship)
        .filter(|&(u, _)| over_30.contains(u))
        .map(|(_, p)| store[p].title.as_str())
        .collect();
    titles.sort();
    println!("posts of authors over 30: {titles:?}");

    // a unique index refuses a second user with the same email, naming both
    match store.try_insert(person("Alice", 50)) {
        Err(e) => println!("refused: {e}"),
        Ok(_) => println!("a duplicate email was accepted"),
    }

    // the org chart: leaves, lowest common ancestor, subtree sizes, managers by index
    let emp = |name: &str, dept: &str| Employee {
        name: name.into(),
        department: dept.into(),
    };
    let ceo = store.insert(emp("Grace", "board"));
    let sales = store.insert_child(reports, ceo, emp("Sam", "sales"))?;
    let eng = store.insert_child(reports, ceo, emp("Erin", "engineering"))?;
    let lead = store.insert_child(reports, sales, emp("Lee", "sales"))?;
    let rep1 = store.insert_child(reports, lead, emp("Ray", "sales"))?;
    let rep2 = store.insert_child(reports, lead, emp("Rita", "sales"))?;
    let dev = store.insert_child(reports, eng, emp("Dev", "engineering"))?;
    let name = |k: Key<Employee>| store[k].name.as_str();
    let leaves: Vec<&str> = store.leaves(reports, ceo).map(name).collect();
    println!("leaves under Grace: {leaves:?}");
    let lca = store.lowest_common_ancestor(reports, rep1, rep2).map(name);
    let lca2 = store.lowest_common_ancestor(reports, rep1, dev).map(name);
    println!("lowest common ancestor of Ray and Rita: {lca:?}; of Ray and Dev: {lca2:?}");
    println!(
        "subtree sizes: Grace {}, Sam {}, Erin {}",
        store.subtree_size(reports, ceo),
        store.subtree_size(reports, sales),
        store.subtree_size(reports, eng)
    );
    let dept = "sales".to_string();
    let above: Vec<&str> = store
        .ancestors_where(reports, rep1, by_department, &dept)
        .map(name)
        .collect();
    println!("sales managers above Ray: {above:?}");
    Ok(())
}

#[allow(dead_code)]
fn main() -> relgraph::Result<()> {
    run()
}
