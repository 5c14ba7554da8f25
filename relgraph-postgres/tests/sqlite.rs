//! The same mapping exported into a SQLite file.

mod common;

use common::{populated, Course, User};
use relgraph_postgres::{Error, Mapping};
use rusqlite::Connection;

#[test]
fn a_store_exported_to_sqlite_answers_queries_and_enforces_its_foreign_keys() {
    let (mut store, m) = populated(5);
    let mapping = Mapping::new(store.schema()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut conn = Connection::open(&path).unwrap();
    let report = mapping.export_sqlite(&mut conn, &store).unwrap();
    assert_eq!(report.links as usize, {
        store.link_count(m.enrolled) + store.link_count(m.follows)
    });
    drop(conn);

    // a fresh connection, as any SQL tool opening the file
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users as usize, store.len::<User>());
    let check: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(check, 0);
    let mut stmt = conn
        .prepare(
            "SELECT c.name, avg(e.grade) FROM courses c JOIN users_courses e \
             ON e.courses_id = c.id GROUP BY c.id ORDER BY c.id",
        )
        .unwrap();
    let rows: Vec<(String, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut want = Vec::new();
    for (c, course) in store.iter::<Course>() {
        let g: Vec<f64> = store
            .sources_with(m.enrolled, c)
            .map(|(_, e)| e.grade)
            .collect();
        if !g.is_empty() {
            want.push((course.name.clone(), g.iter().sum::<f64>() / g.len() as f64));
        }
    }
    assert_eq!(rows.len(), want.len());
    for ((n1, a1), (n2, a2)) in rows.iter().zip(&want) {
        assert_eq!(n1, n2);
        assert!((a1 - a2).abs() < 1e-9);
    }
    // nested fields are JSON text
    let meta: String = conn
        .query_row("SELECT meta FROM posts LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert!(
        meta.starts_with('{') && meta.contains("\"words\":"),
        "{meta}"
    );
    // cascade, as in the store
    let u = store
        .keys::<User>()
        .find(|&u| store.child_count(m.authored, u) > 0 && store.child_count(m.badged, u) == 0)
        .unwrap();
    conn.execute(
        "DELETE FROM users WHERE id = ?1",
        [i64::from(u.raw().index())],
    )
    .unwrap();
    store.remove(u).unwrap();
    let posts: i64 = conn
        .query_row("SELECT count(*) FROM posts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(posts as usize, store.len::<common::Post>());
}

#[test]
fn a_sqlite_export_into_a_file_holding_the_schemas_tables_is_refused() {
    let (store, _) = populated(6);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut conn = Connection::open_in_memory().unwrap();
    mapping.export_sqlite(&mut conn, &store).unwrap();
    let err = mapping.export_sqlite(&mut conn, &store).unwrap_err();
    assert!(matches!(err, Error::NotEmpty(_)), "{err}");
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users as usize, store.len::<User>());
}
