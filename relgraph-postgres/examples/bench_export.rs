//! Timed runs (once each; the database's work dominates, so criterion's repetitions would
//! take an hour for no more information):
//!
//! 1. export of the W1 + W5 state (bench/: users, posts, students, courses, graded
//!    links) with [`Mapping::export`], rows per second, against a hand-written program
//!    that creates the same tables and `COPY`s the same rows from the typed data;
//! 2. sync of W4's moves: each move one batch, one transaction; batches and events per
//!    second.
//!
//! `RELGRAPH_SCALE` (default 1.0, the full size) scales the workloads;
//! `RELGRAPH_PG_URL` names a server (databases `rg_export`, `rg_baseline`, `rg_w4` are
//! created on it), else a temporary local server is started.
//!
//! Run with `cargo run --release -p relgraph-postgres --example bench_export`.

use std::io::Write;
use std::time::Instant;

use postgres::{Client, NoTls};
use relgraph_bench::{rg_w1, rg_w9_state, BlogData, Scale, SchoolData};
use relgraph_postgres::{Mapping, PgSync, TempServer};

fn escape(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

fn copy(tx: &mut postgres::Transaction<'_>, sql: &str, data: &[u8]) -> u64 {
    let mut w = tx.copy_in(sql).expect("copy");
    w.write_all(data).expect("write");
    w.finish().expect("finish")
}

/// The hand-written export: the same tables, rows, constraints and indexes.
fn baseline(client: &mut Client, blog: &BlogData, school: &SchoolData) -> u64 {
    let mut tx = client.transaction().expect("tx");
    tx.batch_execute(
        "CREATE TABLE users (id bigint PRIMARY KEY, version bigint NOT NULL, name text NOT NULL,
           score bigint NOT NULL CHECK (score BETWEEN 0 AND 4294967295));
         CREATE TABLE posts (id bigint PRIMARY KEY, version bigint NOT NULL, title text NOT NULL,
           score bigint NOT NULL CHECK (score BETWEEN 0 AND 4294967295),
           author_id bigint, author_pos bigint);
         CREATE TABLE students (id bigint PRIMARY KEY, version bigint NOT NULL, name text NOT NULL);
         CREATE TABLE courses (id bigint PRIMARY KEY, version bigint NOT NULL, name text NOT NULL);
         CREATE TABLE students_courses (students_id bigint NOT NULL, courses_pos bigint NOT NULL,
           courses_id bigint NOT NULL, students_pos bigint NOT NULL,
           grade smallint NOT NULL CHECK (grade BETWEEN 0 AND 255),
           PRIMARY KEY (students_id, courses_id));",
    )
    .expect("ddl");
    let mut rows = 0;
    let mut buf = Vec::with_capacity(64 << 20);
    for (i, u) in blog.users.iter().enumerate() {
        write!(buf, "{i}\t1\t").ok();
        escape(&mut buf, &u.name);
        writeln!(buf, "\t{}", u.score).ok();
    }
    rows += copy(&mut tx, "COPY users FROM STDIN", &buf);
    buf.clear();
    let mut pos = vec![0u32; blog.users.len()];
    for (i, (p, &a)) in blog.posts.iter().zip(&blog.author).enumerate() {
        write!(buf, "{i}\t1\t").ok();
        escape(&mut buf, &p.title);
        let k = &mut pos[a as usize];
        writeln!(buf, "\t{}\t{a}\t{k}", p.score).ok();
        *k += 1;
    }
    rows += copy(&mut tx, "COPY posts FROM STDIN", &buf);
    buf.clear();
    for (table, names) in [
        (
            "students",
            school
                .students
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
        ),
        (
            "courses",
            school.courses.iter().map(|c| c.name.as_str()).collect(),
        ),
    ] {
        for (i, n) in names.iter().enumerate() {
            write!(buf, "{i}\t1\t").ok();
            escape(&mut buf, n);
            buf.push(b'\n');
        }
        rows += copy(&mut tx, &format!("COPY {table} FROM STDIN"), &buf);
        buf.clear();
    }
    let gone: std::collections::HashSet<(u32, u32)> = school.unlinks.iter().copied().collect();
    let mut course_pos = vec![0u32; school.courses.len()];
    for (s, cs) in school.enrollments.iter().enumerate() {
        let mut spos = 0;
        for &(c, g) in cs {
            if gone.contains(&(s as u32, c)) {
                continue;
            }
            let cp = &mut course_pos[c as usize];
            writeln!(buf, "{s}\t{spos}\t{c}\t{cp}\t{g}").ok();
            spos += 1;
            *cp += 1;
        }
    }
    rows += copy(&mut tx, "COPY students_courses FROM STDIN", &buf);
    tx.batch_execute(
        "ALTER TABLE posts ADD FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE;
         CREATE INDEX posts_author_id_idx ON posts (author_id);
         ALTER TABLE students_courses ADD FOREIGN KEY (students_id) REFERENCES students (id)
           ON DELETE CASCADE;
         ALTER TABLE students_courses ADD FOREIGN KEY (courses_id) REFERENCES courses (id)
           ON DELETE CASCADE;
         CREATE INDEX students_courses_courses_id_idx ON students_courses (courses_id);",
    )
    .expect("constraints");
    tx.commit().expect("commit");
    rows
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scale = Scale::from_env(1.0);
    let server = match std::env::var("RELGRAPH_PG_URL") {
        Ok(_) => None,
        Err(_) => Some(TempServer::start()?),
    };
    let connect = |db: &str| -> Client {
        match (&server, std::env::var("RELGRAPH_PG_URL")) {
            (Some(s), _) => s.create_db(db).expect("create database"),
            (None, Ok(url)) => {
                Client::connect(&url, NoTls)
                    .expect("connect")
                    .batch_execute(&format!("CREATE DATABASE {db}"))
                    .expect("create database");
                Client::connect(&format!("{url} dbname={db}"), NoTls).expect("connect")
            }
            _ => unreachable!(),
        }
    };

    // 1. export of the W1 + W5 state
    let (blog, school) = (BlogData::new(&scale), SchoolData::new(&scale));
    let w9 = rg_w9_state(blog.clone(), school.clone());
    let mapping = Mapping::new(w9.store.schema())?;
    let mut db = connect("rg_export");
    let t = Instant::now();
    let report = mapping.export(&mut db, &w9.store)?;
    let ours = t.elapsed().as_secs_f64();
    let total = report.rows + report.links;
    drop(w9);
    let mut db = connect("rg_baseline");
    let t = Instant::now();
    let base_rows = baseline(&mut db, &blog, &school);
    let base = t.elapsed().as_secs_f64();
    assert_eq!(base_rows, total, "the baseline writes the same rows");
    println!(
        "export W1+W5: {} entity rows + {} links = {total} rows in {ours:.2} s: {:.0} rows/s",
        report.rows,
        report.links,
        total as f64 / ours
    );
    println!(
        "hand-written COPY of the same rows: {base:.2} s: {:.0} rows/s; export / baseline = {:.2}x",
        total as f64 / base,
        ours / base
    );

    // 2. sync of W4's moves
    let (mut b, _) = rg_w1(blog.clone());
    let mapping = Mapping::new(b.store.schema())?;
    let mut db = connect("rg_w4");
    mapping.export(&mut db, &b.store)?;
    b.store.enable_feed(blog.moves.len() + 1);
    let cursor = b.store.feed_cursor();
    for &(p, u) in &blog.moves {
        b.store
            .link(b.authorship, b.users[u as usize], b.posts[p as usize])
            .expect("live keys");
    }
    let mut counter = cursor.clone();
    let events: usize = b
        .store
        .read_feed(&mut counter)?
        .iter()
        .map(|v| v.batch().changes.len())
        .sum();
    let mut sync = PgSync::new(&mapping, db, cursor)?;
    sync.pull(&b.store)?;
    let batches = sync.pending();
    let t = Instant::now();
    let written = sync.push()?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "sync W4: {written} of {batches} batches ({events} events) in {secs:.2} s: {:.0} batches/s, \
         {:.0} events/s",
        written as f64 / secs,
        events as f64 / secs
    );
    let mut check = Client::connect(
        &match &server {
            Some(s) => s.url("rg_w4"),
            None => format!("{} dbname=rg_w4", std::env::var("RELGRAPH_PG_URL")?),
        },
        NoTls,
    )?;
    mapping.compare(&mut check, &b.store)?;
    println!("database in step after the moves: true");
    Ok(())
}
