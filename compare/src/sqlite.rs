//! The workloads W1-W8 on SQLite in memory, written as a competent SQLite user would: a
//! schema with the foreign keys and indexes the queries need, statements prepared once
//! per phase, one transaction per bulk phase, `PRAGMA foreign_keys = ON` for the cascade.
//!
//! Row ids are the generator's indices plus one, so "weighted by user index" is
//! "weighted by user id". Each function computes its checksum exactly as the baseline's
//! `base_w*` function of relgraph-bench (`bench/src/lib.rs`) does.

use rusqlite::{Connection, OptionalExtension, Result, Row};

use relgraph_bench::{BlogData, NotifData, NotifKind, OrgData, SchoolData};

/// A new in-memory database with foreign keys enforced (off by default in SQLite).
fn open(schema: &str) -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// A non-negative INTEGER column (a score, a count, an id) as a `u64`.
fn uint(row: &Row<'_>, column: usize) -> Result<u64> {
    let v: i64 = row.get(column)?;
    Ok(u64::try_from(v).expect("non-negative"))
}

/// 1-based row id of a generator index.
fn id(index: u32) -> i64 {
    i64::from(index) + 1
}

const BLOG: &str = "
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        score INTEGER NOT NULL
    );
    CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        score INTEGER NOT NULL,
        author INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE
    );
    CREATE INDEX posts_author ON posts (author);
";

/// W1: insert the users and the posts (each with its author) in one transaction; the
/// checksum is the baseline's: post counts weighted by user index.
pub fn w1(d: &BlogData) -> Result<(Connection, u64)> {
    let mut conn = open(BLOG)?;
    let tx = conn.transaction()?;
    {
        let mut user =
            tx.prepare_cached("INSERT INTO users (id, name, score) VALUES (?1, ?2, ?3)")?;
        for (i, u) in (0u32..).zip(&d.users) {
            user.execute((id(i), &u.name, u.score))?;
        }
        let mut post = tx.prepare_cached(
            "INSERT INTO posts (id, title, score, author) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for ((i, p), &a) in (0u32..).zip(&d.posts).zip(&d.author) {
            post.execute((id(i), &p.title, p.score, id(a)))?;
        }
    }
    tx.commit()?;
    let (sum, _) = counts_checksum(&conn)?;
    Ok((conn, sum))
}

/// Post counts weighted by user id (users without posts weigh 0), and the total count.
fn counts_checksum(conn: &Connection) -> Result<(u64, u64)> {
    let mut stmt = conn.prepare_cached("SELECT author, COUNT(*) FROM posts GROUP BY author")?;
    let mut rows = stmt.query([])?;
    let (mut sum, mut total) = (0u64, 0u64);
    while let Some(row) = rows.next()? {
        let (author, count) = (uint(row, 0)?, uint(row, 1)?);
        sum += author * count;
        total += count;
    }
    Ok((sum, total))
}

/// W2: for every user, one query for its posts' scores (the access pattern of an ORM
/// walking `user.posts`), summed.
pub fn w2(conn: &Connection, users: usize) -> Result<u64> {
    let mut stmt = conn.prepare_cached("SELECT score FROM posts WHERE author = ?1")?;
    let mut sum = 0u64;
    for u in (0u32..).take(users) {
        let mut rows = stmt.query([id(u)])?;
        while let Some(row) = rows.next()? {
            sum += uint(row, 0)?;
        }
    }
    Ok(sum)
}

/// W3: for every post in the shuffled order, one query for its author's score.
pub fn w3(conn: &Connection, shuffled: &[u32]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.score FROM posts p JOIN users u ON u.id = p.author WHERE p.id = ?1",
    )?;
    let mut sum = 0u64;
    for &p in shuffled {
        if let Some(score) = stmt.query_row([id(p)], |r| uint(r, 0)).optional()? {
            sum += score;
        }
    }
    Ok(sum)
}

