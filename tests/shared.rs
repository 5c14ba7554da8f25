//! The shared handle: readers and writers on several threads (with undo and redo), a
//! saver, a feed consumer keeping a replica, panics inside closures, and calls that would
//! deadlock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use relgraph::{DeleteRule, HistoryError, Key, OneToMany, RemoveError, Schema, SharedStore, Store};
use serde::{Deserialize, Serialize};

mod common;
use common::panic_message;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User(u64);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Post(u64);

fn schema() -> (Schema, OneToMany<User, Post>) {
    let mut s = Schema::new();
    let users = s.table::<User>("users");
    let posts = s.table::<Post>("posts");
    let rel = s.one_to_many(users, "posts", posts, "author", DeleteRule::Cascade);
    (s, rel)
}

/// What every writer transaction keeps true, and a half-applied one would break: every
/// post has an author, and every user has exactly two posts.
fn whole(s: &Store, rel: OneToMany<User, Post>) -> bool {
    s.iter::<Post>().all(|(p, _)| s.parent(rel, p).is_some())
        && s.iter::<User>().all(|(u, _)| s.child_count(rel, u) == 2)
        && s.len::<Post>() == 2 * s.len::<User>()
}

/// Every user with its value and its posts in order, every post with its value.
fn contents(s: &Store, rel: OneToMany<User, Post>) -> (Vec<String>, Vec<String>) {
    let users = s.iter::<User>().map(|(u, v)| {
        let posts: Vec<Key<Post>> = s.children(rel, u).collect();
        format!("{u:?} {v:?} {posts:?}")
    });
    let posts = s.iter::<Post>().map(|(p, v)| format!("{p:?} {v:?}"));
    (users.collect(), posts.collect())
}

