//! A database kept in step by the change feed: a long random run compared after every
//! batch, a sync killed midway (kill -9 of the process, a dropped connection) and
//! resumed, write-behind.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{fresh_db, populated, random_step, server, Rng};
use relgraph_postgres::{Error, Mapping, PgSync};

#[test]
fn a_long_random_run_keeps_the_database_equal_to_the_store_after_every_batch() {
    let srv = server();
    let (mut store, m) = populated(11);
    store.enable_history(50);
    store.enable_feed(1000);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "long_run");
    mapping.export(&mut db, &store).unwrap();
    let mut sync = PgSync::new(
        &mapping,
        srv.connect("long_run").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    let mut r = Rng(0x9e37_79b9);
    let mut written = 0;
    for step in 0..400 {
        random_step(&mut store, &m, &mut r);
        written += sync.sync(&store).unwrap();
        if let Err(e) = mapping.compare(&mut db, &store) {
            panic!("after step {step}: {e}");
        }
    }
    assert!(written > 300, "{written} batches written");
    let applied = mapping.applied_seq(&mut db).unwrap();
    assert_eq!(applied, store.feed_cursor().position() - 1);
}

#[test]
fn a_batch_offered_twice_is_skipped_and_a_missing_one_is_refused() {
    let srv = server();
    let (mut store, m) = populated(12);
    store.enable_feed(100);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "twice");
    mapping.export(&mut db, &store).unwrap();
    let start = store.feed_cursor();
    let mut r = Rng(5);
    for _ in 0..20 {
        random_step(&mut store, &m, &mut r);
    }
    let mut first = PgSync::new(&mapping, srv.connect("twice").unwrap(), start.clone()).unwrap();
    let n = first.sync(&store).unwrap();
    assert!(n > 0);
    // the same batches again, from a second consumer: all skipped, nothing changes
    let mut again = PgSync::new(&mapping, srv.connect("twice").unwrap(), start).unwrap();
    assert_eq!(again.sync(&store).unwrap(), 0);
    mapping.compare(&mut db, &store).unwrap();
    // a consumer that starts after an unsynced batch finds the gap
    store.insert(common::Course {
        name: "unsynced".into(),
    });
    let late_cursor = store.feed_cursor();
    for _ in 0..5 {
        store.insert(common::Course {
            name: "late".into(),
        });
    }
    let mut late = PgSync::new(&mapping, srv.connect("twice").unwrap(), late_cursor).unwrap();
    let err = late.sync(&store).unwrap_err();
    assert!(matches!(err, Error::Gap { .. }), "{err}");
    assert_eq!(late.pending(), 5);
}

