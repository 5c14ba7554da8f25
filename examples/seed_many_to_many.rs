//! SQLAlchemy's many-to-many relationship example, written with relgraph: `Student.courses` <->
//! `Course.students`.
//!
//! Prints `[Course(name='Python Programming'), Course(name='Database Systems')]`, as the Python
//! does. Lines (non-blank, non-comment, imports and printing impls left out, rustfmt defaults; the
//! Python with its models and its query): Rust 30, Python 25, 1.20x.
//!
//! Run with `cargo run --example seed_many_to_many`.

use std::fmt;

use relgraph::{Schema, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Student {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Course {
    name: String,
}

impl fmt::Debug for Course {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Course(name='{}')", self.name)
    }
}

fn main() -> relgraph::Result<()> {
    let mut schema = Schema::new();
    let students = schema.table::<Student>("students");
    let courses = schema.table::<Course>("courses");
    let enrollments = schema.relate(students.many("courses"), courses.many("students"));
    let mut store = Store::new(schema);

    // create students and courses
    let student1 = store.insert(Student {
        name: "John".into(),
    });
    let course1 = store.insert(Course {
        name: "Python Programming".into(),
    });
    let course2 = store.insert(Course {
        name: "Database Systems".into(),
    });
    // associate the student with the courses: both ends updated at once
    store.link(enrollments, student1, course1)?;
    store.link(enrollments, student1, course2)?;

    // fetch the student's courses
    let student = store.find::<Student>(|s| s.name == "John").unwrap();
    let courses: Vec<&Course> = store.targets(enrollments, student).rows().collect();
    println!("{courses:?}");
    Ok(())
}