#[test]
fn readers_writers_and_a_saver_never_see_half_a_transaction() {
    let (schema, rel) = schema();
    let mut store = Store::new(schema.clone());
    store.enable_history(64);
    store.enable_feed(1 << 16);
    let mut cursor = store.feed_cursor();
    let shared = SharedStore::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().unwrap();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("gives up") {
            eprintln!("{info}");
        }
    }));

    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let shared = shared.clone();
            thread::spawn(move || {
                let mut mine: Vec<Key<User>> = Vec::new();
                let mut stepped = 0;
                for i in 0..500u64 {
                    let n = w * 1_000_000 + i;
                    let r = shared.write(|s| {
                        let u = s.insert(User(n));
                        let a = s.insert(Post(n));
                        s.link(rel, u, a).map_err(|_| "link")?;
                        let b = s.insert(Post(n + 1));
                        s.link(rel, u, b).map_err(|_| "link")?;
                        match i % 7 {
                            // changed my mind: the half-built user is rolled back
                            3 => Err("fail"),
                            _ => Ok(u),
                        }
                    });
                    if let Ok(u) = r {
                        mine.push(u);
                    }
                    if i % 11 == 5 {
                        // a panic inside a write rolls back and poisons nothing
                        let caught = catch_unwind(AssertUnwindSafe(|| {
                            let _: Result<(), ()> = shared.write(|s| {
                                s.insert(User(0));
                                panic!("writer {w} gives up");
                            });
                        }));
                        assert!(caught.is_err());
                    }
                    if i % 5 == 4 {
                        if let Some(u) = mine.pop() {
                            // (another writer's undo or redo may have removed it)
                            match shared.write(|s| s.remove(u)) {
                                Ok(()) | Err(RemoveError::Stale(_)) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    // undo and redo take the write lock outside a transaction
                    let history = match i % 6 {
                        1 | 4 => Some(shared.undo()),
                        2 => Some(shared.redo()),
                        _ => None,
                    };
                    match history {
                        Some(Ok(_)) => stepped += 1,
                        None
                        | Some(Err(HistoryError::NothingToUndo))
                        | Some(Err(HistoryError::NothingToRedo)) => {}
                        Some(Err(e)) => panic!("{e}"),
                    }
                    // leave the readers and the saver room between transactions
                    thread::yield_now();
                    if i % 100 == 99 {
                        thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                stepped
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (shared, stop, reads) = (shared.clone(), stop.clone(), reads.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    shared.read(|s| {
                        s.check_integrity().expect("integrity under the read lock");
                        assert!(whole(s, rel), "a reader saw half a transaction");
                    });
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // a consumer of the feed keeps a replica in step, reading under the read lock
    let consumer = {
        let (shared, stop, schema) = (shared.clone(), stop.clone(), schema.clone());
        thread::spawn(move || {
            let mut replica = Store::new(schema);
            let mut batches = 0;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let read = shared.read(|s| match s.read_feed(&mut cursor) {
                    Ok(views) => views.iter().map(|v| v.batch().clone()).collect::<Vec<_>>(),
                    Err(e) => panic!("the consumer fell behind: {e}"),
                });
                for b in &read {
                    replica
                        .apply_changes(b)
                        .expect("a batch applies to the replica");
                }
                batches += read.len();
                if stopping {
                    // every batch made before the writers stopped is read
                    return (replica, batches);
                }
                thread::yield_now();
            }
        })
    };
    let saver = {
        let (shared, stop, schema) = (shared.clone(), stop.clone(), schema.clone());
        let path = dir.path().join("world.rlg");
        thread::spawn(move || {
            let mut saves = 0;
            while !stop.load(Ordering::Relaxed) || saves == 0 {
                shared.save(&path).unwrap();
                let loaded = Store::load(schema.clone(), &path).expect("every save loads");
                assert!(whole(&loaded, rel), "a save holds half a transaction");
                saves += 1;
            }
            saves
        })
    };
    let stepped: u32 = writers
        .into_iter()
        .map(|w| w.join().expect("a writer failed"))
        .sum();
    let during = reads.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("a reader failed");
    }
    let saves = saver.join().expect("the saver failed");
    let (replica, batches) = consumer.join().expect("the consumer failed");
    std::panic::set_hook(prev);
    println!(
        "1,000 write transactions with undo and redo; {during} checked reads while they ran; \
         ({stepped} steps taken back or forward); {saves} saves; {batches} batches applied \
         to a replica"
    );
    replica.check_integrity().unwrap();
    assert!(
        shared.read(|s| contents(s, rel)) == contents(&replica, rel),
        "the replica fed by the feed equals the store"
    );
    // at least every committed write (500 a writer, less every seventh that fails)
    assert!(batches >= 858, "the consumer read every batch ({batches})");
    assert!(stepped > 0, "undo and redo took steps");
    assert!(
        during >= 20,
        "the readers ran while the writers did ({during} reads)"
    );
    assert!(saves > 0);
    let store = shared.try_into_inner().expect("the last handle");
    store.check_integrity().unwrap();
    assert!(!store.in_transaction());
    assert!(whole(&store, rel));
    assert!(!store.is_empty::<User>());
}

#[test]
fn a_nested_call_on_the_same_store_panics_instead_of_deadlocking() {
    let (declared, _) = schema();
    let shared = SharedStore::new(Store::new(declared));
    let msg = panic_message(|| {
        shared.read(|_| {
            let _: Result<(), ()> = shared.write(|_| Ok(()));
        })
    });
    assert!(msg.contains("would wait for the lock"), "{msg}");
    let msg = panic_message(|| {
        let _: Result<(), ()> = shared.write(|_| {
            shared.read(|_| ());
            Ok(())
        });
    });
    assert!(msg.contains("would wait for the lock"), "{msg}");
    let msg = panic_message(|| shared.read(|_| shared.save("never-written.rlg").unwrap()));
    assert!(msg.contains("SharedStore::read"), "{msg}");
    let msg = panic_message(|| {
        let _: Result<(), ()> = shared.write(|_| {
            let _ = shared.undo();
            Ok(())
        });
    });
    assert!(msg.contains("SharedStore::undo"), "{msg}");
    let msg = panic_message(|| shared.read(|_| drop(shared.redo())));
    assert!(msg.contains("SharedStore::redo"), "{msg}");
    // outside, undo answers (history is off here)
    assert_eq!(shared.undo().unwrap_err(), HistoryError::Off);
    // the handle still works, and another store's handle may be used inside a closure
    let (other_schema, _) = self::schema();
    let other = SharedStore::new(Store::new(other_schema));
    shared
        .write(|s| {
            s.insert(User(1));
            other.read(|o| assert_eq!(o.len::<User>(), 0));
            Ok::<(), ()>(())
        })
        .unwrap();
    assert_eq!(shared.read(|s| s.len::<User>()), 1);
}

#[test]
fn a_panicking_write_rolls_back_and_the_store_stays_usable() {
    let (declared, _) = schema();
    let shared = SharedStore::new(Store::new(declared));
    shared.write(|s| Ok::<_, ()>(s.insert(User(1)))).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), ()> = shared.write(|s| {
            s.insert(User(2));
            panic!("mid-write");
        });
    }))
    .is_err());
    assert_eq!(shared.read(|s| s.len::<User>()), 1);
    assert!(!shared.read(|s| s.in_transaction()));
    let copy = shared.clone();
    let shared = shared.try_into_inner().expect_err("another handle exists");
    drop(copy);
    assert!(shared.try_into_inner().is_ok());
}
