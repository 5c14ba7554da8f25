//! User code that panics inside a call: a payload's `Default`, a row's `Drop`, an input
//! iterator, a transaction closure. After the panic the store is consistent, its
//! transaction depth is right, it saves, and every removed row is dropped exactly once.
//! Where nothing was removed yet the store is exactly as before the call.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use relgraph::{DeleteRule, Key, ManyToMany, OneToMany, OneToOne, Rules, Schema, Store};
use serde::{Deserialize, Serialize};

thread_local! {
    /// `Default` of `Grade` panics once this many more calls have been made.
    static DEFAULTS_LEFT: Cell<u32> = const { Cell::new(u32::MAX) };
    /// Drops of `Bomb` rows on this thread.
    static DROPS: Cell<u32> = const { Cell::new(0) };
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Grade(u32);

impl Default for Grade {
    fn default() -> Self {
        let left = DEFAULTS_LEFT.with(|c| c.get());
        if left == 0 {
            panic!("Grade::default fails");
        }
        DEFAULTS_LEFT.with(|c| c.set(left - 1));
        Grade(0)
    }
}

/// Panics in `Grade::default` after `n` successful calls.
fn defaults_fail_after(n: u32) {
    DEFAULTS_LEFT.with(|c| c.set(n));
}

fn defaults_work() {
    DEFAULTS_LEFT.with(|c| c.set(u32::MAX));
}

/// A row whose `Drop` panics when `armed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Bomb {
    name: String,
    armed: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        DROPS.with(|c| c.set(c.get() + 1));
        if self.armed && !std::thread::panicking() {
            panic!("Bomb {} goes off", self.name);
        }
    }
}

fn drops() -> u32 {
    DROPS.with(|c| c.get())
}