/// W4: move posts to other users in one transaction, then check that the post counts add
/// up to `posts`; the checksum is W1's.
pub fn w4(conn: &mut Connection, moves: &[(u32, u32)], posts: usize) -> Result<u64> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached("UPDATE posts SET author = ?1 WHERE id = ?2")?;
        for &(p, u) in moves {
            stmt.execute((id(u), id(p)))?;
        }
    }
    tx.commit()?;
    let (sum, total) = counts_checksum(conn)?;
    assert_eq!(total, posts as u64);
    Ok(sum)
}

/// W7: delete users in one transaction, their posts deleted with them by the foreign
/// key's `ON DELETE CASCADE`; then count the remaining posts.
pub fn w7(conn: &mut Connection, deletes: &[u32]) -> Result<u64> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached("DELETE FROM users WHERE id = ?1")?;
        for &u in deletes {
            stmt.execute([id(u)])?;
        }
    }
    tx.commit()?;
    conn.query_row("SELECT COUNT(*) FROM posts", [], |r| uint(r, 0))
}

const SCHOOL: &str = "
    CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE courses (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE enrollments (
        student INTEGER NOT NULL REFERENCES students (id) ON DELETE CASCADE,
        course INTEGER NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
        grade INTEGER NOT NULL,
        PRIMARY KEY (student, course)
    ) WITHOUT ROWID;
    CREATE INDEX enrollments_course ON enrollments (course, student);
";

/// W5: build (one transaction), per-course student counts weighted by course index and
/// per-student grade sums (each one `GROUP BY` query), the unlinks (one transaction,
/// each counted when it removed a row), plus the links left: the baseline's checksum.
pub fn w5(d: &SchoolData) -> Result<(Connection, u64)> {
    let mut conn = open(SCHOOL)?;
    let tx = conn.transaction()?;
    {
        let mut student = tx.prepare_cached("INSERT INTO students (id, name) VALUES (?1, ?2)")?;
        for (i, s) in (0u32..).zip(&d.students) {
            student.execute((id(i), &s.name))?;
        }
        let mut course = tx.prepare_cached("INSERT INTO courses (id, name) VALUES (?1, ?2)")?;
        for (i, c) in (0u32..).zip(&d.courses) {
            course.execute((id(i), &c.name))?;
        }
        let mut enroll = tx.prepare_cached(
            "INSERT INTO enrollments (student, course, grade) VALUES (?1, ?2, ?3)",
        )?;
        for (s, cs) in (0u32..).zip(&d.enrollments) {
            for &(c, g) in cs {
                enroll.execute((id(s), id(c), g))?;
            }
        }
    }
    tx.commit()?;

    let mut sum = 0u64;
    {
        let mut stmt =
            conn.prepare_cached("SELECT course, COUNT(*) FROM enrollments GROUP BY course")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            sum += uint(row, 0)? * uint(row, 1)?;
        }
        let mut stmt =
            conn.prepare_cached("SELECT student, SUM(grade) FROM enrollments GROUP BY student")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            sum += uint(row, 1)?;
        }
    }

    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare_cached("DELETE FROM enrollments WHERE student = ?1 AND course = ?2")?;
        for &(s, c) in &d.unlinks {
            sum += stmt.execute((id(s), id(c)))? as u64;
        }
    }
    tx.commit()?;
    let links = conn.query_row("SELECT COUNT(*) FROM enrollments", [], |r| uint(r, 0))?;
    Ok((conn, sum + links))
}

const ORG: &str = "
    CREATE TABLE employees (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        level INTEGER NOT NULL,
        manager INTEGER REFERENCES employees (id)
    );
    CREATE INDEX employees_manager ON employees (manager);
";

