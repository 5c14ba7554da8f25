//! `link_all_with`: many-to-many links with payloads in bulk, against a loop of
//! `link_with`: the same final state, the same errors, all or nothing.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use relgraph::{Key, LinkError, ManyToMany, Rules, Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Student(u32);
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Course(u32);
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Grade(u32);

struct School {
    s: Store,
    rel: ManyToMany<Student, Course, Grade>,
    students: Vec<Key<Student>>,
    courses: Vec<Key<Course>>,
}

fn school() -> School {
    let mut schema = Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let rel = schema.many_to_many_with(students, "courses", courses, "students", Rules::new());
    let mut s = Store::new(schema);
    let students = s.insert_all((0..20).map(Student));
    let courses = s.insert_all((0..7).map(Course));
    School {
        s,
        rel,
        students,
        courses,
    }
}

/// Every collection from both ends with its payloads, in order.
fn state(w: &School) -> String {
    let mut out = String::new();
    for &st in &w.students {
        out += &format!("{st:?}: {:?}\n", w.s.targets_with(w.rel, st));
    }
    for &c in &w.courses {
        out += &format!("{c:?}: {:?}\n", w.s.sources_with(w.rel, c));
    }
    out
}

/// A deterministic batch with repeated pairs (the last payload wins, the first position
/// stays) over a store that already holds some of them.
fn batch(w: &School) -> Vec<(Key<Student>, Key<Course>, Grade)> {
    (0..300u32)
        .map(|i| {
            let st = w.students[(i * 7 % 20) as usize];
            let c = w.courses[(i * 3 % 7) as usize];
            (st, c, Grade(i))
        })
        .collect()
}

#[test]
fn a_bulk_link_with_payloads_ends_as_a_loop_of_link_with_does() {
    let (mut bulk, mut each) = (school(), school());
    for w in [&mut bulk, &mut each] {
        let (s0, c0) = (w.students[0], w.courses[0]);
        w.s.link_with(w.rel, s0, c0, Grade(1)).unwrap();
    }
    let links = batch(&bulk);
    bulk.s.link_all_with(bulk.rel, links.clone()).unwrap();
    for (st, c, g) in links {
        each.s.link_with(each.rel, st, c, g).unwrap();
    }
    assert_eq!(state(&bulk), state(&each));
    assert_eq!(bulk.s.link_count(bulk.rel), each.s.link_count(each.rel));
    bulk.s.check_integrity().unwrap();
    assert_eq!(bulk.s.to_snapshot().unwrap(), each.s.to_snapshot().unwrap());
}

#[test]
fn a_stale_key_anywhere_links_nothing() {
    let mut w = school();
    let gone = w.s.insert(Course(99));
    w.s.remove(gone).unwrap();
    // links made before: the batch replaces some of their payloads
    for i in 0..10 {
        let (st, c) = (w.students[i * 7 % 20], w.courses[i * 3 % 7]);
        w.s.link_with(w.rel, st, c, Grade(1_000)).unwrap();
    }
    let before = state(&w);
    let bytes = w.s.to_snapshot().unwrap();
    // 150 links before the stale key: some pairs twice, some linked before the call
    let mut links = batch(&w);
    links.insert(150, (w.students[3], gone, Grade(0)));
    let err = w.s.link_all_with(w.rel, links).unwrap_err();
    assert!(matches!(err, LinkError::Stale(_)), "{err:?}");
    assert_eq!(state(&w), before);
    assert_eq!(w.s.link_count(w.rel), 10);
    assert_eq!(w.s.to_snapshot().unwrap(), bytes, "every list as it was");
    w.s.check_integrity().unwrap();
}

#[test]
fn a_cycle_midway_in_an_acyclic_relation_links_nothing() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Task(u32);
    let mut schema = Schema::new();
    let tasks = schema.table::<Task>("tasks");
    let deps = schema.many_to_many_with::<_, _, u8>(
        tasks,
        "needs",
        tasks,
        "needed_by",
        Rules::new().acyclic(),
    );
    let mut s = Store::new(schema);
    let t = s.insert_all((0..4).map(Task));
    let err = s
        .link_all_with(deps, [(t[0], t[1], 1), (t[1], t[2], 2), (t[2], t[0], 3)])
        .unwrap_err();
    assert!(matches!(err, LinkError::Cycle { .. }), "{err:?}");
    assert_eq!(s.link_count(deps), 0);
    s.link_all_with(deps, [(t[0], t[1], 1), (t[1], t[2], 2)])
        .unwrap();
    assert_eq!(s.payload(deps, t[1], t[2]), Some(&2));
    s.check_integrity().unwrap();
}

#[test]
fn a_rolled_back_transaction_takes_the_bulk_links_back() {
    let mut w = school();
    let before = state(&w);
    let (rel, links) = (w.rel, batch(&w));
    let r: Result<(), LinkError> = w.s.transaction(|s| {
        s.link_all_with(rel, links)?;
        Err(LinkError::Duplicate {
            relation: s.schema().relations().next().unwrap().1,
            key: relgraph::RawKey::from_bits(1 << 32).unwrap(),
        })
    });
    assert!(r.is_err());
    assert_eq!(state(&w), before);
    w.s.check_integrity().unwrap();
}

#[test]
fn a_panicking_input_links_nothing() {
    let mut w = school();
    let before = state(&w);
    let links = batch(&w);
    let rel = w.rel;
    let input = links.into_iter().enumerate().map(|(i, l)| {
        if i == 200 {
            panic!("the input fails");
        }
        l
    });
    assert!(catch_unwind(AssertUnwindSafe(|| {
        let _ = w.s.link_all_with(rel, input);
    }))
    .is_err());
    assert_eq!(state(&w), before);
    assert!(!w.s.in_transaction());
    w.s.check_integrity().unwrap();
}

thread_local! {
    static DROPS: Cell<u32> = const { Cell::new(0) };
}

/// A payload whose `Drop` panics when `armed`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Fragile {
    armed: bool,
}

impl Drop for Fragile {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
        if self.armed && !std::thread::panicking() {
            panic!("a replaced payload's Drop fails");
        }
    }
}

#[test]
fn a_replaced_payload_whose_drop_panics_is_dropped_after_every_link_is_made() {
    let mut schema = Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let rel = schema.many_to_many_with::<_, _, Fragile>(
        students,
        "courses",
        courses,
        "students",
        Rules::new(),
    );
    let mut s = Store::new(schema);
    let st = s.insert_all((0..3).map(Student));
    let c = s.insert(Course(0));
    s.link_with(rel, st[0], c, Fragile { armed: true }).unwrap();
    let before = DROPS.with(Cell::get);
    let links = [
        (st[0], c, Fragile { armed: false }), // replaces the armed payload
        (st[1], c, Fragile { armed: false }),
        (st[2], c, Fragile { armed: false }),
    ];
    assert!(catch_unwind(AssertUnwindSafe(|| {
        let _ = s.link_all_with(rel, links);
    }))
    .is_err());
    assert_eq!(
        DROPS.with(Cell::get) - before,
        1,
        "the replaced payload, once"
    );
    assert_eq!(s.source_count(rel, c), 3, "every link was made");
    s.check_integrity().unwrap();
    // (the rest are dropped quietly with the store)
    DROPS.with(|d| d.set(0));
}
