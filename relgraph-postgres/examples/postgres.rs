//! The tour's blog, enrollment and org chart in PostgreSQL: exported, queried with SQL,
//! then kept in step with a few changes through the change feed.
//!
//! Run against an empty database with
//! `RELGRAPH_PG_URL="host=/var/run/postgresql dbname=relgraph_demo" cargo run -p relgraph-postgres --example postgres`
//! (any libpq-style connection string); without `RELGRAPH_PG_URL` it starts a
//! throwaway local server (PostgreSQL's binaries must be installed) and stops it at the
//! end.

use relgraph::{DeleteRule, Schema, Store};
use relgraph_postgres::{Mapping, PgSync, TempServer};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct User {
    name: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Post {
    title: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Profile {
    bio: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Student {
    name: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct Course {
    name: String,
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct Enrollment {
    grade: f64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Employee {
    name: String,
}

fn print_rows(
    client: &mut postgres::Client,
    title: &str,
    sql: &str,
) -> Result<(), relgraph_postgres::Error> {
    println!("{title}");
    println!("  {sql}");
    for row in client.query(sql, &[])? {
        let cells: Vec<String> = (0..row.len())
            .map(|i| {
                row.try_get::<_, String>(i)
                    .or_else(|_| row.try_get::<_, i64>(i).map(|v| v.to_string()))
                    .or_else(|_| row.try_get::<_, f64>(i).map(|v| format!("{v:.2}")))
                    .unwrap_or_else(|_| "?".into())
            })
            .collect();
        println!("  -> {}", cells.join(" | "));
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // the database: the given one, or a throwaway local server
    let (_server, url) = match std::env::var("RELGRAPH_PG_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = TempServer::start()?;
            server.create_db("relgraph_demo")?;
            let url = server.url("relgraph_demo");
            println!(
                "started a temporary PostgreSQL server in {}",
                server.dir().display()
            );
            (Some(server), url)
        }
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls)?;

    // the tour's three models in one schema
    let mut schema = Schema::new();
    let users = schema.table::<User>("users");
    let posts = schema.table::<Post>("posts");
    let profiles = schema.table::<Profile>("profiles");
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let employees = schema.table::<Employee>("employees");
    let authorship = schema.relate(
        users.many("posts").on_delete(DeleteRule::Cascade),
        posts.one("author"),
    );
    let profile = schema.relate(
        users.one("profile").on_delete(DeleteRule::Cascade),
        profiles.one("user"),
    );
    let enrollments = schema.relate_with::<Student, Course, Enrollment>(
        students.many("courses"),
        courses.many("students"),
    );
    let reports = schema.relate(
        employees.many("subordinates").acyclic(),
        employees.one("manager"),
    );
    let mut store = Store::new(schema);
    store.enable_feed(1024);

    let alice = store.insert(User {
        name: "Alice".into(),
    });
    let bob = store.insert(User { name: "Bob".into() });
    for t in [
        "SQLAlchemy Guide",
        "Advanced ORM Techniques",
        "Relationship Patterns",
        "Cascades",
    ] {
        store.insert_child(authorship, alice, Post { title: t.into() })?;
    }
    for t in ["Draft 1", "Draft 2"] {
        store.insert_child(authorship, bob, Post { title: t.into() })?;
    }
    let p = store.insert(Profile {
        bio: "writes about ORMs".into(),
    });
    store.link(profile, alice, p)?;

    let john = store.insert(Student {
        name: "John".into(),
    });
    let mary = store.insert(Student {
        name: "Mary".into(),
    });
    let python = store.insert(Course {
        name: "Python Programming".into(),
    });
    let databases = store.insert(Course {
        name: "Database Systems".into(),
    });
    store.link_with(enrollments, john, python, Enrollment { grade: 3.7 })?;
    store.link_with(enrollments, john, databases, Enrollment { grade: 3.9 })?;
    store.link_with(enrollments, mary, python, Enrollment { grade: 3.1 })?;

    let boss = store.insert(Employee {
        name: "Alice".into(),
    });
    let b = store.insert_child(reports, boss, Employee { name: "Bob".into() })?;
    store.insert_child(
        reports,
        boss,
        Employee {
            name: "Charlie".into(),
        },
    )?;
    store.insert_child(
        reports,
        b,
        Employee {
            name: "Dave".into(),
        },
    )?;

    // export: DDL, COPY, constraints, in one transaction
    let mapping = Mapping::new(store.schema())?;
    println!("== schema ==\n{}", mapping.postgres_ddl());
    let report = mapping.export(&mut client, &store)?;
    println!(
        "== exported: {} rows, {} association rows, at batch {} ==\n",
        report.rows, report.links, report.applied_seq
    );

    let more_than_3 = "SELECT u.name FROM users u JOIN posts p ON p.author_id = u.id \
                       GROUP BY u.id, u.name HAVING count(*) > 3 ORDER BY u.name";
    let avg_grade = "SELECT c.name, avg(e.grade) FROM courses c \
                     JOIN students_courses e ON e.courses_id = c.id \
                     GROUP BY c.id, c.name ORDER BY c.name";
    let under_alice = "WITH RECURSIVE t(id, name) AS (SELECT id, name FROM employees \
                       WHERE manager_id = (SELECT id FROM employees WHERE name = 'Alice') \
                       UNION ALL SELECT e.id, e.name FROM employees e JOIN t ON e.manager_id = t.id) \
                       SELECT name FROM t ORDER BY name";
    print_rows(&mut client, "users with more than 3 posts:", more_than_3)?;
    let store_answer: Vec<&str> = store
        .iter::<User>()
        .filter(|(u, _)| store.child_count(authorship, *u) > 3)
        .map(|(_, u)| u.name.as_str())
        .collect();
    println!("  the store says: {store_answer:?}");
    print_rows(&mut client, "average grade per course:", avg_grade)?;
    for (c, course) in store.iter::<Course>() {
        let g: Vec<f64> = store
            .sources_with(enrollments, c)
            .map(|(_, e)| e.grade)
            .collect();
        println!(
            "  the store says: {} {:.2}",
            course.name,
            g.iter().sum::<f64>() / g.len().max(1) as f64
        );
    }
    print_rows(&mut client, "everyone under Alice:", under_alice)?;

    // kept in step: each committed change is one SQL transaction
    println!("\n== a few changes, synced ==");
    let mut sync = PgSync::new(
        &mapping,
        postgres::Client::connect(&url, postgres::NoTls)?,
        store.feed_cursor(),
    )?;
    for t in ["Draft 3", "Draft 4"] {
        store.insert_child(authorship, bob, Post { title: t.into() })?;
    }
    store.update_payload(enrollments, mary, python, |e| e.grade = 3.5)?;
    store.transaction(|s| -> relgraph::Result<()> {
        s.link_with(enrollments, mary, databases, Enrollment { grade: 4.0 })?;
        s.remove(alice)?;
        Ok(())
    })?;
    let written = sync.sync(&store)?;
    println!(
        "{written} batches written; the database is at batch {}",
        mapping.applied_seq(&mut client)?
    );
    print_rows(&mut client, "users with more than 3 posts:", more_than_3)?;
    print_rows(&mut client, "average grade per course:", avg_grade)?;
    println!(
        "database in step: {}",
        mapping.compare(&mut client, &store).is_ok()
    );
    let back = mapping.import(&mut client)?;
    let titles: Vec<&str> = back
        .children(authorship, bob)
        .rows()
        .map(|p| p.title.as_str())
        .collect();
    println!("imported back: Bob's posts {titles:?} under the same keys");
    Ok(())
}
