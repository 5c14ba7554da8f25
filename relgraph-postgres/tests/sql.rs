//! Hand-written SQL against the exported database gives the store's answers, and the
//! database's `ON DELETE` rules do what the store's delete rules do.

mod common;

use std::collections::BTreeSet;

use common::{
    fresh_db, populated, server, Badge, Course, Employee, Note, Photo, Post, Profile, User,
};
use relgraph::{Entity, RemoveError, Store};
use relgraph_postgres::Mapping;

fn keys<T: Entity>(s: &Store) -> BTreeSet<i64> {
    s.keys::<T>().map(|k| i64::from(k.raw().index())).collect()
}

fn ids(db: &mut postgres::Client, sql: &str) -> BTreeSet<i64> {
    db.query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn hand_written_queries_give_the_stores_answers() {
    let srv = server();
    let (store, m) = populated(8);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "queries");
    mapping.export(&mut db, &store).unwrap();

    // users with more than 3 posts
    let sql = ids(
        &mut db,
        "SELECT u.id FROM users u JOIN posts p ON p.author_id = u.id \
         GROUP BY u.id HAVING count(*) > 3",
    );
    let want: BTreeSet<i64> = store
        .keys::<User>()
        .filter(|&u| store.child_count(m.authored, u) > 3)
        .map(|u| i64::from(u.raw().index()))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(sql, want);

    // average grade per course
    let rows = db
        .query(
            "SELECT c.name, avg(e.grade) FROM courses c \
             JOIN users_courses e ON e.courses_id = c.id GROUP BY c.id, c.name ORDER BY c.id",
            &[],
        )
        .unwrap();
    let mut want = Vec::new();
    for (c, course) in store.iter::<Course>() {
        let grades: Vec<f64> = store
            .sources_with(m.enrolled, c)
            .map(|(_, e)| e.grade)
            .collect();
        if !grades.is_empty() {
            want.push((
                course.name.clone(),
                grades.iter().sum::<f64>() / grades.len() as f64,
            ));
        }
    }
    assert_eq!(rows.len(), want.len());
    for (row, (name, avg)) in rows.iter().zip(&want) {
        assert_eq!(&row.get::<_, String>(0), name);
        let got: f64 = row.get(1);
        assert!((got - avg).abs() < 1e-9, "{name}: {got} vs {avg}");
    }

    // a user's post titles, in the collection's order
    let u = store
        .keys::<User>()
        .max_by_key(|&u| store.child_count(m.authored, u))
        .unwrap();
    let titles: Vec<String> = db
        .query(
            "SELECT title FROM posts WHERE author_id = $1 ORDER BY author_pos",
            &[&i64::from(u.raw().index())],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<String> = store
        .children(m.authored, u)
        .rows()
        .map(|p| p.title.clone())
        .collect();
    assert_eq!(titles, want);

    // notifications by kind (joined tables), and the base's own kind
    let counts: Vec<i64> = db
        .query_one(
            "SELECT (SELECT count(*) FROM email), (SELECT count(*) FROM sms), \
             (SELECT count(*) FROM notifications n WHERE NOT EXISTS \
               (SELECT 1 FROM email e WHERE e.id = n.id) AND NOT EXISTS \
               (SELECT 1 FROM sms s WHERE s.id = n.id))",
            &[],
        )
        .map(|r| vec![r.get(0), r.get(1), r.get(2)])
        .unwrap();
    let plain = store.len::<common::Notification>()
        - store.len::<common::Email>()
        - store.len::<common::Sms>();
    assert_eq!(
        counts,
        [
            store.len::<common::Email>() as i64,
            store.len::<common::Sms>() as i64,
            plain as i64
        ]
    );

    // comments by the table of their polymorphic parent
    let on_posts = ids(
        &mut db,
        "SELECT id FROM comments WHERE target_table = 'posts'",
    );
    let want: BTreeSet<i64> = store
        .keys::<common::Comment>()
        .filter(|&c| store.parent(m.post_comments, c).is_some())
        .map(|c| i64::from(c.raw().index()))
        .collect();
    assert_eq!(on_posts, want);

    // everyone under the first employee (a recursive query over the self-reference)
    let boss = store.keys::<Employee>().next().unwrap();
    let under = ids(
        &mut db,
        &format!(
            "WITH RECURSIVE t(id) AS (SELECT id FROM employees WHERE manager_id = {} \
             UNION ALL SELECT e.id FROM employees e JOIN t ON e.manager_id = t.id) \
             SELECT id FROM t",
            boss.raw().index()
        ),
    );
    let want: BTreeSet<i64> = store
        .descendants(m.manages, boss)
        .map(|(e, _)| i64::from(e.raw().index()))
        .collect();
    assert!(want.len() > 2);
    assert_eq!(under, want);
}

#[test]
fn on_delete_in_the_database_does_what_the_stores_delete_rules_do() {
    let srv = server();
    let (mut store, m) = populated(9);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "on_delete");
    mapping.export(&mut db, &store).unwrap();
    // a user with posts (cascade), notes (nullify), photos (delete-orphan), a profile
    // (one-to-one cascade), enrollments and follows (many-to-many), and no badge
    let u = store
        .keys::<User>()
        .find(|&u| {
            store.child_count(m.authored, u) > 0
                && store.child_count(m.noted, u) > 0
                && store.child_count(m.shot, u) > 0
                && store.partner(m.profile, u).is_some()
                && store.target_count(m.enrolled, u) > 0
                && store.child_count(m.badged, u) == 0
        })
        .expect("a user with every kind of link");
    let id = i64::from(u.raw().index());
    let notes_of_u = ids(
        &mut db,
        &format!("SELECT id FROM notes WHERE owner_id = {id}"),
    );
    assert!(!notes_of_u.is_empty());
    db.execute("DELETE FROM users WHERE id = $1", &[&id])
        .unwrap();
    store.remove(u).unwrap();

    // cascade: the posts went
    assert_eq!(ids(&mut db, "SELECT id FROM posts"), keys::<Post>(&store));
    // nullify: the notes stayed, without owner
    assert_eq!(ids(&mut db, "SELECT id FROM notes"), keys::<Note>(&store));
    let ownerless = ids(&mut db, "SELECT id FROM notes WHERE owner_id IS NULL");
    let want: BTreeSet<i64> = store
        .keys::<Note>()
        .filter(|&n| store.parent(m.noted, n).is_none())
        .map(|n| i64::from(n.raw().index()))
        .collect();
    assert!(notes_of_u.is_subset(&ownerless));
    assert_eq!(ownerless, want);
    // delete-orphan: the photos went
    assert_eq!(ids(&mut db, "SELECT id FROM photos"), keys::<Photo>(&store));
    // one-to-one cascade: the profile went
    assert_eq!(
        ids(&mut db, "SELECT id FROM profiles"),
        keys::<Profile>(&store)
    );
    // many-to-many: the links went, the courses stayed
    let links: i64 = db
        .query_one("SELECT count(*) FROM users_courses", &[])
        .unwrap()
        .get(0);
    assert_eq!(links as usize, store.link_count(m.enrolled));
    assert_eq!(
        ids(&mut db, "SELECT id FROM courses"),
        keys::<Course>(&store)
    );
    let follows: i64 = db
        .query_one("SELECT count(*) FROM users_follows", &[])
        .unwrap()
        .get(0);
    assert_eq!(follows as usize, store.link_count(m.follows));
    // kinds: the user's notifications cascaded, their kind rows with them
    assert_eq!(
        ids(&mut db, "SELECT id FROM notifications"),
        keys::<common::Notification>(&store)
    );
    assert_eq!(
        ids(&mut db, "SELECT id FROM email"),
        keys::<common::Email>(&store)
    );

    // restrict: a user holding a badge is kept by both
    let held = store
        .keys::<User>()
        .find(|&u| store.child_count(m.badged, u) > 0)
        .unwrap();
    let err = store.remove(held).unwrap_err();
    assert!(matches!(err, RemoveError::Restricted { .. }), "{err}");
    let err = db
        .execute(
            "DELETE FROM users WHERE id = $1",
            &[&i64::from(held.raw().index())],
        )
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
        "{err}"
    );
    assert_eq!(ids(&mut db, "SELECT id FROM badges"), keys::<Badge>(&store));
    assert_eq!(ids(&mut db, "SELECT id FROM users"), keys::<User>(&store));
}