/// W6's tree (not timed, as in the criterion benchmark): employee 0 has no manager.
pub fn w6_build(d: &OrgData) -> Result<Connection> {
    let mut conn = open(ORG)?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO employees (id, name, level, manager) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for ((i, e), &m) in (0u32..).zip(&d.employees).zip(&d.manager) {
            let manager = (i > 0).then(|| id(m));
            stmt.execute((id(i), &e.name, e.level, manager))?;
        }
    }
    tx.commit()?;
    Ok(conn)
}

/// W6: the root's descendants counted by one recursive CTE down the `manager` index, and
/// each sampled employee's depth by one recursive CTE up to the root (the number of
/// non-null managers on the way).
pub fn w6(conn: &Connection, samples: &[u32]) -> Result<u64> {
    let count = conn
        .prepare_cached(
            "WITH RECURSIVE below (id) AS (
             SELECT id FROM employees WHERE manager = ?1
             UNION ALL
             SELECT e.id FROM employees e JOIN below b ON e.manager = b.id
         )
         SELECT COUNT(*) FROM below",
        )?
        .query_row([id(0)], |r| uint(r, 0))?;
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE above (manager) AS (
             SELECT manager FROM employees WHERE id = ?1
             UNION ALL
             SELECT e.manager FROM employees e JOIN above a ON e.id = a.manager
         )
         SELECT COUNT(manager) FROM above",
    )?;
    let mut depths = 0u64;
    for &i in samples {
        depths += stmt.query_row([id(i)], |r| uint(r, 0))?;
    }
    Ok(count * 1_000_003 + depths)
}

/// Single-table inheritance: one row per notification, a `kind` column and each kind's
/// fields nullable.
const NOTIF: &str = "
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        score INTEGER NOT NULL
    );
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('email', 'sms', 'push')),
        user INTEGER NOT NULL REFERENCES users (id),
        address TEXT,
        phone TEXT,
        device INTEGER
    );
    CREATE INDEX notifications_user_kind ON notifications (user, kind);
";

/// W8 build: users and notifications in one transaction.
pub fn w8_build(d: &NotifData) -> Result<Connection> {
    let mut conn = open(NOTIF)?;
    let tx = conn.transaction()?;
    {
        let mut user =
            tx.prepare_cached("INSERT INTO users (id, name, score) VALUES (?1, ?2, ?3)")?;
        for (i, u) in (0u32..).zip(&d.users) {
            user.execute((id(i), &u.name, u.score))?;
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO notifications (id, created_at, kind, user, address, phone, device)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for ((i, (n, kind)), &o) in (0u32..).zip(&d.notifications).zip(&d.owner) {
            let created_at = i64::try_from(n.created_at).expect("fits an INTEGER");
            let (k, address, phone, device) = match kind {
                NotifKind::Email(e) => ("email", Some(e.address.as_str()), None, None),
                NotifKind::Sms(s) => ("sms", None, Some(s.phone.as_str()), None),
                // SQLite integers are signed: the 64 bits are kept as they are
                NotifKind::Push(p) => ("push", None, None, Some(p.device as i64)),
            };
            stmt.execute((id(i), created_at, k, id(o), address, phone, device))?;
        }
    }
    tx.commit()?;
    Ok(conn)
}

/// W8 query: the SMS rows' phone lengths and count (one scan), and the sampled users'
/// email counts (one query each, on the `(user, kind)` index); the baseline's weights.
pub fn w8_query(conn: &Connection, samples: &[u32]) -> Result<u64> {
    let (sms, count) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(length(phone)), 0), COUNT(*) FROM notifications
             WHERE kind = 'sms'",
        )?
        .query_row([], |r| Ok((uint(r, 0)?, uint(r, 1)?)))?;
    let mut stmt = conn
        .prepare_cached("SELECT COUNT(*) FROM notifications WHERE user = ?1 AND kind = 'email'")?;
    let mut emails = 0u64;
    for &u in samples {
        emails += stmt.query_row([id(u)], |r| uint(r, 0))?;
    }
    Ok(sms * 1_000_003 + count * 1_009 + emails)
}