fn bomb(name: &str, armed: bool) -> Bomb {
    Bomb {
        name: name.into(),
        armed,
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Student(String);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Course(String);
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Owner(String);

struct World {
    store: Store,
    enrolled: ManyToMany<Student, Course, Grade>,
    /// Owner -> Bomb, delete-orphan: a bomb left without an owner is deleted.
    owns: OneToMany<Owner, Bomb>,
    /// Owner <-> Bomb one-to-one, delete-orphan at the owner's end.
    guards: OneToOne<Owner, Bomb>,
    /// Student -> Bomb, cascade.
    carries: OneToMany<Student, Bomb>,
}

fn world() -> World {
    let mut schema = Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let owners = schema.table::<Owner>("owners");
    let bombs = schema.table::<Bomb>("bombs");
    let enrolled = schema.many_to_many_with(students, "courses", courses, "students", Rules::new());
    let owns = schema.one_to_many(owners, "bombs", bombs, "owner", DeleteRule::DeleteOrphan);
    let guards = schema.one_to_one(owners, "guarded", bombs, "guard", DeleteRule::DeleteOrphan);
    let carries = schema.one_to_many(students, "bombs", bombs, "carrier", DeleteRule::Cascade);
    World {
        store: Store::new(schema),
        enrolled,
        owns,
        guards,
        carries,
    }
}

/// The store is sound: integrity holds, no transaction is left open, and it saves and
/// loads to the same bytes.
fn assert_sound(store: &Store) {
    store.check_integrity().expect("integrity holds");
    assert!(!store.in_transaction(), "no transaction is left open");
    let bytes = store.to_snapshot().expect("the store saves");
    let schema = store.schema().clone();
    let loaded = Store::from_snapshot(schema, &bytes).expect("the save loads");
    assert_eq!(loaded.to_snapshot().unwrap(), bytes);
}

/// Every row with its key and every link of the world, in order: what the store holds
/// (vacant slots left by undone inserts are not content).
fn contents(w: &World) -> String {
    let s = &w.store;
    let mut out = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n",
        s.iter::<Student>().collect::<Vec<_>>(),
        s.iter::<Course>().collect::<Vec<_>>(),
        s.iter::<Owner>().collect::<Vec<_>>(),
        s.iter::<Bomb>().collect::<Vec<_>>(),
    );
    for (st, _) in s.iter::<Student>() {
        let t: Vec<_> = s.targets_with(w.enrolled, st).collect();
        let c: Vec<_> = s.children(w.carries, st).collect();
        out += &format!("{st:?}: {t:?} {c:?}\n");
    }
    for (c, _) in s.iter::<Course>() {
        out += &format!(
            "{c:?}: {:?}\n",
            s.sources(w.enrolled, c).collect::<Vec<_>>()
        );
    }
    for (o, _) in s.iter::<Owner>() {
        let b: Vec<_> = s.children(w.owns, o).collect();
        out += &format!("{o:?}: {b:?} {:?}\n", s.partner(w.guards, o));
    }
    out
}

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn a_panicking_default_in_a_bulk_many_to_many_link_changes_nothing() {
    let mut w = world();
    let s: Vec<Key<Student>> = (0..3)
        .map(|i| w.store.insert(Student(format!("s{i}"))))
        .collect();
    let c = w.store.insert(Course("c".into()));
    let before = contents(&w);
    defaults_fail_after(1);
    let enrolled = w.enrolled;
    assert!(panics(|| {
        let _ = w.store.link_all(enrolled, s.iter().map(|&s| (s, c)));
    }));
    defaults_work();
    assert_eq!(w.store.link_count(enrolled), 0, "not 1 of 3 links");
    assert_sound(&w.store);
    assert_eq!(contents(&w), before);
    w.store
        .link_all(enrolled, s.iter().map(|&s| (s, c)))
        .unwrap();
    assert_eq!(w.store.link_count(enrolled), 3);
}

#[test]
fn a_panicking_default_in_set_targets_changes_nothing() {
    let mut w = world();
    let s = w.store.insert(Student("s".into()));
    let c: Vec<Key<Course>> = (0..4)
        .map(|i| w.store.insert(Course(format!("c{i}"))))
        .collect();
    w.store.link_with(w.enrolled, s, c[0], Grade(90)).unwrap();
    let before = contents(&w);
    defaults_fail_after(2);
    let enrolled = w.enrolled;
    assert!(panics(|| {
        let _ = w.store.set_targets(enrolled, s, &[c[1], c[2], c[3]]);
    }));
    defaults_work();
    assert_eq!(contents(&w), before, "c0 is still linked, no new link");
    assert_sound(&w.store);
}

#[test]
fn a_panicking_default_inside_a_transaction_unwinds_every_level() {
    let mut w = world();
    let s: Vec<Key<Student>> = (0..3)
        .map(|i| w.store.insert(Student(format!("s{i}"))))
        .collect();
    let c = w.store.insert(Course("c".into()));
    let before = contents(&w);
    defaults_fail_after(1);
    let enrolled = w.enrolled;
    assert!(panics(|| {
        let _: Result<(), ()> = w.store.transaction(|st| {
            st.insert(Course("new".into()));
            st.transaction(|st| {
                let _ = st.link_all(enrolled, s.iter().map(|&s| (s, c)));
                Ok(())
            })
        });
    }));
    defaults_work();
    assert_eq!(contents(&w), before);
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_under_set_children_leaves_a_sound_store_and_drops_once() {
    let mut w = world();
    let o = w.store.insert(Owner("o".into()));
    let b: Vec<Key<Bomb>> = (0..3)
        .map(|i| w.store.insert(bomb(&format!("b{i}"), i == 1)))
        .collect();
    w.store.link_all(w.owns, b.iter().map(|&b| (o, b))).unwrap();
    let before = drops();
    let owns = w.owns;
    // b1 and b2 are orphaned and deleted; b1's Drop panics after the change is complete
    assert!(panics(|| {
        let _ = w.store.set_children(owns, o, &[b[0]]);
    }));
    assert_eq!(drops() - before, 2, "each removed row is dropped once");
    assert_eq!(w.store.children(owns, o).collect::<Vec<_>>(), [b[0]]);
    assert!(!w.store.contains(b[1]) && !w.store.contains(b[2]));
    assert!(
        w.store.link(owns, o, b[1]).is_err(),
        "a removed row's key is stale"
    );
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_of_an_orphan_after_unlink_or_eviction_leaves_a_sound_store() {
    let mut w = world();
    let o = w.store.insert(Owner("o".into()));
    let b = w.store.insert(bomb("b", true));
    w.store.link(w.owns, o, b).unwrap();
    let owns = w.owns;
    assert!(panics(|| {
        let _ = w.store.unlink(owns, o, b);
    }));
    assert!(!w.store.contains(b));
    assert_sound(&w.store);

    let b1 = w.store.insert(bomb("b1", true));
    let b2 = w.store.insert(bomb("b2", false));
    w.store.link(w.guards, o, b1).unwrap();
    let guards = w.guards;
    let before = drops();
    // linking b2 evicts b1, which is left without a guard and deleted
    assert!(panics(|| {
        let _ = w.store.link(guards, o, b2);
    }));
    assert_eq!(drops() - before, 1);
    assert_eq!(w.store.partner(guards, o), Some(b2));
    assert!(!w.store.contains(b1));
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_in_a_cascade_leaves_no_removed_entity_owning_links() {
    let mut w = world();
    let s = w.store.insert(Student("s".into()));
    let o = w.store.insert(Owner("o".into()));
    let b: Vec<Key<Bomb>> = (0..5)
        .map(|i| w.store.insert(bomb(&format!("b{i}"), i % 2 == 0)))
        .collect();
    w.store
        .link_all(w.carries, b.iter().map(|&b| (s, b)))
        .unwrap();
    w.store.link(w.owns, o, b[4]).unwrap();
    let before = drops();
    assert!(panics(|| {
        let _ = w.store.remove(s);
    }));
    assert_eq!(
        drops() - before,
        5,
        "every removed row dropped once, the armed ones too"
    );
    assert!(b.iter().all(|&b| !w.store.contains(b)));
    assert_eq!(w.store.child_count(w.owns, o), 0);
    assert!(
        w.store.link(w.owns, o, b[0]).is_err(),
        "a removed row's key is stale"
    );
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_during_a_rollback_completes_the_rollback() {
    let mut w = world();
    let s = w.store.insert(Student("s".into()));
    let keep = w.store.insert(bomb("keep", false));
    w.store.link(w.carries, s, keep).unwrap();
    let before = contents(&w);
    let carries = w.carries;
    let drops_before = drops();
    assert!(panics(|| {
        let _: Result<(), &str> = w.store.transaction(|st| {
            let a = st.insert(bomb("a", true));
            st.link(carries, s, a).unwrap();
            st.insert(bomb("b", true));
            st.insert(Student("t".into()));
            Err("changed my mind")
        });
    }));
    assert_eq!(drops() - drops_before, 2, "both inserted rows dropped once");
    assert_eq!(contents(&w), before, "the rollback went all the way");
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_at_commit_keeps_the_commit_and_closes_the_transaction() {
    let mut w = world();
    let b = w.store.insert(bomb("b", true));
    let c = w.store.insert(bomb("c", true));
    let drops_before = drops();
    assert!(panics(|| {
        let _: Result<(), ()> = w.store.transaction(|st| {
            st.remove(b).unwrap();
            st.remove(c).unwrap();
            Ok(())
        });
    }));
    assert_eq!(drops() - drops_before, 2);
    assert!(!w.store.contains(b) && !w.store.contains(c));
    assert_eq!(w.store.len::<Bomb>(), 0);
    assert_sound(&w.store);
}

#[test]
fn replacing_the_store_inside_a_transaction_leaves_a_usable_store() {
    for fail in [false, true] {
        let mut w = world();
        let s = w.store.insert(Student("saved".into()));
        let saved = w.store.to_snapshot().unwrap();
        let schema = w.store.schema().clone();
        let r: Result<(), &str> = w.store.transaction(|st| {
            st.insert(Student("unsaved".into()));
            // revert to the last save
            *st = Store::from_snapshot(schema.clone(), &saved).unwrap();
            st.transaction(|st| {
                st.insert(Student("after".into()));
                Ok::<(), &str>(())
            })?;
            if fail {
                Err("and then fail")
            } else {
                Ok(())
            }
        });
        assert_eq!(r.is_err(), fail);
        assert!(w.store.contains(s));
        assert_eq!(
            w.store.len::<Student>(),
            2,
            "the save plus the insert after it"
        );
        assert_sound(&w.store);
        // the store keeps working as a transactional store
        let r: Result<(), ()> = w.store.transaction(|st| {
            st.insert(Student("rolled back".into()));
            Err(())
        });
        assert!(r.is_err());
        assert_eq!(w.store.len::<Student>(), 2);
        assert_sound(&w.store);
    }
}

#[test]
fn a_panicking_input_iterator_of_insert_all_inserts_nothing() {
    let mut w = world();
    let first = w.store.insert(Student("first".into()));
    let gone = w.store.insert(Student("gone".into()));
    w.store.remove(gone).unwrap();
    let before = contents(&w);
    let rows = (0..10).map(|i| {
        if i == 6 {
            panic!("the input fails");
        }
        Student(format!("s{i}"))
    });
    assert!(panics(|| {
        w.store.insert_all(rows);
    }));
    assert_eq!(contents(&w), before);
    assert_sound(&w.store);
    // the keys handed out before the panic are stale and never issued again
    let again: Vec<Key<Student>> = w.store.insert_all((0..10).map(|i| Student(i.to_string())));
    assert!(!again.contains(&first) && !again.contains(&gone));
    assert_eq!(w.store.len::<Student>(), 11);
    assert_sound(&w.store);
}

#[test]
fn a_panicking_input_iterator_inside_a_transaction_undoes_only_that_call() {
    let mut w = world();
    let r: Result<(), ()> = w.store.transaction(|st| {
        st.insert(Student("kept".into()));
        let rows = (0..10).map(|i| {
            if i == 4 {
                panic!("the input fails");
            }
            Student(format!("s{i}"))
        });
        assert!(panics(|| {
            st.insert_all(rows);
        }));
        assert_eq!(st.len::<Student>(), 1, "the failed call inserted nothing");
        Ok(())
    });
    assert!(r.is_ok());
    assert_eq!(w.store.len::<Student>(), 1);
    assert_sound(&w.store);
}

#[test]
fn a_panicking_drop_of_rows_dropped_by_a_failed_insert_all_does_not_abort() {
    let mut w = world();
    let rows = (0..5).map(|i| {
        if i == 3 {
            panic!("the input fails");
        }
        bomb(&format!("b{i}"), true)
    });
    let before = drops();
    assert!(panics(|| {
        w.store.insert_all(rows);
    }));
    assert_eq!(drops() - before, 3);
    assert_eq!(w.store.len::<Bomb>(), 0);
    assert_sound(&w.store);
}