/// Installs a trigger that drops the connection in the middle of the transaction that
/// inserts the first post titled `boom`.
fn drop_connection_on_boom(db: &mut postgres::Client) {
    db.batch_execute(
        "CREATE SEQUENCE boom_seq;
         CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.title = 'boom' AND nextval('boom_seq') = 1 THEN
             PERFORM pg_terminate_backend(pg_backend_pid());
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER boom BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION boom();",
    )
    .unwrap();
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_batch_loses_nothing_after_a_reconnect() {
    let srv = server();
    let (mut store, m) = populated(13);
    store.enable_feed(1000);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "dropped");
    mapping.export(&mut db, &store).unwrap();
    drop_connection_on_boom(&mut db);
    let mut sync = PgSync::new(
        &mapping,
        srv.connect("dropped").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    let mut r = Rng(77);
    for _ in 0..10 {
        random_step(&mut store, &m, &mut r);
    }
    let u = store.keys::<common::User>().next().unwrap();
    let boom = store.feed_cursor().position();
    // one batch: a user renamed, then the post whose insert drops the connection
    store
        .transaction(|s| {
            s.update(u, |u| u.name = "renamed".into()).unwrap();
            let mut p = common::post(&mut r);
            p.title = "boom".into();
            s.insert_child(m.authored, u, p)
        })
        .unwrap();
    for _ in 0..10 {
        random_step(&mut store, &m, &mut r);
    }
    let total = store.feed_cursor().position() - 1;
    let err = sync.sync(&store).unwrap_err();
    assert!(matches!(err, Error::Postgres(_)), "{err}");
    let after_error = mapping.applied_seq(&mut db).unwrap();
    assert_eq!(after_error, boom - 1, "the batches before were written");
    let name: String = db
        .query_one(
            "SELECT name FROM users WHERE id = $1",
            &[&i64::from(u.raw().index())],
        )
        .unwrap()
        .get(0);
    assert_ne!(
        name, "renamed",
        "the interrupted batch was rolled back whole"
    );
    let left = (total - after_error) as usize;
    assert_eq!(sync.pending(), left);
    sync.reconnect(srv.connect("dropped").unwrap());
    assert_eq!(sync.push().unwrap(), left);
    mapping.compare(&mut db, &store).unwrap();
    assert_eq!(
        mapping.applied_seq(&mut db).unwrap(),
        store.feed_cursor().position() - 1
    );
}

const CHILD_ENV: &str = "RELGRAPH_PG_SYNC_CHILD";
const KILL_STEPS: usize = 3000;

/// The deterministic run both the killed child and the resuming parent make: the same
/// store, the same batches.
fn kill_run_store() -> (relgraph::Store, common::M) {
    let (mut store, m) = populated(21);
    store.enable_history(20);
    store.enable_feed(KILL_STEPS * 2);
    (store, m)
}

#[test]
fn the_child_process_of_the_kill_test_syncs_only_when_asked_to() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut store, m) = kill_run_store();
    let mapping = Mapping::new(store.schema()).unwrap();
    let client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let mut sync = PgSync::new(&mapping, client, store.feed_cursor()).unwrap();
    let mut r = Rng(4242);
    for _ in 0..KILL_STEPS {
        random_step(&mut store, &m, &mut r);
        sync.sync(&store).unwrap();
    }
}

#[test]
fn a_sync_killed_midway_with_kill_9_resumes_with_no_batch_lost_or_applied_twice() {
    let srv = server();
    let (store, m) = kill_run_store();
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "killed");
    mapping.export(&mut db, &store).unwrap();
    let start = store.feed_cursor();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_child_process_of_the_kill_test_syncs_only_when_asked_to",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, srv.url("killed"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        let applied = mapping.applied_seq(&mut db).unwrap();
        if applied >= 200 {
            child.kill().unwrap(); // SIGKILL
            break applied;
        }
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        assert!(Instant::now() < deadline, "the child made no progress");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.wait().unwrap();
    let killed_at = mapping.applied_seq(&mut db).unwrap();
    assert!(killed_at >= at_kill);
    // the program restarts: the same run, a new consumer from the start
    let (mut store, m2) = (store, m);
    let mut sync = PgSync::new(&mapping, srv.connect("killed").unwrap(), start).unwrap();
    let mut r = Rng(4242);
    for _ in 0..KILL_STEPS {
        random_step(&mut store, &m2, &mut r);
    }
    let total = store.feed_cursor().position() - 1;
    assert!(killed_at < total, "the child was killed before it finished");
    let written = sync.sync(&store).unwrap() as u64;
    assert_eq!(
        written,
        total - killed_at,
        "only the batches the child had not written"
    );
    mapping.compare(&mut db, &store).unwrap();
    assert_eq!(mapping.applied_seq(&mut db).unwrap(), total);
}

#[test]
fn write_behind_keeps_the_database_in_step_through_a_dropped_connection() {
    let srv = server();
    let (mut store, m) = populated(14);
    store.enable_feed(10_000);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "write_behind");
    mapping.export(&mut db, &store).unwrap();
    drop_connection_on_boom(&mut db);
    let sync = PgSync::new(
        &mapping,
        srv.connect("write_behind").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    let url = srv.url("write_behind");
    let mut wb = sync.write_behind(4, move || {
        postgres::Client::connect(&url, postgres::NoTls).map_err(Error::from)
    });
    let mut r = Rng(31);
    for step in 0..300 {
        random_step(&mut store, &m, &mut r);
        if step == 150 {
            let u = store.insert(common::user(&mut r));
            let mut p = common::post(&mut r);
            p.title = "boom".into();
            store.insert_child(m.authored, u, p).unwrap();
        }
        wb.send(&store).unwrap();
    }
    wb.finish().unwrap();
    mapping.compare(&mut db, &store).unwrap();
    assert_eq!(
        mapping.applied_seq(&mut db).unwrap(),
        store.feed_cursor().position() - 1
    );
}

#[test]
fn write_behind_blocks_the_program_when_its_queue_is_full() {
    let srv = server();
    let (mut store, _m) = populated(15);
    store.enable_feed(100);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "back_pressure");
    mapping.export(&mut db, &store).unwrap();
    let sync = PgSync::new(
        &mapping,
        srv.connect("back_pressure").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    // another session holds the bookkeeping row: the writer waits on its first batch
    let mut holder = srv.connect("back_pressure").unwrap();
    let mut lock = holder.transaction().unwrap();
    lock.execute("SELECT 1 FROM relgraph_state FOR UPDATE", &[])
        .unwrap();
    let url = srv.url("back_pressure");
    let mut wb = sync.write_behind(2, move || {
        postgres::Client::connect(&url, postgres::NoTls).map_err(Error::from)
    });
    let mut queued_all = true;
    for i in 0..6 {
        store.insert(common::Course {
            name: format!("c{i}"),
        });
        queued_all &= wb.try_send(&store).unwrap();
    }
    // one batch with the writer, two in the queue: the rest held by the program
    assert!(!queued_all, "the queue took every batch");
    assert_eq!(mapping.applied_seq(&mut db).unwrap(), 0);
    lock.rollback().unwrap();
    wb.send(&store).unwrap();
    wb.finish().unwrap();
    mapping.compare(&mut db, &store).unwrap();
    assert_eq!(mapping.applied_seq(&mut db).unwrap(), 6);
}

#[test]
fn a_store_imported_from_a_synced_database_is_attached_and_kept_in_step() {
    let srv = server();
    let (mut store, m) = populated(16);
    store.enable_feed(1000);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "attach");
    mapping.export(&mut db, &store).unwrap();
    let mut sync = PgSync::new(
        &mapping,
        srv.connect("attach").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    let mut r = Rng(8);
    for _ in 0..50 {
        random_step(&mut store, &m, &mut r);
    }
    sync.sync(&store).unwrap();
    let applied = mapping.applied_seq(&mut db).unwrap();
    assert!(applied > 20);
    // a new process: the store read back from the database, its feed numbered from 1
    let mut back = mapping.import(&mut db).unwrap();
    back.check_integrity().unwrap();
    back.enable_history(10);
    back.enable_feed(1000);
    let mut sync = PgSync::attach(&mapping, srv.connect("attach").unwrap(), &back).unwrap();
    for _ in 0..50 {
        random_step(&mut back, &m, &mut r);
        sync.sync(&back).unwrap();
    }
    mapping.compare(&mut db, &back).unwrap();
    assert_eq!(
        mapping.applied_seq(&mut db).unwrap(),
        applied + back.feed_cursor().position() - 1
    );
}

#[test]
fn a_store_imported_after_a_sync_never_issues_a_removed_key_again() {
    let srv = server();
    let (mut store, _m) = populated(17);
    store.enable_feed(1000);
    let mapping = Mapping::new(store.schema()).unwrap();
    let mut db = fresh_db(&srv, "no_reuse");
    mapping.export(&mut db, &store).unwrap();
    let mut sync = PgSync::new(
        &mapping,
        srv.connect("no_reuse").unwrap(),
        store.feed_cursor(),
    )
    .unwrap();
    let mut r = Rng(3);
    let mut removed = Vec::new();
    // slots vacated and reused several times: their versions climb
    for _ in 0..6 {
        let fresh: Vec<_> = (0..8).map(|_| store.insert(common::user(&mut r))).collect();
        for k in fresh {
            store.remove(k).unwrap();
            removed.push(k.raw());
        }
    }
    assert!(removed.iter().any(|k| k.version() > 2));
    sync.sync(&store).unwrap();
    let mut back = mapping.import(&mut db).unwrap();
    back.check_integrity().unwrap();
    for _ in 0..200 {
        let k = back.insert(common::user(&mut r)).raw();
        assert!(!removed.contains(&k), "key {k:?} issued again");
    }
}
